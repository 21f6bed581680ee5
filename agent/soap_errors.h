// One line saying why a gSOAP client call failed, for errors and logs.
#pragma once

#include <stdsoap2.h>

#include <string>

namespace rm::agent {

// "<what>: cannot connect (...)" or "<what>: refused: <fault string>".
std::string describeSoapError(struct soap* soap, const std::string& what);

}  // namespace rm::agent
