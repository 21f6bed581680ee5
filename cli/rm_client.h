// A typed client of the ResourceManager port type over the gSOAP-generated proxy. Used by rmctl,
// by the node agent and by the tests, so they all speak to the RM exactly the same way.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

class ResourceManagerBindingProxy;

namespace rm::client {

class ClientError : public std::runtime_error {
public:
    enum class Kind { Unreachable, Fault, Protocol };
    ClientError(Kind kind, std::string faultName, const std::string& message)
        : std::runtime_error(message), kind(kind), faultName(std::move(faultName)) {}
    Kind kind;
    std::string faultName;  // e.g. "InvalidScopeFault"; empty when not a typed fault
};

struct ClientOptions {
    std::string url;  // http(s)://host:port
    std::string user;
    std::string password;
    int timeoutSeconds = 30;
    std::string tlsCaFile;   // verify the server against these CAs only; empty: the system's CAs
    std::string tlsKeyFile;  // client certificate + key (mutual TLS)
    // Skip verifying the server's certificate (https://): the password then goes to whoever
    // answers. Only on explicit request (rmctl --insecure).
    bool insecure = false;
};

struct ServiceRequest {
    std::string serviceClass;
    std::string serviceName;
    std::optional<std::string> serviceVersion;
    std::optional<std::string> packageName;
    std::optional<std::string> packageVersion;
    std::optional<std::string> targetNode;
};

struct ScopeRequest {
    std::string targetScope;
    std::vector<std::pair<std::string, std::string>> resources;  // (type, id)
    std::vector<ServiceRequest> services;
    std::vector<std::string> suggestedNodes;
};

struct ResourceRow {
    std::string id, type, status, node, lastChange;
};

struct NodeRow {
    std::string id, name, endpoint, liveness, lastHeartbeat;
    double load = 0;
    int runningInstances = 0;
    std::vector<std::pair<std::string, std::string>> labels;
};

struct JoinToken {
    std::string token;     // ID.SECRET: give it to one agent's --join-token-file
    std::string caSha256;  // the agent's --ca-sha256
    std::string expires;
    std::string agentUrl;  // the RM's agent port: the agent's --manager
};

struct JoinTokenRow {
    std::string id, expires, description;
    int usesLeft = -1;  // -1: unlimited until it expires
};

class RmClient {
public:
    explicit RmClient(ClientOptions options);
    ~RmClient();
    RmClient(const RmClient&) = delete;
    RmClient& operator=(const RmClient&) = delete;

    std::string addResources(const ScopeRequest& request);
    std::string removeResources(const ScopeRequest& request);
    std::string disposeScope(const std::string& scope);
    // The report document, exactly as the RM rendered it (starts with <ResourceReport>).
    std::string getReport(const std::string& reportId);
    std::vector<ResourceRow> listResources(const std::optional<std::string>& type = {},
                                           const std::optional<std::string>& status = {});
    std::vector<NodeRow> listNodes();
    // Join tokens and node identities (admin).
    JoinToken createJoinToken(int64_t ttlSeconds, int uses, const std::string& description);
    std::vector<JoinTokenRow> listJoinTokens();
    bool revokeJoinToken(const std::string& id);
    void removeNode(const std::string& name);

    const ClientOptions& options() const { return options_; }

private:
    [[noreturn]] void raise(const std::string& operation);
    void prepare();

    ClientOptions options_;
    std::unique_ptr<ResourceManagerBindingProxy> proxy_;
};

}  // namespace rm::client
