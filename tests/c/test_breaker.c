/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Tests of the breaker state machine, fixed rules and recovery. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "tripsense/tripsense.h"

typedef struct fixture {
    trip_clock *clk;
    trip_breaker *b;
    trip_config cfg;
} fixture;

/* A config with the adaptive rules off, so that each test sees one rule. */
static void
plain_config(trip_config *c)
{
    trip_config_init(c);
    c->adaptive = 0;
    c->consecutive_failures = 0;
    c->consecutive_timeouts = 0;
    c->failure_rate = 0;
    c->jitter = 0;
    c->seed = 42;
    c->flap_trips = 0; /* tested in test_extras */
}

static fixture *
make(const trip_config *cfg)
{
    fixture *f = calloc(1, sizeof *f);
    f->cfg = *cfg;
    assert_int_equal(trip_clock_manual_new(1000 * TEST_S_, 0, &f->clk),
                     TRIP_OK);
    assert_int_equal(trip_breaker_new("dep", cfg, f->clk, &f->b), TRIP_OK);
    return f;
}

static void
destroy(fixture *f)
{
    trip_breaker_free(f->b);
    trip_clock_free(f->clk);
    free(f);
}

/* One call: allow, then record outcome with latency; returns the decision. */
static int
call(fixture *f, int outcome, double latency_s)
{
    trip_ticket t;
    int d = trip_allow(f->b, &t);
    if (d == TRIP_PASS)
        assert_int_equal(trip_record_latency(f->b, &t, outcome, latency_s),
                         TRIP_OK);
    return d;
}

static void
test_breaker_consecutive_failures_trip(void **state)
{
    (void)state;
    trip_config c;
    plain_config(&c);
    c.consecutive_failures = 5;
    fixture *f = make(&c);
    for (int i = 0; i < 4; i++)
        assert_int_equal(call(f, TRIP_FAILURE, 0.01), TRIP_PASS);
    call(f, TRIP_SUCCESS, 0.01); /* a success breaks the streak */
    for (int i = 0; i < 4; i++)
        call(f, TRIP_FAILURE, 0.01);
    assert_int_equal(trip_breaker_state(f->b), TRIP_CLOSED);
    call(f, TRIP_FAILURE, 0.01);
    assert_int_equal(trip_breaker_state(f->b), TRIP_OPEN);
    trip_snapshot s;
    trip_snapshot_get(f->b, &s);
    assert_int_equal(s.last_trip.rule, TRIP_RULE_CONSECUTIVE_FAILURES);
    assert_close(s.last_trip.score, 5, 0);
    assert_close(s.last_trip.threshold, 5, 0);
    assert_int_equal(call(f, TRIP_SUCCESS, 0.01), TRIP_REJECTED);
    destroy(f);
}

static void
test_breaker_consecutive_timeouts_trip(void **state)
{
    (void)state;
    trip_config c;
    plain_config(&c);
    c.consecutive_timeouts = 3;
    c.consecutive_failures = 10;
    fixture *f = make(&c);
    call(f, TRIP_TIMEOUT, 2.0);
    call(f, TRIP_TIMEOUT, 2.0);
    call(f, TRIP_FAILURE, 0.1); /* a failure breaks the timeout streak */
    call(f, TRIP_TIMEOUT, 2.0);
    call(f, TRIP_TIMEOUT, 2.0);
    assert_int_equal(trip_breaker_state(f->b), TRIP_CLOSED);
    call(f, TRIP_TIMEOUT, 2.0);
    trip_snapshot s;
    trip_snapshot_get(f->b, &s);
    assert_int_equal(s.state, TRIP_OPEN);
    assert_int_equal(s.last_trip.rule, TRIP_RULE_CONSECUTIVE_TIMEOUTS);
    destroy(f);
}

static void
test_breaker_failure_rate_time_window(void **state)
{
    (void)state;
    trip_config c;
    plain_config(&c);
    c.failure_rate = 0.5;
    c.min_calls = 20;
    fixture *f = make(&c);
    /* 10 calls a second, 40% failures, for 10 s: never trips */
    for (int s = 0; s < 10; s++) {
        for (int i = 0; i < 10; i++)
            call(f, i < 4 ? TRIP_FAILURE : TRIP_SUCCESS, 0.01);
        trip_clock_advance(f->clk, TEST_S_);
    }
    call(f, TRIP_SUCCESS, 0.01);
    assert_int_equal(trip_breaker_state(f->b), TRIP_CLOSED);
    /* then 60% failures: trips at the next roll once the window holds it */
    for (int s = 0; s < 12 && trip_breaker_state(f->b) == TRIP_CLOSED; s++) {
        for (int i = 0; i < 10; i++)
            call(f, i < 6 ? TRIP_FAILURE : TRIP_SUCCESS, 0.01);
        trip_clock_advance(f->clk, TEST_S_);
        call(f, TRIP_IGNORED, 0.01);
    }
    trip_snapshot s;
    trip_snapshot_get(f->b, &s);
    assert_int_equal(s.state, TRIP_OPEN);
    assert_int_equal(s.last_trip.rule, TRIP_RULE_FAILURE_RATE);
    assert_true(s.last_trip.score >= 0.5);
    assert_true(s.last_trip.samples >= 20);
    destroy(f);
}

