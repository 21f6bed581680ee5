// The node protocol under attack (issue 11, SPEC section 10): a real resource-manager and a
// real, enrolled node-agent on loopback, and an attacker on the same network who can reach both
// ports, holds nothing, holds a node certificate of its own (a rogue node enrolled with a valid
// token), or even the real node's certificate. Every attack must be refused and change nothing.
#include <sqlite3.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>

#include "common/pki.h"
#include "common/time_util.h"
#include "common/soap_server.h"
#include "common/tls.h"
#include "rm_test_helpers.h"
#include "soapDeployerBindingProxy.h"
#include "soapResourceManagerBindingProxy.h"

using namespace rm::testing;
namespace pki = rm::common::pki;
namespace fs = std::filesystem;

namespace {

std::string faultText(struct soap* soap) {
    const char* s = soap_fault_string(soap);
    const char* d = soap_fault_detail(soap);
    return std::string(s ? s : "") + " " + (d ? d : "");
}

// A gSOAP client of the agent's Deployer port or the RM's port, as `tls` presents itself.
template <class Proxy>
std::unique_ptr<Proxy> proxyAs(const rm::common::TlsClientOptions& tls) {
    auto proxy = std::make_unique<Proxy>();
    rm::common::ServerOptions limits;
    limits.ioTimeout = std::chrono::seconds(5);
    rm::common::applyXmlLimits(proxy->soap, limits);
    rm::common::configureTlsClient(proxy->soap, tls);
    return proxy;
}

// Key + certificate of an identity the attacker obtained, in one PEM file.
struct Identity {
    fs::path keyFile;
    std::string id;
};

// An RM with the sample repository and one enrolled agent that has registered.
struct EnrolledScope {
    RmInstance rm{{"--node-lost-after-ms", "2000", "--heartbeat-interval-ms", "300"}};
    TempDir dir{"node-sec"};
    std::unique_ptr<DaemonProcess> agent;
    std::string nodeId;
    std::string agentEndpoint;

    EnrolledScope() {
        auto samples = binDir().parent_path() / "repository";
        for (const auto& entry : fs::recursive_directory_iterator(samples)) {
            if (!entry.is_regular_file()) continue;
            auto target = rm.repository() / fs::relative(entry.path(), samples);
            fs::create_directories(target.parent_path());
            fs::copy_file(entry.path(), target);
        }
        rm.restart();
        fs::permissions(dir.path(), fs::perms(0711), fs::perm_options::replace);
        agent = startAgent("node1", joinArgs(rm.daemon()));
        waitRegistered();
    }

    ~EnrolledScope() {
        try {
            if (agent) agent->terminate();
        } catch (const std::exception&) {
        }
    }

    fs::path agentRoot() const { return dir.path() / "agent"; }
    Identity realNode() const { return {agentRoot() / "pki" / "local" / "node.pem", nodeId}; }
    Identity manager() const { return {rm.rmKeyFile(), pki::kRmIdentity}; }

    std::unique_ptr<DaemonProcess> startAgent(const std::string& name, std::vector<std::string> join,
                                              const fs::path& root = {}) {
        // Services stop with the agent: a test leaves nothing running behind it.
        std::vector<std::string> args{"--name", name, "--listen", "127.0.0.1:0", "--root",
                                      (root.empty() ? agentRoot() : root).string(),
                                      "--keep-processes-on-exit", "false"};
        args.insert(args.end(), join.begin(), join.end());
        return std::make_unique<DaemonProcess>("node-agent", args, dir.path() / (name + ".log"),
                                               std::chrono::seconds(30));
    }

    // Runs an agent that must not start (bounded: 30 s); returns its exit status.
    int startAgentExpectingExit(const std::string& name, std::vector<std::string> join) {
        std::vector<std::string> args{"30", (binDir() / "node-agent").string(), "--name", name,
                                      "--listen", "127.0.0.1:0", "--root", (dir.path() / name).string()};
        args.insert(args.end(), join.begin(), join.end());
        return runProgram("/usr/bin/timeout", args, dir.path() / (name + ".log"));
    }

