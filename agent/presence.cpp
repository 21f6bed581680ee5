#include "agent/presence.h"

#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>

#include "agent/soap_errors.h"
#include "common/soap_server.h"
#include "soapResourceManagerBindingProxy.h"

namespace rm::agent {

using common::Log;
using common::LogLevel;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::int64_t diskFreeMB(const std::string& path) {
    struct statvfs s {};
    if (::statvfs(path.c_str(), &s) != 0) return 0;
    return static_cast<std::int64_t>(s.f_bavail) * static_cast<std::int64_t>(s.f_frsize) /
           (1024 * 1024);
}

std::int64_t memoryMB() {
    long pages = ::sysconf(_SC_PHYS_PAGES);
    long size = ::sysconf(_SC_PAGE_SIZE);
    if (pages <= 0 || size <= 0) return 0;
    return static_cast<std::int64_t>(pages) * size / (1024 * 1024);
}

double loadAverage() {
    double load[1] = {0};
    return ::getloadavg(load, 1) == 1 ? load[0] : 0;
}

struct Presence::Node {
    NodeIdentity identity;
    bool registered = false;
    int failures = 0;
    milliseconds interval{2000};
    Clock::time_point due{};
    std::int64_t sequence = 0;
    std::int64_t heartbeats = 0;
    std::string lastError;
    // Each node calls as itself (its own certificate), so each has its own client.
    std::unique_ptr<ResourceManagerBindingProxy> proxy;
};

Presence::Presence(std::vector<NodeIdentity> nodes, CapacityFn capacity, SummaryFn summary,
                   common::Logger& logger, PresenceOptions options)
    : capacity_(std::move(capacity)),
      summary_(std::move(summary)),
      logger_(logger),
      options_(std::move(options)) {
    common::ServerOptions limits;
    limits.ioTimeout = options_.callTimeout;
    limits.transferTimeout = options_.callTimeout * 2;
    for (auto& n : nodes) {
        auto node = std::make_unique<Node>();
        node->identity = std::move(n);
        if (options_.heartbeatInterval) node->interval = *options_.heartbeatInterval;
        node->proxy = std::make_unique<ResourceManagerBindingProxy>();
        common::applyXmlLimits(node->proxy->soap, limits);
        common::configureTlsClient(node->proxy->soap, node->identity.tls);
        nodes_.push_back(std::move(node));
    }
}

Presence::~Presence() = default;

std::optional<PresenceStatus> Presence::status(const std::string& slot) const {
    std::lock_guard lock(mutex_);
    for (const auto& n : nodes_) {
        if (n->identity.slot == slot)
            return PresenceStatus{n->registered, n->heartbeats, n->lastError};
    }
    return std::nullopt;
}

void Presence::run(std::stop_token stop) {
    std::mutex m;
    std::condition_variable_any cv;
    while (!stop.stop_requested() && !nodes_.empty()) {
        auto next = std::min_element(nodes_.begin(), nodes_.end(),
                                     [](const auto& a, const auto& b) { return a->due < b->due; });
        Node& node = **next;
        {
            std::unique_lock lock(m);
            cv.wait_until(lock, stop, node.due, [] { return false; });
        }
        if (stop.stop_requested()) break;
        if (!node.registered) {
            registerNode(node);
        } else {
            heartbeat(node);
        }
    }
}

void Presence::failed(Node& node, const std::string& error) {
    node.failures++;
    milliseconds delay = options_.initialBackoff;
    for (int i = 1; i < node.failures && delay < options_.maxBackoff; ++i) delay *= 2;
    delay = std::min(delay, options_.maxBackoff);
    node.due = Clock::now() + delay;
    // First failure and a change of reason are worth a line; the rest would flood the log.
    if (node.failures == 1 || error != node.lastError || node.failures % 30 == 0) {
        Log(logger_, LogLevel::warn, node.registered ? "heartbeat_failed" : "register_failed")
            .kv("node", node.identity.slot)
            .kv("id", node.identity.id)
            .kv("manager", options_.managerUrl)
            .kv("attempts", node.failures)
            .kv("retry_in_ms", delay.count())
            .kv("error", error);
    }
    std::lock_guard lock(mutex_);
    node.lastError = error;
}

void Presence::registerNode(Node& node) {
    auto& proxy = *node.proxy;
    proxy.destroy();
    struct soap* soap = proxy.soap;
    _rm__RegisterNode request;
    request.ID = node.identity.id;
    request.name = node.identity.name;
    request.endpoint = node.identity.endpoint;
    for (const auto& [key, value] : node.identity.labels) {
        auto* label = soap_new_rm__Label(soap);
        label->key = key;
        label->value = value;
        request.label.push_back(label);
    }
    NodeCapacity c = capacity_(node.identity.slot);
    request.capacity = soap_new_rm__NodeCapacity(soap);
    request.capacity->cpus = c.cpus;
    request.capacity->memoryMB = c.memoryMB;
    request.capacity->diskFreeMB = c.diskFreeMB;
    request.capacity->maxInstances = c.maxInstances;
    _rm__RegisterNodeResponse response;
    if (proxy.RegisterNode(options_.managerUrl.c_str(), nullptr, &request, response) != SOAP_OK) {
        std::string error = describeSoapError(soap, "RegisterNode at " + options_.managerUrl);
        proxy.soap_close_socket();
        failed(node, error);
        return;
    }
    // No idle connection between calls: while the RM serves a connection per worker thread, a
    // fleet of kept-alive heartbeat connections would hold every one of them.
    soap_force_closesock(proxy.soap);
    if (!options_.heartbeatInterval && response.heartbeatIntervalMs > 0) {
        node.interval = milliseconds(response.heartbeatIntervalMs);
    }
    node.failures = 0;
    node.due = Clock::now() + node.interval;
    {
        std::lock_guard lock(mutex_);
        node.registered = true;
        node.lastError.clear();
    }
    Log(logger_, LogLevel::info, "node_registered")
        .kv("node", node.identity.slot)
        .kv("id", node.identity.id)
        .kv("endpoint", node.identity.endpoint)
        .kv("manager", options_.managerUrl)
        .kv("heartbeat_ms", node.interval.count());
}

void Presence::heartbeat(Node& node) {
    auto& proxy = *node.proxy;
    proxy.destroy();
    struct soap* soap = proxy.soap;
    NodeSummary s = summary_(node.identity.slot);
    _rm__Heartbeat request;
    request.ID = node.identity.id;
    request.sequence = ++node.sequence;
    request.summary = soap_new_rm__NodeSummary(soap);
    request.summary->deployedPackages = s.deployedPackages;
    request.summary->runningInstances = s.runningInstances;
    request.summary->diskFreeMB = s.diskFreeMB;
    request.summary->load = s.load;
    _rm__HeartbeatResponse response;
    if (proxy.Heartbeat(options_.managerUrl.c_str(), nullptr, &request, response) != SOAP_OK) {
        std::string error = describeSoapError(soap, "Heartbeat to " + options_.managerUrl);
        proxy.soap_close_socket();
        failed(node, error);
        return;
    }
    soap_force_closesock(proxy.soap);  // as after RegisterNode
    node.failures = 0;
    {
        std::lock_guard lock(mutex_);
        node.heartbeats++;
        node.lastError.clear();
        if (!response.registered) node.registered = false;
    }
    if (!response.registered) {
        Log(logger_, LogLevel::info, "register_again")
            .kv("node", node.identity.slot)
            .kv("id", node.identity.id)
            .kv("reason", "the Resource Manager does not know this node");
        node.due = Clock::now();
        return;
    }
    node.due = Clock::now() + node.interval;
}

}  // namespace rm::agent
