#include "agent/supervisor.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include "agent/pid_file.h"
#include "tests/agent/test_support.h"

namespace rm::agent {
namespace {

using namespace std::chrono_literals;
using test::readFile;
using test::TempDir;
using test::waitUntil;

SupervisorOptions fastOptions() {
    SupervisorOptions options;
    options.initialBackoff = 100ms;
    options.maxBackoff = 400ms;
    options.stableAfter = 10s;
    options.killGrace = 300ms;
    options.readyRetryInterval = 50ms;
    return options;
}

// Live (non-zombie) processes whose working directory is `dir`: every process a test starts
// runs in its own scratch directory, so this counts exactly the copies of it.
int processesIn(const fs::path& dir) {
    int count = 0;
    for (const auto& proc : fs::directory_iterator("/proc")) {
        const std::string name = proc.path().filename();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        std::error_code error;
        const fs::path cwd = fs::read_symlink(proc.path() / "cwd", error);
        if (error || cwd != dir) continue;
        const pid_t pid = static_cast<pid_t>(std::stol(name));
        if (const auto start = processStartTime(pid); start && isRunning(pid, *start)) ++count;
    }
    return count;
}

// Signals are delivered asynchronously: a killed group member may take a moment to be gone.
bool noneLeftIn(const fs::path& dir) {
    return waitUntil([&] { return processesIn(dir) == 0; }, std::chrono::seconds(2));
}

struct SupervisorFixture {
    TempDir dir;
    fs::path work = dir / "container";

    SupervisorFixture() { fs::create_directories(work); }

    ProcessSpec spec(const std::string& command) const {
        ProcessSpec spec;
        spec.id = "svc/pkg";
        spec.workDir = work;
        spec.command = command;
        spec.env = {{"GREETING", "hello"}};
        spec.logFile = dir / "logs" / "pkg.log";
        spec.pidFile = dir / "run" / "pkg.pid";
        spec.stopTimeout = 2s;
        return spec;
    }

