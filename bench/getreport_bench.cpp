// GetReport benchmark: throughput and latency of reading a 200-service report over keep-alive
// connections, against nginx serving the same XML as a static file, all measured with wrk.
//
//   build/bin/getreport_bench [--services 200] [--nodes 20] [--duration-s 10]
//                             [--connections 8] [--rounds 3]
//
// Needs `wrk` and `nginx` on PATH (Debian packages wrk and nginx-light). Setup (not measured):
// a synthetic repository, a resource-manager, `node-agent --hollow N`, and one AddResources of
// --services services (two packages each) waited for until CLOSED SUCCESS, so the report is a
// real, complete document with its services, dependencies and node activity. nginx (one
// worker, access log off, started in the foreground in a temporary prefix) then serves the
// bytes of GET /reports/{id}.xml as a static file. Each round runs wrk (one thread,
// --connections keep-alive connections, --duration-s seconds, --latency) against
//   1. the RM's SOAP endpoint: a POST of the GetReport envelope (wrk Lua script),
//   2. the RM's GET /reports/{id}.xml,
//   3. nginx's GET /reports/{id}.xml,
// in that order; the figures are the medians over the rounds, and the RM/nginx ratios are
// taken on those medians. wrk and the servers share the machine's cores, as they would any
// loopback run: compare ratios, not absolute numbers, across machines.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <regex>
#include <stdexcept>
#include <thread>

#include "bench/bench_support.h"

extern char** environ;

namespace fs = std::filesystem;
using namespace rm::bench;

namespace {

void writeFile(const fs::path& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + path.string());
}

std::string getReportEnvelope(const std::string& id) {
    return "<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\" "
           "xmlns:rm=\"urn:scope-rm:2026\"><SOAP-ENV:Body><rm:GetReport><reportID>" +
           id + "</reportID></rm:GetReport></SOAP-ENV:Body></SOAP-ENV:Envelope>";
}

std::size_t occurrences(const std::string& text, const std::string& needle) {
    std::size_t n = 0;
    for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
    return n;
}

// nginx in the foreground, in its own prefix directory, serving `root` on 127.0.0.1:port.
class Nginx {
  public:
    Nginx(const fs::path& prefix, const fs::path& root) : prefix_(prefix) {
        fs::create_directories(prefix / "temp");
        port_ = freePort();
        std::string conf;
        // Started by root, nginx would run its worker as "nobody"; keep the user that owns the
        // temporary files instead.
        if (::geteuid() == 0) conf += "user root;\n";
        conf += "worker_processes 1;\ndaemon off;\npid " + (prefix / "nginx.pid").string() +
                ";\nerror_log " + (prefix / "error.log").string() +
                " warn;\nevents { worker_connections 1024; }\nhttp {\n  access_log off;\n"
                "  types { application/xml xml; }\n  keepalive_requests 1000000;\n  sendfile on;\n";
        for (const char* kind : {"client_body", "proxy", "fastcgi", "uwsgi", "scgi"}) {
            conf += std::string("  ") + kind + "_temp_path " + (prefix / "temp" / kind).string() +
                    ";\n";
        }
        conf += "  server {\n    listen 127.0.0.1:" + std::to_string(port_) + ";\n    root " +
                root.string() + ";\n  }\n}\n";
        writeFile(prefix / "nginx.conf", conf);

        std::vector<std::string> args{"nginx",
                                      "-p",
                                      prefix.string(),
                                      "-e",
                                      (prefix / "error.log").string(),
                                      "-c",
                                      (prefix / "nginx.conf").string()};
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
        const int rc = ::posix_spawnp(&pid_, "nginx", &actions, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&actions);
        if (rc != 0) {
            throw std::runtime_error(
                "cannot start nginx (install the Debian package nginx-light): " +
                std::string(std::strerror(rc)));
        }
        const bool up = waitUntil(
            [&] {
                try {
                    rm::testing::httpRequest(url(), "GET", "/");
                    return true;
                } catch (const std::exception&) {
                    return false;
                }
            },
            std::chrono::seconds(10));
        if (!up) {
            stop();
            throw std::runtime_error("nginx did not start; see " + (prefix / "error.log").string());
        }
    }
    ~Nginx() { stop(); }
    Nginx(const Nginx&) = delete;
    Nginx& operator=(const Nginx&) = delete;

    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  private:
    void stop() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGTERM);  // fast shutdown; the master stops its worker
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
    }

    fs::path prefix_;
    int port_ = 0;
    pid_t pid_ = -1;
};

struct WrkResult {
    double requestsPerSecond = 0;
    double p50Millis = 0;
    double p99Millis = 0;
};

double toMillis(const std::string& value, const std::string& unit) {
    const double v = std::stod(value);
    if (unit == "us") return v / 1000;
    if (unit == "s") return v * 1000;
    if (unit == "m") return v * 60000;
    return v;  // ms
}

// Runs wrk and parses its summary; refuses a run with errors or non-2xx answers, since those
// figures would not measure serving the report.
WrkResult runWrk(const std::string& url, const std::string& path, const fs::path& script,
                 int connections, int seconds) {
    std::string command = "wrk -t1 -c" + std::to_string(connections) + " -d" +
                          std::to_string(seconds) + "s --latency";
    if (!script.empty()) command += " -s " + shellQuote(script.string());
    command += " " + shellQuote(url + path);
    const std::string out = runCommand(command);
    if (out.find("Non-2xx") != std::string::npos ||
        out.find("Socket errors") != std::string::npos) {
        throw std::runtime_error("wrk saw errors or non-2xx answers:\n" + command + "\n" + out);
    }
    WrkResult r;
    std::smatch m;
    static const std::regex rps(R"(Requests/sec:\s+([0-9.]+))");
    static const std::regex p50(R"(\n\s+50%\s+([0-9.]+)(us|ms|s|m)\b)");
    static const std::regex p99(R"(\n\s+99%\s+([0-9.]+)(us|ms|s|m)\b)");
    if (!std::regex_search(out, m, rps)) throw std::runtime_error("no Requests/sec in:\n" + out);
    r.requestsPerSecond = std::stod(m[1]);
    if (!std::regex_search(out, m, p50)) throw std::runtime_error("no 50% latency in:\n" + out);
    r.p50Millis = toMillis(m[1], m[2]);
    if (!std::regex_search(out, m, p99)) throw std::runtime_error("no 99% latency in:\n" + out);
    r.p99Millis = toMillis(m[1], m[2]);
    return r;
}

