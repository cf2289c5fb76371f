/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The history store: round trip of every field, rollups, transitions,
 * sampling, retention, ring overflow, schema checks and a locked file. */
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_internal.h"
#include "test_files.h"
#include "test_util.h"
#include "tripsense/tripsense.h"

#define T0_ (1000 * TEST_S_)
#define WALL0_ (1767225600LL * TEST_S_) /* 2026-01-01 00:00 UTC */

typedef struct env {
    trip_clock *clk;
    trip_breaker *b;
    trip_store *s;
    char path[256];
} env;

static void
quiet_config(trip_config *c)
{
    trip_config_init(c);
    c->adaptive = 0;
    c->jitter = 0;
    c->seed = 7;
    c->consecutive_failures = 5;
    c->failure_rate = 0;
    c->slow_call_ns = 500 * TEST_MS_;
}

static env *
env_new(const char *path, const trip_store_opts *o, const trip_config *cfg)
{
    env *e = calloc(1, sizeof *e);
    assert_non_null(e);
    snprintf(e->path, sizeof e->path, "%s", path);
    assert_int_equal(trip_clock_manual_new(T0_, WALL0_ - T0_, &e->clk),
                     TRIP_OK);
    assert_int_equal(trip_store_open(path, o, &e->s), TRIP_OK);
    assert_int_equal(trip_breaker_new("payments", cfg, e->clk, &e->b), TRIP_OK);
    assert_int_equal(trip_breaker_attach(e->b, e->s), TRIP_OK);
    return e;
}

static void
env_free(env *e)
{
    trip_breaker_free(e->b);
    assert_int_equal(trip_store_close(e->s), TRIP_OK);
    trip_clock_free(e->clk);
    free(e);
}

static int
call(env *e, int outcome, double latency_s)
{
    trip_ticket t;
    int d = trip_allow(e->b, &t);
    if (d == TRIP_PASS)
        assert_int_equal(trip_record_latency(e->b, &t, outcome, latency_s),
                         TRIP_OK);
    return d;
}

static int64_t
count(trip_store *s, int table)
{
    int64_t n = -1;
    assert_int_equal(trip_store_count(s, table, -1, INT64_MIN, INT64_MAX, &n),
                     TRIP_OK);
    return n;
}

static void
test_store_round_trip_every_field(void **state)
{
    (void)state;
    trip_config cfg;
    quiet_config(&cfg);
    env *e = env_new(":memory:", NULL, &cfg);
    int outs[4] = {TRIP_SUCCESS, TRIP_FAILURE, TRIP_TIMEOUT, TRIP_IGNORED};
    for (int i = 0; i < 40; i++) {
        trip_clock_advance(e->clk, 100 * TEST_MS_);
        trip_ticket t;
        assert_int_equal(trip_allow(e->b, &t), TRIP_PASS);
        double w = outs[i % 4] == TRIP_FAILURE ? 2.5 : 1.0;
        assert_int_equal(
            trip_record_weighted(e->b, &t, outs[i % 4], 0.001 * (i + 1), w),
            TRIP_OK);
    }
    assert_int_equal(trip_store_flush(e->s), TRIP_OK);
    int id = -1;
    assert_int_equal(trip_store_breaker_id(e->s, "payments", &id), TRIP_OK);
    char *name = NULL;
    assert_int_equal(trip_store_breaker_name(e->s, id, &name), TRIP_OK);
    assert_string_equal(name, "payments");
    trip_string_free(name);
    trip_outcome_row rows[64];
    size_t n = 0;
    int more = 1;
    assert_int_equal(
        trip_store_read_outcomes(e->s, id, 0, INT64_MAX, rows, 64, &n, &more),
        TRIP_OK);
    assert_int_equal(n, 40);
    assert_int_equal(more, 0);
    for (int i = 0; i < 40; i++) {
        assert_int_equal(rows[i].wall_ns, WALL0_ + (i + 1) * 100 * TEST_MS_);
        assert_int_equal(rows[i].outcome, outs[i % 4]);
        assert_close(rows[i].latency_s, 0.001 * (i + 1), 1e-9);
        assert_int_equal(rows[i].state, TRIP_CLOSED);
        assert_int_equal(rows[i].decision, TRIP_PASS);
        assert_int_equal(rows[i].breaker_id, id);
        assert_int_equal(rows[i].slow, 0);
        double w = outs[i % 4] == TRIP_FAILURE   ? 2.5
                   : outs[i % 4] == TRIP_TIMEOUT ? 1.0
                                                 : 0.0;
        assert_close(rows[i].weight, w, 1e-6);
    }
    trip_store_status st;
    assert_int_equal(trip_store_status_get(e->s, &st), TRIP_OK);
    assert_int_equal(st.accepted, 40);
    assert_int_equal(st.written, 40);
    assert_int_equal(st.status, TRIP_OK);
    assert_string_equal(st.message, "");
    env_free(e);
}

