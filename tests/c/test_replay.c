/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Replay runs the live engine: same events, same decisions, bit for bit. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "breaker_internal.h"
#include "test_util.h"

enum { N_EVENTS = 200000 };

static uint64_t rng_state = 7;
static double
uniform(void)
{
    return (double)(trip__splitmix64(&rng_state) >> 11) * 0x1.0p-53;
}

/* A day at ~2 calls/s with an outage and a latency episode. */
static trip_event *
make_events(size_t n)
{
    trip_event *e = calloc(n, sizeof *e);
    int64_t t = 1700000000LL * TEST_S_;
    for (size_t i = 0; i < n; i++) {
        t += (int64_t)(uniform() * 1e9);
        double p_fail = 0.01;
        double lat = 0.02 + 0.01 * uniform();
        if (i > n / 3 && i < n / 3 + 2000)
            p_fail = 0.9;
        if (i > 2 * n / 3 && i < 2 * n / 3 + 3000)
            lat *= 8;
        double u = uniform();
        e[i].wall_ns = t;
        e[i].latency_s = lat;
        e[i].outcome = u < p_fail
                           ? TRIP_FAILURE
                           : (u < p_fail + 0.002 ? TRIP_TIMEOUT : TRIP_SUCCESS);
        e[i].priority = (int)(uniform() * 256);
    }
    return e;
}

typedef struct live_log {
    trip_eval *evals;
    size_t n_evals, cap;
    trip_transition_row rows[4096];
    size_t n_rows;
} live_log;

static void
live_eval(void *user, const trip_eval *ev)
{
    live_log *l = user;
    if (l->n_evals == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 1024;
        l->evals = realloc(l->evals, l->cap * sizeof *l->evals);
    }
    l->evals[l->n_evals++] = *ev;
}

static void
live_transition(int kind, const trip_transition *t, void *user)
{
    live_log *l = user;
    if (kind != TRIP_EVENT_TRANSITION || l->n_rows == 4096)
        return;
    l->rows[l->n_rows++] = (trip_transition_row){t->reason.wall_ns,
                                                 0,
                                                 t->from,
                                                 t->to,
                                                 t->reason.rule,
                                                 t->reason.score,
                                                 t->reason.threshold,
                                                 t->reason.baseline,
                                                 t->reason.samples};
}

/* The live breaker may write a history: that must not change a decision. */
static int with_history;

static void
run_live(const trip_config *cfg, const trip_event *e, size_t n,
         uint8_t *decisions, live_log *log)
{
    trip_clock *clk;
    trip_breaker *b;
    trip_store *store = NULL;
    assert_int_equal(trip_clock_manual_new(e[0].wall_ns, 0, &clk), TRIP_OK);
    assert_int_equal(trip_breaker_new("replay", cfg, clk, &b), TRIP_OK);
    if (with_history) {
        assert_int_equal(trip_store_open(":memory:", NULL, &store), TRIP_OK);
        assert_int_equal(trip_breaker_attach(b, store), TRIP_OK);
    }
    b->eval_hook = live_eval;
    b->eval_hook_user = log;
    trip_breaker_add_listener(b, live_transition, log, NULL);
    for (size_t i = 0; i < n; i++) {
        trip_clock_set(clk, e[i].wall_ns);
        trip_ticket t;
        decisions[i] = (uint8_t)trip_allow_priority(b, &t, e[i].priority);
        if (decisions[i] == TRIP_PASS)
            trip_record_latency(b, &t, e[i].outcome, e[i].latency_s);
    }
    trip_breaker_free(b);
    assert_int_equal(trip_store_close(store), TRIP_OK);
    trip_clock_free(clk);
}

/* The same events as columns, without evaluations: the same decisions,
 * states, transitions and final snapshot as the full replay r. */
static void
check_no_evals(const trip_config *cfg, const trip_event *e,
               const trip_replay_result *r)
{
    int64_t *w = malloc(N_EVENTS * sizeof *w);
    double *l = malloc(N_EVENTS * sizeof *l);
    int32_t *o = malloc(N_EVENTS * sizeof *o),
            *p = malloc(N_EVENTS * sizeof *p);
    assert_true(w && l && o && p);
    for (size_t i = 0; i < N_EVENTS; i++) {
        w[i] = e[i].wall_ns;
        l[i] = e[i].latency_s;
        o[i] = e[i].outcome;
        p[i] = e[i].priority;
    }
    trip_replay_result *q;
    assert_int_equal(trip_replay_arrays_flags(cfg, w, l, o, p, N_EVENTS,
                                              TRIP_REPLAY_NO_EVALS, &q),
                     TRIP_OK);
    assert_int_equal(q->n_evals, 0);
    assert_null(q->evals);
    assert_memory_equal(q->decisions, r->decisions, N_EVENTS);
    assert_memory_equal(q->states, r->states, N_EVENTS);
    assert_int_equal(q->n_transitions, r->n_transitions);
    assert_memory_equal(q->transitions, r->transitions,
                        r->n_transitions * sizeof(trip_transition_row));
    assert_memory_equal(&q->final, &r->final, sizeof q->final);
    trip_replay_result_free(q);
    free(w);
    free(l);
    free(o);
    free(p);
}

