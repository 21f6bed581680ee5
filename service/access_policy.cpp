#include "service/access_policy.h"

#include <openssl/crypto.h>

#include <cctype>
#include <fstream>
#include <stdexcept>

#include "deployer/sha256.h"

namespace rm::service {

std::string AccessPolicy::sha256Hex(const std::string& text) { return deployer::sha256Hex(text); }

AccessPolicy AccessPolicy::fromFile(const std::filesystem::path& file) {
    std::ifstream in(file);
    if (!in) throw std::runtime_error("cannot read users file " + file.string());
    AccessPolicy policy;
    std::string line;
    int number = 0;
    while (std::getline(in, line)) {
        ++number;
        if (line.empty() || line[0] == '#') continue;
        auto c1 = line.find(':');
        auto c2 = c1 == std::string::npos ? c1 : line.find(':', c1 + 1);
        std::string name = line.substr(0, c1);
        std::string hash = c1 == std::string::npos ? "" : line.substr(c1 + 1, c2 == std::string::npos ? std::string::npos : c2 - c1 - 1);
        const std::string where = file.string() + ":" + std::to_string(number) + ": ";
        if (!line.empty() && line.back() == '\r') {
            throw std::runtime_error(where + "ends in a carriage return: save the file with Unix "
                                             "line endings");
        }
        if (name.empty() || hash.size() != 64 ||
            hash.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
            throw std::runtime_error(where +
                                     "expected name:sha256-hex[:scopes] (64 hex digits, as "
                                     "printed by rmctl hash-password)");
        }
        // Lower case, as sha256Hex() prints it, so that an upper-case hash still matches.
        for (auto& ch : hash) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        if (policy.users_.count(name)) {
            throw std::runtime_error(where + "user '" + name +
                                     "' is listed twice: keep one line per user");
        }
        User user{hash, {}};
        if (c2 != std::string::npos) {
            std::string scopes = line.substr(c2 + 1);
            size_t start = 0;
            while (start < scopes.size()) {
                size_t end = scopes.find(',', start);
                if (end == std::string::npos) end = scopes.size();
                if (end > start) user.scopes.push_back(scopes.substr(start, end - start));
                start = end + 1;
            }
        }
        policy.users_[name] = std::move(user);
    }
    if (policy.users_.empty()) throw std::runtime_error("users file " + file.string() + " lists no user");
    return policy;
}

std::optional<std::string> AccessPolicy::check(const char* user, const char* password,
                                               const std::string& scope) const {
    if (open()) return std::nullopt;
    if (!user || !password) {
        return "this operation needs credentials (HTTP Basic) of a user allowed for scope " + scope;
    }
    auto it = users_.find(user);
    std::string hash = sha256Hex(password);
    // Compare in constant time so the hash cannot be probed byte by byte.
    bool match = it != users_.end() && it->second.passwordHash.size() == hash.size() &&
                 CRYPTO_memcmp(it->second.passwordHash.data(), hash.data(), hash.size()) == 0;
    if (!match) return "unknown user or wrong password";
    const auto& scopes = it->second.scopes;
    if (!scopes.empty()) {
        bool allowed = false;
        for (const auto& s : scopes) allowed = allowed || s == scope;
        if (!allowed) return "user " + std::string(user) + " is not allowed to change scope " + scope;
    }
    return std::nullopt;
}

}  // namespace rm::service
