// Named fault points: places in the daemons where a test can make a step crash (like kill -9),
// wait, fail, or lose its message, to prove that recovery works. Configured only by the
// RM_FAULTS environment variable and/or a `faults` file in the daemon's state directory, read
// once at start-up; with neither, a daemon holds no rules and every point costs one emptiness
// check. Each daemon owns one FaultPoints and hands a pointer to the parts that have points
// (nullptr means "no faults", so unit tests and other callers need not care).
//
// Syntax (entries separated by ';' or new lines, '#' starts a comment):
//   POINT=ACTION[,OPTION...]      POINT: a name below, or a prefix ending in '*' ("agent.*")
//   ACTION: crash | delay:DURATION (e.g. 200ms, 2s) | error | drop
//   OPTION: p=PROBABILITY (0..1) | nth=N (only the Nth hit) | times=N (at most N) | once
//   seed=N                        seeds the probability draws (default 1), for replays
// e.g. RM_FAULTS="agent.after_journal=crash,once;rm.before_deploy_send=drop,p=0.5;seed=7"
//
// The points (what error/drop mean there is documented where each is placed):
//   agent.after_journal  agent.mid_download  agent.mid_unpack
//   agent.before_install agent.after_install agent.before_verify agent.after_verify
//   agent.before_start   agent.after_start   agent.before_ready  agent.after_ready
//   agent.before_send    agent.after_send
//   rm.after_add_commit  rm.before_deploy_send rm.after_deploy_send rm.mid_report_commit
//   rm.before_session_close
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace rm::common {

class Logger;

enum class FaultAction { None, Crash, Delay, Error, Drop };
const char* toString(FaultAction action);

struct FaultRule {
    std::string point;  // exact name, or a prefix when it ends in '*'
    FaultAction action = FaultAction::None;
    std::chrono::milliseconds delay{0};
    double probability = 1.0;
    std::uint64_t nth = 0;    // fire only at this hit (1 = the first); 0: at any hit
    std::uint64_t times = 0;  // fire at most this often; 0: no limit
    bool matches(std::string_view name) const;
};

struct FaultSpec {
    std::vector<FaultRule> rules;
    std::optional<std::uint64_t> seed;
};

// Throws std::invalid_argument naming the entry that is wrong and why.
FaultSpec parseFaultSpec(std::string_view text);

// What a point raises when its failure path is an exception.
class InjectedFault : public std::runtime_error {
  public:
    InjectedFault(std::string_view point, FaultAction action);
};

class FaultPoints {
  public:
    FaultPoints() = default;  // nothing configured
    FaultPoints(std::vector<FaultRule> rules, std::uint64_t seed, Logger* logger);
    FaultPoints(const FaultPoints&) = delete;
    FaultPoints& operator=(const FaultPoints&) = delete;

    // The daemons' start-up path: RM_FAULTS, then `<stateDir>/faults` when that file exists.
    // Throws std::invalid_argument (bad syntax, naming the source) so a typo never goes unseen.
    static std::unique_ptr<FaultPoints> fromEnvironment(const std::filesystem::path& stateDir,
                                                        Logger& logger);

    bool enabled() const { return !rules_.empty(); }

    // Called at a point. Crash never returns; delay sleeps and returns Delay; Error and Drop are
    // returned for the caller to take its failure path; None when nothing fires. Every fault that
    // fires is logged as `event=fault_injected point=... action=...`.
    FaultAction hit(std::string_view point);
    // hit(), then throws InjectedFault for Error and Drop.
    void check(std::string_view point);

    std::uint64_t fired() const;

  private:
    struct Rule {
        FaultRule spec;
        std::uint64_t hits = 0;
        std::uint64_t fired = 0;
    };
    std::vector<Rule> rules_;
    mutable std::mutex mutex_;  // counters and the random generator
    std::mt19937_64 random_{1};
    std::uint64_t fired_ = 0;
    Logger* logger_ = nullptr;
};

// Null-safe forms for components that may run without fault points.
inline FaultAction faultAt(FaultPoints* faults, std::string_view point) {
    return faults ? faults->hit(point) : FaultAction::None;
}
// True when the caller must fail (error) or lose the message (drop) here.
inline bool faultFails(FaultPoints* faults, std::string_view point) {
    auto action = faultAt(faults, point);
    return action == FaultAction::Error || action == FaultAction::Drop;
}
inline void checkFault(FaultPoints* faults, std::string_view point) {
    if (faults) faults->check(point);
}

}  // namespace rm::common
