// The real node-agent as a process: registration and liveness against the real RM, Deploy and
// Undeploy of the sample packages served over HTTP, reports pushed to a callback endpoint, and
// kill -9 at awkward moments.
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "agent_test_helpers.h"
#include "cli/rm_client.h"
#include "common/soap_server.h"
#include "daemon_process.h"
#include "deployer/package_archive.h"
#include "deployer/sha256.h"
#include "soapDeployerBindingProxy.h"
#include "soapResourceManagerBindingService.h"

namespace {

using namespace std::chrono_literals;
using rm::testing::DaemonProcess;
using rm::testing::NodeInstance;
using rm::testing::NodePackage;
using rm::testing::processesIn;
using rm::testing::ProcessReaper;
using rm::testing::startAgent;
using rm::testing::TempDir;
using rm::testing::waitUntil;
namespace fs = std::filesystem;

const std::string kScope = "/gcube/devsec";

// Serves the files of one directory over HTTP, as the RM's repository would.
class FileServer {
  public:
    explicit FileServer(fs::path dir)
        : dir_(std::move(dir)), socket_(Poco::Net::SocketAddress("127.0.0.1", 0)) {
        auto* params = new Poco::Net::HTTPServerParams;
        params->setMaxThreads(4);
        server_ = std::make_unique<Poco::Net::HTTPServer>(new Factory(dir_), socket_, params);
        server_->start();
    }
    ~FileServer() { server_->stopAll(true); }
    std::string url(const std::string& file) const {
        return "http://127.0.0.1:" + std::to_string(socket_.address().port()) + "/" + file;
    }

  private:
    class Handler : public Poco::Net::HTTPRequestHandler {
      public:
        explicit Handler(fs::path dir) : dir_(std::move(dir)) {}
        void handleRequest(Poco::Net::HTTPServerRequest& request,
                           Poco::Net::HTTPServerResponse& response) override {
            fs::path file = dir_ / fs::path(request.getURI()).filename();
            if (!fs::is_regular_file(file)) {
                response.setStatusAndReason(Poco::Net::HTTPResponse::HTTP_NOT_FOUND);
                response.send() << "not found";
                return;
            }
            response.sendFile(file.string(), "application/gzip");
        }

      private:
        fs::path dir_;
    };
    class Factory : public Poco::Net::HTTPRequestHandlerFactory {
      public:
        explicit Factory(fs::path dir) : dir_(std::move(dir)) {}
        Poco::Net::HTTPRequestHandler* createRequestHandler(
            const Poco::Net::HTTPServerRequest&) override {
            return new Handler(dir_);
        }

      private:
        fs::path dir_;
    };

    fs::path dir_;
    Poco::Net::ServerSocket socket_;
    std::unique_ptr<Poco::Net::HTTPServer> server_;
};

struct ReceivedPackage {
    std::string name, status, message;
};
struct ReceivedReport {
    std::string callbackId, nodeId, status;
    int64_t sequence = 0;
    std::vector<ReceivedPackage> packages;
};

// Plays the Resource Manager for the agent: accepts registrations and heartbeats and records
// every report it is sent.
struct SinkState {
    std::mutex mutex;
    std::vector<ReceivedReport> reports;
    int refuseReports = 0;  // this many SendReports are answered with a fault first
    int registrations = 0;