static void
test_breaker_min_calls_guards_rate(void **state)
{
    (void)state;
    trip_config c;
    plain_config(&c);
    c.failure_rate = 0.5;
    c.min_calls = 20;
    fixture *f = make(&c);
    for (int i = 0; i < 19; i++)
        call(f, TRIP_FAILURE, 0.01);
    trip_clock_advance(f->clk, TEST_S_);
    call(f, TRIP_IGNORED, 0.01);
    assert_int_equal(trip_breaker_state(f->b), TRIP_CLOSED);
    destroy(f);
}

static void
test_breaker_failure_rate_count_window(void **state)
{
    (void)state;
    trip_config c;
    plain_config(&c);
    c.window_kind = TRIP_WINDOW_COUNT;
    c.window_calls = 100;
    c.min_calls = 100;
    c.failure_rate = 0.5;
    fixture *f = make(&c);
    for (int i = 0; i < 100; i++)
        call(f, i % 2 ? TRIP_SUCCESS : (i < 98 ? TRIP_FAILURE : TRIP_SUCCESS),
             0.01);
    assert_int_equal(trip_breaker_state(f->b), TRIP_CLOSED); /* 49% */
    /* the oldest call (a failure) leaves as a new failure enters: 49% */
    call(f, TRIP_FAILURE, 0.01);
    assert_int_equal(trip_breaker_state(f->b), TRIP_CLOSED);
    /* the next oldest is a success: 50% -> trips on this very call */
    call(f, TRIP_FAILURE, 0.01);
    trip_snapshot s;
    trip_snapshot_get(f->b, &s);
    assert_int_equal(s.state, TRIP_OPEN);
    assert_int_equal(s.last_trip.rule, TRIP_RULE_FAILURE_RATE);
    assert_close(s.last_trip.score, 0.5, 1e-12);
    assert_int_equal(s.last_trip.samples, 100);
    destroy(f);
}

static void
test_breaker_slow_call_rate(void **state)
{
    (void)state;
    trip_config c;
    plain_config(&c);
    c.slow_call_rate = 0.5;
    c.slow_call_ns = 500 * TEST_MS_;
    c.min_calls = 10;
    fixture *f = make(&c);
    for (int i = 0; i < 20; i++)
        call(f, TRIP_SUCCESS, i % 2 ? 0.6 : 0.1);
    trip_clock_advance(f->clk, TEST_S_);
    call(f, TRIP_SUCCESS, 0.1);
    trip_snapshot s;
    trip_snapshot_get(f->b, &s);
    assert_int_equal(s.state, TRIP_OPEN);
    assert_int_equal(s.last_trip.rule, TRIP_RULE_SLOW_CALL_RATE);
    assert_close(s.last_trip.score, 0.5, 1e-12);
    assert_int_equal(s.slow, 10);
    destroy(f);
}

static void
trip_now(fixture *f)
{
    trip_breaker_set_mode(f->b, TRIP_MODE_FORCED_OPEN);
    trip_breaker_set_mode(f->b, TRIP_MODE_NORMAL);
    for (uint32_t i = 0; i < f->cfg.consecutive_failures; i++)
        call(f, TRIP_FAILURE, 0.01);
    assert_int_equal(trip_breaker_state(f->b), TRIP_OPEN);
}

static void
test_breaker_full_cycle(void **state)
{
    (void)state;
    trip_config c;
    plain_config(&c);
    c.consecutive_failures = 3;
    c.half_open_successes = 2;
    c.open_ns = 5 * TEST_S_;
    fixture *f = make(&c);
    trip_now(f);
    trip_clock_advance(f->clk, 4 * TEST_S_);
    assert_int_equal(call(f, TRIP_SUCCESS, 0.01), TRIP_REJECTED);
    trip_clock_advance(f->clk, 1 * TEST_S_);
    trip_ticket t1, t2;
    assert_int_equal(trip_allow(f->b, &t1), TRIP_PASS); /* the probe */
    assert_int_equal(trip_breaker_state(f->b), TRIP_HALF_OPEN);
    assert_int_equal(trip_allow(f->b, &t2), TRIP_LIMITED); /* P = 1 */
    trip_record_latency(f->b, &t1, TRIP_SUCCESS, 0.01);
    assert_int_equal(trip_breaker_state(f->b), TRIP_HALF_OPEN);
    assert_int_equal(call(f, TRIP_SUCCESS, 0.01), TRIP_PASS);
    assert_int_equal(trip_breaker_state(f->b), TRIP_CLOSED);
    trip_snapshot s;
    trip_snapshot_get(f->b, &s);
    assert_int_equal(s.transitions, 3 + 2); /* + the forced-open pair */
    assert_true(s.limited >= 1);
    destroy(f);
}

/* Opened by a latency rule, the breaker does not close on probes that
 * succeed as slowly as what tripped it; opened by failures, it does. */
/*
 * A probe that is never recorded (a dropped ticket) holds its slot: after
 * half_open_max_ns with every probe out and none admitted or recorded, the
 * next call reopens the breaker (reason half_open_timeout, the stall in
 * seconds against the limit, the probes out), and the next period probes
 * afresh. A probe that comes back restarts the wait. 0 waits for ever.
 */
