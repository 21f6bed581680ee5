#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <any>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/engine.h"

using namespace std::chrono_literals;
using rm::engine::Context;
using rm::engine::Engine;
using rm::engine::EngineConfig;
using rm::engine::Manifold;
using rm::engine::ThreadWorker;
using rm::engine::Worker;
using rm::engine::WorkerReport;
using SteadyClock = std::chrono::steady_clock;

namespace {

template <class Predicate>
bool waitUntil(Predicate done, std::chrono::milliseconds timeout = 3000ms) {
    const auto deadline = SteadyClock::now() + timeout;
    while (!done()) {
        if (SteadyClock::now() > deadline) return false;
        std::this_thread::sleep_for(1ms);
    }
    return true;
}

// What happened, in order, written from any thread.
class Journal {
  public:
    void add(std::string entry) {
        std::lock_guard lock(mutex_);
        entries_.push_back(std::move(entry));
    }
    std::vector<std::string> entries() const {
        std::lock_guard lock(mutex_);
        return entries_;
    }
    std::size_t count(const std::string& entry) const {
        std::lock_guard lock(mutex_);
        return std::count(entries_.begin(), entries_.end(), entry);
    }
    bool containsSubstring(const std::string& part) const {
        std::lock_guard lock(mutex_);
        return std::any_of(entries_.begin(), entries_.end(),
                           [&](const std::string& e) { return e.find(part) != std::string::npos; });
    }
    std::vector<std::string> since(std::size_t first) const {
        std::lock_guard lock(mutex_);
        return {entries_.begin() + static_cast<std::ptrdiff_t>(first), entries_.end()};
    }
    std::size_t size() const {
        std::lock_guard lock(mutex_);
        return entries_.size();
    }

