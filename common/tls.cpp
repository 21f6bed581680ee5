#include "common/tls.h"

#include <Poco/Net/RejectCertificateHandler.h>
#include <Poco/Net/SSLManager.h>
#include <stdsoap2.h>

#include <mutex>
#include <stdexcept>

namespace rm::common {

namespace {

const char* orNull(const std::string& s) {
    return s.empty() ? nullptr : s.c_str();
}

// Poco asks its SSLManager what to do with a certificate that fails verification, and without
// configuration its default handler would prompt on the console. Register the refusing handler
// once per process before the first HTTPS connection.
void refuseInvalidCertificates(Poco::Net::Context::Ptr context) {
    static std::once_flag once;
    std::call_once(once, [&] {
        Poco::SharedPtr<Poco::Net::InvalidCertificateHandler> reject =
            new Poco::Net::RejectCertificateHandler(false);
        Poco::Net::SSLManager::instance().initializeClient(nullptr, reject, context);
    });
}

}  // namespace

void configureTlsClient(struct soap* soap, const TlsClientOptions& options) {
    int flags = SOAP_SSL_DEFAULT | SOAP_TLSv1_2 | SOAP_TLSv1_3;
    if (soap_ssl_client_context(soap, flags, orNull(options.keyFile), orNull(options.password),
                                orNull(options.caFile), nullptr, nullptr) != SOAP_OK) {
        char buf[512];
        soap_sprint_fault(soap, buf, sizeof buf);
        throw std::runtime_error("TLS client setup failed (check the key '" + options.keyFile +
                                 "' and CA '" + options.caFile + "' files): " + buf);
    }
}

Poco::Net::Context::Ptr makeTlsClientContext(const TlsClientOptions& options) {
    Poco::Net::Context::Params params;
    params.privateKeyFile = options.keyFile;
    params.certificateFile = options.keyFile;  // one PEM holds both, as for gSOAP
    params.caLocation = options.caFile;
    params.loadDefaultCAs = options.caFile.empty();
    params.verificationMode = Poco::Net::Context::VERIFY_RELAXED;
    params.verificationDepth = 9;
    Poco::Net::Context::Ptr context;
    try {
        context = new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, params);
    } catch (const Poco::Exception& e) {
        throw std::runtime_error("TLS client setup failed (check the key '" + options.keyFile +
                                 "' and CA '" + options.caFile + "' files): " + e.displayText());
    }
    context->requireMinimumProtocol(Poco::Net::Context::PROTO_TLSV1_2);
    refuseInvalidCertificates(context);
    return context;
}

std::vector<OptionSpec> withTlsOptions(std::vector<OptionSpec> options) {
    options.push_back({"tls-key",
                       "PEM file with the private key and certificate: serve HTTPS, and show it "
                       "as client certificate when calling the other daemons",
                       {}});
    options.push_back(
        {"tls-ca", "PEM file of the CAs that sign clients and the other daemons (mutual TLS)", {}});
    options.push_back({"tls-require-client-cert",
                       "refuse clients without a certificate signed by --tls-ca", "false"});
    return options;
}

TlsOptions loadTlsOptions(const Settings& s) {
    TlsOptions tls;
    if (s.has("tls-key")) tls.keyFile = s.get("tls-key");
    if (s.has("tls-ca")) tls.caFile = s.get("tls-ca");
    tls.requireClientCertificate = s.getBool("tls-require-client-cert");
    if (tls.requireClientCertificate && tls.caFile.empty())
        throw UsageError("--tls-require-client-cert needs --tls-ca");
    if (tls.requireClientCertificate && tls.keyFile.empty())
        throw UsageError("--tls-require-client-cert needs --tls-key (the server's certificate)");
    return tls;
}

TlsClientOptions clientSideOf(const TlsOptions& server) {
    return {server.keyFile, server.caFile, server.password};
}

}  // namespace rm::common
