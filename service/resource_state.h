// The life cycle of a scoped resource (SPEC section 4). Only the legal moves below may be
// applied; anything else is a bug that is refused and logged, never written.
//
//   CREATED -> ADDREQUESTED -> ADDED -> PUBLISHED -> REMOVEREQUESTED -> REMOVED -> UNPUBLISHED
//                                ADDED --------------> REMOVEREQUESTED
//   any state but LOST -> LOST
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace rm::service {

enum class ResourceState {
    Created,
    AddRequested,
    Added,
    Published,
    RemoveRequested,
    Removed,
    Unpublished,
    Lost,
};

std::string_view toString(ResourceState state);
std::optional<ResourceState> parseResourceState(std::string_view text);

bool isLegalTransition(ResourceState from, ResourceState to);

// A resource in one of these states belongs to the scope (ListResources shows it by default).
bool isInScope(ResourceState state);

class IllegalTransition : public std::logic_error {
public:
    IllegalTransition(ResourceState from, ResourceState to);
    ResourceState from;
    ResourceState to;
};

// Throws IllegalTransition when the move is not legal.
void checkTransition(ResourceState from, ResourceState to);

}  // namespace rm::service
