/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Fault injection: fail the Nth allocation, for N = 1, 2, ..., in every
 * allocating entry point; each returns TRIP_ENOMEM or succeeds, and what it
 * worked on stays usable (leaks are caught by make sanitize / valgrind). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "test_util.h"
#include "tripsense/tripsense.h"

/* Faults injected over the whole run, printed at the end. */
static long faults_injected_;

typedef struct ctx {
    trip_clock *clk;
    trip_breaker *b;
    trip_registry *r;
    trip_store *s;
    trip_config cfg, other;
    int64_t *wall;
    double *lat;
    int32_t *outcome;
    size_t n;
    char path[64];
} ctx;

typedef int (*op_fn)(ctx *c);

/* Allocate-free use of a breaker: it must still decide and count. */
static void
assert_breaker_usable(trip_breaker *b)
{
    trip_ticket t;
    trip_snapshot before, after;
    assert_int_equal(trip_snapshot_get(b, &before), TRIP_OK);
    int d = trip_allow(b, &t);
    assert_true(d == TRIP_PASS || d == TRIP_REJECTED || d == TRIP_LIMITED);
    if (d == TRIP_PASS)
        assert_int_equal(trip_record_latency(b, &t, TRIP_SUCCESS, 0.001),
                         TRIP_OK);
    assert_int_equal(trip_snapshot_get(b, &after), TRIP_OK);
    assert_true(after.calls + after.late + after.rejected + after.limited >
                before.calls + before.late + before.rejected + before.limited);
    assert_int_equal(after.in_flight, 0);
}

/*
 * Run op with its nth allocation failing, for n = 1, 2, ... until op makes
 * fewer than n allocations (it then must have succeeded). After every
 * failure, op without faults must succeed and usable(c) must hold.
 */
static void
sweep(const char *what, ctx *c, op_fn op, op_fn usable)
{
    for (long n = 1; n < 100000; n++) {
        long before = trip__test_alloc_count();
        trip__test_fail_alloc_after(n);
        int rc = op(c);
        long used = trip__test_alloc_count() - before;
        trip__test_fail_alloc_after(0);
        if (rc != TRIP_OK && rc != TRIP_ENOMEM) {
            print_error("%s: allocation %ld failed: status %s (%s)\n", what, n,
                        trip_status_name(rc), trip_errmsg());
            fail();
        }
        if (rc == TRIP_ENOMEM)
            assert_true(strlen(trip_errmsg()) > 0);
        if (used < n) {
            /* no fault was injected: a clean run, and the sweep is over */
            assert_int_equal(rc, TRIP_OK);
            print_message("%-40s %4ld allocations failed in turn\n", what,
                          n - 1);
            return;
        }
        faults_injected_++;
        rc = usable(c);
        if (rc != TRIP_OK) {
            print_error("%s: unusable after failing allocation %ld: %s "
                        "(%s)\n",
                        what, n, trip_status_name(rc), trip_errmsg());
            fail();
        }
    }
    print_error("%s: more than 100000 allocations?\n", what);
    fail();
}

static ctx *
ctx_new(void)
{
    ctx *c = calloc(1, sizeof *c);
    assert_non_null(c);
    assert_int_equal(
        trip_clock_manual_new(TEST_S_, 1700000000LL * TEST_S_, &c->clk),
        TRIP_OK);
    trip_config_init(&c->cfg);
    c->cfg.consecutive_failures = 5;
    trip_config_init(&c->other);
    c->other.window_kind = TRIP_WINDOW_COUNT; /* a new count ring */
    c->other.window_calls = 50;
    c->other.window_buckets = 20;
    c->other.long_window_buckets = 40;
    return c;
}

static void
ctx_free(ctx *c)
{
    trip_breaker_free(c->b);
    trip_registry_free(c->r);
    trip_store_close(c->s);
    trip_clock_free(c->clk);
    free(c->wall);
    free(c->lat);
    free(c->outcome);
    if (c->path[0])
        unlink(c->path);
    free(c);
}

/* ---- breaker creation --------------------------------------------------- */

static int
op_breaker_new(ctx *c)
{
    trip_breaker *b = (trip_breaker *)(uintptr_t)1;
    int rc = trip_breaker_new("alloc", &c->cfg, c->clk, &b);
    if (rc != TRIP_OK) {
        assert_null(b);
        return rc;
    }
    assert_breaker_usable(b);
    trip_breaker_free(b);
    return rc;
}

static int
usable_breaker_new(ctx *c)
{
    return op_breaker_new(c);
}

