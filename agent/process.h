// Launching (as another user when asked), identifying, watching and ending the processes that
// lifecycle steps and supervised services run as. No global state: no SIGCHLD handler, never
// waitpid(-1); each caller waits for exactly the pid it launched.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <vector>

#include "agent/unique_fd.h"

namespace rm::agent {

namespace fs = std::filesystem;

// The complete environment of a launched command: nothing of the agent's own environment is
// passed on, so credentials given to the agent never reach package code. PATH defaults to
// /usr/local/bin:/usr/bin:/bin when the map has none.
using Environment = std::map<std::string, std::string>;

// How a process ended.
struct ExitStatus {
    enum class Kind { Exited, Signaled, Unknown /* not our child: the kernel told someone else */ };
    Kind kind = Kind::Unknown;
    int value = 0;  // exit status for Exited, signal number for Signaled

    static ExitStatus fromWaitStatus(int status);
    // Shell convention: the status, or 128 + signal; -1 when unknown.
    int shellCode() const;
    // "exited with status 1", "was killed by signal 9 (Killed)", "ended (exit status unknown)".
    std::string describe() const;
    bool operator==(const ExitStatus&) const = default;
};

class SpawnError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// The user a command runs as: its uid, primary gid and supplementary groups (resolved
// beforehand, e.g. by resolveRunAs() in agent/run_as.h: nothing can be looked up in the child).
struct Credentials {
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> groups;
    bool operator==(const Credentials&) const = default;
};

struct LaunchRequest {
    std::string command;  // run as `/bin/sh -c command`
    fs::path workDir;
    Environment env;
    int outputFd = -1;  // stdout and stderr go here; stdin is /dev/null
    // When set, the command runs as that user (the launcher must then be root); nullopt: as the
    // launcher's own user.
    std::optional<Credentials> runAs = std::nullopt;
};

// Starts the command as the leader of a new session (and so of a new process group, pgid ==
// pid) with default signal dispositions, an empty signal mask and no inherited descriptors
// besides 0-2. With `runAs`, the child drops to that user between fork and exec: setgroups,
// setgid, setuid, in that order, each checked (and regaining root must then fail), and only then
// enters the working directory, so the user must be able to reach it. The child runs nothing
// async-signal-unsafe between fork and exec (everything is prepared beforehand), so forking this
// multi-threaded process is safe. The caller must reap the pid. Throws SpawnError saying what
// failed, including what failed in the child before exec (reported through a close-on-exec pipe;
// the failed child is reaped then).
pid_t launchInNewSession(const LaunchRequest& request);

// A process started by launchHeld(): it exists, so its pid and start time can be recorded, but
// it runs its command only once release() is called. Should the launcher go away first (this
// object destroyed without release(), or the whole agent killed, which closes its end of the
// gate), the process ends with status 125 without running anything: no copy can run that its
// launcher did not get to record. Move-only; the caller must reap the pid.
class HeldProcess {
  public:
    HeldProcess(pid_t pid, UniqueFd gate) : pid_(pid), gate_(std::move(gate)) {}
    pid_t pid() const { return pid_; }
    // Lets the command run (stdin then reads /dev/null). Throws SpawnError when the process is
    // no longer there to be released.
    void release();

  private:
    pid_t pid_;
    UniqueFd gate_;  // the write end of the pipe the process waits on
};

// launchInNewSession(), held at the gate until released. `request.command` runs exactly as it
// would there (by `sh -c`, with $0 = sh and no positional parameters).
HeldProcess launchHeld(const LaunchRequest& request);

// Field 22 of /proc/<pid>/stat (clock ticks after boot). Together with the pid it names one
// incarnation of a process, since pids are recycled. nullopt when there is no such process.
std::optional<std::uint64_t> processStartTime(pid_t pid);

// True while that incarnation exists and has not ended (a zombie has ended).
bool isRunning(pid_t pid, std::uint64_t startTime);

// Wall-clock time at which a process with this start time was started.
std::chrono::system_clock::time_point startTimeToWallClock(std::uint64_t startTime);

// kill(-group, signal), ignoring a group that is already gone.
void signalGroup(pid_t group, int signal);

// Waits for our child `pid` and collects its status; Unknown if it is not our child.
ExitStatus reap(pid_t pid);
// Collects the status if `pid` is our child and has ended; nullopt otherwise.
std::optional<ExitStatus> tryReap(pid_t pid);

// Waits for one process incarnation to end, whether or not it is our child, without reaping it.
// Uses a pidfd when the kernel has them, else polls /proc every 200 ms.
class ExitWatcher {
  public:
    enum class Result { Ended, TimedOut, Cancelled };
    static constexpr std::chrono::milliseconds kForever = std::chrono::milliseconds::max();

    // `usePidfd = false` forces the /proc polling used where pidfds are unavailable.
    ExitWatcher(pid_t pid, std::uint64_t startTime, bool usePidfd = true);

    Result wait(std::chrono::milliseconds timeout, std::stop_token stop = {});

  private:
    bool polledEnded() const;

    pid_t pid_;
    std::uint64_t startTime_;
    UniqueFd pidfd_;
    bool ended_ = false;
};

// Ends a whole process group: SIGTERM, then SIGKILL if the leader is still there after `grace`,
// and finally SIGKILL to whatever else is left in the group. Returns once the leader has ended
// (or after a last short wait, should it be stuck in the kernel). Does not reap, so for our own
// child the group id cannot have been recycled while we signal it.
void terminateGroup(pid_t leader, ExitWatcher& watcher, std::chrono::milliseconds grace);

}  // namespace rm::agent
