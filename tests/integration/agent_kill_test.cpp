// kill -9 of the node agent at any point of a deployment, then a restart: the agent finishes or
// redoes each half-done step, adopts or restarts what it supervised without ever running two
// copies, and the RM's report ends exactly as it does without the kill.
//
// A real resource-manager (port 0, its own state directory, the sample repository of etc/) and
// one real node-agent deploy four sample services reaching ACTIVATED (by Install and by Verify),
// ALREADYDEPLOYED, RUNNING (a supervised Start), NOTVERIFIED, FAILED and SKIPPED. The baseline
// runs that without faults; every other case crashes the agent once (at each named fault point,
// or by SIGKILL at seeded random instants), restarts it on the same root and port, and compares
// the end state with the baseline.
#include <signal.h>

#include <algorithm>
#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <sstream>

#include "agent_test_helpers.h"
#include "deployer/package_archive.h"
#include "deployer/profile.h"
#include "rm_test_helpers.h"

using namespace rm::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace data = boost::unit_test::data;

// Named, not anonymous: the data test cases are templates whose lambdas capture these types.
namespace kill_test {

// Generous: ASan+UBSan builds are 2-3 times slower and the machine may be busy.
constexpr auto kCloseTimeout = 150s;
constexpr auto kReachTimeout = 60s;  // for a fault point or a moment to be reached
constexpr auto kSettleTimeout = 60s;
const std::string kNodeName = "node-kill";

// Every agent fault point of common/fault_points.h (checked by every_agent_fault_point_is_covered).
const std::vector<std::string> kAgentPoints{
    "agent.after_journal", "agent.mid_download",  "agent.mid_unpack",   "agent.before_install",
    "agent.after_install", "agent.before_verify", "agent.after_verify", "agent.before_start",
    "agent.after_start",   "agent.before_ready",  "agent.after_ready",  "agent.before_send",
    "agent.after_send"};

// The sample packages in the RM's repository and the services requested.
const std::vector<std::string> kSamples{"is-notifier-stubs",  "is-notifier-service",
                                        "is-notifier-client", "static-docs",
                                        "broken-install",     "depends-on-broken"};

std::vector<rm::client::ServiceRequest> requestedServices() {
    return {{"InformationSystem", "IS-Notifier", {}, {}, {}, {}},
            {"InformationSystem", "IS-Notifier-Client", {}, {}, {}, {}},
            {"Samples", "Static-Docs", {}, {}, {}, {}},
            {"Samples", "Broken-Install", {}, {}, {}, {}}};
}

// A package with a Start command: where its container is and what its process's command line
// shows (the sample's Start is `exec python3 serve.py`).
struct StartedPackage {
    std::string service, package, marker;
    fs::path container(const fs::path& root) const { return root / "services" / service / package; }
    fs::path pidFile(const fs::path& root) const {
        return root / "run" / service / (package + ".pid");
    }
    fs::path logFile(const fs::path& root) const {
        return root / "logs" / service / (package + ".log");
    }
};
const std::vector<StartedPackage> kStarted{{"IS-Notifier", "Notifier-service", "serve.py"}};

std::string tail(const std::string& text, size_t lines) {
    size_t at = text.size();
    for (size_t n = 0; n <= lines && at != std::string::npos && at > 0; ++n)
        at = text.rfind('\n', at - 1);
    return at == std::string::npos ? text : text.substr(at + 1);
}

// The comparable part of the end state: what the report says (node IDs replaced by NODE, since
// every case has a node of its own), what the RM lists, and what is on the node's disk and runs.
struct Outcome {
    std::string session;
    std::vector<std::string> services;    // "Class/Name: resolution, deployed on, error or not"
    std::multiset<std::string> packages;  // "Service/Package version STATUS" of every GHN entry
    std::vector<std::string> nodes;       // "NODE CLOSED"
    std::vector<std::string> resources;   // the report's resources
    std::vector<std::string> listed;      // ListResources
    std::set<std::string> containers;     // what is under <root>/services
    std::vector<std::string> leftovers;   // downloads and staging directories left behind
    std::set<std::string> running;        // containers of Start packages with a live process
    std::string details;                  // the report with its messages: shown, not compared
};

std::string render(const Outcome& o) {
    std::ostringstream out;
    out << "session " << o.session << "\n";
    for (const auto& s : o.services) out << "service " << s << "\n";
    for (const auto& p : o.packages) out << "package " << p << "\n";
    for (const auto& n : o.nodes) out << "ghn " << n << "\n";
    for (const auto& r : o.resources) out << "report resource " << r << "\n";
    for (const auto& r : o.listed) out << "listed " << r << "\n";
    for (const auto& c : o.containers) out << "container " << c << "\n";
    for (const auto& l : o.leftovers) out << "leftover " << l << "\n";
    for (const auto& r : o.running) out << "running " << r << "\n";
    return out.str();
}

std::string replaceAll(std::string text, const std::string& what, const std::string& with) {
    if (what.empty()) return text;
    for (size_t at = text.find(what); at != std::string::npos;
         at = text.find(what, at + with.size()))
        text.replace(at, what.size(), with);
    return text;
}

std::string describe(const rm::reports::ResourceReport& r) {
    std::string out = r.status + " " + r.sessionExitStatus.value_or("-");
    for (const auto& s : r.services)
        out += "\n service " + s.serviceName + " on " + s.deployedOn + ": " + s.errorDescription;
    for (const auto& g : r.ghns) {
        for (const auto& p : g.packages)
            out += "\n package " + p.packageName + " " + p.status + " " + p.message;
    }
    return out;
}

// The process group of a live process (field 5 of /proc/PID/stat), 0 when it is gone.
pid_t groupOf(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(in, line)) return 0;
    std::istringstream fields(line.substr(line.rfind(')') + 1));
    std::string state;
    long ppid = 0, pgrp = 0;
    fields >> state >> ppid >> pgrp;
    return static_cast<pid_t>(pgrp);
}

