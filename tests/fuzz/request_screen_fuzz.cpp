// libFuzzer target for the request screen (common/request_screen.h), which sees every byte a
// client sends to the SOAP port before gSOAP does: the HTTP header, then the body, cut into
// whatever blocks the network delivers. A client controls both the bytes and, by how it writes
// them, where the blocks split. The first input bytes choose the block sizes; the rest is the
// request. Beyond not crashing, the screen must give the same verdict for every split as a
// plain search over the whole request: the header ends at the first CRLFCRLF; the parser never
// sees a whole "<!DOCTYPE" of the body nor anything after it, and sees everything before it
// (when the marker straddles two blocks, the first block's part of it has necessarily been let
// through already: exactly that much); bodyBytes counts exactly the body bytes it let through,
// and reset() forgets the past.
// The header checks against browsers (Host, Origin, Content-Type) run on every header line too:
// they must agree with one another (a Host is ours exactly when its normalized host is one of
// the names; an own Origin names one of them over http or https; a SOAP content type is XML)
// and normalization must be stable.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <algorithm>
#include <cctype>

#include "common/request_screen.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using rm::fuzz::require;

constexpr std::string_view kDoctype = "<!DOCTYPE";

struct Expected {
    bool headerEnded = false;
    size_t bodyStart = 0;
    bool doctype = false;
    size_t doctypeAt = 0;  // where the first "<!DOCTYPE" of the body starts
};

Expected reference(std::string_view request) {
    Expected e;
    const size_t headerEnd = request.find("\r\n\r\n");
    if (headerEnd == std::string_view::npos) return e;
    e.headerEnded = true;
    e.bodyStart = headerEnd + 4;
    const size_t doctype = request.find(kDoctype, e.bodyStart);
    if (doctype != std::string_view::npos) {
        e.doctype = true;
        e.doctypeAt = doctype;
    }
    return e;
}

void screen(rm::common::RequestScreen& s, std::string_view request,
            const std::vector<size_t>& blocks, const Expected& expected) {
    size_t offset = 0;
    size_t visible = 0;
    size_t nextBlock = 0;
    bool stopped = false;
    // Without a DTD the parser sees everything; with one, everything before the block that
    // completes the marker, and of that block what precedes the marker.
    size_t expectedVisible = request.size();
    const size_t markerEnd = expected.doctypeAt + kDoctype.size();
    while (offset < request.size()) {
        size_t n = blocks.empty() ? request.size() : blocks[nextBlock++ % blocks.size()];
        n = std::min(n, request.size() - offset);
        if (expected.doctype && offset < markerEnd && markerEnd <= offset + n)
            expectedVisible = std::max(expected.doctypeAt, offset);
        const size_t seen = s.observe(request.data() + offset, n);
        require(seen <= n, "observe() let through more than it was given");
        if (stopped) require(seen == 0, "bytes let through after a DTD");
        // The parser sees a prefix of the request: once a block is cut short, nothing follows.
        if (seen < n) stopped = true;
        visible += seen;
        offset += n;
    }
    require(visible == expectedVisible, "the parser sees a different prefix than expected");
    require(!expected.doctype || visible < markerEnd, "the parser saw a whole <!DOCTYPE");
    require(s.headerEnded() == expected.headerEnded, "header end misjudged");
    require(s.doctypeSeen() == expected.doctype, "DTD misjudged");
    const uint64_t bodyBytes = expected.headerEnded ? visible - expected.bodyStart : 0;
    require(s.bodyBytes() == bodyBytes, "body bytes miscounted");
    // exhausted(): a DTD ends the input at once; otherwise a known length ends it.
    require(s.exhausted(0) == expected.doctype, "exhausted() without a length");
    if (expected.headerEnded && !expected.doctype) {
        require(s.exhausted(bodyBytes + 1) == false, "ended before Content-Length");
        if (bodyBytes > 0) require(s.exhausted(bodyBytes), "did not end at Content-Length");
    }
}

std::string lowered(std::string_view text) {
    std::string out(text);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

void checkHeaderValue(std::string_view value) {
    using namespace rm::common;
    static const std::vector<std::string> names{"localhost", "127.0.0.1", "::1", "rm.example.org"};
    const std::string host = authorityHost(value);
    for (char c : host) {
        const auto b = static_cast<unsigned char>(c);
        require(b > 0x20 && b < 0x7f && c != '[' && c != ']' && c != '/' && c != '@',
                "authorityHost() let a bad character through");
        require(!std::isupper(b), "authorityHost() is not lower case");
    }
    require(normalizeServerName(host) == host, "a host is not stable under normalization");
    const bool listed =
        !host.empty() && std::find(names.begin(), names.end(), host) != names.end();
    require(isServerName(value, names) == listed, "isServerName() disagrees with authorityHost()");
    if (isOwnOrigin(value, names, 8080, value)) {
        const std::string origin = lowered(value);
        const size_t start = origin.find("://");
        require(start != std::string::npos, "an own origin without a scheme");
        const std::string scheme = origin.substr(0, start);
        require(scheme.find("http") != std::string::npos, "an own origin that is not http(s)");
        const std::string rest(value.substr(start + 3));
        require(isServerName(rest, names), "an own origin whose host is not ours");
    }
    if (isSoapContentType(value)) {
        require(lowered(value).find("xml") != std::string::npos, "a SOAP content type without xml");
    }
}

// Every header line's value, as gSOAP hands it to the header callback.
void checkHeaderLines(std::string_view request) {
    const size_t end = request.find("\r\n\r\n");
    std::string_view head = request.substr(0, end);
    while (!head.empty()) {
        const size_t eol = head.find("\r\n");
        std::string_view line = head.substr(0, eol);
        const size_t colon = line.find(':');
        if (colon != std::string_view::npos) {
            std::string_view value = line.substr(colon + 1);
            while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
            checkHeaderValue(value);
        }
        if (eol == std::string_view::npos) break;
        head.remove_prefix(eol + 2);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    // First byte: how many block sizes follow (0-7); each is one byte (+1), cycled.
    const size_t count = std::min<size_t>(data[0] & 7u, size - 1);
    std::vector<size_t> blocks;
    for (size_t i = 0; i < count; ++i) blocks.push_back(size_t{data[1 + i]} + 1);
    const std::string_view request(reinterpret_cast<const char*>(data) + 1 + count,
                                   size - 1 - count);
    const Expected expected = reference(request);

    rm::common::RequestScreen s;
    screen(s, request, blocks, expected);
    // One connection serves several requests: after reset() the verdict must not change,
    // whatever the previous request left behind; and byte-at-a-time must agree too.
    s.reset();
    screen(s, request, {1}, expected);
    s.reset();
    screen(s, request, {}, expected);
    checkHeaderLines(request);
    return 0;
}
