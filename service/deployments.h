// Drives node agents for the services of a session: a durable outbox of Deploy calls, retried
// until each agent acknowledges, and the merging of the agents' reports (SendReport) into the
// session. Every change is one transaction with the session rows it affects. Callers invalidate
// the reports of the sessions a change touched.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "common/fault_points.h"
#include "common/log.h"
#include "common/tls.h"
#include "reports/resource_report.h"
#include "service/scope_store.h"

class DeployerBindingProxy;

namespace rm::service {

struct NodePackageReport {
    std::string serviceClass, serviceName, serviceVersion, packageName, packageVersion, status, message;
};

class Deployments {
public:
    // `faults`: rm.before/after_deploy_send and rm.mid_report_commit; nullptr: none.
    // `tls`: what the RM presents and trusts when it calls https:// agents (mutual TLS; each
    // agent must show the certificate of the node it registered as). `callbackSecret` keys the
    // callback IDs, so that nobody can derive them from public report IDs.
    Deployments(ScopeStore& store, common::Logger& logger, common::FaultPoints* faults = nullptr,
                common::TlsClientOptions tls = {}, std::string callbackSecret = {});
    ~Deployments();

    // Records that `service` goes to `node` (outbox entry, packages WAITING, service DEPLOYING).
    void deploy(const Session& session, const SessionService& service, const NodeStatus& node);
    // Records that the removal `services` of `session`, all planned on `node`, are undeployed
    // there: one Undeploy call (outbox entry) for all their packages, packages WAITING, services
    // DEPLOYING (in progress). The call's packages come from the services' plans.
    void undeploy(const Session& session, const std::vector<SessionService>& services, const NodeStatus& node);
    // What `node` reported for one package in the session's Undeploy (status, message).
    std::optional<std::pair<std::string, std::string>> undeployOutcome(const std::string& sessionId,
                                                                         const std::string& nodeId,
                                                                         const ServiceDependency& package);
    // True when every node of the session has closed its report or was given up.
    bool allNodesClosed(const std::string& sessionId);

    // Closed: the deployment (or its session) was already closed; the report changes nothing.
    enum class ReportOutcome { Applied, Duplicate, Unknown, Closed };
    // Merges one node report; returns the session it belongs to through `sessionId`.
    ReportOutcome applyReport(const std::string& callbackId, const std::string& nodeId, int64_t sequence,
                              const std::string& status, const std::vector<NodePackageReport>& packages,
                              std::string& sessionId);
    // A node went LOST: its unfinished deployments fail, or, with `reschedule`, the services it
    // was deploying go back to WAITING so that another node gets them (undeployments always
    // fail: the packages are on that node). Returns the sessions affected.
    std::vector<std::string> nodeLost(const std::string& nodeId, bool reschedule = false);
    // What each node of the session reported (the report's activity section).
    std::vector<reports::GhnActivity> activity(const std::string& sessionId);
    // Names the nodes of a session that have not closed their report (for the timeout reason).
    std::string unfinishedNodes(const std::string& sessionId);

    // Sends pending Deploy calls until stopped; `managerUrl` is where agents download packages
    // and send reports.
    void runDispatcher(std::stop_token stop, const std::function<std::string()>& managerUrl);
    void wake();

private:
    struct PendingCall {
        std::string callbackId, sessionId, endpoint, nodeId, kind;
        int serviceSeq = 0;
        int attempts = 0;
    };
    std::vector<PendingCall> dueCalls(int64_t nowMs);
    // Due calls read at once, and agents called at once (one lane each).
    static constexpr size_t kCallsPerBatch = 64;
    static constexpr size_t kDispatchLanes = 8;

    void sendBatch(const std::vector<PendingCall>& calls, const std::string& managerUrl,
                   std::stop_token stop);
    void sendCall(const PendingCall& call, const std::string& managerUrl,
                  DeployerBindingProxy& agent);
    // A lane's client for agents, made on first use (its TLS context is loaded once).
    DeployerBindingProxy& laneProxy(size_t lane);
    bool sendDeploy(const PendingCall& call, const std::string& managerUrl,
                    DeployerBindingProxy& agent, std::string& error);
    bool sendUndeploy(const PendingCall& call, const std::string& managerUrl,
                      DeployerBindingProxy& agent, std::string& error);
    void recordAttempt(const PendingCall& call, bool acknowledged, const std::string& error);

    ScopeStore& store_;
    common::Logger& logger_;
    common::FaultPoints* faults_ = nullptr;
    common::TlsClientOptions tls_;
    std::string callbackSecret_;
    // `base` followed by a keyed hash of it: deterministic (a retried planning step finds the
    // same outbox entry) yet unguessable.
    std::string sealCallbackId(const std::string& base) const;
    // One per dispatch lane; only the dispatcher (and its lanes, each with its own) uses them.
    std::vector<std::unique_ptr<DeployerBindingProxy>> proxies_;
    std::mutex mutex_;
    std::condition_variable_any wake_;
    bool woken_ = false;
};

}  // namespace rm::service
