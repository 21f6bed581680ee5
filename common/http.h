// The plain-HTTP side of a daemon's port: GET routes next to the SOAP endpoint.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace rm::common {

struct HttpRequest {
    std::string method = "GET";
    std::string path;   // decoded path without query, e.g. "/reports/abc.xml"
    std::string query;  // raw text after '?', e.g. "wsdl"
    std::string accept;
    std::string clientAddress;
    std::string rangeHeader;  // raw "Range:" header, empty when absent
    std::string user, password;  // HTTP Basic credentials, empty when absent
    std::string peerIdentity;    // CN of the client's verified TLS certificate, empty when none
    std::string host;            // raw "Host:" header (already checked: one of our names), or empty
    std::string origin;          // raw "Origin:" header (already checked: our own), or empty
};

struct HttpResponse {
    int status = 200;
    std::string contentType = "text/plain; charset=utf-8";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;

    static HttpResponse text(int status, std::string body);
    static HttpResponse html(std::string body);
    static HttpResponse xml(std::string body);
};

class HttpRouter {
public:
    using Handler = std::function<HttpResponse(const HttpRequest&)>;

    void exact(std::string path, Handler handler);
    // Longest matching prefix wins after exact routes.
    void prefix(std::string prefix, Handler handler);

    HttpResponse route(const HttpRequest& request) const;

private:
    std::vector<std::pair<std::string, Handler>> exact_;
    std::vector<std::pair<std::string, Handler>> prefix_;
};

bool acceptsXmlOverHtml(const std::string& accept);

// The headers every response of our ports carries (pages, files, SOAP responses and faults):
// no MIME sniffing, no framing, no referrer, and a Content-Security-Policy that lets our pages
// use their inline <style> and style attributes and nothing else (no script, no form target).
const std::vector<std::pair<std::string, std::string>>& securityHeaders();
// The same as "Key: value" lines joined by CRLF, for gSOAP's http_extra_header.
const std::string& securityHeaderLines();

}  // namespace rm::common
