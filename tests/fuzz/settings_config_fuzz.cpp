// libFuzzer target for the daemons' `--config FILE` (common/settings.h): Java-properties text
// read by Poco and checked against the declared options. Operators write it by hand or generate
// it (configuration management), so it can hold anything: unknown keys, continuation lines,
// escapes, `${...}` references, odd values. The contract is that every problem is a UsageError
// saying what is wrong, which the daemons print before exiting with status 2. Beyond not
// crashing: parsing either succeeds or throws UsageError, and after success every typed getter
// of every declared option either returns or throws UsageError, never anything else.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/settings.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

rm::common::Settings makeSettings() {
    // The shape of the RM's own options (service/rm_daemon.cpp): required, defaulted, switches.
    return rm::common::Settings("resource-manager", "fuzzing",
                                {{"scope", "scope", {}, true},
                                 {"listen", "HOST:PORT", "127.0.0.1:8080"},
                                 {"state-dir", "state", {}, true},
                                 {"threads", "threads", "16"},
                                 {"io-timeout-ms", "timeout", "10000"},
                                 {"reschedule-on-lost", "bool", "false"},
                                 {"ratio", "a number", "0.5"},
                                 {"users", "users file", {}},
                                 {"labels", "a list", {}},
                                 {"log-level", "level", "info"},
                                 {"verbose", "a switch", {}, false, true}});
}

template <class Getter>
void mustBeUsage(Getter&& get) {
    try {
        get();
    } catch (const rm::common::UsageError&) {
    }
    // Anything else propagates: libFuzzer reports it as an uncaught exception (a crash).
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static rm::fuzz::ScratchFile file("settings-config-fuzz");
    const std::string path = file.write(data, size).string();
    rm::common::Settings settings = makeSettings();
    const char* argv[] = {"resource-manager", "--config", path.c_str()};
    try {
        settings.parse(3, argv);
    } catch (const rm::common::UsageError&) {
        return 0;
    }
    const std::vector<std::string> names = {
        "scope", "listen", "state-dir", "threads",   "io-timeout-ms", "reschedule-on-lost",
        "ratio", "users",  "labels",    "log-level", "verbose",       "config"};
    for (const std::string& name : names) {
        mustBeUsage([&] { (void)settings.has(name); });
        mustBeUsage([&] { (void)settings.get(name); });
        mustBeUsage([&] { (void)settings.getInt(name); });
        mustBeUsage([&] { (void)settings.getDouble(name); });
        mustBeUsage([&] { (void)settings.getBool(name); });
        mustBeUsage([&] { (void)settings.getMillis(name); });
        mustBeUsage([&] { (void)settings.getList(name); });
    }
    // Required options are really there after a successful parse (unless it only asked for
    // --help, which a daemon answers without starting).
    bool help = false;
    mustBeUsage([&] { help = settings.getBool("help"); });
    if (!help) {
        rm::fuzz::require(settings.has("scope") && settings.has("state-dir"),
                          "a required option is missing after parse()");
    }
    return 0;
}
