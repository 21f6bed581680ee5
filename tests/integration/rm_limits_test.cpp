// Bounded state and output (issue 11 item 6) against the real daemon: limits per scope and on
// open sessions refuse a request with an InvalidRequestFault that names the limit, the current
// figure and the flag, and change nothing; old CLOSED sessions are pruned with their reports,
// never an OPEN one; the browser listings are keyset-paged and GET / stays small.
#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <map>
#include <regex>
#include <set>

#include "agent_test_helpers.h"
#include "rm_test_helpers.h"

using namespace rm::testing;
using rm::client::ClientError;
using rm::client::RmClient;

namespace {

using Resources = std::vector<std::pair<std::string, std::string>>;

Resources generic(const std::string& prefix, int from, int count) {
    Resources out;
    for (int i = from; i < from + count; ++i) {
        char id[64];
        std::snprintf(id, sizeof id, "%s%05d", prefix.c_str(), i);
        out.emplace_back("GenericResource", id);
    }
    return out;
}

// RM_FAULTS for the daemons started while it lives (they inherit the test's environment).
class FaultsForDaemons {
  public:
    explicit FaultsForDaemons(const std::string& spec) { ::setenv("RM_FAULTS", spec.c_str(), 1); }
    ~FaultsForDaemons() { ::unsetenv("RM_FAULTS"); }
};

struct Refusal {
    std::string fault;
    std::string message;
};

template <class Call>
Refusal refusalOf(Call&& call) {
    try {
        call();
    } catch (const ClientError& e) {
        return {e.faultName.empty() ? "<untyped>" : e.faultName, e.what()};
    }
    return {"<no fault>", ""};
}

std::string addedId(RmClient& client, const Resources& resources, std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    auto id = client.addResources(plainRequest(resources));
    auto report = waitClosed(client, id, timeout);
    BOOST_REQUIRE(report.sessionExitStatus.value_or("") == "SUCCESS");
    return id;
}

// Every row of a resources table: "TYPE ID".
std::vector<std::string> tableRows(const std::string& page) {
    static const std::regex row(R"re(<tr><td>([A-Za-z]+)</td><td><code>([^<]+)</code>)re");
    std::vector<std::string> out;
    for (std::sregex_iterator it(page.begin(), page.end(), row), end; it != end; ++it) {
        out.push_back((*it)[1].str() + " " + (*it)[2].str());
    }
    return out;
}

// The target of the page's "Next page" link, unescaped; empty when there is none.
std::string nextLink(const std::string& page) {
    static const std::regex next(R"re(<a rel="next" href="([^"]+)">Next page</a>)re");
    std::smatch m;
    if (!std::regex_search(page, m, next)) return {};
    return std::regex_replace(m[1].str(), std::regex("&amp;"), "&");
}

bool reportAnswers(RmClient& client, const std::string& id) {
    try {
        client.getReport(id);
        return true;
    } catch (const ClientError& e) {
        if (e.faultName != "NoSuchReportFault") throw;
        return false;
    }
}

}  // namespace

BOOST_AUTO_TEST_SUITE(rm_limits)

BOOST_AUTO_TEST_CASE(resources_over_the_scope_limit_are_refused_and_change_nothing) {
    RmInstance rm({"--max-resources", "10"});
    auto client = rm.client();
    addedId(*client, generic("in-", 0, 8));
    auto before = snapshot(rm);

    // 2 already in the scope and 3 new: 8 + 3 > 10.
    Resources over = generic("in-", 6, 2);
    for (const auto& r : generic("new-", 0, 3)) over.push_back(r);
    auto refused = refusalOf([&] { client->addResources(plainRequest(over)); });
    BOOST_TEST(refused.fault == "InvalidRequestFault");
    BOOST_TEST(refused.message.find("holds 8 resources and this request would add 3") != std::string::npos,
               refused.message);
    BOOST_TEST(refused.message.find("limit of 10 (--max-resources)") != std::string::npos, refused.message);
    BOOST_TEST(snapshot(rm) == before);
    BOOST_TEST(rm.daemon().log().find("event=limit_reached limit=max-resources") != std::string::npos);

    // Those already in the scope add nothing: 8 in the scope + 2 new fit exactly.
    Resources fits = generic("in-", 0, 8);
    for (const auto& r : generic("new-", 0, 2)) fits.push_back(r);
    addedId(*client, fits);
    BOOST_TEST(client->listResources().size() == 10u);
    BOOST_TEST(refusalOf([&] { client->addResources(plainRequest(generic("more-", 0, 1))); }).fault ==
               "InvalidRequestFault");
    // Resources that left the scope (UNPUBLISHED) do not count.
    auto removal = client->removeResources(plainRequest(generic("in-", 0, 4)));
    BOOST_REQUIRE(waitClosed(*client, removal).sessionExitStatus.value_or("") == "SUCCESS");
    addedId(*client, generic("more-", 0, 4));
    BOOST_TEST(client->listResources().size() == 10u);
}

BOOST_AUTO_TEST_CASE(no_new_session_while_the_open_limit_is_reached) {
    // The first two sessions do not close (as if the RM stopped before closing them) until
    // their timeout: two OPEN sessions, the limit.
    FaultsForDaemons faults("rm.before_session_close=drop,times=2");
    RmInstance rm({"--max-open-sessions", "2", "--session-timeout-ms", "5000"});
    auto client = rm.client();
    std::vector<std::string> open;
    for (int i = 0; i < 2; ++i) open.push_back(client->addResources(plainRequest(generic("open-", i, 1))));
    BOOST_REQUIRE(waitUntil(
        [&] {
            return std::all_of(open.begin(), open.end(), [&](const std::string& id) {
                auto r = rm::reports::parseReportXml(client->getReport(id));
                return r.status == "OPEN" && r.resources.size() == 1u && r.resources[0].status == "ADDED";
            });
        },
        std::chrono::seconds(10)));
    auto before = snapshot(rm);
    BOOST_REQUIRE(before.openSessions == "2");

    auto add = refusalOf([&] { client->addResources(plainRequest(generic("late-", 0, 1))); });
    BOOST_TEST(add.fault == "InvalidRequestFault");
    BOOST_TEST(add.message.find("2 sessions are OPEN, the limit is 2 (--max-open-sessions)") != std::string::npos,
               add.message);
    BOOST_TEST(add.message.find("retry later") != std::string::npos, add.message);
    BOOST_TEST(refusalOf([&] { client->removeResources(plainRequest(generic("open-", 0, 1))); }).fault ==
               "InvalidRequestFault");
    BOOST_TEST(refusalOf([&] { client->disposeScope(kScope); }).fault == "InvalidRequestFault");
    BOOST_TEST(snapshot(rm) == before);

    // Retried later, once the open ones have timed out, it is accepted.
    for (const auto& id : open) waitClosed(*client, id, std::chrono::seconds(20));
    addedId(*client, generic("late-", 0, 1));
}

BOOST_AUTO_TEST_CASE(pruning_keeps_the_newest_closed_sessions_and_never_an_open_one) {
    // The first session never closes (its close is dropped; the timeout is 10 minutes).
    FaultsForDaemons faults("rm.before_session_close=drop,times=1");
    RmInstance rm({"--max-sessions-kept", "3"});
    auto client = rm.client();
    auto open = client->addResources(plainRequest(generic("open-", 0, 1)));
    BOOST_REQUIRE(waitUntil(
        [&] { return rm::reports::parseReportXml(client->getReport(open)).resources[0].status == "ADDED"; },
        std::chrono::seconds(10)));
    std::vector<std::string> closed;
    for (int i = 0; i < 6; ++i) closed.push_back(addedId(*client, generic("kept-", 2 * i, 2)));

    // The three oldest closed ones go, in the background.
    BOOST_TEST(waitUntil([&] { return !reportAnswers(*client, closed[2]); }, std::chrono::seconds(15)));
    for (int i = 0; i < 3; ++i) {
        BOOST_TEST_CONTEXT("pruned " << i) {
            auto refused = refusalOf([&] { client->getReport(closed[i]); });
            BOOST_TEST(refused.fault == "NoSuchReportFault");
            BOOST_TEST(httpRequest(rm.url(), "GET", "/reports/" + closed[i]).status == 404);
            BOOST_TEST(httpRequest(rm.url(), "GET", "/reports/" + closed[i] + ".xml").status == 404);
        }
    }
    for (int i = 3; i < 6; ++i) {
        BOOST_TEST_CONTEXT("kept " << i) {
            auto report = rm::reports::parseReportXml(client->getReport(closed[i]));
            BOOST_TEST(report.status == "CLOSED");
            BOOST_TEST(report.resources.size() == 2u);
        }
    }
    // The OPEN one is the oldest of all, and stays.
    BOOST_TEST(rm::reports::parseReportXml(client->getReport(open)).status == "OPEN");
    auto home = snapshot(rm);
    BOOST_TEST(home.reportIds == (std::set<std::string>{open, closed[3], closed[4], closed[5]}));
    // Pruning takes reports, not what they did.
    BOOST_TEST(home.resources.size() == 13u);
    auto log = rm.daemon().log();
    BOOST_TEST(log.find("event=sessions_pruned count=") != std::string::npos);
    int pruned = 0;
    static const std::regex counted(R"(event=sessions_pruned count=(\d+))");
    for (std::sregex_iterator it(log.begin(), log.end(), counted), end; it != end; ++it) pruned += std::stoi((*it)[1]);
    BOOST_TEST(pruned == 3);

    // Still pruned after a restart: nothing comes back.
    rm.restart();
    auto again = rm.client();
    BOOST_TEST(!reportAnswers(*again, closed[0]));
    BOOST_TEST(reportAnswers(*again, closed[5]));
}

BOOST_AUTO_TEST_CASE(resources_pages_follow_next_links_over_every_row_once) {
    RmInstance rm;
    auto client = rm.client();
    Resources all = generic("page-", 0, 25);
    all.emplace_back("Collection", "col-1");
    all.emplace_back("Collection", "col-2");
    addedId(*client, all);
    // Two leave the scope: listed only with all=1.
    auto removal = client->removeResources(plainRequest({{"Collection", "col-1"}, {"GenericResource", "page-00007"}}));
    BOOST_REQUIRE(waitClosed(*client, removal).sessionExitStatus.value_or("") == "SUCCESS");

    std::vector<std::string> seen;
    std::string path = "/resources?limit=10";
    int pages = 0;
    while (!path.empty() && pages < 10) {
        auto page = httpRequest(rm.url(), "GET", path);
        BOOST_REQUIRE(page.status == 200);
        auto rows = tableRows(page.body);
        BOOST_TEST(rows.size() <= 10u);
        // The count is today's: 25 on the first page, 27 after the two inserted below.
        BOOST_TEST(page.body.find(pages == 0 ? "Showing 10 resources of 25." : " resources of 27, after <code>") !=
                   std::string::npos);
        BOOST_TEST(page.body.find("http-equiv=\"refresh\"") != std::string::npos);
        if (pages > 0) BOOST_TEST(page.body.find(">First page</a>") != std::string::npos);
        seen.insert(seen.end(), rows.begin(), rows.end());
        path = nextLink(page.body);
        if (++pages == 1) {
            BOOST_TEST(rows.size() == 10u);
            BOOST_TEST(path.find("/resources?limit=10&after=") == 0u, path);
            // Inserted while paging: one sorts before the cursor (never shown), one after it.
            addedId(*client, {{"Collection", "col-0-early"}, {"GenericResource", "page-99999-late"}});
        }
    }
    BOOST_TEST(pages == 3);
    std::map<std::string, int> times;
    for (const auto& r : seen) ++times[r];
    BOOST_TEST(seen.size() == 26u);  // 25 in the scope at the start, and the late one
    BOOST_TEST(times.size() == seen.size());
    BOOST_TEST(times.count("GenericResource page-99999-late") == 1u);
    BOOST_TEST(times.count("Collection col-0-early") == 0u);
    BOOST_TEST(times.count("GenericResource page-00007") == 0u);
    BOOST_TEST(times.count("Collection col-2") == 1u);
    BOOST_TEST(times.count("GenericResource page-00024") == 1u);

    auto withLeft = httpRequest(rm.url(), "GET", "/resources?all=1&limit=1000");
    auto everything = tableRows(withLeft.body);
    BOOST_TEST(everything.size() == 29u);
    BOOST_TEST(std::count(everything.begin(), everything.end(), "GenericResource page-00007") == 1);
    BOOST_TEST(nextLink(withLeft.body).empty());

    for (const std::string bad : {"/resources?limit=0", "/resources?limit=ten", "/resources?after=no-slash",
                                  "/nodes?limit=-1"}) {
        BOOST_TEST_CONTEXT(bad) { BOOST_TEST(httpRequest(rm.url(), "GET", bad).status == 400); }
    }
    auto nodes = httpRequest(rm.url(), "GET", "/nodes?limit=5");
    BOOST_TEST(nodes.status == 200);
    BOOST_TEST(nodes.body.find("No node has registered yet") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(home_page_stays_small_with_many_resources) {
    RmInstance rm;
    auto client = rm.client();
    addedId(*client, generic("many-", 0, 5000), std::chrono::seconds(120));
    auto home = httpRequest(rm.url(), "GET", "/");
    BOOST_REQUIRE(home.status == 200);
    BOOST_TEST(home.body.size() < 64u * 1024u, home.body.size());
    BOOST_TEST(home.body.find("<h2>Resources (5000)</h2>") != std::string::npos);
    BOOST_TEST(tableRows(home.body).size() == 100u);
    BOOST_TEST(home.body.find("many-00000") != std::string::npos);
    BOOST_TEST(nextLink(home.body) == "/resources?limit=100&after=GenericResource%2Fmany-00099");
    BOOST_TEST(home.body.find("http-equiv=\"refresh\"") != std::string::npos);
    BOOST_TEST(tableRows(httpRequest(rm.url(), "GET", "/resources").body).size() == 100u);
    BOOST_TEST(tableRows(httpRequest(rm.url(), "GET", "/resources?limit=1000").body).size() == 1000u);
    BOOST_TEST(tableRows(httpRequest(rm.url(), "GET", "/resources?limit=100000").body).size() == 1000u);
    auto metrics = httpRequest(rm.url(), "GET", "/metrics").body;
    BOOST_TEST(metrics.find("rm_scoped_resources{state=\"PUBLISHED\"} 5000") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_report_over_the_size_limit_is_refused_up_front) {
    RmInstance rm({"--max-report-bytes", "20000"});
    auto client = rm.client();
    auto before = snapshot(rm);
    auto refused = refusalOf([&] { client->addResources(plainRequest(generic("big-", 0, 300))); });
    BOOST_TEST(refused.fault == "InvalidRequestFault");
    BOOST_TEST(refused.message.find("more than the limit of 20000 bytes (--max-report-bytes)") != std::string::npos,
               refused.message);
    BOOST_TEST(snapshot(rm) == before);

    auto id = addedId(*client, generic("big-", 0, 100));
    BOOST_TEST(client->getReport(id).size() <= 20000u);
    addedId(*client, generic("big-", 100, 100));
    // Disposing of 200 would report on all of them: refused, saying how to go on.
    auto dispose = refusalOf([&] { client->disposeScope(kScope); });
    BOOST_TEST(dispose.fault == "InvalidRequestFault");
    BOOST_TEST(dispose.message.find("smaller RemoveResources requests") != std::string::npos, dispose.message);
    BOOST_TEST(client->listResources().size() == 200u);
}

BOOST_AUTO_TEST_CASE(too_many_items_in_one_request_name_max_items) {
    RmInstance rm({"--max-items", "5"});
    auto client = rm.client();
    auto refused = refusalOf([&] { client->addResources(plainRequest(generic("item-", 0, 6))); });
    BOOST_TEST(refused.fault == "InvalidRequestFault");
    BOOST_TEST(refused.message.find("(6; at most 5, set by --max-items)") != std::string::npos, refused.message);
    addedId(*client, generic("item-", 0, 5));
}

BOOST_AUTO_TEST_CASE(limits_below_one_are_a_usage_error) {
    TempDir dir("rm-limits");
    for (const std::string flag : {"--max-resources", "--max-open-sessions", "--max-sessions-kept"}) {
        BOOST_TEST_CONTEXT(flag) {
            // Under timeout(1): a daemon that accepted the value would serve until killed (124).
            int rc = runProgram("/usr/bin/timeout",
                                {"20", (binDir() / "resource-manager").string(), "--scope", kScope, "--listen",
                                 "127.0.0.1:0", "--agent-listen", "127.0.0.1:0", "--state-dir",
                                 (dir.path() / "state").string(), "--repository", dir.path().string(), flag, "0"});
            BOOST_TEST(rc == 2);
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