static void
test_breaker_stalled_probe_reopens(void **state)
{
    (void)state;
    trip_config c;
    plain_config(&c);
    c.consecutive_failures = 3;
    c.half_open_successes = 2;
    c.open_ns = 5 * TEST_S_;
    c.backoff_multiplier = 2.0;
    c.half_open_max_ns = 60 * TEST_S_;
    fixture *f = make(&c);
    for (int i = 0; i < 3; i++)
        call(f, TRIP_FAILURE, 0.01);
    trip_clock_advance(f->clk, 5 * TEST_S_);
    /* one probe comes back at +50 s; the next is dropped at +50 s */
    trip_ticket t1, lost;
    assert_int_equal(trip_allow(f->b, &t1), TRIP_PASS);
    trip_clock_advance(f->clk, 50 * TEST_S_);
    assert_int_equal(trip_record(f->b, &t1, TRIP_SUCCESS), TRIP_OK);
    assert_int_equal(trip_allow(f->b, &lost), TRIP_PASS);
    trip_clock_advance(f->clk, 59 * TEST_S_);
    trip_ticket t;
    assert_int_equal(trip_allow(f->b, &t), TRIP_LIMITED);
    assert_int_equal(trip_breaker_state(f->b), TRIP_HALF_OPEN);
    trip_clock_advance(f->clk, 1 * TEST_S_);
    assert_int_equal(trip_allow(f->b, &t), TRIP_REJECTED);
    trip_snapshot s;
    assert_int_equal(trip_snapshot_get(f->b, &s), TRIP_OK);
    assert_int_equal(s.state, TRIP_OPEN);
    assert_int_equal(s.last_trip.rule, TRIP_RULE_HALF_OPEN_TIMEOUT);
    assert_string_equal(trip_rule_name(s.last_trip.rule), "half_open_timeout");
    assert_close(s.last_trip.score, 60.0, 1e-9);
    assert_close(s.last_trip.threshold, 60.0, 1e-9);
    assert_int_equal(s.last_trip.samples, 1);
    /* backed off as a failed probe: 10 s; then two fresh probes close */
    trip_clock_advance(f->clk, 9 * TEST_S_);
    assert_int_equal(trip_allow(f->b, &t), TRIP_REJECTED);
    trip_clock_advance(f->clk, 1 * TEST_S_);
    assert_int_equal(call(f, TRIP_SUCCESS, 0.01), TRIP_PASS);
    /* the dropped ticket, recorded late, counts toward nothing */
    assert_int_equal(trip_record(f->b, &lost, TRIP_SUCCESS), TRIP_OK);
    assert_int_equal(trip_breaker_state(f->b), TRIP_HALF_OPEN);
    assert_int_equal(call(f, TRIP_SUCCESS, 0.01), TRIP_PASS);
    assert_int_equal(trip_breaker_state(f->b), TRIP_CLOSED);
    destroy(f);
    /* a probe recorded twice gives back one slot, not two: the count
     * never wraps into the period's tag (which refused every call after) */
    c.half_open_successes = 3;
    f = make(&c);
    for (int i = 0; i < 3; i++)
        call(f, TRIP_FAILURE, 0.01);
    trip_clock_advance(f->clk, 5 * TEST_S_);
    assert_int_equal(trip_allow(f->b, &t1), TRIP_PASS);
    assert_int_equal(trip_record(f->b, &t1, TRIP_SUCCESS), TRIP_OK);
    assert_int_equal(trip_record(f->b, &t1, TRIP_SUCCESS), TRIP_OK);
    assert_int_equal(trip_snapshot_get(f->b, &s), TRIP_OK);
    assert_int_equal(s.half_open_in_flight, 0);
    assert_int_equal(s.half_open_successes, 1);
    assert_int_equal(call(f, TRIP_SUCCESS, 0.01), TRIP_PASS);
    assert_int_equal(call(f, TRIP_SUCCESS, 0.01), TRIP_PASS);
    assert_int_equal(trip_breaker_state(f->b), TRIP_CLOSED);
    destroy(f);
    c.half_open_successes = 2;
    /* 0: the slot waits for its caller however long that takes */
    c.half_open_max_ns = 0;
    f = make(&c);
    for (int i = 0; i < 3; i++)
        call(f, TRIP_FAILURE, 0.01);
    trip_clock_advance(f->clk, 5 * TEST_S_);
    assert_int_equal(trip_allow(f->b, &lost), TRIP_PASS);
    trip_clock_advance(f->clk, 86400 * TEST_S_);
    assert_int_equal(trip_allow(f->b, &t), TRIP_LIMITED);
    assert_int_equal(trip_breaker_state(f->b), TRIP_HALF_OPEN);
    assert_int_equal(trip_record(f->b, &lost, TRIP_SUCCESS), TRIP_OK);
    assert_int_equal(trip_breaker_state(f->b), TRIP_HALF_OPEN);
    destroy(f);
}

