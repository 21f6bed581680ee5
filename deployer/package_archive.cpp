#include "deployer/package_archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <memory>
#include <system_error>
#include <utility>
#include <vector>

namespace rm::deployer {
namespace fs = std::filesystem;

namespace {

// 2000-01-01T00:00:00Z: a fixed, plausible timestamp for every entry of a built package.
constexpr time_t kFixedMtime = 946684800;
constexpr std::size_t kMaxArchiveEntries = 100000;
constexpr std::size_t kChunkBytes = 64 * 1024;

struct ArchiveReadDeleter {
    void operator()(archive* a) const { archive_read_free(a); }
};
struct ArchiveWriteDeleter {
    void operator()(archive* a) const { archive_write_free(a); }
};
struct ArchiveEntryDeleter {
    void operator()(archive_entry* e) const { archive_entry_free(e); }
};
struct FileCloser {
    void operator()(std::FILE* f) const { std::fclose(f); }
};
using ArchiveReader = std::unique_ptr<archive, ArchiveReadDeleter>;
using ArchiveWriterHandle = std::unique_ptr<archive, ArchiveWriteDeleter>;
using ArchiveEntry = std::unique_ptr<archive_entry, ArchiveEntryDeleter>;

std::string errnoText() {
    return std::generic_category().message(errno);
}

std::string archiveErrorText(archive* a) {
    const char* text = archive_error_string(a);
    return text ? text : "unknown libarchive error";
}

// Entry name as the agent will see it: "./" prefixes removed. Returns an empty string for the
// archive root itself.
std::string normaliseEntryName(std::string_view name) {
    while (name.size() >= 2 && name.substr(0, 2) == "./") name.remove_prefix(2);
    while (!name.empty() && name.back() == '/') name.remove_suffix(1);
    if (name == ".") return {};
    return std::string(name);
}

// Non-empty reason when an entry name could land outside the container once unpacked.
std::string unsafeEntryReason(std::string_view name) {
    if (!name.empty() && name.front() == '/') return "has an absolute path";
    std::size_t start = 0;
    while (start <= name.size()) {
        const std::size_t end = std::min(name.find('/', start), name.size());
        if (name.substr(start, end - start) == "..") return "has a '..' path component";
        start = end + 1;
    }
    return {};
}

// Non-empty reason when symbolic link `name` (relative to the package root) pointing at
// `target` would resolve outside the package.
std::string symlinkEscapeReason(const std::string& name, const std::string& target) {
    const fs::path targetPath(target);
    if (target.empty() || targetPath.is_absolute()) {
        return "is a symbolic link to '" + target +
               "'; links in a package must be relative and stay inside it";
    }
    const fs::path resolved = (fs::path(name).parent_path() / targetPath).lexically_normal();
    if (!resolved.empty() && *resolved.begin() == "..") {
        return "is a symbolic link to '" + target + "', which points outside the package";
    }
    return {};
}

// Non-empty reason when a link entry would point outside the container once unpacked.
std::string unsafeLinkReason(archive_entry* entry, const std::string& name) {
    if (const char* hardlink = archive_entry_hardlink(entry)) {
        if (const std::string reason = unsafeEntryReason(hardlink); !reason.empty()) {
            return "is a hard link whose target " + reason;
        }
    }
    if (archive_entry_filetype(entry) != AE_IFLNK) return {};
    const char* target = archive_entry_symlink(entry);
    return symlinkEscapeReason(name, target ? target : "");
}

}  // namespace

PackageProfile readProfileFromArchive(const fs::path& archivePath) {
    const std::string where = archivePath.string();
    ArchiveReader reader(archive_read_new());
    if (!reader) throw PackageArchiveError(where + ": libarchive could not allocate a reader");
    archive_read_support_filter_gzip(reader.get());
    archive_read_support_format_tar(reader.get());
    if (archive_read_open_filename(reader.get(), archivePath.c_str(), kChunkBytes) != ARCHIVE_OK) {
        throw PackageArchiveError(
            where + ": cannot open as a .tar.gz package: " + archiveErrorText(reader.get()));
    }

    std::string profileXml;
    bool foundProfile = false;
    std::size_t entries = 0;
    archive_entry* entry = nullptr;
    int status = ARCHIVE_OK;
    while ((status = archive_read_next_header(reader.get(), &entry)) == ARCHIVE_OK ||
           status == ARCHIVE_WARN) {
        if (++entries > kMaxArchiveEntries) {
            throw PackageArchiveError(where + ": has more than " +
                                      std::to_string(kMaxArchiveEntries) + " entries");
        }
        const char* rawName = archive_entry_pathname(entry);
        const std::string name = normaliseEntryName(rawName ? rawName : "");
        if (const std::string reason = unsafeEntryReason(rawName ? rawName : ""); !reason.empty()) {
            throw PackageArchiveError(where + ": entry '" + std::string(rawName) + "' " + reason +
                                      "; packages must only hold relative paths");
        }
        if (const std::string reason = unsafeLinkReason(entry, name); !reason.empty()) {
            throw PackageArchiveError(where + ": entry '" + name + "' " + reason);
        }
        if (name != "profile.xml") {
            archive_read_data_skip(reader.get());
            continue;
        }
        if (foundProfile) {
            throw PackageArchiveError(where + ": holds profile.xml more than once");
        }
        if (archive_entry_filetype(entry) != AE_IFREG) {
            throw PackageArchiveError(where + ": profile.xml is not a regular file");
        }
        foundProfile = true;
        std::array<char, kChunkBytes> buffer{};
        while (true) {
            const la_ssize_t n = archive_read_data(reader.get(), buffer.data(), buffer.size());
            if (n < 0) {
                throw PackageArchiveError(
                    where + ": cannot read profile.xml: " + archiveErrorText(reader.get()));
            }
            if (n == 0) break;
            profileXml.append(buffer.data(), static_cast<std::size_t>(n));
            if (profileXml.size() > ProfileLimits::kMaxDocumentBytes) {
                throw PackageArchiveError(where + ": profile.xml is larger than " +
                                          std::to_string(ProfileLimits::kMaxDocumentBytes) +
                                          " bytes");
            }
        }
    }
    if (status != ARCHIVE_EOF) {
        throw PackageArchiveError(
            where + ": is not a valid .tar.gz package: " + archiveErrorText(reader.get()));
    }
    if (!foundProfile) {
        throw PackageArchiveError(where +
                                  ": has no profile.xml at its root; every package needs one");
    }
    return parseProfile(profileXml, archivePath.filename().string() + ":profile.xml");
}

namespace {

enum class EntryKind { Directory, File, Symlink };

struct SourceEntry {
    std::string name;  // relative, '/'-separated
    fs::path path;
    EntryKind kind;
    std::uintmax_t size = 0;
    bool executable = false;
    std::string linkTarget;
};

// Lists what goes into a package: everything under `root` except `excluded` names, refusing
// anything an agent could not unpack safely.
class PackageSourceTree {
  public:
    // `skipped` is a relative name never to pack (the output archive when it is written inside
    // the tree); its temporary siblings are skipped too.
    PackageSourceTree(fs::path root, std::string skipped)
        : root_(std::move(root)), skipped_(std::move(skipped)) {
        if (!skipped_.empty()) {
            const fs::path skippedPath(skipped_);
            skippedTempPrefix_ =
                (skippedPath.parent_path() / ("." + skippedPath.filename().string() + ".tmp-"))
                    .generic_string();
        }
    }

