#include <sys/wait.h>

#include <boost/test/unit_test.hpp>
#include <cstdlib>

#include "deployer/package_archive.h"
#include "deployer/repository.h"
#include "deployer/resolver.h"
#include "test_support.h"

using namespace rm::deployer;
using rm::deployer::test::TempDir;
namespace fs = std::filesystem;

namespace {

const fs::path kSamples = fs::path(RM_SOURCE_DIR) / "etc" / "packages";

std::vector<fs::path> sampleDirectories() {
    std::vector<fs::path> dirs;
    for (const auto& entry : fs::directory_iterator(kSamples)) {
        if (entry.is_directory()) dirs.push_back(entry.path());
    }
    std::sort(dirs.begin(), dirs.end());
    return dirs;
}

// The sample repository built once, as `rmctl package` would build it.
struct SampleRepository {
    TempDir dir;
    std::unique_ptr<Repository> repository;

    SampleRepository() {
        for (const fs::path& source : sampleDirectories()) {
            const PackageProfile profile = readProfileOf(source);
            buildPackage(source, dir / defaultPackageFileName(profile));
        }
        repository = std::make_unique<Repository>(dir.path());
    }

    static PackageProfile readProfileOf(const fs::path& source) {
        return parseProfile(test::readFile(source / "profile.xml"),
                            (source / "profile.xml").string());
    }

    ResolutionResult resolveService(const std::string& serviceClass,
                                    const std::string& serviceName) const {
        return resolve(*repository->snapshot(),
                       ResolveRequest{serviceClass, serviceName, {}, {}, {}});
    }
};

std::vector<std::string> names(const ResolutionResult& result) {
    std::vector<std::string> list;
    for (const auto& p : result.installOrder) list.push_back(p.coords.packageName);
    return list;
}

// Runs a lifecycle command the way an agent does (sh, in a copy of the package directory).
int runStep(const fs::path& source, const std::string& command) {
    TempDir container;
    fs::copy(source, container.path(), fs::copy_options::recursive);
    const std::string line =
        "cd '" + container.path().string() + "' && sh -c '" + command + "' >/dev/null 2>&1";
    const int status = std::system(line.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(samples)

BOOST_AUTO_TEST_CASE(every_sample_builds_and_is_indexed) {
    const SampleRepository samples;
    BOOST_TEST(samples.repository->problems().empty());
    BOOST_TEST(samples.repository->snapshot()->size() == sampleDirectories().size());
    BOOST_TEST(sampleDirectories().size() == 7u);
}

BOOST_AUTO_TEST_CASE(sample_services_resolve_as_documented) {
    const SampleRepository samples;

    auto result = samples.resolveService("InformationSystem", "IS-Notifier");
    BOOST_TEST(result.success, result.errorDescription);
    BOOST_TEST(result.serviceVersion == "1.00.00");
    BOOST_TEST(names(result) == (std::vector<std::string>{"Notifier-stubs", "Notifier-service"}),
               boost::test_tools::per_element());
    BOOST_TEST(
        result.installOrder[1].dependsOn ==
        std::vector<std::string>{"InformationSystem/IS-Notifier/1.00.00/Notifier-stubs/1.00.00"});
    BOOST_TEST(result.installOrder[0].sha256.size() == 64u);
    BOOST_TEST(result.installOrder[0].relativePath == "Notifier-stubs-1.00.00.tar.gz");

    result = samples.resolveService("InformationSystem", "IS-Notifier-Client");
    BOOST_TEST(result.success, result.errorDescription);
    BOOST_TEST(names(result) == (std::vector<std::string>{"Notifier-stubs", "Notifier-client"}),
               boost::test_tools::per_element());

    result = samples.resolveService("Samples", "Static-Docs");
    BOOST_TEST(result.success, result.errorDescription);
    BOOST_TEST(names(result) == std::vector<std::string>{"Docs"});

    result = samples.resolveService("Samples", "Broken-Install");
    BOOST_TEST(result.success, result.errorDescription);
    BOOST_TEST(names(result) == (std::vector<std::string>{"Broken-Install", "Depends-On-Broken"}),
               boost::test_tools::per_element());

    result = samples.resolveService("Samples", "Missing-Dep");
    BOOST_TEST(!result.success);
    BOOST_REQUIRE(result.missing.size() == 1u);
    BOOST_TEST(result.missing[0].serviceName == "Nowhere");
    BOOST_TEST(result.missing[0].packageName == "Ghost-lib");
    BOOST_TEST(result.missing[0].packageVersion == "[1.0.0,)");
    BOOST_TEST(result.errorDescription.find("Ghost-lib") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(sample_lifecycles_reference_shipped_scripts) {
    for (const fs::path& source : sampleDirectories()) {
        const Lifecycle lifecycle = SampleRepository::readProfileOf(source).lifecycle;
        for (const auto* step : {&lifecycle.install, &lifecycle.start, &lifecycle.ready,
                                 &lifecycle.verify, &lifecycle.stop, &lifecycle.uninstall}) {
            if (!*step || (*step)->command.rfind("sh ", 0) != 0) continue;
            const std::string script = (*step)->command.substr(3);
            BOOST_TEST(fs::is_regular_file(source / script), source / script);
        }
    }
}

BOOST_AUTO_TEST_CASE(sample_steps_behave_as_documented) {
    BOOST_TEST(runStep(kSamples / "is-notifier-stubs", "sh install.sh") == 0);
    BOOST_TEST(runStep(kSamples / "is-notifier-service", "sh install.sh") == 0);
    BOOST_TEST(runStep(kSamples / "is-notifier-client", "sh verify.sh") == 0);
    BOOST_TEST(runStep(kSamples / "depends-on-broken", "sh install.sh") == 0);
    BOOST_TEST(runStep(kSamples / "broken-install", "sh install.sh") == 1);
}

BOOST_AUTO_TEST_SUITE_END()
