// Least privilege: lifecycle steps and supervised processes run as the run-as user, never as
// root, with nothing of root left; the agent's state stays its own. The cases that switch users
// need root (CI) and say so elsewhere; resolving the configuration is checked everywhere.
#include "agent/run_as.h"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include "agent/archive_extractor.h"
#include "agent/log_file.h"
#include "agent/step_runner.h"
#include "agent/supervisor.h"
#include "tests/agent/run_as_support.h"
#include "tests/agent/test_support.h"

namespace rm::agent {
namespace {

using namespace std::chrono_literals;
using test::firstLine;
using test::numbersIn;
using test::procStatusNumbers;
using test::readFile;
using test::switchingUser;
using test::TempDir;
using test::writeFile;

struct stat statOf(const fs::path& path) {
    struct stat info {};
    BOOST_TEST_REQUIRE(::lstat(path.c_str(), &info) == 0, "cannot stat " + path.string());
    return info;
}

// <dir>/services/Svc/Pkg, given to the user as the agent gives a container it unpacked.
fs::path containerFor(const fs::path& dir, const RunAs& user) {
    const fs::path container = dir / "services" / "Svc" / "Pkg";
    fs::create_directories(container);
    ::chmod((dir / "services").c_str(), 0755);
    ::chmod((dir / "services" / "Svc").c_str(), 0755);
    giveTreeTo(container, user.credentials);
    return container;
}

std::string uidText(const RunAs& user) {
    return std::to_string(user.credentials.uid);
}

BOOST_AUTO_TEST_SUITE(run_as)

BOOST_AUTO_TEST_CASE(steps_run_as_the_run_as_user_with_its_groups_and_nothing_of_root) {
    const auto user = switchingUser();
    if (!user) return;
    const passwd* account = ::getpwnam(kDefaultRunAsUser);
    BOOST_TEST_REQUIRE(account != nullptr);
    TempDir dir;
    const fs::path container = containerFor(dir.path(), *user);
    const StepRunner runner(1s);
    // Launched directly and held behind its gate until recorded in a pid file: both ways.
    for (const bool recorded : {false, true}) {
        const StepResult result =
            runner.run({"Install",
                        "id -u > uid; id -g > gid; id -G > groups; echo \"$HOME\" > home; "
                        "grep '^CapEff' /proc/self/status > caps; touch written-by-the-step",
                        container,
                        {{"HOME", container.string()}},
                        dir / "pkg.log",
                        10s,
                        recorded ? dir / "run" / "Pkg.step.pid" : fs::path(),
                        user->launchAs()});
        BOOST_TEST_REQUIRE(result.succeeded(), result.message);
        BOOST_TEST(firstLine(container / "uid") == std::to_string(account->pw_uid));
        BOOST_TEST(firstLine(container / "gid") == std::to_string(account->pw_gid));
        // Exactly the user's groups (as initgroups sets them): none of root's.
        std::set<long> expected;
        for (const gid_t group : user->credentials.groups) expected.insert(group);
        const std::set<long> groups = numbersIn(readFile(container / "groups"));
        BOOST_TEST(groups == expected);
        BOOST_TEST(!groups.contains(0));
        BOOST_TEST(firstLine(container / "home") == container.string());
        BOOST_TEST(readFile(container / "caps").find("0000000000000000") != std::string::npos,
                   "no capability may be left: " << readFile(container / "caps"));
        BOOST_TEST(statOf(container / "written-by-the-step").st_uid == account->pw_uid);
        fs::remove(container / "written-by-the-step");
    }
}

BOOST_AUTO_TEST_CASE(a_supervised_process_its_ready_check_and_stop_command_run_as_the_user) {
    const auto user = switchingUser();
    if (!user) return;
    TempDir dir;
    const fs::path container = containerFor(dir.path(), *user);
    SupervisorOptions options;
    options.killGrace = 300ms;
    options.readyRetryInterval = 50ms;
    Supervisor supervisor(options);
    ProcessSpec spec;
    spec.id = "Svc/Pkg";
    spec.workDir = container;
    spec.command = "exec sleep 300";
    spec.logFile = dir / "logs" / "Pkg.log";
    spec.pidFile = dir / "run" / "Pkg.pid";
    spec.stopCommand = "id -u > stopped-by";
    spec.stopTimeout = 500ms;
    spec.runAs = user->launchAs();
    supervisor.start(spec);

    const auto status = supervisor.status(spec.id);
    BOOST_TEST_REQUIRE((status && status->running));
    const pid_t pid = status->pid;
    const long uid = user->credentials.uid;
    const long gid = user->credentials.gid;
    // Real, effective, saved and file-system ids alike.
    BOOST_TEST(procStatusNumbers(pid, "Uid") == std::vector<long>(4, uid),
               "Uid line of " << pid << " must be the run-as user's");
    BOOST_TEST(procStatusNumbers(pid, "Gid") == std::vector<long>(4, gid));
    const std::vector<long> groups = procStatusNumbers(pid, "Groups");
    BOOST_TEST((std::find(groups.begin(), groups.end(), 0L) == groups.end()));

    const ReadyResult ready =
        supervisor.waitReady(spec.id, "test \"$(id -u)\" = " + uidText(*user), 5s);
    BOOST_TEST(ready.ready, ready.message);

    BOOST_TEST(supervisor.stop(spec.id));
    BOOST_TEST(firstLine(container / "stopped-by") == uidText(*user));
}

BOOST_AUTO_TEST_CASE(the_run_as_user_cannot_touch_the_agents_state) {
    const auto user = switchingUser();
    if (!user) return;
    TempDir root;  // the agent's root: 0711, the agent's (root's)
    writeFile(root / "agent.db", "state\n");
    ::chmod((root / "agent.db").c_str(), 0644);
    fs::create_directories(root / "run");
    writeFile(root / "run" / "Pkg.pid", "pid=1\n");
    ::chmod((root / "run").c_str(), 0755);
    restrictAgentState(root.path());
    BOOST_TEST((statOf(root / "agent.db").st_mode & 07777) == 0600u);
    for (const char* dir : {"run", "logs", "downloads"})
        BOOST_TEST((statOf(root / dir).st_mode & 07777) == 0700u, dir);

    const fs::path container = containerFor(root.path(), *user);
    const StepResult result = StepRunner(1s).run(
        {"Install",
         "for attempt in 'echo x >> \"$STATE/agent.db\"' 'cat \"$STATE/agent.db\"' "
         "'touch \"$STATE/new-file\"' 'ls \"$STATE/run\"' 'ls \"$STATE\"' "
         "'touch \"$STATE/services/new-service\"' 'touch \"$STATE/services/Svc/new-package\"'; "
         "do if sh -c \"$attempt\" >/dev/null 2>&1; then echo \"allowed: $attempt\"; fi; "
         "done > verdict; touch own-file",
         container,
         {{"STATE", root.path().string()}},
         root / "pkg.log",
         10s,
         {},
         user->launchAs()});
    BOOST_TEST_REQUIRE(result.succeeded(), result.message);
    BOOST_TEST(readFile(container / "verdict") == "",
               "the agent's state must be out of reach: " << readFile(container / "verdict"));
    BOOST_TEST(readFile(root / "agent.db") == "state\n");
    BOOST_TEST(!fs::exists(root / "new-file"));
    BOOST_TEST(fs::exists(container / "own-file"), "its container is the user's to write");
}

BOOST_AUTO_TEST_CASE(the_user_enters_the_working_directory_as_itself) {
    const auto user = switchingUser();
    if (!user) return;
    TempDir dir;
    const fs::path closed = dir / "closed";
    fs::create_directories(closed / "agent" / "services");
    ::chmod(closed.c_str(), 0700);
    ::chmod((closed / "agent").c_str(), 0777);
    ::chmod((closed / "agent" / "services").c_str(), 0777);
    const UniqueFd log = openLogForAppend(dir / "out.log");
    try {
        const pid_t pid = launchInNewSession(
            {"touch ran", closed / "agent" / "services", {}, log.get(), user->launchAs()});
        reap(pid);
        BOOST_FAIL("a directory the user cannot reach must refuse the launch");
    } catch (const SpawnError& error) {
        const std::string message = error.what();
        BOOST_TEST(message.find("cannot enter the working directory") != std::string::npos,
                   message);
        BOOST_TEST(message.find("as uid " + uidText(*user)) != std::string::npos, message);
        BOOST_TEST(message.find("Permission denied") != std::string::npos, message);
    }
    BOOST_TEST(!fs::exists(closed / "agent" / "services" / "ran"));

    // At start the agent refuses such a root, saying which directory is in the way.
    try {
        checkContainersReachable(closed / "agent", *user);
        BOOST_FAIL("an unreachable root must be refused");
    } catch (const RunAsError& error) {
        const std::string message = error.what();
        BOOST_TEST(message.find(closed.string() + " (mode 0700") != std::string::npos, message);
        BOOST_TEST(message.find("chmod o+x " + closed.string()) != std::string::npos, message);
    }
    ::chmod(closed.c_str(), 0711);
    BOOST_CHECK_NO_THROW(checkContainersReachable(closed / "agent", *user));

    // A root that does not exist yet is created so that the user can get through, no further.
    const fs::path fresh = dir / "fresh" / "agent";
    BOOST_CHECK_NO_THROW(checkContainersReachable(fresh, *user));
    BOOST_TEST((statOf(fresh).st_mode & 07777) == 0711u);
    BOOST_TEST((statOf(fresh / "services").st_mode & 07777) == 0755u);
}

BOOST_AUTO_TEST_CASE(a_credential_switch_that_fails_is_reported_and_runs_nothing) {
    TempDir dir;
    const UniqueFd log = openLogForAppend(dir / "out.log");
    // Not root: no switch is allowed (EPERM). Root: more groups than the kernel takes (EINVAL).
    Credentials other{::geteuid() == 0 ? 4242u : ::geteuid() + 1, 4242, {4242}};
    if (::geteuid() == 0) other.groups.assign(70000, 4242);
    try {
        const pid_t pid = launchInNewSession({"touch ran", dir.path(), {}, log.get(), other});
        reap(pid);
        BOOST_FAIL("the launch must fail");
    } catch (const SpawnError& error) {
        BOOST_TEST(std::string(error.what()).find("cannot set the supplementary groups of uid") !=
                       std::string::npos,
                   error.what());
    }
    BOOST_TEST(!fs::exists(dir / "ran"));
}

BOOST_AUTO_TEST_CASE(giving_a_container_away_follows_no_symlink) {
    const auto user = switchingUser();
    if (!user) return;
    TempDir dir;
    writeFile(dir / "outside", "the agent's\n");
    const fs::path container = dir / "container";
    fs::create_directories(container / "sub" / "deeper");
    writeFile(container / "sub" / "deeper" / "file", "x");
    writeFile(container / std::string(kUnpackedMarker), "sha\n");
    fs::create_symlink(dir / "outside", container / "link-to-file");
    fs::create_symlink(dir.path(), container / "sub" / "link-to-dir");

    giveTreeTo(container, user->credentials, kUnpackedMarker);
    const uid_t uid = user->credentials.uid;
    for (const fs::path& mine : {container, container / "sub", container / "sub" / "deeper",
                                 container / "sub" / "deeper" / "file", container / "link-to-file",
                                 container / "sub" / "link-to-dir"}) {
        BOOST_TEST(statOf(mine).st_uid == uid, mine.string());
        BOOST_TEST(statOf(mine).st_gid == user->credentials.gid, mine.string());
    }
    BOOST_TEST(statOf(dir / "outside").st_uid == 0u, "a symlink must not be followed");
    BOOST_TEST(statOf(dir.path()).st_uid == 0u, "a symlink must not be followed");
    BOOST_TEST(statOf(container / std::string(kUnpackedMarker)).st_uid == 0u);
}

BOOST_AUTO_TEST_CASE(root_is_refused_as_the_run_as_user) {
    try {
        resolveRunAs("root", 0);
        BOOST_FAIL("--run-as root must be refused");
    } catch (const RunAsError& error) {
        const std::string message = error.what();
        BOOST_TEST(message.find("uid 0") != std::string::npos, message);
        BOOST_TEST(message.find("never run as root") != std::string::npos, message);
    }
    // Nor may the default be root.
    BOOST_CHECK_THROW(resolveRunAs("", 0, "root"), RunAsError);
}

BOOST_AUTO_TEST_CASE(a_missing_default_user_is_refused_saying_how_to_create_it) {
    try {
        resolveRunAs("", 0, "rm-no-such-user");
        BOOST_FAIL("a missing default user must be refused");
    } catch (const RunAsError& error) {
        const std::string message = error.what();
        BOOST_TEST(message.find("useradd --system --no-create-home --shell /usr/sbin/nologin "
                                "rm-no-such-user") != std::string::npos,
                   message);
        BOOST_TEST(message.find("--run-as") != std::string::npos, message);
    }
    BOOST_CHECK_THROW(resolveRunAs("rm-no-such-user", 0), RunAsError);
    BOOST_TEST(createUserCommand(kDefaultRunAsUser) ==
               "useradd --system --no-create-home --shell /usr/sbin/nologin rm-svc");
}

BOOST_AUTO_TEST_CASE(an_agent_that_is_not_root_runs_packages_as_itself) {
    const passwd* nobody = ::getpwnam("nobody");
    if (!nobody || nobody->pw_uid == 0) {
        BOOST_TEST_MESSAGE("skipped: no user nobody");
        return;
    }
    const uid_t agent = nobody->pw_uid;
    const RunAs itself = resolveRunAs("", agent);
    BOOST_TEST(!itself.switchUser);
    BOOST_TEST(itself.user == "nobody");
    BOOST_TEST(itself.credentials.uid == agent);
    BOOST_TEST(!itself.launchAs().has_value());
    BOOST_TEST(!resolveRunAs("nobody", agent).switchUser);
    // Another user would need root.
    try {
        resolveRunAs("root", agent);
        BOOST_FAIL("a different user must be refused");
    } catch (const RunAsError& error) {
        BOOST_TEST(std::string(error.what()).find("not as root") != std::string::npos,
                   error.what());
    }
}

BOOST_AUTO_TEST_CASE(the_default_user_is_used_when_the_agent_is_root) {
    const passwd* account = ::getpwnam(kDefaultRunAsUser);
    if (!account) {
        BOOST_TEST_MESSAGE("skipped: no user rm-svc (scripts/setup.sh creates it)");
        return;
    }
    const RunAs runAs = resolveRunAs("", 0);
    BOOST_TEST(runAs.switchUser);
    BOOST_TEST(runAs.user == kDefaultRunAsUser);
    BOOST_TEST(runAs.credentials.uid == account->pw_uid);
    BOOST_TEST(runAs.credentials.gid == account->pw_gid);
    BOOST_TEST((runAs.launchAs() == std::optional<Credentials>(runAs.credentials)));
}

BOOST_AUTO_TEST_CASE(the_first_directory_in_the_way_is_found_by_its_mode) {
    TempDir dir;
    const fs::path deep = dir / "a" / "b" / "c";
    fs::create_directories(deep);
    ::chmod((dir / "a").c_str(), 0755);
    ::chmod((dir / "a" / "b").c_str(), 0700);
    ::chmod(deep.c_str(), 0755);
    const gid_t group = statOf(dir / "a" / "b").st_gid;
    const Credentials stranger{54321, 54321, {54321}};
    BOOST_TEST(firstUnsearchable(deep, stranger).value_or("") == dir / "a" / "b");
    ::chmod((dir / "a" / "b").c_str(), 0710);
    BOOST_TEST(firstUnsearchable(deep, stranger).value_or("") == dir / "a" / "b");
    const Credentials member{54321, 54321, {54321, group}};
    BOOST_TEST(!firstUnsearchable(deep, member).has_value());
    ::chmod((dir / "a" / "b").c_str(), 0711);
    BOOST_TEST(!firstUnsearchable(deep, stranger).has_value());
    BOOST_TEST(firstUnsearchable(dir / "missing", stranger).value_or("") == dir / "missing");
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace rm::agent
