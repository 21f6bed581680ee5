// This node's identity in its scope (SPEC section 10), as kubelet's TLS bootstrap does it: the
// first start enrolls with a join token (EnrollNode) after checking the RM's CA against the
// `--ca-sha256` pin; the issued certificate (subject = the node ID) and its key are kept in
// `<root>/pki/<slot>/` and used for every later call in both directions; the certificate is
// renewed over its own mTLS identity at two thirds of its life (RenewNodeCertificate).
// Free functions with no shared state: call them from any thread, one caller per slot directory.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "common/log.h"
#include "common/tls.h"

namespace rm::agent {

struct NodeCredentials {
    std::filesystem::path keyFile;  // node.pem: private key + certificate
    std::filesystem::path caFile;   // ca.pem: the scope CA
    std::string nodeId;
    int64_t notBeforeMs = 0;
    int64_t notAfterMs = 0;

    // What this node presents and trusts when it calls the RM (the RM is known by identity).
    common::TlsClientOptions clientOptions() const;
    // What this node's Deployer port serves with: only clients of the scope CA get in.
    common::TlsOptions serverOptions() const;
    // When to renew: two thirds into the certificate's life.
    int64_t renewAtMs() const { return notBeforeMs + (notAfterMs - notBeforeMs) * 2 / 3; }
};

struct EnrollmentOptions {
    std::string managerUrl;  // the RM's agent port, https://
    std::string joinToken;   // ID.SECRET, only needed the first time
    std::string caSha256;    // pin of the scope CA, only needed the first time
    std::chrono::seconds callTimeout{10};
};

// The credentials kept in `dir` for `nodeId`, if they are complete, consistent (the certificate
// names the node and chains to the kept CA) and not expired.
std::optional<NodeCredentials> loadCredentials(const std::filesystem::path& dir,
                                               const std::string& nodeId);

// Enrolls `nodeId` with the RM and keeps the credentials in `dir`. Throws std::runtime_error
// saying what failed; EnrollmentRefused when the RM or the pin says no (retrying will not help).
NodeCredentials enroll(const std::filesystem::path& dir, const std::string& nodeId,
                       const EnrollmentOptions& options, common::Logger& logger);

// Asks the RM for a new certificate (and key) over the current identity; replaces the files in
// `dir` atomically and returns the new credentials. Throws std::runtime_error.
NodeCredentials renew(const std::filesystem::path& dir, const NodeCredentials& current,
                      const std::string& managerUrl, std::chrono::seconds callTimeout,
                      common::Logger& logger);

class EnrollmentRefused : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// True for 64 hexadecimal digits (a SHA-256 pin).
bool isSha256Hex(const std::string& text);

}  // namespace rm::agent
