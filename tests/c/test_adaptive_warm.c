/* SPDX-License-Identifier: GPL-3.0-or-later */
/* A baseline warm-started from the store's per-minute rollups judges like
 * the baseline learned online from the same history. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "breaker_internal.h"
#include "test_util.h"
#include "traffic_sim.h"

#define LEARN_DAYS_ 2
#define MAX_TRIPS_ 16

typedef struct side {
    trip_clock *clk;
    trip_breaker *b;
    int ntrips;
    int64_t trip_ns[MAX_TRIPS_];
    int rule[MAX_TRIPS_];
    int64_t evals, ready;
    double base_rate, base_lat; /* of the last evaluation with a baseline */
} side;

static void
on_transition(int kind, const trip_transition *t, void *user)
{
    side *s = user;
    if (kind != TRIP_EVENT_TRANSITION || t->from != TRIP_CLOSED ||
        t->to != TRIP_OPEN || s->ntrips == MAX_TRIPS_)
        return;
    s->trip_ns[s->ntrips] = t->reason.wall_ns;
    s->rule[s->ntrips++] = t->reason.rule;
}

static void
on_eval(void *user, const trip_eval *ev)
{
    side *s = user;
    s->evals++;
    if (ev->baseline_ready) {
        s->ready++;
        s->base_rate = ev->baseline_rate;
        if (!isnan(ev->baseline_latency_s))
            s->base_lat = ev->baseline_latency_s;
    }
}

static void
side_open_cfg(side *s, int64_t now, trip_store *st, const trip_config *cfg)
{
    memset(s, 0, sizeof *s);
    s->base_lat = NAN;
    assert_int_equal(trip_clock_manual_new(now, 0, &s->clk), TRIP_OK);
    assert_int_equal(trip_breaker_new("svc", cfg, s->clk, &s->b), TRIP_OK);
    assert_int_equal(trip_breaker_add_listener(s->b, on_transition, s, NULL),
                     TRIP_OK);
    s->b->eval_hook = on_eval;
    s->b->eval_hook_user = s;
    assert_int_equal(trip_breaker_attach(s->b, st), TRIP_OK);
}

static void
side_open(side *s, int64_t now, trip_store *st)
{
    side_open_cfg(s, now, st, NULL);
}

static void
side_feed(side *s, const trip_event *ev, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        trip_ticket t;
        trip_clock_set(s->clk, ev[i].wall_ns);
        if (trip_allow(s->b, &t) == TRIP_PASS)
            trip_record_latency(s->b, &t, ev[i].outcome, ev[i].latency_s);
    }
}

static void
side_close(side *s)
{
    trip_breaker_free(s->b);
    trip_clock_free(s->clk);
}

/* The first trip at or after from_ns, or -1. */
static int
first_trip(const side *s, int64_t from_ns)
{
    for (int i = 0; i < s->ntrips; i++)
        if (s->trip_ns[i] >= from_ns)
            return i;
    return -1;
}

/*
 * Breaker A learns two days online while its rollups go to the store;
 * breaker B, of the same name, starts on the third morning and
 * warm-starts from those rollups. Both then see the same third day: a
 * brownout (failures 5x) at 11:00 and a latency doubling at 15:00, ten
 * minutes each. They must agree: no trip outside the incidents, each
 * incident caught by both with the same rule within a minute of each other,
 * and the same baseline within a few percent.
 */
