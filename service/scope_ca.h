// The scope CA (SPEC section 10): created in the RM's state at first start, it signs the RM's
// own certificate (identity pki::kRmIdentity, shown on the agent port and when calling agents)
// and the certificates of enrolled nodes (identity = node ID). Files, all in `dir` (0700):
//   ca.key (0600)  ca.pem  rm.pem (0600, key + certificate)  callback.key (0600)
// Immutable after construction except for the RM certificate's renewal at start; every const
// method may be called from any thread.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "common/log.h"
#include "common/pki.h"

namespace rm::service {

class ScopeCa {
  public:
    // Loads the CA from `dir`, creating it (and the directory) on first start; issues the RM's
    // certificate when missing or past two thirds of its life, naming `hosts` (DNS names or IP
    // addresses) besides localhost. Throws std::runtime_error naming the file that is unusable.
    ScopeCa(const std::filesystem::path& dir, const std::string& scope,
            const std::vector<std::string>& hosts, common::Logger& logger);

    const std::string& caPem() const { return ca_.certificatePem; }
    // The pin agents check (`--ca-sha256`).
    const std::string& caSha256() const { return caSha256_; }
    std::filesystem::path caFile() const { return dir_ / "ca.pem"; }
    // The RM's key and certificate in one PEM, as gSOAP and Poco take them.
    std::filesystem::path rmKeyFile() const { return dir_ / "rm.pem"; }
    int64_t caNotAfterMs() const { return caNotAfterMs_; }
    // A secret of this scope for deriving unguessable identifiers (callback IDs).
    const std::string& callbackSecret() const { return callbackSecret_; }

    // Signs a certificate for node `nodeId` carrying the key of a parsed CSR.
    std::string issueNodeCertificate(const common::pki::CsrInfo& csr, const std::string& nodeId,
                                     std::chrono::seconds ttl) const;

  private:
    std::filesystem::path dir_;
    common::pki::KeyAndCertificate ca_;
    std::string caSha256_;
    int64_t caNotAfterMs_ = 0;
    std::string callbackSecret_;
};

}  // namespace rm::service
