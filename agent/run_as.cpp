#include "agent/run_as.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <system_error>
#include <vector>

#include "agent/unique_fd.h"

namespace rm::agent {
namespace {

std::system_error systemError(const std::string& what) {
    return std::system_error(errno, std::generic_category(), what);
}

struct Account {
    std::string name;
    uid_t uid = 0;
    gid_t gid = 0;
    std::string home;
};

// getpwnam_r / getpwuid_r with a buffer that grows until the entry fits.
template <class Lookup>
std::optional<Account> lookUp(Lookup&& lookup) {
    std::vector<char> buffer(16384);
    for (;;) {
        passwd entry{};
        passwd* found = nullptr;
        const int rc = lookup(&entry, buffer.data(), buffer.size(), &found);
        if (rc == ERANGE && buffer.size() < (std::size_t{1} << 24)) {
            buffer.resize(buffer.size() * 2);
            continue;
        }
        if (rc != 0 || found == nullptr) return std::nullopt;
        return Account{entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir ? entry.pw_dir : ""};
    }
}

std::optional<Account> accountNamed(const std::string& name) {
    return lookUp([&](passwd* entry, char* buffer, std::size_t size, passwd** found) {
        return ::getpwnam_r(name.c_str(), entry, buffer, size, found);
    });
}

std::optional<Account> accountOf(uid_t uid) {
    return lookUp([&](passwd* entry, char* buffer, std::size_t size, passwd** found) {
        return ::getpwuid_r(uid, entry, buffer, size, found);
    });
}

// Every group of the user, its primary group included: what initgroups(3) would set.
std::vector<gid_t> groupsOf(const std::string& name, gid_t primary) {
    int count = 16;
    std::vector<gid_t> groups;
    for (int attempt = 0; attempt < 8; ++attempt) {
        groups.resize(static_cast<std::size_t>(count));
        int n = count;
        if (::getgrouplist(name.c_str(), primary, groups.data(), &n) >= 0) {
            groups.resize(static_cast<std::size_t>(n));
            return groups;
        }
        count = std::max(n, count * 2);
    }
    return {primary};
}

std::string octal(mode_t mode) {
    char text[8];
    std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
    return text;
}

bool maySearch(const struct stat& info, const Credentials& user) {
    if (user.uid == 0) return true;
    if (info.st_uid == user.uid) return (info.st_mode & S_IXUSR) != 0;
    const bool member = info.st_gid == user.gid || std::find(user.groups.begin(), user.groups.end(),
                                                             info.st_gid) != user.groups.end();
    if (member) return (info.st_mode & S_IXGRP) != 0;
    return (info.st_mode & S_IXOTH) != 0;
}

fs::path normalised(const fs::path& dir) {
    fs::path path = fs::absolute(dir).lexically_normal();
    if (!path.has_filename() && path != path.root_path()) path = path.parent_path();
    return path;
}

// mkdir with exactly this mode (whatever the umask); an existing directory is left as it is.
void makeDirectory(const fs::path& dir, mode_t mode) {
    if (::mkdir(dir.c_str(), mode) != 0) {
        if (errno == EEXIST) return;
        throw systemError("cannot create " + dir.string());
    }
    if (::chmod(dir.c_str(), mode) != 0)
        throw systemError("cannot set the mode of " + dir.string());
}

void giveChildrenTo(int dirFd, const fs::path& where, const Credentials& user,
                    std::string_view keep) {
    // fdopendir owns the descriptor it is given: give it a copy.
    const int copy = ::fcntl(dirFd, F_DUPFD_CLOEXEC, 0);
    if (copy < 0) throw systemError("cannot read " + where.string());
    std::unique_ptr<DIR, int (*)(DIR*)> stream(::fdopendir(copy), ::closedir);
    if (!stream) {
        ::close(copy);
        throw systemError("cannot read " + where.string());
    }
    while (const dirent* entry = ::readdir(stream.get())) {
        const std::string name = entry->d_name;
        if (name == "." || name == ".." || (!keep.empty() && name == keep)) continue;
        struct stat info {};
        if (::fstatat(dirFd, name.c_str(), &info, AT_SYMLINK_NOFOLLOW) != 0)
            throw systemError("cannot look at " + (where / name).string());
        if (S_ISDIR(info.st_mode)) {
            const UniqueFd sub(
                ::openat(dirFd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            if (!sub) throw systemError("cannot open " + (where / name).string());
            giveChildrenTo(sub.get(), where / name, user, {});
            if (::fchown(sub.get(), user.uid, user.gid) != 0)
                throw systemError("cannot give " + (where / name).string() + " away");
        } else if (::fchownat(dirFd, name.c_str(), user.uid, user.gid, AT_SYMLINK_NOFOLLOW) != 0) {
            throw systemError("cannot give " + (where / name).string() + " away");
        }
    }
}

}  // namespace

std::string createUserCommand(const std::string& name) {
    return "useradd --system --no-create-home --shell /usr/sbin/nologin " + name;
}

std::optional<RunAs> lookupUser(const std::string& name) {
    if (name.empty()) return std::nullopt;
    const auto account = accountNamed(name);
    if (!account) return std::nullopt;
    RunAs user;
    user.user = account->name;
    user.credentials = {account->uid, account->gid, groupsOf(account->name, account->gid)};
    user.home = account->home;
    return user;
}

RunAs resolveRunAs(const std::string& requested, uid_t agentUid, const std::string& defaultUser) {
    if (agentUid != 0) {
        // Only root can switch users: packages run as the agent's own user.
        const auto own = accountOf(agentUid);
        const std::string ownName = own ? own->name : "uid " + std::to_string(agentUid);
        if (!requested.empty() && requested != ownName) {
            const auto wanted = lookupUser(requested);
            if (!wanted || wanted->credentials.uid != agentUid) {
                throw RunAsError("--run-as " + requested + ": the agent runs as " + ownName +
                                 " (uid " + std::to_string(agentUid) +
                                 "), not as root, so packages can only run as " + ownName +
                                 "; leave --run-as out, or start the agent as root");
            }
        }
        RunAs self;
        self.user = ownName;
        self.credentials = {agentUid, ::getegid(), {}};
        if (own) self.home = own->home;
        return self;
    }
    const std::string name = requested.empty() ? defaultUser : requested;
    auto user = lookupUser(name);
    if (!user) {
        if (requested.empty()) {
            throw RunAsError(
                "the agent runs as root, so it runs packages as the unprivileged user " + name +
                ", but there is no such user: create it (" + createUserCommand(name) +
                ") or name another with --run-as USER");
        }
        throw RunAsError("--run-as " + name + ": there is no such user (create it with " +
                         createUserCommand(name) + ")");
    }
    if (user->credentials.uid == 0) {
        throw RunAsError("--run-as " + name +
                         " is refused: it is uid 0, and packages never run as root; name an "
                         "unprivileged user (by default " +
                         std::string(kDefaultRunAsUser) + ": " +
                         createUserCommand(kDefaultRunAsUser) + ")");
    }
    const auto& groups = user->credentials.groups;
    if (user->credentials.gid == 0 || std::find(groups.begin(), groups.end(), 0) != groups.end()) {
        throw RunAsError("--run-as " + name +
                         " is refused: it is in the root group (gid 0), so packages would have "
                         "root's group rights; name a user outside it");
    }
    user->switchUser = true;
    return *user;
}

RunAs configureRunAs(const std::string& requested, const fs::path& root, bool runsPackages) {
    RunAs runAs = resolveRunAs(requested, ::geteuid());
    if (runsPackages) checkContainersReachable(root, runAs);
    return runAs;
}

std::optional<fs::path> firstUnsearchable(const fs::path& dir, const Credentials& user) {
    const fs::path path = normalised(dir);
    fs::path current = path.root_path();
    const auto blocks = [&user](const fs::path& step) {
        struct stat info {};
        return ::stat(step.c_str(), &info) != 0 || !S_ISDIR(info.st_mode) || !maySearch(info, user);
    };
    if (blocks(current)) return current;
    for (const fs::path& part : path.relative_path()) {
        if (part.empty()) continue;
        current /= part;
        if (blocks(current)) return current;
    }
    return std::nullopt;
}

void checkContainersReachable(const fs::path& root, const RunAs& runAs) {
    if (!runAs.switchUser) return;
    const fs::path top = normalised(root);
    const fs::path services = top / "services";
    const std::string who = runAs.user + " (uid " + std::to_string(runAs.credentials.uid) + ")";
    try {
        std::error_code error;
        if (!fs::exists(top, error)) {
            fs::create_directories(top.parent_path());
            // The user must get through to services/, nothing more: 0711 lists nothing.
            makeDirectory(top, 0711);
        }
        struct stat info {};
        if (::lstat(services.c_str(), &info) != 0) {
            makeDirectory(services, 0755);
        } else if (S_ISDIR(info.st_mode) && info.st_uid == ::geteuid() &&
                   (info.st_mode & 07777) != 0755) {
            // The agent's own directory of containers: whoever runs packages must get through.
            if (::chmod(services.c_str(), 0755) != 0)
                throw systemError("cannot set the mode of " + services.string());
        }
    } catch (const std::exception& error) {
        throw RunAsError("cannot prepare " + services.string() + " for packages: " + error.what());
    }

    if (const auto blocked = firstUnsearchable(services, runAs.credentials)) {
        struct stat info {};
        std::string what = "does not exist or is not a directory";
        if (::stat(blocked->c_str(), &info) == 0 && S_ISDIR(info.st_mode)) {
            what = "(mode " + octal(info.st_mode) + ", owner uid " + std::to_string(info.st_uid) +
                   ", group gid " + std::to_string(info.st_gid) + ") does not let it through";
        }
        throw RunAsError("packages run as " + who + ", which cannot reach " + services.string() +
                         ": " + blocked->string() + " " + what + "; let it through (chmod o+x " +
                         blocked->string() + "), choose a --root it can reach, or another " +
                         "--run-as user");
    }
    // The kernel has the last word (ACLs, mount options...): enter it as that user.
    const UniqueFd null(::open("/dev/null", O_WRONLY | O_CLOEXEC));
    if (!null) throw RunAsError("cannot open /dev/null: " + std::string(std::strerror(errno)));
    try {
        const pid_t pid =
            launchInNewSession({"exit 0", services, {}, null.get(), runAs.launchAs()});
        const ExitStatus status = reap(pid);
        if (status.shellCode() != 0) {
            throw SpawnError("a check run as that user there " + status.describe());
        }
    } catch (const SpawnError& error) {
        throw RunAsError("packages run as " + who + ", which cannot reach " + services.string() +
                         ": " + error.what());
    }
}

void giveTreeTo(const fs::path& dir, const Credentials& user, std::string_view keep) {
    const UniqueFd top(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!top) throw systemError("cannot open " + dir.string());
    giveChildrenTo(top.get(), dir, user, keep);
    if (::fchown(top.get(), user.uid, user.gid) != 0)
        throw systemError("cannot give " + dir.string() + " away");
}

void restrictAgentState(const fs::path& root) {
    for (const char* dir : {"run", "logs", "downloads"}) makeDirectory(root / dir, 0700);
    for (const auto& entry : fs::directory_iterator(root)) {
        if (entry.path().filename() == "services") continue;
        struct stat info {};
        if (::lstat(entry.path().c_str(), &info) != 0) continue;  // gone meanwhile
        if (info.st_uid != ::geteuid() || (info.st_mode & 077) == 0) continue;
        if (!S_ISDIR(info.st_mode) && !S_ISREG(info.st_mode)) continue;
        if (::chmod(entry.path().c_str(), info.st_mode & 07700) != 0)
            throw systemError("cannot make " + entry.path().string() + " private");
    }
}

}  // namespace rm::agent
