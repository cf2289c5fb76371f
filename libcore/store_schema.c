/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The history schema: creation, version check and migrations. */
#include <stdio.h>
#include <string.h>

#include "store_impl.h"

/*
 * Version history:
 *   1  the first layout (outcomes without error weights);
 *   2  outcomes.weight, for weighted errors;
 *   3  baselines.quantile, the latency_quantile of metrics 5 and 7.
 * A file at version v is brought to the current one by running
 * migrations[v], migrations[v + 1], ... in one transaction.
 */
static const char *const trip_schema_v3_ =
    "CREATE TABLE IF NOT EXISTS breakers("
    " id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " config TEXT NOT NULL DEFAULT '{}', first_seen_ns INTEGER,"
    " last_seen_ns INTEGER, version TEXT);"
    "CREATE TABLE IF NOT EXISTS outcomes("
    " t_ns INTEGER NOT NULL, breaker_id INTEGER NOT NULL,"
    " outcome INTEGER NOT NULL, latency_ns INTEGER NOT NULL,"
    " state INTEGER NOT NULL, decision INTEGER NOT NULL,"
    " slow INTEGER NOT NULL, weight REAL NOT NULL DEFAULT 1);"
    /* one index: time ranges (reads, retention); a per-breaker read
     * filters inside the range (bench/RESULTS.md measures the cost) */
    "CREATE INDEX IF NOT EXISTS outcomes_t ON outcomes(t_ns);"
    "CREATE TABLE IF NOT EXISTS rollups("
    " breaker_id INTEGER NOT NULL, minute_ns INTEGER NOT NULL,"
    " calls INTEGER NOT NULL, successes INTEGER NOT NULL,"
    " failures INTEGER NOT NULL, timeouts INTEGER NOT NULL,"
    " ignored INTEGER NOT NULL, slow INTEGER NOT NULL,"
    " rejected INTEGER NOT NULL, limited INTEGER NOT NULL,"
    " latency_sum_s REAL NOT NULL, p50_s REAL, p90_s REAL, p95_s REAL,"
    " p99_s REAL, p999_s REAL,"
    " PRIMARY KEY(breaker_id, minute_ns)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS rollups_t ON rollups(minute_ns);"
    "CREATE TABLE IF NOT EXISTS transitions("
    " t_ns INTEGER NOT NULL, breaker_id INTEGER NOT NULL,"
    " from_state INTEGER NOT NULL, to_state INTEGER NOT NULL,"
    " rule INTEGER NOT NULL, score REAL, threshold REAL, baseline REAL,"
    " samples INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS transitions_t ON transitions(t_ns);"
    "CREATE TABLE IF NOT EXISTS baselines("
    " breaker_id INTEGER NOT NULL, bucket INTEGER NOT NULL,"
    " metric INTEGER NOT NULL, mean REAL, var REAL, n INTEGER NOT NULL,"
    " updated_ns INTEGER NOT NULL, quantile REAL,"
    " PRIMARY KEY(breaker_id, bucket, metric)) WITHOUT ROWID;";

/* migrations[v] takes a file from version v to v + 1. It alters a table
 * the file may not have yet (a file written before its first baseline, or
 * by an early build); then it is skipped, and the current layout's CREATE
 * TABLE, run after the migrations, makes the table whole. */
static const struct {
    const char *table, *sql;
} trip_migrations_[] = {
    /* 0: a new file gets the current layout directly */
    {NULL, NULL},
    /* 1 -> 2 */
    {"outcomes", "ALTER TABLE outcomes ADD COLUMN weight REAL NOT NULL "
                 "DEFAULT 1;"},
    /* 2 -> 3: saved rows keep NULL, which no quantile matches */
    {"baselines", "ALTER TABLE baselines ADD COLUMN quantile REAL;"},
};