    std::vector<SourceEntry> list() const {
        std::vector<SourceEntry> entries;
        std::error_code ec;
        fs::recursive_directory_iterator it(root_, fs::directory_options::none, ec);
        if (ec) fail(root_, "cannot list directory: " + ec.message());
        for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
            if (ec) fail(root_, "cannot list directory: " + ec.message());
            const fs::path& path = it->path();
            const std::string name = path.lexically_relative(root_).generic_string();
            if (isExcluded(name)) continue;
            entries.push_back(describe(path, name));
        }
        if (ec) fail(root_, "cannot list directory: " + ec.message());
        std::sort(entries.begin(), entries.end(), [](const SourceEntry& a, const SourceEntry& b) {
            // profile.xml first lets readers stop early; the rest in byte order.
            if ((a.name == "profile.xml") != (b.name == "profile.xml")) {
                return a.name == "profile.xml";
            }
            return a.name < b.name;
        });
        return entries;
    }

  private:
    [[noreturn]] static void fail(const fs::path& path, const std::string& what) {
        throw PackageArchiveError(path.string() + ": " + what);
    }

    bool isExcluded(const std::string& name) const {
        if (skipped_.empty()) return false;
        return name == skipped_ ||
               name.compare(0, skippedTempPrefix_.size(), skippedTempPrefix_) == 0;
    }

