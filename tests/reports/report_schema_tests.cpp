// The rendered document against wsdl/ResourceReport.xsd, and that schema against the WSDL.
#include <boost/test/unit_test.hpp>

#include <pugixml.hpp>

#include <set>
#include <string>
#include <vector>

#include "reports/report_xml.h"
#include "tests/reports/report_fixtures.h"
#include "tests/reports/xmllint.h"

using namespace rm::reports;
using namespace std::string_literals;
namespace fixtures = rm::reports::testing;

namespace {

void checkValid(const ResourceReport& report, std::string_view what) {
    const std::string document = fixtures::withXmlDeclaration(renderReportXml(report));
    const fixtures::Validation result =
        fixtures::validateWithXmllint(document, fixtures::reportSchemaPath());
    BOOST_TEST(result.valid, what << ": " << result.output << "\n" << document);
}

void checkInvalid(const std::string& document, std::string_view expectedDiagnostic) {
    const fixtures::Validation result =
        fixtures::validateWithXmllint(document, fixtures::reportSchemaPath());
    BOOST_TEST(!result.valid, "schema accepted: " << document);
    BOOST_TEST(result.output.find(expectedDiagnostic) != std::string::npos, result.output);
}

std::string localName(std::string_view qualified) {
    const std::size_t colon = qualified.find(':');
    return std::string(colon == std::string_view::npos ? qualified : qualified.substr(colon + 1));
}

pugi::xml_document loadFile(const std::string& path) {
    pugi::xml_document document;
    const pugi::xml_parse_result result = document.load_file(path.c_str());
    BOOST_REQUIRE_MESSAGE(result, "cannot parse " << path << ": " << result.description());
    return document;
}

// A schema's element structure as text: names, occurrences and nested complex types, but not
// the simple types of leaves (the standalone schema restricts those on purpose).
class StructureDescriber {
  public:
    explicit StructureDescriber(pugi::xml_node schema) : schema_(schema) {}

    std::string complexType(const std::string& name) {
        const pugi::xml_node type =
            schema_.find_child_by_attribute("xsd:complexType", "name", name.c_str());
        if (!type) return "simple";
        return particles(type);
    }

  private:
    std::string particles(pugi::xml_node group) {
        std::string out;
        for (pugi::xml_node child : group.children()) {
            const std::string kind = localName(child.name());
            if (kind == "sequence") out += "seq(" + particles(child) + ")";
            if (kind == "choice") out += "choice" + occurs(child) + "(" + particles(child) + ")";
            if (kind == "element") {
                out += child.attribute("name").value() + occurs(child) + "{" +
                       complexType(localName(child.attribute("type").value())) + "} ";
            }
        }
        return out;
    }

    static std::string occurs(pugi::xml_node particle) {
        return std::string("[") + particle.attribute("minOccurs").as_string("1") + "," +
               particle.attribute("maxOccurs").as_string("1") + "]";
    }

    pugi::xml_node schema_;
};

std::set<std::string> enumeration(pugi::xml_node schema, const char* typeName) {
    std::set<std::string> values;
    const pugi::xml_node type = schema.find_child_by_attribute("xsd:simpleType", "name", typeName);
    for (pugi::xml_node e : type.child("xsd:restriction").children("xsd:enumeration")) {
        values.insert(e.attribute("value").value());
    }
    return values;
}

template <std::size_t N>
std::set<std::string> asSet(const std::array<std::string_view, N>& values) {
    return {values.begin(), values.end()};
}

}  // namespace

BOOST_AUTO_TEST_SUITE(report_schema)

BOOST_AUTO_TEST_CASE(rendered_reports_validate_against_the_xsd) {
    checkValid(fixtures::specSampleReport(), "SPEC sample");
    checkValid(fixtures::openReport(), "OPEN with WAITING packages");
    checkValid(fixtures::closedSuccessReport(), "CLOSED SUCCESS");
    checkValid(fixtures::closedFailedReport(), "CLOSED FAILED with missing dependencies");
    checkValid(fixtures::undeploymentReport(), "undeployment");
    checkValid(fixtures::largeReport(200, 5), "200 services");
    ResourceReport empty = fixtures::undeploymentReport();
    empty.services.clear();
    empty.ghns.clear();
    empty.resources.clear();
    checkValid(empty, "no services, nodes or resources");
}

