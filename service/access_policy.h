// Who may read and change the scope. With no users file every caller may (a loopback demo); with
// one, every operation but /healthz needs HTTP Basic credentials of a listed user whose role
// suffices for this scope: reads need `reader`, changes `operator` (admin ⊇ operator ⊇ reader).
// File format (mode 0600 or stricter), one user per line, `#` starts a comment line:
//   name:HASH:role[:scope,scope...]
// HASH is an Argon2id string ($argon2id$v=19$m=...,t=...,p=...$salt$hash) as printed by
// `rmctl hash-password`; role is reader, operator or admin; no scopes = any scope this RM manages.
// Failed logins are rate-limited per peer address.
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace rm::service {

enum class Role { Reader = 1, Operator = 2, Admin = 3 };

const char* toString(Role role);
std::optional<Role> parseRole(const std::string& text);

// Why a call was refused. Unauthenticated and Throttled answer HTTP 401 (ask for credentials),
// Forbidden (known user, role or scope insufficient) HTTP 403. The reason never holds a password.
struct AccessDenial {
    enum class Kind { Unauthenticated, Throttled, Forbidden };
    Kind kind;
    std::string reason;
    bool askForCredentials() const { return kind != Kind::Forbidden; }
};

// Failed logins per peer address: after `freeFailures` failures (each forgotten `forgetAfter`
// after the last one), the peer is refused without verifying for a back-off that starts at
// `firstBackoff` and doubles with each further failure up to `maxBackoff`; a success forgets the
// peer. Thread-safe; remembers at most `maxPeers` peers (the stalest are dropped first).
class LoginThrottle {
public:
    using Clock = std::chrono::steady_clock;
    struct Options {
        int freeFailures = 5;
        std::chrono::seconds firstBackoff{2};
        std::chrono::seconds maxBackoff{60};
        std::chrono::seconds forgetAfter{600};
        size_t maxPeers = 10000;
    };
    LoginThrottle() : LoginThrottle(Options{}) {}
    explicit LoginThrottle(Options options) : options_(options) {}

    // How much longer `peer` is refused; nullopt when it may try.
    std::optional<std::chrono::milliseconds> blocked(const std::string& peer, Clock::time_point now);
    void failed(const std::string& peer, Clock::time_point now);
    void succeeded(const std::string& peer);
    size_t trackedPeers() const;

private:
    struct Peer {
        int failures = 0;
        Clock::time_point lastFailure;
        Clock::time_point blockedUntil;
        std::chrono::seconds backoff{0};
    };
    void makeRoom(Clock::time_point now);

    Options options_;
    mutable std::mutex mutex_;
    std::map<std::string, Peer> peers_;
};

class AccessPolicy {
public:
    // Open policy: everyone allowed.
    AccessPolicy();
    ~AccessPolicy();
    AccessPolicy(AccessPolicy&&) noexcept;
    AccessPolicy& operator=(AccessPolicy&&) noexcept;

    // Throws std::runtime_error naming the file (and line) on a file others may read, a malformed
    // entry, or a password hash that is not Argon2id (saying to use `rmctl hash-password`).
    static AccessPolicy fromFile(const std::filesystem::path& file,
                                 LoginThrottle::Options throttle = {});

    bool open() const { return users_.empty(); }
    size_t userCount() const { return users_.size(); }

    // nullopt when `user` with `password` may do what needs `needed` in `scope`, else why not.
    // `peer` (the caller's address) keys the rate limit of failed logins. Thread-safe.
    std::optional<AccessDenial> check(const char* user, const char* password, const std::string& scope,
                                      Role needed, const std::string& peer) const;

    // An Argon2id string for a users file (libsodium crypto_pwhash_str, interactive limits:
    // ~0.1 s and 64 MiB per verification). Throws std::runtime_error when out of memory.
    static std::string hashPassword(const std::string& password);
    // Whether `password` matches the Argon2id string `hash` (libsodium crypto_pwhash_str_verify).
    static bool verifyPassword(const std::string& hash, const std::string& password);

private:
    struct User {
        std::string passwordHash;
        Role role = Role::Reader;
        std::vector<std::string> scopes;  // empty: any scope
    };
    struct Shared;  // throttle, verification cache, bound on concurrent verifications
    std::map<std::string, User> users_;
    std::unique_ptr<Shared> shared_;
};

}  // namespace rm::service
