// Process-level plumbing shared by both daemons' main(): signals and the first stdout line.
#pragma once

#include <string>

namespace rm::common {

// Blocks SIGTERM/SIGINT/SIGHUP in the calling thread (call before starting any thread, so every
// thread inherits the mask) and ignores SIGPIPE (a peer closing a TLS or HTTP connection must
// not kill the daemon).
void prepareSignals();
// Waits for SIGTERM or SIGINT; returns the signal number.
int waitForStopSignal();
// Prints the URL as the first line of stdout and flushes it (scripts and tests read it).
void announceUrl(const std::string& url);

}  // namespace rm::common
