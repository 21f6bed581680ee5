#include "agent/process.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <system_error>
#include <vector>

namespace rm::agent {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr milliseconds kPollInterval(200);
constexpr milliseconds kLastWaitAfterKill(5000);

std::string errnoText(int error) {
    return std::strerror(error);
}

// Through syscall(2): glibc 2.36 declares pidfd_open without C linkage, so C++ cannot link it.
// -1 (and no pidfd) where the kernel or a seccomp filter does not offer it.
int openPidfd(pid_t pid) {
    return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0U));
}

struct ProcStat {
    char state = '?';
    std::uint64_t startTime = 0;
};

std::optional<ProcStat> readProcStat(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!in || !std::getline(in, line)) return std::nullopt;
    // The command name (field 2) may itself contain spaces and parentheses; it ends at the last
    // ')'.
    const std::size_t close = line.rfind(')');
    if (close == std::string::npos) return std::nullopt;
    std::istringstream fields(line.substr(close + 1));
    ProcStat stat;
    fields >> stat.state;  // field 3
    std::string skipped;
    for (int field = 4; field < 22 && fields; ++field) fields >> skipped;
    fields >> stat.startTime;  // field 22
    if (!fields) return std::nullopt;
    return stat;
}

std::vector<std::string> environmentStrings(const Environment& env) {
    std::vector<std::string> strings;
    for (const auto& [key, value] : env) {
        if (key.empty() || key.find_first_of("=") != std::string::npos ||
            key.find('\0') != std::string::npos || value.find('\0') != std::string::npos) {
            throw SpawnError("invalid environment variable name or value: '" + key + "'");
        }
        strings.push_back(key + "=" + value);
    }
    if (!env.contains("PATH")) strings.emplace_back("PATH=/usr/local/bin:/usr/bin:/bin");
    return strings;
}

}  // namespace

ExitStatus ExitStatus::fromWaitStatus(int status) {
    if (WIFEXITED(status)) return {Kind::Exited, WEXITSTATUS(status)};
    if (WIFSIGNALED(status)) return {Kind::Signaled, WTERMSIG(status)};
    return {};
}

int ExitStatus::shellCode() const {
    switch (kind) {
        case Kind::Exited:
            return value;
        case Kind::Signaled:
            return 128 + value;
        case Kind::Unknown:
            break;
    }
    return -1;
}

std::string ExitStatus::describe() const {
    switch (kind) {
        case Kind::Exited:
            return "exited with status " + std::to_string(value);
        case Kind::Signaled:
            return "was killed by signal " + std::to_string(value) + " (" + ::strsignal(value) +
                   ")";
        case Kind::Unknown:
            break;
    }
    return "ended (exit status unknown)";
}

