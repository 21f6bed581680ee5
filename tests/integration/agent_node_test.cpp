// The real node-agent as a process: registration and liveness against the real RM (enrolled with
// a join token), Deploy and Undeploy of the sample packages driven directly by a fake RM that
// enrolls the agent with a CA of its own (common/pki.h), serves the packages on its agent port
// over TLS and records the reports pushed to it, and kill -9 at awkward moments.
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
#include "common/durable_file.h"
#include "common/pki.h"
#include "common/soap_server.h"
#include "daemon_process.h"
#include "deployer/package_archive.h"
#include "deployer/sha256.h"
#include "rm_test_helpers.h"
#include "soapDeployerBindingProxy.h"
#include "soapResourceManagerBindingService.h"

namespace {

using namespace std::chrono_literals;
using rm::testing::DaemonProcess;
using rm::testing::NodeInstance;
using rm::testing::NodePackage;
using rm::testing::processesIn;
using rm::testing::ProcessReaper;
using rm::testing::RmCredentials;
using rm::testing::startAgent;
using rm::testing::TempDir;
using rm::testing::waitUntil;
namespace fs = std::filesystem;
namespace pki = rm::common::pki;

const std::string kScope = "/gcube/devsec";

// The PKI of the fake RM's scope, made with common/pki.h as service/scope_ca.cpp makes the real
// one: a CA, and the RM's key and certificate (CN resource-manager) in one PEM. It outlives the
// fake RM, so that an agent enrolled with it can be started again while no RM runs.
class FakeScopeCa {
  public:
    FakeScopeCa() : ca_(pki::makeCa("fake scope CA", std::chrono::hours(48))) {
        std::string key = pki::generateKeyPem();
        pki::IssueRequest request;
        request.publicKeyPem = pki::parseCsr(pki::makeCsrPem(key, pki::kRmIdentity)).publicKeyPem;
        request.commonName = pki::kRmIdentity;
        request.validity = std::chrono::hours(24);
        request.dnsNames = {"localhost"};
        request.ipAddresses = {"127.0.0.1"};
        rm::common::writeFileAtomically(caFile(), ca_.certificatePem, 0644);
        rm::common::writeFileAtomically(rmKeyFile(), key + pki::issueCertificate(ca_, request),
                                        0600);
    }
    fs::path caFile() const { return dir_.path() / "ca.pem"; }
    fs::path rmKeyFile() const { return dir_.path() / "rm.pem"; }
    const std::string& caPem() const { return ca_.certificatePem; }
    std::string caSha256() const { return pki::certificateSha256(ca_.certificatePem); }
    // What the fake RM presents to the agents it calls.
    RmCredentials asRm() const { return {rmKeyFile().string(), caFile().string()}; }
    // A node certificate for the key of `csrPem`, named as the CSR names it.
    std::string issue(const std::string& csrPem) const {
        auto csr = pki::parseCsr(csrPem);
        pki::IssueRequest request;
        request.publicKeyPem = csr.publicKeyPem;
        request.commonName = csr.commonName;
        request.validity = std::chrono::hours(24);
        return pki::issueCertificate(ca_, request);
    }

