// The session processor, deployments and store together, with node reports applied as the
// SendReport endpoint applies them (no network: the dispatcher is not running, so the outbox
// rows are inspected instead). Covers removal by service, by RunningInstance, the timeout path,
// requirement-aware scheduling and rescheduling when a node goes LOST.
#include <boost/test/unit_test.hpp>

#include <functional>
#include <thread>

#include "common/time_util.h"
#include "service/deployments.h"
#include "service/removal_planner.h"
#include "service/report_service.h"
#include "service/scope_store.h"
#include "service/session_processor.h"
#include "test_support.h"

using namespace rm::service;
using namespace std::chrono_literals;
using rm::service::testing::quietLogger;
using rm::service::testing::ScratchDir;

namespace {

const std::string kInstance = "n1:IS-Notifier.Notifier-service";

ServiceDependency dependency(const std::string& package, const std::string& version) {
    return {"InformationSystem",
            "IS-Notifier",
            "1.00.00",
            package,
            version,
            std::string(64, 'a'),
            package + ".tar.gz",
            package == "Notifier-service" ? "Notifier-stubs" : ""};
}

NewService isNotifier() {
    NewService s;
    s.serviceClass = "InformationSystem";
    s.serviceName = "IS-Notifier";
    s.serviceVersion = "1.00.00";
    s.resolved = true;
    s.resolvedDependencies = {dependency("Notifier-stubs", "1.00.00"),
                              dependency("Notifier-service", "1.01.00")};
    return s;
}

NodePackageReport reported(const std::string& package, const std::string& version,
                           const std::string& status, const std::string& message = {}) {
    return {"InformationSystem", "IS-Notifier", "1.00.00", package, version, status, message};
}

struct Flow {
    ScratchDir dir;
    ScopeStore store{dir.path(), quietLogger()};
    Deployments deployments{store, quietLogger()};
    ReportService reports{store, deployments};
    SessionProcessor processor{store, deployments, reports, quietLogger(), {600000ms, 50ms}};
    std::jthread thread{[this](std::stop_token stop) { processor.run(stop); }};
    int sessions = 0;

    ~Flow() {
        thread.request_stop();
        thread.join();
    }

    void registerNode(const std::string& id, const std::string& name,
                      const std::string& labels = {}, int64_t diskMB = 1000,
                      int64_t at = rm::common::nowMillis()) {
        NodeRegistration n;
        n.id = id;
        n.name = name;
        n.endpoint = "http://127.0.0.1:9/" + name;
        n.labels = labels;
        n.diskFreeMB = diskMB;
        store.registerNode(n, at);
    }

    std::string open(SessionOperation op, std::vector<NewService> services,
                     std::vector<ResourceKey> resources = {}, int64_t deadlineMs = 4102444800000) {
        NewSession s;
        s.id = "s" + std::to_string(++sessions);
        s.operation = op;
        s.scope = "/gcube/devsec";
        s.deadlineMs = deadlineMs;
        s.resources = std::move(resources);
        s.services = std::move(services);
        store.createSession(s);
        processor.submit(s.id);
        return s.id;
    }

    std::string remove(RemovalRequest request, int64_t deadlineMs = 4102444800000) {
        auto services = planRemoval(removalInputs(store, request), request);
        return open(
            request.everything ? SessionOperation::DisposeScope : SessionOperation::RemoveResources,
            std::move(services), request.resources, deadlineMs);
    }

    void report(const std::string& callback, const std::string& node, int64_t seq,
                const std::string& status, const std::vector<NodePackageReport>& packages) {
        std::string session;
        BOOST_REQUIRE(deployments.applyReport(callback, node, seq, status, packages, session) ==
                      Deployments::ReportOutcome::Applied);
        reports.invalidate(session);
        processor.submit(session);
    }

