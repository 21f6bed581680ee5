#include "bench/bench_support.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "deployer/package_archive.h"
#include "reports/report_xml.h"

namespace fs = std::filesystem;

namespace rm::bench {

double secondsSince(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

double millisSince(Clock::time_point start) {
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

double Samples::percentile(double p) const {
    if (values_.empty()) return 0;
    std::vector<double> sorted = values_;
    std::sort(sorted.begin(), sorted.end());
    const auto index = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1) + 0.5);
    return sorted[std::min(index, sorted.size() - 1)];
}

Options::Options(int argc, char** argv, std::vector<std::string> known) {
    for (int i = 1; i < argc; ++i) {
        std::string name = argv[i];
        if (std::find(known.begin(), known.end(), name) == known.end() || i + 1 >= argc) {
            std::string list;
            for (const auto& k : known) list += " " + k + " N";
            throw std::invalid_argument("unknown option or missing value '" + name +
                                        "'; usage:" + list);
        }
        values_.emplace_back(name, argv[++i]);
    }
}

std::optional<std::string> Options::value(const std::string& name) const {
    for (const auto& [k, v] : values_) {
        if (k == name) return v;
    }
    return std::nullopt;
}

int Options::integer(const std::string& name, int fallback) const {
    auto v = value(name);
    if (!v) return fallback;
    std::size_t used = 0;
    int n = std::stoi(*v, &used);
    if (used != v->size() || n < 0) {
        throw std::invalid_argument(name + " wants a non-negative integer, not '" + *v + "'");
    }
    return n;
}

double Options::number(const std::string& name, double fallback) const {
    auto v = value(name);
    return v ? std::stod(*v) : fallback;
}

bool waitUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout,
               std::chrono::milliseconds interval) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        if (done()) return true;
        if (Clock::now() > deadline) return false;
        std::this_thread::sleep_for(interval);
    }
}

ProcessMemory processMemory(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    if (!in) throw std::runtime_error("cannot read /proc/" + std::to_string(pid) + "/status");
    ProcessMemory m;
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        std::string key;
        long value = 0;
        fields >> key >> value;
        if (key == "VmRSS:") m.rssKiB = value;
        if (key == "VmHWM:") m.hwmKiB = value;
    }
    return m;
}

namespace {

void writeFile(const fs::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + path.string());
}

std::string profileXml(const std::string& service, const std::string& package,
                       const std::string& dependency) {
    std::string xml = "<Package><ServiceClass>Bench</ServiceClass><ServiceName>" + service +
                      "</ServiceName><ServiceVersion>1.0.0</ServiceVersion><PackageName>" +
                      package + "</PackageName><PackageVersion>1.0.0</PackageVersion>";
    if (!dependency.empty()) {
        xml += "<Dependencies><Dependency><ServiceClass>Bench</ServiceClass><ServiceName>" +
               service + "</ServiceName><PackageName>" + dependency +
               "</PackageName><Version>[1.0.0,2.0.0)</Version></Dependency></Dependencies>";
    }
    // An Install step makes the simulated package end ACTIVATED, like most real ones.
    return xml + "<Lifecycle><Install>true</Install></Lifecycle></Package>";
}

}  // namespace

std::string SyntheticRepository::serviceName(int index) {
    char name[16];
    std::snprintf(name, sizeof name, "S%04d", index);
    return name;
}

void SyntheticRepository::build(const fs::path& dir, int services) {
    fs::create_directories(dir);
    constexpr int kBuilders = 4;
    std::vector<std::thread> builders;
    std::atomic<bool> failed{false};
    std::string firstError;
    std::mutex errorMutex;
    for (int b = 0; b < kBuilders; ++b) {
        builders.emplace_back([&, b] {
            try {
                const fs::path source = dir / (".source-" + std::to_string(b));
                fs::create_directories(source);
                writeFile(source / "README", "synthetic benchmark package\n");
                for (int s = b; s < services; s += kBuilders) {
                    const std::string name = serviceName(s);
                    fs::create_directories(dir / name);
                    writeFile(source / "profile.xml", profileXml(name, "lib", ""));
                    deployer::buildPackage(source, dir / name / "lib-1.0.0.tar.gz");
                    writeFile(source / "profile.xml", profileXml(name, "svc", "lib"));
                    deployer::buildPackage(source, dir / name / "svc-1.0.0.tar.gz");
                }
                fs::remove_all(source);
            } catch (const std::exception& e) {
                std::lock_guard lock(errorMutex);
                if (!failed.exchange(true)) firstError = e.what();
            }
        });
    }
    for (auto& t : builders) t.join();
    if (failed) throw std::runtime_error("building the synthetic repository failed: " + firstError);
}

ResourceManager::ResourceManager(fs::path dir, std::vector<std::string> extraArgs)
    : dir_(std::move(dir)), extra_(std::move(extraArgs)) {
    fs::create_directories(repository());
}

void ResourceManager::start() {
    std::vector<std::string> args{"--scope",        kScope,
                                  "--listen",       "127.0.0.1:0",
                                  "--state-dir",    stateDir().string(),
                                  "--repository",   repository().string(),
                                  "--agent-listen", "127.0.0.1:0"};
    args.insert(args.end(), extra_.begin(), extra_.end());
    daemon_.reset();
    daemon_ = std::make_unique<testing::DaemonProcess>("resource-manager", args, logFile(),
                                                       std::chrono::minutes(10));
}