static void
check_equal(const trip_config *cfg)
{
    trip_event *e = make_events(N_EVENTS);
    trip_replay_result *r;
    assert_int_equal(trip_replay(cfg, e, N_EVENTS, &r), TRIP_OK);
    uint8_t *live = calloc(N_EVENTS, 1);
    live_log log = {0};
    run_live(cfg, e, N_EVENTS, live, &log);
    assert_memory_equal(r->decisions, live, N_EVENTS);
    assert_int_equal(r->n_evals, log.n_evals);
    assert_memory_equal(r->evals, log.evals, log.n_evals * sizeof(trip_eval));
    assert_int_equal(r->n_transitions, log.n_rows);
    assert_memory_equal(r->transitions, log.rows,
                        log.n_rows * sizeof(trip_transition_row));
    assert_true(r->n_transitions >= 2); /* the outage tripped it */
    assert_int_equal(r->final.calls + r->final.rejected + r->final.limited +
                         r->final.late,
                     N_EVENTS);
    check_no_evals(cfg, e, r);
    trip_replay_result_free(r);
    free(log.evals);
    free(live);
    free(e);
}

static void
test_replay_equals_live_defaults(void **state)
{
    (void)state;
    trip_config c;
    trip_config_init(&c);
    c.seed = 99;
    with_history = 0;
    check_equal(&c);
}

static void
test_replay_equals_live_with_history(void **state)
{
    (void)state;
    trip_config c;
    trip_config_init(&c);
    c.seed = 99;
    with_history = 1;
    check_equal(&c);
    with_history = 0;
}

static void
test_replay_equals_live_count_window_ramp(void **state)
{
    (void)state;
    trip_config c;
    trip_config_init(&c);
    c.seed = 5;
    with_history = 0;
    c.window_kind = TRIP_WINDOW_COUNT;
    c.half_open_probes = 2;
    c.ramp_ns = 30 * TEST_S_;
    c.slow_call_rate = 0.5;
    c.slow_call_ns = 100 * TEST_MS_;
    check_equal(&c);
}

/* The long window judged after an idle gap holds no latencies from before
 * the gap: ten slow seconds, four quiet minutes, then calls again. */
static void
test_replay_gap_leaves_no_stale_latencies(void **state)
{
    (void)state;
    enum { HEALTHY_S = 7200, SLOW_S = 10, GAP_S = 240, AFTER_S = 120 };
    size_t n = HEALTHY_S * 5 + SLOW_S * 5 + AFTER_S * 5, k = 0;
    trip_event *ev = calloc(n, sizeof *ev);
    assert_non_null(ev);
    int64_t t0 = 1704067200LL * TEST_S_, t = t0;
    for (int s = 0; s < HEALTHY_S + SLOW_S + AFTER_S; s++) {
        if (s == HEALTHY_S + SLOW_S)
            t += GAP_S * TEST_S_;
        for (int i = 0; i < 5; i++, k++) {
            ev[k].wall_ns = t + i * 200 * TEST_MS_;
            ev[k].outcome = TRIP_SUCCESS;
            ev[k].latency_s = (s >= HEALTHY_S && s < HEALTHY_S + SLOW_S)
                                  ? 2.0
                                  : 0.010 + 0.001 * (double)((s + i) % 7);
        }
        t += TEST_S_;
    }
    trip_replay_result *r = NULL;
    assert_int_equal(trip_replay(NULL, ev, k, &r), TRIP_OK);
    int64_t resume = t0 + (int64_t)(HEALTHY_S + SLOW_S + GAP_S) * TEST_S_;
    int seen = 0;
    for (size_t i = 0; i < r->n_evals; i++) {
        const trip_eval *e = &r->evals[i];
        if (!e->judged || e->wall_ns < resume || seen)
            continue;
        seen = 1; /* the first judgement after the gap */
        assert_true(isnan(e->z_latency) || e->z_latency < 3);
    }
    assert_true(seen);
    assert_int_equal(r->final.trips, 0);
    trip_replay_result_free(r);
    free(ev);
}

