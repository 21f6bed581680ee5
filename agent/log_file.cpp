#include "agent/log_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <system_error>
#include <vector>

namespace rm::agent {
namespace {

constexpr std::size_t kTailBytes = 16 * 1024;
constexpr std::size_t kMaxMessageBytes = 600;

std::string utcTimestamp() {
    const std::time_t now = std::time(nullptr);
    std::tm parts{};
    ::gmtime_r(&now, &parts);
    char text[32];
    const std::size_t n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &parts);
    return std::string(text, n);
}

std::string sanitized(std::string_view line) {
    std::string out;
    out.reserve(line.size());
    for (const char c : line) {
        const auto u = static_cast<unsigned char>(c);
        out.push_back(u < 0x20 || u == 0x7f ? ' ' : c);
    }
    return out;
}

bool isBlank(std::string_view line) {
    return std::all_of(line.begin(), line.end(),
                       [](char c) { return c == ' ' || c == '\t' || c == '\r'; });
}

}  // namespace

UniqueFd openLogForAppend(const fs::path& path) {
    if (path.has_parent_path()) fs::create_directories(path.parent_path());
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640));
    if (!fd) {
        throw std::system_error(errno, std::generic_category(),
                                "cannot open log file " + path.string());
    }
    return fd;
}

void appendLogLine(int fd, std::string_view line) noexcept {
    try {
        // One write() per line so that concurrent writers with O_APPEND never interleave a line.
        const std::string text = utcTimestamp() + " " + std::string(line) + "\n";
        std::string_view rest = text;
        while (!rest.empty()) {
            const ssize_t n = ::write(fd, rest.data(), rest.size());
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return;
            rest.remove_prefix(static_cast<std::size_t>(n));
        }
    } catch (...) {
    }
}

void appendLogLine(const fs::path& path, std::string_view line) noexcept {
    try {
        const UniqueFd fd = openLogForAppend(path);
        appendLogLine(fd.get(), line);
    } catch (...) {
    }
}

std::string lastLines(int fd, off_t from, std::size_t count) {
    struct stat info {};
    if (::fstat(fd, &info) != 0 || info.st_size <= from) return {};
    const off_t start = std::max(from, info.st_size - static_cast<off_t>(kTailBytes));
    std::string tail(static_cast<std::size_t>(info.st_size - start), '\0');
    std::size_t got = 0;
    while (got < tail.size()) {
        const ssize_t n =
            ::pread(fd, tail.data() + got, tail.size() - got, start + static_cast<off_t>(got));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += static_cast<std::size_t>(n);
    }
    tail.resize(got);

    std::vector<std::string_view> lines;
    std::string_view rest = tail;
    while (!rest.empty()) {
        const std::size_t end = rest.find('\n');
        const std::string_view line = rest.substr(0, end);
        if (!isBlank(line)) lines.push_back(line);
        if (end == std::string_view::npos) break;
        rest.remove_prefix(end + 1);
    }
    const std::size_t first = lines.size() > count ? lines.size() - count : 0;
    std::string joined;
    for (std::size_t i = first; i < lines.size(); ++i) {
        if (!joined.empty()) joined += " | ";
        joined += sanitized(lines[i]);
    }
    if (joined.size() > kMaxMessageBytes)
        joined = "..." + joined.substr(joined.size() - kMaxMessageBytes);
    return joined;
}

std::string lastLines(const fs::path& path, off_t from, std::size_t count) {
    const UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    return fd ? lastLines(fd.get(), from, count) : std::string();
}

off_t logSize(const fs::path& path) {
    struct stat info {};
    return ::lstat(path.c_str(), &info) == 0 ? info.st_size : 0;
}

std::string formatSeconds(std::chrono::milliseconds duration) {
    const long long ms = duration.count();
    std::string text = std::to_string(ms / 1000);
    if (const long long fraction = ms % 1000; fraction != 0) {
        std::string digits = std::to_string(1000 + (fraction < 0 ? -fraction : fraction)).substr(1);
        while (digits.back() == '0') digits.pop_back();
        text += "." + digits;
    }
    return text + " s";
}

}  // namespace rm::agent
