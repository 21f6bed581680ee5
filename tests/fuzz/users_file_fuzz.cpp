// libFuzzer target for the RM's users file (service/access_policy.h, `--users FILE`): one
// `name:sha256hex[:scope,...]` per line, deciding who may change the scope. The file is edited
// by hand and may be copied from elsewhere (CRLF endings, stray colons, huge lines), and a
// mistake there opens or locks the scope, so a malformed entry must be refused with an error
// naming the line. Beyond not crashing: only std::runtime_error comes out; an accepted file is
// never an open policy, and no listed user gets in without credentials or with a wrong password.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "service/access_policy.h"
#include "tests/fuzz/fuzz_support.h"

using rm::fuzz::require;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
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
    require(policy.check(nullptr, nullptr, scope).has_value(), "no credentials, yet allowed");
    // Every name the file could have listed (the text before the first ':' of each line).
    std::string_view text(reinterpret_cast<const char*>(data), size);
    std::vector<std::string> names;
    while (!text.empty() && names.size() < 64) {
        const size_t nl = text.find('\n');
        const std::string_view line = text.substr(0, nl);
        names.emplace_back(line.substr(0, line.find(':')));
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    }
    for (const std::string& name : names) {
        require(policy.check(name.c_str(), "a wrong password", scope).has_value(),
                "a wrong password was accepted");
        require(policy.check(name.c_str(), nullptr, scope).has_value(),
                "a user without password was accepted");
    }
    return 0;
}
