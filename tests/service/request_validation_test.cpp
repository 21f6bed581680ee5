// Everything from outside is checked before it can change state (SPEC section 10).
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "service/request_validation.h"

using namespace rm::service;

BOOST_AUTO_TEST_SUITE(request_validation)

BOOST_AUTO_TEST_CASE(scopes) {
    for (const char* good : {"/gcube", "/gcube/devsec", "/a/b/c", "/infra-1/VO_2/v.r.e"}) {
        BOOST_TEST_CONTEXT(good) {
            BOOST_TEST(isValidScope(good));
        }
    }
    for (const char* bad : {"", "/", "gcube", "gcube/devsec", "/gcube/", "//gcube", "/gcube//x",
                            "/gcube/../etc", "/gcube/.", "/a b", "/a\nb", "/ä", "/a;b", "/a/b?c"}) {
        BOOST_TEST_CONTEXT("'" << bad << "'") {
            BOOST_TEST(!isValidScope(bad));
        }
    }
    std::string sixteen, seventeen;
    for (int i = 0; i < 16; ++i) sixteen += "/s";
    seventeen = sixteen + "/s";
    BOOST_TEST(isValidScope(sixteen));
    BOOST_TEST(!isValidScope(seventeen));
    BOOST_TEST(!isValidScope("/" + std::string(600, 'a')));
    BOOST_TEST(!isValidScope(std::string("/a\0b", 4)));
}

BOOST_AUTO_TEST_CASE(identifiers_and_names) {
    BOOST_TEST(isValidIdentifier("4522f7c0-a54c-11dd-8525-e7e836b0fdde"));
    BOOST_TEST(isValidIdentifier("host.example.org:9001"));
    BOOST_TEST(isValidIdentifier(std::string(200, 'x')));
    BOOST_TEST(!isValidIdentifier(std::string(201, 'x')));
    for (const char* bad : {"", "a b", "a/b", "../x", "a<b", "a&b", "a'b", "a\"b", "é", "a\tb"}) {
        BOOST_TEST_CONTEXT("'" << bad << "'") {
            BOOST_TEST(!isValidIdentifier(bad));
        }
    }
    BOOST_TEST(!isValidIdentifier(std::string("a\0b", 3)));
    BOOST_TEST(isValidName("node-1.example_org"));
    BOOST_TEST(!isValidName("node:1"));  // names have no ':'
    BOOST_TEST(!isValidName(std::string(129, 'n')));
    BOOST_TEST(!isValidName(""));
}

BOOST_AUTO_TEST_CASE(endpoints) {
    for (const char* good :
         {"http://127.0.0.1:9001", "https://node.example.org/", "http://[::1]:9001/deployer"}) {
        BOOST_TEST_CONTEXT(good) {
            BOOST_TEST(isValidEndpoint(good));
        }
    }
    for (const char* bad : {"", "ftp://host/", "http://", "https://", "http:///path", "http://:80",
                            "file:///etc/passwd", "http://host/a b", "http://host/\r\nX: y",
                            "javascript:alert(1)", "HTTP//host"}) {
        BOOST_TEST_CONTEXT("'" << bad << "'") {
            BOOST_TEST(!isValidEndpoint(bad));
        }
    }
    BOOST_TEST(!isValidEndpoint("http://h/" + std::string(2000, 'a')));
}

BOOST_AUTO_TEST_CASE(known_types) {
    const auto& types = knownResourceTypes();
    for (const char* t : {"GHN", "RunningInstance", "GenericResource", "RuntimeResource",
                          "Collection", "MetadataCollection"}) {
        BOOST_TEST_CONTEXT(t) {
            BOOST_TEST((std::find(types.begin(), types.end(), t) != types.end()));
        }
    }
}

BOOST_AUTO_TEST_CASE(resources_valid) {
    BOOST_TEST(!validateResources({{"GenericResource", "a"}, {"Collection", "a"}}, 10).has_value());
    BOOST_TEST(!validateResources({}, 10).has_value());
}

BOOST_AUTO_TEST_CASE(resources_unknown_type_names_the_known_ones) {
    auto problem = validateResources({{"GenericResource", "a"}, {"Frobnicator", "b"}}, 10);
    BOOST_REQUIRE(problem.has_value());
    BOOST_TEST(problem->find("unknown type 'Frobnicator'") != std::string::npos);
    BOOST_TEST(problem->find("GenericResource") != std::string::npos);
    // Types are case sensitive.
    BOOST_TEST(validateResources({{"genericresource", "a"}}, 10).has_value());
    BOOST_TEST(validateResources({{"", "a"}}, 10).has_value());
}

BOOST_AUTO_TEST_CASE(resources_bad_identifier) {
    auto problem = validateResources({{"GenericResource", "../../etc/passwd"}}, 10);
    BOOST_REQUIRE(problem.has_value());
    BOOST_TEST(problem->find("is invalid") != std::string::npos);
    BOOST_TEST(validateResources({{"GenericResource", ""}}, 10).has_value());
    // A huge identifier is not echoed back in full.
    auto huge = validateResources({{"GenericResource", std::string(100000, '<')}}, 10);
    BOOST_REQUIRE(huge.has_value());
    BOOST_TEST(huge->size() < 400u);
}

BOOST_AUTO_TEST_CASE(resources_duplicates) {
    auto problem = validateResources(
        {{"GenericResource", "a"}, {"Collection", "b"}, {"GenericResource", "a"}}, 10);
    BOOST_REQUIRE(problem.has_value());
    BOOST_TEST(problem->find("listed twice") != std::string::npos);
    BOOST_TEST(problem->find("GenericResource a") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(resources_too_many) {
    std::vector<ResourceKey> many;
    for (int i = 0; i < 11; ++i) many.push_back({"GenericResource", "r" + std::to_string(i)});
    auto problem = validateResources(many, 10);
    BOOST_REQUIRE(problem.has_value());
    BOOST_TEST(problem->find("too many") != std::string::npos);
    many.pop_back();
    BOOST_TEST(!validateResources(many, 10).has_value());
}

BOOST_AUTO_TEST_SUITE_END()
