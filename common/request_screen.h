// Watches the bytes of one HTTP request as the SOAP engine reads them, for two things gSOAP does
// not do itself: refusing a document type declaration (SOAP 1.1 section 3, WS-I BP R1008: a
// SOAP message must not contain a DTD; gSOAP skips it instead) and ending the body where its
// Content-Length says, so an XML document that stops early is answered at once instead of after
// the read timeout.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rm::common {

class RequestScreen {
  public:
    // Forget everything: a new request starts.
    void reset();

    // True when the body announced by `contentLength` (0 = unknown, e.g. chunked) has fully
    // arrived, or a DTD was seen: the reader must report end of input instead of waiting.
    bool exhausted(uint64_t contentLength) const;

    // Called with each block read from the connection; returns how many of its bytes the parser
    // may see (fewer when a DTD starts inside the block: the parser stops before it).
    size_t observe(const char* data, size_t size);

    bool doctypeSeen() const { return doctypeSeen_; }
    bool headerEnded() const { return headerEnded_; }
    uint64_t bodyBytes() const { return bodyBytes_; }

  private:
    size_t observeBody(const char* data, size_t size);

    bool headerEnded_ = false;
    bool doctypeSeen_ = false;
    uint64_t bodyBytes_ = 0;
    std::string tail_;  // last bytes of the previous block: markers may straddle two reads
};

// Header checks against browsers (SPEC section 10): a web page can make a browser send a
// request to our port (an HTML form, fetch(), DNS rebinding), but it cannot choose a SOAP
// content type without a CORS preflight, nor forge the Origin and Host headers.

// "Example.COM.:8080" -> "example.com", "[::1]:80" -> "::1": the lower-case host of an HTTP
// authority, without brackets, port or one trailing dot; empty when malformed (a bad character,
// a bad port, a user part, unbalanced brackets).
std::string authorityHost(std::string_view authority);

// A name as ServerOptions::serverNames holds it, lower case, brackets removed.
std::string normalizeServerName(std::string_view name);

// True when the Host header names one of `names` (normalized), whatever its port.
bool isServerName(std::string_view hostHeader, const std::vector<std::string>& names);

// True when `origin` (the Origin header) is the service's own: http or https, a host in
// `names`, and either `port` (the port we listen on; the scheme's default when absent) or the
// very host and port the request's Host header names (behind a proxy). "null" is never ours.
bool isOwnOrigin(std::string_view origin, const std::vector<std::string>& names, int port,
                 std::string_view hostHeader);

// True for `text/xml` and `application/soap+xml`, in any case, with or without parameters.
bool isSoapContentType(std::string_view contentType);

}  // namespace rm::common
