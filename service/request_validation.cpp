#include "service/request_validation.h"

#include <algorithm>
#include <set>

namespace rm::service {

namespace {
bool allOf(const std::string& s, size_t maxLen, bool allowColon) {
    if (s.empty() || s.size() > maxLen) return false;
    return std::all_of(s.begin(), s.end(), [&](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '_' || c == '-' || (allowColon && c == ':');
    });
}
}  // namespace

bool isValidScope(const std::string& scope) {
    if (scope.size() < 2 || scope.size() > 512 || scope.front() != '/') return false;
    size_t segments = 0;
    size_t start = 1;
    while (start <= scope.size()) {
        size_t end = scope.find('/', start);
        if (end == std::string::npos) end = scope.size();
        std::string segment = scope.substr(start, end - start);
        if (!allOf(segment, 128, false) || segment == "." || segment == "..") return false;
        ++segments;
        start = end + 1;
    }
    return segments <= 16;
}

bool isValidIdentifier(const std::string& id) { return allOf(id, 200, true); }
bool isValidName(const std::string& name) { return allOf(name, 128, false); }

bool isValidEndpoint(const std::string& url) {
    if (url.size() > 1024) return false;
    std::string rest;
    if (url.rfind("http://", 0) == 0) rest = url.substr(7);
    else if (url.rfind("https://", 0) == 0) rest = url.substr(8);
    else return false;
    if (rest.empty() || rest.front() == '/' || rest.front() == ':') return false;
    return std::none_of(url.begin(), url.end(),
                        [](char c) { return static_cast<unsigned char>(c) <= ' ' || c == 0x7f; });
}

const std::vector<std::string>& knownResourceTypes() {
    static const std::vector<std::string> types = {
        "GHN",        "RunningInstance",    "Service",         "GenericResource", "RuntimeResource",
        "Collection", "MetadataCollection", "ExternalRunningInstance", "Schema", "TransformationProgram",
    };
    return types;
}

std::optional<std::string> validateResources(const std::vector<ResourceKey>& resources,
                                             size_t maxItems) {
    if (resources.size() > maxItems) {
        return "too many resources in one request (" + std::to_string(resources.size()) +
               "; at most " + std::to_string(maxItems) + ", set by --max-items); nothing was changed: split it";
    }
    std::set<std::pair<std::string, std::string>> seen;
    const auto& types = knownResourceTypes();
    for (const auto& r : resources) {
        if (!isValidIdentifier(r.id)) {
            return "resource ID '" + r.id.substr(0, 64) +
                   "' is invalid: use 1 to 200 characters among letters, digits, '.', '_', ':' and '-'";
        }
        if (std::find(types.begin(), types.end(), r.type) == types.end()) {
            std::string list;
            for (const auto& t : types) list += (list.empty() ? "" : ", ") + t;
            return "resource " + r.id + " has unknown type '" + r.type.substr(0, 64) +
                   "'; known types: " + list;
        }
        if (!seen.insert({r.type, r.id}).second) {
            return "resource " + r.type + " " + r.id + " is listed twice";
        }
    }
    return std::nullopt;
}

}  // namespace rm::service
