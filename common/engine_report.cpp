#include "common/engine_report.h"

#include <cstdio>

#include "common/time_util.h"

namespace rm::engine {

std::string jsonQuote(std::string_view text) {
    std::string out;
    out.reserve(text.size() + 2);
    out += '"';
    for (char c : text) {
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\b':
                out += "\\b";
                break;
            case '\f':
                out += "\\f";
                break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    char escaped[8];
                    std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
                    out += escaped;
                } else {
                    out += c;  // UTF-8 bytes pass through unchanged
                }
        }
    }
    out += '"';
    return out;
}

std::string toJson(const std::vector<WorkerReport>& reports) {
    std::string out = "{\"workers\":[";
    for (std::size_t i = 0; i < reports.size(); ++i) {
        const WorkerReport& r = reports[i];
        if (i > 0) out += ',';
        out += "{\"name\":" + jsonQuote(r.name);
        out += ",\"state\":" + jsonQuote(r.state);
        out += ",\"inputs\":[";
        for (std::size_t j = 0; j < r.inputs.size(); ++j) {
            if (j > 0) out += ',';
            out += jsonQuote(r.inputs[j]);
        }
        out += "],\"start_count\":" + std::to_string(r.startCount);
        out += ",\"last_error\":" + jsonQuote(r.lastError);
        out += ",\"last_started_at\":";
        out += r.lastStartedAt ? jsonQuote(common::isoTimestampMillis(*r.lastStartedAt)) : "null";
        out += '}';
    }
    out += "]}";
    return out;
}

}  // namespace rm::engine
