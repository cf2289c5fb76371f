/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Opening and closing a history store: options, schema, writer lifecycle,
 * flush and status. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "store_impl.h"

void
trip_store_opts_init(trip_store_opts *o)
{
    if (o == NULL)
        return;
    memset(o, 0, sizeof *o);
    o->ring_capacity = 65536;
    o->flush_interval_ns = 200 * 1000000LL;
    o->batch_size = 8192;
    o->synchronous = 1;
    o->busy_timeout_ms = 5000;
    o->sample_mode = TRIP_SAMPLE_ALL;
    o->sample_n = 10;
    o->retention_days = 7;
    o->rollup_retention_days = 400;
}

static int
trip_opts_check_(const trip_store_opts *o)
{
    uint32_t c = o->ring_capacity;
    if (c < 64 || c > (1u << 26) || (c & (c - 1)) != 0)
        return trip__fail(TRIP_EINVAL,
                          "store option ring_capacity must be a "
                          "power of two in [64, 67108864], got %u",
                          c);
    if (o->flush_interval_ns < 1000000 ||
        o->flush_interval_ns > 3600LL * 1000000000LL)
        return trip__fail(TRIP_EINVAL,
                          "store option flush_interval_ns must "
                          "be in [1 ms, 1 h], got %lld",
                          (long long)o->flush_interval_ns);
    if (o->batch_size < 1 || o->batch_size > (1u << 24))
        return trip__fail(TRIP_EINVAL,
                          "store option batch_size must be in "
                          "[1, 16777216], got %u",
                          o->batch_size);
    if (o->synchronous < 0 || o->synchronous > 2)
        return trip__fail(TRIP_EINVAL,
                          "store option synchronous must be 0, "
                          "1 or 2, got %d",
                          o->synchronous);
    if (o->busy_timeout_ms < 0 || o->busy_timeout_ms > 3600000)
        return trip__fail(TRIP_EINVAL,
                          "store option busy_timeout_ms must be "
                          "in [0, 3600000], got %lld",
                          (long long)o->busy_timeout_ms);
    if (o->sample_mode < TRIP_SAMPLE_ALL ||
        o->sample_mode > TRIP_SAMPLE_FAILURES)
        return trip__fail(TRIP_EINVAL,
                          "store option sample_mode must be "
                          "0 (all), 1 (one in n) or 2 (failures), got %d",
                          o->sample_mode);
    if (o->sample_mode == TRIP_SAMPLE_ONE_IN_N && o->sample_n < 1)
        return trip__fail(TRIP_EINVAL, "store option sample_n must be >= 1");
    /* bounded so that the cutoff, days in ns before the newest row, stays
     * far inside int64 (106,000 days overflowed it) */
    if (!(o->retention_days >= 0 && o->retention_days <= 36500) ||
        !(o->rollup_retention_days >= 0 && o->rollup_retention_days <= 36500))
        return trip__fail(TRIP_EINVAL,
                          "store options retention_days and "
                          "rollup_retention_days must be in [0, 36500] "
                          "(0 keeps everything), got %g and %g",
                          o->retention_days, o->rollup_retention_days);
    return TRIP_OK;
}

int
trip__sqlite_status(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return TRIP_OK;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return TRIP_EBUSY;
    case SQLITE_NOMEM:
        return TRIP_ENOMEM;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return TRIP_EREADONLY;
    case SQLITE_FULL:
        return TRIP_EFULL;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return TRIP_ECORRUPT;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_PROTOCOL:
        return TRIP_EIO;
    default:
        return TRIP_ESTORE;
    }
}

