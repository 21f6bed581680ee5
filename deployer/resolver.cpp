#include "deployer/resolver.h"

#include <algorithm>
#include <deque>
#include <functional>
#include <queue>
#include <unordered_map>
#include <unordered_set>

namespace rm::deployer {
namespace {

using PackageId = RepositoryIndex::PackageId;
using IdentityId = RepositoryIndex::IdentityId;

std::string describeRange(const VersionRange& range) {
    return range.isAny() ? std::string("any version") : "version " + range.toString();
}

std::string joinSentences(const std::vector<std::string>& sentences) {
    std::string text;
    for (const std::string& s : sentences) {
        if (!text.empty()) text += "; ";
        text += s;
    }
    return text;
}

// One resolution: the state of the constraint propagation over an index for one request.
class Resolution {
  public:
    Resolution(const RepositoryIndex& index, const ResolveRequest& request)
        : index_(index), request_(request) {}

    ResolutionResult run() {
        if (chooseRoots()) {
            propagate();
            order();
        }
        result_.success = result_.problems.empty();
        result_.errorDescription = result_.success ? "-" : joinSentences(result_.problems);
        return std::move(result_);
    }

  private:
    struct Constraint {
        const VersionRange* range;
        PackageId requiredBy;
    };
    // What the resolution knows about one package identity.
    struct Slot {
        std::vector<Constraint> constraints;
        std::optional<PackageId> pinned;  // a requested package: exactly this one
        std::optional<PackageId> selected;
        bool failed = false;
    };

    const std::string& keyOf(PackageId id) const { return index_.keyOf(id); }

    std::string requestText() const {
        std::string text = request_.serviceClass + "/" + request_.serviceName;
        if (request_.serviceVersion) text += " version " + *request_.serviceVersion;
        if (request_.packageName) text += " package " + *request_.packageName;
        if (request_.packageVersion) text += " version " + *request_.packageVersion;
        return text;
    }

    void reportMissingRequest(const std::string& why) {
        result_.missing.push_back(
            {request_.serviceClass, request_.serviceName, request_.serviceVersion.value_or(""),
             request_.packageName.value_or(""), request_.packageVersion.value_or(""), ""});
        result_.problems.push_back(why);
    }

    // Picks the service version and the requested packages; false when there is nothing to
    // resolve.
    bool chooseRoots() {
        std::optional<Version> wantedService;
        VersionRange wantedPackage;
        try {
            if (request_.serviceVersion) wantedService = Version::parse(*request_.serviceVersion);
            if (request_.packageVersion)
                wantedPackage = VersionRange::parse(*request_.packageVersion);
        } catch (const VersionError& e) {
            result_.problems.push_back("the request for " + requestText() +
                                       " is invalid: " + e.what());
            return false;
        }
        const auto* releases = index_.findService(request_.serviceClass, request_.serviceName);
        if (!releases) {
            reportMissingRequest("service " + request_.serviceClass + "/" + request_.serviceName +
                                 " is not in the software repository");
            return false;
        }
        // Highest release first, so that an absent service version means the highest one
        // that can satisfy the request.
        for (auto release = releases->rbegin(); release != releases->rend(); ++release) {
            if (wantedService && release->version != *wantedService) continue;
            std::vector<PackageId> roots = pickRoots(*release, wantedPackage);
            if (roots.empty()) continue;
            result_.serviceVersion = release->version.toString();
            for (const PackageId root : roots) {
                Slot& slot = slots_[index_.identityOf(root)];
                slot.pinned = root;
                slot.selected = root;
                roots_.push_back(root);
                queue_.push_back(root);
            }
            return true;
        }
        if (wantedService && std::none_of(releases->begin(), releases->end(), [&](const auto& r) {
                return r.version == *wantedService;
            })) {
            reportMissingRequest("service " + request_.serviceClass + "/" + request_.serviceName +
                                 " has no version " + *request_.serviceVersion +
                                 " in the software repository");
        } else {
            reportMissingRequest("the software repository has no package matching " +
                                 requestText());
        }
        return false;
    }

    // The requested packages of one release: per package name, the highest version allowed.
    std::vector<PackageId> pickRoots(const RepositoryIndex::ServiceRelease& release,
                                     const VersionRange& wantedPackage) const {
        std::vector<PackageId> roots;
        for (const PackageId id : release.packages) {
            const auto& coords = index_.package(id).profile.coords;
            if (request_.packageName && coords.packageName != *request_.packageName) continue;
            if (!wantedPackage.contains(index_.packageVersionOf(id))) continue;
            // Release packages are sorted by name then ascending version: keep the last.
            if (!roots.empty() && index_.identityOf(roots.back()) == index_.identityOf(id)) {
                roots.back() = id;
            } else {
                roots.push_back(id);
            }
        }
        return roots;
    }

    bool satisfiesAll(PackageId candidate, const Slot& slot) const {
        if (slot.pinned && *slot.pinned != candidate) return false;
        const Version& version = index_.packageVersionOf(candidate);
        return std::all_of(slot.constraints.begin(), slot.constraints.end(),
                           [&](const Constraint& c) { return c.range->contains(version); });
    }