static void
test_breaker_slow_probe_fails_after_a_latency_trip(void **state)
{
    (void)state;
    trip_config c;
    plain_config(&c);
    c.slow_call_rate = 0.5;
    c.slow_call_ns = 100 * TEST_MS_;
    c.min_calls = 5;
    c.half_open_successes = 1;
    c.open_ns = 5 * TEST_S_;
    c.backoff_multiplier = 2.0;
    fixture *f = make(&c);
    for (int i = 0; i < 10; i++)
        call(f, TRIP_SUCCESS, 0.2);
    trip_clock_advance(f->clk, 1 * TEST_S_);
    call(f, TRIP_SUCCESS, 0.2); /* rolls the bucket: the rule judges */
    assert_int_equal(trip_breaker_state(f->b), TRIP_OPEN);
    trip_clock_advance(f->clk, 5 * TEST_S_);
    assert_int_equal(call(f, TRIP_SUCCESS, 0.15), TRIP_PASS);
    trip_snapshot s;
    trip_snapshot_get(f->b, &s);
    assert_int_equal(s.state, TRIP_OPEN);
    assert_int_equal(s.last_trip.rule, TRIP_RULE_HALF_OPEN_FAILURE);
    assert_close(s.last_trip.score, 0.15, 1e-9);
    assert_close(s.last_trip.threshold, 0.1, 1e-9);
    /* the limit holds through the reopened period; a fast probe closes */
    trip_clock_advance(f->clk, 10 * TEST_S_);
    assert_int_equal(call(f, TRIP_SUCCESS, 0.15), TRIP_PASS);
    assert_int_equal(trip_breaker_state(f->b), TRIP_OPEN);
    trip_clock_advance(f->clk, 20 * TEST_S_);
    assert_int_equal(call(f, TRIP_SUCCESS, 0.05), TRIP_PASS);
    assert_int_equal(trip_breaker_state(f->b), TRIP_CLOSED);
    destroy(f);
    /* opened by consecutive failures: a slow success still closes it */
    plain_config(&c);
    c.consecutive_failures = 3;
    c.half_open_successes = 1;
    c.open_ns = 5 * TEST_S_;
    f = make(&c);
    for (int i = 0; i < 3; i++)
        call(f, TRIP_FAILURE, 0.01);
    assert_int_equal(trip_breaker_state(f->b), TRIP_OPEN);
    trip_clock_advance(f->clk, 5 * TEST_S_);
    assert_int_equal(call(f, TRIP_SUCCESS, 3.0), TRIP_PASS);
    assert_int_equal(trip_breaker_state(f->b), TRIP_CLOSED);
    destroy(f);
}

static void
test_breaker_half_open_failure_reopens_with_backoff(void **state)
{
    (void)state;
    trip_config c;
    plain_config(&c);
    c.consecutive_failures = 3;
    c.open_ns = 2 * TEST_S_;
    c.backoff_multiplier = 2.0;
    c.open_max_ns = 5 * TEST_S_;
    fixture *f = make(&c);
    trip_now(f);
    int64_t expect[] = {2, 4, 5, 5};
    for (int k = 0; k < 4; k++) {
        trip_snapshot s;
        trip_snapshot_get(f->b, &s);
        assert_int_equal(s.state, TRIP_OPEN);
        assert_int_equal(s.ns_until_half_open, expect[k] * TEST_S_);
        trip_clock_advance(f->clk, expect[k] * TEST_S_);
        assert_int_equal(call(f, TRIP_FAILURE, 0.01), TRIP_PASS);
    }
    trip_snapshot s;
    trip_snapshot_get(f->b, &s);
    assert_int_equal(s.last_trip.rule, TRIP_RULE_HALF_OPEN_FAILURE);
    assert_int_equal(s.trips, 5);
    destroy(f);
}

static void
test_breaker_backoff_resets_after_quiet_period(void **state)
{
    (void)state;
    trip_config c;
    plain_config(&c);
    c.consecutive_failures = 2;
    c.half_open_successes = 1;
    c.open_ns = 2 * TEST_S_;
    c.backoff_reset_ns = 60 * TEST_S_;
    fixture *f = make(&c);
    trip_now(f);
    trip_clock_advance(f->clk, 2 * TEST_S_);
    call(f, TRIP_SUCCESS, 0.01); /* closes */
    call(f, TRIP_FAILURE, 0.01);
    call(f, TRIP_FAILURE, 0.01); /* second trip soon after: 4 s */
    trip_snapshot s;
    trip_snapshot_get(f->b, &s);
    assert_int_equal(s.ns_until_half_open, 4 * TEST_S_);
    trip_clock_advance(f->clk, 4 * TEST_S_);
    call(f, TRIP_SUCCESS, 0.01);
    trip_clock_advance(f->clk, 61 * TEST_S_);
    call(f, TRIP_FAILURE, 0.01);
    call(f, TRIP_FAILURE, 0.01); /* after a quiet minute: back to 2 s */
    trip_snapshot_get(f->b, &s);
    assert_int_equal(s.ns_until_half_open, 2 * TEST_S_);
    assert_int_equal(s.trips, 1);
    destroy(f);
}

