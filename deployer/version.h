#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace rm::deployer {

// Thrown for malformed version or version-range text; the message quotes the text and says
// what is expected instead.
class VersionError : public std::invalid_argument {
  public:
    using std::invalid_argument::invalid_argument;
};

// A package or service version: dot-separated non-negative integers ("1.00.00", "1.10.0").
// Ordering is numeric segment by segment and missing trailing segments count as zero, so
// 1.0 == 1.0.0 and 1.10.0 > 1.9.3. toString() returns the text as written, because that is
// what appears in profiles and reports (two equal versions may therefore print differently).
class Version {
  public:
    static constexpr std::size_t kMaxTextLength = 64;

    // Throws VersionError naming the offending text and the problem.
    static Version parse(std::string_view text);
    static std::optional<Version> tryParse(std::string_view text);

    const std::string& toString() const { return text_; }
    const std::vector<std::uint32_t>& segments() const { return segments_; }

    friend std::strong_ordering operator<=>(const Version& a, const Version& b);
    friend bool operator==(const Version& a, const Version& b) {
        return (a <=> b) == std::strong_ordering::equal;
    }

  private:
    Version(std::string text, std::vector<std::uint32_t> segments)
        : text_(std::move(text)), segments_(std::move(segments)) {}

    std::string text_;
    std::vector<std::uint32_t> segments_;
};

// A set of acceptable versions, Maven style:
//   ""            any version
//   "1.2.0"       exactly 1.2.0 (same as "[1.2.0]")
//   "[1.0,2.0)"   1.0 <= v < 2.0       "(1.0,]" / "(1.0,)"  v > 1.0
//   "[1.0,]"      v >= 1.0             "(,2.0)" / "[,2.0)"  v < 2.0
// Unions ("[1,2),[3,4)") are not supported and rejected.
class VersionRange {
  public:
    struct Bound {
        Version version;
        bool inclusive;
    };

    // The unbounded range (accepts every version).
    VersionRange() = default;

    // Throws VersionError naming the offending text and the problem. Empty text = any.
    static VersionRange parse(std::string_view text);
    static VersionRange exactly(const Version& version);

    bool contains(const Version& version) const;
    bool isAny() const { return !lower_ && !upper_; }
    const std::optional<Bound>& lower() const { return lower_; }
    const std::optional<Bound>& upper() const { return upper_; }

    // The text as written (trimmed); empty for "any".
    const std::string& toString() const { return text_; }

  private:
    std::string text_;
    std::optional<Bound> lower_;
    std::optional<Bound> upper_;
};

}  // namespace rm::deployer
