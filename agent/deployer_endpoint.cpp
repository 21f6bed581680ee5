#include "agent/deployer_endpoint.h"

#include <set>

#include "agent/downloader.h"
#include "common/pki.h"
#include "common/tls.h"

namespace rm::agent {

using common::Log;
using common::LogLevel;

namespace {

bool isHex64(const std::string& s) {
    if (s.size() != 64) return false;
    for (char c : s) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return false;
    }
    return true;
}

std::string clip(const std::string& s) {
    return s.size() > 80 ? s.substr(0, 80) + "..." : s;
}

std::optional<std::string> checkCoordinates(const deployer::PackageCoordinates& c, size_t index) {
    const std::pair<const char*, const std::string*> fields[] = {
        {"ServiceClass", &c.serviceClass},     {"ServiceName", &c.serviceName},
        {"ServiceVersion", &c.serviceVersion}, {"PackageName", &c.packageName},
        {"PackageVersion", &c.packageVersion},
    };
    for (const auto& [name, value] : fields) {
        if (!deployer::isValidName(*value)) {
            return "package " + std::to_string(index + 1) + ": " + name + " '" + clip(*value) +
                   "' is not valid (use 1-128 characters of [A-Za-z0-9._-])";
        }
    }
    return std::nullopt;
}

std::optional<std::string> checkCommon(const NewOperation& op, size_t maxPackages) {
    if (!deployer::isValidName(op.callbackId)) {
        return "callbackID '" + clip(op.callbackId) +
               "' is not valid (use 1-128 characters of [A-Za-z0-9._-])";
    }
    if (!isValidScopePath(op.scope)) {
        return "targetScope '" + clip(op.scope) +
               "' is not a scope (use /segment[/segment...], segments of [A-Za-z0-9._-])";
    }
    if (!isValidHttpUrl(op.callbackEndpoint)) {
        return "callbackEndpoint '" + clip(op.callbackEndpoint) +
               "' is not an http:// or https:// URL";
    }
    if (op.packages.size() > maxPackages) {
        return "too many packages (" + std::to_string(op.packages.size()) + "); at most " +
               std::to_string(maxPackages);
    }
    std::set<std::string> seen;
    for (size_t i = 0; i < op.packages.size(); ++i) {
        if (auto problem = checkCoordinates(op.packages[i].coords, i)) return problem;
        if (!seen.insert(op.packages[i].coords.packageKey()).second) {
            return "package " + std::to_string(i + 1) + " (" + op.packages[i].coords.packageKey() +
                   ") is listed twice";
        }
    }
    return std::nullopt;
}

}  // namespace

bool isValidScopePath(const std::string& scope) {
    if (scope.size() < 2 || scope.size() > 512 || scope[0] != '/') return false;
    size_t start = 1;
    while (start <= scope.size()) {
        size_t end = scope.find('/', start);
        if (end == std::string::npos) end = scope.size();
        if (!deployer::isValidName(std::string_view(scope).substr(start, end - start)))
            return false;
        start = end + 1;
    }
    return true;
}

bool isValidHttpUrl(const std::string& url) {
    std::string rest;
    if (url.rfind("http://", 0) == 0) {
        rest = url.substr(7);
    } else if (url.rfind("https://", 0) == 0) {
        rest = url.substr(8);
    } else {
        return false;
    }
    if (rest.empty() || rest[0] == '/' || url.size() > 2048) return false;
    for (unsigned char c : url) {
        if (c <= 0x20 || c >= 0x7f) return false;
    }
    return true;
}

