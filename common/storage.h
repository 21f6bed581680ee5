// A small RAII layer over SQLite: one connection per Database, WAL mode, synchronous=FULL so a
// committed transaction survives power loss. Statements are prepared once and cached.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace rm::common {

class StorageError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

class Statement {
  public:
    Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
    ~Statement() { sqlite3_finalize(stmt_); }
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;

    Statement& bind(int index, std::string_view text);
    Statement& bind(int index, const std::string& text) {
        return bind(index, std::string_view(text));
    }
    Statement& bind(int index, const char* text) { return bind(index, std::string_view(text)); }
    Statement& bind(int index, int64_t value);
    Statement& bind(int index, int value) { return bind(index, static_cast<int64_t>(value)); }
    Statement& bind(int index, double value);
    Statement& bindNull(int index);
    Statement& bindOptional(int index, const std::optional<std::string>& text);

    // Advances to the next row; false when done.
    bool step();
    // Runs a statement that returns no rows.
    void run();

    std::string text(int column) const;
    std::optional<std::string> optionalText(int column) const;
    int64_t integer(int column) const;
    double real(int column) const;
    bool isNull(int column) const;

  private:
    friend class Database;
    void reset();
    sqlite3* db_;
    sqlite3_stmt* stmt_;
};

class Database {
  public:
    // Opens (creating if needed) the database file and applies the migrations not yet applied;
    // each migration is a list of SQL statements run in one transaction.
    Database(const std::filesystem::path& file, const std::vector<std::string>& migrations);
    ~Database();
    Database(const Database&) = delete;
    Database& operator=(const Database&) = delete;

    // All access goes through a lock so one connection serves every thread.
    class Lock {
      public:
        explicit Lock(Database& db) : db_(db), guard_(db.mutex_) { ++db_.lockDepth_; }
        ~Lock() {
            if (--db_.lockDepth_ == 0) db_.releaseStatements();
        }
        Lock(const Lock&) = delete;
        Lock& operator=(const Lock&) = delete;
        // A cached statement, reset and ready for binding.
        Statement& prepare(const std::string& sql) { return db_.prepare(sql); }
        void exec(const std::string& sql) { db_.exec(sql); }
        int64_t lastInsertRowId() const { return sqlite3_last_insert_rowid(db_.db_); }
        int changes() const { return sqlite3_changes(db_.db_); }

      private:
        Database& db_;
        std::unique_lock<std::recursive_mutex> guard_;
    };

    // Runs fn inside BEGIN IMMEDIATE ... COMMIT; rolls back and rethrows on exception. Called
    // inside another transaction, fn runs in a savepoint: it commits with the outer transaction,
    // and an exception undoes fn's writes alone before it propagates.
    void transaction(const std::function<void(Lock&)>& fn);
    // Runs fn under the lock without a transaction (reads, single statements).
    void read(const std::function<void(Lock&)>& fn);

    const std::filesystem::path& file() const { return file_; }

  private:
    Statement& prepare(const std::string& sql);
    void exec(const std::string& sql);
    void migrate(const std::vector<std::string>& migrations);
    // Resets every statement stepped since the outermost Lock was taken. A statement left
    // mid-result keeps a read transaction open, and an open read transaction stops WAL
    // checkpoints: the log would grow without bound and every lookup would slow down.
    void releaseStatements();

    std::filesystem::path file_;
    sqlite3* db_ = nullptr;
    std::recursive_mutex mutex_;
    std::map<std::string, std::unique_ptr<Statement>> cache_;
    std::vector<Statement*> used_;  // prepared under the current outermost Lock
    int lockDepth_ = 0;             // guarded by mutex_
};

}  // namespace rm::common