static void
test_store_rollups_exact_and_transitions(void **state)
{
    (void)state;
    trip_config cfg;
    quiet_config(&cfg);
    trip_store_opts o;
    trip_store_opts_init(&o);
    o.sample_mode = TRIP_SAMPLE_ONE_IN_N;
    o.sample_n = 7;
    env *e = env_new(":memory:", &o, &cfg);
    int64_t calls = 0, fails = 0, slow = 0, rejected = 0;
    /* three minutes of traffic with one outage in the second */
    for (int i = 0; i < 1800; i++) {
        trip_clock_advance(e->clk, 100 * TEST_MS_);
        int fail = i >= 700 && i < 760;
        double lat = (i % 10 == 0) ? 0.6 : 0.01;
        int d = call(e, fail ? TRIP_FAILURE : TRIP_SUCCESS, lat);
        if (d == TRIP_PASS) {
            calls++;
            fails += fail;
            slow += lat >= 0.5;
        } else {
            rejected++;
        }
    }
    trip_breaker_attach(e->b, NULL); /* writes the partial minute */
    assert_int_equal(trip_store_flush(e->s), TRIP_OK);
    trip_rollup_row r[16];
    size_t n = 0;
    int more = 0;
    assert_int_equal(
        trip_store_read_rollups(e->s, -1, 0, INT64_MAX, r, 16, &n, &more),
        TRIP_OK);
    assert_true(n >= 3);
    int64_t sc = 0, sf = 0, ss = 0, sr = 0;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(r[i].minute_ns % (60 * TEST_S_), 0);
        sc += r[i].calls;
        sf += r[i].failures;
        ss += r[i].slow;
        sr += r[i].rejected;
        if (r[i].calls > 20)
            assert_true(r[i].p99_s >= 0.59 && r[i].p50_s < 0.02);
    }
    assert_int_equal(sc, calls);
    assert_int_equal(sf, fails);
    assert_int_equal(ss, slow);
    assert_int_equal(sr, rejected);
    assert_true(rejected > 0);
    /* raw rows are sampled one in seven; the rollups were not */
    int64_t raw = count(e->s, 0);
    assert_true(raw >= calls / 7 - 2 && raw <= calls / 7 + 2);
    trip_store_status st;
    trip_store_status_get(e->s, &st);
    assert_int_equal(st.sampled_out + st.accepted, calls);
    trip_transition_row tr[16];
    assert_int_equal(
        trip_store_read_transitions(e->s, -1, 0, INT64_MAX, tr, 16, &n, &more),
        TRIP_OK);
    assert_true(n >= 3); /* closed->open->half-open->closed */
    assert_int_equal(tr[0].from, TRIP_CLOSED);
    assert_int_equal(tr[0].to, TRIP_OPEN);
    assert_int_equal(tr[0].rule, TRIP_RULE_CONSECUTIVE_FAILURES);
    assert_close(tr[0].score, 5, 1e-12);
    assert_close(tr[0].threshold, 5, 1e-12);
    assert_int_equal(tr[0].wall_ns, WALL0_ + 705 * 100 * TEST_MS_);
    env_free(e);
}

static void
test_store_paging_never_splits_a_timestamp(void **state)
{
    (void)state;
    trip_config cfg;
    quiet_config(&cfg);
    cfg.consecutive_failures = 0;
    env *e = env_new(":memory:", NULL, &cfg);
    for (int i = 0; i < 50; i++) { /* 5 calls per timestamp */
        if (i % 5 == 0)
            trip_clock_advance(e->clk, TEST_S_);
        call(e, TRIP_SUCCESS, 0.01);
    }
    trip_store_flush(e->s);
    trip_outcome_row rows[7];
    size_t n = 0, total = 0;
    int more = 1;
    int64_t from = 0;
    while (more) {
        assert_int_equal(trip_store_read_outcomes(e->s, -1, from, INT64_MAX,
                                                  rows, 7, &n, &more),
                         TRIP_OK);
        assert_int_equal(n % 5, 0);
        total += n;
        if (n > 0)
            from = rows[n - 1].wall_ns + 1;
    }
    assert_int_equal(total, 50);
    trip_outcome_row small[3];
    assert_int_equal(
        trip_store_read_outcomes(e->s, -1, 0, INT64_MAX, small, 3, &n, &more),
        TRIP_ERANGE);
    assert_non_null(strstr(trip_errmsg(), "share one timestamp"));
    env_free(e);
}

static void
test_store_retention_relative_to_newest(void **state)
{
    (void)state;
    char path[256];
    test_db_path(path, sizeof path, "retention");
    trip_config cfg;
    quiet_config(&cfg);
    trip_store_opts o;
    trip_store_opts_init(&o);
    o.retention_days = 2;
    o.rollup_retention_days = 4;
    env *e = env_new(path, &o, &cfg);
    for (int day = 0; day < 6; day++) {
        for (int i = 0; i < 10; i++) {
            trip_clock_advance(e->clk, 10 * TEST_S_);
            call(e, TRIP_SUCCESS, 0.01);
        }
        trip_clock_advance(e->clk, 86400 * TEST_S_ - 100 * TEST_S_);
    }
    trip_breaker_free(e->b);
    e->b = NULL;
    assert_int_equal(trip_store_close(e->s), TRIP_OK);
    assert_int_equal(trip_store_open(path, NULL, &e->s), TRIP_OK);
    trip_outcome_row rows[128];
    size_t n = 0;
    int more = 0;
    trip_store_read_outcomes(e->s, -1, 0, INT64_MAX, rows, 128, &n, &more);
    /* newest row is day 5; rows older than 2 days before it are gone */
    assert_true(n >= 20 && n <= 30);
    int64_t newest = rows[n - 1].wall_ns;
    for (size_t i = 0; i < n; i++)
        assert_true(rows[i].wall_ns >= newest - 2 * 86400 * TEST_S_);
    trip_rollup_row rr[64];
    trip_store_read_rollups(e->s, -1, 0, INT64_MAX, rr, 64, &n, &more);
    /* a day's ten calls span two or three minutes; days 1..5 remain */
    assert_true(n >= 8 && n <= 15);
    for (size_t i = 0; i < n; i++)
        assert_true(rr[i].minute_ns >=
                    newest - 4 * 86400 * TEST_S_ - 60 * TEST_S_);
    assert_true(rr[0].minute_ns > WALL0_ + 86400 * TEST_S_ / 2);
    env_free(e);
    unlink(path);
}

