// Shared by the rm_*_test.cpp integration tests: a Resource Manager in its own temporary
// directory, raw HTTP exchanges that survive a server closing the connection, SOAP envelopes,
// snapshots of the scope's visible state, and running the command-line client.
#pragma once

#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/URI.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli/rm_client.h"
#include "daemon_process.h"
#include "reports/report_xml.h"

extern char** environ;

namespace rm::testing {

inline const std::string kScope = "/gcube/devsec";
inline const std::string kXmlDeclaration = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

// One resource-manager with its own state and repository directories. restart() keeps them.
class RmInstance {
  public:
    explicit RmInstance(std::vector<std::string> extraArgs = {}) : extra_(std::move(extraArgs)) {
        std::filesystem::create_directories(repository());
        start();
    }
    std::filesystem::path stateDir() const { return dir_.path() / "state"; }
    std::filesystem::path repository() const { return dir_.path() / "repository"; }
    std::filesystem::path logFile() const { return dir_.path() / "rm.log"; }
    const std::filesystem::path& dir() const { return dir_.path(); }
    const std::string& url() const { return daemon_->url(); }
    const std::string& agentUrl() const { return daemon_->agentUrl(); }
    // The RM's own key and certificate, and the scope CA (to talk to agents as the RM does).
    std::filesystem::path rmKeyFile() const { return stateDir() / "pki" / "rm.pem"; }
    std::filesystem::path caFile() const { return stateDir() / "pki" / "ca.pem"; }
    DaemonProcess& daemon() { return *daemon_; }

    void start() {
        std::vector<std::string> args{
            "--scope",           kScope,         "--listen",           "127.0.0.1:0", "--state-dir",
            stateDir().string(), "--repository", repository().string(), "--agent-listen", "127.0.0.1:0"};
        args.insert(args.end(), extra_.begin(), extra_.end());
        daemon_ = std::make_unique<DaemonProcess>("resource-manager", args, logFile());
    }
    void kill9() { daemon_->kill9(); }
    void restart() {
        daemon_->kill9();
        start();
    }

    rm::client::ClientOptions options(const std::string& user = {},
                                      const std::string& password = {},
                                      int timeoutSeconds = 10) const {
        rm::client::ClientOptions o;
        o.url = url();
        o.user = user;
        o.password = password;
        o.timeoutSeconds = timeoutSeconds;
        return o;
    }
    std::unique_ptr<rm::client::RmClient> client(const std::string& user = {},
                                                 const std::string& password = {}) const {
        return std::make_unique<rm::client::RmClient>(options(user, password));
    }

