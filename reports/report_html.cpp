#include "reports/report_html.h"

#include "reports/html.h"

namespace rm::reports {
namespace {

Tone sessionTone(const ResourceReport& report) {
    if (report.status != "CLOSED") return Tone::Pending;
    if (report.sessionExitStatus == "SUCCESS") return Tone::Good;
    if (report.sessionExitStatus == "FAILED") return Tone::Bad;
    return Tone::Neutral;
}

std::string sessionLabel(const ResourceReport& report) {
    if (report.status == "CLOSED" && report.sessionExitStatus) {
        return report.status + " " + *report.sessionExitStatus;
    }
    return report.status;
}

Tone packageTone(std::string_view status) {
    if (status == "RUNNING" || status == "ACTIVATED" || status == "ALREADYDEPLOYED" ||
        status == "UNDEPLOYED") {
        return Tone::Good;
    }
    if (status == "FAILED") return Tone::Bad;
    if (status == "SKIPPED" || status == "NOTUNDEPLOYABLE") return Tone::Warn;
    if (status == "WAITING" || status == "DEPLOYED") return Tone::Pending;
    return Tone::Neutral;  // NOTVERIFIED: done, but nobody can vouch for it
}

Tone resourceTone(std::string_view status) {
    if (status == "ADDED" || status == "REMOVED") return Tone::Good;
    if (status == "FAILED") return Tone::Bad;
    if (status == "WAITING") return Tone::Pending;
    return Tone::Neutral;
}

Tone resolutionTone(std::string_view status) {
    if (status == "SUCCESS") return Tone::Good;
    if (status == "FAILED") return Tone::Bad;
    return Tone::Neutral;
}

Tone nodeReportTone(std::string_view status) {
    return status == "CLOSED" ? Tone::Good : Tone::Pending;
}

// Collects markup; every value goes through escaping, only literals are appended raw.
class HtmlBuilder {
  public:
    HtmlBuilder& raw(std::string_view markup) {
        out_ += markup;
        return *this;
    }
    HtmlBuilder& text(std::string_view value) {
        appendEscapedHtml(out_, value);
        return *this;
    }
    HtmlBuilder& number(std::size_t value) { return raw(std::to_string(value)); }
    HtmlBuilder& badge(std::string_view label, Tone tone) {
        return raw(reports::badge(label, tone));
    }
    std::string take() { return std::move(out_); }

