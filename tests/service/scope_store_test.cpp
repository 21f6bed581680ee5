// ScopeStore against a real SQLite file in a scratch directory: sessions, item outcomes, the
// refusal of illegal moves (nothing written), timeouts and durability across reopening.
#include <boost/test/unit_test.hpp>

#include <memory>

#include "service/scope_store.h"
#include "test_support.h"

using namespace rm::service;
using rm::service::testing::quietLogger;
using rm::service::testing::ScratchDir;
using S = ResourceState;

namespace {

NewSession newSession(const std::string& id, SessionOperation op, std::vector<ResourceKey> keys) {
    NewSession s;
    s.id = id;
    s.operation = op;
    s.scope = "/gcube/devsec";
    s.deadlineMs = 4102444800000;  // 2100-01-01
    s.caller = "tester@127.0.0.1";
    s.resources = std::move(keys);
    return s;
}

ScopeStore::ItemOutcome added() {
    return {{S::AddRequested, S::Added, S::Published}, "ADDED", "-", ""};
}
ScopeStore::ItemOutcome removed() {
    return {{S::RemoveRequested, S::Removed, S::Unpublished}, "REMOVED", "-", ""};
}

int64_t countRows(ScopeStore& store, const std::string& sql) {
    int64_t n = -1;
    store.database().read([&](rm::common::Database::Lock& db) {
        auto& q = db.prepare(sql);
        if (q.step()) n = q.integer(0);
    });
    return n;
}

struct StoreFixture {
    ScratchDir dir;
    std::unique_ptr<ScopeStore> store = std::make_unique<ScopeStore>(dir.path(), quietLogger());
    void reopen() {
        store.reset();
        store = std::make_unique<ScopeStore>(dir.path(), quietLogger());
    }
};

const ResourceKey kA{"GenericResource", "res-a"};
const ResourceKey kB{"Collection", "res-b"};
const ResourceKey kC{"RuntimeResource", "res-c"};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(scope_store, StoreFixture)

BOOST_AUTO_TEST_CASE(create_session_records_items_waiting) {
    store->createSession(newSession("s1", SessionOperation::AddResources, {kA, kB}));
    auto s = store->session("s1");
    BOOST_REQUIRE(s.has_value());
    BOOST_TEST(s->id == "s1");
    BOOST_TEST(s->open);
    BOOST_TEST(!s->succeeded.has_value());
    BOOST_TEST(s->scope == "/gcube/devsec");
    BOOST_TEST(s->caller == "tester@127.0.0.1");
    BOOST_TEST((s->operation == SessionOperation::AddResources));
    BOOST_TEST(s->deadlineMs == 4102444800000);
    auto items = store->sessionResources("s1");
    BOOST_REQUIRE(items.size() == 2u);
    BOOST_TEST(items[0].seq == 0);
    BOOST_TEST(items[0].key.id == "res-a");
    BOOST_TEST(items[0].status == "WAITING");
    BOOST_TEST(items[0].error == "-");
    BOOST_TEST(items[1].key.type == "Collection");
    BOOST_TEST(store->openSessionIds() == std::vector<std::string>{"s1"});
    BOOST_TEST(!store->session("nope").has_value());
    BOOST_TEST(store->resourceCount() == 0);  // nothing joins the scope before processing
}

BOOST_AUTO_TEST_CASE(duplicate_session_id_is_refused_without_partial_write) {
    store->createSession(newSession("s1", SessionOperation::AddResources, {kA}));
    BOOST_CHECK_THROW(
        store->createSession(newSession("s1", SessionOperation::AddResources, {kB, kC})),
        std::exception);
    BOOST_TEST(store->sessionResources("s1").size() == 1u);
}

BOOST_AUTO_TEST_CASE(apply_item_moves_resource_and_item) {
    store->createSession(newSession("s1", SessionOperation::AddResources, {kA, kB}));
    store->applyItem("s1", 0, kA, added(), 1000);
    auto r = store->resource(kA);
    BOOST_REQUIRE(r.has_value());
    BOOST_TEST(toString(r->state) == "PUBLISHED");
    BOOST_TEST(r->sessionId == "s1");
    BOOST_TEST(r->incarnation == 1);
    BOOST_TEST(r->updatedAtMs == 1000);
    auto items = store->sessionResources("s1");
    BOOST_TEST(items[0].status == "ADDED");
    BOOST_TEST(items[1].status == "WAITING");
    BOOST_TEST(countRows(*store, "SELECT COUNT(*) FROM resource_events") == 3);
    // An item is processed once: a second application is refused.
    BOOST_CHECK_THROW(store->applyItem("s1", 0, kA, added(), 2000), std::exception);
    BOOST_TEST(countRows(*store, "SELECT COUNT(*) FROM resource_events") == 3);
    BOOST_TEST(toString(store->resource(kA)->state) == "PUBLISHED");
}

BOOST_AUTO_TEST_CASE(illegal_move_throws_and_writes_nothing) {
    store->createSession(newSession("s1", SessionOperation::AddResources, {kA}));
    auto before = store->session("s1")->updatedAtMs;
    // CREATED -> ADDED skips ADDREQUESTED.
    ScopeStore::ItemOutcome bad{{S::Added, S::Published}, "ADDED", "-", "node-x"};
    BOOST_CHECK_THROW(store->applyItem("s1", 0, kA, bad, before + 5000), IllegalTransition);
    BOOST_TEST(!store->resource(kA).has_value());
    BOOST_TEST(store->resourceCount() == 0);
    BOOST_TEST(store->sessionResources("s1")[0].status == "WAITING");
    BOOST_TEST(store->session("s1")->updatedAtMs == before);
    BOOST_TEST(countRows(*store, "SELECT COUNT(*) FROM resource_events") == 0);

    // An illegal move on an existing resource leaves it as it was, too.
    store->applyItem("s1", 0, kA, added(), 2000);
    store->createSession(newSession("s2", SessionOperation::AddResources, {kA}));
    ScopeStore::ItemOutcome backwards{{S::Added}, "ADDED", "-", ""};
    BOOST_CHECK_THROW(store->applyItem("s2", 0, kA, backwards, 3000), IllegalTransition);
    auto r = store->resource(kA);
    BOOST_TEST(toString(r->state) == "PUBLISHED");
    BOOST_TEST(r->sessionId == "s1");
    BOOST_TEST(r->updatedAtMs == 2000);
    BOOST_TEST(store->sessionResources("s2")[0].status == "WAITING");
    BOOST_TEST(countRows(*store, "SELECT COUNT(*) FROM resource_events") == 3);
}

BOOST_AUTO_TEST_CASE(item_without_moves_only_records_outcome) {
    store->createSession(newSession("s1", SessionOperation::RemoveResources, {kA}));
    store->applyItem("s1", 0, kA, {{}, "FAILED", "GenericResource res-a is not in scope", ""},
                     1000);
    BOOST_TEST(!store->resource(kA).has_value());
    auto items = store->sessionResources("s1");
    BOOST_TEST(items[0].status == "FAILED");
    BOOST_TEST(items[0].error == "GenericResource res-a is not in scope");
}

BOOST_AUTO_TEST_CASE(remove_then_add_again_starts_a_new_incarnation) {
    store->createSession(newSession("s1", SessionOperation::AddResources, {kA}));
    store->applyItem("s1", 0, kA, added(), 1000);
    store->createSession(newSession("s2", SessionOperation::RemoveResources, {kA}));
    store->applyItem("s2", 0, kA, removed(), 2000);
    BOOST_TEST(toString(store->resource(kA)->state) == "UNPUBLISHED");
    BOOST_TEST(store->resourcesInScope().empty());
    store->createSession(newSession("s3", SessionOperation::AddResources, {kA}));
    store->applyItem("s3", 0, kA, added(), 3000);
    auto r = store->resource(kA);
    BOOST_TEST(toString(r->state) == "PUBLISHED");
    BOOST_TEST(r->incarnation == 2);
    BOOST_TEST(store->resourcesInScope().size() == 1u);
}

BOOST_AUTO_TEST_CASE(close_session_applies_once) {
    store->createSession(newSession("s1", SessionOperation::AddResources, {kA}));
    store->applyItem("s1", 0, kA, added(), 1000);
    BOOST_TEST(store->closeSession("s1", true, 2000));
    BOOST_TEST(!store->closeSession("s1", false, 3000));
    auto s = store->session("s1");
    BOOST_TEST(!s->open);
    BOOST_REQUIRE(s->succeeded.has_value());
    BOOST_TEST(*s->succeeded);
    BOOST_TEST(s->updatedAtMs == 2000);
    BOOST_TEST(store->openSessionIds().empty());
    BOOST_TEST(!store->closeSession("unknown", true, 1000));
}

BOOST_AUTO_TEST_CASE(fail_waiting_items_marks_pending_lost) {
    // res-a is in scope; a removal session is pending on it and res-b when the session times out.
    store->createSession(newSession("s1", SessionOperation::AddResources, {kA}));
    store->applyItem("s1", 0, kA, added(), 1000);
    store->createSession(newSession("s2", SessionOperation::RemoveResources, {kA, kB, kC}));
    store->applyItem("s2", 2, kC, {{}, "FAILED", "not in scope", ""}, 1500);
    store->failWaitingItems("s2", "session timed out", 2000);
    auto items = store->sessionResources("s2");
    BOOST_TEST(items[0].status == "FAILED");
    BOOST_TEST(items[0].error == "session timed out");
    BOOST_TEST(items[1].status == "FAILED");
    BOOST_TEST(items[2].error == "not in scope");  // already processed: untouched
    auto a = store->resource(kA);
    BOOST_TEST(toString(a->state) == "LOST");
    BOOST_TEST(a->error == "session timed out");
    BOOST_TEST(!store->resource(kB).has_value());  // never existed: nothing to lose
    BOOST_TEST(store->closeSession("s2", false, 2000));
    BOOST_TEST(!*store->session("s2")->succeeded);
}

BOOST_AUTO_TEST_CASE(list_resources_filters) {
    store->createSession(newSession("s1", SessionOperation::AddResources, {kA, kB, kC}));
    store->applyItem("s1", 0, kA, added(), 1000);
    store->applyItem("s1", 1, kB, added(), 1000);
    store->applyItem("s1", 2, kC, added(), 1000);
    store->createSession(newSession("s2", SessionOperation::RemoveResources, {kB}));
    store->applyItem("s2", 0, kB, removed(), 2000);
    BOOST_TEST(store->listResources(std::nullopt, std::nullopt).size() == 3u);
    auto published = store->listResources(std::nullopt, S::Published);
    BOOST_REQUIRE(published.size() == 2u);
    BOOST_TEST(published[0].key.id == "res-a");
    BOOST_TEST(published[1].key.id == "res-c");
    auto collections = store->listResources(std::string("Collection"), std::nullopt);
    BOOST_REQUIRE(collections.size() == 1u);
    BOOST_TEST(toString(collections[0].state) == "UNPUBLISHED");
    BOOST_TEST(store->listResources(std::string("Collection"), S::Published).empty());
}

BOOST_AUTO_TEST_CASE(reopening_keeps_everything) {
    store->createSession(newSession("s1", SessionOperation::AddResources, {kA, kB}));
    store->applyItem("s1", 0, kA, added(), 1000);
    store->createSession(newSession("s2", SessionOperation::AddResources, {kC}));
    store->applyItem("s2", 0, kC, added(), 1100);
    BOOST_TEST(store->closeSession("s2", true, 1200));
    NodeRegistration node{"node-1", "n1", "http://127.0.0.1:9001", "zone=a", 4, 1024, 100, 8};
    store->registerNode(node, 1300);

    reopen();

    auto s1 = store->session("s1");
    BOOST_REQUIRE(s1.has_value());
    BOOST_TEST(s1->open);
    auto items = store->sessionResources("s1");
    BOOST_REQUIRE(items.size() == 2u);
    BOOST_TEST(items[0].status == "ADDED");
    BOOST_TEST(items[1].status == "WAITING");
    BOOST_TEST(store->openSessionIds() == std::vector<std::string>{"s1"});
    auto s2 = store->session("s2");
    BOOST_TEST(!s2->open);
    BOOST_TEST(*s2->succeeded);
    BOOST_TEST(toString(store->resource(kA)->state) == "PUBLISHED");
    BOOST_TEST(toString(store->resource(kC)->state) == "PUBLISHED");
    BOOST_TEST(!store->resource(kB).has_value());
    BOOST_TEST(store->resourceCount() == 2);
    auto n = store->nodeByIdOrName("n1");
    BOOST_REQUIRE(n.has_value());
    BOOST_TEST(n->id == "node-1");
    BOOST_TEST(n->labels == "zone=a");
    // The resumed session can carry on where it stopped.
    store->applyItem("s1", 1, kB, added(), 2000);
    BOOST_TEST(store->closeSession("s1", true, 2000));
    reopen();
    BOOST_TEST(store->openSessionIds().empty());
    BOOST_TEST(store->resourceCount() == 3);
}

BOOST_AUTO_TEST_CASE(recent_sessions_newest_first) {
    store->createSession(newSession("s1", SessionOperation::AddResources, {kA}));
    store->createSession(newSession("s2", SessionOperation::AddResources, {kB, kC}));
    store->applyItem("s1", 0, kA, added(), 4102444800001);  // far in the future: s1 is newest
    auto recent = store->recentSessions(10);
    BOOST_REQUIRE(recent.size() == 2u);
    BOOST_TEST(recent[0].id == "s1");
    BOOST_TEST(recent[1].id == "s2");
    BOOST_TEST(recent[1].items == 2);
    BOOST_TEST(store->recentSessions(1).size() == 1u);
}

BOOST_AUTO_TEST_CASE(nodes_register_heartbeat_and_get_lost) {
    NodeRegistration node{"node-1", "n1", "http://127.0.0.1:9001", "", 4, 1024, 100, 8};
    BOOST_TEST(!store->registerNode(node, 1000).has_value());
    BOOST_TEST(store->heartbeat("node-1", 1, 2, 0.5, 90, 2000));
    BOOST_TEST(!store->heartbeat("node-2", 1, 0, 0, 0, 2000));
    auto statuses = store->nodeStatuses();
    BOOST_REQUIRE(statuses.size() == 1u);
    BOOST_TEST(statuses[0].runningInstances == 2);
    BOOST_TEST(statuses[0].load == 0.5);
    BOOST_TEST(store->markSilentNodesLost(1500).empty());
    BOOST_TEST(store->markSilentNodesLost(2500) == std::vector<std::string>{"node-1"});
    BOOST_TEST(store->nodeByIdOrName("node-1")->liveness == "LOST");
    // Reinstalled under the same name with a new ID: the old entry is replaced.
    NodeRegistration again{"node-9", "n1", "http://127.0.0.1:9002", "", 4, 1024, 100, 8};
    auto replaced = store->registerNode(again, 3000);
    BOOST_REQUIRE(replaced.has_value());
    BOOST_TEST(*replaced == "node-1");
    BOOST_TEST(store->nodes().size() == 1u);
    BOOST_TEST(store->nodeByIdOrName("n1")->id == "node-9");
    BOOST_TEST(store->nodeByIdOrName("n1")->liveness == "ALIVE");
}

BOOST_AUTO_TEST_SUITE_END()
