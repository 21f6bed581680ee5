// Keeps the long-running processes of deployed packages running: starts them, restarts them
// with backoff when they die, stops them, and finds them again after the agent restarts.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>

#include "agent/process.h"

namespace rm::agent {

struct ProcessSpec {
    std::string id;  // unique per Supervisor, e.g. "<service>/<package>"; no control characters
    fs::path workDir;
    std::string command;  // run as `sh -c command`; `exec` keeps one process instead of two
    Environment env;      // the complete environment (see Environment)
    fs::path logFile;     // stdout and stderr are appended, as are the supervisor's notes
    fs::path pidFile;     // pid, start time and id of the running copy (a Ready check that
                          // runs is recorded beside it, in <stem>.ready.pid)
    std::optional<std::string> stopCommand;  // absent: SIGTERM to the process group
    std::chrono::milliseconds stopTimeout = std::chrono::seconds(10);
    // When set, the process, its Stop command and its Ready checks run as that user (see
    // LaunchRequest::runAs); nullopt: as the agent's own user.
    std::optional<Credentials> runAs = std::nullopt;
};

struct SupervisorOptions {
    std::chrono::milliseconds initialBackoff = std::chrono::seconds(1);
    std::chrono::milliseconds maxBackoff = std::chrono::seconds(60);
    // A copy that stayed up this long crashed for a new reason: its restart waits only
    // initialBackoff again.
    std::chrono::milliseconds stableAfter = std::chrono::seconds(30);
    // SIGTERM → SIGKILL delay when a Stop command did not end the process.
    std::chrono::milliseconds killGrace = std::chrono::seconds(5);
    // Without a Ready command a process is ready once it has stayed up this long.
    std::chrono::milliseconds readyProbation = std::chrono::seconds(1);
    std::chrono::milliseconds readyRetryInterval = std::chrono::milliseconds(250);
};

struct ProcessStatus {
    bool running = false;
    pid_t pid = 0;          // 0 while not running
    unsigned restarts = 0;  // relaunches after it died, since the last start()
    std::optional<ExitStatus> lastExit;
    std::string lastOutput;  // last lines the previous copy wrote before it ended
    std::chrono::system_clock::time_point since;  // when it entered its current state
    bool adopted = false;   // the running copy was found running, not launched by us
    std::string lastError;  // why the last launch failed, if it did
};

struct ReadyResult {
    bool ready = false;
    std::string message;
};

// Thread-safe. Never runs two copies of one id: start() and adopt() first look for the copy the
// pid file names and take it over when it is alive and really is that copy (same start time);
// a new copy runs its command only once the pid file names it (see launchHeld), so an agent
// killed at any instant leaves no copy behind that the next one cannot find.
// Each supervised id has one monitor thread that waits on a pidfd (no SIGCHLD handler).
class Supervisor {
  public:
    explicit Supervisor(SupervisorOptions options = {});
    // Detaches: services keep running while the agent restarts, and are adopted again.
    ~Supervisor();
    Supervisor(const Supervisor&) = delete;
    Supervisor& operator=(const Supervisor&) = delete;

    // Makes sure the process runs and is supervised. A no-op while it already is. Throws
    // SpawnError when it cannot be launched or recorded (nothing is left running then) and
    // std::invalid_argument for an unusable spec.
    void start(const ProcessSpec& spec);

    // After an agent restart: takes over the copy the pid file names if it is alive and is ours,
    // else starts a fresh one. Returns true when no new copy had to be started.
    bool adopt(const ProcessSpec& spec);

    // Stops supervising and ends the process: the Stop command if given (the process then has
    // stopTimeout in all to end), else SIGTERM to its group and SIGKILL after stopTimeout.
    // Removes the pid file. Returns false when the id is unknown.
    bool stop(const std::string& id);
    // The same for a process this Supervisor may not know yet (found through its pid file), e.g.
    // an undeploy right after an agent restart.
    void stop(const ProcessSpec& spec);
    void stopAll();  // stops every process, in parallel

    // Stops supervising but leaves every process running and every pid file in place.
    void detachAll();

    std::optional<ProcessStatus> status(const std::string& id) const;

    // With a Ready command: runs it in the process's directory and environment until it
    // succeeds or `timeout` has passed. Without one: ready once the current copy has stayed up
    // for readyProbation (then `timeout` does not matter). The message says why not.
    ReadyResult waitReady(const std::string& id, const std::optional<std::string>& readyCommand,
                          std::chrono::milliseconds timeout, std::stop_token stop = {});

  private:
    struct Entry;

    std::shared_ptr<Entry> find(const std::string& id) const;
    std::shared_ptr<Entry> entryFor(const ProcessSpec& spec);
    bool ensureSupervised(const ProcessSpec& spec);
    bool takeOverRecorded(Entry& entry);
    void launch(Entry& entry);
    void monitor(Entry& entry, std::stop_token stop);
    void endProcess(Entry& entry);
    ReadyResult waitStable(Entry& entry, std::stop_token stop);

    const SupervisorOptions options_;
    mutable std::mutex mutex_;  // guards entries_ and the state fields of every Entry
    // Entries are never removed, so monitor threads can refer to them for their whole life.
    std::map<std::string, std::shared_ptr<Entry>> entries_;
};

}  // namespace rm::agent
