#include "service/views.h"

#include <algorithm>
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

// Paging of the listings. Keyset paging: a page starts after the key of the last row of the
// previous one, so rows added or removed meanwhile never shift a page, no row shows twice, and
// every page is one index range scan however deep it is.
constexpr int kDefaultPageRows = 100;
constexpr int kMaxPageRows = 1000;
constexpr int kRecentReports = 20;
constexpr size_t kMaxAfterKey = 512;

int hexDigit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// application/x-www-form-urlencoded: '+' is a space, %XX a byte; a stray '%' stays as it is.
std::string formDecode(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '+') {
            out += ' ';
        } else if (text[i] == '%' && i + 2 < text.size() && hexDigit(text[i + 1]) >= 0 &&
                   hexDigit(text[i + 2]) >= 0) {
            out += static_cast<char>(hexDigit(text[i + 1]) * 16 + hexDigit(text[i + 2]));
            i += 2;
        } else {
            out += text[i];
        }
    }
    return out;
}

// The query's parameters; a name given twice keeps its first value.
std::map<std::string, std::string> queryParameters(std::string_view query) {
    std::map<std::string, std::string> out;
    while (!query.empty()) {
        auto amp = query.find('&');
        std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
        if (pair.empty()) continue;
        auto eq = pair.find('=');
        std::string name = formDecode(pair.substr(0, eq));
        std::string value = eq == std::string_view::npos ? std::string() : formDecode(pair.substr(eq + 1));
        out.emplace(std::move(name), std::move(value));
    }
    return out;
}

struct Paging {
    int limit = kDefaultPageRows;
    std::optional<std::string> after;  // the key of the last row of the previous page
    bool all = false;                  // /resources: those that left the scope too
};

// nullopt when the query is sound, else what is wrong (the page answers 400 with it).
std::optional<std::string> parsePaging(const std::string& query, Paging& paging) {
    auto params = queryParameters(query);
    if (auto it = params.find("limit"); it != params.end()) {
        const std::string& text = it->second;
        bool digits = !text.empty() && text.size() <= 9 &&
                      std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
        int n = digits ? std::stoi(text) : 0;
        if (n < 1) {
            return "limit must be a whole number of rows from 1 to " + std::to_string(kMaxPageRows) +
                   " (larger values are capped at " + std::to_string(kMaxPageRows) + ")";
        }
        paging.limit = std::min(n, kMaxPageRows);
    }
    if (auto it = params.find("after"); it != params.end()) {
        if (it->second.empty() || it->second.size() > kMaxAfterKey) {
            return "after must be the key of the last row of the previous page, as the page's "
                   "\"Next page\" link gives it";
        }
        paging.after = it->second;
    }
    if (auto it = params.find("all"); it != params.end()) {
        paging.all = it->second.empty() || it->second == "1" || it->second == "true" || it->second == "yes";
    }
    return std::nullopt;
}

// The link to a page of `path` with the same settings, starting after `after` (the first page
// when nullopt); escaped for an attribute.
std::string pageHref(std::string_view path, const Paging& paging, const std::optional<std::string>& after) {
    std::string href = std::string(path) + "?limit=" + std::to_string(paging.limit);
    if (paging.all) href += "&all=1";
    if (after) href += "&after=" + reports::encodePathSegment(*after);
    return escapeHtml(href);
}

// The count, where this page starts, and the links to the first and the next page.
std::string pager(std::string_view path, const Paging& paging, size_t shown, int64_t total, std::string_view noun,
                  const std::optional<std::string>& nextAfter) {
    std::string html = "<p class=\"pager\">";
    std::string after = paging.after ? "after <code>" + escapeHtml(*paging.after) + "</code>" : "";
    if (shown > 0) {
        html += "Showing " + std::to_string(shown) + " " + std::string(noun) + " of " + std::to_string(total) +
                (after.empty() ? "" : ", " + after) + ".";
    } else {
        html += "No " + std::string(noun) + (after.empty() ? "" : " " + after) + " (" + std::to_string(total) +
                " in all).";
    }
    if (paging.after) html += " <a href=\"" + pageHref(path, paging, std::nullopt) + "\">First page</a>";
    if (nextAfter) html += " <a rel=\"next\" href=\"" + pageHref(path, paging, nextAfter) + "\">Next page</a>";
    return html + "</p>";
}

// A resource's key in an `after` parameter: TYPE/ID (types hold no '/').
std::string resourceAfterKey(const ResourceKey& key) { return key.type + "/" + key.id; }