static void
test_store_ring_overflow_is_counted(void **state)
{
    (void)state;
    trip_config cfg;
    quiet_config(&cfg);
    trip_store_opts o;
    trip_store_opts_init(&o);
    o.ring_capacity = 64;
    o.max_pending = 100;
    o.flush_interval_ns = 3600 * TEST_S_; /* nothing written until close */
    o.batch_size = 1000000;
    env *e = env_new(":memory:", &o, &cfg);
    const int total = 20000;
    for (int i = 0; i < total; i++)
        call(e, TRIP_SUCCESS, 0.001);
    trip_store_status st;
    trip_store_status_get(e->s, &st);
    assert_int_equal(st.accepted + st.dropped_full + st.sampled_out, total);
    assert_true(st.dropped_full + st.dropped_error > 0);
    trip_snapshot snap;
    assert_int_equal(trip_snapshot_get(e->b, &snap), TRIP_OK);
    assert_true(snap.store_dropped >= st.dropped_full);
    assert_int_equal(trip_store_flush(e->s), TRIP_OK);
    trip_store_status_get(e->s, &st);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.accepted, st.written + st.dropped_error);
    assert_int_equal(count(e->s, 0), st.written);
    env_free(e);
}

/* A history file at path (named after tag) that then had sql run on it. */
static void
store_file_then(char *path, size_t cap, const char *tag, const char *sql)
{
    trip_store *s = NULL;
    sqlite3 *db;
    test_db_path(path, cap, tag);
    assert_int_equal(trip_store_open(path, NULL, &s), TRIP_OK);
    trip_store_close(s);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void
test_store_schema_checks(void **state)
{
    (void)state;
    char path[256];
    trip_store *s = NULL;
    sqlite3 *db;
    /* a newer schema is refused, naming the versions */
    store_file_then(path, sizeof path, "schema", "PRAGMA user_version=99");
    assert_int_equal(trip_store_open(path, NULL, &s), TRIP_ESCHEMA);
    assert_null(s);
    assert_non_null(strstr(trip_errmsg(), "schema version 99"));
    /* a SQLite file that is not ours */
    test_db_path(path, sizeof path, "schema");
    sqlite3_open(path, &db);
    sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL);
    sqlite3_close(db);
    assert_int_equal(trip_store_open(path, NULL, &s), TRIP_ECORRUPT);
    assert_non_null(strstr(trip_errmsg(), "not a tripsense history"));
    /* not a database at all */
    test_db_path(path, sizeof path, "schema");
    FILE *f = fopen(path, "wb");
    for (int i = 0; i < 4096; i++)
        fputc("garbage!"[i % 8], f);
    fclose(f);
    assert_int_equal(trip_store_open(path, NULL, &s), TRIP_ECORRUPT);
    assert_non_null(strstr(trip_errmsg(), path));
    /* a missing file opened read-only; a directory that does not exist */
    test_db_path(path, sizeof path, "schema");
    trip_store_opts o;
    trip_store_opts_init(&o);
    o.read_only = 1;
    assert_int_equal(trip_store_open(path, &o, &s), TRIP_EIO);
    assert_int_equal(trip_store_open("/nonexistent-dir/x.db", NULL, &s),
                     TRIP_EIO);
    unlink(path);
}

/* The breakers table of every schema version so far. */
#define OLD_BREAKERS_                                                          \
    "CREATE TABLE breakers(id INTEGER PRIMARY KEY, name TEXT NOT NULL "        \
    "UNIQUE, config TEXT NOT NULL DEFAULT '{}', first_seen_ns INTEGER, "       \
    "last_seen_ns INTEGER, version TEXT);"

/* A file at path (named after tag) written by an older version: sql. */
static void
old_file(char *path, size_t cap, const char *tag, const char *sql)
{
    sqlite3 *db;
    test_db_path(path, cap, tag);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static void
test_store_migrates_version_1(void **state)
{
    (void)state;
    char path[256];
    sqlite3 *db;
    /* the version 1 layout: outcomes without weights */
    const char *v1 = OLD_BREAKERS_
        "CREATE TABLE outcomes(t_ns INTEGER NOT NULL, breaker_id INTEGER NOT "
        "NULL, outcome INTEGER NOT NULL, latency_ns INTEGER NOT NULL, state "
        "INTEGER NOT NULL, decision INTEGER NOT NULL, slow INTEGER NOT NULL);"
        "INSERT INTO breakers(name) VALUES('old');"
        "INSERT INTO outcomes VALUES(5, 1, 1, 1000, 0, 0, 0);"
        "PRAGMA application_id=1414678864; PRAGMA user_version=1;";
    old_file(path, sizeof path, "migrate", v1);
    trip_store_opts o;
    trip_store_opts_init(&o);
    o.read_only = 1;
    trip_store *s = NULL;
    assert_int_equal(trip_store_open(path, &o, &s), TRIP_ESCHEMA);
    assert_non_null(strstr(trip_errmsg(), "older schema"));
    assert_int_equal(trip_store_open(path, NULL, &s), TRIP_OK);
    trip_outcome_row r[4];
    size_t n = 0;
    int more = 0;
    assert_int_equal(trip_store_read_outcomes(s, -1, 0, 100, r, 4, &n, &more),
                     TRIP_OK);
    assert_int_equal(n, 1);
    assert_int_equal(r[0].outcome, TRIP_FAILURE);
    assert_close(r[0].weight, 1.0, 0);
    trip_store_close(s);
    sqlite3_open(path, &db);
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 3);
    sqlite3_finalize(st);
    sqlite3_close(db);
    unlink(path);
}

