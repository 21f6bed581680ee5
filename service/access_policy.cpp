#include "service/access_policy.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <semaphore>
#include <stdexcept>
#include <string_view>

namespace rm::service {

namespace {

constexpr size_t kMaxFileBytes = 4u << 20;
// What one stored hash may ask of each login: more would let the users file make every
// verification (and so every request) a denial of service of its own.
constexpr unsigned long kMaxMemoryKiB = 1u << 20;  // 1 GiB, libsodium's "sensitive" level
constexpr unsigned long kMaxPasses = 16;
constexpr unsigned long kMaxLanes = 16;
// Argon2 verifications running at once (each takes ~64 MiB with hashPassword()'s limits).
constexpr std::ptrdiff_t kConcurrentVerifications = 4;
// A verified user+password is remembered (as a keyed BLAKE2b digest) this long, so that a
// client polling a report does not pay for Argon2 on every call.
constexpr auto kVerifiedFor = std::chrono::minutes(5);
constexpr size_t kMaxVerified = 1024;

const char* const kFixCommand = "rmctl hash-password";

void ensureSodium() {
    static const int ready = sodium_init();
    if (ready < 0) throw std::runtime_error("libsodium could not be initialised");
}

bool printableToken(std::string_view text) {
    if (text.empty()) return false;
    for (unsigned char c : text) {
        if (c <= 0x20 || c == 0x7f) return false;
    }
    return true;
}

bool isHex64(std::string_view text) {
    return text.size() == 64 && text.find_first_not_of("0123456789abcdefABCDEF") == std::string_view::npos;
}

// Reads "NAME=<digits>" at the start of `text`, moving past it.
bool takeNumber(std::string_view& text, std::string_view name, unsigned long& value) {
    if (text.substr(0, name.size()) != name) return false;
    text.remove_prefix(name.size());
    size_t digits = 0;
    value = 0;
    while (digits < text.size() && digits < 10 && text[digits] >= '0' && text[digits] <= '9') {
        value = value * 10 + static_cast<unsigned long>(text[digits] - '0');
        ++digits;
    }
    if (digits == 0 || (digits < text.size() && text[digits] >= '0' && text[digits] <= '9')) return false;
    text.remove_prefix(digits);
    return true;
}

bool isBase64(std::string_view text) {
    return !text.empty() &&
           text.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") ==
               std::string_view::npos;
}

// nullopt when `hash` is a usable Argon2id string, else what is wrong with it.
std::optional<std::string> argon2idProblem(std::string_view hash) {
    const std::string_view prefix = crypto_pwhash_argon2id_STRPREFIX;
    if (hash.size() >= crypto_pwhash_STRBYTES) return "the Argon2id string is too long";
    std::string_view rest = hash.substr(prefix.size());
    unsigned long version = 0, memory = 0, passes = 0, lanes = 0;
    if (!takeNumber(rest, "v=", version) || !takeNumber(rest, "$m=", memory) ||
        !takeNumber(rest, ",t=", passes) || !takeNumber(rest, ",p=", lanes) || rest.empty() || rest[0] != '$') {
        return "the Argon2id string is malformed (expected $argon2id$v=19$m=M,t=T,p=P$SALT$HASH)";
    }
    rest.remove_prefix(1);
    auto dollar = rest.find('$');
    if (version != 19 || dollar == std::string_view::npos || !isBase64(rest.substr(0, dollar)) ||
        !isBase64(rest.substr(dollar + 1))) {
        return "the Argon2id string is malformed (expected $argon2id$v=19$m=M,t=T,p=P$SALT$HASH)";
    }
    if (memory > kMaxMemoryKiB || passes > kMaxPasses || lanes > kMaxLanes || passes == 0 || lanes == 0) {
        return "the Argon2id parameters (m=" + std::to_string(memory) + ",t=" + std::to_string(passes) +
               ",p=" + std::to_string(lanes) + ") are out of bounds (at most m=" + std::to_string(kMaxMemoryKiB) +
               ",t=" + std::to_string(kMaxPasses) + ",p=" + std::to_string(kMaxLanes) + ")";
    }
    // libsodium decodes and checks the whole string (salt and output lengths, m >= 8p).
    char buffer[crypto_pwhash_STRBYTES] = {};
    std::memcpy(buffer, hash.data(), hash.size());
    if (crypto_pwhash_str_needs_rehash(buffer, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                       crypto_pwhash_MEMLIMIT_INTERACTIVE) < 0) {
        return "libsodium cannot decode the Argon2id string (salt, hash or parameters invalid)";
    }
    return std::nullopt;
}

std::string octalMode(mode_t mode) {
    char text[8];
    std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
    return text;
}

std::string readPrivateFile(const std::filesystem::path& file) {
    const std::string name = file.string();
    int fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error("cannot read users file " + name + ": " + std::strerror(errno));
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};
    struct stat st{};
    if (::fstat(fd, &st) != 0) throw std::runtime_error("cannot stat users file " + name + ": " + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) throw std::runtime_error("users file " + name + " is not a regular file");
    if ((st.st_mode & 077) != 0) {
        throw std::runtime_error("users file " + name + " has mode " + octalMode(st.st_mode) +
                                 ": it holds password hashes and must not be readable by group or others; "
                                 "run `chmod 600 " + name + "`");
    }
    if (static_cast<uint64_t>(st.st_size) > kMaxFileBytes) {
        throw std::runtime_error("users file " + name + " is larger than " + std::to_string(kMaxFileBytes) + " bytes");
    }
    std::string text;
    char buffer[65536];
    for (;;) {
        ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw std::runtime_error("cannot read users file " + name + ": " + std::strerror(errno));
        if (n == 0) break;
        text.append(buffer, static_cast<size_t>(n));
        if (text.size() > kMaxFileBytes) {
            throw std::runtime_error("users file " + name + " is larger than " + std::to_string(kMaxFileBytes) + " bytes");
        }
    }
    return text;
}

std::vector<std::string> splitFields(const std::string& line) {
    std::vector<std::string> fields;
    size_t start = 0;
    for (;;) {
        size_t colon = line.find(':', start);
        fields.push_back(line.substr(start, colon == std::string::npos ? std::string::npos : colon - start));
        if (colon == std::string::npos) break;
        start = colon + 1;
    }
    return fields;
}

}  // namespace

