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

}  // namespace rm::common
