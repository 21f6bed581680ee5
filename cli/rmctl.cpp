// rmctl: the command-line client of a scope's Resource Manager, for people and scripts.
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli/rm_client.h"
#include "common/time_util.h"
#include "deployer/package_archive.h"
#include "deployer/profile.h"
#include "deployer/sha256.h"
#include "reports/report_xml.h"
#include "service/access_policy.h"

namespace {

using rm::client::ClientError;
using rm::client::RmClient;

constexpr int kExitSuccess = 0;
constexpr int kExitFailed = 1;  // the session ended FAILED, or the RM refused the request
constexpr int kExitUsage = 2;
constexpr int kExitUnreachable = 3;  // the RM could not be reached, or --wait timed out

const char* kUsage = R"(usage: rmctl [--manager URL] [--user NAME --password-file FILE]
             [--tls-ca FILE] [--tls-key FILE] [--insecure] COMMAND ...

commands:
  add    [--scope S] [--resource TYPE:ID]... [--service Class/Name[/Version] [--package P] [--node N]]...
         [--suggest NODE]... [--wait]
  remove [--scope S] [--resource TYPE:ID]... [--service Class/Name[/Version] [--package P]]... [--wait]
  dispose [--scope S] [--wait]         remove everything from the scope
  report ID [--wait] [--timeout SECONDS] [--xml]
  resources [--type T] [--status S]
  nodes
  node remove NAME                     revoke a node's certificate: every port refuses it at once
  token create [--ttl 1h] [--uses N] [--description TEXT] [--print-join-command]
                                       a join token for `node-agent --join-token-file`, with the
                                       scope CA's SHA-256 for its --ca-sha256
  token list | token revoke ID
  package DIR [-o OUT]                 build a package archive from DIR (with profile.xml) and check it
  hash-password                        read a password (typed without echo, or one line on a pipe)
                                       and print its Argon2id hash for a users file line
                                       name:HASH:role[:scope,...], role reader, operator or admin

The manager URL defaults to $RM_MANAGER or http://127.0.0.1:8080; credentials may also come from
$RM_USER and $RM_PASSWORD. The scope comes from --scope or $RM_SCOPE.
Over https:// the server's certificate is verified against the system's CAs, or only against
--tls-ca FILE; --insecure skips that (the password then goes to whoever answers). --tls-key FILE
is a client certificate with its key (one PEM) for mutual TLS.
Exit status: 0 success; 1 the session ended FAILED or the request was refused; 2 usage;
3 the Resource Manager could not be reached (or its certificate was refused) or --wait timed out.
)";

struct Args {
    std::vector<std::string> items;
    size_t pos = 0;
    bool more() const { return pos < items.size(); }
    const std::string& peek() const { return items[pos]; }
    std::string next(const std::string& what) {
        if (!more()) throw std::invalid_argument(what + " needs a value");
        return items[pos++];
    }
};

void printProgress(const rm::reports::ResourceReport& report, bool tty) {
    auto p = rm::reports::progress(report);
    std::ostringstream line;
    line << "[" << report.status
         << (report.sessionExitStatus ? " " + *report.sessionExitStatus : "") << "] "
         << "resources " << p.resources.done << "/" << p.resources.total;
    if (p.packages.total > 0) line << ", packages " << p.packages.done << "/" << p.packages.total;
    for (const auto& node : p.nodes) {
        line << ", " << (node.host.empty() ? node.id : node.host) << " " << node.packages.done
             << "/" << node.packages.total << (node.reportClosed ? " closed" : "");
    }
    if (tty)
        std::printf("\r\033[K%s", line.str().c_str());
    else
        std::printf("%s\n", line.str().c_str());
    std::fflush(stdout);
}

void printSummary(const rm::reports::ResourceReport& report) {
    std::printf("report %s: %s %s %s\n", report.id.c_str(), report.operation.c_str(),
                report.status.c_str(), report.sessionExitStatus.value_or("").c_str());
    for (const auto& s : report.services) {
        std::printf("  service %s/%s/%s  resolution %s  on %s  %s\n", s.serviceClass.c_str(),
                    s.serviceName.c_str(), s.serviceVersion.c_str(), s.resolutionStatus.c_str(),
                    s.deployedOn.c_str(),
                    s.errorDescription.empty() ? "" : s.errorDescription.c_str());
    }
    for (const auto& g : report.ghns) {
        std::printf("  node %s (%s) report %s\n", g.host.c_str(), g.id.c_str(),
                    g.nodeStatus.c_str());
        for (const auto& p : g.packages) {
            std::printf("    %-16s %s/%s %s  %s\n", p.status.c_str(), p.serviceName.c_str(),
                        p.packageName.c_str(), p.packageVersion.c_str(), p.message.c_str());
        }
    }
    for (const auto& r : report.resources) {
        std::printf("  %-8s %s %s  %s\n", r.status.c_str(), r.type.c_str(), r.id.c_str(),
                    r.errorDescription.empty() ? "" : r.errorDescription.c_str());
    }
}

