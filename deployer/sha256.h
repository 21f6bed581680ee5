#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace rm::deployer {

// Lower-case hex SHA-256 of a file, read in fixed-size chunks (archives may be large).
// Throws std::runtime_error naming the file when it cannot be read.
std::string sha256File(const std::filesystem::path& path);

// Lower-case hex SHA-256 of a buffer.
std::string sha256Hex(std::string_view data);

}  // namespace rm::deployer
