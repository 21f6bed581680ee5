// Deploying packages for real: each package lives in its container directory
// <root>/services/<ServiceName>/<PackageName>, its lifecycle steps run there, and what it starts
// is supervised. Logs go to <root>/logs/<ServiceName>/<PackageName>.log, pid files to
// <root>/run/<ServiceName>/<PackageName>.pid (what runs) and .step.pid (the step running now).
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

#include "agent/archive_extractor.h"
#include "agent/deploy_executor.h"
#include "agent/downloader.h"
#include "agent/run_as.h"
#include "agent/step_runner.h"
#include "agent/supervisor.h"
#include "common/fault_points.h"
#include "common/log.h"
#include "deployer/profile.h"

namespace rm::agent {

struct ContainerOptions {
    DownloadOptions download;
    ExtractLimits extract;
    std::chrono::milliseconds stepKillGrace{5000};
    // A download that fails is tried again this often, waiting 0.5 s, 1 s, 2 s...: the repository
    // is the RM, and an RM restarting must not fail the deployments it is driving.
    int downloadAttempts = 6;
    common::FaultPoints* faults = nullptr;  // agent.mid_unpack and the step points; nullptr: none
    // Who packages run as (see agent/run_as.h). With switchUser, every step and process runs as
    // that user, each container is given to it once unpacked, and the agent's state in the root
    // is kept private. Default: the agent's own user.
    RunAs runAs;
};

class ContainerPackages final : public PackageHandler {
  public:
    ContainerPackages(std::filesystem::path root, Supervisor& supervisor, common::Logger& logger,
                      ContainerOptions options = {});

    void deploy(const PackageTask& task, Progress& progress, std::stop_token stop) override;
    void undeploy(const PackageTask& task, Progress& progress, std::stop_token stop) override;
    bool healthy(const DeployedPackage& package) override;
    std::optional<InstanceStatus> instance(const DeployedPackage& package) override;

    // After an agent restart: takes over (or restarts) the processes of RUNNING packages.
    void adoptRunning(const std::vector<DeployedPackage>& deployed, const std::string& nodeId);

    std::filesystem::path containerOf(const deployer::PackageCoordinates& coords) const;
    std::filesystem::path pidFileOf(const deployer::PackageCoordinates& coords) const;
    // Records the lifecycle step (Install, Verify, Uninstall) of the package that runs now.
    std::filesystem::path stepPidFileOf(const deployer::PackageCoordinates& coords) const;
    std::filesystem::path logFileOf(const deployer::PackageCoordinates& coords) const;

  private:
    void fetch(const PackageTask& task, const std::filesystem::path& container,
               std::stop_token stop);
    void activate(const PackageTask& task, Progress& progress, DeployedPackage row,
                  std::stop_token stop);
    void runStep(const char* name, const deployer::LifecycleStep& step,
                 const deployer::PackageCoordinates& coords, const std::string& nodeId,
                 const std::string& scope, std::stop_token stop);
    std::optional<deployer::PackageProfile> profileIn(const std::filesystem::path& container) const;
    ProcessSpec specFor(const deployer::PackageCoordinates& coords,
                        const deployer::PackageProfile* profile, const std::string& nodeId,
                        const std::string& scope) const;
    Environment environment(const deployer::PackageCoordinates& coords, const std::string& nodeId,
                            const std::string& scope) const;
    static std::string processId(const deployer::PackageCoordinates& coords);
    // Makes the container the run-as user's (when the agent switches users) before its steps run.
    void handOver(const std::filesystem::path& container) const;

    std::filesystem::path root_;
    Supervisor& supervisor_;
    common::Logger& logger_;
    ContainerOptions options_;
    StepRunner steps_;
};

}  // namespace rm::agent
