#include "common/storage.h"

#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <filesystem>
#include <stdexcept>
#include <string>

using rm::common::Database;

namespace {

struct TempDb {
    std::filesystem::path dir;
    TempDb() {
        char pattern[] = "/tmp/rm-storage-XXXXXX";
        dir = ::mkdtemp(pattern);
    }
    ~TempDb() { std::filesystem::remove_all(dir); }
    std::filesystem::path file() const { return dir / "test.db"; }
};

const std::vector<std::string> kMigrations = {
    "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)",
    "ALTER TABLE items ADD COLUMN note TEXT",
};

int64_t count(Database& db) {
    int64_t n = -1;
    db.read([&](Database::Lock& lock) {
        auto& q = lock.prepare("SELECT COUNT(*) FROM items");
        if (q.step()) n = q.integer(0);
    });
    return n;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(storage)

BOOST_AUTO_TEST_CASE(migrations_apply_once_and_data_survives_reopening) {
    TempDb t;
    {
        Database db(t.file(), kMigrations);
        db.transaction([](Database::Lock& lock) {
            lock.prepare("INSERT INTO items(name, note) VALUES (?, ?)")
                .bind(1, "a")
                .bind(2, "n")
                .run();
        });
    }
    Database again(t.file(), kMigrations);  // would fail if the ALTER ran twice
    BOOST_TEST(count(again) == 1);
}

BOOST_AUTO_TEST_CASE(a_failed_transaction_leaves_nothing_behind) {
    TempDb t;
    Database db(t.file(), kMigrations);
    BOOST_CHECK_THROW(db.transaction([](Database::Lock& lock) {
        lock.prepare("INSERT INTO items(name) VALUES (?)").bind(1, "x").run();
        lock.prepare("INSERT INTO items(name) VALUES (?)").bind(1, "x").run();  // UNIQUE
    }),
                      rm::common::StorageError);
    BOOST_TEST(count(db) == 0);
    BOOST_CHECK_THROW(db.transaction([](Database::Lock& lock) {
        lock.prepare("INSERT INTO items(name) VALUES (?)").bind(1, "y").run();
        throw std::runtime_error("caller gave up");
    }),
                      std::runtime_error);
    BOOST_TEST(count(db) == 0);
}

BOOST_AUTO_TEST_CASE(a_query_left_mid_result_does_not_block_checkpoints) {
    TempDb t;
    Database db(t.file(), kMigrations);
    db.transaction([](Database::Lock& lock) {
        for (int i = 0; i < 200; ++i) {
            lock.prepare("INSERT INTO items(name) VALUES (?)")
                .bind(1, "item-" + std::to_string(i))
                .run();
        }
    });
    // Step once into a many-row result and walk away, as "does any row exist?" code does.
    db.read([](Database::Lock& lock) {
        auto& q = lock.prepare("SELECT name FROM items ORDER BY id");
        BOOST_TEST(q.step());
    });
    db.transaction(
        [](Database::Lock& lock) { lock.prepare("UPDATE items SET note = 'touched'").run(); });
    // A full checkpoint only completes when no reader pins an old snapshot.
    int busy = -1, logFrames = -1, checkpointed = -1;
    db.read([&](Database::Lock& lock) {
        auto& q = lock.prepare("PRAGMA wal_checkpoint(TRUNCATE)");
        BOOST_REQUIRE(q.step());
        busy = static_cast<int>(q.integer(0));
        logFrames = static_cast<int>(q.integer(1));
        checkpointed = static_cast<int>(q.integer(2));
    });
    BOOST_TEST(busy == 0);
    BOOST_TEST(logFrames == checkpointed);
    BOOST_TEST(std::filesystem::file_size(t.dir / "test.db-wal") == 0u);
}

BOOST_AUTO_TEST_CASE(locks_nest_within_one_thread) {
    TempDb t;
    Database db(t.file(), kMigrations);
    db.transaction([&](Database::Lock& lock) {
        lock.prepare("INSERT INTO items(name) VALUES ('outer')").run();
        db.read([](Database::Lock& inner) {
            auto& q = inner.prepare("SELECT COUNT(*) FROM items");
            BOOST_REQUIRE(q.step());
            BOOST_TEST(q.integer(0) == 1);  // sees its own transaction's write
        });
    });
    BOOST_TEST(count(db) == 1);
}

BOOST_AUTO_TEST_CASE(a_nested_transaction_commits_or_rolls_back_with_the_outer_one) {
    TempDb t;
    Database db(t.file(), kMigrations);
    auto insert = [&](const std::string& name) {
        db.transaction([&](Database::Lock& lock) {
            lock.prepare("INSERT INTO items(name) VALUES (?)").bind(1, name).run();
        });
    };
    db.transaction([&](Database::Lock&) {
        insert("a");
        insert("b");
    });
    BOOST_TEST(count(db) == 2);
    BOOST_CHECK_THROW(db.transaction([&](Database::Lock&) {
        insert("c");
        throw std::runtime_error("the outer step failed after the inner one");
    }),
                      std::runtime_error);
    BOOST_TEST(count(db) == 2, "the inner write must roll back with the outer transaction");
}

BOOST_AUTO_TEST_CASE(a_failed_nested_transaction_undoes_only_itself) {
    TempDb t;
    Database db(t.file(), kMigrations);
    db.transaction([&](Database::Lock& lock) {
        lock.prepare("INSERT INTO items(name) VALUES ('kept')").run();
        try {
            db.transaction([](Database::Lock& inner) {
                inner.prepare("INSERT INTO items(name) VALUES ('undone')").run();
                inner.prepare("INSERT INTO items(name) VALUES ('kept')").run();  // UNIQUE
            });
            BOOST_FAIL("the inner transaction should have thrown");
        } catch (const rm::common::StorageError&) {
        }
        lock.prepare("INSERT INTO items(name) VALUES ('after')").run();
    });
    BOOST_TEST(count(db) == 2);  // 'kept' and 'after', not 'undone'
}

BOOST_AUTO_TEST_SUITE_END()