long pidInFile(const fs::path& file) {
    std::ifstream in(file);
    std::string line;
    std::getline(in, line);  // pid=N
    return line.rfind("pid=", 0) == 0 ? std::atol(line.c_str() + 4) : 0;
}

// One scope: an RM with the sample repository, and the agent of one node that is killed and
// restarted on the same root and port (as systemd would).
class KillScope {
  public:
    KillScope() : rm_({"--node-lost-after-ms", "60000", "--heartbeat-interval-ms", "500"}) {
        for (const auto& s : kSamples) {
            rm::deployer::buildPackage(sourceDir() / "etc" / "packages" / s,
                                       rm_.repository() / (s + ".tar.gz"));
        }
        rm_.restart();  // the repository is indexed at start-up
        client_ = rm_.client();
        join_ = joinArgs(rm_.daemon());  // the first start enrolls; restarts keep the identity
    }

    fs::path root() const { return rm_.dir() / "agent"; }
    std::string agentLog() const { return readText(rm_.dir() / "agent.log"); }
    DaemonProcess& agent() { return *agent_; }
    rm::client::RmClient& client() { return *client_; }

    // Starts (or restarts) the agent; `faults` arms fault points for this run of it only.
    void startAgent(const std::string& faults = "") {
        agent_.reset();  // a previous run is dead already, or killed now
        agent_ = rm::testing::startAgent(root(), join_, rm_.dir() / "agent.log", kNodeName,
                                         "127.0.0.1:" + std::to_string(port_), faults);
    }

    // Waits until the RM lists the node ALIVE; returns its ID.
    std::string waitRegistered() {
        BOOST_REQUIRE_MESSAGE(waitUntil(
                                  [&] {
                                      for (const auto& n : client_->listNodes()) {
                                          if (n.name == kNodeName && n.liveness == "ALIVE")
                                              nodeId_ = n.id;
                                      }
                                      return !nodeId_.empty();
                                  },
                                  30s),
                              "the agent did not register:\n"
                                  << tail(agentLog(), 40));
        return nodeId_;
    }