    std::vector<ReceivedReport> of(const std::string& callbackId) {
        std::lock_guard lock(mutex);
        std::vector<ReceivedReport> out;
        for (const auto& r : reports) {
            if (r.callbackId == callbackId) out.push_back(r);
        }
        return out;
    }
    std::optional<ReceivedReport> closed(const std::string& callbackId) {
        for (const auto& r : of(callbackId)) {
            if (r.status == "CLOSED") return r;
        }
        return std::nullopt;
    }
};

class FakeManager : public ResourceManagerBindingService {
  public:
    explicit FakeManager(std::shared_ptr<SinkState> state) : state_(std::move(state)) {}
    FakeManager* copy() override {
        auto* dup = new FakeManager(state_);
        soap_done(dup->soap);
        soap_copy_context(dup->soap, soap);
        return dup;
    }
    int AddResources(rm__ScopeRequest*, _rm__AddResourcesResponse&) override { return refuse(); }
    int RemoveResources(rm__ScopeRequest*, _rm__RemoveResourcesResponse&) override {
        return refuse();
    }
    int GetReport(_rm__GetReport*, _rm__GetReportResponse&) override { return refuse(); }
    int ListResources(_rm__ListResources*, _rm__ListResourcesResponse&) override {
        return refuse();
    }
    int DisposeScope(_rm__DisposeScope*, _rm__DisposeScopeResponse&) override { return refuse(); }
    int ListNodes(_rm__ListNodes*, _rm__ListNodesResponse&) override { return SOAP_OK; }
    int RegisterNode(_rm__RegisterNode*, _rm__RegisterNodeResponse& response) override {
        std::lock_guard lock(state_->mutex);
        state_->registrations++;
        response.ack = true;
        response.heartbeatIntervalMs = 200;
        return SOAP_OK;
    }
    int Heartbeat(_rm__Heartbeat*, _rm__HeartbeatResponse& response) override {
        response.ack = true;
        response.registered = true;
        return SOAP_OK;
    }
    int SendReport(_rm__SendReport* request, _rm__SendReportResponse& response) override {
        std::lock_guard lock(state_->mutex);
        if (state_->refuseReports > 0) {
            state_->refuseReports--;
            return soap_sender_fault(soap, "not now", nullptr);
        }
        ReceivedReport r{request->callbackID,
                         request->ID,
                         request->report ? request->report->Status : "",
                         request->sequence,
                         {}};
        if (request->report && request->report->Packages) {
            for (const auto* p : request->report->Packages->Package)
                r.packages.push_back({p->PackageName, p->Status, p->Message});
        }
        state_->reports.push_back(std::move(r));
        response.ack = true;
        return SOAP_OK;
    }

  private:
    int refuse() { return soap_sender_fault(soap, "not a real Resource Manager", nullptr); }
    std::shared_ptr<SinkState> state_;
};

class ManagerSink {
  public:
    ManagerSink()
        : logger_("fake-rm", rm::common::LogLevel::error), state(std::make_shared<SinkState>()) {
        rm::common::ServerOptions options;
        options.threads = 4;
        server_ = std::make_unique<rm::common::SoapServer>(
            options,
            std::make_unique<rm::common::GeneratedEndpoint<FakeManager>>(
                std::make_unique<FakeManager>(state)),
            rm::common::HttpRouter(), logger_);
        server_->start();
    }
    ~ManagerSink() { server_->stop(); }
    std::string url() const { return server_->url(); }

  private:
    rm::common::Logger logger_;

  public:
    std::shared_ptr<SinkState> state;

  private:
    std::unique_ptr<rm::common::SoapServer> server_;
};

struct PackageFile {
    rm::deployer::PackageCoordinates coords;
    std::string file;
    std::string sha256;
};

PackageFile pack(const fs::path& source, const fs::path& repo) {
    fs::create_directories(repo);
    fs::path tmp = repo / (source.filename().string() + ".tar.gz");
    auto profile = rm::deployer::buildPackage(source, tmp);
    return {profile.coords, tmp.filename().string(), rm::deployer::sha256File(tmp)};
}

PackageFile packSample(const std::string& name, const fs::path& repo) {
    return pack(rm::testing::sourceDir() / "etc" / "packages" / name, repo);
}

struct DeployItem {
    PackageFile package;
    std::vector<std::string> dependsOn;
};

// The Deployer port type of one agent, as the RM drives it.
class AgentClient {
  public:
    explicit AgentClient(std::string url) : url_(std::move(url)) {
        rm::common::ServerOptions limits;
        rm::common::applyXmlLimits(proxy_.soap, limits);
    }

    // Returns "" when accepted, else the fault string.
    std::string deploy(const std::string& callbackId, const std::vector<DeployItem>& items,
                       const FileServer& files, const std::string& callback,
                       const std::string& shaOverride = "") {
        proxy_.destroy();
        _rm__Deploy request;
        request.callbackID = callbackId;
        request.targetScope = kScope;
        request.callbackEndpoint = callback;
        for (const auto& item : items) {
            auto* p = soap_new_rm__DeployPackage(proxy_.soap);
            p->ServiceClass = item.package.coords.serviceClass;
            p->ServiceName = item.package.coords.serviceName;
            p->ServiceVersion = item.package.coords.serviceVersion;
            p->PackageName = item.package.coords.packageName;
            p->PackageVersion = item.package.coords.packageVersion;
            p->URL = files.url(item.package.file);
            p->SHA256 = shaOverride.empty() ? item.package.sha256 : shaOverride;
            p->dependsOn = item.dependsOn;
            request.package.push_back(p);
        }
        _rm__DeployResponse response;
        if (proxy_.Deploy(url_.c_str(), nullptr, &request, response) != SOAP_OK) return fault();
        return response.accepted ? "" : "not accepted";
    }

