#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace rm::common {

using Clock = std::chrono::system_clock;

// ISO 8601 with an explicit offset, second precision: 2008-10-29T00:58:17+00:00.
std::string isoTimestamp(Clock::time_point t);
std::string isoTimestampMillis(Clock::time_point t);

int64_t toUnixMillis(Clock::time_point t);
Clock::time_point fromUnixMillis(int64_t ms);
inline int64_t nowMillis() { return toUnixMillis(Clock::now()); }

// A duration as people write it: a positive whole number followed by s, m, h or d ("90s", "1h",
// "30d"); a bare number is seconds. nullopt for anything else or past 100 years.
std::optional<std::chrono::seconds> parseDuration(const std::string& text);

}  // namespace rm::common
