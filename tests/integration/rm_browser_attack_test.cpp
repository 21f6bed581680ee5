// Attacks a web page can run through the browser of someone who reaches the Resource Manager
// (SPEC section 10, "Browsers"): an HTML form posting a SOAP envelope (enctype="text/plain"
// makes one), a cross-origin fetch, DNS rebinding (a foreign Host); plus the response headers
// that keep our pages inert, and log lines an attacker cannot split. Each refused request
// changes nothing a caller can see.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <sstream>

#include "rm_test_helpers.h"

using namespace rm::testing;

namespace {

std::string hostPort(const std::string& url) {
    Poco::URI uri(url);
    return uri.getHost() + ":" + std::to_string(uri.getPort());
}

// A whole POST as a browser (or an attacker's script) would send it.
std::string post(const std::string& body, const std::vector<std::string>& headers) {
    std::string request = "POST / HTTP/1.1\r\n";
    for (const auto& h : headers) request += h + "\r\n";
    return request + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::string get(const std::string& path, const std::vector<std::string>& headers) {
    std::string request = "GET " + path + " HTTP/1.1\r\n";
    for (const auto& h : headers) request += h + "\r\n";
    return request + "Connection: close\r\n\r\n";
}

// The value of a response header (first one), "" when absent.
std::string header(const RawResult& r, const std::string& name) {
    std::string head = r.response.substr(0, r.response.find("\r\n\r\n"));
    std::string lowerHead = head, lowerName = name;
    std::transform(lowerHead.begin(), lowerHead.end(), lowerHead.begin(), ::tolower);
    std::transform(lowerName.begin(), lowerName.end(), lowerName.begin(), ::tolower);
    auto at = lowerHead.find("\r\n" + lowerName + ":");
    if (at == std::string::npos) return {};
    at += 2 + name.size() + 1;
    auto end = head.find("\r\n", at);
    std::string value = head.substr(at, end == std::string::npos ? std::string::npos : end - at);
    value.erase(0, value.find_first_not_of(' '));
    return value;
}

std::string disposeBody() {
    return envelope("<rm:DisposeScope><targetScope>" + kScope +
                    "</targetScope></rm:DisposeScope>");
}

std::vector<std::string> linesOf(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

size_t countOf(const std::string& text, const std::string& what) {
    size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
}

struct BrowserFixture {
    RmInstance rm;
    ScopeSnapshot before;
    BrowserFixture() {
        auto client = rm.client();
        waitClosed(*client,
                   client->addResources(plainRequest({{"GenericResource", "baseline-1"}})));
        before = snapshot(rm);
        BOOST_REQUIRE(before.resources.size() == 1u);
    }
    std::string host() const { return "Host: " + hostPort(rm.url()); }

    // Refused with `status` and a SOAP fault whose text contains `says`; nothing changed.
    RawResult expectRefused(const std::string& request, int status, const std::string& says) {
        auto r = rawExchange(rm.url(), request);
        BOOST_TEST(r.status == status, "answer: " << r.response.substr(0, 400));
        BOOST_TEST(r.body().find(":Fault>") != std::string::npos,
                   "no SOAP Fault in: " << r.body().substr(0, 300));
        BOOST_TEST(r.body().find(says) != std::string::npos,
                   "fault does not say '" << says << "': " << r.body().substr(0, 600));
        BOOST_TEST(rm.daemon().running());
        BOOST_TEST(snapshot(rm) == before);
        return r;
    }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(rm_browser_attack, BrowserFixture)

BOOST_AUTO_TEST_CASE(csrf_form_with_text_plain_is_refused_and_changes_nothing) {
    // What <form method=post enctype="text/plain" action="http://RM/"> sends from another site:
    // its one field is named and valued so that "name=value\r\n" is the envelope.
    const std::vector<std::string> form{host(), "Content-Type: text/plain",
                                        "Origin: http://evil.example",
                                        "Referer: http://evil.example/attack.html"};
    expectRefused(post(disposeBody() + "\r\n", form), 403, "Origin");
    expectRefused(post(envelope(addResourcesBody({{"GenericResource", "csrf-1"}})) + "\r\n", form),
                  403, "Origin");
    // Without the Origin (an old browser, a privacy extension): the content type alone refuses it,
    // with a fault that says what is accepted.
    for (const char* type : {"text/plain", "application/x-www-form-urlencoded",
                             "multipart/form-data; boundary=----x", "TEXT/PLAIN; charset=utf-8"}) {
        expectRefused(post(disposeBody(), {host(), std::string("Content-Type: ") + type}), 415,
                      "text/xml");
    }
    auto r = expectRefused(post(disposeBody(), {host()}), 415, "application/soap+xml");
    BOOST_TEST(header(r, "X-Content-Type-Options") == "nosniff");
    // The scope is still there, baseline resource and all.
    auto client = rm.client();
    BOOST_TEST(client->listResources().size() == 1u);
    auto log = rm.daemon().log();
    BOOST_TEST(log.find("event=request_refused peer=127.0.0.1 status=415") != std::string::npos);
    BOOST_TEST(log.find("event=request_refused peer=127.0.0.1 status=403") != std::string::npos);
    BOOST_TEST(log.find("DisposeScope") == std::string::npos, "a refused request was dispatched");
}

BOOST_AUTO_TEST_CASE(cross_origin_soap_post_is_refused_even_with_a_soap_content_type) {
    // fetch() with text/xml needs a CORS preflight; a script that gets one through (or a
    // plugin) still carries its Origin.
    const std::string body = envelope(addResourcesBody({{"GenericResource", "cors-1"}}));
    for (const char* origin : {"http://evil.example", "null", "http://127.0.0.1:1",
                               "https://evil.example"}) {
        expectRefused(post(body, {host(), "Content-Type: text/xml; charset=utf-8",
                                  std::string("Origin: ") + origin}),
                      403, "Origin");
    }
    // The preflight itself gets no CORS permission.
    auto preflight = rawExchange(
        rm.url(), "OPTIONS / HTTP/1.1\r\n" + host() +
                      "\r\nOrigin: http://evil.example\r\nAccess-Control-Request-Method: POST\r\n"
                      "Access-Control-Request-Headers: content-type\r\nConnection: close\r\n\r\n");
    BOOST_TEST(preflight.status == 403);
    BOOST_TEST(header(preflight, "Access-Control-Allow-Origin").empty());
    // A GET from another origin neither gets the page nor a CORS permission to read it.
    auto page = rawExchange(rm.url(), get("/", {host(), "Origin: http://evil.example"}));
    BOOST_TEST(page.status == 403);
    BOOST_TEST(header(page, "Access-Control-Allow-Origin").empty());
}

BOOST_AUTO_TEST_CASE(foreign_host_is_refused_dns_rebinding) {
    // After rebinding, evil.example resolves to the RM: the browser sends "Host: evil.example".
    for (const char* foreign : {"evil.example", "evil.example:80", "127.0.0.1.nip.io"}) {
        const std::string h = std::string("Host: ") + foreign;
        auto page = rawExchange(rm.url(), get("/", {h}));
        BOOST_TEST(page.status == 421, foreign << ": " << page.response.substr(0, 300));
        BOOST_TEST(page.body().find("<html") == std::string::npos, "the page was served");
        BOOST_TEST(page.body().find("baseline-1") == std::string::npos);
        auto metrics = rawExchange(rm.url(), get("/metrics", {h}));
        BOOST_TEST(metrics.status == 421);
        expectRefused(post(disposeBody(), {h, "Content-Type: text/xml; charset=utf-8"}), 421,
                      "Host");
        expectRefused(post(envelope(addResourcesBody({{"GenericResource", "rebound-1"}})),
                           {h, "Content-Type: text/xml; charset=utf-8",
                            "Origin: http://" + std::string(foreign)}),
                      421, "Host");
    }
    auto log = rm.daemon().log();
    BOOST_TEST(log.find("event=request_refused peer=127.0.0.1 status=421 method=GET path=/ "
                        "host=evil.example") != std::string::npos);
    BOOST_TEST(log.find("event=request_refused peer=127.0.0.1 status=421 host=evil.example") !=
               std::string::npos);
}

BOOST_AUTO_TEST_CASE(own_names_and_soap_content_types_work) {
    const std::string port = std::to_string(Poco::URI(rm.url()).getPort());
    int added = 0;
    auto expectAdded = [&](const std::vector<std::string>& headers) {
        std::string id = "ok-" + std::to_string(++added);
        auto r = rawExchange(rm.url(),
                             post(envelope(addResourcesBody({{"GenericResource", id}})), headers));
        BOOST_TEST(r.status == 200, "answer: " << r.response.substr(0, 600));
        BOOST_TEST(r.body().find("<reportID>") != std::string::npos);
        BOOST_TEST(header(r, "X-Content-Type-Options") == "nosniff");
        BOOST_TEST(header(r, "Access-Control-Allow-Origin").empty());
    };
    expectAdded({"Host: 127.0.0.1:" + port, "Content-Type: text/xml; charset=utf-8"});
    expectAdded({"Host: localhost:" + port, "Content-Type: TEXT/XML"});
    expectAdded({"Host: LOCALHOST", "Content-Type: application/soap+xml; charset=utf-8"});
    // Our own page's origin (a same-origin form or script).
    expectAdded({"Host: 127.0.0.1:" + port, "Content-Type: text/xml",
                 "Origin: http://127.0.0.1:" + port});
    // No Host at all (HTTP/1.0 clients): nothing for a browser to have rebound.
    auto old = rawExchange(rm.url(), "POST / HTTP/1.0\r\nContent-Type: text/xml\r\nContent-Length: " +
                                         std::to_string(envelope("<rm:ListNodes/>").size()) +
                                         "\r\n\r\n" + envelope("<rm:ListNodes/>"));
    BOOST_TEST(old.status == 200, old.response.substr(0, 400));
    auto client = rm.client();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (client->listResources().size() < 1u + added &&
           std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    BOOST_TEST(client->listResources().size() == 1u + added);
}

BOOST_AUTO_TEST_CASE(pages_carry_security_headers) {
    for (const std::string path : {"/", "/resources", "/metrics", "/healthz", "/no-such-page"}) {
        auto r = rawExchange(rm.url(), get(path, {host()}));
        BOOST_TEST_CONTEXT(path) {
            BOOST_TEST(r.status != 0);
            BOOST_TEST(header(r, "X-Content-Type-Options") == "nosniff");
            auto csp = header(r, "Content-Security-Policy");
            BOOST_TEST(csp.find("default-src 'none'") != std::string::npos, csp);
            BOOST_TEST(csp.find("frame-ancestors 'none'") != std::string::npos, csp);
            BOOST_TEST(csp.find("script-src") == std::string::npos, "no script is allowed");
            BOOST_TEST(header(r, "X-Frame-Options") == "DENY");
            BOOST_TEST(header(r, "Referrer-Policy") == "no-referrer");
            BOOST_TEST(countOf(r.response.substr(0, r.response.find("\r\n\r\n")),
                               "X-Frame-Options:") == 1u);
        }
    }
    // The page itself works under that policy: it uses inline styles only, no script.
    auto page = rawExchange(rm.url(), get("/", {host()}));
    BOOST_TEST(page.status == 200);
    BOOST_TEST(page.body().find("<script") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(log_injection_leaves_one_line_per_event) {
    const std::string forged = "ts=2026-01-01T00:00:00.000Z level=info component=resource-manager "
                               "event=session_closed exit=SUCCESS";
    auto countRefusals = [&] { return countOf(rm.daemon().log(), "event=request_refused"); };
    size_t refusedBefore = countRefusals();
    // A scope that is refused, and logged, with a newline, a carriage return, ESC and a C1 CSI.
    std::string scope = "/gcube/x\n" + forged + "\r\n\x1b[2J\x1b]0;owned\x07 \xc2\x9b" "31m";
    auto r = rawExchange(
        rm.url(),
        post(envelope(addResourcesBody({{"GenericResource", "inject-1"}}, scope)),
             {host(), "Content-Type: text/xml; charset=utf-8"}));
    BOOST_TEST(r.status >= 400);
    // And header values that get logged: ESC in an Origin, a Host.
    rawExchange(rm.url(), post(disposeBody(), {host(), "Content-Type: text/xml",
                                               "Origin: http://evil.example\x1b[31m"}));
    rawExchange(rm.url(), get("/", {"Host: evil.example\x1b]0;x\x07"}));
    BOOST_TEST(snapshot(rm) == before);

    std::string log = rm.daemon().log();
    BOOST_TEST(countRefusals() == refusedBefore + 3);
    for (const auto& line : linesOf(log)) {
        BOOST_TEST(line.rfind("ts=", 0) == 0u, "a line that is not an event: " << line);
        for (char c : line) {
            auto b = static_cast<unsigned char>(c);
            if (b < 0x20 || b == 0x7f) {
                BOOST_ERROR("raw control character " << int(b) << " in: " << line);
                break;
            }
        }
        BOOST_TEST(line.find("\xc2\x9b") == std::string::npos, line);
        BOOST_TEST(line.rfind("ts=2026-01-01T00:00:00.000Z", 0) != 0u,
                   "the forged event became a line of its own: " << line);
    }
    // The escaped text is there, on the refusal's own line, next to the peer.
    BOOST_TEST(log.find("\\n" + forged + "\\r\\n\\x1b[2J\\x1b]0;owned\\x07 \\xc2\\x9b31m") !=
               std::string::npos);
    BOOST_TEST(log.find("origin=\"http://evil.example\\x1b[31m\"") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
