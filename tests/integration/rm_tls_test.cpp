// The RM over HTTPS and mutual TLS, with certificates made for the test by the openssl tool: a
// client that trusts the CA is served, one that does not is refused, and with
// --tls-require-client-cert only clients holding a certificate signed by --tls-ca get in. Agents
// do not use these flags: they enroll on the agent port (tests/integration/node_security_test.cpp).
#include <filesystem>

#include "agent_test_helpers.h"
#include "common/tls.h"
#include "deployer/package_archive.h"
#include "rm_test_helpers.h"
#include "test_pki.h"

using namespace rm::testing;

namespace {

rm::client::ClientOptions tlsOptions(const RmInstance& rm, const std::string& ca,
                                     const std::string& key = {}) {
    auto o = rm.options();
    o.tlsCaFile = ca;
    o.tlsKeyFile = key;
    return o;
}

// Adds one resource and waits for its session to close; throws what the client threw.
void addAndFollow(const rm::client::ClientOptions& options, const std::string& id) {
    rm::client::RmClient client(options);
    auto reportId = client.addResources(plainRequest({{"GenericResource", id}}));
    auto report = waitClosed(client, reportId);
    BOOST_TEST(report.sessionExitStatus.value_or("") == "SUCCESS");
}

// Asks an https:// agent for its state with the given client credentials; "" when it answered,
// otherwise why not.
std::string nodeStateRefusal(const std::string& agentUrl, const rm::common::TlsClientOptions& tls) {
    DeployerBindingProxy proxy;
    rm::common::ServerOptions limits;
    limits.ioTimeout = std::chrono::seconds(5);
    rm::common::applyXmlLimits(proxy.soap, limits);
    rm::common::configureTlsClient(proxy.soap, tls);
    _rm__GetNodeState request;
    _rm__GetNodeStateResponse response;
    std::string why;
    if (proxy.GetNodeState(agentUrl.c_str(), nullptr, &request, response) != SOAP_OK) {
        const char* s = soap_fault_string(proxy.soap);
        why = s ? s : "error " + std::to_string(proxy.soap->error);
        proxy.soap_close_socket();
    }
    proxy.destroy();
    return why;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(rm_tls)

BOOST_AUTO_TEST_CASE(https_serves_clients_that_trust_the_ca) {
    TestPki pki;
    RmInstance rm({"--tls-key", pki.file("server.pem")});
    BOOST_TEST(rm.url().rfind("https://", 0) == 0u, "the printed URL says https: " << rm.url());
    addAndFollow(tlsOptions(rm, pki.file("ca.pem")), "over-tls");

    // A client that verifies against another CA must refuse the server's certificate.
    BOOST_CHECK_THROW(addAndFollow(tlsOptions(rm, pki.file("other.pem")), "wrong-ca"),
                      rm::client::ClientError);
    // Plain HTTP against the TLS port is dropped, and the server keeps serving TLS clients.
    std::string plainUrl = "http" + rm.url().substr(5);
    auto raw = rawExchange(plainUrl, httpPost(plainUrl, envelope("<rm:ListNodes/>")),
                           std::chrono::seconds(3));
    BOOST_TEST(raw.status == 0, "plain HTTP must not be answered in clear text");
    addAndFollow(tlsOptions(rm, pki.file("ca.pem")), "still-served");
    BOOST_TEST(rm.daemon().running());
}

BOOST_AUTO_TEST_CASE(mutual_tls_admits_only_certified_clients) {
    TestPki pki;
    RmInstance rm({"--tls-key", pki.file("server.pem"), "--tls-ca", pki.file("ca.pem"),
                   "--tls-require-client-cert", "true"});
    // No client certificate, or one from a CA the server does not trust: refused.
    BOOST_CHECK_THROW(addAndFollow(tlsOptions(rm, pki.file("ca.pem")), "anonymous"),
                      rm::client::ClientError);
    BOOST_CHECK_THROW(
        addAndFollow(tlsOptions(rm, pki.file("ca.pem"), pki.file("stranger.pem")), "stranger"),
        rm::client::ClientError);
    // The operator's certificate gets in, and nothing the refused clients sent was kept.
    addAndFollow(tlsOptions(rm, pki.file("ca.pem"), pki.file("client.pem")), "certified");
    rm::client::RmClient client(tlsOptions(rm, pki.file("ca.pem"), pki.file("client.pem")));
    auto rows = client.listResources();
    std::set<std::string> ids;
    for (const auto& row : rows) ids.insert(row.id);
    BOOST_TEST(ids.count("certified") == 1u);
    BOOST_TEST(ids.count("anonymous") == 0u);
    BOOST_TEST(ids.count("stranger") == 0u);
}

// The operator port on mutual TLS with the operator's own PKI (--tls-*), and next to it the agent
// port with the scope CA: an agent enrolled with a token made over the operator's TLS registers,
// deploys and reports; its own port answers the RM's certificate only.
BOOST_AUTO_TEST_CASE(operator_mutual_tls_next_to_enrolled_agents) {
    using namespace std::chrono_literals;
    TestPki pki;
    RmInstance rm({"--tls-key", pki.file("server.pem"), "--tls-ca", pki.file("ca.pem"),
                   "--tls-require-client-cert", "true", "--heartbeat-interval-ms", "300"});
    for (std::string sample : {"is-notifier-stubs", "is-notifier-service"}) {
        rm::deployer::buildPackage(sourceDir() / "etc" / "packages" / sample,
                                   rm.repository() / (sample + ".tar.gz"));
    }
    rm.restart();  // indexes the repository
    rm::client::RmClient client(tlsOptions(rm, pki.file("ca.pem"), pki.file("client.pem")));
    auto made = client.createJoinToken(600, 1, "rm_tls_test");
    BOOST_TEST(made.agentUrl == rm.agentUrl());
    BOOST_TEST(rm.agentUrl().rfind("https://", 0) == 0u, rm.agentUrl());

    std::vector<std::string> args{"--name",      "node-a", "--listen",
                                  "127.0.0.1:0", "--root", (rm.dir() / "agent-a").string()};
    auto join = joinArgs(JoinToken{made.token, made.caSha256, made.agentUrl});
    args.insert(args.end(), join.begin(), join.end());
    ProcessReaper reaper{rm.dir() / "agent-a"};  // ends what the agent leaves running, after it
    DaemonProcess agent("node-agent", args, rm.dir() / "agent-a.log");
    BOOST_TEST(agent.url().rfind("https://", 0) == 0u, "the agent serves HTTPS: " << agent.url());

    std::string nodeId;
    BOOST_REQUIRE_MESSAGE(waitUntil(
                              [&] {
                                  for (const auto& n : client.listNodes())
                                      if (n.name == "node-a" && n.liveness == "ALIVE") nodeId = n.id;
                                  return !nodeId.empty();
                              },
                              20s),
                          agent.log());

    rm::client::ScopeRequest request;
    request.targetScope = kScope;
    request.services.push_back({"InformationSystem", "IS-Notifier", {}, {}, {}, {}});
    auto report = waitClosed(client, client.addResources(request), 60s);
    BOOST_TEST(report.sessionExitStatus.value_or("-") == "SUCCESS", agent.log());
    BOOST_REQUIRE(report.ghns.size() == 1u);
    BOOST_TEST(report.ghns[0].id == nodeId);
    BOOST_TEST(report.ghns[0].nodeStatus == "CLOSED");
    for (const auto& p : report.ghns[0].packages) {
        BOOST_TEST((p.status == "RUNNING" || p.status == "ACTIVATED"),
                   p.packageName << " ended " << p.status << ": " << p.message);
    }

    // The agent's own endpoint admits the RM only: no certificate, or the operator's certificate
    // (of another CA), is refused; the RM's certificate of the scope CA is answered.
    std::string scopeCa = rm.caFile().string();
    BOOST_TEST(nodeStateRefusal(agent.url(), {"", scopeCa, "", nodeId}) != "");
    BOOST_TEST(nodeStateRefusal(agent.url(), {pki.file("client.pem"), scopeCa, "", nodeId}) != "");
    BOOST_TEST(nodeStateRefusal(agent.url(), {rm.rmKeyFile().string(), scopeCa, "", nodeId}) == "");
}

BOOST_AUTO_TEST_SUITE_END()