const char* toString(Role role) {
    switch (role) {
        case Role::Reader: return "reader";
        case Role::Operator: return "operator";
        case Role::Admin: return "admin";
    }
    return "?";
}

std::optional<Role> parseRole(const std::string& text) {
    if (text == "reader") return Role::Reader;
    if (text == "operator") return Role::Operator;
    if (text == "admin") return Role::Admin;
    return std::nullopt;
}

// ---- LoginThrottle ------------------------------------------------------------------------

std::optional<std::chrono::milliseconds> LoginThrottle::blocked(const std::string& peer, Clock::time_point now) {
    std::lock_guard lock(mutex_);
    auto it = peers_.find(peer);
    if (it == peers_.end() || it->second.blockedUntil <= now) return std::nullopt;
    return std::chrono::duration_cast<std::chrono::milliseconds>(it->second.blockedUntil - now);
}

void LoginThrottle::failed(const std::string& peer, Clock::time_point now) {
    std::lock_guard lock(mutex_);
    auto it = peers_.find(peer);
    if (it == peers_.end()) {
        makeRoom(now);
        it = peers_.emplace(peer, Peer{}).first;
    }
    Peer& p = it->second;
    if (p.failures > 0 && now - p.lastFailure > options_.forgetAfter) p = Peer{};
    ++p.failures;
    p.lastFailure = now;
    if (p.failures >= options_.freeFailures) {
        p.backoff = p.backoff.count() == 0 ? options_.firstBackoff : std::min(p.backoff * 2, options_.maxBackoff);
        p.blockedUntil = now + p.backoff;
    }
}

void LoginThrottle::succeeded(const std::string& peer) {
    std::lock_guard lock(mutex_);
    peers_.erase(peer);
}

size_t LoginThrottle::trackedPeers() const {
    std::lock_guard lock(mutex_);
    return peers_.size();
}

void LoginThrottle::makeRoom(Clock::time_point now) {
    if (peers_.size() < std::max<size_t>(1, options_.maxPeers)) return;
    for (auto it = peers_.begin(); it != peers_.end();) {
        bool stale = it->second.blockedUntil <= now && now - it->second.lastFailure > options_.forgetAfter;
        it = stale ? peers_.erase(it) : std::next(it);
    }
    while (peers_.size() >= std::max<size_t>(1, options_.maxPeers)) {
        auto oldest = std::min_element(peers_.begin(), peers_.end(), [](const auto& a, const auto& b) {
            return a.second.lastFailure < b.second.lastFailure;
        });
        peers_.erase(oldest);
    }
}

// ---- AccessPolicy ----------------------------------------------------------------------------

