// The node agent's durable state in <root>/agent.db: the node identity, the journal of
// Deploy/Undeploy operations with the state of each of their packages, what is deployed on the
// node, and the outbox of reports still to be pushed to the Resource Manager.
//
// Every state change of an operation's package and the report announcing it are written in one
// transaction, so a crash can never leave a state the RM will not hear about, nor a report of a
// state that was not reached. One store can hold several nodes (hollow mode); each node is a
// "slot" (its name) and every row belongs to one slot.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <vector>

#include "common/storage.h"
#include "deployer/profile.h"

namespace rm::agent {

// Package states on the wire (SPEC section 4).
namespace state {
inline constexpr const char* kWaiting = "WAITING";
inline constexpr const char* kAlreadyDeployed = "ALREADYDEPLOYED";
inline constexpr const char* kSkipped = "SKIPPED";
inline constexpr const char* kFailed = "FAILED";
inline constexpr const char* kDeployed = "DEPLOYED";
inline constexpr const char* kNotVerified = "NOTVERIFIED";
inline constexpr const char* kActivated = "ACTIVATED";
inline constexpr const char* kRunning = "RUNNING";
inline constexpr const char* kUndeployed = "UNDEPLOYED";
inline constexpr const char* kNotUndeployable = "NOTUNDEPLOYABLE";
}  // namespace state

// Wakes up a thread waiting for new work; never loses a ring that happens before the wait.
class Doorbell {
  public:
    void ring();
    std::uint64_t count() const;
    // Returns once count() differs from `seen`, `timeout` passed or `stop` was requested.
    void waitFor(std::uint64_t seen, std::chrono::milliseconds timeout, std::stop_token stop);

  private:
    mutable std::mutex mutex_;
    std::condition_variable_any changed_;
    std::uint64_t count_ = 0;
};

enum class OperationKind { Deploy, Undeploy };
const char* toString(OperationKind kind);

struct PackageRequest {
    deployer::PackageCoordinates coords;
    std::string url;                     // Deploy only
    std::string sha256;                  // Deploy only
    std::vector<std::string> dependsOn;  // PackageNames within the same request
};

struct NewOperation {
    std::string slot;
    std::string callbackId;
    OperationKind kind = OperationKind::Deploy;
    std::string scope;
    std::string callbackEndpoint;
    bool cleanState = true;
    // Undeploy without packages: every package deployed for the scope, listed when it runs.
    bool wholeScope = false;
    std::vector<PackageRequest> packages;
};

struct OperationPackage {
    int position = 0;
    PackageRequest request;
    std::string state = state::kWaiting;
    std::string message;
    bool final = false;
};

struct Operation {
    std::int64_t seq = 0;  // order of arrival
    std::string slot;
    std::string callbackId;
    OperationKind kind = OperationKind::Deploy;
    std::string scope;
    std::string callbackEndpoint;
    bool cleanState = true;
    bool wholeScope = false;
    bool expanded = false;  // wholeScope: the package list has been filled in
    bool closed = false;
    std::vector<OperationPackage> packages;
};

struct DeployedPackage {
    std::string slot;
    deployer::PackageCoordinates coords;
    std::string sha256;
    std::string state;
    std::string scope;
    std::string instanceId;  // stable per deployment of the package: names its running instance
    std::string callbackId;  // the operation that deployed it
    std::vector<std::string> dependsOn;
};

// One package of an operation reaching a state, with what it means for the node's inventory.
struct StateChange {
    std::string state;
    std::string message;
    bool final = false;
    std::optional<DeployedPackage> upsertDeployed{};  // record (or update) the inventory row
    bool removeDeployed = false;                      // the package is gone from the node
};

// What the newest pending report of one operation says; built from the journal at send time,
// which is exactly what the newest outbox entry announced.
struct ReportSnapshot {
    std::string slot;
    std::string nodeId;
    std::string callbackId;
    std::string callbackEndpoint;
    std::int64_t sequence = 0;
    std::string status;  // OPEN or CLOSED
    std::vector<OperationPackage> packages;
};

struct PendingCallback {
    std::string slot;
    std::string callbackId;
    std::int64_t firstEntry = 0;  // outbox order of its oldest pending report
    std::int64_t newestSequence = 0;
    std::int64_t pendingReports = 0;
};

// A request conflicting with what is journaled under the same callbackID.
class JournalConflict : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

class AgentStore {
  public:
    // Opens (creating) `<dir>/agent.db`. Throws common::StorageError saying what failed.
    explicit AgentStore(const std::filesystem::path& dir);

    // The node ID of `slot`: generated once, then the same across restarts.
    std::string nodeId(const std::string& slot);

    // Journals a new operation, its packages as WAITING and the first (OPEN) report, in one
    // transaction. Returns false, changing nothing, when the callbackID is already journaled
    // for the slot (a repeated call); throws JournalConflict when that was another kind.
    bool journal(const NewOperation& operation);

    std::vector<Operation> openOperations();
    std::optional<Operation> operation(const std::string& slot, const std::string& callbackId);

    // Fills in the packages of a whole-scope Undeploy (as WAITING, with a report).
    void expand(const std::string& slot, const std::string& callbackId,
                const std::vector<PackageRequest>& packages);

    // Records the state one package reached and appends the report saying so; closes the
    // operation (report CLOSED) when it was the last package not final.
    void record(const std::string& slot, const std::string& callbackId, int position,
                const StateChange& change);

    std::vector<DeployedPackage> deployed(const std::string& slot);
    std::vector<DeployedPackage> allDeployed();
    std::optional<DeployedPackage> deployedPackage(const std::string& slot,
                                                   const deployer::PackageCoordinates& coords);

    // Outbox: operations with reports still to send, oldest first.
    std::vector<PendingCallback> pendingCallbacks();
    std::optional<ReportSnapshot> snapshot(const std::string& slot, const std::string& callbackId);
    // The RM acknowledged the report with this sequence: it and every older one are done.
    void acknowledge(const std::string& slot, const std::string& callbackId, std::int64_t sequence);
    std::int64_t outboxSize();

    Doorbell& work() { return work_; }      // rung when an operation is journaled
    Doorbell& outbox() { return outbox_; }  // rung when a report is appended

    const std::filesystem::path& file() const { return db_.file(); }

  private:
    void appendReport(common::Database::Lock& db, const std::string& slot,
                      const std::string& callbackId, const char* status);
    std::vector<OperationPackage> packagesOf(common::Database::Lock& db, const std::string& slot,
                                             const std::string& callbackId);
    void insertPackages(common::Database::Lock& db, const std::string& slot,
                        const std::string& callbackId, const std::vector<PackageRequest>& packages);

    common::Database db_;
    Doorbell work_;
    Doorbell outbox_;
};

// "a,b,c" <-> {a, b, c}: names of [A-Za-z0-9._-] never contain a comma.
std::string joinNames(const std::vector<std::string>& names);
std::vector<std::string> splitNames(const std::string& text);

}  // namespace rm::agent
