/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Helpers of the store fuzz targets: a small valid history as a template,
 * the input written as a database file (raw, or the template truncated and
 * patched), and every read function of the history API. */
#ifndef TRIPSENSE_FUZZ_STORE_H
#define TRIPSENSE_FUZZ_STORE_H

#include <fcntl.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_util.h"

static char fz_dir_[256], fz_path_[300];
static uint8_t *fz_tmpl_, *fz_copy_;
static size_t fz_tmpl_len_;

static inline void
fz_unlink_all(void)
{
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
    char p[320];
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s%s", fz_path_, suffix[i]);
        unlink(p);
    }
}

/* A small valid history: calls with a burst of failures (a trip and its
 * transitions), minutes of rollups, then 512-byte pages so that a corrupted
 * copy stays small. Kept in memory (fz_tmpl_); the file is removed. */
static inline void
fz_make_template(void)
{
    trip_store_opts so;
    trip_store_opts_init(&so);
    trip_store *s = NULL;
    FZ_CHECK(trip_store_open(fz_path_, &so, &s) == TRIP_OK);
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
    FZ_CHECK(sqlite3_open(fz_path_, &db) == SQLITE_OK);
    FZ_CHECK(sqlite3_exec(db,
                          "PRAGMA journal_mode=DELETE; PRAGMA "
                          "page_size=512; VACUUM; PRAGMA journal_mode=WAL;",
                          NULL, NULL, NULL) == SQLITE_OK);
    FZ_CHECK(sqlite3_close(db) == SQLITE_OK);
    FILE *f = fopen(fz_path_, "rb");
    FZ_CHECK(f != NULL);
    fseek(f, 0, SEEK_END);
    fz_tmpl_len_ = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    fz_tmpl_ = malloc(fz_tmpl_len_);
    fz_copy_ = malloc(fz_tmpl_len_);
    FZ_CHECK(fz_tmpl_ && fz_copy_ &&
             fread(fz_tmpl_, 1, fz_tmpl_len_, f) == fz_tmpl_len_);
    fclose(f);
    fz_unlink_all();
}

/* Leave no temporary directory behind. */
static inline void
fz_cleanup(void)
{
    fz_unlink_all();
    rmdir(fz_dir_);
}

/* A temporary directory (on tmpfs: on a disk, SQLite's fsyncs in the
 * inputs that open the file for writing made each execution wait for the
 * device; 1,500 executions took 20.6 s in /tmp, 11.7 s in /dev/shm, for
 * the same CPU time; FUZZ_TMPDIR overrides) and the template. */
static inline void
fz_store_init(const char *target)
{
    const char *base = getenv("FUZZ_TMPDIR");
    const char *bases[] = {base ? base : "/dev/shm", "/tmp"};
    int made = 0;
    for (int i = 0; i < 2 && !made; i++) {
        snprintf(fz_dir_, sizeof fz_dir_, "%s/%s.XXXXXX", bases[i], target);
        made = mkdtemp(fz_dir_) != NULL;
    }
    FZ_CHECK(made);
    snprintf(fz_path_, sizeof fz_path_, "%s/h.db", fz_dir_);
    fz_make_template();
    atexit(fz_cleanup);
}

/* The database file from the input: its first byte chooses the input
 * itself as the file (mode & 3 == 0) or the template, truncated if mode &
 * 3 == 2, with byte patches (offset, value) from the rest. Returns the
 * mode byte. */
