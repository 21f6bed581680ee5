// The identity operations of the ResourceManager port type (SPEC section 10): join tokens on the
// operator port; enrollment, renewal and the identity checks of node operations on the agent port.
#include <algorithm>

#include "common/pki.h"
#include "common/tls.h"
#include "common/time_util.h"
#include "service/request_validation.h"
#include "service/rm_endpoint.h"

namespace rm::service {

using common::Log;
using common::LogLevel;
namespace pki = common::pki;

namespace {

constexpr int64_t kDefaultTokenTtlSeconds = 3600;
constexpr int64_t kMaxTokenTtlSeconds = 30LL * 24 * 3600;

}  // namespace

int ResourceManagerEndpoint::authorize(Role needed) {
    auto& ctx = *context_;
    auto denied = ctx.access.check(soap->userid, soap->passwd, ctx.scope, needed, soap->host);
    if (!denied) return SOAP_OK;
    Log(ctx.logger, LogLevel::warn, "access_denied")
        .kv("peer", soap->host)
        .kv("user", soap->userid ? soap->userid : "-")
        .kv("needs", toString(needed))
        .kv("reason", denied->reason);
    fault(Fault::AccessDenied, denied->reason);
    if (!denied->askForCredentials()) return 403;
    // 401 with `WWW-Authenticate: Basic realm="SCOPE"`: gSOAP adds the header for authrealm.
    soap->authrealm = ctx.scope.c_str();
    return 401;
}

int ResourceManagerEndpoint::onlyOperatorPort(const char* operation) {
    if (context_->port == ResourceManagerContext::Port::Operator) return SOAP_OK;
    Log(context_->logger, LogLevel::warn, "access_denied")
        .kv("peer", soap->host)
        .kv("operation", operation)
        .kv("reason", "operator operation on the agent port");
    return fault(Fault::AccessDenied, std::string(operation) +
                                          " is served on the operator port, not on the agent port");
}

int ResourceManagerEndpoint::onlyNode(const char* operation, const std::string& claimedNodeId,
                                      std::string& nodeId) {
    auto& ctx = *context_;
    std::string reason;
    if (ctx.port != ResourceManagerContext::Port::Agent) {
        reason = std::string(operation) +
                 " is served on the agent port (--agent-listen) to enrolled nodes only";
    } else {
        nodeId = common::verifiedPeerIdentity(soap);
        if (nodeId.empty()) {
            reason = std::string(operation) +
                     " needs a node certificate of this scope (enroll the agent with a join token)";
        } else if (nodeId == pki::kRmIdentity || !isValidIdentifier(nodeId)) {
            reason = "the certificate's identity is not a node";
        } else if (ctx.identities && ctx.identities->isRevoked(nodeId)) {
            reason = "node " + nodeId + " has been removed from the scope";
        } else if (!claimedNodeId.empty() && claimedNodeId != nodeId) {
            reason = "a node may only speak for itself: the certificate names " + nodeId +
                     ", the request " + claimedNodeId.substr(0, 100);
        }
    }
    if (reason.empty()) return SOAP_OK;
    Log(ctx.logger, LogLevel::warn, "access_denied")
        .kv("peer", soap->host)
        .kv("identity", nodeId.empty() ? std::string("-") : nodeId)
        .kv("operation", operation)
        .kv("reason", reason);
    return fault(Fault::AccessDenied, reason);
}

int ResourceManagerEndpoint::issueFor(const std::string& nodeId, const std::string& csrPem,
                                      std::string& certificate, std::string& caCertificate) {
    auto& ctx = *context_;
    pki::CsrInfo csr;
    try {
        csr = pki::parseCsr(csrPem);
    } catch (const pki::PkiError& e) {
        return fault(Fault::InvalidRequest, std::string("unusable CSR: ") + e.what());
    }
    if (csr.commonName != nodeId) {
        return fault(Fault::InvalidRequest, "the CSR's CN must be the node ID " + nodeId);
    }
    certificate = ctx.ca->issueNodeCertificate(csr, nodeId, ctx.nodeCertificateTtl);
    caCertificate = ctx.ca->caPem();
    auto info = pki::inspectCertificate(certificate);
    ctx.identities->recordIssued(nodeId, info.serialHex, info.notAfterMs, common::nowMillis());
    Log(ctx.logger, LogLevel::info, "node_certificate_issued")
        .kv("peer", soap->host)
        .kv("node", nodeId)
        .kv("serial", info.serialHex)
        .kv("expires", common::isoTimestamp(common::fromUnixMillis(info.notAfterMs)));
    return SOAP_OK;
}

int ResourceManagerEndpoint::EnrollNode(_rm__EnrollNode* request, _rm__EnrollNodeResponse& response) {
    auto& ctx = *context_;
    if (ctx.port != ResourceManagerContext::Port::Agent || !ctx.ca || !ctx.identities) {
        return fault(Fault::AccessDenied, "EnrollNode is served on the agent port (--agent-listen)");
    }
    if (!request) return fault(Fault::InvalidRequest, "empty EnrollNode request");
    std::string nodeId;
    try {
        nodeId = pki::parseCsr(request->csr).commonName;
    } catch (const pki::PkiError& e) {
        return fault(Fault::InvalidRequest, std::string("unusable CSR: ") + e.what());
    }
    if (!isValidIdentifier(nodeId) || nodeId == pki::kRmIdentity) {
        return fault(Fault::InvalidRequest, "the CSR's CN must be a node ID of [A-Za-z0-9._-]");
    }
    auto parsed = parseJoinToken(request->token);
    auto check = ctx.identities->consumeToken(request->token, common::nowMillis());
    if (check != IdentityStore::TokenCheck::Accepted) {
        // Unknown and wrong-secret tokens look alike to the caller.
        Log(ctx.logger, LogLevel::warn, "enrollment_refused")
            .kv("peer", soap->host)
            .kv("token_id", parsed ? parsed->id : std::string("-"))
            .kv("node", nodeId)
            .kv("reason", toString(check));
        return fault(Fault::AccessDenied, check == IdentityStore::TokenCheck::Expired
                                              ? "the join token has expired: create another"
                                              : "the join token is not valid here");
    }
    // A node ID joins once: a token holder cannot take over an enrolled node's identity.
    if (ctx.identities->wasIssued(nodeId) || ctx.identities->isRevoked(nodeId)) {
        Log(ctx.logger, LogLevel::warn, "enrollment_refused")
            .kv("peer", soap->host)
            .kv("token_id", parsed->id)
            .kv("node", nodeId)
            .kv("reason", "node ID already enrolled");
        return fault(Fault::AccessDenied, "node " + nodeId +
                                              " is already enrolled; an agent that lost its state "
                                              "enrolls again under a new node ID");
    }
    int rc = issueFor(nodeId, request->csr, response.certificate, response.caCertificate);
    if (rc == SOAP_OK) {
        Log(ctx.logger, LogLevel::info, "node_enrolled")
            .kv("peer", soap->host)
            .kv("node", nodeId)
            .kv("token_id", parsed->id);
    }
    return rc;
}

int ResourceManagerEndpoint::RenewNodeCertificate(_rm__RenewNodeCertificate* request,
                                                  _rm__RenewNodeCertificateResponse& response) {
    std::string nodeId;
    if (int rc = onlyNode("RenewNodeCertificate", "", nodeId)) return rc;
    if (!request) return fault(Fault::InvalidRequest, "empty RenewNodeCertificate request");
    return issueFor(nodeId, request->csr, response.certificate, response.caCertificate);
}

int ResourceManagerEndpoint::CreateJoinToken(_rm__CreateJoinToken* request,
                                             _rm__CreateJoinTokenResponse& response) {
    auto& ctx = *context_;
    if (int rc = onlyOperatorPort("CreateJoinToken")) return rc;
    if (int rc = authorize(Role::Admin)) return rc;
    if (!ctx.identities || !ctx.ca) return fault(Fault::Generic, "enrollment is not configured");
    int64_t ttl = request && request->ttlSeconds ? *request->ttlSeconds : kDefaultTokenTtlSeconds;
    int uses = request && request->uses ? *request->uses : 0;
    std::string description = request && request->description ? *request->description : "";
    if (ttl < 1 || ttl > kMaxTokenTtlSeconds) {
        return fault(Fault::InvalidRequest, "ttlSeconds must be 1.." + std::to_string(kMaxTokenTtlSeconds));
    }
    if (uses < 0 || uses > 100000) return fault(Fault::InvalidRequest, "uses must be 0 (unlimited)..100000");
    if (description.size() > 200 ||
        std::any_of(description.begin(), description.end(),
                    [](unsigned char c) { return c < 0x20 || c == 0x7f; })) {
        return fault(Fault::InvalidRequest, "description: at most 200 printable characters");
    }
    int64_t now = common::nowMillis();
    response.token = ctx.identities->createToken(ttl * 1000, uses, description, now);
    response.caSHA256 = ctx.ca->caSha256();
    response.expires = common::isoTimestamp(common::fromUnixMillis(now + ttl * 1000));
    response.agentURL = ctx.agentUrl ? ctx.agentUrl() : "";
    Log(ctx.logger, LogLevel::info, "join_token_created")
        .kv("caller", caller())
        .kv("token_id", response.token.substr(0, 6))
        .kv("ttl_s", ttl)
        .kv("uses", uses);
    return SOAP_OK;
}

int ResourceManagerEndpoint::ListJoinTokens(_rm__ListJoinTokens*, _rm__ListJoinTokensResponse& response) {
    auto& ctx = *context_;
    if (int rc = onlyOperatorPort("ListJoinTokens")) return rc;
    if (int rc = authorize(Role::Admin)) return rc;
    if (!ctx.identities) return SOAP_OK;
    for (const auto& row : ctx.identities->listTokens(common::nowMillis())) {
        auto* out = soap_new_rm__JoinTokenInfo(soap);
        out->ID = row.id;
        out->expires = common::isoTimestamp(common::fromUnixMillis(row.expiresMs));
        out->usesLeft = row.usesLeft;
        out->description = row.description;
        response.token.push_back(out);
    }
    return SOAP_OK;
}

int ResourceManagerEndpoint::RevokeJoinToken(_rm__RevokeJoinToken* request,
                                             _rm__RevokeJoinTokenResponse& response) {
    auto& ctx = *context_;
    if (int rc = onlyOperatorPort("RevokeJoinToken")) return rc;
    if (int rc = authorize(Role::Admin)) return rc;
    // Accept the whole token as well as its ID: the ID is what lists show.
    std::string id = request ? request->ID.substr(0, request->ID.find('.')) : "";
    response.revoked = ctx.identities && !id.empty() && ctx.identities->revokeToken(id);
    Log(ctx.logger, LogLevel::info, "join_token_revoked")
        .kv("caller", caller())
        .kv("token_id", id.substr(0, 6))
        .kv("found", response.revoked);
    return SOAP_OK;
}

int ResourceManagerEndpoint::RemoveNode(_rm__RemoveNode* request, _rm__RemoveNodeResponse& response) {
    auto& ctx = *context_;
    if (int rc = onlyOperatorPort("RemoveNode")) return rc;
    if (int rc = authorize(Role::Admin)) return rc;
    if (!request || !isValidName(request->name)) return fault(Fault::InvalidRequest, "RemoveNode needs a node name");
    response.removed = false;
    for (const auto& node : ctx.store.nodeStatuses()) {
        if (node.record.name != request->name && node.record.id != request->name) continue;
        ctx.identities->revokeNode(node.record.id, common::nowMillis());
        response.removed = true;
        Log(ctx.logger, LogLevel::warn, "node_removed")
            .kv("caller", caller())
            .kv("node", node.record.id)
            .kv("name", node.record.name);
    }
    if (!response.removed) return fault(Fault::InvalidRequest, "no node named " + request->name + " is known here");
    return SOAP_OK;
}

}  // namespace rm::service