std::optional<ResourceKey> parseResourceAfterKey(const std::string& text) {
    auto slash = text.find('/');
    if (slash == std::string::npos || slash == 0 || slash + 1 == text.size()) return std::nullopt;
    return ResourceKey{text.substr(0, slash), text.substr(slash + 1)};
}

// GET /: the most recent reports, the first page of resources in the scope and of nodes, each
// with its count and a link to the rest; bounded whatever the size of the scope.
HttpResponse scopePage(const ViewSources& sources) {
    const Paging first;
    auto counts = sources.store.resourceCounts();
    auto resources = sources.store.resourcePage(std::nullopt, first.limit, false);
    auto nodes = sources.store.nodeStatusPage(std::nullopt, first.limit);
    const int64_t nodeCount = sources.store.nodeCount();
    const int64_t open = sources.store.openSessionCount();
    const int64_t kept = open + sources.store.closedSessionCount();
    std::optional<std::string> nextResources;
    if (resources.next) nextResources = resourceAfterKey(*resources.next);
    std::string body = "<h1>Scope <code>" + escapeHtml(sources.scope) + "</code></h1>";
    body += "<h2>Recent reports</h2><p class=\"pager\">The " + std::to_string(kRecentReports) +
            " most recently updated of " + std::to_string(kept) + " kept (" + std::to_string(open) +
            " open).</p>" + sessionsTable(sources.store.recentSessions(kRecentReports));
    body += "<h2>Resources (" + std::to_string(counts.inScope) + ")</h2>" +
            pager("/resources", first, resources.rows.size(), counts.inScope, "resources", nextResources) +
            resourcesTable(resources.rows);
    body += "<h2>Nodes (" + std::to_string(nodeCount) + ")</h2>" +
            pager("/nodes", first, nodes.rows.size(), nodeCount, "nodes", nodes.next) + nodesTable(nodes.rows);
    return HttpResponse::html(reports::pageLayout("Scope " + sources.scope, body, 5));
}

// GET /resources[?limit=N][&after=TYPE/ID][&all=1]: the resources in the scope, or with all=1
// also those that left it (UNPUBLISHED), by type and ID.
HttpResponse resourcesPage(const ViewSources& sources, const HttpRequest& request) {
    Paging paging;
    if (auto problem = parsePaging(request.query, paging)) return HttpResponse::text(400, *problem);
    std::optional<ResourceKey> after;
    if (paging.after) {
        after = parseResourceAfterKey(*paging.after);
        if (!after) return HttpResponse::text(400, "after must be TYPE/ID, the key of the last row of the previous page");
    }
    auto counts = sources.store.resourceCounts();
    auto page = sources.store.resourcePage(after, paging.limit, paging.all);
    std::optional<std::string> next;
    if (page.next) next = resourceAfterKey(*page.next);
    const int64_t total = paging.all ? counts.total : counts.inScope;
    const int64_t left = counts.total - counts.inScope;
    std::string body = "<h1>Resources of <code>" + escapeHtml(sources.scope) + "</code></h1><p>";
    body += paging.all ? std::to_string(counts.inScope) + " in the scope and " + std::to_string(left) +
                             " that left it (UNPUBLISHED). <a href=\"/resources\">Only those in the scope</a></p>"
                       : std::to_string(counts.inScope) + " in the scope. <a href=\"/resources?all=1\">With the " +
                             std::to_string(left) + " that left it</a></p>";
    std::string nav = pager("/resources", paging, page.rows.size(), total, "resources", next);
    body += nav + resourcesTable(page.rows) + nav;
    return HttpResponse::html(reports::pageLayout("Resources", body, 5));
}

