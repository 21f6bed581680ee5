#include "agent/archive_extractor.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <system_error>
#include <thread>
#include <vector>

#include "agent/unique_fd.h"
#include "common/durable_file.h"

namespace rm::agent {
namespace {

// Not ARCHIVE_EXTRACT_OWNER: unpacked files belong to the agent, never to ids the archive names.
// Not ACL/XATTR/FFLAGS: a package has no business setting those. The SECURE flags repeat checks
// EntryPolicy makes itself, so one slip in either is not enough to escape.
constexpr int kExtractFlags = ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                              ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS | ARCHIVE_EXTRACT_PERM |
                              ARCHIVE_EXTRACT_TIME;
constexpr std::size_t kNameMax = 255;
constexpr int kMaxSymlinkHops = 40;  // as the kernel's own limit
constexpr std::size_t kReadBlock = 64 * 1024;

// An entry the policy does not allow; the caller adds which archive it came from.
struct Refused {
    std::string entry;
    std::string reason;
};

enum class NodeKind { Directory, File, Symlink };

std::string archiveError(archive* a) {
    const char* text = archive_error_string(a);
    return text != nullptr ? text : "unknown libarchive error";
}

bool hasControlCharacter(std::string_view text) {
    return std::any_of(text.begin(), text.end(),
                       [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

std::vector<std::string_view> splitPath(std::string_view path) {
    std::vector<std::string_view> parts;
    while (true) {
        const std::size_t slash = path.find('/');
        parts.push_back(path.substr(0, slash));
        if (slash == std::string_view::npos) break;
        path.remove_prefix(slash + 1);
    }
    return parts;
}

std::string joinPath(const std::vector<std::string>& parts, std::size_t count) {
    std::string joined;
    for (std::size_t i = 0; i < count; ++i) {
        if (i > 0) joined += '/';
        joined += parts[i];
    }
    return joined;
}

// Decides whether each entry may be unpacked, and keeps the shape of the tree built so far: the
// archive may not replace an entry, write below a symlink or file, or link outside.
class EntryPolicy {
  public:
    explicit EntryPolicy(const ExtractLimits& limits) : limits_(limits) {}

    // The normalised name ("a/b"), or "" for the archive's own root ("./"), which is skipped.
    std::string admit(const std::string& raw, NodeKind kind) {
        const std::string name = normalise(raw, "");
        if (name.empty()) {
            if (kind != NodeKind::Directory)
                throw Refused{raw, "only a directory may name the root"};
            return name;
        }
        if (name == kUnpackedMarker) throw Refused{raw, "the name is reserved for the agent"};
        const std::vector<std::string> parts = components(name);
        for (std::size_t depth = 1; depth < parts.size(); ++depth) {
            const std::string prefix = joinPath(parts, depth);
            const auto [it, inserted] = nodes_.emplace(prefix, NodeKind::Directory);
            if (!inserted && it->second == NodeKind::Symlink) {
                throw Refused{raw, "it would be written through the symlink '" + prefix + "'"};
            }
            if (!inserted && it->second == NodeKind::File) {
                throw Refused{raw, "its parent '" + prefix + "' is a file"};
            }
        }
        const auto [it, inserted] = nodes_.emplace(name, kind);
        if (!inserted && !(it->second == NodeKind::Directory && kind == NodeKind::Directory)) {
            throw Refused{raw, "it would replace an earlier entry of the same name"};
        }
        return name;
    }

    // A hardlink may only share a regular file this archive has already unpacked.
    std::string admitHardlinkTarget(const std::string& raw, const std::string& name,
                                    const std::string& target) const {
        std::string normalised;
        try {
            normalised = normalise(target, "hardlink target ");
        } catch (const Refused& refused) {
            throw Refused{raw, refused.reason + " ('" + target + "')"};
        }
        const auto it = nodes_.find(normalised);
        if (normalised.empty() || normalised == name || it == nodes_.end() ||
            it->second != NodeKind::File) {
            throw Refused{raw, "hardlink target '" + target +
                                   "' is not a regular file unpacked earlier from this archive"};
        }
        return normalised;
    }

    // Targets are checked once the whole tree is known (see checkSymlinks); here only their form.
    void recordSymlink(const std::string& raw, const std::string& name, const std::string& target) {
        if (target.empty()) throw Refused{raw, "symlink with an empty target"};
        if (target.front() == '/')
            throw Refused{raw, "symlink to the absolute path '" + target + "'"};
        if (target.size() > limits_.maxPathLength) {
            throw Refused{raw, "symlink target longer than " +
                                   std::to_string(limits_.maxPathLength) + " bytes"};
        }
        if (hasControlCharacter(target))
            throw Refused{raw, "symlink target contains control characters"};
        symlinks_.emplace(name, target);
    }

    // Resolves every symlink through all the others, as the kernel would: a link that stays
    // inside on its own can still lead out through another (`a/b -> ..`, `a/c -> b/..`), and
    // a later entry can change where an earlier link leads, so this waits for the full tree.
    void checkSymlinks() const {
        for (const auto& [name, target] : symlinks_) {
            std::vector<std::string> where = components(name);
            where.pop_back();
            int hops = 0;
            if (const auto problem = resolve(where, target, hops)) {
                throw Refused{name, "symlink target '" + target + "' " + *problem};
            }
        }
    }

  private:
    std::string normalise(const std::string& raw, const std::string& what) const {
        if (raw.empty()) throw Refused{raw, what + "name is empty"};
        if (raw.size() > limits_.maxPathLength) {
            throw Refused{
                raw, what + "name longer than " + std::to_string(limits_.maxPathLength) + " bytes"};
        }
        if (raw.front() == '/') throw Refused{raw, what + "is an absolute path"};
        if (hasControlCharacter(raw)) throw Refused{raw, what + "name contains control characters"};
        std::string_view rest = raw;
        // What `tar -C dir .` writes: a leading "./" and a trailing "/" on directories.
        if (rest == "." || rest == "./") return "";
        if (rest.starts_with("./")) rest.remove_prefix(2);
        if (rest.ends_with('/')) rest.remove_suffix(1);
        const std::vector<std::string_view> parts = splitPath(rest);
        for (const std::string_view part : parts) {
            if (part == "..") throw Refused{raw, what + "contains '..'"};
        }
        for (const std::string_view part : parts) {
            if (part.empty() || part == ".") throw Refused{raw, what + "is not a normalised path"};
            if (part.size() > kNameMax) {
                throw Refused{raw, what + "has a component longer than " +
                                       std::to_string(kNameMax) + " bytes"};
            }
        }
        return std::string(rest);
    }

    static std::vector<std::string> components(std::string_view name) {
        std::vector<std::string> parts;
        for (const std::string_view part : splitPath(name)) parts.emplace_back(part);
        return parts;
    }

    // Walks `target` from directory `where` (components below the container root); returns what
    // is wrong, if anything.
    std::optional<std::string> resolve(std::vector<std::string>& where, std::string_view target,
                                       int& hops) const {
        for (const std::string_view part : splitPath(target)) {
            if (part.empty() || part == ".") continue;
            if (part == "..") {
                if (where.empty()) return "leads outside the container";
                where.pop_back();
                continue;
            }
            where.emplace_back(part);
            const auto link = symlinks_.find(joinPath(where, where.size()));
            if (link == symlinks_.end()) continue;
            if (++hops > kMaxSymlinkHops) return "is part of a symlink loop";
            where.pop_back();
            if (auto problem = resolve(where, link->second, hops)) return problem;
        }
        return std::nullopt;
    }

    const ExtractLimits& limits_;
    std::map<std::string, NodeKind> nodes_;
    std::map<std::string, std::string> symlinks_;
};

struct ReadDeleter {
    void operator()(archive* a) const { archive_read_free(a); }
};
struct WriteDeleter {
    void operator()(archive* a) const { archive_write_free(a); }
};

// Streams the archive to disk relative to the current working directory.
class Unpacker {
  public:
    Unpacker(const fs::path& archivePath, const ExtractLimits& limits)
        : archivePath_(archivePath), limits_(limits), policy_(limits) {}

    void run() {
        const std::unique_ptr<archive, ReadDeleter> reader(archive_read_new());
        const std::unique_ptr<archive, WriteDeleter> writer(archive_write_disk_new());
        if (!reader || !writer) fail("", "out of memory");
        archive_read_support_filter_gzip(reader.get());
        archive_read_support_format_tar(reader.get());
        if (archive_read_open_filename(reader.get(), archivePath_.c_str(), kReadBlock) !=
            ARCHIVE_OK) {
            fail("", "cannot read it: " + archiveError(reader.get()));
        }
        archive_write_disk_set_options(writer.get(), kExtractFlags);

        archive_entry* entry = nullptr;
        std::uint64_t entries = 0;
        std::string previous;
        for (;;) {
            const int rc = archive_read_next_header(reader.get(), &entry);
            if (rc == ARCHIVE_EOF) break;
            if (rc < ARCHIVE_WARN) {
                fail("", "it is damaged" +
                             (previous.empty() ? "" : " after entry '" + previous + "'") + ": " +
                             archiveError(reader.get()));
            }
            try {
                const std::string raw = entryName(entry);
                if (++entries > limits_.maxEntries) {
                    throw Refused{raw, "the archive has more than " +
                                           std::to_string(limits_.maxEntries) + " entries"};
                }
                unpackEntry(reader.get(), writer.get(), entry, raw);
                previous = raw;
                if (limits_.onEntry) limits_.onEntry(entries);
            } catch (const Refused& refused) {
                fail(refused.entry, refused.reason);
            }
        }
        try {
            policy_.checkSymlinks();
        } catch (const Refused& refused) {
            fail(refused.entry, refused.reason);
        }
        if (archive_write_close(writer.get()) != ARCHIVE_OK) {
            fail("", "cannot finish unpacking: " + archiveError(writer.get()));
        }
    }

  private:
    [[noreturn]] void fail(const std::string& entry, const std::string& reason) const {
        throw ExtractError(archivePath_, entry, reason);
    }

    static std::string entryName(archive_entry* entry) {
        const char* name = archive_entry_pathname(entry);
        if (name == nullptr) name = archive_entry_pathname_utf8(entry);
        if (name == nullptr) throw Refused{"?", "the entry name cannot be decoded"};
        return name;
    }

    static NodeKind kindOf(archive_entry* entry, const std::string& raw) {
        if (archive_entry_hardlink(entry) != nullptr) return NodeKind::File;
        switch (archive_entry_filetype(entry)) {
            case AE_IFREG:
                return NodeKind::File;
            case AE_IFDIR:
                return NodeKind::Directory;
            case AE_IFLNK:
                return NodeKind::Symlink;
            case AE_IFCHR:
                throw Refused{raw, "character devices are not allowed"};
            case AE_IFBLK:
                throw Refused{raw, "block devices are not allowed"};
            case AE_IFIFO:
                throw Refused{raw, "FIFOs are not allowed"};
            case AE_IFSOCK:
                throw Refused{raw, "sockets are not allowed"};
            default:
                throw Refused{raw, "unknown file type"};
        }
    }

    void unpackEntry(archive* reader, archive* writer, archive_entry* entry,
                     const std::string& raw) {
        const NodeKind kind = kindOf(entry, raw);
        const std::string name = policy_.admit(raw, kind);
        if (name.empty()) return;  // the root directory itself: the container already exists
        archive_entry_set_pathname(entry, name.c_str());

        const char* hardlink = archive_entry_hardlink(entry);
        std::uint64_t size = 0;
        if (hardlink != nullptr) {
            const std::string target = policy_.admitHardlinkTarget(raw, name, hardlink);
            archive_entry_set_hardlink(entry, target.c_str());
            // Data in a hardlink entry would overwrite the file it shares.
            archive_entry_set_size(entry, 0);
        } else if (kind == NodeKind::Symlink) {
            const char* target = archive_entry_symlink(entry);
            if (target == nullptr) target = archive_entry_symlink_utf8(entry);
            policy_.recordSymlink(raw, name, target != nullptr ? target : "");
        } else if (kind == NodeKind::File) {
            const la_int64_t declared =
                archive_entry_size_is_set(entry) ? archive_entry_size(entry) : 0;
            if (declared < 0) throw Refused{raw, "negative size"};
            size = static_cast<std::uint64_t>(declared);
            if (size > limits_.maxTotalBytes - totalBytes_) {
                throw Refused{raw, "unpacking it would exceed the limit of " +
                                       std::to_string(limits_.maxTotalBytes) + " bytes"};
            }
            totalBytes_ += size;
        }

        // No set-id or sticky bits; the owner can always read, write and enter, so that the
        // agent can remove the container again.
        mode_t perm = archive_entry_perm(entry) & 0777;
        perm |= kind == NodeKind::Directory ? 0700 : 0600;
        archive_entry_set_perm(entry, perm);

        if (archive_write_header(writer, entry) != ARCHIVE_OK) {
            throw Refused{raw, "cannot unpack it: " + archiveError(writer)};
        }
        if (size > 0) copyData(reader, writer, raw, size);
        if (archive_write_finish_entry(writer) != ARCHIVE_OK) {
            throw Refused{raw, "cannot finish unpacking it: " + archiveError(writer)};
        }
    }

    static void copyData(archive* reader, archive* writer, const std::string& raw,
                         std::uint64_t declared) {
        const void* block = nullptr;
        std::size_t length = 0;
        la_int64_t offset = 0;
        for (;;) {
            const int rc = archive_read_data_block(reader, &block, &length, &offset);
            if (rc == ARCHIVE_EOF) return;
            if (rc != ARCHIVE_OK)
                throw Refused{raw, "cannot read its data: " + archiveError(reader)};
            if (offset < 0 || static_cast<std::uint64_t>(offset) + length > declared) {
                throw Refused{raw, "its data is longer than its declared size"};
            }
            if (archive_write_data_block(writer, block, length, offset) != ARCHIVE_OK) {
                throw Refused{raw, "cannot write it: " + archiveError(writer)};
            }
        }
    }

    const fs::path& archivePath_;
    const ExtractLimits& limits_;
    EntryPolicy policy_;
    std::uint64_t totalBytes_ = 0;
};

// libarchive resolves entry names against the working directory and briefly changes the umask;
// both are shared by every thread of the agent. A thread of its own with unshare(CLONE_FS) gets
// a private copy of both, so the extraction can chdir into the staging directory safely.
template <class Work>
void runInPrivateWorkingDirectory(const fs::path& directory, Work&& work) {
    std::exception_ptr failure;
    std::jthread worker([&] {
        try {
            if (::unshare(CLONE_FS) != 0) {
                throw std::system_error(
                    errno, std::generic_category(),
                    "cannot give the extraction thread its own working directory");
            }
            if (::chdir(directory.c_str()) != 0) {
                throw std::system_error(errno, std::generic_category(),
                                        "cannot enter " + directory.string());
            }
            work();
        } catch (...) {
            failure = std::current_exception();
        }
    });
    worker.join();
    if (failure) std::rethrow_exception(failure);
}

fs::path normalisedContainer(const fs::path& containerDir) {
    fs::path path = fs::absolute(containerDir).lexically_normal();
    if (!path.has_filename()) path = path.parent_path();
    if (path == path.root_path())
        throw std::invalid_argument("the container cannot be the root directory");
    return path;
}

bool isSha256Hex(std::string_view text) {
    return text.size() == 64 && std::all_of(text.begin(), text.end(), [](char c) {
               return std::isxdigit(static_cast<unsigned char>(c));
           });
}

void syncFile(const fs::path& path, int extraFlags) {
    const UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | extraFlags));
    if (!fd || ::fsync(fd.get()) != 0) {
        throw std::system_error(errno, std::generic_category(), "cannot sync " + path.string());
    }
}

// Everything must be on disk before the rename publishes it, or a power loss could leave a
// container with a marker but missing data.
void syncTree(const fs::path& root) {
    for (const auto& item : fs::recursive_directory_iterator(root)) {
        const fs::file_status status = item.symlink_status();
        if (fs::is_regular_file(status)) syncFile(item.path(), 0);
        if (fs::is_directory(status)) syncFile(item.path(), O_DIRECTORY);
    }
    syncFile(root, O_DIRECTORY);
}

void writeMarker(const fs::path& path, std::string_view sha256) {
    const UniqueFd fd(
        ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
    const std::string content = std::string(sha256) + "\n";
    if (!fd ||
        ::write(fd.get(), content.data(), content.size()) != static_cast<ssize_t>(content.size())) {
        throw std::system_error(errno, std::generic_category(), "cannot write " + path.string());
    }
}

// Publishes the staged tree; an existing container is swapped out in the same atomic step and
// then removed, so there is never a moment without a complete container.
void commit(const fs::path& staging, const fs::path& container) {
    std::error_code error;
    const bool replacing = fs::exists(fs::symlink_status(container, error));
    const int rc = replacing ? ::renameat2(AT_FDCWD, staging.c_str(), AT_FDCWD, container.c_str(),
                                           RENAME_EXCHANGE)
                             : ::rename(staging.c_str(), container.c_str());
    if (rc != 0) {
        throw std::system_error(errno, std::generic_category(),
                                "cannot move " + staging.string() + " to " + container.string());
    }
    common::syncDirectory(container.parent_path());
    if (replacing) fs::remove_all(staging, error);  // a leftover is removed on the next attempt
}

}  // namespace

ExtractError::ExtractError(const fs::path& archive, std::string entry, std::string reason)
    : std::runtime_error(entry.empty() ? "cannot unpack " + archive.string() + ": " + reason
                                       : "refused entry '" + entry + "' of " + archive.string() +
                                             ": " + reason),
      entry_(std::move(entry)),
      reason_(std::move(reason)) {}

fs::path stagingDirFor(const fs::path& containerDir) {
    fs::path staging = normalisedContainer(containerDir);
    staging += ".partial";
    return staging;
}

bool removeHalfUnpacked(const fs::path& containerDir) {
    const fs::path staging = stagingDirFor(containerDir);
    std::error_code error;
    if (!fs::exists(fs::symlink_status(staging, error))) return false;
    fs::remove_all(staging, error);
    if (error) {
        throw std::system_error(error, "cannot remove the half-unpacked " + staging.string());
    }
    return true;
}

bool isCompletelyUnpacked(const fs::path& containerDir, std::string_view sha256) {
    const fs::path container = normalisedContainer(containerDir);
    std::error_code error;
    if (!fs::is_directory(fs::symlink_status(container, error))) return false;
    const fs::path marker = container / kUnpackedMarker;
    const UniqueFd fd(::open(marker.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) return false;
    char buffer[128];
    const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n <= 0) return false;
    std::string_view recorded(buffer, static_cast<std::size_t>(n));
    while (!recorded.empty() && std::isspace(static_cast<unsigned char>(recorded.back())))
        recorded.remove_suffix(1);
    return isSha256Hex(recorded) && recorded.size() == sha256.size() &&
           std::equal(recorded.begin(), recorded.end(), sha256.begin(), [](char a, char b) {
               return std::tolower(static_cast<unsigned char>(a)) ==
                      std::tolower(static_cast<unsigned char>(b));
           });
}

void extractPackage(const fs::path& archive, const fs::path& containerDir, std::string_view sha256,
                    const ExtractLimits& limits) {
    if (!isSha256Hex(sha256))
        throw std::invalid_argument("the SHA-256 must be 64 hexadecimal digits");
    const fs::path source = fs::absolute(archive);
    const fs::path container = normalisedContainer(containerDir);
    const fs::path staging = stagingDirFor(container);
    try {
        removeHalfUnpacked(container);
        fs::create_directories(container.parent_path());
        if (::mkdir(staging.c_str(), 0755) != 0) {
            throw std::system_error(errno, std::generic_category(),
                                    "cannot create " + staging.string());
        }
    } catch (const std::system_error& error) {
        throw ExtractError(source, "", error.what());
    }
    try {
        runInPrivateWorkingDirectory(staging, [&] { Unpacker(source, limits).run(); });
        writeMarker(staging / kUnpackedMarker, sha256);
        syncTree(staging);
        commit(staging, container);
    } catch (...) {
        std::error_code ignored;
        fs::remove_all(staging, ignored);
        try {
            throw;
        } catch (const ExtractError&) {
            throw;
        } catch (const std::system_error& error) {
            throw ExtractError(source, "", error.what());
        }
    }
}

}  // namespace rm::agent
