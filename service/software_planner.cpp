#include "service/software_planner.h"

#include <algorithm>

#include "deployer/resolver.h"
#include "deployer/version.h"
#include "service/request_validation.h"

namespace rm::service {

namespace {
bool isVersionText(const std::string& v) {
    return !v.empty() && v.size() <= 64 &&
           std::all_of(v.begin(), v.end(), [](char c) {
               return (c >= '0' && c <= '9') || c == '.' || c == ',' || c == '[' || c == ']' || c == '(' ||
                      c == ')';
           });
}
}  // namespace

std::optional<std::string> validatePackageItem(const PackageItemRequest& item) {
    std::string what = "service " + item.serviceClass.substr(0, 64) + "/" + item.serviceName.substr(0, 64);
    if (!isValidName(item.serviceClass) || !isValidName(item.serviceName)) {
        return what + ": ServiceClass and ServiceName need 1 to 128 characters of [A-Za-z0-9._-]";
    }
    if (item.serviceVersion && !deployer::Version::tryParse(*item.serviceVersion)) {
        return what + ": ServiceVersion '" + item.serviceVersion->substr(0, 64) + "' is not a version like 1.00.00";
    }
    if (item.packageName && !isValidName(*item.packageName)) {
        return what + ": PackageName needs 1 to 128 characters of [A-Za-z0-9._-]";
    }
    if (item.packageVersion && !isVersionText(*item.packageVersion)) {
        return what + ": PackageVersion '" + item.packageVersion->substr(0, 64) + "' is not a version or range";
    }
    if (item.targetNode && !isValidIdentifier(*item.targetNode)) {
        return what + ": TargetGHNName is not a valid node name or ID";
    }
    return std::nullopt;
}

NewService planService(const deployer::RepositoryIndex& index, const PackageItemRequest& item) {
    deployer::ResolveRequest request{item.serviceClass, item.serviceName, item.serviceVersion,
                                     item.packageName, item.packageVersion};
    auto result = deployer::resolve(index, request);
    NewService plan;
    plan.serviceClass = item.serviceClass;
    plan.serviceName = item.serviceName;
    plan.serviceVersion = !result.serviceVersion.empty() ? result.serviceVersion : item.serviceVersion.value_or("");
    plan.targetNode = item.targetNode.value_or("");
    plan.resolved = result.success;
    plan.error = result.success ? "-" : result.errorDescription;
    for (const auto& p : result.installOrder) {
        std::string dependsOn;
        for (const auto& key : p.dependsOn) {
            // Keys name packages as their coordinates; agents need the package names.
            for (const auto& q : result.installOrder) {
                if (q.coords.key() == key) dependsOn += (dependsOn.empty() ? "" : ",") + q.coords.packageName;
            }
        }
        plan.resolvedDependencies.push_back({p.coords.serviceClass, p.coords.serviceName, p.coords.serviceVersion,
                                             p.coords.packageName, p.coords.packageVersion, p.sha256,
                                             p.relativePath, dependsOn});
        // Every package lands on the same node, so the node must meet all their requirements.
        if (const auto* indexed = index.find(p.coords)) {
            const auto& wanted = indexed->profile.requirements;
            for (const auto& [key, value] : wanted.labels) {
                std::string label = key + "=" + value;
                if (("," + plan.requiredLabels + ",").find("," + label + ",") != std::string::npos) continue;
                plan.requiredLabels += (plan.requiredLabels.empty() ? "" : ",") + label;
            }
            plan.requiredDiskMB = std::max(plan.requiredDiskMB, wanted.minDiskMB);
        }
    }
    for (const auto& m : result.missing) {
        plan.missingDependencies.push_back(
            {m.serviceClass, m.serviceName, m.serviceVersion, m.packageName, m.packageVersion, "", "", ""});
    }
    return plan;
}

}  // namespace rm::service
