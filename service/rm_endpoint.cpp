#include "service/rm_endpoint.h"

#include <Poco/UUIDGenerator.h>

#include <cstring>

#include "common/time_util.h"
#include "service/removal_planner.h"
#include "service/request_validation.h"
#include "service/software_planner.h"

namespace rm::service {

using common::Log;
using common::LogLevel;

ResourceManagerEndpoint::ResourceManagerEndpoint(std::shared_ptr<ResourceManagerContext> context)
    : context_(std::move(context)) {}

ResourceManagerEndpoint* ResourceManagerEndpoint::copy() {
    // The generated copy constructor shares the gSOAP context; a worker thread needs its own
    // context with the same settings, as the generated copy() does.
    auto* dup = new ResourceManagerEndpoint(context_);
    soap_done(dup->soap);
    soap_copy_context(dup->soap, soap);
    return dup;
}

int ResourceManagerEndpoint::fault(Fault kind, const std::string& message) {
    soap_sender_fault(soap, soap_strdup(soap, message.c_str()), nullptr);
    if (kind == Fault::Generic) return SOAP_FAULT;
    auto* detail = soap_new_rm__FaultDetail(soap);
    detail->message = message;
    auto* envelopeDetail = soap_new_SOAP_ENV__Detail(soap);
    switch (kind) {
        case Fault::InvalidScope: envelopeDetail->rm__InvalidScopeFault = detail; break;
        case Fault::InvalidRequest: envelopeDetail->rm__InvalidRequestFault = detail; break;
        case Fault::AccessDenied: envelopeDetail->rm__AccessDeniedFault = detail; break;
        case Fault::NoSuchReport: envelopeDetail->rm__NoSuchReportFault = detail; break;
        case Fault::Generic: break;
    }
    soap->fault->detail = envelopeDetail;
    return SOAP_FAULT;
}

std::string ResourceManagerEndpoint::caller() const {
    std::string who = soap->userid ? soap->userid : "anonymous";
    return who + "@" + soap->host;
}

int ResourceManagerEndpoint::openSession(SessionOperation operation, rm__ScopeRequest* request,
                                         std::string& reportId) {
    auto& ctx = *context_;
    if (int rc = onlyOperatorPort(std::string(toString(operation)).c_str())) return rc;
    if (!request) return fault(Fault::InvalidRequest, "empty request");
    if (request->targetScope != ctx.scope) {
        return fault(Fault::InvalidScope, "target scope '" + request->targetScope.substr(0, 200) +
                                              "' is not managed here; this Resource Manager manages " +
                                              ctx.scope);
    }
    if (int rc = authorize(Role::Operator)) return rc;
    if (auto refused = ctx.processor.refuseNewSession(operation)) return fault(Fault::InvalidRequest, *refused);
    std::vector<ResourceKey> resources;
    if (request->resources) {
        for (const auto* item : request->resources->resource) {
            if (!item) return fault(Fault::InvalidRequest, "empty resource element");
            resources.push_back({item->Type, item->ID});
        }
    }
    std::vector<PackageItemRequest> software;
    if (request->software) {
        const auto& suggested = request->software->suggestedTargetGHNNames;
        for (const auto& name : suggested) {
            if (!isValidIdentifier(name)) return fault(Fault::InvalidRequest, "suggestedTargetGHNNames holds an invalid node name");
        }
        size_t index = 0;
        for (const auto* item : request->software->software) {
            if (!item) return fault(Fault::InvalidRequest, "empty software element");
            PackageItemRequest p{item->ServiceClass, item->ServiceName, {}, {}, {}, {}};
            auto copy = [](const std::string* v) { return v ? std::optional<std::string>(*v) : std::nullopt; };
            p.serviceVersion = copy(item->ServiceVersion);
            p.packageName = copy(item->PackageName);
            p.packageVersion = copy(item->PackageVersion);
            p.targetNode = copy(item->TargetGHNName);
            // Without an explicit target, suggested nodes are used round-robin (a removal takes
            // the service from wherever it is deployed, or from its TargetGHNName only).
            if (!p.targetNode && !suggested.empty() && operation == SessionOperation::AddResources) {
                p.targetNode = suggested[index % suggested.size()];
            }
            if (auto problem = validatePackageItem(p)) return fault(Fault::InvalidRequest, *problem);
            software.push_back(std::move(p));
            ++index;
        }
        if (software.size() > ctx.maxItemsPerRequest) {
            return fault(Fault::InvalidRequest, "too many services in one request (" + std::to_string(software.size()) +
                                                    "; at most " + std::to_string(ctx.maxItemsPerRequest) +
                                                    ", set by --max-items); nothing was changed: split it");
        }
    }
    if (resources.empty() && software.empty()) {
        return fault(Fault::InvalidRequest,
                     "nothing to do: the request lists no resources and no software");
    }
    if (auto problem = validateResources(resources, ctx.maxItemsPerRequest)) {
        return fault(Fault::InvalidRequest, *problem);
    }
    NewSession session;
    session.id = Poco::UUIDGenerator::defaultGenerator().createRandom().toString();
    session.operation = operation;
    session.scope = ctx.scope;
    session.deadlineMs = common::nowMillis() + ctx.processor.sessionTimeout().count();
    session.caller = caller();
    session.resources = std::move(resources);
    if (operation != SessionOperation::AddResources) {
        // What is removed is undeployed from where the RM knows it to be deployed.
        RemovalRequest removal{software, session.resources, false};
        session.services = planRemoval(removalInputs(ctx.store, removal), removal);
    } else if (!software.empty()) {
        auto index = ctx.repository();
        for (const auto& item : software) session.services.push_back(planService(*index, item));
    }
    if (auto refused = ctx.processor.refuseSession(session)) return fault(Fault::InvalidRequest, *refused);
    try {
        ctx.store.createSession(session);
    } catch (const std::exception& e) {
        Log(ctx.logger, LogLevel::error, "session_not_recorded").kv("error", e.what());
        soap_receiver_fault(soap, "the request could not be recorded durably; nothing was changed, retry later", nullptr);
        return SOAP_FAULT;
    }
    ctx.processor.submit(session.id);
    // error/drop: committed (it will run), but the caller hears a failure, as with a lost reply.
    if (operation == SessionOperation::AddResources && common::faultFails(ctx.faults, "rm.after_add_commit")) {
        soap_receiver_fault(soap, "fault injected after the commit (rm.after_add_commit)", nullptr);
        return SOAP_FAULT;
    }
    Log(ctx.logger, LogLevel::info, "session_opened")
        .kv("session", session.id)
        .kv("operation", toString(operation))
        .kv("resources", session.resources.size())
        .kv("services", session.services.size())
        .kv("caller", session.caller);
    reportId = session.id;
    return SOAP_OK;
}

int ResourceManagerEndpoint::AddResources(rm__ScopeRequest* request, _rm__AddResourcesResponse& response) {
    return openSession(SessionOperation::AddResources, request, response.reportID);
}

int ResourceManagerEndpoint::RemoveResources(rm__ScopeRequest* request,
                                             _rm__RemoveResourcesResponse& response) {
    return openSession(SessionOperation::RemoveResources, request, response.reportID);
}

int ResourceManagerEndpoint::DisposeScope(_rm__DisposeScope* request, _rm__DisposeScopeResponse& response) {
    auto& ctx = *context_;
    if (int rc = onlyOperatorPort("DisposeScope")) return rc;
    if (!request || request->targetScope != ctx.scope) {
        return fault(Fault::InvalidScope,
                     "target scope '" + (request ? request->targetScope.substr(0, 200) : std::string()) +
                         "' is not managed here; this Resource Manager manages " + ctx.scope);
    }
    if (int rc = authorize(Role::Operator)) return rc;
    if (auto refused = ctx.processor.refuseNewSession(SessionOperation::DisposeScope)) {
        return fault(Fault::InvalidRequest, *refused);
    }
    NewSession session;
    session.id = Poco::UUIDGenerator::defaultGenerator().createRandom().toString();
    session.operation = SessionOperation::DisposeScope;
    session.scope = ctx.scope;
    session.deadlineMs = common::nowMillis() + ctx.processor.sessionTimeout().count();
    session.caller = caller();
    session.resources = ctx.store.resourcesInScope();
    RemovalRequest everything{{}, session.resources, true};
    session.services = planRemoval(removalInputs(ctx.store, everything), everything);
    if (auto refused = ctx.processor.refuseSession(session)) return fault(Fault::InvalidRequest, *refused);
    ctx.store.createSession(session);
    ctx.processor.submit(session.id);
    Log(ctx.logger, LogLevel::info, "session_opened")
        .kv("session", session.id)
        .kv("operation", "DisposeScope")
        .kv("resources", session.resources.size());
    response.reportID = session.id;
    return SOAP_OK;
}

int ResourceManagerEndpoint::GetReport(_rm__GetReport* request, _rm__GetReportResponse& response) {
    if (int rc = onlyOperatorPort("GetReport")) return rc;
    if (int rc = authorize(Role::Reader)) return rc;
    if (!request || !isValidIdentifier(request->reportID)) {
        return fault(Fault::NoSuchReport, "no report with that ID");
    }
    auto xml = context_->reports.xml(request->reportID);
    if (!xml) return fault(Fault::NoSuchReport, "no report with ID " + request->reportID);
    // gSOAP writes the <ResourceReport> element around the literal content itself, so the bytes
    // on the wire are exactly the cached document.
    static constexpr std::string_view open = "<ResourceReport>";
    static constexpr std::string_view close = "</ResourceReport>";
    size_t innerSize = xml->size() - open.size() - close.size();
    char* inner = static_cast<char*>(soap_malloc(soap, innerSize + 1));
    std::memcpy(inner, xml->data() + open.size(), innerSize);
    inner[innerSize] = '\0';
    response.ResourceReport = inner;
    return SOAP_OK;
}

int ResourceManagerEndpoint::ListResources(_rm__ListResources* request,
                                           _rm__ListResourcesResponse& response) {
    if (int rc = onlyOperatorPort("ListResources")) return rc;
    if (int rc = authorize(Role::Reader)) return rc;
    std::optional<std::string> type;
    std::optional<ResourceState> state;
    if (request && request->type) type = *request->type;
    if (request && request->status) {
        state = parseResourceState(*request->status);
        if (!state) {
            return fault(Fault::Generic,
                         "unknown status '" + request->status->substr(0, 64) +
                             "'; use CREATED, ADDREQUESTED, ADDED, PUBLISHED, REMOVEREQUESTED, "
                             "REMOVED, UNPUBLISHED or LOST");
        }
    }
    for (const auto& r : context_->store.listResources(type, state)) {
        if (!state && r.state == ResourceState::Unpublished) continue;  // left the scope
        auto* out = soap_new_rm__ScopedResource(soap);
        out->ID = r.key.id;
        out->Type = r.key.type;
        out->Status = std::string(toString(r.state));
        if (!r.node.empty()) out->Node = soap_new_std__string(soap, 1), *out->Node = r.node;
        out->LastChange = common::isoTimestamp(common::fromUnixMillis(r.updatedAtMs));
        response.resource.push_back(out);
    }
    return SOAP_OK;
}

int ResourceManagerEndpoint::RegisterNode(_rm__RegisterNode* request, _rm__RegisterNodeResponse& response) {
    auto& ctx = *context_;
    std::string nodeId;
    if (int rc = onlyNode("RegisterNode", request ? request->ID : "", nodeId)) return rc;
    // Agents serve their Deployer port over TLS only: the RM never sends a Deploy in clear.
    if (!request || !isValidIdentifier(request->ID) || !isValidName(request->name) ||
        !isValidEndpoint(request->endpoint) || request->endpoint.rfind("https://", 0) != 0) {
        return fault(Fault::Generic,
                     "RegisterNode needs a valid node ID, a name of [A-Za-z0-9._-] and an https:// endpoint");
    }
    NodeRegistration node;
    node.id = request->ID;
    node.name = request->name;
    node.endpoint = request->endpoint;
    for (const auto* label : request->label) {
        if (!label || !isValidName(label->key) || label->value.size() > 256 ||
            label->value.find_first_of(",=") != std::string::npos) {
            return fault(Fault::Generic, "labels need a key of [A-Za-z0-9._-] and a value without ',' or '='");
        }
        node.labels += (node.labels.empty() ? "" : ",") + label->key + "=" + label->value;
    }
    if (request->capacity) {
        node.cpus = request->capacity->cpus;
        node.memoryMB = request->capacity->memoryMB;
        node.diskFreeMB = request->capacity->diskFreeMB;
        node.maxInstances = request->capacity->maxInstances;
    }
    auto replaced = ctx.store.registerNode(node, common::nowMillis());
    Log(ctx.logger, LogLevel::info, "node_registered")
        .kv("node", node.id)
        .kv("name", node.name)
        .kv("endpoint", node.endpoint)
        .kv("replaced", replaced.value_or("-"));
    response.ack = true;
    response.heartbeatIntervalMs = static_cast<int>(ctx.heartbeatInterval.count());
    return SOAP_OK;
}

int ResourceManagerEndpoint::Heartbeat(_rm__Heartbeat* request, _rm__HeartbeatResponse& response) {
    std::string nodeId;
    if (int rc = onlyNode("Heartbeat", request ? request->ID : "", nodeId)) return rc;
    if (!request || !isValidIdentifier(request->ID)) return fault(Fault::Generic, "Heartbeat needs a valid node ID");
    int running = request->summary ? request->summary->runningInstances : 0;
    double load = request->summary ? request->summary->load : 0;
    int64_t disk = request->summary ? request->summary->diskFreeMB : 0;
    bool known = context_->store.heartbeat(request->ID, request->sequence, running, load, disk,
                                           common::nowMillis());
    response.ack = known;
    response.registered = known;
    return SOAP_OK;
}

int ResourceManagerEndpoint::SendReport(_rm__SendReport* request, _rm__SendReportResponse& response) {
    auto& ctx = *context_;
    std::string nodeId;
    if (int rc = onlyNode("SendReport", request ? request->ID : "", nodeId)) return rc;
    if (!request || !isValidIdentifier(request->callbackID) || !isValidIdentifier(request->ID) || !request->report ||
        (request->report->Status != "OPEN" && request->report->Status != "CLOSED")) {
        return fault(Fault::Generic, "SendReport needs a callbackID, a node ID and a report with Status OPEN or CLOSED");
    }
    std::vector<NodePackageReport> packages;
    if (request->report->Packages) {
        for (const auto* p : request->report->Packages->Package) {
            if (!p) continue;
            packages.push_back({p->ServiceClass, p->ServiceName, p->ServiceVersion, p->PackageName, p->PackageVersion,
                                p->Status, p->Message});
        }
    }
    std::string sessionId;
    Deployments::ReportOutcome outcome;
    try {
        outcome = ctx.deployments.applyReport(request->callbackID, request->ID, request->sequence,
                                              request->report->Status, packages, sessionId);
    } catch (const std::exception& e) {
        // Nothing was committed; the agent keeps the report in its outbox and sends it again.
        Log(ctx.logger, LogLevel::error, "node_report_not_recorded").kv("callback", request->callbackID).kv("error", e.what());
        soap_receiver_fault(soap, "the report could not be recorded durably; send it again later", nullptr);
        return SOAP_FAULT;
    }
    if (outcome == Deployments::ReportOutcome::Unknown || outcome == Deployments::ReportOutcome::Closed) {
        std::string why = outcome == Deployments::ReportOutcome::Unknown
                              ? "no deployment with callbackID '" + request->callbackID.substr(0, 100) +
                                    "' is known here for node " + nodeId
                              : "deployment '" + request->callbackID.substr(0, 100) +
                                    "' is closed: its report is final and is not changed";
        Log(ctx.logger, LogLevel::warn, "node_report_refused")
            .kv("peer", soap->host)
            .kv("node", nodeId)
            .kv("callback", request->callbackID.substr(0, 100))
            .kv("reason", why);
        // InvalidRequestFault: final, the agent drops the report instead of resending it.
        return fault(Fault::InvalidRequest, why);
    }
    if (outcome == Deployments::ReportOutcome::Applied) {
        ctx.reports.invalidate(sessionId);
        ctx.processor.submit(sessionId);
        Log(ctx.logger, LogLevel::info, "node_report_received")
            .kv("session", sessionId)
            .kv("callback", request->callbackID)
            .kv("node", request->ID)
            .kv("sequence", request->sequence)
            .kv("status", request->report->Status);
    }
    response.ack = true;
    return SOAP_OK;
}

int ResourceManagerEndpoint::ListNodes(_rm__ListNodes*, _rm__ListNodesResponse& response) {
    if (int rc = onlyOperatorPort("ListNodes")) return rc;
    if (int rc = authorize(Role::Reader)) return rc;
    for (const auto& node : context_->store.nodeStatuses()) {
        auto* out = soap_new_rm__NodeInfo(soap);
        out->ID = node.record.id;
        out->name = node.record.name;
        out->endpoint = node.record.endpoint;
        out->liveness = node.record.liveness;
        out->lastHeartbeat = common::isoTimestamp(common::fromUnixMillis(node.record.lastHeartbeatMs));
        out->load = node.load;
        out->runningInstances = node.runningInstances;
        std::string labels = node.record.labels;
        size_t start = 0;
        while (start < labels.size()) {
            size_t end = labels.find(',', start);
            if (end == std::string::npos) end = labels.size();
            std::string pair = labels.substr(start, end - start);
            auto eq = pair.find('=');
            auto* label = soap_new_rm__Label(soap);
            label->key = pair.substr(0, eq);
            label->value = eq == std::string::npos ? "" : pair.substr(eq + 1);
            out->label.push_back(label);
            start = end + 1;
        }
        response.node.push_back(out);
    }
    return SOAP_OK;
}

}  // namespace rm::service
