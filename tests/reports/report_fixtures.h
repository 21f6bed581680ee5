// Reports in the states the tests exercise, built by hand.
#pragma once

#include <cstddef>
#include <string>

#include "reports/resource_report.h"

namespace rm::reports::testing {

// The document of SPEC section 5, without indentation and comments.
extern const char* const kSpecSampleXml;
// The report kSpecSampleXml describes.
ResourceReport specSampleReport();

// A deployment in progress: one node done, one not reported yet, a resource still WAITING.
ResourceReport openReport();
// Everything deployed and running.
ResourceReport closedSuccessReport();
// One service with missing dependencies (not deployed), a failed package, a skipped package.
ResourceReport closedFailedReport();
// A RemoveResources session.
ResourceReport undeploymentReport();
// `services` services with `packagesPerService` packages each, spread over 10 nodes.
ResourceReport largeReport(std::size_t services, std::size_t packagesPerService);

// Removes comments and whitespace between tags, for comparing with compact output.
std::string compactXml(std::string xml);

}  // namespace rm::reports::testing