    bool waitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 5s) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            if (condition()) return true;
            std::this_thread::sleep_for(10ms);
        }
        return condition();
    }

    bool closed(const std::string& id) {
        return waitFor([&] {
            auto s = store.session(id);
            return s && !s->open;
        });
    }

    // The callback ID of the newest `kind` call (Deploy or Undeploy) of `session`, to `node` when
    // given, once it is planned; "" when it never is. Callback IDs are keyed (unguessable), so
    // they are read from the store, never built from the session ID.
    std::string callOf(const std::string& session, const std::string& kind = "Deploy",
                       const std::string& node = {}) {
        std::string id;
        waitFor([&] {
            store.database().read([&](rm::common::Database::Lock& db) {
                auto& q = db.prepare(
                    "SELECT callback_id FROM deployments WHERE session_id = ? AND kind = ? AND "
                    "(? = '' OR node_id = ?) ORDER BY rowid DESC LIMIT 1");
                q.bind(1, session).bind(2, kind).bind(3, node).bind(4, node);
                if (q.step()) id = q.text(0);
            });
            return !id.empty();
        });
        return id;
    }

    int64_t scalar(const std::string& sql) {
        int64_t n = -1;
        store.database().read([&](rm::common::Database::Lock& db) {
            auto& q = db.prepare(sql);
            if (q.step()) n = q.integer(0);
        });
        return n;
    }

    std::vector<std::string> callPackages(const std::string& callback) {
        std::vector<std::string> out;
        store.database().read([&](rm::common::Database::Lock& db) {
            auto& q = db.prepare(
                "SELECT package_name || ' ' || status FROM deployment_packages WHERE callback_id = "
                "? "
                "ORDER BY seq");
            q.bind(1, callback);
            while (q.step()) out.push_back(q.text(0));
        });
        return out;
    }

    // Two nodes, n1 silent for a minute; IS-Notifier goes to n1 (first by name), which is then
    // marked LOST. Returns the session.
    std::string deployOnSilentNode() {
        int64_t now = rm::common::nowMillis();
        registerNode("n1", "node-1", {}, 1000, now - 60000);
        registerNode("n2", "node-2", {}, 1000, now);
        auto id = open(SessionOperation::AddResources, {isNotifier()});
        BOOST_REQUIRE(!callOf(id).empty());
        BOOST_REQUIRE(store.sessionServices(id)[0].deployedOn == "n1");
        BOOST_REQUIRE(store.markSilentNodesLost(now - 10000) == std::vector<std::string>{"n1"});
        return id;
    }

    // Deploys IS-Notifier on n1 and has the node report it RUNNING.
    void deployNotifier() {
        registerNode("n1", "node-1");
        auto id = open(SessionOperation::AddResources, {isNotifier()});
        auto call = callOf(id);
        BOOST_REQUIRE(!call.empty());
        report(call, "n1", 1, "CLOSED",
               {reported("Notifier-stubs", "1.00.00", "ACTIVATED"),
                reported("Notifier-service", "1.01.00", "RUNNING")});
        BOOST_REQUIRE(closed(id));
        BOOST_REQUIRE((store.session(id)->succeeded == true));
        auto instance = store.resource({"RunningInstance", kInstance});
        BOOST_REQUIRE(instance);
        BOOST_REQUIRE((instance->state == ResourceState::Published));
        BOOST_REQUIRE(store.nodePackages().size() == 2u);
    }
};

