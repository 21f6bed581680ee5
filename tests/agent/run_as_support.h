// Helpers for the tests that run package code as another user (agent/run_as.h).
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "agent/run_as.h"

namespace rm::agent::test {

// The user packages run as when the agent is root: rm-svc, which scripts/setup.sh creates.
// Switching users needs root (CI runs the tests as root); elsewhere a case that needs it says so
// and returns nullopt, and the test passes without checking anything.
inline std::optional<RunAs> switchingUser() {
    if (::geteuid() != 0) {
        BOOST_TEST_MESSAGE("skipped: running packages as another user needs root");
        return std::nullopt;
    }
    // Throws (and so fails the test) when rm-svc is missing: run scripts/setup.sh.
    RunAs runAs = resolveRunAs("", 0);
    BOOST_TEST_REQUIRE(runAs.switchUser);
    BOOST_TEST_REQUIRE(runAs.credentials.uid != 0u);
    return runAs;
}

// The whitespace-separated numbers of one line of /proc/PID/status ("Uid", "Gid", "Groups"...).
inline std::vector<long> procStatusNumbers(pid_t pid, const std::string& key) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind(key + ":", 0) != 0) continue;
        std::istringstream fields(line.substr(key.size() + 1));
        std::vector<long> numbers;
        long n = 0;
        while (fields >> n) numbers.push_back(n);
        return numbers;
    }
    return {};
}

// "123\n" -> "123": what `id -u > file` leaves.
inline std::string firstLine(const std::filesystem::path& file) {
    std::ifstream in(file);
    std::string line;
    std::getline(in, line);
    return line;
}

// `id -G` output as a set.
inline std::set<long> numbersIn(const std::string& text) {
    std::istringstream in(text);
    std::set<long> numbers;
    long n = 0;
    while (in >> n) numbers.insert(n);
    return numbers;
}

}  // namespace rm::agent::test
