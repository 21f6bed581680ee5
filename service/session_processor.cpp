#include "service/session_processor.h"

#include <algorithm>
#include <map>

#include "common/time_util.h"
#include "service/node_selector.h"

namespace rm::service {

using common::Log;
using common::LogLevel;

namespace {

// Shortest markup of an element holding `value` (escaping only lengthens it): `<name>value</name>`,
// or `<name/>` when empty.
size_t element(std::string_view name, std::string_view value) {
    return value.empty() ? name.size() + 3 : 2 * name.size() + 5 + value.size();
}
// `<name>` and `</name>` around children, or `<name/>` without any.
size_t container(std::string_view name, bool hasChildren) {
    return hasChildren ? 2 * name.size() + 5 : name.size() + 3;
}

size_t dependencyBytes(const ServiceDependency& d) {
    return container("Dependency", true) + element("ServiceClass", d.serviceClass) +
           element("ServiceName", d.serviceName) + element("ServiceVersion", d.serviceVersion) +
           element("PackageName", d.packageName) + element("PackageVersion", d.packageVersion);
}

std::string withUnit(int64_t bytes) {
    return std::to_string(bytes) + " bytes";
}

}  // namespace

size_t estimateReportBytes(const NewSession& session) {
    // Values that are not known yet count with their shortest form: a status of 4 characters
    // ("OPEN"), a timestamp of 25 ("2026-01-01T00:00:00+00:00"), "-" for no error, and a service
    // deployed nowhere in particular ("-" stands for a node ID or "not deployed").
    size_t bytes = container("ResourceReport", true) + element("ID", session.id) + element("Status", "OPEN") +
                   element("Operation", toString(session.operation)) +
                   element("LastUpdate", "2026-01-01T00:00:00+00:00") + element("TargetScope", session.scope) +
                   container("Services", !session.services.empty()) +
                   container("Resources", !session.resources.empty());
    for (const auto& svc : session.services) {
        bytes += container("Service", true) + element("Class", svc.serviceClass) + element("Name", svc.serviceName) +
                 element("Version", svc.serviceVersion) + element("DependenciesResolutionStatus", "FAILED") +
                 element("DeployedOn", "-") + element("ErrorDescription", "-") +
                 container("DependenciesResolution", true) +
                 container("ResolvedDependencies", !svc.resolvedDependencies.empty()) +
                 container("MissingDependencies", !svc.missingDependencies.empty());
        for (const auto& d : svc.resolvedDependencies) bytes += dependencyBytes(d);
        for (const auto& d : svc.missingDependencies) bytes += dependencyBytes(d);
    }
    for (const auto& key : session.resources) {
        bytes += container("Resource", true) + element("ID", key.id) + element("Type", key.type) +
                 element("Status", "ADDED") + element("ErrorDescription", "-");
    }
    return bytes;
}

SessionProcessor::SessionProcessor(ScopeStore& store, Deployments& deployments,
                                   ReportService& reports, common::Logger& logger,
                                   SessionProcessorOptions options)
    : store_(store),
      deployments_(&deployments),
      reports_(reports),
      logger_(logger),
      options_(options) {}

void SessionProcessor::submit(const std::string& sessionId) {
    {
        std::lock_guard lock(mutex_);
        if (!queued_.insert(sessionId).second) return;
        queue_.push_back(sessionId);
    }
    wake_.notify_one();
}

void SessionProcessor::run(std::stop_token stop) {
    auto open = store_.openSessionIds();
    if (!open.empty()) Log(logger_, LogLevel::info, "sessions_resumed").kv("count", open.size());
    for (const auto& id : open) submit(id);

    auto nextTimeoutCheck = std::chrono::steady_clock::now();
    while (!stop.stop_requested()) {
        std::string next;
        {
            std::unique_lock lock(mutex_);
            wake_.wait_until(lock, stop, nextTimeoutCheck, [&] { return !queue_.empty(); });
            if (stop.stop_requested()) return;
            if (!queue_.empty()) {
                next = queue_.front();
                queue_.pop_front();
                queued_.erase(next);
            }
        }
        if (!next.empty()) process(next);
        if (std::chrono::steady_clock::now() >= nextTimeoutCheck) {
            expireOverdueSessions();
            pruneClosedSessions();
            nextTimeoutCheck = std::chrono::steady_clock::now() + options_.timeoutCheckInterval;
        }
    }
}

void SessionProcessor::process(const std::string& sessionId) {
    auto session = store_.session(sessionId);
    if (!session || !session->open) return;
    // Undeploy calls go out first: removed RunningInstances wait for them.
    if (session->operation != SessionOperation::AddResources) scheduleRemovals(*session);
    std::vector<SessionResource> waiting;
    for (auto& item : store_.sessionResources(sessionId)) {
        if (item.status == "WAITING") waiting.push_back(std::move(item));
    }
    // Items are committed in chunks: one commit (one fsync with synchronous=FULL) per item
    // capped a large request at a few hundred items a second. A kill -9 mid-chunk undoes the
    // chunk, which is processed again at restart (nothing was acknowledged per item).
    for (size_t start = 0; start < waiting.size(); start += kItemsPerCommit) {
        size_t end = std::min(waiting.size(), start + kItemsPerCommit);
        std::vector<std::pair<const SessionResource*, ScopeStore::ItemOutcome>> done;
        store_.database().transaction([&](common::Database::Lock&) {
            done.clear();
            // Far from --max-resources the chunk cannot reach it: its items need no count each.
            nearResourceLimit_ = session->operation == SessionOperation::AddResources &&
                                 store_.resourcesInScopeCount() + static_cast<int64_t>(end - start) >=
                                     options_.limits.maxResources;
            for (size_t i = start; i < end; ++i) {
                if (auto outcome = processItem(*session, waiting[i]))
                    done.emplace_back(&waiting[i], *outcome);
            }
        });
        processedItems_ += done.size();
        if (!done.empty()) reports_.invalidate(sessionId);
        for (const auto& [item, outcome] : done) {
            Log(logger_, LogLevel::info, "resource_processed")
                .kv("session", sessionId)
                .kv("operation", toString(session->operation))
                .kv("type", item->key.type)
                .kv("id", item->key.id)
                .kv("status", outcome.status)
                .kv("error", outcome.error);
        }
    }
    if (session->operation == SessionOperation::AddResources) scheduleServices(*session);
    closeIfComplete(*session);
}

std::optional<ScopeStore::ItemOutcome> SessionProcessor::processItem(const Session& session,
                                                                     const SessionResource& item) {
    auto decided = decide(session, item);
    if (!decided) return std::nullopt;  // decided again when the node reports
    int64_t now = common::nowMillis();
    try {
        store_.applyItem(session.id, item.seq, item.key, *decided, now);
        return decided;
    } catch (const IllegalTransition& e) {
        // A bug, never applied (the item's savepoint is undone): the item fails and says so
        // instead of corrupting the scope.
        Log(logger_, LogLevel::error, "illegal_transition_refused")
            .kv("session", session.id)
            .kv("type", item.key.type)
            .kv("id", item.key.id)
            .kv("error", e.what());
        ScopeStore::ItemOutcome refused{
            {}, "FAILED", std::string("internal error: ") + e.what(), ""};
        store_.applyItem(session.id, item.seq, item.key, refused, now);
        return refused;
    }
}

void SessionProcessor::scheduleServices(const Session& session) {
    std::vector<NodeStatus> nodes;
    for (const auto& service : store_.sessionServices(session.id)) {
        if (service.status != "WAITING") continue;
        if (nodes.empty()) nodes = store_.nodeStatuses();
        std::string why;
        auto node = chooseNode(nodes, service.plan, why);
        if (!node) {
            store_.updateService(session.id, service.seq, "FAILED", "", why, common::nowMillis());
            reports_.invalidate(session.id);
            Log(logger_, LogLevel::info, "service_not_scheduled")
                .kv("session", session.id)
                .kv("service", service.plan.serviceClass + "/" + service.plan.serviceName)
                .kv("reason", why);
            continue;
        }
        deployments_->deploy(session, service, *node);
        reports_.invalidate(session.id);
        // Heartbeats only count what already runs; counting what was just planned spreads the
        // rest of this session over the nodes instead of piling it onto one.
        for (auto& n : nodes) {
            if (n.record.id == node->record.id) ++n.runningInstances;
        }
    }
}

void SessionProcessor::scheduleRemovals(const Session& session) {
    std::vector<std::string> order;
    std::map<std::string, std::vector<SessionService>> byNode;
    for (auto& service : store_.sessionServices(session.id)) {
        if (service.status != "WAITING") continue;
        auto& group = byNode[service.plan.targetNode];
        if (group.empty()) order.push_back(service.plan.targetNode);
        group.push_back(std::move(service));
    }
    if (order.empty()) return;
    auto nodes = store_.nodeStatuses();
    for (const auto& nodeId : order) {
        auto& group = byNode[nodeId];
        auto node = std::find_if(nodes.begin(), nodes.end(),
                                 [&](const NodeStatus& n) { return n.record.id == nodeId; });
        if (node == nodes.end() || node->record.liveness != "ALIVE") {
            std::string why = "cannot undeploy from node " + nodeId + ": it is " +
                              (node == nodes.end() ? std::string("no longer registered here")
                                                   : node->record.liveness) +
                              "; remove the service again once the node is back";
            for (const auto& service : group) {
                store_.updateService(session.id, service.seq, "FAILED", nodeId, why,
                                     common::nowMillis());
            }
            Log(logger_, LogLevel::warn, "undeploy_not_scheduled")
                .kv("session", session.id)
                .kv("node", nodeId)
                .kv("reason", why);
        } else {
            deployments_->undeploy(session, group, *node);
        }
        reports_.invalidate(session.id);
    }
}

std::optional<ScopeStore::ItemOutcome> SessionProcessor::decide(const Session& session,
                                                                const SessionResource& item) {
    if (session.operation == SessionOperation::AddResources) return decideAdd(item.key);
    return decideRemove(session, item.key);
}

ScopeStore::ItemOutcome SessionProcessor::decideAdd(const ResourceKey& key) {
    using S = ResourceState;
    std::string node;
    if (key.type == "GHN") {
        auto found = store_.nodeByIdOrName(key.id);
        if (!found) {
            return {{},
                    "FAILED",
                    "GHN " + key.id +
                        " is not a node registered with this Resource Manager (start a node-agent "
                        "with --manager pointing here, then retry)",
                    ""};
        }
        if (found->liveness != "ALIVE") {
            return {{}, "FAILED", "GHN " + key.id + " is registered but " + found->liveness, ""};
        }
        node = found->id;
    } else if (key.type == "RunningInstance") {
        if (!store_.instanceReported(key.id)) {
            return {
                {},
                "FAILED",
                "RunningInstance " + key.id +
                    " is not reported running by any node registered with this Resource Manager",
                ""};
        }
    }
    auto current = store_.resource(key);
    if (current && (current->state == S::Added || current->state == S::Published)) {
        return {{}, "ADDED", "-", node};  // already in the scope: adding again changes nothing
    }
    if (current && current->state == S::RemoveRequested) {
        return {{},
                "FAILED",
                key.type + " " + key.id + " is being removed from the scope; retry after",
                ""};
    }
    // The admission check counted this resource, but sessions admitted side by side may together
    // go past the limit: the scope never does.
    if (nearResourceLimit_ && (!current || current->state == S::Unpublished)) {
        int64_t inScope = store_.resourcesInScopeCount();
        if (inScope >= options_.limits.maxResources) {
            return {{},
                    "FAILED",
                    "scope is full: it holds " + std::to_string(inScope) + " resources, the limit (--max-resources " +
                        std::to_string(options_.limits.maxResources) + "); remove some or raise the limit, then retry",
                    ""};
        }
    }
    return {{S::AddRequested, S::Added, S::Published}, "ADDED", "-", node};
}

std::optional<ScopeStore::ItemOutcome> SessionProcessor::decideRemove(const Session& session,
                                                                      const ResourceKey& key) {
    using S = ResourceState;
    auto current = store_.resource(key);
    // Its package was undeployed by this very session, which took it out of the scope.
    if (current && key.type == "RunningInstance" && current->state == S::Unpublished &&
        current->sessionId == session.id) {
        return ScopeStore::ItemOutcome{{}, "REMOVED", "-", ""};
    }
    if (!current || !(current->state == S::Added || current->state == S::Published)) {
        std::string why = current ? " (it is " + std::string(toString(current->state)) + ")" : "";
        return ScopeStore::ItemOutcome{
            {}, "FAILED", key.type + " " + key.id + " is not in scope " + session.scope + why, ""};
    }
    if (key.type == "RunningInstance") return decideInstanceRemoval(session, key);
    return ScopeStore::ItemOutcome{
        {S::RemoveRequested, S::Removed, S::Unpublished}, "REMOVED", "-", ""};
}

// A RunningInstance leaves the scope when its package is undeployed from its node; the removal
// service the request planned for it tells how that went.
std::optional<ScopeStore::ItemOutcome> SessionProcessor::decideInstanceRemoval(
    const Session& session, const ResourceKey& key) {
    using S = ResourceState;
    using Outcome = ScopeStore::ItemOutcome;
    const Outcome removed{{S::RemoveRequested, S::Removed, S::Unpublished}, "REMOVED", "-", ""};
    auto instance = store_.instance(key.id);
    if (!instance) return removed;  // no node reports it any more: nothing left to stop
    std::string what = "RunningInstance " + key.id;
    for (const auto& service : store_.sessionServices(session.id)) {
        if (service.plan.targetNode != instance->nodeId) continue;
        auto dep =
            std::find_if(service.plan.resolvedDependencies.begin(),
                         service.plan.resolvedDependencies.end(), [&](const ServiceDependency& d) {
                             return d.serviceClass == instance->serviceClass &&
                                    d.serviceName == instance->serviceName &&
                                    d.packageName == instance->packageName;
                         });
        if (dep == service.plan.resolvedDependencies.end()) continue;
        if (service.status == "WAITING" || service.status == "DEPLOYING") return std::nullopt;
        if (service.status == "FAILED") {
            auto node = store_.nodeByIdOrName(instance->nodeId);
            if (!node || node->liveness != "ALIVE") {
                // It cannot be managed any more: out of the scope as LOST, saying why.
                return Outcome{
                    {S::Lost},
                    "FAILED",
                    what + " was not undeployed: " + service.error + " (the instance is now LOST)",
                    ""};
            }
            return Outcome{{}, "FAILED", what + " was not undeployed: " + service.error, ""};
        }
        auto reported = deployments_->undeployOutcome(session.id, instance->nodeId, *dep);
        if (reported && reported->first == "UNDEPLOYED") return removed;
        std::string state =
            reported ? reported->first + (reported->second.empty() ? "" : ": " + reported->second)
                     : std::string("not reported by the node");
        return Outcome{{},
                       "FAILED",
                       what + " still runs: its package " + dep->packageName + " is " + state,
                       ""};
    }
    return Outcome{{},
                   "FAILED",
                   what + " cannot be undeployed: this Resource Manager has no record of package " +
                       instance->packageName + " deployed on node " + instance->nodeId,
                   ""};
}

void SessionProcessor::closeIfComplete(const Session& session) {
    bool succeeded = true;
    for (const auto& item : store_.sessionResources(session.id)) {
        if (item.status == "WAITING") return;
        if (item.status == "FAILED") succeeded = false;
    }
    for (const auto& service : store_.sessionServices(session.id)) {
        if (service.status == "WAITING" || service.status == "DEPLOYING") return;
        if (service.status == "FAILED") succeeded = false;
    }
    if (!deployments_->allNodesClosed(session.id)) return;
    if (common::faultFails(options_.faults, "rm.before_session_close")) return;
    if (store_.closeSession(session.id, succeeded, common::nowMillis())) {
        reports_.invalidate(session.id);
        Log(logger_, LogLevel::info, "session_closed")
            .kv("session", session.id)
            .kv("operation", toString(session.operation))
            .kv("exit", succeeded ? "SUCCESS" : "FAILED");
    }
}

std::string SessionProcessor::refused(std::string_view limit, std::string sentence) {
    Log(logger_, LogLevel::warn, "limit_reached").kv("limit", limit).kv("reason", sentence);
    return sentence;
}

std::optional<std::string> SessionProcessor::refuseNewSession(SessionOperation operation) {
    const int64_t limit = options_.limits.maxOpenSessions;
    const int64_t open = store_.openSessionCount();
    if (open < limit) return std::nullopt;
    return refused("max-open-sessions",
                   std::string(toString(operation)) + " refused: " + std::to_string(open) +
                       " sessions are OPEN, the limit is " + std::to_string(limit) +
                       " (--max-open-sessions); nothing was changed: retry later, when some have "
                       "closed, or raise --max-open-sessions");
}

std::optional<std::string> SessionProcessor::refuseSession(const NewSession& session) {
    const auto& limits = options_.limits;
    if (session.operation == SessionOperation::AddResources && !session.resources.empty()) {
        const int64_t inScope = store_.resourcesInScopeCount();
        // Only when the request could go past the limit are its resources looked up one by one.
        if (inScope + static_cast<int64_t>(session.resources.size()) > limits.maxResources) {
            const int64_t added = store_.countNotInScope(session.resources);
            if (inScope + added > limits.maxResources) {
                return refused("max-resources",
                               "AddResources refused: scope " + session.scope + " holds " + std::to_string(inScope) +
                                   " resources and this request would add " + std::to_string(added) +
                                   ", more than the limit of " + std::to_string(limits.maxResources) +
                                   " (--max-resources); nothing was changed: remove resources first, or raise "
                                   "--max-resources");
            }
        }
    }
    const auto estimate = static_cast<int64_t>(estimateReportBytes(session));
    if (estimate > limits.maxReportBytes) {
        std::string split = session.operation == SessionOperation::DisposeScope
                                ? "remove the " + std::to_string(session.resources.size()) +
                                      " resources in smaller RemoveResources requests first"
                                : "split the request (" + std::to_string(session.resources.size()) +
                                      " resources, " + std::to_string(session.services.size()) +
                                      " services) into smaller ones";
        return refused("max-report-bytes",
                       std::string(toString(session.operation)) + " refused: its report would take at least " +
                           withUnit(estimate) + ", more than the limit of " + withUnit(limits.maxReportBytes) +
                           " (--max-report-bytes); nothing was changed: " + split + ", or raise --max-report-bytes");
    }
    return std::nullopt;
}

size_t SessionProcessor::pruneClosedSessions(std::chrono::milliseconds budget) {
    const auto deadline = std::chrono::steady_clock::now() + budget;
    size_t pruned = 0;
    for (;;) {
        auto ids = store_.pruneClosedSessions(options_.limits.maxSessionsKept, kSessionsPrunedPerCommit);
        // After the commit: a report rendered before it is not served from the cache again.
        for (const auto& id : ids) reports_.invalidate(id);
        pruned += ids.size();
        if (ids.size() < static_cast<size_t>(kSessionsPrunedPerCommit)) break;
        if (std::chrono::steady_clock::now() >= deadline) break;  // the rest at the next look
    }
    if (pruned > 0) {
        Log(logger_, LogLevel::info, "sessions_pruned")
            .kv("count", pruned)
            .kv("kept", options_.limits.maxSessionsKept);
    }
    return pruned;
}

void SessionProcessor::expireOverdueSessions() {
    int64_t now = common::nowMillis();
    for (const auto& id : store_.openSessionIds()) {
        auto session = store_.session(id);
        if (!session || !session->open || session->deadlineMs > now) continue;
        std::string reason = "session timed out after " +
                             std::to_string((session->deadlineMs - session->createdAtMs) / 1000) +
                             " s before every resource was handled";
        std::string nodes = deployments_->unfinishedNodes(id);
        if (!nodes.empty()) reason += ": " + nodes;
        store_.failWaitingItems(id, reason, now);
        if (store_.closeSession(id, false, now)) {
            reports_.invalidate(id);
            Log(logger_, LogLevel::warn, "session_timed_out")
                .kv("session", id)
                .kv("reason", reason);
        }
    }
}

}  // namespace rm::service
