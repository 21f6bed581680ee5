// Who may change the scope: users file parsing, passwords, scope restrictions.
#include <boost/test/unit_test.hpp>
#include <cctype>

#include "service/access_policy.h"
#include "test_support.h"

using rm::service::AccessPolicy;
using rm::service::testing::ScratchDir;
using rm::service::testing::writeFile;

namespace {
const std::string kScope = "/gcube/devsec";
}

BOOST_AUTO_TEST_SUITE(access_policy)

BOOST_AUTO_TEST_CASE(sha256_known_vectors) {
    BOOST_TEST(AccessPolicy::sha256Hex("") ==
               "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    BOOST_TEST(AccessPolicy::sha256Hex("abc") ==
               "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

BOOST_AUTO_TEST_CASE(open_policy_allows_everyone) {
    AccessPolicy policy;
    BOOST_TEST(policy.open());
    BOOST_TEST(!policy.check(nullptr, nullptr, kScope).has_value());
    BOOST_TEST(!policy.check("anyone", "anything", "/other").has_value());
}

BOOST_AUTO_TEST_CASE(file_parsing_and_checks) {
    ScratchDir dir;
    auto file = dir.path() / "users";
    writeFile(file,
              "# operators\n"
              "\n"
              "alice:" +
                  AccessPolicy::sha256Hex("alice-pw") + "\n" +
                  "bob:" + AccessPolicy::sha256Hex("bob-pw") + ":/gcube/other,/gcube/devsec\n" +
                  "carol:" + AccessPolicy::sha256Hex("carol-pw") + ":/gcube/other\n");
    auto policy = AccessPolicy::fromFile(file);
    BOOST_TEST(!policy.open());

    BOOST_TEST(!policy.check("alice", "alice-pw", kScope).has_value());
    BOOST_TEST(!policy.check("bob", "bob-pw", kScope).has_value());

    auto none = policy.check(nullptr, nullptr, kScope);
    BOOST_REQUIRE(none.has_value());
    BOOST_TEST(none->find("credentials") != std::string::npos);
    BOOST_TEST(policy.check("alice", nullptr, kScope).has_value());

    auto wrong = policy.check("alice", "bob-pw", kScope);
    BOOST_REQUIRE(wrong.has_value());
    BOOST_TEST(*wrong == "unknown user or wrong password");
    // An unknown user gets the same answer: no user enumeration.
    BOOST_TEST(*policy.check("mallory", "x", kScope) == *wrong);
    BOOST_TEST(policy.check("alice", "", kScope).has_value());
    BOOST_TEST(policy.check("alice", "alice-pw ", kScope).has_value());
    BOOST_TEST(policy.check("Alice", "alice-pw", kScope).has_value());

    auto scoped = policy.check("carol", "carol-pw", kScope);
    BOOST_REQUIRE(scoped.has_value());
    BOOST_TEST(scoped->find("not allowed") != std::string::npos);
    BOOST_TEST(scoped->find(kScope) != std::string::npos);
    BOOST_TEST(!policy.check("carol", "carol-pw", "/gcube/other").has_value());
}

BOOST_AUTO_TEST_CASE(malformed_files_name_the_line) {
    ScratchDir dir;
    auto file = dir.path() / "users";
    writeFile(file, "alice:" + AccessPolicy::sha256Hex("x") + "\nbob:not-a-hash\n");
    try {
        AccessPolicy::fromFile(file);
        BOOST_ERROR("a malformed users file was accepted");
    } catch (const std::runtime_error& e) {
        BOOST_TEST(std::string(e.what()).find(file.string() + ":2") != std::string::npos);
    }
    writeFile(file, "nocolon\n");
    BOOST_CHECK_THROW(AccessPolicy::fromFile(file), std::runtime_error);
    writeFile(file, ":" + AccessPolicy::sha256Hex("x") + "\n");  // no name
    BOOST_CHECK_THROW(AccessPolicy::fromFile(file), std::runtime_error);
    writeFile(file, "# only comments\n\n");
    BOOST_CHECK_THROW(AccessPolicy::fromFile(file), std::runtime_error);
    BOOST_CHECK_THROW(AccessPolicy::fromFile(dir.path() / "missing"), std::runtime_error);
}

// Lines that would otherwise be accepted and then silently never match: a "hash" of 64
// characters that are not hex, a second line for a user (which one wins?), Windows line ends.
BOOST_AUTO_TEST_CASE(entries_that_could_never_log_in_are_refused) {
    ScratchDir dir;
    auto file = dir.path() / "users";
    auto messageOf = [&](const std::string& text) -> std::string {
        writeFile(file, text);
        try {
            AccessPolicy::fromFile(file);
        } catch (const std::runtime_error& e) {
            return e.what();
        }
        return "";
    };
    const std::string hash = AccessPolicy::sha256Hex("pw");
    BOOST_TEST(messageOf("alice:" + std::string(64, 'z') + "\n").find("64 hex digits") !=
               std::string::npos);
    BOOST_TEST(messageOf("alice:" + hash + "\nalice:" + hash + "\n").find("listed twice") !=
               std::string::npos);
    BOOST_TEST(messageOf("alice:" + hash + "\r\n").find("carriage return") != std::string::npos);

    // An upper-case hash is the same hash.
    std::string upper = hash;
    for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    BOOST_TEST(messageOf("alice:" + upper + "\n") == "");
    BOOST_TEST(!AccessPolicy::fromFile(file).check("alice", "pw", kScope).has_value());
}

BOOST_AUTO_TEST_SUITE_END()
