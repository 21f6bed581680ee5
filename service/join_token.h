// The shape of a join token (SPEC section 10), kept apart from the store so that the parser of
// this outside input can be fuzzed alone.
#pragma once

#include <optional>
#include <string>

namespace rm::service {

// A join token is `ID.SECRET` (6 and 16 characters of [a-z0-9], as kubeadm's bootstrap tokens):
// the ID names it in lists and logs, the secret is never stored or logged.
struct ParsedToken {
    std::string id;
    std::string secret;
};
// nullopt unless `text` has exactly that shape.
std::optional<ParsedToken> parseJoinToken(const std::string& text);

}  // namespace rm::service
