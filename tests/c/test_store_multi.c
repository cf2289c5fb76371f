/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Several processes on one history file, a reader during writes, and a
 * writer killed with SIGKILL at random moments. */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, usleep */
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test_files.h"
#include "test_util.h"
#include "tripsense/tripsense.h"

#define WALL0_ (1767225600LL * TEST_S_)

/* TRIP_TEST_SLOWDOWN (test_util.h), 1 unless set: how much slower than
 * native the process runs (about 30 under memcheck), to stretch the real
 * time a writer waits for another's lock and the time the crash loop
 * gives a writer before killing it. Set in main(). */
static double slowdown_ = 1;

static int64_t
mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * TEST_S_ + ts.tv_nsec;
}

/* Record n calls through breaker `name` on the history at path. Returns
 * the rows the store reports written; *lost receives rows lost. On a
 * failure returns -1 and leaves the status and message in why. */
static int64_t
write_calls(const char *path, const char *name, int n, int64_t *lost, char *why,
            size_t why_len)
{
    /* Four writers take turns at one file's write lock; slowed down 30x
     * (memcheck) a turn takes seconds, and a writer that waited out the
     * default 5 s left its rows pending: "database is locked". */
    trip_store_opts o;
    trip_store_opts_init(&o);
    o.busy_timeout_ms = (int64_t)(o.busy_timeout_ms * slowdown_);
    if (o.busy_timeout_ms > 3600000)
        o.busy_timeout_ms = 3600000;
    trip_store *s = NULL;
    int rc = trip_store_open(path, &o, &s);
    if (rc != TRIP_OK) {
        snprintf(why, why_len, "trip_store_open: %s: %s", trip_strerror(rc),
                 trip_errmsg());
        return -1;
    }
    trip_clock *clk;
    trip_clock_manual_new(TEST_S_, WALL0_, &clk);
    trip_config cfg;
    trip_config_init(&cfg);
    trip_breaker *b;
    trip_breaker_new(name, &cfg, clk, &b);
    rc = trip_breaker_attach(b, s);
    if (rc != TRIP_OK) {
        snprintf(why, why_len, "trip_breaker_attach: %s: %s", trip_strerror(rc),
                 trip_errmsg());
        return -1;
    }
    for (int i = 0; i < n; i++) {
        trip_clock_advance(clk, TEST_MS_);
        trip_ticket t;
        if (trip_allow(b, &t) == TRIP_PASS)
            trip_record_latency(b, &t, i % 50 ? TRIP_SUCCESS : TRIP_FAILURE,
                                0.002);
    }
    trip_breaker_free(b);
    /* a flush that waited out the busy timeout leaves the rows pending, to
     * be written at the next try: on a loaded machine (a CI run under
     * TSan, with other jobs) one writer's turn came after 5 s once, and
     * that is the store working, not losing rows; try again for up to two
     * minutes as an application would, then report what is left */
    trip_store_status st;
    int64_t t_end = mono_ns() + 120 * TEST_S_;
    do {
        trip_store_flush(s);
        trip_store_status_get(s, &st);
    } while (st.pending > 0 && mono_ns() < t_end);
    trip_store_close(s);
    trip_clock_free(clk);
    *lost = st.dropped_full + st.dropped_error;
    snprintf(why, why_len, "%lld pending, store status %s: %s",
             (long long)st.pending, trip_strerror(st.status), st.message);
    return st.written;
}

