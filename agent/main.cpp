// node-agent: wires settings, logger and the daemon's engine together; nothing else.
#include <cstdio>

#include "agent/agent_daemon.h"
#include "common/daemon.h"
#include "common/log.h"

int main(int argc, char** argv) {
    rm::common::prepareSignals();
    auto settings = rm::agent::agentSettings();
    rm::agent::AgentConfig config;
    rm::common::LogLevel logLevel{};
    try {
        settings.parse(argc, argv);
        if (settings.getBool("help")) {
            std::fputs(settings.usage().c_str(), stdout);
            return 0;
        }
        config = rm::agent::loadAgentConfig(settings);
        logLevel = rm::common::parseLogLevel(settings.get("log-level"));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "node-agent: %s\n", e.what());
        return 2;
    }
    rm::common::Logger logger("node-agent", logLevel);
    try {
        rm::agent::NodeAgentDaemon daemon(config, logger);
        daemon.start();
        int sig = rm::common::waitForStopSignal();
        rm::common::Log(logger, rm::common::LogLevel::info, "stopping").kv("signal", sig);
        daemon.stop();
    } catch (const rm::common::UsageError& e) {
        rm::common::Log(logger, rm::common::LogLevel::error, "fatal").kv("error", e.what());
        std::fprintf(stderr, "node-agent: %s\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        rm::common::Log(logger, rm::common::LogLevel::error, "fatal").kv("error", e.what());
        return 1;
    }
    return 0;
}
