// Chaos harness: a real resource-manager and several real node-agents (enrolled with one join
// token, speaking mutual TLS to the RM's agent port) on loopback, a seeded
// random plan of add/remove requests against the sample repository, and, while they run, a seeded
// random plan of faults: SIGKILL of the RM or an agent at random instants, restarts after random
// delays (standing in for systemd), and fault points armed through each daemon's `faults` file
// (crash at a point, dropped or delayed SendReport/Deploy, lost replies, failed commits).
// Afterwards it checks what must hold whatever happened: every session CLOSED with the status the
// same plan has without faults, no request lost, no package deployed twice, no process running
// twice, no orphan process, and the RM's view of running instances equal to each agent's.
//
// Short run (CI registers it with ctest):
//   build/tests/chaos/chaos --seed 1 --requests 8 --faults 10 --span-ms 25000
// Long run (>= 200 injected faults, about six minutes; a fault event that finds its daemon already
// down injects nothing, so about 2/3 of --faults become kills, plus the fault points that fire):
//   build/tests/chaos/chaos --seed 11 --agents 3 --requests 40 --faults 300 --span-ms 300000
//       --timeout-s 540
// Replay a failing run exactly: the same --seed (and the same sizes) gives the same plan; the plan
// is printed and written to <work dir>/plan.txt, and --keep keeps the work dir with every log.
// Exit status: 0 all invariants held, 1 a violation (listed), 2 usage, 3 the run could not start.
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli/rm_client.h"
#include "common/soap_server.h"
#include "common/tls.h"
#include "daemon_process.h"
#include "reports/report_xml.h"
#include "soapDeployerBindingProxy.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using rm::testing::DaemonProcess;

const std::string kScope = "/gcube/devsec";

struct Options {
    std::uint64_t seed = 1;
    int agents = 3;
    int requests = 8;
    int faults = 10;
    long spanMs = 25000;    // requests and faults are spread over this long
    long timeoutS = 240;    // everything must have converged by then (from the start)
    bool keep = false;      // keep the work directory
    bool noFaults = false;  // the reference run: the same requests, no fault
};

// ---------------------------------------------------------------- the plan

// A sample service and what every package of it ends as on a healthy node (SPEC section 4 and
// etc/packages/README.md). ALREADYDEPLOYED is accepted where the same package was there before.
struct SampleService {
    std::string serviceClass, serviceName;
    bool succeeds;
    std::map<std::string, std::string> finalStates;  // PackageName -> state
};

const std::vector<SampleService>& samples() {
    static const std::vector<SampleService> all{
        {"InformationSystem",
         "IS-Notifier",
         true,
         {{"Notifier-stubs", "ACTIVATED"}, {"Notifier-service", "RUNNING"}}},
        {"InformationSystem",
         "IS-Notifier-Client",
         true,
         {{"Notifier-stubs", "ACTIVATED"}, {"Notifier-client", "ACTIVATED"}}},
        {"Samples", "Static-Docs", true, {{"Docs", "NOTVERIFIED"}}},
        {"Samples",
         "Broken-Install",
         false,
         {{"Broken-Install", "FAILED"}, {"Depends-On-Broken", "SKIPPED"}}},
        {"Samples", "Missing-Dep", false, {}},
    };
    return all;
}

struct PlannedRequest {
    int index = 0;
    long atMs = 0;
    bool remove = false;
    int removes = -1;  // for a removal: the add whose resources it removes
    int service = -1;  // index in samples(), -1: plain resources only
    int node = 0;      // target agent of the service
    std::vector<std::pair<std::string, std::string>> resources;
    bool expectSuccess = true;
};

struct PlannedFault {
    int index = 0;
    long atMs = 0;
    int target = 0;      // 0: the RM, k: agent k
    std::string faults;  // armed at the restart ("" = restart clean)
    long restartAfterMs = 0;
};

const std::vector<std::string> kAgentCrashPoints{
    "agent.after_journal", "agent.mid_download",  "agent.mid_unpack",   "agent.before_install",
    "agent.after_install", "agent.before_verify", "agent.after_verify", "agent.before_start",
    "agent.after_start",   "agent.before_ready",  "agent.after_ready",  "agent.before_send",
    "agent.after_send"};
const std::vector<std::string> kAgentFlaky{
    "agent.before_send=drop,p=0.5,times=6", "agent.after_send=drop,p=0.5,times=6",
    "agent.before_send=delay:400ms,times=8", "agent.after_journal=error,times=2",
    "agent.after_send=delay:300ms,times=8"};
const std::vector<std::string> kRmCrashPoints{"rm.after_add_commit", "rm.before_deploy_send",
                                              "rm.after_deploy_send", "rm.mid_report_commit"};