static int
trip_pragma_int_(sqlite3 *db, const char *sql, int *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *out = sqlite3_column_int(st, 0);
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

static int
trip_schema_fail_(sqlite3 *db, const char *path, int rc, const char *what)
{
    int st = trip__sqlite_status(rc);
    if (st == TRIP_OK)
        st = TRIP_ESTORE;
    if (st == TRIP_EIO && (rc & 0xff) == SQLITE_NOTADB)
        st = TRIP_ECORRUPT;
    return trip__fail(st, "history %s: %s: %s", path, what, sqlite3_errmsg(db));
}

/* Run migration v if the file has its table. */
static int
trip_migrate_(sqlite3 *db, int v, char **err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT 1 FROM sqlite_master "
                                "WHERE type='table' AND name=?1",
                                -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 1, trip_migrations_[v].table, -1,
                               SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW)
        return sqlite3_exec(db, trip_migrations_[v].sql, NULL, NULL, err);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* How many tables the file has: 0 for a new file. */
static int
trip_table_count_(sqlite3 *db, int *n)
{
    return trip_pragma_int_(db,
                            "SELECT count(*) FROM sqlite_master "
                            "WHERE type='table'",
                            n);
}

/* Check version and owner; -1 in *version means "create". */
static int
trip_schema_check_(sqlite3 *db, const char *path, int *version)
{
    int app = 0, ver = 0, tables = 0;
    int rc = trip_pragma_int_(db, "PRAGMA application_id", &app);
    if (rc == SQLITE_OK)
        rc = trip_pragma_int_(db, "PRAGMA user_version", &ver);
    if (rc == SQLITE_OK)
        rc = trip_table_count_(db, &tables);
    if (rc != SQLITE_OK)
        return trip_schema_fail_(db, path, rc, "cannot read the schema");
    if (tables == 0 && app == 0) {
        *version = -1;
        return TRIP_OK;
    }
    if (app != TRIP__APP_ID)
        return trip__fail(TRIP_ECORRUPT,
                          "history %s is a SQLite database "
                          "but not a tripsense history (application_id "
                          "%d)",
                          path, app);
    if (ver > TRIP__SCHEMA_VERSION)
        return trip__fail(TRIP_ESCHEMA,
                          "history %s has schema version %d, "
                          "newer than this tripsense (%s) understands (%d): "
                          "upgrade tripsense",
                          path, ver, trip_version(), TRIP__SCHEMA_VERSION);
    if (ver < 1)
        return trip__fail(TRIP_ECORRUPT, "history %s has no schema version",
                          path);
    *version = ver;
    return TRIP_OK;
}

static int
trip_schema_upgrade_(sqlite3 *db, const char *path, int from)
{
    char *err = NULL;
    int rc = SQLITE_OK;
    if (from < 0) {
        rc = sqlite3_exec(db, trip_schema_v3_, NULL, NULL, &err);
    } else {
        for (int v = from; rc == SQLITE_OK && v < TRIP__SCHEMA_VERSION; v++)
            rc = trip_migrate_(db, v, &err);
        if (rc == SQLITE_OK) /* new indexes or tables of later versions */
            rc = sqlite3_exec(db, trip_schema_v3_, NULL, NULL, &err);
    }
    char sql[96];
    snprintf(sql, sizeof sql,
             "PRAGMA application_id=%d; "
             "PRAGMA user_version=%d;",
             TRIP__APP_ID, TRIP__SCHEMA_VERSION);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    sqlite3_free(err);
    if (rc != SQLITE_OK)
        return trip_schema_fail_(db, path, rc,
                                 from < 0 ? "cannot create the schema"
                                          : "cannot migrate");
    return TRIP_OK;
}

int
trip__store_schema(sqlite3 *db, const char *path, int read_only)
{
    int version = 0;
    if (read_only) {
        int rc = trip_schema_check_(db, path, &version);
        if (rc == TRIP_OK && version != TRIP__SCHEMA_VERSION)
            return trip__fail(version < 0 ? TRIP_ECORRUPT : TRIP_ESCHEMA,
                              "history %s %s", path,
                              version < 0 ? "is empty: not a tripsense "
                                            "history"
                                          : "has an older schema: open it "
                                            "once for writing to migrate");
        return rc;
    }
    /* IMMEDIATE: two processes creating one file take turns */
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return trip_schema_fail_(db, path, rc, "cannot lock the schema");
    int st = trip_schema_check_(db, path, &version);
    if (st == TRIP_OK && version != TRIP__SCHEMA_VERSION)
        st = trip_schema_upgrade_(db, path, version);
    if (st == TRIP_OK) {
        rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            st = trip_schema_fail_(db, path, rc, "cannot commit the schema");
    }
    if (st != TRIP_OK)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return st;
}
