#include "service/rm_daemon.h"

#include <fstream>
#include <sstream>

#include "common/daemon.h"
#include "common/net_address.h"
#include "common/pki.h"
#include "common/tls.h"
#include "common/time_util.h"
#include "common/value_worker.h"
#include "deployer/repository.h"
#include "service/access_policy.h"
#include "service/agent_views.h"
#include "service/deployments.h"
#include "service/report_service.h"
#include "service/request_validation.h"
#include "service/rm_endpoint.h"
#include "service/software_planner.h"
#include "service/scope_store.h"
#include "service/session_processor.h"
#include "service/views.h"

namespace rm::service {

using common::Log;
using common::LogLevel;
using common::OptionSpec;

common::Settings rmSettings() {
    return common::Settings(
        "resource-manager", "The Resource Manager of one scope: SOAP endpoint, browser views, scope state.",
        common::withTlsOptions({
            {"scope", "the scope this RM manages, e.g. /gcube/devsec", {}, true},
            {"listen", "HOST:PORT to serve SOAP and HTTP on (port 0 picks a free one)", "127.0.0.1:8080"},
            {"agent-listen", "HOST:PORT to serve node agents on, always TLS with the scope CA (port 0 picks "
                             "a free one)", "127.0.0.1:8443"},
            {"server-names", "host names people and agents reach this RM by (DNS aliases, a proxy's name), "
                             "k,k; requests naming any other Host are refused (DNS rebinding); the listen "
                             "address, localhost and the machine's names are always accepted", ""},
            {"node-cert-ttl", "lifetime of the certificates issued to nodes (30d, 12h, 90s); agents renew "
                              "theirs at two thirds of it", "30d"},
            {"insecure", "serve the operator port off loopback without --users and TLS (never in "
                         "production)", "false", false, true},
            {"state-dir", "directory for the durable state (created if missing)", {}, true},
            {"repository", "directory of package archives (the software repository)", {}, true},
            {"threads", "worker threads serving connections", "16"},
            {"io-timeout-ms", "per-read/write and idle keep-alive timeout", "10000"},
            {"max-message-bytes", "largest SOAP request accepted", "8388608"},
            {"max-items", "most resources or services in one request", "10000"},
            {"max-resources", "most resources in the scope (any state but UNPUBLISHED); an AddResources "
                              "that would go past it is refused", "100000"},
            {"max-open-sessions", "most sessions OPEN at once; a new request meanwhile is refused (retry "
                                  "later)", "1000"},
            {"max-sessions-kept", "CLOSED sessions kept with their reports; older ones are pruned, oldest "
                                  "first", "10000"},
            {"max-report-bytes", "largest report a request may have; a request whose report would "
                                 "obviously be larger is refused (the default holds a DisposeScope of a "
                                 "full scope at the default --max-resources)", "16777216"},
            {"session-timeout-ms", "a session still open after this long is closed FAILED", "600000"},
            {"heartbeat-interval-ms", "how often node agents are told to heartbeat", "2000"},
            {"node-lost-after-ms", "a node silent for this long is marked LOST", "10000"},
            {"reschedule-on-lost", "a service whose node goes LOST while deploying it is deployed on another "
                                   "suitable live node instead of failing", "false"},
            {"users", "users file; when set, mutating operations need HTTP Basic credentials", {}},
            {"wsdl", "the WSDL file to serve at /wsdl (default: share/ResourceManager.wsdl beside the binary)", {}},
            {"engine-seed", "seed for the engine's restart jitter (replays a run)", {}},
            {"log-level", "debug, info, warn or error", "info"},
        }));
}

RmConfig loadRmConfig(const common::Settings& s, const std::filesystem::path& programDir) {
    RmConfig c;
    c.scope = s.get("scope");
    if (!isValidScope(c.scope)) {
        throw common::UsageError("--scope '" + c.scope +
                                 "' is not a scope: use /segment[/segment...] with segments of "
                                 "[A-Za-z0-9._-]");
    }
    try {
        common::parseListen(s.get("listen"), c.server);
    } catch (const std::exception& e) {
        throw common::UsageError(e.what());
    }
    try {
        common::parseListen(s.get("agent-listen"), c.agentServer);
    } catch (const std::exception& e) {
        throw common::UsageError(std::string("--agent-listen: ") + e.what());
    }
    auto ttl = common::parseDuration(s.get("node-cert-ttl"));
    if (!ttl || ttl->count() < 30) {
        throw common::UsageError("--node-cert-ttl '" + s.get("node-cert-ttl") +
                                 "' is not a duration of at least 30s (e.g. 30d, 12h, 90s)");
    }
    c.nodeCertificateTtl = *ttl;
    c.insecure = s.getBool("insecure");
    if (auto aliases = s.getList("server-names"); !aliases.empty()) {
        c.server.serverNames = common::defaultServerNames(c.server.host);
        c.agentServer.serverNames = common::defaultServerNames(c.agentServer.host);
        for (const auto& name : aliases) {
            c.server.serverNames.push_back(name);
            c.agentServer.serverNames.push_back(name);
        }
    }
    c.stateDir = s.get("state-dir");
    c.repositoryDir = s.get("repository");
    c.server.threads = static_cast<int>(s.getInt("threads"));
    c.server.ioTimeout = std::chrono::seconds(std::max<int64_t>(1, s.getInt("io-timeout-ms") / 1000));
    c.server.maxMessageBytes = static_cast<uint64_t>(s.getInt("max-message-bytes"));
    c.agentServer.threads = c.server.threads;
    c.agentServer.ioTimeout = c.server.ioTimeout;
    c.agentServer.maxMessageBytes = c.server.maxMessageBytes;
    c.sessionTimeout = s.getMillis("session-timeout-ms");
    if (s.getInt("max-items") < 1) throw common::UsageError("--max-items must be at least 1");
    c.maxItems = static_cast<size_t>(s.getInt("max-items"));
    auto atLeast = [&s](const char* flag, int64_t least) {
        int64_t value = s.getInt(flag);
        if (value < least) throw common::UsageError(std::string("--") + flag + " must be at least " + std::to_string(least));
        return value;
    };
    c.maxResources = atLeast("max-resources", 1);
    c.maxOpenSessions = atLeast("max-open-sessions", 1);
    c.maxSessionsKept = atLeast("max-sessions-kept", 1);
    c.maxReportBytes = atLeast("max-report-bytes", 1024);
    c.heartbeatInterval = s.getMillis("heartbeat-interval-ms");
    c.nodeLostAfter = s.getMillis("node-lost-after-ms");
    c.rescheduleOnLost = s.getBool("reschedule-on-lost");
    if (s.has("users")) c.usersFile = s.get("users");
    c.server.tls = common::loadTlsOptions(s);
    if (!common::isLoopbackHost(c.server.host) && !c.insecure &&
        (c.usersFile.empty() || !c.server.tls.enabled())) {
        throw common::UsageError("--listen " + s.get("listen") +
                                 " is not a loopback address: serving people on a network needs "
                                 "--users (who may do what) and --tls-key (HTTPS); give both, or "
                                 "--insecure to serve it open anyway");
    }
    c.wsdlFile = s.has("wsdl") ? std::filesystem::path(s.get("wsdl"))
                               : programDir.parent_path() / "share" / "ResourceManager.wsdl";
    if (s.has("engine-seed")) c.engine.seed = static_cast<uint64_t>(s.getInt("engine-seed"));
    if (c.server.threads < 1 || c.server.threads > 1024) throw common::UsageError("--threads must be 1..1024");
    if (c.sessionTimeout.count() < 1000) throw common::UsageError("--session-timeout-ms must be at least 1000");
    return c;
}

namespace {

// Everything the RM keeps durable, opened together.
struct RmState {
    RmState(const RmConfig& config, common::Logger& logger, common::FaultPoints* faults)
        : ca(config.stateDir / "pki", config.scope, {config.agentServer.host}, logger),
          identities(config.stateDir / "identity.db"),
          store(config.stateDir, logger),
          // The RM calls agents as itself, and trusts only nodes of its own CA.
          deployments(store, logger, faults,
                      common::TlsClientOptions{ca.rmKeyFile().string(), ca.caFile().string(), {}},
                      ca.callbackSecret()),
          reports(store, deployments) {}
    ScopeCa ca;
    IdentityStore identities;
    ScopeStore store;
    Deployments deployments;
    ReportService reports;
};