const std::vector<std::string> kRmFlaky{
    "rm.before_deploy_send=drop,p=0.5,times=6",  "rm.after_deploy_send=drop,p=0.5,times=4",
    "rm.mid_report_commit=error,p=0.5,times=6",  "rm.after_add_commit=error,times=2",
    "rm.before_deploy_send=delay:500ms,times=6", "rm.mid_report_commit=delay:300ms,times=6"};

struct Plan {
    std::vector<PlannedRequest> requests;
    std::vector<PlannedFault> faults;
};

Plan makePlan(const Options& o) {
    std::mt19937_64 rng(o.seed);
    auto uniform = [&rng](long lo, long hi) {
        return std::uniform_int_distribution<long>(lo, hi)(rng);
    };
    Plan plan;
    std::string tag = "s" + std::to_string(o.seed);
    // In time order, so that a removal always comes after the add it undoes.
    std::vector<long> times;
    for (int i = 0; i < o.requests; ++i) times.push_back(uniform(0, o.spanMs * 3 / 4));
    std::sort(times.begin(), times.end());
    for (int i = 0; i < o.requests; ++i) {
        PlannedRequest r;
        r.index = i;
        r.atMs = times[static_cast<size_t>(i)];
        // Adds not yet undone: removing the same resources twice would fail the second time.
        std::set<int> undone;
        for (const auto& p : plan.requests) {
            if (p.remove) undone.insert(p.removes);
        }
        std::vector<int> adds;
        for (const auto& p : plan.requests) {
            if (!p.remove && !undone.contains(p.index)) adds.push_back(p.index);
        }
        int kind = static_cast<int>(uniform(0, 9));
        if (kind <= 1 && !adds.empty()) {
            // A removal of an earlier add's resources, sent once that add has closed.
            r.remove = true;
            r.removes = adds[static_cast<size_t>(uniform(0, static_cast<long>(adds.size()) - 1))];
            r.resources = plan.requests[static_cast<size_t>(r.removes)].resources;
        } else {
            r.resources.emplace_back("GenericResource", "chaos-" + tag + "-" + std::to_string(i));
            if (kind == 2)
                r.resources.emplace_back("Collection", "chaos-" + tag + "-c" + std::to_string(i));
            if (kind >= 3) {
                // Mostly services that succeed; the failing ones keep their known outcome.
                static const int weights[] = {3, 2, 3, 1, 1};
                std::discrete_distribution<int> pick(std::begin(weights), std::end(weights));
                r.service = pick(rng);
                r.node = static_cast<int>(uniform(1, o.agents));
                r.expectSuccess = samples()[static_cast<size_t>(r.service)].succeeds;
            }
        }
        plan.requests.push_back(std::move(r));
    }
    for (int i = 0; i < o.faults && !o.noFaults; ++i) {
        PlannedFault f;
        f.index = i;
        f.atMs = uniform(500, o.spanMs);
        // The agents run most of the steps: they take three quarters of the faults.
        f.target = uniform(0, 3) == 0 ? 0 : static_cast<int>(uniform(1, o.agents));
        int kind = static_cast<int>(uniform(0, 2));  // 0 plain kill, 1 crash point, 2 flaky
        const auto& crash = f.target == 0 ? kRmCrashPoints : kAgentCrashPoints;
        const auto& flaky = f.target == 0 ? kRmFlaky : kAgentFlaky;
        if (kind == 1) {
            f.faults = crash[static_cast<size_t>(uniform(0, static_cast<long>(crash.size()) - 1))] +
                       "=crash,nth=" + std::to_string(uniform(1, 2));
        } else if (kind == 2) {
            f.faults = flaky[static_cast<size_t>(uniform(0, static_cast<long>(flaky.size()) - 1))] +
                       ";seed=" + std::to_string(uniform(1, 1000000));
        }
        f.restartAfterMs = uniform(100, 2500);
        plan.faults.push_back(std::move(f));
    }
    std::stable_sort(plan.faults.begin(), plan.faults.end(),
                     [](const auto& a, const auto& b) { return a.atMs < b.atMs; });
    return plan;
}

std::string describe(const PlannedRequest& r) {
    std::ostringstream out;
    out << "request " << r.index << " at=" << r.atMs << "ms " << (r.remove ? "remove" : "add");
    if (r.remove) out << " of_request=" << r.removes;
    if (r.service >= 0) {
        const auto& s = samples()[static_cast<size_t>(r.service)];
        out << " software=" << s.serviceClass << "/" << s.serviceName << " node=node" << r.node;
    }
    for (const auto& [type, id] : r.resources) out << " " << type << ":" << id;
    out << " expect=" << (r.expectSuccess ? "SUCCESS" : "FAILED");
    return out.str();
}

