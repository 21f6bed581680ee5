// libFuzzer target for the ResourceReport parser, which reads documents from the network
// (GetReport responses, stored reports). Beyond not crashing, every document it accepts must
// survive render -> parse unchanged, and render as XML and HTML without throwing.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "reports/report_html.h"
#include "reports/report_xml.h"

namespace {

[[noreturn]] void invariantBroken() {
    std::abort();
}

void checkRoundTrip(const rm::reports::ResourceReport& report) {
    const std::string xml = rm::reports::renderReportXml(report);
    const rm::reports::ResourceReport reparsed = rm::reports::parseReportXml(xml);
    if (!(reparsed == report)) invariantBroken();
    if (rm::reports::renderReportXml(reparsed) != xml) invariantBroken();
    const rm::reports::ResourceReport fromIndented = rm::reports::parseReportXml(
        rm::reports::renderReportXml(report, rm::reports::XmlLayout::Indented));
    if (!(fromIndented == report)) invariantBroken();
    (void)rm::reports::renderReportHtml(report);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    rm::reports::ResourceReport report;
    try {
        report = rm::reports::parseReportXml(input);
    } catch (const rm::reports::ReportParseError&) {
        return 0;  // rejection is the expected outcome for most inputs
    }
    // A ReportParseError here means the renderer wrote something the parser refuses: a bug.
    checkRoundTrip(report);
    return 0;
}
