// The software half of a report through SOAP (issue 3): a resolvable service and an
// unresolvable one added to a scope that has the sample repository but no hosting node. The
// resolution part of each Services/Service entry must already be complete and exact.
#include <algorithm>
#include <filesystem>

#include "rm_test_helpers.h"

using namespace rm::testing;

namespace {

// An RM whose repository holds the sample packages (built into build/repository).
struct SampleScope {
    RmInstance rm;
    SampleScope() {
        auto samples = binDir().parent_path() / "repository";
        BOOST_REQUIRE_MESSAGE(std::filesystem::is_directory(samples),
                              samples.string() + " missing: build the sample_repository target");
        for (const auto& entry : std::filesystem::recursive_directory_iterator(samples)) {
            if (!entry.is_regular_file()) continue;
            auto target = rm.repository() / std::filesystem::relative(entry.path(), samples);
            std::filesystem::create_directories(target.parent_path());
            std::filesystem::copy_file(entry.path(), target);
        }
        rm.restart();  // indexed at start-up, no need to wait for a rescan
    }
};

const rm::reports::ServiceEntry& serviceNamed(const rm::reports::ResourceReport& report,
                                              const std::string& name) {
    auto it = std::find_if(report.services.begin(), report.services.end(),
                           [&](const auto& s) { return s.serviceName == name; });
    if (it == report.services.end()) throw std::runtime_error("no Service entry for " + name);
    return *it;
}

bool lists(const std::vector<rm::reports::Dependency>& deps, const std::string& package) {
    return std::any_of(deps.begin(), deps.end(),
                       [&](const auto& d) { return d.packageName == package; });
}

}  // namespace

BOOST_AUTO_TEST_SUITE(rm_services)

BOOST_AUTO_TEST_CASE(resolvable_service_without_nodes_fails_for_want_of_a_node) {
    SampleScope scope;
    auto client = scope.rm.client();
    rm::client::ScopeRequest request;
    request.targetScope = kScope;
    request.services = {{"InformationSystem", "IS-Notifier", {}, {}, {}, {}}};
    std::string id = client->addResources(request);
    std::string document = client->getReport(id);
    auto report = waitClosed(*client, id);

    BOOST_TEST(report.sessionExitStatus.value_or("") == "FAILED");
    BOOST_REQUIRE_EQUAL(report.services.size(), 1u);
    const auto& service = serviceNamed(report, "IS-Notifier");
    BOOST_TEST(service.serviceClass == "InformationSystem");
    BOOST_TEST(service.serviceVersion == "1.00.00");
    BOOST_TEST(service.resolutionStatus == "SUCCESS");
    BOOST_TEST(service.missing.empty());
    // The whole closure: the service package and the stubs it depends on, at their versions.
    BOOST_TEST(lists(service.resolved, "Notifier-service"));
    BOOST_TEST(lists(service.resolved, "Notifier-stubs"));
    for (const auto& dep : service.resolved) BOOST_TEST(!dep.packageVersion.empty());
    BOOST_TEST(service.deployedOn == std::string(rm::reports::kNotDeployed));
    BOOST_TEST(service.errorDescription.find("no suitable gHN") != std::string::npos,
               "ErrorDescription: " << service.errorDescription);
    BOOST_TEST(schemaProblems(kXmlDeclaration + client->getReport(id), scope.rm.dir()).empty());
}

BOOST_AUTO_TEST_CASE(unresolvable_service_names_what_is_missing) {
    SampleScope scope;
    auto client = scope.rm.client();
    rm::client::ScopeRequest request;
    request.targetScope = kScope;
    request.services = {{"Samples", "Missing-Dep", {}, {}, {}, {}},
                        {"InformationSystem", "IS-Notifier", {}, {}, {}, {}}};
    auto report = waitClosed(*client, client->addResources(request));

    BOOST_TEST(report.sessionExitStatus.value_or("") == "FAILED");
    BOOST_REQUIRE_EQUAL(report.services.size(), 2u);
    const auto& missing = serviceNamed(report, "Missing-Dep");
    BOOST_TEST(missing.resolutionStatus == "FAILED");
    BOOST_TEST(missing.deployedOn == std::string(rm::reports::kNotDeployed));
    BOOST_REQUIRE_EQUAL(missing.missing.size(), 1u);
    BOOST_TEST(missing.missing[0].serviceClass == "Samples");
    BOOST_TEST(missing.missing[0].serviceName == "Nowhere");
    BOOST_TEST(missing.missing[0].packageName == "Ghost-lib");
    BOOST_TEST(missing.errorDescription.find("Ghost-lib") != std::string::npos,
               "ErrorDescription: " << missing.errorDescription);
    // The resolvable one in the same request is resolved independently.
    BOOST_TEST(serviceNamed(report, "IS-Notifier").resolutionStatus == "SUCCESS");
}

BOOST_AUTO_TEST_CASE(unknown_service_and_version_are_named) {
    SampleScope scope;
    auto client = scope.rm.client();
    rm::client::ScopeRequest request;
    request.targetScope = kScope;
    request.services = {{"Samples", "Does-Not-Exist", {}, {}, {}, {}},
                        {"InformationSystem", "IS-Notifier", std::string("9.99.99"), {}, {}, {}}};
    auto report = waitClosed(*client, client->addResources(request));
    BOOST_TEST(report.sessionExitStatus.value_or("") == "FAILED");
    BOOST_REQUIRE_EQUAL(report.services.size(), 2u);
    for (const auto& service : report.services) {
        BOOST_TEST(service.resolutionStatus == "FAILED");
        BOOST_TEST(service.deployedOn == std::string(rm::reports::kNotDeployed));
        BOOST_TEST(service.errorDescription != "", "an unresolved service must say why");
    }
    BOOST_TEST(serviceNamed(report, "Does-Not-Exist").errorDescription.find("Does-Not-Exist") !=
               std::string::npos);
    BOOST_TEST(serviceNamed(report, "IS-Notifier").errorDescription.find("9.99.99") !=
               std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
