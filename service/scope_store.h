// The RM's durable state (SPEC section 8): scoped resources, sessions and their items, nodes.
// Rows hold plain values (state names, ids, texts); what they mean lives in the code that reads
// them, so a new build never misreads an old state directory.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/log.h"
#include "common/storage.h"
#include "service/resource_state.h"

namespace rm::service {

struct ResourceKey {
    std::string type;
    std::string id;
    bool operator==(const ResourceKey&) const = default;
};

struct ScopedResource {
    ResourceKey key;
    ResourceState state = ResourceState::Created;
    std::string node;  // hosting node, where relevant
    int64_t incarnation = 1;
    std::string sessionId;  // last session that changed it
    std::string error;
    int64_t updatedAtMs = 0;
};

enum class SessionOperation { AddResources, RemoveResources, DisposeScope };
std::string_view toString(SessionOperation op);
SessionOperation parseSessionOperation(std::string_view text);

struct Session {
    std::string id;
    SessionOperation operation = SessionOperation::AddResources;
    std::string scope;
    bool open = true;
    std::optional<bool> succeeded;  // set once closed
    int64_t createdAtMs = 0;
    int64_t updatedAtMs = 0;
    int64_t deadlineMs = 0;
    std::string caller;
};

// Status of one requested resource inside a session: WAITING until processed, then ADDED,
// REMOVED or FAILED (with the reason).
struct SessionResource {
    int seq = 0;
    ResourceKey key;
    std::string status = "WAITING";
    std::string error = "-";
};

// One dependency row of a service in a session: resolved (with where to fetch it) or missing.
struct ServiceDependency {
    std::string serviceClass;
    std::string serviceName;
    std::string serviceVersion;
    std::string packageName;
    std::string packageVersion;
    std::string sha256;     // resolved only
    std::string path;       // resolved only: relative path in the repository
    std::string dependsOn;  // resolved only: comma-separated package names it needs
};

// A requested service as planned at request time (resolution is part of accepting it).
struct NewService {
    std::string serviceClass;
    std::string serviceName;
    std::string serviceVersion;  // the resolved version (or the requested text when unresolved)
    std::string targetNode;      // explicit TargetGHNName, if any
    bool resolved = false;
    std::string error = "-";
    std::vector<ServiceDependency> resolvedDependencies;  // install order
    std::vector<ServiceDependency> missingDependencies;
    // What the service's packages ask of a node (profile.xml <Requirements>, merged): labels
    // "k=v,k=v" the node must carry and the free disk it must have.
    std::string requiredLabels;
    int64_t requiredDiskMB = 0;
};

// Status of a service inside a session: WAITING (not scheduled), DEPLOYING (sent to a node),
// DONE, FAILED.
struct SessionService {
    int seq = 0;
    NewService plan;
    std::string deployedOn;  // node ID, empty when none chosen
    std::string status = "WAITING";
    std::string error = "-";
};

struct NewSession {
    std::string id;
    SessionOperation operation = SessionOperation::AddResources;
    std::string scope;
    int64_t deadlineMs = 0;
    std::string caller;
    std::vector<ResourceKey> resources;
    std::vector<NewService> services;
};

struct NodeRecord {
    std::string id;
    std::string name;
    std::string endpoint;
    std::string labels;  // "k=v,k=v"
    int64_t lastHeartbeatMs = 0;
    std::string liveness = "ALIVE";
};

struct NodeRegistration {
    std::string id;
    std::string name;
    std::string endpoint;
    std::string labels;
    int cpus = 0;
    int64_t memoryMB = 0;
    int64_t diskFreeMB = 0;
    int maxInstances = 0;
};

struct NodeStatus {
    NodeRecord record;
    double load = 0;
    int runningInstances = 0;
    int64_t diskFreeMB = 0;
};

// A package the RM knows to be deployed on a node (from the nodes' closed reports).
struct NodePackage {
    std::string nodeId;
    ServiceDependency package;  // coordinates only
    std::string status;         // the final state the node reported
    int64_t installedSeq = 0;   // grows with each deployment: undeploy in reverse order
};

// A running instance a node reported (a RunningInstance resource's ID is `id`).
struct InstanceRecord {
    std::string id;
    std::string nodeId;
    std::string serviceClass;
    std::string serviceName;
    std::string packageName;
    std::string state;
};

// How many scoped resources there are, kept by the database itself (triggers on every write),
// so reading them costs one lookup whatever the size of the scope.
struct ResourceCounts {
    int64_t total = 0;    // every row, UNPUBLISHED (left the scope) included
    int64_t inScope = 0;  // every state but UNPUBLISHED: what --max-resources bounds
    std::vector<std::pair<std::string, int64_t>> byState;  // states with at least one, by name
};

// One page of a keyset-paged listing: at most `limit` rows after a key, and where the next page
// starts.
template <class Row, class Key>
struct Page {
    std::vector<Row> rows;
    std::optional<Key> next;  // pass as `after` for the next page; nullopt: this is the last one
};

struct SessionSummary {
    std::string id;
    std::string operation;
    bool open = true;
    std::optional<bool> succeeded;
    int64_t updatedAtMs = 0;
    int items = 0;
};

class ScopeStore {
public:
    ScopeStore(const std::filesystem::path& stateDir, common::Logger& logger);

