#include "common/pki.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <ctime>
#include <memory>

namespace rm::common::pki {

namespace {

// Largest PEM text we parse from outside (a CSR of a 4096-bit RSA key is ~2 KB).
constexpr size_t kMaxPemBytes = 16 * 1024;

template <class T, void (*Free)(T*)>
struct Deleter {
    void operator()(T* p) const { Free(p); }
};
using Bio = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using Key = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using Req = std::unique_ptr<X509_REQ, Deleter<X509_REQ, X509_REQ_free>>;
using Store = std::unique_ptr<X509_STORE, Deleter<X509_STORE, X509_STORE_free>>;
using StoreCtx = std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX, X509_STORE_CTX_free>>;
using Ext = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION, X509_EXTENSION_free>>;

Bio readBio(const std::string& text) {
    if (text.size() > kMaxPemBytes) throw PkiError("PEM input larger than 16 KiB");
    Bio bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
    if (!bio) throw PkiError("out of memory");
    return bio;
}

std::string bioText(BIO* bio) {
    char* data = nullptr;
    long size = BIO_get_mem_data(bio, &data);
    return std::string(data, static_cast<size_t>(size));
}

Key readKey(const std::string& pem) {
    Bio bio = readBio(pem);
    Key key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
    if (!key) throw PkiError("not a PEM private key");
    return key;
}

Key readPublicKey(const std::string& pem) {
    Bio bio = readBio(pem);
    Key key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
    if (!key) throw PkiError("not a PEM public key");
    return key;
}

Cert readCert(const std::string& pem) {
    Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    Cert cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!cert) throw PkiError("not a PEM certificate");
    return cert;
}

std::string writeCert(X509* cert) {
    Bio bio(BIO_new(BIO_s_mem()));
    if (!PEM_write_bio_X509(bio.get(), cert)) throw PkiError("cannot encode a certificate");
    return bioText(bio.get());
}

std::string commonNameOf(X509_NAME* name) {
    int index = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (index < 0) return {};
    if (X509_NAME_get_index_by_NID(name, NID_commonName, index) >= 0) return {};  // two CNs
    ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
    unsigned char* utf8 = nullptr;
    int length = ASN1_STRING_to_UTF8(&utf8, data);
    if (length < 0) return {};
    std::string cn(reinterpret_cast<char*>(utf8), static_cast<size_t>(length));
    OPENSSL_free(utf8);
    if (cn.find('\0') != std::string::npos) return {};
    return cn;
}

int64_t asn1TimeMs(const ASN1_TIME* t) {
    struct tm tm {};
    if (!ASN1_TIME_to_tm(t, &tm)) return 0;
    return static_cast<int64_t>(timegm(&tm)) * 1000;
}

void addExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    Ext ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
    if (!ext || !X509_add_ext(cert, ext.get(), -1))
        throw PkiError("cannot add certificate extension " + value);
}

void setSerialAndValidity(X509* cert, std::chrono::seconds validity) {
    unsigned char serial[16];
    if (RAND_bytes(serial, sizeof serial) != 1) throw PkiError("no randomness for a serial");
    serial[0] &= 0x7f;  // positive
    std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>> bn(BN_bin2bn(serial, sizeof serial, nullptr));
    BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert));
    X509_set_version(cert, 2);
    // Backdated a little for clock skew, never so much that a short-lived certificate would be
    // due for renewal (two thirds into its life) the moment it is issued.
    long skew = static_cast<long>(std::min<int64_t>(60, validity.count() / 10));
    X509_gmtime_adj(X509_getm_notBefore(cert), -skew);
    X509_gmtime_adj(X509_getm_notAfter(cert), static_cast<long>(validity.count()));
}

void setSubject(X509* cert, const std::string& commonName) {
    X509_NAME* name = X509_get_subject_name(cert);
    if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                    reinterpret_cast<const unsigned char*>(commonName.c_str()), -1,
                                    -1, 0))
        throw PkiError("cannot set the subject CN");
}