std::string targetName(int target) {
    return target == 0 ? "rm" : "node" + std::to_string(target);
}

std::string describe(const PlannedFault& f) {
    std::ostringstream out;
    out << "fault " << f.index << " at=" << f.atMs << "ms kill -9 " << targetName(f.target)
        << ", restart after " << f.restartAfterMs << "ms"
        << (f.faults.empty() ? std::string() : " with faults \"" + f.faults + "\"");
    return out.str();
}

// ---------------------------------------------------------------- the daemons

int freePort() {
    Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0));
    return socket.address().port();
}

// One daemon at a fixed port (so the others keep reaching it across restarts), restarted the way
// a supervisor would; its `faults` file is rewritten before each start.
class Daemon {
  public:
    Daemon(std::string name, std::string program, std::vector<std::string> args, fs::path stateDir,
           fs::path log)
        : name_(std::move(name)),
          program_(std::move(program)),
          args_(std::move(args)),
          stateDir_(std::move(stateDir)),
          log_(std::move(log)) {}

    const std::string& name() const { return name_; }
    bool up() { return process_ && process_->running(); }
    bool down() const { return restartAt_.has_value(); }

    // Returns false when it died before printing its URL (a fault point at start-up).
    bool start(const std::string& faults) {
        fs::create_directories(stateDir_);
        if (faults.empty()) {
            fs::remove(stateDir_ / "faults");
        } else {
            std::ofstream(stateDir_ / "faults") << faults << "\n";
        }
        restartAt_.reset();
        try {
            process_ =
                std::make_unique<DaemonProcess>(program_, args_, log_, std::chrono::seconds(60));
            ++starts_;
            return true;
        } catch (const std::exception&) {
            process_.reset();
            return false;
        }
    }
    void kill9() {
        if (process_) process_->kill9();
    }
    void scheduleRestart(Clock::time_point at, std::string faults) {
        restartAt_ = at;
        nextFaults_ = std::move(faults);
    }
    // Restarts when its time has come; true when it did.
    bool restartIfDue(Clock::time_point now) {
        if (!restartAt_ || now < *restartAt_) return false;
        if (!start(nextFaults_)) scheduleRestart(now + std::chrono::milliseconds(500), "");
        return true;
    }
    void stop() {
        if (!process_) return;
        try {
            process_->terminate(std::chrono::seconds(20));
        } catch (const std::exception&) {
        }
    }
    std::string log() const {
        std::ifstream in(log_);
        std::ostringstream s;
        s << in.rdbuf();
        return s.str();
    }
    int starts() const { return starts_; }

  private:
    std::string name_, program_;
    std::vector<std::string> args_;
    fs::path stateDir_, log_;
    std::unique_ptr<DaemonProcess> process_;
    std::optional<Clock::time_point> restartAt_;
    std::string nextFaults_;
    int starts_ = 0;
};

int countOf(const std::string& text, const std::string& needle) {
    int n = 0;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
        ++n;
    return n;
}

// ---------------------------------------------------------------- what the agents say

struct AgentPackage {
    std::string service, name, status;
};
struct AgentInstance {
    std::string service, package, state;
    int pid = 0;
};
struct AgentView {
    std::vector<AgentPackage> packages;
    std::vector<AgentInstance> instances;
};

// Asks an agent as the RM does: with the RM's certificate (`rmKeyFile`) of the scope CA, the only
// caller an agent answers; the agent's certificate is checked against the CA (it is known by its
// node ID, not by host name).
AgentView agentView(const std::string& url, const fs::path& rmKeyFile, const fs::path& caFile) {
    DeployerBindingProxy proxy;
    rm::common::ServerOptions limits;
    rm::common::applyXmlLimits(proxy.soap, limits);
    rm::common::configureTlsClient(proxy.soap, {rmKeyFile.string(), caFile.string(), {}, {}});
    proxy.soap->ssl_flags |= SOAP_SSL_SKIP_HOST_CHECK;
    _rm__GetNodeState request;
    _rm__GetNodeStateResponse response;
    if (proxy.GetNodeState(url.c_str(), nullptr, &request, response) != SOAP_OK) {
        const char* s = soap_fault_string(proxy.soap);
        std::string why = s ? s : "SOAP error " + std::to_string(proxy.soap->error);
        proxy.destroy();
        throw std::runtime_error("GetNodeState of " + url + " failed: " + why);
    }
    AgentView view;
    for (const auto* p : response.package)
        view.packages.push_back({p->ServiceName, p->PackageName, p->Status});
    for (const auto* i : response.instance)
        view.instances.push_back({i->ServiceName, i->PackageName, i->state, i->pid});
    proxy.destroy();
    return view;
}

