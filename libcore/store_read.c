/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The read API: time ranges of outcomes, rollups, transitions and saved
 * baselines, paged without splitting a timestamp, on a connection of its
 * own so reads never wait for the writer (WAL). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "store_impl.h"

typedef void (*trip_fill_fn_)(sqlite3_stmt *st, void *row);

typedef struct trip_query_ {
    int index;           /* 0..3: its statements in the store's cache */
    const char *name;    /* for messages */
    const char *columns; /* select list */
    const char *table;
    const char *time_col; /* NULL: no time range (baselines) */
    const char *order;
    size_t size;
    trip_fill_fn_ fill;
} trip_query_;

static double
trip_col_real_(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL
               ? NAN
               : sqlite3_column_double(st, i);
}

static void
trip_fill_outcome_(sqlite3_stmt *st, void *p)
{
    trip_outcome_row *r = p;
    r->wall_ns = sqlite3_column_int64(st, 0);
    r->breaker_id = sqlite3_column_int(st, 1);
    r->outcome = sqlite3_column_int(st, 2);
    r->latency_s = (double)sqlite3_column_int64(st, 3) * 1e-9;
    r->state = sqlite3_column_int(st, 4);
    r->decision = sqlite3_column_int(st, 5);
    r->slow = sqlite3_column_int(st, 6);
    r->weight = sqlite3_column_double(st, 7);
}

static void
trip_fill_rollup_(sqlite3_stmt *st, void *p)
{
    trip_rollup_row *r = p;
    r->minute_ns = sqlite3_column_int64(st, 0);
    r->breaker_id = sqlite3_column_int(st, 1);
    int64_t *c[9] = {&r->calls,    &r->successes, &r->failures,
                     &r->timeouts, &r->ignored,   &r->slow,
                     &r->rejected, &r->limited,   NULL};
    for (int i = 0; c[i] != NULL; i++)
        *c[i] = sqlite3_column_int64(st, 2 + i);
    r->latency_sum_s = sqlite3_column_double(st, 10);
    double *q[5] = {&r->p50_s, &r->p90_s, &r->p95_s, &r->p99_s, &r->p999_s};
    for (int i = 0; i < 5; i++)
        *q[i] = trip_col_real_(st, 11 + i);
}

static void
trip_fill_transition_(sqlite3_stmt *st, void *p)
{
    trip_transition_row *r = p;
    r->wall_ns = sqlite3_column_int64(st, 0);
    r->breaker_id = sqlite3_column_int(st, 1);
    r->from = sqlite3_column_int(st, 2);
    r->to = sqlite3_column_int(st, 3);
    r->rule = sqlite3_column_int(st, 4);
    r->score = trip_col_real_(st, 5);
    r->threshold = trip_col_real_(st, 6);
    r->baseline = trip_col_real_(st, 7);
    r->samples = sqlite3_column_int64(st, 8);
}

static void
trip_fill_baseline_(sqlite3_stmt *st, void *p)
{
    trip_baseline_row *r = p;
    r->breaker_id = sqlite3_column_int(st, 0);
    r->bucket = sqlite3_column_int(st, 1);
    r->metric = sqlite3_column_int(st, 2);
    r->mean = trip_col_real_(st, 3);
    r->var = trip_col_real_(st, 4);
    r->n = sqlite3_column_int64(st, 5);
    r->updated_ns = sqlite3_column_int64(st, 6);
    r->quantile = trip_col_real_(st, 7);
}

static const trip_query_ trip_q_outcomes_ = {
    0,
    "outcomes",
    "t_ns, breaker_id, outcome, latency_ns, state, decision, slow, weight",
    "outcomes",
    "t_ns",
    "t_ns, rowid",
    sizeof(trip_outcome_row),
    trip_fill_outcome_};
static const trip_query_ trip_q_rollups_ = {
    1,
    "rollups",
    "minute_ns, breaker_id, calls, successes, failures, timeouts, ignored, "
    "slow, rejected, limited, latency_sum_s, p50_s, p90_s, p95_s, p99_s, "
    "p999_s",
    "rollups",
    "minute_ns",
    "minute_ns, breaker_id",
    sizeof(trip_rollup_row),
    trip_fill_rollup_};
