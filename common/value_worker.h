// A worker whose whole job is to own a value (a store, a server) for the engine: it offers the
// value to dependents while it runs, and releases it when killed.
#pragma once

#include <any>
#include <condition_variable>
#include <exception>
#include <memory>
#include <functional>
#include <mutex>
#include <stop_token>

#include "common/worker.h"

namespace rm::engine {

template <class T>
class ValueWorker final : public Worker {
public:
    explicit ValueWorker(std::shared_ptr<T> value) : value_(std::move(value)) {}

    void kill() override {
        std::lock_guard lock(mutex_);
        killed_ = true;
        changed_.notify_all();
    }
    std::exception_ptr wait() override {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [&] { return killed_; });
        value_.reset();
        return nullptr;
    }
    std::shared_ptr<T> value() const { return value_; }

    // For Manifold::output: offers the value as std::shared_ptr<T>.
    static std::any output(Worker& worker) { return dynamic_cast<ValueWorker&>(worker).value(); }

private:
    std::shared_ptr<T> value_;
    std::mutex mutex_;
    std::condition_variable changed_;
    bool killed_ = false;
};

}  // namespace rm::engine

namespace rm::engine {

// Owns a value and runs `body(value, stop)` on a thread; offers the value to dependents.
template <class T>
class ServiceWorker final : public Worker {
public:
    using Body = std::function<void(T&, std::stop_token)>;
    ServiceWorker(std::shared_ptr<T> value, Body body)
        : value_(std::move(value)), thread_([v = value_, b = std::move(body)](std::stop_token s) { b(*v, s); }) {}

    void kill() override { thread_.kill(); }
    std::exception_ptr wait() override { return thread_.wait(); }
    std::shared_ptr<T> value() const { return value_; }
    static std::any output(Worker& worker) { return dynamic_cast<ServiceWorker&>(worker).value(); }

private:
    std::shared_ptr<T> value_;
    ThreadWorker thread_;
};

}  // namespace rm::engine