/* Version 2's baselines had no quantile: the migration adds the column,
 * and the rows saved before it read back naming none (NaN), which a warm
 * start does not import as any quantile's. */
static void
test_store_migrates_version_2(void **state)
{
    (void)state;
    char path[256];
    const char *v2 = OLD_BREAKERS_
        "CREATE TABLE baselines(breaker_id INTEGER NOT NULL, bucket INTEGER "
        "NOT NULL, metric INTEGER NOT NULL, mean REAL, var REAL, n INTEGER "
        "NOT NULL, updated_ns INTEGER NOT NULL, PRIMARY KEY(breaker_id, "
        "bucket, metric)) WITHOUT ROWID;"
        "INSERT INTO breakers(name) VALUES('old');"
        "INSERT INTO baselines VALUES(1, -1, 5, -3.2, 0.01, 40, 7);"
        "INSERT INTO baselines VALUES(1, -1, 0, 0.01, 0.0001, 40, 7);"
        "PRAGMA application_id=1414678864; PRAGMA user_version=2;";
    old_file(path, sizeof path, "migrate2", v2);
    trip_store *s = NULL;
    assert_int_equal(trip_store_open(path, NULL, &s), TRIP_OK);
    trip_baseline_row r[4];
    size_t n = 0;
    int more = 0;
    assert_int_equal(trip_store_read_baselines(s, -1, r, 4, &n, &more),
                     TRIP_OK);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++)
        assert_true(isnan(r[i].quantile));
    /* a row saved now names its quantile, and it reads back */
    trip_baseline_row w = {1, -1, 7, 0.5, 0.0, 40, 8, 0.9};
    trip__store_push_baselines(s, &w, 1);
    assert_int_equal(trip_store_flush(s), TRIP_OK);
    assert_int_equal(trip_store_read_baselines(s, 1, r, 4, &n, &more), TRIP_OK);
    assert_int_equal(n, 3);
    assert_int_equal(r[2].metric, 7);
    assert_true(r[2].quantile == 0.9);
    trip_store_close(s);
    unlink(path);
}

/* A transaction that fails keeps SQLite's reason in the status (ROLLBACK
 * had replaced it with "not an error"), and a row of an older version's
 * layout does not stop a writer that names its columns. */
static void
test_store_write_error_names_the_reason(void **state)
{
    (void)state;
    char path[256];
    trip_store *s = NULL;
    store_file_then(path, sizeof path, "reason",
                    "CREATE TRIGGER no_baselines BEFORE INSERT ON baselines "
                    "BEGIN SELECT RAISE(ABORT, 'baselines are refused "
                    "here'); END;");
    assert_int_equal(trip_store_open(path, NULL, &s), TRIP_OK);
    trip_baseline_row w = {1, -1, 0, 0.01, 0.0, 40, 8, NAN};
    trip__store_push_baselines(s, &w, 1);
    assert_int_not_equal(trip_store_flush(s), TRIP_OK);
    trip_store_status st;
    assert_int_equal(trip_store_status_get(s, &st), TRIP_OK);
    assert_int_not_equal(st.status, TRIP_OK);
    assert_non_null(strstr(st.message, "baselines are refused here"));
    assert_null(strstr(st.message, "not an error"));
    trip_store_close(s);
    unlink(path);
}

static void
test_store_bad_input(void **state)
{
    (void)state;
    trip_store *s = NULL;
    trip_store_opts o;
    assert_int_equal(trip_store_open(NULL, NULL, &s), TRIP_EINVAL);
    assert_int_equal(trip_store_open(":memory:", NULL, NULL), TRIP_EINVAL);
    trip_store_opts_init(&o);
    o.ring_capacity = 1000;
    assert_int_equal(trip_store_open(":memory:", &o, &s), TRIP_EINVAL);
    assert_non_null(strstr(trip_errmsg(), "ring_capacity"));
    trip_store_opts_init(&o);
    o.retention_days = NAN;
    assert_int_equal(trip_store_open(":memory:", &o, &s), TRIP_EINVAL);
    assert_non_null(strstr(trip_errmsg(), "retention_days"));
    o.retention_days = 1e6; /* its cutoff in ns would overflow int64 */
    assert_int_equal(trip_store_open(":memory:", &o, &s), TRIP_EINVAL);
    assert_non_null(strstr(trip_errmsg(), "36500"));
    trip_store_opts_init(&o);
    o.synchronous = 3;
    assert_int_equal(trip_store_open(":memory:", &o, &s), TRIP_EINVAL);
    trip_store_opts_init(&o);
    o.read_only = 1;
    assert_int_equal(trip_store_open(":memory:", &o, &s), TRIP_EINVAL);
    assert_int_equal(trip_store_open(":memory:", NULL, &s), TRIP_OK);
    trip_outcome_row r[2];
    size_t n;
    int more, id;
    int64_t c;
    assert_int_equal(trip_store_read_outcomes(s, -1, 10, 5, r, 2, &n, &more),
                     TRIP_EINVAL);
    assert_int_equal(trip_store_read_outcomes(s, -1, 0, 5, r, 0, &n, &more),
                     TRIP_EINVAL);
    assert_int_equal(trip_store_read_outcomes(NULL, -1, 0, 5, r, 2, &n, &more),
                     TRIP_EINVAL);
    assert_int_equal(trip_store_read_outcomes(s, -5, 0, 5, r, 2, &n, &more),
                     TRIP_EINVAL);
    assert_int_equal(trip_store_count(s, 9, -1, 0, 5, &c), TRIP_EINVAL);
    assert_int_equal(trip_store_breaker_id(s, "nope", &id), TRIP_ENOTFOUND);
    assert_non_null(strstr(trip_errmsg(), "nope"));
    assert_int_equal(trip_store_flush(NULL), TRIP_EINVAL);
    trip_store_status st;
    assert_int_equal(trip_store_status_get(NULL, &st), TRIP_EINVAL);
    assert_int_equal(trip_store_close(NULL), TRIP_OK);
    trip_store_opts_init(NULL);
    assert_int_equal(trip_store_close(s), TRIP_OK);
}

