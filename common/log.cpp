#include "common/log.h"

#include <cctype>
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
        case LogLevel::debug:
            return "debug";
        case LogLevel::info:
            return "info";
        case LogLevel::warn:
            return "warn";
        case LogLevel::error:
            return "error";
    }
    return "info";
}

Logger::Logger(std::string component, LogLevel minimum)
    : component_(std::move(component)), minimum_(minimum) {}

void Logger::write(LogLevel level, std::string_view body) {
    std::string line = "ts=" + isoTimestampMillis(std::chrono::system_clock::now()) +
                       " level=" + levelName(level) + " component=" + component_ + " ";
    // One event, one line: a body formatted elsewhere (engine messages) may still carry
    // control characters; Log::kv has escaped its values already.
    static const char hex[] = "0123456789abcdef";
    for (char c : body) {
        auto b = static_cast<unsigned char>(c);
        if (c == '\n') {
            line += "\\n";
        } else if (c == '\r') {
            line += "\\r";
        } else if (c == '\t') {
            line += "\\t";
        } else if (b < 0x20 || b == 0x7f) {
            line += "\\x";
            line += hex[b >> 4];
            line += hex[b & 0xf];
        } else {
            line += c;
        }
    }
    line += '\n';
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

namespace {

// Length of the well-formed UTF-8 sequence at `text[at]` that is not a C1 control
// (U+0080..U+009F), or 0: such bytes are escaped like any other control character.
size_t printableUtf8(std::string_view text, size_t at) {
    auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
    unsigned char lead = byte(at);
    size_t length = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 0;
    if (length == 0 || lead > 0xf4 || lead == 0xc0 || lead == 0xc1) return 0;
    if (at + length > text.size()) return 0;
    for (size_t i = 1; i < length; ++i) {
        if ((byte(at + i) & 0xc0) != 0x80) return 0;
    }
    unsigned char second = byte(at + 1);
    if (lead == 0xc2 && second < 0xa0) return 0;   // C1 controls
    if (lead == 0xe0 && second < 0xa0) return 0;   // overlong
    if (lead == 0xed && second >= 0xa0) return 0;  // surrogates
    if (lead == 0xf0 && second < 0x90) return 0;   // overlong
    if (lead == 0xf4 && second >= 0x90) return 0;  // beyond U+10FFFF
    return length;
}

}  // namespace

std::string escapeLogValue(std::string_view value) {
    static const char hex[] = "0123456789abcdef";
    bool quote = value.empty();
    std::string inner;
    inner.reserve(value.size() + 8);
    for (size_t i = 0; i < value.size();) {
        char c = value[i];
        auto b = static_cast<unsigned char>(c);
        if (b >= 0x80) {
            if (size_t length = printableUtf8(value, i)) {
                inner.append(value.substr(i, length));
                i += length;
                continue;
            }
        }
        if (c == ' ' || c == '=') {
            quote = true;
            inner += c;
        } else if (c == '"' || c == '\\') {
            quote = true;
            inner += '\\';
            inner += c;
        } else if (c == '\n' || c == '\r' || c == '\t') {
            quote = true;
            inner += '\\';
            inner += c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
        } else if (b < 0x20 || b >= 0x7f) {
            quote = true;
            inner += "\\x";
            inner += hex[b >> 4];
            inner += hex[b & 0xf];
        } else {
            inner += c;
        }
        ++i;
    }
    return quote ? '"' + inner + '"' : inner;
}

Log& Log::kv(std::string_view key, std::string_view value) {
    if (!active_) return *this;
    body_ << ' ';
    for (char c : key) {
        bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
        body_ << (ok ? c : '_');
    }
    body_ << '=' << escapeLogValue(value);
    return *this;
}

}  // namespace rm::common
