#include "service/deployments.h"

#include <algorithm>
#include <atomic>
#include <functional>
#include <map>
#include <set>
#include <thread>

#include "common/soap_server.h"
#include "common/pki.h"
#include "common/tls.h"
#include "common/time_util.h"
#include "soapDeployerBindingProxy.h"

namespace rm::service {

using common::Log;
using common::LogLevel;

namespace {

// A package that ends in one of these states is deployed as asked.
bool isSuccessfulFinalState(const std::string& status) {
    return status == "RUNNING" || status == "ACTIVATED" || status == "NOTVERIFIED" ||
           status == "ALREADYDEPLOYED" || status == "UNDEPLOYED";
}

std::string hostOf(const std::string& endpoint) {
    auto start = endpoint.find("://");
    std::string rest = start == std::string::npos ? endpoint : endpoint.substr(start + 3);
    return rest.substr(0, rest.find('/'));
}

std::vector<std::string> splitCommas(const std::string& text) {
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

// The ID of the RunningInstance resource of a package running on a node.
std::string instanceIdOf(const std::string& nodeId, const std::string& serviceName,
                         const std::string& packageName) {
    return nodeId + ":" + serviceName + "." + packageName;
}

// A package a node reports healthy in its final state is deployed there: remembered so that a
// later removal knows what to undeploy where.
void recordDeployed(common::Database::Lock& db, const std::string& nodeId,
                    const std::vector<NodePackageReport>& packages, int64_t now) {
    for (const auto& p : packages) {
        if (p.status != "RUNNING" && p.status != "ACTIVATED" && p.status != "NOTVERIFIED" &&
            p.status != "ALREADYDEPLOYED") {
            continue;
        }
        db.prepare(
              "INSERT INTO node_packages(node_id, service_class, service_name, service_version, "
              "package_name, "
              "package_version, status, installed_seq, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, "
              "(SELECT "
              "COALESCE(MAX(installed_seq), 0) + 1 FROM node_packages), ?) ON CONFLICT(node_id, "
              "service_class, "
              "service_name, package_name) DO UPDATE SET service_version = "
              "excluded.service_version, "
              "package_version = excluded.package_version, status = excluded.status, updated_at = "
              "excluded.updated_at, installed_seq = CASE WHEN excluded.status = 'ALREADYDEPLOYED' "
              "THEN "
              "installed_seq ELSE excluded.installed_seq END")
            .bind(1, nodeId)
            .bind(2, p.serviceClass)
            .bind(3, p.serviceName)
            .bind(4, p.serviceVersion)
            .bind(5, p.packageName)
            .bind(6, p.packageVersion)
            .bind(7, p.status)
            .bind(8, now)
            .run();
    }
}

// Undeployed packages are gone from the node, and so are their running instances.
void recordUndeployed(common::Database::Lock& db, const std::string& nodeId,
                      const std::vector<NodePackageReport>& undeployed) {
    for (const auto& p : undeployed) {
        db.prepare(
              "DELETE FROM node_packages WHERE node_id = ? AND service_class = ? AND service_name "
              "= ? AND "
              "package_name = ?")
            .bind(1, nodeId)
            .bind(2, p.serviceClass)
            .bind(3, p.serviceName)
            .bind(4, p.packageName)
            .run();
        db.prepare("DELETE FROM instances WHERE id = ?")
            .bind(1, instanceIdOf(nodeId, p.serviceName, p.packageName))
            .run();
    }
}

// The node closed its Undeploy report: each removal service of the session on that node is done,
// or failed naming the first of its packages that was not removed. NOTUNDEPLOYABLE is a done
// removal: the node keeps a package another deployed package still needs, as it must.
void closeUndeployServices(common::Database::Lock& db, const std::string& sessionId,
                           const std::string& nodeId,
                           const std::vector<NodePackageReport>& reported) {
    std::vector<int64_t> seqs;
    {
        auto& q = db.prepare(
            "SELECT seq FROM session_services WHERE session_id = ? AND deployed_on = ? AND status "
            "= 'DEPLOYING'");
        q.bind(1, sessionId).bind(2, nodeId);
        while (q.step()) seqs.push_back(q.integer(0));
    }
    for (int64_t seq : seqs) {
        std::string failure;
        auto& q = db.prepare(
            "SELECT service_class, service_name, package_name, package_version FROM "
            "session_dependencies WHERE "
            "session_id = ? AND service_seq = ? AND kind = 'resolved' ORDER BY seq");
        q.bind(1, sessionId).bind(2, seq);
        while (q.step() && failure.empty()) {
            auto it =
                std::find_if(reported.begin(), reported.end(), [&](const NodePackageReport& p) {
                    return p.serviceClass == q.text(0) && p.serviceName == q.text(1) &&
                           p.packageName == q.text(2);
                });
            if (it == reported.end()) {
                failure = "package " + q.text(2) + " " + q.text(3) +
                          " is missing from the node's closed report";
            } else if (it->status != "UNDEPLOYED" && it->status != "NOTUNDEPLOYABLE") {
                failure = "package " + it->packageName + " " + it->packageVersion + " ended " +
                          it->status + (it->message.empty() ? "" : ": " + it->message);
            }
        }
        db.prepare(
              "UPDATE session_services SET status = ?, error = ? WHERE session_id = ? AND seq = ? "
              "AND status = "
              "'DEPLOYING'")
            .bind(1, failure.empty() ? "DONE" : "FAILED")
            .bind(2, failure.empty() ? std::string("-") : failure)
            .bind(3, sessionId)
            .bind(4, seq)
            .run();
    }
}

// The outbox entry of one Deploy or Undeploy call, sent by the dispatcher until acknowledged.
void insertOutboxCall(common::Database::Lock& db, const std::string& callbackId,
                      const std::string& sessionId, int serviceSeq, const NodeStatus& node,
                      const char* kind, int64_t now) {
    db.prepare(
          "INSERT OR IGNORE INTO deployments(callback_id, session_id, service_seq, node_id, "
          "node_host, "
          "endpoint, kind, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
        .bind(1, callbackId)
        .bind(2, sessionId)
        .bind(3, serviceSeq)
        .bind(4, node.record.id)
        .bind(5, hostOf(node.record.endpoint))
        .bind(6, node.record.endpoint)
        .bind(7, kind)
        .bind(8, now)
        .run();
}

// A package of a call, shown WAITING in the report until the node says otherwise.
void insertWaitingPackage(common::Database::Lock& db, const std::string& callbackId, int seq,
                          const ServiceDependency& p) {
    db.prepare(
          "INSERT OR IGNORE INTO deployment_packages(callback_id, seq, service_class, "
          "service_name, "
          "service_version, package_name, package_version, status, message) VALUES (?, ?, ?, ?, ?, "
          "?, ?, 'WAITING', 'the node has not reported yet')")
        .bind(1, callbackId)
        .bind(2, seq)
        .bind(3, p.serviceClass)
        .bind(4, p.serviceName)
        .bind(5, p.serviceVersion)
        .bind(6, p.packageName)
        .bind(7, p.packageVersion)
        .run();
}

void markServiceInFlight(common::Database::Lock& db, const std::string& sessionId, int serviceSeq,
                         const std::string& nodeId) {
    db.prepare(
          "UPDATE session_services SET status = 'DEPLOYING', deployed_on = ? WHERE session_id = ? "
          "AND "
          "seq = ? AND status = 'WAITING'")
        .bind(1, nodeId)
        .bind(2, sessionId)
        .bind(3, serviceSeq)
        .run();
}

void touchSession(common::Database::Lock& db, const std::string& sessionId, int64_t now) {
    db.prepare("UPDATE sessions SET updated_at = MAX(updated_at, ?) WHERE id = ?")
        .bind(1, now)
        .bind(2, sessionId)
        .run();
}

}  // namespace

Deployments::Deployments(ScopeStore& store, common::Logger& logger, common::FaultPoints* faults,
                         common::TlsClientOptions tls, std::string callbackSecret)
    : store_(store),
      logger_(logger),
      faults_(faults),
      tls_(std::move(tls)),
      callbackSecret_(callbackSecret.empty() ? common::pki::randomHex(32) : std::move(callbackSecret)) {}

std::string Deployments::sealCallbackId(const std::string& base) const {
    return base + "-" + common::pki::hmacSha256Hex(callbackSecret_, base).substr(0, 24);
}

Deployments::~Deployments() = default;

void Deployments::deploy(const Session& session, const SessionService& service,
                         const NodeStatus& node) {
    std::string callbackId = session.id + "-" + std::to_string(service.seq);
    int64_t now = common::nowMillis();
    store_.database().transaction([&](common::Database::Lock& db) {
        {
            // A service rescheduled after its node went LOST needs a callback ID of its own: the
            // abandoned one may still report, and is then ignored.
            auto& q = db.prepare(
                "SELECT COUNT(*) FROM deployments WHERE session_id = ? AND service_seq = ? AND "
                "kind = 'Deploy' "
                "AND call_state = 'ABANDONED'");
            q.bind(1, session.id).bind(2, service.seq);
            if (q.step() && q.integer(0) > 0) callbackId += "-r" + std::to_string(q.integer(0));
        }
        callbackId = sealCallbackId(callbackId);
        insertOutboxCall(db, callbackId, session.id, service.seq, node, "Deploy", now);
        int seq = 0;
        for (const auto& p : service.plan.resolvedDependencies) {
            insertWaitingPackage(db, callbackId, seq++, p);
        }
        markServiceInFlight(db, session.id, service.seq, node.record.id);
        touchSession(db, session.id, now);
    });
    Log(logger_, LogLevel::info, "deployment_planned")
        .kv("session", session.id)
        .kv("callback", callbackId)
        .kv("node", node.record.id)
        .kv("service", service.plan.serviceClass + "/" + service.plan.serviceName + "/" +
                           service.plan.serviceVersion)
        .kv("packages", service.plan.resolvedDependencies.size());
    wake();
}

void Deployments::undeploy(const Session& session, const std::vector<SessionService>& services,
                           const NodeStatus& node) {
    if (services.empty()) return;
    // One call per node and session: named after the first service, so a retried planning step
    // finds the same outbox entry.
    std::string callbackId = sealCallbackId(session.id + "-u" + std::to_string(services.front().seq));
    int64_t now = common::nowMillis();
    size_t packageCount = 0;
    store_.database().transaction([&](common::Database::Lock& db) {
        insertOutboxCall(db, callbackId, session.id, services.front().seq, node, "Undeploy", now);
        std::set<std::string> listed;
        int seq = 0;
        for (const auto& service : services) {
            for (const auto& p : service.plan.resolvedDependencies) {
                if (!listed.insert(p.serviceClass + "/" + p.serviceName + "/" + p.packageName)
                         .second)
                    continue;
                insertWaitingPackage(db, callbackId, seq++, p);
            }
            markServiceInFlight(db, session.id, service.seq, node.record.id);
        }
        packageCount = listed.size();
        touchSession(db, session.id, now);
    });
    Log(logger_, LogLevel::info, "undeployment_planned")
        .kv("session", session.id)
        .kv("callback", callbackId)
        .kv("node", node.record.id)
        .kv("services", services.size())
        .kv("packages", packageCount);
    wake();
}

std::optional<std::pair<std::string, std::string>> Deployments::undeployOutcome(
    const std::string& sessionId, const std::string& nodeId, const ServiceDependency& package) {
    std::optional<std::pair<std::string, std::string>> out;
    store_.database().read([&](common::Database::Lock& db) {
        auto& q = db.prepare(
            "SELECT p.status, p.message FROM deployments d JOIN deployment_packages p ON "
            "p.callback_id = "
            "d.callback_id WHERE d.session_id = ? AND d.node_id = ? AND d.kind = 'Undeploy' AND "
            "p.service_class = ? "
            "AND p.service_name = ? AND p.package_name = ?");
        q.bind(1, sessionId)
            .bind(2, nodeId)
            .bind(3, package.serviceClass)
            .bind(4, package.serviceName)
            .bind(5, package.packageName);
        if (q.step()) out = std::make_pair(q.text(0), q.text(1));
    });
    return out;
}

bool Deployments::allNodesClosed(const std::string& sessionId) {
    bool closed = true;
    store_.database().read([&](common::Database::Lock& db) {
        auto& q = db.prepare(
            "SELECT COUNT(*) FROM deployments WHERE session_id = ? AND report_status <> 'CLOSED' "
            "AND "
            "call_state <> 'ABANDONED'");
        q.bind(1, sessionId);
        closed = q.step() && q.integer(0) == 0;
    });
    return closed;
}

Deployments::ReportOutcome Deployments::applyReport(const std::string& callbackId,
                                                    const std::string& nodeId, int64_t sequence,
                                                    const std::string& status,
                                                    const std::vector<NodePackageReport>& packages,
                                                    std::string& sessionId) {
    ReportOutcome outcome = ReportOutcome::Unknown;
    int64_t now = common::nowMillis();
    std::vector<NodePackageReport> running;
    std::vector<NodePackageReport> undeployed;
    // A move the state machine refuses is a bug to log, never a reason to refuse the report:
    // the agent would resend it forever.
    auto moveInstance = [&](const ResourceKey& key, const std::function<void()>& move) {
        try {
            move();
        } catch (const IllegalTransition& e) {
            Log(logger_, LogLevel::error, "illegal_transition_refused")
                .kv("type", key.type)
                .kv("id", key.id)
                .kv("error", e.what());
        }
    };
    store_.database().transaction([&](common::Database::Lock& db) {
        int serviceSeq = 0;
        bool isUndeploy = false;
        {
            auto& q = db.prepare(
                "SELECT d.session_id, d.service_seq, d.report_seq, d.call_state, d.kind, "
                "COALESCE(d.report_status, ''), s.status FROM deployments d JOIN sessions s ON "
                "s.id = d.session_id WHERE d.callback_id = ? AND d.node_id = ?");
            q.bind(1, callbackId).bind(2, nodeId);
            if (!q.step()) return;
            sessionId = q.text(0);
            serviceSeq = static_cast<int>(q.integer(1));
            isUndeploy = q.text(4) == "Undeploy";
            if (sequence <= q.integer(2) || q.text(3) == "ABANDONED") {
                outcome = ReportOutcome::Duplicate;
                return;
            }
            // A closed report is final, and a closed session's report is history: nothing sent
            // later may rewrite either.
            if (q.text(5) == "CLOSED" || q.text(6) == "CLOSED") {
                outcome = ReportOutcome::Closed;
                return;
            }
        }
        outcome = ReportOutcome::Applied;
        db.prepare(
              "UPDATE deployments SET report_status = ?, report_seq = ?, report_at = ?, call_state "
              "= "
              "CASE WHEN call_state = 'PENDING' THEN 'ACKED' ELSE call_state END WHERE callback_id "
              "= ?")
            .bind(1, status)
            .bind(2, sequence)
            .bind(3, now)
            .bind(4, callbackId)
            .run();
        db.prepare("DELETE FROM deployment_packages WHERE callback_id = ?")
            .bind(1, callbackId)
            .run();
        int seq = 0;
        std::string failure;
        for (const auto& p : packages) {
            db.prepare(
                  "INSERT INTO deployment_packages(callback_id, seq, service_class, service_name, "
                  "service_version, "
                  "package_name, package_version, status, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, "
                  "?)")
                .bind(1, callbackId)
                .bind(2, seq++)
                .bind(3, p.serviceClass)
                .bind(4, p.serviceName)
                .bind(5, p.serviceVersion)
                .bind(6, p.packageName)
                .bind(7, p.packageVersion)
                .bind(8, p.status)
                .bind(9, p.message)
                .run();
            if (isUndeploy) {
                if (p.status == "UNDEPLOYED") undeployed.push_back(p);
                continue;
            }
            if (status == "CLOSED" && !isSuccessfulFinalState(p.status) && failure.empty()) {
                failure = "package " + p.packageName + " " + p.packageVersion + " ended " +
                          p.status + (p.message.empty() ? "" : ": " + p.message);
            }
            if (status == "CLOSED" && p.status == "RUNNING") running.push_back(p);
        }
        if (isUndeploy) {
            recordUndeployed(db, nodeId, undeployed);
            if (status == "CLOSED") closeUndeployServices(db, sessionId, nodeId, packages);
        } else {
            recordDeployed(db, nodeId, packages, now);
        }
        if (status == "CLOSED" && !isUndeploy) {
            db.prepare(
                  "UPDATE session_services SET status = ?, error = ? WHERE session_id = ? AND seq "
                  "= ? AND "
                  "status = 'DEPLOYING'")
                .bind(1, failure.empty() ? "DONE" : "FAILED")
                .bind(2, failure.empty() ? std::string("-") : failure)
                .bind(3, sessionId)
                .bind(4, serviceSeq)
                .run();
        }
        // A RUNNING package is a running instance the node now reports.
        for (const auto& p : running) {
            std::string instanceId = instanceIdOf(nodeId, p.serviceName, p.packageName);
            db.prepare(
                  "INSERT INTO instances(id, node_id, service_class, service_name, package_name, "
                  "state, updated_at) "
                  "VALUES (?, ?, ?, ?, ?, 'RUNNING', ?) ON CONFLICT(id) DO UPDATE SET state = "
                  "'RUNNING', "
                  "updated_at = excluded.updated_at")
                .bind(1, instanceId)
                .bind(2, nodeId)
                .bind(3, p.serviceClass)
                .bind(4, p.serviceName)
                .bind(5, p.packageName)
                .bind(6, now)
                .run();
        }
        touchSession(db, sessionId, now);
        // Running instances join the scope as resources (each move checked by the state machine),
        // and undeployed ones leave it, in the report's own transaction: a crash between the two
        // would otherwise lose them, since the agent's resend is then ignored as a duplicate.
        for (const auto& p : running) {
            std::string instanceId = instanceIdOf(nodeId, p.serviceName, p.packageName);
            ResourceKey key{"RunningInstance", instanceId};
            auto current = store_.resource(key);
            if (current && isInScope(current->state)) continue;
            moveInstance(key, [&] { store_.addResourceDirectly(key, nodeId, sessionId, now); });
        }
        for (const auto& p : undeployed) {
            ResourceKey key{"RunningInstance", instanceIdOf(nodeId, p.serviceName, p.packageName)};
            moveInstance(key, [&] { store_.removeResourceDirectly(key, sessionId, now); });
        }
        // Everything written, nothing committed: error/drop roll the report back (the agent
        // resends).
        common::checkFault(faults_, "rm.mid_report_commit");
    });
    return outcome;
}

std::vector<std::string> Deployments::nodeLost(const std::string& nodeId, bool reschedule) {
    std::set<std::string> sessions;
    int64_t now = common::nowMillis();
    store_.database().transaction([&](common::Database::Lock& db) {
        struct Open {
            std::string session, callback;
            int64_t seq;
            bool undeploy;
        };
        std::vector<Open> open;
        {
            auto& q = db.prepare(
                "SELECT session_id, service_seq, kind, callback_id FROM deployments WHERE node_id "
                "= ? AND "
                "report_status <> 'CLOSED' AND call_state <> 'ABANDONED'");
            q.bind(1, nodeId);
            while (q.step())
                open.push_back({q.text(0), q.text(3), q.integer(1), q.text(2) == "Undeploy"});
        }
        for (const auto& [session, callback, seq, undeploy] : open) {
            sessions.insert(session);
            if (undeploy) {
                // Every service of the session on that node shares the call.
                db.prepare(
                      "UPDATE session_services SET status = 'FAILED', error = ? WHERE session_id = "
                      "? AND "
                      "deployed_on = ? AND status IN ('WAITING', 'DEPLOYING')")
                    .bind(1, "node " + nodeId +
                                 " went LOST (no heartbeat) before it closed its report: its "
                                 "packages may still be "
                                 "deployed there; remove the service again when the node is back")
                    .bind(2, session)
                    .bind(3, nodeId)
                    .run();
                touchSession(db, session, now);
                continue;
            }
            if (reschedule) {
                // Back to WAITING: the session processor chooses another live node.
                db.prepare(
                      "UPDATE session_services SET status = 'WAITING', deployed_on = '', error = "
                      "'-' WHERE "
                      "session_id = ? AND seq = ? AND status = 'DEPLOYING'")
                    .bind(1, session)
                    .bind(2, seq)
                    .run();
                db.prepare(
                      "UPDATE deployment_packages SET message = ? WHERE callback_id = ? AND status "
                      "IN ('WAITING', "
                      "'DEPLOYED')")
                    .bind(1,
                          "node went LOST before it closed its report; the service was rescheduled "
                          "on another node")
                    .bind(2, callback)
                    .run();
                touchSession(db, session, now);
                continue;
            }
            db.prepare(
                  "UPDATE session_services SET status = 'FAILED', error = ? WHERE session_id = ? "
                  "AND seq = ? AND "
                  "status IN ('WAITING', 'DEPLOYING')")
                .bind(1, "node " + nodeId + " went LOST (no heartbeat) before it closed its report")
                .bind(2, session)
                .bind(3, seq)
                .run();
            touchSession(db, session, now);
        }
        db.prepare(
              "UPDATE deployments SET call_state = 'ABANDONED' WHERE node_id = ? AND report_status "
              "<> 'CLOSED'")
            .bind(1, nodeId)
            .run();
        db.prepare("UPDATE instances SET state = 'LOST', updated_at = ? WHERE node_id = ?")
            .bind(1, now)
            .bind(2, nodeId)
            .run();
    });
    return {sessions.begin(), sessions.end()};
}

std::vector<reports::GhnActivity> Deployments::activity(const std::string& sessionId) {
    std::vector<reports::GhnActivity> out;
    store_.database().read([&](common::Database::Lock& db) {
        // One GHN entry per node; a node with several services of the session lists all packages.
        auto& q = db.prepare(
            "SELECT d.callback_id, d.node_id, d.node_host, d.report_status, d.report_at, "
            "d.call_state, p.service_class, "
            "p.service_name, p.service_version, p.package_name, p.package_version, p.status, "
            "p.message FROM "
            "deployments d JOIN deployment_packages p ON p.callback_id = d.callback_id WHERE "
            "d.session_id = ? "
            "ORDER BY d.node_id, d.service_seq, p.seq");
        q.bind(1, sessionId);
        while (q.step()) {
            std::string nodeId = q.text(1);
            if (out.empty() || out.back().id != nodeId) {
                reports::GhnActivity ghn;
                ghn.host = q.text(2);
                ghn.id = nodeId;
                ghn.nodeStatus = "CLOSED";
                out.push_back(std::move(ghn));
            }
            auto& ghn = out.back();
            std::string reportStatus = q.text(3);
            if (reportStatus != "CLOSED" && q.text(5) != "ABANDONED") ghn.nodeStatus = "OPEN";
            int64_t at = q.integer(4);
            if (at > 0) {
                std::string when = common::isoTimestamp(common::fromUnixMillis(at));
                if (when > ghn.lastReportReceivedOn) ghn.lastReportReceivedOn = when;
            }
            ghn.packages.push_back(
                {q.text(6), q.text(7), q.text(8), q.text(9), q.text(10), q.text(11), q.text(12)});
        }
    });
    return out;
}

std::string Deployments::unfinishedNodes(const std::string& sessionId) {
    std::string names;
    store_.database().read([&](common::Database::Lock& db) {
        auto& q = db.prepare(
            "SELECT DISTINCT d.node_id, COALESCE(n.name, ''), d.report_status FROM deployments d "
            "LEFT JOIN nodes n ON "
            "n.id = d.node_id WHERE d.session_id = ? AND d.report_status <> 'CLOSED' AND "
            "d.call_state <> 'ABANDONED'");
        q.bind(1, sessionId);
        while (q.step()) {
            std::string name = q.text(1).empty() ? q.text(0) : q.text(1) + " (" + q.text(0) + ")";
            names += (names.empty() ? "" : "; ") + std::string("node ") + name +
                     (q.text(2).empty() ? " did not report" : " did not close its report");
        }
    });
    return names;
}

void Deployments::wake() {
    {
        std::lock_guard lock(mutex_);
        woken_ = true;
    }
    wake_.notify_all();
}

std::vector<Deployments::PendingCall> Deployments::dueCalls(int64_t nowMs) {
    std::vector<PendingCall> calls;
    store_.database().read([&](common::Database::Lock& db) {
        auto& q = db.prepare(
            // The node's endpoint as it registered last: an agent that came back on another port
            // since the call was planned gets it there.
            "SELECT d.callback_id, d.session_id, COALESCE(n.endpoint, d.endpoint), d.node_id, "
            "d.kind, d.service_seq, d.attempts FROM deployments d LEFT JOIN nodes n ON n.id = "
            "d.node_id WHERE d.call_state = 'PENDING' AND d.next_attempt_at <= ? ORDER BY "
            "d.next_attempt_at LIMIT ?");
        q.bind(1, nowMs);
        q.bind(2, static_cast<int64_t>(kCallsPerBatch));
        while (q.step()) {
            calls.push_back({q.text(0), q.text(1), q.text(2), q.text(3), q.text(4),
                             static_cast<int>(q.integer(5)), static_cast<int>(q.integer(6))});
        }
    });
    return calls;
}

DeployerBindingProxy& Deployments::laneProxy(size_t lane) {
    while (proxies_.size() <= lane) {
        auto proxy = std::make_unique<DeployerBindingProxy>();
        common::ServerOptions limits;
        limits.ioTimeout = std::chrono::seconds(5);
        limits.transferTimeout = std::chrono::seconds(15);
        common::applyXmlLimits(proxy->soap, limits);
        common::configureTlsClient(proxy->soap, tls_);
        proxies_.push_back(std::move(proxy));
    }
    return *proxies_[lane];
}

namespace {

DeployerBindingProxy& aimAt(DeployerBindingProxy& proxy, const std::string& endpoint,
                            const std::string& nodeId) {
    proxy.destroy();
    // The agent must prove it is the node it registered as, whatever answers at that address.
    common::expectPeerIdentity(proxy.soap, nodeId);
    // The pending call outlives the exchange, so its endpoint string can be lent to gSOAP.
    proxy.soap_endpoint = endpoint.c_str();
    return proxy;
}

// Turns a finished Deploy/Undeploy exchange into acknowledged or not, with the reason.
bool acknowledged(DeployerBindingProxy& proxy, int rc, bool accepted, std::string& error) {
    if (rc != SOAP_OK) {
        const char* s = soap_fault_string(proxy.soap);
        error = s ? s : "SOAP error " + std::to_string(rc);
        proxy.soap_close_socket();
    } else if (!accepted) {
        error = "the agent did not accept the request";
    }
    proxy.destroy();
    return rc == SOAP_OK && accepted;
}

}  // namespace

bool Deployments::sendDeploy(const PendingCall& call, const std::string& managerUrl,
                             DeployerBindingProxy& agent, std::string& error) {
    auto session = store_.session(call.sessionId);
    if (!session) {
        error = "session vanished";
        return false;
    }
    auto it = store_.sessionService(call.sessionId, call.serviceSeq);
    if (!it) {
        error = "service vanished";
        return false;
    }
    DeployerBindingProxy& proxy = aimAt(agent, call.endpoint, call.nodeId);
    _rm__Deploy request;
    request.callbackID = call.callbackId;
    request.targetScope = session->scope;
    request.callbackEndpoint = managerUrl;
    for (const auto& dep : it->plan.resolvedDependencies) {
        auto* p = soap_new_rm__DeployPackage(proxy.soap);
        p->ServiceClass = dep.serviceClass;
        p->ServiceName = dep.serviceName;
        p->ServiceVersion = dep.serviceVersion;
        p->PackageName = dep.packageName;
        p->PackageVersion = dep.packageVersion;
        p->URL = managerUrl + "/repository/" + dep.path;
        p->SHA256 = dep.sha256;
        p->dependsOn = splitCommas(dep.dependsOn);
        request.package.push_back(p);
    }
    _rm__DeployResponse response;
    int rc = proxy.Deploy(&request, response);
    return acknowledged(proxy, rc, response.accepted, error);
}

bool Deployments::sendUndeploy(const PendingCall& call, const std::string& managerUrl,
                               DeployerBindingProxy& agent, std::string& error) {
    auto session = store_.session(call.sessionId);
    if (!session) {
        error = "session vanished";
        return false;
    }
    DeployerBindingProxy& proxy = aimAt(agent, call.endpoint, call.nodeId);
    _rm__Undeploy request;
    request.callbackID = call.callbackId;
    request.targetScope = session->scope;
    request.callbackEndpoint = managerUrl;
    // The packages of every removal service of this session planned on the node, in plan order
    // (newest first), each once; an explicit list, so the node removes only what was asked.
    std::set<std::string> listed;
    for (const auto& service : store_.sessionServices(call.sessionId)) {
        if (service.deployedOn != call.nodeId) continue;
        for (const auto& dep : service.plan.resolvedDependencies) {
            if (!listed.insert(dep.serviceClass + "/" + dep.serviceName + "/" + dep.packageName)
                     .second)
                continue;
            auto* p = soap_new_rm__PackageRef(proxy.soap);
            p->ServiceClass = dep.serviceClass;
            p->ServiceName = dep.serviceName;
            p->ServiceVersion = dep.serviceVersion;
            p->PackageName = dep.packageName;
            p->PackageVersion = dep.packageVersion;
            request.package.push_back(p);
        }
    }
    if (request.package.empty()) {
        // An empty list would mean "everything of the scope" to the agent: never send that by
        // accident.
        error = "no package to undeploy on this node";
        proxy.destroy();
        return false;
    }
    _rm__UndeployResponse response;
    int rc = proxy.Undeploy(&request, response);
    return acknowledged(proxy, rc, response.accepted, error);
}

void Deployments::recordAttempt(const PendingCall& call, bool acknowledged,
                                const std::string& error) {
    int64_t now = common::nowMillis();
    // Exponential backoff capped at 10 s: an agent that is restarting gets the call soon after.
    int64_t delay = std::min<int64_t>(10000, 250LL << std::min(call.attempts, 6));
    store_.database().transaction([&](common::Database::Lock& db) {
        db.prepare(
              "UPDATE deployments SET call_state = CASE WHEN ? THEN 'ACKED' ELSE call_state END, "
              "attempts = "
              "attempts + 1, next_attempt_at = ?, last_error = ? WHERE callback_id = ? AND "
              "call_state = 'PENDING'")
            .bind(1, acknowledged ? 1 : 0)
            .bind(2, now + delay)
            .bind(3, error)
            .bind(4, call.callbackId)
            .run();
    });
    if (acknowledged) {
        Log(logger_, LogLevel::info, "deploy_acknowledged")
            .kv("callback", call.callbackId)
            .kv("node", call.nodeId);
    } else {
        Log(logger_, LogLevel::warn, "deploy_not_acknowledged")
            .kv("callback", call.callbackId)
            .kv("node", call.nodeId)
            .kv("attempt", call.attempts + 1)
            .kv("retry_in_ms", delay)
            .kv("error", error);
    }
}

void Deployments::sendCall(const PendingCall& call, const std::string& managerUrl,
                           DeployerBindingProxy& agent) {
    std::string error;
    bool ok = false;
    // drop before: the call never leaves; drop after: the agent has it but the ack is lost.
    if (common::faultFails(faults_, "rm.before_deploy_send")) {
        error = "fault injected before sending (rm.before_deploy_send)";
    } else {
        ok = call.kind == "Undeploy" ? sendUndeploy(call, managerUrl, agent, error)
                                     : sendDeploy(call, managerUrl, agent, error);
        if (ok && common::faultFails(faults_, "rm.after_deploy_send")) {
            ok = false;
            error = "fault injected after sending (rm.after_deploy_send)";
        }
    }
    recordAttempt(call, ok, error);
}

void Deployments::sendBatch(const std::vector<PendingCall>& calls, const std::string& managerUrl,
                            std::stop_token stop) {
    // Calls to one agent keep their order (an Undeploy must not overtake the Deploy before it);
    // different agents are called at once, so one slow or unreachable node does not hold up
    // the others.
    std::vector<std::vector<const PendingCall*>> byAgent;
    std::map<std::string, size_t> agentIndex;
    for (const auto& call : calls) {
        auto [it, added] = agentIndex.emplace(call.endpoint, byAgent.size());
        if (added) byAgent.emplace_back();
        byAgent[it->second].push_back(&call);
    }
    const size_t lanes = std::min(kDispatchLanes, byAgent.size());
    for (size_t lane = 0; lane < lanes; ++lane) laneProxy(lane);  // before any lane runs
    std::atomic<size_t> nextAgent{0};
    auto runLane = [&](size_t lane) {
        for (size_t a; (a = nextAgent++) < byAgent.size();) {
            for (const PendingCall* call : byAgent[a]) {
                if (stop.stop_requested()) return;
                sendCall(*call, managerUrl, *proxies_[lane]);
            }
        }
    };
    std::vector<std::jthread> helpers;
    for (size_t lane = 1; lane < lanes; ++lane) helpers.emplace_back(runLane, lane);
    runLane(0);
}  // the helpers join here

void Deployments::runDispatcher(std::stop_token stop,
                                const std::function<std::string()>& managerUrl) {
    while (!stop.stop_requested()) {
        auto calls = dueCalls(common::nowMillis());
        if (!calls.empty()) sendBatch(calls, managerUrl(), stop);
        // A full batch means more are probably due: go on at once.
        if (calls.size() == kCallsPerBatch) continue;
        std::unique_lock lock(mutex_);
        wake_.wait_for(lock, stop, std::chrono::milliseconds(calls.empty() ? 500 : 50),
                       [&] { return woken_; });
        woken_ = false;
    }
}

}  // namespace rm::service
