#include "agent/archive_extractor.h"

#include <sys/stat.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <functional>

#include "tests/agent/test_support.h"

namespace rm::agent {
namespace {

using test::readFile;
using test::TarBuilder;
using test::TempDir;

const std::string kSha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const std::string kOtherSha = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";

struct ExtractFixture {
    TempDir dir;
    fs::path archive = dir / "package.tar.gz";
    fs::path container = dir / "services" / "svc" / "pkg";
    fs::path outside = dir / "outside";

    ExtractFixture() { fs::create_directories(outside); }

    // Builds an archive, expects it to be refused for `expectedReason` and to leave nothing.
    void expectRefused(const std::function<void(TarBuilder&)>& build,
                       const std::string& expectedEntry, const std::string& expectedReason,
                       const ExtractLimits& limits = {}) {
        {
            TarBuilder tar(archive);
            build(tar);
            tar.close();
        }
        try {
            extractPackage(archive, container, kSha, limits);
            BOOST_ERROR("the archive was accepted; expected refusal of '" << expectedEntry << "'");
        } catch (const ExtractError& error) {
            BOOST_TEST(error.entry() == expectedEntry);
            BOOST_TEST(
                error.reason().find(expectedReason) != std::string::npos,
                "reason '" << error.reason() << "' should contain '" << expectedReason << "'");
            BOOST_TEST(std::string(error.what()).find(expectedEntry) != std::string::npos);
        }
        BOOST_TEST(!fs::exists(fs::symlink_status(container)));
        BOOST_TEST(!fs::exists(fs::symlink_status(stagingDirFor(container))));
        BOOST_TEST(fs::is_empty(outside));
        BOOST_TEST(!isCompletelyUnpacked(container, kSha));
    }
};

BOOST_FIXTURE_TEST_SUITE(archive_extractor, ExtractFixture)

BOOST_AUTO_TEST_CASE(good_archive_unpacks_with_contents_and_marker) {
    TarBuilder tar(archive);
    tar.directory("./")
        .file("./profile.xml", "<Package/>")
        .directory("bin/")
        .file("bin/run.sh", "#!/bin/sh\necho hi\n", 0755)
        .symlink("bin/current", "run.sh")
        .symlink("link-to-root", ".")
        .symlink("bin/up", "../profile.xml")
        .hardlink("profile-copy.xml", "profile.xml");
    tar.close();

    extractPackage(archive, container, kSha);

    BOOST_TEST(readFile(container / "profile.xml") == "<Package/>");
    BOOST_TEST(readFile(container / "bin" / "run.sh") == "#!/bin/sh\necho hi\n");
    BOOST_TEST(::access((container / "bin" / "run.sh").c_str(), X_OK) == 0);
    BOOST_TEST(fs::read_symlink(container / "bin" / "current") == "run.sh");
    BOOST_TEST(readFile(container / "bin" / "up") == "<Package/>");
    BOOST_TEST(fs::hard_link_count(container / "profile.xml") == 2u);
    BOOST_TEST(readFile(container / std::string(kUnpackedMarker)) == kSha + "\n");
    BOOST_TEST(isCompletelyUnpacked(container, kSha));
    BOOST_TEST(!isCompletelyUnpacked(container, kOtherSha));
    BOOST_TEST(!fs::exists(stagingDirFor(container)));
}

BOOST_AUTO_TEST_CASE(setuid_setgid_and_sticky_bits_are_stripped) {
    TarBuilder tar(archive);
    tar.file("suid", "x", 04755).file("sgid", "y", 02755).file("sticky", "z", 01644);
    tar.close();

    extractPackage(archive, container, kSha);

    for (const char* name : {"suid", "sgid", "sticky"}) {
        struct stat info {};
        BOOST_REQUIRE(::stat((container / name).c_str(), &info) == 0);
        BOOST_TEST((info.st_mode & 07000) == 0u, name);
    }
    struct stat info {};
    BOOST_REQUIRE(::stat((container / "suid").c_str(), &info) == 0);
    BOOST_TEST((info.st_mode & 0777) == 0755u);
}

BOOST_AUTO_TEST_CASE(refuses_parent_directory_escape) {
    expectRefused([](TarBuilder& t) { t.file("ok.txt", "fine").file("../evil", "x"); }, "../evil",
                  "'..'");
    BOOST_TEST(!fs::exists(dir / "services" / "svc" / "evil"));
}

BOOST_AUTO_TEST_CASE(refuses_absolute_path) {
    expectRefused([&](TarBuilder& t) { t.file((outside / "abs").string(), "x"); },
                  (outside / "abs").string(), "absolute path");
}

BOOST_AUTO_TEST_CASE(refuses_dotdot_inside_a_path) {
    expectRefused([](TarBuilder& t) { t.file("a/../../x", "x"); }, "a/../../x", "'..'");
}

BOOST_AUTO_TEST_CASE(refuses_non_normalised_names) {
    expectRefused([](TarBuilder& t) { t.file("a//b", "x"); }, "a//b", "not a normalised path");
}

BOOST_AUTO_TEST_CASE(refuses_symlink_to_absolute_directory_and_file_through_it) {
    // Like `etc -> /etc` followed by `etc/passwd`, aimed at a directory of the test.
    expectRefused(
        [&](TarBuilder& t) { t.symlink("etc", outside.string()).file("etc/passwd", "owned"); },
        "etc", "absolute path");
}

BOOST_AUTO_TEST_CASE(refuses_writing_through_a_symlink_even_one_pointing_inside) {
    expectRefused(
        [](TarBuilder& t) { t.directory("real").symlink("alias", "real").file("alias/file", "x"); },
        "alias/file", "through the symlink 'alias'");
}

BOOST_AUTO_TEST_CASE(refuses_relative_symlink_escaping) {
    expectRefused([](TarBuilder& t) { t.symlink("up", "../outside"); }, "up", "leads outside");
}

BOOST_AUTO_TEST_CASE(refuses_symlink_chain_escaping) {
    // `a/b -> ..` is the container root: fine alone. `a/c -> b/..` looks like `a` lexically but
    // really is the container's parent.
    expectRefused([](TarBuilder& t) { t.symlink("a/b", "..").symlink("a/c", "b/.."); }, "a/c",
                  "leads outside");
}

BOOST_AUTO_TEST_CASE(refuses_symlink_chain_escaping_when_the_earlier_link_is_harmless_alone) {
    // The link that escapes is unpacked before the one that makes it escape.
    expectRefused([](TarBuilder& t) { t.symlink("a/c", "b/..").symlink("a/b", ".."); }, "a/c",
                  "leads outside");
}

BOOST_AUTO_TEST_CASE(refuses_symlink_loops) {
    expectRefused([](TarBuilder& t) { t.symlink("x", "y/z").symlink("y", "x"); }, "x", "loop");
}

BOOST_AUTO_TEST_CASE(refuses_hardlink_to_outside) {
    expectRefused([](TarBuilder& t) { t.hardlink("h", "../outside/secret"); }, "h", "'..'");
    expectRefused([](TarBuilder& t) { t.hardlink("h", "/etc/passwd"); }, "h", "absolute path");
}

BOOST_AUTO_TEST_CASE(refuses_hardlink_to_a_name_not_unpacked_before) {
    expectRefused([](TarBuilder& t) { t.hardlink("h", "later").file("later", "x"); }, "h",
                  "not a regular file");
}

BOOST_AUTO_TEST_CASE(refuses_char_device) {
    expectRefused([](TarBuilder& t) { t.file("ok", "x").charDevice("null"); }, "null",
                  "character devices");
}

BOOST_AUTO_TEST_CASE(refuses_fifo) {
    expectRefused([](TarBuilder& t) { t.fifo("pipe"); }, "pipe", "FIFOs");
}

BOOST_AUTO_TEST_CASE(refuses_replacing_an_earlier_entry) {
    expectRefused([](TarBuilder& t) { t.file("f", "first").symlink("f", "elsewhere"); }, "f",
                  "replace an earlier entry");
}

BOOST_AUTO_TEST_CASE(refuses_the_reserved_marker_name) {
    expectRefused([&](TarBuilder& t) { t.file(std::string(kUnpackedMarker), kSha); },
                  std::string(kUnpackedMarker), "reserved");
}

BOOST_AUTO_TEST_CASE(refuses_too_many_entries) {
    ExtractLimits limits;
    limits.maxEntries = 10;
    expectRefused(
        [](TarBuilder& t) {
            for (int i = 0; i < 11; ++i) t.file("f" + std::to_string(i), "x");
        },
        "f10", "more than 10 entries", limits);
}

BOOST_AUTO_TEST_CASE(refuses_more_data_than_the_size_limit) {
    ExtractLimits limits;
    limits.maxTotalBytes = 1000;
    expectRefused(
        [](TarBuilder& t) {
            t.file("small", std::string(600, 'a')).file("big", std::string(600, 'b'));
        },
        "big", "exceed the limit of 1000 bytes", limits);
}

BOOST_AUTO_TEST_CASE(refuses_overlong_paths) {
    ExtractLimits limits;
    limits.maxPathLength = 20;
    const std::string name = "dir/" + std::string(30, 'n');
    expectRefused([&](TarBuilder& t) { t.file(name, "x"); }, name, "longer than 20 bytes", limits);
}

BOOST_AUTO_TEST_CASE(refuses_an_archive_that_is_not_one) {
    test::writeFile(archive, "this is not gzip");
    BOOST_CHECK_THROW(extractPackage(archive, container, kSha), ExtractError);
    BOOST_TEST(!fs::exists(container));
    BOOST_TEST(!fs::exists(stagingDirFor(container)));
}

BOOST_AUTO_TEST_CASE(replaces_an_existing_container_and_keeps_it_when_the_new_one_is_refused) {
    {
        TarBuilder tar(archive);
        tar.file("version", "1").file("only-in-v1", "x");
        tar.close();
    }
    extractPackage(archive, container, kSha);
    {
        TarBuilder tar(archive);
        tar.file("version", "2");
        tar.close();
    }
    extractPackage(archive, container, kOtherSha);
    BOOST_TEST(readFile(container / "version") == "2");
    BOOST_TEST(!fs::exists(container / "only-in-v1"));
    BOOST_TEST(isCompletelyUnpacked(container, kOtherSha));
    BOOST_TEST(!fs::exists(stagingDirFor(container)));

    {
        TarBuilder tar(archive);
        tar.file("version", "3").file("../evil", "x");
        tar.close();
    }
    BOOST_CHECK_THROW(extractPackage(archive, container, kSha), ExtractError);
    BOOST_TEST(readFile(container / "version") == "2");
    BOOST_TEST(isCompletelyUnpacked(container, kOtherSha));
    BOOST_TEST(!fs::exists(stagingDirFor(container)));
}

BOOST_AUTO_TEST_CASE(half_unpacked_staging_is_recognised_and_removed) {
    const fs::path staging = stagingDirFor(container);
    fs::create_directories(staging / "bin");
    test::writeFile(staging / "bin" / "half", "trunc");
    BOOST_TEST(!isCompletelyUnpacked(container, kSha));

    BOOST_TEST(removeHalfUnpacked(container));
    BOOST_TEST(!fs::exists(staging));
    BOOST_TEST(!removeHalfUnpacked(container));
}

BOOST_AUTO_TEST_CASE(container_without_marker_is_not_complete) {
    fs::create_directories(container);
    test::writeFile(container / "profile.xml", "<Package/>");
    BOOST_TEST(!isCompletelyUnpacked(container, kSha));
}

BOOST_AUTO_TEST_CASE(extraction_clears_a_stale_staging_directory_first) {
    fs::create_directories(stagingDirFor(container));
    test::writeFile(stagingDirFor(container) / "stale", "old");
    {
        TarBuilder tar(archive);
        tar.file("fresh", "new");
        tar.close();
    }
    extractPackage(archive, container, kSha);
    BOOST_TEST(!fs::exists(container / "stale"));
    BOOST_TEST(readFile(container / "fresh") == "new");
}

BOOST_AUTO_TEST_CASE(rejects_a_malformed_checksum) {
    BOOST_CHECK_THROW(extractPackage(archive, container, "not-a-sha"), std::invalid_argument);
}

BOOST_AUTO_TEST_SUITE_END()

}  // namespace
}  // namespace rm::agent
