#include "service/scope_store.h"

#include <algorithm>
#include <stdexcept>

#include "common/time_util.h"

namespace rm::service {

namespace {

const std::vector<std::string> kMigrations = {
    R"sql(
CREATE TABLE resources (
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    state TEXT NOT NULL,
    node TEXT NOT NULL DEFAULT '',
    incarnation INTEGER NOT NULL DEFAULT 1,
    session_id TEXT NOT NULL DEFAULT '',
    error TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (type, id)
);
CREATE INDEX resources_by_state ON resources(state);
CREATE TABLE resource_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    from_state TEXT NOT NULL,
    to_state TEXT NOT NULL,
    session_id TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    operation TEXT NOT NULL,
    scope TEXT NOT NULL,
    status TEXT NOT NULL,
    exit_status TEXT,
    caller TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    deadline INTEGER NOT NULL
);
CREATE INDEX sessions_by_status ON sessions(status, created_at);
CREATE INDEX sessions_by_update ON sessions(updated_at);
CREATE TABLE session_resources (
    session_id TEXT NOT NULL REFERENCES sessions(id),
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'WAITING',
    error TEXT NOT NULL DEFAULT '-',
    PRIMARY KEY (session_id, seq)
);
CREATE TABLE nodes (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    endpoint TEXT NOT NULL,
    labels TEXT NOT NULL DEFAULT '',
    cpus INTEGER NOT NULL DEFAULT 0,
    memory_mb INTEGER NOT NULL DEFAULT 0,
    disk_free_mb INTEGER NOT NULL DEFAULT 0,
    max_instances INTEGER NOT NULL DEFAULT 0,
    registered_at INTEGER NOT NULL,
    last_heartbeat INTEGER NOT NULL,
    heartbeat_seq INTEGER NOT NULL DEFAULT 0,
    liveness TEXT NOT NULL DEFAULT 'ALIVE',
    running_instances INTEGER NOT NULL DEFAULT 0,
    load REAL NOT NULL DEFAULT 0
);
CREATE TABLE session_services (
    session_id TEXT NOT NULL REFERENCES sessions(id),
    seq INTEGER NOT NULL,
    service_class TEXT NOT NULL,
    service_name TEXT NOT NULL,
    service_version TEXT NOT NULL,
    target_node TEXT NOT NULL DEFAULT '',
    resolution TEXT NOT NULL,
    deployed_on TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'WAITING',
    error TEXT NOT NULL DEFAULT '-',
    PRIMARY KEY (session_id, seq)
);
CREATE TABLE session_dependencies (
    session_id TEXT NOT NULL,
    service_seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    seq INTEGER NOT NULL,
    service_class TEXT NOT NULL,
    service_name TEXT NOT NULL,
    service_version TEXT NOT NULL,
    package_name TEXT NOT NULL,
    package_version TEXT NOT NULL,
    sha256 TEXT NOT NULL DEFAULT '',
    path TEXT NOT NULL DEFAULT '',
    depends_on TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (session_id, service_seq, kind, seq)
);
CREATE TABLE deployments (
    callback_id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    service_seq INTEGER NOT NULL,
    node_id TEXT NOT NULL,
    node_host TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    kind TEXT NOT NULL,
    call_state TEXT NOT NULL DEFAULT 'PENDING',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '',
    report_status TEXT NOT NULL DEFAULT '',
    report_seq INTEGER NOT NULL DEFAULT -1,
    report_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX deployments_by_session ON deployments(session_id);
CREATE INDEX deployments_by_call ON deployments(call_state, next_attempt_at);
CREATE TABLE deployment_packages (
    callback_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    service_class TEXT NOT NULL,
    service_name TEXT NOT NULL,
    service_version TEXT NOT NULL,
    package_name TEXT NOT NULL,
    package_version TEXT NOT NULL,
    status TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (callback_id, seq)
);
CREATE TABLE instances (
    id TEXT PRIMARY KEY,
    node_id TEXT NOT NULL,
    service_class TEXT NOT NULL,
    service_name TEXT NOT NULL,
    package_name TEXT NOT NULL,
    state TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
)sql",
    // Requirements of a service (profile.xml <Requirements>, merged over its packages), checked
    // when a node is chosen; and what the RM knows to be deployed on each node, so removals
    // undeploy what is there. The backfill reads the node reports merged before this migration.
    R"sql(
ALTER TABLE session_services ADD COLUMN required_labels TEXT NOT NULL DEFAULT '';
ALTER TABLE session_services ADD COLUMN required_disk_mb INTEGER NOT NULL DEFAULT 0;
CREATE TABLE node_packages (
    node_id TEXT NOT NULL,
    service_class TEXT NOT NULL,
    service_name TEXT NOT NULL,
    service_version TEXT NOT NULL,
    package_name TEXT NOT NULL,
    package_version TEXT NOT NULL,
    status TEXT NOT NULL,
    installed_seq INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (node_id, service_class, service_name, package_name)
);
CREATE INDEX node_packages_by_seq ON node_packages(installed_seq);
INSERT OR REPLACE INTO node_packages(node_id, service_class, service_name, service_version, package_name,
    package_version, status, installed_seq, updated_at)
SELECT d.node_id, p.service_class, p.service_name, p.service_version, p.package_name, p.package_version,
    p.status, d.report_at * 1000 + p.seq, d.report_at
FROM deployments d JOIN deployment_packages p ON p.callback_id = d.callback_id
WHERE d.kind = 'Deploy' AND d.report_status = 'CLOSED'
    AND p.status IN ('RUNNING', 'ACTIVATED', 'NOTVERIFIED', 'ALREADYDEPLOYED')
ORDER BY d.report_at, p.seq;
)sql",
    // Bounded state (limits and paging): resource counts per state kept by triggers, so a limit
    // check or a page header reads a handful of rows instead of counting the table; and each
    // session's item count, so the list of recent reports counts nothing. (No index over the
    // resources in the scope: adding it to the per-item writes doubled the cost of a fill.)
    R"sql(
CREATE TABLE resource_counts (
    state TEXT PRIMARY KEY,
    n INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO resource_counts(state, n) SELECT state, COUNT(*) FROM resources GROUP BY state;
CREATE TRIGGER resources_counted_insert AFTER INSERT ON resources BEGIN
    INSERT INTO resource_counts(state, n) VALUES (new.state, 1)
        ON CONFLICT(state) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER resources_counted_delete AFTER DELETE ON resources BEGIN
    UPDATE resource_counts SET n = n - 1 WHERE state = old.state;
END;
CREATE TRIGGER resources_counted_update AFTER UPDATE OF state ON resources
    WHEN old.state <> new.state BEGIN
    UPDATE resource_counts SET n = n - 1 WHERE state = old.state;
    INSERT INTO resource_counts(state, n) VALUES (new.state, 1)
        ON CONFLICT(state) DO UPDATE SET n = n + 1;
END;
ALTER TABLE sessions ADD COLUMN items INTEGER NOT NULL DEFAULT -1;
)sql",
};

std::string stateName(ResourceState s) { return std::string(toString(s)); }

ResourceState readState(const std::string& text) {
    auto s = parseResourceState(text);
    if (!s) throw common::StorageError("unknown resource state '" + text + "' in the database");
    return *s;
}

ScopedResource readResource(common::Statement& q) {
    ScopedResource r;
    r.key = {q.text(0), q.text(1)};
    r.state = readState(q.text(2));
    r.node = q.text(3);
    r.incarnation = q.integer(4);
    r.sessionId = q.text(5);
    r.error = q.text(6);
    r.updatedAtMs = q.integer(7);
    return r;
}

const char* kResourceColumns =
    "type, id, state, node, incarnation, session_id, error, updated_at";

}  // namespace

