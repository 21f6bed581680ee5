#include "deployer/version.h"

#include <algorithm>
#include <limits>

namespace rm::deployer {
namespace {

constexpr std::string_view kVersionHint =
    "expected dot-separated non-negative integers such as 1.2.0";

std::string_view trim(std::string_view s) {
    const auto isSpace = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
    while (!s.empty() && isSpace(s.front())) s.remove_prefix(1);
    while (!s.empty() && isSpace(s.back())) s.remove_suffix(1);
    return s;
}

// Splits without throwing so that tryParse() stays cheap. Returns why the text is not a
// version, or an empty string on success.
std::string parseSegments(std::string_view text, std::vector<std::uint32_t>& segments) {
    segments.clear();
    if (text.empty()) return "version is empty";
    if (text.size() > Version::kMaxTextLength) {
        return "version is longer than " + std::to_string(Version::kMaxTextLength) + " characters";
    }
    std::uint64_t value = 0;
    bool segmentHasDigits = false;
    for (std::size_t i = 0; i <= text.size(); ++i) {
        if (i == text.size() || text[i] == '.') {
            if (!segmentHasDigits) return "empty segment at character " + std::to_string(i + 1);
            segments.push_back(static_cast<std::uint32_t>(value));
            value = 0;
            segmentHasDigits = false;
            continue;
        }
        const char c = text[i];
        if (c < '0' || c > '9') {
            return std::string("unexpected character '") + c + "' at character " +
                   std::to_string(i + 1);
        }
        value = value * 10 + static_cast<std::uint64_t>(c - '0');
        if (value > std::numeric_limits<std::uint32_t>::max()) {
            return "segment ending at character " + std::to_string(i + 1) + " is too large";
        }
        segmentHasDigits = true;
    }
    return {};
}

}  // namespace

Version Version::parse(std::string_view text) {
    std::vector<std::uint32_t> segments;
    const std::string why = parseSegments(text, segments);
    if (!why.empty()) {
        throw VersionError("invalid version '" + std::string(text) + "': " + why + " (" +
                           std::string(kVersionHint) + ")");
    }
    return Version(std::string(text), std::move(segments));
}

std::optional<Version> Version::tryParse(std::string_view text) {
    std::vector<std::uint32_t> segments;
    if (!parseSegments(text, segments).empty()) return std::nullopt;
    return Version(std::string(text), std::move(segments));
}

std::strong_ordering operator<=>(const Version& a, const Version& b) {
    const std::size_t n = std::max(a.segments_.size(), b.segments_.size());
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint32_t x = i < a.segments_.size() ? a.segments_[i] : 0;
        const std::uint32_t y = i < b.segments_.size() ? b.segments_[i] : 0;
        if (x != y) return x <=> y;
    }
    return std::strong_ordering::equal;
}

namespace {

[[noreturn]] void badRange(std::string_view text, const std::string& why) {
    throw VersionError("invalid version range '" + std::string(text) + "': " + why +
                       " (expected a version such as 1.2.0, or an interval such as [1.0,2.0), "
                       "(1.0,] or (,2.0))");
}

std::optional<VersionRange::Bound> parseBound(std::string_view whole, std::string_view part,
                                              bool inclusive) {
    part = trim(part);
    if (part.empty()) return std::nullopt;
    try {
        return VersionRange::Bound{Version::parse(part), inclusive};
    } catch (const VersionError& e) {
        badRange(whole, e.what());
    }
}

}  // namespace

VersionRange VersionRange::exactly(const Version& version) {
    VersionRange range;
    range.text_ = version.toString();
    range.lower_ = Bound{version, true};
    range.upper_ = Bound{version, true};
    return range;
}

VersionRange VersionRange::parse(std::string_view rawText) {
    const std::string_view text = trim(rawText);
    if (text.empty()) return VersionRange();

    const char open = text.front();
    if (open != '[' && open != '(') {
        if (text.find_first_of("[](),") != std::string_view::npos) {
            badRange(text, "an interval must start with '[' or '('");
        }
        try {
            return exactly(Version::parse(text));
        } catch (const VersionError& e) {
            badRange(text, e.what());
        }
    }

    const char close = text.back();
    if (text.size() < 2 || (close != ']' && close != ')')) {
        badRange(text, "an interval must end with ']' or ')'");
    }
    const std::string_view inner = text.substr(1, text.size() - 2);
    if (inner.find_first_of("[]()") != std::string_view::npos) {
        badRange(text, "unions of intervals and nested brackets are not supported");
    }
    const std::size_t comma = inner.find(',');
    VersionRange range;
    range.text_ = std::string(text);

    if (comma == std::string_view::npos) {
        // "[1.0]" is the only single-version interval that makes sense.
        if (open != '[' || close != ']') {
            badRange(text, "a single-version interval must be written [x]");
        }
        const auto bound = parseBound(text, inner, true);
        if (!bound) badRange(text, "the interval is empty");
        range.lower_ = bound;
        range.upper_ = bound;
        return range;
    }
    if (inner.find(',', comma + 1) != std::string_view::npos) {
        badRange(text, "more than one comma (unions are not supported)");
    }
    range.lower_ = parseBound(text, inner.substr(0, comma), open == '[');
    range.upper_ = parseBound(text, inner.substr(comma + 1), close == ']');
    if (range.lower_ && range.upper_) {
        const auto order = range.lower_->version <=> range.upper_->version;
        if (order == std::strong_ordering::greater) {
            badRange(text, "the lower bound is above the upper bound");
        }
        if (order == std::strong_ordering::equal &&
            !(range.lower_->inclusive && range.upper_->inclusive)) {
            badRange(text, "no version can satisfy it (equal bounds, one of them exclusive)");
        }
    }
    return range;
}

bool VersionRange::contains(const Version& version) const {
    if (lower_) {
        const auto order = version <=> lower_->version;
        if (order == std::strong_ordering::less) return false;
        if (order == std::strong_ordering::equal && !lower_->inclusive) return false;
    }
    if (upper_) {
        const auto order = version <=> upper_->version;
        if (order == std::strong_ordering::greater) return false;
        if (order == std::strong_ordering::equal && !upper_->inclusive) return false;
    }
    return true;
}

}  // namespace rm::deployer
