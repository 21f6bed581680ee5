// Small helpers for the RM's browser pages (report, scope, nodes, resources): escaping and one
// shared page frame, so every page looks alike and none builds markup from raw strings.
#pragma once

#include <string>
#include <string_view>

namespace rm::reports {

// Text made safe for HTML element content and quoted attribute values; characters that are not
// valid UTF-8 or are control characters become U+FFFD.
std::string escapeHtml(std::string_view text);
void appendEscapedHtml(std::string& out, std::string_view text);

// Percent-encodes everything but RFC 3986 unreserved characters, for one path segment of a link.
std::string encodePathSegment(std::string_view segment);

// Colour of a badge; the page CSS defines one class per tone.
enum class Tone { Good, Bad, Warn, Pending, Neutral };

// `<span class="badge good">label</span>`, label escaped.
std::string badge(std::string_view label, Tone tone);

// A complete, self-contained HTML5 page: inline CSS, no scripts, no external assets, a nav bar
// (Scope `/`, Resources `/resources`, Nodes `/nodes`, WSDL `/wsdl`). `bodyHtml` is inserted as
// is and must already be escaped. refreshSeconds > 0 adds a meta refresh. A Content Security
// Policy forbids scripts, so markup that slipped through escaping still cannot run.
std::string pageLayout(std::string_view title, std::string_view bodyHtml, int refreshSeconds = 0);

}  // namespace rm::reports