    // Highest candidate satisfying every constraint. Among equal package versions, prefer
    // the service version the request chose, so a service's own packages stay together.
    std::optional<PackageId> select(IdentityId identity, const Slot& slot) const {
        const auto candidates = index_.candidates(identity);
        for (std::size_t i = 0; i < candidates.size(); ++i) {
            if (!satisfiesAll(candidates[i], slot)) continue;
            const Version& best = index_.packageVersionOf(candidates[i]);
            for (std::size_t j = i;
                 j < candidates.size() && index_.packageVersionOf(candidates[j]) == best; ++j) {
                if (isRequestedRelease(candidates[j]) && satisfiesAll(candidates[j], slot)) {
                    return candidates[j];
                }
            }
            return candidates[i];
        }
        return std::nullopt;
    }

    bool isRequestedRelease(PackageId id) const {
        const auto& coords = index_.package(id).profile.coords;
        return coords.serviceClass == request_.serviceClass &&
               coords.serviceName == request_.serviceName &&
               index_.serviceVersionOf(id).toString() == result_.serviceVersion;
    }

    void propagate() {
        std::unordered_set<PackageId> expanded;
        while (!queue_.empty()) {
            const PackageId current = queue_.front();
            queue_.pop_front();
            const Slot& own = slots_[index_.identityOf(current)];
            // A package replaced by a later choice no longer contributes.
            if (own.selected != current || !expanded.insert(current).second) continue;
            const auto& deps = index_.package(current).profile.dependencies;
            const auto targets = index_.dependencyTargets(current);
            for (std::size_t i = 0; i < deps.size(); ++i) {
                addConstraint(current, deps[i], targets[i]);
            }
        }
    }

    void addConstraint(PackageId from, const DependencySpec& dep, IdentityId target) {
        if (target == RepositoryIndex::kNoIdentity) {
            reportMissing(from, dep, "is not in the software repository");
            return;
        }
        Slot& slot = slots_[target];
        slot.constraints.push_back({&dep.range, from});
        if (slot.failed) return;
        if (slot.selected && dep.range.contains(index_.packageVersionOf(*slot.selected))) return;
        const auto choice = select(target, slot);
        if (!choice) {
            slot.failed = true;
            slot.selected.reset();
            const auto candidates = index_.candidates(target);
            const bool anyMatch = std::any_of(
                candidates.begin(), candidates.end(),
                [&](PackageId c) { return dep.range.contains(index_.packageVersionOf(c)); });
            if (anyMatch) {
                reportConflict(target, slot);
            } else {
                reportMissing(from, dep,
                              "has no " + describeRange(dep.range) + " available" +
                                  availableVersions(target));
            }
            return;
        }
        slot.selected = choice;
        queue_.push_back(*choice);
    }

    std::string availableVersions(IdentityId identity) const {
        std::string text;
        const auto candidates = index_.candidates(identity);
        for (auto it = candidates.rbegin(); it != candidates.rend(); ++it) {
            const std::string& v = index_.package(*it).profile.coords.packageVersion;
            if (text.find(" " + v + ",") != std::string::npos) continue;
            text += " " + v + ",";
        }
        if (text.empty()) return {};
        text.pop_back();
        return " (available:" + text + ")";
    }

    void reportMissing(PackageId from, const DependencySpec& dep, const std::string& why) {
        result_.missing.push_back({dep.serviceClass, dep.serviceName, "", dep.packageName,
                                   dep.range.toString(), keyOf(from)});
        result_.problems.push_back("missing dependency " + dep.serviceClass + "/" +
                                   dep.serviceName + "/" + dep.packageName + " (" +
                                   describeRange(dep.range) + ") required by " + keyOf(from) +
                                   ": it " + why);
    }

    void reportConflict(IdentityId identity, const Slot& slot) {
        const auto& coords = index_.package(index_.candidates(identity).front()).profile.coords;
        std::string text = "version conflict on " + coords.packageKey() + ": ";
        std::vector<std::string> demands;
        if (slot.pinned) demands.push_back("the request pins " + keyOf(*slot.pinned));
        for (const Constraint& c : slot.constraints) {
            demands.push_back(keyOf(c.requiredBy) + " requires " + describeRange(*c.range));
        }
        for (std::size_t i = 0; i < demands.size(); ++i) {
            text += (i == 0 ? "" : ", ") + demands[i];
        }
        text += "; no version satisfies all of them" + availableVersions(identity);
        result_.problems.push_back(text);
    }

    // The selected package a dependency edge leads to, if it resolved.
    std::optional<PackageId> selectedFor(IdentityId target) const {
        if (target == RepositoryIndex::kNoIdentity) return std::nullopt;
        const auto it = slots_.find(target);
        if (it == slots_.end() || it->second.failed) return std::nullopt;
        return it->second.selected;
    }