/* Another connection holds the write lock: calls go on, the error is
 * reported, and writing resumes without loss once the lock is gone. */
static void
test_store_locked_file_recovers(void **state)
{
    (void)state;
    char path[256];
    test_db_path(path, sizeof path, "locked");
    trip_config cfg;
    quiet_config(&cfg);
    trip_store_opts o;
    trip_store_opts_init(&o);
    o.busy_timeout_ms = 20;
    o.flush_interval_ns = 10 * TEST_MS_;
    env *e = env_new(path, &o, &cfg);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL),
                     SQLITE_OK);
    for (int i = 0; i < 500; i++) {
        trip_clock_advance(e->clk, 10 * TEST_MS_);
        assert_int_equal(call(e, TRIP_SUCCESS, 0.002), TRIP_PASS);
    }
    assert_int_equal(trip_store_flush(e->s), TRIP_EBUSY);
    trip_store_status st;
    trip_store_status_get(e->s, &st);
    assert_int_equal(st.status, TRIP_EBUSY);
    assert_non_null(strstr(st.message, "locked"));
    assert_true(st.write_errors > 0 && st.retries > 0);
    assert_int_equal(st.pending, 500);
    trip_snapshot snap;
    trip_snapshot_get(e->b, &snap);
    assert_int_equal(snap.store_status, TRIP_EBUSY);
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(db);
    assert_int_equal(trip_store_flush(e->s), TRIP_OK);
    trip_store_status_get(e->s, &st);
    assert_int_equal(st.status, TRIP_OK);
    assert_int_equal(st.written, 500);
    assert_int_equal(st.dropped_error + st.dropped_full, 0);
    assert_int_equal(count(e->s, 0), 500);
    env_free(e);
    unlink(path);
}

/* A store at a new file `name` with busy_timeout_ms busy_ms, and another
 * connection (*db) holding the file's write lock. */
static trip_store *
open_locked(char *path, size_t size, const char *name, int64_t busy_ms,
            sqlite3 **db)
{
    test_db_path(path, size, name);
    trip_store_opts o;
    trip_store_opts_init(&o);
    o.busy_timeout_ms = busy_ms;
    trip_store *s = NULL;
    assert_int_equal(trip_store_open(path, &o, &s), TRIP_OK);
    assert_int_equal(sqlite3_open(path, db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(*db, "BEGIN IMMEDIATE", NULL, NULL, NULL),
                     SQLITE_OK);
    return s;
}

/* Attaching while the database is locked still works: the breaker gets a
 * provisional id that the writer maps once the database answers. */
static void
test_store_attach_while_locked(void **state)
{
    (void)state;
    char path[256];
    sqlite3 *db;
    trip_store *s = open_locked(path, sizeof path, "attach", 10, &db);
    trip_clock *clk;
    trip_clock_manual_new(T0_, WALL0_ - T0_, &clk);
    trip_config cfg;
    quiet_config(&cfg);
    trip_breaker *b;
    trip_breaker_new("late", &cfg, clk, &b);
    assert_int_equal(trip_breaker_attach(b, s), TRIP_OK);
    trip_ticket t;
    for (int i = 0; i < 10; i++) {
        trip_clock_advance(clk, TEST_S_);
        assert_int_equal(trip_allow(b, &t), TRIP_PASS);
        trip_record_latency(b, &t, TRIP_SUCCESS, 0.01);
    }
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(db);
    assert_int_equal(trip_store_flush(s), TRIP_OK);
    int id = -1;
    assert_int_equal(trip_store_breaker_id(s, "late", &id), TRIP_OK);
    int64_t n = 0;
    assert_int_equal(trip_store_count(s, 0, id, 0, INT64_MAX, &n), TRIP_OK);
    assert_int_equal(n, 10);
    trip_breaker_free(b);
    trip_store_close(s);
    trip_clock_free(clk);
    unlink(path);
}

typedef struct attacher {
    trip_breaker *b;
    trip_store *s;
    int rc;
    atomic_int done;
} attacher;

static void *
attach_thread(void *p)
{
    attacher *a = p;
    a->rc = trip_breaker_attach(a->b, a->s);
    atomic_store(&a->done, 1);
    return NULL;
}

/* An attach waiting on the database (another connection holds the write
 * lock, busy_timeout_ms a minute) does not hold up the breaker: a call
 * that trips it, which needs the breaker's lock, completes while the
 * attach still waits. (When the attach held that lock through the
 * database work, the trip waited for the attach, which waited for the
 * lock, released here only after the trip.) */
static void
test_store_attach_does_not_block_calls(void **state)
{
    (void)state;
    char path[256];
    sqlite3 *db;
    trip_store *s = open_locked(path, sizeof path, "attach-wait", 60000, &db);
    trip_clock *clk;
    trip_clock_manual_new(T0_, WALL0_ - T0_, &clk);
    trip_config cfg;
    quiet_config(&cfg);
    trip_breaker *b;
    assert_int_equal(trip_breaker_new("waiting", &cfg, clk, &b), TRIP_OK);
    attacher a = {b, s, -1, 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, attach_thread, &a), 0);
    /* let the attach reach the database (if it has not yet, the trip
     * below comes first and the test shows less, but still holds) */
    struct timespec pause = {0, 100 * 1000 * 1000};
    nanosleep(&pause, NULL);
    trip_ticket t;
    for (uint32_t i = 0; i < cfg.consecutive_failures; i++) {
        trip_clock_advance(clk, TEST_MS_);
        assert_int_equal(trip_allow(b, &t), TRIP_PASS);
        trip_record_latency(b, &t, TRIP_FAILURE, 0.01);
    }
    assert_int_equal(trip_breaker_state(b), TRIP_OPEN);
    assert_int_equal(atomic_load(&a.done), 0);
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(db);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(a.rc, TRIP_OK);
    assert_int_equal(trip_store_flush(s), TRIP_OK);
    int id = -1;
    assert_int_equal(trip_store_breaker_id(s, "waiting", &id), TRIP_OK);
    trip_breaker_free(b);
    assert_int_equal(trip_store_close(s), TRIP_OK);
    trip_clock_free(clk);
    unlink(path);
}

