#include "service/resource_state.h"

#include <array>
#include <utility>

namespace rm::service {

namespace {
constexpr std::array<std::pair<ResourceState, std::string_view>, 8> kNames{{
    {ResourceState::Created, "CREATED"},
    {ResourceState::AddRequested, "ADDREQUESTED"},
    {ResourceState::Added, "ADDED"},
    {ResourceState::Published, "PUBLISHED"},
    {ResourceState::RemoveRequested, "REMOVEREQUESTED"},
    {ResourceState::Removed, "REMOVED"},
    {ResourceState::Unpublished, "UNPUBLISHED"},
    {ResourceState::Lost, "LOST"},
}};
}  // namespace

std::string_view toString(ResourceState state) {
    for (const auto& [s, name] : kNames) {
        if (s == state) return name;
    }
    return "UNKNOWN";
}

std::optional<ResourceState> parseResourceState(std::string_view text) {
    for (const auto& [s, name] : kNames) {
        if (name == text) return s;
    }
    return std::nullopt;
}

bool isLegalTransition(ResourceState from, ResourceState to) {
    using S = ResourceState;
    if (to == S::Lost) return from != S::Lost;
    switch (from) {
        case S::Created: return to == S::AddRequested;
        case S::AddRequested: return to == S::Added;
        case S::Added: return to == S::Published || to == S::RemoveRequested;
        case S::Published: return to == S::RemoveRequested;
        case S::RemoveRequested: return to == S::Removed;
        case S::Removed: return to == S::Unpublished;
        case S::Unpublished:
        case S::Lost: return false;
    }
    return false;
}

bool isInScope(ResourceState state) {
    return state == ResourceState::AddRequested || state == ResourceState::Added ||
           state == ResourceState::Published || state == ResourceState::RemoveRequested;
}

IllegalTransition::IllegalTransition(ResourceState f, ResourceState t)
    : std::logic_error("illegal resource transition " + std::string(toString(f)) + " -> " +
                       std::string(toString(t))),
      from(f),
      to(t) {}

void checkTransition(ResourceState from, ResourceState to) {
    if (!isLegalTransition(from, to)) throw IllegalTransition(from, to);
}

}  // namespace rm::service
