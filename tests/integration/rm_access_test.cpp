// People's access to a Resource Manager started with --users (SPEC section 10): readers read,
// operators change, nobody else does either; missing or wrong credentials get HTTP 401 with
// `WWW-Authenticate: Basic realm="SCOPE"` on SOAP and on pages, /healthz stays open; failed
// logins are rate-limited per peer; old SHA-256 users files and files others can read stop the
// start; rmctl verifies the server's certificate and never sends the password to a server it
// could not verify; `rmctl hash-password` prints a hash the RM accepts.
#include <Poco/Base64Encoder.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdio>
#include <mutex>

#include "rm_test_helpers.h"
#include "service/access_policy.h"
#include "test_pki.h"

using namespace rm::testing;
using rm::client::ClientError;
using rm::service::AccessPolicy;

namespace {

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::string basicAuthorization(const std::string& user, const std::string& password) {
    std::ostringstream out;
    Poco::Base64Encoder encoder(out);
    encoder.rdbuf()->setLineLength(0);
    encoder << user << ":" << password;
    encoder.close();
    return "Authorization: Basic " + out.str() + "\r\n";
}

// What `rmctl hash-password` prints for `password` given on a pipe ("" when it failed).
std::string rmctlHash(const std::string& password) {
    std::string command = "printf '%s\\n' '" + password + "' | " + (binDir() / "rmctl").string() + " hash-password";
    std::FILE* pipe = ::popen(command.c_str(), "r");
    if (!pipe) return "";
    std::string out;
    char buf[256];
    while (std::fgets(buf, sizeof buf, pipe)) out += buf;
    int status = ::pclose(pipe);
    if (status != 0) return "";
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    return out;
}

void writePrivate(const std::filesystem::path& file, const std::string& text, mode_t mode = 0600) {
    {
        std::ofstream out(file, std::ios::binary | std::ios::trunc);
        out << text;
    }
    ::chmod(file.c_str(), mode);
}

// A users file with one user per role (rita's hash from `rmctl hash-password`), plus sam, an
// operator of another scope only.
struct People {
    TempDir dir{"rm-people"};
    std::filesystem::path users = dir.path() / "users";
    std::filesystem::path ottoPassword = dir.path() / "otto.pw";
    People() {
        std::string rita = rmctlHash("rita-pw");
        BOOST_REQUIRE_MESSAGE(rita.rfind("$argon2id$", 0) == 0, "rmctl hash-password printed '" << rita << "'");
        writePrivate(users, "# people of " + kScope + "\n" +
                                "rita:" + rita + ":reader\n" +
                                "otto:" + AccessPolicy::hashPassword("otto-pw") + ":operator\n" +
                                "ada:" + AccessPolicy::hashPassword("ada-pw") + ":admin:" + kScope + "\n" +
                                "sam:" + AccessPolicy::hashPassword("sam-pw") + ":operator:/gcube/elsewhere\n");
        writePrivate(ottoPassword, "otto-pw\n");
    }
};

// RM arguments with a free agent port (the default, 8443, would collide between test RMs).
std::vector<std::string> rmArgs(std::vector<std::string> args) {
    args.insert(args.end(), {"--agent-listen", "127.0.0.1:0"});
    return args;
}

std::string getRequest(const std::string& url, const std::string& path, const std::string& extraHeaders = {}) {
    Poco::URI uri(url);
    return "GET " + path + " HTTP/1.1\r\nHost: " + uri.getHost() + ":" + std::to_string(uri.getPort()) +
           "\r\n" + extraHeaders + "Connection: close\r\n\r\n";
}

bool asksForBasicCredentials(const RawResult& r) {
    return r.status == 401 && contains(r.response, "WWW-Authenticate: Basic realm=\"" + kScope + "\"");
}

// One HTTP exchange from a chosen loopback source address (another peer for the rate limit).
RawResult exchangeFrom(const std::string& source, const std::string& url, const std::string& bytes) {
    Poco::URI uri(url);
    RawResult result;
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in local{};
    local.sin_family = AF_INET;
    ::inet_pton(AF_INET, source.c_str(), &local.sin_addr);
    sockaddr_in remote{};
    remote.sin_family = AF_INET;
    remote.sin_port = htons(uri.getPort());
    ::inet_pton(AF_INET, uri.getHost().c_str(), &remote.sin_addr);
    timeval timeout{20, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0 ||
        ::connect(fd, reinterpret_cast<sockaddr*>(&remote), sizeof remote) != 0 ||
        ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(bytes.size())) {
        result.sendFailed = true;
    }
    char buf[65536];
    for (ssize_t n; !result.sendFailed && (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) {
        result.response.append(buf, static_cast<size_t>(n));
        if (contains(result.response, "</SOAP-ENV:Envelope>")) break;
    }
    ::close(fd);
    static const std::regex statusLine(R"(^HTTP/1\.[01] (\d{3}))");
    std::smatch m;
    if (std::regex_search(result.response, m, statusLine)) result.status = std::stoi(m[1]);
    return result;
}

// A TLS server that records what clients send once the handshake is done, and answers 503.
// Its certificate is signed by the test CA, which no system store knows.
class TlsRecorder {
  public:
    explicit TlsRecorder(const std::string& pem) {
        ctx_ = SSL_CTX_new(TLS_server_method());
        if (!ctx_ || SSL_CTX_use_certificate_chain_file(ctx_, pem.c_str()) != 1 ||
            SSL_CTX_use_PrivateKey_file(ctx_, pem.c_str(), SSL_FILETYPE_PEM) != 1) {
            throw std::runtime_error("TlsRecorder: cannot load " + pem);
        }
        listen_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        if (::bind(listen_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listen_, 8) != 0 ||
            ::getsockname(listen_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
            throw std::runtime_error("TlsRecorder: cannot listen");
        }
        port_ = ntohs(addr.sin_port);
        thread_ = std::thread([this] { run(); });
    }
    ~TlsRecorder() {
        stop_ = true;
        thread_.join();
        ::close(listen_);
        SSL_CTX_free(ctx_);
    }
    std::string url() const { return "https://127.0.0.1:" + std::to_string(port_); }
    int connections() const { return connections_; }
    int handshakes() const { return handshakes_; }
    std::string received() const {
        std::lock_guard lock(mutex_);
        return received_;
    }

  private:
    void run() {
        while (!stop_) {
            pollfd p{listen_, POLLIN, 0};
            if (::poll(&p, 1, 100) <= 0) continue;
            int fd = ::accept(listen_, nullptr, nullptr);
            if (fd < 0) continue;
            ++connections_;
            timeval timeout{5, 0};
            ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
            SSL* ssl = SSL_new(ctx_);
            SSL_set_fd(ssl, fd);
            if (SSL_accept(ssl) == 1) {
                ++handshakes_;
                std::string got;
                char buf[4096];
                while (!contains(got, "\r\n\r\n")) {
                    int n = SSL_read(ssl, buf, sizeof buf);
                    if (n <= 0) break;
                    got.append(buf, static_cast<size_t>(n));
                }
                {
                    std::lock_guard lock(mutex_);
                    received_ += got;
                }
                static const std::string reply =
                    "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
                SSL_write(ssl, reply.data(), static_cast<int>(reply.size()));
                SSL_shutdown(ssl);
            }
            SSL_free(ssl);
            ::close(fd);
        }
    }

    SSL_CTX* ctx_ = nullptr;
    int listen_ = -1;
    int port_ = 0;
    std::atomic<bool> stop_{false};
    std::atomic<int> connections_{0};
    std::atomic<int> handshakes_{0};
    mutable std::mutex mutex_;
    std::string received_;
    std::thread thread_;
};

}  // namespace

BOOST_AUTO_TEST_SUITE(rm_access)

BOOST_AUTO_TEST_CASE(readers_read_operators_change) {
    People people;
    RmInstance rm(rmArgs({"--users", people.users.string()}));
    auto anonymous = rm.client();
    auto rita = rm.client("rita", "rita-pw");
    auto otto = rm.client("otto", "otto-pw");
    auto ada = rm.client("ada", "ada-pw");
    auto sam = rm.client("sam", "sam-pw");

    // Nobody without a role changes anything; a reader neither.
    BOOST_TEST(faultOf([&] { anonymous->addResources(plainRequest({{"GenericResource", "a"}})); }) ==
               "AccessDeniedFault");
    BOOST_TEST(faultOf([&] { rita->addResources(plainRequest({{"GenericResource", "a"}})); }) ==
               "AccessDeniedFault");
    BOOST_TEST(faultOf([&] { rita->removeResources(plainRequest({{"GenericResource", "a"}})); }) ==
               "AccessDeniedFault");
    BOOST_TEST(faultOf([&] { rita->disposeScope(kScope); }) == "AccessDeniedFault");
    BOOST_TEST(faultOf([&] { sam->addResources(plainRequest({{"GenericResource", "a"}})); }) == "AccessDeniedFault");
    BOOST_TEST(faultOf([&] { sam->listResources(); }) == "AccessDeniedFault");  // not his scope
    // The reader's refusal names the role it lacks, as an AccessDeniedFault on the wire.
    auto readerAdds = soapPost(rm.url(), envelope(addResourcesBody({{"GenericResource", "a"}})),
                               basicAuthorization("rita", "rita-pw"));
    BOOST_TEST(contains(readerAdds.response, "AccessDeniedFault"), readerAdds.response);
    BOOST_TEST(contains(readerAdds.response, "operator"), readerAdds.response);
    BOOST_TEST(readerAdds.status != 200);
    BOOST_TEST(rita->listResources().empty());

    // An operator (and an admin) changes the scope; the reader then sees it, on SOAP and pages.
    auto report = waitClosed(*otto, otto->addResources(plainRequest({{"GenericResource", "by-otto"}})));
    BOOST_TEST(report.sessionExitStatus.value_or("") == "SUCCESS");
    waitClosed(*ada, ada->addResources(plainRequest({{"GenericResource", "by-ada"}})));
    BOOST_TEST(rita->listResources().size() == 2u);
    BOOST_TEST(contains(rita->getReport(report.id), report.id));
    BOOST_TEST(rita->listNodes().empty());
    auto page = rawExchange(rm.url(), getRequest(rm.url(), "/resources", basicAuthorization("rita", "rita-pw")));
    BOOST_TEST(page.status == 200);
    BOOST_TEST(contains(page.body(), "by-otto"));
    auto reportPage =
        rawExchange(rm.url(), getRequest(rm.url(), "/reports/" + report.id, basicAuthorization("rita", "rita-pw")));
    BOOST_TEST(reportPage.status == 200);

    // Reads need a reader too.
    BOOST_TEST(faultOf([&] { anonymous->listResources(); }) == "AccessDeniedFault");
    BOOST_TEST(faultOf([&] { anonymous->getReport(report.id); }) == "AccessDeniedFault");
    BOOST_TEST(faultOf([&] { anonymous->listNodes(); }) == "AccessDeniedFault");
    BOOST_TEST(faultOf([&] { rm.client("rita", "otto-pw")->listResources(); }) == "AccessDeniedFault");
    BOOST_TEST(rm.daemon().log().find("event=access_denied peer=127.0.0.1") != std::string::npos);
    BOOST_TEST(rm.daemon().log().find("rita-pw") == std::string::npos);  // passwords never logged
    BOOST_TEST(rm.daemon().log().find("otto-pw") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(missing_credentials_get_401_with_the_realm) {
    People people;
    RmInstance rm(rmArgs({"--users", people.users.string()}));
    // SOAP: 401, WWW-Authenticate with the scope as realm, and an AccessDeniedFault.
    for (const std::string& body : {std::string("<rm:ListResources/>"), addResourcesBody({{"GenericResource", "x"}})}) {
        BOOST_TEST_CONTEXT(body) {
            auto soap = soapPost(rm.url(), envelope(body));
            BOOST_TEST(asksForBasicCredentials(soap), soap.response);
            BOOST_TEST(contains(soap.body(), "AccessDeniedFault"), soap.response);
            auto wrong = soapPost(rm.url(), envelope(body), basicAuthorization("otto", "not-his-password"));
            BOOST_TEST(asksForBasicCredentials(wrong), wrong.response);
            BOOST_TEST(contains(wrong.body(), "AccessDeniedFault"), wrong.response);
        }
    }
    // Pages: 401 and the realm; with a reader's credentials they answer.
    for (const std::string path : {"/", "/resources", "/nodes", "/metrics", "/wsdl", "/engine"}) {
        BOOST_TEST_CONTEXT(path) {
            auto page = rawExchange(rm.url(), getRequest(rm.url(), path));
            BOOST_TEST(asksForBasicCredentials(page), page.response);
            auto wrong = rawExchange(rm.url(), getRequest(rm.url(), path, basicAuthorization("rita", "nope")));
            BOOST_TEST(asksForBasicCredentials(wrong), wrong.response);
            auto read = rawExchange(rm.url(), getRequest(rm.url(), path, basicAuthorization("rita", "rita-pw")));
            BOOST_TEST(read.status == 200);
        }
    }
    // /healthz stays open.
    auto health = rawExchange(rm.url(), getRequest(rm.url(), "/healthz"));
    BOOST_TEST(health.status == 200);
    BOOST_TEST(contains(health.body(), "\"status\":\"ok\""));
    // rmctl says what is missing and exits 1 (refused).
    auto out = rm.dir() / "rmctl.out";
    BOOST_TEST(runProgram("rmctl", {"--manager", rm.url(), "resources"}, out) == 1);
    BOOST_TEST(contains(readText(out), "needs credentials"), readText(out));
    BOOST_TEST(runProgram("rmctl", {"--manager", rm.url(), "--user", "otto", "--password-file",
                                    people.ottoPassword.string(), "resources"},
                          out) == 0,
               readText(out));
}

BOOST_AUTO_TEST_CASE(failed_logins_are_rate_limited_per_peer) {
    People people;
    RmInstance rm(rmArgs({"--users", people.users.string()}));
    const std::string list = envelope("<rm:ListResources/>");
    auto right = basicAuthorization("otto", "otto-pw");
    BOOST_TEST(soapPost(rm.url(), list, right).status == 200);
    for (int i = 0; i < 5; ++i) {
        auto guess = soapPost(rm.url(), list, basicAuthorization("otto", "guess-" + std::to_string(i)));
        BOOST_TEST(guess.status == 401);
    }
    // The right password is now refused from this peer, without a verification...
    auto throttled = soapPost(rm.url(), list, right);
    BOOST_TEST(throttled.status == 401);
    BOOST_TEST(contains(throttled.body(), "too many failed logins"), throttled.response);
    auto page = rawExchange(rm.url(), getRequest(rm.url(), "/resources", right));
    BOOST_TEST(page.status == 401);
    // ...but not from another one.
    auto other = exchangeFrom("127.0.0.2", rm.url(), httpPost(rm.url(), list, "text/xml; charset=utf-8", right));
    BOOST_TEST(other.status == 200, other.response);
    BOOST_TEST(contains(rm.daemon().log(), "too many failed logins from 127.0.0.1"));
}

BOOST_AUTO_TEST_CASE(old_hashes_and_loose_files_stop_the_start) {
    TempDir dir("rm-bad-users");
    std::filesystem::create_directories(dir.path() / "repository");
    auto startWith = [&](const std::filesystem::path& users, const std::filesystem::path& out) {
        // `timeout` ends an RM that (wrongly) started: exit 124.
        return runProgram("/usr/bin/timeout",
                          {"20", (binDir() / "resource-manager").string(), "--scope", kScope, "--listen",
                           "127.0.0.1:0", "--agent-listen", "127.0.0.1:0", "--state-dir",
                           (dir.path() / "state").string(), "--repository", (dir.path() / "repository").string(),
                           "--users", users.string()},
                          out);
    };
    // The format before Argon2id: name:sha256hex[:scopes].
    auto old = dir.path() / "old-users";
    writePrivate(old, "# users\nalice:2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b:" + kScope +
                          "\n");
    auto out = dir.path() / "rm.out";
    int rc = startWith(old, out);
    BOOST_TEST((rc != 0 && rc != 124), "exit " << rc);
    BOOST_TEST(contains(readText(out), old.string() + ":2:"), readText(out));
    BOOST_TEST(contains(readText(out), "rmctl hash-password"), readText(out));

    auto loose = dir.path() / "loose-users";
    writePrivate(loose, "alice:" + AccessPolicy::hashPassword("pw") + ":admin\n", 0644);
    rc = startWith(loose, out);
    BOOST_TEST((rc != 0 && rc != 124), "exit " << rc);
    BOOST_TEST(contains(readText(out), "0644"), readText(out));
    BOOST_TEST(contains(readText(out), "chmod 600"), readText(out));
}

BOOST_AUTO_TEST_CASE(hash_password_prints_an_argon2id_hash_the_rm_accepts) {
    auto hash = rmctlHash("s3cret with spaces");
    BOOST_TEST(hash.rfind("$argon2id$v=19$", 0) == 0u, hash);
    BOOST_TEST(AccessPolicy::verifyPassword(hash, "s3cret with spaces"));
    BOOST_TEST(!AccessPolicy::verifyPassword(hash, "s3cret with spaces\n"));
    BOOST_TEST(!AccessPolicy::verifyPassword(hash, "s3cret"));
    BOOST_TEST(rmctlHash("s3cret with spaces") != hash);  // salted
    // An empty password is refused.
    std::string command = "printf '' | " + (binDir() / "rmctl").string() + " hash-password >/dev/null 2>&1";
    BOOST_TEST(std::system(command.c_str()) != 0);
}

BOOST_AUTO_TEST_CASE(rmctl_sends_no_password_to_an_unverified_server) {
    TestPki pki;
    People people;
    TlsRecorder recorder(pki.file("server.pem"));
    auto out = people.dir.path() / "rmctl.out";
    auto args = [&](std::string url, std::vector<std::string> extra) {
        std::vector<std::string> a{"--manager", std::move(url), "--user", "otto", "--password-file",
                                   people.ottoPassword.string()};
        a.insert(a.end(), extra.begin(), extra.end());
        a.push_back("resources");
        return a;
    };
    // Signed by a CA no system store knows, and no --tls-ca: refused, exit 3, nothing sent.
    BOOST_TEST(runProgram("rmctl", args(recorder.url(), {}), out) == 3, readText(out));
    BOOST_TEST(contains(readText(out), "--tls-ca"), readText(out));
    BOOST_TEST(recorder.connections() >= 1);
    BOOST_TEST(recorder.handshakes() == 0);
    BOOST_TEST(!contains(recorder.received(), "Authorization"), recorder.received());
    // The wrong CA: the same.
    BOOST_TEST(runProgram("rmctl", args(recorder.url(), {"--tls-ca", pki.file("other.pem")}), out) == 3, readText(out));
    BOOST_TEST(recorder.handshakes() == 0);
    BOOST_TEST(recorder.received().empty(), recorder.received());
    // --insecure is explicit, warns, and does send them (which proves the recorder records).
    BOOST_TEST(runProgram("rmctl", args(recorder.url(), {"--insecure"}), out) != 0);
    BOOST_TEST(contains(readText(out), "--insecure"), readText(out));
    BOOST_TEST(contains(recorder.received(), "Authorization: Basic"), recorder.received());

    // A real RM over https with the users file: served with --tls-ca, refused without.
    RmInstance rm(rmArgs({"--tls-key", pki.file("server.pem"), "--users", people.users.string()}));
    BOOST_REQUIRE(rm.url().rfind("https://", 0) == 0u);
    BOOST_TEST(runProgram("rmctl", args(rm.url(), {}), out) == 3, readText(out));
    BOOST_TEST(runProgram("rmctl", args(rm.url(), {"--tls-ca", pki.file("ca.pem")}), out) == 0, readText(out));
    BOOST_TEST(contains(readText(out), "TYPE"), readText(out));
}

BOOST_AUTO_TEST_SUITE_END()
