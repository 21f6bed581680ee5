#include "cli/rm_client.h"

#include "common/soap_server.h"
#include "soapResourceManagerBindingProxy.h"

namespace rm::client {

RmClient::RmClient(ClientOptions options)
    : options_(std::move(options)), proxy_(std::make_unique<ResourceManagerBindingProxy>()) {
    common::ServerOptions limits;
    limits.ioTimeout = std::chrono::seconds(options_.timeoutSeconds);
    limits.transferTimeout = std::chrono::seconds(options_.timeoutSeconds * 2);
    limits.maxMessageBytes = 256ull << 20;  // reports of large sessions
    common::applyXmlLimits(proxy_->soap, limits);
    if (options_.url.rfind("https://", 0) == 0) {
        int flags = options_.tlsCaFile.empty() ? SOAP_SSL_NO_AUTHENTICATION : SOAP_SSL_DEFAULT;
        if (soap_ssl_client_context(proxy_->soap, flags,
                                    options_.tlsKeyFile.empty() ? nullptr : options_.tlsKeyFile.c_str(), nullptr,
                                    options_.tlsCaFile.empty() ? nullptr : options_.tlsCaFile.c_str(), nullptr,
                                    nullptr)) {
            raise("TLS setup");
        }
    }
}

RmClient::~RmClient() = default;

void RmClient::prepare() {
    proxy_->destroy();
    proxy_->soap_endpoint = options_.url.c_str();
    if (!options_.user.empty()) {
        proxy_->soap->userid = options_.user.c_str();
        proxy_->soap->passwd = options_.password.c_str();
    }
}

void RmClient::raise(const std::string& operation) {
    struct soap* soap = proxy_->soap;
    std::string reason;
    if (const char* s = soap_fault_string(soap)) reason = s;
    if (soap->error == SOAP_TCP_ERROR || soap->error == SOAP_SSL_ERROR || soap->error == SOAP_EOF) {
        std::string detail = reason.empty() ? "connection failed" : reason;
        proxy_->soap_close_socket();
        throw ClientError(ClientError::Kind::Unreachable, "",
                          "cannot reach the Resource Manager at " + options_.url + " (" + operation +
                              "): " + detail + "; is resource-manager running there? check --manager");
    }
    std::string faultName;
    std::string message = reason;
    if (soap->fault && soap->fault->detail) {
        auto* d = soap->fault->detail;
        auto pick = [&](rm__FaultDetail* f, const char* name) {
            if (f && faultName.empty()) {
                faultName = name;
                message = f->message;
            }
        };
        pick(d->rm__InvalidScopeFault, "InvalidScopeFault");
        pick(d->rm__InvalidRequestFault, "InvalidRequestFault");
        pick(d->rm__AccessDeniedFault, "AccessDeniedFault");
        pick(d->rm__NoSuchReportFault, "NoSuchReportFault");
    }
    proxy_->soap_close_socket();
    if (soap->error == SOAP_FAULT || !faultName.empty()) {
        throw ClientError(ClientError::Kind::Fault, faultName,
                          operation + " refused: " + (message.empty() ? "unknown fault" : message));
    }
    throw ClientError(ClientError::Kind::Protocol, "",
                      operation + " failed: " + (message.empty() ? "error " + std::to_string(soap->error) : message));
}

namespace {
rm__ScopeRequest* buildRequest(struct soap* soap, const ScopeRequest& in) {
    auto* req = soap_new_rm__ScopeRequest(soap);
    req->targetScope = in.targetScope;
    if (!in.resources.empty()) {
        req->resources = soap_new_rm__ResourceList(soap);
        for (const auto& [type, id] : in.resources) {
            auto* item = soap_new_rm__ResourceItem(soap);
            item->Type = type;
            item->ID = id;
            req->resources->resource.push_back(item);
        }
    }
    if (!in.services.empty()) {
        req->software = soap_new_rm__SoftwareList(soap);
        auto opt = [soap](const std::optional<std::string>& v) -> std::string* {
            if (!v) return nullptr;
            auto* s = soap_new_std__string(soap);
            *s = *v;
            return s;
        };
        for (const auto& svc : in.services) {
            auto* item = soap_new_rm__PackageItem(soap);
            item->ServiceClass = svc.serviceClass;
            item->ServiceName = svc.serviceName;
            item->ServiceVersion = opt(svc.serviceVersion);
            item->PackageName = opt(svc.packageName);
            item->PackageVersion = opt(svc.packageVersion);
            item->TargetGHNName = opt(svc.targetNode);
            req->software->software.push_back(item);
        }
        req->software->suggestedTargetGHNNames = in.suggestedNodes;
    }
    return req;
}
}  // namespace

std::string RmClient::addResources(const ScopeRequest& request) {
    prepare();
    _rm__AddResourcesResponse response;
    if (proxy_->AddResources(buildRequest(proxy_->soap, request), response) != SOAP_OK) raise("AddResources");
    return response.reportID;
}

std::string RmClient::removeResources(const ScopeRequest& request) {
    prepare();
    _rm__RemoveResourcesResponse response;
    if (proxy_->RemoveResources(buildRequest(proxy_->soap, request), response) != SOAP_OK) {
        raise("RemoveResources");
    }
    return response.reportID;
}

std::string RmClient::disposeScope(const std::string& scope) {
    prepare();
    _rm__DisposeScope request;
    request.targetScope = scope;
    _rm__DisposeScopeResponse response;
    if (proxy_->DisposeScope(&request, response) != SOAP_OK) raise("DisposeScope");
    return response.reportID;
}

std::string RmClient::getReport(const std::string& reportId) {
    prepare();
    _rm__GetReport request;
    request.reportID = reportId;
    _rm__GetReportResponse response;
    if (proxy_->GetReport(&request, response) != SOAP_OK) raise("GetReport");
    if (!response.ResourceReport) throw ClientError(ClientError::Kind::Protocol, "", "GetReport returned no report");
    return std::string("<ResourceReport>") + response.ResourceReport + "</ResourceReport>";
}

std::vector<ResourceRow> RmClient::listResources(const std::optional<std::string>& type,
                                                 const std::optional<std::string>& status) {
    prepare();
    _rm__ListResources request;
    std::string t = type.value_or(""), s = status.value_or("");
    request.type = type ? &t : nullptr;
    request.status = status ? &s : nullptr;
    _rm__ListResourcesResponse response;
    if (proxy_->ListResources(&request, response) != SOAP_OK) raise("ListResources");
    std::vector<ResourceRow> out;
    for (const auto* r : response.resource) {
        if (!r) continue;
        out.push_back({r->ID, r->Type, r->Status, r->Node ? *r->Node : "", r->LastChange});
    }
    return out;
}

std::vector<NodeRow> RmClient::listNodes() {
    prepare();
    _rm__ListNodes request;
    _rm__ListNodesResponse response;
    if (proxy_->ListNodes(&request, response) != SOAP_OK) raise("ListNodes");
    std::vector<NodeRow> out;
    for (const auto* n : response.node) {
        if (!n) continue;
        NodeRow row{n->ID, n->name, n->endpoint, n->liveness, n->lastHeartbeat, n->load, n->runningInstances, {}};
        for (const auto* l : n->label) {
            if (l) row.labels.emplace_back(l->key, l->value);
        }
        out.push_back(std::move(row));
    }
    return out;
}

}  // namespace rm::client