/* The windows of each evaluation, counted again from the events: the
 * engine keeps running sums of the ring and of the short histogram, and
 * sums the ring again after a gap; both must count exactly the calls of
 * [end - window, end). Gaps of every size: none, under a bucket, under
 * the short window, under the long one, longer than both. */
static void
test_replay_windows_count_the_events(void **state)
{
    (void)state;
    enum { N = 40000 };
    trip_event *ev = calloc(N, sizeof *ev);
    assert_non_null(ev);
    int64_t t = 1704067200LL * TEST_S_ + 123456789;
    for (size_t i = 0; i < N; i++) {
        double g = uniform();
        t += g < 0.002  ? (int64_t)(uniform() * 200) * TEST_S_ /* long */
             : g < 0.01 ? (int64_t)(uniform() * 12) * TEST_S_  /* short */
             : g < 0.1  ? 0                                    /* same ns */
                        : (int64_t)(uniform() * 0.4e9);
        double u = uniform();
        ev[i].wall_ns = t;
        ev[i].outcome = u < 0.2    ? TRIP_FAILURE
                        : u < 0.25 ? TRIP_TIMEOUT
                        : u < 0.3  ? TRIP_IGNORED
                                   : TRIP_SUCCESS;
        ev[i].latency_s = 0.001 * exp(6 * uniform());
    }
    trip_config c;
    trip_config_init(&c);
    c.adaptive = 0; /* nothing trips: every call passes and counts */
    c.failure_rate = 0;
    c.consecutive_failures = 0;
    c.consecutive_timeouts = 0;
    trip_replay_result *r = NULL;
    assert_int_equal(trip_replay(&c, ev, N, &r), TRIP_OK);
    assert_int_equal(r->final.trips, 0);
    int64_t W = (int64_t)c.window_buckets * c.bucket_ns;
    int64_t L = (int64_t)c.long_window_buckets * c.bucket_ns;
    uint64_t *h = malloc(TRIP_HIST_BINS * sizeof *h);
    assert_non_null(h);
    size_t gaps = 0;
    for (size_t k = 0; k < r->n_evals; k++) {
        const trip_eval *e = &r->evals[k];
        int64_t calls = 0, fails = 0, lcalls = 0, lfails = 0;
        uint64_t nh = 0;
        memset(h, 0, TRIP_HIST_BINS * sizeof *h);
        for (size_t i = 0; i < N && ev[i].wall_ns < e->wall_ns; i++) {
            if (ev[i].wall_ns < e->wall_ns - L || ev[i].outcome == TRIP_IGNORED)
                continue;
            int fail = ev[i].outcome != TRIP_SUCCESS;
            lcalls++;
            lfails += fail;
            if (ev[i].wall_ns < e->wall_ns - W)
                continue;
            calls++;
            fails += fail;
            h[trip__hist_bin(llround(ev[i].latency_s * 1e9))]++;
            nh++;
        }
        assert_int_equal(e->calls, calls);
        assert_int_equal(e->failures, fails);
        assert_int_equal(e->long_calls, lcalls);
        assert_int_equal(e->long_failures, lfails);
        double q = trip__hist_quantile_s(h, nh, c.latency_quantile);
        if (nh == 0)
            assert_true(isnan(e->latency_q_s));
        else
            assert_true(e->latency_q_s == q);
        gaps += k > 0 && e->wall_ns - r->evals[k - 1].wall_ns > c.bucket_ns;
    }
    assert_true(gaps > 100); /* the recomputing path ran, often */
    assert_true(r->n_evals > 5000);
    free(h);
    trip_replay_result_free(r);
    free(ev);
}

/* At 2 calls a minute a failure is a minute's rate of 0.5: the baseline
 * must learn the true rate (2.5%), not a clipped fraction of it. Clipping
 * at the cell's own sd (0 while its first minutes had no failure) with a
 * floor of 0.01 learned 0.2%, against which the sequential test tripped
 * 139 times in 8 weeks of flat traffic (bench_replay's judging case). */
