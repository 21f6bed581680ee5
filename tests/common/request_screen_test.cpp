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