static const trip_query_ trip_q_transitions_ = {
    2,
    "transitions",
    "t_ns, breaker_id, from_state, to_state, rule, score, threshold, "
    "baseline, samples",
    "transitions",
    "t_ns",
    "t_ns, rowid",
    sizeof(trip_transition_row),
    trip_fill_transition_};
static const trip_query_ trip_q_baselines_ = {
    3,
    "baselines",
    "breaker_id, bucket, metric, mean, var, n, updated_ns, quantile",
    "baselines",
    NULL,
    "breaker_id, bucket, metric",
    sizeof(trip_baseline_row),
    trip_fill_baseline_};

/* A writable file store reads through its own connection (rdb, under
 * rdb_mu); a read-only or :memory: store through its one connection (db,
 * under db_mu). Decided by how the store was opened, never by whether rdb
 * is set: a reconnect closes and reopens both under both mutexes, and a
 * reader that chose by the pointer could lock one mutex and use (then
 * unlock) the other. */
static pthread_mutex_t *
trip_reader_mu_(trip_store *s)
{
    return s->memory || s->opts.read_only ? &s->db_mu : &s->rdb_mu;
}

/* The connection reads use, locked (release with trip_reader_done_); NULL
 * when a reconnect failed and left the store without one. */
static sqlite3 *
trip_reader_(trip_store *s)
{
    pthread_mutex_lock(trip_reader_mu_(s));
    return s->memory || s->opts.read_only ? s->db : s->rdb;
}

static void
trip_reader_done_(trip_store *s)
{
    pthread_mutex_unlock(trip_reader_mu_(s));
}

static int
trip_read_fail_(sqlite3 *db, trip_store *s, int rc, const char *what)
{
    int st = trip__sqlite_status(rc);
    if (st == TRIP_OK || db == NULL)
        st = TRIP_ESTORE;
    return trip__fail(st, "cannot read %s from history %s: %s", what, s->path,
                      db != NULL
                          ? sqlite3_errmsg(db)
                          : "it is not open (it was deleted or replaced, "
                            "and opening it again failed; the writer "
                            "keeps trying)");
}

/* Statement k of the cache, prepared from sql on the reader connection
 * db the first time. Paging through a history with a small buffer used to
 * parse the same SQL again for every page: half the CPU time of a read.
 * The reader's mutex is held; release with trip_release_. */
static int
trip_cached_(trip_store *s, sqlite3 *db, int k, const char *sql,
             sqlite3_stmt **st)
{
    *st = s->reads[k];
    if (*st != NULL)
        return SQLITE_OK;
    if (db == NULL)
        return SQLITE_CANTOPEN; /* no connection: trip_read_fail_ says why */
    int rc =
        sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
    if (rc == SQLITE_OK)
        s->reads[k] = *st;
    return rc;
}

/* Reset (ending the statement's read transaction, so that a checkpoint
 * never waits for a kept statement) and unbind. */