    std::string undeploy(const std::string& callbackId, const std::vector<PackageFile>& packages,
                         const std::string& callback) {
        proxy_.destroy();
        _rm__Undeploy request;
        request.callbackID = callbackId;
        request.targetScope = kScope;
        request.callbackEndpoint = callback;
        for (const auto& p : packages) {
            auto* ref = soap_new_rm__PackageRef(proxy_.soap);
            ref->ServiceClass = p.coords.serviceClass;
            ref->ServiceName = p.coords.serviceName;
            ref->ServiceVersion = p.coords.serviceVersion;
            ref->PackageName = p.coords.packageName;
            ref->PackageVersion = p.coords.packageVersion;
            request.package.push_back(ref);
        }
        _rm__UndeployResponse response;
        if (proxy_.Undeploy(url_.c_str(), nullptr, &request, response) != SOAP_OK) return fault();
        return response.accepted ? "" : "not accepted";
    }

    std::pair<std::map<std::string, NodePackage>, std::map<std::string, NodeInstance>> state() {
        auto state = rm::testing::getNodeState(url_);
        return {state.packages, state.instances};
    }

    std::string packageStatus(const std::string& name) {
        try {
            auto packages = state().first;
            auto it = packages.find(name);
            return it == packages.end() ? "" : it->second.status;
        } catch (const std::exception&) {
            return "";
        }
    }

  private:
    std::string fault() {
        const char* s = soap_fault_string(proxy_.soap);
        std::string detail;
        if (proxy_.soap->fault && proxy_.soap->fault->detail &&
            proxy_.soap->fault->detail->rm__InvalidRequestFault) {
            detail = "InvalidRequestFault: ";
        }
        proxy_.soap_close_socket();
        return detail + (s ? s : "error " + std::to_string(proxy_.soap->error));
    }

