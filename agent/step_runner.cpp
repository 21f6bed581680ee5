#include "agent/step_runner.h"

#include <signal.h>
#include <sys/stat.h>

#include "agent/log_file.h"
#include "agent/pid_file.h"

namespace rm::agent {
namespace {

using Outcome = StepResult::Outcome;
using std::chrono::milliseconds;

constexpr std::size_t kQuotedLines = 3;

std::string withOutput(std::string message, const std::string& output) {
    return output.empty() ? message + " (no output)" : message + ": " + output;
}

// The id a running step is recorded under in its pid file.
std::string recordId(const std::string& name) {
    return "step " + name;
}

// Ends the step the pid file names if it still runs: an agent killed while the step ran left it
// behind. Its whole group goes, like a step that timed out.
void endLeftover(const fs::path& pidFile, int log, milliseconds killGrace) {
    const auto record = readPidFile(pidFile);
    if (record && record->id.rfind(recordId(""), 0) == 0 &&
        isRunning(record->pid, record->startTime)) {
        appendLogLine(log, "--- " + record->id.substr(recordId("").size()) + " (pid " +
                               std::to_string(record->pid) +
                               ") still runs from before the agent restarted; ending it");
        ExitWatcher watcher(record->pid, record->startTime);
        terminateGroup(record->pid, watcher, killGrace);
        tryReap(record->pid);
    }
    std::error_code ignored;
    fs::remove(pidFile, ignored);
}

// Launches the step; with a pid file, records it there before its command runs.
pid_t launchStep(const StepRequest& step, int log) {
    const LaunchRequest request{step.command, step.workDir, step.env, log, step.runAs};
    if (step.pidFile.empty()) return launchInNewSession(request);
    HeldProcess held = launchHeld(request);
    const pid_t pid = held.pid();
    const std::uint64_t startTime = processStartTime(pid).value_or(0);
    try {
        writePidFile(step.pidFile, {pid, startTime, recordId(step.name)});
        held.release();
    } catch (const std::exception& error) {
        ExitWatcher watcher(pid, startTime);
        terminateGroup(pid, watcher, milliseconds(0));
        reap(pid);
        std::error_code ignored;
        fs::remove(step.pidFile, ignored);
        throw SpawnError(std::string("cannot record it in its pid file: ") + error.what());
    }
    return pid;
}

}  // namespace

const char* toString(Outcome outcome) {
    switch (outcome) {
        case Outcome::Succeeded:
            return "succeeded";
        case Outcome::Failed:
            return "failed";
        case Outcome::TimedOut:
            return "timed out";
        case Outcome::CouldNotStart:
            return "could not start";
        case Outcome::Cancelled:
            return "cancelled";
    }
    return "unknown";
}

StepResult StepRunner::run(const StepRequest& step, std::stop_token stop) const {
    UniqueFd log;
    try {
        log = openLogForAppend(step.logFile);
    } catch (const std::exception& error) {
        return {Outcome::CouldNotStart, -1, step.name + " could not start: " + error.what()};
    }
    if (!step.pidFile.empty()) endLeftover(step.pidFile, log.get(), killGrace_);
    appendLogLine(log.get(), "--- " + step.name + " started: " + step.command);
    struct stat info {};
    const off_t outputStart = ::fstat(log.get(), &info) == 0 ? info.st_size : 0;

    pid_t pid = -1;
    try {
        pid = launchStep(step, log.get());
    } catch (const std::exception& error) {
        StepResult result{Outcome::CouldNotStart, -1,
                          step.name + " could not start: " + error.what()};
        appendLogLine(log.get(), "--- " + result.message);
        return result;
    }

    const auto startedAt = std::chrono::steady_clock::now();
    // Our unreaped child cannot vanish, so its start time is always readable here.
    ExitWatcher watcher(pid, processStartTime(pid).value_or(0));
    const ExitWatcher::Result waited = watcher.wait(step.timeout, stop);
    if (waited != ExitWatcher::Result::Ended) {
        terminateGroup(pid, watcher, killGrace_);
    } else {
        // Background jobs of the step would otherwise outlive it unsupervised.
        signalGroup(pid, SIGKILL);
    }
    const ExitStatus status = reap(pid);
    if (!step.pidFile.empty()) {
        std::error_code ignored;
        fs::remove(step.pidFile, ignored);
    }
    const auto elapsed =
        std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - startedAt);

    StepResult result;
    if (waited == ExitWatcher::Result::TimedOut) {
        result = {Outcome::TimedOut, -1,
                  step.name + " timed out after " + formatSeconds(step.timeout)};
    } else if (waited == ExitWatcher::Result::Cancelled) {
        result = {Outcome::Cancelled, -1,
                  step.name + " was cancelled after " + formatSeconds(elapsed)};
    } else if (status.kind == ExitStatus::Kind::Exited && status.value == 0) {
        result = {Outcome::Succeeded, 0, step.name + " succeeded in " + formatSeconds(elapsed)};
    } else {
        result = {Outcome::Failed, status.shellCode(),
                  withOutput(step.name + " " + status.describe(),
                             lastLines(step.logFile, outputStart, kQuotedLines))};
    }
    appendLogLine(log.get(), "--- " + result.message);
    return result;
}

}  // namespace rm::agent