static void
test_store_read_only_refuses_attach(void **state)
{
    (void)state;
    char path[256];
    test_db_path(path, sizeof path, "ro");
    trip_store *s = NULL;
    assert_int_equal(trip_store_open(path, NULL, &s), TRIP_OK);
    trip_store_close(s);
    trip_store_opts o;
    trip_store_opts_init(&o);
    o.read_only = 1;
    assert_int_equal(trip_store_open(path, &o, &s), TRIP_OK);
    trip_breaker *b;
    trip_breaker_new("x", NULL, NULL, &b);
    assert_int_equal(trip_breaker_attach(b, s), TRIP_EINVAL);
    assert_non_null(strstr(trip_errmsg(), "read-only"));
    assert_int_equal(count(s, 0), 0);
    trip_breaker_free(b);
    trip_store_close(s);
    unlink(path);
}

/* A history file deleted while open is noticed and created anew: rows
 * recorded after the deletion are not swallowed by the unlinked inode. */
static void
test_store_deleted_file_is_recreated(void **state)
{
    (void)state;
    char path[256];
    test_db_path(path, sizeof path, "deleted");
    trip_config cfg;
    quiet_config(&cfg);
    env *e = env_new(path, NULL, &cfg);
    for (int i = 0; i < 100; i++) {
        trip_clock_advance(e->clk, 10 * TEST_MS_);
        call(e, TRIP_SUCCESS, 0.002);
    }
    assert_int_equal(trip_store_flush(e->s), TRIP_OK);
    /* reads keep their statements prepared on the reader connection: the
     * reopen must drop them with it, or reads would go on in the unlinked
     * file (and the old connection would never close) */
    int id = -1;
    int64_t n = 0;
    assert_int_equal(trip_store_breaker_id(e->s, "payments", &id), TRIP_OK);
    assert_int_equal(trip_store_count(e->s, 0, id, 0, INT64_MAX, &n), TRIP_OK);
    assert_int_equal(n, 100);
    test_db_path(path, sizeof path, "deleted"); /* unlinks the three files */
    for (int i = 0; i < 50; i++) {
        trip_clock_advance(e->clk, 10 * TEST_MS_);
        assert_int_equal(call(e, TRIP_FAILURE, 0.002) == TRIP_PASS || i >= 5,
                         1);
    }
    assert_int_equal(trip_store_flush(e->s), TRIP_OK);
    trip_store_status st;
    trip_store_status_get(e->s, &st);
    assert_int_equal(st.reopens, 1);
    assert_int_equal(access(path, F_OK), 0);
    assert_int_equal(trip_store_breaker_id(e->s, "payments", &id), TRIP_OK);
    assert_int_equal(trip_store_count(e->s, 0, id, 0, INT64_MAX, &n), TRIP_OK);
    assert_int_equal(n, st.written - 100);
    trip_breaker_free(e->b);
    e->b = NULL;
    assert_int_equal(trip_store_close(e->s), TRIP_OK);
    assert_int_equal(trip_store_open(path, NULL, &e->s), TRIP_OK);
    assert_int_equal(trip_store_breaker_id(e->s, "payments", &id), TRIP_OK);
    assert_int_equal(trip_store_count(e->s, 0, id, 0, INT64_MAX, &n), TRIP_OK);
    assert_int_equal(n, st.written - 100);
    assert_true(n >= 5);
    assert_int_equal(trip_store_count(e->s, 2, id, 0, INT64_MAX, &n), TRIP_OK);
    assert_true(n >= 1); /* the trip after the deletion */
    env_free(e);
    unlink(path);
}

/* The file and its directory deleted: opening the path again fails, and
 * the writer keeps trying at each round (it tried once and then wrote on
 * no connection for good); reads say the history is not open. Once the
 * directory is back, the next flush recreates the file with the rows
 * held. */
