// Who may read and change the scope: users file parsing (Argon2id only, private file), roles and
// scopes, and the rate limit of failed logins per peer.
#include <sodium.h>
#include <sys/stat.h>

#include <boost/test/unit_test.hpp>
#include <atomic>
#include <thread>
#include <vector>

#include "service/access_policy.h"
#include "test_support.h"

namespace rm::service {
inline std::ostream& operator<<(std::ostream& out, AccessDenial::Kind kind) {
    return out << (kind == AccessDenial::Kind::Unauthenticated ? "Unauthenticated"
                   : kind == AccessDenial::Kind::Throttled     ? "Throttled"
                                                                : "Forbidden");
}
}  // namespace rm::service

using rm::service::AccessDenial;
using rm::service::AccessPolicy;
using rm::service::LoginThrottle;
using rm::service::Role;
using rm::service::testing::ScratchDir;
using rm::service::testing::writeFile;
using namespace std::chrono_literals;

namespace {
const std::string kScope = "/gcube/devsec";
const std::string kPeer = "192.0.2.10";

// A real Argon2id string at libsodium's lowest cost, so that the tests verify quickly.
std::string cheapHash(const std::string& password) {
    if (sodium_init() < 0) throw std::runtime_error("libsodium");
    char out[crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str(out, password.data(), password.size(), crypto_pwhash_OPSLIMIT_MIN,
                          crypto_pwhash_MEMLIMIT_MIN) != 0) {
        throw std::runtime_error("crypto_pwhash_str failed");
    }
    return out;
}

// Users files are private (0600), as the policy demands.
void writeUsers(const std::filesystem::path& file, const std::string& text, mode_t mode = 0600) {
    writeFile(file, text);
    ::chmod(file.c_str(), mode);
}

std::string loadError(const std::filesystem::path& file) {
    try {
        AccessPolicy::fromFile(file);
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

BOOST_AUTO_TEST_SUITE(access_policy)

BOOST_AUTO_TEST_CASE(open_policy_allows_everyone) {
    AccessPolicy policy;
    BOOST_TEST(policy.open());
    BOOST_TEST(!policy.check(nullptr, nullptr, kScope, Role::Admin, kPeer).has_value());
    BOOST_TEST(!policy.check("anyone", "anything", "/other", Role::Operator, kPeer).has_value());
}

BOOST_AUTO_TEST_CASE(argon2id_hashes_are_salted_and_verify) {
    auto first = AccessPolicy::hashPassword("correct horse");
    auto second = AccessPolicy::hashPassword("correct horse");
    BOOST_TEST(first.rfind("$argon2id$v=19$", 0) == 0u, first);
    BOOST_TEST(first != second);  // a fresh salt each time
    BOOST_TEST(AccessPolicy::verifyPassword(first, "correct horse"));
    BOOST_TEST(AccessPolicy::verifyPassword(second, "correct horse"));
    BOOST_TEST(!AccessPolicy::verifyPassword(first, "correct horse "));
    BOOST_TEST(!AccessPolicy::verifyPassword(first, ""));
    BOOST_TEST(!AccessPolicy::verifyPassword("$argon2id$garbage", "correct horse"));
}

BOOST_AUTO_TEST_CASE(roles_and_scopes) {
    ScratchDir dir;
    auto file = dir.path() / "users";
    writeUsers(file,
               "# people of the scope\n"
               "\n"
               "ada:" + cheapHash("ada-pw") + ":admin\n" +
                   "otto:" + cheapHash("otto-pw") + ":operator\n" +
                   "rita:" + cheapHash("rita-pw") + ":reader\n" +
                   "sam:" + cheapHash("sam-pw") + ":operator:/gcube/other,/gcube/devsec\n" +
                   "carol:" + cheapHash("carol-pw") + ":admin:/gcube/other\n");
    auto policy = AccessPolicy::fromFile(file);
    BOOST_TEST(!policy.open());
    BOOST_TEST(policy.userCount() == 5u);

    auto allowed = [&](const char* user, const char* password, Role role, const std::string& scope = kScope) {
        return !policy.check(user, password, scope, role, kPeer).has_value();
    };
    // admin ⊇ operator ⊇ reader
    for (Role role : {Role::Reader, Role::Operator, Role::Admin}) BOOST_TEST(allowed("ada", "ada-pw", role));
    BOOST_TEST(allowed("otto", "otto-pw", Role::Reader));
    BOOST_TEST(allowed("otto", "otto-pw", Role::Operator));
    BOOST_TEST(!allowed("otto", "otto-pw", Role::Admin));
    BOOST_TEST(allowed("rita", "rita-pw", Role::Reader));
    BOOST_TEST(!allowed("rita", "rita-pw", Role::Operator));

    auto forbidden = policy.check("rita", "rita-pw", kScope, Role::Operator, kPeer);
    BOOST_REQUIRE(forbidden.has_value());
    BOOST_TEST(forbidden->kind == AccessDenial::Kind::Forbidden);
    BOOST_TEST(!forbidden->askForCredentials());  // 403, not 401: the credentials were right
    BOOST_TEST(contains(forbidden->reason, "reader"));
    BOOST_TEST(contains(forbidden->reason, "operator"));

    // Scopes: listed ones only; none listed = any scope.
    BOOST_TEST(allowed("sam", "sam-pw", Role::Operator));
    BOOST_TEST(allowed("sam", "sam-pw", Role::Operator, "/gcube/other"));
    BOOST_TEST(!allowed("sam", "sam-pw", Role::Reader, "/gcube/third"));
    BOOST_TEST(allowed("ada", "ada-pw", Role::Admin, "/gcube/third"));
    auto scoped = policy.check("carol", "carol-pw", kScope, Role::Reader, kPeer);
    BOOST_REQUIRE(scoped.has_value());
    BOOST_TEST(scoped->kind == AccessDenial::Kind::Forbidden);
    BOOST_TEST(contains(scoped->reason, "not allowed"));
    BOOST_TEST(contains(scoped->reason, kScope));
    BOOST_TEST(allowed("carol", "carol-pw", Role::Admin, "/gcube/other"));
}

BOOST_AUTO_TEST_CASE(missing_or_wrong_credentials_ask_for_them) {
    ScratchDir dir;
    auto file = dir.path() / "users";
    writeUsers(file, "alice:" + cheapHash("alice-pw") + ":operator\n");
    auto policy = AccessPolicy::fromFile(file);

    auto none = policy.check(nullptr, nullptr, kScope, Role::Reader, kPeer);
    BOOST_REQUIRE(none.has_value());
    BOOST_TEST(none->askForCredentials());
    BOOST_TEST(contains(none->reason, "credentials"));
    BOOST_TEST(policy.check("alice", nullptr, kScope, Role::Reader, kPeer).has_value());
    BOOST_TEST(policy.check("", "alice-pw", kScope, Role::Reader, kPeer).has_value());

    auto wrong = policy.check("alice", "bob-pw", kScope, Role::Reader, kPeer);
    BOOST_REQUIRE(wrong.has_value());
    BOOST_TEST(wrong->kind == AccessDenial::Kind::Unauthenticated);
    BOOST_TEST(wrong->reason == "unknown user or wrong password");
    BOOST_TEST(!contains(wrong->reason, "bob-pw"));  // never the password
    // An unknown user gets the same answer: no user enumeration.
    BOOST_TEST(policy.check("mallory", "x", kScope, Role::Reader, kPeer)->reason == wrong->reason);
    BOOST_TEST(policy.check("alice", "", kScope, Role::Reader, "peer-2").has_value());
    BOOST_TEST(policy.check("Alice", "alice-pw", kScope, Role::Reader, "peer-2").has_value());
    // Right password after a few failures (fewer than the limit): in.
    BOOST_TEST(!policy.check("alice", "alice-pw", kScope, Role::Operator, kPeer).has_value());
    // Twice (the second time from the verification cache), and still not with a wrong one.
    BOOST_TEST(!policy.check("alice", "alice-pw", kScope, Role::Operator, kPeer).has_value());
    BOOST_TEST(policy.check("alice", "alice-pw!", kScope, Role::Operator, kPeer).has_value());
}

BOOST_AUTO_TEST_CASE(old_sha256_hashes_are_refused_with_the_fix) {
    ScratchDir dir;
    auto file = dir.path() / "users";
    // The format before Argon2id: name:sha256hex[:scopes].
    const std::string sha = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b";
    writeUsers(file, "# users\nalice:" + cheapHash("pw") + ":operator\nbob:" + sha + ":/gcube/devsec\n");
    auto message = loadError(file);
    BOOST_TEST(contains(message, file.string() + ":3:"), message);
    BOOST_TEST(contains(message, "SHA-256"), message);
    BOOST_TEST(contains(message, "rmctl hash-password"), message);
    writeUsers(file, "bob:" + sha + "\n");
    message = loadError(file);
    BOOST_TEST(contains(message, file.string() + ":1:"), message);
    BOOST_TEST(contains(message, "rmctl hash-password"), message);

    // Other hashes are not Argon2id either.
    for (std::string other : {std::string("$2y$10$abcdefghijklmnopqrstuuJ0bbh2aM7gAQWd6TmU1tW5RCPLy6r6a"),
                              std::string("$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"),
                              std::string("plaintext-password"), std::string("")}) {
        BOOST_TEST_CONTEXT(other) {
            writeUsers(file, "carol:" + other + ":reader\n");
            message = loadError(file);
            BOOST_TEST(contains(message, file.string() + ":1:"), message);
            BOOST_TEST(contains(message, "rmctl hash-password"), message);
        }
    }
}

BOOST_AUTO_TEST_CASE(malformed_or_costly_argon2id_strings_are_refused) {
    ScratchDir dir;
    auto file = dir.path() / "users";
    const std::string good = cheapHash("pw");
    auto withParams = [&](const std::string& params) {
        // $argon2id$v=19$m=8,t=1,p=1$SALT$HASH with other parameters
        auto at = good.find("$m=");
        auto end = good.find('$', at + 1);
        return good.substr(0, at + 1) + params + good.substr(end);
    };
    for (const std::string& hash : {good.substr(0, good.size() - 30), good + "$", withParams("m=8,t=1"),
                                    withParams("m=4194304,t=1,p=1"), withParams("m=8,t=1000,p=1"),
                                    withParams("m=8,t=0,p=1"), withParams("m=8,t=1,p=1,x=2"),
                                    std::string("$argon2id$v=16$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"),
                                    good + std::string(100, 'A')}) {
        BOOST_TEST_CONTEXT(hash) {
            writeUsers(file, "alice:" + hash + ":reader\n");
            auto message = loadError(file);
            BOOST_TEST(contains(message, file.string() + ":1:"), message);
            BOOST_TEST(contains(message, "rmctl hash-password"), message);
        }
    }
    writeUsers(file, "alice:" + good + ":reader\n");
    BOOST_TEST(loadError(file) == "");
}

BOOST_AUTO_TEST_CASE(users_files_others_can_read_are_refused) {
    ScratchDir dir;
    auto file = dir.path() / "users";
    const std::string text = "alice:" + cheapHash("pw") + ":admin\n";
    for (mode_t mode : {0644, 0640, 0604, 0660, 0601}) {
        BOOST_TEST_CONTEXT(std::oct << mode) {
            writeUsers(file, text, mode);
            auto message = loadError(file);
            BOOST_TEST(contains(message, file.string()), message);
            char octal[8];
            std::snprintf(octal, sizeof octal, "%04o", static_cast<unsigned>(mode));
            BOOST_TEST(contains(message, octal), message);
            BOOST_TEST(contains(message, "chmod 600"), message);
        }
    }
    for (mode_t mode : {0600, 0400}) {
        writeUsers(file, text, mode);
        BOOST_TEST(loadError(file) == "");
    }
}

BOOST_AUTO_TEST_CASE(malformed_lines_name_file_and_line) {
    ScratchDir dir;
    auto file = dir.path() / "users";
    const std::string hash = cheapHash("pw");
    auto messageOf = [&](const std::string& text) {
        writeUsers(file, text);
        return loadError(file);
    };
    auto line2 = file.string() + ":2:";
    BOOST_TEST(contains(messageOf("alice:" + hash + ":reader\nbob:" + hash + "\n"), line2));  // no role
    auto unknownRole = messageOf("alice:" + hash + ":reader\nbob:" + hash + ":root\n");
    BOOST_TEST(contains(unknownRole, line2));
    BOOST_TEST(contains(unknownRole, "reader, operator or admin"));
    BOOST_TEST(contains(messageOf("alice:" + hash + ":reader\nalice:" + hash + ":admin\n"), "listed twice"));
    BOOST_TEST(contains(messageOf("alice:" + hash + ":reader\r\n"), "carriage return"));
    BOOST_TEST(contains(messageOf("#\nalice:" + hash + ":reader:\n"), line2));              // empty scope list
    BOOST_TEST(contains(messageOf("#\nalice:" + hash + ":reader:/a,,/b\n"), line2));       // empty scope
    BOOST_TEST(contains(messageOf("#\nalice:" + hash + ":reader:/a:/b\n"), line2));        // too many fields
    BOOST_TEST(contains(messageOf("#\n:" + hash + ":reader\n"), line2));                    // no name
    BOOST_TEST(contains(messageOf("#\nal ice:" + hash + ":reader\n"), line2));              // space in name
    BOOST_TEST(contains(messageOf("# only comments\n\n"), "lists no user"));
    BOOST_TEST(contains(loadError(dir.path() / "missing"), (dir.path() / "missing").string()));
}

BOOST_AUTO_TEST_CASE(failed_logins_are_rate_limited_per_peer) {
    ScratchDir dir;
    auto file = dir.path() / "users";
    writeUsers(file, "alice:" + cheapHash("alice-pw") + ":operator\n");
    LoginThrottle::Options limits;
    limits.freeFailures = 3;
    limits.firstBackoff = 30s;
    auto policy = AccessPolicy::fromFile(file, limits);
    const std::string attacker = "198.51.100.7";
    for (int i = 0; i < 3; ++i) {
        auto denied = policy.check("alice", ("guess-" + std::to_string(i)).c_str(), kScope, Role::Reader, attacker);
        BOOST_REQUIRE(denied.has_value());
        BOOST_TEST(denied->kind == AccessDenial::Kind::Unauthenticated);
    }
    // Now even the right password is refused from that peer, without being verified.
    auto throttled = policy.check("alice", "alice-pw", kScope, Role::Reader, attacker);
    BOOST_REQUIRE(throttled.has_value());
    BOOST_TEST(throttled->kind == AccessDenial::Kind::Throttled);
    BOOST_TEST(throttled->askForCredentials());
    BOOST_TEST(contains(throttled->reason, attacker));
    BOOST_TEST(contains(throttled->reason, "too many failed logins"));
    // Another peer is not affected.
    BOOST_TEST(!policy.check("alice", "alice-pw", kScope, Role::Reader, "203.0.113.5").has_value());
    // Requests without credentials are not failed logins and do not lock anyone out.
    for (int i = 0; i < 10; ++i) policy.check(nullptr, nullptr, kScope, Role::Reader, "203.0.113.6");
    BOOST_TEST(!policy.check("alice", "alice-pw", kScope, Role::Reader, "203.0.113.6").has_value());
}

BOOST_AUTO_TEST_CASE(throttle_backs_off_up_to_the_cap_and_forgets) {
    LoginThrottle::Options o;
    o.freeFailures = 5;
    o.firstBackoff = 2s;
    o.maxBackoff = 60s;
    o.forgetAfter = 600s;
    LoginThrottle throttle(o);
    auto t = LoginThrottle::Clock::time_point{} + 1000h;
    for (int i = 0; i < 4; ++i) {
        throttle.failed("a", t);
        BOOST_TEST(!throttle.blocked("a", t).has_value());
    }
    throttle.failed("a", t);  // the fifth
    BOOST_REQUIRE(throttle.blocked("a", t).has_value());
    BOOST_TEST(throttle.blocked("a", t)->count() == 2000);
    BOOST_TEST(!throttle.blocked("b", t).has_value());
    // Each failure after a back-off doubles it, up to the cap.
    std::vector<long> backoffs;
    for (int i = 0; i < 8; ++i) {
        t += 61s;
        BOOST_TEST(!throttle.blocked("a", t).has_value());
        throttle.failed("a", t);
        backoffs.push_back(static_cast<long>(throttle.blocked("a", t)->count() / 1000));
    }
    BOOST_TEST(backoffs == (std::vector<long>{4, 8, 16, 32, 60, 60, 60, 60}), boost::test_tools::per_element());
    // A success forgets the peer.
    throttle.succeeded("a");
    throttle.failed("a", t);
    BOOST_TEST(!throttle.blocked("a", t).has_value());
    // So does a long quiet time.
    for (int i = 0; i < 4; ++i) throttle.failed("c", t);
    t += 601s;
    throttle.failed("c", t);
    BOOST_TEST(!throttle.blocked("c", t).has_value());
}

BOOST_AUTO_TEST_CASE(throttle_memory_is_bounded) {
    LoginThrottle::Options o;
    o.freeFailures = 2;
    o.maxPeers = 100;
    LoginThrottle throttle(o);
    auto t = LoginThrottle::Clock::time_point{} + 1000h;
    for (int i = 0; i < 10000; ++i) throttle.failed("10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256), t);
    BOOST_TEST(throttle.trackedPeers() <= 100u);
    // The most recent offender is still remembered.
    throttle.failed("10.0.39.15", t);
    BOOST_TEST(throttle.blocked("10.0.39.15", t).has_value());
}

BOOST_AUTO_TEST_CASE(checks_from_many_threads) {
    ScratchDir dir;
    auto file = dir.path() / "users";
    writeUsers(file, "alice:" + cheapHash("alice-pw") + ":operator\nrita:" + cheapHash("rita-pw") + ":reader\n");
    auto policy = AccessPolicy::fromFile(file);
    std::atomic<int> wrongAnswers{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&, t] {
            const std::string peer = "peer-" + std::to_string(t);
            for (int i = 0; i < 20; ++i) {
                bool alice = (i + t) % 2 == 0;
                auto denied = policy.check(alice ? "alice" : "rita", alice ? "alice-pw" : "rita-pw", kScope,
                                           Role::Operator, peer);
                if (alice == denied.has_value()) ++wrongAnswers;
                if (policy.check("alice", "wrong", kScope, Role::Reader, "attacker-" + std::to_string(t)) ==
                    std::nullopt) {
                    ++wrongAnswers;
                }
            }
        });
    }
    for (auto& thread : threads) thread.join();
    BOOST_TEST(wrongAnswers.load() == 0);
}

BOOST_AUTO_TEST_SUITE_END()
