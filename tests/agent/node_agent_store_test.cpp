// The node agent's journal, inventory and outbox (AgentStore), the outbox sender and the
// executor's rules, without any network or real package.
#include <boost/test/unit_test.hpp>
#include <chrono>
#include <thread>

#include "agent/agent_store.h"
#include "agent/deploy_executor.h"
#include "agent/deployer_endpoint.h"
#include "agent/hollow.h"
#include "agent/outbox_sender.h"
#include "test_support.h"

namespace {

using namespace std::chrono_literals;
using namespace rm::agent;
using rm::agent::test::TempDir;

const std::string kSha(64, 'a');

PackageRequest package(const std::string& name, std::vector<std::string> dependsOn = {}) {
    return PackageRequest{{"Samples", "Svc", "1.0.0", name, "1.0.0"},
                          "http://repo/" + name + ".tar.gz",
                          kSha,
                          std::move(dependsOn)};
}

NewOperation deployOf(const std::string& callbackId, std::vector<PackageRequest> packages,
                      const std::string& slot = "local") {
    NewOperation op;
    op.slot = slot;
    op.callbackId = callbackId;
    op.kind = OperationKind::Deploy;
    op.scope = "/gcube/devsec";
    op.callbackEndpoint = "http://127.0.0.1:1/rm";
    op.packages = std::move(packages);
    return op;
}

NewOperation undeployOf(const std::string& callbackId, std::vector<PackageRequest> packages) {
    NewOperation op = deployOf(callbackId, std::move(packages));
    op.kind = OperationKind::Undeploy;
    op.wholeScope = op.packages.empty();
    return op;
}

StateChange reached(const char* st, bool final) {
    return StateChange{st, "", final, std::nullopt, false};
}

class FakeTransport final : public ReportTransport {
  public:
    void send(const ReportSnapshot& report) override {
        attempts.push_back(report);
        if (failuresLeft > 0) {
            failuresLeft--;
            throw std::runtime_error("refused");
        }
        delivered.push_back(report);
    }
    int failuresLeft = 0;
    std::vector<ReportSnapshot> attempts;
    std::vector<ReportSnapshot> delivered;
};

bool waitUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (condition()) return true;
        std::this_thread::sleep_for(5ms);
    }
    return condition();
}