namespace {

// The shell script a held process runs: it waits for "go" on stdin (the gate), which a launcher
// that died never writes (EOF instead), then runs the command given as $1 in the same shell, so
// that `exec` in it still replaces the process the launcher recorded.
constexpr const char* kHeldScript =
    "IFS= read -r rm_gate && [ \"$rm_gate\" = go ] || exit 125; unset rm_gate; "
    "exec </dev/null; eval \"shift; $1\"";

// A step of the child between fork and exec; what it reports when that step fails.
enum class ChildStep : int {
    Session,
    Stdin,
    Output,
    Descriptors,
    Groups,
    Gid,
    Uid,
    RegainedRoot,
    WorkDir,
    Exec,
};

struct ChildFailure {
    int step = 0;
    int error = 0;
};

// Everything the child needs, prepared before fork: between fork and exec the child of this
// multi-threaded process may only make async-signal-safe calls (no allocation, no lookups).
struct ChildPlan {
    const char* workDir = nullptr;
    char** argv = nullptr;
    char** envp = nullptr;
    int gateFd = -1;    // > 2 when given: becomes stdin; otherwise stdin is /dev/null
    int outputFd = -1;  // > 2: becomes stdout and stderr
    int reportFd = -1;  // > 2, close-on-exec: the write end of the error pipe
    const Credentials* runAs = nullptr;
};

[[noreturn]] void childFailed(int reportFd, ChildStep step, int error) {
    const ChildFailure failure{static_cast<int>(step), error};
    // 8 bytes into an empty pipe: written whole or not at all.
    [[maybe_unused]] const ssize_t written = ::write(reportFd, &failure, sizeof failure);
    ::_exit(127);
}

// Marks every descriptor above 2 close-on-exec (the error pipe already is, and must stay open
// until exec); without CLOSE_RANGE_CLOEXEC (kernels before 5.11) closes all but the error pipe.
bool closeInheritedDescriptors(int reportFd) {
    if (::close_range(STDERR_FILENO + 1, ~0U, CLOSE_RANGE_CLOEXEC) == 0) return true;
    const auto report = static_cast<unsigned>(reportFd);
    const auto first = static_cast<unsigned>(STDERR_FILENO + 1);
    return (report == first || ::close_range(first, report - 1, 0) == 0) &&
           ::close_range(report + 1, ~0U, 0) == 0;
}

// The child, between fork and exec: async-signal-safe calls only.
[[noreturn]] void runChild(const ChildPlan& plan) {
    const int report = plan.reportFd;
    // Default dispositions first: the parent blocked every signal around fork, so none of its
    // handlers can run here, and the mask is emptied only right before exec. (The two signals
    // glibc reserves for itself refuse the change; they are reset by exec anyway.)
    struct sigaction defaultAction {};
    defaultAction.sa_handler = SIG_DFL;
    ::sigemptyset(&defaultAction.sa_mask);
    for (int signal = 1; signal < NSIG; ++signal) {
        if (signal != SIGKILL && signal != SIGSTOP) ::sigaction(signal, &defaultAction, nullptr);
    }
    if (::setsid() < 0) childFailed(report, ChildStep::Session, errno);

    if (plan.gateFd >= 0) {
        if (::dup2(plan.gateFd, STDIN_FILENO) < 0) childFailed(report, ChildStep::Stdin, errno);
    } else {
        // Not close-on-exec, in case it is 0 already; a copy above 2 is marked so just below.
        const int null = ::open("/dev/null", O_RDONLY);
        if (null < 0 || (null != STDIN_FILENO && ::dup2(null, STDIN_FILENO) < 0))
            childFailed(report, ChildStep::Stdin, errno);
    }
    if (::dup2(plan.outputFd, STDOUT_FILENO) < 0 || ::dup2(plan.outputFd, STDERR_FILENO) < 0)
        childFailed(report, ChildStep::Output, errno);
    // Descriptors opened by other threads without O_CLOEXEC must not leak into package code.
    if (!closeInheritedDescriptors(report)) childFailed(report, ChildStep::Descriptors, errno);

    if (const Credentials* user = plan.runAs) {
        // Groups first (needs root), then the gid, then the uid, after which nothing of root is
        // left: no supplementary group, no capability (all are cleared when every uid leaves 0).
        if (::setgroups(user->groups.size(), user->groups.data()) != 0)
            childFailed(report, ChildStep::Groups, errno);
        if (::setgid(user->gid) != 0) childFailed(report, ChildStep::Gid, errno);
        if (::setuid(user->uid) != 0) childFailed(report, ChildStep::Uid, errno);
        if (user->uid != 0 && ::setuid(0) == 0) childFailed(report, ChildStep::RegainedRoot, EPERM);
    }
    // Entered as that user: a directory it cannot reach fails here, not later in the package.
    if (::chdir(plan.workDir) != 0) childFailed(report, ChildStep::WorkDir, errno);

    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve("/bin/sh", plan.argv, plan.envp);
    childFailed(report, ChildStep::Exec, errno);
}

std::string describeChildFailure(const ChildFailure& failure, const LaunchRequest& request) {
    const std::string why = errnoText(failure.error);
    const std::string asUser =
        request.runAs ? " as uid " + std::to_string(request.runAs->uid) : std::string();
    switch (static_cast<ChildStep>(failure.step)) {
        case ChildStep::Session:
            return "cannot start a new session: " + why;
        case ChildStep::Stdin:
            return "cannot set up stdin: " + why;
        case ChildStep::Output:
            return "cannot redirect stdout and stderr: " + why;
        case ChildStep::Descriptors:
            return "cannot close the descriptors it would inherit: " + why;
        case ChildStep::Groups:
            return "cannot set the supplementary groups of uid " +
                   std::to_string(request.runAs->uid) + ": " + why;
        case ChildStep::Gid:
            return "cannot switch to gid " + std::to_string(request.runAs->gid) + ": " + why;
        case ChildStep::Uid:
            return "cannot switch to uid " + std::to_string(request.runAs->uid) + ": " + why;
        case ChildStep::RegainedRoot:
            return "uid " + std::to_string(request.runAs->uid) +
                   " could switch back to root, so it was not run";
        case ChildStep::WorkDir:
            return "cannot enter the working directory " + request.workDir.string() + asUser +
                   ": " + why;
        case ChildStep::Exec:
            break;
    }
    return "cannot run /bin/sh in " + request.workDir.string() + asUser + ": " + why;
}

// `fd` itself when it is above 2, else a close-on-exec copy above 2 kept in `copy`: dup2 onto
// 0-2 from a descriptor that already is one of them would keep its close-on-exec flag.
int aboveStdio(int fd, UniqueFd& copy, const char* what) {
    if (fd > STDERR_FILENO) return fd;
    copy.reset(::fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1));
    if (!copy)
        throw SpawnError(std::string("cannot duplicate the ") + what + ": " + errnoText(errno));
    return copy.get();
}

