// Who the code of packages runs as: never root. An agent running as root runs every lifecycle
// step and every supervised process as an unprivileged user (--run-as, by default the system user
// rm-svc), gives that user the package containers it unpacks, and keeps its own state to itself.
// An agent that is not root runs packages as its own user.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "agent/process.h"

namespace rm::agent {

namespace fs = std::filesystem;

// The system user packages run as when the agent runs as root and --run-as is not given.
inline constexpr const char* kDefaultRunAsUser = "rm-svc";

// How to create a system user for packages (scripts/setup.sh does it for rm-svc).
std::string createUserCommand(const std::string& name);

// A run-as configuration that must be refused at start (the agent exits 2 with the message).
class RunAsError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

struct RunAs {
    std::string user;         // name, for logs; empty: not configured (plain tests)
    Credentials credentials;  // uid, primary gid and supplementary groups (as initgroups sets)
    fs::path home;            // from the user database; packages get HOME = their container
    bool switchUser = false;  // the agent is root and drops to `credentials` for every launch

    // What launches pass as LaunchRequest::runAs: nullopt runs as the agent's own user.
    std::optional<Credentials> launchAs() const {
        return switchUser ? std::optional<Credentials>(credentials) : std::nullopt;
    }
};

// The user called `name` with its primary gid and every group it belongs to (getgrouplist, the
// list initgroups would set), switchUser false; nullopt when there is no such user.
std::optional<RunAs> lookupUser(const std::string& name);

// Who packages of an agent running as `agentUid` run as, given --run-as (`requested`; empty: not
// given):
//  - the agent is root: `requested`, or `defaultUser` when empty; it must exist and be neither
//    root nor in the root group (switchUser true);
//  - the agent is not root: it cannot switch, so `requested` must be empty or its own user
//    (switchUser false).
// Throws RunAsError with a message for people (what is wrong and how to fix it).
RunAs resolveRunAs(const std::string& requested, uid_t agentUid,
                   const std::string& defaultUser = kDefaultRunAsUser);

// At start: resolveRunAs() for this process's effective uid, then, for an agent that runs
// packages (`runsPackages`: not hollow), checkContainersReachable(). Throws RunAsError.
RunAs configureRunAs(const std::string& requested, const fs::path& root, bool runsPackages);

// The first directory on the way to `dir` (from / down to `dir` itself) that `user` may not
// search, judged by mode bits, owner and group (no ACLs); nullopt when nothing is in the way.
std::optional<fs::path> firstUnsearchable(const fs::path& dir, const Credentials& user);

// At start, when the agent switches users: creates <root> (0711) and <root>/services (0755) if
// missing, lets the user through <root>/services (0755; the agent owns it), then checks that the
// user can reach it, by mode bits and by entering it as that user in a child. Throws RunAsError
// naming the directory in the way and how to fix it. Does nothing when switchUser is false.
void checkContainersReachable(const fs::path& root, const RunAs& runAs);

// Gives the tree at `dir` to `user` (uid and primary gid): depth first, each directory after
// everything in it, through descriptors and never following a symlink, so that no part of it is
// the user's before the agent is done with it. Entries directly in `dir` named `keep` stay as
// they are. Throws std::system_error.
void giveTreeTo(const fs::path& dir, const Credentials& user, std::string_view keep = {});

// Keeps the agent's own state in <root> (everything but services/) from any other user: takes
// group and other permissions off the files and directories the agent owns there, and creates
// run/, logs/ and downloads/ as 0700 if missing. Throws std::system_error.
void restrictAgentState(const fs::path& root);

}  // namespace rm::agent
