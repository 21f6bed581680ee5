// Who may change the scope. With no users file every caller may (a loopback demo); with one,
// mutating operations need HTTP Basic credentials of a listed user allowed for this scope.
// File format, one user per line:  name:sha256-hex-of-password[:scope,scope...]
// (no scopes = this RM's scope). `rmctl hash-password` prints the hash.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace rm::service {

class AccessPolicy {
public:
    // Open policy: everyone allowed.
    AccessPolicy() = default;
    // Throws std::runtime_error naming the file and line on a malformed entry.
    static AccessPolicy fromFile(const std::filesystem::path& file);

    bool open() const { return users_.empty(); }
    // nullopt when allowed, else the reason for the AccessDeniedFault.
    std::optional<std::string> check(const char* user, const char* password,
                                     const std::string& scope) const;

    static std::string sha256Hex(const std::string& text);

private:
    struct User {
        std::string passwordHash;
        std::vector<std::string> scopes;
    };
    std::map<std::string, User> users_;
};

}  // namespace rm::service
