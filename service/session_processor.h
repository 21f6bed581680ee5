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

#include "common/log.h"
#include "service/deployments.h"
#include "service/report_service.h"
#include "service/scope_store.h"

namespace rm::service {

struct SessionProcessorOptions {
    std::chrono::milliseconds sessionTimeout{10 * 60 * 1000};
    std::chrono::milliseconds timeoutCheckInterval{1000};
};

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
};

}  // namespace rm::service