static void
test_alloc_faults_breaker_new(void **state)
{
    (void)state;
    ctx *c = ctx_new();
    sweep("trip_breaker_new (time window)", c, op_breaker_new,
          usable_breaker_new);
    c->cfg = c->other;
    sweep("trip_breaker_new (count window)", c, op_breaker_new,
          usable_breaker_new);
    trip_clock *clk = NULL;
    trip__test_fail_alloc_after(1);
    assert_int_equal(trip_clock_manual_new(0, 0, &clk), TRIP_ENOMEM);
    trip__test_fail_alloc_after(0);
    assert_null(clk);
    ctx_free(c);
}

/* ---- one breaker's operations ------------------------------------------ */

static int
usable_breaker(ctx *c)
{
    assert_breaker_usable(c->b);
    char *s = NULL;
    int rc = trip_breaker_health_json(c->b, &s);
    trip_string_free(s);
    return rc;
}

static int
op_config_to_json(ctx *c)
{
    char *s = NULL;
    int rc = trip_config_to_json(&c->cfg, &s);
    assert_true(rc == TRIP_OK ? s != NULL : s == NULL);
    trip_string_free(s);
    return rc;
}

static int
op_health_json(ctx *c)
{
    char *s = NULL;
    int rc = trip_breaker_health_json(c->b, &s);
    assert_true(rc == TRIP_OK ? s != NULL : s == NULL);
    trip_string_free(s);
    return rc;
}

static int
op_prometheus(ctx *c)
{
    char *s = NULL;
    int rc = trip_breaker_prometheus(c->b, &s);
    assert_true(rc == TRIP_OK ? s != NULL : s == NULL);
    trip_string_free(s);
    return rc;
}

/* Reconfigure to the other shape and back: a failure keeps the old one. */
static int
op_reconfigure(ctx *c)
{
    trip_config before, after;
    trip_breaker_config(c->b, &before);
    const trip_config *to =
        before.window_kind == TRIP_WINDOW_COUNT ? &c->cfg : &c->other;
    int rc = trip_breaker_reconfigure(c->b, to);
    trip_breaker_config(c->b, &after);
    if (rc != TRIP_OK)
        assert_int_equal(after.window_kind, before.window_kind);
    else
        assert_int_equal(after.window_kind, to->window_kind);
    return rc;
}

static int
op_signal(ctx *c)
{
    int id = -1;
    char name[32];
    static int k;
    snprintf(name, sizeof name, "cpu%d", k++ % 8);
    int rc = trip_breaker_add_signal(c->b, name, 0.9, 0, TEST_S_, &id);
    if (rc == TRIP_EEXIST || rc == TRIP_ENOSPC)
        return TRIP_OK;
    if (rc == TRIP_OK)
        assert_int_equal(trip_breaker_signal(c->b, id, 0.5), TRIP_OK);
    return rc;
}

static void
test_alloc_faults_breaker_ops(void **state)
{
    (void)state;
    ctx *c = ctx_new();
    assert_int_equal(trip_breaker_new("ops", &c->cfg, c->clk, &c->b), TRIP_OK);
    /* some history: counts, a histogram, a trip */
    for (int i = 0; i < 200; i++) {
        trip_ticket t;
        if (trip_allow(c->b, &t) == TRIP_PASS)
            trip_record_latency(c->b, &t, i > 150 ? TRIP_FAILURE : TRIP_SUCCESS,
                                0.001 * (i % 50));
        trip_clock_advance(c->clk, 100 * TEST_MS_);
    }
    sweep("trip_config_to_json", c, op_config_to_json, usable_breaker);
    sweep("trip_breaker_health_json", c, op_health_json, usable_breaker);
    sweep("trip_breaker_prometheus", c, op_prometheus, usable_breaker);
    sweep("trip_breaker_add_signal", c, op_signal, usable_breaker);
    sweep("trip_breaker_reconfigure", c, op_reconfigure, usable_breaker);
    ctx_free(c);
}

/* ---- registry ------------------------------------------------------------ */

static int
usable_registry(ctx *c)
{
    char *s = NULL;
    int rc = trip_registry_prometheus(c->r, &s);
    trip_string_free(s);
    for (size_t i = 0; rc == TRIP_OK && i < trip_registry_count(c->r); i++)
        assert_breaker_usable(trip_registry_at(c->r, i));
    return rc;
}

static int
op_registry_new(ctx *c)
{
    trip_registry *r = NULL;
    int rc = trip_registry_new(&r);
    if (rc != TRIP_OK)
        return rc;
    trip_breaker *b = NULL;
    rc = trip_registry_get_or_create(r, "db", &c->cfg, c->clk, &b);
    if (rc == TRIP_OK)
        rc = trip_registry_get_or_create(r, "api", &c->cfg, c->clk, &b);
    if (rc == TRIP_OK)
        rc = trip_registry_depends(r, "api", "db");
    size_t n = trip_registry_count(r);
    assert_true(rc == TRIP_OK ? n == 2 : n <= 2);
    trip_registry_free(r);
    return rc;
}