    SourceEntry describe(const fs::path& path, const std::string& name) const {
        struct stat st {};
        if (::lstat(path.c_str(), &st) != 0) fail(path, "cannot stat: " + errnoText());
        SourceEntry entry{name, path, EntryKind::File, 0, false, {}};
        if (S_ISDIR(st.st_mode)) {
            entry.kind = EntryKind::Directory;
        } else if (S_ISREG(st.st_mode)) {
            entry.size = static_cast<std::uintmax_t>(st.st_size);
            entry.executable = (st.st_mode & S_IXUSR) != 0;
        } else if (S_ISLNK(st.st_mode)) {
            entry.kind = EntryKind::Symlink;
            entry.linkTarget = fs::read_symlink(path).string();
            if (const std::string reason = symlinkEscapeReason(name, entry.linkTarget);
                !reason.empty()) {
                fail(path, reason);
            }
        } else {
            fail(path,
                 "is not a regular file, directory or symbolic link; packages cannot "
                 "hold devices, sockets or pipes");
        }
        return entry;
    }

    fs::path root_;
    std::string skipped_;
    std::string skippedTempPrefix_;
};

// A temporary file next to the destination that is renamed over it on commit() and removed
// otherwise, so a crash or error never leaves a half-written archive under the final name.
class AtomicOutputFile {
  public:
    explicit AtomicOutputFile(fs::path destination) : destination_(std::move(destination)) {
        std::string pattern =
            (destination_.parent_path() / ("." + destination_.filename().string() + ".tmp-XXXXXX"))
                .string();
        fd_ = ::mkstemp(pattern.data());
        if (fd_ < 0) {
            throw PackageArchiveError("cannot create a temporary file next to " +
                                      destination_.string() + ": " + errnoText());
        }
        temp_ = pattern;
        ::fchmod(fd_, 0644);
    }
    AtomicOutputFile(const AtomicOutputFile&) = delete;
    AtomicOutputFile& operator=(const AtomicOutputFile&) = delete;
    ~AtomicOutputFile() {
        if (fd_ >= 0) ::close(fd_);
        if (!committed_) ::unlink(temp_.c_str());
    }

    int fd() const { return fd_; }
    const fs::path& tempPath() const { return temp_; }

    void commit() {
        if (::fsync(fd_) != 0) fail("cannot flush " + temp_.string());
        const int fd = std::exchange(fd_, -1);
        if (::close(fd) != 0) fail("cannot close " + temp_.string());
        if (::rename(temp_.c_str(), destination_.c_str()) != 0) {
            fail("cannot rename " + temp_.string() + " to " + destination_.string());
        }
        committed_ = true;
        // Make the rename itself durable; failure here does not invalidate the archive.
        const fs::path parent =
            destination_.parent_path().empty() ? fs::path(".") : destination_.parent_path();
        if (const int dirFd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY); dirFd >= 0) {
            ::fsync(dirFd);
            ::close(dirFd);
        }
    }

  private:
    [[noreturn]] static void fail(const std::string& what) {
        throw PackageArchiveError(what + ": " + errnoText());
    }

    fs::path destination_;
    fs::path temp_;
    int fd_ = -1;
    bool committed_ = false;
};

// Writes a reproducible gzip-compressed tar stream to a file descriptor.
class ReproducibleTarWriter {
  public:
    ReproducibleTarWriter(int fd, std::string where)
        : archive_(archive_write_new()), where_(std::move(where)) {
        if (!archive_) throw PackageArchiveError(where_ + ": libarchive could not allocate");
        check(archive_write_set_format_pax_restricted(archive_.get()), "select tar format");
        check(archive_write_add_filter_gzip(archive_.get()), "enable gzip");
        // No time stamp in the gzip header, or two builds of the same tree would differ.
        check(archive_write_set_filter_option(archive_.get(), "gzip", "timestamp", nullptr),
              "disable gzip timestamp");
        check(archive_write_open_fd(archive_.get(), fd), "open output");
    }

    void add(const SourceEntry& source) {
        ArchiveEntry entry(archive_entry_new());
        if (!entry) throw PackageArchiveError(where_ + ": libarchive could not allocate");
        archive_entry_set_pathname(entry.get(), source.name.c_str());
        archive_entry_set_mtime(entry.get(), kFixedMtime, 0);
        archive_entry_set_uid(entry.get(), 0);
        archive_entry_set_gid(entry.get(), 0);
        archive_entry_set_uname(entry.get(), "root");
        archive_entry_set_gname(entry.get(), "root");
        switch (source.kind) {
            case EntryKind::Directory:
                archive_entry_set_filetype(entry.get(), AE_IFDIR);
                archive_entry_set_perm(entry.get(), 0755);
                break;
            case EntryKind::Symlink:
                archive_entry_set_filetype(entry.get(), AE_IFLNK);
                archive_entry_set_perm(entry.get(), 0777);
                archive_entry_set_symlink(entry.get(), source.linkTarget.c_str());
                break;
            case EntryKind::File:
                archive_entry_set_filetype(entry.get(), AE_IFREG);
                archive_entry_set_perm(entry.get(), source.executable ? 0755 : 0644);
                archive_entry_set_size(entry.get(), static_cast<la_int64_t>(source.size));
                break;
        }
        check(archive_write_header(archive_.get(), entry.get()), "write header of " + source.name);
        if (source.kind == EntryKind::File) copyData(source);
    }

