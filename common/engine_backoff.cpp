#include "common/engine_backoff.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace rm::engine {

RestartBackoff::RestartBackoff(BackoffConfig config, std::uint64_t seed)
    : config_(config), random_(seed) {
    if (config_.restartDelay.count() < 0 || config_.maxRestartDelay < config_.restartDelay)
        throw std::invalid_argument(
            "engine: need 0 <= restartDelay <= maxRestartDelay, got restartDelay=" +
            std::to_string(config_.restartDelay.count()) +
            "ms maxRestartDelay=" + std::to_string(config_.maxRestartDelay.count()) + "ms");
    if (!(config_.jitter >= 0.0 && config_.jitter <= 1.0))
        throw std::invalid_argument("engine: jitter must be a fraction in [0, 1], got " +
                                    std::to_string(config_.jitter));
}

std::chrono::milliseconds RestartBackoff::afterFailures(unsigned consecutiveFailures) {
    // Doubling stops at 2^30, far beyond any sane ceiling, so the arithmetic cannot overflow.
    const unsigned doublings =
        std::min(consecutiveFailures == 0 ? 0u : consecutiveFailures - 1, 30u);
    const double base =
        std::min(static_cast<double>(config_.restartDelay.count()) * std::ldexp(1.0, doublings),
                 static_cast<double>(config_.maxRestartDelay.count()));
    const double jittered = base * uniform(1.0 - config_.jitter, 1.0 + config_.jitter);
    return std::chrono::milliseconds(std::llround(std::max(0.0, jittered)));
}

std::chrono::milliseconds RestartBackoff::beforeFirstStart() {
    const double most = static_cast<double>(config_.restartDelay.count()) * config_.jitter;
    return std::chrono::milliseconds(std::llround(uniform(0.0, most)));
}

double RestartBackoff::uniform(double low, double high) {
    if (high <= low) return low;
    return std::uniform_real_distribution<double>(low, high)(random_);
}

}  // namespace rm::engine
