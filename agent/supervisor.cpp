#include "agent/supervisor.h"

#include <signal.h>

#include <algorithm>
#include <condition_variable>
#include <stdexcept>
#include <thread>
#include <vector>

#include "agent/log_file.h"
#include "agent/pid_file.h"
#include "agent/step_runner.h"

namespace rm::agent {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;
using std::chrono::system_clock;

constexpr std::size_t kQuotedLines = 3;
// How long waitReady gives the monitor thread to record the exit it has just seen happen.
constexpr milliseconds kExitRecordWait(1000);
constexpr milliseconds kStatusPoll(20);

// Returns false when `stop` was requested before `duration` passed.
bool sleepFor(milliseconds duration, std::stop_token stop) {
    std::mutex mutex;
    std::condition_variable_any wakeup;
    std::unique_lock lock(mutex);
    wakeup.wait_for(lock, stop, duration, [] { return false; });
    return !stop.stop_requested();
}

milliseconds since(steady_clock::time_point start) {
    return std::chrono::duration_cast<milliseconds>(steady_clock::now() - start);
}

void validate(const ProcessSpec& spec) {
    const bool badId = spec.id.empty() || std::any_of(spec.id.begin(), spec.id.end(), [](char c) {
                           return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
                       });
    if (badId)
        throw std::invalid_argument("process id must be non-empty, without control characters");
    if (spec.command.empty()) throw std::invalid_argument("process " + spec.id + " has no command");
    if (spec.logFile.empty() || spec.pidFile.empty()) {
        throw std::invalid_argument("process " + spec.id + " needs a log file and a pid file");
    }
}

}  // namespace

struct Supervisor::Entry {
    explicit Entry(ProcessSpec s) : spec(std::move(s)) {}

    std::mutex control;  // serialises start, stop and detach of this id; taken before mutex_

    // Guarded by Supervisor::mutex_.
    ProcessSpec spec;
    pid_t pid = 0;
    std::uint64_t startTime = 0;
    bool ownChild = false;  // only our own children can (and must) be reaped
    bool running = false;
    bool adopted = false;
    unsigned restarts = 0;
    std::optional<ExitStatus> lastExit;
    std::string lastOutput;
    std::string lastError;
    system_clock::time_point since;
    steady_clock::time_point upSince;
    off_t outputStart = 0;

    // Guarded by `control`.
    std::jthread monitor;

    void stopMonitor() {
        if (!monitor.joinable()) return;
        monitor.request_stop();
        monitor.join();
    }
};

Supervisor::Supervisor(SupervisorOptions options) : options_(options) {}

Supervisor::~Supervisor() {
    detachAll();
}

std::shared_ptr<Supervisor::Entry> Supervisor::find(const std::string& id) const {
    std::lock_guard lock(mutex_);
    const auto it = entries_.find(id);
    return it == entries_.end() ? nullptr : it->second;
}

std::shared_ptr<Supervisor::Entry> Supervisor::entryFor(const ProcessSpec& spec) {
    std::lock_guard lock(mutex_);
    auto& entry = entries_[spec.id];
    if (!entry) entry = std::make_shared<Entry>(spec);
    return entry;
}

void Supervisor::start(const ProcessSpec& spec) {
    ensureSupervised(spec);
}

bool Supervisor::adopt(const ProcessSpec& spec) {
    return ensureSupervised(spec);
}

bool Supervisor::ensureSupervised(const ProcessSpec& spec) {
    validate(spec);
    const std::shared_ptr<Entry> entry = entryFor(spec);
    std::lock_guard control(entry->control);
    if (entry->monitor.joinable()) return true;
    {
        std::lock_guard lock(mutex_);
        entry->spec = spec;
        entry->restarts = 0;
    }
    const bool tookOver = takeOverRecorded(*entry);
    if (!tookOver) launch(*entry);
    entry->monitor =
        std::jthread([this, raw = entry.get()](std::stop_token stop) { monitor(*raw, stop); });
    return tookOver;
}

