#include <boost/test/unit_test.hpp>
#include <thread>

#include "deployer/package_archive.h"
#include "deployer/repository.h"
#include "deployer/sha256.h"
#include "test_support.h"

using namespace rm::deployer;
using rm::deployer::test::Dep;
using rm::deployer::test::indexed;
using rm::deployer::test::profileXml;
using rm::deployer::test::TempDir;
using rm::deployer::test::writeFile;
namespace fs = std::filesystem;

namespace {

// Builds a package from a throw-away source directory straight into the repository.
void addPackage(const TempDir& scratch, const fs::path& out, const std::string& xml,
                const std::string& payload = "data") {
    const fs::path src = scratch / ("src-" + out.filename().string());
    fs::remove_all(src);
    writeFile(src / "profile.xml", xml);
    writeFile(src / "payload.txt", payload);
    fs::create_directories(out.parent_path());
    buildPackage(src, out);
}

std::vector<std::string> files(const std::vector<RepositoryProblem>& problems) {
    std::vector<std::string> result;
    for (const auto& p : problems) result.push_back(p.file);
    return result;
}

const RepositoryProblem* problemFor(const std::vector<RepositoryProblem>& problems,
                                    const std::string& file) {
    for (const auto& p : problems) {
        if (p.file == file) return &p;
    }
    return nullptr;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(repository)

BOOST_AUTO_TEST_CASE(indexes_archives_recursively_with_checksums) {
    TempDir scratch, repo;
    addPackage(scratch, repo / "a/Stubs-1.0.tar.gz",
               profileXml("IS", "Notifier", "1.00", "Stubs", "1.0"));
    addPackage(
        scratch, repo / "a/b/Svc-1.1.tar.gz",
        profileXml("IS", "Notifier", "1.00", "Svc", "1.1", {{"IS", "Notifier", "Stubs", ""}}));
    addPackage(scratch, repo / "Svc-2.0.tar.gz", profileXml("IS", "Notifier", "2.0", "Svc", "2.0"));
    writeFile(repo / "notes.txt", "not an archive");
    writeFile(repo / ".hidden/x.tar.gz", "ignored");

    Repository repository(repo.path());
    const auto index = repository.snapshot();
    BOOST_REQUIRE(index);
    BOOST_TEST(index->size() == 3u);
    BOOST_TEST(repository.problems().empty());

    const IndexedPackage* svc = index->findByPath("a/b/Svc-1.1.tar.gz");
    BOOST_REQUIRE(svc);
    BOOST_TEST(svc->profile.coords.packageName == "Svc");
    BOOST_TEST(svc->sha256 == sha256File(repo / "a/b/Svc-1.1.tar.gz"));
    BOOST_TEST(svc->sizeBytes == fs::file_size(repo / "a/b/Svc-1.1.tar.gz"));
    BOOST_TEST(index->findByPath("../etc/passwd") == nullptr);
    BOOST_TEST(index->findByPath("notes.txt") == nullptr);

    BOOST_TEST(index->serviceVersions("IS", "Notifier") ==
               (std::vector<std::string>{"1.00", "2.0"}));
    BOOST_TEST(index->servicePackages("IS", "Notifier").size() == 3u);
    BOOST_TEST(index->servicePackages("IS", "Notifier", "1.0.0").size() == 2u);
    BOOST_TEST(index->servicePackages("IS", "Notifier", "3").empty());
    BOOST_TEST(index->servicePackages("IS", "Other").empty());
    const auto versions = index->packageVersions("IS", "Notifier", "Svc");
    BOOST_REQUIRE(versions.size() == 2u);
    BOOST_TEST(versions[0]->profile.coords.packageVersion == "1.1");
    BOOST_TEST(versions[1]->profile.coords.packageVersion == "2.0");
    BOOST_TEST(index->find(svc->profile.coords) == svc);
}

BOOST_AUTO_TEST_CASE(broken_archives_are_reported_and_skipped) {
    TempDir scratch, repo;
    addPackage(scratch, repo / "good.tar.gz", profileXml("C", "N", "1", "Good", "1"));
    writeFile(repo / "garbage.tar.gz", "definitely not gzip");
    // Neither can come from buildPackage, which refuses them; write them by hand.
    test::writeRawArchive(repo / "sub/noprofile.tar.gz", {{"readme.txt", "no profile here"}});
    test::writeRawArchive(repo / "badprofile.tar.gz",
                          {{"profile.xml", "<Package><ServiceClass>x</ServiceClass></Package>"}});

    Repository repository(repo.path());
    BOOST_TEST(repository.snapshot()->size() == 1u);
    const auto problems = repository.problems();
    BOOST_TEST(files(problems) == (std::vector<std::string>{"badprofile.tar.gz", "garbage.tar.gz",
                                                            "sub/noprofile.tar.gz"}),
               boost::test_tools::per_element());
    BOOST_TEST(problemFor(problems, "sub/noprofile.tar.gz")->reason.find("no profile.xml") !=
               std::string::npos);
    BOOST_TEST(problemFor(problems, "badprofile.tar.gz")->reason.find("ServiceName is missing") !=
               std::string::npos);
    BOOST_TEST(problemFor(problems, "garbage.tar.gz")->reason.find(".tar.gz package") !=
               std::string::npos);
}

BOOST_AUTO_TEST_CASE(rescan_sees_added_replaced_removed) {
    TempDir scratch, repo;
    addPackage(scratch, repo / "a.tar.gz", profileXml("C", "N", "1", "A", "1"));
    addPackage(scratch, repo / "b.tar.gz", profileXml("C", "N", "1", "B", "1"));
    Repository repository(repo.path());
    const auto first = repository.snapshot();
    BOOST_TEST(first->size() == 2u);

    const RescanResult nothing = repository.rescan();
    BOOST_TEST(!nothing.changed());
    BOOST_TEST(repository.snapshot() == first);  // unchanged: same snapshot object

    addPackage(scratch, repo / "c.tar.gz", profileXml("C", "N", "1", "C", "1"));
    fs::remove(repo / "b.tar.gz");
    addPackage(scratch, repo / "a.tar.gz", profileXml("C", "N", "1", "A", "2"), "other payload");
    writeFile(repo / "broken.tar.gz", "junk");

    const RescanResult changes = repository.rescan();
    BOOST_TEST(changes.added == (std::vector<std::string>{"broken.tar.gz", "c.tar.gz"}),
               boost::test_tools::per_element());
    BOOST_TEST(changes.replaced == std::vector<std::string>{"a.tar.gz"},
               boost::test_tools::per_element());
    BOOST_TEST(changes.removed == std::vector<std::string>{"b.tar.gz"},
               boost::test_tools::per_element());

    const auto second = repository.snapshot();
    BOOST_TEST(second != first);
    BOOST_TEST(second->size() == 2u);
    BOOST_TEST(second->findByPath("a.tar.gz")->profile.coords.packageVersion == "2");
    BOOST_TEST(second->findByPath("b.tar.gz") == nullptr);
    // The old snapshot is untouched for whoever still holds it.
    BOOST_TEST(first->findByPath("a.tar.gz")->profile.coords.packageVersion == "1");
    BOOST_TEST(first->findByPath("b.tar.gz") != nullptr);
    BOOST_TEST(files(repository.problems()) == std::vector<std::string>{"broken.tar.gz"});

    fs::remove(repo / "broken.tar.gz");
    const RescanResult fixed = repository.rescan();
    BOOST_TEST(fixed.removed == std::vector<std::string>{"broken.tar.gz"});
    BOOST_TEST(repository.problems().empty());
}

BOOST_AUTO_TEST_CASE(duplicate_coordinates_keep_one_deterministically) {
    TempDir scratch, repo;
    addPackage(scratch, repo / "z/dup.tar.gz", profileXml("C", "N", "1.0", "P", "1.0"), "z");
    addPackage(scratch, repo / "a/dup.tar.gz", profileXml("C", "N", "1", "P", "1.0.0"), "a");
    Repository repository(repo.path());
    const auto index = repository.snapshot();
    BOOST_TEST(index->size() == 1u);
    BOOST_TEST(index->packages()[0].relativePath == "a/dup.tar.gz");
    const auto problems = repository.problems();
    BOOST_REQUIRE(problems.size() == 1u);
    BOOST_TEST(problems[0].file == "z/dup.tar.gz");
    BOOST_TEST(problems[0].reason.find("same coordinates") != std::string::npos);
    // Still reported after a rescan that changes nothing.
    repository.rescan();
    BOOST_TEST(repository.problems().size() == 1u);
}

BOOST_AUTO_TEST_CASE(missing_directory_throws_and_keeps_snapshot) {
    TempDir scratch;
    BOOST_CHECK_THROW(Repository(scratch / "nope"), std::runtime_error);
    const fs::path dir = scratch / "repo";
    addPackage(scratch, dir / "a.tar.gz", profileXml("C", "N", "1", "A", "1"));
    Repository repository(dir);
    fs::remove_all(dir);
    BOOST_CHECK_THROW(repository.rescan(), std::runtime_error);
    BOOST_TEST(repository.snapshot()->size() == 1u);
}

BOOST_AUTO_TEST_CASE(snapshots_are_safe_to_read_during_rescan) {
    TempDir scratch, repo;
    for (int i = 0; i < 5; ++i) {
        addPackage(scratch, repo / ("p" + std::to_string(i) + ".tar.gz"),
                   profileXml("C", "N", "1", "P" + std::to_string(i), "1"));
    }
    Repository repository(repo.path());
    std::atomic<bool> stop{false};
    std::atomic<int> reads{0};
    std::thread reader([&] {
        while (!stop) {
            const auto index = repository.snapshot();
            if (index->size() >= 5) ++reads;
        }
    });
    for (int i = 5; i < 10; ++i) {
        addPackage(scratch, repo / ("p" + std::to_string(i) + ".tar.gz"),
                   profileXml("C", "N", "1", "P" + std::to_string(i), "1"));
        repository.rescan();
    }
    stop = true;
    reader.join();
    BOOST_TEST(reads.load() > 0);
    BOOST_TEST(repository.snapshot()->size() == 10u);
}

BOOST_AUTO_TEST_CASE(index_build_in_memory) {
    std::vector<RepositoryProblem> problems;
    auto bad = indexed("C", "N", "1", "X", "1");
    bad.profile.coords.packageVersion = "not-a-version";
    const auto index = RepositoryIndex::build(
        {indexed("C", "N", "1", "A", "1.2"), indexed("C", "N", "2", "A", "1.10"),
         indexed("C", "N", "1", "A", "1.9"), bad},
        &problems);
    BOOST_TEST(index->size() == 3u);
    BOOST_TEST(problems.size() == 1u);
    const auto identity = index->findIdentity("C", "N", "A");
    BOOST_REQUIRE(identity.has_value());
    const auto candidates = index->candidates(*identity);
    BOOST_REQUIRE(candidates.size() == 3u);
    BOOST_TEST(index->package(candidates[0]).profile.coords.packageVersion == "1.10");
    BOOST_TEST(index->package(candidates[2]).profile.coords.packageVersion == "1.2");
    BOOST_TEST(!index->findIdentity("C", "N", "B").has_value());
}

BOOST_AUTO_TEST_SUITE_END()
