// libFuzzer target for what an agent sends to enroll (EnrollNode, RenewNodeCertificate): a join
// token and a PEM certificate signing request, both from outside, before anyone is
// authenticated. The input is split at the first NUL: token text, then CSR text (a valid CSR is
// spliced in when the input starts with "CSR:", so the fuzzer also mutates real DER).
// Beyond not crashing: parseJoinToken accepts exactly ID(6).SECRET(16) of [a-z0-9] and splits it
// so that it reassembles; parseCsr throws only PkiError; a CSR it accepts has a CN, and a
// certificate issued for it names that CN and verifies against the issuing CA only.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/pki.h"
#include "service/join_token.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

namespace pki = rm::common::pki;
using rm::fuzz::require;

bool tokenShaped(const std::string& text) {
    if (text.size() != 23 || text[6] != '.') return false;
    for (size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (i != 6 && !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
    }
    return true;
}

const pki::KeyAndCertificate& testCa() {
    static const pki::KeyAndCertificate ca = pki::makeCa("fuzz CA", std::chrono::hours(24));
    return ca;
}

const std::string& validCsr() {
    static const std::string csr = pki::makeCsrPem(pki::generateKeyPem(), "fuzz-node");
    return csr;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string input(reinterpret_cast<const char*>(data), size);
    auto nul = input.find('\0');
    std::string token = input.substr(0, nul);
    std::string csr = nul == std::string::npos ? std::string() : input.substr(nul + 1);
    if (csr.rfind("CSR:", 0) == 0) {
        // Overwrite part of a real CSR with the rest of the input: mutations of real structure.
        std::string base = validCsr();
        std::string patch = csr.substr(4);
        size_t at = patch.empty() ? 0 : static_cast<unsigned char>(patch[0]) % base.size();
        base.replace(at, std::min(patch.size(), base.size() - at), patch);
        csr = base;
    }

    auto parsed = rm::service::parseJoinToken(token);
    require(parsed.has_value() == tokenShaped(token), "parseJoinToken disagrees with the token shape");
    if (parsed) require(parsed->id + "." + parsed->secret == token, "a parsed token does not reassemble");

    pki::CsrInfo info;
    try {
        info = pki::parseCsr(csr);
    } catch (const pki::PkiError&) {
        return 0;
    }
    require(!info.commonName.empty(), "an accepted CSR without a CN");
    pki::IssueRequest request;
    request.publicKeyPem = info.publicKeyPem;
    request.commonName = info.commonName;
    request.validity = std::chrono::hours(1);
    std::string certificate;
    try {
        certificate = pki::issueCertificate(testCa(), request);
    } catch (const pki::PkiError&) {
        return 0;  // e.g. a CN OpenSSL will not put in a name; refused, never issued wrongly
    }
    require(pki::inspectCertificate(certificate).commonName == info.commonName,
            "an issued certificate names another identity");
    require(pki::verifyCertificate(certificate, testCa().certificatePem),
            "an issued certificate does not verify");
    return 0;
}
