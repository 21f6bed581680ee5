#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <random>

#include "deployer/package_archive.h"
#include "deployer/sha256.h"
#include "test_support.h"

using namespace rm::deployer;
using rm::deployer::test::profileXml;
using rm::deployer::test::readFile;
using rm::deployer::test::TempDir;
using rm::deployer::test::writeFile;
using rm::deployer::test::writeRawArchive;
namespace fs = std::filesystem;

namespace {

struct Entry {
    std::string name;
    int type;
    unsigned perm;
    time_t mtime;
    std::string data;
    std::string link;
};

// Lists an archive with libarchive directly, independent of the code under test.
std::vector<Entry> listArchive(const fs::path& path) {
    std::vector<Entry> entries;
    const std::unique_ptr<archive, int (*)(archive*)> reader(archive_read_new(), archive_read_free);
    archive* a = reader.get();
    archive_read_support_filter_all(a);
    archive_read_support_format_all(a);
    BOOST_REQUIRE(archive_read_open_filename(a, path.c_str(), 10240) == ARCHIVE_OK);
    archive_entry* e = nullptr;
    while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
        Entry entry{archive_entry_pathname(e),
                    static_cast<int>(archive_entry_filetype(e)),
                    static_cast<unsigned>(archive_entry_perm(e)),
                    archive_entry_mtime(e),
                    {},
                    {}};
        if (archive_entry_symlink(e)) entry.link = archive_entry_symlink(e);
        char buffer[4096];
        la_ssize_t n;
        while ((n = archive_read_data(a, buffer, sizeof buffer)) > 0) entry.data.append(buffer, n);
        entries.push_back(entry);
    }
    return entries;
}

const std::string kProfile = profileXml("Samples", "Demo", "1.0.0", "Demo-pkg", "2.1.0");

void makeSourceTree(const fs::path& dir) {
    writeFile(dir / "profile.xml", kProfile);
    writeFile(dir / "bin/run.sh", "#!/bin/sh\necho hi\n");
    fs::permissions(dir / "bin/run.sh", fs::perms::owner_all | fs::perms::group_read);
    writeFile(dir / "share/doc/README", "readme\n");
    writeFile(dir / "a.txt", "first\n");
    fs::create_directories(dir / "empty");
    fs::create_symlink("../a.txt", dir / "share/link-to-a");
}