static void
test_breaker_jitter_bounds_and_determinism(void **state)
{
    (void)state;
    trip_config c;
    plain_config(&c);
    c.consecutive_failures = 1;
    c.half_open_successes = 1;
    c.open_ns = 10 * TEST_S_;
    c.open_max_ns = 10 * TEST_S_;
    c.jitter = 0.2;
    int64_t seen[2][200];
    for (int run = 0; run < 2; run++) {
        fixture *f = make(&c);
        int64_t lo = INT64_MAX, hi = 0;
        for (int k = 0; k < 200; k++) {
            call(f, TRIP_FAILURE, 0.01);
            trip_snapshot s;
            trip_snapshot_get(f->b, &s);
            assert_int_equal(s.state, TRIP_OPEN);
            seen[run][k] = s.ns_until_half_open;
            lo = s.ns_until_half_open < lo ? s.ns_until_half_open : lo;
            hi = s.ns_until_half_open > hi ? s.ns_until_half_open : hi;
            trip_clock_advance(f->clk, s.ns_until_half_open);
            call(f, TRIP_SUCCESS, 0.01);
            assert_int_equal(trip_breaker_state(f->b), TRIP_CLOSED);
        }
        /* within [0.8, 1.0] x 10 s (capped), and actually spread */
        assert_true(lo >= 8 * TEST_S_);
        assert_true(hi <= 10 * TEST_S_);
        assert_true(lo < 8400 * TEST_MS_);
        destroy(f);
    }
    assert_memory_equal(seen[0], seen[1], sizeof seen[0]);
}

static void
test_breaker_late_result_not_counted(void **state)
{
    (void)state;
    trip_config c;
    plain_config(&c);
    c.consecutive_failures = 3;
    c.half_open_successes = 1;
    c.open_ns = TEST_S_;
    fixture *f = make(&c);
    trip_ticket slow;
    assert_int_equal(trip_allow(f->b, &slow), TRIP_PASS);
    trip_now(f);
    trip_clock_advance(f->clk, TEST_S_);
    call(f, TRIP_SUCCESS, 0.01); /* probe succeeds: closed again */
    assert_int_equal(trip_breaker_state(f->b), TRIP_CLOSED);
    /* the call admitted before the trip now fails: it must not count */
    trip_record_latency(f->b, &slow, TRIP_FAILURE, 3.0);
    call(f, TRIP_FAILURE, 0.01);
    call(f, TRIP_FAILURE, 0.01);
    assert_int_equal(trip_breaker_state(f->b), TRIP_CLOSED);
    trip_snapshot s;
    trip_snapshot_get(f->b, &s);
    assert_int_equal(s.late, 1);
    assert_int_equal(s.consecutive_failures, 2);
    destroy(f);
}

static void
test_breaker_idle_gap_rolls_window(void **state)
{
    (void)state;
    trip_config c;
    plain_config(&c);
    c.failure_rate = 0.5;
    c.min_calls = 10;
    fixture *f = make(&c);
    for (int i = 0; i < 9; i++)
        call(f, TRIP_FAILURE, 0.01);
    /* a day of silence: the old failures must not join the new ones */
    trip_clock_advance(f->clk, 86400 * TEST_S_);
    for (int i = 0; i < 9; i++)
        call(f, TRIP_FAILURE, 0.01);
    for (int i = 0; i < 20; i++)
        call(f, TRIP_SUCCESS, 0.01);
    trip_clock_advance(f->clk, TEST_S_);
    call(f, TRIP_IGNORED, 0.01);
    trip_snapshot s;
    trip_snapshot_get(f->b, &s);
    assert_int_equal(s.state, TRIP_CLOSED);
    assert_int_equal(s.window_calls, 29);
    assert_int_equal(s.window_failures, 9);
    /* and after more than the window, the window is empty */
    trip_clock_advance(f->clk, 11 * TEST_S_);
    call(f, TRIP_IGNORED, 0.01);
    trip_snapshot_get(f->b, &s);
    assert_int_equal(s.window_calls, 0);
    assert_int_equal(s.failures, 18);
    destroy(f);
}

static void
test_breaker_modes(void **state)
{
    (void)state;
    trip_config c;
    plain_config(&c);
    c.consecutive_failures = 2;
    fixture *f = make(&c);
    trip_breaker_set_mode(f->b, TRIP_MODE_FORCED_OPEN);
    assert_int_equal(trip_breaker_state(f->b), TRIP_FORCED_OPEN);
    assert_int_equal(call(f, TRIP_SUCCESS, 0.01), TRIP_REJECTED);
    trip_breaker_set_mode(f->b, TRIP_MODE_FORCED_CLOSED);
    for (int i = 0; i < 5; i++)
        assert_int_equal(call(f, TRIP_FAILURE, 0.01), TRIP_PASS);
    assert_int_equal(trip_breaker_state(f->b), TRIP_FORCED_CLOSED);
    trip_breaker_set_mode(f->b, TRIP_MODE_DISABLED);
    int64_t before;
    trip_snapshot s;
    trip_snapshot_get(f->b, &s);
    before = s.calls;
    for (int i = 0; i < 5; i++)
        assert_int_equal(call(f, TRIP_FAILURE, 0.01), TRIP_PASS);
    trip_snapshot_get(f->b, &s);
    assert_int_equal(s.calls, before); /* disabled records nothing */
    /* metrics-only: the machine trips underneath, calls still pass */
    trip_breaker_set_mode(f->b, TRIP_MODE_METRICS_ONLY);
    for (int i = 0; i < 5; i++)
        assert_int_equal(call(f, TRIP_FAILURE, 0.01), TRIP_PASS);
    trip_snapshot_get(f->b, &s);
    assert_int_equal(s.state, TRIP_METRICS_ONLY);
    assert_int_equal(s.machine_state, TRIP_OPEN);
    assert_int_equal(s.last_trip.rule, TRIP_RULE_CONSECUTIVE_FAILURES);
    assert_true(s.rejected >= 3); /* would-have-rejected, counted */
    trip_breaker_set_mode(f->b, TRIP_MODE_NORMAL);
    assert_int_equal(trip_breaker_state(f->b), TRIP_CLOSED);
    assert_int_equal(trip_breaker_set_mode(f->b, 99), TRIP_EINVAL);
    destroy(f);
}

