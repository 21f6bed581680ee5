#include "agent/enrollment.h"

#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/URI.h>

#include <algorithm>
#include <sstream>

#include "agent/soap_errors.h"
#include "common/durable_file.h"
#include "common/pki.h"
#include "common/soap_server.h"
#include "common/time_util.h"
#include "soapResourceManagerBindingProxy.h"

namespace rm::agent {

namespace fs = std::filesystem;
namespace pki = common::pki;
using common::Log;
using common::LogLevel;

namespace {

constexpr size_t kMaxCaBytes = 64 * 1024;

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
}

// The scope CA as the RM serves it on GET /ca.pem. Fetched without verification on purpose:
// what arrives is only trusted after its SHA-256 matched the pin.
std::string fetchCaCertificate(const std::string& managerUrl, std::chrono::seconds timeout) {
    Poco::URI uri(managerUrl);
    if (uri.getScheme() != "https") {
        throw EnrollmentRefused("--manager " + managerUrl +
                                " must be the RM's agent port, an https:// URL");
    }
    Poco::Net::Context::Params params;
    params.verificationMode = Poco::Net::Context::VERIFY_NONE;
    Poco::Net::Context::Ptr context =
        new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, params);
    context->requireMinimumProtocol(Poco::Net::Context::PROTO_TLSV1_2);
    Poco::Net::HTTPSClientSession session(uri.getHost(), uri.getPort(), context);
    Poco::Timespan span(static_cast<long>(timeout.count()), 0);
    session.setTimeout(span, span, span);
    Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_GET, "/ca.pem",
                                   Poco::Net::HTTPMessage::HTTP_1_1);
    session.sendRequest(request);
    Poco::Net::HTTPResponse response;
    std::istream& body = session.receiveResponse(response);
    if (response.getStatus() != Poco::Net::HTTPResponse::HTTP_OK) {
        throw std::runtime_error("GET " + managerUrl + "/ca.pem answered HTTP " +
                                 std::to_string(response.getStatus()));
    }
    std::string pem;
    char buffer[4096];
    while (body.read(buffer, sizeof buffer) || body.gcount() > 0) {
        pem.append(buffer, static_cast<size_t>(body.gcount()));
        if (pem.size() > kMaxCaBytes)
            throw std::runtime_error("the RM's CA certificate is too large");
    }
    return pem;
}

// A client of the RM's agent port that trusts only `caFile` and knows the RM by identity.
class RmCall {
  public:
    RmCall(const std::string& managerUrl, const common::TlsClientOptions& tls,
           std::chrono::seconds timeout)
        : url_(managerUrl) {
        common::ServerOptions limits;
        limits.ioTimeout = timeout;
        limits.transferTimeout = timeout * 2;
        common::applyXmlLimits(proxy_.soap, limits);
        common::configureTlsClient(proxy_.soap, tls);
    }
    ResourceManagerBindingProxy& proxy() { return proxy_; }
    const char* url() const { return url_.c_str(); }
    // Throws, with EnrollmentRefused for an AccessDenied/InvalidRequest fault.
    void check(int rc, const std::string& what) {
        if (rc == SOAP_OK) return;
        std::string why = describeSoapError(proxy_.soap, what + " at " + url_);
        bool refused = proxy_.soap->fault && proxy_.soap->fault->detail &&
                       (proxy_.soap->fault->detail->rm__AccessDeniedFault ||
                        proxy_.soap->fault->detail->rm__InvalidRequestFault);
        if (refused) throw EnrollmentRefused(why);
        throw std::runtime_error(why);
    }

  private:
    std::string url_;
    ResourceManagerBindingProxy proxy_;
};

NodeCredentials keep(const fs::path& dir, const std::string& nodeId, const std::string& keyPem,
                     const std::string& certificate, const std::string& caPem) {
    auto info = pki::inspectCertificate(certificate);
    if (info.commonName != nodeId) {
        throw EnrollmentRefused("the RM issued a certificate for '" +
                                info.commonName.substr(0, 128) + "', not for this node " + nodeId);
    }
    if (!pki::verifyCertificate(certificate, caPem)) {
        throw EnrollmentRefused("the certificate the RM issued does not chain to the scope CA");
    }
    fs::create_directories(dir);
    fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace);
    common::writeFileAtomically(dir / "ca.pem", caPem, 0644);
    common::writeFileAtomically(dir / "node.pem", keyPem + certificate, 0600);
    return NodeCredentials{dir / "node.pem", dir / "ca.pem", nodeId, info.notBeforeMs,
                           info.notAfterMs};
}

}  // namespace

