#include "agent/deploy_executor.h"

#include <algorithm>
#include <atomic>

namespace rm::agent {

using common::Log;
using common::LogLevel;

namespace {

std::string describe(const deployer::PackageCoordinates& c) {
    return c.packageName + " " + c.packageVersion;
}

// Records the states of one package of one operation.
class RecordingProgress final : public Progress {
  public:
    RecordingProgress(AgentStore& store, common::Logger& logger, const Operation& op,
                      const OperationPackage& pkg)
        : store_(store), logger_(logger), op_(op), pkg_(pkg) {}

    void reach(const StateChange& change) override {
        store_.record(op_.slot, op_.callbackId, pkg_.position, change);
        reached_ = change.final;
        Log(logger_, change.state == state::kFailed ? LogLevel::warn : LogLevel::info,
            "package_state")
            .kv("node", op_.slot)
            .kv("callback", op_.callbackId)
            .kv("operation", toString(op_.kind))
            .kv("package", pkg_.request.coords.key())
            .kv("state", change.state)
            .kv("final", change.final)
            .kv("message", change.message.empty() ? "-" : change.message);
    }
    bool reachedFinal() const { return reached_; }

  private:
    AgentStore& store_;
    common::Logger& logger_;
    const Operation& op_;
    const OperationPackage& pkg_;
    bool reached_ = false;
};

StateChange finalState(const char* state, std::string message) {
    return StateChange{state, std::move(message), true, std::nullopt, false};
}

bool healthyState(const std::string& s) {
    return s == state::kRunning || s == state::kActivated || s == state::kNotVerified;
}

}  // namespace

struct DeployExecutor::Running {
    std::set<std::string> claims;
    std::atomic<bool> done{false};
    std::jthread thread;  // last: started after the fields it uses
};

DeployExecutor::DeployExecutor(AgentStore& store,
                               std::map<std::string, std::shared_ptr<PackageHandler>> handlers,
                               common::Logger& logger, ExecutorOptions options)
    : store_(store), handlers_(std::move(handlers)), logger_(logger), options_(options) {}

DeployExecutor::~DeployExecutor() = default;

PackageHandler& DeployExecutor::handlerFor(const std::string& slot) {
    auto it = handlers_.find(slot);
    if (it == handlers_.end()) it = handlers_.find("");
    if (it == handlers_.end()) throw std::logic_error("no package handler for node " + slot);
    return *it->second;
}

std::size_t DeployExecutor::running() const {
    std::lock_guard lock(mutex_);
    return running_.size();
}

std::set<std::string> DeployExecutor::claims(const Operation& op) {
    std::set<std::string> out;
    if (op.wholeScope && !op.expanded) {
        out.insert(op.slot + "|*");
        return out;
    }
    for (const auto& p : op.packages) out.insert(op.slot + "|" + p.request.coords.packageKey());
    return out;
}

namespace {
// Two operations conflict when they touch a common package of the same node; a whole-scope
// Undeploy not yet listed touches every package of its node.
bool overlaps(const std::set<std::string>& a, const std::set<std::string>& b) {
    for (const auto& key : a) {
        std::string slot = key.substr(0, key.find('|'));
        if (b.contains(key) || b.contains(slot + "|*")) return true;
        if (key == slot + "|*") {
            auto it = b.lower_bound(slot + "|");
            if (it != b.end() && it->rfind(slot + "|", 0) == 0) return true;
        }
    }
    return false;
}
}  // namespace

void DeployExecutor::run(std::stop_token stop) {
    Log(logger_, LogLevel::info, "executor_started").kv("max_parallel", options_.maxParallel);
    while (!stop.stop_requested()) {
        auto seen = store_.work().count();
        dispatch(stop);
        store_.work().waitFor(seen, options_.idlePoll, stop);
    }
    std::map<std::string, std::unique_ptr<Running>> stopping;
    {
        std::lock_guard lock(mutex_);
        stopping.swap(running_);
    }
    for (auto& [key, r] : stopping) r->thread.request_stop();
    stopping.clear();  // joins
    Log(logger_, LogLevel::info, "executor_stopped");
}

void DeployExecutor::dispatch(std::stop_token stop) {
    {
        // Finished threads are joined here, outside of their own thread.
        std::map<std::string, std::unique_ptr<Running>> finished;
        std::lock_guard lock(mutex_);
        for (auto it = running_.begin(); it != running_.end();) {
            if (it->second->done) {
                finished.emplace(it->first, std::move(it->second));
                it = running_.erase(it);
            } else {
                ++it;
            }
        }
    }
    std::vector<Operation> open = store_.openOperations();
    std::lock_guard lock(mutex_);
    std::set<std::string> claimed;
    for (const auto& [key, r] : running_) claimed.insert(r->claims.begin(), r->claims.end());
    for (auto& op : open) {
        std::string key = op.slot + "\n" + op.callbackId;
        if (running_.contains(key)) continue;
        auto mine = claims(op);
        // Operations touching the same package run in arrival order: a later one waits even when
        // the earlier one is itself only waiting.
        bool blocked = overlaps(mine, claimed);
        claimed.insert(mine.begin(), mine.end());
        if (blocked || running_.size() >= options_.maxParallel || stop.stop_requested()) continue;
        auto r = std::make_unique<Running>();
        r->claims = std::move(mine);
        Running* raw = r.get();
        r->thread = std::jthread([this, raw, op = std::move(op)](std::stop_token opStop) {
            try {
                execute(op, opStop);
            } catch (const std::exception& e) {
                // The store itself failed (disk full?): the operation stays open and is retried.
                Log(logger_, LogLevel::error, "operation_error")
                    .kv("node", op.slot)
                    .kv("callback", op.callbackId)
                    .kv("error", e.what())
                    .kv("hint", "the operation stays journaled and is retried");
                std::this_thread::sleep_for(std::chrono::seconds(1));
            }
            raw->done = true;
            store_.work().ring();
        });
        running_.emplace(key, std::move(r));
    }
}

void DeployExecutor::execute(const Operation& initial, std::stop_token stop) {
    const std::string nodeId = store_.nodeId(initial.slot);
    PackageHandler& handler = handlerFor(initial.slot);
    Log(logger_, LogLevel::info, "operation_started")
        .kv("node", initial.slot)
        .kv("callback", initial.callbackId)
        .kv("operation", toString(initial.kind))
        .kv("packages", initial.packages.size());
    if (initial.wholeScope && !initial.expanded) {
        std::vector<PackageRequest> all;
        for (const auto& d : store_.deployed(initial.slot)) {
            if (d.scope == initial.scope) all.push_back(PackageRequest{d.coords, "", d.sha256, {}});
        }
        store_.expand(initial.slot, initial.callbackId, all);
    }
    for (size_t i = 0;; ++i) {
        // Reloaded each time: the dependency rules look at the states reached so far.
        auto op = store_.operation(initial.slot, initial.callbackId);
        if (!op || i >= op->packages.size()) break;
        const OperationPackage& pkg = op->packages[i];
        if (pkg.final) continue;
        if (stop.stop_requested()) return;
        try {
            if (op->kind == OperationKind::Deploy) {
                deployPackage(*op, pkg, nodeId, handler, stop);
            } else {
                undeployPackage(*op, pkg, nodeId, handler, stop);
            }
        } catch (const Interrupted&) {
            Log(logger_, LogLevel::info, "operation_interrupted")
                .kv("node", op->slot)
                .kv("callback", op->callbackId)
                .kv("package", pkg.request.coords.key())
                .kv("state", pkg.state);
            return;
        }
    }
    Log(logger_, LogLevel::info, "operation_finished")
        .kv("node", initial.slot)
        .kv("callback", initial.callbackId);
}

void DeployExecutor::deployPackage(const Operation& op, const OperationPackage& pkg,
                                   const std::string& nodeId, PackageHandler& handler,
                                   std::stop_token stop) {
    RecordingProgress progress(store_, logger_, op, pkg);
    const auto& coords = pkg.request.coords;
    if (pkg.state == state::kWaiting) {
        for (const auto& dep : pkg.request.dependsOn) {
            for (const auto& other : op.packages) {
                if (other.request.coords.packageName != dep || other.position == pkg.position)
                    continue;
                if (other.state == state::kFailed || other.state == state::kSkipped) {
                    progress.reach(finalState(
                        state::kSkipped,
                        "not deployed: it depends on " + dep + ", which is " + other.state));
                    return;
                }
            }
        }
    }
    auto deployed = store_.deployedPackage(op.slot, coords);
    if (pkg.state == state::kWaiting && deployed && deployed->coords == coords &&
        deployed->sha256 == pkg.request.sha256 && healthyState(deployed->state) &&
        handler.healthy(*deployed)) {
        progress.reach(finalState(state::kAlreadyDeployed,
                                  describe(coords) + " with the same SHA-256 is already " +
                                      deployed->state + " on this node"));
        return;
    }
    PackageTask task{op.slot, nodeId, op.callbackId, op.scope, op.cleanState, pkg, deployed};
    try {
        handler.deploy(task, progress, stop);
    } catch (const Interrupted&) {
        throw;
    } catch (const std::exception& e) {
        if (stop.stop_requested()) throw Interrupted();
        progress.reach(finalState(state::kFailed, e.what()));
        return;
    }
    if (!progress.reachedFinal()) {
        if (stop.stop_requested()) throw Interrupted();
        progress.reach(finalState(
            state::kFailed, "the deployment of " + describe(coords) +
                                " ended without a final state (agent bug; see the agent log)"));
    }
}

void DeployExecutor::undeployPackage(const Operation& op, const OperationPackage& pkg,
                                     const std::string& nodeId, PackageHandler& handler,
                                     std::stop_token stop) {
    RecordingProgress progress(store_, logger_, op, pkg);
    const auto& coords = pkg.request.coords;
    auto deployed = store_.deployedPackage(op.slot, coords);
    if (!deployed) {
        progress.reach(
            StateChange{state::kUndeployed,
                        describe(coords) + " was not deployed on this node; nothing to remove",
                        true, std::nullopt, false});
        return;
    }
    std::set<std::string> inRequest;
    for (const auto& p : op.packages) inRequest.insert(p.request.coords.packageKey());
    std::vector<std::string> neededBy;
    for (const auto& d : store_.deployed(op.slot)) {
        if (inRequest.contains(d.coords.packageKey())) continue;
        if (std::find(d.dependsOn.begin(), d.dependsOn.end(), coords.packageName) !=
            d.dependsOn.end()) {
            neededBy.push_back(d.coords.packageName);
        }
    }
    if (!neededBy.empty()) {
        progress.reach(finalState(
            state::kNotUndeployable,
            coords.packageName + " is still needed by " + joinNames(neededBy) + " on this node"));
        return;
    }
    PackageTask task{op.slot, nodeId, op.callbackId, op.scope, op.cleanState, pkg, deployed};
    try {
        handler.undeploy(task, progress, stop);
    } catch (const Interrupted&) {
        throw;
    } catch (const std::exception& e) {
        if (stop.stop_requested()) throw Interrupted();
        progress.reach(finalState(state::kFailed, std::string("undeploy failed: ") + e.what()));
        return;
    }
    if (!progress.reachedFinal()) {
        if (stop.stop_requested()) throw Interrupted();
        progress.reach(finalState(
            state::kFailed, "the removal of " + describe(coords) + " ended without a final state"));
    }
}

}  // namespace rm::agent
