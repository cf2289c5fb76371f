/* SPDX-License-Identifier: GPL-3.0-or-later */
/* History store benchmark: raw SQLite batched inserts of the same rows (the
 * floor, with and without the time index), tripsense's sustained ingest and
 * writer CPU, allow+record with and without a store, and file size. */
#define _DEFAULT_SOURCE /* usleep */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../tests/c/test_files.h"
#include "tripsense/tripsense.h"

#define S_ 1000000000LL

static double
now_s(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double
file_mb(const char *path)
{
    struct stat st;
    double mb = 0;
    char side[300];
    if (stat(path, &st) == 0)
        mb += (double)st.st_size / 1e6;
    snprintf(side, sizeof side, "%s-wal", path);
    if (stat(side, &st) == 0)
        mb += (double)st.st_size / 1e6;
    return mb;
}

/* The floor: one connection, prepared insert, batches in transactions,
 * the same columns and pragmas as tripsense's outcomes table. */
static double
raw_insert_rate(const char *path, long n, int batch, int with_index)
{
    test_rm_db(path);
    sqlite3 *db;
    sqlite3_open(path, &db);
    sqlite3_exec(db,
                 "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                 "CREATE TABLE outcomes(t_ns INTEGER NOT NULL, breaker_id "
                 "INTEGER NOT NULL, outcome INTEGER NOT NULL, latency_ns "
                 "INTEGER NOT NULL, state INTEGER NOT NULL, decision INTEGER "
                 "NOT NULL, slow INTEGER NOT NULL, weight REAL NOT NULL);",
                 NULL, NULL, NULL);
    if (with_index)
        sqlite3_exec(db, "CREATE INDEX outcomes_t ON outcomes(t_ns)", NULL,
                     NULL, NULL);
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db, "INSERT INTO outcomes VALUES(?,?,?,?,?,?,?,?)", -1,
                       &st, NULL);
    double t0 = now_s(CLOCK_MONOTONIC);
    for (long i = 0; i < n;) {
        sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
        for (int j = 0; j < batch && i < n; j++, i++) {
            sqlite3_bind_int64(st, 1, 1767225600LL * S_ + i * 1000000LL);
            sqlite3_bind_int(st, 2, 1);
            sqlite3_bind_int(st, 3, i % 50 ? 0 : 1);
            sqlite3_bind_int64(st, 4, 2000000 + (i % 977) * 1000);
            sqlite3_bind_int(st, 5, 0);
            sqlite3_bind_int(st, 6, 0);
            sqlite3_bind_int(st, 7, 0);
            sqlite3_bind_double(st, 8, i % 50 ? 0.0 : 1.0);
            sqlite3_step(st);
            sqlite3_reset(st);
        }
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    }
    double dt = now_s(CLOCK_MONOTONIC) - t0;
    sqlite3_finalize(st);
    sqlite3_close(db);
    return (double)n / dt;
}

typedef struct ingest {
    double rate, writer_cpu_share, mb_per_million, ns_per_call;
    long long written, dropped;
} ingest;

/* n calls through one breaker with a store at path (NULL: no store). */
static ingest
run_calls(const char *path, long n, int pace_us)
{
    ingest r = {0};
    trip_store *s = NULL;
    trip_store_opts o;
    trip_store_opts_init(&o);
    if (path != NULL) {
        test_rm_db(path);
        if (trip_store_open(path, &o, &s) != TRIP_OK) {
            fprintf(stderr, "open: %s\n", trip_errmsg());
            exit(1);
        }
    }
    trip_config cfg;
    trip_config_init(&cfg);
    trip_breaker *b; /* the system clock, as a service would run it */
    trip_breaker_new("bench", &cfg, NULL, &b);
    if (s != NULL)
        trip_breaker_attach(b, s);
    double c0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
    double m0 = now_s(CLOCK_THREAD_CPUTIME_ID);
    double t0 = now_s(CLOCK_MONOTONIC);
    for (long i = 0; i < n; i++) {
        trip_ticket t;
        if (trip_allow(b, &t) == TRIP_PASS)
            trip_record_latency(b, &t, i % 50 ? TRIP_SUCCESS : TRIP_FAILURE,
                                0.002);
        /* paced: wait while the ring is more than half full, so the rate
         * is the writer's sustained one, without drops */
        if (pace_us > 0 && i % 4096 == 4095) {
            trip_store_status st;
            while (trip_store_status_get(s, &st) == TRIP_OK &&
                   st.pending > (int64_t)o.ring_capacity / 2)
                usleep((useconds_t)pace_us);
        }
    }
    /* the caller's own CPU time: what the hot path costs it, unaffected by
     * the writer (or anything else) taking the other core */
    double t_calls = now_s(CLOCK_THREAD_CPUTIME_ID) - m0;
    if (s != NULL)
        trip_store_flush(s);
    double dt = now_s(CLOCK_MONOTONIC) - t0;
    double main_cpu = now_s(CLOCK_THREAD_CPUTIME_ID) - m0;
    double proc_cpu = now_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
    r.ns_per_call = t_calls / (double)n * 1e9;
    if (s != NULL) {
        trip_store_status st;
        trip_store_status_get(s, &st);
        r.written = st.written;
        r.dropped = st.dropped_full + st.dropped_error;
        r.rate = (double)st.written / dt;
        r.writer_cpu_share = (proc_cpu - main_cpu) / dt;
    }
    trip_breaker_free(b);
    trip_store_close(s);
    if (path != NULL && r.written > 0)
        r.mb_per_million = file_mb(path) / ((double)r.written / 1e6);
    return r;
}

static int
cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int
main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 4000000;
    char path[256];
    /* argv[2]: the directory (its disk is part of what is measured) */
    snprintf(path, sizeof path, "%s/tripsense-bench-%d.db",
             argc > 2 ? argv[2] : "/tmp", (int)getpid());
    printf("# bench_store: %ld rows per run, file %s\n", n, path);
    double floor_idx = raw_insert_rate(path, n, 8192, 1);
    double floor_noidx = raw_insert_rate(path, n, 8192, 0);
    printf("raw SQLite insert, with time index     %10.0f rows/s\n", floor_idx);
    printf("raw SQLite insert, no index            %10.0f rows/s "
           "(the index costs %.0f%%)\n",
           floor_noidx, 100.0 * (1.0 - floor_idx / floor_noidx));
    /* sustained: the producer keeps the ring from overflowing */
    ingest full = run_calls(path, n, 200);
    printf("tripsense sustained ingest             %10.0f rows/s = %.2fx the "
           "floor; %lld written, %lld dropped; writer CPU %.2f core\n",
           full.rate, full.rate / floor_idx, full.written, full.dropped,
           full.writer_cpu_share);
    /* CPU time is what the writer needs; wall rates above also show how
     * much of a core the machine gave it */
    printf("writer CPU per row                     %10.2f us = %.0f rows per "
           "writer-CPU-second\n",
           full.writer_cpu_share / full.rate * 1e6,
           full.rate / full.writer_cpu_share);
    ingest burst = run_calls(path, n, 0);
    printf("unpaced producer (ring overflows)      %10lld written, %lld "
           "dropped and counted, of %ld\n",
           burst.written, burst.dropped, n);
    printf("file size                              %10.1f MB per million "
           "outcomes\n",
           full.mb_per_million);
    /* hot-path cost: median of 5 paired runs with and without a store */
    double ratio[5], with[5], without[5];
    for (int k = 0; k < 5; k++) {
        ingest a = run_calls(NULL, n / 2, 0);
        ingest bb = run_calls(path, n / 2, 0);
        without[k] = a.ns_per_call;
        with[k] = bb.ns_per_call;
        ratio[k] = bb.ns_per_call / a.ns_per_call;
    }
    qsort(ratio, 5, sizeof *ratio, cmp_d);
    qsort(with, 5, sizeof *with, cmp_d);
    qsort(without, 5, sizeof *without, cmp_d);
    printf("allow+record without store             %10.1f ns/call "
           "(caller CPU time)\n",
           without[2]);
    printf("allow+record with store                %10.1f ns/call = %.2fx "
           "(median of 5 paired runs; target <= 1.10x)\n",
           with[2], ratio[2]);
    test_rm_db(path);
    return 0;
}