static void
test_breaker_ramp_up(void **state)
{
    (void)state;
    trip_config c;
    plain_config(&c);
    c.consecutive_failures = 1;
    c.half_open_successes = 1;
    c.open_ns = TEST_S_;
    c.ramp_ns = 10 * TEST_S_;
    c.ramp_start_fraction = 0.1;
    fixture *f = make(&c);
    trip_now(f);
    trip_clock_advance(f->clk, TEST_S_);
    call(f, TRIP_SUCCESS, 0.01); /* closes, ramping */
    int passed = 0;
    for (int i = 0; i < 1000; i++)
        passed += call(f, TRIP_SUCCESS, 0.0) == TRIP_PASS;
    assert_in_range(passed, 99, 101); /* 10% at the start */
    trip_clock_advance(f->clk, 5 * TEST_S_);
    passed = 0;
    for (int i = 0; i < 1000; i++)
        passed += call(f, TRIP_SUCCESS, 0.0) == TRIP_PASS;
    assert_in_range(passed, 549, 551); /* 0.1 + 0.9 * 0.5 */
    trip_clock_advance(f->clk, 5 * TEST_S_);
    passed = 0;
    for (int i = 0; i < 100; i++)
        passed += call(f, TRIP_SUCCESS, 0.0) == TRIP_PASS;
    assert_int_equal(passed, 100);
    /* high priority always passes during the ramp */
    destroy(f);
}

/* Reconfigured to no ramp-up in the middle of one: the snapshot says no
 * ramp, as the next call decides (it divided 0 by ramp_ns = 0, NaN:
 * fuzz_config, regress-ramp-reconfigured-away). */
