// The resource-manager daemon: its settings and the manifolds its engine runs.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "common/engine.h"
#include "common/fault_points.h"
#include "common/log.h"
#include "common/settings.h"
#include "common/soap_server.h"

namespace rm::service {

struct RmConfig {
    std::string scope;
    common::ServerOptions server;       // the operator port (--listen)
    common::ServerOptions agentServer;  // the agent port (--agent-listen), TLS with the scope CA
    std::chrono::seconds nodeCertificateTtl{30LL * 24 * 3600};
    bool insecure = false;  // serve people off loopback without users or TLS (logged every start)
    std::filesystem::path stateDir;
    std::filesystem::path repositoryDir;
    std::filesystem::path wsdlFile;
    std::filesystem::path usersFile;
    size_t maxItems = 10000;
    int64_t maxResources = 100000;          // --max-resources (see SessionLimits)
    int64_t maxOpenSessions = 1000;         // --max-open-sessions
    int64_t maxSessionsKept = 10000;        // --max-sessions-kept
    int64_t maxReportBytes = 16 * 1024 * 1024;  // --max-report-bytes
    std::chrono::milliseconds sessionTimeout{600000};
    std::chrono::milliseconds heartbeatInterval{2000};
    std::chrono::milliseconds nodeLostAfter{10000};
    bool rescheduleOnLost = false;  // a LOST node's services go to another node instead of failing
    engine::EngineConfig engine;
};

common::Settings rmSettings();
// Throws common::UsageError saying what is wrong.
RmConfig loadRmConfig(const common::Settings& settings, const std::filesystem::path& programDir);

class ResourceManagerDaemon {
public:
    ResourceManagerDaemon(RmConfig config, common::Logger& logger);
    ~ResourceManagerDaemon();

    void start();
    void stop();

private:
    void installManifolds();
    // nullptr when no fault is configured: the points then cost one null check.
    common::FaultPoints* faults() const { return faults_->enabled() ? faults_.get() : nullptr; }

    RmConfig config_;
    common::Logger& logger_;
    // From RM_FAULTS and <state-dir>/faults; empty (and free) unless a test configured faults.
    std::unique_ptr<common::FaultPoints> faults_;
    engine::Engine engine_;
    int boundPort_ = 0;  // kept across restarts of the api worker so the URL stays valid
    int boundAgentPort_ = 0;
    bool announced_ = false;
};

}  // namespace rm::service