    void waitRegistered() {
        auto client = rm.client();
        for (int i = 0; i < 200; ++i) {
            auto nodes = client->listNodes();
            if (!nodes.empty() && nodes.front().liveness == "ALIVE") {
                nodeId = nodes.front().id;
                agentEndpoint = nodes.front().endpoint;
                return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        BOOST_FAIL("the enrolled agent did not register; agent log:\n" + agent->log());
    }

    // A rogue node: enrolls with a valid join token of its own under `id`.
    Identity rogue(const std::string& id) {
        auto token = createJoinToken(rm.url());
        auto proxy = proxyAs<ResourceManagerBindingProxy>({{}, rm.caFile().string(), {}, pki::kRmIdentity});
        std::string key = pki::generateKeyPem();
        _rm__EnrollNode request;
        request.token = token.token;
        request.csr = pki::makeCsrPem(key, id);
        _rm__EnrollNodeResponse response;
        int rc = proxy->EnrollNode(rm.agentUrl().c_str(), nullptr, &request, response);
        BOOST_REQUIRE_MESSAGE(rc == SOAP_OK, "rogue enrollment failed: " + faultText(proxy->soap));
        fs::path file = dir.path() / (id + ".pem");
        std::ofstream(file) << key << response.certificate;
        return {file, id};
    }

    rm::common::TlsClientOptions as(const Identity& who, const std::string& expectPeer) const {
        return {who.keyFile.string(), rm.caFile().string(), {}, expectPeer};
    }

    // The callback IDs of the RM's deployments (read from its database, as an insider could).
    std::vector<std::string> callbackIds() const {
        std::vector<std::string> ids;
        sqlite3* db = nullptr;
        sqlite3_open_v2((rm.stateDir() / "rm.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
        sqlite3_stmt* stmt = nullptr;
        sqlite3_prepare_v2(db, "SELECT callback_id FROM deployments", -1, &stmt, nullptr);
        while (sqlite3_step(stmt) == SQLITE_ROW)
            ids.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)));
        sqlite3_finalize(stmt);
        sqlite3_close(db);
        return ids;
    }
};

// A Deploy an attacker would like the agent to run: its own package and callback.
_rm__Deploy evilDeploy(struct soap* soap, const std::string& url) {
    _rm__Deploy request;
    request.callbackID = "evil-1";
    request.targetScope = kScope;
    request.callbackEndpoint = "http://127.0.0.1:1/";
    auto* p = soap_new_rm__DeployPackage(soap);
    p->ServiceClass = "Evil";
    p->ServiceName = "Payload";
    p->ServiceVersion = "1.0";
    p->PackageName = "payload";
    p->PackageVersion = "1.0";
    p->URL = url;
    p->SHA256 = std::string(64, 'a');
    request.package.push_back(p);
    return request;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(node_security)

BOOST_AUTO_TEST_CASE(deploy_runs_only_for_the_rm_certificate) {
    EnrolledScope scope;
    const std::string evilUrl = scope.rm.agentUrl() + "/repository/payload.tar.gz";

    // Plain HTTP to the agent's port: it speaks TLS only, nothing is served.
    auto http = "http://" + scope.agentEndpoint.substr(std::string("https://").size());
    auto plain = rawExchange(http, httpPost(http, envelope("<rm:GetNodeState/>")), std::chrono::seconds(3));
    BOOST_TEST(plain.status != 200);

    // TLS without a client certificate: the handshake is refused.
    {
        auto proxy = proxyAs<DeployerBindingProxy>({{}, scope.rm.caFile().string(), {}, scope.nodeId});
        auto request = evilDeploy(proxy->soap, evilUrl);
        _rm__DeployResponse response;
        BOOST_TEST(proxy->Deploy(scope.agentEndpoint.c_str(), nullptr, &request, response) != SOAP_OK);
    }
    // A certificate of the scope CA, but a node's, not the RM's.
    {
        auto rogue = scope.rogue("rogue-node-1");
        auto proxy = proxyAs<DeployerBindingProxy>(scope.as(rogue, scope.nodeId));
        auto request = evilDeploy(proxy->soap, evilUrl);
        _rm__DeployResponse response;
        BOOST_TEST(proxy->Deploy(scope.agentEndpoint.c_str(), nullptr, &request, response) != SOAP_OK);
        BOOST_TEST(faultText(proxy->soap).find("only from the Resource Manager") != std::string::npos,
                   faultText(proxy->soap));
        _rm__Undeploy undeploy;
        undeploy.callbackID = "evil-2";
        undeploy.targetScope = kScope;
        undeploy.callbackEndpoint = "http://127.0.0.1:1/";
        _rm__UndeployResponse undeployed;
        BOOST_TEST(proxy->Undeploy(scope.agentEndpoint.c_str(), nullptr, &undeploy, undeployed) != SOAP_OK);
        _rm__GetNodeState state;
        _rm__GetNodeStateResponse stateResponse;
        BOOST_TEST(proxy->GetNodeState(scope.agentEndpoint.c_str(), nullptr, &state, stateResponse) != SOAP_OK);
    }
    // Nothing was journaled: the agent never heard of evil-1.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    std::string log = scope.agent->log();
    BOOST_TEST(log.find("callback=evil-1") == std::string::npos, log);
    BOOST_TEST(log.find("event=access_denied") != std::string::npos);
    BOOST_TEST(!fs::exists(scope.agentRoot() / "services" / "Payload"));
}

BOOST_AUTO_TEST_CASE(even_the_rm_cannot_make_an_agent_fetch_elsewhere_or_wipe_it) {
    EnrolledScope scope;
    auto proxy = proxyAs<DeployerBindingProxy>(scope.as(scope.manager(), scope.nodeId));
    // A package URL on another origin (SSRF): refused before anything is journaled.
    auto request = evilDeploy(proxy->soap, "http://127.0.0.1:9/x.tar.gz");
    _rm__DeployResponse response;
    BOOST_TEST(proxy->Deploy(scope.agentEndpoint.c_str(), nullptr, &request, response) != SOAP_OK);
    BOOST_TEST(faultText(proxy->soap).find("enrolled with") != std::string::npos, faultText(proxy->soap));
    // An Undeploy naming nothing is a fault, never "everything".
    _rm__Undeploy undeploy;
    undeploy.callbackID = "wipe-1";
    undeploy.targetScope = kScope;
    undeploy.callbackEndpoint = scope.rm.agentUrl();
    _rm__UndeployResponse undeployed;
    BOOST_TEST(proxy->Undeploy(scope.agentEndpoint.c_str(), nullptr, &undeploy, undeployed) != SOAP_OK);
    BOOST_TEST(faultText(proxy->soap).find("at least one package") != std::string::npos, faultText(proxy->soap));
    // The agent does talk to the RM's certificate.
    _rm__GetNodeState state;
    _rm__GetNodeStateResponse stateResponse;
    BOOST_TEST(proxy->GetNodeState(scope.agentEndpoint.c_str(), nullptr, &state, stateResponse) == SOAP_OK);
}

BOOST_AUTO_TEST_CASE(node_operations_need_that_nodes_certificate) {
    EnrolledScope scope;
    auto registerAs = [&](ResourceManagerBindingProxy& proxy, const std::string& url, const std::string& id) {
        _rm__RegisterNode request;
        request.ID = id;
        request.name = "AAA-fake";
        request.endpoint = "https://127.0.0.1:9/";
        request.capacity = soap_new_rm__NodeCapacity(proxy.soap);
        request.capacity->maxInstances = 1000;
        _rm__RegisterNodeResponse response;
        return proxy.RegisterNode(url.c_str(), nullptr, &request, response);
    };
    // On the operator port: not served at all.
    {
        ResourceManagerBindingProxy proxy;
        BOOST_TEST(registerAs(proxy, scope.rm.url(), "fake-node") != SOAP_OK);
        BOOST_TEST(faultText(proxy.soap).find("agent port") != std::string::npos, faultText(proxy.soap));
    }
    // On the agent port without a certificate.
    {
        auto proxy = proxyAs<ResourceManagerBindingProxy>({{}, scope.rm.caFile().string(), {}, pki::kRmIdentity});
        BOOST_TEST(registerAs(*proxy, scope.rm.agentUrl(), "fake-node") != SOAP_OK);
        BOOST_TEST(faultText(proxy->soap).find("node certificate") != std::string::npos, faultText(proxy->soap));
    }
    // A rogue node taking over the real node's ID (and its deployments).
    auto rogue = scope.rogue("rogue-node-2");
    {
        auto proxy = proxyAs<ResourceManagerBindingProxy>(scope.as(rogue, pki::kRmIdentity));
        BOOST_TEST(registerAs(*proxy, scope.rm.agentUrl(), scope.nodeId) != SOAP_OK);
        BOOST_TEST(faultText(proxy->soap).find("only speak for itself") != std::string::npos, faultText(proxy->soap));
        _rm__Heartbeat beat;
        beat.ID = scope.nodeId;
        beat.sequence = 1;
        beat.summary = soap_new_rm__NodeSummary(proxy->soap);
        _rm__HeartbeatResponse beatResponse;
        BOOST_TEST(proxy->Heartbeat(scope.rm.agentUrl().c_str(), nullptr, &beat, beatResponse) != SOAP_OK);
    }
    auto nodes = scope.rm.client()->listNodes();
    BOOST_TEST(nodes.size() == 1u);
    BOOST_TEST(nodes.front().id == scope.nodeId);
    BOOST_TEST(nodes.front().endpoint == scope.agentEndpoint);
    // The same ID cannot be enrolled twice, even with a valid token.
    auto token = createJoinToken(scope.rm.url());
    auto proxy = proxyAs<ResourceManagerBindingProxy>({{}, scope.rm.caFile().string(), {}, pki::kRmIdentity});
    _rm__EnrollNode enroll;
    enroll.token = token.token;
    enroll.csr = pki::makeCsrPem(pki::generateKeyPem(), scope.nodeId);
    _rm__EnrollNodeResponse enrolled;
    BOOST_TEST(proxy->EnrollNode(scope.rm.agentUrl().c_str(), nullptr, &enroll, enrolled) != SOAP_OK);
    BOOST_TEST(faultText(proxy->soap).find("already enrolled") != std::string::npos, faultText(proxy->soap));
    // Nor can anyone enroll as the RM itself.
    enroll.csr = pki::makeCsrPem(pki::generateKeyPem(), pki::kRmIdentity);
    BOOST_TEST(proxy->EnrollNode(scope.rm.agentUrl().c_str(), nullptr, &enroll, enrolled) != SOAP_OK);
}

BOOST_AUTO_TEST_CASE(forged_and_late_reports_change_nothing) {
    EnrolledScope scope;
    auto client = scope.rm.client();
    rm::client::ScopeRequest add;
    add.targetScope = kScope;
    add.services.push_back({"InformationSystem", "IS-Notifier", {}, {}, {}, {}});
    std::string id = client->addResources(add);
    auto report = waitClosed(*client, id, std::chrono::seconds(60));
    BOOST_REQUIRE(report.sessionExitStatus.value_or("") == "SUCCESS");
    std::string before = client->getReport(id);
    auto callbacks = scope.callbackIds();
    BOOST_REQUIRE(!callbacks.empty());
    // Unguessable: not derivable from the public report ID.
    BOOST_TEST(callbacks.front() != id + "-1");
    BOOST_TEST(callbacks.front().size() > id.size() + 10);

    auto forge = [&](const Identity& as, const std::string& nodeId, const std::string& callback) {
        auto proxy = proxyAs<ResourceManagerBindingProxy>(scope.as(as, pki::kRmIdentity));
        _rm__SendReport request;
        request.callbackID = callback;
        request.ID = nodeId;
        request.sequence = 1000;
        request.report = soap_new_rm__NodeReport(proxy->soap);
        request.report->Status = "CLOSED";
        request.report->Packages = soap_new_rm__PackageReportList(proxy->soap);
        auto* p = soap_new_rm__PackageReport(proxy->soap);
        p->ServiceClass = "InformationSystem";
        p->ServiceName = "IS-Notifier";
        p->ServiceVersion = "1.00.00";
        p->PackageName = "Notifier-service";
        p->PackageVersion = "1.01.00";
        p->Status = "FAILED";
        p->Message = "forged";
        request.report->Packages->Package.push_back(p);
        _rm__SendReportResponse response;
        int rc = proxy->SendReport(scope.rm.agentUrl().c_str(), nullptr, &request, response);
        return std::make_pair(rc, faultText(proxy->soap));
    };
    // A rogue node reporting as the real node, then as itself with the derivable old-style ID.
    auto rogue = scope.rogue("rogue-node-3");
    auto [rc1, why1] = forge(rogue, scope.nodeId, callbacks.front());
    BOOST_TEST(rc1 != SOAP_OK);
    BOOST_TEST(why1.find("only speak for itself") != std::string::npos, why1);
    auto [rc2, why2] = forge(rogue, rogue.id, id + "-1");
    BOOST_TEST(rc2 != SOAP_OK);
    // The real node's own certificate, but the deployment is closed: its report is final.
    auto [rc3, why3] = forge(scope.realNode(), scope.nodeId, callbacks.front());
    BOOST_TEST(rc3 != SOAP_OK);
    BOOST_TEST(why3.find("closed") != std::string::npos, why3);

    BOOST_TEST(client->getReport(id) == before);
    auto resources = client->listResources(std::string("RunningInstance"));
    for (const auto& r : resources) BOOST_TEST(r.node == scope.nodeId);
}

BOOST_AUTO_TEST_CASE(enrollment_checks_pin_and_token) {
    EnrolledScope scope;
    // A wrong pin: the agent refuses to send its token and stops with exit status 2.
    auto token = createJoinToken(scope.rm.url(), 1);
    auto wrongPin = joinArgs(token);
    wrongPin.back() = std::string(64, '0');
    {
        auto agent = scope.startAgentExpectingExit("pin", wrongPin);
        BOOST_TEST(agent == 2);
    }
    // The RM never saw an enrollment attempt with that token.
    auto enrollmentsWith = [&](const std::string& tokenId) {
        std::istringstream lines(scope.rm.daemon().log());
        int count = 0;
        for (std::string line; std::getline(lines, line);) {
            bool enrollment = line.find("event=node_enrolled") != std::string::npos ||
                              line.find("event=enrollment_refused") != std::string::npos;
            if (enrollment && line.find("token_id=" + tokenId) != std::string::npos) ++count;
        }
        return count;
    };
    BOOST_TEST(enrollmentsWith(token.token.substr(0, 6)) == 0);
    BOOST_TEST(readText(scope.dir.path() / "pin.log").find("refusing to send the join token") != std::string::npos,
               readText(scope.dir.path() / "pin.log"));
    // The token was not used: it still enrolls one agent, and only one.
    {
        auto first = scope.startAgent("second", joinArgs(token), scope.dir.path() / "second");
        BOOST_TEST(first->running());
    }
    BOOST_TEST(scope.startAgentExpectingExit("third", joinArgs(token)) == 2);
    // A revoked token enrolls nobody.
    auto revoked = createJoinToken(scope.rm.url());
    BOOST_TEST(runProgram("rmctl", {"--manager", scope.rm.url(), "token", "revoke", revoked.token.substr(0, 6)}) == 0);
    BOOST_TEST(scope.startAgentExpectingExit("fourth", joinArgs(revoked)) == 2);
    // Tokens and their secrets never reach the logs.
    for (const auto& file : fs::directory_iterator(scope.dir.path())) {
        if (file.path().extension() != ".log") continue;
        std::string text = readText(file.path());
        BOOST_TEST(text.find(token.token) == std::string::npos, file.path());
        BOOST_TEST(text.find(revoked.token) == std::string::npos, file.path());
    }
    BOOST_TEST(scope.rm.daemon().log().find(token.token.substr(7)) == std::string::npos);
    // Not enrolled and no token: exit 2 with the command that fixes it.
    fs::path fresh = scope.dir.path() / "fresh";
    BOOST_TEST(runProgram("node-agent", {"--name", "fresh", "--listen", "127.0.0.1:0", "--manager",
                                         scope.rm.agentUrl(), "--root", fresh.string()}) == 2);
}

BOOST_AUTO_TEST_CASE(a_removed_node_is_refused_everywhere) {
    EnrolledScope scope;
    BOOST_TEST(runProgram("rmctl", {"--manager", scope.rm.url(), "node", "remove", "node1"}) == 0);
    // Its downloads are refused at once, and so are its heartbeats: the RM soon sees it LOST.
    auto download = httpsRequest(scope.rm.agentUrl(), "GET", "/repository/anything.tar.gz",
                                 scope.realNode().keyFile.string(), scope.rm.caFile().string());
    BOOST_TEST(download.status == 403);
    auto client = scope.rm.client();
    bool lost = false;
    for (int i = 0; i < 100 && !lost; ++i) {
        lost = client->listNodes().front().liveness == "LOST";
        if (!lost) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    BOOST_TEST(lost);
    BOOST_TEST(scope.rm.daemon().log().find("event=node_removed") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(node_certificates_are_renewed_before_they_expire) {
    // 30 s certificates: renewed at 20 s; the node must still be served well past 30 s.
    RmInstance rm{{"--node-cert-ttl", "30s", "--heartbeat-interval-ms", "300", "--node-lost-after-ms", "2000"}};
    TempDir dir{"renew"};
    fs::permissions(dir.path(), fs::perms(0711), fs::perm_options::replace);
    std::vector<std::string> args{"--name", "renewing", "--listen", "127.0.0.1:0", "--root",
                                  (dir.path() / "agent").string()};
    auto join = joinArgs(rm.daemon());
    args.insert(args.end(), join.begin(), join.end());
    DaemonProcess agent("node-agent", args, dir.path() / "agent.log", std::chrono::seconds(30));
    auto first = pki::inspectCertificate(readText(dir.path() / "agent" / "pki" / "local" / "node.pem"));
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(40);
    while (std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::seconds(1));
        if (rm::common::nowMillis() > first.notAfterMs + 3000) break;
    }
    BOOST_TEST(agent.log().find("event=node_certificate_renewed") != std::string::npos, agent.log());
    auto now = pki::inspectCertificate(readText(dir.path() / "agent" / "pki" / "local" / "node.pem"));
    BOOST_TEST(now.serialHex != first.serialHex);
    BOOST_TEST(rm::common::nowMillis() > first.notAfterMs);
    auto nodes = rm.client()->listNodes();
    BOOST_REQUIRE(nodes.size() == 1u);
    BOOST_TEST(nodes.front().liveness == "ALIVE");
}

BOOST_AUTO_TEST_CASE(operator_port_off_loopback_needs_users_and_tls) {
    TempDir dir{"offloop"};
    fs::create_directories(dir.path() / "repo");
    std::vector<std::string> args{"--scope", kScope, "--listen", "0.0.0.0:0", "--agent-listen", "127.0.0.1:0",
                                  "--state-dir", (dir.path() / "state").string(), "--repository",
                                  (dir.path() / "repo").string()};
    fs::path out = dir.path() / "out.txt";
    BOOST_TEST(runProgram("resource-manager", args, out) == 2);
    BOOST_TEST(readText(out).find("--insecure") != std::string::npos, readText(out));
    args.push_back("--insecure");
    DaemonProcess rm("resource-manager", args, dir.path() / "rm.log");
    BOOST_TEST(rm.log().find("event=insecure_operator_port") != std::string::npos, rm.log());
}

BOOST_AUTO_TEST_SUITE_END()
