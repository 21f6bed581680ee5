#include "service/agent_views.h"

#include <fstream>
#include <iterator>

namespace rm::service {

using common::HttpRequest;
using common::HttpResponse;

HttpResponse repositoryArchive(const RepositorySnapshot& repository,
                               const std::filesystem::path& repositoryDir, const HttpRequest& request) {
    std::string relative = request.path.substr(std::string("/repository/").size());
    auto index = repository ? repository() : nullptr;
    const deployer::IndexedPackage* package = index ? index->findByPath(relative) : nullptr;
    if (!package) return HttpResponse::text(404, "no package archive " + relative + " in the repository");
    std::ifstream in(repositoryDir / package->relativePath, std::ios::binary);
    if (!in) return HttpResponse::text(404, "package archive " + relative + " is no longer readable");
    HttpResponse r;
    r.contentType = "application/gzip";
    r.body.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    r.headers.emplace_back("X-Checksum-SHA256", package->sha256);
    r.headers.emplace_back("ETag", "\"" + package->sha256 + "\"");
    return r;
}

common::HttpRouter makeAgentRouter(const AgentViewSources& sources) {
    common::HttpRouter router;
    router.exact("/healthz", [](const HttpRequest&) { return HttpResponse::text(200, "ok\n"); });
    router.exact("/ca.pem", [sources](const HttpRequest&) {
        HttpResponse r = HttpResponse::text(200, sources.caPem);
        r.contentType = "application/x-pem-file";
        return r;
    });
    router.prefix("/repository/", [sources](const HttpRequest& request) {
        if (request.peerIdentity.empty() || !sources.mayDownload(request.peerIdentity)) {
            return HttpResponse::text(403, "package downloads need the certificate of an enrolled node\n");
        }
        return repositoryArchive(sources.repository, sources.repositoryDir, request);
    });
    return router;
}

}  // namespace rm::service
