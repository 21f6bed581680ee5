#include "agent/agent_store.h"

#include <Poco/UUIDGenerator.h>

#include "common/time_util.h"

namespace rm::agent {

using common::Database;

void Doorbell::ring() {
    {
        std::lock_guard lock(mutex_);
        ++count_;
    }
    changed_.notify_all();
}

std::uint64_t Doorbell::count() const {
    std::lock_guard lock(mutex_);
    return count_;
}

void Doorbell::waitFor(std::uint64_t seen, std::chrono::milliseconds timeout,
                       std::stop_token stop) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, stop, timeout, [&] { return count_ != seen; });
}

const char* toString(OperationKind kind) {
    return kind == OperationKind::Deploy ? "Deploy" : "Undeploy";
}

std::string joinNames(const std::vector<std::string>& names) {
    std::string out;
    for (const auto& n : names) out += (out.empty() ? "" : ",") + n;
    return out;
}

std::vector<std::string> splitNames(const std::string& text) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start < text.size()) {
        size_t end = text.find(',', start);
        if (end == std::string::npos) end = text.size();
        if (end > start) out.push_back(text.substr(start, end - start));
        start = end + 1;
    }
    return out;
}

namespace {

// Each migration is applied once, in order; never edit one that has shipped, add another.
const std::vector<std::string> kMigrations = {
    R"(
CREATE TABLE nodes (
    slot TEXT PRIMARY KEY,
    node_id TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE operations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    slot TEXT NOT NULL,
    callback_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    scope TEXT NOT NULL,
    callback_endpoint TEXT NOT NULL,
    clean_state INTEGER NOT NULL,
    whole_scope INTEGER NOT NULL,
    expanded INTEGER NOT NULL,
    status TEXT NOT NULL,
    report_seq INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    closed_ms INTEGER,
    UNIQUE (slot, callback_id)
);
CREATE INDEX operations_open ON operations(status, seq);
CREATE TABLE operation_packages (
    slot TEXT NOT NULL,
    callback_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    service_class TEXT NOT NULL,
    service_name TEXT NOT NULL,
    service_version TEXT NOT NULL,
    package_name TEXT NOT NULL,
    package_version TEXT NOT NULL,
    url TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    depends_on TEXT NOT NULL,
    state TEXT NOT NULL,
    message TEXT NOT NULL,
    final INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (slot, callback_id, position)
);
CREATE TABLE deployed (
    slot TEXT NOT NULL,
    service_class TEXT NOT NULL,
    service_name TEXT NOT NULL,
    package_name TEXT NOT NULL,
    service_version TEXT NOT NULL,
    package_version TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    state TEXT NOT NULL,
    scope TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    callback_id TEXT NOT NULL,
    depends_on TEXT NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (slot, service_class, service_name, package_name)
);
CREATE TABLE outbox (
    entry INTEGER PRIMARY KEY AUTOINCREMENT,
    slot TEXT NOT NULL,
    callback_id TEXT NOT NULL,
    report_seq INTEGER NOT NULL,
    status TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE INDEX outbox_callback ON outbox(slot, callback_id, report_seq);
)"};

Operation readOperation(common::Statement& q) {
    Operation op;
    op.seq = q.integer(0);
    op.slot = q.text(1);
    op.callbackId = q.text(2);
    op.kind = q.text(3) == "Undeploy" ? OperationKind::Undeploy : OperationKind::Deploy;
    op.scope = q.text(4);
    op.callbackEndpoint = q.text(5);
    op.cleanState = q.integer(6) != 0;
    op.wholeScope = q.integer(7) != 0;
    op.expanded = q.integer(8) != 0;
    op.closed = q.text(9) == "CLOSED";
    return op;
}

constexpr const char* kOperationColumns =
    "SELECT seq, slot, callback_id, kind, scope, callback_endpoint, clean_state, whole_scope, "
    "expanded, status FROM operations ";

constexpr const char* kDeployedColumns =
    "SELECT slot, service_class, service_name, service_version, package_name, package_version, "
    "sha256, state, scope, instance_id, callback_id, depends_on FROM deployed ";

DeployedPackage readDeployed(common::Statement& q) {
    DeployedPackage d;
    d.slot = q.text(0);
    d.coords = {q.text(1), q.text(2), q.text(3), q.text(4), q.text(5)};
    d.sha256 = q.text(6);
    d.state = q.text(7);
    d.scope = q.text(8);
    d.instanceId = q.text(9);
    d.callbackId = q.text(10);
    d.dependsOn = splitNames(q.text(11));
    return d;
}

}  // namespace

AgentStore::AgentStore(const std::filesystem::path& dir) : db_(dir / "agent.db", kMigrations) {}

std::string AgentStore::nodeId(const std::string& slot) {
    std::string id;
    db_.transaction([&](Database::Lock& db) {
        auto& q = db.prepare("SELECT node_id FROM nodes WHERE slot = ?");
        q.bind(1, slot);
        if (q.step()) {
            id = q.text(0);
            return;
        }
        id = Poco::UUIDGenerator::defaultGenerator().createRandom().toString();
        db.prepare("INSERT INTO nodes (slot, node_id, created_ms) VALUES (?, ?, ?)")
            .bind(1, slot)
            .bind(2, id)
            .bind(3, common::nowMillis())
            .run();
    });
    return id;
}

void AgentStore::insertPackages(Database::Lock& db, const std::string& slot,
                                const std::string& callbackId,
                                const std::vector<PackageRequest>& packages) {
    int position = 0;
    for (const auto& p : packages) {
        db.prepare(
              "INSERT INTO operation_packages (slot, callback_id, position, service_class, "
              "service_name, "
              "service_version, package_name, package_version, url, sha256, depends_on, state, "
              "message, "
              "final, updated_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'WAITING', '', 0, ?)")
            .bind(1, slot)
            .bind(2, callbackId)
            .bind(3, position++)
            .bind(4, p.coords.serviceClass)
            .bind(5, p.coords.serviceName)
            .bind(6, p.coords.serviceVersion)
            .bind(7, p.coords.packageName)
            .bind(8, p.coords.packageVersion)
            .bind(9, p.url)
            .bind(10, p.sha256)
            .bind(11, joinNames(p.dependsOn))
            .bind(12, common::nowMillis())
            .run();
    }
}

void AgentStore::appendReport(Database::Lock& db, const std::string& slot,
                              const std::string& callbackId, const char* status) {
    db.prepare(
          "UPDATE operations SET report_seq = report_seq + 1 WHERE slot = ? AND callback_id = ?")
        .bind(1, slot)
        .bind(2, callbackId)
        .run();
    db.prepare(
          "INSERT INTO outbox (slot, callback_id, report_seq, status, created_ms) SELECT slot, "
          "callback_id, "
          "report_seq, ?, ? FROM operations WHERE slot = ? AND callback_id = ?")
        .bind(1, status)
        .bind(2, common::nowMillis())
        .bind(3, slot)
        .bind(4, callbackId)
        .run();
}

bool AgentStore::journal(const NewOperation& op) {
    bool created = false;
    db_.transaction([&](Database::Lock& db) {
        auto& q = db.prepare("SELECT kind FROM operations WHERE slot = ? AND callback_id = ?");
        q.bind(1, op.slot).bind(2, op.callbackId);
        if (q.step()) {
            std::string kind = q.text(0);
            if (kind != toString(op.kind)) {
                throw JournalConflict("callbackID '" + op.callbackId + "' already names a " + kind +
                                      " on this node; use a new callbackID for a " +
                                      toString(op.kind));
            }
            return;
        }
        // An empty operation is final from the start: it closes in the same transaction.
        bool empty = op.packages.empty() && !op.wholeScope;
        db.prepare(
              "INSERT INTO operations (slot, callback_id, kind, scope, callback_endpoint, "
              "clean_state, "
              "whole_scope, expanded, status, report_seq, received_ms) VALUES (?, ?, ?, ?, ?, ?, "
              "?, ?, ?, 0, ?)")
            .bind(1, op.slot)
            .bind(2, op.callbackId)
            .bind(3, toString(op.kind))
            .bind(4, op.scope)
            .bind(5, op.callbackEndpoint)
            .bind(6, op.cleanState ? 1 : 0)
            .bind(7, op.wholeScope ? 1 : 0)
            .bind(8, op.wholeScope ? 0 : 1)
            .bind(9, empty ? "CLOSED" : "OPEN")
            .bind(10, common::nowMillis())
            .run();
        insertPackages(db, op.slot, op.callbackId, op.packages);
        appendReport(db, op.slot, op.callbackId, empty ? "CLOSED" : "OPEN");
        created = true;
    });
    if (created) {
        work_.ring();
        outbox_.ring();
    }
    return created;
}

std::vector<OperationPackage> AgentStore::packagesOf(Database::Lock& db, const std::string& slot,
                                                     const std::string& callbackId) {
    std::vector<OperationPackage> out;
    auto& q = db.prepare(
        "SELECT position, service_class, service_name, service_version, package_name, "
        "package_version, url, "
        "sha256, depends_on, state, message, final FROM operation_packages WHERE slot = ? AND "
        "callback_id = ? "
        "ORDER BY position");
    q.bind(1, slot).bind(2, callbackId);
    while (q.step()) {
        OperationPackage p;
        p.position = static_cast<int>(q.integer(0));
        p.request.coords = {q.text(1), q.text(2), q.text(3), q.text(4), q.text(5)};
        p.request.url = q.text(6);
        p.request.sha256 = q.text(7);
        p.request.dependsOn = splitNames(q.text(8));
        p.state = q.text(9);
        p.message = q.text(10);
        p.final = q.integer(11) != 0;
        out.push_back(std::move(p));
    }
    return out;
}

std::vector<Operation> AgentStore::openOperations() {
    std::vector<Operation> out;
    db_.read([&](Database::Lock& db) {
        auto& q = db.prepare(std::string(kOperationColumns) + "WHERE status = 'OPEN' ORDER BY seq");
        while (q.step()) out.push_back(readOperation(q));
        for (auto& op : out) op.packages = packagesOf(db, op.slot, op.callbackId);
    });
    return out;
}

std::optional<Operation> AgentStore::operation(const std::string& slot,
                                               const std::string& callbackId) {
    std::optional<Operation> out;
    db_.read([&](Database::Lock& db) {
        auto& q = db.prepare(std::string(kOperationColumns) + "WHERE slot = ? AND callback_id = ?");
        q.bind(1, slot).bind(2, callbackId);
        if (!q.step()) return;
        out = readOperation(q);
        out->packages = packagesOf(db, slot, callbackId);
    });
    return out;
}

void AgentStore::expand(const std::string& slot, const std::string& callbackId,
                        const std::vector<PackageRequest>& packages) {
    db_.transaction([&](Database::Lock& db) {
        auto& q = db.prepare("SELECT expanded FROM operations WHERE slot = ? AND callback_id = ?");
        q.bind(1, slot).bind(2, callbackId);
        if (!q.step() || q.integer(0) != 0) return;
        insertPackages(db, slot, callbackId, packages);
        bool empty = packages.empty();
        db.prepare(
              "UPDATE operations SET expanded = 1, status = ?, closed_ms = ? WHERE slot = ? AND "
              "callback_id = ?")
            .bind(1, empty ? "CLOSED" : "OPEN")
            .bind(2, common::nowMillis())
            .bind(3, slot)
            .bind(4, callbackId)
            .run();
        appendReport(db, slot, callbackId, empty ? "CLOSED" : "OPEN");
    });
    outbox_.ring();
}

void AgentStore::record(const std::string& slot, const std::string& callbackId, int position,
                        const StateChange& change) {
    db_.transaction([&](Database::Lock& db) {
        db.prepare(
              "UPDATE operation_packages SET state = ?, message = ?, final = ?, updated_ms = ? "
              "WHERE slot = ? "
              "AND callback_id = ? AND position = ?")
            .bind(1, change.state)
            .bind(2, change.message)
            .bind(3, change.final ? 1 : 0)
            .bind(4, common::nowMillis())
            .bind(5, slot)
            .bind(6, callbackId)
            .bind(7, position)
            .run();
        if (db.changes() != 1) {
            throw common::StorageError("no package " + std::to_string(position) + " in operation " +
                                       callbackId);
        }
        if (const auto& d = change.upsertDeployed) {
            db.prepare(
                  "INSERT INTO deployed (slot, service_class, service_name, package_name, "
                  "service_version, "
                  "package_version, sha256, state, scope, instance_id, callback_id, depends_on, "
                  "updated_ms) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (slot, "
                  "service_class, service_name, "
                  "package_name) DO UPDATE SET service_version = excluded.service_version, "
                  "package_version = "
                  "excluded.package_version, sha256 = excluded.sha256, state = excluded.state, "
                  "scope = "
                  "excluded.scope, instance_id = excluded.instance_id, callback_id = "
                  "excluded.callback_id, "
                  "depends_on = excluded.depends_on, updated_ms = excluded.updated_ms")
                .bind(1, slot)
                .bind(2, d->coords.serviceClass)
                .bind(3, d->coords.serviceName)
                .bind(4, d->coords.packageName)
                .bind(5, d->coords.serviceVersion)
                .bind(6, d->coords.packageVersion)
                .bind(7, d->sha256)
                .bind(8, d->state)
                .bind(9, d->scope)
                .bind(10, d->instanceId)
                .bind(11, d->callbackId)
                .bind(12, joinNames(d->dependsOn))
                .bind(13, common::nowMillis())
                .run();
        }
        if (change.removeDeployed) {
            auto pkg = packagesOf(db, slot, callbackId);
            for (const auto& p : pkg) {
                if (p.position != position) continue;
                db.prepare(
                      "DELETE FROM deployed WHERE slot = ? AND service_class = ? AND service_name "
                      "= ? AND "
                      "package_name = ?")
                    .bind(1, slot)
                    .bind(2, p.request.coords.serviceClass)
                    .bind(3, p.request.coords.serviceName)
                    .bind(4, p.request.coords.packageName)
                    .run();
            }
        }
        auto& open = db.prepare(
            "SELECT COUNT(*) FROM operation_packages WHERE slot = ? AND callback_id = ? AND final "
            "= 0");
        open.bind(1, slot).bind(2, callbackId);
        open.step();
        bool done = open.integer(0) == 0;
        if (done) {
            db.prepare(
                  "UPDATE operations SET status = 'CLOSED', closed_ms = ? WHERE slot = ? AND "
                  "callback_id = ?")
                .bind(1, common::nowMillis())
                .bind(2, slot)
                .bind(3, callbackId)
                .run();
        }
        appendReport(db, slot, callbackId, done ? "CLOSED" : "OPEN");
    });
    outbox_.ring();
}

std::vector<DeployedPackage> AgentStore::deployed(const std::string& slot) {
    std::vector<DeployedPackage> out;
    db_.read([&](Database::Lock& db) {
        auto& q = db.prepare(std::string(kDeployedColumns) +
                             "WHERE slot = ? ORDER BY service_class, service_name, package_name");
        q.bind(1, slot);
        while (q.step()) out.push_back(readDeployed(q));
    });
    return out;
}

std::vector<DeployedPackage> AgentStore::allDeployed() {
    std::vector<DeployedPackage> out;
    db_.read([&](Database::Lock& db) {
        auto& q = db.prepare(std::string(kDeployedColumns) +
                             "ORDER BY slot, service_class, service_name, package_name");
        while (q.step()) out.push_back(readDeployed(q));
    });
    return out;
}

std::optional<DeployedPackage> AgentStore::deployedPackage(
    const std::string& slot, const deployer::PackageCoordinates& coords) {
    std::optional<DeployedPackage> out;
    db_.read([&](Database::Lock& db) {
        auto& q = db.prepare(
            std::string(kDeployedColumns) +
            "WHERE slot = ? AND service_class = ? AND service_name = ? AND package_name = ?");
        q.bind(1, slot)
            .bind(2, coords.serviceClass)
            .bind(3, coords.serviceName)
            .bind(4, coords.packageName);
        if (q.step()) out = readDeployed(q);
    });
    return out;
}

std::vector<PendingCallback> AgentStore::pendingCallbacks() {
    std::vector<PendingCallback> out;
    db_.read([&](Database::Lock& db) {
        auto& q = db.prepare(
            "SELECT slot, callback_id, MIN(entry), MAX(report_seq), COUNT(*) FROM outbox GROUP BY "
            "slot, "
            "callback_id ORDER BY MIN(entry)");
        while (q.step())
            out.push_back({q.text(0), q.text(1), q.integer(2), q.integer(3), q.integer(4)});
    });
    return out;
}

std::optional<ReportSnapshot> AgentStore::snapshot(const std::string& slot,
                                                   const std::string& callbackId) {
    std::optional<ReportSnapshot> out;
    db_.read([&](Database::Lock& db) {
        auto& q = db.prepare(
            "SELECT o.report_seq, o.status, p.callback_endpoint, n.node_id FROM outbox o JOIN "
            "operations p ON "
            "p.slot = o.slot AND p.callback_id = o.callback_id LEFT JOIN nodes n ON n.slot = "
            "o.slot WHERE o.slot = "
            "? AND o.callback_id = ? ORDER BY o.report_seq DESC LIMIT 1");
        q.bind(1, slot).bind(2, callbackId);
        if (!q.step()) return;
        ReportSnapshot s;
        s.slot = slot;
        s.callbackId = callbackId;
        s.sequence = q.integer(0);
        s.status = q.text(1);
        s.callbackEndpoint = q.text(2);
        s.nodeId = q.isNull(3) ? std::string() : q.text(3);
        s.packages = packagesOf(db, slot, callbackId);
        out = std::move(s);
    });
    return out;
}

void AgentStore::acknowledge(const std::string& slot, const std::string& callbackId,
                             std::int64_t sequence) {
    db_.transaction([&](Database::Lock& db) {
        db.prepare("DELETE FROM outbox WHERE slot = ? AND callback_id = ? AND report_seq <= ?")
            .bind(1, slot)
            .bind(2, callbackId)
            .bind(3, sequence)
            .run();
    });
}

std::int64_t AgentStore::outboxSize() {
    std::int64_t n = 0;
    db_.read([&](Database::Lock& db) {
        auto& q = db.prepare("SELECT COUNT(*) FROM outbox");
        if (q.step()) n = q.integer(0);
    });
    return n;
}

}  // namespace rm::agent
