/* SPDX-License-Identifier: GPL-3.0-or-later */
/* libFuzzer target: arbitrary or corrupted database files opened read-only
 * (and sometimes for writing) through every history read function: only
 * statuses, never a crash. */
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_util.h"

static char dir_[256], path_[300];
static uint8_t *tmpl_;
static size_t tmpl_len_;

static void
fz_unlink_all(void)
{
    char p[320];
    unlink(path_);
    snprintf(p, sizeof p, "%s-wal", path_);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path_);
    unlink(p);
    snprintf(p, sizeof p, "%s-journal", path_);
    unlink(p);
}

/* A small valid history: calls with a burst of failures (a trip and its
 * transitions), minutes of rollups, then 512-byte pages so that a corrupted
 * copy stays small. */
static void
fz_make_template(void)
{
    trip_store_opts so;
    trip_store_opts_init(&so);
    trip_store *s = NULL;
    FZ_CHECK(trip_store_open(path_, &so, &s) == TRIP_OK);
    trip_clock *clk = NULL;
    FZ_CHECK(trip_clock_manual_new(0, 1700000000LL * 1000000000, &clk) ==
             TRIP_OK);
    trip_config cfg;
    trip_config_init(&cfg);
    cfg.consecutive_failures = 5;
    trip_breaker *b = NULL;
    FZ_CHECK(trip_breaker_new("fuzz", &cfg, clk, &b) == TRIP_OK);
    FZ_CHECK(trip_breaker_attach(b, s) == TRIP_OK);
    for (int i = 0; i < 240; i++) {
        trip_ticket t;
        if (trip_allow(b, &t) == TRIP_PASS)
            trip_record_latency(
                b, &t, (i > 60 && i < 70) ? TRIP_FAILURE : TRIP_SUCCESS,
                0.001 * (i % 17));
        trip_clock_advance(clk, 1000000000);
    }
    trip_breaker_tick(b);
    FZ_CHECK(trip_store_flush(s) == TRIP_OK);
    trip_breaker_free(b);
    FZ_CHECK(trip_store_close(s) == TRIP_OK);
    trip_clock_free(clk);
    sqlite3 *db = NULL;
    FZ_CHECK(sqlite3_open(path_, &db) == SQLITE_OK);
    FZ_CHECK(sqlite3_exec(db,
                          "PRAGMA journal_mode=DELETE; PRAGMA "
                          "page_size=512; VACUUM; PRAGMA journal_mode=WAL;",
                          NULL, NULL, NULL) == SQLITE_OK);
    FZ_CHECK(sqlite3_close(db) == SQLITE_OK);
    FILE *f = fopen(path_, "rb");
    FZ_CHECK(f != NULL);
    fseek(f, 0, SEEK_END);
    tmpl_len_ = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    tmpl_ = malloc(tmpl_len_);
    FZ_CHECK(tmpl_ && fread(tmpl_, 1, tmpl_len_, f) == tmpl_len_);
    fclose(f);
    fz_unlink_all();
}

/* Leave no temporary directory behind. */
static void
fz_cleanup(void)
{
    fz_unlink_all();
    rmdir(dir_);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* tmpfs: on a disk, SQLite's fsyncs in the inputs that open the file
     * for writing made each execution wait for the device (1,500
     * executions took 20.6 s in /tmp, 11.7 s in /dev/shm, for the same
     * CPU time); FUZZ_TMPDIR overrides */
    const char *base = getenv("FUZZ_TMPDIR");
    const char *bases[] = {base ? base : "/dev/shm", "/tmp"};
    int made = 0;
    for (int i = 0; i < 2 && !made; i++) {
        snprintf(dir_, sizeof dir_, "%s/fuzz_store_read.XXXXXX", bases[i]);
        made = mkdtemp(dir_) != NULL;
    }
    FZ_CHECK(made);
    snprintf(path_, sizeof path_, "%s/h.db", dir_);
    fz_make_template();
    atexit(fz_cleanup);
    return 0;
}

static int
fz_status_ok(int rc)
{
    /* the statuses the read API documents, plus the store's own */
    return rc == TRIP_OK || rc == TRIP_EINVAL || rc == TRIP_ENOTFOUND ||
           rc == TRIP_ECORRUPT || rc == TRIP_EIO || rc == TRIP_EBUSY ||
           rc == TRIP_ESTORE || rc == TRIP_ESCHEMA || rc == TRIP_ENOMEM ||
           rc == TRIP_EREADONLY || rc == TRIP_EFULL;
}

#define FZ_CAP 16

/* Page through a table with a tiny buffer until no more rows (bounded). */
#define FZ_PAGE(call, rows, tfield)                                            \
    do {                                                                       \
        int64_t from = INT64_MIN;                                              \
        for (int pg = 0; pg < 8; pg++) {                                       \
            size_t n = 99;                                                     \
            int more = 0;                                                      \
            int rc = call;                                                     \
            FZ_CHECK(fz_status_ok(rc));                                        \
            if (rc != TRIP_OK)                                                 \
                break;                                                         \
            FZ_CHECK(n <= FZ_CAP && (more == 0 || more == 1));                 \
            if (!more || n == 0)                                               \
                break;                                                         \
            if (rows[n - 1].tfield == INT64_MAX)                               \
                break;                                                         \
            from = rows[n - 1].tfield + 1;                                     \
        }                                                                      \
    } while (0)

