#include "common/fault_points.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/log.h"

namespace rm::common {

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
        s.remove_suffix(1);
    return s;
}

std::vector<std::string_view> split(std::string_view text, std::string_view separators) {
    std::vector<std::string_view> out;
    size_t start = 0;
    while (start <= text.size()) {
        size_t end = text.find_first_of(separators, start);
        if (end == std::string_view::npos) end = text.size();
        out.push_back(text.substr(start, end - start));
        start = end + 1;
    }
    return out;
}

std::uint64_t parseCount(std::string_view text, const std::string& entry) {
    std::uint64_t value = 0;
    if (text.empty())
        throw std::invalid_argument("fault entry '" + entry + "': a number is missing");
    for (char c : text) {
        if (c < '0' || c > '9' || value > (UINT64_MAX - 9) / 10)
            throw std::invalid_argument("fault entry '" + entry + "': '" + std::string(text) +
                                        "' is not a non-negative integer");
        value = value * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return value;
}

std::chrono::milliseconds parseDuration(std::string_view text, const std::string& entry) {
    std::uint64_t scale = 1;
    if (text.ends_with("ms")) {
        text.remove_suffix(2);
    } else if (text.ends_with("s")) {
        text.remove_suffix(1);
        scale = 1000;
    }
    auto value = parseCount(text, entry);
    if (value > 3'600'000 / scale)
        throw std::invalid_argument("fault entry '" + entry + "': a delay is at most one hour");
    return std::chrono::milliseconds(static_cast<int64_t>(value * scale));
}

bool validPointName(std::string_view name) {
    if (name.empty() || name.size() > 128) return false;
    for (size_t i = 0; i < name.size(); ++i) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-' || (c == '*' && i + 1 == name.size());
        if (!ok) return false;
    }
    return true;
}

FaultRule parseRule(std::string_view text) {
    const std::string entry(text);
    auto eq = text.find('=');
    if (eq == std::string_view::npos)
        throw std::invalid_argument("fault entry '" + entry + "' is not POINT=ACTION[,OPTION...]");
    FaultRule rule;
    rule.point = std::string(trim(text.substr(0, eq)));
    if (!validPointName(rule.point))
        throw std::invalid_argument("fault entry '" + entry + "': '" + rule.point +
                                    "' is not a point name ([A-Za-z0-9._-], optional final '*')");
    auto parts = split(text.substr(eq + 1), ",");
    std::string_view action = trim(parts[0]);
    if (action == "crash") {
        rule.action = FaultAction::Crash;
    } else if (action == "error") {
        rule.action = FaultAction::Error;
    } else if (action == "drop") {
        rule.action = FaultAction::Drop;
    } else if (action.starts_with("delay:")) {
        rule.action = FaultAction::Delay;
        rule.delay = parseDuration(action.substr(6), entry);
    } else {
        throw std::invalid_argument("fault entry '" + entry + "': action '" + std::string(action) +
                                    "' is not crash, delay:DURATION, error or drop");
    }
    for (size_t i = 1; i < parts.size(); ++i) {
        std::string_view option = trim(parts[i]);
        if (option == "once") {
            rule.times = 1;
        } else if (option.starts_with("times=")) {
            rule.times = parseCount(option.substr(6), entry);
        } else if (option.starts_with("nth=")) {
            rule.nth = parseCount(option.substr(4), entry);
            if (rule.nth == 0)
                throw std::invalid_argument("fault entry '" + entry + "': nth starts at 1");
        } else if (option.starts_with("p=")) {
            std::string value(option.substr(2));
            char* end = nullptr;
            double p = std::strtod(value.c_str(), &end);
            if (value.empty() || *end != '\0' || !(p >= 0.0 && p <= 1.0))
                throw std::invalid_argument("fault entry '" + entry +
                                            "': p must be a number in [0, 1]");
            rule.probability = p;
        } else {
            throw std::invalid_argument("fault entry '" + entry + "': option '" +
                                        std::string(option) + "' is not p=, nth=, times= or once");
        }
    }
    return rule;
}

}  // namespace

const char* toString(FaultAction action) {
    switch (action) {
        case FaultAction::None:
            return "none";
        case FaultAction::Crash:
            return "crash";
        case FaultAction::Delay:
            return "delay";
        case FaultAction::Error:
            return "error";
        case FaultAction::Drop:
            return "drop";
    }
    return "?";
}

bool FaultRule::matches(std::string_view name) const {
    if (!point.empty() && point.back() == '*')
        return name.starts_with(std::string_view(point).substr(0, point.size() - 1));
    return name == point;
}

