#include "common/durable_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <system_error>

#include <fstream>
#include <sstream>

namespace rm::common {
namespace {

// Closes a descriptor on every path out.
class UniqueFd {
  public:
    explicit UniqueFd(int fd) : fd_(fd) {}
    ~UniqueFd() {
        if (fd_ >= 0) ::close(fd_);
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    explicit operator bool() const { return fd_ >= 0; }
    int get() const { return fd_; }

  private:
    int fd_;
};

[[noreturn]] void throwErrno(const std::string& what) {
    throw std::system_error(errno, std::generic_category(), what);
}

void writeAll(int fd, std::string_view data, const fs::path& path) {
    while (!data.empty()) {
        const ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            throwErrno("cannot write " + path.string());
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
}

}  // namespace

void syncDirectory(const fs::path& directory) {
    UniqueFd fd(::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) throwErrno("cannot open directory " + directory.string() + " to sync it");
    if (::fsync(fd.get()) != 0) throwErrno("cannot sync directory " + directory.string());
}

void writeFileAtomically(const fs::path& path, std::string_view content, unsigned mode) {
    const fs::path parent = path.has_parent_path() ? path.parent_path() : fs::path(".");
    fs::create_directories(parent);
    // The pid in the temporary name keeps two agents (or a test and an agent) from sharing it.
    const fs::path temporary =
        parent / ("." + path.filename().string() + ".tmp." + std::to_string(::getpid()));
    {
        UniqueFd fd(
            ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode));
        if (!fd) throwErrno("cannot create " + temporary.string());
        try {
            // The umask must not widen nor narrow what the caller asked for.
            if (::fchmod(fd.get(), static_cast<mode_t>(mode)) != 0)
                throwErrno("cannot set the mode of " + temporary.string());
            writeAll(fd.get(), content, temporary);
            if (::fsync(fd.get()) != 0) throwErrno("cannot sync " + temporary.string());
        } catch (...) {
            ::unlink(temporary.c_str());
            throw;
        }
    }
    if (::rename(temporary.c_str(), path.c_str()) != 0) {
        const int error = errno;
        ::unlink(temporary.c_str());
        throw std::system_error(error, std::generic_category(),
                                "cannot rename " + temporary.string() + " to " + path.string());
    }
    syncDirectory(parent);
}

std::string readWholeFile(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::system_error(errno, std::generic_category(), "cannot read " + path.string());
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

}  // namespace rm::common
