// Checks everything that comes from outside before it can change state (SPEC section 10).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "service/scope_store.h"

namespace rm::service {

// `/a/b/c`, segments [A-Za-z0-9._-]+, at most 16 segments and 512 characters.
bool isValidScope(const std::string& scope);
// Resource and node identifiers: 1..200 characters of [A-Za-z0-9._:-].
bool isValidIdentifier(const std::string& id);
// Node names and package coordinates: 1..128 characters of [A-Za-z0-9._-].
bool isValidName(const std::string& name);
// http:// or https:// URL with a host and no whitespace or control characters.
bool isValidEndpoint(const std::string& url);

// The resource types this RM knows; anything else is refused with the list.
const std::vector<std::string>& knownResourceTypes();

// nullopt when valid, else the sentence for the InvalidRequestFault.
std::optional<std::string> validateResources(const std::vector<ResourceKey>& resources,
                                             size_t maxItems);

}  // namespace rm::service