std::map<std::string, std::string> finalStates(AgentStore& store, const std::string& callbackId) {
    std::map<std::string, std::string> out;
    auto op = store.operation("local", callbackId);
    for (const auto& p : op->packages) out[p.request.coords.packageName] = p.state;
    return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(node_agent_store)

BOOST_AUTO_TEST_CASE(node_id_is_generated_once_and_kept) {
    TempDir dir;
    std::string id;
    {
        AgentStore store(dir.path());
        id = store.nodeId("local");
        BOOST_TEST(id.size() == 36u);
        BOOST_TEST(store.nodeId("local") == id);
        BOOST_TEST(store.nodeId("other") != id);
    }
    AgentStore reopened(dir.path());
    BOOST_TEST(reopened.nodeId("local") == id);
}

BOOST_AUTO_TEST_CASE(journal_is_idempotent_per_callback_id) {
    TempDir dir;
    AgentStore store(dir.path());
    BOOST_TEST(store.journal(deployOf("cb1", {package("A"), package("B", {"A"})})));
    BOOST_TEST(!store.journal(deployOf("cb1", {package("C")})));
    BOOST_CHECK_THROW(store.journal(undeployOf("cb1", {})), JournalConflict);
    // The same callbackID on another node is another operation.
    BOOST_TEST(store.journal(deployOf("cb1", {package("C")}, "other")));
    auto op = store.operation("local", "cb1");
    BOOST_REQUIRE(op);
    BOOST_REQUIRE_EQUAL(op->packages.size(), 2u);
    BOOST_TEST(op->packages[1].request.dependsOn == std::vector<std::string>{"A"});
    BOOST_TEST(store.openOperations().size() == 2u);
}

BOOST_AUTO_TEST_CASE(unfinished_operations_resume_after_reopen) {
    TempDir dir;
    {
        AgentStore store(dir.path());
        store.journal(deployOf("cb1", {package("A"), package("B")}));
        store.journal(deployOf("cb2", {package("C")}));
        store.record("local", "cb1", 0, reached(state::kActivated, true));
        store.record("local", "cb1", 1, reached(state::kDeployed, false));
        store.record("local", "cb2", 0, reached(state::kActivated, true));
    }
    AgentStore store(dir.path());
    auto open = store.openOperations();
    BOOST_REQUIRE_EQUAL(open.size(), 1u);
    BOOST_TEST(open[0].callbackId == "cb1");
    BOOST_TEST(open[0].packages[0].final);
    BOOST_TEST(!open[0].packages[1].final);
    BOOST_TEST(open[0].packages[1].state == state::kDeployed);
    BOOST_TEST(store.operation("local", "cb2")->closed);
}

BOOST_AUTO_TEST_CASE(inventory_follows_state_changes) {
    TempDir dir;
    AgentStore store(dir.path());
    store.journal(deployOf("cb1", {package("A")}));
    DeployedPackage row{
        "local", package("A").coords, kSha, state::kActivated, "/gcube/devsec", "inst-1", "cb1",
        {}};
    store.record("local", "cb1", 0, StateChange{state::kActivated, "", true, row, false});
    BOOST_REQUIRE(store.deployedPackage("local", package("A").coords));
    BOOST_TEST(store.deployedPackage("local", package("A").coords)->instanceId == "inst-1");
    store.journal(undeployOf("cb2", {package("A")}));
    store.record("local", "cb2", 0, StateChange{state::kUndeployed, "", true, std::nullopt, true});
    BOOST_TEST(store.deployed("local").empty());
}

BOOST_AUTO_TEST_CASE(outbox_holds_one_report_per_change_and_closes_last) {
    TempDir dir;
    AgentStore store(dir.path());
    store.journal(deployOf("cb1", {package("A"), package("B")}));
    store.journal(deployOf("cb2", {package("C")}));
    store.record("local", "cb1", 0, reached(state::kActivated, true));
    auto pending = store.pendingCallbacks();
    BOOST_REQUIRE_EQUAL(pending.size(), 2u);
    BOOST_TEST(pending[0].callbackId == "cb1");  // the oldest report first
    BOOST_TEST(pending[0].pendingReports == 2);
    auto snap = store.snapshot("local", "cb1");
    BOOST_REQUIRE(snap);
    BOOST_TEST(snap->sequence == 2);
    BOOST_TEST(snap->status == "OPEN");
    BOOST_TEST(snap->nodeId.empty());  // no identity generated yet for this slot
    store.record("local", "cb1", 1, reached(state::kFailed, true));
    snap = store.snapshot("local", "cb1");
    BOOST_TEST(snap->sequence == 3);
    BOOST_TEST(snap->status == "CLOSED");
    BOOST_TEST(snap->packages[1].state == state::kFailed);
    store.acknowledge("local", "cb1", 2);  // an older report acknowledged: the CLOSED one stays
    BOOST_TEST(store.snapshot("local", "cb1")->status == "CLOSED");
    store.acknowledge("local", "cb1", 3);
    BOOST_TEST(!store.snapshot("local", "cb1"));
    BOOST_TEST(store.outboxSize() == 1);
}

BOOST_AUTO_TEST_CASE(sender_coalesces_retries_and_keeps_order) {
    TempDir dir;
    AgentStore store(dir.path());
    rm::common::Logger logger("test", rm::common::LogLevel::error);
    store.nodeId("local");
    store.journal(deployOf("cb1", {package("A")}));
    store.journal(deployOf("cb2", {package("B")}));
    store.record("local", "cb1", 0, reached(state::kDeployed, false));
    store.record("local", "cb1", 0, reached(state::kActivated, true));
    FakeTransport transport;
    transport.failuresLeft = 2;
    OutboxSender sender(store, transport, logger, OutboxOptions{1ms, 4ms, 50ms});
    for (int i = 0; i < 50 && store.outboxSize() > 0; ++i) {
        sender.sendDue();
        std::this_thread::sleep_for(2ms);
    }
    BOOST_TEST(store.outboxSize() == 0);
    BOOST_REQUIRE_EQUAL(transport.delivered.size(), 2u);
    // Only the newest report of cb1 went out, and it is the CLOSED one with the final state.
    BOOST_TEST(transport.delivered[0].callbackId == "cb1");
    BOOST_TEST(transport.delivered[0].sequence == 3);
    BOOST_TEST(transport.delivered[0].status == "CLOSED");
    BOOST_TEST(transport.delivered[0].packages[0].state == state::kActivated);
    BOOST_TEST(!transport.delivered[0].nodeId.empty());
    BOOST_TEST(transport.delivered[1].callbackId == "cb2");
    BOOST_TEST(transport.delivered[1].status == "OPEN");
    BOOST_TEST(transport.attempts.size() == 4u);
}

BOOST_AUTO_TEST_CASE(executor_applies_dependency_and_inventory_rules) {
    TempDir dir;
    AgentStore store(dir.path());
    rm::common::Logger logger("test", rm::common::LogLevel::error);
    auto handler = std::make_shared<SimulatedPackages>(1ms);
    DeployExecutor executor(store, {{"", handler}}, logger, ExecutorOptions{2, 50ms});
    std::jthread thread([&](std::stop_token stop) { executor.run(stop); });
    auto closed = [&](const std::string& cb) { return store.operation("local", cb)->closed; };

    store.journal(deployOf("cb1", {package("Lib"), package("Broken-Thing"), package("App", {"Lib"}),
                                   package("Needs-Broken", {"Broken-Thing"})}));
    BOOST_REQUIRE(waitUntil([&] { return closed("cb1"); }, 5s));
    auto states = finalStates(store, "cb1");
    BOOST_TEST(states["Lib"] == state::kActivated);
    BOOST_TEST(states["Broken-Thing"] == state::kFailed);
    BOOST_TEST(states["App"] == state::kActivated);
    BOOST_TEST(states["Needs-Broken"] == state::kSkipped);

    store.journal(deployOf("cb2", {package("Lib")}));
    BOOST_REQUIRE(waitUntil([&] { return closed("cb2"); }, 5s));
    BOOST_TEST(finalStates(store, "cb2")["Lib"] == state::kAlreadyDeployed);

    store.journal(undeployOf("cb3", {package("Lib")}));
    BOOST_REQUIRE(waitUntil([&] { return closed("cb3"); }, 5s));
    BOOST_TEST(finalStates(store, "cb3")["Lib"] == state::kNotUndeployable);

    store.journal(undeployOf("cb4", {package("App"), package("Lib")}));
    BOOST_REQUIRE(waitUntil([&] { return closed("cb4"); }, 5s));
    BOOST_TEST(finalStates(store, "cb4")["App"] == state::kUndeployed);
    BOOST_TEST(finalStates(store, "cb4")["Lib"] == state::kUndeployed);

    // Whole scope: what is left (the failed install).
    store.journal(undeployOf("cb5", {}));
    BOOST_REQUIRE(waitUntil([&] { return closed("cb5"); }, 5s));
    BOOST_TEST(finalStates(store, "cb5").size() == 1u);
    BOOST_TEST(store.deployed("local").empty());
}

BOOST_AUTO_TEST_CASE(requests_are_validated) {
    auto op = deployOf("cb-1", {package("A")});
    BOOST_TEST(!validateDeploy(op, 10));
    auto bad = op;
    bad.callbackId = "../x";
    BOOST_TEST(validateDeploy(bad, 10).has_value());
    bad = op;
    bad.packages[0].sha256 = "xyz";
    BOOST_TEST(validateDeploy(bad, 10)->find("SHA256") != std::string::npos);
    bad = op;
    bad.packages[0].url = "file:///etc/passwd";
    BOOST_TEST(validateDeploy(bad, 10)->find("URL") != std::string::npos);
    bad = op;
    bad.packages[0].coords.packageName = "a/b";
    BOOST_TEST(validateDeploy(bad, 10)->find("PackageName") != std::string::npos);
    bad = op;
    bad.scope = "relative";
    BOOST_TEST(validateDeploy(bad, 10)->find("targetScope") != std::string::npos);
    bad = op;
    bad.packages.push_back(package("A"));
    BOOST_TEST(validateDeploy(bad, 10)->find("twice") != std::string::npos);
    bad = op;
    bad.packages.clear();
    BOOST_TEST(validateDeploy(bad, 10).has_value());
    // Packages come from the RM the node enrolled with, and from nowhere else.
    BOOST_TEST(!validateDeploy(op, 10, "http://repo:80"));
    BOOST_TEST(
        validateDeploy(op, 10, "https://127.0.0.1:8443")->find("is not on the Resource Manager") !=
        std::string::npos);
    // An Undeploy names what it removes: "everything" is never implied.
    BOOST_TEST(!validateUndeploy(undeployOf("cb-2", {package("A")}), 10));
    BOOST_TEST(validateUndeploy(undeployOf("cb-2", {}), 10)->find("at least one package") !=
               std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
