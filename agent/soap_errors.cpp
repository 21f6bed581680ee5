#include "agent/soap_errors.h"

namespace rm::agent {

std::string describeSoapError(struct soap* soap, const std::string& what) {
    std::string reason;
    if (const char* s = soap_fault_string(soap)) reason = s;
    if (soap->error == SOAP_TCP_ERROR || soap->error == SOAP_SSL_ERROR || soap->error == SOAP_EOF) {
        return what + ": cannot connect or connection lost (" +
               (reason.empty() ? "no detail" : reason) + ")";
    }
    if (soap->error == SOAP_FAULT)
        return what + ": refused: " + (reason.empty() ? "unknown fault" : reason);
    return what + ": failed (gSOAP error " + std::to_string(soap->error) +
           (reason.empty() ? "" : ": " + reason) + ")";
}

}  // namespace rm::agent