// `gateFd` >= 0: stdin of the new process, and the command runs behind kHeldScript.
pid_t launch(const LaunchRequest& request, int gateFd) {
    if (request.command.find('\0') != std::string::npos) {
        throw SpawnError("the command contains a NUL byte");
    }
    std::error_code error;
    if (!fs::is_directory(request.workDir, error)) {
        throw SpawnError("working directory " + request.workDir.string() + " does not exist");
    }
    if (request.outputFd < 0) throw SpawnError("no output file descriptor given");

    UniqueFd outputCopy;
    UniqueFd gateCopy;
    ChildPlan plan;
    plan.outputFd = aboveStdio(request.outputFd, outputCopy, "output descriptor");
    if (gateFd >= 0) plan.gateFd = aboveStdio(gateFd, gateCopy, "launch gate");

    const std::vector<std::string> envStrings = environmentStrings(request.env);
    std::vector<char*> envp;
    for (const std::string& entry : envStrings) envp.push_back(const_cast<char*>(entry.c_str()));
    envp.push_back(nullptr);
    char shell[] = "sh";
    char dashC[] = "-c";
    std::string held = kHeldScript;
    char* direct[] = {shell, dashC, const_cast<char*>(request.command.c_str()), nullptr};
    char* behindGate[] = {
        shell, dashC, held.data(), shell, const_cast<char*>(request.command.c_str()), nullptr};
    plan.argv = gateFd >= 0 ? behindGate : direct;
    plan.envp = envp.data();
    plan.workDir = request.workDir.c_str();
    if (request.runAs) plan.runAs = &*request.runAs;

    int reportEnds[2];
    if (::pipe2(reportEnds, O_CLOEXEC) != 0)
        throw SpawnError("cannot create the launch error pipe: " + errnoText(errno));
    UniqueFd reportRead(reportEnds[0]);
    UniqueFd reportWrite(reportEnds[1]);
    UniqueFd reportCopy;
    plan.reportFd = aboveStdio(reportWrite.get(), reportCopy, "launch error pipe");

    sigset_t all;
    sigset_t previous;
    ::sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &previous);
    const pid_t pid = ::fork();
    const int forkError = errno;
    if (pid == 0) runChild(plan);
    ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    reportWrite.reset();
    reportCopy.reset();
    if (pid < 0) {
        throw SpawnError("cannot fork to run /bin/sh in " + request.workDir.string() + ": " +
                         errnoText(forkError));
    }

    // End of file once the child has run exec (the pipe is close-on-exec): it runs the command.
    ChildFailure failure;
    ssize_t got = 0;
    do {
        got = ::read(reportRead.get(), &failure, sizeof failure);
    } while (got < 0 && errno == EINTR);
    if (got == 0) return pid;
    reap(pid);
    if (got != static_cast<ssize_t>(sizeof failure)) {
        throw SpawnError("cannot run /bin/sh in " + request.workDir.string() +
                         ": the child failed before exec");
    }
    throw SpawnError(describeChildFailure(failure, request));
}

}  // namespace

