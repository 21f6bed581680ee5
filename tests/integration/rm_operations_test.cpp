// The Resource Manager's operations end to end: the real daemon on loopback, called with the
// generated client (rm::client::RmClient), its browser views over raw HTTP, and rmctl.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <map>

#include "rm_test_helpers.h"
#include "service/access_policy.h"

using namespace rm::testing;
using rm::client::ClientError;
using rm::client::RmClient;

namespace {

std::vector<std::string> rowsOf(RmClient& client, const std::optional<std::string>& type = {},
                                const std::optional<std::string>& status = {}) {
    std::vector<std::string> rows;
    for (const auto& r : client.listResources(type, status))
        rows.push_back(r.type + " " + r.id + " " + r.status);
    std::sort(rows.begin(), rows.end());
    return rows;
}

std::map<std::string, std::pair<std::string, std::string>> outcomes(
    const rm::reports::ResourceReport& r) {
    std::map<std::string, std::pair<std::string, std::string>> out;
    for (const auto& e : r.resources) out[e.type + " " + e.id] = {e.status, e.errorDescription};
    return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(rm_operations)

BOOST_AUTO_TEST_CASE(add_list_remove_dispose) {
    RmInstance rm;
    auto client = rm.client();
    const std::vector<std::pair<std::string, std::string>> resources{
        {"GenericResource", "gr-1"},
        {"Collection", "col-1"},
        {"RuntimeResource", "rr-1"},
        {"MetadataCollection", "mc-1"}};

    std::string id = client->addResources(plainRequest(resources));
    BOOST_TEST(id.size() == 36u);
    auto first = rm::reports::parseReportXml(client->getReport(id));
    BOOST_TEST((first.status == "OPEN" || first.status == "CLOSED"));
    BOOST_TEST(first.id == id);

    auto report = waitClosed(*client, id);
    BOOST_TEST(report.status == "CLOSED");
    BOOST_TEST(report.sessionExitStatus.value_or("") == "SUCCESS");
    BOOST_TEST(report.operation == "AddResources");
    BOOST_TEST(report.targetScope == kScope);
    BOOST_REQUIRE(report.resources.size() == resources.size());
    for (size_t i = 0; i < resources.size(); ++i) {  // in request order
        BOOST_TEST(report.resources[i].type == resources[i].first);
        BOOST_TEST(report.resources[i].id == resources[i].second);
        BOOST_TEST(report.resources[i].status == "ADDED");
        BOOST_TEST(report.resources[i].errorDescription == "");
    }

    // GetReport carries byte for byte what GET /reports/{id}.xml serves after its declaration.
    std::string viaSoap = client->getReport(id);
    auto viaHttp = httpRequest(rm.url(), "GET", "/reports/" + id + ".xml");
    BOOST_TEST(viaHttp.status == 200);
    BOOST_TEST(viaHttp.contentType.find("xml") != std::string::npos);
    BOOST_REQUIRE(viaHttp.body.rfind(kXmlDeclaration, 0) == 0u);
    BOOST_TEST(viaHttp.body.substr(kXmlDeclaration.size()) == viaSoap);
    BOOST_TEST(viaSoap.find("<ErrorDescription>-</ErrorDescription>") != std::string::npos);
    auto viaAccept =
        httpRequest(rm.url(), "GET", "/reports/" + id, {}, {}, {{"Accept", "application/xml"}});
    BOOST_TEST(viaAccept.body == viaHttp.body);
    BOOST_TEST(schemaProblems(viaHttp.body, rm.dir()) == "");

    BOOST_TEST(rowsOf(*client) ==
               (std::vector<std::string>{
                   "Collection col-1 PUBLISHED", "GenericResource gr-1 PUBLISHED",
                   "MetadataCollection mc-1 PUBLISHED", "RuntimeResource rr-1 PUBLISHED"}));
    BOOST_TEST(rowsOf(*client, std::string("Collection")) ==
               std::vector<std::string>{"Collection col-1 PUBLISHED"});
    for (const auto& row : client->listResources()) {
        BOOST_TEST(rm::reports::isIsoTimestampWithOffset(row.lastChange));
    }

    // Adding again changes nothing and succeeds.
    auto again =
        waitClosed(*client, client->addResources(plainRequest({{"GenericResource", "gr-1"}})));
    BOOST_TEST(again.sessionExitStatus.value_or("") == "SUCCESS");
    BOOST_TEST(rowsOf(*client).size() == 4u);

    // Remove one: REMOVED, gone from the default listing, still visible as UNPUBLISHED.
    auto removed =
        waitClosed(*client, client->removeResources(plainRequest({{"GenericResource", "gr-1"}})));
    BOOST_TEST(removed.operation == "RemoveResources");
    BOOST_TEST(removed.sessionExitStatus.value_or("") == "SUCCESS");
    BOOST_REQUIRE(removed.resources.size() == 1u);
    BOOST_TEST(removed.resources[0].status == "REMOVED");
    BOOST_TEST(rowsOf(*client) == (std::vector<std::string>{"Collection col-1 PUBLISHED",
                                                            "MetadataCollection mc-1 PUBLISHED",
                                                            "RuntimeResource rr-1 PUBLISHED"}));
    BOOST_TEST(rowsOf(*client, {}, std::string("UNPUBLISHED")) ==
               std::vector<std::string>{"GenericResource gr-1 UNPUBLISHED"});
    BOOST_TEST(schemaProblems(kXmlDeclaration + client->getReport(removed.id), rm.dir()) == "");

    // Removing what is not in the scope fails that resource and the session, with a reason; the
    // other resource of the same request is still removed.
    auto notInScope = waitClosed(
        *client, client->removeResources(
                     plainRequest({{"GenericResource", "never-added"}, {"Collection", "col-1"}})));
    BOOST_TEST(notInScope.sessionExitStatus.value_or("") == "FAILED");
    auto o = outcomes(notInScope);
    BOOST_TEST(o["GenericResource never-added"].first == "FAILED");
    BOOST_TEST(o["GenericResource never-added"].second.find("not in scope") != std::string::npos);
    BOOST_TEST(o["Collection col-1"].first == "REMOVED");
    BOOST_TEST(schemaProblems(kXmlDeclaration + client->getReport(notInScope.id), rm.dir()) == "");
    // Removing the already removed one again fails too, saying what state it is in.
    auto twice =
        waitClosed(*client, client->removeResources(plainRequest({{"GenericResource", "gr-1"}})));
    BOOST_TEST(twice.sessionExitStatus.value_or("") == "FAILED");
    BOOST_TEST(twice.resources.at(0).errorDescription.find("UNPUBLISHED") != std::string::npos);

    // DisposeScope removes everything left.
    auto disposed = waitClosed(*client, client->disposeScope(kScope));
    BOOST_TEST(disposed.operation == "DisposeScope");
    BOOST_TEST(disposed.sessionExitStatus.value_or("") == "SUCCESS");
    BOOST_TEST(outcomes(disposed).size() == 2u);
    for (const auto& [key, outcome] : outcomes(disposed)) {
        BOOST_TEST_CONTEXT(key) {
            BOOST_TEST(outcome.first == "REMOVED");
        }
    }
    BOOST_TEST(rowsOf(*client).empty());
    // Disposing an empty scope is an empty, successful session.
    auto empty = waitClosed(*client, client->disposeScope(kScope));
    BOOST_TEST(empty.sessionExitStatus.value_or("") == "SUCCESS");
    BOOST_TEST(empty.resources.empty());
    BOOST_TEST(schemaProblems(kXmlDeclaration + client->getReport(empty.id), rm.dir()) == "");

    // Re-adding a removed resource brings it back.
    auto back =
        waitClosed(*client, client->addResources(plainRequest({{"GenericResource", "gr-1"}})));
    BOOST_TEST(back.sessionExitStatus.value_or("") == "SUCCESS");
    BOOST_TEST(rowsOf(*client) == std::vector<std::string>{"GenericResource gr-1 PUBLISHED"});
}

BOOST_AUTO_TEST_CASE(ghn_of_unregistered_node_fails_clearly) {
    RmInstance rm;
    auto client = rm.client();
    auto report = waitClosed(
        *client,
        client->addResources(plainRequest({{"GHN", "no-such-node"}, {"GenericResource", "ok-1"}})));
    BOOST_TEST(report.sessionExitStatus.value_or("") == "FAILED");
    auto o = outcomes(report);
    BOOST_TEST(o["GHN no-such-node"].first == "FAILED");
    const std::string& why = o["GHN no-such-node"].second;
    BOOST_TEST(why.find("no-such-node") != std::string::npos);
    BOOST_TEST(why.find("not a node registered") != std::string::npos);
    BOOST_TEST(o["GenericResource ok-1"].first == "ADDED");
    BOOST_TEST(rowsOf(*client) == std::vector<std::string>{"GenericResource ok-1 PUBLISHED"});
    auto running =
        waitClosed(*client, client->addResources(plainRequest({{"RunningInstance", "ri-1"}})));
    BOOST_TEST(running.sessionExitStatus.value_or("") == "FAILED");
    BOOST_TEST(running.resources.at(0).errorDescription.find("ri-1") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(faults_change_nothing) {
    RmInstance rm;
    auto client = rm.client();
    waitClosed(*client, client->addResources(plainRequest({{"GenericResource", "keep"}})));
    auto before = snapshot(rm);
    BOOST_TEST(before.reportIds.size() == 1u);

    BOOST_TEST(faultOf([&] {
                   client->addResources(plainRequest({{"GenericResource", "x"}}, "/gcube/other"));
               }) == "InvalidScopeFault");
    BOOST_TEST(faultOf([&] {
                   client->addResources(plainRequest({{"GenericResource", "x"}}, "/gcube"));
               }) == "InvalidScopeFault");
    BOOST_TEST(faultOf([&] {
                   client->removeResources(plainRequest({{"GenericResource", "keep"}}, "/x"));
               }) == "InvalidScopeFault");
    BOOST_TEST(faultOf([&] { client->disposeScope("/gcube/devsec/sub"); }) == "InvalidScopeFault");
    BOOST_TEST(faultOf([&] { client->getReport("00000000-0000-0000-0000-000000000000"); }) ==
               "NoSuchReportFault");
    BOOST_TEST(faultOf([&] { client->getReport("../../etc/passwd"); }) == "NoSuchReportFault");
    BOOST_TEST(faultOf([&] { client->getReport(""); }) == "NoSuchReportFault");
    for (const auto& bad : std::vector<std::vector<std::pair<std::string, std::string>>>{
             {{"NoSuchType", "x"}},                                  // unknown type
             {{"GenericResource", "ok"}, {"genericresource", "x"}},  // case matters
             {{"GenericResource", "bad id"}},                        // bad identifier
             {{"GenericResource", "../x"}},
             {{"GenericResource", ""}},
             {{"GenericResource", std::string(201, 'a')}},
             {{"GenericResource", "dup"},
              {"Collection", "c"},
              {"GenericResource", "dup"}},  // duplicate
             {},                            // nothing to do
         }) {
        std::string what =
            bad.empty() ? "empty" : bad.back().first + ":" + bad.back().second.substr(0, 20);
        BOOST_TEST_CONTEXT(what) {
            BOOST_TEST(faultOf([&] { client->addResources(plainRequest(bad)); }) ==
                       "InvalidRequestFault");
            BOOST_TEST(faultOf([&] { client->removeResources(plainRequest(bad)); }) ==
                       "InvalidRequestFault");
        }
    }
    // The fault says what is wrong.
    try {
        client->addResources(plainRequest({{"Frobnicator", "x"}}));
        BOOST_ERROR("no fault");
    } catch (const ClientError& e) {
        BOOST_TEST(std::string(e.what()).find("Frobnicator") != std::string::npos);
    }
    BOOST_TEST(faultOf([&] { client->listResources(std::nullopt, std::string("NOTASTATE")); }) !=
               "<no fault>");
    BOOST_TEST(snapshot(rm) == before);
    BOOST_TEST(
        httpRequest(rm.url(), "GET", "/reports/00000000-0000-0000-0000-000000000000.xml").status ==
        404);
    BOOST_TEST(
        httpRequest(rm.url(), "GET", "/reports/00000000-0000-0000-0000-000000000000").status ==
        404);
}

BOOST_AUTO_TEST_CASE(users_file_requires_credentials) {
    TempDir users("rm-users");
    auto file = users.path() / "users";
    {
        std::ofstream out(file);
        out << "alice:" << rm::service::AccessPolicy::hashPassword("s3cret-pw") << ":operator\n"
            << "bob:" << rm::service::AccessPolicy::hashPassword("bob-pw") << ":operator:/gcube/elsewhere\n";
    }
    std::filesystem::permissions(file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    RmInstance rm({"--users", file.string(), "--agent-listen", "127.0.0.1:0"});
    auto anonymous = rm.client();
    auto alice = rm.client("alice", "s3cret-pw");
    BOOST_TEST(faultOf([&] {
                   anonymous->addResources(plainRequest({{"GenericResource", "a"}}));
               }) == "AccessDeniedFault");
    BOOST_TEST(faultOf([&] {
                   anonymous->removeResources(plainRequest({{"GenericResource", "a"}}));
               }) == "AccessDeniedFault");
    BOOST_TEST(faultOf([&] { anonymous->disposeScope(kScope); }) == "AccessDeniedFault");
    auto wrong = rm.client("alice", "not-the-password");
    BOOST_TEST(faultOf([&] {
                   wrong->addResources(plainRequest({{"GenericResource", "a"}}));
               }) == "AccessDeniedFault");
    auto otherScope = rm.client("bob", "bob-pw");
    BOOST_TEST(faultOf([&] {
                   otherScope->addResources(plainRequest({{"GenericResource", "a"}}));
               }) == "AccessDeniedFault");
    BOOST_TEST(rowsOf(*alice).empty());

    auto report = waitClosed(*alice, alice->addResources(plainRequest({{"GenericResource", "a"}})));
    BOOST_TEST(report.sessionExitStatus.value_or("") == "SUCCESS");
    // Reading needs credentials too (tests/integration/rm_access_test.cpp has the roles).
    BOOST_TEST(faultOf([&] { anonymous->listResources(); }) == "AccessDeniedFault");
    BOOST_TEST(rowsOf(*alice) == std::vector<std::string>{"GenericResource a PUBLISHED"});
    BOOST_TEST(alice->getReport(report.id).find(report.id) != std::string::npos);
    BOOST_TEST(rm.daemon().log().find("access_denied") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(browser_views) {
    RmInstance rm;
    auto client = rm.client();
    // Big enough that the session is still OPEN when the page is fetched right away.
    std::vector<std::pair<std::string, std::string>> many;
    for (int i = 0; i < 400; ++i) many.emplace_back("GenericResource", "view-" + std::to_string(i));
    std::string id = client->addResources(plainRequest(many));
    auto openPage = httpRequest(rm.url(), "GET", "/reports/" + id);
    BOOST_TEST(openPage.status == 200);
    BOOST_TEST(openPage.contentType.find("text/html") != std::string::npos);
    BOOST_TEST(openPage.body.find(id) != std::string::npos);
    BOOST_TEST(openPage.body.find("http-equiv=\"refresh\"") != std::string::npos);
    BOOST_TEST(openPage.body.find("OPEN") != std::string::npos);
    waitClosed(*client, id, std::chrono::seconds(30));
    auto closedPage = httpRequest(rm.url(), "GET", "/reports/" + id);
    BOOST_TEST(closedPage.status == 200);
    BOOST_TEST(closedPage.body.find("http-equiv=\"refresh\"") == std::string::npos);
    BOOST_TEST(closedPage.body.find("SUCCESS") != std::string::npos);

    auto home = httpRequest(rm.url(), "GET", "/");
    BOOST_TEST(home.status == 200);
    BOOST_TEST(home.contentType.find("text/html") != std::string::npos);
    BOOST_TEST(home.body.find(kScope) != std::string::npos);
    BOOST_TEST(home.body.find("/reports/" + id) != std::string::npos);
    // The first page of the resources (by type and ID), their count, and the way to the rest.
    BOOST_TEST(home.body.find("<h2>Resources (400)</h2>") != std::string::npos);
    BOOST_TEST(home.body.find("view-0") != std::string::npos);
    BOOST_TEST(home.body.find("rel=\"next\" href=\"/resources?limit=100&amp;after=GenericResource%2F") !=
               std::string::npos);
    auto resources = httpRequest(rm.url(), "GET", "/resources");
    BOOST_TEST(resources.status == 200);
    BOOST_TEST(resources.body.find("view-0") != std::string::npos);
    BOOST_TEST(resources.body.find("PUBLISHED") != std::string::npos);
    auto nodes = httpRequest(rm.url(), "GET", "/nodes");
    BOOST_TEST(nodes.status == 200);
    BOOST_TEST(nodes.body.find("No node has registered yet") != std::string::npos);

    for (const std::string path : {"/wsdl", "/?wsdl"}) {
        BOOST_TEST_CONTEXT(path) {
            auto wsdl = httpRequest(rm.url(), "GET", path);
            BOOST_TEST(wsdl.status == 200);
            BOOST_TEST(wsdl.contentType.find("xml") != std::string::npos);
            BOOST_TEST(wsdl.body.find("<soap:address location=\"" + rm.url() + "/\"/>") !=
                       std::string::npos);
            BOOST_TEST(wsdl.body.find("wsdl:definitions") != std::string::npos);
        }
    }
    auto health = httpRequest(rm.url(), "GET", "/healthz");
    BOOST_TEST(health.status == 200);
    BOOST_TEST(health.body.find("\"status\":\"ok\"") != std::string::npos);

    auto metrics = httpRequest(rm.url(), "GET", "/metrics");
    BOOST_TEST(metrics.status == 200);
    BOOST_TEST(metrics.contentType.find("text/plain") != std::string::npos);
    BOOST_TEST(metrics.body.find("# TYPE rm_scoped_resources gauge") != std::string::npos);
    BOOST_TEST(metrics.body.find("rm_scoped_resources{state=\"PUBLISHED\"} 400\n") !=
               std::string::npos);
    BOOST_TEST(metricValue(metrics.body, "rm_open_sessions") == "0");

    auto engine = httpRequest(rm.url(), "GET", "/engine");
    BOOST_TEST(engine.status == 200);
    BOOST_TEST(engine.contentType.find("json") != std::string::npos);
    BOOST_TEST(engine.body.find("\"workers\"") != std::string::npos);
    for (const char* worker : {"state", "api", "sessions", "presence"}) {
        BOOST_TEST_CONTEXT(worker) {
            BOOST_TEST(engine.body.find("\"name\":\"" + std::string(worker) +
                                        "\",\"state\":\"started\"") != std::string::npos);
        }
    }
    BOOST_TEST(httpRequest(rm.url(), "GET", "/no/such/page").status == 404);
    BOOST_TEST(httpRequest(rm.url(), "GET", "/reports/").status == 404);
    BOOST_TEST(httpRequest(rm.url(), "GET", "/reports/%3Cscript%3E").status == 404);
}

BOOST_AUTO_TEST_CASE(rmctl_exit_statuses) {
    RmInstance rm;
    auto out = rm.dir() / "rmctl.out";
    BOOST_TEST(runProgram("rmctl",
                          {"--manager", rm.url(), "add", "--scope", kScope, "--resource",
                           "GenericResource:cli-1", "--resource", "Collection:cli-2", "--wait"},
                          out) == 0);
    BOOST_TEST_MESSAGE("rmctl add: " << readText(out));
    auto client = rm.client();
    BOOST_TEST(rowsOf(*client) == (std::vector<std::string>{"Collection cli-2 PUBLISHED",
                                                            "GenericResource cli-1 PUBLISHED"}));
    BOOST_TEST(runProgram("rmctl", {"--manager", rm.url(), "resources"}, out) == 0);
    BOOST_TEST(readText(out).find("cli-1") != std::string::npos);
    BOOST_TEST(runProgram("rmctl", {"--manager", rm.url(), "nodes"}, out) == 0);

    // A session that ends FAILED.
    BOOST_TEST(runProgram("rmctl",
                          {"--manager", rm.url(), "remove", "--scope", kScope, "--resource",
                           "GenericResource:not-there", "--wait"},
                          out) == 1);
    BOOST_TEST(runProgram("rmctl",
                          {"--manager", rm.url(), "add", "--scope", kScope, "--resource",
                           "GHN:unknown-node", "--wait"},
                          out) == 1);
    // A request the RM refuses.
    BOOST_TEST(runProgram("rmctl",
                          {"--manager", rm.url(), "add", "--scope", "/wrong/scope", "--resource",
                           "GenericResource:x", "--wait"},
                          out) == 1);
    // report ID --wait of a finished successful session.
    std::string id = client->addResources(plainRequest({{"GenericResource", "cli-3"}}));
    BOOST_TEST(runProgram("rmctl", {"--manager", rm.url(), "report", id, "--wait"}, out) == 0);
    BOOST_TEST(runProgram("rmctl", {"--manager", rm.url(), "report", id, "--xml"}, out) == 0);
    BOOST_TEST(readText(out).find("<ResourceReport>") != std::string::npos);

    // The RM is down.
    std::string url = rm.url();
    rm.kill9();
    BOOST_TEST(runProgram("rmctl",
                          {"--manager", url, "add", "--scope", kScope, "--resource",
                           "GenericResource:x", "--wait"},
                          out) == 3);
    BOOST_TEST(runProgram("rmctl", {"--manager", url, "report", id}, out) == 3);
}

BOOST_AUTO_TEST_SUITE_END()
