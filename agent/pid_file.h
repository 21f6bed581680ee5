// The record of which process runs a supervised id, kept on disk so that an agent that restarts
// can find it again instead of starting a second copy.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace rm::agent {

namespace fs = std::filesystem;

struct PidFileRecord {
    pid_t pid = 0;
    std::uint64_t startTime = 0;  // see processStartTime(): tells a recycled pid from ours
    std::string id;

    bool operator==(const PidFileRecord&) const = default;
};

// Atomic and durable: a crash leaves the old record or the new one. Throws std::system_error.
void writePidFile(const fs::path& path, const PidFileRecord& record);

// nullopt when the file is missing, unreadable or not a complete record: all mean "nothing of
// ours is known to run".
std::optional<PidFileRecord> readPidFile(const fs::path& path);

// True when the record names a live process that is the very one it recorded for `id`.
bool recordsLiveProcess(const PidFileRecord& record, const std::string& id);

}  // namespace rm::agent
