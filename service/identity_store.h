// Who may join the scope and who has been removed from it (SPEC section 10): join tokens, stored
// hashed, and the nodes whose certificates are revoked. Kept in its own SQLite file
// (STATE/identity.db) beside the scope store.
// Thread-safe: every method may be called from any thread (one connection behind the
// Database lock); isRevoked() reads an in-memory set guarded by mutex_.
#pragma once

#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/storage.h"
#include "service/join_token.h"

namespace rm::service {

struct JoinTokenRow {
    std::string id;
    int64_t expiresMs = 0;
    int usesLeft = -1;  // -1: any number until it expires
    std::string description;
};

class IdentityStore {
  public:
    explicit IdentityStore(const std::filesystem::path& file);

    // A new token valid for `ttlMs`, for `uses` enrollments (0: unlimited). Returns ID.SECRET.
    std::string createToken(int64_t ttlMs, int uses, const std::string& description, int64_t nowMs);
    // Live tokens (not expired, not used up), soonest to expire first.
    std::vector<JoinTokenRow> listTokens(int64_t nowMs);
    // False when no such token exists.
    bool revokeToken(const std::string& id);

    enum class TokenCheck { Accepted, Malformed, Unknown, Expired, UsedUp };
    // Checks the token and, when it is accepted, uses it once: both in one transaction.
    TokenCheck consumeToken(const std::string& token, int64_t nowMs);

    // Removes node `nodeId` from the scope: its certificates are refused from now on.
    void revokeNode(const std::string& nodeId, int64_t nowMs);
    bool isRevoked(const std::string& nodeId) const;
    // Records a certificate issued to a node (serial, expiry), for audit.
    void recordIssued(const std::string& nodeId, const std::string& serialHex, int64_t notAfterMs,
                      int64_t nowMs);
    // True when a certificate was ever issued to `nodeId` (an ID is enrolled only once).
    bool wasIssued(const std::string& nodeId);

  private:
    common::Database db_;
    mutable std::mutex mutex_;  // guards revoked_
    std::set<std::string> revoked_;
};

const char* toString(IdentityStore::TokenCheck check);

}  // namespace rm::service
