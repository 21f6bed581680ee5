// Starts a real daemon of ours as a child process on loopback (port 0) and reads the URL it
// prints first. Integration tests talk to it with the real client.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace rm::testing {

std::filesystem::path binDir();     // build/bin
std::filesystem::path sourceDir();  // the repository

class TempDir {
public:
    explicit TempDir(const std::string& prefix = "rm-test");
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

class DaemonProcess {
public:
    // `program` is a file name in binDir(); stderr goes to `logFile`. `env` entries (NAME=VALUE)
    // are added to the test's own environment, replacing a variable of the same name.
    DaemonProcess(const std::string& program, std::vector<std::string> args,
                  std::filesystem::path logFile,
                  std::chrono::milliseconds startTimeout = std::chrono::seconds(20),
                  std::vector<std::string> env = {});
    ~DaemonProcess();
    DaemonProcess(const DaemonProcess&) = delete;
    DaemonProcess& operator=(const DaemonProcess&) = delete;

    const std::string& url() const { return url_; }
    // resource-manager only: its agent port, from its second line of output ("agents: URL").
    const std::string& agentUrl() const { return agentUrl_; }
    pid_t pid() const { return pid_; }
    bool running();
    // How it ended (exit status, or -signal); nullopt while it runs.
    std::optional<int> exitStatus();
    void kill9();
    // SIGTERM, then waits; returns the exit status (or -signal).
    int terminate(std::chrono::milliseconds grace = std::chrono::seconds(15));
    std::string log() const;

private:
    int reap(bool block);
    pid_t pid_ = -1;
    std::string url_;
    std::string agentUrl_;
    std::filesystem::path logFile_;
    bool exited_ = false;
    int status_ = 0;
};

// A raw HTTP exchange (for hostile input and GET views): returns status code and body.
struct HttpResult {
    int status = 0;
    std::string contentType;
    std::string body;
};
HttpResult httpRequest(const std::string& url, const std::string& method, const std::string& path,
                       const std::string& body = {}, const std::string& contentType = {},
                       const std::vector<std::pair<std::string, std::string>>& headers = {});

// Like httpRequest, over https with a client certificate (`keyFile`: key + certificate PEM) and
// the server checked against `caFile` by chain only (our daemons are known by identity, not
// host name).
HttpResult httpsRequest(const std::string& url, const std::string& method, const std::string& path,
                        const std::string& keyFile, const std::string& caFile,
                        const std::string& body = {}, const std::string& contentType = {});

// What an agent needs to join the scope of a resource-manager started by a test.
struct JoinToken {
    std::string token;
    std::string caSha256;
    std::string agentUrl;
};
// A join token from the RM at `rmUrl` (operator port), for `uses` agents (0: any number).
JoinToken createJoinToken(const std::string& rmUrl, int uses = 0, const std::string& user = {},
                          const std::string& password = {});
// The node-agent arguments that enroll with it: --manager, --join-token, --ca-sha256.
std::vector<std::string> joinArgs(const JoinToken& token);
// A token and the arguments for an agent of `rm` in one step.
std::vector<std::string> joinArgs(const DaemonProcess& rm);

}  // namespace rm::testing
