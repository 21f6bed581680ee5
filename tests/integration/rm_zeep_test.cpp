// A generic SOAP client must consume the served WSDL unchanged (SPEC section 3): zeep (Debian's
// python3-zeep) loads GET /wsdl and calls every ResourceManager operation.
#include <boost/test/unit_test.hpp>
#include <map>

#include "deployer/package_archive.h"
#include "rm_test_helpers.h"

using namespace rm::testing;

BOOST_AUTO_TEST_SUITE(rm_zeep)

BOOST_AUTO_TEST_CASE(zeep_calls_every_operation) {
    const std::filesystem::path python = "/usr/bin/python3";
    BOOST_REQUIRE_MESSAGE(std::filesystem::exists(python), "Debian's /usr/bin/python3 is needed");
    RmInstance rm;
    auto out = rm.dir() / "zeep.out";
    int rc = runProgram(python.string(),
                        {(sourceDir() / "tests" / "integration" / "zeep_client.py").string(),
                         rm.url(), "--agent", rm.agentUrl()},
                        out);
    std::string output = readText(out);
    BOOST_TEST_MESSAGE("zeep_client.py:\n" << output);
    BOOST_TEST(rc == 0, "zeep_client.py exited " << rc << ":\n" << output);
    BOOST_TEST(output.find("FAIL") == std::string::npos);
    for (const char* check : {"ok load_wsdl",
                              "ok soap_address_is_this_rm",
                              "ok AddResources_returns_report_id",
                              "ok GetReport_closed",
                              "ok GetReport_success",
                              "ok GetReport_resources_added",
                              "ok ListResources_published",
                              "ok ListResources_filter_type",
                              "ok RemoveResources_success",
                              "ok RemoveResources_gone",
                              "ok DisposeScope_success",
                              "ok DisposeScope_empties_scope",
                              "ok CreateJoinToken_token_and_pin",
                              "ok ListJoinTokens_lists_it",
                              "ok ca_pem_matches_pin",
                              "ok EnrollNode_issues_certificate",
                              "ok EnrollNode_second_use",
                              "ok EnrollNode_token_used_up_AccessDeniedFault",
                              "ok RegisterNode_without_certificate_AccessDeniedFault",
                              "ok RegisterNode_on_operator_port_AccessDeniedFault",
                              "ok RegisterNode_ack",
                              "ok Heartbeat_ack",
                              "ok Heartbeat_unknown_node_not_registered",
                              "ok Heartbeat_for_another_node_AccessDeniedFault",
                              "ok ListNodes_shows_node",
                              "ok SendReport_unknown_callback_is_fault",
                              "ok RenewNodeCertificate_same_identity",
                              "ok RegisterNode_second_node_ack",
                              "ok RemoveNode_removed",
                              "ok RemoveNode_certificate_refused_AccessDeniedFault",
                              "ok RemoveNode_unknown_InvalidRequestFault",
                              "ok RevokeJoinToken_revoked",
                              "ok ListJoinTokens_without_revoked",
                              "ok EnrollNode_revoked_token_AccessDeniedFault",
                              "ok CreateJoinToken_on_agent_port_AccessDeniedFault",
                              "ok wrong_scope_InvalidScopeFault",
                              "ok DisposeScope_wrong_scope_InvalidScopeFault",
                              "ok unknown_type_InvalidRequestFault",
                              "ok unknown_report_NoSuchReportFault",
                              "ok no_state_change_after_faults",
                              "0 failure(s)"}) {
        BOOST_TEST_CONTEXT(check) {
            BOOST_TEST(output.find(std::string(check) + "\n") != std::string::npos);
        }
    }
    // What zeep did is what the RM recorded: the node it registered is listed by our own client,
    // and what it was refused left no node behind.
    std::map<std::string, std::string> nodes;
    for (const auto& n : rm.client()->listNodes()) nodes[n.id] = n.name;
    BOOST_TEST(nodes["zeep-node-0001"] == "zeep-node");
    BOOST_TEST(!nodes.contains("zeep-node-0003"));
    BOOST_TEST(!nodes.contains("zeep-node-0004"));
}

// A software deployment through the generic client: zeep adds a sample service on a real
// node-agent, polls GetReport until CLOSED, reads the package states and removes it again.
BOOST_AUTO_TEST_CASE(zeep_deploys_and_removes_a_sample_service) {
    const std::filesystem::path python = "/usr/bin/python3";
    BOOST_REQUIRE_MESSAGE(std::filesystem::exists(python), "Debian's /usr/bin/python3 is needed");
    RmInstance rm({"--heartbeat-interval-ms", "300"});
    for (const char* sample : {"is-notifier-stubs", "is-notifier-service"}) {
        rm::deployer::buildPackage(sourceDir() / "etc" / "packages" / sample,
                                   rm.repository() / (std::string(sample) + ".tar.gz"));
    }
    rm.restart();  // indexes the repository at start
    std::vector<std::string> agentArgs{"--name",      "zeep-agent", "--listen",
                                       "127.0.0.1:0", "--root",     (rm.dir() / "agent").string()};
    auto join = joinArgs(rm.daemon());
    agentArgs.insert(agentArgs.end(), join.begin(), join.end());
    DaemonProcess agent("node-agent", agentArgs, rm.dir() / "agent.log");
    auto client = rm.client();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (client->listNodes().empty() && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    BOOST_REQUIRE_MESSAGE(client->listNodes().size() == 1u, agent.log());
    auto out = rm.dir() / "zeep-software.out";
    int rc = runProgram(python.string(),
                        {(sourceDir() / "tests" / "integration" / "zeep_client.py").string(), rm.url(),
                         "--software", "zeep-agent"},
                        out);
    std::string output = readText(out);
    BOOST_TEST_MESSAGE("zeep_client.py --software:\n" << output);
    BOOST_TEST(rc == 0, "zeep_client.py exited " << rc << ":\n" << output);
    for (const char* check : {"ok software_node_listed", "ok software_AddResources_returns_report_id",
                              "ok software_GetReport_closed", "ok software_GetReport_success",
                              "ok software_service_deployed_on_node", "ok software_dependencies_resolved",
                              "ok software_package_states", "ok software_ghn_closed",
                              "ok software_running_instance_listed", "ok software_RemoveResources_success",
                              "ok software_packages_undeployed", "ok software_running_instance_gone",
                              "0 failure(s)"}) {
        BOOST_TEST_CONTEXT(check) {
            BOOST_TEST(output.find(std::string(check) + "\n") != std::string::npos);
        }
    }
    // What zeep saw is what the node has: the service's container is gone again.
    BOOST_TEST(!std::filesystem::exists(rm.dir() / "agent" / "services" / "IS-Notifier" / "Notifier-service"));
}

BOOST_AUTO_TEST_SUITE_END()