static void
test_replay_low_volume_baseline_unbiased(void **state)
{
    (void)state;
    enum { DAYS = 14 };
    size_t n = (size_t)DAYS * 24 * 60 * 2;
    trip_event *ev = calloc(n, sizeof *ev);
    assert_non_null(ev);
    int64_t t0 = 1704067200LL * TEST_S_;
    for (size_t i = 0; i < n; i++) {
        ev[i].wall_ns =
            t0 + (int64_t)i * 30 * TEST_S_ + (int64_t)(uniform() * 15e9);
        ev[i].outcome = uniform() < 0.025 ? TRIP_FAILURE : TRIP_SUCCESS;
        ev[i].latency_s = 0.02;
    }
    trip_config c;
    trip_config_init(&c);
    c.seasonality = TRIP_SEASON_HOUR_OF_WEEK;
    c.baseline_min_samples = 5;
    trip_replay_result *r = NULL;
    assert_int_equal(trip_replay(&c, ev, n, &r), TRIP_OK);
    const trip_eval *last = NULL;
    for (size_t i = 0; i < r->n_evals; i++)
        if (r->evals[i].judged)
            last = &r->evals[i];
    assert_non_null(last);
    print_message("2 calls a minute at 2.5%%: learned %.4f, trips %llu\n",
                  last->baseline_rate, (unsigned long long)r->final.trips);
    assert_true(last->baseline_rate > 0.015 && last->baseline_rate < 0.035);
    for (size_t i = 0; i < r->n_transitions; i++)
        assert_int_not_equal(r->transitions[i].to, TRIP_OPEN);
    trip_replay_result_free(r);
    free(ev);
}

static void
test_replay_bad_input(void **state)
{
    (void)state;
    trip_event e[3] = {{10, 0.1, 0, 0}, {5, 0.1, 0, 0}, {20, 0.1, 0, 0}};
    trip_replay_result *r = (trip_replay_result *)1;
    assert_int_equal(trip_replay(NULL, e, 3, &r), TRIP_EINVAL);
    assert_null(r);
    assert_non_null(strstr(trip_errmsg(), "event 1"));
    e[1].wall_ns = 15;
    e[2].latency_s = NAN;
    assert_int_equal(trip_replay(NULL, e, 3, &r), TRIP_EINVAL);
    assert_non_null(strstr(trip_errmsg(), "event 2"));
    /* eleven seconds of rolls, then a time back at the start: the
     * evaluations' array is sized by the span of the first and last times
     * (one second here), so it fills before the bad event is reached */
    trip_event back[12];
    for (int i = 0; i < 11; i++)
        back[i] = (trip_event){(int64_t)(i + 1) * 1000000000LL, 0.01, 0, 0};
    back[11] = (trip_event){1500000000LL, 0.01, 0, 0};
    assert_int_equal(trip_replay(NULL, back, 12, &r), TRIP_EINVAL);
    assert_null(r);
    assert_non_null(strstr(trip_errmsg(), "event 11"));
    int64_t w1 = 1000000000LL;
    double l1 = 0.01;
    int32_t o1 = 0;
    r = (trip_replay_result *)1;
    assert_int_equal(
        trip_replay_arrays_flags(NULL, &w1, &l1, &o1, NULL, 1, 6u, &r),
        TRIP_EINVAL);
    assert_null(r);
    assert_non_null(strstr(trip_errmsg(), "unknown flags 0x6"));
    e[2].latency_s = 0.1;
    e[2].outcome = 9;
    assert_int_equal(trip_replay(NULL, e, 3, &r), TRIP_EINVAL);
    assert_non_null(strstr(trip_errmsg(), "unknown outcome"));
    e[2].outcome = 0;
    assert_int_equal(trip_replay(NULL, e, 3, &r), TRIP_OK);
    assert_int_equal(r->n_events, 3);
    trip_replay_result_free(r);
    assert_int_equal(trip_replay(NULL, NULL, 3, &r), TRIP_EINVAL);
    assert_int_equal(trip_replay(NULL, e, 0, &r), TRIP_OK);
    trip_replay_result_free(r);
    trip_config c;
    trip_config_init(&c);
    c.jitter = 5;
    assert_int_equal(trip_replay(&c, e, 3, &r), TRIP_EINVAL);
    assert_non_null(strstr(trip_errmsg(), "jitter"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_equals_live_defaults),
        cmocka_unit_test(test_replay_equals_live_with_history),
        cmocka_unit_test(test_replay_equals_live_count_window_ramp),
        cmocka_unit_test(test_replay_gap_leaves_no_stale_latencies),
        cmocka_unit_test(test_replay_windows_count_the_events),
        cmocka_unit_test(test_replay_low_volume_baseline_unbiased),
        cmocka_unit_test(test_replay_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
