// Unpacks a package archive (.tar.gz) into its container directory so that nothing can land
// outside it, and so that a crash at any instant leaves either the complete result or something
// restart can recognise as incomplete and remove.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace rm::agent {

namespace fs = std::filesystem;

struct ExtractLimits {
    std::uint64_t maxTotalBytes = std::uint64_t{1} << 30;  // sum of unpacked file sizes
    std::uint64_t maxEntries = 100'000;
    std::size_t maxPathLength = 1024;  // of entry names and symlink targets
    // Called after each entry is written (with how many are), e.g. to inject a fault mid-unpack.
    std::function<void(std::uint64_t)> onEntry;
};

// Why an archive was refused or could not be unpacked. entry() is empty when the problem is the
// archive as a whole (unreadable, corrupt) or the disk.
class ExtractError : public std::runtime_error {
  public:
    ExtractError(const fs::path& archive, std::string entry, std::string reason);
    const std::string& entry() const { return entry_; }
    const std::string& reason() const { return reason_; }

  private:
    std::string entry_;
    std::string reason_;
};

// Written last into a complete container; holds the SHA-256 of the archive it came from. Archive
// entries with this name are refused.
inline constexpr std::string_view kUnpackedMarker = ".rm-unpacked";

// Unpacks `archive` into `containerDir`, replacing an existing container atomically. Works in
// `<containerDir>.partial`, syncs it, writes the marker holding `sha256` (64 hex digits) and
// renames it into place. Refuses (throws ExtractError naming the entry and the reason, leaving
// neither the new container nor the staging directory behind, and an old container untouched):
// absolute or non-normalised names, `..`, entries written through a symlink or over an earlier
// entry, symlinks resolving outside the container (also through other symlinks), hardlinks to
// anything but a regular file extracted earlier, devices, FIFOs, sockets, and archives beyond
// `limits`. Set-user-ID, set-group-ID and sticky bits are dropped. Not to be called concurrently
// for the same container.
void extractPackage(const fs::path& archive, const fs::path& containerDir, std::string_view sha256,
                    const ExtractLimits& limits = {});

// True when `containerDir` holds a complete unpack of the archive with this SHA-256.
bool isCompletelyUnpacked(const fs::path& containerDir, std::string_view sha256);

// Removes what a crash during extractPackage left behind. Returns true if there was something.
bool removeHalfUnpacked(const fs::path& containerDir);

// `<containerDir>.partial`
fs::path stagingDirFor(const fs::path& containerDir);

}  // namespace rm::agent
