#include "common/storage.h"

namespace rm::common {

static void check(sqlite3* db, int rc, const char* what) {
    if (rc == SQLITE_OK || rc == SQLITE_ROW || rc == SQLITE_DONE) return;
    throw StorageError(std::string("sqlite ") + what +
                       " failed: " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
}

Statement& Statement::bind(int index, std::string_view text) {
    check(db_,
          sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()),
                            SQLITE_TRANSIENT),
          "bind");
    return *this;
}

Statement& Statement::bind(int index, int64_t value) {
    check(db_, sqlite3_bind_int64(stmt_, index, value), "bind");
    return *this;
}

Statement& Statement::bind(int index, double value) {
    check(db_, sqlite3_bind_double(stmt_, index, value), "bind");
    return *this;
}

Statement& Statement::bindNull(int index) {
    check(db_, sqlite3_bind_null(stmt_, index), "bind");
    return *this;
}

Statement& Statement::bindOptional(int index, const std::optional<std::string>& text) {
    return text ? bind(index, *text) : bindNull(index);
}

bool Statement::step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    std::string message = sqlite3_errmsg(db_);
    sqlite3_reset(stmt_);
    throw StorageError("sqlite step failed: " + message + " in: " + sqlite3_sql(stmt_));
}

void Statement::run() {
    while (step()) {
    }
}

std::string Statement::text(int column) const {
    const unsigned char* p = sqlite3_column_text(stmt_, column);
    if (!p) return {};
    return std::string(reinterpret_cast<const char*>(p),
                       static_cast<size_t>(sqlite3_column_bytes(stmt_, column)));
}

std::optional<std::string> Statement::optionalText(int column) const {
    if (isNull(column)) return std::nullopt;
    return text(column);
}

int64_t Statement::integer(int column) const {
    return sqlite3_column_int64(stmt_, column);
}
double Statement::real(int column) const {
    return sqlite3_column_double(stmt_, column);
}
bool Statement::isNull(int column) const {
    return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

void Statement::reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
}

Database::Database(const std::filesystem::path& file, const std::vector<std::string>& migrations)
    : file_(file) {
    int rc =
        sqlite3_open_v2(file.c_str(), &db_,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
        std::string message = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
        sqlite3_close(db_);
        throw StorageError("cannot open database " + file.string() + ": " + message +
                           " (check the state directory exists and is writable)");
    }
    sqlite3_busy_timeout(db_, 5000);
    exec("PRAGMA journal_mode=WAL");
    exec("PRAGMA synchronous=FULL");
    exec("PRAGMA foreign_keys=ON");
    migrate(migrations);
}

Database::~Database() {
    cache_.clear();
    sqlite3_close_v2(db_);
}

Statement& Database::prepare(const std::string& sql) {
    auto it = cache_.find(sql);
    if (it != cache_.end()) {
        it->second->reset();
        used_.push_back(it->second.get());
        return *it->second;
    }
    sqlite3_stmt* stmt = nullptr;
    check(db_, sqlite3_prepare_v3(db_, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr),
          ("prepare of: " + sql).c_str());
    auto owned = std::unique_ptr<Statement>(new Statement(db_, stmt));
    Statement& ref = *owned;
    cache_.emplace(sql, std::move(owned));
    used_.push_back(&ref);
    return ref;
}

void Database::releaseStatements() {
    for (Statement* statement : used_) statement->reset();
    used_.clear();
}

void Database::exec(const std::string& sql) {
    char* error = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
        std::string message = error ? error : "unknown error";
        sqlite3_free(error);
        throw StorageError("sqlite exec failed: " + message + " in: " + sql);
    }
}

void Database::transaction(const std::function<void(Lock&)>& fn) {
    Lock lock(*this);
    // Inside another transaction of this thread (the lock is recursive): a savepoint, so a step
    // built from smaller steps commits as one, and a failed inner step undoes only itself.
    if (!sqlite3_get_autocommit(db_)) {
        exec("SAVEPOINT nested");
        try {
            fn(lock);
            exec("RELEASE nested");
        } catch (...) {
            sqlite3_exec(db_, "ROLLBACK TO nested; RELEASE nested", nullptr, nullptr, nullptr);
            throw;
        }
        return;
    }
    exec("BEGIN IMMEDIATE");
    try {
        fn(lock);
        exec("COMMIT");
    } catch (...) {
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
    }
}

void Database::read(const std::function<void(Lock&)>& fn) {
    Lock lock(*this);
    fn(lock);
}

void Database::migrate(const std::vector<std::string>& migrations) {
    exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
    int64_t current = 0;
    {
        Lock lock(*this);
        Statement& q = lock.prepare("SELECT COALESCE(MAX(version), 0) FROM schema_version");
        if (q.step()) current = q.integer(0);
    }
    if (current > static_cast<int64_t>(migrations.size())) {
        throw StorageError("database " + file_.string() + " has schema version " +
                           std::to_string(current) + " but this program knows only " +
                           std::to_string(migrations.size()) +
                           "; run a newer build or restore a matching state directory");
    }
    for (size_t i = static_cast<size_t>(current); i < migrations.size(); ++i) {
        transaction([&](Lock& lock) {
            lock.exec(migrations[i]);
            lock.prepare("INSERT INTO schema_version(version) VALUES (?)")
                .bind(1, static_cast<int64_t>(i + 1))
                .run();
        });
    }
}

}  // namespace rm::common
