#include "service/scope_ca.h"

#include <sys/stat.h>
#include <unistd.h>

#include <stdexcept>

#include "common/durable_file.h"
#include "common/time_util.h"

namespace rm::service {

namespace fs = std::filesystem;
using common::Log;
using common::LogLevel;
namespace pki = common::pki;

namespace {

constexpr std::chrono::seconds kCaValidity{10LL * 365 * 24 * 3600};
constexpr std::chrono::seconds kRmValidity{365LL * 24 * 3600};
constexpr int64_t kCaWarnBeforeMs = 90LL * 24 * 3600 * 1000;

// Splits a PEM bundle holding a private key and a certificate.
pki::KeyAndCertificate splitKeyAndCertificate(const std::string& pem) {
    auto certAt = pem.find("-----BEGIN CERTIFICATE-----");
    if (certAt == std::string::npos) throw pki::PkiError("no certificate in the PEM bundle");
    return {pem.substr(0, certAt), pem.substr(certAt)};
}

bool isIpAddress(const std::string& host) {
    return host.find_first_not_of("0123456789.") == std::string::npos ||
           host.find(':') != std::string::npos;
}

}  // namespace

ScopeCa::ScopeCa(const fs::path& dir, const std::string& scope, const std::vector<std::string>& hosts,
                 common::Logger& logger)
    : dir_(dir) {
    fs::create_directories(dir_);
    ::chmod(dir_.c_str(), 0700);
    try {
        if (fs::exists(dir_ / "ca.key") && fs::exists(dir_ / "ca.pem")) {
            ca_ = {common::readWholeFile(dir_ / "ca.key"), common::readWholeFile(dir_ / "ca.pem")};
        } else {
            ca_ = pki::makeCa("scope CA " + scope, kCaValidity);
            // The key first: a CA certificate without its key would be unusable after a crash.
            common::writeFileAtomically(dir_ / "ca.key", ca_.keyPem, 0600);
            common::writeFileAtomically(dir_ / "ca.pem", ca_.certificatePem, 0644);
            Log(logger, LogLevel::info, "scope_ca_created").kv("dir", dir_.string());
        }
        caSha256_ = pki::certificateSha256(ca_.certificatePem);
        caNotAfterMs_ = pki::inspectCertificate(ca_.certificatePem).notAfterMs;

        if (!fs::exists(dir_ / "callback.key")) {
            common::writeFileAtomically(dir_ / "callback.key", pki::randomHex(32), 0600);
        }
        callbackSecret_ = common::readWholeFile(dir_ / "callback.key");

        bool renew = true;
        if (fs::exists(rmKeyFile())) {
            auto current = splitKeyAndCertificate(common::readWholeFile(rmKeyFile()));
            auto info = pki::inspectCertificate(current.certificatePem);
            int64_t now = common::nowMillis();
            renew = !pki::verifyCertificate(current.certificatePem, ca_.certificatePem) ||
                    now > info.notBeforeMs + (info.notAfterMs - info.notBeforeMs) * 2 / 3;
        }
        if (renew) {
            std::string key = pki::generateKeyPem();
            pki::IssueRequest request;
            request.publicKeyPem = pki::parseCsr(pki::makeCsrPem(key, pki::kRmIdentity)).publicKeyPem;
            request.commonName = pki::kRmIdentity;
            request.validity = kRmValidity;
            request.dnsNames = {"localhost"};
            request.ipAddresses = {"127.0.0.1", "::1"};
            for (const auto& host : hosts) {
                if (host.empty() || host == "0.0.0.0" || host == "::" || host == "localhost" ||
                    host == "127.0.0.1" || host == "::1")
                    continue;
                (isIpAddress(host) ? request.ipAddresses : request.dnsNames).push_back(host);
            }
            common::writeFileAtomically(rmKeyFile(), key + pki::issueCertificate(ca_, request), 0600);
            Log(logger, LogLevel::info, "rm_certificate_issued").kv("file", rmKeyFile().string());
        }
    } catch (const std::exception& e) {
        throw std::runtime_error("the scope CA in " + dir_.string() + " is unusable: " + e.what() +
                                 " (move the directory away to create a new CA; every agent must "
                                 "then enroll again)");
    }
    int64_t left = caNotAfterMs_ - common::nowMillis();
    if (left < kCaWarnBeforeMs) {
        Log(logger, LogLevel::warn, "scope_ca_expiring")
            .kv("days_left", left / (24 * 3600 * 1000))
            .kv("hint", "create a new CA and enroll every agent again before it expires");
    }
}

std::string ScopeCa::issueNodeCertificate(const pki::CsrInfo& csr, const std::string& nodeId,
                                          std::chrono::seconds ttl) const {
    pki::IssueRequest request;
    request.publicKeyPem = csr.publicKeyPem;
    request.commonName = nodeId;
    request.validity = ttl;
    return pki::issueCertificate(ca_, request);
}

}  // namespace rm::service
