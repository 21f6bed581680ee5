// Bounded state and output (issue 11 item 6): the maintained resource counts, the keyset pages
// of resources and nodes, the pruning of old CLOSED sessions with everything their reports show,
// the report-size estimate, and the session processor's admission checks and hard bound.
#include <boost/test/unit_test.hpp>

#include <functional>
#include <set>
#include <thread>

#include "common/time_util.h"
#include "service/deployments.h"
#include "service/report_service.h"
#include "service/scope_store.h"
#include "service/session_processor.h"
#include "test_support.h"

using namespace rm::service;
using namespace std::chrono_literals;
using rm::service::testing::quietLogger;
using rm::service::testing::ScratchDir;
using S = ResourceState;

namespace {

const ScopeStore::ItemOutcome kAdded{{S::AddRequested, S::Added, S::Published}, "ADDED", "-", ""};
const ScopeStore::ItemOutcome kRemoved{{S::RemoveRequested, S::Removed, S::Unpublished}, "REMOVED", "-", ""};

ResourceKey generic(int i) {
    char id[16];
    std::snprintf(id, sizeof id, "res-%03d", i);
    return {"GenericResource", id};
}

struct Limits {
    ScratchDir dir;
    ScopeStore store{dir.path(), quietLogger()};
    Deployments deployments{store, quietLogger()};
    ReportService reports{store, deployments};
    int sessions = 0;

    std::string open(std::vector<ResourceKey> keys, SessionOperation op = SessionOperation::AddResources,
                     std::vector<NewService> services = {}) {
        NewSession s;
        s.id = "s" + std::to_string(100 + ++sessions);  // sorts as created
        s.operation = op;
        s.scope = "/gcube/devsec";
        s.deadlineMs = 4102444800000;
        s.resources = std::move(keys);
        s.services = std::move(services);
        store.createSession(s);
        return s.id;
    }

