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
#include "service/identity_store.h"
#include "service/report_service.h"
#include "service/scope_ca.h"
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
    // Which port this endpoint serves. The operator port (--listen) serves people and their
    // programs; the agent port (--agent-listen, always TLS with the scope CA) serves enrolled
    // nodes: RegisterNode, Heartbeat, SendReport, RenewNodeCertificate, and EnrollNode with a
    // join token. Each refuses the other's operations.
    enum class Port { Operator, Agent } port = Port::Operator;
    const ScopeCa* ca = nullptr;
    IdentityStore* identities = nullptr;
    std::chrono::seconds nodeCertificateTtl{30LL * 24 * 3600};
    std::function<std::string()> agentUrl;  // where agents enroll, for CreateJoinToken
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
    // Identity operations (rm_endpoint_identity.cpp).
    int EnrollNode(_rm__EnrollNode* request, _rm__EnrollNodeResponse& response) override;
    int RenewNodeCertificate(_rm__RenewNodeCertificate* request,
                             _rm__RenewNodeCertificateResponse& response) override;
    int CreateJoinToken(_rm__CreateJoinToken* request, _rm__CreateJoinTokenResponse& response) override;
    int ListJoinTokens(_rm__ListJoinTokens* request, _rm__ListJoinTokensResponse& response) override;
    int RevokeJoinToken(_rm__RevokeJoinToken* request, _rm__RevokeJoinTokenResponse& response) override;
    int RemoveNode(_rm__RemoveNode* request, _rm__RemoveNodeResponse& response) override;

private:
    enum class Fault { InvalidScope, InvalidRequest, AccessDenied, NoSuchReport, Generic };
    int fault(Fault kind, const std::string& message);
    // Common path of AddResources / RemoveResources: validate, commit, queue; sets reportID.
    int openSession(SessionOperation operation, rm__ScopeRequest* request, std::string& reportId);
    std::string caller() const;
    // SOAP_OK when the caller's HTTP Basic credentials give `needed` in this scope (or no users
    // file is set); else sets an AccessDeniedFault, logs the denial with the peer, and returns
    // the HTTP status to answer with (401 asking for credentials, or 403).
    int authorize(Role needed);
    // Operator-port operations refuse agent-port calls and vice versa: a fault, or SOAP_OK.
    int onlyOperatorPort(const char* operation);
    // Node operations: the caller must present a verified, unrevoked node certificate whose
    // identity is `claimedNodeId` (empty: any node; the identity is returned in `nodeId`).
    int onlyNode(const char* operation, const std::string& claimedNodeId, std::string& nodeId);
    // Issues a node certificate for a CSR whose CN is `nodeId`; fills the response strings.
    int issueFor(const std::string& nodeId, const std::string& csrPem, std::string& certificate,
                 std::string& caCertificate);

    std::shared_ptr<ResourceManagerContext> context_;
};

}  // namespace rm::service
