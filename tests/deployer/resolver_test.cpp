#include <boost/test/unit_test.hpp>

#include "deployer/resolver.h"
#include "test_support.h"

using namespace rm::deployer;
using rm::deployer::test::Dep;
using rm::deployer::test::indexed;

namespace {

std::shared_ptr<const RepositoryIndex> makeIndex(std::vector<IndexedPackage> packages) {
    return RepositoryIndex::build(std::move(packages));
}

ResolveRequest service(const std::string& serviceClass, const std::string& serviceName,
                       std::optional<std::string> version = std::nullopt) {
    return ResolveRequest{serviceClass, serviceName, std::move(version), std::nullopt,
                          std::nullopt};
}

ResolveRequest package(const std::string& serviceClass, const std::string& serviceName,
                       const std::string& packageName,
                       std::optional<std::string> version = std::nullopt) {
    return ResolveRequest{serviceClass, serviceName, std::nullopt, packageName, std::move(version)};
}

// "Name@PackageVersion" per installed package, in install order.
std::vector<std::string> order(const ResolutionResult& result) {
    std::vector<std::string> names;
    for (const auto& p : result.installOrder) {
        names.push_back(p.coords.packageName + "@" + p.coords.packageVersion);
    }
    return names;
}

bool mentions(const ResolutionResult& result, const std::string& text) {
    return result.errorDescription.find(text) != std::string::npos;
}

using Names = std::vector<std::string>;

}  // namespace

BOOST_AUTO_TEST_SUITE(resolver)

BOOST_AUTO_TEST_CASE(chain_installs_dependencies_first) {
    const auto index = makeIndex({
        indexed("S", "App", "1.0", "app", "1.0", {{"L", "Mid", "mid", "[1,2)"}}),
        indexed("L", "Mid", "1.0", "mid", "1.5", {{"L", "Base", "base", ""}}),
        indexed("L", "Base", "1.0", "base", "3.0"),
    });
    const auto result = resolve(*index, service("S", "App"));
    BOOST_TEST(result.success);
    BOOST_TEST(result.errorDescription == "-");
    BOOST_TEST(result.serviceVersion == "1.0");
    BOOST_TEST(order(result) == (Names{"base@3.0", "mid@1.5", "app@1.0"}),
               boost::test_tools::per_element());
    BOOST_TEST(result.installOrder[2].dependsOn == Names{"L/Mid/1.0/mid/1.5"});
    BOOST_TEST(result.installOrder[0].dependsOn.empty());
    BOOST_TEST(result.installOrder[0].relativePath == "L/Base/base-3.0@1.0.tar.gz");
    BOOST_TEST(result.missing.empty());
}

