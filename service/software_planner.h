// Turns a requested service (a PackageItem) into its plan: the dependency resolution against
// the repository snapshot of the moment the request is accepted.
#pragma once

#include <optional>
#include <string>

#include "deployer/repository_index.h"
#include "service/scope_store.h"

namespace rm::service {

struct PackageItemRequest {
    std::string serviceClass;
    std::string serviceName;
    std::optional<std::string> serviceVersion;
    std::optional<std::string> packageName;
    std::optional<std::string> packageVersion;
    std::optional<std::string> targetNode;
};

// nullopt when the item is well formed, else the sentence for the InvalidRequestFault.
std::optional<std::string> validatePackageItem(const PackageItemRequest& item);

NewService planService(const deployer::RepositoryIndex& index, const PackageItemRequest& item);

}  // namespace rm::service
