#include "deployer/repository.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>
#include <system_error>

#include "deployer/package_archive.h"
#include "deployer/sha256.h"

namespace rm::deployer {
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kArchiveSuffix = ".tar.gz";

bool isArchiveName(const std::string& name) {
    return name.size() > kArchiveSuffix.size() &&
           name.compare(name.size() - kArchiveSuffix.size(), kArchiveSuffix.size(),
                        kArchiveSuffix) == 0;
}

}  // namespace

std::optional<Repository::Fingerprint> Repository::fingerprintOf(const fs::path& path,
                                                                 std::string& error) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        error = "cannot stat: " + std::generic_category().message(errno);
        return std::nullopt;
    }
    return Fingerprint{
        static_cast<std::uintmax_t>(st.st_size),
        static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec,
        static_cast<std::uint64_t>(st.st_ino)};
}

Repository::Repository(fs::path directory) : directory_(std::move(directory)) {
    rescan();
}

std::map<std::string, Repository::Fingerprint> Repository::listArchives(
    std::vector<RepositoryProblem>& problems) const {
    std::error_code ec;
    if (!fs::is_directory(directory_, ec)) {
        throw std::runtime_error("software repository " + directory_.string() +
                                 " is not a readable directory" +
                                 (ec ? ": " + ec.message() : std::string()));
    }
    std::map<std::string, Fingerprint> found;
    fs::recursive_directory_iterator it(directory_, fs::directory_options::skip_permission_denied,
                                        ec);
    if (ec) {
        throw std::runtime_error("cannot list software repository " + directory_.string() + ": " +
                                 ec.message());
    }
    for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (ec) {
            problems.push_back({"", "listing stopped early: " + ec.message()});
            break;
        }
        const fs::path& path = it->path();
        const std::string name = path.filename().string();
        if (!name.empty() && name.front() == '.') {
            // Hidden entries include temporary files of packages being written.
            if (it->is_directory(ec)) it.disable_recursion_pending();
            continue;
        }
        const std::string relative = path.lexically_relative(directory_).generic_string();
        const fs::file_status status = it->symlink_status(ec);
        if (ec || fs::is_directory(status) || !isArchiveName(name)) continue;
        if (fs::is_symlink(status)) {
            problems.push_back({relative, "is a symbolic link; only regular files are indexed"});
            continue;
        }
        if (!fs::is_regular_file(status)) continue;
        std::string error;
        const auto fingerprint = fingerprintOf(path, error);
        if (!fingerprint) {
            problems.push_back({relative, error});
            continue;
        }
        found.emplace(relative, *fingerprint);
    }
    return found;
}

Repository::CachedArchive Repository::loadArchive(const std::string& relativePath,
                                                  const Fingerprint& fingerprint) const {
    // The fingerprint was taken before reading: if the file changes while it is read, the
    // next rescan sees a different fingerprint and reads it again.
    CachedArchive cached{fingerprint, nullptr, {}};
    const fs::path path = directory_ / relativePath;
    try {
        IndexedPackage package;
        package.profile = readProfileFromArchive(path);
        package.sha256 = sha256File(path);
        package.sizeBytes = fingerprint.size;
        package.relativePath = relativePath;
        // Profile and checksum come from two reads; if the file was replaced in between they
        // could describe different archives. Publish them only if the file stayed the same.
        std::string error;
        if (fingerprintOf(path, error) != fingerprint) {
            cached.error = "changed while being indexed; it will be read again on the next rescan";
            return cached;
        }
        cached.package = std::make_shared<const IndexedPackage>(std::move(package));
    } catch (const std::exception& e) {
        cached.error = e.what();
    }
    return cached;
}

RescanResult Repository::rescan() {
    std::lock_guard scanLock(scanMutex_);
    std::vector<RepositoryProblem> problems;
    const std::map<std::string, Fingerprint> current = listArchives(problems);

    RescanResult result;
    for (auto it = archives_.begin(); it != archives_.end();) {
        if (!current.contains(it->first)) {
            result.removed.push_back(it->first);
            it = archives_.erase(it);
        } else {
            ++it;
        }
    }
    for (const auto& [relative, fingerprint] : current) {
        const auto known = archives_.find(relative);
        if (known != archives_.end() && known->second.fingerprint == fingerprint) continue;
        (known == archives_.end() ? result.added : result.replaced).push_back(relative);
        archives_[relative] = loadArchive(relative, fingerprint);
    }

    const bool rebuild = result.changed() || !indexBuilt_;
    std::vector<IndexedPackage> packages;
    if (rebuild) packages.reserve(archives_.size());
    for (const auto& [relative, cached] : archives_) {
        if (!cached.package) {
            problems.push_back({relative, cached.error});
        } else if (rebuild) {
            packages.push_back(*cached.package);
        }
    }

    std::shared_ptr<const RepositoryIndex> index;
    if (rebuild) {
        indexProblems_.clear();
        index = RepositoryIndex::build(std::move(packages), &indexProblems_);
        indexBuilt_ = true;
    }
    problems.insert(problems.end(), indexProblems_.begin(), indexProblems_.end());
    std::sort(problems.begin(), problems.end(),
              [](const RepositoryProblem& a, const RepositoryProblem& b) {
                  return a.file != b.file ? a.file < b.file : a.reason < b.reason;
              });

    std::lock_guard publishLock(publishMutex_);
    if (index) index_ = std::move(index);
    problems_ = std::move(problems);
    return result;
}

std::shared_ptr<const RepositoryIndex> Repository::snapshot() const {
    std::lock_guard lock(publishMutex_);
    return index_;
}

std::vector<RepositoryProblem> Repository::problems() const {
    std::lock_guard lock(publishMutex_);
    return problems_;
}

}  // namespace rm::deployer