std::string_view toString(SessionOperation op) {
    switch (op) {
        case SessionOperation::AddResources: return "AddResources";
        case SessionOperation::RemoveResources: return "RemoveResources";
        case SessionOperation::DisposeScope: return "DisposeScope";
    }
    return "AddResources";
}

SessionOperation parseSessionOperation(std::string_view text) {
    if (text == "AddResources") return SessionOperation::AddResources;
    if (text == "RemoveResources") return SessionOperation::RemoveResources;
    if (text == "DisposeScope") return SessionOperation::DisposeScope;
    throw common::StorageError("unknown session operation '" + std::string(text) + "' in the database");
}

ScopeStore::ScopeStore(const std::filesystem::path& stateDir, common::Logger& logger)
    : logger_(logger), db_(stateDir / "rm.db", kMigrations) {}

void ScopeStore::createSession(const NewSession& s) {
    db_.transaction([&](common::Database::Lock& db) {
        int64_t now = common::nowMillis();
        db.prepare(
              "INSERT INTO sessions(id, operation, scope, status, caller, created_at, updated_at, "
              "deadline, items) VALUES (?, ?, ?, 'OPEN', ?, ?, ?, ?, ?)")
            .bind(1, s.id)
            .bind(2, toString(s.operation))
            .bind(3, s.scope)
            .bind(4, s.caller)
            .bind(5, now)
            .bind(6, now)
            .bind(7, s.deadlineMs)
            .bind(8, static_cast<int64_t>(s.resources.size() + s.services.size()))
            .run();
        int serviceSeq = 0;
        for (const auto& svc : s.services) {
            db.prepare(
                  "INSERT INTO session_services(session_id, seq, service_class, service_name, "
                  "service_version, target_node, resolution, status, error, required_labels, "
                  "required_disk_mb) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
                .bind(1, s.id)
                .bind(2, serviceSeq)
                .bind(3, svc.serviceClass)
                .bind(4, svc.serviceName)
                .bind(5, svc.serviceVersion)
                .bind(6, svc.targetNode)
                .bind(7, svc.resolved ? "SUCCESS" : "FAILED")
                // A resolved service with an error was refused at planning (e.g. nothing to remove).
                .bind(8, svc.resolved && svc.error == "-" ? "WAITING" : "FAILED")
                .bind(9, svc.error)
                .bind(10, svc.requiredLabels)
                .bind(11, svc.requiredDiskMB)
                .run();
            auto addDeps = [&](const std::vector<ServiceDependency>& deps, const char* kind) {
                int depSeq = 0;
                for (const auto& d : deps) {
                    db.prepare(
                          "INSERT INTO session_dependencies(session_id, service_seq, kind, seq, "
                          "service_class, service_name, service_version, package_name, "
                          "package_version, sha256, path, depends_on) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, "
                          "?, ?, ?)")
                        .bind(1, s.id)
                        .bind(2, serviceSeq)
                        .bind(3, kind)
                        .bind(4, depSeq++)
                        .bind(5, d.serviceClass)
                        .bind(6, d.serviceName)
                        .bind(7, d.serviceVersion)
                        .bind(8, d.packageName)
                        .bind(9, d.packageVersion)
                        .bind(10, d.sha256)
                        .bind(11, d.path)
                        .bind(12, d.dependsOn)
                        .run();
                }
            };
            addDeps(svc.resolvedDependencies, "resolved");
            addDeps(svc.missingDependencies, "missing");
            ++serviceSeq;
        }
        int seq = 0;
        for (const auto& key : s.resources) {
            db.prepare("INSERT INTO session_resources(session_id, seq, type, id) VALUES (?, ?, ?, ?)")
                .bind(1, s.id)
                .bind(2, seq++)
                .bind(3, key.type)
                .bind(4, key.id)
                .run();
        }
    });
}

std::optional<Session> ScopeStore::session(const std::string& id) {
    std::optional<Session> out;
    db_.read([&](common::Database::Lock& db) {
        auto& q = db.prepare(
            "SELECT id, operation, scope, status, exit_status, created_at, updated_at, deadline, "
            "caller FROM sessions WHERE id = ?");
        q.bind(1, id);
        if (!q.step()) return;
        Session s;
        s.id = q.text(0);
        s.operation = parseSessionOperation(q.text(1));
        s.scope = q.text(2);
        s.open = q.text(3) == "OPEN";
        if (auto exit = q.optionalText(4)) s.succeeded = *exit == "SUCCESS";
        s.createdAtMs = q.integer(5);
        s.updatedAtMs = q.integer(6);
        s.deadlineMs = q.integer(7);
        s.caller = q.text(8);
        out = std::move(s);
    });
    return out;
}

std::vector<SessionResource> ScopeStore::sessionResources(const std::string& id) {
    std::vector<SessionResource> out;
    db_.read([&](common::Database::Lock& db) {
        auto& q = db.prepare(
            "SELECT seq, type, id, status, error FROM session_resources WHERE session_id = ? "
            "ORDER BY seq");
        q.bind(1, id);
        while (q.step()) {
            out.push_back({static_cast<int>(q.integer(0)), {q.text(1), q.text(2)}, q.text(3), q.text(4)});
        }
    });
    return out;
}

std::vector<SessionService> ScopeStore::sessionServices(const std::string& id) {
    return loadSessionServices(id, std::nullopt);
}

std::optional<SessionService> ScopeStore::sessionService(const std::string& id, int seq) {
    auto one = loadSessionServices(id, seq);
    if (one.empty()) return std::nullopt;
    return std::move(one.front());
}

std::vector<SessionService> ScopeStore::loadSessionServices(const std::string& id,
                                                            std::optional<int> onlySeq) {
    std::vector<SessionService> out;
    // Two spellings rather than "(? < 0 OR seq = ?)", which would keep SQLite from using the
    // primary key to find one service.
    const std::string oneService = onlySeq ? " AND seq = ?" : "";
    const std::string oneServiceDeps = onlySeq ? " AND service_seq = ?" : "";
    db_.read([&](common::Database::Lock& db) {
        auto& q = db.prepare(
            "SELECT seq, service_class, service_name, service_version, target_node, resolution, "
            "deployed_on, status, error, required_labels, required_disk_mb FROM session_services WHERE "
            "session_id = ?" + oneService + " ORDER BY seq");
        q.bind(1, id);
        if (onlySeq) q.bind(2, *onlySeq);
        while (q.step()) {
            SessionService s;
            s.seq = static_cast<int>(q.integer(0));
            s.plan.serviceClass = q.text(1);
            s.plan.serviceName = q.text(2);
            s.plan.serviceVersion = q.text(3);
            s.plan.targetNode = q.text(4);
            s.plan.resolved = q.text(5) == "SUCCESS";
            s.deployedOn = q.text(6);
            s.status = q.text(7);
            s.error = q.text(8);
            s.plan.error = s.error;
            s.plan.requiredLabels = q.text(9);
            s.plan.requiredDiskMB = q.integer(10);
            out.push_back(std::move(s));
        }
        auto& d = db.prepare(
            "SELECT service_seq, kind, service_class, service_name, service_version, package_name, "
            "package_version, sha256, path, depends_on FROM session_dependencies WHERE session_id = ?" +
            oneServiceDeps + " ORDER BY service_seq, kind, seq");
        d.bind(1, id);
        if (onlySeq) d.bind(2, *onlySeq);
        while (d.step()) {
            // Services are numbered 0..n-1 in a session; with one selected it is the only one.
            auto index = onlySeq ? 0 : static_cast<size_t>(d.integer(0));
            if (index >= out.size()) continue;
            ServiceDependency dep{d.text(2), d.text(3), d.text(4), d.text(5), d.text(6),
                                  d.text(7), d.text(8), d.text(9)};
            (d.text(1) == "resolved" ? out[index].plan.resolvedDependencies
                                     : out[index].plan.missingDependencies)
                .push_back(std::move(dep));
        }
    });
    return out;
}

void ScopeStore::updateService(const std::string& sessionId, int seq, const std::string& status,
                               const std::string& deployedOn, const std::string& error, int64_t nowMs) {
    db_.transaction([&](common::Database::Lock& db) {
        db.prepare(
              "UPDATE session_services SET status = ?, deployed_on = ?, error = ? WHERE session_id = ? "
              "AND seq = ? AND status IN ('WAITING', 'DEPLOYING')")
            .bind(1, status)
            .bind(2, deployedOn)
            .bind(3, error)
            .bind(4, sessionId)
            .bind(5, seq)
            .run();
        db.prepare("UPDATE sessions SET updated_at = MAX(updated_at, ?) WHERE id = ?")
            .bind(1, nowMs)
            .bind(2, sessionId)
            .run();
    });
}

std::vector<std::string> ScopeStore::openSessionIds() {
    std::vector<std::string> out;
    db_.read([&](common::Database::Lock& db) {
        auto& q = db.prepare("SELECT id FROM sessions WHERE status = 'OPEN' ORDER BY created_at, id");
        while (q.step()) out.push_back(q.text(0));
    });
    return out;
}

std::vector<SessionSummary> ScopeStore::recentSessions(int limit) {
    std::vector<SessionSummary> out;
    db_.read([&](common::Database::Lock& db) {
        auto& q = db.prepare(
            "SELECT s.id, s.operation, s.status, s.exit_status, s.updated_at, "
            "CASE WHEN s.items >= 0 THEN s.items ELSE "  // counted only for sessions recorded before the column
            "(SELECT COUNT(*) FROM session_resources r WHERE r.session_id = s.id) + "
            "(SELECT COUNT(*) FROM session_services v WHERE v.session_id = s.id) END "
            "FROM sessions s ORDER BY s.updated_at DESC, s.id LIMIT ?");
        q.bind(1, limit);
        while (q.step()) {
            SessionSummary s;
            s.id = q.text(0);
            s.operation = q.text(1);
            s.open = q.text(2) == "OPEN";
            if (auto exit = q.optionalText(3)) s.succeeded = *exit == "SUCCESS";
            s.updatedAtMs = q.integer(4);
            s.items = static_cast<int>(q.integer(5));
            out.push_back(std::move(s));
        }
    });
    return out;
}

int64_t ScopeStore::openSessionCount() {
    int64_t n = 0;
    db_.read([&](common::Database::Lock& db) {
        auto& q = db.prepare("SELECT COUNT(*) FROM sessions WHERE status = 'OPEN'");
        if (q.step()) n = q.integer(0);
    });
    return n;
}

int64_t ScopeStore::closedSessionCount() {
    int64_t n = 0;
    db_.read([&](common::Database::Lock& db) {
        auto& q = db.prepare("SELECT COUNT(*) FROM sessions WHERE status = 'CLOSED'");
        if (q.step()) n = q.integer(0);
    });
    return n;
}

std::vector<std::string> ScopeStore::pruneClosedSessions(int64_t keep, int batch) {
    std::vector<std::string> pruned;
    db_.transaction([&](common::Database::Lock& db) {
        pruned.clear();
        int64_t closed = 0;
        {
            auto& q = db.prepare("SELECT COUNT(*) FROM sessions WHERE status = 'CLOSED'");
            if (q.step()) closed = q.integer(0);
        }
        int64_t excess = std::min<int64_t>(closed - std::max<int64_t>(keep, 0), batch);
        if (excess <= 0) return;
        {
            auto& q = db.prepare(
                "SELECT id FROM sessions WHERE status = 'CLOSED' ORDER BY created_at, id LIMIT ?");
            q.bind(1, excess);
            while (q.step()) pruned.push_back(q.text(0));
        }
        for (const auto& id : pruned) {
            db.prepare(
                  "DELETE FROM deployment_packages WHERE callback_id IN (SELECT callback_id FROM "
                  "deployments WHERE session_id = ?)")
                .bind(1, id)
                .run();
            db.prepare("DELETE FROM deployments WHERE session_id = ?").bind(1, id).run();
            db.prepare("DELETE FROM session_dependencies WHERE session_id = ?").bind(1, id).run();
            db.prepare("DELETE FROM session_services WHERE session_id = ?").bind(1, id).run();
            db.prepare("DELETE FROM session_resources WHERE session_id = ?").bind(1, id).run();
            db.prepare("DELETE FROM sessions WHERE id = ? AND status = 'CLOSED'").bind(1, id).run();
        }
        // The resources' history goes with the sessions that wrote it: every event older than
        // the oldest session still kept belongs to a pruned one (events are written while their
        // session runs). Events are numbered in the order written, so the old ones are a prefix:
        // finding where it ends reads only what is deleted.
        std::optional<int64_t> oldestKept;
        for (const char* status : {"OPEN", "CLOSED"}) {
            auto& q = db.prepare(
                "SELECT created_at FROM sessions WHERE status = ? ORDER BY created_at LIMIT 1");
            q.bind(1, status);
            if (q.step()) oldestKept = std::min(oldestKept.value_or(q.integer(0)), q.integer(0));
        }
        if (!oldestKept) return;
        auto& first = db.prepare("SELECT seq FROM resource_events WHERE at >= ? ORDER BY seq LIMIT 1");
        first.bind(1, *oldestKept);
        if (first.step()) {
            db.prepare("DELETE FROM resource_events WHERE seq < ?").bind(1, first.integer(0)).run();
        } else {
            db.prepare("DELETE FROM resource_events WHERE at < ?").bind(1, *oldestKept).run();
        }
    });
    return pruned;
}

bool ScopeStore::closeSession(const std::string& id, bool succeeded, int64_t nowMs) {
    bool closed = false;
    db_.transaction([&](common::Database::Lock& db) {
        db.prepare(
              "UPDATE sessions SET status = 'CLOSED', exit_status = ?, updated_at = ? "
              "WHERE id = ? AND status = 'OPEN'")
            .bind(1, succeeded ? "SUCCESS" : "FAILED")
            .bind(2, nowMs)
            .bind(3, id)
            .run();
        closed = db.changes() == 1;
    });
    return closed;
}

void ScopeStore::touchSession(const std::string& id, int64_t nowMs) {
    db_.transaction([&](common::Database::Lock& db) {
        db.prepare("UPDATE sessions SET updated_at = MAX(updated_at, ?) WHERE id = ?")
            .bind(1, nowMs)
            .bind(2, id)
            .run();
    });
}

void ScopeStore::applyMoves(common::Database::Lock& db, const ResourceKey& key, const ItemOutcome& outcome,
                            const std::string& sessionId, int64_t nowMs) {
        std::optional<ResourceState> current;
        int64_t incarnation = 1;
        {
            auto& q = db.prepare("SELECT state, incarnation FROM resources WHERE type = ? AND id = ?");
            q.bind(1, key.type).bind(2, key.id);
            if (q.step()) {
                current = readState(q.text(0));
                incarnation = q.integer(1);
            }
        }
        // A resource that left the scope (or never joined) starts a new life as CREATED.
        ResourceState state = ResourceState::Created;
        bool reincarnate = false;
        if (current && *current != ResourceState::Unpublished && *current != ResourceState::Lost) {
            state = *current;
        } else if (current) {
            reincarnate = true;
            ++incarnation;
        }
        for (ResourceState to : outcome.moves) {
            checkTransition(state, to);  // throws: the transaction rolls back
            db.prepare(
                  "INSERT INTO resource_events(type, id, from_state, to_state, session_id, at) "
                  "VALUES (?, ?, ?, ?, ?, ?)")
                .bind(1, key.type)
                .bind(2, key.id)
                .bind(3, stateName(state))
                .bind(4, stateName(to))
                .bind(5, sessionId)
                .bind(6, nowMs)
                .run();
            state = to;
        }
        if (!current || reincarnate) {
            db.prepare(
                  "INSERT INTO resources(type, id, state, node, incarnation, session_id, error, "
                  "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                  "ON CONFLICT(type, id) DO UPDATE SET state = excluded.state, node = "
                  "excluded.node, incarnation = excluded.incarnation, session_id = "
                  "excluded.session_id, error = excluded.error, created_at = "
                  "excluded.created_at, updated_at = excluded.updated_at")
                .bind(1, key.type)
                .bind(2, key.id)
                .bind(3, stateName(state))
                .bind(4, outcome.node)
                .bind(5, incarnation)
                .bind(6, sessionId)
                .bind(7, outcome.error == "-" ? std::string() : outcome.error)
                .bind(8, nowMs)
                .bind(9, nowMs)
                .run();
        } else {
            db.prepare(
                  "UPDATE resources SET state = ?, node = CASE WHEN ? = '' THEN node ELSE ? END, "
                  "session_id = ?, error = ?, updated_at = ? WHERE type = ? AND id = ?")
                .bind(1, stateName(state))
                .bind(2, outcome.node)
                .bind(3, outcome.node)
                .bind(4, sessionId)
                .bind(5, outcome.error == "-" ? std::string() : outcome.error)
                .bind(6, nowMs)
                .bind(7, key.type)
                .bind(8, key.id)
                .run();
        }
    }

void ScopeStore::addResourceDirectly(const ResourceKey& key, const std::string& node, const std::string& sessionId,
                                     int64_t nowMs) {
    using S = ResourceState;
    db_.transaction([&](common::Database::Lock& db) {
        applyMoves(db, key, {{S::AddRequested, S::Added, S::Published}, "ADDED", "-", node}, sessionId, nowMs);
    });
}

void ScopeStore::removeResourceDirectly(const ResourceKey& key, const std::string& sessionId, int64_t nowMs) {
    using S = ResourceState;
    db_.transaction([&](common::Database::Lock& db) {
        auto& q = db.prepare("SELECT state FROM resources WHERE type = ? AND id = ?");
        q.bind(1, key.type).bind(2, key.id);
        if (!q.step()) return;
        ResourceState state = readState(q.text(0));
        if (state != S::Added && state != S::Published) return;
        applyMoves(db, key, {{S::RemoveRequested, S::Removed, S::Unpublished}, "REMOVED", "-", ""}, sessionId,
                   nowMs);
    });
}

void ScopeStore::applyItem(const std::string& sessionId, int seq, const ResourceKey& key,
                           const ItemOutcome& outcome, int64_t nowMs) {
    db_.transaction([&](common::Database::Lock& db) {
        if (!outcome.moves.empty()) applyMoves(db, key, outcome, sessionId, nowMs);
        db.prepare(
              "UPDATE session_resources SET status = ?, error = ? WHERE session_id = ? AND seq = ? "
              "AND status = 'WAITING'")
            .bind(1, outcome.status)
            .bind(2, outcome.error)
            .bind(3, sessionId)
            .bind(4, seq)
            .run();
        if (db.changes() != 1) {
            throw common::StorageError("session " + sessionId + " item " + std::to_string(seq) +
                                       " was already processed");
        }
        db.prepare("UPDATE sessions SET updated_at = MAX(updated_at, ?) WHERE id = ?")
            .bind(1, nowMs)
            .bind(2, sessionId)
            .run();
    });
}

void ScopeStore::failWaitingItems(const std::string& sessionId, const std::string& reason,
                                  int64_t nowMs) {
    db_.transaction([&](common::Database::Lock& db) {
        std::vector<ResourceKey> pending;
        {
            auto& q = db.prepare(
                "SELECT type, id FROM session_resources WHERE session_id = ? AND status = 'WAITING'");
            q.bind(1, sessionId);
            while (q.step()) pending.push_back({q.text(0), q.text(1)});
        }
        for (const auto& key : pending) {
            auto& q = db.prepare("SELECT state FROM resources WHERE type = ? AND id = ?");
            q.bind(1, key.type).bind(2, key.id);
            if (!q.step()) continue;
            ResourceState state = readState(q.text(0));
            if (!isInScope(state) || !isLegalTransition(state, ResourceState::Lost)) continue;
            db.prepare(
                  "INSERT INTO resource_events(type, id, from_state, to_state, session_id, at) "
                  "VALUES (?, ?, ?, 'LOST', ?, ?)")
                .bind(1, key.type)
                .bind(2, key.id)
                .bind(3, stateName(state))
                .bind(4, sessionId)
                .bind(5, nowMs)
                .run();
            db.prepare("UPDATE resources SET state = 'LOST', error = ?, updated_at = ? WHERE type = ? AND id = ?")
                .bind(1, reason)
                .bind(2, nowMs)
                .bind(3, key.type)
                .bind(4, key.id)
                .run();
        }
        db.prepare(
              "UPDATE session_resources SET status = 'FAILED', error = ? WHERE session_id = ? AND "
              "status = 'WAITING'")
            .bind(1, reason)
            .bind(2, sessionId)
            .run();
        db.prepare(
              "UPDATE session_services SET status = 'FAILED', error = ? WHERE session_id = ? AND "
              "status IN ('WAITING', 'DEPLOYING')")
            .bind(1, reason)
            .bind(2, sessionId)
            .run();
    });
}

std::optional<ScopedResource> ScopeStore::resource(const ResourceKey& key) {
    std::optional<ScopedResource> out;
    db_.read([&](common::Database::Lock& db) {
        auto& q = db.prepare(std::string("SELECT ") + kResourceColumns +
                             " FROM resources WHERE type = ? AND id = ?");
        q.bind(1, key.type).bind(2, key.id);
        if (q.step()) out = readResource(q);
    });
    return out;
}

std::vector<ScopedResource> ScopeStore::listResources(const std::optional<std::string>& type,
                                                      const std::optional<ResourceState>& state) {
    std::vector<ScopedResource> out;
    db_.read([&](common::Database::Lock& db) {
        auto& q = db.prepare(std::string("SELECT ") + kResourceColumns +
                             " FROM resources WHERE (?1 IS NULL OR type = ?1) AND "
                             "(?2 IS NULL OR state = ?2) ORDER BY type, id");
        q.bindOptional(1, type);
        q.bindOptional(2, state ? std::optional<std::string>(stateName(*state)) : std::nullopt);
        while (q.step()) out.push_back(readResource(q));
    });
    return out;
}

std::vector<ResourceKey> ScopeStore::resourcesInScope() {
    std::vector<ResourceKey> out;
    db_.read([&](common::Database::Lock& db) {
        auto& q = db.prepare(
            "SELECT type, id FROM resources WHERE state IN ('ADDED', 'PUBLISHED') ORDER BY type, id");
        while (q.step()) out.push_back({q.text(0), q.text(1)});
    });
    return out;
}

int64_t ScopeStore::resourceCount() { return resourceCounts().total; }

ResourceCounts ScopeStore::resourceCounts() {
    ResourceCounts counts;
    db_.read([&](common::Database::Lock& db) {
        auto& q = db.prepare("SELECT state, n FROM resource_counts WHERE n > 0 ORDER BY state");
        while (q.step()) {
            int64_t n = q.integer(1);
            counts.byState.emplace_back(q.text(0), n);
            counts.total += n;
            if (q.text(0) != stateName(ResourceState::Unpublished)) counts.inScope += n;
        }
    });
    return counts;
}

int64_t ScopeStore::resourcesInScopeCount() {
    int64_t n = 0;
    db_.read([&](common::Database::Lock& db) {
        auto& q = db.prepare("SELECT COALESCE(SUM(n), 0) FROM resource_counts WHERE state <> 'UNPUBLISHED'");
        if (q.step()) n = q.integer(0);
    });
    return n;
}

int64_t ScopeStore::countNotInScope(const std::vector<ResourceKey>& keys) {
    int64_t n = 0;
    db_.read([&](common::Database::Lock& db) {
        for (const auto& key : keys) {
            auto& q = db.prepare("SELECT state FROM resources WHERE type = ? AND id = ?");
            q.bind(1, key.type).bind(2, key.id);
            if (!q.step() || q.text(0) == stateName(ResourceState::Unpublished)) ++n;
        }
    });
    return n;
}

Page<ScopedResource, ResourceKey> ScopeStore::resourcePage(const std::optional<ResourceKey>& after, int limit,
                                                           bool includeUnpublished) {
    Page<ScopedResource, ResourceKey> page;
    limit = std::max(limit, 1);
    const int64_t budget = static_cast<int64_t>(kPageScanFactor) * (limit + 1);
    // Two spellings rather than an optional term, so that each is a range scan of the key.
    std::string sql = std::string("SELECT ") + kResourceColumns + " FROM resources";
    if (after) sql += " WHERE (type, id) > (?2, ?3)";
    sql += " ORDER BY type, id LIMIT ?1";
    std::optional<ResourceKey> lastRead;
    int64_t read = 0;
    db_.read([&](common::Database::Lock& db) {
        auto& q = db.prepare(sql);
        q.bind(1, includeUnpublished ? static_cast<int64_t>(limit) + 1 : budget);
        if (after) q.bind(2, after->type).bind(3, after->id);
        while (page.rows.size() <= static_cast<size_t>(limit) && q.step()) {
            ++read;
            auto row = readResource(q);
            lastRead = row.key;
            if (includeUnpublished || row.state != ResourceState::Unpublished) page.rows.push_back(std::move(row));
        }
    });
    if (page.rows.size() > static_cast<size_t>(limit)) {
        page.rows.resize(static_cast<size_t>(limit));
        page.next = page.rows.back().key;
    } else if (!includeUnpublished && read == budget) {
        page.next = lastRead;  // the scan stopped at its budget: more may follow
    }
    return page;
}

std::optional<NodeRecord> ScopeStore::nodeByIdOrName(const std::string& idOrName) {
    std::optional<NodeRecord> out;
    db_.read([&](common::Database::Lock& db) {
        auto& q = db.prepare(
            "SELECT id, name, endpoint, labels, last_heartbeat, liveness FROM nodes WHERE id = ?1 "
            "OR name = ?1");
        q.bind(1, idOrName);
        if (q.step()) {
            out = NodeRecord{q.text(0), q.text(1), q.text(2), q.text(3), q.integer(4), q.text(5)};
        }
    });
    return out;
}

std::vector<NodeRecord> ScopeStore::nodes() {
    std::vector<NodeRecord> out;
    db_.read([&](common::Database::Lock& db) {
        auto& q = db.prepare(
            "SELECT id, name, endpoint, labels, last_heartbeat, liveness FROM nodes ORDER BY name");
        while (q.step()) {
            out.push_back({q.text(0), q.text(1), q.text(2), q.text(3), q.integer(4), q.text(5)});
        }
    });
    return out;
}

bool ScopeStore::instanceReported(const std::string& instanceId) {
    bool found = false;
    db_.read([&](common::Database::Lock& db) {
        auto& q = db.prepare(
            "SELECT 1 FROM instances i JOIN nodes n ON n.id = i.node_id WHERE i.id = ? AND "
            "i.state = 'RUNNING'");
        q.bind(1, instanceId);
        found = q.step();
    });
    return found;
}

std::optional<InstanceRecord> ScopeStore::instance(const std::string& instanceId) {
    std::optional<InstanceRecord> out;
    db_.read([&](common::Database::Lock& db) {
        auto& q = db.prepare(
            "SELECT id, node_id, service_class, service_name, package_name, state FROM instances WHERE id = ?");
        q.bind(1, instanceId);
        if (q.step()) out = InstanceRecord{q.text(0), q.text(1), q.text(2), q.text(3), q.text(4), q.text(5)};
    });
    return out;
}

std::vector<NodePackage> ScopeStore::nodePackages() {
    std::vector<NodePackage> out;
    db_.read([&](common::Database::Lock& db) {
        auto& q = db.prepare(
            "SELECT node_id, service_class, service_name, service_version, package_name, package_version, status, "
            "installed_seq FROM node_packages ORDER BY installed_seq, node_id");
        while (q.step()) {
            NodePackage p;
            p.nodeId = q.text(0);
            p.package = {q.text(1), q.text(2), q.text(3), q.text(4), q.text(5), "", "", ""};
            p.status = q.text(6);
            p.installedSeq = q.integer(7);
            out.push_back(std::move(p));
        }
    });
    return out;
}

std::optional<std::string> ScopeStore::registerNode(const NodeRegistration& n, int64_t nowMs) {
    std::optional<std::string> replaced;
    db_.transaction([&](common::Database::Lock& db) {
        auto& q = db.prepare("SELECT id FROM nodes WHERE name = ? AND id <> ?");
        q.bind(1, n.name).bind(2, n.id);
        if (q.step()) replaced = q.text(0);
        if (replaced) db.prepare("DELETE FROM nodes WHERE id = ?").bind(1, *replaced).run();
        db.prepare(
              "INSERT INTO nodes(id, name, endpoint, labels, cpus, memory_mb, disk_free_mb, "
              "max_instances, registered_at, last_heartbeat, liveness) VALUES (?, ?, ?, ?, ?, ?, ?, "
              "?, ?, ?, 'ALIVE') ON CONFLICT(id) DO UPDATE SET name = excluded.name, endpoint = "
              "excluded.endpoint, labels = excluded.labels, cpus = excluded.cpus, memory_mb = "
              "excluded.memory_mb, disk_free_mb = excluded.disk_free_mb, max_instances = "
              "excluded.max_instances, last_heartbeat = excluded.last_heartbeat, liveness = 'ALIVE'")
            .bind(1, n.id)
            .bind(2, n.name)
            .bind(3, n.endpoint)
            .bind(4, n.labels)
            .bind(5, n.cpus)
            .bind(6, n.memoryMB)
            .bind(7, n.diskFreeMB)
            .bind(8, n.maxInstances)
            .bind(9, nowMs)
            .bind(10, nowMs)
            .run();
    });
    return replaced;
}

bool ScopeStore::heartbeat(const std::string& id, int64_t sequence, int runningInstances,
                           double load, int64_t diskFreeMB, int64_t nowMs) {
    bool known = false;
    db_.transaction([&](common::Database::Lock& db) {
        db.prepare(
              "UPDATE nodes SET last_heartbeat = ?, heartbeat_seq = MAX(heartbeat_seq, ?), "
              "running_instances = ?, load = ?, disk_free_mb = ?, liveness = 'ALIVE' WHERE id = ?")
            .bind(1, nowMs)
            .bind(2, sequence)
            .bind(3, runningInstances)
            .bind(4, load)
            .bind(5, diskFreeMB)
            .bind(6, id)
            .run();
        known = db.changes() == 1;
    });
    return known;
}

std::vector<NodeStatus> ScopeStore::nodeStatuses() {
    std::vector<NodeStatus> out;
    db_.read([&](common::Database::Lock& db) {
        auto& q = db.prepare(
            "SELECT id, name, endpoint, labels, last_heartbeat, liveness, load, running_instances, "
            "disk_free_mb FROM nodes ORDER BY name");
        while (q.step()) {
            NodeStatus s;
            s.record = {q.text(0), q.text(1), q.text(2), q.text(3), q.integer(4), q.text(5)};
            s.load = q.real(6);
            s.runningInstances = static_cast<int>(q.integer(7));
            s.diskFreeMB = q.integer(8);
            out.push_back(std::move(s));
        }
    });
    return out;
}

int64_t ScopeStore::nodeCount() {
    int64_t n = 0;
    db_.read([&](common::Database::Lock& db) {
        auto& q = db.prepare("SELECT COUNT(*) FROM nodes");
        if (q.step()) n = q.integer(0);
    });
    return n;
}

Page<NodeStatus, std::string> ScopeStore::nodeStatusPage(const std::optional<std::string>& afterName, int limit) {
    Page<NodeStatus, std::string> page;
    limit = std::max(limit, 1);
    std::string sql =
        "SELECT id, name, endpoint, labels, last_heartbeat, liveness, load, running_instances, "
        "disk_free_mb FROM nodes";
    if (afterName) sql += " WHERE name > ?2";
    sql += " ORDER BY name LIMIT ?1";
    db_.read([&](common::Database::Lock& db) {
        auto& q = db.prepare(sql);
        q.bind(1, limit + 1);
        if (afterName) q.bind(2, *afterName);
        while (q.step()) {
            NodeStatus s;
            s.record = {q.text(0), q.text(1), q.text(2), q.text(3), q.integer(4), q.text(5)};
            s.load = q.real(6);
            s.runningInstances = static_cast<int>(q.integer(7));
            s.diskFreeMB = q.integer(8);
            page.rows.push_back(std::move(s));
        }
    });
    if (page.rows.size() > static_cast<size_t>(limit)) {
        page.rows.resize(static_cast<size_t>(limit));
        page.next = page.rows.back().record.name;
    }
    return page;
}

std::vector<std::string> ScopeStore::markSilentNodesLost(int64_t deadlineMs) {
    std::vector<std::string> lost;
    db_.transaction([&](common::Database::Lock& db) {
        auto& q = db.prepare("SELECT id FROM nodes WHERE liveness = 'ALIVE' AND last_heartbeat < ?");
        q.bind(1, deadlineMs);
        while (q.step()) lost.push_back(q.text(0));
        for (const auto& id : lost) {
            db.prepare("UPDATE nodes SET liveness = 'LOST' WHERE id = ?").bind(1, id).run();
        }
    });
    return lost;
}

}  // namespace rm::service
