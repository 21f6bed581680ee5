#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "deployer/profile.h"
#include "deployer/repository_index.h"

namespace rm::deployer {

struct ResolveRequest {
    std::string serviceClass;
    std::string serviceName;
    // Absent: the highest service version that has the requested package(s).
    std::optional<std::string> serviceVersion;
    // Absent: every package of the chosen service version.
    std::optional<std::string> packageName;
    // Exact version or range (VersionRange syntax); absent: the highest.
    std::optional<std::string> packageVersion;
};

struct ResolvedPackage {
    PackageCoordinates coords;
    std::string sha256;
    std::string relativePath;
    std::uint64_t sizeBytes = 0;
    std::vector<std::string> dependsOn;  // coords.key() of its direct dependencies, in order
};

// The shape of a <Dependency> under <MissingDependencies> (SPEC 5).
struct MissingDependency {
    std::string serviceClass;
    std::string serviceName;
    std::string serviceVersion;  // empty unless the request named one
    std::string packageName;     // empty when a whole service is missing
    std::string packageVersion;  // the requested version or range text; empty = any
    std::string requiredBy;      // coords.key() of the package needing it; empty = the request
};

struct ResolutionResult {
    bool success = false;
    std::string serviceVersion;  // the service version chosen for the request
    // On success: every package to deploy, dependencies before their dependents, ties broken
    // by coordinates so the order is reproducible. On failure: what could be resolved (for
    // the report's ResolvedDependencies); it must not be deployed.
    std::vector<ResolvedPackage> installOrder;
    std::vector<MissingDependency> missing;
    std::vector<std::string> problems;   // one sentence per missing item, conflict or cycle
    std::string errorDescription = "-";  // "-" on success, else the problems as one text
};

// Resolves a request against one index snapshot: transitive closure over dependencies, one
// version per package (class/name/packageName), each the highest that satisfies every range
// imposed on it, pinned requested packages, cycle detection, install order. Never throws for
// bad input: an unknown service or package, an invalid version text, a conflict or a cycle
// all come back as success = false with the reason.
//
// Constraints are collected in breadth-first order; when a later range rules out a version
// chosen earlier, the choice is revised and the ranges the replaced version imposed are kept
// (conservative: this can only narrow later choices, never admit an incompatible one).
ResolutionResult resolve(const RepositoryIndex& index, const ResolveRequest& request);

}  // namespace rm::deployer