BOOST_AUTO_TEST_CASE(hostile_text_still_yields_valid_xml) {
    ResourceReport report = fixtures::closedFailedReport();
    report.services[0].serviceName = "<script>alert('x')</script> & ]]> \"q\"";
    report.ghns[0].packages[0].message = "ctl\x01\x02\x1f nul\0 bad\xff\xfe\r\n"s;
    report.resources[0].errorDescription = "\xEF\xBF\xBE \xED\xA0\x80 \xC0\x80";
    checkValid(report, "hostile text");
}

BOOST_AUTO_TEST_CASE(the_xsd_rejects_what_the_contract_forbids) {
    const std::string xml =
        fixtures::withXmlDeclaration(renderReportXml(fixtures::closedSuccessReport()));
    const auto with = [&](std::string_view from, std::string_view to) {
        std::string copy = xml;
        const std::size_t at = copy.find(from);
        BOOST_REQUIRE_MESSAGE(at != std::string::npos, "test bug: no " << from);
        return copy.replace(at, from.size(), to);
    };
    checkInvalid(with("<Status>RUNNING<", "<Status>BOGUS<"), "'BOGUS'");
    checkInvalid(with("<Operation>AddResources<", "<Operation>Add<"), "Operation");
    checkInvalid(with("+01:00</LastUpdate>", "</LastUpdate>"), "LastUpdate");
    checkInvalid(with("<Status>ADDED<", "<Status>LOST<"), "'LOST'");
    checkInvalid(with("<Operation>AddResources</Operation>", ""), "Operation");
    checkInvalid(with("<ResourceReport>", "<ResourceReport xmlns=\"urn:scope-rm:2026\">"),
                 "ResourceReport");
}

BOOST_AUTO_TEST_CASE(xsd_structure_matches_the_wsdl_resource_report_type) {
    const std::string source = RM_SOURCE_DIR;
    const pugi::xml_document wsdl = loadFile(source + "/wsdl/ResourceManager.wsdl");
    const pugi::xml_document xsd = loadFile(source + "/wsdl/ResourceReport.xsd");
    const pugi::xml_node wsdlSchema =
        wsdl.child("wsdl:definitions").child("wsdl:types").child("xsd:schema");
    const pugi::xml_node xsdSchema = xsd.child("xsd:schema");
    BOOST_REQUIRE(wsdlSchema);
    BOOST_REQUIRE(xsdSchema);

    BOOST_TEST(!xsdSchema.attribute("targetNamespace"));
    BOOST_TEST(std::string(xsdSchema.attribute("elementFormDefault").value()) == "unqualified");
    const pugi::xml_node root =
        xsdSchema.find_child_by_attribute("xsd:element", "name", "ResourceReport");
    BOOST_TEST(std::string(root.attribute("type").value()) == "ResourceReport");

    const std::string expected = StructureDescriber(wsdlSchema).complexType("ResourceReport");
    const std::string actual = StructureDescriber(xsdSchema).complexType("ResourceReport");
    BOOST_TEST(expected.find("LastReportReceived[1,1]{seq(Status") != std::string::npos, expected);
    BOOST_TEST(actual == expected);
}

BOOST_AUTO_TEST_CASE(xsd_vocabularies_match_the_model) {
    const pugi::xml_document xsd =
        loadFile(std::string(RM_SOURCE_DIR) + "/wsdl/ResourceReport.xsd");
    const pugi::xml_node schema = xsd.child("xsd:schema");
    BOOST_TEST((enumeration(schema, "ReportStatus") == asSet(kReportStatuses)));
    BOOST_TEST((enumeration(schema, "SessionExitStatus") == asSet(kSessionExitStatuses)));
    BOOST_TEST((enumeration(schema, "Operation") == asSet(kOperations)));
    BOOST_TEST((enumeration(schema, "DependenciesResolutionStatus") == asSet(kResolutionStatuses)));
    BOOST_TEST((enumeration(schema, "PackageStatus") == asSet(kPackageStatuses)));
    BOOST_TEST((enumeration(schema, "ResourceStatus") == asSet(kResourceStatuses)));
}

BOOST_AUTO_TEST_SUITE_END()
