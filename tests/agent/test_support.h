// Helpers shared by the agent tests: scratch directories, archive building, waiting.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

namespace rm::agent::test {

namespace fs = std::filesystem;

// A fresh directory under /tmp, removed with everything in it at the end of the test. Mode 0711
// (mkdtemp makes it 0700): a user packages run as must get through it, without listing it.
class TempDir {
  public:
    TempDir() {
        std::string pattern = (fs::temp_directory_path() / "rm-agent-test-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
        path_ = pattern;
        if (::chmod(path_.c_str(), 0711) != 0) throw std::runtime_error("chmod failed");
    }
    ~TempDir() {
        std::error_code ignored;
        fs::remove_all(path_, ignored);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const fs::path& path() const { return path_; }
    fs::path operator/(const std::string& name) const { return path_ / name; }

  private:
    fs::path path_;
};

inline std::string readFile(const fs::path& path) {
    std::ifstream in(path);
    std::stringstream content;
    content << in.rdbuf();
    return content.str();
}

inline void writeFile(const fs::path& path, const std::string& content) {
    std::ofstream out(path);
    out << content;
}

// Measures how long a test step took, in plain numbers Boost.Test can print.
class Stopwatch {
  public:
    long long elapsedMs() const {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - start_)
            .count();
    }
    void restart() { start_ = std::chrono::steady_clock::now(); }

  private:
    std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

// Polls `condition` until it holds or `timeout` passes; returns whether it held.
inline bool waitUntil(const std::function<bool()>& condition,
                      std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (condition()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return condition();
}

// Writes a .tar.gz entry by entry with libarchive, names and types exactly as given: the point
// is to build archives no well-behaved tool would.
class TarBuilder {
  public:
    explicit TarBuilder(const fs::path& path) : archive_(archive_write_new(), archive_write_free) {
        archive_write_add_filter_gzip(archive_.get());
        archive_write_set_format_pax_restricted(archive_.get());
        if (archive_write_open_filename(archive_.get(), path.c_str()) != ARCHIVE_OK) {
            throw std::runtime_error("cannot create test archive " + path.string());
        }
    }

    TarBuilder& file(const std::string& name, const std::string& content, mode_t perm = 0644) {
        return add(
            name, AE_IFREG, perm,
            [&](archive_entry* e) {
                archive_entry_set_size(e, static_cast<la_int64_t>(content.size()));
            },
            content);
    }
    TarBuilder& directory(const std::string& name) {
        return add(name, AE_IFDIR, 0755, nullptr, "");
    }
    TarBuilder& symlink(const std::string& name, const std::string& target) {
        return add(
            name, AE_IFLNK, 0777,
            [&](archive_entry* e) { archive_entry_set_symlink(e, target.c_str()); }, "");
    }
    TarBuilder& hardlink(const std::string& name, const std::string& target) {
        return add(
            name, AE_IFREG, 0644,
            [&](archive_entry* e) {
                archive_entry_set_hardlink(e, target.c_str());
                archive_entry_set_size(e, 0);
            },
            "");
    }
    TarBuilder& charDevice(const std::string& name) {
        return add(
            name, AE_IFCHR, 0666,
            [](archive_entry* e) { archive_entry_set_rdev(e, makedev(1, 3)); }, "");
    }
    TarBuilder& fifo(const std::string& name) { return add(name, AE_IFIFO, 0644, nullptr, ""); }

    void close() {
        if (archive_write_close(archive_.get()) != ARCHIVE_OK)
            throw std::runtime_error("cannot finish test archive");
    }

  private:
    TarBuilder& add(const std::string& name, mode_t type, mode_t perm,
                    const std::function<void(archive_entry*)>& configure, const std::string& data) {
        std::unique_ptr<archive_entry, void (*)(archive_entry*)> entry(archive_entry_new(),
                                                                       archive_entry_free);
        archive_entry_set_pathname(entry.get(), name.c_str());
        archive_entry_set_filetype(entry.get(), type);
        archive_entry_set_perm(entry.get(), perm);
        if (configure) configure(entry.get());
        if (archive_write_header(archive_.get(), entry.get()) != ARCHIVE_OK) {
            throw std::runtime_error("cannot write test entry " + name + ": " +
                                     archive_error_string(archive_.get()));
        }
        if (!data.empty()) archive_write_data(archive_.get(), data.data(), data.size());
        return *this;
    }

    std::unique_ptr<archive, int (*)(archive*)> archive_;
};

}  // namespace rm::agent::test
