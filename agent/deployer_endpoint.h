// The Deployer port type served by the node agent: validates Deploy/Undeploy requests, journals
// them durably before acknowledging, and answers GetNodeState. Execution happens elsewhere
// (DeployExecutor), so a SOAP thread never waits for a deployment.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "agent/agent_store.h"
#include "agent/deploy_executor.h"
#include "common/fault_points.h"
#include "common/log.h"
#include "soapDeployerBindingService.h"

namespace rm::agent {

struct DeployerContext {
    AgentStore& store;
    std::string slot;         // the node this endpoint serves
    PackageHandler& handler;  // for the state of running instances
    common::Logger& logger;
    std::size_t maxPackagesPerRequest = 1000;
    common::FaultPoints* faults = nullptr;  // agent.after_journal; nullptr: none
    // The RM this node enrolled with (its agent port): the only caller accepted (by certificate
    // identity), the only origin packages are downloaded from, the only place reports go.
    std::string managerUrl;
};

// nullopt when the request is acceptable, else what is wrong (for InvalidRequestFault).
// `managerOrigin` (scheme://host:port): every package URL must be of it; empty: any.
std::optional<std::string> validateDeploy(const NewOperation& operation, std::size_t maxPackages,
                                          const std::string& managerOrigin = {});
std::optional<std::string> validateUndeploy(const NewOperation& operation, std::size_t maxPackages);
bool isValidScopePath(const std::string& scope);
bool isValidHttpUrl(const std::string& url);

class DeployerEndpoint : public DeployerBindingService {
  public:
    explicit DeployerEndpoint(std::shared_ptr<DeployerContext> context);

    DeployerEndpoint* copy() override;

    int Deploy(_rm__Deploy* request, _rm__DeployResponse& response) override;
    int Undeploy(_rm__Undeploy* request, _rm__UndeployResponse& response) override;
    int GetNodeState(_rm__GetNodeState* request, _rm__GetNodeStateResponse& response) override;

  private:
    int invalid(const std::string& message);
    // SOAP_OK when the caller presented the RM's certificate of this node's scope CA; else a
    // fault, logged with the peer.
    int onlyManager(const char* operation);
    // Journals `operation` (or finds it journaled already) and answers a Deploy/Undeploy with it.
    // Not named accept(): that would hide gSOAP's virtual DeployerBindingService::accept().
    int acceptOperation(const NewOperation& operation, bool& accepted);

    std::shared_ptr<DeployerContext> context_;
};

}  // namespace rm::agent
