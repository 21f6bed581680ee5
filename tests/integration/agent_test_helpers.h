// Shared by the integration tests that run the real node-agent: starting it, polling, asking it
// for its state (GetNodeState), and finding (and finally killing) the processes it started for
// the packages under its root, straight from /proc.
#pragma once

#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/soap_server.h"
#include "common/tls.h"
#include "daemon_process.h"
#include "soapDeployerBindingProxy.h"

namespace rm::testing {

// Polls `condition` every 50 ms until it holds or `timeout` has passed; returns the last answer.
inline bool waitUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (condition()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return condition();
}

// A loopback port nothing listens on right now, for a daemon that must come back on the same
// port after a restart (the RM keeps calling the endpoint an agent registered with).
inline int freePort() {
    Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0));
    return socket.address().port();
}

// A node-agent for `root`, joining the scope with `join`: joinArgs(...) (--manager, --join-token,
// --ca-sha256) for its first start, or just {"--manager", agentUrl} for an agent enrolled before.
// `faults` (RM_FAULTS syntax, see common/fault_points.h) arms fault points in this process only.
inline std::unique_ptr<DaemonProcess> startAgent(const std::filesystem::path& root,
                                                 const std::vector<std::string>& join,
                                                 const std::filesystem::path& log,
                                                 const std::string& name = "node1",
                                                 const std::string& listen = "127.0.0.1:0",
                                                 const std::string& faults = "") {
    std::vector<std::string> env;
    if (!faults.empty()) env.push_back("RM_FAULTS=" + faults);
    std::vector<std::string> args{"--name", name, "--listen", listen};
    args.insert(args.end(), join.begin(), join.end());
    args.insert(args.end(),
                {"--root", root.string(), "--labels", "zone=test", "--log-level", "info"});
    return std::make_unique<DaemonProcess>("node-agent", args, log, std::chrono::seconds(30), env);
}

// Who calls an agent: the RM's key and certificate (STATE/pki/rm.pem) and the scope CA
// (STATE/pki/ca.pem), as the RM itself calls its nodes. Empty: no client certificate.
struct RmCredentials {
    std::string keyFile;
    std::string caFile;
};
// The credentials of the resource-manager whose --state-dir is `rmStateDir`.
inline RmCredentials rmCredentials(const std::filesystem::path& rmStateDir) {
    return {(rmStateDir / "pki" / "rm.pem").string(), (rmStateDir / "pki" / "ca.pem").string()};
}

// Prepares `soap` to call an https:// agent as `as`: the agent's certificate must chain to the
// scope CA (it is known by its node ID, not by host name, so the host check is off).
inline void callAgentAs(struct soap* soap, const RmCredentials& as) {
    rm::common::configureTlsClient(soap, {as.keyFile, as.caFile, {}, {}});
    soap->ssl_flags |= SOAP_SSL_SKIP_HOST_CHECK;
}

namespace detail {
inline std::string readProcFile(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}
// The NUL-separated entries of /proc/PID/environ.
inline std::vector<std::string> environmentOf(const std::filesystem::path& proc) {
    std::vector<std::string> out;
    std::string all = readProcFile(proc / "environ");
    size_t start = 0;
    while (start < all.size()) {
        size_t end = all.find('\0', start);
        if (end == std::string::npos) end = all.size();
        out.push_back(all.substr(start, end - start));
        start = end + 1;
    }
    return out;
}
inline bool isZombie(const std::filesystem::path& proc) {
    return readProcFile(proc / "stat").find(") Z ") != std::string::npos;  // it has ended
}
// Calls `visit(pid, procDir)` for every live process.
inline void forEachProcess(const std::function<void(pid_t, const std::filesystem::path&)>& visit) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
        std::string name = entry.path().filename().string();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        if (isZombie(entry.path())) continue;
        visit(static_cast<pid_t>(std::stol(name)), entry.path());
    }
}
// The container an agent launched the process for (its RM_CONTAINER), "" when none.
inline std::string containerOf(const std::filesystem::path& proc) {
    for (const auto& e : environmentOf(proc)) {
        if (e.rfind("RM_CONTAINER=", 0) == 0) return e.substr(13);
    }
    return "";
}
}  // namespace detail

