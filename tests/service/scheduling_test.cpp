// Choosing nodes (requirements, fewest instances, explicit targets) and planning removals (what
// is undeployed where, in which order) as pure functions over plain rows.
#include <boost/test/unit_test.hpp>

#include "service/node_selector.h"
#include "service/removal_planner.h"

using namespace rm::service;

namespace {

NodeStatus node(const std::string& id, const std::string& name, const std::string& labels,
                int64_t diskMB, int running, const std::string& liveness = "ALIVE") {
    NodeStatus n;
    n.record = {id, name, "http://127.0.0.1:9/" + name, labels, 0, liveness};
    n.diskFreeMB = diskMB;
    n.runningInstances = running;
    return n;
}

NewService service(const std::string& labels = {}, int64_t diskMB = 0,
                   const std::string& target = {}) {
    NewService s;
    s.serviceClass = "Samples";
    s.serviceName = "Docs";
    s.serviceVersion = "1.0.0";
    s.resolved = true;
    s.requiredLabels = labels;
    s.requiredDiskMB = diskMB;
    s.targetNode = target;
    return s;
}

NodePackage deployed(const std::string& nodeId, const std::string& svc, const std::string& package,
                     int64_t seq, const std::string& serviceClass = "InformationSystem") {
    NodePackage p;
    p.nodeId = nodeId;
    p.package = {serviceClass, svc, "1.00.00", package, "1.0.0", "", "", ""};
    p.status = "RUNNING";
    p.installedSeq = seq;
    return p;
}

std::vector<std::string> packageNames(const NewService& s) {
    std::vector<std::string> out;
    for (const auto& d : s.resolvedDependencies) out.push_back(d.packageName);
    return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(node_selection)

BOOST_AUTO_TEST_CASE(fewest_running_instances_among_live_nodes) {
    std::vector<NodeStatus> nodes{node("n1", "alpha", "", 1000, 3), node("n2", "beta", "", 1000, 1),
                                  node("n3", "gamma", "", 1000, 0, "LOST")};
    std::string why;
    auto chosen = chooseNode(nodes, service(), why);
    BOOST_REQUIRE(chosen);
    BOOST_TEST(chosen->record.id == "n2");
    // Ties go to the first listed (by name).
    nodes[0].runningInstances = 1;
    chosen = chooseNode(nodes, service(), why);
    BOOST_REQUIRE(chosen);
    BOOST_TEST(chosen->record.id == "n1");
}

BOOST_AUTO_TEST_CASE(labels_and_disk_exclude_nodes) {
    std::vector<NodeStatus> nodes{node("n1", "alpha", "zone=us,os=linux", 5000, 0),
                                  node("n2", "beta", "zone=eu,os=linux", 100, 0),
                                  node("n3", "gamma", "zone=eu,os=linux", 900, 7)};
    std::string why;
    auto chosen = chooseNode(nodes, service("zone=eu", 500), why);
    BOOST_REQUIRE(chosen);
    BOOST_TEST(chosen->record.id == "n3");  // the only one with both, though the busiest
    chosen = chooseNode(nodes, service("zone=eu,os=linux"), why);
    BOOST_REQUIRE(chosen);
    BOOST_TEST(chosen->record.id == "n2");
}

BOOST_AUTO_TEST_CASE(no_suitable_node_names_the_unmet_requirement) {
    std::vector<NodeStatus> nodes{node("n1", "alpha", "zone=us", 5000, 0),
                                  node("n2", "beta", "", 100, 0)};
    std::string why;
    BOOST_TEST(!chooseNode(nodes, service("zone=eu"), why));
    BOOST_TEST(why.find("no suitable gHN") == 0u, why);
    BOOST_TEST(why.find("alpha lacks label zone=eu (it has zone=us)") != std::string::npos, why);
    BOOST_TEST(why.find("beta lacks label zone=eu (it has no label zone)") != std::string::npos,
               why);
    BOOST_TEST(!chooseNode(nodes, service({}, 8000), why));
    BOOST_TEST(why.find("alpha lacks MinDiskMB 8000 (it has 5000 MB free)") != std::string::npos,
               why);
}

BOOST_AUTO_TEST_CASE(no_live_node) {
    std::vector<NodeStatus> nodes{node("n1", "alpha", "", 5000, 0, "LOST")};
    std::string why;
    BOOST_TEST(!chooseNode(nodes, service(), why));
    BOOST_TEST(why == "no suitable gHN: no live node is registered with this Resource Manager");
    BOOST_TEST(!chooseNode({}, service(), why));
}

BOOST_AUTO_TEST_CASE(explicit_target_wins_but_must_qualify) {
    std::vector<NodeStatus> nodes{node("n1", "alpha", "zone=eu", 5000, 0),
                                  node("n2", "beta", "zone=us", 5000, 9),
                                  node("n3", "gamma", "zone=eu", 5000, 0, "LOST")};
    std::string why;
    auto chosen = chooseNode(nodes, service({}, 0, "beta"), why);
    BOOST_REQUIRE(chosen);
    BOOST_TEST(chosen->record.id == "n2");
    chosen = chooseNode(nodes, service({}, 0, "n2"), why);  // by ID too
    BOOST_REQUIRE(chosen);
    BOOST_TEST(!chooseNode(nodes, service("zone=eu", 0, "beta"), why));
    BOOST_TEST(why ==
               "no suitable gHN: target node beta does not meet the requirement label zone=eu (it "
               "has zone=us)");
    BOOST_TEST(!chooseNode(nodes, service({}, 0, "gamma"), why));
    BOOST_TEST(why == "no suitable gHN: target node gamma is LOST");
    BOOST_TEST(!chooseNode(nodes, service({}, 0, "delta"), why));
    BOOST_TEST(why == "no suitable gHN: target node delta is not registered here");
}

BOOST_AUTO_TEST_CASE(conflicting_label_values_are_never_met) {
    auto n = node("n1", "alpha", "zone=eu", 5000, 0);
    BOOST_TEST(!unmetRequirement(n, service("zone=eu")));
    auto unmet = unmetRequirement(n, service("zone=eu,zone=us"));
    BOOST_REQUIRE(unmet);
    BOOST_TEST(*unmet == "label zone=us (it has zone=eu)");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(removal_planning)

BOOST_AUTO_TEST_CASE(service_is_removed_from_every_node_newest_package_first) {
    RemovalInputs inputs;
    inputs.deployed = {deployed("n1", "IS-Notifier", "Notifier-stubs", 1),
                       deployed("n1", "IS-Notifier", "Notifier-service", 2),
                       deployed("n2", "IS-Notifier", "Notifier-stubs", 3),
                       deployed("n1", "Other", "Other-pkg", 4)};
    RemovalRequest request;
    request.software.push_back({"InformationSystem", "IS-Notifier", {}, {}, {}, {}});
    auto plan = planRemoval(inputs, request);
    BOOST_REQUIRE(plan.size() == 2u);
    BOOST_TEST(plan[0].targetNode == "n1");
    BOOST_TEST(plan[0].error == "-");
    BOOST_TEST(
        packageNames(plan[0]) == (std::vector<std::string>{"Notifier-service", "Notifier-stubs"}),
        boost::test_tools::per_element());
    BOOST_TEST(plan[1].targetNode == "n2");
    BOOST_TEST(packageNames(plan[1]) == std::vector<std::string>{"Notifier-stubs"},
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(filters_by_package_version_and_node_name) {
    RemovalInputs inputs;
    inputs.deployed = {deployed("n1", "IS-Notifier", "Notifier-stubs", 1),
                       deployed("n1", "IS-Notifier", "Notifier-service", 2),
                       deployed("n2", "IS-Notifier", "Notifier-service", 3)};
    inputs.nodes = {{"n1", "alpha", "", "", 0, "ALIVE"}, {"n2", "beta", "", "", 0, "ALIVE"}};
    RemovalRequest request;
    request.software.push_back(
        {"InformationSystem", "IS-Notifier", "1.0", "Notifier-service", "[1.0,2.0)", "beta"});
    auto plan = planRemoval(inputs, request);
    BOOST_REQUIRE(plan.size() == 1u);
    BOOST_TEST(plan[0].targetNode == "n2");
    BOOST_TEST(packageNames(plan[0]) == std::vector<std::string>{"Notifier-service"},
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(nothing_deployed_is_refused_with_a_reason) {
    RemovalInputs inputs;
    inputs.deployed = {deployed("n1", "IS-Notifier", "Notifier-stubs", 1)};
    RemovalRequest request;
    request.software.push_back({"Samples", "Static-Docs", {}, {}, {}, {}});
    auto plan = planRemoval(inputs, request);
    BOOST_REQUIRE(plan.size() == 1u);
    BOOST_TEST(plan[0].resolved);
    BOOST_TEST(plan[0].targetNode.empty());
    BOOST_TEST(plan[0].resolvedDependencies.empty());
    BOOST_TEST(
        plan[0].error ==
        "nothing to undeploy: Samples/Static-Docs is not deployed on any node of this scope");
}

BOOST_AUTO_TEST_CASE(running_instance_removal_undeploys_its_package_once) {
    RemovalInputs inputs;
    inputs.deployed = {deployed("n1", "IS-Notifier", "Notifier-stubs", 1),
                       deployed("n1", "IS-Notifier", "Notifier-service", 2)};
    inputs.instances = {{"n1:IS-Notifier.Notifier-service", "n1", "InformationSystem",
                         "IS-Notifier", "Notifier-service", "RUNNING"}};
    RemovalRequest request;
    request.resources = {{"RunningInstance", "n1:IS-Notifier.Notifier-service"},
                         {"Collection", "c1"}};
    auto plan = planRemoval(inputs, request);
    BOOST_REQUIRE(plan.size() == 1u);
    BOOST_TEST(packageNames(plan[0]) == std::vector<std::string>{"Notifier-service"},
               boost::test_tools::per_element());
    // Named both as a service and as its instance: undeployed once.
    request.software.push_back({"InformationSystem", "IS-Notifier", {}, {}, {}, {}});
    plan = planRemoval(inputs, request);
    BOOST_REQUIRE(plan.size() == 1u);
    BOOST_TEST(
        packageNames(plan[0]) == (std::vector<std::string>{"Notifier-service", "Notifier-stubs"}),
        boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(dispose_takes_everything_newest_service_first) {
    RemovalInputs inputs;
    inputs.deployed = {deployed("n1", "IS-Notifier", "Notifier-stubs", 1),
                       deployed("n1", "IS-Notifier", "Notifier-service", 2),
                       deployed("n1", "IS-Notifier-Client", "Notifier-client", 3),
                       deployed("n2", "Static-Docs", "Docs", 4, "Samples")};
    RemovalRequest request;
    request.everything = true;
    auto plan = planRemoval(inputs, request);
    BOOST_REQUIRE(plan.size() == 3u);
    BOOST_TEST(plan[0].serviceName == "Static-Docs");
    BOOST_TEST(plan[1].serviceName == "IS-Notifier-Client");
    BOOST_TEST(plan[2].serviceName == "IS-Notifier");
    BOOST_TEST(
        packageNames(plan[2]) == (std::vector<std::string>{"Notifier-service", "Notifier-stubs"}),
        boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()
