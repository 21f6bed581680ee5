#include "common/request_screen.h"

#include <boost/test/unit_test.hpp>
#include <string>
#include <vector>

using rm::common::RequestScreen;

namespace {

const std::string kHead = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n";

// Feeds `bytes` in blocks of `step` and returns what the parser would have been shown.
std::string feed(RequestScreen& screen, const std::string& bytes, size_t step) {
    std::string shown;
    for (size_t at = 0; at < bytes.size(); at += step) {
        std::string block = bytes.substr(at, step);
        size_t visible = screen.observe(block.data(), block.size());
        BOOST_TEST(visible <= block.size());
        shown += block.substr(0, visible);
        if (visible < block.size()) break;
    }
    return shown;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(request_screen)

BOOST_AUTO_TEST_CASE(counts_body_bytes_after_the_header_in_any_block_size) {
    for (size_t step : {1u, 2u, 3u, 5u, 7u, 64u, 4096u}) {
        RequestScreen screen;
        std::string request = kHead + "<a>12</a>";
        BOOST_TEST(feed(screen, request, step) == request);
        BOOST_TEST(screen.headerEnded());
        BOOST_TEST(screen.bodyBytes() == 9u, "block size " << step);
        BOOST_TEST(!screen.exhausted(10));
        BOOST_TEST(screen.exhausted(9));
        BOOST_TEST(!screen.exhausted(0), "unknown length (chunked) is never exhausted early");
    }
}

BOOST_AUTO_TEST_CASE(header_alone_has_no_body) {
    RequestScreen screen;
    std::string head = "POST / HTTP/1.1\r\nContent-Length: 4\r\n";
    feed(screen, head, 3);
    BOOST_TEST(!screen.headerEnded());
    BOOST_TEST(!screen.exhausted(4));
    feed(screen, "\r\n", 1);
    BOOST_TEST(screen.headerEnded());
    BOOST_TEST(screen.bodyBytes() == 0u);
}

BOOST_AUTO_TEST_CASE(doctype_is_cut_off_wherever_it_falls) {
    std::string body = "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"b\">]><x/>";
    std::string request = kHead + body;
    auto cut = request.find("<!DOCTYPE");
    for (size_t step : {1u, 2u, 4u, 8u, 9u, 10u, 13u, 4096u}) {
        RequestScreen screen;
        std::string shown = feed(screen, request, step);
        BOOST_TEST(screen.doctypeSeen(), "block size " << step);
        BOOST_TEST(shown.size() <= cut + 8, "no complete marker reaches the parser");
        BOOST_TEST(shown.find("<!DOCTYPE") == std::string::npos);
        BOOST_TEST(screen.exhausted(0));
        char more[] = "more";
        BOOST_TEST(screen.observe(more, 4) == 0u, "nothing after a DTD reaches the parser");
    }
}

BOOST_AUTO_TEST_CASE(doctype_text_in_the_header_or_in_content_is_judged_fairly) {
    RequestScreen screen;
    // Only the body is screened: a header value mentioning the marker is not a DTD.
    std::string request = "POST / HTTP/1.1\r\nX-Note: <!DOCTYPE\r\n\r\n<x>&lt;!DOCTYPE</x>";
    BOOST_TEST(feed(screen, request, 5) == request);
    BOOST_TEST(!screen.doctypeSeen());
}

BOOST_AUTO_TEST_CASE(reset_starts_a_new_request) {
    RequestScreen screen;
    feed(screen, kHead + "<!DOCTYPE x>", 4096);
    BOOST_TEST(screen.doctypeSeen());
    screen.reset();
    BOOST_TEST(!screen.doctypeSeen());
    BOOST_TEST(!screen.headerEnded());
    BOOST_TEST(screen.bodyBytes() == 0u);
    BOOST_TEST(feed(screen, kHead + "<x/>", 4096) == kHead + "<x/>");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(browser_header_checks)

using rm::common::authorityHost;
using rm::common::isOwnOrigin;
using rm::common::isServerName;
using rm::common::isSoapContentType;
using rm::common::normalizeServerName;

const std::vector<std::string> kNames{"localhost", "127.0.0.1", "::1", "rm.example.org"};

BOOST_AUTO_TEST_CASE(host_header_is_one_of_the_names_whatever_the_port_and_case) {
    BOOST_TEST(authorityHost("Example.COM.:8080") == "example.com");
    BOOST_TEST(authorityHost("[::1]:80") == "::1");
    BOOST_TEST(authorityHost("[0:0:0:0:0:0:0:1]") == "::1");
    for (const char* ok : {"127.0.0.1:8080", "127.0.0.1", "localhost", "LocalHost:1",
                           "[::1]:9000", "[::1]", "RM.example.org", "rm.example.org.:443",
                           "localhost:"}) {
        BOOST_TEST(isServerName(ok, kNames), ok);
    }
    for (const char* bad : {"evil.example", "evil.example:8080", "127.0.0.2:8080",
                            "localhost.evil.example", "::1", "[::1", "[::1]x", "127.0.0.1:99999",
                            "127.0.0.1:80a", "user@localhost", "localhost/x", "", " ",
                            "rm.example.org\r\nX: y", "[evil.example]:80", ".", "localhost..",
                            "[::1]:80:80", "localhost:-1"}) {
        BOOST_TEST(!isServerName(bad, kNames), bad);
    }
}

BOOST_AUTO_TEST_CASE(server_names_are_normalized) {
    BOOST_TEST(normalizeServerName("[::1]") == "::1");
    BOOST_TEST(normalizeServerName("0:0::1") == "::1");
    BOOST_TEST(normalizeServerName(" RM.Example.org. ") == "rm.example.org");
}

BOOST_AUTO_TEST_CASE(own_origin_is_scheme_name_and_our_port) {
    BOOST_TEST(isOwnOrigin("http://127.0.0.1:8080", kNames, 8080, "127.0.0.1:8080"));
    BOOST_TEST(isOwnOrigin("http://localhost:8080", kNames, 8080, ""));
    BOOST_TEST(isOwnOrigin("HTTP://[::1]:8080", kNames, 8080, "[::1]:8080"));
    BOOST_TEST(isOwnOrigin("https://rm.example.org", kNames, 443, "rm.example.org"));
    // Behind a proxy: the origin the browser saw is the host and port it asked for.
    BOOST_TEST(isOwnOrigin("https://rm.example.org", kNames, 8080, "rm.example.org"));
    BOOST_TEST(isOwnOrigin("http://rm.example.org:81", kNames, 8080, "rm.example.org:81"));

    BOOST_TEST(!isOwnOrigin("http://evil.example", kNames, 8080, "127.0.0.1:8080"));
    BOOST_TEST(!isOwnOrigin("http://evil.example:8080", kNames, 8080, "evil.example:8080"));
    BOOST_TEST(!isOwnOrigin("null", kNames, 8080, "127.0.0.1:8080"));
    BOOST_TEST(!isOwnOrigin("", kNames, 8080, "127.0.0.1:8080"));
    BOOST_TEST(!isOwnOrigin("file://", kNames, 8080, "127.0.0.1:8080"));
    BOOST_TEST(!isOwnOrigin("ftp://127.0.0.1:8080", kNames, 8080, "127.0.0.1:8080"));
    // Another service of the same machine (a different port) is another origin.
    BOOST_TEST(!isOwnOrigin("http://127.0.0.1:3000", kNames, 8080, "127.0.0.1:8080"));
    BOOST_TEST(!isOwnOrigin("http://localhost", kNames, 8080, "localhost:8080"));
    BOOST_TEST(!isOwnOrigin("http://127.0.0.1:8080/page", kNames, 8080, "127.0.0.1:8080"));
    BOOST_TEST(!isOwnOrigin("http://127.0.0.1.evil.example:8080", kNames, 8080, ""));
}

BOOST_AUTO_TEST_CASE(soap_content_types) {
    for (const char* ok : {"text/xml", "text/xml; charset=utf-8", "TEXT/XML;charset=UTF-8",
                           "application/soap+xml", " application/soap+xml ; action=\"urn:x\""}) {
        BOOST_TEST(isSoapContentType(ok), ok);
    }
    for (const char* bad : {"", "text/plain", "text/plain; x=text/xml",
                            "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                            "text/xml2", "text/xmlx; charset=utf-8", "application/xml",
                            "text/html"}) {
        BOOST_TEST(!isSoapContentType(bad), bad);
    }
}

BOOST_AUTO_TEST_SUITE_END()