std::optional<std::string> validateDeploy(const NewOperation& op, size_t maxPackages,
                                          const std::string& managerOrigin) {
    if (op.packages.empty()) return std::string("Deploy needs at least one package");
    if (auto problem = checkCommon(op, maxPackages)) return problem;
    std::set<std::string> names;
    for (const auto& p : op.packages) names.insert(p.coords.packageName);
    for (size_t i = 0; i < op.packages.size(); ++i) {
        const auto& p = op.packages[i];
        std::string which = "package " + std::to_string(i + 1) + " (" + p.coords.packageName + ")";
        if (!isValidHttpUrl(p.url))
            return which + ": URL '" + clip(p.url) + "' is not an http:// or https:// URL";
        if (!managerOrigin.empty() && originOf(p.url) != managerOrigin)
            return which + ": URL '" + clip(p.url) +
                   "' is not on the Resource Manager this node enrolled with (" + managerOrigin +
                   ")";
        if (!isHex64(p.sha256))
            return which + ": SHA256 '" + clip(p.sha256) + "' is not 64 hexadecimal digits";
        for (const auto& dep : p.dependsOn) {
            if (!deployer::isValidName(dep))
                return which + ": dependsOn '" + clip(dep) + "' is not a package name";
        }
    }
    return std::nullopt;
}

std::optional<std::string> validateUndeploy(const NewOperation& op, size_t maxPackages) {
    // "Everything" is never implied: the RM always names what to remove.
    if (op.packages.empty()) return std::string("Undeploy needs at least one package");
    return checkCommon(op, maxPackages);
}

DeployerEndpoint::DeployerEndpoint(std::shared_ptr<DeployerContext> context)
    : context_(std::move(context)) {}

DeployerEndpoint* DeployerEndpoint::copy() {
    // The generated copy constructor shares the gSOAP context; each worker thread needs its own.
    auto* dup = new DeployerEndpoint(context_);
    soap_done(dup->soap);
    soap_copy_context(dup->soap, soap);
    return dup;
}

int DeployerEndpoint::invalid(const std::string& message) {
    soap_sender_fault(soap, soap_strdup(soap, message.c_str()), nullptr);
    auto* detail = soap_new_rm__FaultDetail(soap);
    detail->message = message;
    auto* envelopeDetail = soap_new_SOAP_ENV__Detail(soap);
    envelopeDetail->rm__InvalidRequestFault = detail;
    soap->fault->detail = envelopeDetail;
    Log(context_->logger, LogLevel::warn, "request_refused")
        .kv("node", context_->slot)
        .kv("reason", message);
    return SOAP_FAULT;
}

int DeployerEndpoint::onlyManager(const char* operation) {
    std::string identity = common::verifiedPeerIdentity(soap);
    if (identity == common::pki::kRmIdentity) return SOAP_OK;
    Log(context_->logger, LogLevel::warn, "access_denied")
        .kv("node", context_->slot)
        .kv("peer", soap->host)
        .kv("identity", identity.empty() ? std::string("-") : identity)
        .kv("operation", operation)
        .kv("reason", "caller is not the Resource Manager this node enrolled with");
    soap_sender_fault(soap,
                      soap_strdup(soap, (std::string(operation) +
                                         " is accepted only from the Resource Manager this node "
                                         "enrolled with (its certificate of the scope CA)")
                                            .c_str()),
                      nullptr);
    return SOAP_FAULT;
}

int DeployerEndpoint::acceptOperation(const NewOperation& op, bool& accepted) {
    auto& ctx = *context_;
    try {
        bool created = ctx.store.journal(op);
        Log(ctx.logger, LogLevel::info, created ? "operation_journaled" : "operation_repeated")
            .kv("node", ctx.slot)
            .kv("callback", op.callbackId)
            .kv("operation", toString(op.kind))
            .kv("scope", op.scope)
            .kv("packages", op.packages.size());
    } catch (const JournalConflict& e) {
        return invalid(e.what());
    } catch (const std::exception& e) {
        Log(ctx.logger, LogLevel::error, "journal_failed")
            .kv("callback", op.callbackId)
            .kv("error", e.what());
        soap_receiver_fault(soap,
                            "the request could not be journaled durably on this node; nothing was "
                            "done, retry later",
                            nullptr);
        return SOAP_FAULT;
    }
    // error/drop: journaled, but the caller hears a failure (a lost reply) and must retry.
    if (op.kind == OperationKind::Deploy && common::faultFails(ctx.faults, "agent.after_journal")) {
        soap_receiver_fault(soap, "fault injected after journaling (agent.after_journal)", nullptr);
        return SOAP_FAULT;
    }
    accepted = true;
    return SOAP_OK;
}

