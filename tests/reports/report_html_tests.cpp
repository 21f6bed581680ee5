#include <boost/test/unit_test.hpp>

#include <string>

#include "reports/html.h"
#include "reports/report_html.h"
#include "tests/reports/report_fixtures.h"

using namespace rm::reports;
namespace fixtures = rm::reports::testing;

namespace {

bool contains(const std::string& haystack, std::string_view needle) {
    return haystack.find(needle) != std::string::npos;
}

std::size_t occurrences(const std::string& haystack, std::string_view needle) {
    std::size_t count = 0;
    for (std::size_t at = haystack.find(needle); at != std::string::npos;
         at = haystack.find(needle, at + needle.size())) {
        ++count;
    }
    return count;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(html_helpers)

BOOST_AUTO_TEST_CASE(escape_html_neutralises_markup_and_bad_bytes) {
    BOOST_TEST(escapeHtml("<b onclick=\"x\">'&'</b>") ==
               "&lt;b onclick=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/b&gt;");
    BOOST_TEST(escapeHtml("ok \xC3\xA9") == "ok \xC3\xA9");
    BOOST_TEST(escapeHtml("\x01\xff") == "\xEF\xBF\xBD\xEF\xBF\xBD");
}

BOOST_AUTO_TEST_CASE(path_segments_are_percent_encoded) {
    BOOST_TEST(encodePathSegment("4522f7c0-a54c_1.x~") == "4522f7c0-a54c_1.x~");
    BOOST_TEST(encodePathSegment("a/b c?d#\"<") == "a%2Fb%20c%3Fd%23%22%3C");
}

BOOST_AUTO_TEST_CASE(page_layout_is_a_complete_page_with_nav_and_optional_refresh) {
    const std::string page = pageLayout("Scope <x>", "<p>body</p>", 0);
    BOOST_TEST(page.starts_with("<!DOCTYPE html>"));
    BOOST_TEST(contains(page, "<title>Scope &lt;x&gt;</title>"));
    BOOST_TEST(contains(page, "<p>body</p>"));
    for (const char* link :
         {"href=\"/\"", "href=\"/resources\"", "href=\"/nodes\"", "href=\"/wsdl\""}) {
        BOOST_TEST(contains(page, link), link);
    }
    BOOST_TEST(!contains(page, "http-equiv=\"refresh\""));
    BOOST_TEST(!contains(page, "<script"));
    BOOST_TEST(!contains(page, "src=\"http"));
    BOOST_TEST(contains(pageLayout("t", "", 5), "<meta http-equiv=\"refresh\" content=\"5\">"));
}

BOOST_AUTO_TEST_CASE(badge_escapes_label_and_names_tone) {
    BOOST_TEST(badge("<b>", Tone::Bad) == "<span class=\"badge bad\">&lt;b&gt;</span>");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(report_html)

BOOST_AUTO_TEST_CASE(open_report_refreshes_and_shows_progress) {
    const std::string page = renderReportHtml(fixtures::openReport());
    BOOST_TEST(contains(page, "<meta http-equiv=\"refresh\" content=\"2\">"));
    BOOST_TEST(contains(page, "<span class=\"badge pending\">OPEN</span>"));
    BOOST_TEST(contains(page, "1 of 4 packages in a final state"));
    BOOST_TEST(contains(page, "<div style=\"width:25%\">"));
    BOOST_TEST(contains(page, "1 of 2 resources processed"));
    BOOST_TEST(contains(page, "<td>never</td>"));
    BOOST_TEST(contains(page, "Deployment activity (2 nodes)"));
    BOOST_TEST(contains(page, "no report received yet"));
    BOOST_TEST(contains(page, "<span class=\"badge pending\">WAITING</span>"));
}

BOOST_AUTO_TEST_CASE(closed_reports_do_not_refresh_and_show_their_outcome) {
    const std::string success = renderReportHtml(fixtures::closedSuccessReport());
    BOOST_TEST(!contains(success, "http-equiv=\"refresh\""));
    BOOST_TEST(contains(success, "<span class=\"badge good\">CLOSED SUCCESS</span>"));
    BOOST_TEST(contains(success, "<span class=\"badge good\">RUNNING</span>"));

    const std::string failed = renderReportHtml(fixtures::closedFailedReport());
    BOOST_TEST(!contains(failed, "http-equiv=\"refresh\""));
    BOOST_TEST(contains(failed, "<span class=\"badge bad\">CLOSED FAILED</span>"));
    BOOST_TEST(contains(failed, "<span class=\"badge bad\">FAILED</span>"));
    BOOST_TEST(contains(failed, "<span class=\"badge warn\">SKIPPED</span>"));
    BOOST_TEST(contains(failed, "<tr class=\"missing\"><td>Search</td><td>Lexicon</td>"));
    BOOST_TEST(contains(failed, "missing dependencies: Search/Lexicon lexicon-core [1.0,2.0)"));
    BOOST_TEST(contains(failed, "not deployed"));
    BOOST_TEST(contains(failed, "node is not registered with this RM"));
}

BOOST_AUTO_TEST_CASE(links_the_raw_xml_document) {
    const std::string page = renderReportHtml(fixtures::closedSuccessReport());
    BOOST_TEST(contains(page, "href=\"/reports/4522f7c0-a54c-11dd-8525-e7e836b0fdde.xml\""));
    HtmlOptions options;
    options.reportsBasePath = "/rm/reports/";
    ResourceReport odd = fixtures::closedSuccessReport();
    odd.id = "a b/\"c";
    BOOST_TEST(contains(renderReportHtml(odd, options), "href=\"/rm/reports/a%20b%2F%22c.xml\""));
}

BOOST_AUTO_TEST_CASE(undeployment_is_labelled_as_such) {
    const std::string page = renderReportHtml(fixtures::undeploymentReport());
    BOOST_TEST(contains(page, "Undeployment activity (1 node)"));
    BOOST_TEST(contains(page, "<span class=\"badge warn\">NOTUNDEPLOYABLE</span>"));
    BOOST_TEST(contains(page, "still needed by IS-Collector"));
}

BOOST_AUTO_TEST_CASE(hostile_values_appear_as_text_only) {
    const std::string attack = "<script>alert(1)</script><img src=x onerror=\"y\">";
    ResourceReport report = fixtures::openReport();
    report.id = attack;
    report.targetScope = attack;
    report.services[0].serviceName = attack;
    report.services[0].resolved[0].packageName = attack;
    report.ghns[0].host = attack;
    report.ghns[0].packages[0].message = attack;
    report.ghns[0].packages[0].status = attack;
    report.resources[0].errorDescription = attack;
    const std::string page = renderReportHtml(report);
    BOOST_TEST(!contains(page, "<script"));
    BOOST_TEST(!contains(page, "<img"));
    BOOST_TEST(!contains(page, "\"y\""));
    BOOST_TEST(occurrences(page, "&lt;script&gt;alert(1)&lt;/script&gt;") >= 9u);
}

BOOST_AUTO_TEST_CASE(large_report_renders) {
    const std::string page = renderReportHtml(fixtures::largeReport(200, 5));
    BOOST_TEST(occurrences(page, "<div class=\"card\"><h3>") == 200u + 10u);
    BOOST_TEST(page.ends_with("</html>\n"));
}

BOOST_AUTO_TEST_SUITE_END()
