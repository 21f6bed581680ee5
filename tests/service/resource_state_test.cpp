// The scoped-resource life cycle (SPEC section 4): every legal move is accepted, every other
// pair of states is refused, and names round-trip.
#include <boost/test/unit_test.hpp>

#include <array>
#include <set>
#include <utility>

#include "service/resource_state.h"

using rm::service::checkTransition;
using rm::service::IllegalTransition;
using rm::service::isInScope;
using rm::service::isLegalTransition;
using rm::service::parseResourceState;
using rm::service::ResourceState;
using rm::service::toString;

namespace {

using S = ResourceState;
constexpr std::array<S, 8> kAll{S::Created,         S::AddRequested, S::Added,       S::Published,
                                S::RemoveRequested, S::Removed,      S::Unpublished, S::Lost};

// Written out from the SPEC diagram, independently of the implementation.
const std::set<std::pair<S, S>>& legalMoves() {
    static const std::set<std::pair<S, S>> moves = {
        {S::Created, S::AddRequested},
        {S::AddRequested, S::Added},
        {S::Added, S::Published},
        {S::Added, S::RemoveRequested},
        {S::Published, S::RemoveRequested},
        {S::RemoveRequested, S::Removed},
        {S::Removed, S::Unpublished},
        // LOST from any state but LOST.
        {S::Created, S::Lost},
        {S::AddRequested, S::Lost},
        {S::Added, S::Lost},
        {S::Published, S::Lost},
        {S::RemoveRequested, S::Lost},
        {S::Removed, S::Lost},
        {S::Unpublished, S::Lost},
    };
    return moves;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(resource_state)

BOOST_AUTO_TEST_CASE(every_legal_move_is_accepted) {
    for (const auto& [from, to] : legalMoves()) {
        BOOST_TEST_CONTEXT(toString(from) << " -> " << toString(to)) {
            BOOST_TEST(isLegalTransition(from, to));
            BOOST_CHECK_NO_THROW(checkTransition(from, to));
        }
    }
}

BOOST_AUTO_TEST_CASE(every_other_move_is_refused) {
    int refused = 0;
    for (S from : kAll) {
        for (S to : kAll) {
            if (legalMoves().count({from, to})) continue;
            BOOST_TEST_CONTEXT(toString(from) << " -> " << toString(to)) {
                BOOST_TEST(!isLegalTransition(from, to));
                try {
                    checkTransition(from, to);
                    BOOST_ERROR("checkTransition accepted an illegal move");
                } catch (const IllegalTransition& e) {
                    BOOST_TEST((e.from == from));
                    BOOST_TEST((e.to == to));
                    std::string what = e.what();
                    BOOST_TEST(what.find(std::string(toString(from))) != std::string::npos);
                    BOOST_TEST(what.find(std::string(toString(to))) != std::string::npos);
                }
                ++refused;
            }
        }
    }
    BOOST_TEST(refused == 64 - static_cast<int>(legalMoves().size()));
}

BOOST_AUTO_TEST_CASE(named_illegal_moves) {
    // The ones a buggy processor would most plausibly attempt.
    const std::array<std::pair<S, S>, 10> table{{
        {S::Created, S::Added},             // skipping ADDREQUESTED
        {S::Created, S::Published},         // skipping everything
        {S::Published, S::Removed},         // skipping REMOVEREQUESTED
        {S::Published, S::Added},           // backwards
        {S::Removed, S::Published},         // back into scope without a new life
        {S::Unpublished, S::AddRequested},  // a new life starts at CREATED, not here
        {S::Lost, S::Lost},                 // LOST is not re-entered
        {S::Lost, S::Published},
        {S::AddRequested, S::RemoveRequested},
        {S::Published, S::Published},  // self moves are not moves
    }};
    for (const auto& [from, to] : table) {
        BOOST_TEST_CONTEXT(toString(from) << " -> " << toString(to)) {
            BOOST_TEST(!isLegalTransition(from, to));
            BOOST_CHECK_THROW(checkTransition(from, to), IllegalTransition);
        }
    }
}

BOOST_AUTO_TEST_CASE(names_round_trip) {
    const std::array<const char*, 8> names{
        "CREATED",         "ADDREQUESTED", "ADDED",       "PUBLISHED",
        "REMOVEREQUESTED", "REMOVED",      "UNPUBLISHED", "LOST"};
    for (size_t i = 0; i < kAll.size(); ++i) {
        BOOST_TEST(toString(kAll[i]) == names[i]);
        auto parsed = parseResourceState(names[i]);
        BOOST_REQUIRE(parsed.has_value());
        BOOST_TEST((*parsed == kAll[i]));
    }
    BOOST_TEST(!parseResourceState("published").has_value());
    BOOST_TEST(!parseResourceState("").has_value());
    BOOST_TEST(!parseResourceState("ADDED ").has_value());
}

BOOST_AUTO_TEST_CASE(in_scope_states) {
    std::set<S> inScope;
    for (S s : kAll) {
        if (isInScope(s)) inScope.insert(s);
    }
    BOOST_TEST(
        (inScope == std::set<S>{S::AddRequested, S::Added, S::Published, S::RemoveRequested}));
}

BOOST_AUTO_TEST_SUITE_END()