struct AccessPolicy::Shared {
    explicit Shared(LoginThrottle::Options options) : throttle(options) {
        ensureSodium();
        randombytes_buf(cacheKey, sizeof cacheKey);
    }
    ~Shared() { sodium_memzero(cacheKey, sizeof cacheKey); }

    std::string cacheEntry(const std::string& user, const char* password, const std::string& hash) const {
        unsigned char digest[crypto_generichash_BYTES];
        crypto_generichash_state state;
        crypto_generichash_init(&state, cacheKey, sizeof cacheKey, sizeof digest);
        crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(user.data()), user.size() + 1);
        crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(hash.data()), hash.size() + 1);
        crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(password), std::strlen(password));
        crypto_generichash_final(&state, digest, sizeof digest);
        return std::string(reinterpret_cast<const char*>(digest), sizeof digest);
    }
    bool recentlyVerified(const std::string& entry, LoginThrottle::Clock::time_point now) {
        std::lock_guard lock(cacheMutex);
        auto it = verified.find(entry);
        return it != verified.end() && it->second > now;
    }
    void remember(const std::string& entry, LoginThrottle::Clock::time_point now) {
        std::lock_guard lock(cacheMutex);
        if (verified.size() >= kMaxVerified) {
            std::erase_if(verified, [now](const auto& e) { return e.second <= now; });
            if (verified.size() >= kMaxVerified) verified.clear();
        }
        verified[entry] = now + kVerifiedFor;
    }
    // A hash to verify against for unknown users, so that they take as long as known ones.
    const std::string& decoy() {
        std::call_once(decoyOnce, [this] { decoyHash = AccessPolicy::hashPassword("decoy: no user has this"); });
        return decoyHash;
    }

    LoginThrottle throttle;
    std::counting_semaphore<kConcurrentVerifications> verifySlots{kConcurrentVerifications};
    std::mutex cacheMutex;
    std::map<std::string, LoginThrottle::Clock::time_point> verified;
    unsigned char cacheKey[crypto_generichash_KEYBYTES];
    std::once_flag decoyOnce;
    std::string decoyHash;
};

AccessPolicy::AccessPolicy() : shared_(std::make_unique<Shared>(LoginThrottle::Options{})) {}
AccessPolicy::~AccessPolicy() = default;
AccessPolicy::AccessPolicy(AccessPolicy&&) noexcept = default;
AccessPolicy& AccessPolicy::operator=(AccessPolicy&&) noexcept = default;