int exitFor(const rm::reports::ResourceReport& report) {
    if (report.status != "CLOSED") return kExitUnreachable;
    return report.sessionExitStatus == "SUCCESS" ? kExitSuccess : kExitFailed;
}

int followReport(RmClient& client, const std::string& id, bool wait, int timeoutSeconds, bool xml) {
    bool tty = isatty(STDOUT_FILENO) && !xml;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeoutSeconds);
    std::string last;
    for (;;) {
        std::string doc = client.getReport(id);
        auto report = rm::reports::parseReportXml(doc);
        bool done = report.status == "CLOSED";
        if (!wait || done) {
            if (tty && !last.empty()) std::printf("\n");
            if (xml)
                std::printf("%s\n", doc.c_str());
            else
                printSummary(report);
            return done ? exitFor(report) : kExitSuccess;
        }
        if (!xml && doc != last) printProgress(report, tty);
        last = doc;
        if (std::chrono::steady_clock::now() > deadline) {
            if (tty) std::printf("\n");
            std::fprintf(stderr, "rmctl: report %s still OPEN after %d s\n", id.c_str(),
                         timeoutSeconds);
            return kExitUnreachable;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
}

// The password for `hash-password`: typed twice without echo on a terminal, else one line of
// stdin (a trailing CR is dropped). Throws std::invalid_argument when there is none.
std::string readNewPassword() {
    auto readLine = [](const char* prompt) {
        std::string line;
        bool tty = isatty(STDIN_FILENO);
        termios saved{};
        if (tty && tcgetattr(STDIN_FILENO, &saved) == 0) {
            std::fputs(prompt, stderr);
            std::fflush(stderr);
            termios quiet = saved;
            quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
            std::getline(std::cin, line);
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
            std::fputs("\n", stderr);
        } else {
            std::getline(std::cin, line);
        }
        if (!line.empty() && line.back() == '\r') line.pop_back();
        return line;
    };
    std::string password = readLine("Password: ");
    if (password.empty()) throw std::invalid_argument("hash-password read an empty password");
    if (isatty(STDIN_FILENO) && readLine("Again: ") != password) {
        throw std::invalid_argument("hash-password: the two passwords differ");
    }
    return password;
}

rm::client::ServiceRequest parseService(const std::string& text) {
    rm::client::ServiceRequest s;
    std::vector<std::string> parts;
    std::stringstream in(text);
    std::string part;
    while (std::getline(in, part, '/')) parts.push_back(part);
    if (parts.size() < 2 || parts.size() > 3 || parts[0].empty() || parts[1].empty()) {
        throw std::invalid_argument("--service wants Class/Name[/Version], got '" + text + "'");
    }
    s.serviceClass = parts[0];
    s.serviceName = parts[1];
    if (parts.size() == 3 && !parts[2].empty()) s.serviceVersion = parts[2];
    return s;
}

}  // namespace

