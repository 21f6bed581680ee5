#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "deployer/profile.h"
#include "deployer/version.h"

namespace rm::deployer {

// One archive of the repository as the index knows it.
struct IndexedPackage {
    PackageProfile profile;
    std::string sha256;  // lower-case hex of the archive
    std::uint64_t sizeBytes = 0;
    std::string relativePath;  // '/'-separated, relative to the repository directory
};

// Something wrong with one file of the repository; never fatal for the others.
struct RepositoryProblem {
    std::string file;  // relative path
    std::string reason;
    friend bool operator==(const RepositoryProblem&, const RepositoryProblem&) = default;
};

// An immutable, query-optimised view of a set of packages. Shared between threads through
// std::shared_ptr<const RepositoryIndex>; nothing in it changes after build().
//
// Besides the lookups other components need, it exposes a compact "graph view" (integer ids
// for packages and for package identities, i.e. class/name/packageName regardless of
// version) so the resolver can work without string lookups.
class RepositoryIndex {
  public:
    using PackageId = std::uint32_t;
    using IdentityId = std::uint32_t;
    static constexpr IdentityId kNoIdentity = std::numeric_limits<IdentityId>::max();

    // Packages of one service version.
    struct ServiceRelease {
        Version version;
        std::vector<PackageId> packages;  // sorted by package name, then version
    };

    // Builds an index. Packages with the same coordinates (versions compared numerically) are
    // kept once: the one with the smallest relativePath wins and each other one is reported in
    // `problems` (when given), as is a package whose coordinates hold an invalid version.
    // Package ids follow coordinate order, so they are stable for equal input.
    static std::shared_ptr<const RepositoryIndex> build(
        std::vector<IndexedPackage> packages, std::vector<RepositoryProblem>* problems = nullptr);

    std::size_t size() const { return packages_.size(); }
    const std::vector<IndexedPackage>& packages() const { return packages_; }

    // All packages of a service; of one service version when `serviceVersion` is given
    // (compared numerically). Sorted by service version, package name, package version.
    std::vector<const IndexedPackage*> servicePackages(
        std::string_view serviceClass, std::string_view serviceName,
        std::optional<std::string_view> serviceVersion = std::nullopt) const;
    // Service versions available, ascending, as written in the profiles.
    std::vector<std::string> serviceVersions(std::string_view serviceClass,
                                             std::string_view serviceName) const;
    // Every version of one package across service versions, ascending by package version
    // (then service version).
    std::vector<const IndexedPackage*> packageVersions(std::string_view serviceClass,
                                                       std::string_view serviceName,
                                                       std::string_view packageName) const;
    // For serving archives: only indexed paths are found, so no path can escape the directory.
    const IndexedPackage* findByPath(std::string_view relativePath) const;
    const IndexedPackage* find(const PackageCoordinates& coords) const;

    // --- graph view -------------------------------------------------------------------------
    const IndexedPackage& package(PackageId id) const { return packages_[id]; }
    const Version& packageVersionOf(PackageId id) const { return nodes_[id].packageVersion; }
    const Version& serviceVersionOf(PackageId id) const { return nodes_[id].serviceVersion; }
    IdentityId identityOf(PackageId id) const { return nodes_[id].identity; }
    // profile.coords.key(), computed once.
    const std::string& keyOf(PackageId id) const { return nodes_[id].key; }
    // Identity of each dependency of `id`, parallel to profile.dependencies; kNoIdentity when
    // the repository has no package of that class/name/packageName at all.
    std::span<const IdentityId> dependencyTargets(PackageId id) const {
        return nodes_[id].dependencyTargets;
    }
    // Packages of an identity, highest package version first (ties: highest service version).
    std::span<const PackageId> candidates(IdentityId id) const { return identities_[id]; }
    std::size_t identityCount() const { return identities_.size(); }
    std::optional<IdentityId> findIdentity(std::string_view serviceClass,
                                           std::string_view serviceName,
                                           std::string_view packageName) const;
    // Service versions ascending, or nullptr for an unknown service.
    const std::vector<ServiceRelease>* findService(std::string_view serviceClass,
                                                   std::string_view serviceName) const;

  private:
    struct Node {
        Version serviceVersion;
        Version packageVersion;
        IdentityId identity;
        std::vector<IdentityId> dependencyTargets;
        std::string key;
    };

    RepositoryIndex() = default;
    std::optional<PackageId> findId(const PackageCoordinates& coords) const;

    std::vector<IndexedPackage> packages_;
    std::vector<Node> nodes_;
    std::vector<std::vector<PackageId>> identities_;
    std::unordered_map<std::string, IdentityId> identityByKey_;  // "class/name/package"
    std::map<std::string, std::vector<ServiceRelease>, std::less<>> services_;  // "class/name"
    std::unordered_map<std::string, PackageId> byPath_;
};

}  // namespace rm::deployer