std::string archiveError(const fs::path& path) {
    try {
        readProfileFromArchive(path);
    } catch (const std::exception& e) {
        return e.what();
    }
    return "no error";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(package_archive)

BOOST_AUTO_TEST_CASE(sha256_of_known_content) {
    TempDir dir;
    writeFile(dir / "abc", "abc");
    BOOST_TEST(sha256File(dir / "abc") ==
               "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    BOOST_TEST(sha256Hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    writeFile(dir / "big", std::string(200000, 'x'));
    BOOST_TEST(sha256File(dir / "big") == sha256Hex(std::string(200000, 'x')));
    BOOST_CHECK_THROW(sha256File(dir / "absent"), std::runtime_error);
}

BOOST_AUTO_TEST_CASE(build_and_read_round_trip) {
    TempDir tmp;
    const fs::path src = tmp / "src";
    makeSourceTree(src);
    const fs::path out = tmp / "Demo-pkg-2.1.0.tar.gz";
    const PackageProfile built = buildPackage(src, out);
    BOOST_TEST(built.coords.packageVersion == "2.1.0");
    BOOST_TEST(defaultPackageFileName(built) == "Demo-pkg-2.1.0.tar.gz");

    const PackageProfile read = readProfileFromArchive(out);
    BOOST_TEST((read.coords == built.coords));
    BOOST_TEST(read.coords.key() == built.coords.key());

    const auto entries = listArchive(out);
    std::vector<std::string> names;
    for (const auto& e : entries) names.push_back(e.name);
    const std::vector<std::string> expected{
        "profile.xml",    "a.txt",  "bin/",       "bin/run.sh",
        "empty/",         "share/", "share/doc/", "share/doc/README",
        "share/link-to-a"};
    BOOST_TEST(names == expected, boost::test_tools::per_element());
    for (const auto& e : entries) {
        BOOST_TEST(e.mtime == 946684800);
        BOOST_TEST(e.name.front() != '/');
    }
    BOOST_TEST(entries[0].data == kProfile);
    BOOST_TEST(entries[3].perm == 0755u);
    BOOST_TEST(entries[3].data == "#!/bin/sh\necho hi\n");
    BOOST_TEST(entries[1].perm == 0644u);
    BOOST_TEST(entries[4].type == AE_IFDIR);
    BOOST_TEST(entries[8].type == AE_IFLNK);
    BOOST_TEST(entries[8].link == "../a.txt");
    // No temporary file left behind.
    BOOST_TEST(std::distance(fs::directory_iterator(tmp.path()), fs::directory_iterator()) == 2);
}

BOOST_AUTO_TEST_CASE(build_is_reproducible) {
    TempDir tmp;
    makeSourceTree(tmp / "src");
    buildPackage(tmp / "src", tmp / "one.tar.gz");
    sleep(1);  // a second later: any time stamp leaking into the archive would show
    fs::last_write_time(tmp / "src/a.txt", fs::file_time_type::clock::now());
    buildPackage(tmp / "src", tmp / "two.tar.gz");
    BOOST_TEST(sha256File(tmp / "one.tar.gz") == sha256File(tmp / "two.tar.gz"));
}

BOOST_AUTO_TEST_CASE(build_inside_source_does_not_pack_itself) {
    TempDir tmp;
    makeSourceTree(tmp / "src");
    const fs::path out = tmp / "src" / "Demo-pkg-2.1.0.tar.gz";
    buildPackage(tmp / "src", out);
    const std::string first = sha256File(out);
    buildPackage(tmp / "src", out);  // the previous output is present now
    BOOST_TEST(sha256File(out) == first);
    for (const auto& e : listArchive(out)) BOOST_TEST(e.name.find("tar.gz") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(build_refuses_escaping_links_and_bad_profiles) {
    TempDir tmp;
    makeSourceTree(tmp / "src");
    fs::create_symlink("../../etc/passwd", tmp / "src/share/evil");
    BOOST_CHECK_EXCEPTION(
        buildPackage(tmp / "src", tmp / "o.tar.gz"), PackageArchiveError,
        [](const auto& e) { return std::string(e.what()).find("outside") != std::string::npos; });
    fs::remove(tmp / "src/share/evil");
    fs::create_symlink("/etc/passwd", tmp / "src/abs");
    BOOST_CHECK_THROW(buildPackage(tmp / "src", tmp / "o.tar.gz"), PackageArchiveError);
    fs::remove(tmp / "src/abs");
    BOOST_TEST(!fs::exists(tmp / "o.tar.gz"));

    writeFile(tmp / "src/profile.xml", "<Package/>");
    BOOST_CHECK_THROW(buildPackage(tmp / "src", tmp / "o.tar.gz"), ProfileError);
    fs::remove(tmp / "src/profile.xml");
    BOOST_CHECK_EXCEPTION(
        buildPackage(tmp / "src", tmp / "o.tar.gz"), PackageArchiveError, [](const auto& e) {
            return std::string(e.what()).find("no profile.xml") != std::string::npos;
        });
    BOOST_CHECK_THROW(buildPackage(tmp / "missing", tmp / "o.tar.gz"), PackageArchiveError);
    writeFile(tmp / "src/profile.xml", kProfile);
    BOOST_CHECK_THROW(buildPackage(tmp / "src", tmp / "no/such/dir/o.tar.gz"), PackageArchiveError);
    ::mkfifo((tmp / "src/pipe").c_str(), 0644);
    BOOST_CHECK_THROW(buildPackage(tmp / "src", tmp / "o.tar.gz"), PackageArchiveError);
    BOOST_TEST(!fs::exists(tmp / "o.tar.gz"));
}

BOOST_AUTO_TEST_CASE(reads_dot_slash_profile) {
    TempDir tmp;
    writeRawArchive(tmp / "p.tar.gz", {{"./bin/x", "x"}, {"./profile.xml", kProfile}});
    BOOST_TEST(readProfileFromArchive(tmp / "p.tar.gz").coords.packageName == "Demo-pkg");
}

BOOST_AUTO_TEST_CASE(rejects_broken_archives) {
    TempDir tmp;
    writeFile(tmp / "garbage.tar.gz", "this is not gzip data at all");
    BOOST_TEST(
        archiveError(tmp / "garbage.tar.gz").find("garbage.tar.gz: cannot open as a .tar.gz") !=
        std::string::npos);
    writeFile(tmp / "empty.tar.gz", "");
    BOOST_TEST(archiveError(tmp / "empty.tar.gz") != "no error");

    writeRawArchive(tmp / "noprofile.tar.gz", {{"README", "x"}});
    BOOST_TEST(archiveError(tmp / "noprofile.tar.gz").find("no profile.xml") != std::string::npos);

    writeRawArchive(tmp / "nested.tar.gz", {{"sub/profile.xml", kProfile}});
    BOOST_TEST(archiveError(tmp / "nested.tar.gz").find("no profile.xml") != std::string::npos);

    writeRawArchive(tmp / "twice.tar.gz", {{"profile.xml", kProfile}, {"./profile.xml", kProfile}});
    BOOST_TEST(archiveError(tmp / "twice.tar.gz").find("more than once") != std::string::npos);

    writeRawArchive(tmp / "dotdot.tar.gz", {{"profile.xml", kProfile}, {"../evil", "x"}});
    BOOST_TEST(archiveError(tmp / "dotdot.tar.gz").find("'..'") != std::string::npos);

    writeRawArchive(tmp / "abs.tar.gz", {{"profile.xml", kProfile}, {"/etc/evil", "x"}});
    BOOST_TEST(archiveError(tmp / "abs.tar.gz").find("absolute") != std::string::npos);

    writeRawArchive(tmp / "link.tar.gz",
                    {{"profile.xml", kProfile}, {"l", "", AE_IFLNK, "../../etc/passwd"}});
    BOOST_TEST(archiveError(tmp / "link.tar.gz").find("outside") != std::string::npos);

    writeRawArchive(tmp / "huge.tar.gz", {{"profile.xml", std::string(300 * 1024, ' ')}});
    BOOST_TEST(archiveError(tmp / "huge.tar.gz").find("larger than") != std::string::npos);

    writeRawArchive(tmp / "badprofile.tar.gz", {{"profile.xml", "<Package/>"}});
    BOOST_TEST(archiveError(tmp / "badprofile.tar.gz").find("badprofile.tar.gz:profile.xml") !=
               std::string::npos);

    // A valid archive cut in half.
    makeSourceTree(tmp / "src");
    std::mt19937 random(42);  // incompressible, so that the cut falls inside this file
    std::string noise(100000, '\0');
    for (char& c : noise) c = static_cast<char>(random());
    writeFile(tmp / "src/big.bin", noise);
    buildPackage(tmp / "src", tmp / "full.tar.gz");
    const std::string full = readFile(tmp / "full.tar.gz");
    writeFile(tmp / "cut.tar.gz", full.substr(0, full.size() / 2));
    BOOST_TEST(archiveError(tmp / "cut.tar.gz").find(".tar.gz package: truncated") !=
               std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
