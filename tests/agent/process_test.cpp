#include "agent/process.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <thread>

#include "agent/log_file.h"
#include "agent/pid_file.h"
#include "tests/agent/test_support.h"

namespace rm::agent {
namespace {

using namespace std::chrono_literals;
using test::TempDir;

struct Child {
    pid_t pid;
    std::uint64_t startTime;
};

Child launchSleeper(const TempDir& dir, const std::string& command = "exec sleep 30") {
    const UniqueFd log = openLogForAppend(dir / "out.log");
    const pid_t pid = launchInNewSession({command, dir.path(), {}, log.get()});
    return {pid, processStartTime(pid).value()};
}

BOOST_AUTO_TEST_SUITE(process)

BOOST_AUTO_TEST_CASE(exit_watcher_sees_the_end_with_pidfd_and_with_polling) {
    TempDir dir;
    for (const bool usePidfd : {true, false}) {
        const Child child = launchSleeper(dir);
        BOOST_TEST(isRunning(child.pid, child.startTime));
        ExitWatcher watcher(child.pid, child.startTime, usePidfd);
        BOOST_TEST(static_cast<int>(watcher.wait(50ms)) ==
                   static_cast<int>(ExitWatcher::Result::TimedOut));

        ::kill(child.pid, SIGKILL);
        const test::Stopwatch clock;
        BOOST_TEST(static_cast<int>(watcher.wait(5s)) ==
                   static_cast<int>(ExitWatcher::Result::Ended));
        BOOST_TEST(clock.elapsedMs() < 1000);
        BOOST_TEST(!isRunning(child.pid, child.startTime), "a zombie is not running");
        BOOST_TEST(reap(child.pid).describe() == "was killed by signal 9 (Killed)");
    }
}

BOOST_AUTO_TEST_CASE(exit_watcher_can_be_cancelled) {
    TempDir dir;
    for (const bool usePidfd : {true, false}) {
        const Child child = launchSleeper(dir);
        ExitWatcher watcher(child.pid, child.startTime, usePidfd);
        std::stop_source cancel;
        std::jthread canceller([&] {
            std::this_thread::sleep_for(100ms);
            cancel.request_stop();
        });
        BOOST_TEST(static_cast<int>(watcher.wait(ExitWatcher::kForever, cancel.get_token())) ==
                   static_cast<int>(ExitWatcher::Result::Cancelled));
        ExitWatcher killer(child.pid, child.startTime);
        terminateGroup(child.pid, killer, 1s);
        BOOST_TEST(reap(child.pid).describe() == "was killed by signal 15 (Terminated)");
    }
}

BOOST_AUTO_TEST_CASE(a_held_process_runs_its_command_only_when_released) {
    TempDir dir;
    const UniqueFd log = openLogForAppend(dir / "out.log");
    HeldProcess held = launchHeld(
        {"echo \"$0 $# $GREETING\" > ran; read -r line || touch stdin-read; exec sleep 30",
         dir.path(),
         {{"GREETING", "hello"}},
         log.get()});
    const pid_t pid = held.pid();
    const std::uint64_t startTime = processStartTime(pid).value();
    std::this_thread::sleep_for(200ms);
    BOOST_TEST(isRunning(pid, startTime));
    BOOST_TEST(!fs::exists(dir / "ran"), "it ran before it was released");
    BOOST_TEST(::getpgid(pid) == pid, "it must lead its own process group");

    held.release();
    BOOST_REQUIRE(test::waitUntil([&] { return fs::exists(dir / "stdin-read"); }));
    // The command ran as `sh -c` runs it, in the very process that was recorded.
    BOOST_TEST(test::readFile(dir / "ran") == "sh 0 hello\n");
    BOOST_TEST(isRunning(pid, startTime), "exec must replace the process, not start another");
    ::kill(pid, SIGKILL);
    BOOST_TEST(reap(pid).describe() == "was killed by signal 9 (Killed)");
}

BOOST_AUTO_TEST_CASE(a_held_process_never_runs_its_command_when_its_launcher_is_gone) {
    TempDir dir;
    {
        // Dropped without release(), as when the agent fails to record it.
        const UniqueFd log = openLogForAppend(dir / "out.log");
        const pid_t pid = launchHeld({"touch ran; exec sleep 30", dir.path(), {}, log.get()}).pid();
        BOOST_TEST(reap(pid).describe() == "exited with status 125");
    }
    // The launcher killed (-9) between the launch and the release: the kernel closes its end of
    // the gate, and the held process ends by itself.
    int report[2];
    BOOST_REQUIRE(::pipe(report) == 0);
    const pid_t launcher = ::fork();
    if (launcher == 0) {
        ::close(report[0]);
        const UniqueFd log = openLogForAppend(dir / "out.log");
        const HeldProcess held =
            launchHeld({"touch ran; exec sleep 30", dir.path(), {}, log.get()});
        const std::uint64_t start = processStartTime(held.pid()).value_or(0);
        const pid_t pid = held.pid();
        [[maybe_unused]] ssize_t n = ::write(report[1], &pid, sizeof pid);
        n = ::write(report[1], &start, sizeof start);
        ::kill(::getpid(), SIGKILL);
        ::_exit(1);
    }
    ::close(report[1]);
    pid_t pid = 0;
    std::uint64_t start = 0;
    BOOST_REQUIRE(::read(report[0], &pid, sizeof pid) == static_cast<ssize_t>(sizeof pid));
    BOOST_REQUIRE(::read(report[0], &start, sizeof start) == static_cast<ssize_t>(sizeof start));
    ::close(report[0]);
    BOOST_TEST(reap(launcher).describe() == "was killed by signal 9 (Killed)");
    ExitWatcher watcher(pid, start);
    BOOST_TEST(static_cast<int>(watcher.wait(10s)) == static_cast<int>(ExitWatcher::Result::Ended));
    std::this_thread::sleep_for(100ms);
    BOOST_TEST(!fs::exists(dir / "ran"), "a held process ran without being released");
}

BOOST_AUTO_TEST_CASE(a_different_start_time_is_another_process) {
    const std::uint64_t mine = processStartTime(::getpid()).value();
    BOOST_TEST(isRunning(::getpid(), mine));
    BOOST_TEST(!isRunning(::getpid(), mine + 1));
    ExitWatcher watcher(::getpid(), mine + 1);
    BOOST_TEST(static_cast<int>(watcher.wait(0ms)) == static_cast<int>(ExitWatcher::Result::Ended));
}

BOOST_AUTO_TEST_CASE(exit_status_descriptions) {
    BOOST_TEST(ExitStatus::fromWaitStatus(3 << 8).describe() == "exited with status 3");
    BOOST_TEST(ExitStatus::fromWaitStatus(3 << 8).shellCode() == 3);
    BOOST_TEST(ExitStatus{}.describe() == "ended (exit status unknown)");
    BOOST_TEST(ExitStatus{}.shellCode() == -1);
}

BOOST_AUTO_TEST_CASE(pid_file_round_trip_and_garbage) {
    TempDir dir;
    const PidFileRecord record{4242, 987654321, "svc/pkg"};
    writePidFile(dir / "run" / "x.pid", record);
    BOOST_TEST((readPidFile(dir / "run" / "x.pid") == record));
    BOOST_TEST(!readPidFile(dir / "missing.pid").has_value());
    test::writeFile(dir / "bad.pid", "pid=12x\nstart_time=1\nid=a\n");
    BOOST_TEST(!readPidFile(dir / "bad.pid").has_value());
    test::writeFile(dir / "partial.pid", "pid=12\n");
    BOOST_TEST(!readPidFile(dir / "partial.pid").has_value());
}

BOOST_AUTO_TEST_CASE(durations_for_people) {
    BOOST_TEST(formatSeconds(60s) == "60 s");
    BOOST_TEST(formatSeconds(250ms) == "0.25 s");
    BOOST_TEST(formatSeconds(1500ms) == "1.5 s");
}

BOOST_AUTO_TEST_CASE(log_refuses_to_follow_a_symlink) {
    TempDir dir;
    test::writeFile(dir / "target", "");
    fs::create_symlink(dir / "target", dir / "link.log");
    BOOST_CHECK_THROW(openLogForAppend(dir / "link.log"), std::system_error);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace rm::agent
