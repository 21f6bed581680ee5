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
        // The server's certificate must chain to --tls-ca (only), or to the system's CAs, and
        // name the host called; the handshake fails before any request (and so any password)
        // is sent otherwise. Skipping that takes `insecure`.
        int flags = SOAP_SSL_DEFAULT | SOAP_TLSv1_2 | SOAP_TLSv1_3;
        if (options_.insecure)
            flags = SOAP_SSL_NO_AUTHENTICATION | SOAP_TLSv1_2 | SOAP_TLSv1_3;
        else if (!options_.tlsCaFile.empty())
            flags |= SOAP_SSL_NO_DEFAULT_CA_PATH;
        if (soap_ssl_client_context(
                proxy_->soap, flags,
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
    if (soap->error == SOAP_SSL_ERROR) {
        std::string detail = reason;
        if (const char* d = soap_fault_detail(soap))
            detail += std::string(detail.empty() ? "" : ": ") + d;
        for (auto& c : detail) c = c == '\n' || c == '\r' ? ' ' : c;
        proxy_->soap_close_socket();
        throw ClientError(
            ClientError::Kind::Unreachable, "",
            "TLS with the Resource Manager at " + options_.url + " failed (" + operation +
                "), nothing was sent: " + (detail.empty() ? "handshake failed" : detail) +
                "; its certificate must be signed by a CA of the system or by --tls-ca FILE "
                "and name the host of the URL (--insecure skips that check and exposes the "
                "password)");
    }
    if (soap->error == 401 || soap->error == 403) {
        // The RM answers missing or wrong credentials with HTTP 401, a role or scope that does
        // not suffice with 403 (each with an AccessDeniedFault gSOAP does not read for them).
        int status = soap->error;
        proxy_->soap_close_socket();
        std::string why =
            status == 403 ? "user '" + options_.user +
                                "' lacks the role or the scope for this (reads "
                                "need reader, changes operator, tokens and nodes admin: see the "
                                "RM's users file)"
            : options_.user.empty()
                ? "this Resource Manager needs credentials: give --user NAME and --password-file "
                  "FILE (or RM_USER and RM_PASSWORD)"
                : "user '" + options_.user +
                      "' or its password was refused (or too many "
                      "logins failed from this address: wait a minute)";
        throw ClientError(ClientError::Kind::Fault, "AccessDeniedFault",
                          operation + " refused (HTTP " + std::to_string(status) + "): " + why);
    }
    if (soap->error == SOAP_TCP_ERROR || soap->error == SOAP_EOF) {
        std::string detail = reason.empty() ? "connection failed" : reason;
        proxy_->soap_close_socket();
        throw ClientError(ClientError::Kind::Unreachable, "",
                          "cannot reach the Resource Manager at " + options_.url + " (" +
                              operation + "): " + detail +
                              "; is resource-manager running there? check --manager");
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
                      operation + " failed: " +
                          (message.empty() ? "error " + std::to_string(soap->error) : message));
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
    if (proxy_->AddResources(buildRequest(proxy_->soap, request), response) != SOAP_OK)
        raise("AddResources");
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
    if (!response.ResourceReport)
        throw ClientError(ClientError::Kind::Protocol, "", "GetReport returned no report");
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
        NodeRow row{n->ID,
                    n->name,
                    n->endpoint,
                    n->liveness,
                    n->lastHeartbeat,
                    n->load,
                    n->runningInstances,
                    {}};
        for (const auto* l : n->label) {
            if (l) row.labels.emplace_back(l->key, l->value);
        }
        out.push_back(std::move(row));
    }
    return out;
}

JoinToken RmClient::createJoinToken(int64_t ttlSeconds, int uses, const std::string& description) {
    prepare();
    _rm__CreateJoinToken request;
    request.ttlSeconds = &ttlSeconds;
    request.uses = &uses;
    std::string text = description;
    if (!text.empty()) request.description = &text;
    _rm__CreateJoinTokenResponse response;
    if (proxy_->CreateJoinToken(&request, response) != SOAP_OK) raise("CreateJoinToken");
    return {response.token, response.caSHA256, response.expires, response.agentURL};
}

std::vector<JoinTokenRow> RmClient::listJoinTokens() {
    prepare();
    _rm__ListJoinTokens request;
    _rm__ListJoinTokensResponse response;
    if (proxy_->ListJoinTokens(&request, response) != SOAP_OK) raise("ListJoinTokens");
    std::vector<JoinTokenRow> out;
    for (const auto* t : response.token) {
        if (t) out.push_back({t->ID, t->expires, t->description, t->usesLeft});
    }
    return out;
}

bool RmClient::revokeJoinToken(const std::string& id) {
    prepare();
    _rm__RevokeJoinToken request;
    request.ID = id;
    _rm__RevokeJoinTokenResponse response;
    if (proxy_->RevokeJoinToken(&request, response) != SOAP_OK) raise("RevokeJoinToken");
    return response.revoked;
}

void RmClient::removeNode(const std::string& name) {
    prepare();
    _rm__RemoveNode request;
    request.name = name;
    _rm__RemoveNodeResponse response;
    if (proxy_->RemoveNode(&request, response) != SOAP_OK) raise("RemoveNode");
}

}  // namespace rm::client
