// libFuzzer target for the package profile parser (deployer/profile.h). Profiles are written by
// package authors and arrive inside archives anyone can publish to a repository: the RM indexes
// them and the agents run the commands they name, so the XML is hostile (deep nesting, DTDs,
// entity tricks, huge values, duplicated elements). Beyond not crashing, the parser either
// throws ProfileError naming the source, or returns a profile that obeys every validation rule
// (names, versions, limits, unique dependencies) and that reads back equal once rendered again.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "deployer/profile.h"
#include "tests/fuzz/profile_checks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace rm;
    const std::string_view xml(reinterpret_cast<const char*>(data), size);
    const std::string source = "fuzz.tar.gz:profile.xml";
    deployer::PackageProfile profile;
    try {
        profile = deployer::parseProfile(xml, source);
    } catch (const deployer::ProfileError& e) {
        // A clear error says where: the message starts with the source name.
        fuzz::require(std::string_view(e.what()).starts_with(source + ": "),
                      "a ProfileError does not name its source");
        return 0;
    }
    fuzz::checkProfileRules(profile);
    // What was accepted is what the author meant: written out again, it parses to the same.
    const deployer::PackageProfile again =
        deployer::parseProfile(fuzz::renderProfile(profile), source);
    fuzz::require(fuzz::describeProfile(again) == fuzz::describeProfile(profile),
                  "a profile rendered again parses differently");
    return 0;
}