int DeployerEndpoint::Deploy(_rm__Deploy* request, _rm__DeployResponse& response) {
    if (int rc = onlyManager("Deploy")) return rc;
    if (!request) return invalid("empty Deploy request");
    NewOperation op;
    op.slot = context_->slot;
    op.callbackId = request->callbackID;
    op.kind = OperationKind::Deploy;
    op.scope = request->targetScope;
    // Reports go to the RM this node enrolled with, whatever the request names.
    op.callbackEndpoint =
        context_->managerUrl.empty() ? request->callbackEndpoint : context_->managerUrl;
    for (const auto* p : request->package) {
        if (!p) return invalid("empty package element");
        std::string sha = p->SHA256;
        for (auto& c : sha) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        op.packages.push_back(PackageRequest{
            {p->ServiceClass, p->ServiceName, p->ServiceVersion, p->PackageName, p->PackageVersion},
            p->URL,
            sha,
            p->dependsOn});
    }
    if (auto problem =
            validateDeploy(op, context_->maxPackagesPerRequest,
                           context_->managerUrl.empty() ? "" : originOf(context_->managerUrl)))
        return invalid(*problem);
    return acceptOperation(op, response.accepted);
}

int DeployerEndpoint::Undeploy(_rm__Undeploy* request, _rm__UndeployResponse& response) {
    if (int rc = onlyManager("Undeploy")) return rc;
    if (!request) return invalid("empty Undeploy request");
    NewOperation op;
    op.slot = context_->slot;
    op.callbackId = request->callbackID;
    op.kind = OperationKind::Undeploy;
    op.scope = request->targetScope;
    op.callbackEndpoint =
        context_->managerUrl.empty() ? request->callbackEndpoint : context_->managerUrl;
    op.cleanState = request->cleanState ? *request->cleanState : true;
    for (const auto* p : request->package) {
        if (!p) return invalid("empty package element");
        op.packages.push_back(PackageRequest{
            {p->ServiceClass, p->ServiceName, p->ServiceVersion, p->PackageName, p->PackageVersion},
            "",
            "",
            {}});
    }
    if (auto problem = validateUndeploy(op, context_->maxPackagesPerRequest))
        return invalid(*problem);
    return acceptOperation(op, response.accepted);
}

int DeployerEndpoint::GetNodeState(_rm__GetNodeState*, _rm__GetNodeStateResponse& response) {
    auto& ctx = *context_;
    if (int rc = onlyManager("GetNodeState")) return rc;
    std::vector<DeployedPackage> deployed;
    try {
        deployed = ctx.store.deployed(ctx.slot);
    } catch (const std::exception& e) {
        soap_receiver_fault(
            soap,
            soap_strdup(soap, (std::string("cannot read the node state: ") + e.what()).c_str()),
            nullptr);
        return SOAP_FAULT;
    }
    for (const auto& d : deployed) {
        auto* out = soap_new_rm__DeployedPackage(soap);
        out->ServiceClass = d.coords.serviceClass;
        out->ServiceName = d.coords.serviceName;
        out->ServiceVersion = d.coords.serviceVersion;
        out->PackageName = d.coords.packageName;
        out->PackageVersion = d.coords.packageVersion;
        out->SHA256 = d.sha256;
        out->Status = d.state;
        response.package.push_back(out);
        if (auto instance = ctx.handler.instance(d)) {
            auto* info = soap_new_rm__InstanceInfo(soap);
            info->ID = d.instanceId;
            info->ServiceClass = d.coords.serviceClass;
            info->ServiceName = d.coords.serviceName;
            info->PackageName = d.coords.packageName;
            info->pid = instance->pid;
            info->state = instance->state;
            response.instance.push_back(info);
        }
    }
    return SOAP_OK;
}

}  // namespace rm::agent