static void
trip_release_(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

void
trip__store_forget_reads(trip_store *s)
{
    for (int k = 0; k < TRIP__READS; k++) {
        sqlite3_finalize(s->reads[k]);
        s->reads[k] = NULL;
    }
}

/* Rows (or count(*) if count) of q's table in [?1, ?2), of breaker ?3 if
 * breaker_id >= 0, at most ?4 rows. */
static int
trip_prepare_read_(trip_store *s, sqlite3 *db, const trip_query_ *q, int count,
                   int breaker_id, sqlite3_stmt **st)
{
    char sql[512];
    int w = snprintf(sql, sizeof sql, "SELECT %s FROM %s WHERE 1",
                     count ? "count(*)" : q->columns, q->table);
    if (q->time_col != NULL)
        w += snprintf(sql + w, sizeof sql - (size_t)w,
                      " AND %s >= ?1 AND %s < ?2", q->time_col, q->time_col);
    if (breaker_id >= 0)
        w += snprintf(sql + w, sizeof sql - (size_t)w, " AND breaker_id = ?3");
    if (!count)
        snprintf(sql + w, sizeof sql - (size_t)w, " ORDER BY %s LIMIT ?4",
                 q->order);
    return trip_cached_(s, db, q->index * 4 + count * 2 + (breaker_id >= 0),
                        sql, st);
}

static int
trip_args_(const char *fn, trip_store *s, int breaker_id, int64_t from,
           int64_t to, const void *rows, size_t cap, const size_t *n,
           const int *more)
{
    if (s == NULL || rows == NULL || n == NULL || more == NULL)
        return trip__fail(TRIP_EINVAL,
                          "%s: store, rows, n and more must "
                          "not be NULL",
                          fn);
    if (cap == 0)
        return trip__fail(TRIP_EINVAL, "%s: cap must be > 0", fn);
    if (breaker_id < -1)
        return trip__fail(TRIP_EINVAL,
                          "%s: breaker_id must be >= 0 or -1 "
                          "for all, got %d",
                          fn, breaker_id);
    if (from > to)
        return trip__fail(TRIP_EINVAL,
                          "%s: from_ns (%lld) is after to_ns "
                          "(%lld)",
                          fn, (long long)from, (long long)to);
    return TRIP_OK;
}

/* Step through up to cap + 1 rows; the extra one only says there is more,
 * and rows sharing its timestamp are held back for the next call. */
static int
trip_collect_(sqlite3_stmt *st, const trip_query_ *q, void *rows, size_t cap,
              size_t *n, int *more)
{
    size_t k = 0, run = 0;
    int64_t last = INT64_MIN;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t t = q->time_col ? sqlite3_column_int64(st, 0) : 0;
        if (k == cap) {
            *more = 1;
            if (q->time_col != NULL && t == last)
                k = run;
            break;
        }
        if (t != last) {
            run = k;
            last = t;
        }
        q->fill(st, (char *)rows + k * q->size);
        k++;
    }
    *n = k;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return rc;
    return SQLITE_OK;
}

static int
trip_read_(const char *fn, const trip_query_ *q, trip_store *s, int breaker_id,
           int64_t from, int64_t to, void *rows, size_t cap, size_t *n,
           int *more)
{
    int rc = trip_args_(fn, s, breaker_id, from, to, rows, cap, n, more);
    if (rc != TRIP_OK)
        return rc;
    *n = 0;
    *more = 0;
    sqlite3 *db = trip_reader_(s);
    sqlite3_stmt *st = NULL;
    int src = trip_prepare_read_(s, db, q, 0, breaker_id, &st);
    if (src == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, from);
        sqlite3_bind_int64(st, 2, to);
        sqlite3_bind_int(st, 3, breaker_id);
        /* cap + 1 rows: the extra one says whether there are more */
        sqlite3_bind_int64(st, 4, cap < INT64_MAX ? (int64_t)cap + 1 : -1);
        src = trip_collect_(st, q, rows, cap, n, more);
    }
    if (src != SQLITE_OK)
        rc = trip_read_fail_(db, s, src, q->name);
    else if (*more && *n == 0)
        rc = trip__fail(TRIP_ERANGE,
                        "%s: more than cap = %zu rows share one "
                        "timestamp; call again with a larger cap",
                        fn, cap);
    if (st != NULL)
        trip_release_(st);
    trip_reader_done_(s);
    return rc;
}

int
trip_store_read_outcomes(trip_store *s, int breaker_id, int64_t from_ns,
                         int64_t to_ns, trip_outcome_row *rows, size_t cap,
                         size_t *n, int *more)
{
    return trip_read_("trip_store_read_outcomes", &trip_q_outcomes_, s,
                      breaker_id, from_ns, to_ns, rows, cap, n, more);
}

int
trip_store_read_rollups(trip_store *s, int breaker_id, int64_t from_ns,
                        int64_t to_ns, trip_rollup_row *rows, size_t cap,
                        size_t *n, int *more)
{
    return trip_read_("trip_store_read_rollups", &trip_q_rollups_, s,
                      breaker_id, from_ns, to_ns, rows, cap, n, more);
}

int
trip_store_read_transitions(trip_store *s, int breaker_id, int64_t from_ns,
                            int64_t to_ns, trip_transition_row *rows,
                            size_t cap, size_t *n, int *more)
{
    return trip_read_("trip_store_read_transitions", &trip_q_transitions_, s,
                      breaker_id, from_ns, to_ns, rows, cap, n, more);
}