  private:
    TempDir dir_{"rm-it"};
    std::vector<std::string> extra_;
    std::unique_ptr<DaemonProcess> daemon_;
};

inline rm::client::ScopeRequest plainRequest(
    const std::vector<std::pair<std::string, std::string>>& resources,
    const std::string& scope = kScope) {
    rm::client::ScopeRequest r;
    r.targetScope = scope;
    r.resources = resources;
    return r;
}

// Polls GetReport until the report is CLOSED; fails the test (throws) after `timeout`.
inline rm::reports::ResourceReport waitClosed(
    rm::client::RmClient& client, const std::string& id,
    std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto report = rm::reports::parseReportXml(client.getReport(id));
        if (report.status == "CLOSED") return report;
        if (std::chrono::steady_clock::now() > deadline) {
            throw std::runtime_error("report " + id + " still " + report.status + " after timeout");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

// A raw exchange on a fresh connection: whatever the server answered before closing (or before
// `timeout`). `closedEarly` is set when sending failed because the server hung up.
struct RawResult {
    int status = 0;  // 0 when no status line came back
    std::string response;
    bool sendFailed = false;
    std::string body() const {
        auto at = response.find("\r\n\r\n");
        return at == std::string::npos ? std::string() : response.substr(at + 4);
    }
};

inline RawResult rawExchange(const std::string& url, const std::string& bytes,
                             std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    Poco::URI uri(url);
    Poco::Net::StreamSocket socket(Poco::Net::SocketAddress(uri.getHost(), uri.getPort()));
    socket.setReceiveTimeout(Poco::Timespan(static_cast<long>(timeout.count() / 1000),
                                            static_cast<long>((timeout.count() % 1000) * 1000)));
    RawResult result;
    try {
        size_t sent = 0;
        while (sent < bytes.size()) {
            int n =
                socket.sendBytes(bytes.data() + sent,
                                 static_cast<int>(std::min<size_t>(bytes.size() - sent, 65536)));
            if (n <= 0) {
                result.sendFailed = true;
                break;
            }
            sent += static_cast<size_t>(n);
        }
    } catch (const Poco::Exception&) {
        result.sendFailed = true;
    }
    auto deadline = std::chrono::steady_clock::now() + timeout;
    char buf[65536];
    // Reads until the server closes, or until one whole response (by Content-Length) is in.
    auto complete = [&] {
        auto end = result.response.find("\r\n\r\n");
        if (end == std::string::npos) return false;
        static const std::regex length(R"re(\r\n[Cc]ontent-[Ll]ength:\s*(\d+))re");
        std::smatch m;
        std::string head = result.response.substr(0, end);
        if (!std::regex_search(head, m, length)) return false;
        return result.response.size() >= end + 4 + std::stoul(m[1]);
    };
    try {
        while (std::chrono::steady_clock::now() < deadline && !complete()) {
            int n = socket.receiveBytes(buf, sizeof buf);
            if (n <= 0) break;
            result.response.append(buf, static_cast<size_t>(n));
        }
    } catch (const Poco::Exception&) {
        // reset or timeout: keep what arrived
    }
    static const std::regex statusLine(R"(^HTTP/1\.[01] (\d{3}))");
    std::smatch m;
    if (std::regex_search(result.response, m, statusLine)) result.status = std::stoi(m[1]);
    return result;
}

// A POST as curl or a SOAP library sends it (keep-alive); `extraHeaders` are full lines with CRLF.
inline std::string httpPost(const std::string& url, const std::string& body,
                            const std::string& contentType = "text/xml; charset=utf-8",
                            const std::string& extraHeaders = {}) {
    Poco::URI uri(url);
    return "POST / HTTP/1.1\r\nHost: " + uri.getHost() + ":" + std::to_string(uri.getPort()) +
           "\r\nContent-Type: " + contentType +
           "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extraHeaders + "\r\n" +
           body;
}

inline RawResult soapPost(const std::string& url, const std::string& body,
                          const std::string& extraHeaders = {}) {
    return rawExchange(url, httpPost(url, body, "text/xml; charset=utf-8", extraHeaders));
}

inline std::string envelope(const std::string& bodyContent, const std::string& prolog = {}) {
    return prolog +
           "<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\" "
           "xmlns:rm=\"urn:scope-rm:2026\"><SOAP-ENV:Body>" +
           bodyContent + "</SOAP-ENV:Body></SOAP-ENV:Envelope>";
}

inline std::string addResourcesBody(
    const std::vector<std::pair<std::string, std::string>>& resources,
    const std::string& scope = kScope) {
    std::string body = "<rm:AddResources><resources>";
    for (const auto& [type, id] : resources) {
        body += "<resource><ID>" + id + "</ID><Type>" + type + "</Type></resource>";
    }
    return body + "</resources><targetScope>" + scope + "</targetScope></rm:AddResources>";
}

// What a caller can see of the scope: report IDs listed on GET / and every resource row.
struct ScopeSnapshot {
    std::set<std::string> reportIds;
    std::vector<std::string> resources;  // "TYPE ID STATUS"
    std::string openSessions;            // rm_open_sessions from /metrics
    bool operator==(const ScopeSnapshot&) const = default;
};

inline std::string metricValue(const std::string& metrics, const std::string& name) {
    std::istringstream in(metrics);
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind(name + " ", 0) == 0) return line.substr(name.size() + 1);
    }
    return "<missing>";
}

inline ScopeSnapshot snapshot(const RmInstance& rm) {
    ScopeSnapshot s;
    auto page = httpRequest(rm.url(), "GET", "/");
    if (page.status != 200)
        throw std::runtime_error("GET / answered " + std::to_string(page.status));
    static const std::regex link(R"re(href="/reports/([^"]+)")re");
    for (std::sregex_iterator it(page.body.begin(), page.body.end(), link), end; it != end; ++it) {
        s.reportIds.insert((*it)[1]);
    }
    auto client = rm.client();
    for (const auto& r : client->listResources(std::nullopt, std::nullopt)) {
        s.resources.push_back(r.type + " " + r.id + " " + r.status);
    }
    s.openSessions = metricValue(httpRequest(rm.url(), "GET", "/metrics").body, "rm_open_sessions");
    return s;
}

inline std::ostream& operator<<(std::ostream& out, const ScopeSnapshot& s) {
    out << "{reports=" << s.reportIds.size() << " resources=" << s.resources.size()
        << " open=" << s.openSessions << "}";
    return out;
}

// Runs a program from the build's bin directory; returns its exit status (-signal when
// killed). stdout and stderr go to `output` when given.
inline int runProgram(const std::string& program, std::vector<std::string> args,
                      const std::filesystem::path& output = "/dev/null") {
    std::string path =
        program.find('/') == std::string::npos ? (binDir() / program).string() : program;
    std::vector<char*> argv{path.data()};
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, output.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, path.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) throw std::runtime_error("cannot start " + path);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

inline std::string readText(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

}  // namespace rm::testing

namespace rm::testing {

// Validates a report document (with its XML declaration) against wsdl/ResourceReport.xsd with
// xmllint, the reference validator; returns xmllint's diagnostics, empty when valid.
inline std::string schemaProblems(const std::string& document,
                                  const std::filesystem::path& workDir) {
    auto file = workDir / "report-to-validate.xml";
    auto out = workDir / "xmllint.out";
    {
        std::ofstream f(file, std::ios::binary | std::ios::trunc);
        f << document;
    }
    int rc = runProgram("/usr/bin/xmllint",
                        {"--noout", "--nonet", "--schema",
                         (sourceDir() / "wsdl" / "ResourceReport.xsd").string(), file.string()},
                        out);
    return rc == 0 ? std::string() : "xmllint exit " + std::to_string(rc) + ": " + readText(out);
}

// The typed fault name a call raised ("" when it did not raise a typed fault).
template <class Call>
std::string faultOf(Call&& call) {
    try {
        call();
    } catch (const rm::client::ClientError& e) {
        if (e.kind != rm::client::ClientError::Kind::Fault)
            return std::string("<not a fault: ") + e.what() + ">";
        return e.faultName.empty() ? std::string("<untyped fault: ") + e.what() + ">" : e.faultName;
    }
    return "<no fault>";
}

}  // namespace rm::testing

namespace rm::testing {
inline long long elapsedMs(std::chrono::steady_clock::time_point since) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 since)
        .count();
}
}  // namespace rm::testing
