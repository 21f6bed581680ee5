#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "deployer/version.h"

namespace rm::deployer {

// Thrown when a package profile is rejected; the message names the source (file or archive)
// and the element at fault.
class ProfileError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// Limits applied to every profile; profiles come from package authors, i.e. from outside.
struct ProfileLimits {
    static constexpr std::size_t kMaxDocumentBytes = 256 * 1024;
    static constexpr int kMaxDepth = 16;
    static constexpr std::size_t kMaxElements = 20000;
    static constexpr std::size_t kMaxDependencies = 1000;
    static constexpr std::size_t kMaxNameLength = 128;
    static constexpr std::size_t kMaxCommandLength = 8192;
    static constexpr std::size_t kMaxLabels = 100;
    static constexpr int kMaxTimeoutSeconds = 86400;
    static constexpr std::int64_t kMaxDiskMB = 1'000'000'000;
};

// Default step timeouts in seconds (profile attribute `timeout` overrides them).
struct LifecycleDefaults {
    static constexpr int kInstall = 60;
    // How long a started process may take to pass its readiness check before the start counts
    // as failed; Start itself is long-running and has no completion timeout.
    static constexpr int kStart = 30;
    static constexpr int kReady = 10;
    static constexpr int kVerify = 30;
    static constexpr int kStop = 10;
    static constexpr int kUninstall = 60;
};

// True for non-empty names made of [A-Za-z0-9._-] that are not only dots (names become
// directory names on nodes, so "." and ".." must never pass).
bool isValidName(std::string_view name);

struct PackageCoordinates {
    std::string serviceClass;
    std::string serviceName;
    std::string serviceVersion;
    std::string packageName;
    std::string packageVersion;

    // "Class/Name/ServiceVersion/PackageName/PackageVersion"; unambiguous because names
    // cannot contain '/'.
    std::string key() const;
    // "Class/Name/PackageName": the package regardless of version.
    std::string packageKey() const;
    friend bool operator==(const PackageCoordinates&, const PackageCoordinates&) = default;
};

struct DependencySpec {
    std::string serviceClass;
    std::string serviceName;
    std::string packageName;
    // Applies to the dependency's PackageVersion; any service version may provide it.
    VersionRange range;
};

struct LifecycleStep {
    std::string command;  // run by sh in the container directory
    int timeoutSeconds = 0;
};

struct Lifecycle {
    std::optional<LifecycleStep> install;
    std::optional<LifecycleStep> start;
    std::optional<LifecycleStep> ready;
    std::optional<LifecycleStep> verify;
    // Present with an empty command means "stop with signals, waiting timeoutSeconds".
    std::optional<LifecycleStep> stop;
    std::optional<LifecycleStep> uninstall;
};

struct Requirements {
    std::map<std::string, std::string> labels;  // node labels that must match
    std::int64_t minDiskMB = 0;
};

struct PackageProfile {
    PackageCoordinates coords;
    std::vector<DependencySpec> dependencies;
    Lifecycle lifecycle;
    Requirements requirements;
};

// Parses a <Package> profile strictly. `sourceName` (e.g. "foo.tar.gz:profile.xml") is used
// in error messages. Unknown elements are ignored so that profiles may carry more information
// (SPEC 6), except inside <Lifecycle> and <Dependencies>, where a misspelt step or entry would
// otherwise be silently skipped. Throws ProfileError.
PackageProfile parseProfile(std::string_view xml, const std::string& sourceName);

}  // namespace rm::deployer