bool Supervisor::takeOverRecorded(Entry& entry) {
    ProcessSpec spec;
    std::optional<PidFileRecord> record;
    {
        std::lock_guard lock(mutex_);
        spec = entry.spec;
        // A copy we detached from earlier is known even if its pid file has gone meanwhile.
        if (entry.running) record = PidFileRecord{entry.pid, entry.startTime, spec.id};
    }
    if (!record || !recordsLiveProcess(*record, spec.id)) record = readPidFile(spec.pidFile);
    if (!record || !recordsLiveProcess(*record, spec.id)) return false;
    const system_clock::time_point startedAt = startTimeToWallClock(record->startTime);
    {
        std::lock_guard lock(mutex_);
        entry.pid = record->pid;
        entry.startTime = record->startTime;
        entry.ownChild = false;
        entry.running = true;
        entry.adopted = true;
        entry.since = startedAt;
        entry.upSince = steady_clock::now() -
                        std::max(system_clock::now() - startedAt, system_clock::duration::zero());
        entry.outputStart = logSize(spec.logFile);
    }
    appendLogLine(spec.logFile, "--- supervisor: adopted " + spec.id + ", running as pid " +
                                    std::to_string(record->pid));
    return true;
}

void Supervisor::launch(Entry& entry) {
    ProcessSpec spec;
    {
        std::lock_guard lock(mutex_);
        spec = entry.spec;
    }
    try {
        const UniqueFd log = openLogForAppend(spec.logFile);
        appendLogLine(log.get(), "--- supervisor: starting " + spec.id + ": " + spec.command);
        const off_t outputStart = logSize(spec.logFile);
        // Held until its pid file names it: killed in between, the agent leaves no copy running
        // that the next one cannot find (the held process ends when its launcher is gone).
        HeldProcess held =
            launchHeld({spec.command, spec.workDir, spec.env, log.get(), spec.runAs});
        const pid_t pid = held.pid();
        const std::uint64_t startTime = processStartTime(pid).value_or(0);
        try {
            writePidFile(spec.pidFile, {pid, startTime, spec.id});
        } catch (const std::exception& error) {
            // A copy the pid file does not name could be started a second time after a restart.
            ExitWatcher watcher(pid, startTime);
            terminateGroup(pid, watcher, milliseconds(0));
            reap(pid);
            throw SpawnError("cannot record " + spec.id + " in its pid file (" + error.what() +
                             "), so it was stopped again");
        }
        try {
            held.release();
        } catch (const std::exception& error) {
            reap(pid);
            std::error_code ignored;
            fs::remove(spec.pidFile, ignored);
            throw SpawnError(std::string("it ended before it could run its command: ") +
                             error.what());
        }
        std::lock_guard lock(mutex_);
        entry.pid = pid;
        entry.startTime = startTime;
        entry.ownChild = true;
        entry.running = true;
        entry.adopted = false;
        entry.since = system_clock::now();
        entry.upSince = steady_clock::now();
        entry.outputStart = outputStart;
        entry.lastError.clear();
    } catch (const std::exception& error) {
        const std::string message = "cannot start " + spec.id + ": " + error.what();
        appendLogLine(spec.logFile, "--- supervisor: " + message);
        std::lock_guard lock(mutex_);
        entry.lastError = message;
        throw SpawnError(message);
    }
}

void Supervisor::monitor(Entry& entry, std::stop_token stop) {
    milliseconds backoff = options_.initialBackoff;
    for (;;) {
        pid_t pid = 0;
        std::uint64_t startTime = 0;
        bool ownChild = false;
        bool running = false;
        steady_clock::time_point upSince;
        ProcessSpec spec;
        off_t outputStart = 0;
        {
            std::lock_guard lock(mutex_);
            pid = entry.pid;
            startTime = entry.startTime;
            ownChild = entry.ownChild;
            running = entry.running;
            upSince = entry.upSince;
            spec = entry.spec;
            outputStart = entry.outputStart;
        }
        if (running) {
            ExitWatcher watcher(pid, startTime);
            if (watcher.wait(ExitWatcher::kForever, stop) == ExitWatcher::Result::Cancelled) return;
            // What the dead copy left in its group would hold its ports and files.
            signalGroup(pid, SIGKILL);
            const ExitStatus status = ownChild ? reap(pid) : tryReap(pid).value_or(ExitStatus{});
            const milliseconds uptime = since(upSince);
            if (uptime >= options_.stableAfter) backoff = options_.initialBackoff;
            std::string output = lastLines(spec.logFile, outputStart, kQuotedLines);
            appendLogLine(spec.logFile, "--- supervisor: " + spec.id + " " + status.describe() +
                                            " after " + formatSeconds(uptime) + "; restarting in " +
                                            formatSeconds(backoff));
            std::lock_guard lock(mutex_);
            entry.running = false;
            entry.pid = 0;
            entry.lastExit = status;
            entry.lastOutput = std::move(output);
            entry.since = system_clock::now();
        }
        if (!sleepFor(backoff, stop)) return;
        backoff = std::min(backoff * 2, options_.maxBackoff);
        try {
            launch(entry);
            std::lock_guard lock(mutex_);
            ++entry.restarts;
        } catch (const std::exception&) {
            // launch() recorded why; the next attempt waits longer.
        }
    }
}

