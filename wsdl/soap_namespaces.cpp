// The gSOAP runtime (libgsoapssl++) refers to one global namespace table; it must be defined in
// exactly one translation unit of each program, and this library is linked once per program.
#include "soapH.h"
#include "ResourceManagerBinding.nsmap"

// libgsoapssl++ also calls back into the generated soapC.cpp (faults, headers, element
// dispatch). A program that only uses the runtime would not pull soapC's object out of this
// static library by itself, so this table, kept alive next to the namespace table that the
// link forces in, references it.
namespace {
[[gnu::used]] const void* const kGeneratedCallbacks[] = {
    reinterpret_cast<const void*>(&soap_getfault),
    reinterpret_cast<const void*>(&soap_putheader),
};
}  // namespace
