// Carries out sessions in the background, one item at a time, each item in its own transaction,
// so a crash at any instant leaves every item either done or still WAITING: a restart simply
// picks the open sessions up again (level-triggered, like a kubelet sync loop).
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <stop_token>
#include <string>
#include <string_view>

#include "common/fault_points.h"
#include "common/log.h"
#include "service/deployments.h"
#include "service/report_service.h"
#include "service/scope_store.h"

namespace rm::service {

// What bounds the state and the output of a scope (the daemon's flags of the same names).
struct SessionLimits {
    int64_t maxResources = 100000;          // --max-resources: resources in the scope (not UNPUBLISHED)
    int64_t maxOpenSessions = 1000;         // --max-open-sessions: a new session waits for fewer
    int64_t maxSessionsKept = 10000;        // --max-sessions-kept: older CLOSED sessions are pruned
    int64_t maxReportBytes = 16 * 1024 * 1024;  // --max-report-bytes: of one ResourceReport document
};

struct SessionProcessorOptions {
    std::chrono::milliseconds sessionTimeout{10 * 60 * 1000};
    std::chrono::milliseconds timeoutCheckInterval{1000};  // also how often pruning looks
    SessionLimits limits;
    // rm.before_session_close (error/drop: the session stays OPEN now, as if the RM had stopped
    // before closing it; it closes when processed again or at its timeout). nullptr: none.
    common::FaultPoints* faults = nullptr;
};

// A lower bound of the size of the compact ResourceReport a session will have: the markup of
// every requested resource and planned service with the shortest values it can show (e.g. "-"
// as ErrorDescription), without the node activity. A report can only be larger (error texts,
// node reports), so a session over the limit by this figure is obviously over it.
size_t estimateReportBytes(const NewSession& session);

class SessionProcessor {
  public:
    SessionProcessor(ScopeStore& store, Deployments& deployments, ReportService& reports,
                     common::Logger& logger, SessionProcessorOptions options);

    // Queues a committed session for processing.
    void submit(const std::string& sessionId);
    // Runs until the token is triggered: resumes open sessions, then processes the queue and
    // closes sessions past their deadline.
    void run(std::stop_token stop);

    std::chrono::milliseconds sessionTimeout() const { return options_.sessionTimeout; }
    const SessionLimits& limits() const { return options_.limits; }
    // Admission, before anything is recorded: nullopt when a session may open, else the
    // sentence of the InvalidRequestFault (the limit, the current figure, the flag to raise it).
    // refuseNewSession: while --max-open-sessions are OPEN (checked first, before any planning).
    std::optional<std::string> refuseNewSession(SessionOperation operation);
    // refuseSession: the planned session against --max-resources (what an AddResources would
    // bring into the scope) and --max-report-bytes (estimateReportBytes).
    std::optional<std::string> refuseSession(const NewSession& session);
    // Deletes CLOSED sessions beyond --max-sessions-kept, oldest first, in short transactions,
    // for at most `budget`; logs event=sessions_pruned. Returns how many went.
    size_t pruneClosedSessions(std::chrono::milliseconds budget = std::chrono::milliseconds(250));
    uint64_t processedItems() const { return processedItems_; }

  private:
    void process(const std::string& sessionId);
    // nullopt: not decided yet (a RunningInstance whose package is still being undeployed).
    std::optional<ScopeStore::ItemOutcome> decide(const Session& session,
                                                  const SessionResource& item);
    // Decides and records one item; nullopt when it waits for a node. Runs inside the chunk's
    // transaction.
    std::optional<ScopeStore::ItemOutcome> processItem(const Session& session,
                                                       const SessionResource& item);
    static constexpr size_t kItemsPerCommit = 256;
    ScopeStore::ItemOutcome decideAdd(const ResourceKey& key);
    std::optional<ScopeStore::ItemOutcome> decideRemove(const Session& session,
                                                        const ResourceKey& key);
    std::optional<ScopeStore::ItemOutcome> decideInstanceRemoval(const Session& session,
                                                                 const ResourceKey& key);
    void scheduleServices(const Session& session);
    // Removal services: one Undeploy per node, for all the session's services planned there.
    void scheduleRemovals(const Session& session);
    void closeIfComplete(const Session& session);
    void expireOverdueSessions();
    // The sentence of a refusal, logged as event=limit_reached.
    std::string refused(std::string_view limit, std::string sentence);
    static constexpr int kSessionsPrunedPerCommit = 64;

    ScopeStore& store_;
    Deployments* deployments_;
    ReportService& reports_;
    common::Logger& logger_;
    SessionProcessorOptions options_;

    std::mutex mutex_;
    std::condition_variable_any wake_;
    std::deque<std::string> queue_;
    std::set<std::string> queued_;
    std::atomic<uint64_t> processedItems_{0};
    bool nearResourceLimit_ = true;  // the chunk being processed may reach --max-resources (processor thread only)
};

}  // namespace rm::service
