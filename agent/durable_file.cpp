#include "agent/durable_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <system_error>

#include "agent/unique_fd.h"

namespace rm::agent {
namespace {

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

void writeFileAtomically(const fs::path& path, std::string_view content) {
    const fs::path parent = path.has_parent_path() ? path.parent_path() : fs::path(".");
    fs::create_directories(parent);
    // The pid in the temporary name keeps two agents (or a test and an agent) from sharing it.
    const fs::path temporary =
        parent / ("." + path.filename().string() + ".tmp." + std::to_string(::getpid()));
    {
        UniqueFd fd(
            ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644));
        if (!fd) throwErrno("cannot create " + temporary.string());
        try {
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

}  // namespace rm::agent
