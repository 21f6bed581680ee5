#include "service/removal_planner.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "deployer/version.h"

namespace rm::service {

namespace {

// "1.0" and "1.00.0" name the same version; texts that are not versions compare as text.
bool sameVersion(const std::string& a, const std::string& b) {
    auto va = deployer::Version::tryParse(a);
    auto vb = deployer::Version::tryParse(b);
    if (va && vb) return *va == *vb;
    return a == b;
}

bool versionMatches(const std::string& wanted, const std::string& actual) {
    if (sameVersion(wanted, actual)) return true;
    try {
        auto version = deployer::Version::tryParse(actual);
        return version && deployer::VersionRange::parse(wanted).contains(*version);
    } catch (const std::exception&) {
        return false;  // neither a version nor a range: validated before, so only a mismatch
    }
}

std::string packageKey(const std::string& node, const ServiceDependency& p) {
    return node + "|" + p.serviceClass + "/" + p.serviceName + "/" + p.packageName;
}

// Groups the chosen packages per (node, service) in the order they were chosen.
class Grouping {
  public:
    void add(const NodePackage& p) {
        if (!taken_.insert(packageKey(p.nodeId, p.package)).second) return;
        auto key = std::make_tuple(p.nodeId, p.package.serviceClass, p.package.serviceName,
                                   p.package.serviceVersion);
        auto it = index_.find(key);
        if (it == index_.end()) {
            NewService s;
            s.serviceClass = p.package.serviceClass;
            s.serviceName = p.package.serviceName;
            s.serviceVersion = p.package.serviceVersion;
            s.targetNode = p.nodeId;
            s.resolved = true;
            it = index_.emplace(key, groups_.size()).first;
            groups_.push_back({std::move(s), {}});
        }
        groups_[it->second].packages.push_back(p);
    }
    void addRefusal(NewService s) { groups_.push_back({std::move(s), {}}); }

    std::vector<NewService> take() {
        std::vector<NewService> out;
        for (auto& g : groups_) {
            // Newest first: a package is removed before the ones it was deployed on top of.
            std::stable_sort(g.packages.begin(), g.packages.end(),
                             [](const NodePackage& a, const NodePackage& b) {
                                 return a.installedSeq > b.installedSeq;
                             });
            for (const auto& p : g.packages) g.service.resolvedDependencies.push_back(p.package);
            out.push_back(std::move(g.service));
        }
        return out;
    }

  private:
    struct Group {
        NewService service;
        std::vector<NodePackage> packages;
    };
    std::vector<Group> groups_;
    std::map<std::tuple<std::string, std::string, std::string, std::string>, size_t> index_;
    std::set<std::string> taken_;
};

bool onNode(const RemovalInputs& inputs, const std::string& nodeId, const std::string& target) {
    if (nodeId == target) return true;
    return std::any_of(inputs.nodes.begin(), inputs.nodes.end(),
                       [&](const NodeRecord& n) { return n.id == nodeId && n.name == target; });
}

}  // namespace

std::vector<NewService> planRemoval(const RemovalInputs& inputs, const RemovalRequest& request) {
    Grouping grouping;
    if (request.everything) {
        // Newest deployments first, so services that depend on others go before them.
        std::vector<NodePackage> all = inputs.deployed;
        std::stable_sort(all.begin(), all.end(), [](const NodePackage& a, const NodePackage& b) {
            return a.installedSeq > b.installedSeq;
        });
        for (const auto& p : all) grouping.add(p);
    }
    for (const auto& item : request.software) {
        bool matched = false;
        for (const auto& p : inputs.deployed) {
            const auto& d = p.package;
            if (d.serviceClass != item.serviceClass || d.serviceName != item.serviceName) continue;
            if (item.serviceVersion && !sameVersion(*item.serviceVersion, d.serviceVersion))
                continue;
            if (item.packageName && *item.packageName != d.packageName) continue;
            if (item.packageVersion && !versionMatches(*item.packageVersion, d.packageVersion))
                continue;
            if (item.targetNode && !onNode(inputs, p.nodeId, *item.targetNode)) continue;
            grouping.add(p);
            matched = true;
        }
        if (matched) continue;
        NewService refused;
        refused.serviceClass = item.serviceClass;
        refused.serviceName = item.serviceName;
        refused.serviceVersion = item.serviceVersion.value_or("");
        refused.resolved = true;
        std::string what = item.serviceClass + "/" + item.serviceName +
                           (item.serviceVersion ? "/" + *item.serviceVersion : std::string()) +
                           (item.packageName ? " package " + *item.packageName : std::string());
        refused.error =
            "nothing to undeploy: " + what + " is not deployed on " +
            (item.targetNode ? "node " + *item.targetNode : std::string("any node of this scope"));
        grouping.addRefusal(std::move(refused));
    }
    // Removing a RunningInstance undeploys the package that runs it.
    for (const auto& key : request.resources) {
        if (key.type != "RunningInstance") continue;
        for (const auto& instance : inputs.instances) {
            if (instance.id != key.id) continue;
            for (const auto& p : inputs.deployed) {
                if (p.nodeId == instance.nodeId &&
                    p.package.serviceClass == instance.serviceClass &&
                    p.package.serviceName == instance.serviceName &&
                    p.package.packageName == instance.packageName) {
                    grouping.add(p);
                }
            }
        }
    }
    return grouping.take();
}

RemovalInputs removalInputs(ScopeStore& store, const RemovalRequest& request) {
    RemovalInputs inputs;
    bool needed = request.everything || !request.software.empty() ||
                  std::any_of(request.resources.begin(), request.resources.end(),
                              [](const ResourceKey& k) { return k.type == "RunningInstance"; });
    if (!needed) return inputs;
    inputs.deployed = store.nodePackages();
    inputs.nodes = store.nodes();
    for (const auto& key : request.resources) {
        if (key.type != "RunningInstance") continue;
        if (auto instance = store.instance(key.id)) inputs.instances.push_back(*instance);
    }
    return inputs;
}

}  // namespace rm::service
