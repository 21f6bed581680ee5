// Durability (SPEC section 8): kill -9 the Resource Manager while sessions are being submitted
// and processed, restart it on the same state directory, and check that every acknowledged
// session is still there and finishes, with each resource in the scope exactly once.
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <random>

#include "rm_test_helpers.h"

using namespace rm::testing;
using rm::client::ClientError;
using rm::client::RmClient;

namespace {

using Resources = std::vector<std::pair<std::string, std::string>>;

uint64_t testSeed() {
    if (const char* env = std::getenv("RM_TEST_SEED")) return std::strtoull(env, nullptr, 10);
    return std::random_device{}();
}

// Waits until every report is CLOSED; returns the reports by ID.
std::map<std::string, rm::reports::ResourceReport> waitAllClosed(
    RmClient& client, const std::vector<std::string>& ids, std::chrono::seconds timeout) {
    std::map<std::string, rm::reports::ResourceReport> out;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (const auto& id : ids) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        out[id] = waitClosed(client, id, std::max(left, std::chrono::milliseconds(1)));
    }
    return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(rm_restart)

BOOST_AUTO_TEST_CASE(kill9_during_sessions_loses_and_duplicates_nothing) {
    const uint64_t seed = testSeed();
    BOOST_TEST_MESSAGE("kill -9 test seed " << seed << " (rerun with RM_TEST_SEED=" << seed << ")");
    std::mt19937_64 rng(seed);
    RmInstance rm;

    std::map<std::string, Resources> acknowledged;  // report ID -> what it asked for
    std::set<std::pair<std::string, std::string>> attempted;
    constexpr int kRounds = 3, kThreads = 4, kSessionsPerRound = 50, kResourcesPerSession = 20;
    const std::array<std::string, 3> types{"GenericResource", "Collection", "RuntimeResource"};

    int killsWithOpenSessions = 0;
    for (int round = 0; round < kRounds; ++round) {
        std::mutex mutex;
        std::atomic<int> next{0};
        std::vector<std::thread> threads;
        const std::string url = rm.url();
        for (int t = 0; t < kThreads; ++t) {
            threads.emplace_back([&, url] {
                rm::client::ClientOptions options;
                options.url = url;
                options.timeoutSeconds = 10;
                RmClient client(options);
                for (int s = next++; s < kSessionsPerRound; s = next++) {
                    Resources resources;
                    for (int k = 0; k < kResourcesPerSession; ++k) {
                        resources.emplace_back(types[static_cast<size_t>(k) % types.size()],
                                               "k" + std::to_string(round) + "-s" +
                                                   std::to_string(s) + "-r" + std::to_string(k));
                    }
                    {
                        std::lock_guard lock(mutex);
                        attempted.insert(resources.begin(), resources.end());
                    }
                    try {
                        std::string id = client.addResources(plainRequest(resources));
                        std::lock_guard lock(mutex);
                        acknowledged[id] = resources;
                    } catch (const ClientError&) {
                        return;  // the RM died under us: stop this thread
                    }
                }
            });
        }
        // Odd rounds kill while requests are still arriving, even ones while they are processed.
        auto delay = std::chrono::milliseconds(
            round % 2 ? std::uniform_int_distribution<int>(0, 25)(rng)
                      : std::uniform_int_distribution<int>(30, 1500)(rng));
        std::this_thread::sleep_for(delay);
        int openBeforeKill = -1;
        // Odd rounds also wait (briefly) for a session to be open, so that at least one kill
        // lands while sessions are being processed whatever the machine's speed.
        auto waitStart = std::chrono::steady_clock::now();
        do {
            try {
                openBeforeKill = std::stoi(
                    metricValue(httpRequest(url, "GET", "/metrics").body, "rm_open_sessions"));
            } catch (const std::exception&) {
            }
        } while (round % 2 && openBeforeKill <= 0 && elapsedMs(waitStart) < 3000);
        rm.kill9();
        if (openBeforeKill > 0) ++killsWithOpenSessions;
        for (auto& t : threads) t.join();
        BOOST_TEST_MESSAGE("round " << round << ": killed after " << delay.count() << " ms; "
                                    << acknowledged.size() << " sessions acknowledged so far; "
                                    << openBeforeKill << " open at the kill");

        rm.start();  // same state directory, new port
        auto client = rm.client();
        std::vector<std::string> ids;
        for (const auto& [id, _] : acknowledged) ids.push_back(id);
        auto reports = waitAllClosed(*client, ids, std::chrono::seconds(20));
        for (const auto& [id, report] : reports) {
            BOOST_TEST_CONTEXT("report " << id) {
                BOOST_TEST(report.sessionExitStatus.value_or("") == "SUCCESS");
                const auto& asked = acknowledged[id];
                BOOST_REQUIRE(report.resources.size() == asked.size());
                for (size_t i = 0; i < asked.size(); ++i) {
                    BOOST_TEST(report.resources[i].type == asked[i].first);
                    BOOST_TEST(report.resources[i].id == asked[i].second);
                    BOOST_TEST(report.resources[i].status == "ADDED");
                }
            }
        }
        // A request whose answer was lost in the kill may still have committed: it is processed
        // too. Wait for the scope to settle before counting.
        auto settleStart = std::chrono::steady_clock::now();
        while (metricValue(httpRequest(rm.url(), "GET", "/metrics").body, "rm_open_sessions") !=
                   "0" &&
               elapsedMs(settleStart) < 20000) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        // Every acknowledged resource is in the scope exactly once; anything else listed was at
        // least attempted (a request may commit even though its answer was lost in the kill).
        std::map<std::pair<std::string, std::string>, int> listed;
        for (const auto& row : client->listResources()) {
            ++listed[{row.type, row.id}];
            BOOST_TEST(row.status == "PUBLISHED");
        }
        for (const auto& [key, count] : listed) {
            BOOST_TEST_CONTEXT(key.first << " " << key.second) {
                BOOST_TEST(count == 1);
                BOOST_TEST(attempted.count(key) == 1u);
            }
        }
        size_t missing = 0;
        for (const auto& [id, asked] : acknowledged) {
            for (const auto& key : asked) missing += listed.count(key) ? 0 : 1;
        }
        BOOST_TEST(missing == 0u);
        BOOST_TEST(metricValue(httpRequest(rm.url(), "GET", "/metrics").body, "rm_open_sessions") ==
                   "0");
    }
    BOOST_TEST(acknowledged.size() > 0u);
    // A kill that found sessions open must have them resumed by the next start (a session seen
    // open a moment before the kill may still have closed in that moment, hence "some").
    if (killsWithOpenSessions > 1) {
        BOOST_TEST(rm.daemon().log().find("sessions_resumed") != std::string::npos);
    } else {
        BOOST_TEST_MESSAGE("no kill found several sessions open; resumption not observed this run");
    }
}

BOOST_AUTO_TEST_CASE(kill9_right_after_ack_keeps_the_session) {
    RmInstance rm;
    std::string id;
    {
        auto client = rm.client();
        id = client->addResources(
            plainRequest({{"GenericResource", "acked-1"}, {"Collection", "acked-2"}}));
        rm.kill9();  // nothing may have been processed yet
    }
    rm.start();
    auto client = rm.client();
    auto report = waitClosed(*client, id, std::chrono::seconds(10));
    BOOST_TEST(report.sessionExitStatus.value_or("") == "SUCCESS");
    BOOST_REQUIRE(report.resources.size() == 2u);
    BOOST_TEST(report.resources[0].status == "ADDED");
    BOOST_TEST(report.resources[1].status == "ADDED");
    auto rows = client->listResources();
    BOOST_TEST(rows.size() == 2u);
    // The restarted RM serves the same bytes over both paths.
    auto xml = httpRequest(rm.url(), "GET", "/reports/" + id + ".xml");
    BOOST_TEST(xml.body == kXmlDeclaration + client->getReport(id));

    // And again immediately after the restart ack: a removal this time.
    std::string removal = client->removeResources(plainRequest({{"Collection", "acked-2"}}));
    rm.kill9();
    rm.start();
    client = rm.client();
    auto removed = waitClosed(*client, removal, std::chrono::seconds(10));
    BOOST_TEST(removed.sessionExitStatus.value_or("") == "SUCCESS");
    BOOST_TEST(removed.resources.at(0).status == "REMOVED");
    rows = client->listResources();
    BOOST_REQUIRE(rows.size() == 1u);
    BOOST_TEST(rows[0].id == "acked-1");
    // The first report is still retrievable, unchanged, after two crashes.
    BOOST_TEST((rm::reports::parseReportXml(client->getReport(id)) == report));
}

BOOST_AUTO_TEST_CASE(sigterm_stops_cleanly_and_state_survives) {
    RmInstance rm;
    auto client = rm.client();
    auto report =
        waitClosed(*client, client->addResources(plainRequest({{"GenericResource", "term-1"}})));
    BOOST_TEST(rm.daemon().terminate() == 0);
    rm.start();
    client = rm.client();
    BOOST_TEST((rm::reports::parseReportXml(client->getReport(report.id)) == report));
    BOOST_TEST(client->listResources().size() == 1u);
}

BOOST_AUTO_TEST_SUITE_END()
