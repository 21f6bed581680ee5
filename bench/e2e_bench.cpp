// End-to-end deployment benchmark: the time from AddResources to a CLOSED report for 1,000
// services spread over 200 hollow nodes, and the deployments per second the RM sustains.
//
//   build/bin/e2e_bench [--services 1000] [--reference 100] [--nodes 200] [--step-ms 20]
//                       [--timeout-s 1800]
//
// Setup (not measured): a synthetic repository of services+reference services (each service is
// two real .tar.gz packages, "lib" and "svc" which depends on it), a resource-manager on it, and
// one `node-agent --hollow N` process whose nodes take --step-ms per simulated step (download,
// unpack, install: three steps per package). Measured, one session at a time, on the same RM and
// nodes:
//   1. zero work: AddResources of one plain resource to CLOSED (the fixed cost of a session);
//   2. reference: --reference services (other services than the main run's, so no node has
//      them already);
//   3. main: --services services.
// The reference is the same request at a tenth of the size on the same daemons: it is fair
// because it pays every per-deployment cost (resolution, outbox, Deploy call, node reports,
// report merging) and the same fixed costs, so main/reference time ratio = size ratio means
// linear scaling, and a larger ratio shows a cost that grows faster than the session.
// Completion is detected with the rm_open_sessions gauge of /metrics (cheap), so the client does
// not make the RM render the growing report over and over; GetReport is read once at the end to
// check the session ended SUCCESS and to count how the services were spread over the nodes.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <stdexcept>

#include "bench/bench_support.h"

namespace fs = std::filesystem;
using namespace rm::bench;

namespace {

struct RunResult {
    std::string id;
    double ackMillis = 0;
    double closedSeconds = 0;
    std::size_t nodesUsed = 0;
    std::size_t mostOnOneNode = 0;
    std::size_t packages = 0;
};

RunResult measureSession(rm::client::RmClient& client, const std::string& url,
                         const rm::client::ScopeRequest& request, std::chrono::seconds timeout) {
    const SessionRun run = runSession(client, url, request, timeout);
    RunResult r{run.id, run.ackMillis, run.closedSeconds};
    std::map<std::string, std::size_t> perNode;
    for (const auto& s : run.report.services) ++perNode[s.deployedOn];
    for (const auto& g : run.report.ghns) r.packages += g.packages.size();
    r.nodesUsed = perNode.size();
    for (const auto& [node, count] : perNode) r.mostOnOneNode = std::max(r.mostOnOneNode, count);
    return r;
}

// Where the time of one session went, from the RM's structured log: for each event, how many
// lines the session produced and when the first and the last came, relative to session_opened.
class SessionTimeline {
  public:
    SessionTimeline(const fs::path& log, const std::string& sessionId) {
        std::ifstream in(log);
        std::string line;
        while (std::getline(in, line)) {
            if (line.find("session=" + sessionId) == std::string::npos &&
                line.find("callback=" + sessionId + "-") == std::string::npos) {
                continue;
            }
            const auto event = field(line, "event");
            const auto at = timeOfDayMillis(field(line, "ts"));
            if (event.empty() || at < 0) continue;
            auto& e = events_[event];
            if (e.count++ == 0) e.first = at;
            e.last = at;
        }
    }

    void print() const {
        const auto opened = events_.find("session_opened");
        if (opened == events_.end()) return;
        const long origin = opened->second.first;
        std::printf("timeline of the main session in the RM log (ms after session_opened):\n");
        for (const char* name : {"deployment_planned", "deploy_acknowledged",
                                 "node_report_received", "session_closed"}) {
            const auto it = events_.find(name);
            if (it == events_.end()) continue;
            std::printf("  %-22s x%-6ld first %8ld  last %8ld\n", name, it->second.count,
                        since(origin, it->second.first), since(origin, it->second.last));
        }
    }

  private:
    struct Event {
        long count = 0;
        long first = 0, last = 0;
    };

    static std::string field(const std::string& line, const std::string& key) {
        const auto at = line.find(key + "=");
        if (at == std::string::npos) return {};
        const auto start = at + key.size() + 1;
        return line.substr(start, line.find(' ', start) - start);
    }
    // "2026-01-02T03:04:05.678Z" -> milliseconds since midnight; -1 when not in that form.
    static long timeOfDayMillis(const std::string& ts) {
        int h = 0, m = 0, sec = 0, ms = 0;
        const auto t = ts.find('T');
        if (t == std::string::npos ||
            std::sscanf(ts.c_str() + t + 1, "%d:%d:%d.%d", &h, &m, &sec, &ms) != 4) {
            return -1;
        }
        return ((h * 60L + m) * 60L + sec) * 1000L + ms;
    }
    static long since(long origin, long at) {
        return at >= origin ? at - origin : at + 86400000L - origin;  // past midnight
    }

