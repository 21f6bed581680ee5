#include "common/daemon.h"

#include <csignal>
#include <cstdio>

namespace rm::common {

static sigset_t stopSignals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    return set;
}

void prepareSignals() {
    std::signal(SIGPIPE, SIG_IGN);
    sigset_t set = stopSignals();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int waitForStopSignal() {
    sigset_t set = stopSignals();
    int sig = 0;
    while (sigwait(&set, &sig) != 0) {
    }
    return sig;
}

void announceUrl(const std::string& url) {
    std::printf("%s\n", url.c_str());
    std::fflush(stdout);
}

}  // namespace rm::common
