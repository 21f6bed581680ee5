// The resource-manager daemon: its settings and the manifolds its engine runs.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "common/engine.h"
#include "common/log.h"
#include "common/settings.h"
#include "common/soap_server.h"

namespace rm::service {

struct RmConfig {
    std::string scope;
    common::ServerOptions server;
    std::filesystem::path stateDir;
    std::filesystem::path repositoryDir;
    std::filesystem::path wsdlFile;
    std::filesystem::path usersFile;
    size_t maxItems = 10000;
    std::chrono::milliseconds sessionTimeout{600000};
    std::chrono::milliseconds heartbeatInterval{2000};
    std::chrono::milliseconds nodeLostAfter{10000};
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

    RmConfig config_;
    common::Logger& logger_;
    engine::Engine engine_;
    int boundPort_ = 0;  // kept across restarts of the api worker so the URL stays valid
    bool announced_ = false;
};

}  // namespace rm::service
