// Character-level rules shared by the XML and HTML writers: both must never emit bytes a parser
// or browser could read as markup, and never emit characters XML 1.0 forbids.
#pragma once

#include <string>
#include <string_view>

namespace rm::reports {

// Appends `text` escaped for element content or a quoted attribute value, in XML and HTML alike.
// `& < > " '` become references, CR becomes `&#13;` (a raw CR would be normalised away by
// parsers), and anything XML 1.0 cannot carry (C0 controls other than TAB/LF/CR, U+FFFE/U+FFFF,
// invalid or overlong UTF-8, surrogates) becomes U+FFFD.
void appendEscapedMarkup(std::string& out, std::string_view text);

// `text` with the same replacements as appendEscapedMarkup but no escaping: the value a parser
// reads back from what appendEscapedMarkup wrote.
std::string sanitizeText(std::string_view text);

}  // namespace rm::reports
