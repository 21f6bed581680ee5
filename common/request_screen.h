// Watches the bytes of one HTTP request as the SOAP engine reads them, for two things gSOAP does
// not do itself: refusing a document type declaration (SOAP 1.1 section 3, WS-I BP R1008: a
// SOAP message must not contain a DTD; gSOAP skips it instead) and ending the body where its
// Content-Length says, so an XML document that stops early is answered at once instead of after
// the read timeout.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

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

}  // namespace rm::common