std::string toHex(const unsigned char* data, size_t size) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    out.reserve(size * 2);
    for (size_t i = 0; i < size; ++i) {
        out += digits[data[i] >> 4];
        out += digits[data[i] & 15];
    }
    return out;
}

bool acceptableKey(EVP_PKEY* key) {
    int type = EVP_PKEY_get_base_id(key);
    if (type == EVP_PKEY_EC) {
        char group[64] = {};
        size_t length = 0;
        if (!EVP_PKEY_get_utf8_string_param(key, "group", group, sizeof group, &length))
            return false;
        return std::string(group) == "prime256v1" || std::string(group) == "secp384r1";
    }
    if (type == EVP_PKEY_RSA)
        return EVP_PKEY_get_bits(key) >= 2048 && EVP_PKEY_get_bits(key) <= 8192;
    return type == EVP_PKEY_ED25519;
}

}  // namespace

std::string generateKeyPem() {
    Key key(EVP_EC_gen("P-256"));
    if (!key) throw PkiError("cannot generate an EC P-256 key");
    Bio bio(BIO_new(BIO_s_mem()));
    if (!PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr))
        throw PkiError("cannot encode a private key");
    return bioText(bio.get());
}

KeyAndCertificate makeCa(const std::string& commonName, std::chrono::seconds validity) {
    KeyAndCertificate ca;
    ca.keyPem = generateKeyPem();
    Key key = readKey(ca.keyPem);
    Cert cert(X509_new());
    setSerialAndValidity(cert.get(), validity);
    setSubject(cert.get(), commonName);
    X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get()));
    X509_set_pubkey(cert.get(), key.get());
    addExtension(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
    addExtension(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign");
    addExtension(cert.get(), cert.get(), NID_subject_key_identifier, "hash");
    if (!X509_sign(cert.get(), key.get(), EVP_sha256()))
        throw PkiError("cannot sign the CA certificate");
    ca.certificatePem = writeCert(cert.get());
    return ca;
}

std::string makeCsrPem(const std::string& keyPem, const std::string& commonName) {
    Key key = readKey(keyPem);
    Req req(X509_REQ_new());
    X509_REQ_set_version(req.get(), 0);
    X509_NAME* name = X509_REQ_get_subject_name(req.get());
    if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                    reinterpret_cast<const unsigned char*>(commonName.c_str()), -1,
                                    -1, 0))
        throw PkiError("cannot set the CSR's CN");
    X509_REQ_set_pubkey(req.get(), key.get());
    if (!X509_REQ_sign(req.get(), key.get(), EVP_sha256())) throw PkiError("cannot sign the CSR");
    Bio bio(BIO_new(BIO_s_mem()));
    if (!PEM_write_bio_X509_REQ(bio.get(), req.get())) throw PkiError("cannot encode the CSR");
    return bioText(bio.get());
}

