#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "deployer/repository_index.h"

namespace rm::deployer {

// What one rescan() saw change, as relative paths in byte order. Broken archives count too.
struct RescanResult {
    std::vector<std::string> added;
    std::vector<std::string> replaced;
    std::vector<std::string> removed;
    bool changed() const { return !added.empty() || !replaced.empty() || !removed.empty(); }
};

// The software repository: a directory tree of *.tar.gz packages (hidden files and
// directories and symbolic links are ignored). Keeps an index of their profiles, SHA-256 sums
// and sizes, and publishes it as an immutable snapshot that readers on any thread can hold
// while a rescan builds the next one.
//
// A broken archive is listed in problems() and left out of the index; it never stops the
// others from being indexed. Unchanged files (same size, mtime and inode) are not re-read.
class Repository {
  public:
    // Indexes `directory` once. Throws std::runtime_error when it is not a readable directory.
    explicit Repository(std::filesystem::path directory);
    Repository(const Repository&) = delete;
    Repository& operator=(const Repository&) = delete;

    // Re-reads what changed since the last scan and publishes a new snapshot when anything
    // did. Safe to call from any thread (rescans are serialised). Throws std::runtime_error,
    // keeping the previous snapshot, when the directory itself has become unreadable.
    RescanResult rescan();

    std::shared_ptr<const RepositoryIndex> snapshot() const;
    // Problems found by the latest scan, sorted by file.
    std::vector<RepositoryProblem> problems() const;
    const std::filesystem::path& directory() const { return directory_; }

  private:
    struct Fingerprint {
        std::uintmax_t size = 0;
        std::int64_t mtimeNs = 0;
        std::uint64_t inode = 0;
        friend bool operator==(const Fingerprint&, const Fingerprint&) = default;
    };
    // Last known state of one archive: its package, or why it could not be indexed.
    struct CachedArchive {
        Fingerprint fingerprint;
        std::shared_ptr<const IndexedPackage> package;
        std::string error;
    };

    static std::optional<Fingerprint> fingerprintOf(const std::filesystem::path& path,
                                                    std::string& error);
    std::map<std::string, Fingerprint> listArchives(std::vector<RepositoryProblem>& problems) const;
    CachedArchive loadArchive(const std::string& relativePath,
                              const Fingerprint& fingerprint) const;

    const std::filesystem::path directory_;

    std::mutex scanMutex_;  // serialises rescans; guards the three members below
    std::map<std::string, CachedArchive> archives_;
    std::vector<RepositoryProblem> indexProblems_;  // duplicates found by the last index build
    bool indexBuilt_ = false;

    mutable std::mutex publishMutex_;  // guards the published state below
    std::shared_ptr<const RepositoryIndex> index_;
    std::vector<RepositoryProblem> problems_;
};

}  // namespace rm::deployer