int
trip__store_set_error(trip_store *s, sqlite3 *db, int rc, const char *what)
{
    return trip__store_set_error_msg(
        s, rc, what, db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

int
trip__store_set_error_msg(trip_store *s, int rc, const char *what,
                          const char *msg)
{
    int st = trip__sqlite_status(rc);
    if (st == TRIP_OK)
        st = TRIP_ESTORE;
    pthread_mutex_lock(&s->msg_mu);
    snprintf(s->message, sizeof s->message, "%s %s: %s", what, s->path, msg);
    pthread_mutex_unlock(&s->msg_mu);
    atomic_store(&s->status, st);
    return st;
}

void
trip__store_set_ok(trip_store *s)
{
    if (atomic_load(&s->status) == TRIP_OK)
        return;
    pthread_mutex_lock(&s->msg_mu);
    s->message[0] = '\0';
    pthread_mutex_unlock(&s->msg_mu);
    atomic_store(&s->status, TRIP_OK);
}

/* Open one connection with the store's pragmas. */
static int
trip_connect_(trip_store *s, int read_only, sqlite3 **out)
{
    int flags = read_only ? SQLITE_OPEN_READONLY
                          : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    sqlite3 *db = NULL;
    /* NOMUTEX: every use of a connection is under the store's own mutex */
    int rc = sqlite3_open_v2(s->path, &db, flags | SQLITE_OPEN_NOMUTEX, s->vfs);
    if (rc != SQLITE_OK) {
        int st = trip__sqlite_status(rc);
        trip__fail(st == TRIP_OK ? TRIP_EIO : st,
                   "cannot open history %s: "
                   "%s",
                   s->path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return st == TRIP_OK ? TRIP_EIO : st;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, (int)s->opts.busy_timeout_ms);
    *out = db;
    return TRIP_OK;
}

static int
trip_exec_(sqlite3 *db, const char *path, const char *sql)
{
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    if (rc == SQLITE_OK)
        return TRIP_OK;
    int st = trip__sqlite_status(rc);
    trip__fail(st == TRIP_OK ? TRIP_ESTORE : st, "history %s: %s (in %.40s)",
               path, err ? err : sqlite3_errstr(rc), sql);
    sqlite3_free(err);
    return st == TRIP_OK ? TRIP_ESTORE : st;
}

static int
trip_pragmas_(trip_store *s, sqlite3 *db)
{
    static const char *sync[] = {"PRAGMA synchronous=OFF",
                                 "PRAGMA synchronous=NORMAL",
                                 "PRAGMA synchronous=FULL"};
    int rc = TRIP_OK;
    if (!s->memory && !s->opts.read_only)
        rc = trip_exec_(db, s->path, "PRAGMA journal_mode=WAL");
    if (rc == TRIP_OK && !s->opts.read_only)
        rc = trip_exec_(db, s->path, sync[s->opts.synchronous]);
    return rc;
}

static void
trip_store_destroy_(trip_store *s)
{
    trip__store_forget_reads(s);
    sqlite3_close(s->rdb);
    sqlite3_close(s->db);
    for (size_t i = 0; i < s->n_names; i++) {
        trip__free(s->names[i].name);
        trip__free(s->names[i].config_json);
    }
    trip__free(s->names);
    trip__rows_free(&s->q_rollups);
    trip__rows_free(&s->q_transitions);
    trip__rows_free(&s->q_baselines);
    pthread_mutex_destroy(&s->db_mu);
    pthread_mutex_destroy(&s->rdb_mu);
    pthread_mutex_destroy(&s->q_mu);
    pthread_mutex_destroy(&s->names_mu);
    pthread_mutex_destroy(&s->w_mu);
    pthread_mutex_destroy(&s->msg_mu);
    pthread_cond_destroy(&s->w_cond);
    pthread_cond_destroy(&s->done_cond);
    trip__free(s->ring);
    trip__free(s->vfs);
    trip__free(s->path);
    trip__free(s);
}

static trip_store *
trip_store_alloc_(const char *path, const trip_store_opts *o)
{
    trip_store *s = trip__aligned_calloc(64, sizeof *s);
    if (s == NULL)
        return NULL;
    s->opts = *o;
    s->opts.vfs = NULL;
    if (s->opts.max_pending == 0)
        s->opts.max_pending = 4 * o->ring_capacity;
    s->path = trip__strdup(path);
    s->vfs = o->vfs ? trip__strdup(o->vfs) : NULL;
    /* a read-only store never takes a row: keep its ring minimal */
    if (o->read_only)
        s->opts.ring_capacity = 64;
    s->ring =
        trip__aligned_calloc(64, sizeof(trip__slot) * s->opts.ring_capacity);
    pthread_mutex_init(&s->db_mu, NULL);
    pthread_mutex_init(&s->rdb_mu, NULL);
    pthread_mutex_init(&s->q_mu, NULL);
    pthread_mutex_init(&s->names_mu, NULL);
    pthread_mutex_init(&s->w_mu, NULL);
    pthread_mutex_init(&s->msg_mu, NULL);
    pthread_cond_init(&s->w_cond, NULL);
    pthread_cond_init(&s->done_cond, NULL);
    s->q_rollups.size = sizeof(trip_rollup_row);
    s->q_transitions.size = sizeof(trip_transition_row);
    s->q_baselines.size = sizeof(trip_baseline_row);
    if (s->path == NULL || s->ring == NULL || (o->vfs && s->vfs == NULL)) {
        trip_store_destroy_(s);
        return NULL;
    }
    s->mask = s->opts.ring_capacity - 1;
    for (uint64_t i = 0; i <= s->mask; i++)
        atomic_init(&s->ring[i].seq, (uint32_t)i);
    s->memory = strcmp(path, ":memory:") == 0 || path[0] == '\0';
    return s;
}

/* Connections, pragmas and schema; the writer thread is started after. */
static int
trip_store_connect_all_(trip_store *s)
{
    int ro = s->opts.read_only;
    int rc = trip_connect_(s, ro, &s->db);
    /* Switching a new file to WAL and creating its schema take locks that
     * SQLite may refuse at once, without its busy handler (to avoid a
     * deadlock), while other processes open the same new file: try again
     * until busy_timeout_ms has passed. */
    int64_t waited_ms = 0;
    for (int64_t pause_ms = 1; rc == TRIP_OK;) {
        rc = trip_pragmas_(s, s->db);
        if (rc == TRIP_OK)
            rc = trip__store_schema(s->db, s->path, ro);
        if (rc != TRIP_EBUSY || waited_ms >= s->opts.busy_timeout_ms)
            break;
        struct timespec ts = {0, (long)pause_ms * 1000000L};
        nanosleep(&ts, NULL);
        waited_ms += pause_ms;
        rc = TRIP_OK;
        if (pause_ms < 64)
            pause_ms *= 2;
    }
    /* A second connection lets reads go on while the writer thread holds
     * the first; a read-only store has no writer, so its one connection
     * serves the reads (opening a file costs a schema parse, its locks
     * and its shared memory). */
    if (rc == TRIP_OK && !s->memory && !ro) {
        rc = trip_connect_(s, 1, &s->rdb);
        if (rc == TRIP_OK)
            sqlite3_busy_timeout(s->rdb, (int)s->opts.busy_timeout_ms);
    }
    return rc;
}

int
trip__store_reconnect(trip_store *s)
{
    pthread_mutex_lock(&s->rdb_mu);
    trip__store_forget_reads(s);
    sqlite3_close(s->rdb);
    sqlite3_close(s->db);
    s->rdb = s->db = NULL;
    int rc = trip_store_connect_all_(s);
    pthread_mutex_unlock(&s->rdb_mu);
    if (rc == TRIP_OK)
        atomic_fetch_add(&s->reopens, 1);
    return rc;
}

int
trip_store_open(const char *path, const trip_store_opts *opts, trip_store **out)
{
    if (out == NULL)
        return trip__fail(TRIP_EINVAL, "trip_store_open: out is NULL");
    *out = NULL;
    if (path == NULL)
        return trip__fail(TRIP_EINVAL, "trip_store_open: path is NULL");
    trip_store_opts o;
    if (opts != NULL)
        o = *opts;
    else
        trip_store_opts_init(&o);
    int rc = trip_opts_check_(&o);
    if (rc != TRIP_OK)
        return rc;
    if (o.read_only && strcmp(path, ":memory:") == 0)
        return trip__fail(TRIP_EINVAL, "trip_store_open: a read-only "
                                       ":memory: store would always be empty");
    trip_store *s = trip_store_alloc_(path, &o);
    if (s == NULL)
        return trip__fail(TRIP_ENOMEM, "trip_store_open: out of memory");
    rc = trip_store_connect_all_(s);
    if (rc == TRIP_OK && !o.read_only) {
        if (pthread_create(&s->thread, NULL, trip__store_writer_main, s) != 0)
            rc = trip__fail(TRIP_ETHREAD,
                            "trip_store_open: cannot start "
                            "the writer thread for %s",
                            path);
        else
            s->thread_started = 1;
    }
    if (rc != TRIP_OK) {
        trip_store_destroy_(s);
        return rc;
    }
    *out = s;
    return TRIP_OK;
}

/* Ask the writer for a full round and wait for it. */
static void
trip_store_round_(trip_store *s, int stop)
{
    pthread_mutex_lock(&s->w_mu);
    uint64_t gen = ++s->flush_req;
    if (stop)
        s->stop = 1;
    pthread_cond_signal(&s->w_cond);
    while (s->flush_done < gen && s->thread_started)
        pthread_cond_wait(&s->done_cond, &s->w_mu);
    pthread_mutex_unlock(&s->w_mu);
}

/* The store's status as this call's result, its message as the thread's
 * (status.h: every error return leaves one). */
static int
trip_store_result_(trip_store *s, int st)
{
    if (st >= 0)
        return st;
    char msg[sizeof s->message];
    pthread_mutex_lock(&s->msg_mu);
    memcpy(msg, s->message, sizeof msg);
    pthread_mutex_unlock(&s->msg_mu);
    return trip__fail(st, "%s", msg[0] ? msg : trip_strerror(st));
}

int
trip_store_flush(trip_store *s)
{
    if (s == NULL)
        return trip__fail(TRIP_EINVAL, "trip_store_flush: store is NULL");
    if (!s->thread_started)
        return TRIP_OK;
    trip_store_round_(s, 0);
    return trip_store_result_(s, atomic_load(&s->status));
}

int
trip_store_close(trip_store *s)
{
    if (s == NULL)
        return TRIP_OK;
    if (s->thread_started) {
        trip_store_round_(s, 1);
        pthread_join(s->thread, NULL);
    }
    int st = trip_store_result_(s, atomic_load(&s->status));
    trip_store_destroy_(s);
    return st;
}

int
trip_store_status_get(trip_store *s, trip_store_status *st)
{
    if (s == NULL || st == NULL)
        return trip__fail(TRIP_EINVAL, "trip_store_status_get: %s is NULL",
                          s == NULL ? "store" : "status");
    memset(st, 0, sizeof *st);
    st->status = atomic_load(&s->status);
    pthread_mutex_lock(&s->msg_mu);
    memcpy(st->message, s->message, sizeof st->message);
    pthread_mutex_unlock(&s->msg_mu);
    st->accepted = (int64_t)atomic_load(&s->tail);
    st->written = atomic_load(&s->written);
    st->dropped_error = atomic_load(&s->dropped_error);
    int64_t lost = 0;
    for (int i = 0; i < TRIP__SLOTS; i++)
        lost += atomic_load_explicit(&s->dropped_by[i], memory_order_relaxed);
    st->dropped_full = lost - st->dropped_error;
    st->sampled_out = atomic_load(&s->sampled_out);
    st->rollups_written = atomic_load(&s->rollups_written);
    st->transitions_written = atomic_load(&s->transitions_written);
    st->batches = atomic_load(&s->batches);
    st->write_errors = atomic_load(&s->write_errors);
    st->retries = atomic_load(&s->retries);
    st->pending = (int64_t)(atomic_load(&s->tail) - atomic_load(&s->head)) +
                  atomic_load(&s->held);
    st->other_dropped = atomic_load(&s->q_lost);
    st->reopens = atomic_load(&s->reopens);
    return TRIP_OK;
}
