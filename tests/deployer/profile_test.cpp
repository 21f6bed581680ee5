#include <boost/test/unit_test.hpp>

#include "deployer/profile.h"
#include "test_support.h"

using namespace rm::deployer;
using rm::deployer::test::profileXml;

namespace {

const std::string kSpecExample = R"(<?xml version="1.0" encoding="UTF-8"?>
<Package>
  <ServiceClass>InformationSystem</ServiceClass><ServiceName>IS-Notifier</ServiceName>
  <ServiceVersion>1.00.00</ServiceVersion>
  <PackageName>Notifier-service</PackageName><PackageVersion>1.01.00</PackageVersion>
  <Description>ignored: profiles may carry more elements</Description>
  <Dependencies>
    <Dependency><ServiceClass>InformationSystem</ServiceClass><ServiceName>IS-Notifier</ServiceName>
      <PackageName>Notifier-stubs</PackageName><Version>[1.00.00,2.00.00)</Version></Dependency>
    <Dependency><ServiceClass>Common</ServiceClass><ServiceName>Logging</ServiceName>
      <PackageName>log-lib</PackageName></Dependency>
  </Dependencies>
  <Lifecycle>
    <Install timeout="60">sh install.sh</Install>
    <Start>exec ./bin/notifier</Start>
    <Ready timeout="5">sh ready.sh</Ready>
    <Verify>sh verify.sh</Verify>
    <Stop timeout="10"/>
    <Uninstall>sh uninstall.sh</Uninstall>
  </Lifecycle>
  <Requirements><Label key="os">linux</Label><Label key="zone">eu-1</Label><MinDiskMB>250</MinDiskMB></Requirements>
</Package>)";

// Asserts parseProfile rejects `xml` with a message containing `source` and `text`.
void expectRejected(const std::string& xml, const std::string& text) {
    BOOST_TEST_CONTEXT("expecting rejection mentioning '" << text << "'") {
        bool thrown = false;
        try {
            parseProfile(xml, "pkg-1.tar.gz:profile.xml");
        } catch (const ProfileError& e) {
            thrown = true;
            const std::string message = e.what();
            BOOST_TEST(message.find("pkg-1.tar.gz:profile.xml") != std::string::npos, message);
            BOOST_TEST(message.find(text) != std::string::npos, message);
        }
        BOOST_TEST(thrown);
    }
}

