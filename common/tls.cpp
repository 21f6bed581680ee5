#include "common/tls.h"

#include "common/pki.h"

#include <Poco/Net/RejectCertificateHandler.h>
#include <Poco/Net/SSLManager.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
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
    if (!options.expectedIdentity.empty()) expectPeerIdentity(soap, options.expectedIdentity);
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
    if (!options.expectedIdentity.empty()) context->enableExtendedCertificateVerification(false);
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
    return {server.keyFile, server.caFile, server.password, {}};
}

std::string verifiedPeerIdentity(struct soap* soap) {
    if (!soap || !soap->ssl) return {};
    if (SSL_get_verify_result(soap->ssl) != X509_V_OK) return {};
    X509* peer = SSL_get1_peer_certificate(soap->ssl);
    if (!peer) return {};
    std::string pem;
    if (BIO* bio = BIO_new(BIO_s_mem())) {
        if (PEM_write_bio_X509(bio, peer)) {
            char* data = nullptr;
            long size = BIO_get_mem_data(bio, &data);
            pem.assign(data, static_cast<size_t>(size));
        }
        BIO_free(bio);
    }
    X509_free(peer);
    try {
        return pki::inspectCertificate(pem).commonName;
    } catch (const pki::PkiError&) {
        return {};
    }
}

namespace {

constexpr const char* kPluginId = "rm-peer-identity";

struct IdentityPlugin {
    std::string expected;
    SOAP_SOCKET (*defaultOpen)(struct soap*, const char*, const char*, int) = nullptr;
};

SOAP_SOCKET openChecked(struct soap* soap, const char* endpoint, const char* host, int port) {
    auto* plugin = static_cast<IdentityPlugin*>(soap_lookup_plugin(soap, kPluginId));
    SOAP_SOCKET s = plugin->defaultOpen(soap, endpoint, host, port);
    if (!soap_valid_socket(s) || !soap->ssl) return s;
    std::string actual = verifiedPeerIdentity(soap);
    if (actual == plugin->expected) return s;
    soap->socket = s;
    soap->fclose(soap);
    soap->socket = SOAP_INVALID_SOCKET;
    std::string message = "TLS peer " + std::string(host ? host : "?") + ":" +
                          std::to_string(port) + " presented identity '" + actual.substr(0, 128) +
                          "', expected '" + plugin->expected + "'";
    soap_set_receiver_error(soap, "TLS peer identity mismatch", soap_strdup(soap, message.c_str()),
                            SOAP_SSL_ERROR);
    return SOAP_INVALID_SOCKET;
}

void deletePlugin(struct soap*, struct soap_plugin* p) {
    delete static_cast<IdentityPlugin*>(p->data);
}

int copyPlugin(struct soap*, struct soap_plugin* dst, struct soap_plugin* src) {
    dst->data = new IdentityPlugin(*static_cast<IdentityPlugin*>(src->data));
    return SOAP_OK;
}

int createPlugin(struct soap* soap, struct soap_plugin* p, void* arg) {
    auto* data = new IdentityPlugin;
    data->expected = *static_cast<const std::string*>(arg);
    data->defaultOpen = soap->fopen;
    p->id = kPluginId;
    p->data = data;
    p->fcopy = copyPlugin;
    p->fdelete = deletePlugin;
    soap->fopen = openChecked;
    return SOAP_OK;
}

}  // namespace

void expectPeerIdentity(struct soap* soap, const std::string& identity) {
    soap->ssl_flags |= SOAP_SSL_SKIP_HOST_CHECK;
    if (auto* plugin = static_cast<IdentityPlugin*>(soap_lookup_plugin(soap, kPluginId))) {
        plugin->expected = identity;
        return;
    }
    std::string arg = identity;
    if (soap_register_plugin_arg(soap, createPlugin, &arg) != SOAP_OK)
        throw std::runtime_error("cannot register the peer identity check on a gSOAP context");
}

}  // namespace rm::common