    // Sessions ------------------------------------------------------------------------------
    // Commits the session and its items before returning (the caller then acknowledges).
    void createSession(const NewSession& session);
    std::optional<Session> session(const std::string& id);
    std::vector<SessionResource> sessionResources(const std::string& id);
    std::vector<SessionService> sessionServices(const std::string& id);
    // One service of a session (by its seq), without reading the others.
    std::optional<SessionService> sessionService(const std::string& id, int seq);
    // Records a service's progress; only a WAITING or DEPLOYING service changes.
    void updateService(const std::string& sessionId, int seq, const std::string& status,
                       const std::string& deployedOn, const std::string& error, int64_t nowMs);
    std::vector<std::string> openSessionIds();
    std::vector<SessionSummary> recentSessions(int limit);
    // Indexed counts (the sessions_by_status index): cheap enough for every request.
    int64_t openSessionCount();
    int64_t closedSessionCount();
    // Deletes the oldest CLOSED sessions (by creation) beyond the newest `keep`, at most `batch`
    // of them in one transaction, with everything their reports show: items, services,
    // dependencies, node deployments and their package rows; and the resource history
    // (resource_events) older than every session still kept. OPEN sessions are never touched.
    // Returns the IDs deleted (empty when nothing is beyond `keep`).
    std::vector<std::string> pruneClosedSessions(int64_t keep, int batch);
    // Closes the session; true when it was open (so a close is applied exactly once).
    bool closeSession(const std::string& id, bool succeeded, int64_t nowMs);
    void touchSession(const std::string& id, int64_t nowMs);

    // Applies one processed item atomically: the resource's moves (each checked for legality),
    // the item's outcome and the session's LastUpdate. Throws IllegalTransition (nothing
    // written) when a move is not legal.
    struct ItemOutcome {
        std::vector<ResourceState> moves;  // applied in order to the resource
        std::string status;                // ADDED / REMOVED / FAILED
        std::string error = "-";
        std::string node;
    };
    void applyItem(const std::string& sessionId, int seq, const ResourceKey& key,
                   const ItemOutcome& outcome, int64_t nowMs);
    // A resource that joins the scope as a consequence of a session (a RunningInstance that a
    // node reports): CREATED -> ADDREQUESTED -> ADDED -> PUBLISHED, each move checked.
    void addResourceDirectly(const ResourceKey& key, const std::string& node, const std::string& sessionId,
                             int64_t nowMs);
    // The reverse: a resource that leaves the scope as a consequence of a session (its package
    // was undeployed): REMOVEREQUESTED -> REMOVED -> UNPUBLISHED, each move checked. Nothing
    // happens when it is not in the scope.
    void removeResourceDirectly(const ResourceKey& key, const std::string& sessionId, int64_t nowMs);
    // Marks every still-WAITING item FAILED with `reason`; in-scope resources the session was
    // changing become LOST. Used by the session timeout.
    void failWaitingItems(const std::string& sessionId, const std::string& reason, int64_t nowMs);

    // Scoped resources ----------------------------------------------------------------------
    std::optional<ScopedResource> resource(const ResourceKey& key);
    std::vector<ScopedResource> listResources(const std::optional<std::string>& type,
                                              const std::optional<ResourceState>& state);
    std::vector<ResourceKey> resourcesInScope();
    int64_t resourceCount();  // every row, UNPUBLISHED included (maintained count)
    ResourceCounts resourceCounts();
    // Resources in the scope now (any state but UNPUBLISHED), from the maintained count.
    int64_t resourcesInScopeCount();
    // How many of `keys` are not in the scope now (unknown or UNPUBLISHED): by how much adding
    // them all would grow the scope. One primary-key lookup per key.
    int64_t countNotInScope(const std::vector<ResourceKey>& keys);
    // Keyset paging in (type, id) order: up to `limit` resources after `after` (from the start
    // when nullopt); those that left the scope (UNPUBLISHED) only with `includeUnpublished`.
    // Each page is one range scan of the primary key, stable under concurrent inserts, that
    // reads at most kPageScanFactor x (limit + 1) rows: a page among many resources that left the
    // scope may hold fewer rows, and its `next` resumes after the last row read.
    Page<ScopedResource, ResourceKey> resourcePage(const std::optional<ResourceKey>& after, int limit,
                                                   bool includeUnpublished);
    static constexpr int kPageScanFactor = 10;

    // Nodes -------------------------------------------------------------------------------
    std::optional<NodeRecord> nodeByIdOrName(const std::string& idOrName);
    std::vector<NodeRecord> nodes();
    bool instanceReported(const std::string& instanceId);
    std::optional<InstanceRecord> instance(const std::string& instanceId);
    // Every package deployed on the nodes, oldest deployment first.
    std::vector<NodePackage> nodePackages();
    // Records (or refreshes) a node; a different ID under the same name replaces the old entry
    // (the node was reinstalled). Returns the ID it replaced, if any.
    std::optional<std::string> registerNode(const NodeRegistration& node, int64_t nowMs);
    // False when the node is unknown (it must register again).
    bool heartbeat(const std::string& id, int64_t sequence, int runningInstances, double load,
                   int64_t diskFreeMB, int64_t nowMs);
    std::vector<NodeStatus> nodeStatuses();
    int64_t nodeCount();
    // Keyset paging in name order: up to `limit` nodes whose name sorts after `afterName`.
    Page<NodeStatus, std::string> nodeStatusPage(const std::optional<std::string>& afterName, int limit);
    // Marks ALIVE nodes whose last heartbeat is older than `deadlineMs` LOST; returns their IDs.
    std::vector<std::string> markSilentNodesLost(int64_t deadlineMs);

    common::Database& database() { return db_; }

private:
    std::vector<SessionService> loadSessionServices(const std::string& id,
                                                    std::optional<int> onlySeq);
    void applyMoves(common::Database::Lock& db, const ResourceKey& key, const ItemOutcome& outcome,
                    const std::string& sessionId, int64_t nowMs);

    common::Logger& logger_;
    common::Database db_;
};

}  // namespace rm::service
