#include <boost/test/unit_test.hpp>

#include "reports/resource_report.h"
#include "tests/reports/report_fixtures.h"

using namespace rm::reports;
using namespace std::chrono;

BOOST_AUTO_TEST_SUITE(resource_report)

BOOST_AUTO_TEST_CASE(iso_timestamp_is_utc_with_explicit_offset_and_whole_seconds) {
    const system_clock::time_point t = system_clock::time_point{} + seconds{1225241897};
    BOOST_TEST(isoTimestamp(t) == "2008-10-29T00:58:17+00:00");
    BOOST_TEST(isoTimestamp(t + milliseconds{999}) == "2008-10-29T00:58:17+00:00");
    BOOST_TEST(isoTimestamp(system_clock::time_point{}) == "1970-01-01T00:00:00+00:00");
    BOOST_TEST(isoTimestamp(system_clock::time_point{} - milliseconds{1}) ==
               "1969-12-31T23:59:59+00:00");
    BOOST_TEST(isIsoTimestampWithOffset(isoTimestamp(system_clock::now())));
}

BOOST_AUTO_TEST_CASE(iso_timestamp_check_requires_offset_and_valid_fields) {
    for (const char* good : {"2008-10-29T00:58:17+01:00", "2008-10-29T00:58:17Z",
                             "2008-10-29T00:58:17.123-05:30", "2024-02-29T23:59:59+14:00"}) {
        BOOST_TEST(isIsoTimestampWithOffset(good), good);
    }
    for (const char* bad :
         {"", "2008-10-29T00:58:17", "2008-10-29 00:58:17+01:00", "2008-13-29T00:58:17Z",
          "2023-02-29T00:58:17Z", "2008-10-29T24:00:00Z", "2008-10-29T00:60:17Z",
          "2008-10-29T00:58:17+1:00", "2008-10-29T00:58:17+15:00", "2008-10-29T00:58:17.+01:00",
          "0000-01-01T00:00:00Z", "2008-10-29T00:58:17+01:00 ", "x008-10-29T00:58:17Z"}) {
        BOOST_TEST(!isIsoTimestampWithOffset(bad), bad);
    }
}

BOOST_AUTO_TEST_CASE(final_package_states_exclude_waiting_deployed_and_unknown) {
    for (std::string_view status : kPackageStatuses) {
        const bool expected = status != "WAITING" && status != "DEPLOYED";
        BOOST_TEST(isFinalPackageStatus(status) == expected, status);
    }
    BOOST_TEST(!isFinalPackageStatus(""));
    BOOST_TEST(!isFinalPackageStatus("running"));
}

BOOST_AUTO_TEST_CASE(progress_counts_final_packages_per_node_and_processed_resources) {
    const ReportProgress p = progress(testing::openReport());
    BOOST_TEST(p.packages.done == 1u);
    BOOST_TEST(p.packages.total == 4u);
    BOOST_TEST(!p.packages.complete());
    BOOST_REQUIRE(p.nodes.size() == 2u);
    BOOST_TEST(p.nodes[0].id == "node-1");
    BOOST_TEST((p.nodes[0].packages == (Progress{1, 3})));
    BOOST_TEST(!p.nodes[0].reportClosed);
    BOOST_TEST((p.nodes[1].packages == (Progress{0, 1})));
    BOOST_TEST((p.resources == (Progress{1, 2})));

    const ReportProgress closed = progress(testing::closedFailedReport());
    BOOST_TEST((closed.packages == (Progress{2, 2})));
    BOOST_TEST(closed.nodes[0].reportClosed);
    BOOST_TEST(closed.resources.complete());
}

BOOST_AUTO_TEST_CASE(activity_kind_follows_operation) {
    BOOST_TEST((activityKindFor("AddResources") == ResourceReport::ActivityKind::Deployment));
    BOOST_TEST((activityKindFor("RemoveResources") == ResourceReport::ActivityKind::Undeployment));
    BOOST_TEST((activityKindFor("DisposeScope") == ResourceReport::ActivityKind::Undeployment));
}

BOOST_AUTO_TEST_SUITE_END()