RemovalRequest removeService() {
    RemovalRequest r;
    r.software.push_back({"InformationSystem", "IS-Notifier", {}, {}, {}, {}});
    return r;
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(undeploy_flow, Flow)

BOOST_AUTO_TEST_CASE(removing_a_service_undeploys_it_and_its_instances_leave_the_scope) {
    deployNotifier();
    auto id = remove(removeService());
    auto call = callOf(id, "Undeploy");
    BOOST_REQUIRE(!call.empty());
    // SESSION-SEQ-<keyed hash>: unguessable from the (public) report ID.
    BOOST_TEST(call.rfind(id + "-u0-", 0) == 0u, call);
    BOOST_TEST(call.size() > (id + "-u0-").size() + 16, call);
    BOOST_TEST(scalar("SELECT COUNT(*) FROM deployments WHERE callback_id = '" + call +
                      "' AND kind = 'Undeploy' "
                      "AND node_id = 'n1' AND call_state = 'PENDING'") == 1);
    // Newest first: the service goes before the library it was deployed on.
    BOOST_TEST(callPackages(call) ==
                   (std::vector<std::string>{"Notifier-service WAITING", "Notifier-stubs WAITING"}),
               boost::test_tools::per_element());
    auto open = reports.report(id);
    BOOST_REQUIRE(open);
    BOOST_TEST(open->status == "OPEN");
    BOOST_TEST(reports.xml(id)->find("<UndeploymentActivity>") != std::string::npos);

    report(call, "n1", 1, "OPEN",
           {reported("Notifier-service", "1.01.00", "UNDEPLOYED"),
            reported("Notifier-stubs", "1.00.00", "WAITING")});
    // Removed as soon as the node says so, while the session is still open.
    BOOST_TEST((waitFor([&] {
        return store.resource({"RunningInstance", kInstance})->state == ResourceState::Unpublished;
    })));
    BOOST_TEST(store.session(id)->open);
    report(call, "n1", 2, "CLOSED",
           {reported("Notifier-service", "1.01.00", "UNDEPLOYED"),
            reported("Notifier-stubs", "1.00.00", "UNDEPLOYED")});
    BOOST_REQUIRE(closed(id));
    BOOST_TEST((store.session(id)->succeeded == true));
    BOOST_TEST(store.nodePackages().empty());
    BOOST_TEST(!store.instanceReported(kInstance));
    auto services = store.sessionServices(id);
    BOOST_REQUIRE(services.size() == 1u);
    BOOST_TEST(services[0].status == "DONE");
    BOOST_TEST(services[0].deployedOn == "n1");
    auto done = reports.report(id);
    BOOST_REQUIRE(done->ghns.size() == 1u);
    BOOST_TEST(done->ghns[0].nodeStatus == "CLOSED");
    BOOST_TEST(done->ghns[0].packages.size() == 2u);
    BOOST_TEST(done->ghns[0].packages[1].status == "UNDEPLOYED");
}

BOOST_AUTO_TEST_CASE(removing_a_running_instance_waits_for_its_undeploy) {
    deployNotifier();
    RemovalRequest request;
    request.resources = {{"RunningInstance", kInstance}};
    auto id = remove(request);
    auto call = callOf(id, "Undeploy");
    BOOST_REQUIRE(!call.empty());
    BOOST_TEST(callPackages(call) == std::vector<std::string>{"Notifier-service WAITING"},
               boost::test_tools::per_element());
    std::this_thread::sleep_for(150ms);
    BOOST_TEST(store.sessionResources(id)[0].status == "WAITING");
    report(call, "n1", 1, "CLOSED", {reported("Notifier-service", "1.01.00", "UNDEPLOYED")});
    BOOST_REQUIRE(closed(id));
    BOOST_TEST((store.session(id)->succeeded == true));
    BOOST_TEST(store.sessionResources(id)[0].status == "REMOVED");
    BOOST_TEST(
        (store.resource({"RunningInstance", kInstance})->state == ResourceState::Unpublished));
    // The library it ran on stays deployed: only the instance's package was asked for.
    BOOST_REQUIRE(store.nodePackages().size() == 1u);
    BOOST_TEST(store.nodePackages()[0].package.packageName == "Notifier-stubs");
}

BOOST_AUTO_TEST_CASE(an_instance_the_node_refuses_to_undeploy_says_why) {
    deployNotifier();
    RemovalRequest request;
    request.resources = {{"RunningInstance", kInstance}};
    auto id = remove(request);
    auto call = callOf(id, "Undeploy");
    BOOST_REQUIRE(!call.empty());
    report(call, "n1", 1, "CLOSED",
           {reported("Notifier-service", "1.01.00", "NOTUNDEPLOYABLE",
                     "Notifier-service is still needed by X")});
    BOOST_REQUIRE(closed(id));
    BOOST_TEST((store.session(id)->succeeded == false));
    auto item = store.sessionResources(id)[0];
    BOOST_TEST(item.status == "FAILED");
    BOOST_TEST(
        item.error ==
        "RunningInstance " + kInstance +
            " still runs: its package Notifier-service is NOTUNDEPLOYABLE: Notifier-service is "
            "still needed by X");
    BOOST_TEST((store.resource({"RunningInstance", kInstance})->state == ResourceState::Published));
    BOOST_TEST(store.nodePackages().size() == 2u);
}

BOOST_AUTO_TEST_CASE(a_node_that_never_reports_times_the_removal_out) {
    deployNotifier();
    RemovalRequest request = removeService();
    request.resources = {{"RunningInstance", kInstance}};
    auto id = remove(request, rm::common::nowMillis() + 400);
    BOOST_REQUIRE(!callOf(id, "Undeploy").empty());
    BOOST_REQUIRE(closed(id));
    BOOST_TEST((store.session(id)->succeeded == false));
    auto services = store.sessionServices(id);
    BOOST_TEST(services[0].status == "FAILED");
    BOOST_TEST(services[0].error.find("node node-1 (n1) did not report") != std::string::npos,
               services[0].error);
    BOOST_TEST(store.sessionResources(id)[0].status == "FAILED");
    BOOST_TEST((store.resource({"RunningInstance", kInstance})->state == ResourceState::Lost));
}

BOOST_AUTO_TEST_CASE(removing_what_is_not_deployed_fails_at_once) {
    registerNode("n1", "node-1");
    auto id = remove(removeService());
    BOOST_REQUIRE(closed(id));
    BOOST_TEST((store.session(id)->succeeded == false));
    BOOST_TEST(store.sessionServices(id)[0].error.find("nothing to undeploy") == 0u);
    BOOST_TEST(scalar("SELECT COUNT(*) FROM deployments WHERE session_id = '" + id + "'") == 0);
}

BOOST_AUTO_TEST_CASE(removal_from_a_lost_node_fails_naming_it) {
    deployNotifier();
    store.markSilentNodesLost(rm::common::nowMillis() + 1000);
    auto id = remove(removeService());
    BOOST_REQUIRE(closed(id));
    BOOST_TEST((store.session(id)->succeeded == false));
    BOOST_TEST(
        store.sessionServices(id)[0].error.find("cannot undeploy from node n1: it is LOST") == 0u,
        store.sessionServices(id)[0].error);
}

BOOST_AUTO_TEST_CASE(dispose_undeploys_everything_and_empties_the_scope) {
    deployNotifier();
    RemovalRequest request;
    request.everything = true;
    request.resources = store.resourcesInScope();
    auto id = remove(request);
    auto call = callOf(id, "Undeploy");
    BOOST_REQUIRE(!call.empty());
    report(call, "n1", 1, "CLOSED",
           {reported("Notifier-service", "1.01.00", "UNDEPLOYED"),
            reported("Notifier-stubs", "1.00.00", "UNDEPLOYED")});
    BOOST_REQUIRE(closed(id));
    BOOST_TEST((store.session(id)->succeeded == true));
    BOOST_TEST(store.resourcesInScope().empty());
    BOOST_TEST(store.nodePackages().empty());
    BOOST_TEST(reports.report(id)->operation == "DisposeScope");
}

BOOST_AUTO_TEST_CASE(scheduling_honours_requirements) {
    registerNode("n1", "node-1", "zone=us", 5000);
    registerNode("n2", "node-2", "zone=eu", 50);
    NewService wanted = isNotifier();
    wanted.requiredLabels = "zone=eu";
    wanted.requiredDiskMB = 10;
    auto id = open(SessionOperation::AddResources, {wanted});
    BOOST_REQUIRE(!callOf(id).empty());
    BOOST_TEST(store.sessionServices(id)[0].deployedOn == "n2");
    wanted.requiredDiskMB = 100;
    id = open(SessionOperation::AddResources, {wanted});
    BOOST_REQUIRE(closed(id));
    auto error = store.sessionServices(id)[0].error;
    BOOST_TEST(error.find("no suitable gHN") == 0u, error);
    BOOST_TEST(error.find("node-1 lacks label zone=eu (it has zone=us)") != std::string::npos,
               error);
    BOOST_TEST(error.find("node-2 lacks MinDiskMB 100 (it has 50 MB free)") != std::string::npos,
               error);
}

BOOST_AUTO_TEST_CASE(a_lost_node_fails_its_services) {
    auto id = deployOnSilentNode();
    for (const auto& s : deployments.nodeLost("n1", false)) processor.submit(s);
    BOOST_REQUIRE(closed(id));
    BOOST_TEST((store.session(id)->succeeded == false));
    BOOST_TEST(store.sessionServices(id)[0].error.find("node n1 went LOST") == 0u,
               store.sessionServices(id)[0].error);
}

BOOST_AUTO_TEST_CASE(a_lost_node_reschedules_its_services_when_asked) {
    auto id = deployOnSilentNode();
    auto first = callOf(id, "Deploy", "n1");
    for (const auto& s : deployments.nodeLost("n1", true)) processor.submit(s);
    // Another live node gets it, under a new callback ID.
    auto second = callOf(id, "Deploy", "n2");
    BOOST_REQUIRE(!second.empty());
    BOOST_TEST(second != first);
    BOOST_TEST(second.rfind(id + "-0-r1-", 0) == 0u, second);
    BOOST_TEST(store.sessionServices(id)[0].deployedOn == "n2");
    BOOST_TEST(store.sessionServices(id)[0].status == "DEPLOYING");
    BOOST_TEST(store.session(id)->open);
    // The lost node's late report is ignored; the new node's closes the session.
    std::string session;
    BOOST_TEST((deployments.applyReport(first, "n1", 1, "CLOSED", {}, session) ==
                Deployments::ReportOutcome::Duplicate));
    report(second, "n2", 1, "CLOSED",
           {reported("Notifier-stubs", "1.00.00", "ACTIVATED"),
            reported("Notifier-service", "1.01.00", "RUNNING")});
    BOOST_REQUIRE(closed(id));
    BOOST_TEST((store.session(id)->succeeded == true));
    BOOST_TEST((store.resource({"RunningInstance", "n2:IS-Notifier.Notifier-service"})->state ==
                ResourceState::Published));
}

BOOST_AUTO_TEST_SUITE_END()
