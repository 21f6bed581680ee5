// Chooses the node a service is deployed on (SPEC section 1, issue 5): an explicit target wins,
// otherwise the live node with the fewest running instances among those that meet what the
// service's packages require (profile.xml <Requirements>: node labels, free disk). Pure: it
// looks only at the node list it is given, so the rules are testable without a store.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "service/scope_store.h"

namespace rm::service {

// The first requirement of `service` that `node` does not meet, as a phrase naming it and what
// the node has instead ("label zone=eu-1 (it has zone=us-2)"); nullopt when it meets all.
std::optional<std::string> unmetRequirement(const NodeStatus& node, const NewService& service);

// nullopt with `why` ("no suitable gHN: ...") when no node qualifies.
std::optional<NodeStatus> chooseNode(const std::vector<NodeStatus>& nodes,
                                     const NewService& service, std::string& why);

}  // namespace rm::service
