// One port, two protocols: SOAP POSTs go to a gSOAP-generated service, GETs to an HttpRouter.
// A pool of worker threads serves accepted connections with keep-alive; every context applies
// strict XML parsing and bounds on size, depth, element counts and time.
// Against browsers (SPEC section 10): a Host that is not one of ServerOptions::serverNames is
// refused (421), a foreign Origin too (403), and a SOAP request whose Content-Type is not text/xml
// or application/soap+xml (415), before it is dispatched; every response carries
// securityHeaders() (common/http.h) and no CORS permission.
#pragma once

#include <stdsoap2.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/http.h"
#include "common/log.h"

namespace rm::common {

struct TlsOptions {
    std::string keyFile;   // PEM holding the private key and the certificate chain
    std::string caFile;    // CA certificates used to verify peers
    std::string password;  // of the key, if any
    bool requireClientCertificate = false;
    bool enabled() const { return !keyFile.empty(); }
};

struct ServerOptions {
    std::string host = "127.0.0.1";
    int port = 0;  // 0 picks a free port
    int threads = 16;
    std::chrono::seconds ioTimeout{10};        // idle keep-alive and per-read/write limit
    std::chrono::seconds transferTimeout{60};  // whole message
    uint64_t maxMessageBytes = 8ull << 20;
    unsigned maxDepth = 64;
    size_t maxOccurs = 100000;
    size_t maxQueuedConnections = 1024;
    TlsOptions tls;
    // The names a request's Host header (and Origin) may use: anything else is refused, which
    // defeats DNS rebinding. Empty: defaultServerNames(host).
    std::vector<std::string> serverNames;
};

// Parses "host:port" (IPv4, name, or [v6]) into options; throws UsageError-like runtime_error.
void parseListen(const std::string& listen, ServerOptions& options);

// The names of a service listening on `listenHost`: that host unless it is a wildcard,
// localhost, 127.0.0.1 and ::1; for a wildcard (0.0.0.0, ::, empty) also this machine's host
// name, its canonical name and the addresses of its interfaces. Normalized (lower case, no
// brackets).
std::vector<std::string> defaultServerNames(const std::string& listenHost);

// Applies the strictness and bounds every gSOAP context of ours must have, server or client.
void applyXmlLimits(struct soap* soap, const ServerOptions& options);

// A gSOAP service object that can serve one connection and be cloned per worker thread.
class SoapEndpoint {
  public:
    virtual ~SoapEndpoint() = default;
    virtual struct soap* context() = 0;
    // Reads the rest of a request whose envelope and Body start were parsed, runs the operation
    // and sends its response (or returns an error for the caller to turn into a fault).
    virtual int dispatch() = 0;
    virtual void cleanup() = 0;
    virtual std::unique_ptr<SoapEndpoint> clone() = 0;
};

template <class Service>
class GeneratedEndpoint final : public SoapEndpoint {
  public:
    explicit GeneratedEndpoint(std::unique_ptr<Service> service) : service_(std::move(service)) {}
    struct soap* context() override {
        return service_->soap;
    }
    int dispatch() override { return service_->dispatch(); }
    void cleanup() override { service_->destroy(); }
    std::unique_ptr<SoapEndpoint> clone() override {
        return std::make_unique<GeneratedEndpoint>(std::unique_ptr<Service>(service_->copy()));
    }

  private:
    std::unique_ptr<Service> service_;
};

struct ServerStats {
    uint64_t connections = 0;
    uint64_t httpGets = 0;
    uint64_t rejectedConnections = 0;
};

class SoapServer {
  public:
    SoapServer(ServerOptions options, std::unique_ptr<SoapEndpoint> prototype, HttpRouter router,
               Logger& logger);
    ~SoapServer();
    SoapServer(const SoapServer&) = delete;
    SoapServer& operator=(const SoapServer&) = delete;

    // Binds and starts serving; throws std::runtime_error saying why binding failed.
    void start();
    // Stops accepting, lets in-flight requests finish, joins every thread. Idempotent.
    void stop();

    int port() const { return port_; }
    std::string url() const;
    ServerStats stats() const;

    // Used by the gSOAP callbacks.
    struct WorkerContext;
    // GET and HEAD go to the router; OPTIONS and DELETE get a plain answer. `method` as sent.
    int handleHttp(struct soap* soap, WorkerContext& worker, const std::string& method);

  private:
    void acceptLoop();
    void workerLoop(WorkerContext& worker);
    // Every request of one connection (keep-alive); unlike gSOAP's generated serve(), a request
    // that is cut short, is not XML or carries a DTD gets a SOAP fault instead of a silent close.
    void serveConnection(WorkerContext& worker);
    void refuseMalformedRequest(struct soap* soap, WorkerContext& worker);
    // Host, Origin (and for a SOAP request Content-Type) against what browsers can be made to
    // send; an empty reason lets the request through, otherwise `status` says how to refuse it.
    struct Refusal {
        int status = 0;
        std::string reason;
    };
    Refusal screenHeaders(const WorkerContext& worker, bool soapRequest) const;
    void refuseRequest(struct soap* soap, WorkerContext& worker, const Refusal& refusal);

    ServerOptions options_;
    std::unique_ptr<SoapEndpoint> prototype_;
    HttpRouter router_;
    Logger& logger_;
    int port_ = 0;
    std::vector<std::string> names_;  // normalized serverNames

    std::atomic<bool> running_{false};
    std::mutex queueMutex_;
    std::condition_variable queueReady_;
    std::deque<std::pair<SOAP_SOCKET, std::string>> queue_;
    std::vector<std::unique_ptr<WorkerContext>> workers_;
    std::thread acceptor_;
    std::atomic<uint64_t> connections_{0}, httpGets_{0}, rejected_{0};
};

}  // namespace rm::common
