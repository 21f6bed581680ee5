#include "common/http.h"

#include <algorithm>

namespace rm::common {

HttpResponse HttpResponse::text(int status, std::string body) {
    HttpResponse r;
    r.status = status;
    r.body = std::move(body);
    if (r.body.empty() || r.body.back() != '\n') r.body += '\n';
    return r;
}

HttpResponse HttpResponse::html(std::string body) {
    HttpResponse r;
    r.contentType = "text/html; charset=utf-8";
    r.body = std::move(body);
    return r;
}

HttpResponse HttpResponse::xml(std::string body) {
    HttpResponse r;
    r.contentType = "application/xml; charset=utf-8";
    r.body = std::move(body);
    return r;
}

void HttpRouter::exact(std::string path, Handler handler) {
    exact_.emplace_back(std::move(path), std::move(handler));
}

void HttpRouter::prefix(std::string prefix, Handler handler) {
    prefix_.emplace_back(std::move(prefix), std::move(handler));
    std::stable_sort(prefix_.begin(), prefix_.end(),
                     [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
}

HttpResponse HttpRouter::route(const HttpRequest& request) const {
    for (const auto& [path, handler] : exact_) {
        if (path == request.path) return handler(request);
    }
    for (const auto& [prefix, handler] : prefix_) {
        if (request.path.compare(0, prefix.size(), prefix) == 0) return handler(request);
    }
    return HttpResponse::text(404, "not found: " + request.path);
}

const std::vector<std::pair<std::string, std::string>>& securityHeaders() {
    static const std::vector<std::pair<std::string, std::string>> headers{
        {"X-Content-Type-Options", "nosniff"},
        {"Content-Security-Policy",
         "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
         "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"},
        {"X-Frame-Options", "DENY"},
        {"Referrer-Policy", "no-referrer"},
    };
    return headers;
}

const std::string& securityHeaderLines() {
    static const std::string lines = [] {
        std::string out;
        for (const auto& [key, value] : securityHeaders()) {
            if (!out.empty()) out += "\r\n";
            out += key + ": " + value;
        }
        return out;
    }();
    return lines;
}

bool acceptsXmlOverHtml(const std::string& accept) {
    auto xml = accept.find("application/xml");
    if (xml == std::string::npos) xml = accept.find("text/xml");
    if (xml == std::string::npos) return false;
    auto html = accept.find("text/html");
    return html == std::string::npos || xml < html;
}

}  // namespace rm::common
