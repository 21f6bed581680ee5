#include "common/soap_server.h"

#include "common/pki.h"
#include "common/request_screen.h"
#include "common/tls.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <string_view>

#include <stdexcept>

namespace rm::common {

struct SoapServer::WorkerContext {
    SoapServer* server = nullptr;
    std::unique_ptr<SoapEndpoint> endpoint;
    std::thread thread;
    std::mutex socketMutex;  // guards `active` against reuse while stop() shuts it down
    SOAP_SOCKET active = SOAP_INVALID_SOCKET;
    std::string peer;
    // Per-request headers gSOAP does not keep for us (cleared before each request).
    std::string accept;
    std::string range;
    std::string host;
    std::string origin;
    std::string contentType;
    int hostHeaders = 0;
    int originHeaders = 0;
    void clearRequestHeaders() {
        accept.clear();
        range.clear();
        host.clear();
        origin.clear();
        contentType.clear();
        hostHeaders = originHeaders = 0;
    }
    int (*defaultParseHeader)(struct soap*, const char*, const char*) = nullptr;
    size_t (*defaultRecv)(struct soap*, char*, size_t) = nullptr;
    RequestScreen screen;
};

void parseListen(const std::string& listen, ServerOptions& options) {
    auto colon = listen.rfind(':');
    if (colon == std::string::npos || colon + 1 == listen.size()) {
        throw std::runtime_error("listen address '" + listen +
                                 "' must be HOST:PORT, e.g. 127.0.0.1:8080");
    }
    std::string host = listen.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    int port = 0;
    try {
        size_t used = 0;
        port = std::stoi(listen.substr(colon + 1), &used);
        if (used != listen.size() - colon - 1) throw std::invalid_argument("junk");
    } catch (const std::exception&) {
        throw std::runtime_error("listen address '" + listen + "' has an invalid port");
    }
    if (port < 0 || port > 65535)
        throw std::runtime_error("listen port out of range in '" + listen + "'");
    options.host = host.empty() ? "0.0.0.0" : host;
    options.port = port;
}

namespace {

bool isWildcardHost(const std::string& host) {
    return host.empty() || host == "0.0.0.0" || host == "::" || host == "[::]";
}

// This machine's host name and canonical name, looked up once per process (the lookup may ask
// DNS; hollow agents start hundreds of servers).
const std::vector<std::string>& machineNames() {
    static const std::vector<std::string> names = [] {
        std::vector<std::string> out;
        char name[256] = {};
        if (::gethostname(name, sizeof name - 1) != 0 || !*name) return out;
        out.emplace_back(name);
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_flags = AI_CANONNAME;
        addrinfo* found = nullptr;
        if (::getaddrinfo(name, nullptr, &hints, &found) == 0 && found) {
            if (found->ai_canonname && *found->ai_canonname) out.emplace_back(found->ai_canonname);
            ::freeaddrinfo(found);
        }
        return out;
    }();
    return names;
}

std::vector<std::string> interfaceAddresses() {
    std::vector<std::string> out;
    ifaddrs* list = nullptr;
    if (::getifaddrs(&list) != 0) return out;
    for (ifaddrs* i = list; i; i = i->ifa_next) {
        if (!i->ifa_addr) continue;
        char text[INET6_ADDRSTRLEN] = {};
        if (i->ifa_addr->sa_family == AF_INET) {
            auto* in = reinterpret_cast<sockaddr_in*>(i->ifa_addr);
            if (inet_ntop(AF_INET, &in->sin_addr, text, sizeof text)) out.emplace_back(text);
        } else if (i->ifa_addr->sa_family == AF_INET6) {
            auto* in6 = reinterpret_cast<sockaddr_in6*>(i->ifa_addr);
            if (inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text)) out.emplace_back(text);
        }
    }
    ::freeifaddrs(list);
    return out;
}

std::string shown(const std::string& value) {
    return value.size() > 100 ? value.substr(0, 100) + "..." : value;
}

}  // namespace

