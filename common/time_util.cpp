#include "common/time_util.h"

#include <cstdio>
#include <ctime>

namespace rm::common {

static std::tm utc(Clock::time_point t) {
    std::time_t secs = Clock::to_time_t(t);
    std::tm out{};
    gmtime_r(&secs, &out);
    return out;
}

std::string isoTimestamp(Clock::time_point t) {
    std::tm tm = utc(t);
    char buf[96];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d+00:00", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return buf;
}

std::string isoTimestampMillis(Clock::time_point t) {
    std::tm tm = utc(t);
    auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() % 1000;
    char buf[96];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(ms < 0 ? 0 : ms));
    return buf;
}

int64_t toUnixMillis(Clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

Clock::time_point fromUnixMillis(int64_t ms) {
    return Clock::time_point(
        std::chrono::duration_cast<Clock::duration>(std::chrono::milliseconds(ms)));
}

std::optional<std::chrono::seconds> parseDuration(const std::string& text) {
    if (text.empty() || text.size() > 20) return std::nullopt;
    size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
    if (digits == 0 || digits > 12) return std::nullopt;
    int64_t value = std::stoll(text.substr(0, digits));
    std::string unit = text.substr(digits);
    int64_t scale = 0;
    if (unit.empty() || unit == "s")
        scale = 1;
    else if (unit == "m")
        scale = 60;
    else if (unit == "h")
        scale = 3600;
    else if (unit == "d")
        scale = 86400;
    else
        return std::nullopt;
    if (value <= 0 || value > 100LL * 365 * 86400 / scale) return std::nullopt;
    return std::chrono::seconds(value * scale);
}

}  // namespace rm::common
