#include "common/engine.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <iterator>
#include <mutex>
#include <numeric>
#include <thread>
#include <utility>

namespace rm::engine {

MissingInput::MissingInput(const std::string& worker, const std::string& input,
                           const std::string& why)
    : std::runtime_error("worker '" + worker + "' is missing input '" + input + "': " + why),
      input_(input) {}

UndeclaredInput::UndeclaredInput(const std::string& worker, const std::string& input)
    : std::logic_error("worker '" + worker + "' asked for input '" + input +
                       "', which its manifold does not declare") {}

InputTypeMismatch::InputTypeMismatch(const std::string& worker, const std::string& input,
                                     const std::type_info& wanted, const std::type_info& offered)
    : std::logic_error("worker '" + worker + "' wanted input '" + input + "' as " + wanted.name() +
                       " but it offers " + offered.name()) {}

Context::Context(std::string worker, std::map<std::string, std::any> inputs,
                 std::stop_token abandoned)
    : worker_(std::move(worker)), inputs_(std::move(inputs)), abandoned_(std::move(abandoned)) {}

const std::any& Context::output(const std::string& input) const {
    auto found = inputs_.find(input);
    if (found == inputs_.end()) throw UndeclaredInput(worker_, input);
    if (!found->second.has_value())
        throw MissingInput(worker_, input, "it is not running or offers no output");
    return found->second;
}

namespace {

using SteadyClock = std::chrono::steady_clock;
using SystemClock = std::chrono::system_clock;

enum class State { stopped, starting, started, stopping };

const char* stateName(State state) {
    switch (state) {
        case State::stopped:
            return "stopped";
        case State::starting:
            return "starting";
        case State::started:
            return "started";
        case State::stopping:
            return "stopping";
    }
    return "unknown";
}

std::string describe(const std::exception_ptr& error) {
    if (!error) return "";
    try {
        std::rethrow_exception(error);
    } catch (const std::exception& e) {
        return e.what();
    } catch (...) {
        return "unknown exception (not derived from std::exception)";
    }
}

// Workers report through this queue, so only the engine thread ever touches bookkeeping.
struct Event {
    enum class Kind { started, startFailed, stopped, stopEngine };
    Kind kind;
    std::size_t slot = 0;
    std::unique_ptr<Worker> worker{};  // started: ownership passes to the engine
    std::exception_ptr error{};
    bool missingInput = false;
};

class EventQueue {
  public:
    void push(Event event) {
        {
            std::lock_guard lock(mutex_);
            events_.push_back(std::move(event));
        }
        ready_.notify_one();
    }

    // Everything queued, waiting until something arrives or `deadline` passes.
    std::vector<Event> take(std::optional<SteadyClock::time_point> deadline) {
        std::unique_lock lock(mutex_);
        auto any = [this] { return !events_.empty(); };
        if (deadline)
            ready_.wait_until(lock, *deadline, any);
        else
            ready_.wait(lock, any);
        std::vector<Event> out(std::make_move_iterator(events_.begin()),
                               std::make_move_iterator(events_.end()));
        events_.clear();
        return out;
    }

  private:
    std::mutex mutex_;
    std::condition_variable ready_;
    std::deque<Event> events_;
};

// One `engine worker=NAME event=EVENT k=v ...` line, written when it goes out of scope.
class LogLine {
  public:
    LogLine(const EngineLog& log, std::string_view level, std::string_view worker,
            std::string_view event)
        : log_(log), level_(level) {
        if (!log_) return;
        text_ = "engine";
        if (!worker.empty()) text_.append(" worker=").append(worker);
        text_.append(" event=").append(event);
    }
    ~LogLine() {
        if (!log_) return;
        try {
            log_(level_, text_);
        } catch (...) {
            // A broken log sink must not take the engine thread down with it.
        }
    }
    LogLine(const LogLine&) = delete;
    LogLine& operator=(const LogLine&) = delete;

    LogLine& kv(std::string_view key, long long value) {
        if (log_) text_.append(" ").append(key).append("=").append(std::to_string(value));
        return *this;
    }
    LogLine& kv(std::string_view key, std::string_view value) {
        if (log_) text_.append(" ").append(key).append("=").append(value);
        return *this;
    }
    LogLine& quoted(std::string_view key, std::string_view value) {
        if (log_) text_.append(" ").append(key).append("=").append(jsonQuote(value));
        return *this;
    }

