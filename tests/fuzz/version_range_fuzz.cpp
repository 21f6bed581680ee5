// libFuzzer target for version and version-range parsing (deployer/version.h). Both come from
// package profiles (ServiceVersion, PackageVersion, Dependency/Version) and from requests, i.e.
// from outside, and decide which package the resolver picks. The input is split at newlines
// into up to three version texts and a range text. Beyond not crashing: only VersionError is
// thrown; tryParse agrees with parse; a parsed version renders and reparses equal; comparison
// is antisymmetric, transitive and consistent with ==; a parsed range reparses from its own
// text to the same bounds, its bounds are ordered, and contains() honours them.
#include <compare>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "deployer/version.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using rm::deployer::Version;
using rm::deployer::VersionError;
using rm::deployer::VersionRange;
using rm::fuzz::require;

std::optional<Version> parseVersion(std::string_view text) {
    std::optional<Version> parsed;
    try {
        parsed = Version::parse(text);
    } catch (const VersionError&) {
    }
    require(parsed.has_value() == Version::tryParse(text).has_value(),
            "parse and tryParse disagree");
    if (!parsed) return parsed;
    require(parsed->toString() == text, "a version does not keep its text");
    const Version again = Version::parse(parsed->toString());
    require(again == *parsed && again.segments() == parsed->segments(),
            "a version does not reparse equal");
    require(!parsed->segments().empty(), "a version without segments");
    return parsed;
}

std::strong_ordering reverse(std::strong_ordering o) {
    return o == std::strong_ordering::less      ? std::strong_ordering::greater
           : o == std::strong_ordering::greater ? std::strong_ordering::less
                                                : o;
}

void checkRange(std::string_view text, const std::vector<Version>& versions) {
    std::optional<VersionRange> range;
    try {
        range = VersionRange::parse(text);
    } catch (const VersionError&) {
        return;
    }
    const VersionRange again = VersionRange::parse(range->toString());
    require(again.toString() == range->toString(), "a range does not keep its text");
    const auto sameBound = [](const auto& a, const auto& b) {
        return a.has_value() == b.has_value() &&
               (!a || (a->version == b->version && a->inclusive == b->inclusive));
    };
    require(sameBound(again.lower(), range->lower()) && sameBound(again.upper(), range->upper()),
            "a range does not reparse to the same bounds");
    const auto& lower = range->lower();
    const auto& upper = range->upper();
    if (lower && upper) {
        require(lower->version <= upper->version, "a range with its bounds reversed");
        if (lower->version == upper->version)
            require(lower->inclusive && upper->inclusive, "an empty range was accepted");
    }
    // Its own bounds are in or out as their brackets say.
    if (lower)
        require(range->contains(lower->version) == lower->inclusive, "lower bound misjudged");
    if (upper)
        require(range->contains(upper->version) == upper->inclusive, "upper bound misjudged");
    for (const Version& v : versions) {
        bool inside = true;
        if (lower) inside = inside && (lower->inclusive ? v >= lower->version : v > lower->version);
        if (upper) inside = inside && (upper->inclusive ? v <= upper->version : v < upper->version);
        require(range->contains(v) == inside, "contains() disagrees with the bounds");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    std::vector<std::string_view> lines;
    while (lines.size() < 3) {
        const size_t nl = input.find('\n');
        if (nl == std::string_view::npos) break;
        lines.push_back(input.substr(0, nl));
        input.remove_prefix(nl + 1);
    }
    const std::string_view rangeText = input;  // the rest, newlines included

    std::vector<Version> versions;
    for (const std::string_view line : lines) {
        if (auto v = parseVersion(line)) versions.push_back(*v);
    }
    for (const Version& a : versions) {
        for (const Version& b : versions) {
            require((a <=> b) == reverse(b <=> a), "comparison is not antisymmetric");
            require((a == b) == ((a <=> b) == 0), "== disagrees with <=>");
            for (const Version& c : versions) {
                if (a <= b && b <= c) require(a <= c, "comparison is not transitive");
            }
        }
    }
    // Every range is also tried as a single version, and every version as a range.
    if (auto v = parseVersion(rangeText)) versions.push_back(*v);
    checkRange(rangeText, versions);
    for (const std::string_view line : lines) checkRange(line, versions);
    return 0;
}
