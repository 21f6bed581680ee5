// Turns what a RemoveResources or DisposeScope request names into undeploy work: one service
// entry per (service, node) where the RM knows packages of that service to be deployed, listing
// those packages newest first (dependents before what they depend on). Planned when the request
// is accepted, like deployments are, so the session records what it set out to remove.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "service/scope_store.h"
#include "service/software_planner.h"

namespace rm::service {

struct RemovalRequest {
    std::vector<PackageItemRequest> software;  // services (or some of their packages) to remove
    std::vector<ResourceKey> resources;        // RunningInstance resources are undeployed too
    bool everything = false;                   // DisposeScope: every package of every node
};

struct RemovalInputs {
    std::vector<NodePackage> deployed;      // ScopeStore::nodePackages()
    std::vector<NodeRecord> nodes;          // to match TargetGHNName by name or ID
    std::vector<InstanceRecord> instances;  // the instances the request's RunningInstances name
};

// A PackageItem that matches nothing deployed becomes a service that fails at once, saying so.
std::vector<NewService> planRemoval(const RemovalInputs& inputs, const RemovalRequest& request);

// Collects the inputs from the store for `request`.
RemovalInputs removalInputs(ScopeStore& store, const RemovalRequest& request);

}  // namespace rm::service
