#include "service/identity_store.h"

#include "common/pki.h"

namespace rm::service {

namespace pki = common::pki;

namespace {

const std::vector<std::string> kMigrations = {
    "CREATE TABLE join_tokens(id TEXT PRIMARY KEY, secret_sha256 TEXT NOT NULL, "
    "expires_at INTEGER NOT NULL, uses_left INTEGER NOT NULL, description TEXT NOT NULL, "
    "created_at INTEGER NOT NULL);"
    "CREATE TABLE revoked_nodes(node_id TEXT PRIMARY KEY, revoked_at INTEGER NOT NULL);"
    "CREATE TABLE issued_certificates(serial TEXT PRIMARY KEY, node_id TEXT NOT NULL, "
    "not_after INTEGER NOT NULL, issued_at INTEGER NOT NULL);"
    "CREATE INDEX issued_by_node ON issued_certificates(node_id);",
};

std::string randomTokenPart(size_t length) {
    static const char* alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
    std::string out;
    while (out.size() < length) {
        // Rejection sampling keeps every character equally likely (36 does not divide 256).
        std::string bytes = pki::randomHex(length);
        for (size_t i = 0; i + 1 < bytes.size() && out.size() < length; i += 2) {
            int v = std::stoi(bytes.substr(i, 2), nullptr, 16);
            if (v < 252) out += alphabet[v % 36];
        }
    }
    return out;
}

}  // namespace

const char* toString(IdentityStore::TokenCheck check) {
    switch (check) {
        case IdentityStore::TokenCheck::Accepted: return "accepted";
        case IdentityStore::TokenCheck::Malformed: return "malformed";
        case IdentityStore::TokenCheck::Unknown: return "unknown";
        case IdentityStore::TokenCheck::Expired: return "expired";
        case IdentityStore::TokenCheck::UsedUp: return "used up";
    }
    return "?";
}

IdentityStore::IdentityStore(const std::filesystem::path& file) : db_(file, kMigrations) {
    db_.read([&](common::Database::Lock& db) {
        auto& q = db.prepare("SELECT node_id FROM revoked_nodes");
        while (q.step()) revoked_.insert(q.text(0));
    });
}

std::string IdentityStore::createToken(int64_t ttlMs, int uses, const std::string& description,
                                       int64_t nowMs) {
    std::string id = randomTokenPart(6);
    std::string secret = randomTokenPart(16);
    db_.transaction([&](common::Database::Lock& db) {
        db.prepare(
              "INSERT INTO join_tokens(id, secret_sha256, expires_at, uses_left, description, "
              "created_at) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(1, id)
            .bind(2, pki::sha256Hex(secret))
            .bind(3, nowMs + ttlMs)
            .bind(4, uses > 0 ? uses : -1)
            .bind(5, description)
            .bind(6, nowMs)
            .run();
    });
    return id + "." + secret;
}

std::vector<JoinTokenRow> IdentityStore::listTokens(int64_t nowMs) {
    std::vector<JoinTokenRow> rows;
    db_.read([&](common::Database::Lock& db) {
        auto& q = db.prepare(
            "SELECT id, expires_at, uses_left, description FROM join_tokens WHERE expires_at > ? "
            "AND uses_left != 0 ORDER BY expires_at");
        q.bind(1, nowMs);
        while (q.step()) {
            rows.push_back({q.text(0), q.integer(1), static_cast<int>(q.integer(2)), q.text(3)});
        }
    });
    return rows;
}

bool IdentityStore::revokeToken(const std::string& id) {
    bool found = false;
    db_.transaction([&](common::Database::Lock& db) {
        db.prepare("DELETE FROM join_tokens WHERE id = ?").bind(1, id).run();
        found = db.changes() > 0;
    });
    return found;
}

IdentityStore::TokenCheck IdentityStore::consumeToken(const std::string& token, int64_t nowMs) {
    auto parsed = parseJoinToken(token);
    if (!parsed) return TokenCheck::Malformed;
    TokenCheck result = TokenCheck::Unknown;
    db_.transaction([&](common::Database::Lock& db) {
        auto& q = db.prepare("SELECT secret_sha256, expires_at, uses_left FROM join_tokens WHERE id = ?");
        q.bind(1, parsed->id);
        if (!q.step()) return;
        std::string hash = q.text(0);
        int64_t expires = q.integer(1);
        int64_t usesLeft = q.integer(2);
        if (!pki::constantTimeEquals(hash, pki::sha256Hex(parsed->secret))) return;
        if (expires <= nowMs) {
            result = TokenCheck::Expired;
            return;
        }
        if (usesLeft == 0) {
            result = TokenCheck::UsedUp;
            return;
        }
        if (usesLeft > 0) {
            db.prepare("UPDATE join_tokens SET uses_left = uses_left - 1 WHERE id = ?")
                .bind(1, parsed->id)
                .run();
        }
        result = TokenCheck::Accepted;
    });
    return result;
}

void IdentityStore::revokeNode(const std::string& nodeId, int64_t nowMs) {
    db_.transaction([&](common::Database::Lock& db) {
        db.prepare("INSERT OR IGNORE INTO revoked_nodes(node_id, revoked_at) VALUES (?, ?)")
            .bind(1, nodeId)
            .bind(2, nowMs)
            .run();
    });
    std::lock_guard lock(mutex_);
    revoked_.insert(nodeId);
}

bool IdentityStore::isRevoked(const std::string& nodeId) const {
    std::lock_guard lock(mutex_);
    return revoked_.count(nodeId) > 0;
}

void IdentityStore::recordIssued(const std::string& nodeId, const std::string& serialHex,
                                 int64_t notAfterMs, int64_t nowMs) {
    db_.transaction([&](common::Database::Lock& db) {
        db.prepare(
              "INSERT OR REPLACE INTO issued_certificates(serial, node_id, not_after, issued_at) "
              "VALUES (?, ?, ?, ?)")
            .bind(1, serialHex)
            .bind(2, nodeId)
            .bind(3, notAfterMs)
            .bind(4, nowMs)
            .run();
    });
}

bool IdentityStore::wasIssued(const std::string& nodeId) {
    bool issued = false;
    db_.read([&](common::Database::Lock& db) {
        auto& q = db.prepare("SELECT 1 FROM issued_certificates WHERE node_id = ? LIMIT 1");
        q.bind(1, nodeId);
        issued = q.step();
    });
    return issued;
}

}  // namespace rm::service