  private:
    TempDir dir_{"fake-ca"};
    pki::KeyAndCertificate ca_;
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
    std::vector<std::string> enrolled;  // node IDs, in the order EnrollNode issued them
    std::string registeredEndpoint;
    const FakeScopeCa* ca = nullptr;
    std::string joinToken = "fake01.the-fake-rm-join-token-secret";

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

// Plays the RM's agent port: enrolls nodes that bring the join token, and serves GET /ca.pem and
// the package files under /repository/.
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
    int CreateJoinToken(_rm__CreateJoinToken*, _rm__CreateJoinTokenResponse&) override {
        return refuse();
    }
    int ListJoinTokens(_rm__ListJoinTokens*, _rm__ListJoinTokensResponse&) override {
        return refuse();
    }
    int RevokeJoinToken(_rm__RevokeJoinToken*, _rm__RevokeJoinTokenResponse&) override {
        return refuse();
    }
    int RemoveNode(_rm__RemoveNode*, _rm__RemoveNodeResponse&) override { return refuse(); }
    int EnrollNode(_rm__EnrollNode* request, _rm__EnrollNodeResponse& response) override {
        std::lock_guard lock(state_->mutex);
        if (!request || request->token != state_->joinToken)
            return soap_sender_fault(soap, "the join token is not valid here", nullptr);
        try {
            response.certificate = state_->ca->issue(request->csr);
        } catch (const std::exception& e) {
            return soap_sender_fault(soap, soap_strdup(soap, e.what()), nullptr);
        }
        response.caCertificate = state_->ca->caPem();
        state_->enrolled.push_back(pki::parseCsr(request->csr).commonName);
        return SOAP_OK;
    }
    int RenewNodeCertificate(_rm__RenewNodeCertificate* request,
                             _rm__RenewNodeCertificateResponse& response) override {
        if (!request) return refuse();
        response.certificate = state_->ca->issue(request->csr);
        response.caCertificate = state_->ca->caPem();
        return SOAP_OK;
    }
    int RegisterNode(_rm__RegisterNode* request, _rm__RegisterNodeResponse& response) override {
        std::lock_guard lock(state_->mutex);
        state_->registrations++;
        if (request) state_->registeredEndpoint = request->endpoint;
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
    // Serves the files of `repository` under /repository/, as the real RM does on its agent port.
    ManagerSink(const FakeScopeCa& ca, fs::path repository = {})
        : logger_("fake-rm", rm::common::LogLevel::error), state(std::make_shared<SinkState>()) {
        state->ca = &ca;
        rm::common::ServerOptions options;
        options.threads = 4;
        options.tls = {ca.rmKeyFile().string(), ca.caFile().string(), {}, false};
        rm::common::HttpRouter router;
        std::string caPem = ca.caPem();
        router.exact("/ca.pem", [caPem](const rm::common::HttpRequest&) {
            return rm::common::HttpResponse::text(200, caPem);
        });
        router.prefix("/repository/", [repository](const rm::common::HttpRequest& request) {
            fs::path file = repository / fs::path(request.path).filename();
            if (repository.empty() || !fs::is_regular_file(file))
                return rm::common::HttpResponse::text(404, "not found\n");
            rm::common::HttpResponse r;  // byte for byte (HttpResponse::text ends with a newline)
            r.contentType = "application/gzip";
            r.body = readFile(file);
            return r;
        });
        server_ = std::make_unique<rm::common::SoapServer>(
            options,
            std::make_unique<rm::common::GeneratedEndpoint<FakeManager>>(
                std::make_unique<FakeManager>(state)),
            std::move(router), logger_);
        server_->start();
    }
    ~ManagerSink() { server_->stop(); }
    std::string url() const { return server_->url(); }
    // Where an agent finds a package file of the repository.
    std::string packageUrl(const std::string& file) const { return url() + "/repository/" + file; }
    // The node-agent arguments that enroll with this fake RM.
    std::vector<std::string> joinArgs() const {
        return {"--manager",      url(),         "--join-token",
                state->joinToken, "--ca-sha256", state->ca->caSha256()};
    }

  private:
    static std::string readFile(const fs::path& file) {
        std::ifstream in(file, std::ios::binary);
        return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    }
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

// The Deployer port type of one agent, as the RM drives it: over TLS, with the RM's certificate.
class AgentClient {
  public:
    AgentClient(std::string url, RmCredentials as) : url_(std::move(url)), as_(std::move(as)) {
        rm::common::ServerOptions limits;
        rm::common::applyXmlLimits(proxy_.soap, limits);
        rm::testing::callAgentAs(proxy_.soap, as_);
    }

    // Returns "" when accepted, else the fault string. Package URLs are the sink's, or
    // `urlOverride` when given.
    std::string deploy(const std::string& callbackId, const std::vector<DeployItem>& items,
                       const ManagerSink& files, const std::string& callback,
                       const std::string& shaOverride = "", const std::string& urlOverride = "") {
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
            p->URL = urlOverride.empty() ? files.packageUrl(item.package.file) : urlOverride;
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
        auto state = rm::testing::getNodeState(url_, as_);
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
    RmCredentials as_;
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
    DaemonProcess rmd(
        "resource-manager",
        {"--scope", kScope, "--listen", "127.0.0.1:0", "--agent-listen", "127.0.0.1:0",
         "--state-dir", (dir.path() / "rm").string(), "--repository", dir.path().string(),
         "--node-lost-after-ms", "1200", "--heartbeat-interval-ms", "200"},
        dir.path() / "rm.log");
    rm::client::RmClient client({rmd.url(), "", "", 10, "", ""});
    auto agent =
        startAgent(dir.path() / "agent", rm::testing::joinArgs(rmd), dir.path() / "agent.log");

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
    BOOST_TEST(agent->url().rfind("https://", 0) == 0u, agent->url());
    BOOST_TEST(first.labels.size() == 1u);

    agent->kill9();
    BOOST_REQUIRE(waitUntil([&] { return findNode()->liveness == "LOST"; }, 8s));

    // Enrolled already: it comes back with its kept certificate, no token needed.
    agent =
        startAgent(dir.path() / "agent", {"--manager", rmd.agentUrl()}, dir.path() / "agent.log");
    BOOST_REQUIRE(waitUntil([&] { return findNode()->liveness == "ALIVE"; }, 8s));
    auto again = *findNode();
    BOOST_TEST(again.id == first.id);
    BOOST_TEST(again.endpoint == agent->url());
    BOOST_TEST(client.listNodes().size() == 1u);
    BOOST_TEST(agent->terminate() == 0);
}

BOOST_AUTO_TEST_CASE(keeps_retrying_while_the_manager_is_down) {
    TempDir dir("agent-nomanager");
    FakeScopeCa ca;
    std::string managerUrl;
    {
        // Enrolled once while its RM ran...
        ManagerSink sink(ca);
        managerUrl = sink.url();
        auto agent = startAgent(dir.path() / "agent", sink.joinArgs(), dir.path() / "first.log");
        BOOST_REQUIRE_MESSAGE(waitUntil(
                                  [&] {
                                      std::lock_guard lock(sink.state->mutex);
                                      return sink.state->registrations > 0;
                                  },
                                  10s),
                              agent->log());
        BOOST_TEST(agent->terminate() == 0);
    }
    // ...then started while nothing listens on the manager URL: it must stay up and serve anyway.
    auto agent =
        startAgent(dir.path() / "agent", {"--manager", managerUrl}, dir.path() / "agent.log");
    std::this_thread::sleep_for(1500ms);
    BOOST_TEST(agent->running());
    auto as = ca.asRm();
    auto health = rm::testing::httpsRequest(agent->url(), "GET", "/healthz", as.keyFile, as.caFile);
    BOOST_TEST(health.status == 200);
    auto engine = rm::testing::httpsRequest(agent->url(), "GET", "/engine", as.keyFile, as.caFile);
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
    FakeScopeCa ca;
    ManagerSink sink(ca, repo);
    sink.state->refuseReports = 2;  // the outbox must retry until acknowledged
    auto agent = startAgent(dir.path() / "agent", sink.joinArgs(), dir.path() / "agent.log");
    AgentClient node(agent->url(), ca.asRm());
    BOOST_REQUIRE_MESSAGE(waitUntil(
                              [&] {
                                  std::lock_guard lock(sink.state->mutex);
                                  return sink.state->registrations > 0;
                              },
                              10s),
                          agent->log());
    // Reports go to the RM the node enrolled with, whatever callback a Deploy names.
    const std::string elsewhere = "http://127.0.0.1:1/not-the-rm";

    // Bad input is refused with InvalidRequestFault and changes nothing.
    BOOST_TEST(node.deploy("bad id!", {{stubs, {}}}, sink, elsewhere).find("InvalidRequestFault") ==
               0u);
    BOOST_TEST(node.deploy("cb-bad", {{stubs, {}}}, sink, elsewhere, "abc").find("SHA256") !=
               std::string::npos);
    // Packages come from the enrolled RM only.
    BOOST_TEST(node.deploy("cb-bad", {{stubs, {}}}, sink, elsewhere, "",
                           "http://127.0.0.1:1/repository/" + stubs.file)
                   .find("is not on the Resource Manager") != std::string::npos);
    BOOST_TEST(node.state().first.empty());

    std::vector<DeployItem> request{{stubs, {}},
                                    {service, {"Notifier-stubs"}},
                                    {broken, {}},
                                    {dependsOnBroken, {"Broken-Install"}},
                                    {docs, {}}};
    BOOST_REQUIRE_EQUAL(node.deploy("cb-1", request, sink, elsewhere), "");
    BOOST_REQUIRE_MESSAGE(waitUntil([&] { return sink.state->closed("cb-1").has_value(); }, 40s),
                          agent->log());
    auto closed = *sink.state->closed("cb-1");
    auto states = statesOf(closed);
    BOOST_TEST(states["Notifier-stubs"] == "ACTIVATED", messageOf(closed, "Notifier-stubs"));
    BOOST_TEST(states["Notifier-service"] == "RUNNING", messageOf(closed, "Notifier-service"));
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
    {
        std::lock_guard lock(sink.state->mutex);
        BOOST_TEST(sink.state->enrolled.size() == 1u);
        BOOST_TEST(closed.nodeId == sink.state->enrolled.at(0));
        BOOST_TEST(sink.state->registeredEndpoint == agent->url());
    }

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
    BOOST_REQUIRE_EQUAL(node.deploy("cb-1", request, sink, elsewhere), "");
    std::this_thread::sleep_for(700ms);
    BOOST_TEST(sink.state->of("cb-1").size() == before);
    BOOST_TEST(node.state().second["Notifier-service"].pid == pid);

    // The same packages under a new callbackID: already there.
    BOOST_REQUIRE_EQUAL(
        node.deploy("cb-2", {{stubs, {}}, {service, {"Notifier-stubs"}}}, sink, elsewhere), "");
    BOOST_REQUIRE(waitUntil([&] { return sink.state->closed("cb-2").has_value(); }, 10s));
    auto again = statesOf(*sink.state->closed("cb-2"));
    BOOST_TEST(again["Notifier-stubs"] == "ALREADYDEPLOYED");
    BOOST_TEST(again["Notifier-service"] == "ALREADYDEPLOYED");

    // The stubs are still needed by the service.
    BOOST_REQUIRE_EQUAL(node.undeploy("cb-3", {stubs}, elsewhere), "");
    BOOST_REQUIRE(waitUntil([&] { return sink.state->closed("cb-3").has_value(); }, 10s));
    BOOST_TEST(statesOf(*sink.state->closed("cb-3"))["Notifier-stubs"] == "NOTUNDEPLOYABLE");

    // An Undeploy naming no package is refused: "everything" is never implied.
    BOOST_TEST(node.undeploy("cb-all", {}, elsewhere).find("InvalidRequestFault") == 0u);
    BOOST_TEST(node.state().first.size() == 4u);

    // Everything that is deployed, named (the service before the library it needs).
    BOOST_REQUIRE_EQUAL(node.undeploy("cb-4", {service, stubs, broken, docs}, elsewhere), "");
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
    FakeScopeCa ca;
    ManagerSink sink(ca, repo);
    fs::path root = dir.path() / "agent";
    fs::path container = root / "services" / "Slow" / "Slow-service";
    auto agent = startAgent(root, sink.joinArgs(), dir.path() / "agent.log");
    BOOST_REQUIRE_EQUAL(
        AgentClient(agent->url(), ca.asRm()).deploy("cb-slow", {{slow, {}}}, sink, sink.url()), "");

    // Killed while Install runs (the container is unpacked, Install has not finished).
    BOOST_REQUIRE(waitUntil([&] { return fs::exists(container / "installs"); }, 10s));
    agent->kill9();
    BOOST_TEST(!sink.state->closed("cb-slow").has_value());

    // Restarts need no token: the node keeps its certificate.
    agent = startAgent(root, {"--manager", sink.url()}, dir.path() / "agent.log");
    AgentClient node(agent->url(), ca.asRm());
    BOOST_REQUIRE_MESSAGE(waitUntil([&] { return sink.state->closed("cb-slow").has_value(); }, 20s),
                          agent->log());
    BOOST_TEST(statesOf(*sink.state->closed("cb-slow"))["Slow-service"] == "RUNNING");
    auto running = processesIn(container, "3601");
    BOOST_REQUIRE_EQUAL(running.size(), 1u);
    auto instance = node.state().second["Slow-service"];
    BOOST_TEST(instance.pid == running[0]);

    // Killed while the service runs: the next agent adopts it rather than starting a second one.
    agent->kill9();
    agent = startAgent(root, {"--manager", sink.url()}, dir.path() / "agent.log");
    AgentClient restarted(agent->url(), ca.asRm());
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
    {
        std::lock_guard lock(sink.state->mutex);
        BOOST_TEST(sink.state->enrolled.size() == 1u);  // enrolled once, for all three runs
    }
    BOOST_TEST(agent->terminate() == 0);
}

BOOST_AUTO_TEST_CASE(hollow_nodes_register_and_deploy_without_files) {
    TempDir dir("agent-hollow");
    fs::path repo = dir.path() / "repo";
    for (const char* sample :
         {"is-notifier-stubs", "is-notifier-service", "broken-install", "depends-on-broken"})
        packSample(sample, repo);
    DaemonProcess rmd("resource-manager",
                      {"--scope", kScope, "--listen", "127.0.0.1:0", "--agent-listen",
                       "127.0.0.1:0", "--state-dir", (dir.path() / "rm").string(), "--repository",
                       repo.string(), "--heartbeat-interval-ms", "300"},
                      dir.path() / "rm.log");
    rm::client::RmClient client({rmd.url(), "", "", 10, "", ""});
    fs::path root = dir.path() / "hollow";
    // One token (of unlimited uses) enrolls every hollow node.
    std::vector<std::string> args{"--name", "sim",      "--hollow",    "3",      "--hollow-step-ms",
                                  "20",     "--listen", "127.0.0.1:0", "--root", root.string()};
    auto join = rm::testing::joinArgs(rmd);
    args.insert(args.end(), join.begin(), join.end());
    auto hollow = std::make_unique<DaemonProcess>("node-agent", args, dir.path() / "hollow.log");
    BOOST_REQUIRE_MESSAGE(waitUntil([&] { return client.listNodes().size() == 3u; }, 10s),
                          hollow->log());
    std::map<std::string, rm::client::NodeRow> nodes;
    for (const auto& n : client.listNodes()) nodes[n.name] = n;
    BOOST_REQUIRE(nodes.contains("sim-0001") && nodes.contains("sim-0002") &&
                  nodes.contains("sim-0003"));
    BOOST_TEST(nodes["sim-0001"].endpoint == hollow->url());
    BOOST_TEST(nodes["sim-0001"].id != nodes["sim-0002"].id);
    for (const auto& [name, node] : nodes)
        BOOST_TEST(fs::exists(root / "pki" / name / "node.pem"), name << " keeps its certificate");

    // Deployed through the RM on sim-0002: the simulated steps report back to it.
    rm::client::ScopeRequest request;
    request.targetScope = kScope;
    request.services = {{"InformationSystem", "IS-Notifier", {}, {}, {}, std::string("sim-0002")},
                        {"Samples", "Broken-Install", {}, {}, {}, std::string("sim-0002")}};
    auto report = rm::testing::waitClosed(client, client.addResources(request), 30s);
    BOOST_REQUIRE_MESSAGE(report.ghns.size() == 1u, hollow->log());
    BOOST_TEST(report.ghns[0].id == nodes["sim-0002"].id);
    BOOST_TEST(report.ghns[0].nodeStatus == "CLOSED");
    std::map<std::string, std::string> states;
    for (const auto& p : report.ghns[0].packages) states[p.packageName] = p.status;
    BOOST_TEST(states["Notifier-stubs"] == "ACTIVATED");
    BOOST_TEST(states["Notifier-service"] == "ACTIVATED");  // simulated: nothing runs
    BOOST_TEST(states["Broken-Install"] == "FAILED");
    BOOST_TEST(states["Depends-On-Broken"] == "SKIPPED");
    BOOST_TEST(report.sessionExitStatus.value_or("-") == "FAILED");  // Broken-Install, on purpose
    auto rmSide = rm::testing::rmCredentials(dir.path() / "rm");
    auto second = rm::testing::getNodeState(nodes["sim-0002"].endpoint, rmSide).packages;
    BOOST_TEST(second.contains("Notifier-stubs"));
    BOOST_TEST(second.contains("Notifier-service"));
    BOOST_TEST(!second.contains("Depends-On-Broken"));
    BOOST_TEST(rm::testing::getNodeState(nodes["sim-0001"].endpoint, rmSide).packages.empty());
    BOOST_TEST(!fs::exists(root / "services"));

    // Restarted (no token needed), every hollow node keeps its ID.
    hollow->kill9();
    hollow = std::make_unique<DaemonProcess>(
        "node-agent",
        std::vector<std::string>{"--name", "sim", "--hollow", "3", "--listen", "127.0.0.1:0",
                                 "--manager", rmd.agentUrl(), "--root", root.string()},
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
