#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

#include "reports/markup_text.h"
#include "reports/report_xml.h"
#include "tests/reports/report_fixtures.h"

using namespace rm::reports;
namespace fixtures = rm::reports::testing;

namespace {

// Replaces the first `from` in `text`; fails the test when there is none, so a typo in a test
// cannot turn it into a test of the unmodified document.
std::string replaced(std::string text, std::string_view from, std::string_view to) {
    const std::size_t at = text.find(from);
    BOOST_REQUIRE_MESSAGE(at != std::string::npos, "test bug: no '" << from << "' in document");
    return text.replace(at, from.size(), to);
}

// Parses and expects a ReportParseError whose message contains `expected`.
void checkRejected(std::string_view xml, std::string_view expected,
                   const ReportParseLimits& limits = {}) {
    try {
        const ResourceReport parsed = parseReportXml(xml, limits);
        BOOST_ERROR("accepted a document that must be rejected (expected '"
                    << expected << "'): " << xml.substr(0, 200));
    } catch (const ReportParseError& error) {
        const std::string message = error.what();
        BOOST_TEST(message.find(expected) != std::string::npos,
                   "message '" << message << "' does not mention '" << expected << "'");
    }
}

std::string closedSuccessXml() {
    return renderReportXml(fixtures::closedSuccessReport());
}

}  // namespace

BOOST_AUTO_TEST_SUITE(report_xml)

BOOST_AUTO_TEST_CASE(renders_spec_sample_byte_for_byte) {
    const std::string rendered = renderReportXml(fixtures::specSampleReport());
    BOOST_TEST(rendered == fixtures::compactXml(fixtures::kSpecSampleXml));
    BOOST_TEST(rendered.starts_with("<ResourceReport><ID>"));  // no declaration, no namespace
}

BOOST_AUTO_TEST_CASE(parses_spec_sample_as_written_with_indentation_and_comments) {
    const ResourceReport parsed = parseReportXml(fixtures::kSpecSampleXml);
    BOOST_TEST((parsed == fixtures::specSampleReport()));
}

BOOST_AUTO_TEST_CASE(round_trip_is_identical_for_every_kind_of_report) {
    const std::vector<ResourceReport> reports = {
        fixtures::specSampleReport(), fixtures::openReport(), fixtures::closedSuccessReport(),
        fixtures::closedFailedReport(), fixtures::undeploymentReport()};
    for (const ResourceReport& report : reports) {
        const std::string xml = renderReportXml(report);
        const ResourceReport parsed = parseReportXml(xml);
        BOOST_TEST((parsed == report), xml);
        BOOST_TEST(renderReportXml(parsed) == xml);
        BOOST_TEST((parseReportXml(renderReportXml(report, XmlLayout::Indented)) == report));
    }
}

BOOST_AUTO_TEST_CASE(indented_layout_only_adds_whitespace_between_elements) {
    const ResourceReport report = fixtures::closedFailedReport();
    const std::string indented = renderReportXml(report, XmlLayout::Indented);
    BOOST_TEST(indented.find("\n  <ID>") != std::string::npos);
    BOOST_TEST(fixtures::compactXml(indented) == renderReportXml(report));
}

BOOST_AUTO_TEST_CASE(no_error_renders_as_dash_and_reads_back_empty) {
    const std::string xml = closedSuccessXml();
    BOOST_TEST(xml.find("<ErrorDescription>-</ErrorDescription>") != std::string::npos);
    BOOST_TEST(parseReportXml(xml).services[0].errorDescription.empty());
}

