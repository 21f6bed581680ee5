#include "common/soap_server.h"

#include "common/request_screen.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
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
    // Per-request headers gSOAP does not keep for us.
    std::string accept;
    std::string range;
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
    return workerOf(soap).server->handleGet(soap, workerOf(soap));
}

size_t onRecv(struct soap* soap, char* buffer, size_t size) {
    auto& worker = workerOf(soap);
    // Reporting end of input makes the parser stop; the serve loop then names the reason.
    if (worker.screen.exhausted(soap->length)) return 0;
    return worker.screen.observe(buffer, worker.defaultRecv(soap, buffer, size));
}

int onHeader(struct soap* soap, const char* key, const char* value) {
    auto& worker = workerOf(soap);
    if (!soap_tag_cmp(key, "Accept"))
        worker.accept = value ? value : "";
    else if (!soap_tag_cmp(key, "Range"))
        worker.range = value ? value : "";
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
        worker->defaultParseHeader = soap->fparsehdr;
        soap->fparsehdr = onHeader;
        worker->defaultRecv = soap->frecv;
        soap->frecv = onRecv;
        worker->thread = std::thread([this, w = worker.get()] { workerLoop(*w); });
        workers_.push_back(std::move(worker));
    }
    acceptor_ = std::thread([this] { acceptLoop(); });
    Log(logger_, LogLevel::info, "listening").kv("url", url()).kv("threads", options_.threads);
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
        if (!options_.tls.enabled() || soap_ssl_accept(soap) == SOAP_OK) {
            serveConnection(worker);
        } else {
            Log(logger_, LogLevel::warn, "tls_handshake_failed").kv("peer", next.second);
        }
        worker.endpoint->cleanup();
        std::lock_guard guard(worker.socketMutex);
        soap_closesock(soap);
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
        soap->status = 0;  // set again once a request line arrives
        soap_begin(soap);
        if (soap_begin_recv(soap) || soap_envelope_begin_in(soap) || soap_recv_header(soap) ||
            soap_body_begin_in(soap)) {
            bool requestStarted =
                soap->status == SOAP_POST || soap->status == SOAP_PUT || soap->status == SOAP_PATCH;
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
    soap_send_fault(soap);
}

int SoapServer::handleGet(struct soap* soap, WorkerContext& worker) {
    ++httpGets_;
    HttpRequest request;
    std::string raw = soap->path;
    auto q = raw.find('?');
    request.path = percentDecode(raw.substr(0, q));
    if (q != std::string::npos) request.query = raw.substr(q + 1);
    if (request.path.empty()) request.path = "/";
    request.accept = worker.accept;
    request.rangeHeader = worker.range;
    request.clientAddress = worker.peer;
    worker.accept.clear();
    worker.range.clear();

    HttpResponse response;
    try {
        response = router_.route(request);
    } catch (const std::exception& e) {
        Log(logger_, LogLevel::error, "http_handler_failed")
            .kv("path", request.path)
            .kv("error", e.what());
        response = HttpResponse::text(500, std::string("internal error: ") + e.what());
    }
    std::string extra;
    for (const auto& [key, value] : response.headers) {
        if (!extra.empty()) extra += "\r\n";
        extra += key + ": " + value;
    }
    soap->http_content = response.contentType.c_str();
    soap->http_extra_header = extra.empty() ? nullptr : extra.c_str();
    // A known length keeps the connection reusable (keep-alive) without chunking.
    soap->length = response.body.size();
    soap->omode = (soap->omode & ~SOAP_IO) | SOAP_IO_BUFFER;
    int status = response.status == 200 ? SOAP_FILE : SOAP_FILE + response.status;
    if (soap_response(soap, status) ||
        soap_send_raw(soap, response.body.data(), response.body.size()) || soap_end_send(soap)) {
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