// Live processes whose working directory is inside a container under `root`, by container
// ("Service/Package") and process group.
std::map<std::string, std::map<pid_t, std::vector<pid_t>>> processesUnder(const fs::path& root) {
    std::map<std::string, std::map<pid_t, std::vector<pid_t>>> out;
    std::string services = (root / "services").string() + "/";
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator("/proc", ec)) {
        std::string name = entry.path().filename().string();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        std::error_code linkError;
        std::string cwd = fs::read_symlink(entry.path() / "cwd", linkError).string();
        if (linkError || cwd.rfind(services, 0) != 0) continue;
        std::ifstream statFile(entry.path() / "stat");
        std::string stat((std::istreambuf_iterator<char>(statFile)),
                         std::istreambuf_iterator<char>());
        auto close = stat.rfind(')');
        if (close == std::string::npos) continue;
        std::istringstream fields(stat.substr(close + 2));
        std::string state;
        long ppid = 0, pgid = 0;
        fields >> state >> ppid >> pgid;
        if (state == "Z") continue;
        std::string rest = cwd.substr(services.size());
        auto slash = rest.find('/');
        auto second = slash == std::string::npos ? std::string::npos : rest.find('/', slash + 1);
        std::string container = rest.substr(0, second);
        if (auto deleted = container.find(" (deleted)"); deleted != std::string::npos)
            container = container.substr(0, deleted) + " (deleted)";
        out[container][static_cast<pid_t>(pgid)].push_back(static_cast<pid_t>(std::stol(name)));
    }
    return out;
}

void killProcessesUnder(const fs::path& root) {
    for (const auto& [container, groups] : processesUnder(root)) {
        for (const auto& [pgid, pids] : groups) {
            if (pgid > 1) ::kill(-pgid, SIGKILL);
            for (pid_t pid : pids) ::kill(pid, SIGKILL);
        }
    }
}

// ---------------------------------------------------------------- the run

struct Submitted {
    const PlannedRequest* plan = nullptr;
    std::string reportId;  // empty until the RM acknowledged
    int attempts = 0;
    bool ambiguous = false;  // an earlier attempt may have been committed without an answer
    long nextAttemptMs = 0;
    std::optional<rm::reports::ResourceReport> closed;
};

class Harness {
  public:
    Harness(Options options)
        : o_(options),
          plan_(makePlan(options)),
          work_(makeWorkDir()),
          monitorRng_(options.seed ^ 0x5eed) {}

    ~Harness() {
        for (auto& a : agents_) a->stop();
        if (rm_) rm_->stop();
        // The containers are under each agent's root (work/nodeK/services).
        for (int k = 1; k <= o_.agents; ++k)
            killProcessesUnder(work_ / ("node" + std::to_string(k)));
        if (!o_.keep) {
            std::error_code ec;
            fs::remove_all(work_, ec);
        }
    }

    int run();

  private:
    static fs::path makeWorkDir() {
        std::random_device rd;
        fs::path dir = fs::temp_directory_path() / ("rm-chaos-" + std::to_string(::getpid()) + "-" +
                                                    std::to_string(rd() % 100000));
        fs::create_directories(dir);
        return dir;
    }
    long elapsedMs() const {
        return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started_)
            .count();
    }
    std::unique_ptr<rm::client::RmClient> client(int timeoutSeconds = 5) const {
        return std::make_unique<rm::client::RmClient>(
            rm::client::ClientOptions{rmUrl_, "", "", timeoutSeconds, "", ""});
    }
    void writePlan();
    void startAll();
    bool waitForNodes();
    void applyFault(const PlannedFault& f);
    void superviseDaemons();
    void submit(Submitted& s);
    void poll(Submitted& s);
    bool converged();
    int check();
    void violation(const std::string& what) {
        violations_.push_back(what);
        std::cout << "VIOLATION: " << what << "\n";
    }

    Options o_;
    Plan plan_;
    fs::path work_;
    std::mt19937_64 monitorRng_;  // delays of the restarts after a crash at a fault point
    std::string rmUrl_;
    std::vector<int> agentPorts_;
    std::unique_ptr<Daemon> rm_;
    std::vector<std::unique_ptr<Daemon>> agents_;  // agents_[k-1] is node k
    std::vector<Submitted> submitted_;
    Clock::time_point started_;
    int kills_ = 0;
    int crashRestarts_ = 0;
    std::vector<std::string> violations_;
};

