// Restart benchmark: how long a resource-manager holding 100,000 scoped resources takes from
// being started again to serving, and how much memory it holds.
//
//   build/bin/restart_bench [--resources 100000] [--batch 5000] [--restarts 3]
//
// Fill (measured as a figure of its own): plain GenericResources added with AddResources in
// batches of --batch, each batch waited for until CLOSED. Then, --restarts times each, the RM
// is stopped with kill -9 and with SIGTERM and started again on the same state directory, and
// the time from spawning the process is taken until
//   - it prints its URL (listening),
//   - GET /healthz answers 200,
//   - GetReport of the last batch's report answers,
//   - ListResources answers with every resource (one SOAP response holding them all).
// VmRSS/VmHWM come from /proc/PID/status: after the fill, after each restart before any
// ListResources (what the state itself costs), and after ListResources.
// Reference, measured in the same run with the same steps: an RM whose state holds a single
// resource (an empty scope plus the one report GetReport needs), which gives the fixed cost of
// starting the process, and RSS per resource = (RSS full - RSS reference) / resources.
#include <cstdio>
#include <stdexcept>
#include <thread>

#include "bench/bench_support.h"

namespace fs = std::filesystem;
using namespace rm::bench;

namespace {

struct RestartTimes {
    Samples listening, healthz, getReport, listResources;  // ms from spawn
    Samples rssBeforeListKiB, rssAfterListKiB, hwmKiB;
};

void restartOnce(ResourceManager& rm, bool hard, const std::string& reportId, std::size_t expected,
                 RestartTimes& times) {
    if (hard) {
        rm.kill9();
    } else {
        rm.terminate();
    }
    const auto start = Clock::now();
    rm.start();
    times.listening.add(millisSince(start));
    const bool healthy = waitUntil(
        [&] {
            try {
                return rm::testing::httpRequest(rm.url(), "GET", "/healthz").status == 200;
            } catch (const std::exception&) {
                return false;  // not accepting yet
            }
        },
        std::chrono::minutes(5), std::chrono::milliseconds(1));
    if (!healthy) throw std::runtime_error("/healthz did not answer 200 within 5 minutes");
    times.healthz.add(millisSince(start));
    auto client = rm.client(600);
    const std::string report = client->getReport(reportId);
    if (report.find(reportId) == std::string::npos) {
        throw std::runtime_error("GetReport " + reportId + " answered without its ID");
    }
    times.getReport.add(millisSince(start));
    times.rssBeforeListKiB.add(static_cast<double>(processMemory(rm.pid()).rssKiB));
    const auto rows = client->listResources();
    times.listResources.add(millisSince(start));
    if (rows.size() != expected) {
        throw std::runtime_error("ListResources after the restart returned " +
                                 std::to_string(rows.size()) + " resources, expected " +
                                 std::to_string(expected));
    }
    const auto memory = processMemory(rm.pid());
    times.rssAfterListKiB.add(static_cast<double>(memory.rssKiB));
    times.hwmKiB.add(static_cast<double>(memory.hwmKiB));
}

void printTimes(const char* name, const RestartTimes& t) {
    std::printf(
        "%s (median of %zu): listening %.0f ms, /healthz %.0f ms, GetReport %.0f ms, "
        "ListResources %.0f ms; VmRSS %.1f MiB before ListResources, %.1f MiB after, VmHWM "
        "%.1f MiB\n",
        name, t.listening.count(), t.listening.median(), t.healthz.median(), t.getReport.median(),
        t.listResources.median(), t.rssBeforeListKiB.median() / 1024,
        t.rssAfterListKiB.median() / 1024, t.hwmKiB.median() / 1024);
}

// Fills the scope with `count` plain resources; returns the last batch's report ID.
std::string fill(ResourceManager& rm, int count, int batch) {
    auto client = rm.client(600);
    std::string last;
    const auto start = Clock::now();
    for (int first = 0; first < count; first += batch) {
        last = runSession(*client, rm.url(),
                          plainRequest("bench-", first, std::min(batch, count - first)),
                          std::chrono::minutes(30), std::chrono::milliseconds(250))
                   .id;
    }
    const double seconds = secondsSince(start);
    if (count > 1) {
        std::printf("fill: %d resources in batches of %d: %.1f s, %.0f resources/s\n", count, batch,
                    seconds, count / seconds);
    }
    return last;
}

// Fills a fresh RM in `dir` and restarts it `restarts` times each way.
std::pair<RestartTimes, RestartTimes> measure(const fs::path& dir, int resources, int batch,
                                              int restarts, double& rssAfterFillKiB) {
    ResourceManager rm(dir);
    rm.start();
    const std::string reportId = fill(rm, resources, batch);
    rssAfterFillKiB = static_cast<double>(processMemory(rm.pid()).rssKiB);
    RestartTimes hard, soft;
    for (int i = 0; i < restarts; ++i) {
        restartOnce(rm, true, reportId, static_cast<std::size_t>(resources), hard);
        restartOnce(rm, false, reportId, static_cast<std::size_t>(resources), soft);
    }
    rm.terminate();
    return {hard, soft};
}

}  // namespace

int main(int argc, char** argv) {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress shows when piped to a file
    try {
        Options options(argc, argv, {"--resources", "--batch", "--restarts"});
        const int resources = std::max(1, options.integer("--resources", 100000));
        const int batch = std::max(1, options.integer("--batch", 5000));
        const int restarts = std::max(1, options.integer("--restarts", 3));
        rm::testing::TempDir scratch("rm-restart-bench");

        double referenceFillRss = 0, fullFillRss = 0;
        const auto [refHard, refSoft] =
            measure(scratch.path() / "reference", 1, 1, restarts, referenceFillRss);
        printTimes("reference, 1 resource, restart after kill -9", refHard);
        printTimes("reference, 1 resource, restart after SIGTERM", refSoft);

        const auto [hard, soft] =
            measure(scratch.path() / "full", resources, batch, restarts, fullFillRss);
        char label[128];
        std::snprintf(label, sizeof label, "%d resources, restart after kill -9", resources);
        printTimes(label, hard);
        std::snprintf(label, sizeof label, "%d resources, restart after SIGTERM", resources);
        printTimes(label, soft);

        std::printf(
            "ratio %d resources/reference (kill -9): /healthz %.1fx, GetReport %.1fx, "
            "ListResources %.1fx\n",
            resources, hard.healthz.median() / refHard.healthz.median(),
            hard.getReport.median() / refHard.getReport.median(),
            hard.listResources.median() / refHard.listResources.median());
        std::printf("VmRSS after the fill: %.1f MiB (reference %.1f MiB)\n", fullFillRss / 1024,
                    referenceFillRss / 1024);
        std::printf(
            "RSS per resource: %.0f bytes after a restart (before ListResources), %.0f bytes "
            "after ListResources, %.0f bytes while filling\n",
            (hard.rssBeforeListKiB.median() - refHard.rssBeforeListKiB.median()) * 1024 / resources,
            (hard.rssAfterListKiB.median() - refHard.rssAfterListKiB.median()) * 1024 / resources,
            (fullFillRss - referenceFillRss) * 1024 / resources);
        std::error_code ec;
        const auto dbBytes = fs::file_size(scratch.path() / "full" / "state" / "rm.db", ec);
        if (!ec) {
            std::printf("state: rm.db %.1f MiB, %.0f bytes per resource\n",
                        static_cast<double>(dbBytes) / (1 << 20),
                        static_cast<double>(dbBytes) / resources);
        }
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "restart_bench failed: %s\n", e.what());
        return 1;
    }
}
