/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Fault injection under the store: a SQLite VFS shim fails the Nth write,
 * sync or lock (or fills the disk from the Nth write on) through whole
 * runs; no call may fail, the file must stay intact and what was lost must
 * equal what was reported lost. */
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_files.h"
#include "test_util.h"
#include "tripsense/tripsense.h"

/* ---- the shim ------------------------------------------------------- */

enum { F_WRITE, F_SYNC, F_LOCK, F_FULL, F_KINDS };
static const char *const kind_name[F_KINDS] = {"write", "sync", "lock", "full"};

static struct {
    int kind;
    long arm_at;   /* fail the op with this number (1-based); 0 = off */
    long count;    /* ops of the kind seen since arming */
    long fails;    /* faults injected */
    long full_for; /* F_FULL: fail this many writes from arm_at on */
} fault;

typedef struct ffile {
    sqlite3_file base;
    sqlite3_file *real;
} ffile;

static sqlite3_vfs *real_vfs;

static int
hit(int kind)
{
    int k = fault.kind == F_FULL ? F_WRITE : fault.kind;
    if (kind != k)
        return 0;
    long n = ++fault.count;
    if (fault.arm_at <= 0)
        return 0;
    int on = fault.kind == F_FULL
                 ? n >= fault.arm_at && n < fault.arm_at + fault.full_for
                 : n == fault.arm_at;
    fault.fails += on;
    return on;
}

#define REAL(f) (((ffile *)(f))->real)