    // Kahn's algorithm over the packages reachable from the roots through current choices,
    // always taking the smallest key among the ready ones so the order is reproducible.
    // Packages are numbered densely in discovery order ("local" indices) to keep it cheap.
    void order() {
        std::vector<PackageId> closure(roots_.begin(), roots_.end());
        std::unordered_map<PackageId, std::uint32_t> local;
        local.reserve(closure.size() * 4);
        for (std::uint32_t i = 0; i < closure.size(); ++i) local.emplace(closure[i], i);
        std::vector<std::vector<std::uint32_t>> dependsOn;
        for (std::size_t i = 0; i < closure.size(); ++i) {
            std::vector<std::uint32_t> edges;
            for (const IdentityId target : index_.dependencyTargets(closure[i])) {
                const auto dep = selectedFor(target);
                if (!dep) continue;
                const auto [it, added] =
                    local.emplace(*dep, static_cast<std::uint32_t>(closure.size()));
                if (added) closure.push_back(*dep);
                edges.push_back(it->second);
            }
            dependsOn.push_back(std::move(edges));
        }

        const std::size_t n = closure.size();
        std::vector<std::size_t> remaining(n);  // dependencies not yet placed
        std::vector<std::vector<std::uint32_t>> dependents(n);
        for (std::uint32_t i = 0; i < n; ++i) {
            remaining[i] = dependsOn[i].size();
            for (const std::uint32_t dep : dependsOn[i]) dependents[dep].push_back(i);
        }
        // Ids follow coordinate order (see RepositoryIndex::build), so the smallest id is
        // the smallest key.
        using Ready = std::pair<PackageId, std::uint32_t>;
        std::priority_queue<Ready, std::vector<Ready>, std::greater<>> ready;
        for (std::uint32_t i = 0; i < n; ++i) {
            if (remaining[i] == 0) ready.emplace(closure[i], i);
        }
        std::vector<std::uint32_t> sorted;
        sorted.reserve(n);
        while (!ready.empty()) {
            const std::uint32_t i = ready.top().second;
            ready.pop();
            sorted.push_back(i);
            for (const std::uint32_t dependent : dependents[i]) {
                if (--remaining[dependent] == 0) ready.emplace(closure[dependent], dependent);
            }
        }
        if (sorted.size() < n) {
            reportCycle(closure, dependsOn, remaining);
            std::vector<std::uint32_t> rest;
            for (std::uint32_t i = 0; i < n; ++i) {
                if (remaining[i] != 0) rest.push_back(i);
            }
            std::sort(rest.begin(), rest.end(),
                      [&](std::uint32_t a, std::uint32_t b) { return closure[a] < closure[b]; });
            sorted.insert(sorted.end(), rest.begin(), rest.end());
        }
        result_.installOrder.reserve(n);
        for (const std::uint32_t i : sorted) {
            const IndexedPackage& package = index_.package(closure[i]);
            ResolvedPackage resolved{package.profile.coords,
                                     package.sha256,
                                     package.relativePath,
                                     package.sizeBytes,
                                     {}};
            resolved.dependsOn.reserve(dependsOn[i].size());
            for (const std::uint32_t dep : dependsOn[i]) {
                resolved.dependsOn.push_back(keyOf(closure[dep]));
            }
            result_.installOrder.push_back(std::move(resolved));
        }
    }

    // Every package left with unplaced dependencies after Kahn's algorithm lies on or behind
    // a cycle; following "first blocked dependency" links from the smallest one must revisit
    // a package, and the loop found is reported.
    void reportCycle(const std::vector<PackageId>& closure,
                     const std::vector<std::vector<std::uint32_t>>& dependsOn,
                     const std::vector<std::size_t>& remaining) {
        std::optional<std::uint32_t> start;
        for (std::uint32_t i = 0; i < closure.size(); ++i) {
            if (remaining[i] != 0 && (!start || closure[i] < closure[*start])) start = i;
        }
        std::vector<std::uint32_t> path;
        std::unordered_map<std::uint32_t, std::size_t> position;
        std::uint32_t current = *start;
        while (!position.contains(current)) {
            position[current] = path.size();
            path.push_back(current);
            const auto& deps = dependsOn[current];
            // Exists: `current` is blocked by at least one dependency.
            current = *std::find_if(deps.begin(), deps.end(),
                                    [&](std::uint32_t d) { return remaining[d] != 0; });
        }
        std::string text = "dependency cycle: ";
        for (std::size_t i = position[current]; i < path.size(); ++i) {
            text += keyOf(closure[path[i]]) + " -> ";
        }
        text += keyOf(closure[current]);
        result_.problems.push_back(text);
    }

    const RepositoryIndex& index_;
    const ResolveRequest& request_;
    ResolutionResult result_;
    std::unordered_map<IdentityId, Slot> slots_;
    std::vector<PackageId> roots_;
    std::deque<PackageId> queue_;
};

}  // namespace

ResolutionResult resolve(const RepositoryIndex& index, const ResolveRequest& request) {
    return Resolution(index, request).run();
}

}  // namespace rm::deployer
