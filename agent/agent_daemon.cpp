#include "agent/agent_daemon.h"

#include <algorithm>
#include <sstream>
#include <thread>

#include "agent/agent_store.h"
#include "agent/container_packages.h"
#include "agent/deploy_executor.h"
#include "agent/deployer_endpoint.h"
#include "agent/downloader.h"
#include "agent/enrollment.h"
#include "agent/hollow.h"
#include "agent/outbox_sender.h"
#include "agent/presence.h"
#include "agent/supervisor.h"
#include "common/daemon.h"
#include "common/durable_file.h"
#include "common/engine_report.h"
#include "common/pki.h"
#include "common/time_util.h"
#include "common/tls.h"
#include "common/value_worker.h"
#include "deployer/profile.h"

namespace rm::agent {

using common::Log;
using common::LogLevel;

namespace {

// The real node's rows in the store; fixed so that renaming the node keeps its identity.
constexpr const char* kLocalSlot = "local";

}  // namespace

// Each slot's node certificate, offered by the identity worker while it is valid.
struct NodeIdentities {
    std::map<std::string, NodeCredentials> bySlot;
    const NodeCredentials& of(const std::string& slot) const { return bySlot.at(slot); }
};

common::Settings agentSettings() {
    return common::Settings(
        "node-agent",
        "The node agent: Deployer endpoint, package containers and supervision of what runs.",
        std::vector<common::OptionSpec>({
            {"name",
             "this node's name, [A-Za-z0-9._-] (hollow mode: prefix of NAME-0001...)",
             {},
             true},
            {"listen", "HOST:PORT to serve SOAP and HTTP on (port 0 picks a free one)",
             "127.0.0.1:9001"},
            {"manager", "the Resource Manager's agent port, e.g. https://127.0.0.1:8443", {}, true},
            {"join-token",
             "join token for the first start (rmctl token create); prefer --join-token-file: "
             "a command line is visible to every user of the machine",
             {}},
            {"join-token-file", "file holding the join token for the first start", {}},
            {"ca-sha256",
             "SHA-256 of the scope CA certificate, checked before enrolling (rmctl token create "
             "prints it)",
             {}},
            {"root", "directory for the agent's state and the package containers", {}, true},
            {"labels", "node labels, k=v,k=v", ""},
            {"server-names",
             "host names the RM reaches this node by, besides its listen address and the "
             "machine's names (requests naming any other Host are refused)",
             ""},
            {"heartbeat-interval-ms", "heartbeat period (default: what RegisterNode answers)", {}},
            {"keep-processes-on-exit",
             "leave services running when the agent stops; adopted on restart", "true"},
            {"max-instances", "capacity announced to the RM: most running instances", "100"},
            {"max-parallel", "operations on distinct packages carried out at once", "4"},
            {"threads", "worker threads serving connections", "4"},
            {"hollow", "run N simulated nodes in this process (no files, no processes)", "0"},
            {"hollow-step-ms", "hollow mode: how long each simulated step takes", "50"},
            {"engine-seed", "seed for the engine's restart jitter (replays a run)", {}},
            {"log-level", "debug, info, warn or error", "info"},
            {"run-as",
             "user every lifecycle step and package process runs as, never root; an agent "
             "running as root defaults to rm-svc, one that is not root runs them as itself",
             {}},
        }));
}

AgentConfig loadAgentConfig(const common::Settings& s) {
    AgentConfig c;
    c.name = s.get("name");
    if (!deployer::isValidName(c.name)) {
        throw common::UsageError("--name '" + c.name +
                                 "' is not valid: use 1-128 characters of [A-Za-z0-9._-]");
    }
    try {
        common::parseListen(s.get("listen"), c.server);
    } catch (const std::exception& e) {
        throw common::UsageError(e.what());
    }
    c.managerUrl = s.get("manager");
    if (!isValidHttpUrl(c.managerUrl) || c.managerUrl.rfind("https://", 0) != 0) {
        throw common::UsageError(
            "--manager '" + c.managerUrl +
            "' is not an https:// URL: give the RM's agent port (its second line "
            "of output, 'agents: URL')");
    }
    while (c.managerUrl.size() > 8 && c.managerUrl.back() == '/') c.managerUrl.pop_back();
    if (s.has("join-token") && s.has("join-token-file"))
        throw common::UsageError("give --join-token or --join-token-file, not both");
    if (s.has("join-token")) c.joinToken = s.get("join-token");
    if (s.has("join-token-file")) {
        try {
            c.joinToken = common::readWholeFile(s.get("join-token-file"));
        } catch (const std::exception& e) {
            throw common::UsageError(std::string("--join-token-file: ") + e.what());
        }
        while (!c.joinToken.empty() && std::isspace(static_cast<unsigned char>(c.joinToken.back())))
            c.joinToken.pop_back();
    }
    if (s.has("ca-sha256")) {
        c.caSha256 = s.get("ca-sha256");
        if (!isSha256Hex(c.caSha256))
            throw common::UsageError(
                "--ca-sha256 must be 64 hexadecimal digits (rmctl token create prints it)");
    }
    if (!c.joinToken.empty() && c.caSha256.empty())
        throw common::UsageError(
            "--join-token needs --ca-sha256: the token is only sent to the RM whose CA "
            "matches the pin");
    c.root = s.get("root");
    if (auto aliases = s.getList("server-names"); !aliases.empty()) {
        c.server.serverNames = common::defaultServerNames(c.server.host);
        c.server.serverNames.insert(c.server.serverNames.end(), aliases.begin(), aliases.end());
    }
    for (const auto& pair : s.getList("labels")) {
        auto eq = pair.find('=');
        std::string key = pair.substr(0, eq);
        std::string value = eq == std::string::npos ? "" : pair.substr(eq + 1);
        if (!deployer::isValidName(key) || value.find('=') != std::string::npos ||
            value.size() > 256) {
            throw common::UsageError("--labels entry '" + pair +
                                     "' is not key=value with a key of [A-Za-z0-9._-]");
        }
        c.labels.emplace_back(key, value);
    }
    if (s.has("heartbeat-interval-ms")) {
        c.heartbeatInterval = s.getMillis("heartbeat-interval-ms");
        if (c.heartbeatInterval->count() < 10)
            throw common::UsageError("--heartbeat-interval-ms must be at least 10");
    }
    c.keepProcessesOnExit = s.getBool("keep-processes-on-exit");
    c.maxInstances = static_cast<int>(s.getInt("max-instances"));
    c.maxParallel = static_cast<std::size_t>(std::max<int64_t>(1, s.getInt("max-parallel")));
    c.server.threads = static_cast<int>(s.getInt("threads"));
    if (c.server.threads < 1 || c.server.threads > 256)
        throw common::UsageError("--threads must be 1..256");
    c.hollow = static_cast<int>(s.getInt("hollow"));
    if (c.hollow < 0 || c.hollow > 9999) throw common::UsageError("--hollow must be 0..9999");
    c.hollowStep = s.getMillis("hollow-step-ms");
    if (s.has("engine-seed")) c.engine.seed = static_cast<uint64_t>(s.getInt("engine-seed"));
    c.runAs = configureRunAs(s.has("run-as") ? s.get("run-as") : "", c.root, c.hollow == 0);
    return c;
}

namespace {

// What the api offers to presence: the URL each node serves on, by slot.
struct Api {
    std::vector<std::unique_ptr<common::SoapServer>> servers;
    std::map<std::string, std::string> urls;
    // Kept alive as long as the servers, which refer to them.
    std::shared_ptr<AgentStore> store;
    std::shared_ptr<PackageHandler> handler;
    ~Api() {
        for (auto& s : servers) s->stop();
    }
};

// The real node's supervisor and the handler deploying packages into containers.
struct Runtime {
    std::unique_ptr<Supervisor> supervisor;
    std::shared_ptr<ContainerPackages> handler;
    bool keepProcesses = true;
    common::Logger* logger = nullptr;
    ~Runtime() {
        if (!keepProcesses) {
            Log(*logger, LogLevel::info, "stopping_processes")
                .kv("reason", "--keep-processes-on-exit=false");
            supervisor->stopAll();
        }
        // Otherwise the Supervisor's destructor detaches: services keep running and are adopted
        // later.
    }
};

std::string stateJson(AgentStore& store, const std::string& slot, const Presence* presence,
                      const std::string& url) {
    std::ostringstream out;
    out << "{\"node\":" << engine::jsonQuote(slot)
        << ",\"id\":" << engine::jsonQuote(store.nodeId(slot))
        << ",\"url\":" << engine::jsonQuote(url);
    if (presence) {
        if (auto st = presence->status(slot)) {
            out << ",\"registered\":" << (st->registered ? "true" : "false")
                << ",\"heartbeats\":" << st->heartbeats
                << ",\"presenceError\":" << engine::jsonQuote(st->lastError);
        }
    }
    int open = 0;
    for (const auto& op : store.openOperations()) open += op.slot == slot ? 1 : 0;
    out << ",\"openOperations\":" << open << ",\"outbox\":" << store.outboxSize()
        << ",\"packages\":[";
    bool first = true;
    for (const auto& d : store.deployed(slot)) {
        out << (first ? "" : ",") << "{\"package\":" << engine::jsonQuote(d.coords.key())
            << ",\"state\":" << engine::jsonQuote(d.state)
            << ",\"sha256\":" << engine::jsonQuote(d.sha256) << "}";
        first = false;
    }
    out << "]}";
    return out.str();
}

}  // namespace

NodeAgentDaemon::NodeAgentDaemon(AgentConfig config, common::Logger& logger)
    : config_(std::move(config)),
      logger_(logger),
      faults_(common::FaultPoints::fromEnvironment(config_.root, logger)),
      engine_(config_.engine, [&logger](std::string_view level, std::string_view message) {
          logger.write(level == "error"  ? LogLevel::error
                       : level == "warn" ? LogLevel::warn
                                         : LogLevel::info,
                       message);
      }) {}

NodeAgentDaemon::~NodeAgentDaemon() {
    stop();
}

void NodeAgentDaemon::start() {
    std::filesystem::create_directories(config_.root);
    std::vector<std::string> slots;
    if (config_.hollow > 0) {
        for (int i = 0; i < config_.hollow; ++i) slots.push_back(hollowNodeName(config_.name, i));
    } else {
        slots.push_back(kLocalSlot);
    }
    enrollMissing(slots);
    installStore();
    installIdentity(slots);
    installOutbox();
    if (config_.hollow > 0) {
        installHollowNodes();
    } else {
        installRealNode();
    }
    engine_.start();
}

void NodeAgentDaemon::enrollMissing(const std::vector<std::string>& slots) {
    std::vector<std::string> missing;
    for (const auto& slot : slots) {
        if (!std::filesystem::exists(credentialsDir(slot) / "node.pem")) missing.push_back(slot);
    }
    if (missing.empty()) return;
    if (config_.joinToken.empty()) {
        throw common::UsageError(
            "this node is not enrolled yet (no " +
            (credentialsDir(missing.front()) / "node.pem").string() +
            "): start it once with --join-token-file (or --join-token) and --ca-sha256, as "
            "`rmctl token create` prints them");
    }
    // Before anything runs: an agent that cannot join says so and stops, instead of retrying
    // a token the RM refused or a pin that does not match.
    AgentStore store(config_.root);
    EnrollmentOptions enrollment{config_.managerUrl, config_.joinToken, config_.caSha256};
    for (const auto& slot : missing) {
        try {
            enroll(credentialsDir(slot), store.nodeId(slot), enrollment, logger_);
        } catch (const EnrollmentRefused& e) {
            throw common::UsageError(std::string("enrollment refused: ") + e.what());
        }
    }
}

std::filesystem::path NodeAgentDaemon::credentialsDir(const std::string& slot) const {
    return config_.root / "pki" / slot;
}

void NodeAgentDaemon::installIdentity(std::vector<std::string> slots) {
    engine_.install(
        "identity",
        {
            {"store"},
            [this, slots](engine::Context& ctx) -> std::unique_ptr<engine::Worker> {
                auto store = ctx.get<std::shared_ptr<AgentStore>>("store");
                auto identities = std::make_shared<NodeIdentities>();
                EnrollmentOptions enrollment{config_.managerUrl, config_.joinToken,
                                             config_.caSha256};
                for (const auto& slot : slots) {
                    std::string nodeId = store->nodeId(slot);
                    auto kept = loadCredentials(credentialsDir(slot), nodeId);
                    identities->bySlot.emplace(
                        slot,
                        kept ? *kept : enroll(credentialsDir(slot), nodeId, enrollment, logger_));
                }
                // Runs until the first certificate is due for renewal, renews it and returns: the
                // engine then starts this worker again and every dependent with the new files.
                return std::make_unique<engine::ServiceWorker<NodeIdentities>>(
                    identities,
                    [this](NodeIdentities& ids, std::stop_token stop) { renewWhenDue(ids, stop); });
            },
            engine::ServiceWorker<NodeIdentities>::output,
        });
}

void NodeAgentDaemon::renewWhenDue(NodeIdentities& identities, std::stop_token stop) {
    std::mutex m;
    std::condition_variable_any cv;
    auto sleepUntil = [&](int64_t atMs) {
        std::unique_lock lock(m);
        auto wait = std::chrono::milliseconds(std::max<int64_t>(0, atMs - common::nowMillis()));
        cv.wait_for(lock, stop, wait, [] { return false; });
        return !stop.stop_requested();
    };
    auto due = std::min_element(
        identities.bySlot.begin(), identities.bySlot.end(),
        [](auto& a, auto& b) { return a.second.renewAtMs() < b.second.renewAtMs(); });
    if (due == identities.bySlot.end() || !sleepUntil(due->second.renewAtMs())) return;
    std::chrono::milliseconds backoff{1000};
    while (!stop.stop_requested()) {
        try {
            for (auto& [slot, credentials] : identities.bySlot) {
                if (credentials.renewAtMs() <= common::nowMillis())
                    renew(credentialsDir(slot), credentials, config_.managerUrl,
                          std::chrono::seconds(10), logger_);
            }
            return;
        } catch (const std::exception& e) {
            Log(logger_, LogLevel::warn, "certificate_renewal_failed")
                .kv("error", e.what())
                .kv("retry_in_ms", backoff.count());
            if (!sleepUntil(common::nowMillis() + backoff.count())) return;
            backoff = std::min(backoff * 2, std::chrono::milliseconds(60000));
        }
    }
}

void NodeAgentDaemon::stop() {
    engine_.stop();
}

void NodeAgentDaemon::installStore() {
    engine_.install("store",
                    {
                        {},
                        [this](engine::Context&) -> std::unique_ptr<engine::Worker> {
                            auto store = std::make_shared<AgentStore>(config_.root);
                            Log(logger_, LogLevel::info, "store_opened")
                                .kv("file", store->file().string())
                                .kv("outbox", store->outboxSize())
                                .kv("open_operations", store->openOperations().size());
                            return std::make_unique<engine::ValueWorker<AgentStore>>(store);
                        },
                        engine::ValueWorker<AgentStore>::output,
                    });
}

void NodeAgentDaemon::installOutbox() {
    engine_.install(
        "outbox", {
                      {"store", "identity"},
                      [this](engine::Context& ctx) -> std::unique_ptr<engine::Worker> {
                          auto store = ctx.get<std::shared_ptr<AgentStore>>("store");
                          auto identities = ctx.get<std::shared_ptr<NodeIdentities>>("identity");
                          auto transport = std::make_shared<SoapReportTransport>(
                              config_.managerUrl, [identities](const std::string& slot) {
                                  return identities->of(slot).clientOptions();
                              });
                          OutboxOptions options;
                          options.faults = faults();
                          auto sender =
                              std::make_shared<OutboxSender>(*store, *transport, logger_, options);
                          return std::make_unique<engine::ServiceWorker<OutboxSender>>(
                              sender, [store, transport, identities](
                                          OutboxSender& s, std::stop_token stop) { s.run(stop); });
                      },
                      {},
                  });
}

void NodeAgentDaemon::installRealNode() {
    engine_.install("supervisor",
                    {
                        {"store", "identity"},
                        [this](engine::Context& ctx) -> std::unique_ptr<engine::Worker> {
                            auto store = ctx.get<std::shared_ptr<AgentStore>>("store");
                            auto identities = ctx.get<std::shared_ptr<NodeIdentities>>("identity");
                            auto runtime = std::make_shared<Runtime>();
                            runtime->supervisor = std::make_unique<Supervisor>();
                            ContainerOptions options;
                            options.faults = faults();
                            options.runAs = config_.runAs;
                            // Packages come from the RM this node enrolled with, and only from it.
                            options.download.tls = common::makeTlsClientContext(
                                identities->of(kLocalSlot).clientOptions());
                            options.download.onlyFrom = originOf(config_.managerUrl);
                            options.download.serverIdentity = common::pki::kRmIdentity;
                            runtime->handler = std::make_shared<ContainerPackages>(
                                config_.root, *runtime->supervisor, logger_, options);
                            runtime->keepProcesses = config_.keepProcessesOnExit;
                            runtime->logger = &logger_;
                            runtime->handler->adoptRunning(store->deployed(kLocalSlot),
                                                           store->nodeId(kLocalSlot));
                            return std::make_unique<engine::ValueWorker<Runtime>>(runtime);
                        },
                        engine::ValueWorker<Runtime>::output,
                    });

    engine_.install(
        "executor",
        {
            {"store", "supervisor"},
            [this](engine::Context& ctx) -> std::unique_ptr<engine::Worker> {
                auto store = ctx.get<std::shared_ptr<AgentStore>>("store");
                auto runtime = ctx.get<std::shared_ptr<Runtime>>("supervisor");
                auto executor = std::make_shared<DeployExecutor>(
                    *store,
                    std::map<std::string, std::shared_ptr<PackageHandler>>{{"", runtime->handler}},
                    logger_, ExecutorOptions{config_.maxParallel, std::chrono::milliseconds(2000)});
                return std::make_unique<engine::ServiceWorker<DeployExecutor>>(
                    executor,
                    [store, runtime](DeployExecutor& e, std::stop_token stop) { e.run(stop); });
            },
            {},
        });

    engine_.install("api",
                    {
                        {"store", "supervisor", "identity"},
                        [this](engine::Context& ctx) -> std::unique_ptr<engine::Worker> {
                            auto store = ctx.get<std::shared_ptr<AgentStore>>("store");
                            auto runtime = ctx.get<std::shared_ptr<Runtime>>("supervisor");
                            auto identities = ctx.get<std::shared_ptr<NodeIdentities>>("identity");
                            auto api = std::make_shared<Api>();
                            api->store = store;
                            api->handler = runtime->handler;
                            auto context = std::make_shared<DeployerContext>(
                                DeployerContext{*store, kLocalSlot, *runtime->handler, logger_,
                                                1000, faults(), config_.managerUrl});
                            common::ServerOptions options = config_.server;
                            options.tls = identities->of(kLocalSlot).serverOptions();
                            if (!boundPorts_.empty()) options.port = boundPorts_[0];
                            auto url = std::make_shared<std::string>();
                            common::HttpRouter router;
                            router.exact("/healthz", [](const common::HttpRequest&) {
                                return common::HttpResponse::text(200, "ok\n");
                            });
                            router.exact("/engine", [this](const common::HttpRequest&) {
                                common::HttpResponse r =
                                    common::HttpResponse::text(200, engine_.reportJson());
                                r.contentType = "application/json";
                                return r;
                            });
                            AgentStore* rawStore = store.get();
                            router.exact("/state", [rawStore, url](const common::HttpRequest&) {
                                common::HttpResponse r = common::HttpResponse::text(
                                    200, stateJson(*rawStore, kLocalSlot, nullptr, *url));
                                r.contentType = "application/json";
                                return r;
                            });
                            auto server = std::make_unique<common::SoapServer>(
                                options,
                                std::make_unique<common::GeneratedEndpoint<DeployerEndpoint>>(
                                    std::make_unique<DeployerEndpoint>(context)),
                                std::move(router), logger_);
                            server->start();
                            *url = server->url();
                            api->urls[kLocalSlot] = *url;
                            boundPorts_ = {server->port()};
                            api->servers.push_back(std::move(server));
                            if (!announced_) {
                                common::announceUrl(*url);
                                announced_ = true;
                            }
                            return std::make_unique<engine::ValueWorker<Api>>(api);
                        },
                        engine::ValueWorker<Api>::output,
                    });

    engine_.install(
        "presence",
        {
            {"store", "api", "identity"},
            [this](engine::Context& ctx) -> std::unique_ptr<engine::Worker> {
                auto store = ctx.get<std::shared_ptr<AgentStore>>("store");
                auto api = ctx.get<std::shared_ptr<Api>>("api");
                auto identities = ctx.get<std::shared_ptr<NodeIdentities>>("identity");
                NodeIdentity me{kLocalSlot,     store->nodeId(kLocalSlot),
                                config_.name,   api->urls.at(kLocalSlot),
                                config_.labels, identities->of(kLocalSlot).clientOptions()};
                auto root = config_.root.string();
                int maxInstances = config_.maxInstances;
                auto presence = std::make_shared<Presence>(
                    std::vector<NodeIdentity>{me},
                    [root, maxInstances](const std::string&) {
                        return NodeCapacity{
                            static_cast<int>(std::max(1u, std::thread::hardware_concurrency())),
                            memoryMB(), diskFreeMB(root), maxInstances};
                    },
                    [store, root](const std::string& slot) {
                        auto deployed = store->deployed(slot);
                        int running = static_cast<int>(std::count_if(
                            deployed.begin(), deployed.end(),
                            [](const auto& d) { return d.state == state::kRunning; }));
                        return NodeSummary{static_cast<int>(deployed.size()), running,
                                           diskFreeMB(root), loadAverage()};
                    },
                    logger_,
                    PresenceOptions{config_.managerUrl, config_.heartbeatInterval,
                                    std::chrono::milliseconds(500),
                                    std::chrono::milliseconds(10000), std::chrono::seconds(10)});
                return std::make_unique<engine::ServiceWorker<Presence>>(
                    presence, [store, api](Presence& p, std::stop_token stop) { p.run(stop); });
            },
            {},
        });
}

void NodeAgentDaemon::installHollowNodes() {
    auto handler = std::make_shared<SimulatedPackages>(config_.hollowStep);

    engine_.install(
        "executor",
        {
            {"store"},
            [this, handler](engine::Context& ctx) -> std::unique_ptr<engine::Worker> {
                auto store = ctx.get<std::shared_ptr<AgentStore>>("store");
                // Simulated steps only sleep, so many can run at once on few cores.
                std::size_t parallel = std::clamp<std::size_t>(
                    static_cast<std::size_t>(config_.hollow), config_.maxParallel, 64);
                auto executor = std::make_shared<DeployExecutor>(
                    *store, std::map<std::string, std::shared_ptr<PackageHandler>>{{"", handler}},
                    logger_, ExecutorOptions{parallel, std::chrono::milliseconds(2000)});
                return std::make_unique<engine::ServiceWorker<DeployExecutor>>(
                    executor, [store](DeployExecutor& e, std::stop_token stop) { e.run(stop); });
            },
            {},
        });

    engine_.install(
        "api",
        {
            {"store", "identity"},
            [this, handler](engine::Context& ctx) -> std::unique_ptr<engine::Worker> {
                auto store = ctx.get<std::shared_ptr<AgentStore>>("store");
                auto identities = ctx.get<std::shared_ptr<NodeIdentities>>("identity");
                auto api = std::make_shared<Api>();
                api->store = store;
                api->handler = handler;
                std::vector<int> ports;
                for (int i = 0; i < config_.hollow; ++i) {
                    std::string slot = hollowNodeName(config_.name, i);
                    auto context = std::make_shared<DeployerContext>(DeployerContext{
                        *store, slot, *handler, logger_, 1000, faults(), config_.managerUrl});
                    common::ServerOptions options = config_.server;
                    options.tls = identities->of(slot).serverOptions();
                    options.threads = 2;  // hundreds of nodes in one process: keep each one cheap
                    if (static_cast<size_t>(i) < boundPorts_.size()) {
                        options.port = boundPorts_[static_cast<size_t>(i)];
                    } else if (options.port != 0) {
                        options.port = config_.server.port + i;
                    }
                    auto url = std::make_shared<std::string>();
                    common::HttpRouter router;
                    router.exact("/healthz", [](const common::HttpRequest&) {
                        return common::HttpResponse::text(200, "ok\n");
                    });
                    router.exact("/engine", [this](const common::HttpRequest&) {
                        common::HttpResponse r =
                            common::HttpResponse::text(200, engine_.reportJson());
                        r.contentType = "application/json";
                        return r;
                    });
                    AgentStore* rawStore = store.get();
                    router.exact("/state", [rawStore, slot, url](const common::HttpRequest&) {
                        common::HttpResponse r = common::HttpResponse::text(
                            200, stateJson(*rawStore, slot, nullptr, *url));
                        r.contentType = "application/json";
                        return r;
                    });
                    auto server = std::make_unique<common::SoapServer>(
                        options,
                        std::make_unique<common::GeneratedEndpoint<DeployerEndpoint>>(
                            std::make_unique<DeployerEndpoint>(context)),
                        std::move(router), logger_);
                    server->start();
                    *url = server->url();
                    api->urls[slot] = *url;
                    ports.push_back(server->port());
                    api->servers.push_back(std::move(server));
                }
                boundPorts_ = ports;
                if (!announced_) {
                    for (int i = 0; i < config_.hollow; ++i)
                        common::announceUrl(api->urls.at(hollowNodeName(config_.name, i)));
                    announced_ = true;
                }
                return std::make_unique<engine::ValueWorker<Api>>(api);
            },
            engine::ValueWorker<Api>::output,
        });

    engine_.install(
        "presence",
        {
            {"store", "api", "identity"},
            [this](engine::Context& ctx) -> std::unique_ptr<engine::Worker> {
                auto store = ctx.get<std::shared_ptr<AgentStore>>("store");
                auto api = ctx.get<std::shared_ptr<Api>>("api");
                auto identities = ctx.get<std::shared_ptr<NodeIdentities>>("identity");
                std::vector<NodeIdentity> nodes;
                for (int i = 0; i < config_.hollow; ++i) {
                    std::string slot = hollowNodeName(config_.name, i);
                    auto labels = config_.labels;
                    labels.emplace_back("hollow", "true");
                    nodes.push_back(NodeIdentity{slot, store->nodeId(slot), slot,
                                                 api->urls.at(slot), labels,
                                                 identities->of(slot).clientOptions()});
                }
                int maxInstances = config_.maxInstances;
                auto presence = std::make_shared<Presence>(
                    std::move(nodes),
                    [maxInstances](const std::string&) {
                        return NodeCapacity{4, 8192, 100000, maxInstances};
                    },
                    [store](const std::string& slot) {
                        auto deployed = store->deployed(slot);
                        return NodeSummary{static_cast<int>(deployed.size()), 0, 100000, 0.0};
                    },
                    logger_,
                    PresenceOptions{config_.managerUrl, config_.heartbeatInterval,
                                    std::chrono::milliseconds(500),
                                    std::chrono::milliseconds(10000), std::chrono::seconds(10)});
                return std::make_unique<engine::ServiceWorker<Presence>>(
                    presence, [store, api](Presence& p, std::stop_token stop) { p.run(stop); });
            },
            {},
        });
}

}  // namespace rm::agent