static int
f_close(sqlite3_file *f)
{
    int rc = REAL(f)->pMethods ? REAL(f)->pMethods->xClose(REAL(f)) : 0;
    return rc;
}
static int
f_read(sqlite3_file *f, void *p, int n, sqlite3_int64 o)
{
    return REAL(f)->pMethods->xRead(REAL(f), p, n, o);
}
static int
f_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 o)
{
    if (hit(F_WRITE))
        return fault.kind == F_FULL ? SQLITE_FULL : SQLITE_IOERR_WRITE;
    return REAL(f)->pMethods->xWrite(REAL(f), p, n, o);
}
static int
f_truncate(sqlite3_file *f, sqlite3_int64 n)
{
    return REAL(f)->pMethods->xTruncate(REAL(f), n);
}
static int
f_sync(sqlite3_file *f, int fl)
{
    if (hit(F_SYNC))
        return SQLITE_IOERR_FSYNC;
    return REAL(f)->pMethods->xSync(REAL(f), fl);
}
static int
f_size(sqlite3_file *f, sqlite3_int64 *n)
{
    return REAL(f)->pMethods->xFileSize(REAL(f), n);
}
static int
f_lock(sqlite3_file *f, int l)
{
    if (hit(F_LOCK))
        return SQLITE_BUSY;
    return REAL(f)->pMethods->xLock(REAL(f), l);
}
static int
f_unlock(sqlite3_file *f, int l)
{
    return REAL(f)->pMethods->xUnlock(REAL(f), l);
}
static int
f_reserved(sqlite3_file *f, int *r)
{
    return REAL(f)->pMethods->xCheckReservedLock(REAL(f), r);
}
static int
f_fcntl(sqlite3_file *f, int op, void *a)
{
    return REAL(f)->pMethods->xFileControl(REAL(f), op, a);
}
static int
f_sector(sqlite3_file *f)
{
    return REAL(f)->pMethods->xSectorSize(REAL(f));
}
static int
f_devchar(sqlite3_file *f)
{
    return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int
f_shmmap(sqlite3_file *f, int i, int sz, int e, void volatile **p)
{
    return REAL(f)->pMethods->xShmMap(REAL(f), i, sz, e, p);
}
static int
f_shmlock(sqlite3_file *f, int o, int n, int fl)
{
    /* slot 0 is WAL's write lock: BUSY there is what another writer
     * process causes */
    if (o == 0 && (fl & SQLITE_SHM_LOCK) && (fl & SQLITE_SHM_EXCLUSIVE) &&
        hit(F_LOCK))
        return SQLITE_BUSY;
    return REAL(f)->pMethods->xShmLock(REAL(f), o, n, fl);
}
static void
f_shmbarrier(sqlite3_file *f)
{
    REAL(f)->pMethods->xShmBarrier(REAL(f));
}
static int
f_shmunmap(sqlite3_file *f, int d)
{
    return REAL(f)->pMethods->xShmUnmap(REAL(f), d);
}
static int
f_fetch(sqlite3_file *f, sqlite3_int64 o, int n, void **p)
{
    return REAL(f)->pMethods->xFetch(REAL(f), o, n, p);
}
static int
f_unfetch(sqlite3_file *f, sqlite3_int64 o, void *p)
{
    return REAL(f)->pMethods->xUnfetch(REAL(f), o, p);
}

static const sqlite3_io_methods f_methods = {
    3,         f_close,  f_read,    f_write,      f_truncate, f_sync,
    f_size,    f_lock,   f_unlock,  f_reserved,   f_fcntl,    f_sector,
    f_devchar, f_shmmap, f_shmlock, f_shmbarrier, f_shmunmap, f_fetch,
    f_unfetch};

static int
f_open(sqlite3_vfs *v, const char *name, sqlite3_file *f, int flags, int *out)
{
    (void)v;
    ffile *ff = (ffile *)f;
    ff->real = (sqlite3_file *)(ff + 1);
    int rc = real_vfs->xOpen(real_vfs, name, ff->real, flags, out);
    f->pMethods = ff->real->pMethods ? &f_methods : NULL;
    return rc;
}

static sqlite3_vfs f_vfs;

static void
register_shim(void)
{
    if (real_vfs != NULL)
        return;
    real_vfs = sqlite3_vfs_find(NULL);
    f_vfs = *real_vfs;
    f_vfs.zName = "tripsense-faulty";
    f_vfs.szOsFile = (int)sizeof(ffile) + real_vfs->szOsFile;
    f_vfs.xOpen = f_open;
    f_vfs.pNext = NULL;
    assert_int_equal(sqlite3_vfs_register(&f_vfs, 0), SQLITE_OK);
}

/* ---- one run -------------------------------------------------------- */

#define WALL0_ (1767225600LL * TEST_S_)

typedef struct run_result {
    long ops;      /* ops of the kind seen */
    long injected; /* faults injected */
    int64_t lost;  /* rows reported lost */
} run_result;

static void
check_file(const char *path, int64_t written, int64_t transitions)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(
        sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL),
        SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    sqlite3_prepare_v2(db,
                       "SELECT (SELECT count(*) FROM outcomes), "
                       "(SELECT count(*) FROM transitions)",
                       -1, &st, NULL);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    if (sqlite3_column_int64(st, 0) != written)
        print_error("outcome rows %lld, written %lld\n",
                    (long long)sqlite3_column_int64(st, 0), (long long)written);
    assert_int_equal(sqlite3_column_int64(st, 0), written);
    assert_int_equal(sqlite3_column_int64(st, 1), transitions);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static run_result
run_once(const char *path, int kind, long arm_at)
{
    test_rm_db(path);
    trip_store_opts o;
    trip_store_opts_init(&o);
    o.vfs = "tripsense-faulty";
    o.busy_timeout_ms = 5;
    o.flush_interval_ns = 20 * TEST_MS_;
    o.batch_size = 500;
    o.synchronous = kind == F_SYNC ? 2 : 1; /* NORMAL syncs only on
                                               checkpoints */
    trip_store *s = NULL;
    memset(&fault, 0, sizeof fault);
    fault.kind = -1;
    assert_int_equal(trip_store_open(path, &o, &s), TRIP_OK);
    trip_clock *clk;
    trip_clock_manual_new(TEST_S_, WALL0_, &clk);
    trip_config cfg;
    trip_config_init(&cfg);
    cfg.adaptive = 0;
    cfg.seed = 1;
    cfg.consecutive_failures = 5;
    cfg.open_ns = 2 * TEST_S_;
    trip_breaker *b;
    trip_breaker_new("dep", &cfg, clk, &b);
    assert_int_equal(trip_breaker_attach(b, s), TRIP_OK);
    fault.kind = kind;
    fault.full_for = 40;
    fault.arm_at = arm_at;
    for (int i = 0; i < 3000; i++) {
        trip_clock_advance(clk, 50 * TEST_MS_);
        trip_ticket t;
        int d = trip_allow(b, &t);
        assert_true(d == TRIP_PASS || d == TRIP_REJECTED);
        int bad = (i / 500) % 2 == 1 && i % 500 < 40;
        if (d == TRIP_PASS)
            assert_int_equal(
                trip_record_latency(b, &t, bad ? TRIP_FAILURE : TRIP_SUCCESS,
                                    0.003),
                TRIP_OK);
        if (i % 300 == 0)
            trip_store_flush(s); /* interleave commits with the faults */
    }
    trip_breaker_free(b); /* pushes the last minute and the baseline */
    /* the shim is one-shot (or bounded): the store must recover */
    int rc = TRIP_EIO;
    for (int k = 0; k < 50 && rc != TRIP_OK; k++)
        rc = trip_store_flush(s);
    assert_int_equal(rc, TRIP_OK);
    trip_store_status st;
    trip_store_status_get(s, &st);
    run_result r = {fault.count, fault.fails, st.dropped_error};
    fault.arm_at = 0;
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.accepted, st.written + st.dropped_error);
    assert_int_equal(st.dropped_full, 0);
    assert_int_equal(trip_store_close(s), TRIP_OK);
    check_file(path, st.written, st.transitions_written);
    trip_clock_free(clk);
    return r;
}

static void
test_store_faults_every_nth_op(void **state)
{
    (void)state;
    register_shim();
    char path[256];
    snprintf(path, sizeof path, "/tmp/tripsense-faults-%d.db", (int)getpid());
    /* a clean run counts the ops of each kind; then fail each in turn
     * (every op for short runs, spread over the run for long ones) */
    long total_faults = 0, runs = 0;
    const char *only = getenv("TRIP_FAULT_KIND");
    for (int kind = 0; kind < F_KINDS; kind++) {
        if (only != NULL && strcmp(only, kind_name[kind]) != 0)
            continue;
        run_result clean = run_once(path, kind, 0);
        long ops = clean.ops > 0 ? clean.ops : 1;
        long step = ops > 60 ? ops / 60 : 1;
        for (long n = 1; n <= ops; n += step) {
            run_result r = run_once(path, kind, n);
            total_faults += r.injected;
            runs++;
        }
        print_message("fault kind %s: %ld ops in a clean run\n",
                      kind_name[kind], clean.ops);
    }
    print_message("%ld runs, %ld faults injected\n", runs, total_faults);
    assert_true(total_faults > 0);
    test_rm_db(path);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_faults_every_nth_op),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