std::vector<std::string> defaultServerNames(const std::string& listenHost) {
    std::vector<std::string> names;
    auto add = [&names](const std::string& name) {
        std::string n = normalizeServerName(name);
        if (!n.empty() && std::find(names.begin(), names.end(), n) == names.end())
            names.push_back(std::move(n));
    };
    add(listenHost);  // a wildcard too: an IP literal cannot be rebound to another server
    for (const char* loopback : {"localhost", "127.0.0.1", "::1"}) add(loopback);
    for (const auto& name : machineNames()) add(name);
    if (isWildcardHost(listenHost)) {
        for (const auto& address : interfaceAddresses()) add(address);
    }
    return names;
}

void applyXmlLimits(struct soap* soap, const ServerOptions& options) {
    soap_set_imode(soap, SOAP_XML_STRICT | SOAP_C_UTFSTRING | SOAP_IO_KEEPALIVE);
    soap_set_omode(soap, SOAP_C_UTFSTRING | SOAP_IO_KEEPALIVE);
    soap->recv_timeout = static_cast<int>(options.ioTimeout.count());
    soap->send_timeout = static_cast<int>(options.ioTimeout.count());
    soap->connect_timeout = static_cast<int>(options.ioTimeout.count());
    soap->transfer_timeout = static_cast<int>(options.transferTimeout.count());
    soap->recv_maxlength = options.maxMessageBytes;
    soap->maxlevel = options.maxDepth;
    soap->maxoccurs = options.maxOccurs;
    soap->max_keep_alive = 1000;
}

namespace {

SoapServer::WorkerContext& workerOf(struct soap* soap) {
    return *static_cast<SoapServer::WorkerContext*>(soap->user);
}

int onGet(struct soap* soap) {
    return workerOf(soap).server->handleHttp(soap, workerOf(soap), "GET");
}

int onHead(struct soap* soap) {
    return workerOf(soap).server->handleHttp(soap, workerOf(soap), "HEAD");
}

int onOptions(struct soap* soap) {
    return workerOf(soap).server->handleHttp(soap, workerOf(soap), "OPTIONS");
}

int onDelete(struct soap* soap) {
    return workerOf(soap).server->handleHttp(soap, workerOf(soap), "DELETE");
}

size_t onRecv(struct soap* soap, char* buffer, size_t size) {
    auto& worker = workerOf(soap);
    // Reporting end of input makes the parser stop; the serve loop then names the reason.
    if (worker.screen.exhausted(soap->length)) return 0;
    return worker.screen.observe(buffer, worker.defaultRecv(soap, buffer, size));
}

int onHeader(struct soap* soap, const char* key, const char* value) {
    auto& worker = workerOf(soap);
    if (!soap_tag_cmp(key, "Accept")) {
        worker.accept = value ? value : "";
    } else if (!soap_tag_cmp(key, "Range")) {
        worker.range = value ? value : "";
    } else if (!soap_tag_cmp(key, "Host")) {
        worker.host = value ? value : "";
        ++worker.hostHeaders;
    } else if (!soap_tag_cmp(key, "Origin")) {
        worker.origin = value ? value : "";
        ++worker.originHeaders;
    } else if (!soap_tag_cmp(key, "Content-Type")) {
        worker.contentType = value ? value : "";
    }
    return worker.defaultParseHeader(soap, key, value);
}

std::string percentDecode(const std::string& in) {
    std::string out;
    out.reserve(in.size());
    for (size_t i = 0; i < in.size(); ++i) {
        if (in[i] == '%' && i + 2 < in.size() &&
            std::isxdigit(static_cast<unsigned char>(in[i + 1])) &&
            std::isxdigit(static_cast<unsigned char>(in[i + 2]))) {
            out += static_cast<char>(std::stoi(in.substr(i + 1, 2), nullptr, 16));
            i += 2;
        } else {
            out += in[i];
        }
    }
    return out;
}

}  // namespace