static void
test_store_reopen_retried_after_it_failed(void **state)
{
    (void)state;
    char dir[256], path[300];
    snprintf(dir, sizeof dir, "/tmp/tripsense-reopen-%d", (int)getpid());
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/h.db", dir);
    test_rm_db(path);
    trip_config cfg;
    quiet_config(&cfg);
    env *e = env_new(path, NULL, &cfg);
    for (int i = 0; i < 10; i++) {
        trip_clock_advance(e->clk, 10 * TEST_MS_);
        call(e, TRIP_SUCCESS, 0.002);
    }
    assert_int_equal(trip_store_flush(e->s), TRIP_OK);
    test_rm_db(path);
    assert_int_equal(rmdir(dir), 0);
    for (int i = 0; i < 20; i++) {
        trip_clock_advance(e->clk, 10 * TEST_MS_);
        assert_int_equal(call(e, TRIP_SUCCESS, 0.002), TRIP_PASS);
    }
    assert_true(trip_store_flush(e->s) < 0);
    assert_non_null(strstr(trip_errmsg(), "h.db")); /* the store's message */
    assert_true(trip_store_flush(e->s) < 0); /* still failing, not wedged */
    int64_t n = 0;
    assert_int_equal(trip_store_count(e->s, 0, -1, 0, INT64_MAX, &n),
                     TRIP_ESTORE);
    assert_non_null(strstr(trip_errmsg(), "not open"));
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(trip_store_flush(e->s), TRIP_OK);
    assert_int_equal(access(path, F_OK), 0);
    assert_int_equal(trip_store_count(e->s, 0, -1, 0, INT64_MAX, &n), TRIP_OK);
    assert_int_equal(n, 20);
    env_free(e);
    test_rm_db(path);
    rmdir(dir);
}

/* Calls while another thread attaches and detaches the breaker: every row
 * carries the id of the store it goes to (the store and the id were
 * published apart, and a call between them pushed rows of id -1, which
 * the writer retried for ever, blocking every later row). */
typedef struct flip_ {
    trip_breaker *b;
    trip_store *s;
    atomic_int stop;
} flip_;

static void *
flip_main_(void *p)
{
    flip_ *f = p;
    for (int i = 0; i < 200; i++) {
        assert_int_equal(trip_breaker_attach(f->b, f->s), TRIP_OK);
        assert_int_equal(trip_breaker_attach(f->b, NULL), TRIP_OK);
    }
    atomic_store(&f->stop, 1);
    return NULL;
}

static void
test_store_calls_during_attach_and_detach(void **state)
{
    (void)state;
    char path[256];
    test_db_path(path, sizeof path, "flip");
    trip_store *s = NULL;
    assert_int_equal(trip_store_open(path, NULL, &s), TRIP_OK);
    trip_config cfg;
    quiet_config(&cfg);
    cfg.consecutive_failures = 0;
    trip_breaker *b = NULL, *other = NULL;
    assert_int_equal(trip_breaker_new("flip", &cfg, NULL, &b), TRIP_OK);
    assert_int_equal(trip_breaker_new("steady", &cfg, NULL, &other), TRIP_OK);
    assert_int_equal(trip_breaker_attach(other, s), TRIP_OK);
    flip_ f = {b, s, 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, flip_main_, &f), 0);
    while (!atomic_load(&f.stop)) {
        trip_ticket t;
        if (trip_allow(b, &t) == TRIP_PASS)
            trip_record(b, &t, TRIP_FAILURE);
    }
    pthread_join(th, NULL);
    for (int i = 0; i < 100; i++) {
        trip_ticket t;
        assert_int_equal(trip_allow(other, &t), TRIP_PASS);
        assert_int_equal(trip_record(other, &t, TRIP_SUCCESS), TRIP_OK);
    }
    assert_int_equal(trip_store_flush(s), TRIP_OK);
    int id = -1;
    int64_t n = 0;
    assert_int_equal(trip_store_breaker_id(s, "steady", &id), TRIP_OK);
    assert_int_equal(trip_store_count(s, 0, id, INT64_MIN, INT64_MAX, &n),
                     TRIP_OK);
    assert_int_equal(n, 100);
    trip_store_status st;
    assert_int_equal(trip_store_status_get(s, &st), TRIP_OK);
    assert_int_equal(st.write_errors, 0);
    trip_breaker_free(b);
    trip_breaker_free(other);
    assert_int_equal(trip_store_close(s), TRIP_OK);
    test_rm_db(path);
}

static void
test_store_sampling_keeps_failures_and_slow_calls(void **state)
{
    (void)state;
    trip_config cfg;
    quiet_config(&cfg);
    cfg.consecutive_failures = 0;
    trip_store_opts o;
    trip_store_opts_init(&o);
    o.sample_mode = TRIP_SAMPLE_FAILURES;
    env *e = env_new(":memory:", &o, &cfg);
    int64_t keep = 0;
    for (int i = 0; i < 1000; i++) {
        trip_clock_advance(e->clk, 50 * TEST_MS_);
        int out = i % 13 == 0   ? TRIP_FAILURE
                  : i % 17 == 0 ? TRIP_TIMEOUT
                  : i % 19 == 0 ? TRIP_IGNORED
                                : TRIP_SUCCESS;
        double lat = i % 11 == 0 ? 0.7 : 0.01;
        assert_int_equal(call(e, out, lat), TRIP_PASS);
        /* an ignored call is neither success nor failure, nor slow */
        keep += out == TRIP_FAILURE || out == TRIP_TIMEOUT ||
                (lat >= 0.5 && out != TRIP_IGNORED);
    }
    trip_store_flush(e->s);
    assert_int_equal(count(e->s, 0), keep);
    trip_outcome_row rows[1000];
    size_t n = 0;
    int more = 0;
    trip_store_read_outcomes(e->s, -1, 0, INT64_MAX, rows, 1000, &n, &more);
    for (size_t i = 0; i < n; i++)
        assert_true(rows[i].outcome == TRIP_FAILURE ||
                    rows[i].outcome == TRIP_TIMEOUT || rows[i].slow);
    trip_store_status st;
    trip_store_status_get(e->s, &st);
    assert_int_equal(st.sampled_out, 1000 - keep);
    env_free(e);
}