  private:
    const EngineLog& log_;
    std::string_view level_;
    std::string text_;
};

struct Slot {
    std::string name{};
    Manifold manifold{};
    std::vector<std::size_t> inputs{};  // indices into the slot table, resolved by start()
    std::vector<std::size_t> dependents{};

    State state = State::stopped;
    // The running worker, or a stopped one kept alive until every dependent has stopped and been
    // released: dependents may hold pointers into it that came from its output.
    std::unique_ptr<Worker> worker{};
    // Runs the start function and then waits on the worker; joined when its last event arrives.
    std::jthread runner{};
    bool killedByEngine = false;
    bool stopWanted = false;  // recomputed every round: the engine stops, or an input is down
    // When the next start may happen. Unset: wait until an input (re)starts.
    std::optional<SteadyClock::time_point> startDue{};
    long long inputStartsAtLaunch = 0;  // to notice inputs restarting during a start

    unsigned consecutiveFailures = 0;
    int startCount = 0;
    std::string lastError{};
    std::optional<SystemClock::time_point> lastStartedAt{};
    SteadyClock::time_point lastStartedSteady{};
};

// Runs on the slot's runner thread: the possibly slow start function, then the wait.
void runWorker(std::stop_token abandoned, EventQueue& events, std::size_t index,
               const std::string& name, const Manifold& manifold,
               std::map<std::string, std::any> outputs) {
    std::unique_ptr<Worker> worker;
    try {
        Context context(name, std::move(outputs), abandoned);
        worker = manifold.start(context);
        if (!worker)
            throw std::logic_error("start function of worker '" + name + "' returned null");
    } catch (const MissingInput&) {
        events.push({.kind = Event::Kind::startFailed,
                     .slot = index,
                     .error = std::current_exception(),
                     .missingInput = true});
        return;
    } catch (...) {
        events.push(
            {.kind = Event::Kind::startFailed, .slot = index, .error = std::current_exception()});
        return;
    }
    // The engine destroys the worker only after handling the `stopped` event pushed below.
    Worker& running = *worker;
    events.push({.kind = Event::Kind::started, .slot = index, .worker = std::move(worker)});
    std::exception_ptr error;
    try {
        error = running.wait();
    } catch (...) {
        error = std::current_exception();
    }
    events.push({.kind = Event::Kind::stopped, .slot = index, .error = error});
}

std::uint64_t chooseSeed(const std::optional<std::uint64_t>& configured) {
    if (configured) return *configured;
    std::random_device device;
    return (static_cast<std::uint64_t>(device()) << 32) ^ device();
}

}  // namespace

struct Engine::Impl {
    Impl(EngineConfig config, EngineLog log)
        : config(config),
          log(std::move(log)),
          seed(chooseSeed(config.seed)),
          backoff({config.restartDelay, config.maxRestartDelay, config.jitter}, seed) {}

    // --- set up, on the caller's thread ---------------------------------------------------
    void resolveGraph();
    void visit(std::size_t index, std::vector<int>& mark, std::vector<std::size_t>& path);

    // --- the engine thread -------------------------------------------------------------------
    void run();
    void handle(Event event);
    void onStarted(Slot& slot, std::unique_ptr<Worker> worker);
    void onStartFailed(Slot& slot, const Event& event);
    void onStopped(Slot& slot, const std::exception_ptr& error);
    void onFailure(Slot& slot, const std::exception_ptr& error, std::string_view phase);
    void reconcile();
    void launch(std::size_t index);
    std::any outputOf(Slot& input);
    bool dependentsStopped(const Slot& slot) const;
    bool dependentsReleased(const Slot& slot) const;
    bool readyToStart(const Slot& slot) const;
    long long inputStarts(const Slot& slot) const;
    std::optional<SteadyClock::time_point> nextDeadline() const;
    bool allStopped() const;
    void publish();

    const EngineConfig config;
    const EngineLog log;
    const std::uint64_t seed;
    RestartBackoff backoff;  // engine thread only, once started

    // Fixed once started; from then on only the engine thread touches the slots.
    std::vector<Slot> slots;
    std::map<std::string, std::size_t> byName;
    std::vector<std::size_t> topoOrder;  // every worker after all of its inputs

    EventQueue events;
    bool stopping = false;  // engine thread only

