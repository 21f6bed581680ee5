// Builds each session's ResourceReport from the durable state and keeps the rendered document
// so GetReport and GET /reports/{id}.xml serve the same bytes without re-rendering.
#pragma once

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "reports/resource_report.h"
#include "service/deployments.h"
#include "service/scope_store.h"

namespace rm::service {

class ReportService {
public:
    ReportService(ScopeStore& store, Deployments& deployments, size_t cacheEntries = 2048);

    // nullopt when no session has this ID.
    std::optional<reports::ResourceReport> report(const std::string& id);
    // The compact document (starts with <ResourceReport>); nullptr when no such session.
    std::shared_ptr<const std::string> xml(const std::string& id);
    // Called whenever anything the report shows changed.
    void invalidate(const std::string& id);

private:
    ScopeStore& store_;
    Deployments& deployments_;
    size_t capacity_;
    std::mutex mutex_;
    std::list<std::string> lru_;  // most recent first
    struct Entry {
        std::shared_ptr<const std::string> xml;
        std::list<std::string>::iterator position;
    };
    std::unordered_map<std::string, Entry> cache_;
    std::atomic<uint64_t> invalidations_{0};
};

}  // namespace rm::service