/* A result that arrives after the state changed stays out of the windows
 * but is still an outcome: the minute's rollup counts it. */
static void
test_store_rollups_count_late_results(void **state)
{
    (void)state;
    trip_config cfg;
    quiet_config(&cfg);
    env *e = env_new(":memory:", NULL, &cfg);
    trip_ticket early;
    assert_int_equal(trip_allow(e->b, &early), TRIP_PASS);
    for (int i = 0; i < 5; i++) {
        trip_clock_advance(e->clk, 100 * TEST_MS_);
        call(e, TRIP_FAILURE, 0.01);
    }
    trip_clock_advance(e->clk, 2 * TEST_S_);
    assert_int_equal(trip_breaker_state(e->b), TRIP_OPEN);
    assert_int_equal(trip_record_latency(e->b, &early, TRIP_TIMEOUT, 2.2),
                     TRIP_OK);
    trip_snapshot snap;
    trip_snapshot_get(e->b, &snap);
    assert_int_equal(snap.late, 1);
    trip_breaker_attach(e->b, NULL);
    trip_store_flush(e->s);
    trip_rollup_row r[8];
    size_t n = 0;
    int more = 0;
    trip_store_read_rollups(e->s, -1, 0, INT64_MAX, r, 8, &n, &more);
    int64_t calls = 0, fails = 0, timeouts = 0;
    for (size_t i = 0; i < n; i++) {
        calls += r[i].calls;
        fails += r[i].failures;
        timeouts += r[i].timeouts;
        /* the quantiles are of the latencies the minute holds (a late
         * result has none in it): not the histogram's top bin */
        assert_true(r[i].p99_s < 0.02 && r[i].p999_s < 0.02);
    }
    assert_int_equal(calls, 6);
    assert_int_equal(fails, 5);
    assert_int_equal(timeouts, 1);
    assert_int_equal(count(e->s, 0), 6);
    env_free(e);
}

/* Each call lands in the rollup of the minute it was made in, refusals
 * during a long open period too. */
static void
test_store_rollups_split_by_minute(void **state)
{
    (void)state;
    trip_config cfg;
    quiet_config(&cfg);
    cfg.open_ns = 300 * TEST_S_;
    cfg.open_max_ns = 300 * TEST_S_;
    env *e = env_new(":memory:", NULL, &cfg);
    /* WALL0_ is a minute boundary; calls at 0.1 s steps from 0.05 s */
    trip_clock_advance(e->clk, 50 * TEST_MS_);
    for (int i = 0; i < 1200; i++) {
        call(e, TRIP_SUCCESS, 0.001);
        trip_clock_advance(e->clk, 100 * TEST_MS_);
    }
    /* minute 2: five failures trip it, then 10 refusals a second */
    for (int i = 0; i < 5; i++)
        call(e, TRIP_FAILURE, 0.001);
    assert_int_equal(trip_breaker_state(e->b), TRIP_OPEN);
    for (int i = 0; i < 1195; i++) {
        trip_clock_advance(e->clk, 100 * TEST_MS_);
        assert_int_equal(call(e, TRIP_SUCCESS, 0.001), TRIP_REJECTED);
    }
    trip_breaker_attach(e->b, NULL);
    trip_store_flush(e->s);
    trip_rollup_row r[8];
    size_t n = 0;
    int more = 0;
    trip_store_read_rollups(e->s, -1, 0, INT64_MAX, r, 8, &n, &more);
    assert_int_equal(n, 4);
    /* refusals at 120.15 s, 120.25 s, ...: 599 before 180 s, 596 after */
    int64_t want_calls[4] = {600, 600, 5, 0};
    int64_t want_rej[4] = {0, 0, 599, 596};
    for (int m = 0; m < 4; m++) {
        assert_int_equal(r[m].minute_ns, WALL0_ + m * 60 * TEST_S_);
        assert_int_equal(r[m].calls, want_calls[m]);
        assert_int_equal(r[m].rejected, want_rej[m]);
    }
    env_free(e);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_round_trip_every_field),
        cmocka_unit_test(test_store_rollups_exact_and_transitions),
        cmocka_unit_test(test_store_paging_never_splits_a_timestamp),
        cmocka_unit_test(test_store_retention_relative_to_newest),
        cmocka_unit_test(test_store_ring_overflow_is_counted),
        cmocka_unit_test(test_store_schema_checks),
        cmocka_unit_test(test_store_migrates_version_1),
        cmocka_unit_test(test_store_migrates_version_2),
        cmocka_unit_test(test_store_write_error_names_the_reason),
        cmocka_unit_test(test_store_bad_input),
        cmocka_unit_test(test_store_locked_file_recovers),
        cmocka_unit_test(test_store_attach_while_locked),
        cmocka_unit_test(test_store_attach_does_not_block_calls),
        cmocka_unit_test(test_store_read_only_refuses_attach),
        cmocka_unit_test(test_store_deleted_file_is_recreated),
        cmocka_unit_test(test_store_reopen_retried_after_it_failed),
        cmocka_unit_test(test_store_calls_during_attach_and_detach),
        cmocka_unit_test(test_store_sampling_keeps_failures_and_slow_calls),
        cmocka_unit_test(test_store_rollups_count_late_results),
        cmocka_unit_test(test_store_rollups_split_by_minute),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