common::TlsClientOptions NodeCredentials::clientOptions() const {
    return {keyFile.string(), caFile.string(), {}, pki::kRmIdentity};
}

common::TlsOptions NodeCredentials::serverOptions() const {
    return {keyFile.string(), caFile.string(), {}, true};
}

bool isSha256Hex(const std::string& text) {
    return text.size() == 64 && std::all_of(text.begin(), text.end(),
                                            [](unsigned char c) { return std::isxdigit(c) != 0; });
}

std::optional<NodeCredentials> loadCredentials(const fs::path& dir, const std::string& nodeId) {
    if (!fs::exists(dir / "node.pem") || !fs::exists(dir / "ca.pem")) return std::nullopt;
    try {
        std::string bundle = common::readWholeFile(dir / "node.pem");
        std::string ca = common::readWholeFile(dir / "ca.pem");
        auto certAt = bundle.find("-----BEGIN CERTIFICATE-----");
        if (certAt == std::string::npos) return std::nullopt;
        std::string certificate = bundle.substr(certAt);
        auto info = pki::inspectCertificate(certificate);
        if (info.commonName != nodeId || !pki::verifyCertificate(certificate, ca))
            return std::nullopt;
        return NodeCredentials{dir / "node.pem", dir / "ca.pem", nodeId, info.notBeforeMs,
                               info.notAfterMs};
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

NodeCredentials enroll(const fs::path& dir, const std::string& nodeId,
                       const EnrollmentOptions& options, common::Logger& logger) {
    if (options.joinToken.empty() || !isSha256Hex(options.caSha256)) {
        throw EnrollmentRefused(
            "this node is not enrolled yet: start it once with --join-token (or --join-token-file) "
            "and --ca-sha256, as `rmctl token create` prints them");
    }
    std::string caPem = fetchCaCertificate(options.managerUrl, options.callTimeout);
    std::string presented = pki::certificateSha256(caPem);
    if (!pki::constantTimeEquals(presented, lower(options.caSha256))) {
        throw EnrollmentRefused(
            "the RM at " + options.managerUrl + " presented a CA whose SHA-256 is " + presented +
            ", not the pinned " + lower(options.caSha256) +
            ": refusing to send the join token (wrong --manager, or an impostor)");
    }
    fs::create_directories(dir);
    fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace);
    // The RM is verified against the pinned CA from here on; the token only goes to it.
    common::writeFileAtomically(dir / "ca.pem", caPem, 0644);
    common::TlsClientOptions tls{{}, (dir / "ca.pem").string(), {}, pki::kRmIdentity};
    std::string key = pki::generateKeyPem();
    RmCall call(options.managerUrl, tls, options.callTimeout);
    _rm__EnrollNode request;
    request.token = options.joinToken;
    request.csr = pki::makeCsrPem(key, nodeId);
    _rm__EnrollNodeResponse response;
    call.check(call.proxy().EnrollNode(call.url(), nullptr, &request, response), "EnrollNode");
    auto credentials = keep(dir, nodeId, key, response.certificate, caPem);
    Log(logger, LogLevel::info, "node_enrolled")
        .kv("node", nodeId)
        .kv("manager", options.managerUrl)
        .kv("expires", common::isoTimestamp(common::fromUnixMillis(credentials.notAfterMs)));
    return credentials;
}

NodeCredentials renew(const fs::path& dir, const NodeCredentials& current,
                      const std::string& managerUrl, std::chrono::seconds callTimeout,
                      common::Logger& logger) {
    std::string key = pki::generateKeyPem();
    RmCall call(managerUrl, current.clientOptions(), callTimeout);
    _rm__RenewNodeCertificate request;
    request.csr = pki::makeCsrPem(key, current.nodeId);
    _rm__RenewNodeCertificateResponse response;
    call.check(call.proxy().RenewNodeCertificate(call.url(), nullptr, &request, response),
               "RenewNodeCertificate");
    auto credentials = keep(dir, current.nodeId, key, response.certificate, response.caCertificate);
    Log(logger, LogLevel::info, "node_certificate_renewed")
        .kv("node", current.nodeId)
        .kv("expires", common::isoTimestamp(common::fromUnixMillis(credentials.notAfterMs)));
    return credentials;
}

}  // namespace rm::agent
