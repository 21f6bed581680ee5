#include "common/log.h"

#include <chrono>
#include <cstdio>
#include <stdexcept>

#include "common/time_util.h"

namespace rm::common {

LogLevel parseLogLevel(std::string_view text) {
    if (text == "debug") return LogLevel::debug;
    if (text == "info") return LogLevel::info;
    if (text == "warn" || text == "warning") return LogLevel::warn;
    if (text == "error") return LogLevel::error;
    throw std::invalid_argument("unknown log level '" + std::string(text) +
                                "' (use debug, info, warn or error)");
}

static const char* levelName(LogLevel level) {
    switch (level) {
        case LogLevel::debug: return "debug";
        case LogLevel::info: return "info";
        case LogLevel::warn: return "warn";
        case LogLevel::error: return "error";
    }
    return "info";
}

Logger::Logger(std::string component, LogLevel minimum)
    : component_(std::move(component)), minimum_(minimum) {}

void Logger::write(LogLevel level, std::string_view body) {
    std::string line = "ts=" + isoTimestampMillis(std::chrono::system_clock::now()) +
                       " level=" + levelName(level) + " component=" + component_ + " " +
                       std::string(body) + "\n";
    std::lock_guard lock(mutex_);
    // stderr: stdout is reserved for the URL the daemon prints first.
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
}

Log::Log(Logger& logger, LogLevel level, std::string_view event)
    : logger_(logger), level_(level), active_(logger.enabled(level)) {
    if (active_) body_ << "event=" << event;
}

Log::~Log() {
    if (active_) logger_.write(level_, body_.str());
}

Log& Log::kv(std::string_view key, std::string_view value) {
    if (!active_) return *this;
    bool needsQuotes = value.empty();
    for (char c : value) {
        if (c == ' ' || c == '"' || c == '=' || c == '\n' || c == '\t') needsQuotes = true;
    }
    body_ << ' ' << key << '=';
    if (!needsQuotes) {
        body_ << value;
        return *this;
    }
    body_ << '"';
    for (char c : value) {
        if (c == '"' || c == '\\') body_ << '\\' << c;
        else if (c == '\n') body_ << "\\n";
        else if (c == '\t') body_ << "\\t";
        else body_ << c;
    }
    body_ << '"';
    return *this;
}

}  // namespace rm::common
