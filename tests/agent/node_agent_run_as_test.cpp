// A package deployed by an agent that runs as root: its container becomes the run-as user's,
// every lifecycle step and its process run as that user, the agent's state stays out of its
// reach, and after an agent restart the process is adopted, not started again. Needs root
// (CI); elsewhere the case says so and passes.
#include <sys/stat.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <mutex>
#include <vector>

#include "agent/archive_extractor.h"
#include "agent/container_packages.h"
#include "common/log.h"
#include "deployer/sha256.h"
#include "tests/agent/run_as_support.h"
#include "tests/agent/test_support.h"

namespace rm::agent {
namespace {

using namespace std::chrono_literals;
using test::firstLine;
using test::procStatusNumbers;
using test::readFile;
using test::switchingUser;
using test::TarBuilder;
using test::TempDir;
using test::writeFile;

class RecordingProgress : public Progress {
  public:
    void reach(const StateChange& change) override {
        std::lock_guard lock(mutex_);
        states_.push_back(change.state + (change.final ? " (final): " : ": ") + change.message);
        last_ = change.state;
    }
    std::string last() const {
        std::lock_guard lock(mutex_);
        return last_;
    }
    std::string all() const {
        std::lock_guard lock(mutex_);
        std::string text;
        for (const auto& s : states_) text += s + "\n";
        return text;
    }

  private:
    mutable std::mutex mutex_;
    std::vector<std::string> states_;
    std::string last_;
};

constexpr const char* kProfile = R"(<Package>
  <ServiceClass>Samples</ServiceClass><ServiceName>Run-As</ServiceName>
  <ServiceVersion>1.0.0</ServiceVersion>
  <PackageName>Probe</PackageName><PackageVersion>1.0.0</PackageVersion>
  <Lifecycle>
    <Install timeout="20">sh install.sh</Install>
    <Start>exec sleep 300</Start>
    <Ready timeout="10">test -f installed-by</Ready>
    <Stop timeout="1">id -u > stopped-by</Stop>
    <Uninstall>id -u > uninstalled-by</Uninstall>
  </Lifecycle>
</Package>
)";

// Records who ran it, and which of the agent's files it could get at (none, it should be).
constexpr const char* kInstall = R"(id -u > installed-by
state=$(cd "$RM_CONTAINER/../../.." && pwd) && export state && [ -f "$state/agent.db" ] || exit 3
for attempt in 'echo x >> "$state/agent.db"' 'cat "$state/agent.db"' 'touch "$state/new-file"' \
               'ls "$state/run"' 'ls "$state/logs"'; do
  if sh -c "$attempt" >/dev/null 2>&1; then echo "allowed: $attempt"; fi
done > verdict
mkdir -p data && echo written > data/file
)";

BOOST_AUTO_TEST_SUITE(node_agent_run_as)

BOOST_AUTO_TEST_CASE(a_package_deployed_by_a_root_agent_runs_as_the_run_as_user) {
    const auto user = switchingUser();
    if (!user) return;
    TempDir dir;
    const fs::path root = dir / "agent";
    fs::create_directories(root);
    ::chmod(root.c_str(), 0711);
    writeFile(root / "agent.db", "the agent's state\n");
    ::chmod((root / "agent.db").c_str(), 0644);

    const fs::path archive = dir / "probe.tar.gz";
    TarBuilder(archive)
        .file("profile.xml", kProfile)
        .file("install.sh", kInstall)
        .directory("www")
        .file("www/index.html", "hello\n")
        .close();
    const std::string sha = deployer::sha256File(archive);
    const deployer::PackageCoordinates coords{"Samples", "Run-As", "1.0.0", "Probe", "1.0.0"};

    common::Logger logger("agent-test", common::LogLevel::warn);
    ContainerOptions options;
    options.runAs = *user;
    options.stepKillGrace = 1s;
    SupervisorOptions fast;
    fast.killGrace = 300ms;
    fast.readyRetryInterval = 50ms;
    auto supervisor = std::make_unique<Supervisor>(fast);
    auto packages = std::make_unique<ContainerPackages>(root, *supervisor, logger, options);
    // The agent's own state is kept from the user as soon as it runs packages.
    struct stat info {};
    BOOST_TEST_REQUIRE(::stat((root / "agent.db").c_str(), &info) == 0);
    BOOST_TEST((info.st_mode & 077) == 0u);

    // Unpacked by root, as an agent killed before handing the container over left it.
    const fs::path container = packages->containerOf(coords);
    extractPackage(archive, container, sha);
    BOOST_TEST_REQUIRE(::stat(container.c_str(), &info) == 0);
    BOOST_TEST(info.st_uid == 0u);

    OperationPackage package;
    package.request = {coords, "https://127.0.0.1:1/unused", sha, {}};
    package.state = state::kDeployed;
    PackageTask task{"local", "node-1", "callback-1", "/gcube/test", false, package, std::nullopt};
    RecordingProgress progress;
    packages->deploy(task, progress, {});
    BOOST_TEST_REQUIRE(progress.last() == state::kRunning, progress.all());

    const std::string uid = std::to_string(user->credentials.uid);
    BOOST_TEST_REQUIRE(::stat(container.c_str(), &info) == 0);
    BOOST_TEST(info.st_uid == user->credentials.uid, "the container must be the user's");
    BOOST_TEST(firstLine(container / "installed-by") == uid);
    BOOST_TEST(readFile(container / "verdict") == "",
               "the agent's state must be out of reach: " << readFile(container / "verdict"));
    BOOST_TEST(readFile(root / "agent.db") == "the agent's state\n");
    BOOST_TEST(!fs::exists(root / "new-file"));
    BOOST_TEST(readFile(container / "data" / "file") == "written\n");

    const auto status = supervisor->status("Run-As/Probe");
    BOOST_TEST_REQUIRE((status && status->running));
    const pid_t pid = status->pid;
    BOOST_TEST(procStatusNumbers(pid, "Uid") == std::vector<long>(4, user->credentials.uid));

    // The agent restarts: the process is found again, as it runs, not started a second time.
    supervisor->detachAll();
    packages.reset();
    supervisor = std::make_unique<Supervisor>(fast);
    packages = std::make_unique<ContainerPackages>(root, *supervisor, logger, options);
    DeployedPackage row{"local",       coords,       sha,          state::kRunning,
                        "/gcube/test", "instance-1", "callback-1", {}};
    packages->adoptRunning({row}, "node-1");
    const auto adopted = supervisor->status("Run-As/Probe");
    BOOST_TEST_REQUIRE((adopted && adopted->running));
    BOOST_TEST(adopted->adopted);
    BOOST_TEST(adopted->pid == pid);

    PackageTask removal = task;
    removal.deployed = row;
    RecordingProgress removed;
    packages->undeploy(removal, removed, {});
    BOOST_TEST(removed.last() == state::kUndeployed, removed.all());
    BOOST_TEST(firstLine(container / "stopped-by") == uid);
    BOOST_TEST(firstLine(container / "uninstalled-by") == uid);
    BOOST_TEST(!isRunning(pid, processStartTime(pid).value_or(0)));
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace rm::agent