void Harness::writePlan() {
    std::ostringstream out;
    out << "# chaos plan: --seed " << o_.seed << " --agents " << o_.agents << " --requests "
        << o_.requests << " --faults " << o_.faults << " --span-ms " << o_.spanMs
        << (o_.noFaults ? " --no-faults" : "") << "\n";
    for (const auto& r : plan_.requests) out << describe(r) << "\n";
    for (const auto& f : plan_.faults) out << describe(f) << "\n";
    std::ofstream(work_ / "plan.txt") << out.str();
    std::cout << out.str() << "# work dir " << work_.string() << "\n" << std::flush;
}

void Harness::startAll() {
    int rmPort = freePort();
    // The agent port is fixed too: restarted agents find the restarted RM where they enrolled.
    int agentPort = freePort();
    rmUrl_ = "http://127.0.0.1:" + std::to_string(rmPort);
    fs::path repository = rm::testing::binDir().parent_path() / "repository";
    if (!fs::is_directory(repository))
        throw std::runtime_error(repository.string() +
                                 " is missing: build the sample_repository target");
    rm_ = std::make_unique<Daemon>(
        "rm", "resource-manager",
        std::vector<std::string>{
            "--scope", kScope, "--listen", "127.0.0.1:" + std::to_string(rmPort), "--agent-listen",
            "127.0.0.1:" + std::to_string(agentPort), "--state-dir", (work_ / "rm").string(),
            "--repository", repository.string(), "--heartbeat-interval-ms", "300",
            // Outages here last seconds: a node must not be declared LOST (that
            // would fail its sessions, which is right but not what is tested).
            "--node-lost-after-ms", "120000", "--session-timeout-ms", "900000", "--engine-seed",
            std::to_string(o_.seed)},
        work_ / "rm", work_ / "rm.log");
    if (!rm_->start(""))
        throw std::runtime_error("the resource-manager did not start:\n" + rm_->log());
    // One token of unlimited uses enrolls every agent at its first start; a restarted agent keeps
    // its certificate (the token it is given again is not used).
    auto join = rm::testing::joinArgs(rm::testing::createJoinToken(rmUrl_));
    if (join.at(1) != "https://127.0.0.1:" + std::to_string(agentPort))
        throw std::runtime_error("the RM's agent port is " + join.at(1));
    for (int k = 1; k <= o_.agents; ++k) {
        int port = freePort();
        agentPorts_.push_back(port);
        fs::path root = work_ / ("node" + std::to_string(k));
        agents_.push_back(std::make_unique<Daemon>(
            "node" + std::to_string(k), "node-agent",
            [&] {
                std::vector<std::string> args{"--name",        "node" + std::to_string(k),
                                              "--listen",      "127.0.0.1:" + std::to_string(port),
                                              "--root",        root.string(),
                                              "--engine-seed", std::to_string(o_.seed + k)};
                args.insert(args.end(), join.begin(), join.end());
                return args;
            }(),
            root, work_ / ("node" + std::to_string(k) + ".log")));
        if (!agents_.back()->start(""))
            throw std::runtime_error("node-agent node" + std::to_string(k) + " did not start:\n" +
                                     agents_.back()->log());
    }
}

