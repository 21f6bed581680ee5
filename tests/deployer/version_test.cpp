#include <boost/test/unit_test.hpp>

#include "deployer/version.h"

using rm::deployer::Version;
using rm::deployer::VersionError;
using rm::deployer::VersionRange;

namespace {

bool messageContains(const VersionError& e, const std::string& text) {
    return std::string(e.what()).find(text) != std::string::npos;
}

bool in(const std::string& range, const std::string& version) {
    return VersionRange::parse(range).contains(Version::parse(version));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(version)

BOOST_AUTO_TEST_CASE(compares_segments_numerically) {
    BOOST_TEST((Version::parse("1.10.0") > Version::parse("1.9.3")));
    BOOST_TEST((Version::parse("2") > Version::parse("1.99.99")));
    BOOST_TEST((Version::parse("1.00.00") < Version::parse("1.01.00")));
    BOOST_TEST((Version::parse("0.0.1") > Version::parse("0")));
    BOOST_TEST((Version::parse("4294967295") > Version::parse("4294967294")));
}

BOOST_AUTO_TEST_CASE(missing_trailing_segments_are_zero) {
    BOOST_TEST((Version::parse("1.0") == Version::parse("1.0.0")));
    BOOST_TEST((Version::parse("1") == Version::parse("1.00.000")));
    BOOST_TEST((Version::parse("1.0.0.1") > Version::parse("1")));
}

BOOST_AUTO_TEST_CASE(keeps_original_text) {
    BOOST_TEST(Version::parse("1.00.00").toString() == "1.00.00");
    BOOST_TEST(Version::parse("1.00.00").segments() == (std::vector<std::uint32_t>{1, 0, 0}));
}

BOOST_AUTO_TEST_CASE(rejects_malformed_versions_with_reason) {
    BOOST_CHECK_EXCEPTION(Version::parse(""), VersionError,
                          [](const auto& e) { return messageContains(e, "empty"); });
    BOOST_CHECK_EXCEPTION(Version::parse("1..2"), VersionError,
                          [](const auto& e) { return messageContains(e, "empty segment"); });
    BOOST_CHECK_EXCEPTION(Version::parse("1.2."), VersionError,
                          [](const auto& e) { return messageContains(e, "empty segment"); });
    BOOST_CHECK_EXCEPTION(Version::parse("1.2-beta"), VersionError,
                          [](const auto& e) { return messageContains(e, "'-'"); });
    BOOST_CHECK_EXCEPTION(Version::parse("-1"), VersionError, [](const auto& e) {
        return messageContains(e, "'1.2.0'") || messageContains(e, "'-'");
    });
    BOOST_CHECK_EXCEPTION(Version::parse("4294967296"), VersionError,
                          [](const auto& e) { return messageContains(e, "too large"); });
    BOOST_CHECK_EXCEPTION(Version::parse(std::string(65, '1')), VersionError,
                          [](const auto& e) { return messageContains(e, "longer"); });
    BOOST_CHECK_THROW(Version::parse(" 1.0"), VersionError);
    BOOST_TEST(!Version::tryParse("x").has_value());
    BOOST_TEST(Version::tryParse("3.1").has_value());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(version_range)

BOOST_AUTO_TEST_CASE(empty_means_any) {
    const auto any = VersionRange::parse("");
    BOOST_TEST(any.isAny());
    BOOST_TEST(any.toString() == "");
    BOOST_TEST(any.contains(Version::parse("0")));
    BOOST_TEST(VersionRange().contains(Version::parse("99.1")));
    BOOST_TEST(VersionRange::parse("  ").isAny());
}

BOOST_AUTO_TEST_CASE(exact_versions) {
    BOOST_TEST(in("1.2.0", "1.2"));
    BOOST_TEST(!in("1.2.0", "1.2.1"));
    BOOST_TEST(in("[1.2.0]", "1.2.0"));
    BOOST_TEST(!in("[1.2.0]", "1.2.0.1"));
    BOOST_TEST(VersionRange::parse(" 1.2.0 ").toString() == "1.2.0");
}

BOOST_AUTO_TEST_CASE(all_bracket_forms) {
    BOOST_TEST(in("[1.0,2.0)", "1.0"));
    BOOST_TEST(in("[1.0,2.0)", "1.99"));
    BOOST_TEST(!in("[1.0,2.0)", "2.0.0"));
    BOOST_TEST(!in("[1.0,2.0)", "0.9"));
    BOOST_TEST(!in("(1.0,2.0]", "1.0"));
    BOOST_TEST(in("(1.0,2.0]", "2.0"));
    BOOST_TEST(in("(1.0,2.0]", "1.0.1"));
    BOOST_TEST(!in("(1.0,]", "1.0.0"));
    BOOST_TEST(in("(1.0,]", "1000"));
    BOOST_TEST(in("(1.0,)", "1.1"));
    BOOST_TEST(in("[1.0,]", "1.0"));
    BOOST_TEST(!in("[1.0,]", "0.99"));
    BOOST_TEST(in("(,2.0)", "0"));
    BOOST_TEST(!in("(,2.0)", "2"));
    BOOST_TEST(in("(,2.0]", "2"));
    BOOST_TEST(in("[,2.0)", "1.5"));
    BOOST_TEST(in("[1.0, 2.0)", "1.5"));
    BOOST_TEST(in("[1.0,1.0]", "1.0.0"));
    BOOST_TEST(VersionRange::parse("[1.0,2.0)").toString() == "[1.0,2.0)");
    const auto r = VersionRange::parse("(1.0,2.0]");
    BOOST_TEST(!r.lower()->inclusive);
    BOOST_TEST(r.upper()->inclusive);
    BOOST_TEST(r.upper()->version.toString() == "2.0");
}

BOOST_AUTO_TEST_CASE(rejects_bad_ranges) {
    const auto bad = [](const std::string& text, const std::string& reason) {
        BOOST_TEST_CONTEXT("range " << text) {
            BOOST_CHECK_EXCEPTION(VersionRange::parse(text), VersionError, [&](const auto& e) {
                return messageContains(e, reason) && messageContains(e, text);
            });
        }
    };
    bad("[1.0,2.0", "must end");
    bad("1.0,2.0]", "must start");
    bad("[2.0,1.0]", "lower bound is above");
    bad("(1.0,1.0]", "no version can satisfy");
    bad("[1.0,1.0)", "no version can satisfy");
    bad("[1.0,2.0),[3.0,4.0)", "not supported");
    bad("[1,2,3]", "more than one comma");
    bad("(1.0)", "single-version");
    bad("[]", "empty");
    bad("[a,2.0)", "unexpected character 'a'");
    bad("[1.0,x]", "unexpected character 'x'");
    bad("1.x", "unexpected character 'x'");
}

BOOST_AUTO_TEST_SUITE_END()
