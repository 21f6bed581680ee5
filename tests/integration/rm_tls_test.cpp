// The RM over HTTPS and mutual TLS, with certificates made for the test by the openssl tool: a
// client that trusts the CA is served, one that does not is refused, and with
// --tls-require-client-cert only clients holding a certificate signed by --tls-ca get in.
#include <filesystem>

#include "rm_test_helpers.h"

using namespace rm::testing;

namespace {

// A throw-away CA with a server certificate for 127.0.0.1 and a client certificate, each as one
// PEM holding key and certificate (the form gSOAP wants).
class TestPki {
  public:
    TestPki() {
        openssl({"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                 "/CN=rm-test-ca", "-keyout", file("ca.key"), "-out", file("ca.pem")});
        issue("server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1,DNS:localhost");
        issue("client", "/CN=rm-test-operator", "extendedKeyUsage=clientAuth");
        // A second CA the server never heard of, for a client certificate it must refuse.
        openssl({"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                 "/CN=other-ca", "-keyout", file("other.key"), "-out", file("other.pem")});
        issue("stranger", "/CN=stranger", "extendedKeyUsage=clientAuth", "other");
    }
    std::string file(const std::string& name) const { return (dir_.path() / name).string(); }
    const std::filesystem::path& dir() const { return dir_.path(); }

  private:
    void issue(const std::string& name, const std::string& subject, const std::string& extension,
               const std::string& ca = "ca") {
        openssl({"req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout",
                 file(name + ".key"), "-out", file(name + ".csr")});
        {
            std::ofstream ext(file(name + ".ext"));
            ext << extension << "\n";
        }
        openssl({"x509", "-req", "-in", file(name + ".csr"), "-CA", file(ca + ".pem"), "-CAkey",
                 file(ca + ".key"), "-CAcreateserial", "-days", "2", "-extfile",
                 file(name + ".ext"), "-out", file(name + ".crt")});
        std::ofstream pem(file(name + ".pem"), std::ios::binary);
        pem << readText(file(name + ".key")) << readText(file(name + ".crt"));
    }
    void openssl(std::vector<std::string> args) {
        int rc = runProgram("/usr/bin/openssl", std::move(args), dir_.path() / "openssl.out");
        if (rc != 0)
            throw std::runtime_error("openssl failed: " + readText(dir_.path() / "openssl.out"));
    }
    TempDir dir_{"rm-pki"};
};

rm::client::ClientOptions tlsOptions(const RmInstance& rm, const std::string& ca,
                                     const std::string& key = {}) {
    auto o = rm.options();
    o.tlsCaFile = ca;
    o.tlsKeyFile = key;
    return o;
}

// Adds one resource and waits for its session to close; throws what the client threw.
void addAndFollow(const rm::client::ClientOptions& options, const std::string& id) {
    rm::client::RmClient client(options);
    auto reportId = client.addResources(plainRequest({{"GenericResource", id}}));
    auto report = waitClosed(client, reportId);
    BOOST_TEST(report.sessionExitStatus.value_or("") == "SUCCESS");
}

}  // namespace

BOOST_AUTO_TEST_SUITE(rm_tls)

BOOST_AUTO_TEST_CASE(https_serves_clients_that_trust_the_ca) {
    TestPki pki;
    RmInstance rm({"--tls-key", pki.file("server.pem")});
    BOOST_TEST(rm.url().rfind("https://", 0) == 0u, "the printed URL says https: " << rm.url());
    addAndFollow(tlsOptions(rm, pki.file("ca.pem")), "over-tls");

    // A client that verifies against another CA must refuse the server's certificate.
    BOOST_CHECK_THROW(addAndFollow(tlsOptions(rm, pki.file("other.pem")), "wrong-ca"),
                      rm::client::ClientError);
    // Plain HTTP against the TLS port is dropped, and the server keeps serving TLS clients.
    std::string plainUrl = "http" + rm.url().substr(5);
    auto raw = rawExchange(plainUrl, httpPost(plainUrl, envelope("<rm:ListNodes/>")),
                           std::chrono::seconds(3));
    BOOST_TEST(raw.status == 0, "plain HTTP must not be answered in clear text");
    addAndFollow(tlsOptions(rm, pki.file("ca.pem")), "still-served");
    BOOST_TEST(rm.daemon().running());
}

BOOST_AUTO_TEST_CASE(mutual_tls_admits_only_certified_clients) {
    TestPki pki;
    RmInstance rm({"--tls-key", pki.file("server.pem"), "--tls-ca", pki.file("ca.pem"),
                   "--tls-require-client-cert", "true"});
    // No client certificate, or one from a CA the server does not trust: refused.
    BOOST_CHECK_THROW(addAndFollow(tlsOptions(rm, pki.file("ca.pem")), "anonymous"),
                      rm::client::ClientError);
    BOOST_CHECK_THROW(
        addAndFollow(tlsOptions(rm, pki.file("ca.pem"), pki.file("stranger.pem")), "stranger"),
        rm::client::ClientError);
    // The operator's certificate gets in, and nothing the refused clients sent was kept.
    addAndFollow(tlsOptions(rm, pki.file("ca.pem"), pki.file("client.pem")), "certified");
    rm::client::RmClient client(tlsOptions(rm, pki.file("ca.pem"), pki.file("client.pem")));
    auto rows = client.listResources();
    std::set<std::string> ids;
    for (const auto& row : rows) ids.insert(row.id);
    BOOST_TEST(ids.count("certified") == 1u);
    BOOST_TEST(ids.count("anonymous") == 0u);
    BOOST_TEST(ids.count("stranger") == 0u);
}

BOOST_AUTO_TEST_SUITE_END()