BOOST_AUTO_TEST_CASE(diamond_resolves_shared_dependency_once) {
    const auto index = makeIndex({
        indexed("S", "App", "1", "top", "1", {{"S", "App", "left", ""}, {"S", "App", "right", ""}}),
        indexed("S", "App", "1", "left", "1", {{"S", "App", "base", "[1,]"}}),
        indexed("S", "App", "1", "right", "1", {{"S", "App", "base", "(,3)"}}),
        indexed("S", "App", "1", "base", "1"),
        indexed("S", "App", "1", "base", "2"),
        indexed("S", "App", "1", "base", "3"),
    });
    const auto result = resolve(*index, package("S", "App", "top"));
    BOOST_TEST(result.success, result.errorDescription);
    BOOST_TEST(order(result) == (Names{"base@2", "left@1", "right@1", "top@1"}),
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(highest_matching_version_wins_across_service_versions) {
    const auto index = makeIndex({
        indexed("S", "App", "1", "app", "1", {{"L", "Lib", "lib", "[1.0,2.0)"}}),
        indexed("L", "Lib", "1.0", "lib", "1.2"),
        indexed("L", "Lib", "1.1", "lib", "1.10"),
        indexed("L", "Lib", "1.2", "lib", "1.9"),
        indexed("L", "Lib", "2.0", "lib", "2.0"),
    });
    const auto result = resolve(*index, service("S", "App"));
    BOOST_TEST(result.success);
    BOOST_TEST(order(result) == (Names{"lib@1.10", "app@1"}), boost::test_tools::per_element());
    BOOST_TEST(result.installOrder[0].coords.serviceVersion == "1.1");
}

BOOST_AUTO_TEST_CASE(range_excludes_highest) {
    const auto index = makeIndex({
        indexed("S", "App", "1", "app", "1", {{"S", "App", "lib", "(,2.0)"}}),
        indexed("S", "App", "1", "lib", "1.9.9"),
        indexed("S", "App", "2", "lib", "2.0"),
        indexed("S", "App", "2", "lib", "2.1"),
    });
    const auto result = resolve(*index, package("S", "App", "app"));
    BOOST_TEST(result.success);
    BOOST_TEST(order(result) == (Names{"lib@1.9.9", "app@1"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(later_tighter_range_revises_earlier_choice) {
    // a wants any c (3 chosen first), b only accepts c < 3: c must become 2, and c@3's own
    // dependency must not be installed.
    const auto index = makeIndex({
        indexed("S", "X", "1", "root", "1", {{"S", "X", "a", ""}, {"S", "X", "b", ""}}),
        indexed("S", "X", "1", "a", "1", {{"S", "X", "c", ""}}),
        indexed("S", "X", "1", "b", "1", {{"S", "X", "d", ""}}),
        indexed("S", "X", "1", "d", "1", {{"S", "X", "c", "[1,3)"}}),
        indexed("S", "X", "1", "c", "2"),
        indexed("S", "X", "1", "c", "3", {{"S", "X", "only-for-c3", ""}}),
        indexed("S", "X", "1", "only-for-c3", "1"),
    });
    const auto result = resolve(*index, package("S", "X", "root"));
    BOOST_TEST(result.success, result.errorDescription);
    BOOST_TEST(order(result) == (Names{"c@2", "a@1", "d@1", "b@1", "root@1"}),
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(cycle_is_reported_with_its_path) {
    const auto index = makeIndex({
        indexed("S", "X", "1", "entry", "1", {{"S", "X", "a", ""}}),
        indexed("S", "X", "1", "a", "1", {{"S", "X", "b", ""}}),
        indexed("S", "X", "1", "b", "1", {{"S", "X", "c", ""}}),
        indexed("S", "X", "1", "c", "1", {{"S", "X", "a", ""}}),
    });
    const auto result = resolve(*index, package("S", "X", "entry"));
    BOOST_TEST(!result.success);
    BOOST_TEST(
        mentions(result, "dependency cycle: S/X/1/a/1 -> S/X/1/b/1 -> S/X/1/c/1 -> S/X/1/a/1"),
        result.errorDescription);
    BOOST_TEST(result.installOrder.size() == 4u);  // what was found, for the report
    BOOST_TEST(result.missing.empty());
}

BOOST_AUTO_TEST_CASE(self_dependency_is_a_cycle) {
    const auto index = makeIndex({indexed("S", "X", "1", "a", "1", {{"S", "X", "a", ""}})});
    const auto result = resolve(*index, service("S", "X"));
    BOOST_TEST(!result.success);
    BOOST_TEST(mentions(result, "dependency cycle: S/X/1/a/1 -> S/X/1/a/1"),
               result.errorDescription);
}

BOOST_AUTO_TEST_CASE(incompatible_ranges_are_a_conflict) {
    const auto index = makeIndex({
        indexed("S", "X", "1", "root", "1", {{"S", "X", "a", ""}, {"S", "X", "b", ""}}),
        indexed("S", "X", "1", "a", "1", {{"L", "L", "lib", "[1,2)"}}),
        indexed("S", "X", "1", "b", "1", {{"L", "L", "lib", "[2,3)"}}),
        indexed("L", "L", "1", "lib", "1.5"),
        indexed("L", "L", "2", "lib", "2.5"),
    });
    const auto result = resolve(*index, package("S", "X", "root"));
    BOOST_TEST(!result.success);
    BOOST_TEST(mentions(result, "version conflict on L/L/lib"), result.errorDescription);
    BOOST_TEST(mentions(result, "S/X/1/a/1 requires version [1,2)"), result.errorDescription);
    BOOST_TEST(mentions(result, "S/X/1/b/1 requires version [2,3)"), result.errorDescription);
    BOOST_TEST(mentions(result, "available: 1.5, 2.5"), result.errorDescription);
    BOOST_TEST(result.missing.empty());
}

BOOST_AUTO_TEST_CASE(overlapping_ranges_choose_highest_common_version) {
    const auto index = makeIndex({
        indexed("S", "X", "1", "root", "1", {{"S", "X", "a", ""}, {"S", "X", "b", ""}}),
        indexed("S", "X", "1", "a", "1", {{"L", "L", "lib", "[1,3)"}}),
        indexed("S", "X", "1", "b", "1", {{"L", "L", "lib", "[2,4)"}}),
        indexed("L", "L", "1", "lib", "1"),
        indexed("L", "L", "1", "lib", "2.5"),
        indexed("L", "L", "1", "lib", "2.7"),
        indexed("L", "L", "1", "lib", "3.5"),
    });
    const auto result = resolve(*index, package("S", "X", "root"));
    BOOST_TEST(result.success, result.errorDescription);
    BOOST_TEST(order(result)[0] == "lib@2.7");
}

BOOST_AUTO_TEST_CASE(requested_package_version_is_pinned) {
    const auto index = makeIndex({
        indexed("S", "X", "1", "a", "1", {{"S", "X", "b", "[2,]"}}),
        indexed("S", "X", "1", "b", "1"),
        indexed("S", "X", "2", "b", "2"),
    });
    // Service version 1 pins b@1, which a's range excludes.
    const auto result = resolve(*index, service("S", "X", "1"));
    BOOST_TEST(!result.success);
    BOOST_TEST(mentions(result, "the request pins S/X/1/b/1"), result.errorDescription);
}

BOOST_AUTO_TEST_CASE(missing_dependency_is_listed) {
    const auto index = makeIndex({
        indexed("S", "X", "1", "a", "1", {{"S", "X", "ghost", "[1.0,)"}, {"S", "X", "b", "[5,)"}}),
        indexed("S", "X", "1", "b", "1"),
    });
    const auto result = resolve(*index, service("S", "X"));
    BOOST_TEST(!result.success);
    BOOST_REQUIRE(result.missing.size() == 2u);
    BOOST_TEST(result.missing[0].packageName == "ghost");
    BOOST_TEST(result.missing[0].serviceClass == "S");
    BOOST_TEST(result.missing[0].serviceVersion == "");
    BOOST_TEST(result.missing[0].packageVersion == "[1.0,)");
    BOOST_TEST(result.missing[0].requiredBy == "S/X/1/a/1");
    BOOST_TEST(result.missing[1].packageName == "b");
    BOOST_TEST(
        mentions(result, "missing dependency S/X/ghost (version [1.0,)) required by S/X/1/a/1"),
        result.errorDescription);
    BOOST_TEST(mentions(result, "has no version [5,) available (available: 1)"),
               result.errorDescription);
}

BOOST_AUTO_TEST_CASE(unknown_service_and_package_are_missing) {
    const auto index = makeIndex({indexed("S", "X", "1", "a", "1")});
    auto result = resolve(*index, service("S", "Nope"));
    BOOST_TEST(!result.success);
    BOOST_REQUIRE(result.missing.size() == 1u);
    BOOST_TEST(result.missing[0].serviceName == "Nope");
    BOOST_TEST(result.missing[0].requiredBy == "");
    BOOST_TEST(mentions(result, "service S/Nope is not in the software repository"));

    result = resolve(*index, service("S", "X", "2.0"));
    BOOST_TEST(!result.success);
    BOOST_TEST(result.missing.at(0).serviceVersion == "2.0");
    BOOST_TEST(mentions(result, "has no version 2.0"), result.errorDescription);

    result = resolve(*index, package("S", "X", "b"));
    BOOST_TEST(!result.success);
    BOOST_TEST(result.missing.at(0).packageName == "b");

    result = resolve(*index, package("S", "X", "a", "[2,3)"));
    BOOST_TEST(!result.success);
    BOOST_TEST(result.missing.at(0).packageVersion == "[2,3)");

    result = resolve(*index, service("S", "X", "one"));
    BOOST_TEST(!result.success);
    BOOST_TEST(mentions(result, "invalid version 'one'"), result.errorDescription);
}

BOOST_AUTO_TEST_CASE(service_version_selection) {
    const auto index = makeIndex({
        indexed("S", "X", "1.9", "a", "1"),
        indexed("S", "X", "1.9", "old-only", "1"),
        indexed("S", "X", "1.10", "a", "2"),
        indexed("S", "X", "1.10", "b", "2"),
    });
    auto result = resolve(*index, service("S", "X"));
    BOOST_TEST(result.serviceVersion == "1.10");
    BOOST_TEST(order(result) == (Names{"a@2", "b@2"}), boost::test_tools::per_element());

    result = resolve(*index, service("S", "X", "1.9.0"));
    BOOST_TEST(result.success);
    BOOST_TEST(result.serviceVersion == "1.9");
    BOOST_TEST(order(result) == (Names{"a@1", "old-only@1"}), boost::test_tools::per_element());

    // Absent service version: the highest that has the requested package.
    result = resolve(*index, package("S", "X", "old-only"));
    BOOST_TEST(result.success);
    BOOST_TEST(result.serviceVersion == "1.9");
}

BOOST_AUTO_TEST_CASE(single_package_request_pulls_only_its_closure) {
    const auto index = makeIndex({
        indexed("S", "X", "1", "a", "1", {{"S", "X", "b", ""}}),
        indexed("S", "X", "1", "b", "1"),
        indexed("S", "X", "1", "c", "1"),
    });
    auto result = resolve(*index, package("S", "X", "a"));
    BOOST_TEST(result.success);
    BOOST_TEST(order(result) == (Names{"b@1", "a@1"}), boost::test_tools::per_element());
    result = resolve(*index, package("S", "X", "c", "1.0.0"));
    BOOST_TEST(result.success);
    BOOST_TEST(order(result) == Names{"c@1"}, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(equal_versions_prefer_the_requested_service_release) {
    const auto index = makeIndex({
        indexed("S", "X", "1", "svc", "1", {{"S", "X", "stubs", "[1,2)"}}),
        indexed("S", "X", "1", "stubs", "1"),
        indexed("S", "X", "2", "stubs", "1"),
        indexed("S", "X", "2", "svc", "2"),
    });
    const auto result =
        resolve(*index, ResolveRequest{"S", "X", std::string("1"), std::string("svc"), {}});
    BOOST_TEST(result.success);
    BOOST_TEST(result.serviceVersion == "1");
    BOOST_TEST(order(result) == (Names{"stubs@1", "svc@1"}), boost::test_tools::per_element());
    // stubs 1 exists in releases 1 and 2; the requested release's copy is taken.
    BOOST_TEST(result.installOrder.at(0).coords.serviceVersion == "1");
}

BOOST_AUTO_TEST_CASE(install_order_is_deterministic_and_respects_edges) {
    // A wider graph: every package must come after all of its dependencies, and the same
    // request must always produce the same order.
    std::vector<IndexedPackage> packages;
    for (int i = 0; i < 30; ++i) {
        std::vector<Dep> deps;
        for (int j = i + 1; j < 30; j += 1 + i % 4) {
            deps.push_back({"S", "X", "p" + std::to_string(j), ""});
        }
        packages.push_back(indexed("S", "X", "1", "p" + std::to_string(i), "1", deps));
    }
    const auto index = makeIndex(packages);
    const auto first = resolve(*index, service("S", "X"));
    BOOST_TEST(first.success);
    BOOST_TEST(first.installOrder.size() == 30u);
    std::map<std::string, std::size_t> position;
    for (std::size_t i = 0; i < first.installOrder.size(); ++i) {
        position[first.installOrder[i].coords.key()] = i;
    }
    for (std::size_t i = 0; i < first.installOrder.size(); ++i) {
        for (const auto& dep : first.installOrder[i].dependsOn) {
            BOOST_TEST(position.at(dep) < i);
        }
    }
    BOOST_TEST(order(resolve(*index, service("S", "X"))) == order(first));
    BOOST_TEST(first.installOrder.front().coords.packageName == "p29");
    BOOST_TEST(first.installOrder.back().coords.packageName == "p0");
}

BOOST_AUTO_TEST_SUITE_END()