pid_t launchInNewSession(const LaunchRequest& request) {
    return launch(request, -1);
}

HeldProcess launchHeld(const LaunchRequest& request) {
    int ends[2];
    // Close-on-exec, and every launch closes descriptors above 2: no other process can hold the
    // write end, so the gate reads EOF as soon as the launcher is gone.
    if (::pipe2(ends, O_CLOEXEC) != 0) {
        throw SpawnError("cannot create the launch gate: " + errnoText(errno));
    }
    UniqueFd readEnd(ends[0]);
    UniqueFd writeEnd(ends[1]);
    const pid_t pid = launch(request, readEnd.get());
    return HeldProcess(pid, std::move(writeEnd));
}

void HeldProcess::release() {
    static constexpr char kGo[] = "go\n";
    if (!gate_) throw SpawnError("the process was already released");
    // The pipe is empty and holds far more than 3 bytes: one write, never partial. A process that
    // has ended makes it fail with EPIPE (SIGPIPE is ignored by the daemons; MSG_NOSIGNAL does
    // not apply to pipes, so block it for this thread meanwhile).
    sigset_t pipeSignal;
    sigset_t previous;
    ::sigemptyset(&pipeSignal);
    ::sigaddset(&pipeSignal, SIGPIPE);
    ::pthread_sigmask(SIG_BLOCK, &pipeSignal, &previous);
    const ssize_t written = ::write(gate_.get(), kGo, sizeof kGo - 1);
    const int error = errno;
    if (written < 0 && error == EPIPE) {
        // Consume the SIGPIPE now pending for this thread, so unblocking does not deliver it.
        const timespec none{0, 0};
        ::sigtimedwait(&pipeSignal, nullptr, &none);
    }
    ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    gate_.reset();
    if (written != static_cast<ssize_t>(sizeof kGo - 1)) {
        throw SpawnError("cannot release process " + std::to_string(pid_) + ": " +
                         errnoText(written < 0 ? error : EIO));
    }
}

std::optional<std::uint64_t> processStartTime(pid_t pid) {
    if (pid <= 0) return std::nullopt;
    const auto stat = readProcStat(pid);
    if (!stat) return std::nullopt;
    return stat->startTime;
}

bool isRunning(pid_t pid, std::uint64_t startTime) {
    if (pid <= 0) return false;
    const auto stat = readProcStat(pid);
    return stat && stat->startTime == startTime && stat->state != 'Z' && stat->state != 'X' &&
           stat->state != 'x';
}

std::chrono::system_clock::time_point startTimeToWallClock(std::uint64_t startTime) {
    std::ifstream in("/proc/stat");
    std::string key;
    long long bootTime = 0;
    while (in >> key) {
        if (key == "btime") {
            in >> bootTime;
            break;
        }
        in.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
    }
    const long ticks = ::sysconf(_SC_CLK_TCK);
    const auto afterBoot = std::chrono::milliseconds(static_cast<long long>(startTime) * 1000 /
                                                     (ticks > 0 ? ticks : 100));
    return std::chrono::system_clock::time_point(std::chrono::seconds(bootTime)) + afterBoot;
}

void signalGroup(pid_t group, int signal) {
    if (group > 1) ::kill(-group, signal);
}