    static ProcessStatus statusOf(const Supervisor& supervisor) {
        const auto status = supervisor.status("svc/pkg");
        BOOST_REQUIRE(status.has_value());
        return *status;
    }
};

BOOST_FIXTURE_TEST_SUITE(supervisor, SupervisorFixture)

BOOST_AUTO_TEST_CASE(start_runs_it_and_records_pid_file) {
    Supervisor supervisor(fastOptions());
    const ProcessSpec s = spec("echo $GREETING; exec sleep 30");
    supervisor.start(s);

    const ProcessStatus status = statusOf(supervisor);
    BOOST_TEST(status.running);
    BOOST_TEST(status.pid > 0);
    BOOST_TEST(!status.adopted);
    const auto record = readPidFile(s.pidFile);
    BOOST_REQUIRE(record.has_value());
    BOOST_TEST(record->pid == status.pid);
    BOOST_TEST(record->id == "svc/pkg");
    BOOST_TEST(record->startTime == processStartTime(status.pid).value_or(0));
    BOOST_TEST(::getpgid(status.pid) == status.pid, "it must lead its own process group");
    BOOST_TEST(waitUntil([&] { return readFile(s.logFile).find("hello\n") != std::string::npos; }));

    supervisor.start(s);  // already running: nothing happens
    BOOST_TEST(statusOf(supervisor).pid == status.pid);
    BOOST_TEST(processesIn(work) == 1);

    supervisor.stopAll();
    BOOST_TEST(noneLeftIn(work));
    BOOST_TEST(!fs::exists(s.pidFile));
}

BOOST_AUTO_TEST_CASE(a_copy_runs_its_command_only_once_its_pid_file_names_it) {
    // Otherwise an agent killed between the launch and the pid file leaves a copy running that
    // the next agent cannot find, and starts a second one.
    Supervisor supervisor(fastOptions());
    const ProcessSpec s = spec(
        "read -r first < ../run/pkg.pid; [ \"$first\" = \"pid=$$\" ] && : > recorded-first; "
        "exec sleep 30");
    for (int round = 0; round < 10; ++round) {
        supervisor.start(s);
        BOOST_TEST(waitUntil([&] { return fs::exists(work / "recorded-first"); }),
                   "round " << round << ": the command ran before the pid file named it");
        supervisor.stop("svc/pkg");
        fs::remove(work / "recorded-first");
    }
    BOOST_TEST(noneLeftIn(work));
}

BOOST_AUTO_TEST_CASE(a_killed_process_is_restarted_with_growing_backoff) {
    Supervisor supervisor(fastOptions());
    supervisor.start(spec("exec sleep 30"));
    const pid_t first = statusOf(supervisor).pid;

    test::Stopwatch killed;
    BOOST_REQUIRE(::kill(first, SIGKILL) == 0);
    BOOST_REQUIRE(waitUntil([&] {
        const auto s = statusOf(supervisor);
        return s.running && s.pid != first;
    }));
    const long long firstDelay = killed.elapsedMs();
    ProcessStatus status = statusOf(supervisor);
    BOOST_TEST(status.restarts == 1u);
    BOOST_REQUIRE(status.lastExit.has_value());
    BOOST_TEST(status.lastExit->describe() == "was killed by signal 9 (Killed)");
    BOOST_TEST(firstDelay >= 100);

    const pid_t second = status.pid;
    killed.restart();
    BOOST_REQUIRE(::kill(second, SIGKILL) == 0);
    BOOST_REQUIRE(waitUntil([&] {
        const auto s = statusOf(supervisor);
        return s.running && s.pid != second;
    }));
    const long long secondDelay = killed.elapsedMs();
    BOOST_TEST(statusOf(supervisor).restarts == 2u);
    BOOST_TEST(secondDelay >= 200, "the second restart must wait twice as long");
    BOOST_TEST(readPidFile(spec("").pidFile)->pid == statusOf(supervisor).pid);
    BOOST_TEST(processesIn(work) == 1);

    supervisor.stopAll();
}

BOOST_AUTO_TEST_CASE(stop_sends_sigterm_to_the_group) {
    Supervisor supervisor(fastOptions());
    const ProcessSpec s =
        spec("trap 'echo got TERM; exit 0' TERM; touch trapped; while :; do sleep 0.05; done");
    supervisor.start(s);
    BOOST_REQUIRE(waitUntil([&] { return fs::exists(work / "trapped"); }));
    const test::Stopwatch begin;
    BOOST_TEST(supervisor.stop("svc/pkg"));
    BOOST_TEST(begin.elapsedMs() < 1500);

    const ProcessStatus status = statusOf(supervisor);
    BOOST_TEST(!status.running);
    BOOST_TEST(status.pid == 0);
    BOOST_TEST(readFile(s.logFile).find("got TERM") != std::string::npos);
    BOOST_TEST(!fs::exists(s.pidFile));
    BOOST_TEST(noneLeftIn(work));
    BOOST_TEST(!supervisor.stop("unknown"));
}

BOOST_AUTO_TEST_CASE(stop_escalates_to_sigkill_when_term_is_ignored) {
    Supervisor supervisor(fastOptions());
    ProcessSpec s = spec("trap '' TERM; touch trapped; sleep 30");
    s.stopTimeout = 400ms;
    supervisor.start(s);
    BOOST_REQUIRE(waitUntil([&] { return fs::exists(work / "trapped"); }));
    const test::Stopwatch begin;
    supervisor.stop("svc/pkg");
    const long long took = begin.elapsedMs();

    BOOST_TEST(took >= 400);
    BOOST_TEST(took < 3000);
    const ProcessStatus status = statusOf(supervisor);
    BOOST_REQUIRE(status.lastExit.has_value());
    BOOST_TEST(status.lastExit->describe() == "was killed by signal 9 (Killed)");
    BOOST_TEST(noneLeftIn(work), "the ignoring sleep of the group must be gone too");
}

BOOST_AUTO_TEST_CASE(stop_runs_the_stop_command) {
    Supervisor supervisor(fastOptions());
    ProcessSpec s = spec(
        "trap '' TERM; touch trapped; while [ ! -f stop-request ]; do sleep 0.05; done; echo "
        "stopped nicely");
    s.stopCommand = "touch stop-request";
    supervisor.start(s);
    BOOST_REQUIRE(waitUntil([&] { return fs::exists(work / "trapped"); }));
    supervisor.stop("svc/pkg");

    const ProcessStatus status = statusOf(supervisor);
    BOOST_REQUIRE(status.lastExit.has_value());
    BOOST_TEST(status.lastExit->describe() == "exited with status 0");
    BOOST_TEST(readFile(s.logFile).find("stopped nicely") != std::string::npos);
    BOOST_TEST(noneLeftIn(work));
}

BOOST_AUTO_TEST_CASE(adopts_its_process_after_an_agent_restart) {
    const ProcessSpec s = spec("exec sleep 30");
    pid_t original = 0;
    {
        Supervisor before(fastOptions());
        before.start(s);
        original = statusOf(before).pid;
        before.detachAll();
    }  // the "agent" is gone; its process is not
    BOOST_REQUIRE(processStartTime(original).has_value());
    BOOST_TEST(processesIn(work) == 1);

    Supervisor after(fastOptions());
    BOOST_TEST(after.adopt(s));
    ProcessStatus status = statusOf(after);
    BOOST_TEST(status.running);
    BOOST_TEST(status.adopted);
    BOOST_TEST(status.pid == original);
    BOOST_TEST(readPidFile(s.pidFile)->pid == original);
    BOOST_TEST(processesIn(work) == 1, "adopting must not start a second copy");

    // The adopted copy is supervised: when it dies, a new one is started.
    BOOST_REQUIRE(::kill(original, SIGKILL) == 0);
    BOOST_REQUIRE(waitUntil([&] {
        const auto st = statusOf(after);
        return st.running && st.pid != original;
    }));
    status = statusOf(after);
    BOOST_TEST(status.restarts == 1u);
    BOOST_TEST(!status.adopted);
    BOOST_TEST(readPidFile(s.pidFile)->pid == status.pid);
    BOOST_TEST(processesIn(work) == 1);
    after.stopAll();
    BOOST_TEST(noneLeftIn(work));
}

BOOST_AUTO_TEST_CASE(destructor_detaches_and_a_new_start_adopts) {
    const ProcessSpec s = spec("exec sleep 30");
    pid_t original = 0;
    {
        Supervisor before(fastOptions());
        before.start(s);
        original = statusOf(before).pid;
    }
    Supervisor after(fastOptions());
    after.start(s);  // start() also takes over the recorded copy instead of duplicating it
    BOOST_TEST(statusOf(after).pid == original);
    BOOST_TEST(processesIn(work) == 1);
    after.stop(s);
    BOOST_TEST(noneLeftIn(work));
}

BOOST_AUTO_TEST_CASE(stop_by_spec_stops_a_copy_known_only_from_its_pid_file) {
    const ProcessSpec s = spec("exec sleep 30");
    {
        Supervisor before(fastOptions());
        before.start(s);
    }
    Supervisor after(fastOptions());
    after.stop(s);
    BOOST_TEST(noneLeftIn(work));
    BOOST_TEST(!fs::exists(s.pidFile));
}

BOOST_AUTO_TEST_CASE(a_stale_pid_file_of_a_dead_process_starts_fresh) {
    const pid_t dead = ::fork();
    if (dead == 0) ::_exit(0);
    const std::uint64_t deadStart = processStartTime(dead).value_or(1);
    ::waitpid(dead, nullptr, 0);
    const ProcessSpec s = spec("exec sleep 30");
    writePidFile(s.pidFile, {dead, deadStart, s.id});

    Supervisor supervisor(fastOptions());
    BOOST_TEST(!supervisor.adopt(s));
    const ProcessStatus status = statusOf(supervisor);
    BOOST_TEST(status.running);
    BOOST_TEST(status.pid != dead);
    BOOST_TEST(readPidFile(s.pidFile)->pid == status.pid);
    supervisor.stopAll();
}

BOOST_AUTO_TEST_CASE(a_recycled_pid_is_not_mistaken_for_ours) {
    // Our own pid is alive, but its start time is not the recorded one: a recycled pid.
    const ProcessSpec s = spec("exec sleep 30");
    writePidFile(s.pidFile, {::getpid(), processStartTime(::getpid()).value() + 1, s.id});

    Supervisor supervisor(fastOptions());
    BOOST_TEST(!supervisor.adopt(s));
    BOOST_TEST(statusOf(supervisor).pid != ::getpid());
    BOOST_TEST(processesIn(work) == 1);
    supervisor.stopAll();
}

BOOST_AUTO_TEST_CASE(a_pid_file_of_another_id_is_not_adopted) {
    const ProcessSpec s = spec("exec sleep 30");
    writePidFile(s.pidFile, {::getpid(), processStartTime(::getpid()).value(), "other/id"});
    Supervisor supervisor(fastOptions());
    BOOST_TEST(!supervisor.adopt(s));
    BOOST_TEST(statusOf(supervisor).pid != ::getpid());
    supervisor.stopAll();
}

BOOST_AUTO_TEST_CASE(wait_ready_runs_the_ready_command_until_it_succeeds) {
    Supervisor supervisor(fastOptions());
    supervisor.start(spec("sleep 0.3; touch ready-flag; exec sleep 30"));
    const test::Stopwatch begin;
    const ReadyResult ready =
        supervisor.waitReady("svc/pkg", std::string("test -f ready-flag"), 5s);
    BOOST_TEST(ready.ready, ready.message);
    BOOST_TEST(begin.elapsedMs() >= 250);
    supervisor.stopAll();
}

BOOST_AUTO_TEST_CASE(wait_ready_gives_up_after_the_timeout) {
    Supervisor supervisor(fastOptions());
    supervisor.start(spec("exec sleep 30"));
    const test::Stopwatch begin;
    const ReadyResult ready =
        supervisor.waitReady("svc/pkg", std::string("echo not yet; exit 1"), 400ms);
    const long long took = begin.elapsedMs();
    BOOST_TEST(!ready.ready);
    BOOST_TEST(ready.message.find("Ready check did not succeed within 0.4 s") == 0u, ready.message);
    BOOST_TEST(ready.message.find("Ready exited with status 1: not yet") != std::string::npos,
               ready.message);
    BOOST_TEST(took >= 400);
    BOOST_TEST(took < 2000);
    supervisor.stopAll();
}

BOOST_AUTO_TEST_CASE(wait_ready_without_command_needs_one_stable_second) {
    Supervisor supervisor(fastOptions());
    supervisor.start(spec("exec sleep 30"));
    const test::Stopwatch begin;
    const ReadyResult ready = supervisor.waitReady("svc/pkg", std::nullopt, 10s);
    BOOST_TEST(ready.ready, ready.message);
    BOOST_TEST(begin.elapsedMs() >= 900);
    supervisor.stopAll();
}

BOOST_AUTO_TEST_CASE(wait_ready_without_command_fails_when_it_dies) {
    Supervisor supervisor(fastOptions());
    supervisor.start(spec("echo cannot bind port; sleep 0.2; exit 4"));
    const ReadyResult ready = supervisor.waitReady("svc/pkg", std::nullopt, 10s);
    BOOST_TEST(!ready.ready);
    BOOST_TEST(ready.message ==
               "svc/pkg exited with status 4 within 1 s of starting: cannot bind port");
    supervisor.stopAll();
}

BOOST_AUTO_TEST_CASE(a_launch_failure_is_reported) {
    Supervisor supervisor(fastOptions());
    ProcessSpec s = spec("exec sleep 30");
    s.workDir = dir / "missing";
    BOOST_CHECK_THROW(supervisor.start(s), SpawnError);
    const ProcessStatus status = statusOf(supervisor);
    BOOST_TEST(!status.running);
    BOOST_TEST(status.lastError.find("does not exist") != std::string::npos, status.lastError);
    BOOST_CHECK_THROW(supervisor.start(ProcessSpec{}), std::invalid_argument);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace rm::agent
