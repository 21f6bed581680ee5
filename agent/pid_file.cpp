#include "agent/pid_file.h"

#include <charconv>
#include <fstream>
#include <sstream>

#include "agent/process.h"
#include "common/durable_file.h"

namespace rm::agent {
namespace {

constexpr std::size_t kMaxPidFileBytes = 4096;

template <class Number>
bool parseNumber(const std::string& text, Number& out) {
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
    return error == std::errc() && end == text.data() + text.size() && !text.empty();
}

}  // namespace

void writePidFile(const fs::path& path, const PidFileRecord& record) {
    std::ostringstream text;
    text << "pid=" << record.pid << "\nstart_time=" << record.startTime << "\nid=" << record.id
         << "\n";
    common::writeFileAtomically(path, text.str());
}

std::optional<PidFileRecord> readPidFile(const fs::path& path) {
    std::ifstream in(path);
    if (!in) return std::nullopt;
    std::string content(kMaxPidFileBytes, '\0');
    in.read(content.data(), static_cast<std::streamsize>(content.size()));
    content.resize(static_cast<std::size_t>(in.gcount()));

    PidFileRecord record;
    bool havePid = false;
    bool haveStart = false;
    bool haveId = false;
    std::istringstream lines(content);
    std::string line;
    while (std::getline(lines, line)) {
        const std::size_t equals = line.find('=');
        if (equals == std::string::npos) continue;
        const std::string key = line.substr(0, equals);
        const std::string value = line.substr(equals + 1);
        if (key == "pid") havePid = parseNumber(value, record.pid) && record.pid > 1;
        if (key == "start_time") haveStart = parseNumber(value, record.startTime);
        if (key == "id") {
            record.id = value;
            haveId = !value.empty();
        }
    }
    if (!havePid || !haveStart || !haveId) return std::nullopt;
    return record;
}

bool recordsLiveProcess(const PidFileRecord& record, const std::string& id) {
    return record.id == id && isRunning(record.pid, record.startTime);
}

}  // namespace rm::agent