    std::string url_;
    DeployerBindingProxy proxy_;
};

std::map<std::string, std::string> statesOf(const ReceivedReport& report) {
    std::map<std::string, std::string> out;
    for (const auto& p : report.packages) out[p.name] = p.status;
    return out;
}

std::string messageOf(const ReceivedReport& report, const std::string& name) {
    for (const auto& p : report.packages) {
        if (p.name == name) return p.message;
    }
    return "";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(agent_node)

BOOST_AUTO_TEST_CASE(registers_goes_lost_when_killed_and_comes_back_with_same_id) {
    TempDir dir("agent-presence");
    DaemonProcess rmd("resource-manager",
                      {"--scope", kScope, "--listen", "127.0.0.1:0", "--state-dir",
                       (dir.path() / "rm").string(), "--repository", dir.path().string(),
                       "--node-lost-after-ms", "1200", "--heartbeat-interval-ms", "200"},
                      dir.path() / "rm.log");
    rm::client::RmClient client({rmd.url(), "", "", 10, "", ""});
    auto agent = startAgent(dir.path() / "agent", rmd.url(), dir.path() / "agent.log");

    auto findNode = [&]() -> std::optional<rm::client::NodeRow> {
        for (const auto& n : client.listNodes()) {
            if (n.name == "node1") return n;
        }
        return std::nullopt;
    };
    BOOST_REQUIRE_MESSAGE(waitUntil([&] { return findNode().has_value(); }, 10s), agent->log());
    auto first = *findNode();
    BOOST_TEST(first.liveness == "ALIVE");
    BOOST_TEST(first.endpoint == agent->url());
    BOOST_TEST(first.labels.size() == 1u);

    agent->kill9();
    BOOST_REQUIRE(waitUntil([&] { return findNode()->liveness == "LOST"; }, 8s));

    agent = startAgent(dir.path() / "agent", rmd.url(), dir.path() / "agent.log");
    BOOST_REQUIRE(waitUntil([&] { return findNode()->liveness == "ALIVE"; }, 8s));
    auto again = *findNode();
    BOOST_TEST(again.id == first.id);
    BOOST_TEST(again.endpoint == agent->url());
    BOOST_TEST(client.listNodes().size() == 1u);
    BOOST_TEST(agent->terminate() == 0);
}

BOOST_AUTO_TEST_CASE(keeps_retrying_while_the_manager_is_down) {
    TempDir dir("agent-nomanager");
    // Nothing listens on the manager URL: the agent must stay up and serve anyway.
    auto agent = startAgent(dir.path() / "agent", "http://127.0.0.1:1", dir.path() / "agent.log");
    std::this_thread::sleep_for(1500ms);
    BOOST_TEST(agent->running());
    auto health = rm::testing::httpRequest(agent->url(), "GET", "/healthz");
    BOOST_TEST(health.status == 200);
    auto engine = rm::testing::httpRequest(agent->url(), "GET", "/engine");
    BOOST_TEST(engine.body.find("\"presence\"") != std::string::npos);
    BOOST_TEST(agent->log().find("register_failed") != std::string::npos);
    BOOST_TEST(agent->terminate() == 0);
}

BOOST_AUTO_TEST_CASE(deploys_the_samples_to_their_states_and_undeploys_them) {
    TempDir dir("agent-deploy");
    ProcessReaper reaper{dir.path() / "agent"};
    fs::path repo = dir.path() / "repo";
    auto stubs = packSample("is-notifier-stubs", repo);
    auto service = packSample("is-notifier-service", repo);
    auto broken = packSample("broken-install", repo);
    auto dependsOnBroken = packSample("depends-on-broken", repo);
    auto docs = packSample("static-docs", repo);
    FileServer files(repo);
    ManagerSink sink;
    sink.state->refuseReports = 2;  // the outbox must retry until acknowledged
    auto agent = startAgent(dir.path() / "agent", sink.url(), dir.path() / "agent.log");
    AgentClient node(agent->url());

    // Bad input is refused with InvalidRequestFault and changes nothing.
    BOOST_TEST(
        node.deploy("bad id!", {{stubs, {}}}, files, sink.url()).find("InvalidRequestFault") == 0u);
    BOOST_TEST(node.deploy("cb-bad", {{stubs, {}}}, files, sink.url(), "abc").find("SHA256") !=
               std::string::npos);
    BOOST_TEST(node.deploy("cb-bad", {{stubs, {}}}, files, "ftp://x").find("callbackEndpoint") !=
               std::string::npos);
    BOOST_TEST(node.state().first.empty());

    std::vector<DeployItem> request{{stubs, {}},
                                    {service, {"Notifier-stubs"}},
                                    {broken, {}},
                                    {dependsOnBroken, {"Broken-Install"}},
                                    {docs, {}}};
    BOOST_REQUIRE_EQUAL(node.deploy("cb-1", request, files, sink.url()), "");
    BOOST_REQUIRE_MESSAGE(waitUntil([&] { return sink.state->closed("cb-1").has_value(); }, 40s),
                          agent->log());
    auto closed = *sink.state->closed("cb-1");
    auto states = statesOf(closed);
    BOOST_TEST(states["Notifier-stubs"] == "ACTIVATED");
    BOOST_TEST(states["Notifier-service"] == "RUNNING");
    BOOST_TEST(states["Broken-Install"] == "FAILED");
    BOOST_TEST(states["Depends-On-Broken"] == "SKIPPED");
    BOOST_TEST(states["Docs"] == "NOTVERIFIED");
    BOOST_TEST(messageOf(closed, "Broken-Install").find("exited with status 1") !=
               std::string::npos);
    BOOST_TEST(messageOf(closed, "Broken-Install").find("simulated activation failure") !=
               std::string::npos);
    BOOST_TEST(messageOf(closed, "Depends-On-Broken").find("Broken-Install") != std::string::npos);
    auto reports = sink.state->of("cb-1");
    for (size_t i = 1; i < reports.size(); ++i)
        BOOST_TEST(reports[i].sequence > reports[i - 1].sequence);
    BOOST_TEST(reports.back().status == "CLOSED");

    auto [packages, instances] = node.state();
    BOOST_TEST(packages["Notifier-service"].status == "RUNNING");
    BOOST_TEST(packages["Notifier-stubs"].status == "ACTIVATED");
    BOOST_TEST(packages["Docs"].status == "NOTVERIFIED");
    BOOST_TEST(packages["Notifier-service"].sha256 == service.sha256);
    BOOST_TEST(!packages.contains("Depends-On-Broken"));
    BOOST_REQUIRE(instances.contains("Notifier-service"));
    int pid = instances["Notifier-service"].pid;
    BOOST_TEST(pid > 0);
    BOOST_TEST(instances["Notifier-service"].state == "running");
    fs::path serviceContainer =
        dir.path() / "agent" / "services" / "IS-Notifier" / "Notifier-service";
    BOOST_TEST(fs::is_directory(serviceContainer));

    // The same callbackID again: acknowledged, not executed twice.
    size_t before = sink.state->of("cb-1").size();
    BOOST_REQUIRE_EQUAL(node.deploy("cb-1", request, files, sink.url()), "");
    std::this_thread::sleep_for(700ms);
    BOOST_TEST(sink.state->of("cb-1").size() == before);
    BOOST_TEST(node.state().second["Notifier-service"].pid == pid);

    // The same packages under a new callbackID: already there.
    BOOST_REQUIRE_EQUAL(
        node.deploy("cb-2", {{stubs, {}}, {service, {"Notifier-stubs"}}}, files, sink.url()), "");
    BOOST_REQUIRE(waitUntil([&] { return sink.state->closed("cb-2").has_value(); }, 10s));
    auto again = statesOf(*sink.state->closed("cb-2"));
    BOOST_TEST(again["Notifier-stubs"] == "ALREADYDEPLOYED");
    BOOST_TEST(again["Notifier-service"] == "ALREADYDEPLOYED");

    // The stubs are still needed by the service.
    BOOST_REQUIRE_EQUAL(node.undeploy("cb-3", {stubs}, sink.url()), "");
    BOOST_REQUIRE(waitUntil([&] { return sink.state->closed("cb-3").has_value(); }, 10s));
    BOOST_TEST(statesOf(*sink.state->closed("cb-3"))["Notifier-stubs"] == "NOTUNDEPLOYABLE");

    // Everything of the scope.
    BOOST_REQUIRE_EQUAL(node.undeploy("cb-4", {}, sink.url()), "");
    BOOST_REQUIRE_MESSAGE(waitUntil([&] { return sink.state->closed("cb-4").has_value(); }, 20s),
                          agent->log());
    auto removed = statesOf(*sink.state->closed("cb-4"));
    BOOST_TEST(removed.size() == 4u);  // stubs, service, the failed install and the docs
    for (const auto& [name, st] : removed) BOOST_TEST(st == "UNDEPLOYED", name << " is " << st);
    BOOST_TEST(node.state().first.empty());
    BOOST_TEST(!fs::exists(serviceContainer));
    BOOST_TEST(::kill(pid, 0) != 0);
    BOOST_TEST(agent->terminate() == 0);
}

BOOST_AUTO_TEST_CASE(finishes_after_kill_during_install_without_duplicate_processes) {
    TempDir dir("agent-crash");
    ProcessReaper reaper{dir.path() / "agent"};
    fs::path source = dir.path() / "slow-src";
    fs::create_directories(source);
    std::ofstream(source / "profile.xml") << R"(<Package>
  <ServiceClass>Samples</ServiceClass><ServiceName>Slow</ServiceName><ServiceVersion>1.0.0</ServiceVersion>
  <PackageName>Slow-service</PackageName><PackageVersion>1.0.0</PackageVersion>
  <Lifecycle>
    <Install timeout="30">echo run >> installs; sleep 2</Install>
    <Start>exec sleep 3601</Start>
    <Stop timeout="3"/>
  </Lifecycle>
</Package>
)";
    fs::path repo = dir.path() / "repo";
    auto slow = pack(source, repo);
    FileServer files(repo);
    ManagerSink sink;
    fs::path root = dir.path() / "agent";
    fs::path container = root / "services" / "Slow" / "Slow-service";
    auto agent = startAgent(root, sink.url(), dir.path() / "agent.log");
    BOOST_REQUIRE_EQUAL(
        AgentClient(agent->url()).deploy("cb-slow", {{slow, {}}}, files, sink.url()), "");

    // Killed while Install runs (the container is unpacked, Install has not finished).
    BOOST_REQUIRE(waitUntil([&] { return fs::exists(container / "installs"); }, 10s));
    agent->kill9();
    BOOST_TEST(!sink.state->closed("cb-slow").has_value());

    agent = startAgent(root, sink.url(), dir.path() / "agent.log");
    AgentClient node(agent->url());
    BOOST_REQUIRE_MESSAGE(waitUntil([&] { return sink.state->closed("cb-slow").has_value(); }, 20s),
                          agent->log());
    BOOST_TEST(statesOf(*sink.state->closed("cb-slow"))["Slow-service"] == "RUNNING");
    auto running = processesIn(container, "3601");
    BOOST_REQUIRE_EQUAL(running.size(), 1u);
    auto instance = node.state().second["Slow-service"];
    BOOST_TEST(instance.pid == running[0]);

    // Killed while the service runs: the next agent adopts it rather than starting a second one.
    agent->kill9();
    agent = startAgent(root, sink.url(), dir.path() / "agent.log");
    AgentClient restarted(agent->url());
    BOOST_REQUIRE(waitUntil(
        [&] { return restarted.state().second["Slow-service"].state == "running"; }, 10s));
    BOOST_TEST(restarted.state().second["Slow-service"].pid == running[0]);
    BOOST_TEST(restarted.state().second["Slow-service"].id == instance.id);
    BOOST_TEST(processesIn(container, "3601").size() == 1u);

    BOOST_REQUIRE_EQUAL(restarted.undeploy("cb-remove", {slow}, sink.url()), "");
    BOOST_REQUIRE(waitUntil([&] { return sink.state->closed("cb-remove").has_value(); }, 15s));
    BOOST_TEST(statesOf(*sink.state->closed("cb-remove"))["Slow-service"] == "UNDEPLOYED");
    BOOST_TEST(processesIn(container, "3601").empty());
    BOOST_TEST(!fs::exists(container));
    BOOST_TEST(agent->terminate() == 0);
}

BOOST_AUTO_TEST_CASE(hollow_nodes_register_and_deploy_without_files) {
    TempDir dir("agent-hollow");
    DaemonProcess rmd(
        "resource-manager",
        {"--scope", kScope, "--listen", "127.0.0.1:0", "--state-dir", (dir.path() / "rm").string(),
         "--repository", dir.path().string(), "--heartbeat-interval-ms", "300"},
        dir.path() / "rm.log");
    rm::client::RmClient client({rmd.url(), "", "", 10, "", ""});
    fs::path root = dir.path() / "hollow";
    auto hollow = std::make_unique<DaemonProcess>(
        "node-agent",
        std::vector<std::string>{"--name", "sim", "--hollow", "3", "--hollow-step-ms", "20",
                                 "--listen", "127.0.0.1:0", "--manager", rmd.url(), "--root",
                                 root.string()},
        dir.path() / "hollow.log");
    BOOST_REQUIRE_MESSAGE(waitUntil([&] { return client.listNodes().size() == 3u; }, 10s),
                          hollow->log());
    std::map<std::string, rm::client::NodeRow> nodes;
    for (const auto& n : client.listNodes()) nodes[n.name] = n;
    BOOST_REQUIRE(nodes.contains("sim-0001") && nodes.contains("sim-0002") &&
                  nodes.contains("sim-0003"));
    BOOST_TEST(nodes["sim-0001"].endpoint == hollow->url());
    BOOST_TEST(nodes["sim-0001"].id != nodes["sim-0002"].id);

    ManagerSink sink;
    fs::path repo = dir.path() / "repo";
    auto stubs = packSample("is-notifier-stubs", repo);
    auto broken = packSample("broken-install", repo);
    FileServer files(repo);
    AgentClient second(nodes["sim-0002"].endpoint);
    BOOST_REQUIRE_EQUAL(second.deploy("cb-h", {{stubs, {}}, {broken, {}}}, files, sink.url()), "");
    BOOST_REQUIRE(waitUntil([&] { return sink.state->closed("cb-h").has_value(); }, 10s));
    auto closed = *sink.state->closed("cb-h");
    BOOST_TEST(closed.nodeId == nodes["sim-0002"].id);
    BOOST_TEST(statesOf(closed)["Notifier-stubs"] == "ACTIVATED");
    BOOST_TEST(statesOf(closed)["Broken-Install"] == "FAILED");
    BOOST_TEST(second.state().first.size() == 2u);
    BOOST_TEST(AgentClient(nodes["sim-0001"].endpoint).state().first.empty());
    BOOST_TEST(!fs::exists(root / "services"));

    // Restarted, every hollow node keeps its ID.
    hollow->kill9();
    hollow = std::make_unique<DaemonProcess>(
        "node-agent",
        std::vector<std::string>{"--name", "sim", "--hollow", "3", "--listen", "127.0.0.1:0",
                                 "--manager", rmd.url(), "--root", root.string()},
        dir.path() / "hollow.log");
    BOOST_REQUIRE(waitUntil(
        [&] {
            auto now = client.listNodes();
            return now.size() == 3u && std::all_of(now.begin(), now.end(), [&](const auto& n) {
                       return n.endpoint != nodes[n.name].endpoint && n.id == nodes[n.name].id;
                   });
        },
        10s));
    BOOST_TEST(hollow->terminate() == 0);
}

BOOST_AUTO_TEST_SUITE_END()
