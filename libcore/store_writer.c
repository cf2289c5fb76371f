/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The writer thread: drains the ring and the row queue into batched SQLite
 * transactions, retries on failure without blocking anyone, and applies
 * retention. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "store_impl.h"

#define TRIP_TICK_NS_ 5000000LL           /* writer polls the ring this often */
#define TRIP_BACKOFF_MIN_NS_ 50000000LL   /* first retry after a failure */
#define TRIP_BACKOFF_MAX_NS_ 5000000000LL /* and at most this long after */
#define TRIP_DAY_NS_ 86400000000000.0
#define TRIP_RETAIN_DATA_NS_ 3600000000000LL /* retention per data hour */
#define TRIP_RETAIN_REAL_NS_ 60000000000LL   /* or per real minute */

enum {
    TRIP_ST_OUTCOME,
    TRIP_ST_ROLLUP,
    TRIP_ST_TRANSITION,
    TRIP_ST_BASELINE,
    TRIP_ST_SEEN,
    TRIP_ST_MULTI,
    TRIP_ST_N
};

/* Outcome rows per multi-row INSERT: one statement step for many rows
 * costs much less per row than one step each (bench/bench_store.c). */
#define TRIP_MULTI_ 64

/* Columns are named: a later schema version may add a column (with a
 * default) to a table while a process of this version still writes it. */
#define TRIP_OUTCOME_COLS_                                                     \
    "outcomes(t_ns, breaker_id, outcome, latency_ns, state, decision, slow, "  \
    "weight)"

