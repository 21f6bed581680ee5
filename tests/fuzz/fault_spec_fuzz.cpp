// libFuzzer target for the fault point specification parser (common/fault_points.h): the
// RM_FAULTS variable and the `faults` file in a daemon's state directory. Whoever can set the
// environment or write the state directory controls it, and a daemon reads it at start-up, so a
// mistake must be refused loudly (std::invalid_argument naming the entry) and never half-applied.
// Beyond not crashing: every accepted rule is well formed (point name syntax, an action,
// 0 <= p <= 1, nth >= 1 when set, delay at most an hour), the spec written out canonically
// parses back to the same rules, and armed points fire only where a rule matches and never
// more often than `times` allows. (Crash and delay rules are armed as error rules here, so the
// fuzzer neither dies nor sleeps.)
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/fault_points.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

using rm::common::FaultAction;
using rm::common::FaultRule;
using rm::common::FaultSpec;
using rm::fuzz::require;

bool validPoint(const std::string& name) {
    if (name.empty() || name.size() > 128) return false;
    for (size_t i = 0; i < name.size(); ++i) {
        const char c = name[i];
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' ||
                        (c == '*' && i + 1 == name.size());
        if (!ok) return false;
    }
    return true;
}

std::string render(const FaultSpec& spec) {
    std::string text;
    for (const FaultRule& r : spec.rules) {
        text += r.point + "=";
        if (r.action == FaultAction::Delay) {
            text += "delay:" + std::to_string(r.delay.count()) + "ms";
        } else {
            text += rm::common::toString(r.action);
        }
        char p[64];
        std::snprintf(p, sizeof p, "%.17g", r.probability);
        text += std::string(",p=") + p;
        if (r.nth != 0) text += ",nth=" + std::to_string(r.nth);
        if (r.times != 0) text += ",times=" + std::to_string(r.times);
        text += "\n";
    }
    if (spec.seed) text += "seed=" + std::to_string(*spec.seed) + "\n";
    return text;
}

bool sameRule(const FaultRule& a, const FaultRule& b) {
    return a.point == b.point && a.action == b.action && a.delay == b.delay &&
           a.probability == b.probability && a.nth == b.nth && a.times == b.times;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    FaultSpec spec;
    try {
        spec = rm::common::parseFaultSpec(text);
    } catch (const std::invalid_argument& e) {
        require(std::string_view(e.what()).find("fault entry '") != std::string_view::npos,
                "an error does not name the entry");
        return 0;
    }
    for (const FaultRule& r : spec.rules) {
        require(validPoint(r.point), "accepted an invalid point name");
        require(r.action != FaultAction::None, "accepted a rule without action");
        require(r.probability >= 0.0 && r.probability <= 1.0, "accepted p outside [0, 1]");
        require(r.delay.count() >= 0 && r.delay.count() <= 3'600'000, "accepted a delay > 1 h");
        require(r.action == FaultAction::Delay || r.delay.count() == 0, "delay without delay:");
        require(r.matches(r.point) || r.point.back() == '*', "a rule does not match its point");
    }
    const FaultSpec again = rm::common::parseFaultSpec(render(spec));
    require(again.seed == spec.seed && again.rules.size() == spec.rules.size(),
            "the canonical text parses to a different spec");
    for (size_t i = 0; i < spec.rules.size(); ++i) {
        require(sameRule(again.rules[i], spec.rules[i]), "a rule does not survive rendering");
    }

    // Arm them (as error rules) and hit every named point plus one nobody names.
    std::vector<FaultRule> armed = spec.rules;
    for (FaultRule& r : armed) {
        if (r.action == FaultAction::Crash || r.action == FaultAction::Delay) {
            r.action = FaultAction::Error;
            r.delay = std::chrono::milliseconds(0);
        }
    }
    rm::common::FaultPoints points(armed, spec.seed.value_or(1), nullptr);
    std::vector<std::string> names;
    for (const FaultRule& r : armed) {
        names.push_back(r.point.back() == '*' ? r.point.substr(0, r.point.size() - 1) + "x"
                                              : r.point);
    }
    std::uint64_t hits = 0;
    for (int round = 0; round < 3; ++round) {
        for (const std::string& name : names) {
            ++hits;
            (void)points.hit(name);
        }
        const std::string_view stranger = "no.rule.names.this-point";
        bool named = false;
        for (const FaultRule& r : armed) named = named || r.matches(stranger);
        if (!named) {
            require(points.hit(stranger) == FaultAction::None,
                    "a point fired without a matching rule");
        }
    }
    require(points.fired() <= hits, "more faults fired than points were hit");
    std::uint64_t limit = 0;
    for (const FaultRule& r : armed) {
        if (r.times == 0 && r.nth == 0) return 0;  // unlimited
        limit += r.nth != 0 ? 1 : r.times;
    }
    require(points.fired() <= limit, "rules fired more often than nth/times allow");
    return 0;
}
