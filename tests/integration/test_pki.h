// A throw-away PKI for the TLS tests, made by the openssl tool: a CA with a server certificate
// for 127.0.0.1, an operator's client certificate, node certificates (server and client at once,
// as a node agent needs), and a second CA nobody trusts with a certificate of its own.
#pragma once

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "rm_test_helpers.h"

namespace rm::testing {

// A throw-away CA with a server certificate for 127.0.0.1 and a client certificate, each as one
// PEM holding key and certificate (the form gSOAP wants).
class TestPki {
  public:
    TestPki() {
        openssl({"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                 "/CN=rm-test-ca", "-keyout", file("ca.key"), "-out", file("ca.pem")});
        issue("server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1,DNS:localhost");
        issue("client", "/CN=rm-test-operator", "extendedKeyUsage=clientAuth");
        issue("node", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1,DNS:localhost");
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

}  // namespace rm::testing