// Live processes whose command line contains `marker` and that run for `container`: started there
// by an agent (RM_CONTAINER names it; this also finds a copy whose container directory has been
// replaced since) or working in it.
inline std::vector<pid_t> processesIn(const std::filesystem::path& container,
                                      const std::string& marker) {
    std::vector<pid_t> out;
    detail::forEachProcess([&](pid_t pid, const std::filesystem::path& proc) {
        std::string cmdline = detail::readProcFile(proc / "cmdline");
        if (cmdline.find(marker) == std::string::npos) return;
        std::error_code ec;
        auto cwd = std::filesystem::read_symlink(proc / "cwd", ec);
        if (detail::containerOf(proc) == container.string() || (!ec && cwd == container))
            out.push_back(pid);
    });
    return out;
}

// Every live process an agent with this root started for a package (steps and services alike),
// by the container it was started for.
inline std::multimap<std::string, pid_t> processesUnder(const std::filesystem::path& root) {
    std::multimap<std::string, pid_t> out;
    std::string prefix = (root / "services").string() + "/";
    detail::forEachProcess([&](pid_t pid, const std::filesystem::path& proc) {
        std::string container = detail::containerOf(proc);
        if (container.rfind(prefix, 0) == 0) out.emplace(container, pid);
    });
    return out;
}

// Kills whatever a test left running from the containers under `root`: the process groups the
// pid files name, and every other process started for one of its containers.
struct ProcessReaper {
    std::filesystem::path root;
    ~ProcessReaper() {
        std::error_code ec;
        if (!std::filesystem::exists(root, ec)) return;
        if (std::filesystem::exists(root / "run", ec)) {
            for (const auto& entry :
                 std::filesystem::recursive_directory_iterator(root / "run", ec)) {
                if (entry.path().extension() != ".pid") continue;
                std::ifstream in(entry.path());
                std::string line;
                std::getline(in, line);  // pid=N
                long pid = line.rfind("pid=", 0) == 0 ? std::atol(line.c_str() + 4) : 0;
                if (pid > 1) ::kill(-static_cast<pid_t>(pid), SIGKILL);
            }
        }
        for (const auto& [container, pid] : processesUnder(root)) {
            ::kill(-pid, SIGKILL);  // its group, when it leads one (every launch does)
            ::kill(pid, SIGKILL);
        }
    }
};

// What an agent's GetNodeState says.
struct NodePackage {
    std::string name, status, sha256;
};
struct NodeInstance {
    std::string package, id, state;
    int pid = 0;
};
struct NodeState {
    std::map<std::string, NodePackage> packages;    // by PackageName
    std::map<std::string, NodeInstance> instances;  // by PackageName
};

// Asks the agent at `agentUrl` as `as` (the RM: only its certificate is answered). Throws
// std::runtime_error when the agent does not answer.
inline NodeState getNodeState(const std::string& agentUrl, const RmCredentials& as) {
    DeployerBindingProxy proxy;
    rm::common::ServerOptions limits;
    rm::common::applyXmlLimits(proxy.soap, limits);
    callAgentAs(proxy.soap, as);
    _rm__GetNodeState request;
    _rm__GetNodeStateResponse response;
    if (proxy.GetNodeState(agentUrl.c_str(), nullptr, &request, response) != SOAP_OK) {
        const char* s = soap_fault_string(proxy.soap);
        std::string why = s ? s : "error " + std::to_string(proxy.soap->error);
        proxy.soap_close_socket();
        proxy.destroy();
        throw std::runtime_error("GetNodeState failed: " + why);
    }
    NodeState state;
    for (const auto* p : response.package)
        state.packages[p->PackageName] = {p->PackageName, p->Status, p->SHA256};
    for (const auto* i : response.instance)
        state.instances[i->PackageName] = {i->PackageName, i->ID, i->state, i->pid};
    proxy.destroy();
    return state;
}

}  // namespace rm::testing