static int
op_registry_add(ctx *c)
{
    static int k;
    char name[32];
    snprintf(name, sizeof name, "svc%d", k++);
    size_t n0 = trip_registry_count(c->r);
    trip_breaker *b = NULL;
    int rc = trip_breaker_new(name, &c->cfg, c->clk, &b);
    if (rc == TRIP_OK) {
        rc = trip_registry_add(c->r, b);
        if (rc != TRIP_OK)
            trip_breaker_free(b); /* ownership stays with us on failure */
    }
    assert_int_equal(trip_registry_count(c->r), n0 + (rc == TRIP_OK));
    return rc;
}

static int
op_registry_reports(ctx *c)
{
    char *h = NULL, *p = NULL;
    int rc = trip_registry_health_json(c->r, &h);
    if (rc == TRIP_OK)
        rc = trip_registry_prometheus(c->r, &p);
    trip_string_free(h);
    trip_string_free(p);
    return rc;
}

static void
test_alloc_faults_registry(void **state)
{
    (void)state;
    ctx *c = ctx_new();
    sweep("trip_registry_new + get_or_create", c, op_registry_new,
          usable_breaker_new);
    assert_int_equal(trip_registry_new(&c->r), TRIP_OK);
    sweep("trip_registry_add", c, op_registry_add, usable_registry);
    trip_breaker *db = NULL;
    assert_int_equal(
        trip_registry_get_or_create(c->r, "db", &c->cfg, c->clk, &db), TRIP_OK);
    trip_breaker_set_mode(db, TRIP_MODE_FORCED_OPEN);
    assert_true(trip_registry_count(c->r) >= 2);
    const char *first = trip_breaker_name(trip_registry_at(c->r, 0));
    assert_int_equal(trip_registry_depends(c->r, first, "db"), TRIP_OK);
    sweep("trip_registry_health_json + prometheus", c, op_registry_reports,
          usable_registry);
    ctx_free(c);
}

/* ---- replay, detect, calibrate --------------------------------------------
 */

static void
make_events(ctx *c, size_t n)
{
    c->n = n;
    c->wall = calloc(n, sizeof *c->wall);
    c->lat = calloc(n, sizeof *c->lat);
    c->outcome = calloc(n, sizeof *c->outcome);
    assert_true(c->wall && c->lat && c->outcome);
    for (size_t i = 0; i < n; i++) {
        /* 20 calls a second; an outage in the middle trips and recovers */
        c->wall[i] = 1700000000LL * TEST_S_ + (int64_t)i * 50 * TEST_MS_;
        c->lat[i] = 0.002 + 0.001 * (double)(i % 7);
        c->outcome[i] =
            (i > n / 2 && i < n / 2 + 200) ? TRIP_FAILURE : TRIP_SUCCESS;
    }
}

static int
op_replay(ctx *c)
{
    trip_replay_result *r = (trip_replay_result *)(uintptr_t)1;
    int rc = trip_replay_arrays(&c->cfg, c->wall, c->lat, c->outcome, NULL,
                                c->n, &r);
    if (rc != TRIP_OK) {
        assert_null(r);
        return rc;
    }
    assert_int_equal(r->n_events, c->n);
    assert_true(r->n_transitions >= 2);
    trip_replay_result_free(r);
    return rc;
}

static int
op_replay_struct(ctx *c)
{
    trip_event *e = calloc(c->n, sizeof *e);
    assert_non_null(e);
    for (size_t i = 0; i < c->n; i++)
        e[i] = (trip_event){c->wall[i], c->lat[i], c->outcome[i], 0};
    trip_replay_result *r = NULL;
    int rc = trip_replay(&c->cfg, e, c->n, &r);
    trip_replay_result_free(r);
    free(e);
    return rc;
}

static int
op_detect(ctx *c)
{
    trip_detect_opts o;
    trip_detect_opts_init(&o);
    double *scores = calloc(c->n, sizeof *scores);
    uint8_t *flags = calloc(c->n, 1);
    assert_true(scores && flags);
    int rc = trip_detect(&o, c->wall, c->lat, c->n, scores, flags, NULL, NULL);
    free(scores);
    free(flags);
    return rc;
}

static int
op_calibrate(ctx *c)
{
    trip_event *e = calloc(c->n, sizeof *e);
    assert_non_null(e);
    for (size_t i = 0; i < c->n; i++)
        e[i] = (trip_event){c->wall[i], c->lat[i], TRIP_SUCCESS, 0};
    trip_config out;
    trip_calibration rep;
    int rc = trip_calibrate(&c->cfg, e, c->n, 1.0, &out, &rep);
    free(e);
    return rc == TRIP_ERANGE ? TRIP_OK : rc;
}

