// The gSOAP runtime (libgsoapssl++) refers to one global namespace table; it must be defined in
// exactly one translation unit of each program, and this library is linked once per program.
#include "soapH.h"
#include "ResourceManagerBinding.nsmap"
