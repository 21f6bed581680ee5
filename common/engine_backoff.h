// Restart delays for the dependency engine: exponential backoff with random jitter.
#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace rm::engine {

struct BackoffConfig {
    std::chrono::milliseconds restartDelay{1000};      // delay after the first failure
    std::chrono::milliseconds maxRestartDelay{30000};  // ceiling, applied before jitter
    double jitter = 0.2;                               // fraction: delays vary by ±jitter
};

// Deterministic for a given seed, so a failing start order can be replayed from its seed.
class RestartBackoff {
  public:
    RestartBackoff(BackoffConfig config, std::uint64_t seed);

    // Delay before restarting after `consecutiveFailures` (>= 1) failures in a row:
    // restartDelay * 2^(n-1), capped at maxRestartDelay, then scaled by 1 ± jitter.
    std::chrono::milliseconds afterFailures(unsigned consecutiveFailures);

    // Delay before a worker's first start: uniform in [0, jitter * restartDelay]. Workers that
    // become ready together then start in a different order on every run, so a worker that
    // silently relies on another having started first shows up as a bug instead of hiding.
    std::chrono::milliseconds beforeFirstStart();

  private:
    double uniform(double low, double high);

    BackoffConfig config_;
    std::mt19937_64 random_;
};

}  // namespace rm::engine