BOOST_AUTO_TEST_CASE(empty_lists_render_as_empty_elements) {
    ResourceReport report = fixtures::closedSuccessReport();
    report.services[0].resolved.clear();
    report.ghns[0].packages.clear();
    report.resources.clear();
    const std::string xml = renderReportXml(report);
    for (const char* element :
         {"<ResolvedDependencies/>", "<MissingDependencies/>", "<Packages/>", "<Resources/>"}) {
        BOOST_TEST(xml.find(element) != std::string::npos, element);
    }
    report.services.clear();
    BOOST_TEST(renderReportXml(report).find("<Services/>") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(activity_element_follows_kind_and_is_omitted_without_nodes) {
    BOOST_TEST(closedSuccessXml().find("<DeploymentActivity><GHN>") != std::string::npos);
    const std::string undeploy = renderReportXml(fixtures::undeploymentReport());
    BOOST_TEST(undeploy.find("<UndeploymentActivity><GHN>") != std::string::npos);
    BOOST_TEST(undeploy.find("<DeploymentActivity>") == std::string::npos);

    ResourceReport noNodes = fixtures::undeploymentReport();
    noNodes.ghns.clear();
    const std::string xml = renderReportXml(noNodes);
    BOOST_TEST(xml.find("Activity") == std::string::npos);
    BOOST_TEST(xml.find("</Services><Resources>") != std::string::npos);
    BOOST_TEST((parseReportXml(xml) == noNodes));  // kind restored from RemoveResources

    // An empty activity element carries no GHN, so the operation decides the kind.
    ResourceReport added = fixtures::closedSuccessReport();
    added.ghns.clear();
    const ResourceReport emptyActivity = parseReportXml(
        replaced(renderReportXml(added), "</Services>", "</Services><UndeploymentActivity/>"));
    BOOST_TEST(emptyActivity.ghns.empty());
    BOOST_TEST((emptyActivity.activityKind == ResourceReport::ActivityKind::Deployment));
}

BOOST_AUTO_TEST_CASE(sanitize_replaces_what_xml_cannot_carry) {
    const std::string fffd = "\xEF\xBF\xBD";
    BOOST_TEST(sanitizeText("plain text") == "plain text");
    BOOST_TEST(sanitizeText("tab\tnl\ncr\r") == "tab\tnl\ncr\r");
    BOOST_TEST(sanitizeText(std::string("a\0b", 3)) == "a" + fffd + "b");
    BOOST_TEST(sanitizeText("\x01\x1b[31m") == fffd + fffd + "[31m");
    BOOST_TEST(sanitizeText("\xff") == fffd);                        // not UTF-8
    BOOST_TEST(sanitizeText("\xC0\xAF") == fffd + fffd);             // overlong '/'
    BOOST_TEST(sanitizeText("\xED\xA0\x80") == fffd + fffd + fffd);  // surrogate
    BOOST_TEST(sanitizeText("\xEF\xBF\xBE") == fffd + fffd + fffd);  // U+FFFE
    BOOST_TEST(sanitizeText("\xE6\x97\xA5") == "\xE6\x97\xA5");      // cut off below
    BOOST_TEST(sanitizeText("\xE6\x97") == fffd + fffd);
    BOOST_TEST(sanitizeText("caf\xC3\xA9 \xF0\x9F\x98\x80") == "caf\xC3\xA9 \xF0\x9F\x98\x80");
}

BOOST_AUTO_TEST_CASE(markup_escaping_covers_every_special_character) {
    std::string out;
    appendEscapedMarkup(out, "<a href=\"x\">&'</a>]]>\r");
    BOOST_TEST(out == "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;]]&gt;&#13;");
}

BOOST_AUTO_TEST_CASE(hostile_text_round_trips_modulo_replaced_characters) {
    const std::vector<std::string> hostile = {"<script>alert(1)</script>",
                                              "a & b &amp; &#x41; &unknown;",
                                              "]]><![CDATA[x]]>",
                                              "\"double\" 'single'",
                                              std::string("nul\0byte", 8),
                                              "bell\x07 esc\x1b del\x7f",
                                              "cr\r\nlf\n tab\t",
                                              "  padded  ",
                                              "\xff\xfe broken \xC3",
                                              "\xEF\xBF\xBF nonchar",
                                              "caf\xC3\xA9 \xE6\x97\xA5 \xF0\x9F\x98\x80"};
    for (const std::string& text : hostile) {
        ResourceReport report = fixtures::closedFailedReport();
        report.id = text;
        report.targetScope = text;
        report.services[1].serviceName = text;
        report.services[1].errorDescription = text;
        report.services[1].missing[0].packageVersion = text;
        report.ghns[0].host = text;
        report.ghns[0].packages[0].message = text;
        report.resources[0].type = text;

        ResourceReport expected = report;
        const std::string clean = sanitizeText(text);
        expected.id = expected.targetScope = expected.services[1].serviceName = clean;
        expected.services[1].errorDescription = expected.services[1].missing[0].packageVersion =
            clean;
        expected.ghns[0].host = expected.ghns[0].packages[0].message = clean;
        expected.resources[0].type = clean;

        const std::string xml = renderReportXml(report);
        BOOST_TEST(xml.find("<script>") == std::string::npos);
        BOOST_TEST(xml.find("]]>") == std::string::npos);
        BOOST_TEST((parseReportXml(xml) == expected), "text: " << clean << "\nxml: " << xml);
        BOOST_TEST(renderReportXml(parseReportXml(xml)) == xml);
    }
}

BOOST_AUTO_TEST_CASE(accepts_declaration_bom_cdata_and_namespace_declarations) {
    const std::string xml = closedSuccessXml();
    const ResourceReport expected = fixtures::closedSuccessReport();
    BOOST_TEST((parseReportXml("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + xml) == expected));
    BOOST_TEST((parseReportXml("\xEF\xBB\xBF" + xml + "\n") == expected));
    BOOST_TEST(
        (parseReportXml(replaced(xml, "<ResourceReport>",
                                 "<ResourceReport xmlns:tns=\"urn:scope-rm:2026\">")) == expected));
    const ResourceReport cdata = parseReportXml(
        replaced(xml, "<TargetScope>/gcube/devsec<", "<TargetScope><![CDATA[/gcube/<x>]]><"));
    BOOST_TEST(cdata.targetScope == "/gcube/<x>");
}

BOOST_AUTO_TEST_CASE(rejects_garbage_and_malformed_xml) {
    checkRejected("", "empty");
    checkRejected("   \n", "empty");
    checkRejected("not xml at all", "before the root");
    checkRejected("<ResourceReport>", "not well-formed");
    checkRejected("<ResourceReport><ID>x</Id></ResourceReport>", "not well-formed");
    checkRejected(closedSuccessXml() + "trailing", "after the root");
    checkRejected(closedSuccessXml() + "<ResourceReport/>", "more than one root");
    checkRejected(std::string(4096, '\xff'), "before the root");
}

BOOST_AUTO_TEST_CASE(rejects_wrong_root_and_namespaced_root) {
    checkRejected("<Report><ID>x</ID></Report>", "root element is <Report>");
    checkRejected("<rm:ResourceReport xmlns:rm=\"urn:x\"/>", "root element is <rm:ResourceReport>");
    checkRejected(replaced(closedSuccessXml(), "<ResourceReport>",
                           "<ResourceReport xmlns=\"urn:scope-rm:2026\">"),
                  "unexpected attribute 'xmlns'");
    checkRejected(replaced(closedSuccessXml(), "<Service>", "<Service id=\"1\">"),
                  "unexpected attribute 'id' on ResourceReport/Services/Service[1]");
}

BOOST_AUTO_TEST_CASE(rejects_doctype_and_entities) {
    checkRejected("<!DOCTYPE ResourceReport [<!ENTITY e \"boom\">]>" + closedSuccessXml(),
                  "DOCTYPE");
    checkRejected("<!DOCTYPE ResourceReport SYSTEM \"file:///etc/passwd\">" + closedSuccessXml(),
                  "DOCTYPE");
    std::string laughs = "<!DOCTYPE r [<!ENTITY a \"aaaaaaaaaa\">";
    for (char e = 'b'; e <= 'j'; ++e) {
        const std::string previous(1, static_cast<char>(e - 1));
        laughs += "<!ENTITY " + std::string(1, e) + " \"";
        for (int i = 0; i < 10; ++i) laughs += "&" + previous + ";";
        laughs += "\">";
    }
    checkRejected(laughs + "]><ResourceReport><ID>&j;</ID></ResourceReport>", "DOCTYPE");
}

BOOST_AUTO_TEST_CASE(rejects_deep_nesting_and_too_many_elements) {
    std::string deep = "<ResourceReport>";
    for (int i = 0; i < 40; ++i) deep += "<a>";
    for (int i = 0; i < 40; ++i) deep += "</a>";
    checkRejected(deep + "</ResourceReport>", "nested deeper than 32");

    std::string veryDeep;
    for (int i = 0; i < 200000; ++i) veryDeep += "<a>";
    for (int i = 0; i < 200000; ++i) veryDeep += "</a>";
    checkRejected(veryDeep, "nested deeper than 32");

    ReportParseLimits few;
    few.maxElements = 20;
    checkRejected(closedSuccessXml(), "more than 20 elements", few);
    few.maxElements = 59;  // the document has 60 elements and 117 tags: passes the pre-count
    checkRejected(closedSuccessXml(), "more than 59 elements", few);
}

BOOST_AUTO_TEST_CASE(rejects_oversized_documents_before_parsing) {
    const std::string xml = closedSuccessXml();
    const std::string padded = xml + std::string(16 * 1024 * 1024 - xml.size() + 1, ' ');
    checkRejected(padded, "the limit is 16777216");
    ReportParseLimits small;
    small.maxBytes = 100;
    checkRejected(xml, "the limit is 100", small);
}

BOOST_AUTO_TEST_CASE(missing_or_misplaced_elements_are_named) {
    const std::string xml = closedSuccessXml();
    checkRejected(replaced(xml, "<Operation>AddResources</Operation>", ""),
                  "expected <Operation> but found <LastUpdate> in ResourceReport");
    checkRejected(replaced(xml, "<DeployedOn>node-1</DeployedOn>", ""),
                  "expected <DeployedOn> but found <ErrorDescription> in "
                  "ResourceReport/Services/Service[1]");
    checkRejected(replaced(xml, "<Message/></Package></Packages>", "</Package></Packages>"),
                  "missing element <Message> in ResourceReport/DeploymentActivity/GHN[1]/"
                  "LastReportReceived/Packages/Package[2]");
    checkRejected(replaced(xml, "<Resources>", "<Extra/><Resources>"),
                  "expected <Resources> but found <Extra>");
    checkRejected(replaced(xml, "</ResourceReport>", "<Extra/></ResourceReport>"),
                  "unexpected element <Extra> in ResourceReport");
    checkRejected(replaced(xml, "<MissingDependencies/>", ""),
                  "missing element <MissingDependencies>");
    checkRejected(replaced(xml, "<ID>4522", "<ID><b>x</b>4522"), "must contain text only");
    checkRejected(replaced(xml, "<Services>", "<Services>junk"), "unexpected text 'junk'");
}

BOOST_AUTO_TEST_CASE(values_outside_their_vocabulary_are_rejected) {
    const std::string xml = closedSuccessXml();
    checkRejected(replaced(xml, "<Status>RUNNING<", "<Status>running<"),
                  "Package[2]/Status is 'running', expected one of WAITING");
    checkRejected(replaced(xml, "<Operation>AddResources<", "<Operation>Add<"),
                  "ResourceReport/Operation is 'Add'");
    checkRejected(replaced(xml, "<Status>ADDED<", "<Status>LOST<"), "Resource[1]/Status");
    checkRejected(replaced(xml, "<SessionExitStatus>SUCCESS<", "<SessionExitStatus>OK<"),
                  "SessionExitStatus is 'OK'");
    checkRejected(replaced(xml, "+01:00</LastUpdate>", "</LastUpdate>"),
                  "ResourceReport/LastUpdate is '2008-10-29T00:58:17', expected an ISO 8601");
    checkRejected(
        replaced(xml, "<LastReportReceivedOn>2008", "<LastReportReceivedOn>yesterday 2008"),
        "LastReportReceivedOn is 'yesterday");
}

BOOST_AUTO_TEST_CASE(session_exit_status_is_present_exactly_when_closed) {
    const std::string xml = closedSuccessXml();
    checkRejected(replaced(xml, "<SessionExitStatus>SUCCESS</SessionExitStatus>", ""),
                  "missing element <SessionExitStatus>");
    checkRejected(replaced(xml, "<Status>CLOSED</Status><Session", "<Status>OPEN</Status><Session"),
                  "SessionExitStatus given while the session is OPEN");
}

BOOST_AUTO_TEST_CASE(large_report_renders_and_parses_back) {
    const ResourceReport report = fixtures::largeReport(200, 5);
    const std::string xml = renderReportXml(report);
    BOOST_TEST(xml.size() > 200u * 5u * 200u);
    BOOST_TEST((parseReportXml(xml) == report));
}

BOOST_AUTO_TEST_SUITE_END()