    std::string submit() {
        rm::client::ScopeRequest request;
        request.targetScope = kScope;
        request.services = requestedServices();
        return client_->addResources(request);
    }

    // Waits until the report is CLOSED, then (once the agent has taken over what runs) reads the
    // end state and checks what must hold whatever happened on the way.
    Outcome finish(const std::string& reportId) {
        rm::reports::ResourceReport report;
        try {
            report = waitClosed(*client_, reportId, kCloseTimeout);
        } catch (const std::exception& e) {
            BOOST_FAIL(
                e.what() << "\nreport: "
                         << describe(rm::reports::parseReportXml(client_->getReport(reportId)))
                         << "\nagent log:\n"
                         << tail(agentLog(), 60));
        }
        BOOST_REQUIRE_MESSAGE(agent_->running(), "the agent is not running:\n"
                                                     << tail(agentLog(), 40));

        Outcome o;
        o.details = describe(report);
        o.session = report.status + " " + report.sessionExitStatus.value_or("-");
        for (const auto& s : report.services) {
            o.services.push_back(s.serviceClass + "/" + s.serviceName + " " + s.serviceVersion +
                                 ": " + s.resolutionStatus + " on " +
                                 (s.deployedOn == nodeId_ ? "NODE" : s.deployedOn) + ", " +
                                 (s.errorDescription.empty() ? "no error" : "error"));
        }
        size_t runningPackages = 0;
        for (const auto& g : report.ghns) {
            o.nodes.push_back((g.id == nodeId_ ? "NODE" : g.id) + " " + g.nodeStatus);
            for (const auto& p : g.packages) {
                o.packages.insert(p.serviceName + "/" + p.packageName + " " + p.packageVersion +
                                  " " + p.status);
                if (p.status == "RUNNING") ++runningPackages;
            }
        }
        for (const auto& r : report.resources)
            o.resources.push_back(r.type + " " + replaceAll(r.id, nodeId_, "NODE") + " " +
                                  r.status);
        std::sort(o.resources.begin(), o.resources.end());

        // The agent adopts (or restarts) what it supervised: wait until it says so.
        NodeState state;
        bool settled = waitUntil(
            [&] {
                try {
                    state = getNodeState(agent_->url(), rmCredentials(rm_.stateDir()));
                } catch (const std::exception&) {
                    return false;
                }
                size_t running = 0;
                for (const auto& [name, instance] : state.instances)
                    running += instance.state == "running" ? 1 : 0;
                return running == runningPackages && state.instances.size() == runningPackages;
            },
            kSettleTimeout);
        BOOST_TEST(settled, "the agent does not report one running instance per RUNNING package");

        size_t listedInstances = 0;
        for (const auto& r : client_->listResources()) {
            o.listed.push_back(r.type + " " + replaceAll(r.id, nodeId_, "NODE") + " " + r.status);
            if (r.type == "RunningInstance") ++listedInstances;
        }
        std::sort(o.listed.begin(), o.listed.end());
        BOOST_TEST(listedInstances == runningPackages,
                   "ListResources shows one RunningInstance per RUNNING package");

        // A half-unpacked container is <container>.partial beside it.
        std::error_code ec;
        for (const auto& service : fs::directory_iterator(root() / "services", ec)) {
            for (const auto& package : fs::directory_iterator(service.path(), ec))
                o.containers.insert(service.path().filename().string() + "/" +
                                    package.path().filename().string());
        }
        for (const auto& entry : fs::recursive_directory_iterator(root() / "services", ec)) {
            if (entry.path().extension() == ".partial")
                o.leftovers.push_back(fs::relative(entry.path(), root()).string());
        }
        for (const auto& entry : fs::directory_iterator(root() / "downloads", ec))
            o.leftovers.push_back(fs::relative(entry.path(), root()).string());

        // Every Start package runs exactly once, and it is the copy the agent records.
        std::set<pid_t> supervised;
        for (const auto& started : kStarted) {
            auto pids = processesIn(started.container(root()), started.marker);
            BOOST_TEST(pids.size() <= 1u, started.package << " runs " << pids.size() << " times");
            if (pids.empty()) continue;
            o.running.insert(started.service + "/" + started.package);
            BOOST_TEST(pidInFile(started.pidFile(root())) == pids.front(),
                       "the pid file of " << started.package << " names another process");
            auto instance = state.instances.find(started.package);
            BOOST_TEST((instance != state.instances.end() && instance->second.pid == pids.front()),
                       "GetNodeState does not name the running copy of " << started.package);
            supervised.insert(pids.front());
        }
        // Nothing else started for a container keeps running: a step (or the launch of a copy)
        // the kill cut short has been ended by the restarted agent before it redid that step.
        std::string strays;
        bool clean = waitUntil(
            [&] {
                strays.clear();
                for (const auto& [container, pid] : processesUnder(root())) {
                    if (supervised.contains(pid) || supervised.contains(groupOf(pid))) continue;
                    strays += " " + std::to_string(pid) + " (" + container + ": " +
                              replaceAll(readText("/proc/" + std::to_string(pid) + "/cmdline"),
                                         std::string(1, '\0'), " ") +
                              ")";
                }
                return strays.empty();
            },
            1s);  // only for a process that is ending right now
        BOOST_TEST(clean, "processes the agent does not supervise:" << strays);

        // Under ASan+UBSan, what the sanitizers found in the daemons is in their logs.
        for (const auto& [daemon, text] :
             {std::pair{"agent", agentLog()}, std::pair{"RM", readText(rm_.logFile())}}) {
            BOOST_TEST((text.find("Sanitizer") == std::string::npos &&
                        text.find("runtime error:") == std::string::npos),
                       "the " << daemon << " log reports a sanitizer finding:\n"
                              << tail(text, 40));
        }
        return o;
    }

