// libFuzzer target for the agent's safe unpacking (agent/archive_extractor.h). The agent
// downloads package archives from a repository and unpacks them as itself on every node: a
// malicious archive would try to write outside the container (absolute or ".." names, writing
// through a symlink, symlinks or hardlinks leading out, alone or chained), plant devices or
// set-id files, or exhaust the disk. Each input is unpacked into a container inside a fresh
// temporary directory next to a sentinel directory. Beyond not crashing, afterwards: only
// ExtractError came out; the temporary directory holds the container (on success) and the
// untouched sentinel, nothing else (no staging leftovers); inside the container there are only
// regular files, directories and symlinks, no set-id or sticky bits, every symlink resolves
// (physically, through the others) inside it, every hardlinked file has all its links inside it,
// and the completion marker is there. When the RM's archive reader (deployer) also accepts the
// archive, the profile.xml the agent unpacked is a regular file that parses to the same profile.
// Finally the temporary directory is removed and must be gone. Inputs starting with "#entries"
// list entries to pack first (tests/fuzz/tar_spec.h), so that names, link targets, types and
// modes get fuzzed, not only libarchive's decoding. RM_FUZZ_VERBOSE=1 prints why an input was
// refused.
#include <sys/stat.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <system_error>

#include "agent/archive_extractor.h"
#include "deployer/package_archive.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/fuzz/profile_checks.h"
#include "tests/fuzz/tar_spec.h"

namespace {

namespace fs = std::filesystem;
using rm::fuzz::require;

constexpr std::string_view kSha256 =
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

bool isInside(const fs::path& path, const fs::path& root) {
    const std::string p = path.string();
    const std::string r = root.string();
    return p == r || (p.size() > r.size() && p.compare(0, r.size(), r) == 0 && p[r.size()] == '/');
}

std::string readAll(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void checkContainer(const fs::path& container) {
    const fs::path root = fs::canonical(container);
    std::map<ino_t, nlink_t> linksSeen;
    std::map<ino_t, nlink_t> linksWanted;
    for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
         ++it) {
        struct stat st {};
        require(::lstat(it->path().c_str(), &st) == 0, "cannot lstat an unpacked entry");
        require(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) || S_ISLNK(st.st_mode),
                "unpacked a device, FIFO or socket");
        require((st.st_mode & (S_ISUID | S_ISGID | S_ISVTX)) == 0, "kept a set-id or sticky bit");
        if (S_ISLNK(st.st_mode)) {
            std::error_code error;
            const fs::path resolved = fs::weakly_canonical(it->path(), error);
            // A chain the kernel gives up on (ELOOP) leads nowhere, so it cannot lead out.
            if (error && error != std::errc::too_many_symbolic_link_levels)
                rm::fuzz::invariantBroken("cannot resolve an unpacked symlink: " + error.message());
            if (!error)
                require(isInside(resolved, root), "a symlink resolves outside the container");
        }
        if (S_ISREG(st.st_mode)) {
            ++linksSeen[st.st_ino];
            linksWanted[st.st_ino] = st.st_nlink;
        }
    }
    require(linksSeen == linksWanted, "a hardlinked file has a link outside the container");
    require(rm::agent::isCompletelyUnpacked(container, kSha256), "no completion marker");
}

// The RM must never accept a package whose profile differs from the one the agent unpacks.
void crossCheckProfile(const fs::path& archive, const fs::path& container) {
    std::optional<rm::deployer::PackageProfile> rmView;
    try {
        rmView = rm::deployer::readProfileFromArchive(archive);
    } catch (const rm::deployer::PackageArchiveError&) {
        return;
    } catch (const rm::deployer::ProfileError&) {
        return;
    }
    const fs::path profile = container / "profile.xml";
    require(fs::is_regular_file(fs::symlink_status(profile)),
            "the RM accepts a package whose unpacked profile.xml is not a regular file");
    const rm::deployer::PackageProfile agentView =
        rm::deployer::parseProfile(readAll(profile), "unpacked profile.xml");
    require(rm::fuzz::describeProfile(agentView) == rm::fuzz::describeProfile(*rmView),
            "the RM and the agent read different profiles from one archive");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static rm::fuzz::ScratchFile archiveFile("archive-extract-fuzz");
    const fs::path archive = rm::fuzz::writeArchive(archiveFile, data, size);
    const fs::path base = rm::fuzz::makeTempDir("archive-extract-fuzz");
    const fs::path container = base / "container";
    const fs::path sentinelDir = base / "outside";
    fs::create_directory(sentinelDir);
    { std::ofstream(sentinelDir / "sentinel") << "untouched"; }

    rm::agent::ExtractLimits limits;
    limits.maxTotalBytes = 32u << 20;  // keep hostile sizes cheap; the limit code still runs
    limits.maxEntries = 4096;
    bool unpacked = false;
    try {
        rm::agent::extractPackage(archive, container, kSha256, limits);
        unpacked = true;
    } catch (const rm::agent::ExtractError& e) {
        require(!e.reason().empty(), "an ExtractError without a reason");
        if (std::getenv("RM_FUZZ_VERBOSE") != nullptr) std::fprintf(stderr, "%s\n", e.what());
    }

    // Nothing but the container (when unpacked) and the untouched sentinel next to it.
    for (const auto& entry : fs::directory_iterator(base)) {
        const std::string name = entry.path().filename().string();
        require(name == "outside" || (unpacked && name == "container"),
                "extraction left something next to the container: " + name);
    }
    require(unpacked == fs::exists(fs::symlink_status(container)),
            "the container exists exactly when unpacking succeeded");
    require(std::distance(fs::directory_iterator(sentinelDir), fs::directory_iterator()) == 1 &&
                readAll(sentinelDir / "sentinel") == "untouched",
            "extraction changed the directory next to the container");
    if (unpacked) {
        checkContainer(container);
        crossCheckProfile(archive, container);
    }

    std::error_code error;
    fs::remove_all(base, error);
    require(!error && !fs::exists(fs::symlink_status(base)), "the temporary directory remains");
    return 0;
}