static inline uint8_t
fz_store_write_file(fz_in *in)
{
    uint8_t mode = fz_u8(in);
    const uint8_t *bytes = in->p;
    size_t len = in->n;
    if ((mode & 3) != 0) {
        memcpy(fz_copy_, fz_tmpl_, fz_tmpl_len_);
        len = fz_tmpl_len_;
        if ((mode & 3) == 2)
            len = fz_u32(in) % (fz_tmpl_len_ + 1);
        while (in->n >= 5 && len > 0) {
            size_t off = fz_u32(in) % len;
            fz_copy_[off] = fz_u8(in);
        }
        bytes = fz_copy_;
    }
    fz_unlink_all();
    int fd = open(fz_path_, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    FZ_CHECK(fd >= 0);
    FZ_CHECK(len == 0 || write(fd, bytes, len) == (ssize_t)len);
    FZ_CHECK(close(fd) == 0);
    return mode;
}

static inline int
fz_status_ok(int rc)
{
    /* the statuses the read API documents, plus the store's own */
    return rc == TRIP_OK || rc == TRIP_EINVAL || rc == TRIP_ENOTFOUND ||
           rc == TRIP_ECORRUPT || rc == TRIP_EIO || rc == TRIP_EBUSY ||
           rc == TRIP_ESTORE || rc == TRIP_ESCHEMA || rc == TRIP_ENOMEM ||
           rc == TRIP_EREADONLY || rc == TRIP_EFULL;
}

/* LLVMFuzzerInitialize of the store target `target`. */
#define FZ_STORE_INITIALIZE(target)                                            \
    int LLVMFuzzerInitialize(int *argc, char ***argv);                         \
    int LLVMFuzzerInitialize(int *argc, char ***argv)                          \
    {                                                                          \
        (void)argc;                                                            \
        (void)argv;                                                            \
        fz_store_init(target);                                                 \
        return 0;                                                              \
    }

/* The input's file, opened read-only or for writing: the status must be
 * a documented one and a refusal must say why. The store, or NULL. */
static inline trip_store *
fz_store_open_input(const uint8_t *data, size_t size, int read_only)
{
    fz_in in = {data, size};
    fz_store_write_file(&in);
    trip_store_opts so;
    trip_store_opts_init(&so);
    so.read_only = read_only;
    so.busy_timeout_ms = 0;
    so.ring_capacity = 64; /* the default 65536-slot ring costs 2 MB a run */
    trip_store *s = NULL;
    int rc = trip_store_open(fz_path_, &so, &s);
    FZ_CHECK(fz_status_ok(rc));
    if (rc != TRIP_OK)
        FZ_CHECK(s == NULL && trip_errmsg()[0] != '\0');
    return s;
}

/* Each table is read whole (one call with room for every row of the
 * template) and then paged with a tiny buffer: the continuation and the
 * rows held back at a page's end are the same code on every later page,
 * and each call prepares a statement, so two pages do. */
#define FZ_CAP 16
#define FZ_WHOLE 256
#define FZ_PAGES 2

static trip_outcome_row fz_o_[FZ_WHOLE];
static trip_rollup_row fz_r_[FZ_WHOLE];
static trip_transition_row fz_t_[FZ_WHOLE];
static trip_baseline_row fz_b_[FZ_CAP];

/* Call `call` (which reads from `from` into rows, at most cap rows) for
 * up to `pages` pages, continuing after each page's last time. */
#define FZ_PAGE(call, rows, tfield, cap, pages)                                \
    do {                                                                       \
        int64_t from = INT64_MIN;                                              \
        for (int pg = 0; pg < (pages); pg++) {                                 \
            size_t n = 99999;                                                  \
            int more = 0;                                                      \
            int rc = call;                                                     \
            FZ_CHECK(fz_status_ok(rc));                                        \
            if (rc != TRIP_OK)                                                 \
                break;                                                         \
            FZ_CHECK(n <= (cap) && (more == 0 || more == 1));                  \
            if (!more || n == 0)                                               \
                break;                                                         \
            if (rows[n - 1].tfield == INT64_MAX)                               \
                break;                                                         \
            from = rows[n - 1].tfield + 1;                                     \
        }                                                                      \
    } while (0)

static inline void
fz_read_all(trip_store *s, int id)
{
    for (int paged = 0; paged < 2; paged++) {
        size_t cap = paged ? FZ_CAP : FZ_WHOLE;
        int pages = paged ? FZ_PAGES : 1;
        FZ_PAGE(trip_store_read_outcomes(s, id, from, INT64_MAX, fz_o_, cap, &n,
                                         &more),
                fz_o_, wall_ns, cap, pages);
        FZ_PAGE(trip_store_read_rollups(s, id, from, INT64_MAX, fz_r_, cap, &n,
                                        &more),
                fz_r_, minute_ns, cap, pages);
        FZ_PAGE(trip_store_read_transitions(s, id, from, INT64_MAX, fz_t_, cap,
                                            &n, &more),
                fz_t_, wall_ns, cap, pages);
    }
    size_t n = 0;
    int more = 0;
    FZ_CHECK(fz_status_ok(
        trip_store_read_baselines(s, id, fz_b_, FZ_CAP, &n, &more)));
    for (int table = -1; table <= 4; table++) {
        int64_t cnt = -1;
        int rc = trip_store_count(s, table, id, INT64_MIN, INT64_MAX, &cnt);
        FZ_CHECK(fz_status_ok(rc));
        if (rc == TRIP_OK)
            FZ_CHECK(cnt >= 0);
    }
}

/* Every read function, for all breakers and for the template's. */
static inline void
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

#endif /* TRIPSENSE_FUZZ_STORE_H */
