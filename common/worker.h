// A Worker is one long-running part of a daemon that the dependency engine starts, watches and
// stops. The engine only needs two operations from it, so anything can be a worker: a thread, a
// server loop, a child-process supervisor.
#pragma once

#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <stop_token>
#include <thread>

namespace rm::engine {

class Worker {
  public:
    virtual ~Worker() = default;

    // Asks the worker to stop. Must not block, must be safe to call more than once and
    // concurrently with wait().
    virtual void kill() = 0;

    // Blocks until the worker has stopped. nullptr means it stopped cleanly; otherwise the error
    // it failed with. May be called more than once; every call returns the same result.
    virtual std::exception_ptr wait() = 0;
};

// Runs `body` on its own thread. The stop token is triggered by kill(); an exception escaping
// `body` becomes the worker's error. The destructor kills and joins, so a ThreadWorker can never
// outlive the objects its body uses by accident.
class ThreadWorker final : public Worker {
  public:
    using Body = std::function<void(std::stop_token)>;

    explicit ThreadWorker(Body body);
    ~ThreadWorker() override;
    ThreadWorker(const ThreadWorker&) = delete;
    ThreadWorker& operator=(const ThreadWorker&) = delete;

    void kill() override;
    std::exception_ptr wait() override;

  private:
    void run(std::stop_token stop, const Body& body);

    std::mutex mutex_;
    std::condition_variable finished_;
    bool done_ = false;
    std::exception_ptr error_;
    // A copy of the thread's stop source: kill() may race with wait() and the destructor, and
    // stop_source operations are race-free where touching the jthread object itself is not.
    std::stop_source stopSource_;
    std::jthread thread_;  // last: it starts running in the constructor, after all the above
};

}  // namespace rm::engine