static void
test_breaker_ramp_reconfigured_away(void **state)
{
    (void)state;
    trip_config c;
    plain_config(&c);
    c.consecutive_failures = 1;
    c.half_open_successes = 1;
    c.open_ns = TEST_S_;
    c.ramp_ns = 10 * TEST_S_;
    c.ramp_start_fraction = 0.1;
    fixture *f = make(&c);
    trip_now(f);
    trip_clock_advance(f->clk, TEST_S_);
    call(f, TRIP_SUCCESS, 0.01); /* closes, ramping */
    trip_snapshot s;
    trip_snapshot_get(f->b, &s);
    assert_close(s.ramp_fraction, 0.1, 1e-9);
    c.ramp_ns = 0;
    assert_int_equal(trip_breaker_reconfigure(f->b, &c), TRIP_OK);
    trip_snapshot_get(f->b, &s);
    assert_close(s.ramp_fraction, 1.0, 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(call(f, TRIP_SUCCESS, 0.0), TRIP_PASS);
    trip_snapshot_get(f->b, &s);
    assert_close(s.ramp_fraction, 1.0, 0);
    destroy(f);
}

static int listener_calls[3];
static int listener_last_to;
static void
listener(int kind, const trip_transition *t, void *user)
{
    (void)user;
    listener_calls[kind]++;
    if (kind == TRIP_EVENT_TRANSITION)
        listener_last_to = t->to;
}

static void
test_breaker_listeners(void **state)
{
    (void)state;
    trip_config c;
    plain_config(&c);
    c.consecutive_failures = 2;
    fixture *f = make(&c);
    int id;
    memset(listener_calls, 0, sizeof listener_calls);
    assert_int_equal(trip_breaker_add_listener(f->b, listener, NULL, &id),
                     TRIP_OK);
    call(f, TRIP_FAILURE, 0.01);
    call(f, TRIP_FAILURE, 0.01);
    assert_int_equal(listener_calls[TRIP_EVENT_TRANSITION], 1);
    assert_int_equal(listener_last_to, TRIP_OPEN);
    call(f, TRIP_SUCCESS, 0.01);
    assert_int_equal(listener_calls[TRIP_EVENT_REJECTION], 1);
    assert_int_equal(trip_breaker_remove_listener(f->b, id), TRIP_OK);
    assert_int_equal(trip_breaker_remove_listener(f->b, id), TRIP_ENOTFOUND);
    call(f, TRIP_SUCCESS, 0.01);
    assert_int_equal(listener_calls[TRIP_EVENT_REJECTION], 1);
    for (int i = 0; i < 8; i++)
        assert_int_equal(trip_breaker_add_listener(f->b, listener, NULL, NULL),
                         TRIP_OK);
    assert_int_equal(trip_breaker_add_listener(f->b, listener, NULL, NULL),
                     TRIP_ENOSPC);
    destroy(f);
}

static void
test_breaker_bad_input(void **state)
{
    (void)state;
    trip_config c;
    plain_config(&c);
    fixture *f = make(&c);
    trip_ticket t;
    trip_breaker *b;
    assert_int_equal(trip_allow(NULL, &t), TRIP_EINVAL);
    assert_non_null(strstr(trip_errmsg(), "breaker is NULL"));
    assert_int_equal(trip_allow(f->b, NULL), TRIP_EINVAL);
    assert_int_equal(trip_allow(f->b, &t), TRIP_PASS);
    assert_int_equal(trip_record(NULL, &t, TRIP_SUCCESS), TRIP_EINVAL);
    assert_int_equal(trip_record(f->b, &t, 7), TRIP_EINVAL);
    assert_non_null(strstr(trip_errmsg(), "unknown outcome 7"));
    assert_int_equal(trip_record_latency(f->b, &t, TRIP_SUCCESS, NAN),
                     TRIP_EINVAL);
    assert_non_null(strstr(trip_errmsg(), "latency"));
    assert_int_equal(trip_record_latency(f->b, &t, TRIP_SUCCESS, -1.0),
                     TRIP_EINVAL);
    assert_int_equal(trip_record_latency(f->b, &t, TRIP_SUCCESS, INFINITY),
                     TRIP_EINVAL);
    trip_snapshot s;
    trip_snapshot_get(f->b, &s);
    assert_int_equal(s.calls, 0); /* nothing was recorded */
    assert_int_equal(s.in_flight, 1);
    assert_int_equal(trip_record(f->b, &t, TRIP_SUCCESS), TRIP_OK);
    trip_breaker_set_mode(f->b, TRIP_MODE_FORCED_OPEN);
    assert_int_equal(trip_allow(f->b, &t), TRIP_REJECTED);
    assert_int_equal(trip_record(f->b, &t, TRIP_SUCCESS), TRIP_EINVAL);
    /* a zeroed ticket says TRIP_PASS (0) but trip_allow never filled it:
     * refused by every record call, and nothing counted */
    trip_ticket zero;
    memset(&zero, 0, sizeof zero);
    trip_breaker_set_mode(f->b, TRIP_MODE_NORMAL);
    assert_int_equal(trip_record(f->b, &zero, TRIP_FAILURE), TRIP_EINVAL);
    assert_non_null(strstr(trip_errmsg(), "not filled by trip_allow"));
    assert_int_equal(trip_record_latency(f->b, &zero, TRIP_FAILURE, 0.1),
                     TRIP_EINVAL);
    assert_int_equal(trip_record_weighted(f->b, &zero, TRIP_FAILURE, 0.1, 1.0),
                     TRIP_EINVAL);
    trip_snapshot_get(f->b, &s);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.failures, 0);
    assert_int_equal(trip_breaker_new(NULL, &c, NULL, &b), TRIP_EINVAL);
    assert_int_equal(trip_breaker_new("", &c, NULL, &b), TRIP_EINVAL);
    assert_null(b);
    /* names go into JSON and Prometheus text, which need UTF-8 */
    assert_int_equal(trip_breaker_new("db\xff\xfe", &c, NULL, &b), TRIP_EINVAL);
    assert_non_null(strstr(trip_errmsg(), "UTF-8"));
    assert_int_equal(trip_breaker_new("db\xed\xa0\x80", &c, NULL, &b),
                     TRIP_EINVAL); /* a surrogate */
    assert_int_equal(trip_breaker_new("zahlungs-dienst-\xc3\xbc", &c, NULL, &b),
                     TRIP_OK);
    trip_breaker_free(b);
    b = NULL;
    c.window_buckets = 0;
    assert_int_equal(trip_breaker_new("x", &c, NULL, &b), TRIP_EINVAL);
    assert_non_null(strstr(trip_errmsg(), "window_buckets"));
    plain_config(&c);
    c.half_open_probes = 0;
    assert_int_equal(trip_breaker_new("x", &c, NULL, &b), TRIP_EINVAL);
    assert_non_null(strstr(trip_errmsg(), "half_open_probes"));
    assert_int_equal(trip_snapshot_get(NULL, &s), TRIP_EINVAL);
    assert_true(trip_breaker_state(NULL) < 0);
    trip_breaker_free(NULL);
    destroy(f);
}

static void
test_breaker_reconfigure(void **state)
{
    (void)state;
    trip_config c;
    plain_config(&c);
    c.consecutive_failures = 10;
    fixture *f = make(&c);
    for (int i = 0; i < 3; i++)
        call(f, TRIP_FAILURE, 0.01);
    c.consecutive_failures = 2;
    c.window_kind = TRIP_WINDOW_COUNT;
    c.window_calls = 10;
    c.min_calls = 5;
    assert_int_equal(trip_breaker_reconfigure(f->b, &c), TRIP_OK);
    call(f, TRIP_FAILURE, 0.01);
    call(f, TRIP_FAILURE, 0.01);
    assert_int_equal(trip_breaker_state(f->b), TRIP_OPEN);
    destroy(f);
    /* windows of the same shape keep their counts: a change of open_ns
     * between failures does not forget the ones counted */
    plain_config(&c);
    c.failure_rate = 0.5;
    c.min_calls = 20;
    f = make(&c);
    for (int i = 0; i < 15; i++)
        call(f, TRIP_FAILURE, 0.01);
    c.open_ns = 7 * TEST_S_;
    assert_int_equal(trip_breaker_reconfigure(f->b, &c), TRIP_OK);
    for (int i = 0; i < 5; i++)
        call(f, TRIP_FAILURE, 0.01);
    trip_clock_advance(f->clk, 1 * TEST_S_);
    call(f, TRIP_FAILURE, 0.01); /* rolls the bucket: the rule judges */
    assert_int_equal(trip_breaker_state(f->b), TRIP_OPEN);
    c.failure_rate = 2.0;
    assert_int_equal(trip_breaker_reconfigure(f->b, &c), TRIP_EINVAL);
    assert_non_null(strstr(trip_errmsg(), "failure_rate"));
    trip_config got;
    trip_breaker_config(f->b, &got);
    assert_int_equal(got.open_ns, 7 * TEST_S_);
    destroy(f);
}

