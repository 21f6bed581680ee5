#include "service/session_processor.h"

#include "common/time_util.h"

namespace rm::service {

using common::Log;
using common::LogLevel;

SessionProcessor::SessionProcessor(ScopeStore& store, Deployments& deployments, ReportService& reports,
                                   common::Logger& logger, SessionProcessorOptions options)
    : store_(store), deployments_(&deployments), reports_(reports), logger_(logger), options_(options) {}

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
            nextTimeoutCheck = std::chrono::steady_clock::now() + options_.timeoutCheckInterval;
        }
    }
}

void SessionProcessor::process(const std::string& sessionId) {
    auto session = store_.session(sessionId);
    if (!session || !session->open) return;
    for (const auto& item : store_.sessionResources(sessionId)) {
        if (item.status != "WAITING") continue;
        auto outcome = decide(*session, item);
        int64_t now = common::nowMillis();
        try {
            store_.applyItem(sessionId, item.seq, item.key, outcome, now);
        } catch (const IllegalTransition& e) {
            // A bug, never applied: the item fails and says so instead of corrupting the scope.
            Log(logger_, LogLevel::error, "illegal_transition_refused")
                .kv("session", sessionId)
                .kv("type", item.key.type)
                .kv("id", item.key.id)
                .kv("error", e.what());
            ScopeStore::ItemOutcome refused{{}, "FAILED", std::string("internal error: ") + e.what(), ""};
            store_.applyItem(sessionId, item.seq, item.key, refused, now);
            outcome = refused;
        }
        ++processedItems_;
        reports_.invalidate(sessionId);
        Log(logger_, LogLevel::info, "resource_processed")
            .kv("session", sessionId)
            .kv("operation", toString(session->operation))
            .kv("type", item.key.type)
            .kv("id", item.key.id)
            .kv("status", outcome.status)
            .kv("error", outcome.error);
    }
    if (session->operation == SessionOperation::AddResources) scheduleServices(*session);
    closeIfComplete(*session);
}

std::optional<NodeStatus> SessionProcessor::chooseNode(const SessionService& service, std::string& why) {
    auto nodes = store_.nodeStatuses();
    if (!service.plan.targetNode.empty()) {
        for (const auto& n : nodes) {
            if (n.record.id == service.plan.targetNode || n.record.name == service.plan.targetNode) {
                if (n.record.liveness == "ALIVE") return n;
                why = "no suitable gHN: target node " + service.plan.targetNode + " is " + n.record.liveness;
                return std::nullopt;
            }
        }
        why = "no suitable gHN: target node " + service.plan.targetNode + " is not registered here";
        return std::nullopt;
    }
    // The live node with the fewest running instances (ties: by name, for predictability).
    std::optional<NodeStatus> best;
    for (const auto& n : nodes) {
        if (n.record.liveness != "ALIVE") continue;
        if (!best || n.runningInstances < best->runningInstances) best = n;
    }
    if (!best) why = "no suitable gHN: no live node is registered with this Resource Manager";
    return best;
}

void SessionProcessor::scheduleServices(const Session& session) {
    for (const auto& service : store_.sessionServices(session.id)) {
        if (service.status != "WAITING") continue;
        std::string why;
        auto node = chooseNode(service, why);
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
    }
}

ScopeStore::ItemOutcome SessionProcessor::decide(const Session& session, const SessionResource& item) {
    if (session.operation == SessionOperation::AddResources) return decideAdd(item.key);
    return decideRemove(session, item.key);
}

ScopeStore::ItemOutcome SessionProcessor::decideAdd(const ResourceKey& key) {
    using S = ResourceState;
    std::string node;
    if (key.type == "GHN") {
        auto found = store_.nodeByIdOrName(key.id);
        if (!found) {
            return {{}, "FAILED",
                    "GHN " + key.id +
                        " is not a node registered with this Resource Manager (start a node-agent "
                        "with --manager pointing here, then retry)", ""};
        }
        if (found->liveness != "ALIVE") {
            return {{}, "FAILED", "GHN " + key.id + " is registered but " + found->liveness, ""};
        }
        node = found->id;
    } else if (key.type == "RunningInstance") {
        if (!store_.instanceReported(key.id)) {
            return {{}, "FAILED",
                    "RunningInstance " + key.id +
                        " is not reported running by any node registered with this Resource Manager", ""};
        }
    }
    auto current = store_.resource(key);
    if (current && (current->state == S::Added || current->state == S::Published)) {
        return {{}, "ADDED", "-", node};  // already in the scope: adding again changes nothing
    }
    if (current && current->state == S::RemoveRequested) {
        return {{}, "FAILED", key.type + " " + key.id + " is being removed from the scope; retry after", ""};
    }
    return {{S::AddRequested, S::Added, S::Published}, "ADDED", "-", node};
}

ScopeStore::ItemOutcome SessionProcessor::decideRemove(const Session& session, const ResourceKey& key) {
    using S = ResourceState;
    auto current = store_.resource(key);
    if (!current || !(current->state == S::Added || current->state == S::Published)) {
        std::string why = current ? " (it is " + std::string(toString(current->state)) + ")" : "";
        return {{}, "FAILED", key.type + " " + key.id + " is not in scope " + session.scope + why, ""};
    }
    return {{S::RemoveRequested, S::Removed, S::Unpublished}, "REMOVED", "-", ""};
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
    if (store_.closeSession(session.id, succeeded, common::nowMillis())) {
        reports_.invalidate(session.id);
        Log(logger_, LogLevel::info, "session_closed")
            .kv("session", session.id)
            .kv("operation", toString(session.operation))
            .kv("exit", succeeded ? "SUCCESS" : "FAILED");
    }
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
            Log(logger_, LogLevel::warn, "session_timed_out").kv("session", id).kv("reason", reason);
        }
    }
}

}  // namespace rm::service