bool Supervisor::stop(const std::string& id) {
    const std::shared_ptr<Entry> entry = find(id);
    if (!entry) return false;
    std::lock_guard control(entry->control);
    entry->stopMonitor();
    endProcess(*entry);
    return true;
}

void Supervisor::stop(const ProcessSpec& spec) {
    validate(spec);
    const std::shared_ptr<Entry> entry = entryFor(spec);
    std::lock_guard control(entry->control);
    entry->stopMonitor();
    bool running = false;
    {
        std::lock_guard lock(mutex_);
        running = entry->running;
        if (!running) entry->spec = spec;
    }
    if (!running) takeOverRecorded(*entry);
    endProcess(*entry);
}

void Supervisor::endProcess(Entry& entry) {
    ProcessSpec spec;
    pid_t pid = 0;
    std::uint64_t startTime = 0;
    bool ownChild = false;
    bool running = false;
    {
        std::lock_guard lock(mutex_);
        spec = entry.spec;
        pid = entry.pid;
        startTime = entry.startTime;
        ownChild = entry.ownChild;
        running = entry.running;
    }
    if (running) {
        const auto begin = steady_clock::now();
        ExitWatcher watcher(pid, startTime);
        if (spec.stopCommand) {
            const StepResult result = StepRunner(options_.killGrace)
                                          .run({"Stop",
                                                *spec.stopCommand,
                                                spec.workDir,
                                                spec.env,
                                                spec.logFile,
                                                spec.stopTimeout,
                                                {},
                                                spec.runAs});
            const milliseconds left = std::max(spec.stopTimeout - since(begin), milliseconds(0));
            if (watcher.wait(result.succeeded() ? left : milliseconds(0)) ==
                ExitWatcher::Result::Ended) {
                signalGroup(pid, SIGKILL);
            } else {
                appendLogLine(spec.logFile, "--- supervisor: " + spec.id +
                                                " still runs after its Stop command (" +
                                                result.message + "); sending SIGTERM");
                terminateGroup(pid, watcher, options_.killGrace);
            }
        } else {
            terminateGroup(pid, watcher, spec.stopTimeout);
        }
        const ExitStatus status = ownChild ? reap(pid) : tryReap(pid).value_or(ExitStatus{});
        appendLogLine(spec.logFile,
                      "--- supervisor: stopped " + spec.id + ": it " + status.describe());
        std::lock_guard lock(mutex_);
        entry.running = false;
        entry.pid = 0;
        entry.lastExit = status;
        entry.since = system_clock::now();
    }
    std::error_code ignored;
    fs::remove(spec.pidFile, ignored);
}

void Supervisor::stopAll() {
    std::vector<std::string> ids;
    {
        std::lock_guard lock(mutex_);
        for (const auto& [id, entry] : entries_) ids.push_back(id);
    }
    // In parallel: the agent's shutdown should take one stop timeout, not the sum of them.
    std::vector<std::jthread> stoppers;
    for (const std::string& id : ids) {
        stoppers.emplace_back([this, id] {
            try {
                stop(id);
            } catch (...) {
                // Out of memory or threads: the process keeps running and will be adopted.
            }
        });
    }
}

void Supervisor::detachAll() {
    std::vector<std::shared_ptr<Entry>> entries;
    {
        std::lock_guard lock(mutex_);
        for (const auto& [id, entry] : entries_) entries.push_back(entry);
    }
    for (const auto& entry : entries) {
        std::lock_guard control(entry->control);
        if (!entry->monitor.joinable()) continue;
        entry->stopMonitor();
        std::lock_guard lock(mutex_);
        if (entry->running) {
            appendLogLine(entry->spec.logFile, "--- supervisor: agent detached; " + entry->spec.id +
                                                   " keeps running as pid " +
                                                   std::to_string(entry->pid));
        }
    }
}

