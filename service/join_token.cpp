#include "service/join_token.h"

namespace rm::service {

namespace {

bool isTokenChar(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

}  // namespace

std::optional<ParsedToken> parseJoinToken(const std::string& text) {
    if (text.size() != 23 || text[6] != '.') return std::nullopt;
    for (size_t i = 0; i < text.size(); ++i) {
        if (i != 6 && !isTokenChar(text[i])) return std::nullopt;
    }
    return ParsedToken{text.substr(0, 6), text.substr(7)};
}

}  // namespace rm::service
