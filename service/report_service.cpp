#include "service/report_service.h"

#include "common/time_util.h"
#include "reports/report_xml.h"

namespace rm::service {

ReportService::ReportService(ScopeStore& store, Deployments& deployments, size_t cacheEntries)
    : store_(store), deployments_(deployments), capacity_(cacheEntries) {}

std::optional<reports::ResourceReport> ReportService::report(const std::string& id) {
    auto session = store_.session(id);
    if (!session) return std::nullopt;
    reports::ResourceReport r;
    r.id = session->id;
    r.status = session->open ? "OPEN" : "CLOSED";
    if (!session->open && session->succeeded) r.sessionExitStatus = *session->succeeded ? "SUCCESS" : "FAILED";
    r.operation = std::string(toString(session->operation));
    r.lastUpdate = common::isoTimestamp(common::fromUnixMillis(session->updatedAtMs));
    r.targetScope = session->scope;
    r.activityKind = reports::activityKindFor(r.operation);
    for (const auto& svc : store_.sessionServices(id)) {
        reports::ServiceEntry entry;
        entry.serviceClass = svc.plan.serviceClass;
        entry.serviceName = svc.plan.serviceName;
        entry.serviceVersion = svc.plan.serviceVersion;
        entry.resolutionStatus = svc.plan.resolved ? "SUCCESS" : "FAILED";
        entry.deployedOn = svc.deployedOn.empty() ? std::string(reports::kNotDeployed) : svc.deployedOn;
        entry.errorDescription = svc.error == "-" ? std::string() : svc.error;
        auto toDependency = [](const ServiceDependency& d) {
            return reports::Dependency{d.serviceClass, d.serviceName, d.serviceVersion, d.packageName, d.packageVersion};
        };
        for (const auto& d : svc.plan.resolvedDependencies) entry.resolved.push_back(toDependency(d));
        for (const auto& d : svc.plan.missingDependencies) entry.missing.push_back(toDependency(d));
        r.services.push_back(std::move(entry));
    }
    r.ghns = deployments_.activity(id);
    for (const auto& item : store_.sessionResources(id)) {
        r.resources.push_back({item.key.id, item.key.type, item.status,
                               item.error == "-" ? std::string() : item.error});
    }
    return r;
}

std::shared_ptr<const std::string> ReportService::xml(const std::string& id) {
    {
        std::lock_guard lock(mutex_);
        auto it = cache_.find(id);
        if (it != cache_.end()) {
            lru_.splice(lru_.begin(), lru_, it->second.position);
            return it->second.xml;
        }
    }
    uint64_t before = invalidations_.load();
    auto model = report(id);
    if (!model) return nullptr;
    auto rendered = std::make_shared<const std::string>(reports::renderReportXml(*model));
    std::lock_guard lock(mutex_);
    // A change that landed while we read may be missing from what we rendered: serve it once,
    // but do not keep it.
    if (invalidations_.load() != before) return rendered;
    auto it = cache_.find(id);
    if (it != cache_.end()) return it->second.xml;
    lru_.push_front(id);
    cache_.emplace(id, Entry{rendered, lru_.begin()});
    while (cache_.size() > capacity_) {
        cache_.erase(lru_.back());
        lru_.pop_back();
    }
    return rendered;
}

void ReportService::invalidate(const std::string& id) {
    std::lock_guard lock(mutex_);
    ++invalidations_;
    auto it = cache_.find(id);
    if (it == cache_.end()) return;
    lru_.erase(it->second.position);
    cache_.erase(it);
}

}  // namespace rm::service
