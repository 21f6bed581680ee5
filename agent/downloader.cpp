#include "agent/downloader.h"

#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/X509Certificate.h>
#include <Poco/URI.h>

#include <fstream>
#include <memory>

#include "agent/deploy_executor.h"
#include "common/fault_points.h"
#include "common/tls.h"

namespace rm::agent {

namespace {
Poco::Timespan span(std::chrono::milliseconds ms) {
    return Poco::Timespan(ms.count() * 1000);
}
}  // namespace

void downloadFile(const std::string& url, const std::filesystem::path& target,
                  const DownloadOptions& options, std::stop_token stop) {
    Poco::URI uri;
    try {
        uri = Poco::URI(url);
    } catch (const std::exception& e) {
        throw std::runtime_error("download URL '" + url + "' is not a URL: " + e.what());
    }
    if (!options.onlyFrom.empty() && originOf(url) != options.onlyFrom) {
        throw std::runtime_error("download URL '" + url.substr(0, 200) +
                                 "' refused: this node downloads only from the Resource Manager it "
                                 "enrolled with (" +
                                 options.onlyFrom + ")");
    }
    std::unique_ptr<Poco::Net::HTTPClientSession> session;
    if (uri.getScheme() == "https") {
        Poco::Net::Context::Ptr context =
            options.tls ? options.tls : common::makeTlsClientContext({});
        session =
            std::make_unique<Poco::Net::HTTPSClientSession>(uri.getHost(), uri.getPort(), context);
    } else if (uri.getScheme() == "http") {
        session = std::make_unique<Poco::Net::HTTPClientSession>(uri.getHost(), uri.getPort());
    } else {
        throw std::runtime_error("download URL '" + url + "' is neither http:// nor https://");
    }
    session->setTimeout(span(options.connectTimeout), span(options.ioTimeout),
                        span(options.ioTimeout));
    try {
        Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_GET, uri.getPathAndQuery(),
                                       Poco::Net::HTTPMessage::HTTP_1_1);
        session->sendRequest(request);
        if (!options.serverIdentity.empty()) {
            auto* secure = dynamic_cast<Poco::Net::HTTPSClientSession*>(session.get());
            std::string presented = secure ? secure->serverCertificate().commonName() : "";
            if (presented != options.serverIdentity) {
                throw std::runtime_error("download of " + url + " refused: the server presented '" +
                                         presented.substr(0, 128) + "', not '" +
                                         options.serverIdentity + "'");
            }
        }
        Poco::Net::HTTPResponse response;
        std::istream& body = session->receiveResponse(response);
        if (response.getStatus() != Poco::Net::HTTPResponse::HTTP_OK) {
            throw std::runtime_error("download of " + url + " failed: HTTP " +
                                     std::to_string(response.getStatus()) + " " +
                                     response.getReason());
        }
        if (response.hasContentLength() &&
            static_cast<std::uint64_t>(response.getContentLength64()) > options.maxBytes) {
            throw std::runtime_error("download of " + url +
                                     " refused: " + std::to_string(response.getContentLength64()) +
                                     " bytes is more than the limit of " +
                                     std::to_string(options.maxBytes));
        }
        std::filesystem::create_directories(target.parent_path());
        std::ofstream out(target, std::ios::binary | std::ios::trunc);
        if (!out)
            throw std::runtime_error("cannot write " + target.string() +
                                     " (is the disk full or read-only?)");
        std::uint64_t total = 0;
        char buffer[64 * 1024];
        while (body) {
            if (stop.stop_requested()) throw Interrupted();
            body.read(buffer, sizeof buffer);
            std::streamsize n = body.gcount();
            if (n <= 0) break;
            total += static_cast<std::uint64_t>(n);
            if (total > options.maxBytes) {
                throw std::runtime_error("download of " + url + " stopped: more than " +
                                         std::to_string(options.maxBytes) + " bytes");
            }
            out.write(buffer, n);
            // After the first block: a crash here leaves a partial download behind.
            if (total == static_cast<std::uint64_t>(n))
                common::checkFault(options.faults, "agent.mid_download");
        }
        if (body.bad())
            throw std::runtime_error("download of " + url + " broke off after " +
                                     std::to_string(total) + " bytes");
        if (response.hasContentLength() &&
            total != static_cast<std::uint64_t>(response.getContentLength64())) {
            throw std::runtime_error("download of " + url +
                                     " is incomplete: " + std::to_string(total) + " of " +
                                     std::to_string(response.getContentLength64()) + " bytes");
        }
        out.flush();
        if (!out)
            throw std::runtime_error("cannot write " + target.string() + " (is the disk full?)");
    } catch (const Poco::Exception& e) {
        throw std::runtime_error("download of " + url + " failed: " + e.displayText());
    }
}

std::string originOf(const std::string& url) {
    try {
        Poco::URI uri(url);
        if (uri.getScheme() != "http" && uri.getScheme() != "https") return {};
        if (uri.getHost().empty()) return {};
        std::string host = uri.getHost();
        if (host.find(':') != std::string::npos) host = "[" + host + "]";
        return uri.getScheme() + "://" + host + ":" + std::to_string(uri.getPort());
    } catch (const std::exception&) {
        return {};
    }
}

}  // namespace rm::agent