static void
test_adaptive_warm_start_judges_like_online(void **state)
{
    (void)state;
    trip_store_opts o;
    trip_store *st;
    trip_store_opts_init(&o);
    o.sample_mode = TRIP_SAMPLE_FAILURES; /* rollups are what matters */
    assert_int_equal(trip_store_open(":memory:", &o, &st), TRIP_OK);
    sim_traffic tr = sim_default(7);
    tr.busy_rps = 40;
    tr.evening_rps = 8;
    int64_t day3 = SIM_T0_ + LEARN_DAYS_ * SIM_DAY_;
    size_t n;
    trip_event *ev = sim_generate(&tr, SIM_T0_, day3, &n);
    assert_non_null(ev);
    side a, b;
    side_open(&a, SIM_T0_, st);
    side_feed(&a, ev, n);
    free(ev);
    assert_int_equal(trip_store_flush(st), TRIP_OK);

    side_open(&b, day3, st); /* warm start: rollups only (A is attached) */
    int64_t brown = day3 + 11 * SIM_HOUR_, slow = day3 + 15 * SIM_HOUR_;
    tr.incident = SIM_BROWNOUT;
    tr.factor = 5;
    tr.onset_ns = brown;
    tr.end_ns = brown + 600 * SIM_S_;
    ev = sim_generate(&tr, day3, slow, &n);
    assert_non_null(ev);
    side_feed(&a, ev, n);
    side_feed(&b, ev, n);
    free(ev);
    tr.incident = SIM_LATENCY;
    tr.factor = 2;
    tr.onset_ns = slow;
    tr.end_ns = slow + 600 * SIM_S_;
    ev = sim_generate(&tr, slow, day3 + 18 * SIM_HOUR_, &n);
    assert_non_null(ev);
    a.ready = b.ready = a.evals = b.evals = 0;
    side_feed(&a, ev, n);
    side_feed(&b, ev, n);
    free(ev);

    print_message("baseline online: rate %.5f p99 %.4f s; warm: rate %.5f "
                  "p99 %.4f s\n",
                  a.base_rate, a.base_lat, b.base_rate, b.base_lat);
    for (int i = 0; i < a.ntrips || i < b.ntrips; i++)
        print_message("trip %d: online %s at %+.0f s, warm %s at %+.0f s "
                      "(from 11:00)\n",
                      i, i < a.ntrips ? trip_rule_name(a.rule[i]) : "-",
                      i < a.ntrips ? (double)(a.trip_ns[i] - brown) / 1e9 : 0,
                      i < b.ntrips ? trip_rule_name(b.rule[i]) : "-",
                      i < b.ntrips ? (double)(b.trip_ns[i] - brown) / 1e9 : 0);
    assert_int_equal(b.ready, b.evals); /* judged from its first evaluation */
    assert_close(b.base_rate, a.base_rate, 0.1);
    assert_close(b.base_lat, a.base_lat, 0.05);
    /* no trip before the brownout, the first one within it */
    int ia = first_trip(&a, day3), ib = first_trip(&b, day3);
    assert_true(ia >= 0 && ib >= 0);
    assert_true(a.trip_ns[ia] >= brown && a.trip_ns[ia] < brown + 600 * SIM_S_);
    assert_true(b.trip_ns[ib] >= brown && b.trip_ns[ib] < brown + 600 * SIM_S_);
    assert_int_equal(a.rule[ia], b.rule[ib]);
    assert_true(llabs(a.trip_ns[ia] - b.trip_ns[ib]) <= 60 * SIM_S_);
    /* nothing between the brownout and the latency incident; then both */
    ia = first_trip(&a, brown + 900 * SIM_S_);
    ib = first_trip(&b, brown + 900 * SIM_S_);
    assert_true(ia >= 0 && ib >= 0);
    assert_true(a.trip_ns[ia] >= slow && a.trip_ns[ia] < slow + 600 * SIM_S_);
    assert_true(b.trip_ns[ib] >= slow && b.trip_ns[ib] < slow + 600 * SIM_S_);
    assert_int_equal(a.rule[ia], b.rule[ib]);
    assert_true(llabs(a.trip_ns[ia] - b.trip_ns[ib]) <= 60 * SIM_S_);
    /* and nothing after it */
    assert_int_equal(first_trip(&a, slow + 900 * SIM_S_), -1);
    assert_int_equal(first_trip(&b, slow + 900 * SIM_S_), -1);
    side_close(&a);
    side_close(&b);
    assert_int_equal(trip_store_close(st), TRIP_OK);
}

/* A history file at path (/tmp, named after tag) and the first day of a
 * quiet service (a few calls a second, seed): *tr, and its *n events for
 * the caller to free. */
static trip_event *
quiet_day(char *path, size_t cap, const char *tag, uint64_t seed,
          trip_store **st, sim_traffic *tr, size_t *n)
{
    snprintf(path, cap, "/tmp/tripsense-%s-%d.db", tag, (int)getpid());
    unlink(path);
    assert_int_equal(trip_store_open(path, NULL, st), TRIP_OK);
    *tr = sim_default(seed);
    tr->busy_rps = 4;
    tr->evening_rps = 2;
    trip_event *ev = sim_generate(tr, SIM_T0_, SIM_T0_ + SIM_DAY_, n);
    assert_non_null(ev);
    return ev;
}

