#include "agent/container_packages.h"

#include <Poco/UUIDGenerator.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <condition_variable>
#include <mutex>
#include <system_error>

#include "agent/pid_file.h"
#include "deployer/sha256.h"

namespace rm::agent {

using common::Log;
using common::LogLevel;
namespace fs = std::filesystem;

namespace {

std::string newInstanceId() {
    return Poco::UUIDGenerator::defaultGenerator().createRandom().toString();
}

DeployedPackage rowFor(const PackageTask& task, const char* st, std::string instanceId) {
    return DeployedPackage{task.slot,
                           task.package.request.coords,
                           task.package.request.sha256,
                           st,
                           task.scope,
                           std::move(instanceId),
                           task.callbackId,
                           task.package.request.dependsOn};
}

std::chrono::milliseconds seconds(int s) {
    return std::chrono::milliseconds(int64_t{s} * 1000);
}

}  // namespace

ContainerPackages::ContainerPackages(fs::path root, Supervisor& supervisor, common::Logger& logger,
                                     ContainerOptions options)
    : root_(std::move(root)),
      supervisor_(supervisor),
      logger_(logger),
      options_(options),
      steps_(options.stepKillGrace) {
    options_.download.faults = options_.faults;
    if (options_.faults) {
        auto* faults = options_.faults;
        options_.extract.onEntry = [faults](std::uint64_t entries) {
            if (entries == 1) faults->check("agent.mid_unpack");
        };
    }
    const RunAs& runAs = options_.runAs;
    if (!runAs.user.empty()) {
        Log(logger_, LogLevel::info, "run_as")
            .kv("user", runAs.user)
            .kv("uid", runAs.credentials.uid)
            .kv("gid", runAs.credentials.gid)
            .kv("switching", runAs.switchUser ? "yes" : "no (the agent is not root)");
    }
    if (runAs.switchUser) {
        try {
            restrictAgentState(root_);
        } catch (const std::exception& e) {
            Log(logger_, LogLevel::error, "state_not_private").kv("error", e.what());
        }
    }
}

namespace {
// "Install" -> "agent.before_install": the names the fault points are configured by.
std::string stepPoint(const char* when, const char* step) {
    std::string name = std::string("agent.") + when + "_" + step;
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return name;
}
}  // namespace

fs::path ContainerPackages::containerOf(const deployer::PackageCoordinates& c) const {
    return root_ / "services" / c.serviceName / c.packageName;
}
fs::path ContainerPackages::pidFileOf(const deployer::PackageCoordinates& c) const {
    return root_ / "run" / c.serviceName / (c.packageName + ".pid");
}
fs::path ContainerPackages::stepPidFileOf(const deployer::PackageCoordinates& c) const {
    return root_ / "run" / c.serviceName / (c.packageName + ".step.pid");
}
fs::path ContainerPackages::logFileOf(const deployer::PackageCoordinates& c) const {
    return root_ / "logs" / c.serviceName / (c.packageName + ".log");
}
std::string ContainerPackages::processId(const deployer::PackageCoordinates& c) {
    return c.serviceName + "/" + c.packageName;
}

Environment ContainerPackages::environment(const deployer::PackageCoordinates& c,
                                           const std::string& nodeId,
                                           const std::string& scope) const {
    fs::path container = containerOf(c);
    Environment env{
        {"PATH", "/usr/local/bin:/usr/bin:/bin"},
        {"HOME", container.string()},
        {"LANG", "C.UTF-8"},
        {"RM_CONTAINER", container.string()},
        {"RM_SERVICE_CLASS", c.serviceClass},
        {"RM_SERVICE_NAME", c.serviceName},
        {"RM_SERVICE_VERSION", c.serviceVersion},
        {"RM_PACKAGE_NAME", c.packageName},
        {"RM_PACKAGE_VERSION", c.packageVersion},
        {"RM_NODE_ID", nodeId},
        {"RM_SCOPE", scope},
    };
    if (options_.runAs.switchUser) {
        env["USER"] = options_.runAs.user;
        env["LOGNAME"] = options_.runAs.user;
    }
    return env;
}

std::optional<deployer::PackageProfile> ContainerPackages::profileIn(
    const fs::path& container) const {
    fs::path file = container / "profile.xml";
    // The container may belong to the run-as user: read only a regular file of its own, never
    // through a symlink, and never wait on a FIFO put there.
    const UniqueFd fd(::open(file.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (!fd) return std::nullopt;
    struct stat info {};
    if (::fstat(fd.get(), &info) != 0 || !S_ISREG(info.st_mode)) {
        throw deployer::ProfileError(file.string() + " is not a regular file");
    }
    std::string text;
    char buffer[8192];
    for (;;) {
        const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw std::runtime_error("cannot read " + file.string());
        if (n == 0) break;
        text.append(buffer, static_cast<std::size_t>(n));
        // One byte over the limit is enough for the parser to refuse it.
        if (text.size() > deployer::ProfileLimits::kMaxDocumentBytes) break;
    }
    return deployer::parseProfile(text, file.string());
}

ProcessSpec ContainerPackages::specFor(const deployer::PackageCoordinates& c,
                                       const deployer::PackageProfile* profile,
                                       const std::string& nodeId, const std::string& scope) const {
    ProcessSpec spec;
    spec.id = processId(c);
    spec.workDir = containerOf(c);
    // Without a profile (container gone) the spec only serves to find and stop a recorded copy.
    spec.command = profile && profile->lifecycle.start ? profile->lifecycle.start->command : "true";
    spec.env = environment(c, nodeId, scope);
    spec.logFile = logFileOf(c);
    spec.pidFile = pidFileOf(c);
    spec.runAs = options_.runAs.launchAs();
    if (profile && profile->lifecycle.stop) {
        if (!profile->lifecycle.stop->command.empty())
            spec.stopCommand = profile->lifecycle.stop->command;
        spec.stopTimeout = seconds(profile->lifecycle.stop->timeoutSeconds);
    }
    return spec;
}

void ContainerPackages::handOver(const fs::path& container) const {
    const RunAs& runAs = options_.runAs;
    if (!runAs.switchUser) return;
    // The directories above the container are the agent's: the user only gets through them.
    for (const fs::path& dir : {root_ / "services", container.parent_path()}) {
        struct stat info {};
        if (::lstat(dir.c_str(), &info) == 0 && S_ISDIR(info.st_mode) &&
            info.st_uid == ::geteuid() && (info.st_mode & 07777) != 0755 &&
            ::chmod(dir.c_str(), 0755) != 0) {
            throw std::system_error(errno, std::generic_category(),
                                    "cannot let " + runAs.user + " through " + dir.string());
        }
    }
    // Freshly unpacked (or given away only in part before the agent was killed): still the
    // agent's, so the user cannot have touched it meanwhile. The marker stays the agent's.
    struct stat info {};
    if (::lstat(container.c_str(), &info) != 0) {
        throw std::system_error(errno, std::generic_category(),
                                "cannot find " + container.string());
    }
    if (info.st_uid == runAs.credentials.uid && info.st_gid == runAs.credentials.gid) return;
    try {
        giveTreeTo(container, runAs.credentials, kUnpackedMarker);
    } catch (const std::exception& e) {
        throw std::runtime_error("cannot give the container to " + runAs.user + ": " + e.what());
    }
    Log(logger_, LogLevel::info, "container_handed_over")
        .kv("container", container.string())
        .kv("user", runAs.user);
}

void ContainerPackages::runStep(const char* name, const deployer::LifecycleStep& step,
                                const deployer::PackageCoordinates& c, const std::string& nodeId,
                                const std::string& scope, std::stop_token stop) {
    // One pid file for whichever step of the package runs: after a restart, a step the killed
    // agent left running is ended before the package's next step (or its redo) starts.
    StepRequest request{name,
                        step.command,
                        containerOf(c),
                        environment(c, nodeId, scope),
                        logFileOf(c),
                        seconds(step.timeoutSeconds),
                        stepPidFileOf(c),
                        options_.runAs.launchAs()};
    Log(logger_, LogLevel::info, "step_started").kv("package", processId(c)).kv("step", name);
    common::checkFault(options_.faults, stepPoint("before", name));
    StepResult result = steps_.run(request, stop);
    if (result.outcome == StepResult::Outcome::Cancelled || stop.stop_requested())
        throw Interrupted();
    Log(logger_, result.succeeded() ? LogLevel::info : LogLevel::warn, "step_finished")
        .kv("package", processId(c))
        .kv("step", name)
        .kv("outcome", toString(result.outcome))
        .kv("exit", result.exitCode);
    if (!result.succeeded()) throw std::runtime_error(result.message);
    common::checkFault(options_.faults, stepPoint("after", name));
}

void ContainerPackages::fetch(const PackageTask& task, const fs::path& container,
                              std::stop_token stop) {
    const auto& request = task.package.request;
    fs::path download = root_ / "downloads" /
                        (task.callbackId + "-" + std::to_string(task.package.position) + ".tar.gz");
    struct RemoveOnExit {
        fs::path file;
        ~RemoveOnExit() {
            std::error_code ignored;
            fs::remove(file, ignored);
        }
    } cleanup{download};
    for (int attempt = 1;; ++attempt) {
        try {
            downloadFile(request.url, download, options_.download, stop);
            break;
        } catch (const Interrupted&) {
            throw;
        } catch (const std::exception& e) {
            if (attempt >= options_.downloadAttempts) throw;
            auto wait = std::chrono::milliseconds(500) * (1 << std::min(attempt - 1, 5));
            Log(logger_, LogLevel::warn, "download_retry")
                .kv("url", request.url)
                .kv("attempt", attempt)
                .kv("retry_in_ms", wait.count())
                .kv("error", e.what());
            std::mutex m;
            std::condition_variable_any cv;
            std::unique_lock lock(m);
            cv.wait_for(lock, stop, wait, [] { return false; });
            if (stop.stop_requested()) throw Interrupted();
        }
    }
    std::string actual = deployer::sha256File(download);
    if (actual != request.sha256) {
        throw std::runtime_error("checksum mismatch for " + request.url + ": expected SHA-256 " +
                                 request.sha256 + ", downloaded " + actual +
                                 " (the repository changed or the transfer was corrupted)");
    }
    // Only now that the new archive is here and verified: whatever ran from the container being
    // replaced must not keep running from it.
    try {
        auto old = profileIn(container);
        supervisor_.stop(specFor(request.coords, old ? &*old : nullptr, task.nodeId, task.scope));
    } catch (const deployer::ProfileError&) {
        supervisor_.stop(specFor(request.coords, nullptr, task.nodeId, task.scope));
    }
    if (removeHalfUnpacked(container)) {
        Log(logger_, LogLevel::info, "half_unpacked_removed").kv("container", container.string());
    }
    try {
        extractPackage(download, container, request.sha256, options_.extract);
    } catch (const ExtractError& e) {
        throw std::runtime_error(std::string("unpacking refused: ") + e.what());
    }
}

void ContainerPackages::deploy(const PackageTask& task, Progress& progress, std::stop_token stop) {
    const auto& request = task.package.request;
    const auto& c = request.coords;
    fs::path container = containerOf(c);
    std::string current = task.package.state;
    std::string instanceId = task.deployed && task.deployed->callbackId == task.callbackId &&
                                     task.deployed->sha256 == request.sha256 &&
                                     !task.deployed->instanceId.empty()
                                 ? task.deployed->instanceId
                                 : newInstanceId();
    if (current == state::kWaiting || !isCompletelyUnpacked(container, request.sha256)) {
        fetch(task, container, stop);
        progress.reach(StateChange{state::kDeployed, "unpacked into " + container.string(), false,
                                   rowFor(task, state::kDeployed, instanceId), false});
        current = state::kDeployed;
    }
    DeployedPackage row = rowFor(task, state::kFailed, instanceId);
    try {
        handOver(container);
        auto profile = profileIn(container);
        if (!profile) throw std::runtime_error("the package has no profile.xml at its root");
        if (!(profile->coords == c)) {
            throw std::runtime_error("the archive's profile.xml describes " +
                                     profile->coords.key() + ", not the requested " + c.key());
        }
        const auto& lc = profile->lifecycle;
        if (current == state::kDeployed) {
            if (lc.install) runStep("Install", *lc.install, c, task.nodeId, task.scope, stop);
            if (lc.verify) runStep("Verify", *lc.verify, c, task.nodeId, task.scope, stop);
            if (!lc.install && !lc.start && !lc.verify) {
                row.state = state::kNotVerified;
                progress.reach(StateChange{state::kNotVerified,
                                           "deployed; the package declares no way to verify it",
                                           true, row, false});
                return;
            }
            row.state = state::kActivated;
            std::string done = lc.install && lc.verify ? "Install and Verify succeeded"
                               : lc.install            ? "Install succeeded"
                                                       : "Verify succeeded";
            if (!lc.start) {
                progress.reach(StateChange{state::kActivated, done, true, row, false});
                return;
            }
            if (lc.install || lc.verify)
                progress.reach(StateChange{state::kActivated, done, false, row, false});
        }
        ProcessSpec spec = specFor(c, &*profile, task.nodeId, task.scope);
        common::checkFault(options_.faults, "agent.before_start");
        bool adopted = supervisor_.adopt(spec);
        // error after the start: the start counts as failed, so what it started must not stay.
        if (common::faultFails(options_.faults, "agent.after_start")) {
            supervisor_.stop(spec.id);
            throw common::InjectedFault("agent.after_start", common::FaultAction::Error);
        }
        Log(logger_, LogLevel::info, "process_started")
            .kv("package", spec.id)
            .kv("adopted", adopted);
        int readyTimeout =
            std::max(lc.start->timeoutSeconds, lc.ready ? lc.ready->timeoutSeconds : 0);
        std::optional<std::string> readyCommand;
        if (lc.ready) readyCommand = lc.ready->command;
        common::checkFault(options_.faults, "agent.before_ready");
        ReadyResult ready =
            supervisor_.waitReady(spec.id, readyCommand, seconds(readyTimeout), stop);
        if (stop.stop_requested()) throw Interrupted();  // it keeps running and is adopted again
        if (ready.ready && common::faultFails(options_.faults, "agent.after_ready")) {
            supervisor_.stop(spec.id);
            throw common::InjectedFault("agent.after_ready", common::FaultAction::Error);
        }
        if (!ready.ready) {
            supervisor_.stop(spec.id);
            throw std::runtime_error("Start: not ready: " + ready.message);
        }
        row.state = state::kRunning;
        auto status = supervisor_.status(spec.id);
        progress.reach(
            StateChange{state::kRunning,
                        "running as pid " + std::to_string(status ? status->pid : 0) + ", ready",
                        true, row, false});
    } catch (const Interrupted&) {
        throw;
    } catch (const std::exception& e) {
        if (stop.stop_requested()) throw Interrupted();
        row.state = state::kFailed;
        progress.reach(StateChange{state::kFailed, e.what(), true, row, false});
    }
}

void ContainerPackages::undeploy(const PackageTask& task, Progress& progress,
                                 std::stop_token stop) {
    const auto& c = task.package.request.coords;
    fs::path container = containerOf(c);
    std::optional<deployer::PackageProfile> profile;
    try {
        profile = profileIn(container);
    } catch (const std::exception& e) {
        Log(logger_, LogLevel::warn, "profile_unreadable")
            .kv("container", container.string())
            .kv("error", e.what());
    }
    const std::string nodeId = task.nodeId;
    const std::string scope = task.deployed ? task.deployed->scope : task.scope;
    supervisor_.stop(specFor(c, profile ? &*profile : nullptr, nodeId, scope));
    if (profile && profile->lifecycle.uninstall) {
        runStep("Uninstall", *profile->lifecycle.uninstall, c, nodeId, scope, stop);
    }
    std::string message = "stopped and uninstalled";
    if (task.cleanState) {
        std::error_code ec;
        fs::remove_all(container, ec);
        if (ec)
            throw std::runtime_error("cannot remove " + container.string() + ": " + ec.message());
        removeHalfUnpacked(container);
        message += "; container removed";
    } else {
        message += "; container kept (cleanState=false)";
    }
    progress.reach(StateChange{state::kUndeployed, message, true, std::nullopt, true});
}

bool ContainerPackages::healthy(const DeployedPackage& d) {
    if (!isCompletelyUnpacked(containerOf(d.coords), d.sha256)) return false;
    if (d.state != state::kRunning) return true;
    auto status = supervisor_.status(processId(d.coords));
    return status && status->running;
}

std::optional<InstanceStatus> ContainerPackages::instance(const DeployedPackage& d) {
    if (d.state != state::kRunning) return std::nullopt;
    if (auto status = supervisor_.status(processId(d.coords))) {
        if (status->running) return InstanceStatus{status->pid, "running"};
        return InstanceStatus{
            0, status->lastError.empty() ? "restarting" : "failing: " + status->lastError};
    }
    if (auto record = readPidFile(pidFileOf(d.coords));
        record && recordsLiveProcess(*record, processId(d.coords))) {
        return InstanceStatus{record->pid, "running (not supervised)"};
    }
    return InstanceStatus{0, "stopped"};
}

void ContainerPackages::adoptRunning(const std::vector<DeployedPackage>& deployed,
                                     const std::string& nodeId) {
    for (const auto& d : deployed) {
        if (d.state != state::kRunning) continue;
        try {
            auto profile = profileIn(containerOf(d.coords));
            if (!profile || !profile->lifecycle.start) {
                Log(logger_, LogLevel::warn, "adopt_skipped")
                    .kv("package", processId(d.coords))
                    .kv("reason", "its container has no profile with a Start step; redeploy it");
                continue;
            }
            bool adopted = supervisor_.adopt(specFor(d.coords, &*profile, nodeId, d.scope));
            Log(logger_, LogLevel::info, adopted ? "process_adopted" : "process_restarted")
                .kv("package", processId(d.coords));
        } catch (const std::exception& e) {
            Log(logger_, LogLevel::error, "adopt_failed")
                .kv("package", processId(d.coords))
                .kv("error", e.what());
        }
    }
}

}  // namespace rm::agent