static int64_t
count_rows(const char *path, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    int64_t n = -1;
    sqlite3_open(path, &db);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

/* What a writer process reports to the parent, in shared memory. */
typedef struct writer_report {
    int64_t written, lost;
    char why[512];
} writer_report;

static void
test_store_multi_processes_one_file(void **state)
{
    (void)state;
    char path[256];
    snprintf(path, sizeof path, "/tmp/tripsense-multi-%d.db", (int)getpid());
    test_rm_db(path);
    enum { PROCS = 4, CALLS = 30000 };
    writer_report *rep = mmap(NULL, PROCS * sizeof *rep, PROT_READ | PROT_WRITE,
                              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(rep != MAP_FAILED);
    pid_t pids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        pids[p] = fork();
        assert_true(pids[p] >= 0);
        if (pids[p] == 0) {
            char name[32];
            /* two processes share a breaker name, two have their own */
            snprintf(name, sizeof name, "dep%d", p / 2 == 0 ? 0 : p);
            int64_t lost = 0;
            rep[p].written = write_calls(path, name, CALLS, &lost, rep[p].why,
                                         sizeof rep[p].why);
            rep[p].lost = lost;
            _exit(0);
        }
    }
    /* a reader polls while they write: counts never go backwards */
    trip_store_opts ro;
    trip_store_opts_init(&ro);
    ro.read_only = 1;
    int64_t last = 0;
    int reads = 0;
    for (int alive = PROCS; alive > 0;) {
        trip_store *r = NULL;
        if (trip_store_open(path, &ro, &r) == TRIP_OK) {
            int64_t n = 0;
            assert_int_equal(
                trip_store_count(r, 0, -1, INT64_MIN, INT64_MAX, &n), TRIP_OK);
            assert_true(n >= last);
            last = n;
            reads++;
            trip_store_close(r);
        }
        int status;
        while (alive > 0 && waitpid(-1, &status, WNOHANG) > 0) {
            assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
            alive--;
        }
        usleep(2000);
    }
    int64_t written = 0, lost = 0;
    for (int p = 0; p < PROCS; p++) {
        if (rep[p].written != CALLS || rep[p].lost != 0)
            print_error("writer %d: %lld rows written, %lld lost (%s)\n", p,
                        (long long)rep[p].written, (long long)rep[p].lost,
                        rep[p].why);
        assert_true(rep[p].written > 0);
        written += rep[p].written;
        lost += rep[p].lost;
    }
    assert_int_equal(lost, 0);
    assert_int_equal(written, PROCS * CALLS);
    assert_int_equal(count_rows(path, "SELECT count(*) FROM outcomes"),
                     written);
    assert_int_equal(count_rows(path, "SELECT count(*) FROM breakers"), 3);
    /* rollups of the shared name were merged, not duplicated or lost */
    assert_int_equal(count_rows(path, "SELECT sum(calls) FROM rollups"),
                     written);
    print_message("%d processes, %lld rows, %d reads during writes\n", PROCS,
                  (long long)written, reads);
    munmap(rep, PROCS * sizeof *rep);
    test_rm_db(path);
}

/* ---- crash loop ------------------------------------------------------ */

/* The child logs, every few hundred calls, how many it has recorded and
 * when (monotonic), into memory the parent reads after the kill. */
#define LOG_N_ 8192
typedef struct crash_log {
    _Atomic int64_t n;
    int64_t recorded[LOG_N_];
    int64_t at_ns[LOG_N_];
    _Atomic int64_t committed; /* rows the store said it had committed */
} crash_log;

#define FLUSH_NS_ (50 * TEST_MS_)

static void
crash_child(const char *path, crash_log *log, int64_t base)
{
    trip_store_opts o;
    trip_store_opts_init(&o);
    o.flush_interval_ns = FLUSH_NS_;
    trip_store *s = NULL;
    if (trip_store_open(path, &o, &s) != TRIP_OK)
        _exit(3);
    trip_clock *clk;
    trip_clock_manual_new(TEST_S_, WALL0_, &clk);
    trip_breaker *b;
    trip_breaker_new("crashy", NULL, clk, &b);
    trip_breaker_attach(b, s);
    log->recorded[0] = base; /* nothing recorded yet: nothing to lose */
    log->at_ns[0] = mono_ns();
    atomic_store(&log->n, 1);
    for (int64_t i = 1;; i++) {
        trip_clock_advance(clk, 100000);
        trip_ticket t;
        if (trip_allow(b, &t) == TRIP_PASS)
            trip_record_latency(b, &t, TRIP_SUCCESS, 0.001);
        if (i % 256 == 0) {
            int64_t k = atomic_load(&log->n) % LOG_N_;
            log->recorded[k] = base + i;
            log->at_ns[k] = mono_ns();
            atomic_fetch_add(&log->n, 1);
            trip_store_status st;
            trip_store_status_get(s, &st);
            atomic_store(&log->committed, base + st.written);
            /* at most ~100k calls/s, which the writer sustains: past
             * that rows are dropped (and counted), which this test does
             * not measure */
            usleep(2500);
        }
    }
}

static void
check_intact(const char *path)
{
    trip_store *s = NULL;
    assert_int_equal(trip_store_open(path, NULL, &s), TRIP_OK);
    trip_store_close(s);
    sqlite3 *db;
    sqlite3_stmt *st;
    sqlite3_open(path, &db);
    sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* How long before the kill the oldest lost call was recorded: the newest
 * log entry whose calls are all in the file bounds it; when none is (the
 * writer was killed before its first commit), the oldest entry kept; 0
 * when it made no call (killed while opening: it printed INT64_MAX). */
static int64_t
loss_window(const crash_log *log, int64_t have, int64_t kill_ns)
{
    int64_t n = atomic_load(&log->n), best = -1;
    int64_t first = n > LOG_N_ ? n - LOG_N_ : 0;
    if (n == 0)
        return 0;
    for (int64_t j = first; j < n; j++) {
        int64_t k = j % LOG_N_;
        if (log->recorded[k] <= have && log->at_ns[k] > best)
            best = log->at_ns[k];
    }
    return kill_ns - (best >= 0 ? best : log->at_ns[first % LOG_N_]);
}

static void
test_store_multi_sigkill_loop(void **state)
{
    (void)state;
    char path[256];
    snprintf(path, sizeof path, "/tmp/tripsense-crash-%d.db", (int)getpid());
    test_rm_db(path);
    crash_log *log = mmap(NULL, sizeof *log, PROT_READ | PROT_WRITE,
                          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(log != MAP_FAILED);
    srand(12345);
    /* 25 kills; slowed down, fewer (at least 3), so that the loop takes
     * about as long in real time */
    const char *env = getenv("TRIP_CRASH_KILLS");
    int kills = env ? atoi(env) : (int)(25 / slowdown_);
    if (env == NULL && kills < 3)
        kills = 3;
    int64_t worst = 0, have = 0;
    for (int k = 0; k < kills; k++) {
        atomic_store(&log->n, 0);
        atomic_store(&log->committed, 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            crash_child(path, log, have);
        /* 150-450 ms natively; a slowed-down writer gets as much of its
         * own time, or it would mostly be killed while still opening */
        usleep((useconds_t)((150000 + rand() % 300000) * slowdown_));
        int64_t kill_ns = mono_ns();
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        assert_true(WIFSIGNALED(status));
        check_intact(path);
        have = count_rows(path, "SELECT count(*) FROM outcomes");
        int64_t lost_ns = loss_window(log, have, kill_ns);
        if (lost_ns > worst)
            worst = lost_ns;
        /* what the store reported committed survived the kill; how long
         * before the kill the lost calls were made is measured, not
         * asserted (a timing): docs/history.md records it */
        assert_true(have >= atomic_load(&log->committed));
    }
    print_message("%d kills: 0 corrupt files; %lld rows kept; loss window "
                  "at most %.1f ms (flush interval %.0f ms)\n",
                  kills, (long long)have, worst / 1e6, FLUSH_NS_ / 1e6);
    munmap(log, sizeof *log);
    test_rm_db(path);
}

int
main(void)
{
    slowdown_ = test_env_double("TRIP_TEST_SLOWDOWN", 1, 1000);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_multi_processes_one_file),
        cmocka_unit_test(test_store_multi_sigkill_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