/* ---- threads ------------------------------------------------------------ */

typedef struct worker {
    trip_breaker *b;
    int n;
    int passed;
    pthread_barrier_t *bar;
} worker;

static void *
count_worker(void *arg)
{
    worker *w = arg;
    trip_ticket t;
    for (int i = 0; i < w->n; i++) {
        if (trip_allow(w->b, &t) == TRIP_PASS)
            trip_record_latency(
                w->b, &t, i % 10 == 0 ? TRIP_FAILURE : TRIP_SUCCESS, 0.001);
    }
    return NULL;
}

static void
test_breaker_counters_exact_under_8_threads(void **state)
{
    (void)state;
    trip_config c;
    plain_config(&c);
    fixture *f = make(&c);
    pthread_t th[8];
    worker w[8];
    for (int i = 0; i < 8; i++) {
        w[i] = (worker){f->b, 100000, 0, NULL};
        pthread_create(&th[i], NULL, count_worker, &w[i]);
    }
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    trip_snapshot s;
    trip_snapshot_get(f->b, &s);
    assert_int_equal(s.calls, 800000);
    assert_int_equal(s.failures, 80000);
    assert_int_equal(s.successes, 720000);
    assert_int_equal(s.in_flight, 0);
    destroy(f);
}

static void *
probe_worker(void *arg)
{
    worker *w = arg;
    trip_ticket t;
    pthread_barrier_wait(w->bar);
    w->passed = trip_allow(w->b, &t) == TRIP_PASS;
    return NULL;
}

static void
test_breaker_half_open_admits_exactly_p(void **state)
{
    (void)state;
    enum { THREADS = 8, TRIALS = 200 };
    trip_config c;
    plain_config(&c);
    c.consecutive_failures = 1;
    c.half_open_probes = 3;
    c.open_ns = TEST_S_;
    for (int trial = 0; trial < TRIALS; trial++) {
        fixture *f = make(&c);
        call(f, TRIP_FAILURE, 0.01);
        trip_clock_advance(f->clk, TEST_S_);
        pthread_barrier_t bar;
        pthread_barrier_init(&bar, NULL, THREADS);
        pthread_t th[THREADS];
        worker w[THREADS];
        for (int i = 0; i < THREADS; i++) {
            w[i] = (worker){f->b, 0, 0, &bar};
            pthread_create(&th[i], NULL, probe_worker, &w[i]);
        }
        int passed = 0;
        for (int i = 0; i < THREADS; i++) {
            pthread_join(th[i], NULL);
            passed += w[i].passed;
        }
        assert_int_equal(passed, 3);
        assert_int_equal(trip_breaker_state(f->b), TRIP_HALF_OPEN);
        pthread_barrier_destroy(&bar);
        destroy(f);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_breaker_consecutive_failures_trip),
        cmocka_unit_test(test_breaker_consecutive_timeouts_trip),
        cmocka_unit_test(test_breaker_failure_rate_time_window),
        cmocka_unit_test(test_breaker_min_calls_guards_rate),
        cmocka_unit_test(test_breaker_failure_rate_count_window),
        cmocka_unit_test(test_breaker_slow_call_rate),
        cmocka_unit_test(test_breaker_full_cycle),
        cmocka_unit_test(test_breaker_half_open_failure_reopens_with_backoff),
        cmocka_unit_test(test_breaker_slow_probe_fails_after_a_latency_trip),
        cmocka_unit_test(test_breaker_stalled_probe_reopens),
        cmocka_unit_test(test_breaker_backoff_resets_after_quiet_period),
        cmocka_unit_test(test_breaker_jitter_bounds_and_determinism),
        cmocka_unit_test(test_breaker_late_result_not_counted),
        cmocka_unit_test(test_breaker_idle_gap_rolls_window),
        cmocka_unit_test(test_breaker_modes),
        cmocka_unit_test(test_breaker_ramp_up),
        cmocka_unit_test(test_breaker_ramp_reconfigured_away),
        cmocka_unit_test(test_breaker_listeners),
        cmocka_unit_test(test_breaker_bad_input),
        cmocka_unit_test(test_breaker_reconfigure),
        cmocka_unit_test(test_breaker_counters_exact_under_8_threads),
        cmocka_unit_test(test_breaker_half_open_admits_exactly_p),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
