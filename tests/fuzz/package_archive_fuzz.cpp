// libFuzzer target for reading a package archive (deployer/package_archive.h). Archives are
// uploaded by package authors and fetched from repositories: the bytes are hostile (corrupt
// gzip or tar headers, absolute and ".." names, links, duplicated or oversized profile.xml).
// libarchive does the decoding; our code walks every entry and picks the profile. Beyond not
// crashing: only PackageArchiveError or ProfileError come out, and an accepted archive yields a
// profile that obeys every validation rule and reads back equal once rendered again. Inputs
// starting with "#entries" list entries to pack first (tests/fuzz/tar_spec.h).
#include <cstddef>
#include <cstdint>
#include <string>

#include "deployer/package_archive.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/fuzz/profile_checks.h"
#include "tests/fuzz/tar_spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace rm;
    static fuzz::ScratchFile archive("package-archive-fuzz");
    const auto& path = fuzz::writeArchive(archive, data, size);
    deployer::PackageProfile profile;
    try {
        profile = deployer::readProfileFromArchive(path);
    } catch (const deployer::PackageArchiveError& e) {
        fuzz::require(std::string(e.what()).starts_with(path.string() + ": "),
                      "a PackageArchiveError does not name the archive");
        return 0;
    } catch (const deployer::ProfileError&) {
        return 0;
    }
    fuzz::checkProfileRules(profile);
    const deployer::PackageProfile again =
        deployer::parseProfile(fuzz::renderProfile(profile), "rendered");
    fuzz::require(fuzz::describeProfile(again) == fuzz::describeProfile(profile),
                  "a profile rendered again parses differently");
    return 0;
}
