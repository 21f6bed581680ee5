#include "daemon_process.h"

#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/StreamCopier.h>
#include <Poco/URI.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "cli/rm_client.h"

extern char** environ;

namespace rm::testing {

std::filesystem::path binDir() { return RM_BIN_DIR; }
std::filesystem::path sourceDir() { return RM_SOURCE_DIR; }

TempDir::TempDir(const std::string& prefix) {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() / (prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
    std::filesystem::create_directories(path_);
    // Agents started as root run packages as an unprivileged user, which must get through to the
    // containers under an agent root made here: search only, no listing.
    std::filesystem::permissions(path_, std::filesystem::perms::owner_all |
                                            std::filesystem::perms::group_exec |
                                            std::filesystem::perms::others_exec);
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

DaemonProcess::DaemonProcess(const std::string& program, std::vector<std::string> args,
                             std::filesystem::path logFile, std::chrono::milliseconds startTimeout,
                             std::vector<std::string> env)
    : logFile_(std::move(logFile)) {
    std::vector<std::string> environment;
    for (char** e = environ; *e; ++e) {
        std::string entry(*e);
        std::string name = entry.substr(0, entry.find('='));
        bool replaced = std::any_of(env.begin(), env.end(), [&](const std::string& extra) {
            return extra.substr(0, extra.find('=')) == name;
        });
        if (!replaced) environment.push_back(std::move(entry));
    }
    environment.insert(environment.end(), env.begin(), env.end());
    std::vector<char*> envp;
    for (auto& entry : environment) envp.push_back(entry.data());
    envp.push_back(nullptr);
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    int err = ::open(logFile_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err, 2);
    std::string path = (binDir() / program).string();
    std::vector<char*> argv{path.data()};
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int rc = posix_spawn(&pid_, path.c_str(), &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    ::close(err);
    if (rc != 0) {
        ::close(out[0]);
        throw std::runtime_error("cannot start " + path);
    }
    auto deadline = std::chrono::steady_clock::now() + startTimeout;
    std::string line;
    // The RM prints its operator URL, then "agents: URL".
    size_t linesWanted = program == "resource-manager" ? 2 : 1;
    while (static_cast<size_t>(std::count(line.begin(), line.end(), '\n')) < linesWanted) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        pollfd p{out[0], POLLIN, 0};
        if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
        char buf[256];
        ssize_t n = ::read(out[0], buf, sizeof buf);
        if (n <= 0) break;
        line.append(buf, static_cast<size_t>(n));
    }
    ::close(out[0]);  // later stdout writes go nowhere; the daemons write only the URL there
    auto nl = line.find('\n');
    if (nl == std::string::npos) {
        kill9();
        throw std::runtime_error(program + " did not print its URL; log:\n" + log());
    }
    url_ = line.substr(0, nl);
    if (linesWanted == 2) {
        auto second = line.find('\n', nl + 1);
        std::string agents = second == std::string::npos ? "" : line.substr(nl + 1, second - nl - 1);
        if (agents.rfind("agents: ", 0) != 0) {
            kill9();
            throw std::runtime_error(program + " did not print its agent URL; log:\n" + log());
        }
        agentUrl_ = agents.substr(8);
    }
}

DaemonProcess::~DaemonProcess() {
    if (pid_ > 0 && !exited_) {
        ::kill(pid_, SIGKILL);
        reap(true);
    }
}

int DaemonProcess::reap(bool block) {
    if (exited_) return status_;
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
    if (r == pid_) {
        exited_ = true;
        status_ = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    }
    return status_;
}

bool DaemonProcess::running() {
    reap(false);
    return !exited_;
}

std::optional<int> DaemonProcess::exitStatus() {
    reap(false);
    return exited_ ? std::optional<int>(status_) : std::nullopt;
}

void DaemonProcess::kill9() {
    if (exited_) return;
    ::kill(pid_, SIGKILL);
    reap(true);
}

int DaemonProcess::terminate(std::chrono::milliseconds grace) {
    if (exited_) return status_;
    ::kill(pid_, SIGTERM);
    auto deadline = std::chrono::steady_clock::now() + grace;
    while (std::chrono::steady_clock::now() < deadline) {
        if (!running()) return status_;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    kill9();
    throw std::runtime_error("daemon did not stop within the grace period after SIGTERM");
}

std::string DaemonProcess::log() const {
    std::ifstream in(logFile_);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

HttpResult httpRequest(const std::string& url, const std::string& method, const std::string& path,
                       const std::string& body, const std::string& contentType,
                       const std::vector<std::pair<std::string, std::string>>& headers) {
    Poco::URI uri(url);
    Poco::Net::HTTPClientSession session(uri.getHost(), uri.getPort());
    session.setTimeout(Poco::Timespan(30, 0));
    Poco::Net::HTTPRequest request(method, path, Poco::Net::HTTPMessage::HTTP_1_1);
    for (const auto& [k, v] : headers) request.set(k, v);
    if (!body.empty() || method == "POST") {
        request.setContentLength(static_cast<std::streamsize>(body.size()));
        if (!contentType.empty()) request.setContentType(contentType);
    }
    session.sendRequest(request) << body;
    Poco::Net::HTTPResponse response;
    std::istream& in = session.receiveResponse(response);
    HttpResult result;
    result.status = static_cast<int>(response.getStatus());
    result.contentType = response.getContentType();
    Poco::StreamCopier::copyToString(in, result.body);
    return result;
}

HttpResult httpsRequest(const std::string& url, const std::string& method, const std::string& path,
                        const std::string& keyFile, const std::string& caFile, const std::string& body,
                        const std::string& contentType) {
    Poco::URI uri(url);
    Poco::Net::Context::Params params;
    params.privateKeyFile = keyFile;
    params.certificateFile = keyFile;
    params.caLocation = caFile;
    params.verificationMode = Poco::Net::Context::VERIFY_RELAXED;
    Poco::Net::Context::Ptr context = new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, params);
    context->enableExtendedCertificateVerification(false);
    Poco::Net::HTTPSClientSession session(uri.getHost(), uri.getPort(), context);
    session.setTimeout(Poco::Timespan(30, 0));
    Poco::Net::HTTPRequest request(method, path, Poco::Net::HTTPMessage::HTTP_1_1);
    if (!body.empty() || method == "POST") {
        request.setContentLength(static_cast<std::streamsize>(body.size()));
        if (!contentType.empty()) request.setContentType(contentType);
    }
    session.sendRequest(request) << body;
    Poco::Net::HTTPResponse response;
    std::istream& in = session.receiveResponse(response);
    HttpResult result;
    result.status = static_cast<int>(response.getStatus());
    result.contentType = response.getContentType();
    Poco::StreamCopier::copyToString(in, result.body);
    return result;
}

JoinToken createJoinToken(const std::string& rmUrl, int uses, const std::string& user,
                          const std::string& password) {
    rm::client::ClientOptions options;
    options.url = rmUrl;
    options.user = user;
    options.password = password;
    rm::client::RmClient client(options);
    auto made = client.createJoinToken(3600, uses, "test");
    return {made.token, made.caSha256, made.agentUrl};
}

std::vector<std::string> joinArgs(const JoinToken& token) {
    return {"--manager", token.agentUrl, "--join-token", token.token, "--ca-sha256", token.caSha256};
}

std::vector<std::string> joinArgs(const DaemonProcess& rm) {
    return joinArgs(createJoinToken(rm.url()));
}

}  // namespace rm::testing
