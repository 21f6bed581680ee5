#include "service/views.h"

#include <fstream>
#include <map>
#include <iterator>
#include <sstream>

#include "common/time_util.h"
#include "reports/html.h"
#include "reports/report_html.h"
#include "service/request_validation.h"

namespace rm::service {

using common::HttpRequest;
using common::HttpResponse;
using reports::escapeHtml;

namespace {

constexpr std::string_view kXmlDeclaration = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

std::string when(int64_t ms) { return common::isoTimestamp(common::fromUnixMillis(ms)); }

std::string resourcesTable(const std::vector<ScopedResource>& resources) {
    std::string html = "<table><thead><tr><th>Type</th><th>ID</th><th>State</th><th>Node</th>"
                       "<th>Last change</th><th>Error</th></tr></thead><tbody>";
    for (const auto& r : resources) {
        auto tone = r.state == ResourceState::Published || r.state == ResourceState::Added
                        ? reports::Tone::Good
                        : r.state == ResourceState::Lost ? reports::Tone::Bad : reports::Tone::Neutral;
        html += "<tr><td>" + escapeHtml(r.key.type) + "</td><td><code>" + escapeHtml(r.key.id) +
                "</code></td><td>" + reports::badge(toString(r.state), tone) + "</td><td>" +
                escapeHtml(r.node) + "</td><td>" + when(r.updatedAtMs) + "</td><td>" +
                escapeHtml(r.error.empty() ? "-" : r.error) + "</td></tr>";
    }
    if (resources.empty()) html += "<tr><td colspan=\"6\">No resources.</td></tr>";
    return html + "</tbody></table>";
}

std::string nodesTable(const std::vector<NodeStatus>& nodes) {
    std::string html = "<table><thead><tr><th>Name</th><th>ID</th><th>Endpoint</th><th>Liveness</th>"
                       "<th>Last heartbeat</th><th>Running</th><th>Load</th><th>Labels</th></tr></thead><tbody>";
    for (const auto& n : nodes) {
        auto tone = n.record.liveness == "ALIVE" ? reports::Tone::Good : reports::Tone::Bad;
        std::ostringstream load;
        load.precision(2);
        load << std::fixed << n.load;
        html += "<tr><td>" + escapeHtml(n.record.name) + "</td><td><code>" + escapeHtml(n.record.id) +
                "</code></td><td>" + escapeHtml(n.record.endpoint) + "</td><td>" +
                reports::badge(n.record.liveness, tone) + "</td><td>" + when(n.record.lastHeartbeatMs) +
                "</td><td>" + std::to_string(n.runningInstances) + "</td><td>" + load.str() +
                "</td><td>" + escapeHtml(n.record.labels) + "</td></tr>";
    }
    if (nodes.empty()) html += "<tr><td colspan=\"8\">No node has registered yet.</td></tr>";
    return html + "</tbody></table>";
}

std::string sessionsTable(const std::vector<SessionSummary>& sessions) {
    std::string html = "<table><thead><tr><th>Report</th><th>Operation</th><th>Status</th>"
                       "<th>Resources</th><th>Last update</th></tr></thead><tbody>";
    for (const auto& s : sessions) {
        std::string status = s.open ? reports::badge("OPEN", reports::Tone::Pending)
                             : s.succeeded.value_or(false) ? reports::badge("SUCCESS", reports::Tone::Good)
                                                           : reports::badge("FAILED", reports::Tone::Bad);
        html += "<tr><td><a href=\"/reports/" + reports::encodePathSegment(s.id) + "\"><code>" +
                escapeHtml(s.id) + "</code></a></td><td>" + escapeHtml(s.operation) + "</td><td>" +
                status + "</td><td>" + std::to_string(s.items) + "</td><td>" + when(s.updatedAtMs) +
                "</td></tr>";
    }
    if (sessions.empty()) html += "<tr><td colspan=\"5\">No request yet.</td></tr>";
    return html + "</tbody></table>";
}

std::string wsdlFor(const ViewSources& sources) {
    // Point the service address at this RM so clients that read the WSDL call it directly.
    std::string wsdl = sources.wsdlText;
    const std::string placeholder = "http://localhost:8080/";
    auto at = wsdl.find(placeholder);
    if (at != std::string::npos) wsdl.replace(at, placeholder.size(), sources.serviceUrl() + "/");
    return wsdl;
}

HttpResponse reportResponse(const ViewSources& sources, const HttpRequest& request) {
    std::string id = request.path.substr(std::string("/reports/").size());
    bool wantXml = common::acceptsXmlOverHtml(request.accept);
    if (id.size() > 4 && id.compare(id.size() - 4, 4, ".xml") == 0) {
        id.resize(id.size() - 4);
        wantXml = true;
    }
    if (!isValidIdentifier(id)) return HttpResponse::text(404, "no report with that ID");
    if (wantXml) {
        auto xml = sources.reports.xml(id);
        if (!xml) return HttpResponse::text(404, "no report with ID " + id);
        std::string body;
        body.reserve(kXmlDeclaration.size() + xml->size());
        body.append(kXmlDeclaration).append(*xml);
        auto response = HttpResponse::xml(std::move(body));
        response.headers.emplace_back("Cache-Control", "no-store");
        return response;
    }
    auto model = sources.reports.report(id);
    if (!model) {
        return {404, "text/html; charset=utf-8",
                reports::pageLayout("No such report", "<p>No report has ID <code>" + escapeHtml(id) +
                                                          "</code> in this scope.</p>"),
                {}};
    }
    auto response = HttpResponse::html(reports::renderReportHtml(*model));
    response.headers.emplace_back("Cache-Control", "no-store");
    return response;
}

// Agents download archives here; only files the index knows are served, never arbitrary paths.
HttpResponse repositoryFile(const ViewSources& sources, const HttpRequest& request) {
    std::string relative = request.path.substr(std::string("/repository/").size());
    auto index = sources.repository ? sources.repository() : nullptr;
    const deployer::IndexedPackage* package = index ? index->findByPath(relative) : nullptr;
    if (!package) return HttpResponse::text(404, "no package archive " + relative + " in the repository");
    std::ifstream in(sources.repositoryDir / package->relativePath, std::ios::binary);
    if (!in) return HttpResponse::text(404, "package archive " + relative + " is no longer readable");
    HttpResponse r;
    r.contentType = "application/gzip";
    r.body.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    r.headers.emplace_back("X-Checksum-SHA256", package->sha256);
    r.headers.emplace_back("ETag", "\"" + package->sha256 + "\"");
    return r;
}

std::string metrics(const ViewSources& sources) {
    std::map<std::string, int> byState;
    for (const auto& r : sources.store.listResources(std::nullopt, std::nullopt)) {
        ++byState[std::string(toString(r.state))];
    }
    std::ostringstream out;
    out << "# HELP rm_scoped_resources Scoped resources by state.\n# TYPE rm_scoped_resources gauge\n";
    for (const auto& [state, count] : byState) {
        out << "rm_scoped_resources{state=\"" << state << "\"} " << count << "\n";
    }
    out << "# HELP rm_open_sessions Sessions not yet closed.\n# TYPE rm_open_sessions gauge\n";
    out << "rm_open_sessions " << sources.store.openSessionIds().size() << "\n";
    int alive = 0, lost = 0;
    for (const auto& n : sources.store.nodeStatuses()) (n.record.liveness == "ALIVE" ? alive : lost)++;
    out << "# HELP rm_nodes Registered nodes by liveness.\n# TYPE rm_nodes gauge\n";
    out << "rm_nodes{liveness=\"ALIVE\"} " << alive << "\nrm_nodes{liveness=\"LOST\"} " << lost << "\n";
    if (sources.extraMetrics) out << sources.extraMetrics();
    return out.str();
}

}  // namespace

common::HttpRouter makeRouter(const ViewSources& sources) {
    common::HttpRouter router;
    router.exact("/", [sources](const HttpRequest& request) {
        if (request.query == "wsdl" || request.query == "WSDL") {
            return HttpResponse::xml(wsdlFor(sources));
        }
        auto resources = sources.store.listResources(std::nullopt, std::nullopt);
        std::erase_if(resources, [](const ScopedResource& r) { return r.state == ResourceState::Unpublished; });
        std::string body = "<h1>Scope <code>" + escapeHtml(sources.scope) + "</code></h1>";
        body += "<h2>Recent reports</h2>" + sessionsTable(sources.store.recentSessions(20));
        body += "<h2>Resources (" + std::to_string(resources.size()) + ")</h2>" + resourcesTable(resources);
        body += "<h2>Nodes</h2>" + nodesTable(sources.store.nodeStatuses());
        return HttpResponse::html(reports::pageLayout("Scope " + sources.scope, body, 5));
    });
    router.exact("/resources", [sources](const HttpRequest&) {
        auto resources = sources.store.listResources(std::nullopt, std::nullopt);
        std::string body = "<h1>Resources of <code>" + escapeHtml(sources.scope) + "</code></h1>" +
                           resourcesTable(resources);
        return HttpResponse::html(reports::pageLayout("Resources", body, 5));
    });
    router.exact("/nodes", [sources](const HttpRequest&) {
        std::string body = "<h1>Nodes of <code>" + escapeHtml(sources.scope) + "</code></h1>" +
                           nodesTable(sources.store.nodeStatuses());
        return HttpResponse::html(reports::pageLayout("Nodes", body, 5));
    });
    router.prefix("/reports/", [sources](const HttpRequest& request) { return reportResponse(sources, request); });
    router.prefix("/repository/", [sources](const HttpRequest& request) { return repositoryFile(sources, request); });
    router.exact("/wsdl", [sources](const HttpRequest&) { return HttpResponse::xml(wsdlFor(sources)); });
    router.exact("/healthz", [sources](const HttpRequest&) {
        sources.store.resourceCount();  // proves the database answers
        HttpResponse r;
        r.contentType = "application/json";
        r.body = "{\"status\":\"ok\",\"scope\":\"" + sources.scope + "\"}\n";
        return r;
    });
    router.exact("/metrics", [sources](const HttpRequest&) {
        HttpResponse r;
        r.contentType = "text/plain; version=0.0.4; charset=utf-8";
        r.body = metrics(sources);
        return r;
    });
    router.exact("/engine", [sources](const HttpRequest&) {
        HttpResponse r;
        r.contentType = "application/json";
        r.body = sources.engineJson ? sources.engineJson() : "[]";
        return r;
    });
    return router;
}

}  // namespace rm::service