bool Harness::waitForNodes() {
    auto deadline = Clock::now() + std::chrono::seconds(30);
    while (Clock::now() < deadline) {
        try {
            auto nodes = client()->listNodes();
            int alive = 0;
            for (const auto& n : nodes) alive += n.liveness == "ALIVE" ? 1 : 0;
            if (alive == o_.agents) return true;
        } catch (const std::exception&) {
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
}

void Harness::applyFault(const PlannedFault& f) {
    Daemon& d = f.target == 0 ? *rm_ : *agents_[static_cast<size_t>(f.target - 1)];
    std::cout << "[" << elapsedMs() << "ms] " << describe(f) << "\n" << std::flush;
    if (d.up()) {
        d.kill9();
        ++kills_;
    }
    d.scheduleRestart(Clock::now() + std::chrono::milliseconds(f.restartAfterMs), f.faults);
}

// A daemon that died on its own (a crash at an armed point) is restarted clean after a while.
void Harness::superviseDaemons() {
    auto now = Clock::now();
    std::vector<Daemon*> all{rm_.get()};
    for (auto& a : agents_) all.push_back(a.get());
    for (Daemon* d : all) {
        if (d->restartIfDue(now)) continue;
        if (!d->down() && !d->up()) {
            long delay = std::uniform_int_distribution<long>(100, 1500)(monitorRng_);
            std::cout << "[" << elapsedMs() << "ms] " << d->name()
                      << " died (fault point); restart in " << delay << "ms\n"
                      << std::flush;
            ++crashRestarts_;
            d->scheduleRestart(now + std::chrono::milliseconds(delay), "");
        }
    }
}

void Harness::submit(Submitted& s) {
    const auto& r = *s.plan;
    rm::client::ScopeRequest request;
    request.targetScope = kScope;
    request.resources = r.resources;
    if (r.service >= 0) {
        const auto& svc = samples()[static_cast<size_t>(r.service)];
        rm::client::ServiceRequest item;
        item.serviceClass = svc.serviceClass;
        item.serviceName = svc.serviceName;
        item.targetNode = "node" + std::to_string(r.node);
        request.services.push_back(item);
    }
    ++s.attempts;
    try {
        auto c = client();
        s.reportId = r.remove ? c->removeResources(request) : c->addResources(request);
        std::cout << "[" << elapsedMs() << "ms] request " << r.index << " acknowledged as "
                  << s.reportId << " (attempt " << s.attempts << ")\n"
                  << std::flush;
    } catch (const rm::client::ClientError& e) {
        // Unreachable, a timeout or a fault: the request may or may not have been committed, so a
        // careful client (this one) sends it again.
        s.ambiguous = true;
        s.nextAttemptMs = elapsedMs() + 400;
    }
}

void Harness::poll(Submitted& s) {
    try {
        auto report = rm::reports::parseReportXml(client()->getReport(s.reportId));
        if (report.status == "CLOSED") s.closed = std::move(report);
    } catch (const std::exception&) {
        // the RM is down or restarting; asked again later
    }
}

bool Harness::converged() {
    for (const auto& s : submitted_) {
        if (s.reportId.empty() || !s.closed) return false;
    }
    if (submitted_.size() != plan_.requests.size()) return false;
    if (!rm_->up()) return false;
    for (auto& a : agents_) {
        if (!a->up()) return false;
    }
    return true;
}

int Harness::run() {
    writePlan();
    startAll();
    if (!waitForNodes())
        throw std::runtime_error("the agents did not all register:\n" + rm_->log());
    started_ = Clock::now();
    submitted_.reserve(plan_.requests.size());
    size_t nextRequest = 0, nextFault = 0;
    std::map<int, size_t> byIndex;  // plan index -> submitted_ position
    long lastPoll = 0;
    bool allPlanned = false;
    while (true) {
        long now = elapsedMs();
        while (nextFault < plan_.faults.size() && plan_.faults[nextFault].atMs <= now)
            applyFault(plan_.faults[nextFault++]);
        superviseDaemons();
        while (nextRequest < plan_.requests.size() && plan_.requests[nextRequest].atMs <= now) {
            const auto& r = plan_.requests[nextRequest];
            if (r.remove) {
                // Only once the add it undoes has closed: the outcome is then the same every run.
                auto it = byIndex.find(r.removes);
                if (it == byIndex.end() || !submitted_[it->second].closed) break;
            }
            Submitted s;
            s.plan = &r;
            byIndex[r.index] = submitted_.size();
            submitted_.push_back(s);
            ++nextRequest;
        }
        for (auto& s : submitted_) {
            if (s.reportId.empty() && s.nextAttemptMs <= elapsedMs()) submit(s);
        }
        if (elapsedMs() - lastPoll >= 500) {
            lastPoll = elapsedMs();
            for (auto& s : submitted_) {
                if (!s.reportId.empty() && !s.closed) poll(s);
            }
        }
        allPlanned = nextRequest == plan_.requests.size() && nextFault == plan_.faults.size();
        if (allPlanned && converged()) break;
        if (elapsedMs() > o_.timeoutS * 1000) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    // Let the last heartbeats and instance reports settle before comparing views.
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    return check();
}

int Harness::check() {
    int sessions = 0, convergedCount = 0, lost = 0, duplicated = 0, orphans = 0;
    auto c = client(10);
    // 1. Every request acknowledged, its session CLOSED with the outcome of the plan.
    for (auto& s : submitted_) {
        const auto& r = *s.plan;
        ++sessions;
        if (s.reportId.empty()) {
            ++lost;
            violation("request " + std::to_string(r.index) + " was never acknowledged after " +
                      std::to_string(s.attempts) + " attempts");
            continue;
        }
        if (!s.closed) poll(s);
        if (!s.closed) {
            ++lost;
            std::string status = "unknown";
            try {
                status = rm::reports::parseReportXml(c->getReport(s.reportId)).status;
            } catch (const std::exception& e) {
                status = std::string("unreadable: ") + e.what();
            }
            violation("request " + std::to_string(r.index) + " (report " + s.reportId +
                      ") did not close: " + status);
            continue;
        }
        const auto& report = *s.closed;
        std::string exit = report.sessionExitStatus.value_or("?");
        std::vector<std::string> problems;
        bool removalRetried = r.remove && s.ambiguous;
        if (exit != (r.expectSuccess ? "SUCCESS" : "FAILED")) {
            // A removal sent again after a lost answer may find its first copy already done.
            bool explained = removalRetried && exit == "FAILED";
            for (const auto& res : report.resources) {
                if (res.status == "FAILED" &&
                    res.errorDescription.find("is not in scope") == std::string::npos)
                    explained = false;
            }
            if (!explained) problems.push_back("exit " + exit);
        }
        if (r.service >= 0) {
            const auto& svc = samples()[static_cast<size_t>(r.service)];
            std::map<std::string, std::string> seen;
            for (const auto& ghn : report.ghns) {
                for (const auto& p : ghn.packages) seen[p.packageName] = p.status;
            }
            for (const auto& [package, state] : svc.finalStates) {
                auto it = seen.find(package);
                std::string got = it == seen.end() ? "<absent>" : it->second;
                bool ok = got == state || (svc.succeeds && got == "ALREADYDEPLOYED");
                if (!ok) problems.push_back(package + " " + got + " (expected " + state + ")");
            }
            if (svc.finalStates.empty() && !seen.empty())
                problems.push_back("packages deployed for an unresolvable service");
        }
        if (problems.empty()) {
            ++convergedCount;
        } else {
            std::string all;
            for (const auto& p : problems) all += (all.empty() ? "" : "; ") + p;
            violation("request " + std::to_string(r.index) + " (report " + s.reportId +
                      ") diverged: " + all);
        }
    }
    // 2. Sessions committed without an answer (a lost reply) were run to the end too.
    std::string openSessions = "?";
    try {
        auto metrics = rm::testing::httpRequest(rmUrl_, "GET", "/metrics").body;
        std::istringstream in(metrics);
        std::string line;
        while (std::getline(in, line)) {
            if (line.rfind("rm_open_sessions ", 0) == 0) openSessions = line.substr(17);
        }
    } catch (const std::exception& e) {
        openSessions = e.what();
    }
    if (openSessions != "0") {
        ++lost;
        violation("the RM still has open sessions: rm_open_sessions=" + openSessions);
    }
    // 3. Each agent: nothing twice, no orphan, the same view as the RM.
    std::map<std::string, std::string> nodeIds;  // name -> id
    std::vector<rm::client::ResourceRow> resources;
    try {
        for (const auto& n : c->listNodes()) nodeIds[n.name] = n.id;
        resources = c->listResources(std::string("RunningInstance"), std::nullopt);
    } catch (const std::exception& e) {
        violation(std::string("cannot read the RM's view: ") + e.what());
    }
    // What should run where: every service a successful session deployed.
    std::map<int, std::set<std::string>> mustHave;  // node -> PackageName
    for (const auto& s : submitted_) {
        if (s.plan->service < 0 || !s.closed || !s.plan->expectSuccess) continue;
        for (const auto& [package, state] :
             samples()[static_cast<size_t>(s.plan->service)].finalStates)
            mustHave[s.plan->node].insert(package);
    }
    for (int k = 1; k <= o_.agents; ++k) {
        std::string name = "node" + std::to_string(k);
        std::string url =
            "https://127.0.0.1:" + std::to_string(agentPorts_[static_cast<size_t>(k - 1)]);
        AgentView view;
        try {
            view = agentView(url, work_ / "rm" / "pki" / "rm.pem", work_ / "rm" / "pki" / "ca.pem");
        } catch (const std::exception& e) {
            violation(name + ": " + e.what());
            continue;
        }
        std::map<std::string, int> count;
        std::set<std::string> runningContainers, runningInstanceIds;
        for (const auto& p : view.packages) {
            if (++count[p.name] == 2) {
                ++duplicated;
                violation(name + ": package " + p.name + " is in the inventory twice");
            }
            if (p.status == "RUNNING") {
                runningContainers.insert(p.service + "/" + p.name);
                runningInstanceIds.insert(nodeIds[name] + ":" + p.service + "." + p.name);
            }
        }
        for (const auto& package : mustHave[k]) {
            if (!count.contains(package))
                violation(name + ": " + package + " was deployed but is gone from the node");
        }
        auto processes = processesUnder(work_ / name);
        for (const auto& [container, groups] : processes) {
            if (!runningContainers.contains(container)) {
                orphans += static_cast<int>(groups.size());
                std::string pids;
                for (const auto& [pgid, members] : groups) pids += " " + std::to_string(pgid);
                violation(name + ": orphan process group(s)" + pids + " in " + container +
                          ", which is not a RUNNING package");
            } else if (groups.size() > 1) {
                ++duplicated;
                violation(name + ": " + container + " runs " + std::to_string(groups.size()) +
                          " process groups (a process running twice)");
            }
        }
        for (const auto& container : runningContainers) {
            auto it = processes.find(container);
            if (it == processes.end()) {
                violation(name + ": " + container +
                          " is RUNNING in the inventory but no process runs");
                continue;
            }
            for (const auto& i : view.instances) {
                if (i.service + "/" + i.package != container) continue;
                bool known = false;
                for (const auto& [pgid, members] : it->second)
                    known =
                        known || std::find(members.begin(), members.end(), i.pid) != members.end();
                if (!known)
                    violation(name + ": instance of " + container + " claims pid " +
                              std::to_string(i.pid) + " (" + i.state +
                              "), which is not the process running there");
            }
        }
        std::set<std::string> rmInstances;
        for (const auto& res : resources) {
            if (res.id.rfind(nodeIds[name] + ":", 0) == 0 &&
                (res.status == "ADDED" || res.status == "PUBLISHED"))
                rmInstances.insert(res.id);
        }
        if (rmInstances != runningInstanceIds) {
            std::string rmSide, agentSide;
            for (const auto& id : rmInstances) rmSide += " " + id;
            for (const auto& id : runningInstanceIds) agentSide += " " + id;
            violation(name + ": the RM lists running instances {" + rmSide +
                      " } but the agent runs {" + agentSide + " }");
        }
    }
    int injected = kills_;
    int pointFaults = countOf(rm_->log(), "event=fault_injected");
    for (auto& a : agents_) pointFaults += countOf(a->log(), "event=fault_injected");
    injected += pointFaults;
    std::cout << "\nchaos seed=" << o_.seed << " faults_injected=" << injected
              << " (sigkill=" << kills_ << " fault_points=" << pointFaults
              << ") crash_restarts=" << crashRestarts_ << " sessions=" << sessions
              << " converged=" << convergedCount << " lost=" << lost << " duplicated=" << duplicated
              << " orphans=" << orphans << " violations=" << violations_.size()
              << " elapsed_s=" << elapsedMs() / 1000 << "\n";
    if (!violations_.empty()) {
        std::cout << "replay: " << rm::testing::binDir().parent_path() / "tests" / "chaos" / "chaos"
                  << " --seed " << o_.seed << " --agents " << o_.agents << " --requests "
                  << o_.requests << " --faults " << o_.faults << " --span-ms " << o_.spanMs
                  << " --keep\n";
        if (!o_.keep) std::cout << "(rerun with --keep to keep the logs)\n";
    }
    return violations_.empty() ? 0 : 1;
}

int usage(const char* program, const std::string& error) {
    if (!error.empty()) std::cerr << program << ": " << error << "\n";
    std::cerr
        << "usage: " << program
        << " [--seed N] [--agents N] [--requests N] [--faults N] [--span-ms N] [--timeout-s N]"
           " [--no-faults] [--keep]\n";
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        auto number = [&](long min, long max) -> long {
            if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
            long v = std::stol(argv[++i]);
            if (v < min || v > max)
                throw std::invalid_argument(arg + " must be " + std::to_string(min) + ".." +
                                            std::to_string(max));
            return v;
        };
        try {
            if (arg == "--seed")
                o.seed = static_cast<std::uint64_t>(number(0, LONG_MAX));
            else if (arg == "--agents")
                o.agents = static_cast<int>(number(1, 16));
            else if (arg == "--requests")
                o.requests = static_cast<int>(number(1, 1000));
            else if (arg == "--faults")
                o.faults = static_cast<int>(number(0, 10000));
            else if (arg == "--span-ms")
                o.spanMs = number(1000, 36'000'000);
            else if (arg == "--timeout-s")
                o.timeoutS = number(10, 86400);
            else if (arg == "--no-faults")
                o.noFaults = true;
            else if (arg == "--keep")
                o.keep = true;
            else if (arg == "--help") {
                usage(argv[0], "");
                return 0;
            } else
                return usage(argv[0], "unknown argument " + arg);
        } catch (const std::exception& e) {
            return usage(argv[0], e.what());
        }
    }
    ::signal(SIGPIPE, SIG_IGN);
    try {
        Harness harness(o);
        return harness.run();
    } catch (const std::exception& e) {
        std::cerr << "chaos: the run could not be carried out: " << e.what() << "\n";
        return 3;
    }
}