ExitStatus reap(pid_t pid) {
    int status = 0;
    for (;;) {
        const pid_t rc = ::waitpid(pid, &status, 0);
        if (rc == pid) return ExitStatus::fromWaitStatus(status);
        if (rc < 0 && errno == EINTR) continue;
        return {};
    }
}

std::optional<ExitStatus> tryReap(pid_t pid) {
    int status = 0;
    for (;;) {
        const pid_t rc = ::waitpid(pid, &status, WNOHANG);
        if (rc == pid) return ExitStatus::fromWaitStatus(status);
        if (rc < 0 && errno == EINTR) continue;
        return std::nullopt;
    }
}

ExitWatcher::ExitWatcher(pid_t pid, std::uint64_t startTime, bool usePidfd)
    : pid_(pid), startTime_(startTime) {
    if (usePidfd) pidfd_.reset(openPidfd(pid));
    // The pid may have been recycled between reading its start time and opening the pidfd; the
    // pidfd now pins whatever process it names, so one more look settles which one that is.
    if (pidfd_ && processStartTime(pid) != startTime) ended_ = true;
    if (!pidfd_ && !isRunning(pid, startTime)) ended_ = true;
}

bool ExitWatcher::polledEnded() const {
    return !isRunning(pid_, startTime_);
}

ExitWatcher::Result ExitWatcher::wait(milliseconds timeout, std::stop_token stop) {
    if (ended_) return Result::Ended;

    UniqueFd wakeup;
    std::optional<std::stop_callback<std::function<void()>>> onStop;
    if (stop.stop_possible()) {
        wakeup.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        if (wakeup) {
            const int fd = wakeup.get();
            onStop.emplace(stop, std::function<void()>([fd] {
                               const std::uint64_t one = 1;
                               [[maybe_unused]] const ssize_t n = ::write(fd, &one, sizeof one);
                           }));
        }
    }

    const bool forever = timeout >= milliseconds(24LL * 3600 * 1000);
    const auto deadline = forever ? steady_clock::time_point::max() : steady_clock::now() + timeout;
    for (;;) {
        if (!pidfd_ && polledEnded()) {
            ended_ = true;
            return Result::Ended;
        }
        if (stop.stop_requested()) return Result::Cancelled;

        int waitMs = -1;
        if (!forever) {
            const auto left = std::chrono::ceil<milliseconds>(deadline - steady_clock::now());
            if (left.count() <= 0) {
                if (pidfd_) {
                    // Last look without blocking, so a zero timeout can still report the end.
                    pollfd probe{pidfd_.get(), POLLIN, 0};
                    if (::poll(&probe, 1, 0) > 0) {
                        ended_ = true;
                        return Result::Ended;
                    }
                }
                return Result::TimedOut;
            }
            waitMs = static_cast<int>(std::min<long long>(left.count(), 1000LL * 3600));
        }
        // Without a pidfd, or without an eventfd to be woken by `stop`, look again regularly.
        if (!pidfd_ || (stop.stop_possible() && !wakeup)) {
            const int interval = static_cast<int>(kPollInterval.count());
            waitMs = waitMs < 0 ? interval : std::min(waitMs, interval);
        }

        pollfd fds[2] = {{pidfd_ ? pidfd_.get() : -1, POLLIN, 0},
                         {wakeup ? wakeup.get() : -1, POLLIN, 0}};
        const int rc = ::poll(fds, 2, waitMs);
        if (rc < 0 && errno != EINTR) {
            // poll on valid descriptors does not fail in practice; fall back to /proc polling
            // rather than spin.
            pidfd_.reset();
            continue;
        }
        if (rc > 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) {
            ended_ = true;
            return Result::Ended;
        }
    }
}

void terminateGroup(pid_t leader, ExitWatcher& watcher, milliseconds grace) {
    signalGroup(leader, SIGTERM);
    if (watcher.wait(grace) != ExitWatcher::Result::Ended) {
        signalGroup(leader, SIGKILL);
        watcher.wait(kLastWaitAfterKill);
    }
    // Children the leader left behind in its group die with it.
    signalGroup(leader, SIGKILL);
}

}  // namespace rm::agent
