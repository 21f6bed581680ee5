// Join tokens and revoked nodes (service/identity_store.h): stored hashed, used up, expiring,
// revocable, and kept across a reopen.
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <ostream>

#include "service/identity_store.h"
#include "test_support.h"

using rm::service::IdentityStore;
using rm::service::parseJoinToken;
using Check = IdentityStore::TokenCheck;

namespace rm::service {
inline std::ostream& operator<<(std::ostream& out, IdentityStore::TokenCheck check) { return out << toString(check); }
}  // namespace rm::service

BOOST_AUTO_TEST_SUITE(identity_store)

BOOST_AUTO_TEST_CASE(token_shape) {
    BOOST_TEST(parseJoinToken("abcdef.0123456789abcdef").has_value());
    BOOST_TEST(!parseJoinToken("abcdef.0123456789abcde"));
    BOOST_TEST(!parseJoinToken("ABCDEF.0123456789abcdef"));
    BOOST_TEST(!parseJoinToken("abcdef-0123456789abcdef"));
    BOOST_TEST(!parseJoinToken("abcdef.0123456789abcde\n"));
    BOOST_TEST(!parseJoinToken(""));
}

BOOST_AUTO_TEST_CASE(tokens_are_checked_used_and_expire) {
    rm::service::testing::ScratchDir dir;
    IdentityStore store(dir.path() / "identity.db");
    int64_t now = 1'000'000;
    std::string once = store.createToken(60'000, 1, "one node", now);
    std::string many = store.createToken(60'000, 0, "", now);
    BOOST_TEST(parseJoinToken(once).has_value());

    // Wrong secret for a real ID looks like an unknown token.
    auto parsed = *parseJoinToken(once);
    std::string wrong = parsed.id + "." + std::string(16, parsed.secret[0] == 'a' ? 'b' : 'a');
    BOOST_TEST(store.consumeToken(wrong, now) == Check::Unknown);
    BOOST_TEST(store.consumeToken("garbage", now) == Check::Malformed);

    BOOST_TEST(store.consumeToken(once, now) == Check::Accepted);
    BOOST_TEST(store.consumeToken(once, now) == Check::UsedUp);
    BOOST_TEST(store.consumeToken(many, now) == Check::Accepted);
    BOOST_TEST(store.consumeToken(many, now) == Check::Accepted);
    BOOST_TEST(store.consumeToken(many, now + 60'000) == Check::Expired);

    // Listed: only live ones; the used-up one is gone from the list.
    auto live = store.listTokens(now);
    BOOST_TEST(live.size() == 1u);
    BOOST_TEST(live.front().id == parseJoinToken(many)->id);
    BOOST_TEST(live.front().usesLeft == -1);

    BOOST_TEST(store.revokeToken(parseJoinToken(many)->id));
    BOOST_TEST(!store.revokeToken(parseJoinToken(many)->id));
    BOOST_TEST(store.consumeToken(many, now) == Check::Unknown);
}

BOOST_AUTO_TEST_CASE(secrets_are_not_stored) {
    rm::service::testing::ScratchDir dir;
    std::string token;
    {
        IdentityStore store(dir.path() / "identity.db");
        token = store.createToken(60'000, 0, "", 0);
    }
    std::ifstream in(dir.path() / "identity.db", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    BOOST_TEST(bytes.find(parseJoinToken(token)->secret) == std::string::npos);
}

BOOST_AUTO_TEST_CASE(revoked_nodes_and_issued_certificates_survive_a_reopen) {
    rm::service::testing::ScratchDir dir;
    {
        IdentityStore store(dir.path() / "identity.db");
        store.recordIssued("node-a", "01ab", 2'000, 1'000);
        store.revokeNode("node-b", 1'000);
        BOOST_TEST(store.isRevoked("node-b"));
    }
    IdentityStore store(dir.path() / "identity.db");
    BOOST_TEST(store.isRevoked("node-b"));
    BOOST_TEST(!store.isRevoked("node-a"));
    BOOST_TEST(store.wasIssued("node-a"));
    BOOST_TEST(!store.wasIssued("node-c"));
}

BOOST_AUTO_TEST_SUITE_END()
