#include "common/request_screen.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <string_view>

namespace rm::common {

namespace {
constexpr std::string_view kHeaderEnd = "\r\n\r\n";
constexpr std::string_view kDoctype = "<!DOCTYPE";

// Where `marker` starts in `tail + block`, as an offset into the block (negative when it starts
// in the tail), or npos-like `size + 1` when absent.
long long findAcross(const std::string& tail, std::string_view block, std::string_view marker) {
    std::string joined = tail;
    joined.append(block.substr(0, std::min(block.size(), marker.size())));
    auto atJoin = joined.find(marker);
    if (atJoin != std::string::npos)
        return static_cast<long long>(atJoin) - static_cast<long long>(tail.size());
    auto inBlock = block.find(marker);
    if (inBlock != std::string_view::npos) return static_cast<long long>(inBlock);
    return static_cast<long long>(block.size()) + 1;
}

std::string keepTail(const std::string& tail, std::string_view block, size_t keep) {
    std::string joined = tail;
    joined.append(block.substr(block.size() - std::min(block.size(), keep)));
    if (joined.size() > keep) joined.erase(0, joined.size() - keep);
    return joined;
}
}  // namespace

void RequestScreen::reset() {
    headerEnded_ = false;
    doctypeSeen_ = false;
    bodyBytes_ = 0;
    tail_.clear();
}

bool RequestScreen::exhausted(uint64_t contentLength) const {
    return doctypeSeen_ || (headerEnded_ && contentLength > 0 && bodyBytes_ >= contentLength);
}

size_t RequestScreen::observe(const char* data, size_t size) {
    if (doctypeSeen_) return 0;
    std::string_view block(data, size);
    if (headerEnded_) return observeBody(data, size);
    auto at = findAcross(tail_, block, kHeaderEnd);
    if (at > static_cast<long long>(size)) {
        tail_ = keepTail(tail_, block, kHeaderEnd.size() - 1);
        return size;
    }
    headerEnded_ = true;
    tail_.clear();
    size_t bodyStart = static_cast<size_t>(at + static_cast<long long>(kHeaderEnd.size()));
    return bodyStart + observeBody(data + bodyStart, size - bodyStart);
}

size_t RequestScreen::observeBody(const char* data, size_t size) {
    std::string_view block(data, size);
    auto at = findAcross(tail_, block, kDoctype);
    if (at <= static_cast<long long>(size)) {
        doctypeSeen_ = true;
        size_t visible = at > 0 ? static_cast<size_t>(at) : 0;
        bodyBytes_ += visible;
        return visible;
    }
    tail_ = keepTail(tail_, block, kDoctype.size() - 1);
    bodyBytes_ += size;
    return size;
}

namespace {

std::string lower(std::string_view text) {
    std::string out(text);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// One spelling per IPv6 address ("0:0::1" and "::1" are the same host); empty when not one.
std::string canonicalIpv6(std::string_view text) {
    std::string literal(text);
    in6_addr v6{};
    char out[INET6_ADDRSTRLEN] = {};
    if (inet_pton(AF_INET6, literal.c_str(), &v6) != 1) return {};
    if (!inet_ntop(AF_INET6, &v6, out, sizeof out)) return {};
    return out;
}

std::string_view trim(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
    return text;
}

bool startsWithNoCase(std::string_view text, std::string_view prefix) {
    return text.size() >= prefix.size() && lower(text.substr(0, prefix.size())) == prefix;
}

struct Authority {
    std::string host;  // lower case, no brackets, no trailing dot; empty when malformed
    int port = -1;     // -1 when absent
};

// host [":" port] with host a name, an IPv4 address or a bracketed IPv6 address.
Authority parseAuthority(std::string_view text) {
    Authority a;
    std::string host;
    std::string_view rest;
    if (!text.empty() && text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string_view::npos) return a;
        rest = text.substr(close + 1);
        host = canonicalIpv6(text.substr(1, close - 1));
        if (host.empty()) return a;
    } else {
        auto colon = text.find(':');
        host = text.substr(0, colon);
        rest = colon == std::string_view::npos ? std::string_view() : text.substr(colon);
        for (char c : host) {
            if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_')
                return a;
        }
    }
    if (!rest.empty()) {
        if (rest.front() != ':' || rest.size() > 6) return a;
        rest.remove_prefix(1);
        if (!rest.empty()) {
            int port = 0;
            for (char c : rest) {
                if (c < '0' || c > '9') return a;
                port = port * 10 + (c - '0');
            }
            if (port > 65535) return a;
            a.port = port;
        }
    }
    host = lower(host);
    if (!host.empty() && host.back() == '.') host.pop_back();  // the root: "localhost."
    if (!host.empty() && host.back() == '.') return a;         // "a..": not a name
    a.host = std::move(host);
    return a;
}

bool listed(const std::string& host, const std::vector<std::string>& names) {
    return !host.empty() && std::find(names.begin(), names.end(), host) != names.end();
}

}  // namespace

std::string authorityHost(std::string_view authority) {
    return parseAuthority(trim(authority)).host;
}

std::string normalizeServerName(std::string_view name) {
    name = trim(name);
    if (name.size() >= 2 && name.front() == '[' && name.back() == ']')
        name = name.substr(1, name.size() - 2);
    std::string v6 = canonicalIpv6(name);
    if (!v6.empty()) return v6;
    std::string out = lower(name);
    if (!out.empty() && out.back() == '.') out.pop_back();
    return out;
}

bool isServerName(std::string_view hostHeader, const std::vector<std::string>& names) {
    return listed(authorityHost(hostHeader), names);
}

bool isOwnOrigin(std::string_view origin, const std::vector<std::string>& names, int port,
                 std::string_view hostHeader) {
    origin = trim(origin);
    int defaultPort = 0;
    if (startsWithNoCase(origin, "http://")) {
        defaultPort = 80;
        origin.remove_prefix(7);
    } else if (startsWithNoCase(origin, "https://")) {
        defaultPort = 443;
        origin.remove_prefix(8);
    } else {
        return false;  // "null" (sandboxed frames, file: pages, redirects) and other schemes
    }
    Authority own = parseAuthority(origin);
    if (!listed(own.host, names)) return false;
    int originPort = own.port < 0 ? defaultPort : own.port;
    if (originPort == port) return true;
    // Behind a proxy the browser's origin is the proxy's: the same host and port it asked for.
    Authority asked = parseAuthority(trim(hostHeader));
    if (asked.host.empty() || asked.host != own.host) return false;
    return (asked.port < 0 ? defaultPort : asked.port) == originPort;
}

bool isSoapContentType(std::string_view contentType) {
    auto media = lower(trim(contentType.substr(0, contentType.find(';'))));
    return media == "text/xml" || media == "application/soap+xml";
}

}  // namespace rm::common