    // A session whose every item is applied with `outcome` at `atMs`, then closed.
    std::string done(std::vector<ResourceKey> keys, const ScopeStore::ItemOutcome& outcome,
                     int64_t atMs = rm::common::nowMillis(), SessionOperation op = SessionOperation::AddResources) {
        auto id = open(keys, op);
        for (size_t i = 0; i < keys.size(); ++i) store.applyItem(id, static_cast<int>(i), keys[i], outcome, atMs);
        BOOST_REQUIRE(store.closeSession(id, true, atMs));
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

    // The maintained counts agree with counting the table.
    void checkCounts() {
        auto counts = store.resourceCounts();
        BOOST_TEST(counts.total == scalar("SELECT COUNT(*) FROM resources"));
        BOOST_TEST(counts.inScope == scalar("SELECT COUNT(*) FROM resources WHERE state <> 'UNPUBLISHED'"));
        BOOST_TEST(store.resourcesInScopeCount() == counts.inScope);
        BOOST_TEST(store.resourceCount() == counts.total);
        for (const auto& [state, n] : counts.byState) {
            BOOST_TEST_CONTEXT(state) {
                BOOST_TEST(n == scalar("SELECT COUNT(*) FROM resources WHERE state = '" + state + "'"));
            }
        }
    }

    void registerNode(const std::string& name) {
        NodeRegistration n;
        n.id = "id-" + name;
        n.name = name;
        n.endpoint = "https://127.0.0.1:9/" + name;
        store.registerNode(n, rm::common::nowMillis());
    }

    // Every page of resources, `limit` at a time; `between` runs after each page. `pageSizes`
    // gets how many rows each page had.
    std::vector<std::string> allPages(int limit, bool includeUnpublished, const std::function<void()>& between = {},
                                      std::vector<size_t>* pageSizes = nullptr) {
        std::vector<std::string> seen;
        std::optional<ResourceKey> after;
        for (int pages = 0; pages < 1000; ++pages) {
            auto page = store.resourcePage(after, limit, includeUnpublished);
            BOOST_TEST(page.rows.size() <= static_cast<size_t>(limit));
            if (pageSizes) pageSizes->push_back(page.rows.size());
            for (const auto& r : page.rows) seen.push_back(r.key.id);
            if (!page.next) break;
            if (!page.rows.empty()) BOOST_TEST((*page.next == page.rows.back().key || page.rows.size() < static_cast<size_t>(limit)));
            after = page.next;
            if (between) between();
        }
        return seen;
    }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(limits, Limits)

BOOST_AUTO_TEST_CASE(resource_counts_follow_every_write) {
    checkCounts();
    BOOST_TEST(store.resourceCounts().total == 0);
    std::vector<ResourceKey> keys;
    for (int i = 0; i < 5; ++i) keys.push_back(generic(i));
    done(keys, kAdded);
    checkCounts();
    BOOST_TEST(store.resourcesInScopeCount() == 5);
    done({generic(0), generic(1)}, kRemoved, rm::common::nowMillis(), SessionOperation::RemoveResources);
    checkCounts();
    BOOST_TEST(store.resourcesInScopeCount() == 3);
    BOOST_TEST(store.resourceCount() == 5);
    // Back into the scope: the UNPUBLISHED row is reused (a new incarnation), and counted again.
    done({generic(0)}, kAdded);
    checkCounts();
    BOOST_TEST(store.resourcesInScopeCount() == 4);
    // LOST still counts as in the scope (it is not UNPUBLISHED).
    auto id = open({generic(2)}, SessionOperation::RemoveResources);
    store.failWaitingItems(id, "timed out", rm::common::nowMillis());
    BOOST_REQUIRE((store.resource(generic(2))->state == S::Lost));
    checkCounts();
    BOOST_TEST(store.resourcesInScopeCount() == 4);
    store.addResourceDirectly({"RunningInstance", "ri-1"}, "n1", id, rm::common::nowMillis());
    checkCounts();
    BOOST_TEST(store.resourcesInScopeCount() == 5);
    // The counts are durable state, not a cache.
    ScopeStore again(dir.path(), quietLogger());
    BOOST_TEST(again.resourcesInScopeCount() == 5);
    BOOST_TEST(again.resourceCount() == 6);
}

BOOST_AUTO_TEST_CASE(count_not_in_scope_counts_what_an_add_would_bring_in) {
    done({generic(0), generic(1)}, kAdded);
    done({generic(1)}, kRemoved, rm::common::nowMillis(), SessionOperation::RemoveResources);
    // res-000 is in the scope, res-001 left it, res-002 was never seen.
    BOOST_TEST(store.countNotInScope({generic(0), generic(1), generic(2)}) == 2);
    BOOST_TEST(store.countNotInScope({generic(0)}) == 0);
    BOOST_TEST(store.countNotInScope({}) == 0);
}

BOOST_AUTO_TEST_CASE(resource_pages_cover_every_row_once_in_key_order) {
    std::vector<ResourceKey> keys;
    for (int i = 0; i < 25; ++i) keys.push_back(generic(i));
    done(keys, kAdded);
    done({generic(3), generic(10), generic(24)}, kRemoved, rm::common::nowMillis(), SessionOperation::RemoveResources);

    auto inScope = allPages(7, false);
    BOOST_TEST(inScope.size() == 22u);
    BOOST_TEST(std::set<std::string>(inScope.begin(), inScope.end()).size() == 22u);
    BOOST_TEST(std::is_sorted(inScope.begin(), inScope.end()));
    BOOST_TEST(std::count(inScope.begin(), inScope.end(), "res-010") == 0);
    auto everything = allPages(7, true);
    BOOST_TEST(everything.size() == 25u);
    BOOST_TEST(std::is_sorted(everything.begin(), everything.end()));

    // Exactly one page when it holds everything; an empty scope has one empty page.
    auto one = store.resourcePage(std::nullopt, 22, false);
    BOOST_TEST(one.rows.size() == 22u);
    BOOST_TEST(!one.next);
    BOOST_TEST(store.resourcePage(generic(99), 10, true).rows.empty());

    // Stable under concurrent inserts: rows added before the cursor are not seen, rows after it
    // are seen once, and nothing shows twice or goes missing.
    int added = 100;
    auto seen = allPages(5, false, [&] {
        done({generic(added++)}, kAdded);           // after every cursor: seen later
        done({{"Collection", "early-" + std::to_string(added)}}, kAdded);  // before: never seen
    });
    BOOST_TEST(std::set<std::string>(seen.begin(), seen.end()).size() == seen.size());
    BOOST_TEST(std::count_if(seen.begin(), seen.end(), [](const std::string& id) { return id.rfind("early-", 0) == 0; }) == 0);
    BOOST_TEST(std::count(seen.begin(), seen.end(), "res-000") == 1);
    BOOST_TEST(std::count(seen.begin(), seen.end(), "res-100") == 1);
}

BOOST_AUTO_TEST_CASE(a_page_reads_a_bounded_number_of_rows_among_many_that_left) {
    // 200 resources left the scope; the 3 still in it sort after them all.
    std::vector<ResourceKey> gone;
    for (int i = 0; i < 200; ++i) gone.push_back(generic(i));
    done(gone, kAdded);
    done(gone, kRemoved, rm::common::nowMillis(), SessionOperation::RemoveResources);
    done({generic(500), generic(501), generic(502)}, kAdded);
    // A page of 2 reads at most 10 x 3 rows: the first pages are empty but move on.
    auto first = store.resourcePage(std::nullopt, 2, false);
    BOOST_TEST(first.rows.empty());
    BOOST_REQUIRE(first.next.has_value());
    BOOST_TEST(first.next->id == generic(ScopeStore::kPageScanFactor * 3 - 1).id);
    std::vector<size_t> sizes;
    auto seen = allPages(2, false, {}, &sizes);
    BOOST_TEST(seen == (std::vector<std::string>{"res-500", "res-501", "res-502"}), boost::test_tools::per_element());
    BOOST_TEST(sizes.size() >= 200u / 30u);
    BOOST_TEST(allPages(1000, true).size() == 203u);  // with those that left: one page
}

BOOST_AUTO_TEST_CASE(node_pages_go_by_name) {
    for (const char* name : {"node-c", "node-a", "node-e", "node-b", "node-d"}) registerNode(name);
    BOOST_TEST(store.nodeCount() == 5);
    auto first = store.nodeStatusPage(std::nullopt, 2);
    BOOST_REQUIRE(first.rows.size() == 2u);
    BOOST_TEST(first.next.value_or("") == "node-b");
    BOOST_TEST(first.rows[0].record.name == "node-a");
    BOOST_TEST(first.rows[1].record.name == "node-b");
    auto second = store.nodeStatusPage(first.next, 2);
    BOOST_REQUIRE(second.rows.size() == 2u);
    BOOST_TEST(second.rows[0].record.name == "node-c");
    BOOST_TEST(second.next.has_value());
    auto last = store.nodeStatusPage(second.next, 2);
    BOOST_REQUIRE(last.rows.size() == 1u);
    BOOST_TEST(last.rows[0].record.name == "node-e");
    BOOST_TEST(!last.next);
}

BOOST_AUTO_TEST_CASE(session_counts_and_recent_item_counts) {
    auto a = open({generic(0), generic(1), generic(2)});
    open({generic(3)});
    BOOST_TEST(store.openSessionCount() == 2);
    BOOST_TEST(store.closedSessionCount() == 0);
    store.closeSession(a, true, rm::common::nowMillis());
    BOOST_TEST(store.openSessionCount() == 1);
    BOOST_TEST(store.closedSessionCount() == 1);
    auto recent = store.recentSessions(10);
    BOOST_REQUIRE(recent.size() == 2u);
    for (const auto& s : recent) BOOST_TEST(s.items == (s.id == a ? 3 : 1));
}

BOOST_AUTO_TEST_CASE(pruning_keeps_the_newest_closed_sessions_and_every_open_one) {
    auto oldOpen = open({generic(90)});  // the oldest of all, and OPEN throughout
    std::vector<std::string> closed;
    for (int i = 0; i < 5; ++i) closed.push_back(done({generic(i)}, kAdded));
    auto newOpen = open({generic(91)});
    // A node deployment of the oldest closed session: it goes with it.
    registerNode("node-a");
    {
        NewService svc;
        svc.serviceClass = "C";
        svc.serviceName = "N";
        svc.serviceVersion = "1";
        svc.resolved = true;
        svc.resolvedDependencies = {{"C", "N", "1", "pkg", "1.0", std::string(64, 'a'), "pkg.tgz", ""}};
        auto id = open({}, SessionOperation::AddResources, {svc});
        deployments.deploy(*store.session(id), store.sessionServices(id)[0], store.nodeStatuses()[0]);
        store.updateService(id, 0, "DONE", "id-node-a", "-", rm::common::nowMillis());
        store.closeSession(id, true, rm::common::nowMillis());
        closed.insert(closed.begin(), id);  // the newest closed session
    }
    BOOST_REQUIRE(scalar("SELECT COUNT(*) FROM deployments") == 1);
    BOOST_REQUIRE(store.closedSessionCount() == 6);

    // Keep the 2 newest by creation: the deploy session and the last of the five.
    auto pruned = store.pruneClosedSessions(2, 100);
    BOOST_TEST(pruned == (std::vector<std::string>{closed[1], closed[2], closed[3], closed[4]}),
               boost::test_tools::per_element());
    BOOST_TEST(store.closedSessionCount() == 2);
    BOOST_TEST(store.openSessionCount() == 2);
    BOOST_TEST(store.session(oldOpen).has_value());
    BOOST_TEST(store.session(newOpen).has_value());
    BOOST_TEST(store.session(closed[5]).has_value());
    BOOST_TEST(store.session(closed[0]).has_value());
    for (size_t i = 1; i <= 4; ++i) {
        BOOST_TEST(!store.session(closed[i]).has_value());
        BOOST_TEST(store.sessionResources(closed[i]).empty());
        BOOST_TEST(!reports.report(closed[i]).has_value());
    }
    // What the sessions changed stays: pruning removes reports, not resources.
    BOOST_TEST(store.resourcesInScopeCount() == 5);
    BOOST_TEST(scalar("SELECT COUNT(*) FROM deployments") == 1);  // of the kept deploy session

    // Nothing beyond the limit: nothing to do. A batch bounds one transaction.
    BOOST_TEST(store.pruneClosedSessions(2, 100).empty());
    BOOST_TEST(store.pruneClosedSessions(0, 1).size() == 1u);
    BOOST_TEST(store.pruneClosedSessions(0, 100).size() == 1u);
    BOOST_TEST(scalar("SELECT COUNT(*) FROM deployments") == 0);
    BOOST_TEST(scalar("SELECT COUNT(*) FROM deployment_packages") == 0);
    BOOST_TEST(scalar("SELECT COUNT(*) FROM session_services") == 0);
    BOOST_TEST(scalar("SELECT COUNT(*) FROM session_dependencies") == 0);
    BOOST_TEST(store.openSessionCount() == 2);
}

BOOST_AUTO_TEST_CASE(pruning_takes_the_history_older_than_every_kept_session) {
    int64_t longAgo = 1000;  // the events of the first sessions were written long ago
    done({generic(0)}, kAdded, longAgo);
    done({generic(1)}, kAdded, longAgo);
    BOOST_REQUIRE(scalar("SELECT COUNT(*) FROM resource_events") == 6);
    done({generic(2)}, kAdded, rm::common::nowMillis() + 1000);  // written while its session ran
    BOOST_REQUIRE(store.pruneClosedSessions(1, 100).size() == 2u);
    BOOST_TEST(scalar("SELECT COUNT(*) FROM resource_events") == 3);
    BOOST_TEST(scalar("SELECT COUNT(*) FROM resource_events WHERE id = 'res-002'") == 3);
}

BOOST_AUTO_TEST_CASE(report_estimate_is_a_close_lower_bound) {
    std::vector<ResourceKey> keys;
    for (int i = 0; i < 200; ++i) keys.push_back(generic(i));
    keys.push_back({"GHN", "not-a-node"});
    NewService svc;
    svc.serviceClass = "InformationSystem";
    svc.serviceName = "IS-Notifier";
    svc.serviceVersion = "1.00.00";
    svc.resolved = false;
    svc.error = "missing dependencies";
    svc.missingDependencies = {{"InformationSystem", "IS-Notifier", "1.00.00", "Ghost-lib", "2.0", "", "", ""}};
    NewSession s;
    s.id = "estimated";
    s.operation = SessionOperation::AddResources;
    s.scope = "/gcube/devsec";
    s.deadlineMs = 4102444800000;
    s.resources = keys;
    s.services = {svc};
    const size_t estimate = estimateReportBytes(s);
    store.createSession(s);
    auto open = reports.xml(s.id);
    BOOST_REQUIRE(open);
    BOOST_TEST(estimate <= open->size());
    for (size_t i = 0; i + 1 < keys.size(); ++i) store.applyItem(s.id, static_cast<int>(i), keys[i], kAdded, 1000);
    store.applyItem(s.id, static_cast<int>(keys.size() - 1), keys.back(),
                    {{}, "FAILED", "GHN not-a-node is not a node registered with this Resource Manager", ""}, 1000);
    store.closeSession(s.id, false, 2000);
    reports.invalidate(s.id);
    auto closed = reports.xml(s.id);
    BOOST_REQUIRE(closed);
    BOOST_TEST(estimate <= closed->size());
    // Close enough to refuse what is really too large: within 5% for plain resources.
    BOOST_TEST(estimate * 100 >= closed->size() * 95);
}

BOOST_AUTO_TEST_SUITE_END()

namespace {

struct Processing : Limits {
    SessionProcessor processor{store, deployments, reports, quietLogger(),
                               SessionProcessorOptions{600000ms, 20ms, SessionLimits{5, 2, 3, 4000}, nullptr}};

    bool waitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 5s) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            if (condition()) return true;
            std::this_thread::sleep_for(10ms);
        }
        return condition();
    }
    NewSession planned(std::vector<ResourceKey> keys, SessionOperation op = SessionOperation::AddResources) {
        NewSession s;
        s.id = "planned";
        s.operation = op;
        s.scope = "/gcube/devsec";
        s.resources = std::move(keys);
        return s;
    }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(limits_processing, Processing)

BOOST_AUTO_TEST_CASE(open_sessions_limit_refuses_a_new_session_until_one_closes) {
    BOOST_TEST(!processor.refuseNewSession(SessionOperation::AddResources));
    auto a = open({generic(0)});
    open({generic(1)});
    auto refused = processor.refuseNewSession(SessionOperation::RemoveResources);
    BOOST_REQUIRE(refused);
    BOOST_TEST(refused->find("RemoveResources refused: 2 sessions are OPEN, the limit is 2") != std::string::npos);
    BOOST_TEST(refused->find("(--max-open-sessions)") != std::string::npos);
    BOOST_TEST(refused->find("retry later") != std::string::npos);
    store.closeSession(a, true, rm::common::nowMillis());
    BOOST_TEST(!processor.refuseNewSession(SessionOperation::DisposeScope));
}

BOOST_AUTO_TEST_CASE(resources_limit_counts_only_what_the_request_brings_in) {
    done({generic(0), generic(1), generic(2)}, kAdded);
    // 3 in the scope: 2 more fit, 3 do not; resources already in the scope add nothing.
    BOOST_TEST(!processor.refuseSession(planned({generic(3), generic(4)})));
    BOOST_TEST(!processor.refuseSession(planned({generic(0), generic(1), generic(2), generic(3), generic(4)})));
    auto refused = processor.refuseSession(planned({generic(0), generic(3), generic(4), generic(5)}));
    BOOST_REQUIRE(refused);
    BOOST_TEST(*refused == "AddResources refused: scope /gcube/devsec holds 3 resources and this request would add 3, "
                           "more than the limit of 5 (--max-resources); nothing was changed: remove resources "
                           "first, or raise --max-resources");
    // Removals are never refused for the scope's size.
    BOOST_TEST(!processor.refuseSession(planned({generic(0), generic(7), generic(8), generic(9)},
                                                SessionOperation::RemoveResources)));
}

BOOST_AUTO_TEST_CASE(report_size_limit_refuses_an_obviously_larger_report) {
    std::vector<ResourceKey> many;
    for (int i = 0; i < 40; ++i) many.push_back(generic(i));  // ~40 x 120 bytes > 4000
    auto refused = processor.refuseSession(planned(many, SessionOperation::RemoveResources));
    BOOST_REQUIRE(refused);
    BOOST_TEST(refused->find("RemoveResources refused: its report would take at least ") == 0u);
    BOOST_TEST(refused->find("more than the limit of 4000 bytes (--max-report-bytes)") != std::string::npos);
    many.resize(20);
    BOOST_TEST(!processor.refuseSession(planned(many, SessionOperation::RemoveResources)));
}

BOOST_AUTO_TEST_CASE(scope_never_grows_past_the_limit_even_when_sessions_race) {
    // Two sessions admitted side by side, each fitting alone: together 7 > 5.
    auto a = open({generic(0), generic(1), generic(2)});
    auto b = open({generic(3), generic(4), generic(5), generic(6)});
    std::jthread thread{[this](std::stop_token stop) { processor.run(stop); }};
    BOOST_REQUIRE(waitFor([&] { return !store.session(a)->open && !store.session(b)->open; }));
    BOOST_TEST(store.resourcesInScopeCount() == 5);
    auto items = store.sessionResources(b);
    BOOST_TEST(std::count_if(items.begin(), items.end(), [](const SessionResource& r) { return r.status == "FAILED"; }) == 2);
    BOOST_TEST(items.back().error.find("--max-resources 5") != std::string::npos);
    BOOST_TEST((store.session(b)->succeeded == std::optional<bool>(false)));
}

BOOST_AUTO_TEST_CASE(processor_prunes_closed_sessions_in_the_background) {
    std::vector<std::string> ids;
    for (int i = 0; i < 6; ++i) ids.push_back(done({generic(i)}, kAdded));
    for (const auto& id : ids) BOOST_REQUIRE(reports.xml(id));  // cached: pruning must drop it
    std::jthread thread{[this](std::stop_token stop) { processor.run(stop); }};
    BOOST_REQUIRE(waitFor([&] { return store.closedSessionCount() == 3; }));
    for (size_t i = 0; i < 3; ++i) BOOST_TEST(reports.xml(ids[i]) == nullptr);
    for (size_t i = 3; i < 6; ++i) BOOST_TEST(reports.xml(ids[i]) != nullptr);
}

BOOST_AUTO_TEST_SUITE_END()