FaultSpec parseFaultSpec(std::string_view text) {
    FaultSpec spec;
    for (auto line : split(text, "\n;")) {
        line = trim(line);
        if (line.empty() || line.front() == '#') continue;
        // "seed" is the generator's seed, never a point: spaces around '=' must not turn
        // "seed = 7" into a rule for a point named "seed".
        const auto eq = line.find('=');
        if (eq != std::string_view::npos && trim(line.substr(0, eq)) == "seed") {
            spec.seed = parseCount(trim(line.substr(eq + 1)), std::string(line));
            continue;
        }
        spec.rules.push_back(parseRule(line));
    }
    return spec;
}

InjectedFault::InjectedFault(std::string_view point, FaultAction action)
    : std::runtime_error(
          "fault injected at " + std::string(point) + " (" + toString(action) +
          "); the configuration in RM_FAULTS or the state directory's faults file asked for it") {}

FaultPoints::FaultPoints(std::vector<FaultRule> rules, std::uint64_t seed, Logger* logger)
    : random_(seed), logger_(logger) {
    for (auto& r : rules) rules_.push_back(Rule{std::move(r)});
}

std::unique_ptr<FaultPoints> FaultPoints::fromEnvironment(const std::filesystem::path& stateDir,
                                                          Logger& logger) {
    FaultSpec all;
    auto add = [&all](std::string_view text, const std::string& source) {
        FaultSpec part;
        try {
            part = parseFaultSpec(text);
        } catch (const std::invalid_argument& e) {
            throw std::invalid_argument(source + ": " + e.what());
        }
        all.rules.insert(all.rules.end(), part.rules.begin(), part.rules.end());
        if (part.seed) all.seed = part.seed;
    };
    if (const char* env = std::getenv("RM_FAULTS")) add(env, "RM_FAULTS");
    std::filesystem::path file = stateDir / "faults";
    std::error_code ec;
    if (std::filesystem::is_regular_file(file, ec)) {
        std::ifstream in(file);
        std::ostringstream text;
        text << in.rdbuf();
        add(text.str(), file.string());
    }
    auto points =
        std::make_unique<FaultPoints>(std::move(all.rules), all.seed.value_or(1), &logger);
    if (points->enabled()) {
        Log log(logger, LogLevel::warn, "fault_points_armed");
        log.kv("rules", points->rules_.size()).kv("seed", all.seed.value_or(1));
        std::string names;
        for (const auto& r : points->rules_) {
            names += (names.empty() ? "" : ",") + r.spec.point + ":" + toString(r.spec.action);
        }
        log.kv("points", names);
    }
    return points;
}

FaultAction FaultPoints::hit(std::string_view point) {
    if (rules_.empty()) return FaultAction::None;
    const FaultRule* firing = nullptr;
    std::uint64_t hitNumber = 0;
    {
        std::lock_guard lock(mutex_);
        for (auto& rule : rules_) {
            if (!rule.spec.matches(point)) continue;
            ++rule.hits;
            if (rule.spec.nth != 0 && rule.hits != rule.spec.nth) continue;
            if (rule.spec.times != 0 && rule.fired >= rule.spec.times) continue;
            if (rule.spec.probability < 1.0 &&
                std::uniform_real_distribution<double>(0.0, 1.0)(random_) >= rule.spec.probability)
                continue;
            ++rule.fired;
            ++fired_;
            firing = &rule.spec;
            hitNumber = rule.hits;
            break;
        }
    }
    if (!firing) return FaultAction::None;
    if (logger_) {
        Log(*logger_, LogLevel::warn, "fault_injected")
            .kv("point", point)
            .kv("action", toString(firing->action))
            .kv("hit", hitNumber)
            .kv("delay_ms", firing->delay.count());
    }
    switch (firing->action) {
        case FaultAction::Crash:
            // Like kill -9: no destructors, no flushing beyond what the log line already did.
            ::kill(::getpid(), SIGKILL);
            ::_exit(137);
        case FaultAction::Delay:
            std::this_thread::sleep_for(firing->delay);
            return FaultAction::Delay;
        default:
            return firing->action;
    }
}

void FaultPoints::check(std::string_view point) {
    auto action = hit(point);
    if (action == FaultAction::Error || action == FaultAction::Drop)
        throw InjectedFault(point, action);
}

std::uint64_t FaultPoints::fired() const {
    std::lock_guard lock(mutex_);
    return fired_;
}

}  // namespace rm::common