int main(int argc, char** argv) {
    Args args;
    for (int i = 1; i < argc; ++i) args.items.emplace_back(argv[i]);
    rm::client::ClientOptions options;
    options.url = std::getenv("RM_MANAGER") ? std::getenv("RM_MANAGER") : "http://127.0.0.1:8080";
    if (const char* u = std::getenv("RM_USER")) options.user = u;
    if (const char* p = std::getenv("RM_PASSWORD")) options.password = p;
    try {
        while (args.more() && args.peek().rfind("--", 0) == 0) {
            std::string flag = args.next("option");
            if (flag == "--manager")
                options.url = args.next("--manager");
            else if (flag == "--user")
                options.user = args.next("--user");
            else if (flag == "--password-file") {
                std::ifstream in(args.next("--password-file"));
                std::getline(in, options.password);
            } else if (flag == "--tls-ca")
                options.tlsCaFile = args.next("--tls-ca");
            else if (flag == "--tls-key")
                options.tlsKeyFile = args.next("--tls-key");
            else if (flag == "--insecure")
                options.insecure = true;
            else if (flag == "--help") {
                std::fputs(kUsage, stdout);
                return kExitSuccess;
            } else
                throw std::invalid_argument("unknown option " + flag);
        }
        if (!args.more()) throw std::invalid_argument("no command given");
        std::string command = args.next("command");
        while (!options.url.empty() && options.url.back() == '/') options.url.pop_back();

        if (command == "hash-password") {
            if (args.more())
                throw std::invalid_argument("hash-password takes no arguments (it reads stdin)");
            std::string password = readNewPassword();
            std::string hash = rm::service::AccessPolicy::hashPassword(password);
            std::fill(password.begin(), password.end(), '\0');
            std::printf("%s\n", hash.c_str());
            return kExitSuccess;
        }

        if (command == "package") {
            std::filesystem::path dir = args.next("package DIR");
            std::optional<std::filesystem::path> out;
            while (args.more()) {
                std::string flag = args.next("option");
                if (flag == "-o" || flag == "--output")
                    out = args.next(flag);
                else
                    throw std::invalid_argument("unknown option " + flag + " for package");
            }
            // Without -o FILE the archive is named after its profile:
            // <PackageName>-<PackageVersion>.tar.gz.
            std::ifstream in(dir / "profile.xml");
            if (!in) throw std::runtime_error("no profile.xml in " + dir.string());
            std::string xml((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
            auto profile = rm::deployer::parseProfile(xml, (dir / "profile.xml").string());
            std::filesystem::path target = out.value_or(".");
            if (std::filesystem::is_directory(target))
                target /= rm::deployer::defaultPackageFileName(profile);
            rm::deployer::buildPackage(dir, target);
            const auto& c = profile.coords;
            std::printf("%s\t%s/%s/%s\t%s %s\t%s\n", target.string().c_str(),
                        c.serviceClass.c_str(), c.serviceName.c_str(), c.serviceVersion.c_str(),
                        c.packageName.c_str(), c.packageVersion.c_str(),
                        rm::deployer::sha256File(target).c_str());
            return kExitSuccess;
        }

        if (options.insecure && options.url.rfind("https://", 0) == 0) {
            std::fprintf(stderr,
                         "rmctl: warning: --insecure: the certificate of %s is not verified; "
                         "credentials go to whoever answers\n",
                         options.url.c_str());
        }
        RmClient client(options);
        if (command == "add" || command == "remove" || command == "dispose") {
            rm::client::ScopeRequest request;
            bool wait = false;
            int timeout = 900;
            while (args.more()) {
                std::string flag = args.next("option");
                if (flag == "--scope")
                    request.targetScope = args.next("--scope");
                else if (flag == "--resource") {
                    std::string r = args.next("--resource");
                    auto colon = r.find(':');
                    if (colon == std::string::npos || colon == 0 || colon + 1 == r.size()) {
                        throw std::invalid_argument("--resource wants TYPE:ID, got '" + r + "'");
                    }
                    request.resources.emplace_back(r.substr(0, colon), r.substr(colon + 1));
                } else if (flag == "--service")
                    request.services.push_back(parseService(args.next("--service")));
                else if (flag == "--package" || flag == "--node" || flag == "--version") {
                    if (request.services.empty())
                        throw std::invalid_argument(flag + " must follow a --service");
                    auto& last = request.services.back();
                    std::string v = args.next(flag);
                    if (flag == "--package")
                        last.packageName = v;
                    else if (flag == "--node")
                        last.targetNode = v;
                    else
                        last.packageVersion = v;
                } else if (flag == "--suggest")
                    request.suggestedNodes.push_back(args.next("--suggest"));
                else if (flag == "--wait")
                    wait = true;
                else if (flag == "--timeout")
                    timeout = std::stoi(args.next("--timeout"));
                else
                    throw std::invalid_argument("unknown option " + flag + " for " + command);
            }
            if (request.targetScope.empty()) {
                const char* env = std::getenv("RM_SCOPE");
                if (!env) throw std::invalid_argument("give --scope (or set RM_SCOPE)");
                request.targetScope = env;
            }
            std::string id = command == "add"      ? client.addResources(request)
                             : command == "remove" ? client.removeResources(request)
                                                   : client.disposeScope(request.targetScope);
            std::printf("%s\n", id.c_str());
            std::fflush(stdout);
            if (!wait) {
                std::fprintf(
                    stderr,
                    "follow it: rmctl --manager %s report %s --wait  (or open %s/reports/%s)\n",
                    options.url.c_str(), id.c_str(), options.url.c_str(), id.c_str());
                return kExitSuccess;
            }
            return followReport(client, id, true, timeout, false);
        }
        if (command == "report") {
            std::string id = args.next("report ID");
            bool wait = false, xml = false;
            int timeout = 900;
            while (args.more()) {
                std::string flag = args.next("option");
                if (flag == "--wait")
                    wait = true;
                else if (flag == "--xml")
                    xml = true;
                else if (flag == "--timeout")
                    timeout = std::stoi(args.next("--timeout"));
                else
                    throw std::invalid_argument("unknown option " + flag + " for report");
            }
            return followReport(client, id, wait, timeout, xml);
        }
        if (command == "resources") {
            std::optional<std::string> type, status;
            while (args.more()) {
                std::string flag = args.next("option");
                if (flag == "--type")
                    type = args.next("--type");
                else if (flag == "--status")
                    status = args.next("--status");
                else
                    throw std::invalid_argument("unknown option " + flag + " for resources");
            }
            auto rows = client.listResources(type, status);
            std::printf("%-20s %-40s %-16s %-38s %s\n", "TYPE", "ID", "STATUS", "NODE",
                        "LAST CHANGE");
            for (const auto& r : rows) {
                std::printf("%-20s %-40s %-16s %-38s %s\n", r.type.c_str(), r.id.c_str(),
                            r.status.c_str(), r.node.empty() ? "-" : r.node.c_str(),
                            r.lastChange.c_str());
            }
            return kExitSuccess;
        }
        if (command == "nodes") {
            auto rows = client.listNodes();
            std::printf("%-16s %-38s %-8s %-26s %-8s %s\n", "NAME", "ID", "LIVENESS",
                        "LAST HEARTBEAT", "RUNNING", "ENDPOINT");
            for (const auto& n : rows) {
                std::printf("%-16s %-38s %-8s %-26s %-8d %s\n", n.name.c_str(), n.id.c_str(),
                            n.liveness.c_str(), n.lastHeartbeat.c_str(), n.runningInstances,
                            n.endpoint.c_str());
            }
            return kExitSuccess;
        }
        if (command == "token") {
            std::string what = args.next("token create|list|revoke");
            if (what == "create") {
                int64_t ttl = 3600;
                int uses = 0;
                std::string description;
                bool joinCommand = false;
                while (args.more()) {
                    std::string flag = args.next("option");
                    if (flag == "--ttl") {
                        auto parsed = rm::common::parseDuration(args.next("--ttl"));
                        if (!parsed)
                            throw std::invalid_argument(
                                "--ttl wants a duration like 90s, 15m, 1h or 7d");
                        ttl = parsed->count();
                    } else if (flag == "--uses") {
                        uses = std::stoi(args.next("--uses"));
                        if (uses < 1) throw std::invalid_argument("--uses wants a positive count");
                    } else if (flag == "--description")
                        description = args.next("--description");
                    else if (flag == "--print-join-command")
                        joinCommand = true;
                    else
                        throw std::invalid_argument("unknown option " + flag + " for token create");
                }
                auto token = client.createJoinToken(ttl, uses, description);
                std::printf("token: %s\nca-sha256: %s\nexpires: %s\nmanager: %s\n",
                            token.token.c_str(), token.caSha256.c_str(), token.expires.c_str(),
                            token.agentUrl.c_str());
                if (joinCommand) {
                    std::printf(
                        "join: echo %s > /etc/scope-rm/join-token && node-agent --manager %s "
                        "--join-token-file /etc/scope-rm/join-token --ca-sha256 %s "
                        "--name NAME --root DIR\n",
                        token.token.c_str(), token.agentUrl.c_str(), token.caSha256.c_str());
                }
                return kExitSuccess;
            }
            if (what == "list") {
                std::printf("%-8s %-27s %-10s %s\n", "ID", "EXPIRES", "USES LEFT", "DESCRIPTION");
                for (const auto& t : client.listJoinTokens()) {
                    std::printf("%-8s %-27s %-10s %s\n", t.id.c_str(), t.expires.c_str(),
                                t.usesLeft < 0 ? "unlimited" : std::to_string(t.usesLeft).c_str(),
                                t.description.c_str());
                }
                return kExitSuccess;
            }
            if (what == "revoke") {
                std::string id = args.next("token revoke ID");
                if (!client.revokeJoinToken(id)) {
                    std::fprintf(stderr, "rmctl: no token %s\n", id.substr(0, 6).c_str());
                    return kExitFailed;
                }
                std::printf("revoked %s\n", id.substr(0, 6).c_str());
                return kExitSuccess;
            }
            throw std::invalid_argument("token wants create, list or revoke");
        }
        if (command == "node") {
            std::string what = args.next("node remove");
            if (what != "remove") throw std::invalid_argument("node wants remove NAME");
            std::string name = args.next("node remove NAME");
            client.removeNode(name);
            std::printf("removed %s: its certificate is refused from now on\n", name.c_str());
            return kExitSuccess;
        }
        throw std::invalid_argument("unknown command '" + command + "'");
    } catch (const ClientError& e) {
        std::fprintf(stderr, "rmctl: %s\n", e.what());
        return e.kind == ClientError::Kind::Unreachable ? kExitUnreachable : kExitFailed;
    } catch (const std::invalid_argument& e) {
        std::fprintf(stderr, "rmctl: %s\n\n%s", e.what(), kUsage);
        return kExitUsage;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "rmctl: %s\n", e.what());
        return kExitFailed;
    }
}
