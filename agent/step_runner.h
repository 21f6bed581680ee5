// Runs one lifecycle step of a package (Install, Verify, Ready, Stop, Uninstall): a finite
// shell command with a deadline, whose output goes to the package's log.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <stop_token>
#include <string>

#include "agent/process.h"

namespace rm::agent {

struct StepRequest {
    std::string name;     // "Install": used in messages and log lines
    std::string command;  // run as `sh -c command`
    fs::path workDir;
    Environment env;   // the complete environment (see Environment)
    fs::path logFile;  // output is appended
    std::chrono::milliseconds timeout = std::chrono::seconds(60);
    // When set, the running step is recorded here (it runs its command only once recorded, like
    // a supervised process) until it ends. A step an agent that was killed left running is found
    // through it and ended before the step runs again: redone cleanly, never twice at once.
    fs::path pidFile = {};
    // When set, the step runs as that user (see LaunchRequest::runAs); nullopt: as the agent's.
    std::optional<Credentials> runAs = std::nullopt;
};

struct StepResult {
    enum class Outcome { Succeeded, Failed, TimedOut, CouldNotStart, Cancelled };
    Outcome outcome = Outcome::CouldNotStart;
    int exitCode = -1;  // exit status, 128 + signal when killed, -1 when it did not end by itself
    // One line for people: "Install exited with status 1: <last 3 lines of output>",
    // "Install timed out after 60 s".
    std::string message;

    bool succeeded() const { return outcome == Outcome::Succeeded; }
};

const char* toString(StepResult::Outcome outcome);

class StepRunner {
  public:
    // `killGrace`: how long a step gets between SIGTERM and SIGKILL once its time is up.
    explicit StepRunner(std::chrono::milliseconds killGrace = std::chrono::seconds(5))
        : killGrace_(killGrace) {}

    // Runs the step in its own session. When it times out or `stop` is requested, its whole
    // process group is ended; whatever the step left running in its group is killed when it
    // ends, since a step must not leave unsupervised processes behind. With a pid file, a
    // recorded step still running (from a killed agent) is ended first. Never throws for a
    // failure of the step itself: that is the result.
    StepResult run(const StepRequest& step, std::stop_token stop = {}) const;

  private:
    std::chrono::milliseconds killGrace_;
};

}  // namespace rm::agent