static void
fz_read_all(trip_store *s, int id)
{
    trip_outcome_row o[FZ_CAP];
    trip_rollup_row r[FZ_CAP];
    trip_transition_row t[FZ_CAP];
    trip_baseline_row bl[FZ_CAP];
    FZ_PAGE(
        trip_store_read_outcomes(s, id, from, INT64_MAX, o, FZ_CAP, &n, &more),
        o, wall_ns);
    FZ_PAGE(
        trip_store_read_rollups(s, id, from, INT64_MAX, r, FZ_CAP, &n, &more),
        r, minute_ns);
    FZ_PAGE(trip_store_read_transitions(s, id, from, INT64_MAX, t, FZ_CAP, &n,
                                        &more),
            t, wall_ns);
    size_t n = 0;
    int more = 0;
    FZ_CHECK(
        fz_status_ok(trip_store_read_baselines(s, id, bl, FZ_CAP, &n, &more)));
    for (int table = -1; table <= 4; table++) {
        int64_t cnt = -1;
        int rc = trip_store_count(s, table, id, INT64_MIN, INT64_MAX, &cnt);
        FZ_CHECK(fz_status_ok(rc));
        if (rc == TRIP_OK)
            FZ_CHECK(cnt >= 0);
    }
}

static void
fz_use_store(trip_store *s)
{
    int id = -1;
    FZ_CHECK(fz_status_ok(trip_store_breaker_id(s, "fuzz", &id)));
    for (int i = -1; i < 3; i++) {
        char *name = NULL;
        int rc = trip_store_breaker_name(s, i, &name);
        FZ_CHECK(fz_status_ok(rc));
        if (rc == TRIP_OK)
            FZ_CHECK(name != NULL);
        trip_string_free(name);
    }
    fz_read_all(s, -1);
    if (id >= 0)
        fz_read_all(s, id);
    trip_store_status st;
    FZ_CHECK(trip_store_status_get(s, &st) == TRIP_OK);
    FZ_CHECK(fz_status_ok(trip_store_flush(s)));
}

/* Open for writing too: attaching, a few calls and closing must not
 * crash or fail the calls, whatever the file holds. */
static void
fz_write_store(void)
{
    trip_store_opts so;
    trip_store_opts_init(&so);
    so.busy_timeout_ms = 0;
    so.ring_capacity = 64;
    trip_store *s = NULL;
    int rc = trip_store_open(path_, &so, &s);
    FZ_CHECK(fz_status_ok(rc));
    if (rc != TRIP_OK)
        return;
    trip_breaker *b = NULL;
    FZ_CHECK(trip_breaker_new("fuzz", NULL, NULL, &b) == TRIP_OK);
    FZ_CHECK(trip_breaker_attach(b, s) == TRIP_OK);
    for (int i = 0; i < 8; i++) {
        trip_ticket t;
        FZ_CHECK(trip_allow(b, &t) == TRIP_PASS);
        FZ_CHECK(trip_record(b, &t, TRIP_SUCCESS) == TRIP_OK);
    }
    fz_use_store(s);
    trip_breaker_free(b);
    FZ_CHECK(fz_status_ok(trip_store_close(s)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    uint8_t mode = fz_u8(&in);
    fz_unlink_all();
    FILE *f = fopen(path_, "wb");
    FZ_CHECK(f != NULL);
    if ((mode & 3) == 0) {
        /* the input is the file */
        FZ_CHECK(fwrite(in.p, 1, in.n, f) == in.n);
    } else {
        /* the template, maybe truncated, with byte patches */
        uint8_t *copy = malloc(tmpl_len_);
        FZ_CHECK(copy != NULL);
        memcpy(copy, tmpl_, tmpl_len_);
        size_t len = tmpl_len_;
        if ((mode & 3) == 2)
            len = fz_u32(&in) % (tmpl_len_ + 1);
        while (in.n >= 5 && len > 0) {
            size_t off = fz_u32(&in) % len;
            copy[off] = fz_u8(&in);
        }
        FZ_CHECK(fwrite(copy, 1, len, f) == len);
        free(copy);
    }
    fclose(f);
    trip_store_opts so;
    trip_store_opts_init(&so);
    so.read_only = 1;
    so.busy_timeout_ms = 0;
    so.ring_capacity = 64; /* the default 65536-slot ring costs 2 MB a run */
    trip_store *s = NULL;
    int rc = trip_store_open(path_, &so, &s);
    FZ_CHECK(fz_status_ok(rc));
    if (rc != TRIP_OK) {
        FZ_CHECK(s == NULL && trip_errmsg()[0] != '\0');
    } else {
        fz_use_store(s);
        FZ_CHECK(trip_store_close(s) == TRIP_OK);
    }
    if (mode & 0x80)
        fz_write_store();
    return 0;
}