  private:
    std::string out_;
};

std::string_view orDash(const std::string& value) {
    return value.empty() ? std::string_view("-") : std::string_view(value);
}

void writeProgressBar(HtmlBuilder& h, const ResourceReport& report, const Progress& packages) {
    std::size_t percent = 0;
    if (packages.total > 0) {
        percent = packages.done * 100 / packages.total;
    } else if (report.status == "CLOSED") {
        percent = 100;
    }
    const char* modifier = report.status != "CLOSED"              ? " open"
                           : report.sessionExitStatus == "FAILED" ? " failed"
                                                                  : "";
    h.raw("<div class=\"progress").raw(modifier).raw("\" title=\"").number(percent).raw("%\">");
    h.raw("<div style=\"width:").number(percent).raw("%\"></div></div>");
}

void writeSummary(HtmlBuilder& h, const ResourceReport& report, const HtmlOptions& options) {
    const ReportProgress counts = progress(report);
    h.raw("<h1>Report <span class=\"mono\">").text(report.id).raw("</span> ");
    h.badge(sessionLabel(report), sessionTone(report)).raw("</h1>\n");
    h.raw("<div class=\"card\"><table class=\"kv\">\n");
    h.raw("<tr><th>Operation</th><td>").text(report.operation).raw("</td></tr>\n");
    h.raw("<tr><th>Target scope</th><td class=\"mono\">").text(report.targetScope);
    h.raw("</td></tr>\n<tr><th>Status</th><td>");
    h.badge(sessionLabel(report), sessionTone(report)).raw("</td></tr>\n");
    h.raw("<tr><th>Last update</th><td>").text(report.lastUpdate).raw("</td></tr>\n");
    h.raw("<tr><th>Packages</th><td>");
    writeProgressBar(h, report, counts.packages);
    h.number(counts.packages.done).raw(" of ").number(counts.packages.total);
    h.raw(" packages in a final state</td></tr>\n");
    h.raw("<tr><th>Resources</th><td>").number(counts.resources.done).raw(" of ");
    h.number(counts.resources.total).raw(" resources processed</td></tr>\n");
    h.raw("<tr><th>Raw document</th><td><a href=\"");
    h.text(options.reportsBasePath + encodePathSegment(report.id) + ".xml");
    h.raw("\">ResourceReport XML</a></td></tr>\n</table></div>\n");
}

void writeDependencyTable(HtmlBuilder& h, std::string_view caption,
                          const std::vector<Dependency>& dependencies, bool missing) {
    h.raw("<h4>").text(caption).raw("</h4>\n");
    if (dependencies.empty()) {
        h.raw("<p class=\"empty\">none</p>\n");
        return;
    }
    h.raw(
        "<table><tr><th>Service class</th><th>Service name</th><th>Service version</th>"
        "<th>Package</th><th>Package version</th></tr>\n");
    for (const Dependency& d : dependencies) {
        h.raw(missing ? "<tr class=\"missing\"><td>" : "<tr><td>").text(d.serviceClass);
        h.raw("</td><td>").text(d.serviceName).raw("</td><td>").text(d.serviceVersion);
        h.raw("</td><td>").text(d.packageName).raw("</td><td>").text(d.packageVersion);
        h.raw("</td></tr>\n");
    }
    h.raw("</table>\n");
}

void writeService(HtmlBuilder& h, const ServiceEntry& s) {
    h.raw("<div class=\"card\"><h3>").text(s.serviceClass).raw(" / ").text(s.serviceName);
    h.raw(" / ").text(s.serviceVersion).raw("</h3>\n<table class=\"kv\">\n");
    h.raw("<tr><th>Dependencies resolution</th><td>");
    h.badge(s.resolutionStatus, resolutionTone(s.resolutionStatus)).raw("</td></tr>\n");
    h.raw("<tr><th>Deployed on</th><td class=\"mono\">").text(s.deployedOn).raw("</td></tr>\n");
    h.raw("<tr><th>Error</th><td>").text(orDash(s.errorDescription)).raw("</td></tr>\n");
    h.raw("</table>\n");
    writeDependencyTable(h, "Resolved dependencies", s.resolved, false);
    writeDependencyTable(h, "Missing dependencies", s.missing, true);
    h.raw("</div>\n");
}

void writeServices(HtmlBuilder& h, const ResourceReport& report) {
    h.raw("<h2>Services (").number(report.services.size()).raw(")</h2>\n");
    if (report.services.empty()) h.raw("<p class=\"empty\">No services in this request.</p>\n");
    for (const ServiceEntry& service : report.services) writeService(h, service);
}

void writePackageTable(HtmlBuilder& h, const std::vector<PackageEntry>& packages) {
    if (packages.empty()) {
        h.raw("<p class=\"empty\">No packages reported.</p>\n");
        return;
    }
    h.raw(
        "<table><tr><th>Service</th><th>Package</th><th>Version</th><th>State</th>"
        "<th>Message</th></tr>\n");
    for (const PackageEntry& p : packages) {
        h.raw("<tr><td>").text(p.serviceClass).raw(" / ").text(p.serviceName).raw(" / ");
        h.text(p.serviceVersion).raw("</td><td>").text(p.packageName).raw("</td><td>");
        h.text(p.packageVersion).raw("</td><td>").badge(p.status, packageTone(p.status));
        h.raw("</td><td>").text(p.message).raw("</td></tr>\n");
    }
    h.raw("</table>\n");
}

void writeGhn(HtmlBuilder& h, const GhnActivity& ghn, const NodeProgress& counts) {
    h.raw("<div class=\"card\"><h3>").text(ghn.host).raw("</h3>\n<table class=\"kv\">\n");
    h.raw("<tr><th>Node ID</th><td class=\"mono\">").text(ghn.id).raw("</td></tr>\n");
    h.raw("<tr><th>Last report received</th><td>");
    h.text(ghn.lastReportReceivedOn.empty() ? "never" : ghn.lastReportReceivedOn);
    h.raw("</td></tr>\n<tr><th>Node report</th><td>");
    h.badge(ghn.nodeStatus, nodeReportTone(ghn.nodeStatus)).raw(" ");
    h.number(counts.packages.done).raw(" of ").number(counts.packages.total);
    h.raw(" packages final</td></tr>\n</table>\n");
    writePackageTable(h, ghn.packages);
    h.raw("</div>\n");
}

void writeActivity(HtmlBuilder& h, const ResourceReport& report) {
    const bool deployment = report.activityKind == ResourceReport::ActivityKind::Deployment;
    h.raw(deployment ? "<h2>Deployment activity (" : "<h2>Undeployment activity (");
    h.number(report.ghns.size()).raw(report.ghns.size() == 1 ? " node)</h2>\n" : " nodes)</h2>\n");
    if (report.ghns.empty()) h.raw("<p class=\"empty\">No node involved.</p>\n");
    const ReportProgress counts = progress(report);
    for (std::size_t i = 0; i < report.ghns.size(); ++i) {
        writeGhn(h, report.ghns[i], counts.nodes[i]);
    }
}

void writeResources(HtmlBuilder& h, const ResourceReport& report) {
    h.raw("<h2>Resources (").number(report.resources.size()).raw(")</h2>\n");
    if (report.resources.empty()) {
        h.raw("<p class=\"empty\">No resources in this request.</p>\n");
        return;
    }
    h.raw("<table><tr><th>ID</th><th>Type</th><th>Status</th><th>Error</th></tr>\n");
    for (const ResourceEntry& r : report.resources) {
        h.raw("<tr><td class=\"mono\">").text(r.id).raw("</td><td>").text(r.type);
        h.raw("</td><td>").badge(r.status, resourceTone(r.status)).raw("</td><td>");
        h.text(orDash(r.errorDescription)).raw("</td></tr>\n");
    }
    h.raw("</table>\n");
}

}  // namespace

std::string renderReportHtml(const ResourceReport& report, const HtmlOptions& options) {
    HtmlBuilder h;
    writeSummary(h, report, options);
    writeServices(h, report);
    writeActivity(h, report);
    writeResources(h, report);
    const int refresh = report.status == "OPEN" ? options.refreshSeconds : 0;
    return pageLayout("Report " + report.id + " (" + sessionLabel(report) + ")", h.take(), refresh);
}

}  // namespace rm::reports