static int
usable_replay(ctx *c)
{
    return op_replay(c);
}

static void
test_alloc_faults_replay_detect(void **state)
{
    (void)state;
    ctx *c = ctx_new();
    c->cfg.bucket_ns = 10 * TEST_MS_; /* > 1024 evaluations */
    c->cfg.open_ns = TEST_S_;
    make_events(c, 3000);
    sweep("trip_replay_arrays", c, op_replay, usable_replay);
    sweep("trip_replay", c, op_replay_struct, usable_replay);
    sweep("trip_detect", c, op_detect, usable_replay);
    c->cfg.bucket_ns = TEST_S_;
    sweep("trip_calibrate", c, op_calibrate, usable_replay);
    ctx_free(c);
}

/* ---- history store --------------------------------------------------------
 */

static int
usable_store(ctx *c)
{
    assert_breaker_usable(c->b);
    return trip_store_flush(c->s) == TRIP_OK ? TRIP_OK : TRIP_ESTORE;
}

static int
op_store_open(ctx *c)
{
    trip_store *s = NULL;
    int rc = trip_store_open(c->path, NULL, &s);
    if (rc != TRIP_OK) {
        assert_null(s);
        return rc;
    }
    trip_breaker *b = NULL;
    rc = trip_breaker_new("store", &c->cfg, c->clk, &b);
    if (rc == TRIP_OK) {
        /* attaching never fails for the store's sake; on ENOMEM it is
         * simply not attached */
        int arc = trip_breaker_attach(b, s);
        assert_true(arc == TRIP_OK || arc == TRIP_ENOMEM);
        assert_breaker_usable(b);
        trip_breaker_free(b);
    }
    int crc = trip_store_close(s);
    assert_true(crc == TRIP_OK || crc == TRIP_ENOMEM);
    return rc;
}

static int
usable_store_open(ctx *c)
{
    return op_store_open(c);
}

/* Calls, rollups and transitions through an attached store while
 * allocations fail: the calls always succeed. */
static int
op_store_traffic(ctx *c)
{
    for (int i = 0; i < 50; i++) {
        trip_ticket t;
        int d = trip_allow(c->b, &t);
        if (d == TRIP_PASS &&
            trip_record_latency(c->b, &t,
                                i % 9 == 0 ? TRIP_FAILURE : TRIP_SUCCESS,
                                0.003) != TRIP_OK)
            return TRIP_EINVAL;
        trip_clock_advance(c->clk, 2 * TEST_S_);
    }
    int id = -1;
    int rc = trip_store_breaker_id(c->s, "traffic", &id);
    if (rc == TRIP_OK) {
        char *name = NULL;
        rc = trip_store_breaker_name(c->s, id, &name);
        trip_string_free(name);
    }
    return rc == TRIP_ENOTFOUND ? TRIP_OK : rc;
}

static void
test_alloc_faults_store(void **state)
{
    (void)state;
    ctx *c = ctx_new();
    snprintf(c->path, sizeof c->path, "/tmp/trip-alloc-%ld.db", (long)getpid());
    unlink(c->path);
    sweep("trip_store_open + attach + close", c, op_store_open,
          usable_store_open);
    assert_int_equal(trip_store_open(c->path, NULL, &c->s), TRIP_OK);
    assert_int_equal(trip_breaker_new("traffic", &c->cfg, c->clk, &c->b),
                     TRIP_OK);
    assert_int_equal(trip_breaker_attach(c->b, c->s), TRIP_OK);
    sweep("calls through an attached store", c, op_store_traffic, usable_store);
    trip_breaker_free(c->b);
    c->b = NULL;
    assert_int_equal(trip_store_close(c->s), TRIP_OK);
    c->s = NULL;
    /* the file is intact and holds the rows that were not dropped */
    trip_store_opts o;
    trip_store_opts_init(&o);
    o.read_only = 1;
    assert_int_equal(trip_store_open(c->path, &o, &c->s), TRIP_OK);
    int64_t n = 0;
    assert_int_equal(trip_store_count(c->s, 0, -1, INT64_MIN, INT64_MAX, &n),
                     TRIP_OK);
    assert_true(n > 0);
    ctx_free(c);
    print_message("alloc faults injected in this run: %ld\n", faults_injected_);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_faults_breaker_new),
        cmocka_unit_test(test_alloc_faults_breaker_ops),
        cmocka_unit_test(test_alloc_faults_registry),
        cmocka_unit_test(test_alloc_faults_replay_detect),
        cmocka_unit_test(test_alloc_faults_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
