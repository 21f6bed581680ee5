#include "agent/step_runner.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <thread>

#include "agent/pid_file.h"
#include "tests/agent/test_support.h"

namespace rm::agent {
namespace {

using namespace std::chrono_literals;
using Outcome = StepResult::Outcome;
using test::readFile;
using test::TempDir;
using test::waitUntil;

struct StepFixture {
    TempDir dir;
    fs::path work = dir / "container";
    fs::path log = dir / "logs" / "package.log";
    StepRunner runner{300ms};

    StepFixture() { fs::create_directories(work); }

    StepRequest step(const std::string& command, std::chrono::milliseconds timeout = 10s) const {
        return {"Install", command, work, {{"FOO", "bar"}}, log, timeout};
    }

    pid_t pidFrom(const fs::path& file) const {
        BOOST_REQUIRE(waitUntil([&] { return readFile(file).find('\n') != std::string::npos; }));
        return static_cast<pid_t>(std::stol(readFile(file)));
    }
};

BOOST_FIXTURE_TEST_SUITE(step_runner, StepFixture)

BOOST_AUTO_TEST_CASE(success_with_output_in_the_log) {
    const StepResult result = runner.run(step("echo hello from install; pwd"));
    BOOST_TEST(result.succeeded());
    BOOST_TEST(result.exitCode == 0);
    const std::string text = readFile(log);
    BOOST_TEST(text.find("hello from install\n") != std::string::npos);
    BOOST_TEST(text.find(work.string() + "\n") != std::string::npos);
    BOOST_TEST(text.find("--- Install started: echo hello from install; pwd") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_recorded_step_runs_once_recorded_and_is_forgotten_when_it_ends) {
    StepRequest request = step(
        "grep -qx \"pid=$$\" ../run/package.step.pid && grep -qx 'id=step Install' "
        "../run/package.step.pid");
    request.pidFile = dir / "run" / "package.step.pid";
    const StepResult result = runner.run(request);
    BOOST_TEST(result.succeeded(), result.message);
    BOOST_TEST(!fs::exists(request.pidFile));
}

BOOST_AUTO_TEST_CASE(a_step_left_running_by_a_killed_agent_is_ended_before_it_runs_again) {
    StepRequest first = step("echo $$ > first.pid; exec sleep 30");
    first.pidFile = dir / "run" / "package.step.pid";
    const pid_t agent = ::fork();
    if (agent == 0) {
        runner.run(first);  // the "agent" is killed while the step runs
        ::_exit(0);
    }
    const pid_t leftover = pidFrom(work / "first.pid");
    const std::uint64_t startTime = processStartTime(leftover).value_or(0);
    BOOST_REQUIRE(::kill(agent, SIGKILL) == 0);
    BOOST_REQUIRE(::waitpid(agent, nullptr, 0) == agent);
    BOOST_TEST(isRunning(leftover, startTime), "kill -9 of the agent leaves its step running");

    StepRequest again = step("echo second run");
    again.pidFile = first.pidFile;
    const StepResult result = runner.run(again);
    BOOST_TEST(result.succeeded(), result.message);
    BOOST_TEST(!isRunning(leftover, startTime), "the leftover step must be ended first");
    const std::string text = readFile(log);
    BOOST_TEST(text.find("--- Install (pid " + std::to_string(leftover) +
                         ") still runs from before the agent restarted; ending it") <
               text.find("\nsecond run\n"));
    BOOST_TEST(!fs::exists(again.pidFile));

    // A pid file naming something else (a recycled pid, a process of another kind) is left alone.
    writePidFile(again.pidFile, {::getpid(), processStartTime(::getpid()).value(), "svc/pkg"});
    BOOST_TEST(runner.run(again).succeeded());
    BOOST_TEST(isRunning(::getpid(), processStartTime(::getpid()).value()));
}

BOOST_AUTO_TEST_CASE(failure_reports_status_and_last_three_lines) {
    const StepResult result =
        runner.run(step("echo one; echo two; echo three >&2; echo; echo four; exit 3"));
    BOOST_TEST(static_cast<int>(result.outcome) == static_cast<int>(Outcome::Failed));
    BOOST_TEST(result.exitCode == 3);
    BOOST_TEST(result.message == "Install exited with status 3: two | three | four");
}

BOOST_AUTO_TEST_CASE(failure_without_output_says_so) {
    const StepResult result = runner.run(step("exit 1"));
    BOOST_TEST(result.message == "Install exited with status 1 (no output)");
}

BOOST_AUTO_TEST_CASE(environment_is_exactly_the_given_one) {
    ::setenv("RM_AGENT_TEST_SECRET", "leaked", 1);
    const StepResult result =
        runner.run(step("echo \"FOO=$FOO SECRET=${RM_AGENT_TEST_SECRET:-none}\""));
    ::unsetenv("RM_AGENT_TEST_SECRET");
    BOOST_TEST(result.succeeded());
    BOOST_TEST(readFile(log).find("FOO=bar SECRET=none\n") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(descriptors_are_not_inherited) {
    // Deliberately without O_CLOEXEC, and named, so that no other descriptor can pass for it (the
    // shell holds descriptors of its own while it runs the commands, pipes and saved ones).
    const int leaked = ::open((dir / "leak-marker").c_str(), O_RDWR | O_CREAT, 0600);
    BOOST_REQUIRE(leaked >= 0);
    BOOST_REQUIRE(::dup2(leaked, 57) == 57);
    const StepResult result = runner.run(step("ls -l /proc/$$/fd"));
    ::close(57);
    ::close(leaked);
    BOOST_TEST(result.succeeded());
    const std::string text = readFile(log);
    BOOST_TEST(text.find(" 0 -> /dev/null") != std::string::npos, text);
    BOOST_TEST(text.find(" 1 -> " + log.string()) != std::string::npos, text);
    BOOST_TEST(text.find("leak-marker") == std::string::npos, text);
}

BOOST_AUTO_TEST_CASE(timeout_kills_the_whole_group) {
    const test::Stopwatch begin;
    const StepResult result = runner.run(step("sleep 30 & echo $! > child.pid; wait", 400ms));
    const long long took = begin.elapsedMs();

    BOOST_TEST(static_cast<int>(result.outcome) == static_cast<int>(Outcome::TimedOut));
    BOOST_TEST(result.message == "Install timed out after 0.4 s");
    BOOST_TEST(took >= 400);
    BOOST_TEST(took < 3000);
    const pid_t child = pidFrom(work / "child.pid");
    const auto childStart = processStartTime(child);
    BOOST_TEST(waitUntil([&] { return !childStart || !isRunning(child, *childStart); }),
               "the command's background sleep must be dead too");
}

BOOST_AUTO_TEST_CASE(timeout_escalates_to_sigkill_when_term_is_ignored) {
    const test::Stopwatch begin;
    const StepResult result = runner.run(step("trap '' TERM; echo $$ > self.pid; sleep 30", 300ms));
    const long long took = begin.elapsedMs();
    BOOST_TEST(static_cast<int>(result.outcome) == static_cast<int>(Outcome::TimedOut));
    BOOST_TEST(took >= 600);  // timeout plus the 300 ms grace after SIGTERM
    BOOST_TEST(took < 5000);
    BOOST_TEST(!processStartTime(pidFrom(work / "self.pid")).has_value(),
               "the step must have been reaped");
}

BOOST_AUTO_TEST_CASE(background_leftovers_of_a_finished_step_are_killed) {
    const StepResult result = runner.run(step("sleep 30 & echo $! > child.pid"));
    BOOST_TEST(result.succeeded());
    const pid_t child = pidFrom(work / "child.pid");
    const auto childStart = processStartTime(child);
    BOOST_TEST(waitUntil([&] { return !childStart || !isRunning(child, *childStart); }));
}

BOOST_AUTO_TEST_CASE(cancellation_ends_the_step_early) {
    std::stop_source cancel;
    std::jthread canceller([&] {
        std::this_thread::sleep_for(200ms);
        cancel.request_stop();
    });
    const test::Stopwatch begin;
    const StepResult result = runner.run(step("sleep 30", 30s), cancel.get_token());
    const long long took = begin.elapsedMs();
    BOOST_TEST(static_cast<int>(result.outcome) == static_cast<int>(Outcome::Cancelled));
    BOOST_TEST(took < 3000);
    BOOST_TEST(result.message.find("Install was cancelled after") == 0u);
}

BOOST_AUTO_TEST_CASE(missing_working_directory_could_not_start) {
    StepRequest request = step("true");
    request.workDir = dir / "missing";
    const StepResult result = runner.run(request);
    BOOST_TEST(static_cast<int>(result.outcome) == static_cast<int>(Outcome::CouldNotStart));
    BOOST_TEST(result.message.find("Install could not start: working directory") == 0u);
    BOOST_TEST(result.message.find("missing") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(killed_by_signal_is_a_failure_with_shell_code) {
    const StepResult result = runner.run(step("echo dying; kill -9 $$"));
    BOOST_TEST(static_cast<int>(result.outcome) == static_cast<int>(Outcome::Failed));
    BOOST_TEST(result.exitCode == 128 + 9);
    BOOST_TEST(result.message == "Install was killed by signal 9 (Killed): dying");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace rm::agent
