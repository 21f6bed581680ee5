// The scope PKI (common/pki.h): what it issues verifies, and hostile CSRs are refused.
#include <boost/test/unit_test.hpp>

#include "common/pki.h"
#include "common/time_util.h"

namespace pki = rm::common::pki;

BOOST_AUTO_TEST_SUITE(pki_tests)

BOOST_AUTO_TEST_CASE(issued_certificate_names_the_csr_identity_and_chains_to_the_ca) {
    auto ca = pki::makeCa("scope CA /t", std::chrono::hours(24 * 365));
    std::string key = pki::generateKeyPem();
    auto csr = pki::parseCsr(pki::makeCsrPem(key, "node-1"));
    BOOST_TEST(csr.commonName == "node-1");
    pki::IssueRequest request;
    request.publicKeyPem = csr.publicKeyPem;
    request.commonName = "node-1";
    request.validity = std::chrono::hours(2);
    std::string cert = pki::issueCertificate(ca, request);
    BOOST_TEST(pki::verifyCertificate(cert, ca.certificatePem));
    auto info = pki::inspectCertificate(cert);
    BOOST_TEST(info.commonName == "node-1");
    int64_t life = info.notAfterMs - rm::common::nowMillis();
    BOOST_TEST(life > 3600 * 1000);
    BOOST_TEST(life <= 2 * 3600 * 1000 + 1000);

    // Another CA's certificate does not verify against this one.
    auto other = pki::makeCa("other", std::chrono::hours(24));
    BOOST_TEST(!pki::verifyCertificate(cert, other.certificatePem));
}

BOOST_AUTO_TEST_CASE(ca_pin_is_the_sha256_of_the_der_certificate) {
    auto ca = pki::makeCa("pin", std::chrono::hours(24));
    std::string pin = pki::certificateSha256(ca.certificatePem);
    BOOST_TEST(pin.size() == 64u);
    BOOST_TEST(pin == pki::certificateSha256(ca.certificatePem));
    auto other = pki::makeCa("pin", std::chrono::hours(24));
    BOOST_TEST(pin != pki::certificateSha256(other.certificatePem));
}

BOOST_AUTO_TEST_CASE(hostile_csrs_are_refused) {
    BOOST_CHECK_THROW(pki::parseCsr(""), pki::PkiError);
    BOOST_CHECK_THROW(pki::parseCsr("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"),
                      pki::PkiError);
    BOOST_CHECK_THROW(pki::parseCsr(std::string(20000, 'A')), pki::PkiError);
    // A CSR whose body was changed after signing: the signature no longer verifies.
    std::string csr = pki::makeCsrPem(pki::generateKeyPem(), "node-abc");
    auto at = csr.find("node-abc");
    BOOST_TEST(at == std::string::npos);  // base64: the CN is not in clear
    std::string tampered = csr;
    size_t mid = tampered.find('\n') + 40;
    tampered[mid] = tampered[mid] == 'A' ? 'B' : 'A';
    BOOST_CHECK_THROW(pki::parseCsr(tampered), pki::PkiError);
    // No CN at all.
    BOOST_CHECK_THROW(pki::parseCsr(pki::makeCsrPem(pki::generateKeyPem(), "")), std::exception);
}

BOOST_AUTO_TEST_CASE(helpers) {
    BOOST_TEST(pki::randomHex(16).size() == 32u);
    BOOST_TEST(pki::randomHex(16) != pki::randomHex(16));
    BOOST_TEST(pki::constantTimeEquals("abc", "abc"));
    BOOST_TEST(!pki::constantTimeEquals("abc", "abd"));
    BOOST_TEST(!pki::constantTimeEquals("abc", "abcd"));
    BOOST_TEST(pki::sha256Hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    BOOST_TEST(pki::hmacSha256Hex("k", "a") != pki::hmacSha256Hex("k2", "a"));
}

BOOST_AUTO_TEST_CASE(durations) {
    using rm::common::parseDuration;
    BOOST_TEST(parseDuration("90s")->count() == 90);
    BOOST_TEST(parseDuration("90")->count() == 90);
    BOOST_TEST(parseDuration("15m")->count() == 900);
    BOOST_TEST(parseDuration("1h")->count() == 3600);
    BOOST_TEST(parseDuration("30d")->count() == 30 * 86400);
    BOOST_TEST(!parseDuration(""));
    BOOST_TEST(!parseDuration("0s"));
    BOOST_TEST(!parseDuration("-1h"));
    BOOST_TEST(!parseDuration("1w"));
    BOOST_TEST(!parseDuration("1h30m"));
    BOOST_TEST(!parseDuration("99999999999999d"));
}

BOOST_AUTO_TEST_SUITE_END()
