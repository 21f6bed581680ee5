// The node-agent daemon: its settings and the manifolds its engine runs (store, supervisor,
// executor, api, presence, outbox), for one real node or for N hollow ones.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

#include "agent/run_as.h"
#include "common/engine.h"
#include "common/fault_points.h"
#include "common/log.h"
#include "common/settings.h"
#include "common/soap_server.h"

namespace rm::agent {

struct NodeIdentities;  // agent_daemon.cpp: each slot's node certificate

struct AgentConfig {
    std::string name;
    common::ServerOptions server;
    std::string managerUrl;  // the RM's agent port (https://)
    std::string joinToken;   // first start only (--join-token or --join-token-file)
    std::string caSha256;    // first start only: pin of the scope CA
    std::filesystem::path root;
    std::vector<std::pair<std::string, std::string>> labels;
    std::optional<std::chrono::milliseconds> heartbeatInterval;  // unset: what the RM says
    bool keepProcessesOnExit = true;
    int maxInstances = 100;
    std::size_t maxParallel = 4;
    int hollow = 0;  // > 0: run that many simulated nodes instead of one real node
    std::chrono::milliseconds hollowStep{50};
    engine::EngineConfig engine;
    RunAs runAs;  // who packages run as (--run-as), resolved and checked by loadAgentConfig
};

common::Settings agentSettings();
// Throws common::UsageError saying what is wrong.
AgentConfig loadAgentConfig(const common::Settings& settings);

class NodeAgentDaemon {
  public:
    NodeAgentDaemon(AgentConfig config, common::Logger& logger);
    ~NodeAgentDaemon();
    NodeAgentDaemon(const NodeAgentDaemon&) = delete;
    NodeAgentDaemon& operator=(const NodeAgentDaemon&) = delete;

    void start();
    void stop();

  private:
    void installRealNode();
    void installHollowNodes();
    void installStore();
    void installOutbox();
    // The node identities (one per slot): enrolled at first start, renewed before expiry.
    void installIdentity(std::vector<std::string> slots);
    // Enrolls every slot without credentials (first start). Throws UsageError when that cannot
    // work (no token, wrong pin, token refused), std::runtime_error when the RM is unreachable.
    void enrollMissing(const std::vector<std::string>& slots);
    // Sleeps until a slot's certificate is due, renews every due one and returns (stop: returns).
    void renewWhenDue(NodeIdentities& identities, std::stop_token stop);
    // Each slot's credentials directory, <root>/pki/<slot>.
    std::filesystem::path credentialsDir(const std::string& slot) const;
    // nullptr when no fault is configured: the points then cost one null check.
    common::FaultPoints* faults() const { return faults_->enabled() ? faults_.get() : nullptr; }

    AgentConfig config_;
    common::Logger& logger_;
    // From RM_FAULTS and <root>/faults; empty (and free) unless a test configured faults.
    std::unique_ptr<common::FaultPoints> faults_;
    engine::Engine engine_;
    // Kept across restarts of the api worker so that the URLs announced and registered stay valid.
    std::vector<int> boundPorts_;
    bool announced_ = false;
};

}  // namespace rm::agent