struct Series {
    Samples rps, p50, p99;
    void add(const WrkResult& r) {
        rps.add(r.requestsPerSecond);
        p50.add(r.p50Millis);
        p99.add(r.p99Millis);
    }
};

void printSeries(const char* name, const Series& s) {
    std::printf("%-34s %10.0f req/s   p50 %7.2f ms   p99 %7.2f ms\n", name, s.rps.median(),
                s.p50.median(), s.p99.median());
}

void printRatio(const char* name, const Series& rm, const Series& nginx) {
    std::printf("ratio %-28s req/s %.2fx   p50 %.2fx   p99 %.2fx\n", name,
                rm.rps.median() / nginx.rps.median(), rm.p50.median() / nginx.p50.median(),
                rm.p99.median() / nginx.p99.median());
}

}  // namespace

int main(int argc, char** argv) {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress shows when piped to a file
    try {
        Options options(argc, argv,
                        {"--services", "--nodes", "--duration-s", "--connections", "--rounds"});
        const int services = std::max(1, options.integer("--services", 200));
        const int nodes = std::max(1, options.integer("--nodes", 20));
        const int seconds = std::max(1, options.integer("--duration-s", 10));
        const int connections = std::max(1, options.integer("--connections", 8));
        const int rounds = std::max(1, options.integer("--rounds", 3));

        rm::testing::TempDir scratch("rm-getreport-bench");
        const auto setup = Clock::now();
        SyntheticRepository::build(scratch.path() / "rm" / "repository", services);
        ResourceManager rm(scratch.path() / "rm");
        rm.start();
        auto client = rm.client();
        auto agent = startHollowNodes(scratch.path(), nodes, 1, *client);
        const std::string id =
            runSession(*client, rm.url(), servicesRequest(0, services), std::chrono::minutes(10))
                .id;

        const auto xml = rm::testing::httpRequest(rm.url(), "GET", "/reports/" + id + ".xml");
        if (xml.status != 200) throw std::runtime_error("GET /reports/" + id + ".xml failed");
        const fs::path root = scratch.path() / "www";
        fs::create_directories(root / "reports");
        writeFile(root / "reports" / (id + ".xml"), xml.body);
        const std::string envelope = getReportEnvelope(id);
        const auto soap =
            rm::testing::httpRequest(rm.url(), "POST", "/", envelope, "text/xml; charset=utf-8");
        if (soap.status != 200 || soap.body.find(id) == std::string::npos ||
            occurrences(soap.body, "DeployedOn>") != 2u * static_cast<std::size_t>(services)) {
            throw std::runtime_error("GetReport did not answer the " + std::to_string(services) +
                                     "-service report (HTTP " + std::to_string(soap.status) + ")");
        }
        const fs::path script = scratch.path() / "getreport.lua";
        writeFile(script, "wrk.method = \"POST\"\nwrk.body = [[" + envelope +
                              "]]\nwrk.headers[\"Content-Type\"] = \"text/xml; charset=utf-8\"\n");
        Nginx nginx(scratch.path() / "nginx", root);
        const auto fromNginx =
            rm::testing::httpRequest(nginx.url(), "GET", "/reports/" + id + ".xml");
        if (fromNginx.status != 200 || fromNginx.body != xml.body) {
            throw std::runtime_error("nginx does not serve the report's bytes");
        }
        std::printf(
            "setup: %d services over %d hollow nodes, report CLOSED SUCCESS, in %.1f s; report "
            "%zu bytes as /reports/{id}.xml, %zu bytes as a GetReport response\n",
            services, nodes, secondsSince(setup), xml.body.size(), soap.body.size());
        std::printf("wrk: 1 thread, %d keep-alive connections, %d s per run, %d rounds\n",
                    connections, seconds, rounds);

        Series soapSeries, getSeries, nginxSeries;
        const std::string path = "/reports/" + id + ".xml";
        for (int round = 0; round < rounds; ++round) {
            soapSeries.add(runWrk(rm.url(), "/", script, connections, seconds));
            getSeries.add(runWrk(rm.url(), path, {}, connections, seconds));
            nginxSeries.add(runWrk(nginx.url(), path, {}, connections, seconds));
        }
        printSeries("RM GetReport (SOAP POST)", soapSeries);
        printSeries("RM GET /reports/{id}.xml", getSeries);
        printSeries("nginx GET /reports/{id}.xml", nginxSeries);
        printRatio("RM GetReport / nginx", soapSeries, nginxSeries);
        printRatio("RM GET .xml / nginx", getSeries, nginxSeries);
        const auto memory = processMemory(rm.pid());
        std::printf("resource-manager memory after the runs: VmRSS %.1f MiB, VmHWM %.1f MiB\n",
                    memory.rssKiB / 1024.0, memory.hwmKiB / 1024.0);

        agent->terminate(std::chrono::seconds(60));
        rm.terminate();
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "getreport_bench failed: %s\n", e.what());
        return 1;
    }
}
