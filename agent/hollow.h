// Hollow mode: nodes that do everything a node agent does towards the Resource Manager
// (registration, heartbeats, Deploy/Undeploy, reports) but only pretend to deploy: each step
// takes a configurable time and touches no files. Used to load-test the RM with many nodes.
#pragma once

#include <chrono>
#include <string>

#include "agent/deploy_executor.h"

namespace rm::agent {

// Packages named "Broken-*" fail their Install and "*-Docs" end NOTVERIFIED, so the simulated
// nodes produce the same variety of states as the sample repository.
class SimulatedPackages final : public PackageHandler {
  public:
    explicit SimulatedPackages(std::chrono::milliseconds stepDuration) : step_(stepDuration) {}

    void deploy(const PackageTask& task, Progress& progress, std::stop_token stop) override;
    void undeploy(const PackageTask& task, Progress& progress, std::stop_token stop) override;
    bool healthy(const DeployedPackage&) override { return true; }
    std::optional<InstanceStatus> instance(const DeployedPackage& package) override;

  private:
    void pause(std::stop_token stop) const;

    std::chrono::milliseconds step_;
};

// "NAME-0001": the name (and slot) of hollow node `index` (0-based).
std::string hollowNodeName(const std::string& base, int index);

}  // namespace rm::agent