std::optional<ProcessStatus> Supervisor::status(const std::string& id) const {
    const std::shared_ptr<Entry> entry = find(id);
    if (!entry) return std::nullopt;
    std::lock_guard lock(mutex_);
    return ProcessStatus{entry->running,    entry->pid,   entry->restarts, entry->lastExit,
                         entry->lastOutput, entry->since, entry->adopted,  entry->lastError};
}

ReadyResult Supervisor::waitReady(const std::string& id,
                                  const std::optional<std::string>& readyCommand,
                                  milliseconds timeout, std::stop_token stop) {
    const std::shared_ptr<Entry> entry = find(id);
    if (!entry) return {false, id + " is not supervised"};
    if (!readyCommand) return waitStable(*entry, stop);

    ProcessSpec spec;
    {
        std::lock_guard lock(mutex_);
        spec = entry->spec;
    }
    const StepRunner runner(options_.killGrace);
    // Recorded like a step: a check left running by a killed agent is ended by the next one.
    fs::path checkPidFile = spec.pidFile;
    checkPidFile.replace_extension(".ready.pid");
    const auto deadline = steady_clock::now() + timeout;
    StepResult last{StepResult::Outcome::TimedOut, -1, "Ready was not run"};
    // What the check last said: an attempt cut short by the deadline says nothing, so the
    // message reports the last one that finished (when there was one).
    std::optional<StepResult> lastAnswer;
    unsigned attempts = 0;
    for (;;) {
        const auto left = std::chrono::ceil<milliseconds>(deadline - steady_clock::now());
        if (left <= milliseconds(0)) break;
        last = runner.run({"Ready", *readyCommand, spec.workDir, spec.env, spec.logFile, left,
                           checkPidFile, spec.runAs},
                          stop);
        ++attempts;
        if (last.outcome != StepResult::Outcome::TimedOut) lastAnswer = last;
        if (last.succeeded())
            return {true,
                    "Ready check succeeded after " + std::to_string(attempts) + " attempt(s)"};
        if (last.outcome == StepResult::Outcome::Cancelled ||
            last.outcome == StepResult::Outcome::CouldNotStart) {
            return {false, last.message};
        }
        const auto pause =
            std::min(options_.readyRetryInterval,
                     std::chrono::ceil<milliseconds>(deadline - steady_clock::now()));
        if (pause > milliseconds(0) && !sleepFor(pause, stop))
            return {false, "Ready check was cancelled"};
    }
    std::string message = "Ready check did not succeed within " + formatSeconds(timeout) + " (" +
                          std::to_string(attempts) +
                          " attempts; last: " + lastAnswer.value_or(last).message + ")";
    if (const auto current = status(id); current && !current->running && current->lastExit) {
        message += "; " + id + " " + current->lastExit->describe();
    }
    return {false, message};
}

ReadyResult Supervisor::waitStable(Entry& entry, std::stop_token stop) {
    pid_t pid = 0;
    std::uint64_t startTime = 0;
    steady_clock::time_point upSince;
    std::string id;
    {
        std::lock_guard lock(mutex_);
        id = entry.spec.id;
        if (!entry.running) {
            return {false,
                    id + " is not running" +
                        (entry.lastExit ? ": it " + entry.lastExit->describe() : std::string())};
        }
        pid = entry.pid;
        startTime = entry.startTime;
        upSince = entry.upSince;
    }
    const milliseconds left = std::max(options_.readyProbation - since(upSince), milliseconds(0));
    ExitWatcher watcher(pid, startTime);
    switch (watcher.wait(left, stop)) {
        case ExitWatcher::Result::TimedOut:
            return {true, id + " stayed up for " + formatSeconds(options_.readyProbation)};
        case ExitWatcher::Result::Cancelled:
            return {false, "readiness wait for " + id + " was cancelled"};
        case ExitWatcher::Result::Ended:
            break;
    }
    // Give the monitor thread a moment to reap it, so the message can say how it ended.
    const auto waitedFrom = steady_clock::now();
    while (since(waitedFrom) < kExitRecordWait) {
        {
            std::lock_guard lock(mutex_);
            if (entry.pid != pid && entry.lastExit) {
                std::string message = id + " " + entry.lastExit->describe() + " within " +
                                      formatSeconds(options_.readyProbation) + " of starting";
                return {false,
                        entry.lastOutput.empty() ? message : message + ": " + entry.lastOutput};
            }
        }
        std::this_thread::sleep_for(kStatusPoll);
    }
    return {false, id + " ended within " + formatSeconds(options_.readyProbation) + " of starting"};
}

}  // namespace rm::agent
