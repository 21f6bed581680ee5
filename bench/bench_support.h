// Shared by the end-to-end benchmarks (getreport_bench, e2e_bench, restart_bench): statistics,
// command-line sizes, a synthetic software repository, and the real daemons started as child
// processes on loopback (through tests/integration/daemon_process.h, like the integration tests).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/rm_client.h"
#include "daemon_process.h"
#include "reports/resource_report.h"

namespace rm::bench {

using Clock = std::chrono::steady_clock;

inline const std::string kScope = "/gcube/devsec";

double secondsSince(Clock::time_point start);
double millisSince(Clock::time_point start);

// Median and percentiles of a set of samples (nearest rank on the sorted values).
class Samples {
  public:
    void add(double value) { values_.push_back(value); }
    std::size_t count() const { return values_.size(); }
    double percentile(double p) const;
    double median() const { return percentile(0.5); }

  private:
    std::vector<double> values_;
};

// `--name N` style options; anything unknown is a usage error so a typo does not silently
// run the full-size benchmark.
class Options {
  public:
    // `known` lists the accepted option names (with their leading dashes).
    Options(int argc, char** argv, std::vector<std::string> known);
    int integer(const std::string& name, int fallback) const;
    double number(const std::string& name, double fallback) const;

  private:
    std::optional<std::string> value(const std::string& name) const;
    std::vector<std::pair<std::string, std::string>> values_;
};

// Polls `done` every `interval` until it holds; false after `timeout`.
bool waitUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout,
               std::chrono::milliseconds interval = std::chrono::milliseconds(20));

// Memory of a live process from /proc/PID/status, in KiB.
struct ProcessMemory {
    long rssKiB = 0;  // VmRSS: resident now
    long hwmKiB = 0;  // VmHWM: the peak resident size since the process started
};
ProcessMemory processMemory(pid_t pid);

// A repository of real package archives built with buildPackage: service "Bench/S0000" ..
// each made of a package "svc" that depends on a package "lib" of the same service, so every
// deployment carries two packages in dependency order.
struct SyntheticRepository {
    static constexpr int kPackagesPerService = 2;
    // Builds `services` services into `dir` (created); a few threads because buildPackage
    // syncs every archive to disk.
    static void build(const std::filesystem::path& dir, int services);
    static std::string serviceName(int index);
};

// A resource-manager in its own temporary directory (state and repository), restartable.
class ResourceManager {
  public:
    ResourceManager(std::filesystem::path dir, std::vector<std::string> extraArgs = {});
    const std::filesystem::path& dir() const { return dir_; }
    std::filesystem::path stateDir() const { return dir_ / "state"; }
    std::filesystem::path repository() const { return dir_ / "repository"; }
    std::filesystem::path logFile() const { return dir_ / "rm.log"; }

    // Starts the daemon and returns once it printed its URL.
    void start();
    bool running() const { return daemon_ != nullptr; }
    testing::DaemonProcess& daemon() { return *daemon_; }
    const std::string& url() const { return daemon_->url(); }
    // Its agent port (--agent-listen 127.0.0.1:0), where agents enroll and report.
    const std::string& agentUrl() const { return daemon_->agentUrl(); }
    pid_t pid() const { return daemon_->pid(); }
    void kill9();
    void terminate();

    std::unique_ptr<client::RmClient> client(int timeoutSeconds = 120) const;

  private:
    std::filesystem::path dir_;
    std::vector<std::string> extra_;
    std::unique_ptr<testing::DaemonProcess> daemon_;
};

// `node-agent --hollow N` enrolled (every hollow node, with one join token of unlimited uses made
// through `client`) with the RM `client` talks to, on its agent port; returns once every node is
// ALIVE there.
std::unique_ptr<testing::DaemonProcess> startHollowNodes(const std::filesystem::path& dir,
                                                         int nodes, int stepMillis,
                                                         client::RmClient& client);

// The value of an unlabelled Prometheus gauge at GET /metrics, or nullopt when absent.
std::optional<double> metric(const std::string& url, const std::string& name);

// One session, submitted and waited for until CLOSED.
struct SessionRun {
    std::string id;
    double ackMillis = 0;      // until AddResources answered
    double closedSeconds = 0;  // until no session was open any more
    reports::ResourceReport report;
};

// Submits the request and waits (polling the cheap rm_open_sessions gauge of /metrics, not
// GetReport, so the measurement does not make the RM render the growing report over and over)
// until no session is open; then reads the report once. Throws, naming the first error, when
// it is not CLOSED SUCCESS within `timeout`. Only one session may be open at a time.
// /metrics counts the resources by state, so with a large scope a short `poll` would load the
// RM it measures: pick it a small fraction of the expected session time.
SessionRun runSession(client::RmClient& client, const std::string& url,
                      const client::ScopeRequest& request, std::chrono::seconds timeout,
                      std::chrono::milliseconds poll = std::chrono::milliseconds(10));

// A request for services `first` .. `first + count - 1` of the synthetic repository.
client::ScopeRequest servicesRequest(int first, int count);

// A request for `count` plain GenericResources named `prefix`N.
client::ScopeRequest plainRequest(const std::string& prefix, int first, int count);

// A free TCP port on 127.0.0.1 (bound, read, released: another process could take it first,
// which on a loopback test machine does not happen in practice).
int freePort();

// Runs `command` through sh, returns what it wrote on stdout and stderr; throws on a non-zero
// exit status, with the output in the message.
std::string runCommand(const std::string& command);

std::string shellQuote(const std::string& text);

}  // namespace rm::bench
