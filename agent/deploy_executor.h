// Carries out journaled Deploy/Undeploy operations in the background, package by package, and
// resumes unfinished ones after a restart. What "deploying a package" does is left to a
// PackageHandler (real containers and processes, or a simulation in hollow mode); the executor
// owns ordering, dependency and inventory rules and records every state reached.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>

#include "agent/agent_store.h"
#include "common/log.h"

namespace rm::agent {

// Thrown by a handler when it gave up because the agent is stopping: the package keeps the state
// it had, and the work is redone after the restart.
class Interrupted : public std::runtime_error {
  public:
    Interrupted() : std::runtime_error("interrupted: the agent is stopping") {}
};

// Everything a handler needs about the package it works on.
struct PackageTask {
    std::string slot;
    std::string nodeId;
    std::string callbackId;
    std::string scope;
    bool cleanState = true;
    OperationPackage package;                 // its current state (resume from there)
    std::optional<DeployedPackage> deployed;  // the inventory row for the same package, if any
};

// Lets a handler record the states a package reaches, durably and reported.
class Progress {
  public:
    virtual ~Progress() = default;
    virtual void reach(const StateChange& change) = 0;
};

struct InstanceStatus {
    int pid = 0;
    std::string state;  // "running", "restarting", "stopped"
};

class PackageHandler {
  public:
    virtual ~PackageHandler() = default;
    // Takes a package from its current state (WAITING, DEPLOYED or a not-final ACTIVATED) to a
    // final one, recording each state reached. Throws Interrupted when asked to stop; any other
    // exception means FAILED with its message.
    virtual void deploy(const PackageTask& task, Progress& progress, std::stop_token stop) = 0;
    // Stops, uninstalls and (cleanState) removes a deployed package; records UNDEPLOYED.
    virtual void undeploy(const PackageTask& task, Progress& progress, std::stop_token stop) = 0;
    // True when the deployed package is what its state claims (e.g. its process is alive).
    virtual bool healthy(const DeployedPackage& package) = 0;
    virtual std::optional<InstanceStatus> instance(const DeployedPackage& package) = 0;
};

struct ExecutorOptions {
    std::size_t maxParallel = 4;  // operations carried out at once (on distinct packages)
    std::chrono::milliseconds idlePoll{2000};
};

class DeployExecutor {
  public:
    // `handlers` maps slot to the handler of that node; "" is the fallback for every slot.
    DeployExecutor(AgentStore& store,
                   std::map<std::string, std::shared_ptr<PackageHandler>> handlers,
                   common::Logger& logger, ExecutorOptions options = {});
    ~DeployExecutor();

    // Dispatches operations until `stop`; then interrupts the running ones and waits for them.
    void run(std::stop_token stop);

    std::size_t running() const;

  private:
    struct Running;
    void dispatch(std::stop_token stop);
    void execute(const Operation& op, std::stop_token stop);
    void deployPackage(const Operation& op, const OperationPackage& pkg, const std::string& nodeId,
                       PackageHandler& handler, std::stop_token stop);
    void undeployPackage(const Operation& op, const OperationPackage& pkg,
                         const std::string& nodeId, PackageHandler& handler, std::stop_token stop);
    PackageHandler& handlerFor(const std::string& slot);
    static std::set<std::string> claims(const Operation& op);

    AgentStore& store_;
    std::map<std::string, std::shared_ptr<PackageHandler>> handlers_;
    common::Logger& logger_;
    ExecutorOptions options_;
    mutable std::mutex mutex_;
    std::map<std::string, std::unique_ptr<Running>> running_;  // by slot + callbackID
};

}  // namespace rm::agent
