// Schema validation through xmllint, the reference validator the outside checks use too.
#pragma once

#include <string>
#include <string_view>

namespace rm::reports::testing {

struct Validation {
    bool valid = false;
    std::string output;  // xmllint's diagnostics
};

// Validates `document` (a complete XML file's content) against `schemaPath`.
Validation validateWithXmllint(std::string_view document, const std::string& schemaPath);

// The standalone report schema in this source tree.
std::string reportSchemaPath();

// What the HTTP endpoint serves: the declaration followed by the rendered report.
std::string withXmlDeclaration(std::string_view report);

}  // namespace rm::reports::testing