void ResourceManager::kill9() {
    if (daemon_) daemon_->kill9();
    daemon_.reset();
}

void ResourceManager::terminate() {
    if (!daemon_) return;
    int status = daemon_->terminate(std::chrono::seconds(60));
    daemon_.reset();
    if (status != 0) {
        throw std::runtime_error("resource-manager exited with status " + std::to_string(status) +
                                 " after SIGTERM; see " + logFile().string());
    }
}

std::unique_ptr<client::RmClient> ResourceManager::client(int timeoutSeconds) const {
    client::ClientOptions o;
    o.url = url();
    o.timeoutSeconds = timeoutSeconds;
    return std::make_unique<client::RmClient>(o);
}

std::unique_ptr<testing::DaemonProcess> startHollowNodes(const fs::path& dir, int nodes,
                                                         int stepMillis, client::RmClient& client) {
    auto token = client.createJoinToken(3600, 0, "bench hollow nodes");
    std::vector<std::string> args{"--name",           "hollow",
                                  "--hollow",         std::to_string(nodes),
                                  "--hollow-step-ms", std::to_string(stepMillis),
                                  "--listen",         "127.0.0.1:0",
                                  "--root",           (dir / "hollow").string()};
    auto join = testing::joinArgs(testing::JoinToken{token.token, token.caSha256, token.agentUrl});
    args.insert(args.end(), join.begin(), join.end());
    auto agent = std::make_unique<testing::DaemonProcess>("node-agent", args, dir / "hollow.log",
                                                          std::chrono::minutes(2));
    const bool registered = waitUntil(
        [&] {
            auto rows = client.listNodes();
            return std::count_if(rows.begin(), rows.end(), [](const client::NodeRow& n) {
                       return n.liveness == "ALIVE";
                   }) == nodes;
        },
        std::chrono::minutes(2), std::chrono::milliseconds(200));
    if (!registered) {
        throw std::runtime_error("the " + std::to_string(nodes) +
                                 " hollow nodes did not all register within 2 minutes; see " +
                                 (dir / "hollow.log").string());
    }
    return agent;
}

std::optional<double> metric(const std::string& url, const std::string& name) {
    auto r = testing::httpRequest(url, "GET", "/metrics");
    if (r.status != 200) return std::nullopt;
    std::istringstream lines(r.body);
    std::string line;
    while (std::getline(lines, line)) {
        if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
    }
    return std::nullopt;
}

SessionRun runSession(client::RmClient& client, const std::string& url,
                      const client::ScopeRequest& request, std::chrono::seconds timeout,
                      std::chrono::milliseconds poll) {
    SessionRun run;
    const auto start = Clock::now();
    run.id = client.addResources(request);
    run.ackMillis = millisSince(start);
    const bool closed =
        waitUntil([&] { return metric(url, "rm_open_sessions").value_or(1) == 0; }, timeout, poll);
    run.closedSeconds = secondsSince(start);
    run.report = reports::parseReportXml(client.getReport(run.id));
    const std::string exit = run.report.sessionExitStatus.value_or("");
    if (!closed || run.report.status != "CLOSED" || exit != "SUCCESS") {
        std::string firstError;
        for (const auto& s : run.report.services) {
            if (!s.errorDescription.empty()) {
                firstError = s.serviceName + ": " + s.errorDescription;
                break;
            }
        }
        for (const auto& r : run.report.resources) {
            if (firstError.empty() && !r.errorDescription.empty()) {
                firstError = r.id + ": " + r.errorDescription;
            }
        }
        throw std::runtime_error("report " + run.id + " is " + run.report.status + " " + exit +
                                 " after " + std::to_string(run.closedSeconds) +
                                 " s (expected CLOSED SUCCESS)" +
                                 (firstError.empty() ? "" : "; first error: " + firstError));
    }
    return run;
}

client::ScopeRequest servicesRequest(int first, int count) {
    client::ScopeRequest r;
    r.targetScope = kScope;
    for (int s = first; s < first + count; ++s) {
        client::ServiceRequest item;
        item.serviceClass = "Bench";
        item.serviceName = SyntheticRepository::serviceName(s);
        r.services.push_back(item);
    }
    return r;
}

client::ScopeRequest plainRequest(const std::string& prefix, int first, int count) {
    client::ScopeRequest r;
    r.targetScope = kScope;
    for (int i = first; i < first + count; ++i) {
        r.resources.emplace_back("GenericResource", prefix + std::to_string(i));
    }
    return r;
}

int freePort() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error("socket() failed");
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    socklen_t length = sizeof address;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
        ::close(fd);
        throw std::runtime_error("cannot bind a free port on 127.0.0.1");
    }
    ::close(fd);
    return ntohs(address.sin_port);
}

std::string runCommand(const std::string& command) {
    FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
    if (!pipe) throw std::runtime_error("cannot run: " + command);
    std::string output;
    char buffer[4096];
    while (std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
    const int status = ::pclose(pipe);
    if (status != 0) {
        throw std::runtime_error("command failed (status " + std::to_string(status) +
                                 "): " + command + "\n" + output);
    }
    return output;
}

std::string shellQuote(const std::string& text) {
    std::string quoted = "'";
    for (char c : text) {
        if (c == '\'')
            quoted += "'\\''";
        else
            quoted += c;
    }
    return quoted + "'";
}

}  // namespace rm::bench
