/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Soak and crash-loop worker: simulated hours through a breaker attached to
 * a shared history file, a real-time writer to be killed, and a checker. */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tripsense/tripsense.h"

#define S_ 1000000000LL
/* Monday 2026-01-05 00:00 UTC: the simulated days start on a week. */
#define EPOCH_ (1767571200LL * S_)

static int
usage(void)
{
    fprintf(
        stderr,
        "usage: soak_proc soak DB NAME HOURS   (samples as CSV lines)\n"
        "       soak_proc crash DB SHM          (runs until killed)\n"
        "       soak_proc check DB              (integrity, rows, newest)\n");
    return 2;
}

static long
rss_kb(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* The database's logical size (pages x page size, the WAL's newer pages
 * included), which is what retention keeps flat; the file on disk lags
 * behind checkpoints. */
static long long
db_logical_bytes(const char *db)
{
    sqlite3 *h = NULL;
    long long n = -1;
    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(h,
                               "SELECT page_count * page_size FROM "
                               "pragma_page_count, pragma_page_size",
                               -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(h);
    return n;
}

/* Size of the database file, or with suffix "-wal" of its WAL. */
static long long
file_bytes(const char *db, const char *suffix)
{
    char p[4096];
    struct stat st;
    snprintf(p, sizeof p, "%s%s", db, suffix);
    return stat(p, &st) == 0 ? (long long)st.st_size : 0;
}

static void
sleep_us(long us)
{
    struct timespec d = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&d, NULL);
}

static int
die(const char *what, int rc)
{
    fprintf(stderr, "soak_proc: %s: %s (%s)\n", what, trip_status_name(rc),
            trip_errmsg());
    return 1;
}

/* A day's shape: busier in the day, a failure burst at 03:00 every day so
 * that transitions and rollups are written too. */
static int
soak_outcome(int64_t sim_ns, uint64_t *rng)
{
    *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
    int64_t sec_of_day = (sim_ns / S_) % 86400;
    unsigned r = (unsigned)(*rng >> 33) % 1000;
    if (sec_of_day >= 3 * 3600 && sec_of_day < 3 * 3600 + 120)
        return r < 700 ? TRIP_FAILURE : TRIP_SUCCESS;
    return r < 5 ? TRIP_FAILURE : r < 8 ? TRIP_TIMEOUT : TRIP_SUCCESS;
}

static void
soak_sample(const char *name, const char *db, double hours, trip_store *s,
            trip_breaker *b)
{
    trip_store_status st;
    trip_snapshot snap;
    trip_store_status_get(s, &st);
    trip_snapshot_get(b, &snap);
    printf("%s,%.3f,%ld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld\n",
           name, hours, rss_kb(), db_logical_bytes(db), file_bytes(db, ""),
           file_bytes(db, "-wal"), (long long)snap.calls,
           (long long)st.accepted, (long long)st.written,
           (long long)st.dropped_full, (long long)st.dropped_error,
           (long long)snap.store_dropped, (long long)st.pending);
    fflush(stdout);
}

/* Simulated time at full speed: 20 calls per simulated second. The writer
 * is the bottleneck, so the producer waits when the ring is half full
 * instead of dropping: the soak measures leaks and growth, not overload. */
static int
run_soak(const char *db, const char *name, double hours)
{
    trip_store_opts so;
    trip_store_opts_init(&so);
    so.retention_days = 1.0 / 24; /* raw rows for an hour: size plateaus */
    trip_store *s = NULL;
    int rc = trip_store_open(db, &so, &s);
    if (rc != TRIP_OK)
        return die("trip_store_open", rc);
    trip_clock *clk = NULL;
    trip_clock_manual_new(0, EPOCH_, &clk);
    trip_config cfg;
    trip_config_init(&cfg);
    trip_breaker *b = NULL;
    if ((rc = trip_breaker_new(name, &cfg, clk, &b)) != TRIP_OK)
        return die("trip_breaker_new", rc);
    trip_breaker_attach(b, s);
    uint64_t rng = trip_config_option_name(0)[0] + (uint64_t)getpid();
    const int64_t step = S_ / 20, sample_every = 600 * S_;
    int64_t end = (int64_t)(hours * 3600 * S_), next_sample = 0;
    for (int64_t t = 0; t <= end; t += step) {
        trip_clock_set(clk, t);
        if (t >= next_sample) {
            soak_sample(name, db, (double)t / 3600 / S_, s, b);
            next_sample += sample_every;
            trip_store_status st;
            trip_store_status_get(s, &st);
            while (st.pending > (int64_t)so.ring_capacity / 2) {
                sleep_us(2000);
                trip_store_status_get(s, &st);
            }
        }
        trip_ticket tk;
        if (trip_allow(b, &tk) == TRIP_PASS)
            trip_record_latency(b, &tk, soak_outcome(t, &rng),
                                0.002 + (double)(rng >> 54) * 1e-5);
        if ((t / step) % 4096 == 0) {
            trip_store_status st;
            trip_store_status_get(s, &st);
            while (st.pending > (int64_t)so.ring_capacity / 2) {
                sleep_us(1000);
                trip_store_status_get(s, &st);
            }
        }
    }
    trip_store_flush(s);
    soak_sample(name, db, hours, s, b);
    trip_breaker_free(b);
    rc = trip_store_close(s);
    trip_clock_free(clk);
    return rc == TRIP_OK ? 0 : die("trip_store_close", rc);
}