CsrInfo parseCsr(const std::string& pem) {
    Bio bio = readBio(pem);
    Req req(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
    if (!req) throw PkiError("not a PEM certificate signing request");
    Key key(X509_REQ_get_pubkey(req.get()));
    if (!key) throw PkiError("the CSR carries no usable public key");
    if (!acceptableKey(key.get()))
        throw PkiError("the CSR's key is not EC P-256/P-384, Ed25519 or RSA of 2048-8192 bits");
    if (X509_REQ_verify(req.get(), key.get()) != 1)
        throw PkiError("the CSR's signature does not verify");
    CsrInfo info;
    info.commonName = commonNameOf(X509_REQ_get_subject_name(req.get()));
    if (info.commonName.empty()) throw PkiError("the CSR needs exactly one subject CN");
    Bio out(BIO_new(BIO_s_mem()));
    if (!PEM_write_bio_PUBKEY(out.get(), key.get())) throw PkiError("cannot encode the CSR's key");
    info.publicKeyPem = bioText(out.get());
    return info;
}

std::string issueCertificate(const KeyAndCertificate& ca, const IssueRequest& request) {
    Key caKey = readKey(ca.keyPem);
    Cert caCert = readCert(ca.certificatePem);
    Key subjectKey = readPublicKey(request.publicKeyPem);
    Cert cert(X509_new());
    setSerialAndValidity(cert.get(), request.validity);
    // Never outlive the CA.
    if (X509_cmp_time(X509_get0_notAfter(caCert.get()), nullptr) > 0 &&
        ASN1_TIME_compare(X509_get0_notAfter(cert.get()), X509_get0_notAfter(caCert.get())) > 0) {
        X509_set1_notAfter(cert.get(), X509_get0_notAfter(caCert.get()));
    }
    setSubject(cert.get(), request.commonName);
    X509_set_issuer_name(cert.get(), X509_get_subject_name(caCert.get()));
    X509_set_pubkey(cert.get(), subjectKey.get());
    addExtension(cert.get(), caCert.get(), NID_basic_constraints, "critical,CA:FALSE");
    addExtension(cert.get(), caCert.get(), NID_key_usage,
                 "critical,digitalSignature,keyEncipherment");
    std::string usages;
    if (request.serverAuth) usages += "serverAuth";
    if (request.clientAuth) usages += std::string(usages.empty() ? "" : ",") + "clientAuth";
    if (!usages.empty()) addExtension(cert.get(), caCert.get(), NID_ext_key_usage, usages);
    addExtension(cert.get(), caCert.get(), NID_authority_key_identifier, "keyid:always");
    std::string san;
    for (const auto& dns : request.dnsNames)
        san += (san.empty() ? "" : ",") + std::string("DNS:") + dns;
    for (const auto& ip : request.ipAddresses)
        san += (san.empty() ? "" : ",") + std::string("IP:") + ip;
    if (!san.empty()) addExtension(cert.get(), caCert.get(), NID_subject_alt_name, san);
    if (!X509_sign(cert.get(), caKey.get(), EVP_sha256()))
        throw PkiError("cannot sign a certificate");
    return writeCert(cert.get());
}

CertificateInfo inspectCertificate(const std::string& certificatePem) {
    if (certificatePem.size() > 4 * kMaxPemBytes) throw PkiError("certificate text too large");
    Cert cert = readCert(certificatePem);
    CertificateInfo info;
    info.commonName = commonNameOf(X509_get_subject_name(cert.get()));
    info.notBeforeMs = asn1TimeMs(X509_get0_notBefore(cert.get()));
    info.notAfterMs = asn1TimeMs(X509_get0_notAfter(cert.get()));
    const ASN1_INTEGER* serial = X509_get0_serialNumber(cert.get());
    info.serialHex = toHex(serial->data, static_cast<size_t>(serial->length));
    return info;
}

std::string certificateSha256(const std::string& certificatePem) {
    Cert cert = readCert(certificatePem);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    if (!X509_digest(cert.get(), EVP_sha256(), digest, &size))
        throw PkiError("cannot hash a certificate");
    return toHex(digest, size);
}

bool verifyCertificate(const std::string& certificatePem, const std::string& caPem) {
    try {
        Cert cert = readCert(certificatePem);
        Cert ca = readCert(caPem);
        Store store(X509_STORE_new());
        X509_STORE_add_cert(store.get(), ca.get());
        StoreCtx ctx(X509_STORE_CTX_new());
        X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr);
        return X509_verify_cert(ctx.get()) == 1;
    } catch (const PkiError&) {
        return false;
    }
}

std::string randomHex(size_t bytes) {
    std::string raw(bytes, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1)
        throw PkiError("no randomness available");
    return toHex(reinterpret_cast<const unsigned char*>(raw.data()), bytes);
}

std::string sha256Hex(const std::string& text) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    EVP_Digest(text.data(), text.size(), digest, &size, EVP_sha256(), nullptr);
    return toHex(digest, size);
}

bool constantTimeEquals(const std::string& a, const std::string& b) {
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string hmacSha256Hex(const std::string& key, const std::string& text) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest, &size);
    return toHex(digest, size);
}

}  // namespace rm::common::pki