  private:
    mutable std::mutex mutex_;
    std::vector<std::string> entries_;
};

rm::engine::EngineLog logInto(Journal& logs) {
    return [&logs](std::string_view level, std::string_view message) {
        logs.add(std::string(level) + " " + std::string(message));
    };
}

EngineConfig fastConfig(std::uint64_t seed = 1) {
    EngineConfig config;
    config.restartDelay = 20ms;
    config.maxRestartDelay = 1000ms;
    config.jitter = 0.0;
    config.bounceDelay = 5ms;
    config.seed = seed;
    return config;
}

void waitForStop(std::stop_token stop) {
    std::mutex mutex;
    std::condition_variable_any never;
    std::unique_lock lock(mutex);
    never.wait(lock, stop, [] { return false; });
}

// Runs until killed, or fails with "<name> failed" once `fail` is set.
std::unique_ptr<Worker> idleWorker(Journal& journal, std::string name,
                                   std::atomic<bool>* fail = nullptr) {
    return std::make_unique<ThreadWorker>([&journal, name, fail](std::stop_token stop) {
        while (!stop.stop_requested()) {
            if (fail && fail->exchange(false)) {
                journal.add("stop " + name);
                throw std::runtime_error(name + " failed");
            }
            std::this_thread::sleep_for(1ms);
        }
        journal.add("stop " + name);
    });
}

// Records its start before returning, so the journal order is the order the engine started them.
Manifold idleManifold(Journal& journal, std::string name, std::vector<std::string> inputs = {},
                      std::atomic<bool>* fail = nullptr) {
    Manifold manifold;
    manifold.inputs = std::move(inputs);
    manifold.start = [&journal, name, fail](Context&) {
        journal.add("start " + name);
        return idleWorker(journal, name, fail);
    };
    return manifold;
}

WorkerReport reportOf(const Engine& engine, const std::string& name) {
    for (WorkerReport& report : engine.report())
        if (report.name == name) return report;
    BOOST_FAIL("no report for worker " + name);
    return {};
}

bool allStarted(const Engine& engine) {
    auto reports = engine.report();
    return std::all_of(reports.begin(), reports.end(),
                       [](const WorkerReport& r) { return r.state == "started"; });
}

std::ptrdiff_t positionOf(const std::vector<std::string>& entries, const std::string& entry) {
    return std::find(entries.begin(), entries.end(), entry) - entries.begin();
}

long long millisBetween(SteadyClock::time_point from, SteadyClock::time_point to) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(to - from).count();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(engine)

BOOST_AUTO_TEST_CASE(dependent_starts_after_its_input_and_receives_its_output) {
    // Several seeds: the initial jitter changes which worker becomes due first.
    for (std::uint64_t seed = 1; seed <= 5; ++seed) {
        Journal journal;
        EngineConfig config = fastConfig(seed);
        config.restartDelay = 50ms;
        config.jitter = 0.5;
        Engine engine(config);
        Manifold b;
        b.inputs = {"a"};
        b.start = [&journal](Context& ctx) {
            journal.add("start b got " + std::to_string(ctx.get<int>("a")));
            return idleWorker(journal, "b");
        };
        engine.install("b", b);  // installed before its input on purpose
        Manifold a = idleManifold(journal, "a");
        a.output = [](Worker&) { return std::any(42); };
        engine.install("a", a);
        engine.start();
        BOOST_REQUIRE(waitUntil([&] { return allStarted(engine); }));
        BOOST_TEST(journal.entries() == (std::vector<std::string>{"start a", "start b got 42"}),
                   boost::test_tools::per_element());
        BOOST_TEST(engine.seed() == seed);
    }
}

BOOST_AUTO_TEST_CASE(failing_worker_is_restarted_with_exponential_backoff) {
    Journal logs;
    std::mutex mutex;
    std::vector<SteadyClock::time_point> starts;
    Engine engine(fastConfig(), logInto(logs));
    engine.install("flaky", {.start = [&](Context&) -> std::unique_ptr<Worker> {
                       std::lock_guard lock(mutex);
                       starts.push_back(SteadyClock::now());
                       return std::make_unique<ThreadWorker>(
                           [](std::stop_token) { throw std::runtime_error("boom"); });
                   }});
    engine.start();
    BOOST_REQUIRE(waitUntil([&] {
        std::lock_guard lock(mutex);
        return starts.size() >= 4;
    }));
    engine.stop();
    std::lock_guard lock(mutex);
    // Delays 20, 40, 80 ms: without backoff every gap would be about 20 ms.
    const long long expected[] = {20, 40, 80};
    for (std::size_t i = 0; i < 3; ++i) {
        const long long gap = millisBetween(starts[i], starts[i + 1]);
        BOOST_TEST_CONTEXT("gap " << i) {
            BOOST_TEST(gap >= expected[i]);
            BOOST_TEST(gap < expected[i] + 150);
        }
    }
    WorkerReport report = reportOf(engine, "flaky");
    BOOST_TEST(report.startCount == static_cast<int>(starts.size()));
    BOOST_TEST(report.lastError == "boom");
    BOOST_TEST(report.state == "stopped");
    BOOST_TEST(
        logs.count("warn engine worker=flaky event=failed phase=run error=\"boom\" failures=1 "
                   "restart_in_ms=20") == 1u);
    BOOST_TEST(logs.count("info engine worker=flaky event=started start_count=2") == 1u);
}

BOOST_AUTO_TEST_CASE(start_function_error_counts_as_failure_with_backoff) {
    std::mutex mutex;
    std::vector<SteadyClock::time_point> attempts;
    Engine engine(fastConfig());
    engine.install("broken", {.start = [&](Context&) -> std::unique_ptr<Worker> {
                       std::lock_guard lock(mutex);
                       attempts.push_back(SteadyClock::now());
                       throw std::runtime_error("no config file");
                   }});
    engine.start();
    BOOST_REQUIRE(waitUntil([&] {
        std::lock_guard lock(mutex);
        return attempts.size() >= 4;
    }));
    engine.stop();
    std::lock_guard lock(mutex);
    BOOST_TEST(millisBetween(attempts[2], attempts[3]) >= 80);
    WorkerReport report = reportOf(engine, "broken");
    BOOST_TEST(report.startCount == 0);
    BOOST_TEST(report.lastError == "no config file");
    BOOST_TEST(!report.lastStartedAt.has_value());
}

BOOST_AUTO_TEST_CASE(backoff_resets_after_a_stable_run) {
    std::mutex mutex;
    std::vector<SteadyClock::time_point> starts, exits;
    EngineConfig config = fastConfig();
    config.restartDelay = 40ms;
    config.stableAfter = 30ms;
    Engine engine(config);
    engine.install("steady", {.start = [&](Context&) -> std::unique_ptr<Worker> {
                       std::lock_guard lock(mutex);
                       starts.push_back(SteadyClock::now());
                       return std::make_unique<ThreadWorker>([&](std::stop_token) {
                           std::this_thread::sleep_for(50ms);
                           std::lock_guard lock(mutex);
                           exits.push_back(SteadyClock::now());
                           throw std::runtime_error("tired");
                       });
                   }});
    engine.start();
    BOOST_REQUIRE(waitUntil([&] {
        std::lock_guard lock(mutex);
        return starts.size() >= 5;
    }));
    engine.stop();
    std::lock_guard lock(mutex);
    // Each run outlasts stableAfter, so every delay stays at 40 ms; without the reset they would
    // be 40, 80, 160, 320 ms. The upper bound leaves room for a loaded machine.
    for (std::size_t i = 0; i < 4; ++i) {
        const long long gap = millisBetween(exits[i], starts[i + 1]);
        BOOST_TEST_CONTEXT("restart " << i) {
            BOOST_TEST(gap >= 39);
            BOOST_TEST(gap < 120);
        }
    }
}

BOOST_AUTO_TEST_CASE(worker_returning_cleanly_is_restarted_without_backoff) {
    EngineConfig config = fastConfig();
    config.restartDelay = 10s;  // a failure would not restart within this test
    config.maxRestartDelay = 10s;
    Engine engine(config);
    engine.install("oneshot", {.start = [](Context&) {
                       return std::make_unique<ThreadWorker>([](std::stop_token) {});
                   }});
    engine.start();
    BOOST_REQUIRE(waitUntil([&] { return reportOf(engine, "oneshot").startCount >= 4; }, 2000ms));
    BOOST_TEST(reportOf(engine, "oneshot").lastError == "");
}

BOOST_AUTO_TEST_CASE(dependents_stop_before_and_restart_after_a_failed_input) {
    Journal journal;
    std::atomic<bool> failA{false};
    Engine engine(fastConfig());
    engine.install("a", idleManifold(journal, "a", {}, &failA));
    engine.install("b", idleManifold(journal, "b", {"a"}));
    // c stops slowly (longer than a's restart delay): a must still wait for it.
    engine.install("c",
                   {.inputs = {"b"}, .start = [&journal](Context&) -> std::unique_ptr<Worker> {
                        journal.add("start c");
                        return std::make_unique<ThreadWorker>([&journal](std::stop_token stop) {
                            waitForStop(stop);
                            std::this_thread::sleep_for(60ms);
                            journal.add("stop c");
                        });
                    }});
    engine.start();
    BOOST_REQUIRE(waitUntil([&] { return allStarted(engine); }));
    BOOST_TEST(journal.entries() == (std::vector<std::string>{"start a", "start b", "start c"}),
               boost::test_tools::per_element());

    const std::size_t before = journal.size();
    failA = true;
    BOOST_REQUIRE(waitUntil([&] { return journal.count("start c") == 2; }));
    BOOST_REQUIRE(waitUntil([&] { return allStarted(engine); }));
    BOOST_TEST(journal.since(before) == (std::vector<std::string>{"stop a", "stop c", "stop b",
                                                                  "start a", "start b", "start c"}),
               boost::test_tools::per_element());
    for (const char* name : {"a", "b", "c"}) BOOST_TEST(reportOf(engine, name).startCount == 2);
    BOOST_TEST(reportOf(engine, "a").lastError == "a failed");
    BOOST_TEST(reportOf(engine, "b").lastError == "");  // stopped by the engine, not failed
}

BOOST_AUTO_TEST_CASE(missing_input_is_retried_when_the_input_restarts_not_counted) {
    Journal journal, logs;
    std::atomic<bool> failA{false}, aOffersOutput{false};
    std::atomic<int> bAttempts{0};
    Engine engine(fastConfig(), logInto(logs));
    Manifold a = idleManifold(journal, "a", {}, &failA);
    a.output = [&aOffersOutput](Worker&) { return aOffersOutput ? std::any(7) : std::any(); };
    engine.install("a", a);
    engine.install("b", {.inputs = {"a"}, .start = [&](Context& ctx) {
                             ++bAttempts;
                             journal.add("b got " + std::to_string(ctx.get<int>("a")));
                             return idleWorker(journal, "b");
                         }});
    engine.start();
    BOOST_REQUIRE(waitUntil([&] { return bAttempts == 1; }));
    std::this_thread::sleep_for(100ms);  // long enough for several 20 ms retries, were there any
    BOOST_TEST(bAttempts == 1);
    BOOST_TEST(reportOf(engine, "b").state == "stopped");
    BOOST_TEST(reportOf(engine, "b").lastError == "");

    aOffersOutput = true;
    failA = true;  // a restarts, which is the input change b waits for
    BOOST_REQUIRE(waitUntil([&] { return reportOf(engine, "b").state == "started"; }));
    BOOST_TEST(bAttempts == 2);
    BOOST_TEST(journal.count("b got 7") == 1u);
    BOOST_TEST(reportOf(engine, "b").startCount == 1);
    BOOST_TEST(reportOf(engine, "b").lastError == "");
    BOOST_TEST(!logs.containsSubstring("worker=b event=failed"));
    BOOST_TEST(logs.containsSubstring("worker=b event=missing_input"));
}

BOOST_AUTO_TEST_CASE(context_rejects_undeclared_missing_and_mistyped_inputs) {
    std::stop_source source;
    Context ctx("web", {{"store", std::any(5)}, {"clock", std::any()}}, source.get_token());
    BOOST_TEST(ctx.get<int>("store") == 5);
    BOOST_TEST(ctx.worker() == "web");
    BOOST_CHECK_EXCEPTION(ctx.get<int>("secret"), rm::engine::UndeclaredInput,
                          [](const std::logic_error& e) {
                              return std::string(e.what()) ==
                                     "worker 'web' asked for input 'secret', which its manifold "
                                     "does not declare";
                          });
    BOOST_CHECK_EXCEPTION(ctx.get<int>("clock"), rm::engine::MissingInput,
                          [](const rm::engine::MissingInput& e) { return e.input() == "clock"; });
    BOOST_CHECK_THROW(ctx.get<std::string>("store"), rm::engine::InputTypeMismatch);
    BOOST_TEST(!ctx.abandoned().stop_requested());
    source.request_stop();
    BOOST_TEST(ctx.abandoned().stop_requested());
}

BOOST_AUTO_TEST_CASE(undeclared_input_in_a_start_function_is_a_failure) {
    Journal journal;
    Engine engine(fastConfig());
    engine.install("a", idleManifold(journal, "a"));
    engine.install("sneaky", {.start = [](Context& ctx) -> std::unique_ptr<Worker> {
                       ctx.get<int>("a");  // uses a without declaring it
                       return nullptr;
                   }});
    engine.start();
    BOOST_REQUIRE(waitUntil([&] { return !reportOf(engine, "sneaky").lastError.empty(); }));
    BOOST_TEST(reportOf(engine, "sneaky").lastError ==
               "worker 'sneaky' asked for input 'a', which its manifold does not declare");
    BOOST_TEST(reportOf(engine, "sneaky").startCount == 0);
}

BOOST_AUTO_TEST_CASE(bad_manifolds_and_graphs_are_rejected) {
    auto messageHas = [](std::string part) {
        return [part](const std::exception& e) {
            return std::string(e.what()).find(part) != std::string::npos;
        };
    };
    Journal journal;
    {
        Engine engine(fastConfig());
        engine.install("a", idleManifold(journal, "a"));
        BOOST_CHECK_EXCEPTION(engine.install("a", idleManifold(journal, "a")),
                              std::invalid_argument, messageHas("'a' is already installed"));
        BOOST_CHECK_EXCEPTION(engine.install("nostart", Manifold{}), std::invalid_argument,
                              messageHas("no start function"));
    }
    {
        Engine engine(fastConfig());
        engine.install("a", idleManifold(journal, "a", {"ghost"}));
        BOOST_CHECK_EXCEPTION(engine.start(), std::invalid_argument,
                              messageHas("worker 'a' needs input 'ghost', which is not installed"));
    }
    {
        Engine engine(fastConfig());
        engine.install("root", idleManifold(journal, "root"));
        engine.install("a", idleManifold(journal, "a", {"root", "c"}));
        engine.install("b", idleManifold(journal, "b", {"a"}));
        engine.install("c", idleManifold(journal, "c", {"b"}));
        BOOST_CHECK_EXCEPTION(engine.start(), std::invalid_argument,
                              messageHas("dependency cycle: a -> c -> b -> a"));
    }
    {
        Engine engine(fastConfig());
        engine.install("self", idleManifold(journal, "self", {"self"}));
        BOOST_CHECK_EXCEPTION(engine.start(), std::invalid_argument,
                              messageHas("dependency cycle: self -> self"));
    }
    {
        Engine engine(fastConfig());
        engine.install("a", idleManifold(journal, "a"));
        engine.start();
        BOOST_CHECK_THROW(engine.install("late", idleManifold(journal, "late")), std::logic_error);
        BOOST_CHECK_THROW(engine.start(), std::logic_error);
    }
    BOOST_TEST(journal.count("start ghost") == 0u);
}

BOOST_AUTO_TEST_CASE(stop_kills_dependents_first_and_is_idempotent) {
    Journal journal;
    {
        Engine engine(fastConfig());
        engine.install("c", idleManifold(journal, "c", {"b"}));
        engine.install("b", idleManifold(journal, "b", {"a"}));
        engine.install("a", idleManifold(journal, "a"));
        engine.install("d", idleManifold(journal, "d", {"a"}));
        engine.start();
        BOOST_REQUIRE(waitUntil([&] { return allStarted(engine); }));
        const std::size_t before = journal.size();
        engine.stop();
        const auto stops = journal.since(before);
        BOOST_TEST_REQUIRE(stops.size() == 4u);
        BOOST_TEST(positionOf(stops, "stop c") < positionOf(stops, "stop b"));
        BOOST_TEST(positionOf(stops, "stop b") < positionOf(stops, "stop a"));
        BOOST_TEST(positionOf(stops, "stop d") < positionOf(stops, "stop a"));
        for (const WorkerReport& report : engine.report()) BOOST_TEST(report.state == "stopped");
        engine.stop();
        BOOST_TEST(journal.size() == before + 4);
    }
    // RAII: destroying a running engine stops its workers.
    {
        Engine engine(fastConfig());
        engine.install("e", idleManifold(journal, "e"));
        engine.start();
        BOOST_REQUIRE(waitUntil([&] { return allStarted(engine); }));
    }
    BOOST_TEST(journal.count("stop e") == 1u);
}

BOOST_AUTO_TEST_CASE(stop_abandons_a_start_that_is_still_blocked) {
    Engine engine(fastConfig());
    std::atomic<bool> entered{false};
    engine.install("hang", {.start = [&](Context& ctx) -> std::unique_ptr<Worker> {
                       entered = true;
                       waitForStop(ctx.abandoned());
                       throw std::runtime_error("start abandoned");
                   }});
    engine.start();
    BOOST_REQUIRE(
        waitUntil([&] { return entered && reportOf(engine, "hang").state == "starting"; }));
    engine.stop();
    BOOST_TEST(reportOf(engine, "hang").state == "stopped");
    BOOST_TEST(reportOf(engine, "hang").lastError == "start abandoned");
}

BOOST_AUTO_TEST_CASE(report_shows_each_state_count_and_start_time) {
    Journal journal;
    Engine engine(fastConfig());
    std::atomic<bool> releaseStart{false}, releaseStop{false};
    engine.install("slow", {.start = [&](Context&) -> std::unique_ptr<Worker> {
                       while (!releaseStart) std::this_thread::sleep_for(1ms);
                       return std::make_unique<ThreadWorker>([&](std::stop_token stop) {
                           waitForStop(stop);
                           while (!releaseStop) std::this_thread::sleep_for(1ms);
                       });
                   }});
    engine.install("user", idleManifold(journal, "user", {"slow"}));

    for (const WorkerReport& report : engine.report()) {
        BOOST_TEST(report.state == "stopped");
        BOOST_TEST(report.startCount == 0);
        BOOST_TEST(!report.lastStartedAt.has_value());
    }
    BOOST_TEST(reportOf(engine, "user").inputs == std::vector<std::string>{"slow"},
               boost::test_tools::per_element());

    const auto beforeStart = std::chrono::system_clock::now();
    engine.start();
    BOOST_REQUIRE(waitUntil([&] { return reportOf(engine, "slow").state == "starting"; }));
    BOOST_TEST(reportOf(engine, "user").state == "stopped");
    releaseStart = true;
    BOOST_REQUIRE(waitUntil([&] { return allStarted(engine); }));
    WorkerReport slow = reportOf(engine, "slow");
    BOOST_TEST(slow.startCount == 1);
    BOOST_TEST_REQUIRE(slow.lastStartedAt.has_value());
    BOOST_TEST((*slow.lastStartedAt >= beforeStart));
    BOOST_TEST((*slow.lastStartedAt <= std::chrono::system_clock::now()));

    std::thread stopper([&] { engine.stop(); });
    BOOST_TEST(waitUntil([&] { return reportOf(engine, "slow").state == "stopping"; }));
    BOOST_TEST(reportOf(engine, "user").state == "stopped");
    releaseStop = true;
    stopper.join();
    BOOST_TEST(reportOf(engine, "slow").state == "stopped");
    BOOST_TEST(engine.reportJson().find("\"name\":\"slow\",\"state\":\"stopped\"") !=
               std::string::npos);
}

BOOST_AUTO_TEST_CASE(report_json_escapes_text) {
    WorkerReport report{.name = "soap \"main\"",
                        .state = "started",
                        .inputs = {"store", "back\\slash"},
                        .startCount = 3,
                        .lastError = "line one\nline two\ttab\x01",
                        .lastStartedAt = std::chrono::system_clock::time_point(1500ms)};
    WorkerReport idle{.name = "idle", .state = "stopped"};
    BOOST_TEST(rm::engine::toJson({report, idle}) ==
               "{\"workers\":[{\"name\":\"soap \\\"main\\\"\",\"state\":\"started\","
               "\"inputs\":[\"store\",\"back\\\\slash\"],\"start_count\":3,"
               "\"last_error\":\"line one\\nline two\\ttab\\u0001\","
               "\"last_started_at\":\"1970-01-01T00:00:01.500Z\"},"
               "{\"name\":\"idle\",\"state\":\"stopped\",\"inputs\":[],\"start_count\":0,"
               "\"last_error\":\"\",\"last_started_at\":null}]}");
    BOOST_TEST(rm::engine::toJson({}) == "{\"workers\":[]}");
}

BOOST_AUTO_TEST_CASE(backoff_doubles_up_to_the_ceiling) {
    rm::engine::RestartBackoff backoff(
        {.restartDelay = 20ms, .maxRestartDelay = 100ms, .jitter = 0}, 7);
    std::vector<long long> delays;
    for (unsigned failures = 1; failures <= 6; ++failures)
        delays.push_back(backoff.afterFailures(failures).count());
    BOOST_TEST(delays == (std::vector<long long>{20, 40, 80, 100, 100, 100}),
               boost::test_tools::per_element());
    BOOST_TEST(backoff.afterFailures(1000).count() == 100);
    BOOST_TEST(backoff.beforeFirstStart().count() == 0);
    BOOST_CHECK_THROW(rm::engine::RestartBackoff({.jitter = 1.5}, 1), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(jitter_is_deterministic_per_seed_and_differs_across_seeds) {
    const rm::engine::BackoffConfig config{
        .restartDelay = 1000ms, .maxRestartDelay = 30000ms, .jitter = 0.2};
    auto draw = [&](std::uint64_t seed) {
        rm::engine::RestartBackoff backoff(config, seed);
        std::vector<long long> delays;
        for (int i = 0; i < 8; ++i) delays.push_back(backoff.afterFailures(1).count());
        delays.push_back(backoff.beforeFirstStart().count());
        return delays;
    };
    const auto first = draw(42);
    BOOST_TEST(first == draw(42), boost::test_tools::per_element());
    BOOST_TEST(first != draw(43));
    for (std::size_t i = 0; i + 1 < first.size(); ++i) {
        BOOST_TEST(first[i] >= 800);
        BOOST_TEST(first[i] <= 1200);
    }
    BOOST_TEST(first.back() >= 0);
    BOOST_TEST(first.back() <= 200);
    // Jitter actually varies the delays rather than returning one value.
    const bool varies = std::adjacent_find(first.begin(), first.end() - 1, std::not_equal_to<>()) !=
                        first.end() - 1;
    BOOST_TEST(varies);
}

BOOST_AUTO_TEST_SUITE_END()
