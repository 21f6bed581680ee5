#include "agent/hollow.h"

#include <condition_variable>
#include <cstdio>
#include <mutex>

#include <Poco/UUIDGenerator.h>

namespace rm::agent {

std::string hollowNodeName(const std::string& base, int index) {
    char suffix[16];
    std::snprintf(suffix, sizeof suffix, "-%04d", index + 1);
    return base + suffix;
}

void SimulatedPackages::pause(std::stop_token stop) const {
    std::mutex m;
    std::condition_variable_any cv;
    std::unique_lock lock(m);
    cv.wait_for(lock, stop, step_, [] { return false; });
    if (stop.stop_requested()) throw Interrupted();
}

void SimulatedPackages::deploy(const PackageTask& task, Progress& progress, std::stop_token stop) {
    const auto& c = task.package.request.coords;
    auto row = [&](const char* st) {
        return DeployedPackage{task.slot,
                               c,
                               task.package.request.sha256,
                               st,
                               task.scope,
                               Poco::UUIDGenerator::defaultGenerator().createRandom().toString(),
                               task.callbackId,
                               task.package.request.dependsOn};
    };
    if (task.package.state == state::kWaiting) {
        pause(stop);  // download
        pause(stop);  // unpack
        progress.reach(
            StateChange{state::kDeployed, "simulated", false, row(state::kDeployed), false});
    }
    pause(stop);  // install
    if (c.packageName.rfind("Broken-", 0) == 0) {
        progress.reach(StateChange{state::kFailed,
                                   "Install exited with status 1: simulated failure", true,
                                   row(state::kFailed), false});
        return;
    }
    if (c.packageName.size() >= 5 &&
        c.packageName.compare(c.packageName.size() - 5, 5, "-Docs") == 0) {
        progress.reach(
            StateChange{state::kNotVerified, "simulated", true, row(state::kNotVerified), false});
        return;
    }
    progress.reach(
        StateChange{state::kActivated, "simulated", true, row(state::kActivated), false});
}

void SimulatedPackages::undeploy(const PackageTask&, Progress& progress, std::stop_token stop) {
    pause(stop);
    progress.reach(StateChange{state::kUndeployed, "simulated", true, std::nullopt, true});
}

std::optional<InstanceStatus> SimulatedPackages::instance(const DeployedPackage& package) {
    if (package.state != state::kRunning) return std::nullopt;
    return InstanceStatus{0, "simulated"};
}

}  // namespace rm::agent
