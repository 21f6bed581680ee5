#include "deployer/repository_index.h"

#include <algorithm>
#include <numeric>

namespace rm::deployer {
namespace {

std::string serviceKey(std::string_view serviceClass, std::string_view serviceName) {
    std::string key;
    key.reserve(serviceClass.size() + serviceName.size() + 1);
    key.append(serviceClass).append("/").append(serviceName);
    return key;
}

std::string identityKey(std::string_view serviceClass, std::string_view serviceName,
                        std::string_view packageName) {
    std::string key = serviceKey(serviceClass, serviceName);
    key.append("/").append(packageName);
    return key;
}

// A package with its versions parsed once, used while building.
struct Candidate {
    IndexedPackage package;
    Version serviceVersion;
    Version packageVersion;
};

bool sameIdentity(const PackageCoordinates& a, const PackageCoordinates& b) {
    return a.serviceClass == b.serviceClass && a.serviceName == b.serviceName &&
           a.packageName == b.packageName;
}

}  // namespace

std::shared_ptr<const RepositoryIndex> RepositoryIndex::build(
    std::vector<IndexedPackage> packages, std::vector<RepositoryProblem>* problems) {
    std::vector<Candidate> candidates;
    candidates.reserve(packages.size());
    for (IndexedPackage& package : packages) {
        auto serviceVersion = Version::tryParse(package.profile.coords.serviceVersion);
        auto packageVersion = Version::tryParse(package.profile.coords.packageVersion);
        if (!serviceVersion || !packageVersion) {
            if (problems) {
                problems->push_back({package.relativePath, "invalid version in coordinates " +
                                                               package.profile.coords.key() +
                                                               "; ignored"});
            }
            continue;
        }
        candidates.push_back(
            {std::move(package), std::move(*serviceVersion), std::move(*packageVersion)});
    }

    // Coordinate order makes ids, candidate lists and the duplicate winner deterministic.
    // Sorting positions rather than the (large) candidates avoids moving them around.
    std::vector<std::size_t> order(candidates.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::sort(order.begin(), order.end(), [&](std::size_t i, std::size_t j) {
        const Candidate& a = candidates[i];
        const Candidate& b = candidates[j];
        const auto& x = a.package.profile.coords;
        const auto& y = b.package.profile.coords;
        if (const auto c = x.serviceClass <=> y.serviceClass; c != 0) return c < 0;
        if (const auto c = x.serviceName <=> y.serviceName; c != 0) return c < 0;
        if (const auto c = x.packageName <=> y.packageName; c != 0) return c < 0;
        if (const auto c = a.packageVersion <=> b.packageVersion; c != 0) return c < 0;
        if (const auto c = a.serviceVersion <=> b.serviceVersion; c != 0) return c < 0;
        return a.package.relativePath < b.package.relativePath;
    });

    std::shared_ptr<RepositoryIndex> index(new RepositoryIndex());
    index->packages_.reserve(candidates.size());
    index->nodes_.reserve(candidates.size());
    for (const std::size_t position : order) {
        Candidate& candidate = candidates[position];
        if (!index->packages_.empty()) {
            const PackageId last = static_cast<PackageId>(index->packages_.size() - 1);
            const IndexedPackage& kept = index->packages_[last];
            if (sameIdentity(kept.profile.coords, candidate.package.profile.coords) &&
                index->nodes_[last].packageVersion == candidate.packageVersion &&
                index->nodes_[last].serviceVersion == candidate.serviceVersion) {
                if (problems) {
                    problems->push_back({candidate.package.relativePath,
                                         "has the same coordinates " +
                                             candidate.package.profile.coords.key() + " as " +
                                             kept.relativePath + "; ignored (remove one)"});
                }
                continue;
            }
        }
        const bool newIdentity =
            index->packages_.empty() ||
            !sameIdentity(index->packages_.back().profile.coords, candidate.package.profile.coords);
        if (newIdentity) {
            const auto& c = candidate.package.profile.coords;
            index->identityByKey_.emplace(identityKey(c.serviceClass, c.serviceName, c.packageName),
                                          static_cast<IdentityId>(index->identities_.size()));
            index->identities_.emplace_back();
        }
        const auto id = static_cast<PackageId>(index->packages_.size());
        const auto identity = static_cast<IdentityId>(index->identities_.size() - 1);
        index->identities_.back().push_back(id);
        index->nodes_.push_back(Node{std::move(candidate.serviceVersion),
                                     std::move(candidate.packageVersion),
                                     identity,
                                     {},
                                     candidate.package.profile.coords.key()});
        index->packages_.push_back(std::move(candidate.package));
    }
    // Ascending order was convenient to build; the resolver wants the highest first.
    for (auto& list : index->identities_) std::reverse(list.begin(), list.end());

    for (PackageId id = 0; id < index->packages_.size(); ++id) {
        const IndexedPackage& package = index->packages_[id];
        Node& node = index->nodes_[id];
        node.dependencyTargets.reserve(package.profile.dependencies.size());
        for (const DependencySpec& dep : package.profile.dependencies) {
            const auto found =
                index->findIdentity(dep.serviceClass, dep.serviceName, dep.packageName);
            node.dependencyTargets.push_back(found.value_or(kNoIdentity));
        }
        index->byPath_.emplace(package.relativePath, id);

        const auto& c = package.profile.coords;
        auto& releases = index->services_[serviceKey(c.serviceClass, c.serviceName)];
        auto release = std::find_if(releases.begin(), releases.end(), [&](const ServiceRelease& r) {
            return r.version == node.serviceVersion;
        });
        if (release == releases.end()) {
            releases.push_back(ServiceRelease{node.serviceVersion, {}});
            release = std::prev(releases.end());
        }
        release->packages.push_back(id);
    }
    for (auto& [key, releases] : index->services_) {
        std::sort(
            releases.begin(), releases.end(),
            [](const ServiceRelease& a, const ServiceRelease& b) { return a.version < b.version; });
    }
    return index;
}

std::optional<RepositoryIndex::IdentityId> RepositoryIndex::findIdentity(
    std::string_view serviceClass, std::string_view serviceName,
    std::string_view packageName) const {
    const auto it = identityByKey_.find(identityKey(serviceClass, serviceName, packageName));
    if (it == identityByKey_.end()) return std::nullopt;
    return it->second;
}

const std::vector<RepositoryIndex::ServiceRelease>* RepositoryIndex::findService(
    std::string_view serviceClass, std::string_view serviceName) const {
    const auto it = services_.find(serviceKey(serviceClass, serviceName));
    return it == services_.end() ? nullptr : &it->second;
}

std::vector<const IndexedPackage*> RepositoryIndex::servicePackages(
    std::string_view serviceClass, std::string_view serviceName,
    std::optional<std::string_view> serviceVersion) const {
    std::vector<const IndexedPackage*> result;
    const auto* releases = findService(serviceClass, serviceName);
    if (!releases) return result;
    std::optional<Version> wanted;
    if (serviceVersion) {
        wanted = Version::tryParse(*serviceVersion);
        if (!wanted) return result;
    }
    for (const ServiceRelease& release : *releases) {
        if (wanted && release.version != *wanted) continue;
        for (const PackageId id : release.packages) result.push_back(&packages_[id]);
    }
    return result;
}

std::vector<std::string> RepositoryIndex::serviceVersions(std::string_view serviceClass,
                                                          std::string_view serviceName) const {
    std::vector<std::string> result;
    if (const auto* releases = findService(serviceClass, serviceName)) {
        for (const ServiceRelease& release : *releases) {
            result.push_back(release.version.toString());
        }
    }
    return result;
}

std::vector<const IndexedPackage*> RepositoryIndex::packageVersions(
    std::string_view serviceClass, std::string_view serviceName,
    std::string_view packageName) const {
    std::vector<const IndexedPackage*> result;
    if (const auto identity = findIdentity(serviceClass, serviceName, packageName)) {
        const auto list = candidates(*identity);
        for (auto it = list.rbegin(); it != list.rend(); ++it) result.push_back(&packages_[*it]);
    }
    return result;
}

const IndexedPackage* RepositoryIndex::findByPath(std::string_view relativePath) const {
    const auto it = byPath_.find(std::string(relativePath));
    return it == byPath_.end() ? nullptr : &packages_[it->second];
}

std::optional<RepositoryIndex::PackageId> RepositoryIndex::findId(
    const PackageCoordinates& coords) const {
    const auto identity = findIdentity(coords.serviceClass, coords.serviceName, coords.packageName);
    const auto serviceVersion = Version::tryParse(coords.serviceVersion);
    const auto packageVersion = Version::tryParse(coords.packageVersion);
    if (!identity || !serviceVersion || !packageVersion) return std::nullopt;
    for (const PackageId id : candidates(*identity)) {
        if (nodes_[id].packageVersion == *packageVersion &&
            nodes_[id].serviceVersion == *serviceVersion) {
            return id;
        }
    }
    return std::nullopt;
}

const IndexedPackage* RepositoryIndex::find(const PackageCoordinates& coords) const {
    const auto id = findId(coords);
    return id ? &packages_[*id] : nullptr;
}

}  // namespace rm::deployer
