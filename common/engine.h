// The dependency engine inside each daemon (SPEC section 7), modelled on Juju's
// worker/dependency. Every part of a daemon is a Worker wrapped in a Manifold that names the
// inputs it needs, says how to start the worker and what the worker offers to others. The engine
// starts a worker once all its inputs run, stops dependents before the worker they depend on,
// and restarts failed workers with backoff. Restarting from scratch is thereby the normal path.
//
//   rm::engine::Engine engine({.restartDelay = 1s}, logToLogger);
//   engine.install("store", {.start = startStore, .output = [](Worker& w) -> std::any {...}});
//   engine.install("soap", {.inputs = {"store"}, .start = [](Context& ctx) {
//       auto store = ctx.get<Store*>("store"); ... }});
//   engine.start();  // engine.stop() or the destructor stops everything, dependents first
#pragma once

#include <any>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

#include "common/engine_backoff.h"
#include "common/engine_report.h"
#include "common/worker.h"

namespace rm::engine {

// Thrown by Context::get when an input is not running or offers no output. A start function that
// lets it escape is retried when one of its inputs (re)starts; it does not count as a failure.
class MissingInput : public std::runtime_error {
  public:
    MissingInput(const std::string& worker, const std::string& input, const std::string& why);
    const std::string& input() const { return input_; }

  private:
    std::string input_;
};

// Thrown by Context::get for a name missing from the manifold's `inputs`: the engine could not
// order or restart the worker correctly around a dependency it was not told about.
class UndeclaredInput : public std::logic_error {
  public:
    UndeclaredInput(const std::string& worker, const std::string& input);
};

// Thrown by Context::get<T> when the input offers a value of another type.
class InputTypeMismatch : public std::logic_error {
  public:
    InputTypeMismatch(const std::string& worker, const std::string& input,
                      const std::type_info& wanted, const std::type_info& offered);
};

// Given to a start function: the outputs of its declared inputs, captured when the start began.
class Context {
  public:
    // `inputs` maps every declared input to its output; an empty std::any means "not available".
    // Public so a manifold's start function can be unit-tested without an engine.
    Context(std::string worker, std::map<std::string, std::any> inputs,
            std::stop_token abandoned = {});

    template <class T>
    T get(const std::string& input) const {
        const std::any& value = output(input);
        if (const T* typed = std::any_cast<T>(&value)) return *typed;
        throw InputTypeMismatch(worker_, input, typeid(T), value.type());
    }

    const std::string& worker() const { return worker_; }

    // Triggered when the engine no longer wants this start (it is stopping, or an input went
    // away). A start function that can block for long should watch it and give up.
    std::stop_token abandoned() const { return abandoned_; }

  private:
    const std::any& output(const std::string& input) const;

    std::string worker_;
    std::map<std::string, std::any> inputs_;
    std::stop_token abandoned_;
};

struct Manifold {
    std::vector<std::string> inputs{};  // names of manifolds whose workers must run first
    // Starts the worker. May block (e.g. opening a database); runs on a thread of its own.
    std::function<std::unique_ptr<Worker>(Context&)> start{};
    // Optional: what the running worker offers to dependents. Called on the engine thread with the
    // started worker, so it must be quick and non-blocking. The value must stay valid while the
    // worker object lives: the engine destroys a worker only after every dependent has stopped.
    std::function<std::any(Worker&)> output{};
};

struct EngineConfig {
    std::chrono::milliseconds restartDelay{1000};      // delay after the first failure
    std::chrono::milliseconds maxRestartDelay{30000};  // backoff ceiling
    double jitter = 0.2;                               // ± fraction applied to every delay
    // A worker that returns cleanly on its own is restarted after this short pause, with no
    // backoff penalty; the pause only keeps a worker that returns at once from spinning.
    std::chrono::milliseconds bounceDelay{10};
    // Consecutive failures (and so the backoff) reset once a worker has run this long.
    std::chrono::milliseconds stableAfter{60000};
    std::optional<std::uint64_t> seed{};  // unset: std::random_device
};

// level is "debug", "info", "warn" or "error"; message is `engine worker=NAME event=... k=v`.
using EngineLog = std::function<void(std::string_view level, std::string_view message)>;

class Engine {
  public:
    explicit Engine(EngineConfig config = {}, EngineLog log = {});
    ~Engine();  // stop()
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    // Before start() only. Throws std::invalid_argument for a duplicate name or no start function,
    // std::logic_error once started.
    void install(const std::string& name, Manifold manifold);

    // Checks the graph (std::invalid_argument naming an unknown input or the cycle found) and
    // starts the engine thread, which starts every worker whose inputs are running.
    void start();

    // Kills workers dependents-first and waits until all have stopped. Idempotent; thread-safe.
    // Not from inside a worker or start function: it would wait for itself.
    void stop();

    std::vector<WorkerReport> report() const;  // thread-safe snapshot, in install order
    std::string reportJson() const { return toJson(report()); }

    std::uint64_t seed() const;  // the jitter seed in use, so a run can be replayed

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace rm::engine