/*
 * A history whose saved baselines hold a damaged row: the import refuses
 * them all (each is checked before any is used), and the warm start learns
 * from the rollups instead of leaving the baseline cold for a day.
 */
static void
test_adaptive_warm_start_damaged_baseline_uses_rollups(void **state)
{
    (void)state;
    char path[256];
    trip_store *st;
    sim_traffic tr;
    size_t n;
    trip_event *ev = quiet_day(path, sizeof path, "warmbad", 11, &st, &tr, &n);
    int64_t day2 = SIM_T0_ + SIM_DAY_;
    side a, b;
    side_open(&a, SIM_T0_, st);
    side_feed(&a, ev, n);
    free(ev);
    side_close(&a); /* detaches: saves its baseline */
    assert_int_equal(trip_store_close(st), TRIP_OK);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "UPDATE baselines SET updated_ns = -5 "
                                  "WHERE bucket = -1 AND metric = 0",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_changes(db), 1);
    sqlite3_close(db);
    assert_int_equal(trip_store_open(path, NULL, &st), TRIP_OK);
    side_open(&b, day2, st);
    ev = sim_generate(&tr, day2, day2 + SIM_HOUR_, &n);
    assert_non_null(ev);
    side_feed(&b, ev, n);
    free(ev);
    assert_true(b.evals > 0);
    assert_int_equal(b.ready, b.evals); /* from the rollups, at once */
    side_close(&b);
    assert_int_equal(trip_store_close(st), TRIP_OK);
    unlink(path);
}

/*
 * A breaker judging its p90 saves baselines naming 0.9. A restart with the
 * p50 imports every other metric from them, and its p50 from the rollups
 * (which keep p50 and p90), instead of starting that metric cold; a
 * restart with the p90 takes the saved p90 cells.
 */
static void
test_adaptive_warm_start_other_quantile_from_rollups(void **state)
{
    (void)state;
    char path[256];
    trip_store *st;
    sim_traffic tr;
    size_t n;
    trip_event *ev = quiet_day(path, sizeof path, "warmq", 12, &st, &tr, &n);
    int64_t t1 = SIM_T0_ + SIM_DAY_;
    trip_config cfg;
    trip_config_init(&cfg);
    cfg.latency_quantile = 0.9;
    side a, b;
    side_open_cfg(&a, SIM_T0_, st, &cfg);
    side_feed(&a, ev, n);
    free(ev);
    assert_int_equal(trip__adaptive_logq_cold(a.b->adaptive), 0);
    side_close(&a); /* detaches: saves its baseline */
    assert_int_equal(trip_store_flush(st), TRIP_OK);
    double q[3] = {0.5, 0.9, 0.8};
    for (int i = 0; i < 3; i++) {
        cfg.latency_quantile = q[i];
        side_open_cfg(&b, t1, st, &cfg);
        /* 0.8 is neither saved nor kept by the rollups: cold, as the
         * function says when there is nothing to read */
        assert_int_equal(trip__adaptive_logq_cold(b.b->adaptive), 0);
        trip_baseline_row rows[2048];
        size_t m = trip__adaptive_export(b.b->adaptive, 1, t1, rows, 2048);
        int64_t logq_n = -1;
        for (size_t k = 0; k < m; k++)
            if (rows[k].bucket == -1 && rows[k].metric == 5)
                logq_n = rows[k].n;
        print_message("restart with q %.1f: global log_q cell n %lld\n", q[i],
                      (long long)logq_n);
        if (i < 2)
            assert_true(logq_n > 100); /* from the rollups or the saved p90 */
        else
            assert_int_equal(logq_n, -1);
        side_close(&b);
    }
    assert_int_equal(trip_store_close(st), TRIP_OK);
    unlink(path);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adaptive_warm_start_judges_like_online),
        cmocka_unit_test(
            test_adaptive_warm_start_damaged_baseline_uses_rollups),
        cmocka_unit_test(test_adaptive_warm_start_other_quantile_from_rollups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