// GET /nodes[?limit=N][&after=NAME]: the registered nodes by name.
HttpResponse nodesPage(const ViewSources& sources, const HttpRequest& request) {
    Paging paging;
    if (auto problem = parsePaging(request.query, paging)) return HttpResponse::text(400, *problem);
    auto page = sources.store.nodeStatusPage(paging.after, paging.limit);
    std::string nav = pager("/nodes", paging, page.rows.size(), sources.store.nodeCount(), "nodes", page.next);
    std::string body = "<h1>Nodes of <code>" + escapeHtml(sources.scope) + "</code></h1>" + nav +
                       nodesTable(page.rows) + nav;
    return HttpResponse::html(reports::pageLayout("Nodes", body, 5));
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

std::string metrics(const ViewSources& sources) {
    // Maintained counts: a scrape costs the same whatever the size of the scope.
    auto counts = sources.store.resourceCounts();
    std::ostringstream out;
    out << "# HELP rm_scoped_resources Scoped resources by state.\n# TYPE rm_scoped_resources gauge\n";
    for (const auto& [state, count] : counts.byState) {
        out << "rm_scoped_resources{state=\"" << state << "\"} " << count << "\n";
    }
    out << "# HELP rm_open_sessions Sessions not yet closed.\n# TYPE rm_open_sessions gauge\n";
    out << "rm_open_sessions " << sources.store.openSessionCount() << "\n";
    int alive = 0, lost = 0;
    for (const auto& n : sources.store.nodeStatuses()) (n.record.liveness == "ALIVE" ? alive : lost)++;
    out << "# HELP rm_nodes Registered nodes by liveness.\n# TYPE rm_nodes gauge\n";
    out << "rm_nodes{liveness=\"ALIVE\"} " << alive << "\nrm_nodes{liveness=\"LOST\"} " << lost << "\n";
    if (sources.extraMetrics) out << sources.extraMetrics();
    return out.str();
}

// A route that needs a `reader` when a users file is set (every route but /healthz).
common::HttpRouter::Handler readerOnly(const ViewSources& sources, common::HttpRouter::Handler handler) {
    if (!sources.access || sources.access->open()) return handler;
    return [sources, handler = std::move(handler)](const HttpRequest& request) {
        const char* user = request.user.empty() ? nullptr : request.user.c_str();
        const char* password = request.user.empty() ? nullptr : request.password.c_str();
        auto denied = sources.access->check(user, password, sources.scope, Role::Reader, request.clientAddress);
        if (!denied) return handler(request);
        if (sources.logger) {
            common::Log(*sources.logger, common::LogLevel::warn, "access_denied")
                .kv("peer", request.clientAddress)
                .kv("user", request.user.empty() ? "-" : request.user)
                .kv("path", request.path)
                .kv("needs", toString(Role::Reader))
                .kv("reason", denied->reason);
        }
        if (!denied->askForCredentials()) return HttpResponse::text(403, "forbidden: " + denied->reason);
        auto response = HttpResponse::text(401, "authentication required: " + denied->reason);
        std::string realm;
        for (char c : sources.scope) realm += (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) ? '_' : c;
        response.headers.emplace_back("WWW-Authenticate", "Basic realm=\"" + realm + "\"");
        return response;
    };
}

}  // namespace

common::HttpRouter makeRouter(const ViewSources& sources) {
    common::HttpRouter router;
    // Every route registered through `guarded` needs a reader; /healthz alone stays open.
    auto guarded = [&sources](common::HttpRouter::Handler handler) { return readerOnly(sources, std::move(handler)); };
    router.exact("/", guarded([sources](const HttpRequest& request) {
        if (request.query == "wsdl" || request.query == "WSDL") {
            return HttpResponse::xml(wsdlFor(sources));
        }
        return scopePage(sources);
    }));
    router.exact("/resources", guarded([sources](const HttpRequest& request) {
        return resourcesPage(sources, request);
    }));
    router.exact("/nodes", guarded([sources](const HttpRequest& request) {
        return nodesPage(sources, request);
    }));
    router.prefix("/reports/", guarded([sources](const HttpRequest& request) { return reportResponse(sources, request); }));
    router.prefix("/repository/", guarded([sources](const HttpRequest& request) { return repositoryArchive(sources.repository, sources.repositoryDir, request); }));
    router.exact("/wsdl", guarded([sources](const HttpRequest&) { return HttpResponse::xml(wsdlFor(sources)); }));
    router.exact("/healthz", [sources](const HttpRequest&) {
        sources.store.resourceCount();  // proves the database answers
        HttpResponse r;
        r.contentType = "application/json";
        r.body = "{\"status\":\"ok\",\"scope\":\"" + sources.scope + "\"}\n";
        return r;
    });
    router.exact("/metrics", guarded([sources](const HttpRequest&) {
        HttpResponse r;
        r.contentType = "text/plain; version=0.0.4; charset=utf-8";
        r.body = metrics(sources);
        return r;
    }));
    router.exact("/engine", guarded([sources](const HttpRequest&) {
        HttpResponse r;
        r.contentType = "application/json";
        r.body = sources.engineJson ? sources.engineJson() : "[]";
        return r;
    }));
    return router;
}

}  // namespace rm::service
