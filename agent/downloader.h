// Fetches a package archive over HTTP(S) into a local file, with timeouts and a size limit.
#pragma once

#include <Poco/Net/Context.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <stop_token>
#include <string>

namespace rm::common {
class FaultPoints;
}

namespace rm::agent {

struct DownloadOptions {
    std::chrono::milliseconds connectTimeout{10000};
    std::chrono::milliseconds ioTimeout{30000};  // per read: a stalled server fails the download
    std::uint64_t maxBytes = std::uint64_t{2} << 30;
    common::FaultPoints* faults = nullptr;  // agent.mid_download; nullptr: none
    // For https:// URLs (common/tls.h: the agent's key and CA); null: the system's CAs.
    Poco::Net::Context::Ptr tls;
    // When set, only URLs of this origin (scheme://host:port, the RM the node enrolled with) are
    // fetched, and over https the server's certificate must name `serverIdentity`.
    std::string onlyFrom;
    std::string serverIdentity;
};

// "scheme://host:port" of an http(s) URL, with the scheme's default port made explicit; empty
// when `url` is not one.
std::string originOf(const std::string& url);

// Writes the body of `url` (http:// or https://) to `target`, replacing it. Throws
// std::runtime_error saying what failed (connection, HTTP status, size, disk), and Interrupted
// (deploy_executor.h) when `stop` is requested. Redirects are not followed: the RM gives the
// exact URL of its repository.
void downloadFile(const std::string& url, const std::filesystem::path& target,
                  const DownloadOptions& options, std::stop_token stop);

}  // namespace rm::agent
