// The report model built from store rows, and the rendered-XML cache: served from the cache
// until invalidated, then fresh.
#include <boost/test/unit_test.hpp>

#include "reports/report_xml.h"
#include "service/report_service.h"
#include "service/scope_store.h"
#include "test_support.h"

using namespace rm::service;
using rm::service::testing::quietLogger;
using rm::service::testing::ScratchDir;
using S = ResourceState;

namespace {

struct ReportFixture {
    ScratchDir dir;
    ScopeStore store{dir.path(), quietLogger()};
    Deployments deployments{store, quietLogger()};
    ReportService reports{store, deployments, 4};

    void open(const std::string& id, SessionOperation op, std::vector<ResourceKey> keys) {
        NewSession s;
        s.id = id;
        s.operation = op;
        s.scope = "/gcube/devsec";
        s.deadlineMs = 4102444800000;
        s.resources = std::move(keys);
        store.createSession(s);
    }
};

const ScopeStore::ItemOutcome kAdded{{S::AddRequested, S::Added, S::Published}, "ADDED", "-", ""};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(report_service, ReportFixture)

BOOST_AUTO_TEST_CASE(unknown_session_has_no_report) {
    BOOST_TEST(!reports.report("nope").has_value());
    BOOST_TEST(reports.xml("nope") == nullptr);
}

BOOST_AUTO_TEST_CASE(model_from_store_rows) {
    open("s1", SessionOperation::AddResources,
         {{"GenericResource", "a"}, {"Collection", "b"}, {"GHN", "n"}});
    store.applyItem("s1", 0, {"GenericResource", "a"}, kAdded, 1000);
    store.applyItem("s1", 2, {"GHN", "n"}, {{}, "FAILED", "GHN n is not registered", ""}, 1000);

    auto r = reports.report("s1");
    BOOST_REQUIRE(r.has_value());
    BOOST_TEST(r->id == "s1");
    BOOST_TEST(r->status == "OPEN");
    BOOST_TEST(!r->sessionExitStatus.has_value());
    BOOST_TEST(r->operation == "AddResources");
    BOOST_TEST(r->targetScope == "/gcube/devsec");
    BOOST_TEST(rm::reports::isIsoTimestampWithOffset(r->lastUpdate));
    BOOST_TEST((r->activityKind == rm::reports::ResourceReport::ActivityKind::Deployment));
    BOOST_REQUIRE(r->resources.size() == 3u);
    BOOST_TEST(r->resources[0].id == "a");
    BOOST_TEST(r->resources[0].status == "ADDED");
    BOOST_TEST(r->resources[0].errorDescription == "");  // "-" in the store = no error
    BOOST_TEST(r->resources[1].type == "Collection");
    BOOST_TEST(r->resources[1].status == "WAITING");
    BOOST_TEST(r->resources[2].status == "FAILED");
    BOOST_TEST(r->resources[2].errorDescription == "GHN n is not registered");

    store.applyItem("s1", 1, {"Collection", "b"}, kAdded, 1100);
    BOOST_TEST(store.closeSession("s1", false, 1200));
    r = reports.report("s1");
    BOOST_TEST(r->status == "CLOSED");
    BOOST_REQUIRE(r->sessionExitStatus.has_value());
    BOOST_TEST(*r->sessionExitStatus == "FAILED");
}

BOOST_AUTO_TEST_CASE(removal_reports_undeployment) {
    open("s2", SessionOperation::RemoveResources, {{"GenericResource", "a"}});
    auto r = reports.report("s2");
    BOOST_TEST(r->operation == "RemoveResources");
    BOOST_TEST((r->activityKind == rm::reports::ResourceReport::ActivityKind::Undeployment));
    open("s3", SessionOperation::DisposeScope, {});
    BOOST_TEST(reports.report("s3")->operation == "DisposeScope");
}

BOOST_AUTO_TEST_CASE(xml_is_the_rendered_model_and_parses_back) {
    open("s1", SessionOperation::AddResources, {{"GenericResource", "a&b"}});
    auto xml = reports.xml("s1");
    BOOST_REQUIRE(xml != nullptr);
    BOOST_TEST(xml->rfind("<ResourceReport>", 0) == 0u);
    BOOST_TEST(*xml == rm::reports::renderReportXml(*reports.report("s1")));
    auto parsed = rm::reports::parseReportXml(*xml);
    BOOST_TEST(parsed.id == "s1");
    BOOST_REQUIRE(parsed.resources.size() == 1u);
    BOOST_TEST(parsed.resources[0].id == "a&b");
}

BOOST_AUTO_TEST_CASE(cache_serves_same_document_until_invalidated) {
    open("s1", SessionOperation::AddResources, {{"GenericResource", "a"}});
    auto first = reports.xml("s1");
    auto second = reports.xml("s1");
    BOOST_TEST(first.get() == second.get());  // cached, not re-rendered

    store.applyItem("s1", 0, {"GenericResource", "a"}, kAdded, 4102444800000);
    BOOST_TEST(store.closeSession("s1", true, 4102444800000));
    // Without invalidation the cache still holds the old document ...
    BOOST_TEST(reports.xml("s1")->find("<Status>OPEN</Status>") != std::string::npos);
    // ... and after it, the fresh one.
    reports.invalidate("s1");
    auto fresh = reports.xml("s1");
    BOOST_TEST(fresh.get() != first.get());
    BOOST_TEST(fresh->find("<Status>CLOSED</Status>") != std::string::npos);
    BOOST_TEST(fresh->find("<SessionExitStatus>SUCCESS</SessionExitStatus>") != std::string::npos);
    BOOST_TEST(fresh->find("<Status>ADDED</Status>") != std::string::npos);
    BOOST_TEST(fresh->find("2100-01-01T00:00:00") != std::string::npos);
    auto parsed = rm::reports::parseReportXml(*fresh);
    BOOST_TEST(parsed.status == "CLOSED");
    BOOST_TEST(parsed.lastUpdate == reports.report("s1")->lastUpdate);
    // Invalidating an unknown or uncached ID is harmless.
    reports.invalidate("never-seen");
}

BOOST_AUTO_TEST_CASE(cache_is_bounded_and_evicted_entries_render_again) {
    for (int i = 0; i < 6; ++i) {
        open("s" + std::to_string(i), SessionOperation::AddResources, {{"GenericResource", "a"}});
    }
    auto s0 = reports.xml("s0");
    for (int i = 1; i < 6; ++i) reports.xml("s" + std::to_string(i));  // capacity 4: s0 evicted
    auto again = reports.xml("s0");
    BOOST_TEST(again.get() != s0.get());
    BOOST_TEST(*again == *s0);
}

BOOST_AUTO_TEST_SUITE_END()
