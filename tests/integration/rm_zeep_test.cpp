// A generic SOAP client must consume the served WSDL unchanged (SPEC section 3): zeep (Debian's
// python3-zeep) loads GET /wsdl and calls every ResourceManager operation.
#include <boost/test/unit_test.hpp>

#include "rm_test_helpers.h"

using namespace rm::testing;

BOOST_AUTO_TEST_SUITE(rm_zeep)

BOOST_AUTO_TEST_CASE(zeep_calls_every_operation) {
    const std::filesystem::path python = "/usr/bin/python3";
    BOOST_REQUIRE_MESSAGE(std::filesystem::exists(python), "Debian's /usr/bin/python3 is needed");
    RmInstance rm;
    auto out = rm.dir() / "zeep.out";
    int rc = runProgram(
        python.string(),
        {(sourceDir() / "tests" / "integration" / "zeep_client.py").string(), rm.url()}, out);
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
                              "ok RegisterNode_ack",
                              "ok Heartbeat_ack",
                              "ok Heartbeat_unknown_node_not_registered",
                              "ok ListNodes_shows_node",
                              "ok SendReport_unknown_callback_is_fault",
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
    // What zeep did is what the RM recorded: the node it registered is listed by our own client.
    auto nodes = rm.client()->listNodes();
    BOOST_REQUIRE(nodes.size() == 1u);
    BOOST_TEST(nodes[0].id == "zeep-node-0001");
    BOOST_TEST(nodes[0].name == "zeep-node");
}

BOOST_AUTO_TEST_SUITE_END()
