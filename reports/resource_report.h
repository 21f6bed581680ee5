// The ResourceReport of one session (SPEC section 5) as plain values. Field order follows the
// document; rendering and parsing live in report_xml.h, the browser view in report_html.h.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rm::reports {

// Vocabularies of the status fields (SPEC section 4). wsdl/ResourceReport.xsd enumerates the same
// sets and parseReportXml rejects anything else.
inline constexpr std::array<std::string_view, 2> kReportStatuses{"OPEN", "CLOSED"};
inline constexpr std::array<std::string_view, 2> kSessionExitStatuses{"SUCCESS", "FAILED"};
inline constexpr std::array<std::string_view, 3> kOperations{"AddResources", "RemoveResources",
                                                             "DisposeScope"};
inline constexpr std::array<std::string_view, 2> kResolutionStatuses{"SUCCESS", "FAILED"};
inline constexpr std::array<std::string_view, 10> kPackageStatuses{
    "WAITING",     "ALREADYDEPLOYED", "SKIPPED", "FAILED",     "DEPLOYED",
    "NOTVERIFIED", "ACTIVATED",       "RUNNING", "UNDEPLOYED", "NOTUNDEPLOYABLE"};
// WAITING: not processed yet, only while the session is OPEN.
inline constexpr std::array<std::string_view, 4> kResourceStatuses{"ADDED", "REMOVED", "FAILED",
                                                                   "WAITING"};

inline constexpr std::string_view kNoError = "-";  // ErrorDescription on the wire when empty
inline constexpr std::string_view kNotDeployed = "not deployed";  // DeployedOn when unresolved

struct Dependency {
    std::string serviceClass;
    std::string serviceName;
    std::string serviceVersion;
    std::string packageName;
    std::string packageVersion;
    bool operator==(const Dependency&) const = default;
};

struct ServiceEntry {
    std::string serviceClass;
    std::string serviceName;
    std::string serviceVersion;
    std::string resolutionStatus;  // kResolutionStatuses
    std::string deployedOn;        // node ID, or kNotDeployed
    std::string errorDescription;  // empty = no error (rendered as kNoError)
    std::vector<Dependency> resolved;
    std::vector<Dependency> missing;
    bool operator==(const ServiceEntry&) const = default;
};

struct PackageEntry {
    std::string serviceClass;
    std::string serviceName;
    std::string serviceVersion;
    std::string packageName;
    std::string packageVersion;
    std::string status;  // kPackageStatuses
    std::string message;
    bool operator==(const PackageEntry&) const = default;
};

struct GhnActivity {
    std::string host;
    std::string id;
    std::string lastReportReceivedOn;  // ISO 8601 with offset; empty = never
    std::string nodeStatus;            // OPEN | CLOSED: the node's last report
    std::vector<PackageEntry> packages;
    bool operator==(const GhnActivity&) const = default;
};

struct ResourceEntry {
    std::string id;
    std::string type;
    std::string status;            // kResourceStatuses
    std::string errorDescription;  // empty = no error (rendered as kNoError)
    bool operator==(const ResourceEntry&) const = default;
};

struct ResourceReport {
    enum class ActivityKind { Deployment, Undeployment };

    std::string id;
    std::string status;                            // OPEN | CLOSED
    std::optional<std::string> sessionExitStatus;  // present exactly when CLOSED
    std::string operation;                         // kOperations
    std::string lastUpdate;                        // ISO 8601 with offset
    std::string targetScope;
    std::vector<ServiceEntry> services;
    ActivityKind activityKind = ActivityKind::Deployment;
    std::vector<GhnActivity> ghns;
    std::vector<ResourceEntry> resources;
    bool operator==(const ResourceReport&) const = default;
};

// AddResources deploys; RemoveResources and DisposeScope undeploy.
ResourceReport::ActivityKind activityKindFor(std::string_view operation);

// `2008-10-29T00:58:17+00:00`: UTC, whole seconds, explicit offset.
std::string isoTimestamp(std::chrono::system_clock::time_point time);

// True for `YYYY-MM-DDThh:mm:ss[.fraction](+hh:mm|-hh:mm|Z)` with fields in range.
bool isIsoTimestampWithOffset(std::string_view text);

// True for every known package state that no later report changes (all but WAITING, DEPLOYED).
bool isFinalPackageStatus(std::string_view status);

struct Progress {
    std::size_t done = 0;
    std::size_t total = 0;
    bool complete() const { return done == total; }
    bool operator==(const Progress&) const = default;
};

struct NodeProgress {
    std::string host;
    std::string id;
    Progress packages;  // done = packages in a final state
    bool reportClosed = false;
    bool operator==(const NodeProgress&) const = default;
};

struct ReportProgress {
    Progress packages;                // done = packages in a final state, over every node
    std::vector<NodeProgress> nodes;  // in report order
    Progress resources;               // done = resources no longer WAITING
    bool operator==(const ReportProgress&) const = default;
};

ReportProgress progress(const ResourceReport& report);

}  // namespace rm::reports
