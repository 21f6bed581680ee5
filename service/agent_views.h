// What the RM serves over plain HTTP GET on its agent port (--agent-listen, SPEC section 10):
// the scope CA certificate (public: agents check it against their --ca-sha256 pin before they
// enroll), the package archives (to enrolled, unrevoked nodes only) and /healthz.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "common/http.h"
#include "deployer/repository_index.h"

namespace rm::service {

using RepositorySnapshot = std::function<std::shared_ptr<const deployer::RepositoryIndex>()>;

// A package archive the index knows (never an arbitrary path), with its SHA-256.
common::HttpResponse repositoryArchive(const RepositorySnapshot& repository,
                                       const std::filesystem::path& repositoryDir,
                                       const common::HttpRequest& request);

struct AgentViewSources {
    std::string caPem;
    RepositorySnapshot repository;
    std::filesystem::path repositoryDir;
    // True when `nodeId` (a verified certificate's CN) may download: a node, not revoked.
    std::function<bool(const std::string& nodeId)> mayDownload;
};

common::HttpRouter makeAgentRouter(const AgentViewSources& sources);

}  // namespace rm::service
