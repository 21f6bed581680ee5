// What the RM serves over plain HTTP GET on its SOAP port (SPEC section 9).
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "common/http.h"
#include "common/log.h"
#include "deployer/repository_index.h"
#include "service/access_policy.h"
#include "service/agent_views.h"
#include "service/report_service.h"
#include "service/scope_store.h"

namespace rm::service {

struct ViewSources {
    std::string scope;
    ScopeStore& store;
    ReportService& reports;
    std::string wsdlText;                            // the contract, served at /wsdl
    std::function<std::string()> serviceUrl;         // where this RM answers, for the WSDL
    std::function<std::string()> engineJson;         // GET /engine
    std::function<std::string()> extraMetrics;       // appended to /metrics
    std::function<std::shared_ptr<const deployer::RepositoryIndex>()> repository;
    std::filesystem::path repositoryDir;             // archives are served from here
    // With a users file, every route but /healthz needs a `reader` (HTTP Basic); without
    // credentials or with wrong ones: 401 and `WWW-Authenticate: Basic realm="SCOPE"`.
    // nullptr or an open policy: no check.
    const AccessPolicy* access = nullptr;
    common::Logger* logger = nullptr;                // where denials are logged
};

common::HttpRouter makeRouter(const ViewSources& sources);

}  // namespace rm::service
