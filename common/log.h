// Structured log lines an operator can grep: `ts=... level=info component=rm event=... key=value`.
#pragma once

#include <mutex>
#include <sstream>
#include <string>
#include <string_view>

namespace rm::common {

enum class LogLevel { debug = 0, info = 1, warn = 2, error = 3 };

LogLevel parseLogLevel(std::string_view text);  // throws std::invalid_argument

// A value as Log::kv writes it: unchanged when it is plain printable text without space, quote,
// `=` or backslash; otherwise in double quotes with `"` and `\` escaped by a backslash, \n \r \t
// as such and every other control character (below 0x20, 0x7f, C1) or byte that is not UTF-8 as
// \xHH. So one event is always exactly one line that splits unambiguously into key=value pairs.
std::string escapeLogValue(std::string_view value);

// A sink shared by every part of one daemon; cheap to pass by reference.
class Logger {
public:
    explicit Logger(std::string component, LogLevel minimum = LogLevel::info);

    void setLevel(LogLevel level) { minimum_ = level; }
    bool enabled(LogLevel level) const { return level >= minimum_; }
    const std::string& component() const { return component_; }

    // Writes one already formatted `key=value ...` body as a full line.
    void write(LogLevel level, std::string_view body);

private:
    std::string component_;
    LogLevel minimum_;
    std::mutex mutex_;
};

// Builds one line: Log(logger, LogLevel::info, "session_opened").kv("session", id);
// The line is written when the builder goes out of scope.
class Log {
public:
    Log(Logger& logger, LogLevel level, std::string_view event);
    ~Log();
    Log(const Log&) = delete;
    Log& operator=(const Log&) = delete;

    Log& kv(std::string_view key, std::string_view value);
    Log& kv(std::string_view key, const char* value) { return kv(key, std::string_view(value)); }
    Log& kv(std::string_view key, const std::string& value) { return kv(key, std::string_view(value)); }
    template <class Number>
    Log& kv(std::string_view key, Number value) {
        if (active_) body_ << ' ' << key << '=' << value;
        return *this;
    }

private:
    Logger& logger_;
    LogLevel level_;
    bool active_;
    std::ostringstream body_;
};

}  // namespace rm::common