  private:
    RmInstance rm_;
    ProcessReaper reaper_{rm_.dir() / "agent"};  // after the agent is gone, before the files are
    std::unique_ptr<rm::client::RmClient> client_;
    int port_ = freePort();
    std::vector<std::string> join_;
    std::string nodeId_;
    std::unique_ptr<DaemonProcess> agent_;
};

struct Baseline {
    Outcome outcome;
    long long durationMs = 0;
};

// The deployment without faults, run once and shared by every case (whichever runs first).
const Baseline& baseline() {
    static std::optional<Baseline> computed;
    if (computed) return *computed;
    KillScope scope;
    scope.startAgent();
    scope.waitRegistered();
    auto started = std::chrono::steady_clock::now();
    std::string id = scope.submit();
    Baseline b;
    b.outcome = scope.finish(id);
    b.durationMs = elapsedMs(started);
    BOOST_TEST_MESSAGE("baseline took " << b.durationMs << " ms:\n" << render(b.outcome));
    computed = std::move(b);
    return *computed;
}

// The span random kills fall in: the baseline's duration, or RM_KILL_SPAN_MS (to replay the plan
// of an earlier run, whose baseline took another time).
long long killSpanMs() {
    if (const char* fixed = std::getenv("RM_KILL_SPAN_MS")) return std::max(1LL, std::atoll(fixed));
    return std::max(1LL, baseline().durationMs);
}

void checkLikeBaseline(const Outcome& got) {
    const Outcome& expected = baseline().outcome;
    BOOST_TEST(render(got) == render(expected), "the report said:\n" << got.details);
    BOOST_TEST(got.leftovers.empty());
}

}  // namespace kill_test

using namespace kill_test;

BOOST_AUTO_TEST_SUITE(agent_kill)