int
trip_store_read_baselines(trip_store *s, int breaker_id,
                          trip_baseline_row *rows, size_t cap, size_t *n,
                          int *more)
{
    return trip_read_("trip_store_read_baselines", &trip_q_baselines_, s,
                      breaker_id, 0, 0, rows, cap, n, more);
}

int
trip_store_count(trip_store *s, int table, int breaker_id, int64_t from_ns,
                 int64_t to_ns, int64_t *n)
{
    static const trip_query_ *const qs[4] = {
        &trip_q_outcomes_, &trip_q_rollups_, &trip_q_transitions_,
        &trip_q_baselines_};
    if (n == NULL || table < 0 || table > 3)
        return trip__fail(TRIP_EINVAL, "trip_store_count: table must be 0..3 "
                                       "and n not NULL");
    int dummy = 0;
    size_t dn = 0;
    int rc = trip_args_("trip_store_count", s, breaker_id, from_ns, to_ns, n, 1,
                        &dn, &dummy);
    if (rc != TRIP_OK)
        return rc;
    *n = 0;
    sqlite3 *db = trip_reader_(s);
    sqlite3_stmt *st = NULL;
    int src = trip_prepare_read_(s, db, qs[table], 1, breaker_id, &st);
    if (src == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, from_ns);
        sqlite3_bind_int64(st, 2, to_ns);
        sqlite3_bind_int(st, 3, breaker_id);
        src = sqlite3_step(st);
        if (src == SQLITE_ROW) {
            *n = sqlite3_column_int64(st, 0);
            src = SQLITE_OK;
        }
    }
    if (src != SQLITE_OK)
        rc = trip_read_fail_(db, s, src, qs[table]->name);
    if (st != NULL)
        trip_release_(st);
    trip_reader_done_(s);
    return rc;
}

int
trip_store_breaker_id(trip_store *s, const char *name, int *id)
{
    if (s == NULL || name == NULL || id == NULL)
        return trip__fail(TRIP_EINVAL, "trip_store_breaker_id: NULL argument");
    sqlite3 *db = trip_reader_(s);
    sqlite3_stmt *st = NULL;
    int rc =
        trip_cached_(s, db, 16, "SELECT id FROM breakers WHERE name = ?1", &st);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
    }
    int out;
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int(st, 0);
        out = TRIP_OK;
    } else if (rc == SQLITE_DONE) {
        out = trip__fail(TRIP_ENOTFOUND,
                         "history %s has no breaker named "
                         "\"%s\"",
                         s->path, name);
    } else {
        out = trip_read_fail_(db, s, rc, "breakers");
    }
    if (st != NULL)
        trip_release_(st);
    trip_reader_done_(s);
    return out;
}

int
trip_store_breaker_name(trip_store *s, int id, char **name)
{
    if (s == NULL || name == NULL)
        return trip__fail(TRIP_EINVAL, "trip_store_breaker_name: NULL "
                                       "argument");
    *name = NULL;
    sqlite3 *db = trip_reader_(s);
    sqlite3_stmt *st = NULL;
    int rc =
        trip_cached_(s, db, 17, "SELECT name FROM breakers WHERE id = ?1", &st);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int(st, 1, id);
        rc = sqlite3_step(st);
    }
    int out;
    const char *text =
        rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
    if (rc == SQLITE_ROW && text == NULL) {
        /* the schema says NOT NULL: only a damaged file gets here */
        out = trip__fail(TRIP_ECORRUPT,
                         "history %s: breaker id %d has no "
                         "name",
                         s->path, id);
    } else if (rc == SQLITE_ROW) {
        *name = trip__strdup(text);
        out = *name ? TRIP_OK
                    : trip__fail(TRIP_ENOMEM, "trip_store_breaker_name: out "
                                              "of memory");
    } else if (rc == SQLITE_DONE) {
        out = trip__fail(TRIP_ENOTFOUND,
                         "history %s has no breaker with id "
                         "%d",
                         s->path, id);
    } else {
        out = trip_read_fail_(db, s, rc, "breakers");
    }
    if (st != NULL)
        trip_release_(st);
    trip_reader_done_(s);
    return out;
}
