// Writes that survive a crash or power loss at any instant: readers see the old content or the
// new one, never a torn mix.
#pragma once

#include <filesystem>
#include <string_view>

namespace rm::agent {

namespace fs = std::filesystem;

// Writes `content` to a temporary sibling, fsyncs it, renames it over `path` and fsyncs the
// directory. Creates missing parent directories. Throws std::system_error naming the path.
void writeFileAtomically(const fs::path& path, std::string_view content);

// Makes a rename or creation inside `directory` durable. Throws std::system_error.
void syncDirectory(const fs::path& directory);

}  // namespace rm::agent
