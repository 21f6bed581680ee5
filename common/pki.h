// The small PKI of a scope (SPEC section 10), on OpenSSL: a self-signed scope CA, EC P-256 keys,
// certificate signing requests, and the certificates it issues to the RM and to node agents.
// Identities are the certificate's subject common name: the RM is kRmIdentity, a node its ID.
// Every function is reentrant; none keeps state between calls.
#pragma once

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace rm::common::pki {

// The subject CN of the Resource Manager's own certificate. Never a valid node ID (node IDs are
// issued from CSRs whose CN the RM validates and refuses when it equals this).
inline constexpr const char* kRmIdentity = "resource-manager";

// Hostile or unusable PKI input: the message says what was wrong.
class PkiError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

struct KeyAndCertificate {
    std::string keyPem;
    std::string certificatePem;
};

// What a parsed certificate says about itself.
struct CertificateInfo {
    std::string commonName;
    int64_t notBeforeMs = 0;
    int64_t notAfterMs = 0;
    std::string serialHex;
};

struct CsrInfo {
    std::string commonName;
    std::string publicKeyPem;
};

// A new EC P-256 private key, PEM (PKCS#8).
std::string generateKeyPem();

// A self-signed CA certificate for `commonName`, valid `validity` from now (backdated by a tenth
// of that, at most a minute, for clock skew).
KeyAndCertificate makeCa(const std::string& commonName, std::chrono::seconds validity);

// A CSR for `commonName`, signed with `keyPem`.
std::string makeCsrPem(const std::string& keyPem, const std::string& commonName);

// Parses a PEM CSR from outside: bounded size, exactly one CN, a valid self-signature, an EC
// P-256 or RSA >= 2048 key. Throws PkiError saying what is wrong.
CsrInfo parseCsr(const std::string& pem);

struct IssueRequest {
    std::string publicKeyPem;      // from parseCsr
    std::string commonName;        // the identity the certificate carries
    std::chrono::seconds validity{30 * 24 * 3600};
    bool serverAuth = true;        // extended key usages
    bool clientAuth = true;
    std::vector<std::string> dnsNames;  // subjectAltName DNS entries
    std::vector<std::string> ipAddresses;  // subjectAltName IP entries (v4 or v6 text)
};

// A certificate signed by `ca`, PEM.
std::string issueCertificate(const KeyAndCertificate& ca, const IssueRequest& request);

// Facts from a PEM certificate (the first one in the text). Throws PkiError.
CertificateInfo inspectCertificate(const std::string& certificatePem);

// Lower-case hex SHA-256 of the DER encoding of the first certificate in `certificatePem`: the
// pin agents check the scope CA against (`--ca-sha256`).
std::string certificateSha256(const std::string& certificatePem);

// True when `certificatePem` chains to `caPem` and is valid now.
bool verifyCertificate(const std::string& certificatePem, const std::string& caPem);

// Lower-case hex of n random bytes from OpenSSL's CSPRNG.
std::string randomHex(size_t bytes);
// Lower-case hex SHA-256 of `text`.
std::string sha256Hex(const std::string& text);
// Constant-time comparison of two strings of equal length (false when lengths differ).
bool constantTimeEquals(const std::string& a, const std::string& b);
// HMAC-SHA256(key, text), lower-case hex.
std::string hmacSha256Hex(const std::string& key, const std::string& text);

}  // namespace rm::common::pki