    void close() { check(archive_write_close(archive_.get()), "finish archive"); }

  private:
    void check(int status, const std::string& what) {
        if (status != ARCHIVE_OK) {
            throw PackageArchiveError(where_ + ": cannot " + what + ": " +
                                      archiveErrorText(archive_.get()));
        }
    }

    void copyData(const SourceEntry& source) {
        std::unique_ptr<std::FILE, FileCloser> file(std::fopen(source.path.c_str(), "rb"));
        if (!file) {
            throw PackageArchiveError(source.path.string() + ": cannot open: " + errnoText());
        }
        std::array<char, kChunkBytes> buffer{};
        std::uintmax_t copied = 0;
        while (true) {
            const std::size_t n = std::fread(buffer.data(), 1, buffer.size(), file.get());
            if (n > 0) {
                if (archive_write_data(archive_.get(), buffer.data(), n) !=
                    static_cast<la_ssize_t>(n)) {
                    throw PackageArchiveError(where_ + ": cannot write " + source.name + ": " +
                                              archiveErrorText(archive_.get()));
                }
                copied += n;
            }
            if (n < buffer.size()) {
                if (std::ferror(file.get())) {
                    throw PackageArchiveError(source.path.string() + ": read error");
                }
                break;
            }
        }
        if (copied != source.size) {
            throw PackageArchiveError(source.path.string() +
                                      ": changed size while being packed; try again");
        }
    }

    ArchiveWriterHandle archive_;
    std::string where_;
};

std::string readSmallFile(const fs::path& path) {
    std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
    if (!file) throw PackageArchiveError(path.string() + ": cannot open: " + errnoText());
    std::string text;
    std::array<char, kChunkBytes> buffer{};
    while (true) {
        const std::size_t n = std::fread(buffer.data(), 1, buffer.size(), file.get());
        text.append(buffer.data(), n);
        if (text.size() > ProfileLimits::kMaxDocumentBytes) {
            throw ProfileError(path.string() + ": document is larger than " +
                               std::to_string(ProfileLimits::kMaxDocumentBytes) + " bytes");
        }
        if (n < buffer.size()) break;
    }
    if (std::ferror(file.get())) throw PackageArchiveError(path.string() + ": read error");
    return text;
}

}  // namespace

PackageProfile buildPackage(const fs::path& dir, const fs::path& out) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
        throw PackageArchiveError(dir.string() +
                                  ": is not a directory; give the package source "
                                  "directory holding profile.xml");
    }
    const fs::path root = fs::canonical(dir);
    const fs::path profilePath = root / "profile.xml";
    if (!fs::is_regular_file(fs::symlink_status(profilePath, ec))) {
        throw PackageArchiveError(dir.string() +
                                  ": has no profile.xml (a regular file) at its top level");
    }
    PackageProfile profile = parseProfile(readSmallFile(profilePath), profilePath.string());

    const fs::path outParent = out.parent_path().empty() ? fs::path(".") : out.parent_path();
    if (!fs::is_directory(outParent, ec)) {
        throw PackageArchiveError(out.string() + ": output directory " + outParent.string() +
                                  " does not exist");
    }
    // When the output lands inside the package directory it must not pack itself (nor the
    // temporary file it is written through).
    const fs::path outAbsolute = fs::weakly_canonical(out);
    const fs::path outRelative = outAbsolute.lexically_relative(root);
    std::string skipped;
    if (!outRelative.empty() && *outRelative.begin() != "..") {
        skipped = outRelative.generic_string();
    }
    const std::vector<SourceEntry> entries = PackageSourceTree(root, skipped).list();

    AtomicOutputFile output(outAbsolute);
    ReproducibleTarWriter writer(output.fd(), out.string());
    for (const SourceEntry& entry : entries) writer.add(entry);
    writer.close();
    output.commit();
    return profile;
}

std::string defaultPackageFileName(const PackageProfile& profile) {
    return profile.coords.packageName + "-" + profile.coords.packageVersion + ".tar.gz";
}

}  // namespace rm::deployer
