// The ResourceManager port type: turns SOAP calls into checked requests on the scope.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "common/fault_points.h"
#include "common/log.h"
#include "deployer/repository_index.h"
#include "service/access_policy.h"
#include "service/deployments.h"
#include "service/report_service.h"
#include "service/scope_store.h"
#include "service/session_processor.h"
#include "soapResourceManagerBindingService.h"

namespace rm::service {

struct ResourceManagerContext {
    std::string scope;
    ScopeStore& store;
    Deployments& deployments;
    SessionProcessor& processor;
    ReportService& reports;
    const AccessPolicy& access;
    common::Logger& logger;
    std::function<std::shared_ptr<const deployer::RepositoryIndex>()> repository;
    std::chrono::milliseconds heartbeatInterval{2000};
    size_t maxItemsPerRequest = 10000;
    common::FaultPoints* faults = nullptr;  // rm.after_add_commit; nullptr: none
};

class ResourceManagerEndpoint : public ResourceManagerBindingService {
public:
    explicit ResourceManagerEndpoint(std::shared_ptr<ResourceManagerContext> context);

    ResourceManagerEndpoint* copy() override;

    int AddResources(rm__ScopeRequest* request, _rm__AddResourcesResponse& response) override;
    int RemoveResources(rm__ScopeRequest* request, _rm__RemoveResourcesResponse& response) override;
    int GetReport(_rm__GetReport* request, _rm__GetReportResponse& response) override;
    int ListResources(_rm__ListResources* request, _rm__ListResourcesResponse& response) override;
    int DisposeScope(_rm__DisposeScope* request, _rm__DisposeScopeResponse& response) override;
    int RegisterNode(_rm__RegisterNode* request, _rm__RegisterNodeResponse& response) override;
    int Heartbeat(_rm__Heartbeat* request, _rm__HeartbeatResponse& response) override;
    int SendReport(_rm__SendReport* request, _rm__SendReportResponse& response) override;
    int ListNodes(_rm__ListNodes* request, _rm__ListNodesResponse& response) override;

private:
    enum class Fault { InvalidScope, InvalidRequest, AccessDenied, NoSuchReport, Generic };
    int fault(Fault kind, const std::string& message);
    // Common path of AddResources / RemoveResources: validate, commit, queue; sets reportID.
    int openSession(SessionOperation operation, rm__ScopeRequest* request, std::string& reportId);
    std::string caller() const;

    std::shared_ptr<ResourceManagerContext> context_;
};

}  // namespace rm::service