std::string AccessPolicy::hashPassword(const std::string& password) {
    ensureSodium();
    char out[crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str(out, password.data(), password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
        throw std::runtime_error("cannot hash the password: out of memory");
    }
    return out;
}

bool AccessPolicy::verifyPassword(const std::string& hash, const std::string& password) {
    ensureSodium();
    if (hash.size() >= crypto_pwhash_STRBYTES) return false;
    char buffer[crypto_pwhash_STRBYTES] = {};
    std::memcpy(buffer, hash.data(), hash.size());
    return crypto_pwhash_str_verify(buffer, password.data(), password.size()) == 0;
}

AccessPolicy AccessPolicy::fromFile(const std::filesystem::path& file, LoginThrottle::Options throttle) {
    ensureSodium();
    const std::string text = readPrivateFile(file);
    AccessPolicy policy;
    policy.shared_ = std::make_unique<Shared>(throttle);
    size_t start = 0;
    int number = 0;
    while (start < text.size()) {
        size_t newline = text.find('\n', start);
        std::string line = text.substr(start, newline == std::string::npos ? std::string::npos : newline - start);
        start = newline == std::string::npos ? text.size() : newline + 1;
        ++number;
        const std::string where = file.string() + ":" + std::to_string(number) + ": ";
        if (!line.empty() && line.back() == '\r') {
            throw std::runtime_error(where + "ends in a carriage return: save the file with Unix line endings");
        }
        if (line.empty() || line[0] == '#') continue;
        const auto fields = splitFields(line);
        const std::string& name = fields[0];
        if (fields.size() < 2 || !printableToken(name)) {
            throw std::runtime_error(where + "expected name:HASH:role[:scope,...] (a name without spaces, "
                                             "HASH as printed by `" + kFixCommand + "`)");
        }
        const std::string& hash = fields[1];
        if (isHex64(hash)) {
            throw std::runtime_error(where + "user '" + name +
                                     "' has an unsalted SHA-256 password hash, which is no longer accepted: "
                                     "make an Argon2id hash with `" + kFixCommand +
                                     "` and write the line as name:HASH:role[:scopes]");
        }
        if (hash.rfind(crypto_pwhash_argon2id_STRPREFIX, 0) != 0) {
            throw std::runtime_error(where + "the password hash of user '" + name +
                                     "' is not an Argon2id string ($argon2id$...): make one with `" +
                                     kFixCommand + "`");
        }
        if (auto problem = argon2idProblem(hash)) {
            throw std::runtime_error(where + "user '" + name + "': " + *problem + "; make a new hash with `" +
                                     kFixCommand + "`");
        }
        if (fields.size() < 3 || fields.size() > 4) {
            throw std::runtime_error(where + "expected name:HASH:role[:scope,...] with role reader, operator or admin");
        }
        auto role = parseRole(fields[2]);
        if (!role) {
            throw std::runtime_error(where + "unknown role '" + fields[2].substr(0, 40) +
                                     "' for user '" + name + "': use reader, operator or admin");
        }
        if (policy.users_.count(name)) {
            throw std::runtime_error(where + "user '" + name + "' is listed twice: keep one line per user");
        }
        User user{hash, *role, {}};
        if (fields.size() == 4) {
            const std::string& scopes = fields[3];
            size_t from = 0;
            while (from <= scopes.size()) {
                size_t comma = scopes.find(',', from);
                if (comma == std::string::npos) comma = scopes.size();
                std::string scope = scopes.substr(from, comma - from);
                if (!printableToken(scope)) {
                    throw std::runtime_error(where + "empty scope or scope with spaces in the list of user '" +
                                             name + "' (leave the field out for every scope)");
                }
                user.scopes.push_back(std::move(scope));
                from = comma + 1;
            }
        }
        policy.users_[name] = std::move(user);
    }
    if (policy.users_.empty()) throw std::runtime_error("users file " + file.string() + " lists no user");
    return policy;
}

std::optional<AccessDenial> AccessPolicy::check(const char* user, const char* password, const std::string& scope,
                                                Role needed, const std::string& peer) const {
    using Kind = AccessDenial::Kind;
    if (open()) return std::nullopt;
    if (!user || !*user || !password) {
        return AccessDenial{Kind::Unauthenticated, std::string("credentials needed: this call needs HTTP Basic "
                                                               "credentials of a user with role ") +
                                                       toString(needed) + " for scope " + scope};
    }
    const std::string peerKey = peer.empty() ? "unknown" : peer;
    auto now = LoginThrottle::Clock::now();
    if (auto wait = shared_->throttle.blocked(peerKey, now)) {
        return AccessDenial{Kind::Throttled, "too many failed logins from " + peerKey + ": refused for " +
                                                 std::to_string((wait->count() + 999) / 1000) + " s more"};
    }
    auto it = users_.find(user);
    bool match = false;
    std::string entry;
    if (it != users_.end()) {
        entry = shared_->cacheEntry(it->first, password, it->second.passwordHash);
        match = shared_->recentlyVerified(entry, now);
    }
    if (!match) {
        const std::string& hash = it != users_.end() ? it->second.passwordHash : shared_->decoy();
        shared_->verifySlots.acquire();
        struct Release {
            std::counting_semaphore<kConcurrentVerifications>& slots;
            ~Release() { slots.release(); }
        } release{shared_->verifySlots};
        char buffer[crypto_pwhash_STRBYTES] = {};
        std::memcpy(buffer, hash.data(), std::min(hash.size(), sizeof buffer - 1));
        match = crypto_pwhash_str_verify(buffer, password, std::strlen(password)) == 0 && it != users_.end();
        if (match) shared_->remember(entry, LoginThrottle::Clock::now());
    }
    if (!match) {
        shared_->throttle.failed(peerKey, LoginThrottle::Clock::now());
        return AccessDenial{Kind::Unauthenticated, "unknown user or wrong password"};
    }
    shared_->throttle.succeeded(peerKey);
    const User& account = it->second;
    if (!account.scopes.empty() && std::find(account.scopes.begin(), account.scopes.end(), scope) == account.scopes.end()) {
        return AccessDenial{Kind::Forbidden, "user " + it->first + " is not allowed in scope " + scope};
    }
    if (static_cast<int>(account.role) < static_cast<int>(needed)) {
        return AccessDenial{Kind::Forbidden, "user " + it->first + " has role " + toString(account.role) +
                                                 " in scope " + scope + "; this call needs " + toString(needed)};
    }
    return std::nullopt;
}

}  // namespace rm::service
