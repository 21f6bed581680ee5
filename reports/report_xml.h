// The ResourceReport document on the wire (SPEC section 5, wsdl/ResourceReport.xsd).
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>

#include "reports/resource_report.h"

namespace rm::reports {

enum class XmlLayout {
    Compact,   // no whitespace between elements: what GetReport and /reports/{id}.xml carry
    Indented,  // two-space indentation, for people
};

// The document starting at `<ResourceReport>`: no XML declaration, no namespace. Empty
// ErrorDescription renders as "-"; the activity element is omitted when there are no GHNs.
// Text is escaped, and characters XML 1.0 cannot carry become U+FFFD (see sanitizeText).
std::string renderReportXml(const ResourceReport& report, XmlLayout layout = XmlLayout::Compact);

// Thrown by parseReportXml; what() names the offending element by its path.
class ReportParseError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

struct ReportParseLimits {
    std::size_t maxBytes = 16 * 1024 * 1024;
    std::size_t maxDepth = 32;         // the report itself is 7 deep
    std::size_t maxElements = 500000;  // 200 services of 5 packages: ~20000
};

// Strict: exactly one ResourceReport root, every element in document order, no unknown
// elements or attributes (namespace declarations aside), no DOCTYPE, status fields within their
// vocabularies, LastUpdate ISO 8601 with offset, SessionExitStatus present exactly when CLOSED.
// Text values are sanitized like renderReportXml does, so render(parse(x)) parses back equal.
// When the activity element is absent, activityKind follows from Operation.
ResourceReport parseReportXml(std::string_view xml, const ReportParseLimits& limits = {});

}  // namespace rm::reports
