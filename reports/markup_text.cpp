#include "reports/markup_text.h"

#include <array>

namespace rm::reports {
namespace {

constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

struct CharTable {
    // Per ASCII byte: what to write instead, or an empty view to copy the byte as is.
    std::array<std::string_view, 128> replacement{};
    // Per byte: true when it is copied as is; lets the hot loop skip plain text quickly.
    std::array<bool, 256> plain{};
};

constexpr CharTable makeCharTable(bool escapeMarkup) {
    CharTable table;
    auto& replacement = table.replacement;
    for (int c = 0; c < 0x20; ++c) {
        if (c != '\t' && c != '\n' && c != '\r') replacement[c] = kReplacementChar;
    }
    if (escapeMarkup) {
        replacement['&'] = "&amp;";
        replacement['<'] = "&lt;";
        replacement['>'] = "&gt;";
        replacement['"'] = "&quot;";
        replacement['\''] = "&#39;";
        replacement['\r'] = "&#13;";
    }
    for (int c = 0; c < 128; ++c) table.plain[c] = replacement[c].empty();
    return table;
}

constexpr CharTable kEscapeTable = makeCharTable(true);
constexpr CharTable kSanitizeTable = makeCharTable(false);

// Length of the well-formed UTF-8 sequence at text[i] encoding a character XML 1.0 allows, or 0
// when the byte at i has to be replaced.
std::size_t validSequenceLength(std::string_view text, std::size_t i) {
    const auto byteAt = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
    const unsigned char lead = byteAt(i);
    std::size_t length = 0;
    char32_t codePoint = 0;
    char32_t smallest = 0;  // anything below is an overlong encoding
    if (lead >= 0xC2 && lead <= 0xDF) {
        length = 2, codePoint = lead & 0x1F, smallest = 0x80;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        length = 3, codePoint = lead & 0x0F, smallest = 0x800;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        length = 4, codePoint = lead & 0x07, smallest = 0x10000;
    } else {
        return 0;
    }
    if (text.size() - i < length) return 0;
    for (std::size_t k = 1; k < length; ++k) {
        const unsigned char next = byteAt(i + k);
        if ((next & 0xC0) != 0x80) return 0;
        codePoint = (codePoint << 6) | (next & 0x3F);
    }
    const bool surrogate = codePoint >= 0xD800 && codePoint <= 0xDFFF;
    const bool nonCharacter = codePoint == 0xFFFE || codePoint == 0xFFFF;
    if (codePoint < smallest || codePoint > 0x10FFFF || surrogate || nonCharacter) return 0;
    return length;
}

// Copies verbatim runs in bulk: report text is overwhelmingly plain ASCII.
void appendClean(std::string& out, std::string_view text, const CharTable& table) {
    std::size_t runStart = 0;
    std::size_t i = 0;
    const auto byteAt = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
    const auto replaceAt = [&](std::string_view replacement) {
        out.append(text.data() + runStart, i - runStart);
        out.append(replacement);
        runStart = ++i;
    };
    while (i < text.size()) {
        if (table.plain[byteAt(i)]) {
            ++i;
            continue;
        }
        const unsigned char byte = byteAt(i);
        if (byte >= 0x80) {
            const std::size_t length = validSequenceLength(text, i);
            if (length == 0) {
                replaceAt(kReplacementChar);
            } else {
                i += length;
            }
        } else {
            replaceAt(table.replacement[byte]);
        }
    }
    out.append(text.data() + runStart, i - runStart);
}

}  // namespace

void appendEscapedMarkup(std::string& out, std::string_view text) {
    appendClean(out, text, kEscapeTable);
}

std::string sanitizeText(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    appendClean(out, text, kSanitizeTable);
    return out;
}

}  // namespace rm::reports
