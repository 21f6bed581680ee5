// Helpers shared by the service unit tests: a private temporary directory and a quiet logger.
#pragma once

#include <filesystem>
#include <string>

#include "common/log.h"

namespace rm::service::testing {

class ScratchDir {
  public:
    ScratchDir();
    ~ScratchDir();
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;
    const std::filesystem::path& path() const { return path_; }

  private:
    std::filesystem::path path_;
};

// Only errors reach stderr, so a passing run stays readable.
common::Logger& quietLogger();

// Writes `text` to `file` (created or replaced).
void writeFile(const std::filesystem::path& file, const std::string& text);

}  // namespace rm::service::testing
