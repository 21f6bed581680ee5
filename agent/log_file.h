// The per-package log that lifecycle steps, supervised processes and the agent's own notes about
// them are appended to, and that error messages quote from.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

#include "agent/unique_fd.h"

namespace rm::agent {

namespace fs = std::filesystem;

// Opens `path` for appending, creating it and its parent directories. Refuses to follow a
// symlink: a package must not be able to redirect what the agent writes. Throws
// std::system_error naming the path.
UniqueFd openLogForAppend(const fs::path& path);

// Appends "<UTC timestamp> <line>\n". Best effort: a full disk must not turn a successful step
// into a failed one, so errors are ignored.
void appendLogLine(int fd, std::string_view line) noexcept;
void appendLogLine(const fs::path& path, std::string_view line) noexcept;

// The last `count` non-blank lines written to `fd` at or after offset `from`, joined with " | ",
// control characters replaced and the result capped, so they can go into a one-line message.
std::string lastLines(int fd, off_t from, std::size_t count);
// The same for a log known by its path; empty when it cannot be read.
std::string lastLines(const fs::path& path, off_t from, std::size_t count);

// The current size of a log, to quote only what is written after this point; 0 if missing.
off_t logSize(const fs::path& path);

// "60 s", "0.25 s": durations for people.
std::string formatSeconds(std::chrono::milliseconds duration);

}  // namespace rm::agent
