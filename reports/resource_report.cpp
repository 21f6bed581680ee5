#include "reports/resource_report.h"

#include <algorithm>
#include <cstdio>

namespace rm::reports {
namespace {

bool isDigit(char c) {
    return c >= '0' && c <= '9';
}

// Parses text[pos, pos + width) as digits; nullopt when any is not a digit.
std::optional<int> digitsAt(std::string_view text, std::size_t pos, std::size_t width) {
    if (pos + width > text.size()) return std::nullopt;
    int value = 0;
    for (std::size_t i = pos; i < pos + width; ++i) {
        if (!isDigit(text[i])) return std::nullopt;
        value = value * 10 + (text[i] - '0');
    }
    return value;
}

bool hasCharAt(std::string_view text, std::size_t pos, char expected) {
    return pos < text.size() && text[pos] == expected;
}

int daysInMonth(int year, int month) {
    static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : kDays[month - 1];
}

// Validates `YYYY-MM-DDThh:mm:ss` at the start of text; the ranges match xsd:dateTime.
bool isDateAndTime(std::string_view text) {
    const auto year = digitsAt(text, 0, 4);
    const auto month = digitsAt(text, 5, 2);
    const auto day = digitsAt(text, 8, 2);
    const auto hour = digitsAt(text, 11, 2);
    const auto minute = digitsAt(text, 14, 2);
    const auto second = digitsAt(text, 17, 2);
    if (!year || !month || !day || !hour || !minute || !second) return false;
    if (!hasCharAt(text, 4, '-') || !hasCharAt(text, 7, '-') || !hasCharAt(text, 10, 'T') ||
        !hasCharAt(text, 13, ':') || !hasCharAt(text, 16, ':')) {
        return false;
    }
    if (*year == 0 || *month < 1 || *month > 12) return false;
    return *day >= 1 && *day <= daysInMonth(*year, *month) && *hour <= 23 && *minute <= 59 &&
           *second <= 59;
}

bool isOffset(std::string_view text) {
    if (text == "Z") return true;
    if (text.size() != 6 || (text[0] != '+' && text[0] != '-') || text[3] != ':') return false;
    const auto hours = digitsAt(text, 1, 2);
    const auto minutes = digitsAt(text, 4, 2);
    if (!hours || !minutes || *minutes > 59) return false;
    return *hours < 14 || (*hours == 14 && *minutes == 0);
}

}  // namespace

ResourceReport::ActivityKind activityKindFor(std::string_view operation) {
    return operation == "AddResources" ? ResourceReport::ActivityKind::Deployment
                                       : ResourceReport::ActivityKind::Undeployment;
}

std::string isoTimestamp(std::chrono::system_clock::time_point time) {
    using namespace std::chrono;
    const auto seconds = floor<std::chrono::seconds>(time);
    const auto day = floor<days>(seconds);
    const year_month_day date{day};
    const hh_mm_ss clock{seconds - day};
    char buffer[40];
    std::snprintf(buffer, sizeof buffer, "%04d-%02u-%02uT%02d:%02d:%02d+00:00",
                  static_cast<int>(date.year()), static_cast<unsigned>(date.month()),
                  static_cast<unsigned>(date.day()), static_cast<int>(clock.hours().count()),
                  static_cast<int>(clock.minutes().count()),
                  static_cast<int>(clock.seconds().count()));
    return buffer;
}

bool isIsoTimestampWithOffset(std::string_view text) {
    constexpr std::size_t kDateTimeLength = 19;  // YYYY-MM-DDThh:mm:ss
    if (text.size() <= kDateTimeLength || !isDateAndTime(text)) return false;
    std::size_t pos = kDateTimeLength;
    if (text[pos] == '.') {
        const std::size_t fractionStart = ++pos;
        while (pos < text.size() && isDigit(text[pos])) ++pos;
        if (pos == fractionStart) return false;
    }
    return isOffset(text.substr(pos));
}

bool isFinalPackageStatus(std::string_view status) {
    const bool known = std::find(kPackageStatuses.begin(), kPackageStatuses.end(), status) !=
                       kPackageStatuses.end();
    return known && status != "WAITING" && status != "DEPLOYED";
}

ReportProgress progress(const ResourceReport& report) {
    ReportProgress result;
    result.nodes.reserve(report.ghns.size());
    for (const GhnActivity& ghn : report.ghns) {
        NodeProgress node{ghn.host, ghn.id, {}, ghn.nodeStatus == "CLOSED"};
        node.packages.total = ghn.packages.size();
        node.packages.done = static_cast<std::size_t>(
            std::count_if(ghn.packages.begin(), ghn.packages.end(),
                          [](const PackageEntry& p) { return isFinalPackageStatus(p.status); }));
        result.packages.total += node.packages.total;
        result.packages.done += node.packages.done;
        result.nodes.push_back(std::move(node));
    }
    result.resources.total = report.resources.size();
    result.resources.done = static_cast<std::size_t>(
        std::count_if(report.resources.begin(), report.resources.end(),
                      [](const ResourceEntry& r) { return r.status != "WAITING"; }));
    return result;
}

}  // namespace rm::reports
