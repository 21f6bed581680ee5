// libFuzzer target for the RM's users file (service/access_policy.h, `--users FILE`): one
// `name:HASH:role[:scope,...]` per line, HASH an Argon2id string, role reader, operator or admin,
// deciding who may read and change the scope. The file is edited by hand and may be copied from
// elsewhere (CRLF endings, stray colons, old SHA-256 hashes, huge lines), and a mistake there
// opens or locks the scope, so a malformed entry must be refused with an error naming the file.
// Beyond not crashing: only std::runtime_error comes out; an accepted file is never an open
// policy, holds only Argon2id hashes, and no listed user gets in without credentials or with a
// wrong password.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "service/access_policy.h"
#include "tests/fuzz/fuzz_support.h"

using rm::fuzz::require;
using rm::service::Role;

namespace {

// Whether the Argon2id string in `hash` is cheap enough to verify on every input (the seeds use
// libsodium's lowest cost, m=8 KiB and t=1; costlier ones would only slow the fuzzer down).
bool cheapToVerify(std::string_view hash) {
    auto number = [&](std::string_view key) -> long {
        auto at = hash.find(key);
        if (at == std::string_view::npos) return -1;
        long value = 0;
        size_t i = at + key.size();
        for (; i < hash.size() && i < at + key.size() + 9 && hash[i] >= '0' && hash[i] <= '9'; ++i) {
            value = value * 10 + (hash[i] - '0');
        }
        return i == at + key.size() ? -1 : value;
    };
    const long memory = number("$m="), passes = number(",t=");
    return memory >= 0 && memory <= 64 && passes >= 0 && passes <= 2;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    // mkstemp() makes the file 0600, as the policy demands of a users file.
    static rm::fuzz::ScratchFile file("users-file-fuzz");
    const auto& path = file.write(data, size);
    rm::service::AccessPolicy policy;
    try {
        policy = rm::service::AccessPolicy::fromFile(path);
    } catch (const std::runtime_error& e) {
        require(std::string_view(e.what()).find(path.string()) != std::string_view::npos,
                "an error does not name the users file");
        return 0;
    }
    require(!policy.open(), "an accepted users file gives an open policy");
    const std::string scope = "/gcube/devsec";
    for (Role role : {Role::Reader, Role::Operator, Role::Admin}) {
        require(policy.check(nullptr, nullptr, scope, role, "fuzz").has_value(), "no credentials, yet allowed");
    }
    // Every line the file could have listed: its name (before the first ':') and its hash.
    std::string_view text(reinterpret_cast<const char*>(data), size);
    size_t verified = 0;
    for (size_t lines = 0; !text.empty() && lines < 64; ++lines) {
        const size_t nl = text.find('\n');
        const std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        if (line.empty() || line[0] == '#') continue;
        const size_t colon = line.find(':');
        const std::string name(line.substr(0, colon));
        const std::string_view rest = colon == std::string_view::npos ? std::string_view() : line.substr(colon + 1);
        const std::string_view hash = rest.substr(0, rest.find(':'));
        require(hash.substr(0, 10) == "$argon2id$", "a line without an Argon2id hash was accepted");
        require(policy.check(name.c_str(), nullptr, scope, Role::Reader, "fuzz").has_value(),
                "a user without password was accepted");
        if (cheapToVerify(hash) && verified < 4) {
            ++verified;
            // Each from its own peer, so that the rate limit does not answer in its place.
            require(policy.check(name.c_str(), "a wrong password", scope, Role::Reader,
                                 "fuzz-" + std::to_string(verified))
                        .has_value(),
                    "a wrong password was accepted");
        }
    }
    return 0;
}
