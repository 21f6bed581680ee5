// TLS between our daemons and their clients (SPEC section 10). Both daemons take the same flags:
// --tls-key serves HTTPS, --tls-ca names the CAs peers are checked against, and
// --tls-require-client-cert makes it mutual. The client side of the calls the daemons make to
// each other (RM -> agents: Deploy/Undeploy; agents -> RM: RegisterNode, Heartbeat, SendReport,
// package downloads) presents the daemon's own key, so one key and CA per host give mutual TLS.
#pragma once

#include <Poco/Net/Context.h>

#include <string>
#include <vector>

#include "common/settings.h"
#include "common/soap_server.h"

struct soap;

namespace rm::common {

struct TlsClientOptions {
    std::string keyFile;   // PEM key + certificate shown to servers that ask (mutual TLS); optional
    std::string caFile;    // CAs that sign the servers; empty: the system's CAs
    std::string password;  // of the key, if any
};

// Prepares a gSOAP context for https:// peers: their certificate must chain to `caFile` and name
// the host called; `keyFile` is presented when asked. http:// calls are unaffected. Call once per
// context (the SSL context outlives soap_destroy/soap_end). Throws std::runtime_error naming the
// file that could not be used.
void configureTlsClient(struct soap* soap, const TlsClientOptions& options);

// The same policy for Poco's HTTPS client (package downloads). Certificates that fail
// verification are refused, never prompted for.
Poco::Net::Context::Ptr makeTlsClientContext(const TlsClientOptions& options);

// `options` followed by tls-key, tls-ca and tls-require-client-cert.
std::vector<OptionSpec> withTlsOptions(std::vector<OptionSpec> options);
// Reads those flags; throws UsageError when they do not fit together.
TlsOptions loadTlsOptions(const Settings& settings);
// What a daemon serving with `server` presents and trusts when it calls its peers.
TlsClientOptions clientSideOf(const TlsOptions& server);

}  // namespace rm::common
