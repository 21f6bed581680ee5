// Drives node agents for the services of a session: a durable outbox of Deploy calls, retried
// until each agent acknowledges, and the merging of the agents' reports (SendReport) into the
// session. Every change is one transaction with the session rows it affects. Callers invalidate
// the reports of the sessions a change touched.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <stop_token>
#include <string>
#include <vector>

#include "common/log.h"
#include "reports/resource_report.h"
#include "service/scope_store.h"

namespace rm::service {

struct NodePackageReport {
    std::string serviceClass, serviceName, serviceVersion, packageName, packageVersion, status, message;
};

class Deployments {
public:
    Deployments(ScopeStore& store, common::Logger& logger);

    // Records that `service` goes to `node` (outbox entry, packages WAITING, service DEPLOYING).
    void deploy(const Session& session, const SessionService& service, const NodeStatus& node);
    // True when every node of the session has closed its report or was given up.
    bool allNodesClosed(const std::string& sessionId);

    enum class ReportOutcome { Applied, Duplicate, Unknown };
    // Merges one node report; returns the session it belongs to through `sessionId`.
    ReportOutcome applyReport(const std::string& callbackId, const std::string& nodeId, int64_t sequence,
                              const std::string& status, const std::vector<NodePackageReport>& packages,
                              std::string& sessionId);
    // A node went LOST: its unfinished deployments fail; returns the sessions affected.
    std::vector<std::string> nodeLost(const std::string& nodeId);
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
        std::string callbackId, sessionId, endpoint, nodeId;
        int serviceSeq = 0;
        int attempts = 0;
    };
    std::vector<PendingCall> dueCalls(int64_t nowMs);
    bool sendDeploy(const PendingCall& call, const std::string& managerUrl, std::string& error);
    void recordAttempt(const PendingCall& call, bool acknowledged, const std::string& error);

    ScopeStore& store_;
    common::Logger& logger_;
    std::mutex mutex_;
    std::condition_variable_any wake_;
    bool woken_ = false;
};

}  // namespace rm::service
