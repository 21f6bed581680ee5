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
    // When set, the server is known by this identity (its certificate's CN, which must chain to
    // `caFile`) instead of by host name: how agents know the RM and the RM its nodes.
    std::string expectedIdentity;
};

// Prepares a gSOAP context for https:// peers: their certificate must chain to `caFile` and name
// the host called; `keyFile` is presented when asked. http:// calls are unaffected. Call once per
// context (the SSL context outlives soap_destroy/soap_end). Throws std::runtime_error naming the
// file that could not be used.
void configureTlsClient(struct soap* soap, const TlsClientOptions& options);

// The same policy for Poco's HTTPS client (package downloads). Certificates that fail
// verification are refused, never prompted for. With `expectedIdentity` the host-name check is
// off: the caller checks the server certificate's CN (downloader.cpp does).
Poco::Net::Context::Ptr makeTlsClientContext(const TlsClientOptions& options);

// `options` followed by tls-key, tls-ca and tls-require-client-cert.
std::vector<OptionSpec> withTlsOptions(std::vector<OptionSpec> options);
// Reads those flags; throws UsageError when they do not fit together.
TlsOptions loadTlsOptions(const Settings& settings);
// What a daemon serving with `server` presents and trusts when it calls its peers.
TlsClientOptions clientSideOf(const TlsOptions& server);

// The subject CN of the peer of an accepted or connected TLS gSOAP context whose certificate
// verified against the context's CA; empty when there is no TLS, no certificate, or it did not
// verify. Safe to call from the thread that owns `soap`.
std::string verifiedPeerIdentity(struct soap* soap);

// Makes every connection `soap` opens (client side) check that the server's certificate, which
// must chain to the configured CA, names `identity` in its CN; the host-name check is replaced by
// this identity check (nodes and the RM are known by identity, not by DNS). A mismatch fails the
// call with an error naming both. Call after configuring TLS on the context; calling it again
// changes the identity expected.
void expectPeerIdentity(struct soap* soap, const std::string& identity);

}  // namespace rm::common