    std::map<std::string, Event> events_;
};

void printRun(const char* name, int services, const RunResult& r) {
    std::printf(
        "%s: %d services, %zu packages reported: AddResources answered in %.1f ms, CLOSED after "
        "%.2f s, %.1f deployments/s; spread over %zu nodes, at most %zu services on one node\n",
        name, services, r.packages, r.ackMillis, r.closedSeconds,
        services > 0 ? services / r.closedSeconds : 0.0, r.nodesUsed, r.mostOnOneNode);
}

}  // namespace

int main(int argc, char** argv) {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress shows when piped to a file
    try {
        Options options(argc, argv,
                        {"--services", "--reference", "--nodes", "--step-ms", "--timeout-s"});
        const int services = std::max(1, options.integer("--services", 1000));
        const int reference = std::max(1, options.integer("--reference", 100));
        const int nodes = std::max(1, options.integer("--nodes", 200));
        const int stepMs = options.integer("--step-ms", 20);
        const std::chrono::seconds timeout(options.integer("--timeout-s", 1800));

        rm::testing::TempDir scratch("rm-e2e-bench");
        auto setup = Clock::now();
        SyntheticRepository::build(scratch.path() / "rm" / "repository", services + reference);
        std::printf("setup: built %d services (%d archives) in %.1f s\n", services + reference,
                    (services + reference) * SyntheticRepository::kPackagesPerService,
                    secondsSince(setup));

        // Nodes are given a minute before they count as LOST: on two shared cores a busy RM
        // may answer heartbeats late, and a node declared LOST would fail its deployments
        // instead of measuring them.
        ResourceManager rm(scratch.path() / "rm",
                           {"--node-lost-after-ms", "60000", "--session-timeout-ms",
                            std::to_string(timeout.count() * 1000)});
        setup = Clock::now();
        rm.start();
        auto client = rm.client();
        auto agent = startHollowNodes(scratch.path(), nodes, stepMs, *client);
        std::printf("setup: resource-manager and %d hollow nodes (step %d ms) ALIVE in %.1f s\n",
                    nodes, stepMs, secondsSince(setup));

        const RunResult zero =
            measureSession(*client, rm.url(), plainRequest("bench-zero-", 0, 1), timeout);
        std::printf("zero work: one plain resource: answered in %.1f ms, CLOSED after %.1f ms\n",
                    zero.ackMillis, zero.closedSeconds * 1000);

        const RunResult ref =
            measureSession(*client, rm.url(), servicesRequest(services, reference), timeout);
        printRun("reference", reference, ref);
        const RunResult main =
            measureSession(*client, rm.url(), servicesRequest(0, services), timeout);
        printRun("main", services, main);
        SessionTimeline(rm.logFile(), main.id).print();

        // Lower bound set by the simulated nodes alone: a deployment runs its packages in
        // dependency order, three steps each, and the hollow agent carries out at most
        // clamp(nodes, 4, 64) deployments at once across all its nodes (agent_daemon.cpp).
        const double parallel = std::clamp(nodes, 4, 64);
        const double floorSeconds = std::ceil(services / parallel) *
                                    SyntheticRepository::kPackagesPerService * 3 * stepMs / 1000.0;
        std::printf("simulated-work floor for main: %.2f s (main is %.1fx the floor)\n",
                    floorSeconds, floorSeconds > 0 ? main.closedSeconds / floorSeconds : 0.0);
        const double sizeRatio = static_cast<double>(services) / reference;
        std::printf(
            "ratio main/reference: time %.2fx for %.1fx the services (1.0x per service = linear); "
            "deployments/s %.2fx\n",
            main.closedSeconds / ref.closedSeconds, sizeRatio,
            (services / main.closedSeconds) / (reference / ref.closedSeconds));
        const auto memory = processMemory(rm.pid());
        std::printf("resource-manager memory after the runs: VmRSS %.1f MiB, VmHWM %.1f MiB\n",
                    memory.rssKiB / 1024.0, memory.hwmKiB / 1024.0);

        agent->terminate(std::chrono::seconds(60));
        rm.terminate();
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "e2e_bench failed: %s\n", e.what());
        return 1;
    }
}