SoapServer::SoapServer(ServerOptions options, std::unique_ptr<SoapEndpoint> prototype,
                       HttpRouter router, Logger& logger)
    : options_(std::move(options)),
      prototype_(std::move(prototype)),
      router_(std::move(router)),
      logger_(logger) {}

SoapServer::~SoapServer() {
    stop();
}

std::string SoapServer::url() const {
    std::string host = options_.host == "0.0.0.0" ? "127.0.0.1" : options_.host;
    if (host.find(':') != std::string::npos) host = "[" + host + "]";
    return std::string(options_.tls.enabled() ? "https" : "http") + "://" + host + ":" +
           std::to_string(port_);
}

ServerStats SoapServer::stats() const {
    return {connections_.load(), httpGets_.load(), rejected_.load()};
}

void SoapServer::start() {
    names_.clear();
    for (const auto& name :
         options_.serverNames.empty() ? defaultServerNames(options_.host) : options_.serverNames) {
        std::string n = normalizeServerName(name);
        if (!n.empty()) names_.push_back(std::move(n));
    }
    struct soap* master = prototype_->context();
    applyXmlLimits(master, options_);
    master->bind_flags = SO_REUSEADDR;
    master->accept_timeout = -200000;  // microseconds: wake up to notice stop()
    if (options_.tls.enabled()) {
        int flags = SOAP_SSL_DEFAULT | SOAP_TLSv1_2 | SOAP_TLSv1_3;
        if (options_.tls.requireClientCertificate) flags |= SOAP_SSL_REQUIRE_CLIENT_AUTHENTICATION;
        if (soap_ssl_server_context(
                master, flags, options_.tls.keyFile.c_str(),
                options_.tls.password.empty() ? nullptr : options_.tls.password.c_str(),
                options_.tls.caFile.empty() ? nullptr : options_.tls.caFile.c_str(), nullptr,
                nullptr, nullptr, nullptr)) {
            char buf[512];
            soap_sprint_fault(master, buf, sizeof buf);
            throw std::runtime_error("TLS setup failed (check --tls-key/--tls-ca files): " +
                                     std::string(buf));
        }
    }
    if (!soap_valid_socket(soap_bind(master, options_.host.c_str(), options_.port, 128))) {
        char buf[512];
        soap_sprint_fault(master, buf, sizeof buf);
        throw std::runtime_error("cannot listen on " + options_.host + ":" +
                                 std::to_string(options_.port) + ": " + buf +
                                 " (is the port already in use?)");
    }
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    getsockname(master->master, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port
                                             : reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
    running_ = true;
    for (int i = 0; i < std::max(1, options_.threads); ++i) {
        auto worker = std::make_unique<WorkerContext>();
        worker->server = this;
        worker->endpoint = prototype_->clone();
        struct soap* soap = worker->endpoint->context();
        soap->user = worker.get();
        soap->fget = onGet;
        soap->fhead = onHead;
        soap->fopt = onOptions;
        soap->fdel = onDelete;
        soap->x_frame_options = nullptr;  // ours (DENY) comes with securityHeaders()
        // gSOAP answers any Origin with `Access-Control-Allow-Origin: *` unless told otherwise;
        // cross-origin requests are refused instead, and no response invites a page to read it.
        soap->cors_allow = nullptr;
        worker->defaultParseHeader = soap->fparsehdr;
        soap->fparsehdr = onHeader;
        worker->defaultRecv = soap->frecv;
        soap->frecv = onRecv;
        worker->thread = std::thread([this, w = worker.get()] { workerLoop(*w); });
        workers_.push_back(std::move(worker));
    }
    acceptor_ = std::thread([this] { acceptLoop(); });
    std::string names;
    for (const auto& n : names_) names += (names.empty() ? "" : ",") + n;
    Log(logger_, LogLevel::info, "listening")
        .kv("url", url())
        .kv("threads", options_.threads)
        .kv("server_names", names);
}

void SoapServer::acceptLoop() {
    struct soap* master = prototype_->context();
    while (running_) {
        SOAP_SOCKET s = soap_accept(master);
        if (!soap_valid_socket(s)) {
            if (master->errnum && running_) {
                Log(logger_, LogLevel::warn, "accept_failed").kv("errno", master->errnum);
            }
            continue;
        }
        std::string peer = master->host;
        std::unique_lock lock(queueMutex_);
        if (queue_.size() >= options_.maxQueuedConnections) {
            lock.unlock();
            ++rejected_;
            ::close(s);
            continue;
        }
        queue_.emplace_back(s, std::move(peer));
        lock.unlock();
        queueReady_.notify_one();
    }
}

void SoapServer::workerLoop(WorkerContext& worker) {
    struct soap* soap = worker.endpoint->context();
    for (;;) {
        std::pair<SOAP_SOCKET, std::string> next;
        {
            std::unique_lock lock(queueMutex_);
            queueReady_.wait(lock, [&] { return !running_ || !queue_.empty(); });
            if (queue_.empty()) return;  // stopping and nothing left
            next = std::move(queue_.front());
            queue_.pop_front();
        }
        {
            std::lock_guard guard(worker.socketMutex);
            worker.active = next.first;
            worker.peer = next.second;
        }
        ++connections_;
        soap->socket = next.first;
        // The peer's address, as soap_accept() set it on the master context (callers log it and
        // the login rate limit is kept per peer).
        size_t hostLength = std::min(next.second.size(), sizeof soap->host - 1);
        std::memcpy(soap->host, next.second.data(), hostLength);
        soap->host[hostLength] = '\0';
        if (!options_.tls.enabled() || soap_ssl_accept(soap) == SOAP_OK) {
            serveConnection(worker);
        } else {
            Log(logger_, LogLevel::warn, "tls_handshake_failed").kv("peer", next.second);
        }
        worker.endpoint->cleanup();
        std::lock_guard guard(worker.socketMutex);
        // The connection is over whatever gSOAP thinks of keep-alive: closing it here must not
        // leave the socket open (a kept-alive socket forgotten below would leak forever).
        soap->keep_alive = 0;
        soap_closesock(soap);
        if (soap_valid_socket(soap->socket)) soap_force_closesock(soap);
        soap->socket = SOAP_INVALID_SOCKET;
        worker.active = SOAP_INVALID_SOCKET;
    }
}

void SoapServer::serveConnection(WorkerContext& worker) {
    struct soap* soap = worker.endpoint->context();
    soap->keep_alive = soap->max_keep_alive + 1;
    do {
        if (soap->keep_alive > 0 && soap->max_keep_alive > 0) soap->keep_alive--;
        worker.screen.reset();
        worker.clearRequestHeaders();
        soap->status = 0;  // set again once a request line arrives
        soap_begin(soap);
        int received = soap_begin_recv(soap);
        bool requestStarted =
            soap->status == SOAP_POST || soap->status == SOAP_PUT || soap->status == SOAP_PATCH;
        if (requestStarted && worker.screen.headerEnded()) {
            // Before a byte of the body is parsed: a browser-made request is never dispatched.
            Refusal refusal = screenHeaders(worker, true);
            if (!refusal.reason.empty()) {
                if (received == SOAP_OK) soap_http_skip_body(soap);  // read, so closing is clean
                refuseRequest(soap, worker, refusal);
                return;
            }
        }
        soap->http_extra_header = securityHeaderLines().c_str();
        if (received || soap_envelope_begin_in(soap) || soap_recv_header(soap) ||
            soap_body_begin_in(soap)) {
            if (!requestStarted) {
                // A GET was answered (SOAP_STOP and above), or an idle keep-alive connection ended.
                if (soap->error >= SOAP_STOP && soap->error != SOAP_POST) continue;
                soap_closesock(soap);
                return;
            }
            refuseMalformedRequest(soap, worker);
            return;
        }
        if (worker.endpoint->dispatch() && soap->error && soap->error < SOAP_STOP) {
            refuseMalformedRequest(soap, worker);
            return;
        }
        // Free what this request allocated before the next one on the same connection.
        soap_destroy(soap);
        soap_end(soap);
    } while (soap->keep_alive);
}

void SoapServer::refuseMalformedRequest(struct soap* soap, WorkerContext& worker) {
    int error = soap->error;
    // gSOAP stays silent on a request that ends early (it assumes the peer left), and
    // reports some malformed POSTs as a bare HTTP status; the peer is still there waiting, so
    // it gets a fault that says what was wrong.
    if (worker.screen.doctypeSeen()) {
        soap_sender_fault(soap, "a SOAP message must not contain a document type declaration (DTD)",
                          nullptr);
    } else if (error == SOAP_EOF || error >= SOAP_STOP ||
               (error == SOAP_NO_TAG && worker.screen.exhausted(soap->length))) {
        soap_sender_fault(soap,
                          "the request ended before a complete SOAP envelope: it is truncated or "
                          "not XML",
                          nullptr);
    }
    const char** reason = soap_faultstring(soap);
    Log(logger_, LogLevel::info, "request_refused")
        .kv("peer", worker.peer)
        .kv("gsoap_error", error)
        .kv("reason", reason && *reason ? *reason : "");
    soap->http_extra_header = securityHeaderLines().c_str();
    soap_send_fault(soap);
}

SoapServer::Refusal SoapServer::screenHeaders(const WorkerContext& worker, bool soapRequest) const {
    // No Host header at all (HTTP/1.0, some scripts) is fine: browsers always send one.
    if (worker.hostHeaders > 1) return {400, "the request has more than one Host header"};
    if (worker.hostHeaders == 1 && !worker.host.empty() && !isServerName(worker.host, names_)) {
        return {421, "Host '" + shown(worker.host) +
                         "' is not a name of this service (refused: DNS rebinding defence)"};
    }
    if (worker.originHeaders > 1) return {403, "the request has more than one Origin header"};
    if (worker.originHeaders == 1 && !isOwnOrigin(worker.origin, names_, port_, worker.host)) {
        return {403, "cross-origin request refused: Origin '" + shown(worker.origin) +
                         "' is not this service's own"};
    }
    if (soapRequest && !isSoapContentType(worker.contentType)) {
        return {415,
                "a SOAP request needs Content-Type text/xml (SOAP 1.1) or "
                "application/soap+xml (SOAP 1.2), not '" +
                    shown(worker.contentType) + "'"};
    }
    return {};
}

void SoapServer::refuseRequest(struct soap* soap, WorkerContext& worker, const Refusal& refusal) {
    Log(logger_, LogLevel::info, "request_refused")
        .kv("peer", worker.peer)
        .kv("status", refusal.status)
        .kv("host", worker.host)
        .kv("origin", worker.origin)
        .kv("reason", refusal.reason);
    if (soap->version == 0) soap->version = 1;  // no envelope was read: answer in SOAP 1.1
    soap_sender_fault(soap, refusal.reason.c_str(), nullptr);
    soap->error = refusal.status;  // the HTTP status of the fault's response
    soap->keep_alive = 0;
    soap->http_extra_header = securityHeaderLines().c_str();
    soap_send_fault(soap);
}

int SoapServer::handleHttp(struct soap* soap, WorkerContext& worker, const std::string& method) {
    ++httpGets_;
    Refusal refusal = screenHeaders(worker, false);
    HttpRequest request;
    request.method = method == "HEAD" ? "GET" : method;
    std::string raw = soap->path;
    auto q = raw.find('?');
    request.path = percentDecode(raw.substr(0, q));
    if (q != std::string::npos) request.query = raw.substr(q + 1);
    if (request.path.empty()) request.path = "/";
    request.accept = worker.accept;
    request.rangeHeader = worker.range;
    request.clientAddress = worker.peer;
    request.peerIdentity = common::verifiedPeerIdentity(soap);
    request.user = soap->userid ? soap->userid : "";
    request.password = soap->passwd ? soap->passwd : "";
    request.host = worker.host;
    request.origin = worker.origin;

    HttpResponse response;
    if (!refusal.reason.empty()) {
        Log(logger_, LogLevel::info, "request_refused")
            .kv("peer", worker.peer)
            .kv("status", refusal.status)
            .kv("method", method)
            .kv("path", request.path)
            .kv("host", worker.host)
            .kv("origin", worker.origin)
            .kv("reason", refusal.reason);
        response = HttpResponse::text(refusal.status, refusal.reason);
    } else if (method == "OPTIONS") {
        response = HttpResponse::text(200, "");
        response.body.clear();
        response.headers.emplace_back("Allow", "GET, HEAD, POST, OPTIONS");
    } else if (method == "DELETE") {
        response = HttpResponse::text(405, "method not allowed: use GET, or POST for SOAP");
        response.headers.emplace_back("Allow", "GET, HEAD, POST, OPTIONS");
    } else {
        try {
            response = router_.route(request);
        } catch (const std::exception& e) {
            Log(logger_, LogLevel::error, "http_handler_failed")
                .kv("peer", worker.peer)
                .kv("path", request.path)
                .kv("error", e.what());
            response = HttpResponse::text(500, std::string("internal error: ") + e.what());
        }
    }
    std::string extra;
    auto addHeader = [&extra](const std::string& key, const std::string& value) {
        if (!extra.empty()) extra += "\r\n";
        extra += key + ": " + value;
    };
    auto sameKey = [](const std::string& a, const std::string& b) {
        return a.size() == b.size() &&
               std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
                   return std::tolower(static_cast<unsigned char>(x)) ==
                          std::tolower(static_cast<unsigned char>(y));
               });
    };
    for (const auto& [key, value] : response.headers) addHeader(key, value);
    for (const auto& [key, value] : securityHeaders()) {
        bool own = std::any_of(response.headers.begin(), response.headers.end(),
                               [&](const auto& h) { return sameKey(h.first, key); });
        if (!own) addHeader(key, value);  // a handler's own policy wins
    }
    soap->http_content = response.contentType.c_str();
    soap->http_extra_header = extra.empty() ? nullptr : extra.c_str();
    // A known length keeps the connection reusable (keep-alive) without chunking.
    soap->length = response.body.size();
    soap->omode = (soap->omode & ~SOAP_IO) | SOAP_IO_BUFFER;
    const bool withBody = method != "HEAD";  // HEAD: the GET's headers (but Content-Length 0)
    int status = response.status == 200 ? SOAP_FILE : SOAP_FILE + response.status;
    if (soap_response(soap, status) ||
        (withBody && soap_send_raw(soap, response.body.data(), response.body.size())) ||
        soap_end_send(soap)) {
        soap->http_extra_header = nullptr;
        return soap->error;
    }
    soap->http_extra_header = nullptr;
    return SOAP_OK;
}

void SoapServer::stop() {
    if (!running_.exchange(false)) return;
    if (acceptor_.joinable()) acceptor_.join();
    queueReady_.notify_all();
    // Wake workers blocked reading an idle keep-alive connection; a request being processed
    // still gets its response written.
    for (auto& worker : workers_) {
        std::lock_guard guard(worker->socketMutex);
        if (soap_valid_socket(worker->active)) ::shutdown(worker->active, SHUT_RD);
    }
    for (auto& worker : workers_) {
        if (worker->thread.joinable()) worker->thread.join();
    }
    std::lock_guard lock(queueMutex_);
    for (auto& [s, peer] : queue_) ::close(s);
    queue_.clear();
    struct soap* master = prototype_->context();
    if (soap_valid_socket(master->master)) {
        ::close(master->master);
        master->master = SOAP_INVALID_SOCKET;
    }
    Log(logger_, LogLevel::info, "stopped").kv("connections", connections_.load());
}

}  // namespace rm::common
