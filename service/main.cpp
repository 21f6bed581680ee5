// resource-manager: wires settings, logger and the daemon's engine together; nothing else.
#include <cstdio>
#include <filesystem>

#include "common/daemon.h"
#include "common/log.h"
#include "service/rm_daemon.h"

int main(int argc, char** argv) {
    rm::common::prepareSignals();
    auto settings = rm::service::rmSettings();
    rm::service::RmConfig config;
    rm::common::LogLevel logLevel{};
    try {
        settings.parse(argc, argv);
        if (settings.getBool("help")) {
            std::fputs(settings.usage().c_str(), stdout);
            return 0;
        }
        config = rm::service::loadRmConfig(settings, std::filesystem::canonical("/proc/self/exe").parent_path());
        logLevel = rm::common::parseLogLevel(settings.get("log-level"));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "resource-manager: %s\n", e.what());
        return 2;
    }
    rm::common::Logger logger("resource-manager", logLevel);
    try {
        rm::service::ResourceManagerDaemon daemon(config, logger);
        daemon.start();
        int sig = rm::common::waitForStopSignal();
        rm::common::Log(logger, rm::common::LogLevel::info, "stopping").kv("signal", sig);
        daemon.stop();
    } catch (const std::exception& e) {
        rm::common::Log(logger, rm::common::LogLevel::error, "fatal").kv("error", e.what());
        return 1;
    }
    return 0;
}
