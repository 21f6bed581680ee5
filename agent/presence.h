// Keeps the Resource Manager aware of this node (or of every hollow node): RegisterNode once,
// then Heartbeat every interval; registers again when the RM answers registered=false, and keeps
// retrying with backoff while the RM cannot be reached. One thread serves any number of nodes.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

#include "common/log.h"
#include "common/tls.h"

class ResourceManagerBindingProxy;

namespace rm::agent {

struct NodeIdentity {
    std::string slot;
    std::string id;
    std::string name;
    std::string endpoint;
    std::vector<std::pair<std::string, std::string>> labels;
    common::TlsClientOptions tls;  // this node's certificate, the scope CA, the RM's identity
};

struct NodeCapacity {
    int cpus = 0;
    std::int64_t memoryMB = 0;
    std::int64_t diskFreeMB = 0;
    int maxInstances = 0;
};

struct NodeSummary {
    int deployedPackages = 0;
    int runningInstances = 0;
    std::int64_t diskFreeMB = 0;
    double load = 0;
};

struct PresenceOptions {
    std::string managerUrl;
    std::optional<std::chrono::milliseconds> heartbeatInterval;  // unset: what RegisterNode says
    std::chrono::milliseconds initialBackoff{500};
    std::chrono::milliseconds maxBackoff{10000};
    std::chrono::seconds callTimeout{10};
};

struct PresenceStatus {
    bool registered = false;
    std::int64_t heartbeats = 0;
    std::string lastError;
};

class Presence {
  public:
    using CapacityFn = std::function<NodeCapacity(const std::string& slot)>;
    using SummaryFn = std::function<NodeSummary(const std::string& slot)>;

    Presence(std::vector<NodeIdentity> nodes, CapacityFn capacity, SummaryFn summary,
             common::Logger& logger, PresenceOptions options);
    ~Presence();

    void run(std::stop_token stop);
    std::optional<PresenceStatus> status(const std::string& slot) const;

  private:
    struct Node;
    void registerNode(Node& node);
    void heartbeat(Node& node);
    void failed(Node& node, const std::string& error);

    std::vector<std::unique_ptr<Node>> nodes_;
    CapacityFn capacity_;
    SummaryFn summary_;
    common::Logger& logger_;
    PresenceOptions options_;
    mutable std::mutex mutex_;  // guards the status fields read by status()
};

// Facts about the machine, for RegisterNode and Heartbeat.
std::int64_t diskFreeMB(const std::string& path);
std::int64_t memoryMB();
double loadAverage();

}  // namespace rm::agent
