// Writes that survive a crash or power loss at any instant: readers see the old content or the
// new one, never a torn mix.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace rm::common {

namespace fs = std::filesystem;

// Writes `content` to a temporary sibling, fsyncs it, renames it over `path` and fsyncs the
// directory. Creates missing parent directories. Throws std::system_error naming the path.
// `mode` is given to the new file (e.g. 0600 for keys).
void writeFileAtomically(const fs::path& path, std::string_view content, unsigned mode = 0644);

// The whole content of a file; throws std::system_error naming it.
std::string readWholeFile(const fs::path& path);

// Makes a rename or creation inside `directory` durable. Throws std::system_error.
void syncDirectory(const fs::path& directory);

}  // namespace rm::common
