#include "common/request_screen.h"

#include <algorithm>
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

}  // namespace rm::common