std::string withCoordinates(const std::string& inner) {
    return "<Package><ServiceClass>C</ServiceClass><ServiceName>N</ServiceName>"
           "<ServiceVersion>1.0</ServiceVersion><PackageName>P</PackageName>"
           "<PackageVersion>1.0</PackageVersion>" +
           inner + "</Package>";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(profile)

BOOST_AUTO_TEST_CASE(parses_the_spec_example) {
    const PackageProfile p = parseProfile(kSpecExample, "example");
    BOOST_TEST(p.coords.serviceClass == "InformationSystem");
    BOOST_TEST(p.coords.serviceName == "IS-Notifier");
    BOOST_TEST(p.coords.serviceVersion == "1.00.00");
    BOOST_TEST(p.coords.packageName == "Notifier-service");
    BOOST_TEST(p.coords.packageVersion == "1.01.00");
    BOOST_TEST(p.coords.key() == "InformationSystem/IS-Notifier/1.00.00/Notifier-service/1.01.00");
    BOOST_TEST(p.coords.packageKey() == "InformationSystem/IS-Notifier/Notifier-service");
    BOOST_TEST_REQUIRE(p.dependencies.size() == 2u);
    BOOST_TEST(p.dependencies[0].packageName == "Notifier-stubs");
    BOOST_TEST(p.dependencies[0].range.toString() == "[1.00.00,2.00.00)");
    BOOST_TEST(p.dependencies[0].range.contains(Version::parse("1.5")));
    BOOST_TEST(!p.dependencies[0].range.contains(Version::parse("2.0")));
    BOOST_TEST(p.dependencies[1].serviceClass == "Common");
    BOOST_TEST(p.dependencies[1].range.isAny());
    BOOST_TEST_REQUIRE(p.lifecycle.install.has_value());
    BOOST_TEST(p.lifecycle.install->command == "sh install.sh");
    BOOST_TEST(p.lifecycle.install->timeoutSeconds == 60);
    BOOST_TEST(p.lifecycle.start->command == "exec ./bin/notifier");
    BOOST_TEST(p.lifecycle.start->timeoutSeconds == LifecycleDefaults::kStart);
    BOOST_TEST(p.lifecycle.ready->timeoutSeconds == 5);
    BOOST_TEST(p.lifecycle.verify->timeoutSeconds == 30);
    BOOST_TEST(p.lifecycle.stop->command == "");
    BOOST_TEST(p.lifecycle.stop->timeoutSeconds == 10);
    BOOST_TEST(p.lifecycle.uninstall->timeoutSeconds == 60);
    BOOST_TEST(p.requirements.labels.size() == 2u);
    BOOST_TEST(p.requirements.labels.at("zone") == "eu-1");
    BOOST_TEST(p.requirements.minDiskMB == 250);
}

BOOST_AUTO_TEST_CASE(minimal_profile_has_no_lifecycle) {
    const auto p = parseProfile(profileXml("C", "N", "1", "P", "2"), "x");
    BOOST_TEST(p.dependencies.empty());
    BOOST_TEST(!p.lifecycle.install.has_value());
    BOOST_TEST(!p.lifecycle.start.has_value());
    BOOST_TEST(!p.lifecycle.stop.has_value());
    BOOST_TEST(p.requirements.minDiskMB == 0);
}

BOOST_AUTO_TEST_CASE(default_timeouts) {
    const auto p = parseProfile(
        withCoordinates("<Lifecycle><Install>a</Install><Ready>b</Ready><Verify>c</Verify>"
                        "<Stop>d</Stop><Uninstall>e</Uninstall></Lifecycle>"),
        "x");
    BOOST_TEST(p.lifecycle.install->timeoutSeconds == 60);
    BOOST_TEST(p.lifecycle.ready->timeoutSeconds == 10);
    BOOST_TEST(p.lifecycle.verify->timeoutSeconds == 30);
    BOOST_TEST(p.lifecycle.stop->timeoutSeconds == 10);
    BOOST_TEST(p.lifecycle.stop->command == "d");
    BOOST_TEST(p.lifecycle.uninstall->timeoutSeconds == 60);
}

BOOST_AUTO_TEST_CASE(rejects_dtd_and_entity_bomb) {
    expectRejected(R"(<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<Package><ServiceClass>&lol3;</ServiceClass></Package>)",
                   "DOCTYPE");
    expectRejected(R"(<!doctype Package SYSTEM "file:///etc/passwd"><Package/>)", "DOCTYPE");
    expectRejected(R"(<Package><!ENTITY x "y"></Package>)", "ENTITY");
}

BOOST_AUTO_TEST_CASE(rejects_oversized_document) {
    const std::string padding(300 * 1024, ' ');
    expectRejected(withCoordinates("<Description>" + padding + "</Description>"),
                   "limited to 262144 bytes");
}

BOOST_AUTO_TEST_CASE(rejects_deep_nesting) {
    std::string deep;
    for (int i = 0; i < 20; ++i) deep += "<x>";
    for (int i = 0; i < 20; ++i) deep += "</x>";
    expectRejected(withCoordinates(deep), "nested deeper than 16");
    // Far deeper than any stack would tolerate when walked recursively.
    std::string hostile;
    for (int i = 0; i < 30000; ++i) hostile += "<a>";
    for (int i = 0; i < 30000; ++i) hostile += "</a>";
    expectRejected(withCoordinates(hostile), "nested deeper than 16");
    expectRejected("<Package>" + hostile.substr(0, 90000), "not well-formed");
    // Exactly at the limit is accepted (Package is level 1).
    std::string ok;
    for (int i = 0; i < 15; ++i) ok += "<x>";
    for (int i = 0; i < 15; ++i) ok += "</x>";
    BOOST_CHECK_NO_THROW(parseProfile(withCoordinates(ok), "x"));
}

BOOST_AUTO_TEST_CASE(rejects_missing_or_empty_coordinates) {
    expectRejected(profileXml("", "N", "1", "P", "1"), "Package/ServiceClass is empty");
    expectRejected(profileXml("C", "  ", "1", "P", "1"), "Package/ServiceName is empty");
    expectRejected(
        "<Package><ServiceClass>C</ServiceClass><ServiceName>N</ServiceName>"
        "<ServiceVersion>1</ServiceVersion><PackageVersion>1</PackageVersion></Package>",
        "Package/PackageName is missing");
    expectRejected(profileXml("C", "N", "", "P", "1"), "Package/ServiceVersion is empty");
}

BOOST_AUTO_TEST_CASE(rejects_bad_names_and_versions) {
    expectRejected(profileXml("C", "N", "1.0-SNAPSHOT", "P", "1"),
                   "invalid version '1.0-SNAPSHOT'");
    expectRejected(profileXml("C", "N", "1", "P", "v2"), "Package/PackageVersion");
    expectRejected(profileXml("C", "N/../..", "1", "P", "1"), "not a valid name");
    expectRejected(profileXml("C", "N", "1", "..", "1"), "not a valid name");
    expectRejected(profileXml("C d", "N", "1", "P", "1"), "not a valid name");
    expectRejected(profileXml("C", "N", "1", std::string(129, 'p'), "1"), "not a valid name");
    expectRejected(withCoordinates("<ServiceClass>again</ServiceClass>"), "more than once");
    expectRejected(profileXml("C<b/>", "N", "1", "P", "1"), "must contain only text");
}

BOOST_AUTO_TEST_CASE(rejects_bad_dependencies) {
    expectRejected(profileXml("C", "N", "1", "P", "1", {{"C", "N", "Q", "[2.0,1.0)"}}),
                   "Dependency[1]/Version");
    expectRejected(profileXml("C", "N", "1", "P", "1", {{"C", "N", "Q", "[1.0"}}), "must end");
    expectRejected(profileXml("C", "N", "1", "P", "1", {{"C", "", "Q", ""}}),
                   "Dependency[1]/ServiceName is empty");
    expectRejected(profileXml("C", "N", "1", "P", "1", {{"C", "N", "Q", ""}, {"C", "N", "Q", "1"}}),
                   "a second time");
    expectRejected(withCoordinates("<Dependencies><Dependant/></Dependencies>"),
                   "only contain <Dependency>");
    std::string many = "<Dependencies>";
    for (int i = 0; i < 1001; ++i) {
        many +=
            "<Dependency><ServiceClass>C</ServiceClass><ServiceName>N</ServiceName><PackageName>p" +
            std::to_string(i) + "</PackageName></Dependency>";
    }
    expectRejected(withCoordinates(many + "</Dependencies>"), "more than 1000 dependencies");
}

BOOST_AUTO_TEST_CASE(rejects_bad_lifecycle) {
    expectRejected(withCoordinates("<Lifecycle><Install timeout=\"0\">a</Install></Lifecycle>"),
                   "Lifecycle/Install has timeout=\"0\"");
    expectRejected(withCoordinates("<Lifecycle><Install timeout=\"-5\">a</Install></Lifecycle>"),
                   "timeout");
    expectRejected(withCoordinates("<Lifecycle><Ready timeout=\"99999999\">a</Ready></Lifecycle>"),
                   "from 1 to 86400");
    expectRejected(withCoordinates("<Lifecycle><Verify timeout=\"10s\">a</Verify></Lifecycle>"),
                   "timeout");
    expectRejected(withCoordinates("<Lifecycle><Instal>a</Instal></Lifecycle>"),
                   "unknown step <Instal>");
    expectRejected(withCoordinates("<Lifecycle><Install/></Lifecycle>"), "has no command");
    expectRejected(withCoordinates("<Lifecycle><Start>a</Start><Start>b</Start></Lifecycle>"),
                   "more than once");
    expectRejected(withCoordinates("<Lifecycle><Stop timout=\"3\"/></Lifecycle>"),
                   "unknown attribute 'timout'");
}

BOOST_AUTO_TEST_CASE(rejects_bad_requirements) {
    expectRejected(withCoordinates("<Requirements><MinDiskMB>-1</MinDiskMB></Requirements>"),
                   "MinDiskMB");
    expectRejected(withCoordinates("<Requirements><MinDiskMB>lots</MinDiskMB></Requirements>"),
                   "MinDiskMB");
    expectRejected(withCoordinates("<Requirements><Label>x</Label></Requirements>"),
                   "key attribute");
    expectRejected(
        withCoordinates(
            "<Requirements><Label key=\"a\">1</Label><Label key=\"a\">2</Label></Requirements>"),
        "given twice");
}

BOOST_AUTO_TEST_CASE(rejects_junk_and_non_xml) {
    expectRejected("this is not xml at all", "");
    expectRejected("", "no <Package> element");
    expectRejected("<!-- only a comment -->", "no <Package> element");
    expectRejected("<Package><ServiceClass>C</ServiceClass>", "not well-formed");
    expectRejected("<Profile><Package/></Profile>", "expected <Package>");
    expectRejected(withCoordinates("") + "<Package/>", "more than one top-level element");
    expectRejected(withCoordinates("stray words"), "unexpected text");
    expectRejected(std::string("\x00\x01\x02<Package/>", 13), "");
    expectRejected(withCoordinates("") + "trailing", "text outside");
    expectRejected("junk" + withCoordinates(""), "text outside");
}

BOOST_AUTO_TEST_CASE(name_rules) {
    BOOST_TEST(isValidName("IS-Notifier_1.0"));
    BOOST_TEST(!isValidName(""));
    BOOST_TEST(!isValidName("."));
    BOOST_TEST(!isValidName("..."));
    BOOST_TEST(isValidName(".hidden"));
    BOOST_TEST(!isValidName("a/b"));
    BOOST_TEST(!isValidName("caf\xc3\xa9"));
}

BOOST_AUTO_TEST_SUITE_END()
