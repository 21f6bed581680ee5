#include "service/node_selector.h"

#include <map>

namespace rm::service {

namespace {

std::map<std::string, std::string> parseLabels(const std::string& text) {
    std::map<std::string, std::string> out;
    size_t start = 0;
    while (start < text.size()) {
        size_t end = text.find(',', start);
        if (end == std::string::npos) end = text.size();
        std::string pair = text.substr(start, end - start);
        auto eq = pair.find('=');
        if (!pair.empty())
            out[pair.substr(0, eq)] = eq == std::string::npos ? "" : pair.substr(eq + 1);
        start = end + 1;
    }
    return out;
}

std::string nodeName(const NodeStatus& n) {
    return n.record.name.empty() ? n.record.id : n.record.name;
}

}  // namespace

std::optional<std::string> unmetRequirement(const NodeStatus& node, const NewService& service) {
    auto has = parseLabels(node.record.labels);
    // Required labels are kept as a list (not a map): two packages asking for different values
    // of one key can never both be met, and the second one is then reported.
    size_t start = 0;
    const std::string& wanted = service.requiredLabels;
    while (start < wanted.size()) {
        size_t end = wanted.find(',', start);
        if (end == std::string::npos) end = wanted.size();
        std::string pair = wanted.substr(start, end - start);
        start = end + 1;
        if (pair.empty()) continue;
        auto eq = pair.find('=');
        std::string key = pair.substr(0, eq);
        std::string value = eq == std::string::npos ? "" : pair.substr(eq + 1);
        auto it = has.find(key);
        if (it == has.end()) return "label " + pair + " (it has no label " + key + ")";
        if (it->second != value)
            return "label " + pair + " (it has " + key + "=" + it->second + ")";
    }
    if (service.requiredDiskMB > node.diskFreeMB) {
        return "MinDiskMB " + std::to_string(service.requiredDiskMB) + " (it has " +
               std::to_string(node.diskFreeMB) + " MB free)";
    }
    return std::nullopt;
}

std::optional<NodeStatus> chooseNode(const std::vector<NodeStatus>& nodes,
                                     const NewService& service, std::string& why) {
    if (!service.targetNode.empty()) {
        for (const auto& n : nodes) {
            if (n.record.id != service.targetNode && n.record.name != service.targetNode) continue;
            if (n.record.liveness != "ALIVE") {
                why = "no suitable gHN: target node " + service.targetNode + " is " +
                      n.record.liveness;
                return std::nullopt;
            }
            if (auto unmet = unmetRequirement(n, service)) {
                why = "no suitable gHN: target node " + service.targetNode +
                      " does not meet the requirement " + *unmet;
                return std::nullopt;
            }
            return n;
        }
        why = "no suitable gHN: target node " + service.targetNode + " is not registered here";
        return std::nullopt;
    }
    // The live node with the fewest running instances (ties: the first by name, as listed).
    std::optional<NodeStatus> best;
    std::string unmetList;
    size_t live = 0;
    size_t unmetCount = 0;
    for (const auto& n : nodes) {
        if (n.record.liveness != "ALIVE") continue;
        ++live;
        if (auto unmet = unmetRequirement(n, service)) {
            // A few examples say enough; hundreds of nodes would drown the report.
            if (++unmetCount <= 5)
                unmetList += (unmetList.empty() ? "" : "; ") + nodeName(n) + " lacks " + *unmet;
            continue;
        }
        if (!best || n.runningInstances < best->runningInstances) best = n;
    }
    if (best) return best;
    if (live == 0) {
        why = "no suitable gHN: no live node is registered with this Resource Manager";
    } else {
        why =
            "no suitable gHN: no live node meets the requirements of the service's packages: " +
            unmetList +
            (unmetCount > 5 ? "; and " + std::to_string(unmetCount - 5) + " more" : std::string());
    }
    return std::nullopt;
}

}  // namespace rm::service
