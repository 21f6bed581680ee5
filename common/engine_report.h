// What the dependency engine tells operators about its workers (served at GET /engine).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rm::engine {

struct WorkerReport {
    std::string name{};
    std::string state{};  // "stopped", "starting", "started" or "stopping"
    std::vector<std::string> inputs{};
    int startCount = 0;       // successful starts since the engine started
    std::string lastError{};  // empty until the worker or its start function first fails
    std::optional<std::chrono::system_clock::time_point> lastStartedAt{};
};

// {"workers":[{"name":..,"state":..,"inputs":[..],"start_count":..,"last_error":..,
//   "last_started_at":"2024-01-02T03:04:05.678Z" or null}, ...]}
std::string toJson(const std::vector<WorkerReport>& reports);

// The string as a JSON string literal, quotes included.
std::string jsonQuote(std::string_view text);

}  // namespace rm::engine