    // The server refers to the state, processor and policy: the worker keeps them alive.
    struct Api {
        std::shared_ptr<RmState> state;
        std::shared_ptr<SessionProcessor> processor;
        std::shared_ptr<AccessPolicy> access;
        std::shared_ptr<deployer::Repository> repository;
        std::shared_ptr<std::string> url;
        std::shared_ptr<std::string> agentUrl;
        std::unique_ptr<common::SoapServer> server;
        std::unique_ptr<common::SoapServer> agentServer;
        ~Api() {
            agentServer.reset();
            server.reset();
        }
    };

void logRescan(common::Logger& logger, deployer::Repository& repository, const deployer::RescanResult& changes) {
    if (changes.added.empty() && changes.replaced.empty() && changes.removed.empty()) return;
    Log(logger, LogLevel::info, "repository_indexed")
        .kv("packages", repository.snapshot()->size())
        .kv("added", changes.added.size())
        .kv("replaced", changes.replaced.size())
        .kv("removed", changes.removed.size());
    for (const auto& problem : repository.problems()) {
        Log(logger, LogLevel::warn, "repository_problem").kv("file", problem.file).kv("reason", problem.reason);
    }
}

std::string readFile(const std::filesystem::path& file) {
    std::ifstream in(file);
    if (!in) throw std::runtime_error("cannot read " + file.string());
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

}  // namespace

ResourceManagerDaemon::ResourceManagerDaemon(RmConfig config, common::Logger& logger)
    : config_(std::move(config)),
      logger_(logger),
      faults_(common::FaultPoints::fromEnvironment(config_.stateDir, logger)),
      engine_(config_.engine, [&logger](std::string_view level, std::string_view message) {
          logger.write(level == "error" ? LogLevel::error : level == "warn" ? LogLevel::warn : LogLevel::info,
                       message);
      }) {}

ResourceManagerDaemon::~ResourceManagerDaemon() { stop(); }

void ResourceManagerDaemon::start() {
    if (!std::filesystem::is_directory(config_.repositoryDir)) {
        throw std::runtime_error("repository " + config_.repositoryDir.string() +
                                 " is not a directory (give --repository a directory of package archives)");
    }
    std::filesystem::create_directories(config_.stateDir);
    installManifolds();
    engine_.start();
}

void ResourceManagerDaemon::stop() { engine_.stop(); }

void ResourceManagerDaemon::installManifolds() {
    auto access = std::make_shared<AccessPolicy>(
        config_.usersFile.empty() ? AccessPolicy() : AccessPolicy::fromFile(config_.usersFile));
    if (access->open()) {
        Log(logger_, LogLevel::warn, "access_open")
            .kv("hint", "every caller may change the scope; set --users to require credentials");
    }
    if (config_.insecure && !common::isLoopbackHost(config_.server.host)) {
        Log(logger_, LogLevel::warn, "insecure_operator_port")
            .kv("listen", config_.server.host)
            .kv("users", config_.usersFile.empty() ? "none" : "set")
            .kv("tls", config_.server.tls.enabled() ? "on" : "off")
            .kv("hint", "--insecure: anyone who reaches this port may be served; give --users and --tls-key");
    }
    std::string wsdl = readFile(config_.wsdlFile);

    engine_.install("state", {
        {},
        [this](engine::Context&) -> std::unique_ptr<engine::Worker> {
            auto state = std::make_shared<RmState>(config_, logger_, faults());
            Log(logger_, LogLevel::info, "state_opened")
                .kv("dir", config_.stateDir.string())
                .kv("resources", state->store.resourceCount());
            return std::make_unique<engine::ValueWorker<RmState>>(state);
        },
        engine::ValueWorker<RmState>::output,
    });

    engine_.install("repository", {
        {},
        [this](engine::Context&) -> std::unique_ptr<engine::Worker> {
            auto repository = std::make_shared<deployer::Repository>(config_.repositoryDir);
            logRescan(logger_, *repository, repository->rescan());
            // Level-triggered: look again every couple of seconds; unchanged files are not re-hashed.
            return std::make_unique<engine::ServiceWorker<deployer::Repository>>(
                repository, [this](deployer::Repository& r, std::stop_token stop) {
                    std::mutex m;
                    std::condition_variable_any cv;
                    while (!stop.stop_requested()) {
                        std::unique_lock lock(m);
                        if (cv.wait_for(lock, stop, std::chrono::seconds(2), [] { return false; })) break;
                        lock.unlock();
                        if (!stop.stop_requested()) logRescan(logger_, r, r.rescan());
                    }
                });
        },
        engine::ServiceWorker<deployer::Repository>::output,
    });

    engine_.install("sessions", {
        {"state"},
        [this](engine::Context& ctx) -> std::unique_ptr<engine::Worker> {
            auto state = ctx.get<std::shared_ptr<RmState>>("state");
            auto processor = std::make_shared<SessionProcessor>(
                state->store, state->deployments, state->reports, logger_,
                SessionProcessorOptions{config_.sessionTimeout, std::chrono::milliseconds(1000),
                                        {config_.maxResources, config_.maxOpenSessions, config_.maxSessionsKept,
                                         config_.maxReportBytes},
                                        faults()});
            // The processor refers to the state; keep it alive as long as the thread runs.
            return std::make_unique<engine::ServiceWorker<SessionProcessor>>(
                processor, [state](SessionProcessor& p, std::stop_token stop) { p.run(stop); });
        },
        engine::ServiceWorker<SessionProcessor>::output,
    });

    engine_.install("presence", {
        {"state", "sessions"},
        [this](engine::Context& ctx) -> std::unique_ptr<engine::Worker> {
            auto state = ctx.get<std::shared_ptr<RmState>>("state");
            auto processor = ctx.get<std::shared_ptr<SessionProcessor>>("sessions");
            auto lostAfter = config_.nodeLostAfter;
            bool reschedule = config_.rescheduleOnLost;
            return std::make_unique<engine::ThreadWorker>([this, state, processor, lostAfter,
                                                           reschedule](std::stop_token stop) {
                std::mutex m;
                std::condition_variable_any cv;
                while (!stop.stop_requested()) {
                    for (const auto& id : state->store.markSilentNodesLost(common::nowMillis() - lostAfter.count())) {
                        Log(logger_, LogLevel::warn, "node_lost").kv("node", id).kv("silent_ms", lostAfter.count());
                        for (const auto& session : state->deployments.nodeLost(id, reschedule)) {
                            state->reports.invalidate(session);
                            processor->submit(session);
                        }
                    }
                    std::unique_lock lock(m);
                    cv.wait_for(lock, stop, std::chrono::milliseconds(500), [] { return false; });
                }
            });
        },
        {},
    });

    engine_.install("api", {
        {"state", "sessions", "repository"},
        [this, access, wsdl](engine::Context& ctx) -> std::unique_ptr<engine::Worker> {
            auto state = ctx.get<std::shared_ptr<RmState>>("state");
            auto processor = ctx.get<std::shared_ptr<SessionProcessor>>("sessions");
            auto repository = ctx.get<std::shared_ptr<deployer::Repository>>("repository");
            auto snapshot = [repository] { return repository->snapshot(); };
            auto context = std::shared_ptr<ResourceManagerContext>(new ResourceManagerContext{
                config_.scope, state->store, state->deployments, *processor, state->reports, *access, logger_,
                snapshot, config_.heartbeatInterval, config_.maxItems, faults()});
            auto agentUrl = std::make_shared<std::string>();
            context->ca = &state->ca;
            context->identities = &state->identities;
            context->nodeCertificateTtl = config_.nodeCertificateTtl;
            context->agentUrl = [agentUrl] { return *agentUrl; };
            common::ServerOptions options = config_.server;
            if (boundPort_ != 0) options.port = boundPort_;
            auto url = std::make_shared<std::string>();
            ViewSources sources{config_.scope, state->store, state->reports, wsdl,
                                [url] { return *url; }, [this] { return engine_.reportJson(); }, {},
                                snapshot, config_.repositoryDir, access.get(), &logger_};
            auto api = std::make_shared<Api>();
            api->state = state;
            api->processor = processor;
            api->access = access;
            api->repository = repository;
            api->url = url;
            api->server = std::make_unique<common::SoapServer>(
                options,
                std::make_unique<common::GeneratedEndpoint<ResourceManagerEndpoint>>(
                    std::make_unique<ResourceManagerEndpoint>(context)),
                makeRouter(sources), logger_);
            api->server->start();
            *url = api->server->url();
            boundPort_ = api->server->port();

            // The agent port: the same port type, but only the node operations, for enrolled
            // nodes (and EnrollNode for those holding a join token).
            auto agentContext = std::make_shared<ResourceManagerContext>(*context);
            agentContext->port = ResourceManagerContext::Port::Agent;
            common::ServerOptions agentOptions = config_.agentServer;
            if (boundAgentPort_ != 0) agentOptions.port = boundAgentPort_;
            agentOptions.tls = {state->ca.rmKeyFile().string(), state->ca.caFile().string(), {}, false};
            IdentityStore* identities = &state->identities;
            AgentViewSources agentSources{
                state->ca.caPem(), snapshot, config_.repositoryDir, [identities](const std::string& node) {
                    return node != common::pki::kRmIdentity && !identities->isRevoked(node);
                }};
            api->agentUrl = agentUrl;
            api->agentServer = std::make_unique<common::SoapServer>(
                agentOptions,
                std::make_unique<common::GeneratedEndpoint<ResourceManagerEndpoint>>(
                    std::make_unique<ResourceManagerEndpoint>(agentContext)),
                makeAgentRouter(agentSources), logger_);
            api->agentServer->start();
            *agentUrl = api->agentServer->url();
            boundAgentPort_ = api->agentServer->port();
            if (!announced_) {
                common::announceUrl(*url);
                common::announceUrl("agents: " + *agentUrl);
                Log(logger_, LogLevel::info, "agent_port")
                    .kv("url", *agentUrl)
                    .kv("ca_sha256", state->ca.caSha256());
                announced_ = true;
            }
            return std::make_unique<engine::ValueWorker<Api>>(api);
        },
        // What the dispatcher needs: where agents download packages and send reports.
        [](engine::Worker& w) -> std::any {
            return dynamic_cast<engine::ValueWorker<Api>&>(w).value()->agentUrl;
        },
    });

    engine_.install("dispatcher", {
        {"state", "api"},
        [](engine::Context& ctx) -> std::unique_ptr<engine::Worker> {
            auto state = ctx.get<std::shared_ptr<RmState>>("state");
            auto url = ctx.get<std::shared_ptr<std::string>>("api");
            return std::make_unique<engine::ThreadWorker>([state, url](std::stop_token stop) {
                state->deployments.runDispatcher(stop, [url] { return *url; });
            });
        },
        {},
    });
}

}  // namespace rm::service