BOOST_AUTO_TEST_CASE(every_agent_fault_point_is_covered) {
    // The points documented in common/fault_points.h are the ones the crash cases go through.
    std::string header = readText(sourceDir() / "common" / "fault_points.h");
    std::set<std::string> documented;
    static const std::regex name(R"(\bagent\.[a-z_]+\b)");
    for (std::sregex_iterator it(header.begin(), header.end(), name), end; it != end; ++it) {
        documented.insert(it->str());
    }
    std::set<std::string> covered(kAgentPoints.begin(), kAgentPoints.end());
    BOOST_TEST(documented == covered, boost::test_tools::per_element());
    // Every package with a Start command among the samples deployed is counted.
    std::set<std::string> withStart;
    for (const auto& s : kSamples) {
        auto profile = rm::deployer::parseProfile(
            readText(sourceDir() / "etc" / "packages" / s / "profile.xml"), s);
        if (profile.lifecycle.start) withStart.insert(profile.coords.packageName);
    }
    std::set<std::string> counted;
    for (const auto& s : kStarted) counted.insert(s.package);
    BOOST_TEST(withStart == counted, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(baseline_reaches_every_expected_state) {
    const Baseline& b = baseline();
    const Outcome& o = b.outcome;
    BOOST_TEST(o.session == "CLOSED FAILED");  // Broken-Install fails on purpose
    const std::multiset<std::string> expected{
        "IS-Notifier/Notifier-stubs 1.00.00 ACTIVATED",
        "IS-Notifier/Notifier-stubs 1.00.00 ALREADYDEPLOYED",  // IS-Notifier-Client's copy
        "IS-Notifier/Notifier-service 1.01.00 RUNNING",
        "IS-Notifier-Client/Notifier-client 1.00.02 ACTIVATED",
        "Static-Docs/Docs 1.0.0 NOTVERIFIED",
        "Broken-Install/Broken-Install 1.0.0 FAILED",
        "Broken-Install/Depends-On-Broken 1.0.0 SKIPPED"};
    BOOST_TEST(o.packages == expected, boost::test_tools::per_element());
    BOOST_TEST(o.running == (std::set<std::string>{"IS-Notifier/Notifier-service"}),
               boost::test_tools::per_element());
    BOOST_TEST(o.leftovers.empty());
    BOOST_TEST(o.nodes == std::vector<std::string>{"NODE CLOSED"},
               boost::test_tools::per_element());
    BOOST_TEST(b.durationMs > 0);
}

BOOST_DATA_TEST_CASE(crash_at_a_fault_point_then_restart_ends_as_without_it,
                     data::make(kAgentPoints), point) {
    const Baseline& base = baseline();
    BOOST_TEST_MESSAGE("fault point " << point);
    BOOST_TEST_CONTEXT("agent crashed at " << point) {
        auto started = std::chrono::steady_clock::now();
        KillScope scope;
        scope.startAgent(point + "=crash,once");
        scope.waitRegistered();
        std::string id = scope.submit();

        // The point must be reached, and the agent must die there, as by kill -9.
        BOOST_REQUIRE_MESSAGE(waitUntil([&] { return !scope.agent().running(); }, kReachTimeout),
                              "the agent never crashed at " << point << ":\n"
                                                            << tail(scope.agentLog(), 40));
        BOOST_TEST(scope.agent().exitStatus().value_or(0) == -SIGKILL);
        std::string log = scope.agentLog();
        BOOST_TEST((log.find("event=fault_injected point=" + point + " action=crash") !=
                    std::string::npos),
                   "no fault_injected line for " << point << ":\n"
                                                 << tail(log, 20));

        scope.startAgent();  // same root, same port, no faults
        Outcome got = scope.finish(id);
        checkLikeBaseline(got);
        BOOST_TEST_MESSAGE(point << ": done in " << elapsedMs(started) << " ms (baseline "
                                 << base.durationMs << " ms)");
    }
}

// Moments no fault point marks, found by the lines the agent writes into the service's log just
// before it acts: while its Install runs, right after its Start command is launched (before or
// while the copy is recorded in its pid file), and while its Ready check runs.
const std::vector<std::string> kLogMoments{"--- Install started", "--- supervisor: starting",
                                           "--- supervisor: starting", "--- supervisor: starting",
                                           "--- Ready started"};
const std::vector<int> kLogMomentDelaysUs{0, 0, 500, 2000, 300000};

BOOST_DATA_TEST_CASE(kill_at_a_moment_of_the_service_lifecycle_then_restart_ends_as_without_it,
                     data::make(kLogMoments) ^ data::make(kLogMomentDelaysUs), line, delayUs) {
    baseline();
    const StartedPackage& started = kStarted.front();
    BOOST_TEST_MESSAGE("kill " << delayUs << " us after \"" << line << "\"");
    BOOST_TEST_CONTEXT("agent killed " << delayUs << " us after \"" << line << "\" in the log of "
                                       << started.package) {
        KillScope scope;
        scope.startAgent();
        scope.waitRegistered();
        std::string id = scope.submit();
        fs::path log = started.logFile(scope.root());
        auto deadline = std::chrono::steady_clock::now() + kReachTimeout;
        bool seen = false;
        while (!seen && std::chrono::steady_clock::now() < deadline) {
            seen = readText(log).find(line) != std::string::npos;
            if (!seen) std::this_thread::sleep_for(200us);
        }
        BOOST_REQUIRE_MESSAGE(seen, "never logged:\n" << tail(scope.agentLog(), 40));
        auto killAt = std::chrono::steady_clock::now() + std::chrono::microseconds(delayUs);
        while (std::chrono::steady_clock::now() < killAt) {
        }
        scope.agent().kill9();
        BOOST_TEST_MESSAGE("killed; pid file "
                           << (fs::exists(started.pidFile(scope.root())) ? "written" : "missing"));
        scope.startAgent();
        checkLikeBaseline(scope.finish(id));
    }
}

BOOST_DATA_TEST_CASE(random_kills_then_restarts_end_as_without_them, data::make({1, 2, 3}), seed) {
    baseline();
    const long long span = killSpanMs();
    std::mt19937 random(static_cast<std::mt19937::result_type>(seed));
    struct Kill {
        long long atMs;       // after the request was submitted
        long long restartMs;  // how long the agent stays down
    };
    std::vector<Kill> plan(std::uniform_int_distribution<int>(1, 3)(random));
    std::uniform_int_distribution<long long> instant(0, span - 1);
    std::uniform_int_distribution<long long> delay(0, 500);
    for (auto& k : plan) k = {instant(random), delay(random)};
    std::sort(plan.begin(), plan.end(),
              [](const Kill& a, const Kill& b) { return a.atMs < b.atMs; });
    std::ostringstream text;
    for (const auto& k : plan)
        text << " [kill -9 at " << k.atMs << " ms, restart after " << k.restartMs << " ms]";
    BOOST_TEST_MESSAGE("seed " << seed << ", span " << span << " ms (RM_KILL_SPAN_MS=" << span
                               << " replays this plan):" << text.str());

    BOOST_TEST_CONTEXT("seed " << seed << ", plan" << text.str()) {
        KillScope scope;
        scope.startAgent();
        scope.waitRegistered();
        auto submitted = std::chrono::steady_clock::now();
        std::string id = scope.submit();
        for (const auto& k : plan) {
            // When an earlier restart took longer than the gap, the kill comes right after it.
            std::this_thread::sleep_until(submitted + std::chrono::milliseconds(k.atMs));
            scope.agent().kill9();
            std::this_thread::sleep_for(std::chrono::milliseconds(k.restartMs));
            scope.startAgent();
        }
        Outcome got = scope.finish(id);
        checkLikeBaseline(got);
        BOOST_TEST_MESSAGE("seed " << seed << ": done in " << elapsedMs(submitted) << " ms");
    }
}

BOOST_AUTO_TEST_SUITE_END()
