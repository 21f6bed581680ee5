// The browser view of a ResourceReport (GET /reports/{id}, SPEC section 9).
#pragma once

#include <string>

#include "reports/resource_report.h"

namespace rm::reports {

struct HtmlOptions {
    int refreshSeconds = 2;                     // applied only while the report is OPEN
    std::string reportsBasePath = "/reports/";  // the raw XML is linked at base + id + ".xml"
};

// A complete self-contained page (see pageLayout in reports/html.h); every value is escaped.
std::string renderReportHtml(const ResourceReport& report, const HtmlOptions& options = {});

}  // namespace rm::reports
