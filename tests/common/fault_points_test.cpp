#include "common/fault_points.h"

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/log.h"

using rm::common::FaultAction;
using rm::common::FaultPoints;
using rm::common::FaultRule;
using rm::common::parseFaultSpec;
using namespace std::chrono_literals;

namespace {

FaultPoints pointsFrom(const std::string& text, rm::common::Logger* logger = nullptr) {
    auto spec = parseFaultSpec(text);
    return FaultPoints(spec.rules, spec.seed.value_or(1), logger);
}

std::string parseError(const std::string& text) {
    try {
        parseFaultSpec(text);
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "<accepted>";
}

// Runs `fn` in a forked child; returns its wait status.
template <class Fn>
int inChild(Fn fn) {
    pid_t pid = ::fork();
    if (pid == 0) {
        fn();
        ::_exit(0);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return status;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(fault_points)

BOOST_AUTO_TEST_CASE(parses_actions_options_and_seed) {
    auto spec = parseFaultSpec(
        "agent.after_journal=crash;rm.before_report_commit=delay:200ms\n"
        "# a comment line\n"
        " agent.before_send = drop , p=0.25 , nth=3 ; "
        "agent.*=error,once;x=delay:2s,times=4;seed=42");
    BOOST_REQUIRE_EQUAL(spec.rules.size(), 5u);
    BOOST_TEST(spec.rules[0].point == "agent.after_journal");
    BOOST_TEST((spec.rules[0].action == FaultAction::Crash));
    BOOST_TEST((spec.rules[1].action == FaultAction::Delay));
    BOOST_TEST(spec.rules[1].delay.count() == 200);
    BOOST_TEST(spec.rules[2].point == "agent.before_send");
    BOOST_TEST((spec.rules[2].action == FaultAction::Drop));
    BOOST_TEST(spec.rules[2].probability == 0.25);
    BOOST_TEST(spec.rules[2].nth == 3u);
    BOOST_TEST(spec.rules[3].times == 1u);
    BOOST_TEST(spec.rules[4].delay.count() == 2000);
    BOOST_TEST(spec.rules[4].times == 4u);
    BOOST_REQUIRE(spec.seed.has_value());
    BOOST_TEST(*spec.seed == 42u);
    BOOST_TEST(parseFaultSpec("").rules.empty());
}

BOOST_AUTO_TEST_CASE(refuses_malformed_entries_saying_which) {
    BOOST_TEST(parseError("agent.x").find("POINT=ACTION") != std::string::npos);
    BOOST_TEST(parseError("agent.x=explode").find("'explode'") != std::string::npos);
    BOOST_TEST(parseError("agent.x=delay:soon").find("'soon'") != std::string::npos);
    BOOST_TEST(parseError("agent.x=drop,p=1.5").find("p must be") != std::string::npos);
    BOOST_TEST(parseError("agent.x=drop,nth=0").find("nth starts at 1") != std::string::npos);
    BOOST_TEST(parseError("agent.x=drop,often").find("'often'") != std::string::npos);
    BOOST_TEST(parseError("bad name=crash").find("not a point name") != std::string::npos);
    BOOST_TEST(parseError("a*b=crash").find("not a point name") != std::string::npos);
    BOOST_TEST(parseError("seed=x").find("'x'") != std::string::npos);
    // Found by fault_spec_fuzz: with spaces, "seed" was taken for a point of that name.
    BOOST_TEST(parseError("seed = crash , p=0.25").find("'crash , p=0.25'") != std::string::npos);
    BOOST_TEST(rm::common::parseFaultSpec("seed = 7").seed.value_or(0) == 7u);
}

BOOST_AUTO_TEST_CASE(matches_exact_names_and_prefixes) {
    FaultRule exact{"agent.before_send"};
    BOOST_TEST(exact.matches("agent.before_send"));
    BOOST_TEST(!exact.matches("agent.before_sender"));
    BOOST_TEST(!exact.matches("agent.before"));
    FaultRule prefix{"agent.*"};
    BOOST_TEST(prefix.matches("agent.mid_unpack"));
    BOOST_TEST(!prefix.matches("rm.mid_report_commit"));
}

BOOST_AUTO_TEST_CASE(nothing_configured_fires_nothing) {
    FaultPoints none;
    BOOST_TEST(!none.enabled());
    BOOST_TEST((none.hit("agent.after_journal") == FaultAction::None));
    BOOST_TEST((rm::common::faultAt(nullptr, "agent.after_journal") == FaultAction::None));
    BOOST_TEST(!rm::common::faultFails(nullptr, "x"));
    BOOST_CHECK_NO_THROW(rm::common::checkFault(nullptr, "x"));
    BOOST_TEST(none.fired() == 0u);
}

BOOST_AUTO_TEST_CASE(nth_and_times_count_hits_of_matching_points_only) {
    auto points = pointsFrom("a=error,nth=3;b=drop,times=2");
    std::vector<FaultAction> a;
    for (int i = 0; i < 5; ++i) {
        points.hit("other");  // never counted for a or b
        a.push_back(points.hit("a"));
    }
    BOOST_TEST(
        (a == std::vector<FaultAction>{FaultAction::None, FaultAction::None, FaultAction::Error,
                                       FaultAction::None, FaultAction::None}));
    int dropped = 0;
    for (int i = 0; i < 6; ++i) dropped += points.hit("b") == FaultAction::Drop ? 1 : 0;
    BOOST_TEST(dropped == 2);
    BOOST_TEST(points.fired() == 3u);
}

BOOST_AUTO_TEST_CASE(probability_is_seeded_and_replays) {
    auto run = [](const std::string& spec) {
        auto points = pointsFrom(spec);
        std::string pattern;
        for (int i = 0; i < 400; ++i) pattern += points.hit("p") == FaultAction::Drop ? '1' : '0';
        return pattern;
    };
    auto first = run("p=drop,p=0.3;seed=9");
    BOOST_TEST(first == run("p=drop,p=0.3;seed=9"));
    BOOST_TEST(first != run("p=drop,p=0.3;seed=10"));
    auto ones = std::count(first.begin(), first.end(), '1');
    BOOST_TEST(ones > 80);  // about 120 of 400
    BOOST_TEST(ones < 160);
    BOOST_TEST(run("p=drop,p=0").find('1') == std::string::npos);
}

BOOST_AUTO_TEST_CASE(delay_sleeps_and_error_throws_through_check) {
    auto points = pointsFrom("slow=delay:60ms;bad=error;lost=drop");
    auto start = std::chrono::steady_clock::now();
    BOOST_TEST((points.hit("slow") == FaultAction::Delay));
    BOOST_TEST((std::chrono::steady_clock::now() - start >= 60ms));
    BOOST_CHECK_THROW(points.check("bad"), rm::common::InjectedFault);
    BOOST_CHECK_THROW(points.check("lost"), rm::common::InjectedFault);
    BOOST_TEST(rm::common::faultFails(&points, "lost"));
    BOOST_CHECK_NO_THROW(points.check("slow"));
}

BOOST_AUTO_TEST_CASE(crash_kills_the_process_like_kill_9) {
    int status = inChild([] {
        auto points = pointsFrom("die=crash");
        points.hit("fine");
        points.hit("die");
        ::_exit(3);  // not reached when the crash works
    });
    BOOST_TEST(WIFSIGNALED(status));
    BOOST_TEST(WTERMSIG(status) == SIGKILL);
}

BOOST_AUTO_TEST_CASE(reads_the_environment_and_the_state_dir_file_and_logs_what_fires) {
    auto dir =
        std::filesystem::temp_directory_path() / ("faults-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "faults") << "# armed by a test\nfile.point=drop,once\nseed=5\n";
    ::setenv("RM_FAULTS", "env.point=error", 1);
    auto logFile = dir / "log";
    int status = inChild([&] {
        // The logger writes to stderr: send it to a file this test reads back.
        if (!std::freopen(logFile.c_str(), "w", stderr)) ::_exit(4);
        rm::common::Logger logger("test");
        auto points = FaultPoints::fromEnvironment(dir, logger);
        if (!points->enabled()) ::_exit(5);
        if (points->hit("env.point") != FaultAction::Error) ::_exit(6);
        if (points->hit("file.point") != FaultAction::Drop) ::_exit(7);
        if (points->hit("file.point") != FaultAction::None) ::_exit(8);
    });
    ::unsetenv("RM_FAULTS");
    BOOST_TEST(WIFEXITED(status));
    BOOST_TEST(WEXITSTATUS(status) == 0);
    std::ifstream in(logFile);
    std::string log((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    BOOST_TEST(log.find("event=fault_points_armed") != std::string::npos);
    BOOST_TEST(log.find("event=fault_injected point=env.point action=error") != std::string::npos);
    BOOST_TEST(log.find("event=fault_injected point=file.point action=drop") != std::string::npos);

    std::ofstream(dir / "faults") << "file.point=explode\n";
    rm::common::Logger quiet("test", rm::common::LogLevel::error);
    try {
        FaultPoints::fromEnvironment(dir, quiet);
        BOOST_ERROR("a bad faults file was accepted");
    } catch (const std::invalid_argument& e) {
        BOOST_TEST(std::string(e.what()).find((dir / "faults").string()) != std::string::npos);
    }
    std::filesystem::remove_all(dir);
}

BOOST_AUTO_TEST_SUITE_END()