static const char *const trip_sql_[TRIP_ST_N] = {
    "INSERT INTO " TRIP_OUTCOME_COLS_ " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    "INSERT INTO rollups(breaker_id, minute_ns, calls, successes, failures, "
    "timeouts, ignored, slow, rejected, limited, latency_sum_s, p50_s, p90_s, "
    "p95_s, p99_s, p999_s) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
    "?11, ?12, ?13, ?14, ?15, ?16) ON CONFLICT(breaker_id, minute_ns) DO "
    "UPDATE SET calls = calls + excluded.calls, successes = successes + "
    "excluded.successes, failures = failures + excluded.failures, timeouts "
    "= timeouts + excluded.timeouts, ignored = ignored + excluded.ignored, "
    "slow = slow + excluded.slow, rejected = rejected + excluded.rejected, "
    "limited = limited + excluded.limited, latency_sum_s = latency_sum_s + "
    "excluded.latency_sum_s, "
#define TRIP_MERGE_Q_(c)                                                       \
    c " = CASE WHEN " c " IS NULL THEN excluded." c " WHEN excluded." c        \
      " IS NULL THEN " c " ELSE (" c " * calls + excluded." c                  \
      " * excluded.calls) / (calls + excluded.calls) END"
    TRIP_MERGE_Q_("p50_s") ", " TRIP_MERGE_Q_("p90_s") ", " TRIP_MERGE_Q_(
        "p95_s") ", " TRIP_MERGE_Q_("p99_s") ", " TRIP_MERGE_Q_("p999_s"),
    "INSERT INTO transitions(t_ns, breaker_id, from_state, to_state, rule, "
    "score, threshold, baseline, samples) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, "
    "?8, ?9)",
    "INSERT OR REPLACE INTO baselines(breaker_id, bucket, metric, mean, var, "
    "n, updated_ns, quantile) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    "UPDATE breakers SET first_seen_ns = min(coalesce(first_seen_ns, ?2), "
    "?2), last_seen_ns = max(coalesce(last_seen_ns, ?3), ?3) WHERE id = ?1",
    NULL, /* TRIP_ST_MULTI, built by trip_multi_sql_() */
};

static char *
trip_multi_sql_(void)
{
    trip__buf b = {0};
    trip__buf_printf(&b, "INSERT INTO " TRIP_OUTCOME_COLS_ " VALUES");
    for (int i = 0; i < TRIP_MULTI_; i++)
        trip__buf_printf(&b, "%s(?,?,?,?,?,?,?,?)", i ? "," : "");
    char *out = NULL;
    return trip__buf_finish(&b, &out) == TRIP_OK ? out : NULL;
}

/* The writer's own state: rows it holds until the database takes them. */
typedef struct trip_writer_ {
    trip_store *s;
    sqlite3_stmt *st[TRIP_ST_N];
    trip__outcome_rec *rows;
    size_t n, cap;
    trip__rows rollups, transitions, baselines;
    int64_t next_try_ns, backoff_ns, newest_ns;
    int64_t retained_data_ns, retained_real_ns;
    char errmsg[160]; /* the last failed transaction's SQLite message */
} trip_writer_;

static int64_t
trip_mono_(void)
{
    return trip_clock_now(NULL);
}

/* Count rows lost for good, per breaker too. */
static void
trip_lose_(trip_store *s, const trip__outcome_rec *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        atomic_fetch_add_explicit(
            &s->dropped_by[(uint32_t)r[i].breaker_id % TRIP__SLOTS], 1,
            memory_order_relaxed);
    atomic_fetch_add(&s->dropped_error, (int64_t)n);
}

/* Move rows from the ring into the writer's hold. */
static void
trip_drain_(trip_writer_ *w)
{
    trip_store *s = w->s;
    uint64_t pos = atomic_load_explicit(&s->head, memory_order_relaxed);
    for (;;) {
        trip__slot *slot = &s->ring[pos & s->mask];
        uint32_t seq = atomic_load_explicit(&slot->seq, memory_order_acquire);
        if (seq != (uint32_t)pos + 1)
            break;
        trip__outcome_rec rec = {
            slot->wall_ns, slot->latency_ns, slot->breaker_id,
            slot->outcome, slot->state,      slot->decision,
            slot->slow,    slot->weight,     0};
        if (w->n < w->cap)
            w->rows[w->n++] = rec;
        else
            trip_lose_(s, &rec, 1);
        atomic_store_explicit(&slot->seq, (uint32_t)(pos + s->mask + 1),
                              memory_order_release);
        pos++;
    }
    atomic_store_explicit(&s->head, pos, memory_order_release);
    atomic_store(&s->held, (int64_t)w->n);
}

static void
trip_take_queue_(trip_writer_ *w)
{
    trip_store *s = w->s;
    pthread_mutex_lock(&s->q_mu);
    trip__rows *q[3] = {&s->q_rollups, &s->q_transitions, &s->q_baselines};
    trip__rows *d[3] = {&w->rollups, &w->transitions, &w->baselines};
    for (int i = 0; i < 3; i++) {
        if (q[i]->n == 0)
            continue;
        if (d[i]->n == 0) { /* the common case: swap, no copy */
            trip__rows t = *d[i];
            *d[i] = *q[i];
            *q[i] = t;
        } else if (trip__rows_push(d[i], q[i]->p, q[i]->n) == TRIP_OK) {
            q[i]->n = 0;
        }
    }
    pthread_mutex_unlock(&s->q_mu);
}

static int
trip_prepare_(trip_writer_ *w)
{
    for (int i = 0; i < TRIP_ST_N; i++) {
        if (w->st[i] != NULL)
            continue;
        char *multi = i == TRIP_ST_MULTI ? trip_multi_sql_() : NULL;
        if (i == TRIP_ST_MULTI && multi == NULL)
            return SQLITE_NOMEM;
        int rc = sqlite3_prepare_v3(w->s->db, multi ? multi : trip_sql_[i], -1,
                                    SQLITE_PREPARE_PERSISTENT, &w->st[i], NULL);
        trip_string_free(multi);
        if (rc != SQLITE_OK)
            return rc;
    }
    return SQLITE_OK;
}

static int
trip_step_(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static void
trip_bind_real_(sqlite3_stmt *st, int i, double v)
{
    if (isfinite(v))
        sqlite3_bind_double(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

/* Bind one outcome row at parameter offset p (0-based). */
static int
trip_bind_outcome_(trip_writer_ *w, sqlite3_stmt *st, int p,
                   const trip__outcome_rec *r)
{
    int id = trip__store_resolve(w->s, r->breaker_id);
    if (id < 0)
        return SQLITE_CANTOPEN;
    sqlite3_bind_int64(st, p + 1, r->wall_ns);
    sqlite3_bind_int(st, p + 2, id);
    sqlite3_bind_int(st, p + 3, r->outcome);
    sqlite3_bind_int64(st, p + 4, r->latency_ns);
    sqlite3_bind_int(st, p + 5, r->state);
    sqlite3_bind_int(st, p + 6, r->decision);
    sqlite3_bind_int(st, p + 7, r->slow);
    sqlite3_bind_double(st, p + 8, (double)r->weight);
    if (r->wall_ns > w->newest_ns)
        w->newest_ns = r->wall_ns;
    return SQLITE_OK;
}

static int
trip_put_outcomes_(trip_writer_ *w, size_t k)
{
    size_t i = 0;
    int rc = SQLITE_OK;
    for (; rc == SQLITE_OK && i + TRIP_MULTI_ <= k; i += TRIP_MULTI_) {
        sqlite3_stmt *st = w->st[TRIP_ST_MULTI];
        for (int j = 0; rc == SQLITE_OK && j < TRIP_MULTI_; j++)
            rc = trip_bind_outcome_(w, st, 8 * j, &w->rows[i + (size_t)j]);
        rc = rc == SQLITE_OK ? trip_step_(st) : rc;
    }
    for (; rc == SQLITE_OK && i < k; i++) {
        rc = trip_bind_outcome_(w, w->st[TRIP_ST_OUTCOME], 0, &w->rows[i]);
        rc = rc == SQLITE_OK ? trip_step_(w->st[TRIP_ST_OUTCOME]) : rc;
    }
    return rc;
}

static int
trip_put_rollups_(trip_writer_ *w)
{
    sqlite3_stmt *st = w->st[TRIP_ST_ROLLUP];
    const trip_rollup_row *r = w->rollups.p;
    for (size_t i = 0; i < w->rollups.n; i++, r++) {
        int id = trip__store_resolve(w->s, r->breaker_id);
        if (id < 0)
            return SQLITE_CANTOPEN;
        int64_t v[10] = {r->minute_ns, r->calls,   r->successes, r->failures,
                         r->timeouts,  r->ignored, r->slow,      r->rejected,
                         r->limited,   0};
        sqlite3_bind_int(st, 1, id);
        for (int j = 0; j < 9; j++)
            sqlite3_bind_int64(st, 2 + j, v[j]);
        sqlite3_bind_double(st, 11, r->latency_sum_s);
        double q[5] = {r->p50_s, r->p90_s, r->p95_s, r->p99_s, r->p999_s};
        for (int j = 0; j < 5; j++)
            trip_bind_real_(st, 12 + j, q[j]);
        int rc = trip_step_(st);
        if (rc != SQLITE_OK)
            return rc;
        if (r->minute_ns > w->newest_ns)
            w->newest_ns = r->minute_ns;
    }
    return SQLITE_OK;
}

static int
trip_put_transitions_(trip_writer_ *w)
{
    sqlite3_stmt *st = w->st[TRIP_ST_TRANSITION];
    const trip_transition_row *r = w->transitions.p;
    for (size_t i = 0; i < w->transitions.n; i++, r++) {
        int id = trip__store_resolve(w->s, r->breaker_id);
        if (id < 0)
            return SQLITE_CANTOPEN;
        sqlite3_bind_int64(st, 1, r->wall_ns);
        sqlite3_bind_int(st, 2, id);
        sqlite3_bind_int(st, 3, r->from);
        sqlite3_bind_int(st, 4, r->to);
        sqlite3_bind_int(st, 5, r->rule);
        trip_bind_real_(st, 6, r->score);
        trip_bind_real_(st, 7, r->threshold);
        trip_bind_real_(st, 8, r->baseline);
        sqlite3_bind_int64(st, 9, r->samples);
        int rc = trip_step_(st);
        if (rc != SQLITE_OK)
            return rc;
    }
    return SQLITE_OK;
}

static int
trip_put_baselines_(trip_writer_ *w)
{
    sqlite3_stmt *st = w->st[TRIP_ST_BASELINE];
    const trip_baseline_row *r = w->baselines.p;
    for (size_t i = 0; i < w->baselines.n; i++, r++) {
        int id = trip__store_resolve(w->s, r->breaker_id);
        if (id < 0)
            return SQLITE_CANTOPEN;
        sqlite3_bind_int(st, 1, id);
        sqlite3_bind_int(st, 2, r->bucket);
        sqlite3_bind_int(st, 3, r->metric);
        trip_bind_real_(st, 4, r->mean);
        trip_bind_real_(st, 5, r->var);
        sqlite3_bind_int64(st, 6, r->n);
        sqlite3_bind_int64(st, 7, r->updated_ns);
        trip_bind_real_(st, 8, r->quantile);
        int rc = trip_step_(st);
        if (rc != SQLITE_OK)
            return rc;
    }
    return SQLITE_OK;
}

/* first/last seen per breaker of the batch (data time, not real time) */
static int
trip_put_seen_(trip_writer_ *w, size_t k)
{
    enum { MAXB = 16 };
    int ids[MAXB];
    int64_t lo[MAXB], hi[MAXB];
    int nb = 0;
    for (size_t i = 0; i < k; i++) {
        int id = w->rows[i].breaker_id, j = 0;
        while (j < nb && ids[j] != id)
            j++;
        if (j == nb) {
            if (nb == MAXB)
                continue; /* many breakers: later batches catch up */
            ids[nb] = id;
            lo[nb] = hi[nb] = w->rows[i].wall_ns;
            nb++;
        }
        lo[j] = w->rows[i].wall_ns < lo[j] ? w->rows[i].wall_ns : lo[j];
        hi[j] = w->rows[i].wall_ns > hi[j] ? w->rows[i].wall_ns : hi[j];
    }
    sqlite3_stmt *st = w->st[TRIP_ST_SEEN];
    for (int j = 0; j < nb; j++) {
        sqlite3_bind_int(st, 1, trip__store_resolve(w->s, ids[j]));
        sqlite3_bind_int64(st, 2, lo[j]);
        sqlite3_bind_int64(st, 3, hi[j]);
        int rc = trip_step_(st);
        if (rc != SQLITE_OK)
            return rc;
    }
    return SQLITE_OK;
}

/* One transaction: k outcome rows, and the queued rows if with_queue. */
static int
trip_txn_(trip_writer_ *w, size_t k, int with_queue)
{
    sqlite3 *db = w->s->db;
    int rc = trip_prepare_(w);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = trip_put_outcomes_(w, k);
    if (rc == SQLITE_OK)
        rc = trip_put_seen_(w, k);
    if (rc == SQLITE_OK && with_queue)
        rc = trip_put_rollups_(w);
    if (rc == SQLITE_OK && with_queue)
        rc = trip_put_transitions_(w);
    if (rc == SQLITE_OK && with_queue)
        rc = trip_put_baselines_(w);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        /* the failing statement's message, before ROLLBACK replaces it
         * with "not an error" */
        snprintf(w->errmsg, sizeof w->errmsg, "%s", sqlite3_errmsg(db));
        if (!sqlite3_get_autocommit(db))
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    }
    return rc;
}

static void
trip_committed_(trip_writer_ *w, size_t k, int with_queue)
{
    trip_store *s = w->s;
    if (k > 0 && w->n > k) /* rows is NULL when its allocation failed */
        memmove(w->rows, w->rows + k, (w->n - k) * sizeof *w->rows);
    w->n -= k;
    atomic_store(&s->held, (int64_t)w->n);
    atomic_fetch_add(&s->written, (int64_t)k);
    atomic_fetch_add(&s->batches, 1);
    if (with_queue) {
        atomic_fetch_add(&s->rollups_written, (int64_t)w->rollups.n);
        atomic_fetch_add(&s->transitions_written, (int64_t)w->transitions.n);
        w->rollups.n = w->transitions.n = w->baselines.n = 0;
    }
}

static void
trip_retain_(trip_writer_ *w, int force)
{
    trip_store *s = w->s;
    int64_t now = trip_mono_();
    if (w->newest_ns <= 0 ||
        (!force && w->newest_ns - w->retained_data_ns < TRIP_RETAIN_DATA_NS_ &&
         now - w->retained_real_ns < TRIP_RETAIN_REAL_NS_))
        return;
    double days[2] = {s->opts.retention_days, s->opts.rollup_retention_days};
    const char *sql[2] = {"DELETE FROM outcomes WHERE t_ns < ?1",
                          "DELETE FROM rollups WHERE minute_ns < ?1"};
    for (int i = 0; i < 2; i++) {
        if (!(days[i] > 0))
            continue;
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(s->db, sql[i], -1, &st, NULL) == SQLITE_OK) {
            sqlite3_bind_int64(
                st, 1, w->newest_ns - (int64_t)(days[i] * TRIP_DAY_NS_));
            sqlite3_step(st); /* a failure here is retried next time */
        }
        sqlite3_finalize(st);
    }
    w->retained_data_ns = w->newest_ns;
    w->retained_real_ns = now;
}

static void
trip_failed_(trip_writer_ *w, int rc)
{
    trip_store *s = w->s;
    atomic_fetch_add(&s->write_errors, 1);
    if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
        atomic_fetch_add(&s->retries, 1);
    if (w->errmsg[0] != '\0')
        trip__store_set_error_msg(s, rc, "cannot write history", w->errmsg);
    else
        trip__store_set_error(s, s->db, rc, "cannot write history");
    w->backoff_ns = w->backoff_ns ? 2 * w->backoff_ns : TRIP_BACKOFF_MIN_NS_;
    if (w->backoff_ns > TRIP_BACKOFF_MAX_NS_)
        w->backoff_ns = TRIP_BACKOFF_MAX_NS_;
    w->next_try_ns = trip_mono_() + w->backoff_ns;
}

/* A deleted or replaced file would swallow every later row unseen: check
 * before each round and open the path again if so; after an attempt that
 * failed (no connection), try again at each round, as the backoff allows.
 * db_mu held. */
static int
trip_check_moved_(trip_writer_ *w)
{
    trip_store *s = w->s;
    int moved = 0;
    if (!s->memory && (s->db == NULL || s->rdb == NULL))
        return trip__store_reconnect(s) == TRIP_OK ? SQLITE_OK
                                                   : SQLITE_CANTOPEN;
    if (s->memory ||
        (sqlite3_file_control(s->db, "main", SQLITE_FCNTL_HAS_MOVED, &moved) ==
             SQLITE_OK &&
         !moved))
        return SQLITE_OK;
    for (int i = 0; i < TRIP_ST_N; i++) {
        sqlite3_finalize(w->st[i]);
        w->st[i] = NULL;
    }
    pthread_mutex_lock(&s->msg_mu);
    snprintf(s->message, sizeof s->message,
             "history %s was deleted or "
             "replaced while open; creating it again",
             s->path);
    pthread_mutex_unlock(&s->msg_mu);
    atomic_store(&s->status, TRIP_EIO);
    trip__store_forget_ids(s);
    return trip__store_reconnect(s) == TRIP_OK ? SQLITE_OK : SQLITE_CANTOPEN;
}

/* Write everything held, batch by batch; stop at the first failure. */
static void
trip_write_all_(trip_writer_ *w, int force)
{
    trip_store *s = w->s;
    if (!force && trip_mono_() < w->next_try_ns)
        return;
    pthread_mutex_lock(&s->db_mu);
    w->errmsg[0] = '\0';
    int with_queue = 1, rc = trip_check_moved_(w);
    while (rc == SQLITE_OK) {
        size_t k = w->n < s->opts.batch_size ? w->n : s->opts.batch_size;
        int q =
            with_queue && (w->rollups.n || w->transitions.n || w->baselines.n);
        if (k == 0 && !q)
            break;
        rc = trip_txn_(w, k, q);
        if (rc != SQLITE_OK)
            break;
        trip_committed_(w, k, q);
        with_queue = 0;
        if (w->n == 0)
            break;
    }
    if (rc == SQLITE_OK) {
        trip_retain_(w, 0);
        w->backoff_ns = 0;
        w->next_try_ns = 0;
        trip__store_set_ok(s);
    } else {
        trip_failed_(w, rc);
    }
    pthread_mutex_unlock(&s->db_mu);
}

/* Sleep until a tick passes, a flush is asked for, or the writer stops.
 * Returns the flush generation seen. */
static uint64_t
trip_wait_(trip_store *s, int *stop)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += TRIP_TICK_NS_;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->w_mu);
    uint64_t gen = s->flush_req;
    if (!s->stop && gen == s->flush_done)
        pthread_cond_timedwait(&s->w_cond, &s->w_mu, &ts);
    gen = s->flush_req;
    *stop = s->stop;
    pthread_mutex_unlock(&s->w_mu);
    return gen;
}

static void
trip_writer_free_(trip_writer_ *w)
{
    for (int i = 0; i < TRIP_ST_N; i++)
        sqlite3_finalize(w->st[i]);
    trip__free(w->rows);
    trip__rows_free(&w->rollups);
    trip__rows_free(&w->transitions);
    trip__rows_free(&w->baselines);
}

static void
trip_done_(trip_store *s, uint64_t gen)
{
    pthread_mutex_lock(&s->w_mu);
    if (gen > s->flush_done)
        s->flush_done = gen;
    pthread_cond_broadcast(&s->done_cond);
    pthread_mutex_unlock(&s->w_mu);
}

/* Closing: whatever the database would not take is lost, and counted. */
static void
trip_final_(trip_writer_ *w)
{
    trip_store *s = w->s;
    trip_drain_(w);
    trip_take_queue_(w);
    trip_write_all_(w, 1);
    if (w->n > 0)
        trip_lose_(s, w->rows, w->n);
    atomic_fetch_add(&s->q_lost, (int64_t)(w->rollups.n + w->transitions.n +
                                           w->baselines.n));
    w->n = 0;
    atomic_store(&s->held, 0);
    pthread_mutex_lock(&s->db_mu);
    trip_retain_(w, 1);
    pthread_mutex_unlock(&s->db_mu);
}

void *
trip__store_writer_main(void *arg)
{
    trip_writer_ w;
    memset(&w, 0, sizeof w);
    w.s = arg;
    trip_store *s = w.s;
    w.cap = s->opts.max_pending;
    w.rows = trip__malloc(w.cap * sizeof *w.rows);
    if (w.rows == NULL)
        w.cap = 0; /* every row is then counted as lost: never silent */
    w.rollups.size = sizeof(trip_rollup_row);
    w.transitions.size = sizeof(trip_transition_row);
    w.baselines.size = sizeof(trip_baseline_row);
    int64_t last = trip_mono_(), cost = 0;
    uint64_t done = 0;
    for (;;) {
        int stop = 0;
        uint64_t gen = trip_wait_(s, &stop);
        if (stop)
            break;
        trip_drain_(&w);
        int64_t now = trip_mono_();
        /* start early by what the last commit took and one poll tick, so
         * a row waits about one flush interval until it is committed */
        int due =
            gen > done || w.n >= s->opts.batch_size ||
            now - last >= s->opts.flush_interval_ns - cost - TRIP_TICK_NS_;
        if (due) {
            trip_take_queue_(&w);
            trip_write_all_(&w, gen > done);
            last = now;
            cost = trip_mono_() - now;
        }
        if (gen > done) {
            trip_done_(s, gen);
            done = gen;
        }
    }
    trip_final_(&w);
    trip_writer_free_(&w);
    pthread_mutex_lock(&s->w_mu);
    s->flush_done = s->flush_req;
    pthread_cond_broadcast(&s->done_cond);
    pthread_mutex_unlock(&s->w_mu);
    return NULL;
}
