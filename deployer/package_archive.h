#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>

#include "deployer/profile.h"

namespace rm::deployer {

// Thrown when a package archive cannot be read or built; the message names the archive (or
// source directory) and what is wrong with it. Profile problems surface as ProfileError.
class PackageArchiveError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// Reads and parses `profile.xml` (or `./profile.xml`) at the root of a .tar.gz package.
// The whole archive is scanned so that packages an agent would refuse to unpack are rejected
// here too: absolute paths, ".." components, a second profile.xml. At most
// ProfileLimits::kMaxDocumentBytes of the profile are read.
PackageProfile readProfileFromArchive(const std::filesystem::path& archive);

// Packs directory `dir` (which must hold a valid profile.xml) into the .tar.gz `out`, and
// returns the parsed profile. The archive is reproducible: profile.xml first, then every
// other entry sorted by path, fixed mtime/uid/gid/owner names, permissions reduced to 0644 /
// 0755, no gzip timestamp. Symbolic links must stay inside `dir`; other special files are
// refused. `out` is written to a temporary file next to it and renamed into place, so readers
// never see a partial archive; if `out` lies inside `dir` it is not packed into itself.
// Throws PackageArchiveError or ProfileError.
PackageProfile buildPackage(const std::filesystem::path& dir, const std::filesystem::path& out);

// "<PackageName>-<PackageVersion>.tar.gz", the name `rmctl package` uses by default.
std::string defaultPackageFileName(const PackageProfile& profile);

}  // namespace rm::deployer
