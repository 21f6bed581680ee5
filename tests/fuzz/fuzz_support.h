// Helpers shared by the libFuzzer targets in this folder.
#pragma once

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

namespace rm::fuzz {

// A broken invariant is a finding like a crash: say which one, then abort so libFuzzer saves
// the input as a crash reproducer.
[[noreturn]] inline void invariantBroken(std::string_view what) {
    std::fprintf(stderr, "\nINVARIANT BROKEN: %.*s\n", static_cast<int>(what.size()), what.data());
    std::fflush(stderr);
    std::abort();
}

inline void require(bool condition, std::string_view what) {
    if (!condition) invariantBroken(what);
}

// Parsers that only read files get the fuzz input through one scratch file per process, under
// TMPDIR (scripts/fuzz.sh points it at a RAM disk when there is one), removed at exit.
class ScratchFile {
  public:
    explicit ScratchFile(const char* stem) {
        std::string pattern =
            (std::filesystem::temp_directory_path() / (std::string(stem) + "-XXXXXX")).string();
        const int fd = ::mkstemp(pattern.data());
        if (fd < 0) invariantBroken("cannot create a scratch file under TMPDIR");
        ::close(fd);
        path_ = pattern;
    }
    ~ScratchFile() {
        std::error_code ignored;
        std::filesystem::remove(path_, ignored);
    }
    ScratchFile(const ScratchFile&) = delete;
    ScratchFile& operator=(const ScratchFile&) = delete;

    // Replaces the content with `data`.
    const std::filesystem::path& write(const uint8_t* data, size_t size) {
        std::FILE* file = std::fopen(path_.c_str(), "wb");
        if (file == nullptr) invariantBroken("cannot open the scratch file");
        if (size > 0 && std::fwrite(data, 1, size, file) != size) {
            invariantBroken("cannot write the scratch file");
        }
        if (std::fclose(file) != 0) invariantBroken("cannot close the scratch file");
        return path_;
    }

    const std::filesystem::path& path() const { return path_; }

  private:
    std::filesystem::path path_;
};

// A fresh, empty directory under TMPDIR for one input.
inline std::filesystem::path makeTempDir(const char* stem) {
    std::string pattern =
        (std::filesystem::temp_directory_path() / (std::string(stem) + "-XXXXXX")).string();
    if (::mkdtemp(pattern.data()) == nullptr) invariantBroken("mkdtemp failed under TMPDIR");
    return pattern;
}

}  // namespace rm::fuzz