static int64_t
mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * S_ + ts.tv_nsec;
}

/* Real time, one call per millisecond, each stamped with CLOCK_MONOTONIC
 * (manual clock, wall offset 0), the count of accepted rows published in
 * SHM (two int64: count, stamp of the last) until SIGKILL arrives. */
static int
run_crash(const char *db, const char *shm)
{
    int fd = open(shm, O_RDWR | O_CREAT, 0600);
    if (fd < 0 || ftruncate(fd, 4096) != 0)
        return perror("shm"), 1;
    _Atomic int64_t *pub =
        mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (pub == MAP_FAILED)
        return perror("mmap"), 1;
    trip_store *s = NULL;
    int rc = trip_store_open(db, NULL, &s);
    if (rc != TRIP_OK)
        return die("trip_store_open", rc);
    trip_clock *clk = NULL;
    trip_clock_manual_new(mono_ns(), 0, &clk);
    trip_config cfg;
    trip_config_init(&cfg);
    trip_breaker *b = NULL;
    trip_breaker_new("crash", &cfg, clk, &b);
    trip_breaker_attach(b, s);
    int64_t n = atomic_load(&pub[0]);
    for (;;) {
        int64_t now = mono_ns();
        trip_clock_set(clk, now);
        trip_ticket tk;
        if (trip_allow(b, &tk) == TRIP_PASS &&
            trip_record_latency(b, &tk, TRIP_SUCCESS, 0.001) == TRIP_OK) {
            atomic_store(&pub[1], now);
            atomic_store(&pub[0], ++n);
        }
        sleep_us(1000);
    }
}

static int
run_check(const char *db)
{
    sqlite3 *h = NULL;
    char ok[64] = "";
    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
        return printf("open-failed\n"), 1;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(h, "PRAGMA integrity_check", -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        snprintf(ok, sizeof ok, "%s", sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(h);
    trip_store_opts so;
    trip_store_opts_init(&so);
    so.read_only = 1;
    trip_store *s = NULL;
    int rc = trip_store_open(db, &so, &s);
    int64_t rows = -1;
    int64_t newest = 0;
    if (rc == TRIP_OK) {
        trip_store_count(s, 0, -1, INT64_MIN, INT64_MAX, &rows);
        /* the newest row: read the last second before INT64_MAX */
        trip_outcome_row r[256];
        size_t n = 0;
        int more = 1;
        int64_t from = INT64_MIN;
        while (more &&
               trip_store_read_outcomes(s, -1, from, INT64_MAX, r, 256, &n,
                                        &more) == TRIP_OK &&
               n > 0) {
            newest = r[n - 1].wall_ns;
            from = newest + 1;
        }
        trip_store_close(s);
    }
    printf("integrity=%s open=%s rows=%lld newest_ns=%lld\n", ok,
           trip_status_name(rc), (long long)rows, (long long)newest);
    return strcmp(ok, "ok") == 0 && rc == TRIP_OK ? 0 : 1;
}

int
main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "soak") == 0)
        return run_soak(argv[2], argv[3], strtod(argv[4], NULL));
    if (argc == 4 && strcmp(argv[1], "crash") == 0)
        return run_crash(argv[2], argv[3]);
    if (argc == 3 && strcmp(argv[1], "check") == 0)
        return run_check(argv[2]);
    return usage();
}