    mutable std::mutex reportMutex;
    std::vector<WorkerReport> published;

    std::mutex lifecycleMutex;  // serialises install/start/stop
    bool started = false;
    bool stopped = false;
    std::thread loop;
};

Engine::Engine(EngineConfig config, EngineLog log)
    : impl_(std::make_unique<Impl>(config, std::move(log))) {}

Engine::~Engine() {
    stop();
}

std::uint64_t Engine::seed() const {
    return impl_->seed;
}

void Engine::install(const std::string& name, Manifold manifold) {
    std::lock_guard lock(impl_->lifecycleMutex);
    if (impl_->started || impl_->stopped)
        throw std::logic_error("engine: cannot install worker '" + name + "' after start");
    if (name.empty()) throw std::invalid_argument("engine: a worker needs a name");
    if (!manifold.start)
        throw std::invalid_argument("engine: worker '" + name + "' has no start function");
    if (impl_->byName.contains(name))
        throw std::invalid_argument("engine: worker '" + name + "' is already installed");
    impl_->byName.emplace(name, impl_->slots.size());
    impl_->slots.push_back(Slot{.name = name, .manifold = std::move(manifold)});
    impl_->publish();
}

void Engine::start() {
    std::lock_guard lock(impl_->lifecycleMutex);
    if (impl_->started) throw std::logic_error("engine: already started");
    if (impl_->stopped) throw std::logic_error("engine: cannot start after stop");
    impl_->resolveGraph();
    const auto now = SteadyClock::now();
    for (std::size_t i : impl_->topoOrder)
        impl_->slots[i].startDue = now + impl_->backoff.beforeFirstStart();
    impl_->publish();
    LogLine(impl_->log, "info", "", "engine_started")
        .kv("workers", static_cast<long long>(impl_->slots.size()))
        .kv("seed", std::to_string(impl_->seed));
    impl_->started = true;
    impl_->loop = std::thread([impl = impl_.get()] { impl->run(); });
}

void Engine::stop() {
    std::lock_guard lock(impl_->lifecycleMutex);
    if (impl_->stopped) return;
    impl_->stopped = true;
    if (!impl_->started) return;
    impl_->events.push({.kind = Event::Kind::stopEngine});
    impl_->loop.join();
    LogLine(impl_->log, "info", "", "engine_stopped");
}

std::vector<WorkerReport> Engine::report() const {
    std::lock_guard lock(impl_->reportMutex);
    return impl_->published;
}

void Engine::Impl::resolveGraph() {
    for (Slot& slot : slots) {
        slot.inputs.clear();
        slot.dependents.clear();
    }
    for (std::size_t i = 0; i < slots.size(); ++i) {
        for (const std::string& input : slots[i].manifold.inputs) {
            auto found = byName.find(input);
            if (found == byName.end())
                throw std::invalid_argument("engine: worker '" + slots[i].name + "' needs input '" +
                                            input + "', which is not installed");
            if (std::find(slots[i].inputs.begin(), slots[i].inputs.end(), found->second) !=
                slots[i].inputs.end())
                throw std::invalid_argument("engine: worker '" + slots[i].name + "' lists input '" +
                                            input + "' twice");
            slots[i].inputs.push_back(found->second);
            slots[found->second].dependents.push_back(i);
        }
    }
    topoOrder.clear();
    std::vector<int> mark(slots.size(), 0);  // 0 unvisited, 1 on the current path, 2 done
    std::vector<std::size_t> path;
    for (std::size_t i = 0; i < slots.size(); ++i) visit(i, mark, path);
}

// Depth-first over inputs; a worker met again while still on the path closes a cycle.
void Engine::Impl::visit(std::size_t index, std::vector<int>& mark,
                         std::vector<std::size_t>& path) {
    if (mark[index] == 2) return;
    if (mark[index] == 1) {
        std::string cycle;
        auto from = std::find(path.begin(), path.end(), index);
        for (auto it = from; it != path.end(); ++it) cycle += slots[*it].name + " -> ";
        cycle += slots[index].name;
        throw std::invalid_argument("engine: dependency cycle: " + cycle);
    }
    mark[index] = 1;
    path.push_back(index);
    for (std::size_t input : slots[index].inputs) visit(input, mark, path);
    path.pop_back();
    mark[index] = 2;
    topoOrder.push_back(index);
}

void Engine::Impl::run() {
    for (;;) {
        for (Event& event : events.take(nextDeadline())) handle(std::move(event));
        reconcile();
        publish();
        if (stopping && allStopped()) break;
    }
    // Everything has stopped; destroy worker objects dependents-first as well.
    for (auto it = topoOrder.rbegin(); it != topoOrder.rend(); ++it) slots[*it].worker.reset();
    publish();
}

void Engine::Impl::handle(Event event) {
    if (event.kind == Event::Kind::stopEngine) {
        stopping = true;
        LogLine(log, "info", "", "engine_stopping");
        return;
    }
    Slot& slot = slots[event.slot];
    switch (event.kind) {
        case Event::Kind::started:
            onStarted(slot, std::move(event.worker));
            break;
        case Event::Kind::startFailed:
            onStartFailed(slot, event);
            break;
        case Event::Kind::stopped:
            onStopped(slot, event.error);
            break;
        case Event::Kind::stopEngine:
            break;
    }
}

void Engine::Impl::onStarted(Slot& slot, std::unique_ptr<Worker> worker) {
    slot.state = State::started;
    slot.worker = std::move(worker);
    ++slot.startCount;
    slot.lastStartedAt = SystemClock::now();
    slot.lastStartedSteady = SteadyClock::now();
    LogLine(log, "info", slot.name, "started").kv("start_count", slot.startCount);
    // A dependent that gave up on a missing input gets another go now that this one is back.
    for (std::size_t d : slot.dependents)
        if (slots[d].state == State::stopped && !slots[d].startDue)
            slots[d].startDue = slot.lastStartedSteady;
}

void Engine::Impl::onStartFailed(Slot& slot, const Event& event) {
    slot.runner.join();
    slot.state = State::stopped;
    if (stopping) {
        slot.lastError = describe(event.error);
        LogLine(log, "info", slot.name, "start_abandoned").quoted("error", slot.lastError);
        return;
    }
    if (!event.missingInput) {
        onFailure(slot, event.error, "start");
        return;
    }
    // Not a failure: the worker simply cannot run yet. Retry as soon as an input (re)starts, or
    // at once if one already did while this start was running.
    const bool inputsChanged = inputStarts(slot) != slot.inputStartsAtLaunch;
    if (inputsChanged) slot.startDue = SteadyClock::now();
    LogLine(log, "debug", slot.name, "missing_input")
        .quoted("error", describe(event.error))
        .kv("retry", inputsChanged ? "now" : "when_inputs_change");
}

void Engine::Impl::onStopped(Slot& slot, const std::exception_ptr& error) {
    slot.runner.join();
    slot.state = State::stopped;
    const bool killed = std::exchange(slot.killedByEngine, false);
    if (error) slot.lastError = describe(error);
    if (stopping || killed) {
        // We asked it to stop: an error on the way out is recorded but earns no backoff.
        LogLine line(log, error ? "warn" : "info", slot.name, "stopped");
        if (error) line.quoted("error", slot.lastError);
        if (!stopping) slot.startDue = SteadyClock::now();  // once its inputs are back
        return;
    }
    if (error) {
        onFailure(slot, error, "run");
        return;
    }
    // Returned cleanly on its own ("bounce"): restart without counting a failure.
    slot.startDue = SteadyClock::now() + config.bounceDelay;
    LogLine(log, "info", slot.name, "bounced").kv("restart_in_ms", config.bounceDelay.count());
}

void Engine::Impl::onFailure(Slot& slot, const std::exception_ptr& error, std::string_view phase) {
    const auto now = SteadyClock::now();
    if (phase == "run" && now - slot.lastStartedSteady >= config.stableAfter)
        slot.consecutiveFailures = 0;
    ++slot.consecutiveFailures;
    const auto delay = backoff.afterFailures(slot.consecutiveFailures);
    slot.startDue = now + delay;
    slot.lastError = describe(error);
    LogLine(log, "warn", slot.name, "failed")
        .kv("phase", phase)
        .quoted("error", slot.lastError)
        .kv("failures", slot.consecutiveFailures)
        .kv("restart_in_ms", delay.count());
}

void Engine::Impl::reconcile() {
    for (std::size_t i : topoOrder) {
        Slot& slot = slots[i];
        slot.stopWanted =
            stopping || std::any_of(slot.inputs.begin(), slot.inputs.end(), [&](auto in) {
                return slots[in].state != State::started || slots[in].stopWanted;
            });
    }
    // Leaf first: a worker is killed only once nothing that may use its output still runs.
    for (auto it = topoOrder.rbegin(); it != topoOrder.rend(); ++it) {
        Slot& slot = slots[*it];
        if (!slot.stopWanted) continue;
        if (slot.state == State::started && dependentsStopped(slot)) {
            slot.state = State::stopping;
            slot.killedByEngine = true;
            LogLine(log, "debug", slot.name, "stopping")
                .kv("reason", stopping ? "engine_stopping" : "input_stopped");
            slot.worker->kill();
        } else if (slot.state == State::starting) {
            slot.runner.request_stop();  // Context::abandoned(); killed once it reports started
        }
    }
    for (auto it = topoOrder.rbegin(); it != topoOrder.rend(); ++it) {
        Slot& slot = slots[*it];
        if (slot.state == State::stopped && slot.worker && dependentsReleased(slot))
            slot.worker.reset();
    }
    const auto now = SteadyClock::now();
    for (std::size_t i : topoOrder)
        if (readyToStart(slots[i]) && *slots[i].startDue <= now) launch(i);
}

void Engine::Impl::launch(std::size_t index) {
    Slot& slot = slots[index];
    std::map<std::string, std::any> outputs;
    for (std::size_t in : slot.inputs) outputs.emplace(slots[in].name, outputOf(slots[in]));
    slot.inputStartsAtLaunch = inputStarts(slot);
    slot.state = State::starting;
    slot.startDue.reset();
    slot.killedByEngine = false;
    LogLine(log, "debug", slot.name, "starting");
    try {
        slot.runner = std::jthread(runWorker, std::ref(events), index, std::cref(slot.name),
                                   std::cref(slot.manifold), std::move(outputs));
    } catch (...) {  // no thread to be had: a failed start like any other, so it backs off
        slot.state = State::stopped;
        onFailure(slot, std::current_exception(), "start");
    }
}

std::any Engine::Impl::outputOf(Slot& input) {
    if (!input.manifold.output || !input.worker) return {};
    try {
        return input.manifold.output(*input.worker);
    } catch (...) {
        LogLine(log, "warn", input.name, "output_failed")
            .quoted("error", describe(std::current_exception()));
        return {};
    }
}

bool Engine::Impl::dependentsStopped(const Slot& slot) const {
    return std::all_of(slot.dependents.begin(), slot.dependents.end(),
                       [&](auto d) { return slots[d].state == State::stopped; });
}

bool Engine::Impl::dependentsReleased(const Slot& slot) const {
    return std::all_of(slot.dependents.begin(), slot.dependents.end(), [&](auto d) {
        return slots[d].state == State::stopped && !slots[d].worker;
    });
}

// Everything but the clock: a worker is (re)started only after all its dependents have stopped,
// so a fresh instance never coexists with dependents still wired to the old one.
bool Engine::Impl::readyToStart(const Slot& slot) const {
    return slot.state == State::stopped && !slot.stopWanted && slot.startDue && !slot.worker &&
           dependentsReleased(slot);
}

long long Engine::Impl::inputStarts(const Slot& slot) const {
    long long total = 0;
    for (std::size_t in : slot.inputs) total += slots[in].startCount;
    return total;
}

std::optional<SteadyClock::time_point> Engine::Impl::nextDeadline() const {
    std::optional<SteadyClock::time_point> next;
    for (const Slot& slot : slots)
        if (readyToStart(slot) && (!next || *slot.startDue < *next)) next = slot.startDue;
    return next;
}

bool Engine::Impl::allStopped() const {
    return std::all_of(slots.begin(), slots.end(),
                       [](const Slot& slot) { return slot.state == State::stopped; });
}

void Engine::Impl::publish() {
    std::vector<WorkerReport> reports;
    reports.reserve(slots.size());
    for (const Slot& slot : slots) {
        reports.push_back(WorkerReport{.name = slot.name,
                                       .state = stateName(slot.state),
                                       .inputs = slot.manifold.inputs,
                                       .startCount = slot.startCount,
                                       .lastError = slot.lastError,
                                       .lastStartedAt = slot.lastStartedAt});
    }
    std::lock_guard lock(reportMutex);
    published = std::move(reports);
}

}  // namespace rm::engine
