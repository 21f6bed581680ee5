#include "common/worker.h"

#include <utility>

namespace rm::engine {

ThreadWorker::ThreadWorker(Body body)
    : thread_([this, body = std::move(body)](std::stop_token stop) { run(stop, body); }) {
    stopSource_ = thread_.get_stop_source();
}

ThreadWorker::~ThreadWorker() {
    kill();
    // jthread's destructor joins.
}

void ThreadWorker::kill() {
    stopSource_.request_stop();
}

std::exception_ptr ThreadWorker::wait() {
    std::unique_lock lock(mutex_);
    finished_.wait(lock, [this] { return done_; });
    return error_;
}

void ThreadWorker::run(std::stop_token stop, const Body& body) {
    std::exception_ptr error;
    try {
        body(stop);
    } catch (...) {
        error = std::current_exception();
    }
    {
        std::lock_guard lock(mutex_);
        error_ = error;
        done_ = true;
    }
    finished_.notify_all();
}

}  // namespace rm::engine
