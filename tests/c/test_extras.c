/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Tests of tiers, priorities, the limiter, flapping, dependencies, weighted
 * errors and health signals (issue 9). */
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "tripsense/tripsense.h"

static trip_clock *clk;

static void
plain(trip_config *c)
{
    trip_config_init(c);
    c->adaptive = 0;
    c->consecutive_failures = 0;
    c->consecutive_timeouts = 0;
    c->failure_rate = 0;
    c->jitter = 0;
    c->seed = 1;
}

static void
ensure_clock(void)
{
    if (clk == NULL)
        assert_int_equal(trip_clock_manual_new(100 * TEST_S_, 0, &clk),
                         TRIP_OK);
}

static trip_breaker *
make(const char *name, const trip_config *c)
{
    trip_breaker *b;
    ensure_clock();
    assert_int_equal(trip_breaker_new(name, c, clk, &b), TRIP_OK);
    return b;
}

static int
call_p(trip_breaker *b, int outcome, int priority)
{
    trip_ticket t;
    int d = trip_allow_priority(b, &t, priority);
    if (d == TRIP_PASS)
        assert_int_equal(trip_record_latency(b, &t, outcome, 0.01), TRIP_OK);
    return d;
}

static void
test_extras_tier_defaults(void **state)
{
    (void)state;
    trip_config c;
    static const int64_t open_s[4] = {15, 30, 60, 120};
    for (int tier = 0; tier < 4; tier++) {
        assert_int_equal(trip_config_init_tier(&c, tier), TRIP_OK);
        assert_int_equal(c.tier, tier);
        assert_int_equal(c.open_ns, open_s[tier] * TEST_S_);
        assert_int_equal(trip_config_validate(&c, NULL, 0), TRIP_OK);
    }
    assert_int_equal(trip_config_init_tier(&c, 7), TRIP_EINVAL);
    assert_non_null(strstr(trip_errmsg(), "unknown tier 7"));
    assert_int_equal(trip_config_init_tier(NULL, 0), TRIP_EINVAL);
    trip_config_init(&c);
    c.tier = 9;
    assert_int_equal(trip_config_validate(&c, NULL, 0), TRIP_EINVAL);
    assert_non_null(strstr(trip_errmsg(), "tier"));
}

static void
test_extras_limiter_rate_and_burst(void **state)
{
    (void)state;
    trip_config c;
    plain(&c);
    c.limit_rate = 10;
    c.limit_burst = 5;
    trip_breaker *b = make("limited", &c);
    int passed = 0;
    for (int i = 0; i < 20; i++)
        passed += call_p(b, TRIP_SUCCESS, 0) == TRIP_PASS;
    assert_int_equal(passed, 5); /* the burst */
    /* then a call every 10 ms for 10 s: exactly the rate gets through */
    passed = 0;
    for (int i = 0; i < 1000; i++) {
        trip_clock_advance(clk, 10 * TEST_MS_);
        passed += call_p(b, TRIP_SUCCESS, 0) == TRIP_PASS;
    }
    assert_int_equal(passed, 100);
    trip_snapshot s;
    trip_snapshot_get(b, &s);
    assert_int_equal(s.limited, 15 + 900);
    /* idle for a minute: the bucket refills to the burst, not beyond */
    trip_clock_advance(clk, 60 * TEST_S_);
    passed = 0;
    for (int i = 0; i < 20; i++)
        passed += call_p(b, TRIP_SUCCESS, 0) == TRIP_PASS;
    assert_int_equal(passed, 5);
    trip_breaker_free(b);
}

static void
test_extras_adaptive_limiter_lowers_and_restores(void **state)
{
    (void)state;
    trip_config c;
    plain(&c);
    c.limit_rate = 100;
    c.consecutive_failures = 3;
    c.half_open_successes = 1;
    c.open_ns = TEST_S_;
    c.limit_recovery_ns = 10 * TEST_S_;
    c.limit_min_fraction = 0.1;
    trip_breaker *b = make("adaptive-limit", &c);
    for (int i = 0; i < 3; i++)
        call_p(b, TRIP_FAILURE, 0);
    trip_snapshot s;
    trip_snapshot_get(b, &s);
    assert_close(s.limit_fraction, 0.5, 1e-12);
    trip_clock_advance(clk, TEST_S_);
    call_p(b, TRIP_SUCCESS, 0); /* probe closes it */
    assert_int_equal(trip_breaker_state(b), TRIP_CLOSED);
    /* 5 s later (half of the recovery) the share is 0.75 */
    trip_clock_advance(clk, 5 * TEST_S_);
    call_p(b, TRIP_SUCCESS, 0);
    trip_snapshot_get(b, &s);
    assert_close(s.limit_fraction, 0.75, 1e-9);
    trip_clock_advance(clk, 6 * TEST_S_);
    call_p(b, TRIP_SUCCESS, 0);
    trip_snapshot_get(b, &s);
    assert_close(s.limit_fraction, 1.0, 0);
    trip_breaker_free(b);
}

/* Teach the breaker a priority mix: 20% at 240, 30% at 128, 50% at 16. */
static void
teach_mix(trip_breaker *b)
{
    for (int sec = 0; sec < 5; sec++) {
        for (int i = 0; i < 100; i++)
            call_p(b, TRIP_SUCCESS, i < 20 ? 240 : (i < 50 ? 128 : 16));
        trip_clock_advance(clk, TEST_S_);
    }
    call_p(b, TRIP_IGNORED, 16);
}

static void
test_extras_ramp_sheds_low_priority_first(void **state)
{
    (void)state;
    trip_config c;
    plain(&c);
    c.consecutive_failures = 1;
    c.half_open_successes = 1;
    c.open_ns = TEST_S_;
    c.ramp_ns = 100 * TEST_S_;
    c.ramp_start_fraction = 0.3;
    c.flap_trips = 0;
    trip_breaker *b = make("ramp", &c);
    teach_mix(b);
    call_p(b, TRIP_FAILURE, 240);
    trip_clock_advance(clk, TEST_S_);
    assert_int_equal(call_p(b, TRIP_SUCCESS, 240), TRIP_PASS); /* closes */
    int pass[3] = {0};
    for (int i = 0; i < 1000; i++) {
        pass[0] += call_p(b, TRIP_SUCCESS, 240) == TRIP_PASS;
        pass[1] += call_p(b, TRIP_SUCCESS, 128) == TRIP_PASS;
        pass[2] += call_p(b, TRIP_SUCCESS, 16) == TRIP_PASS;
    }
    /* 30% admitted: all of the top 20%, a third of the next 30%, none of
     * the bottom half */
    assert_int_equal(pass[0], 1000);
    assert_in_range(pass[1], 320, 350);
    assert_int_equal(pass[2], 0);
    trip_breaker_free(b);
}

static void
test_extras_half_open_probes_from_high_priority(void **state)
{
    (void)state;
    trip_config c;
    plain(&c);
    c.consecutive_failures = 1;
    c.half_open_successes = 2;
    c.half_open_probes = 5;
    c.open_ns = TEST_S_;
    c.probe_priority_share = 0.4;
    c.flap_trips = 0;
    trip_breaker *b = make("probes", &c);
    teach_mix(b);
    call_p(b, TRIP_FAILURE, 240);
    trip_clock_advance(clk, TEST_S_);
    trip_ticket t;
    /* the bottom half of traffic does not probe */
    assert_int_equal(trip_allow_priority(b, &t, 16), TRIP_LIMITED);
    assert_int_equal(trip_breaker_state(b), TRIP_HALF_OPEN);
    assert_int_equal(call_p(b, TRIP_SUCCESS, 128), TRIP_PASS);
    assert_int_equal(call_p(b, TRIP_SUCCESS, 240), TRIP_PASS);
    assert_int_equal(trip_breaker_state(b), TRIP_CLOSED);
    trip_breaker_free(b);
}

static void
test_extras_flapping_lengthens_backoff(void **state)
{
    (void)state;
    trip_config c;
    plain(&c);
    c.consecutive_failures = 1;
    c.half_open_successes = 1;
    c.open_ns = TEST_S_;
    c.backoff_multiplier = 1;
    c.flap_trips = 3;
    c.flap_window_ns = 60 * TEST_S_;
    c.flap_backoff = 4;
    trip_breaker *b = make("flappy", &c);
    trip_snapshot s;
    for (int k = 0; k < 3; k++) {
        call_p(b, TRIP_FAILURE, 0);
        trip_snapshot_get(b, &s);
        assert_int_equal(s.flapping, k == 2);
        assert_int_equal(s.ns_until_half_open, (k == 2 ? 4 : 1) * TEST_S_);
        trip_clock_advance(clk, s.ns_until_half_open);
        call_p(b, TRIP_SUCCESS, 0);
    }
    char *json;
    trip_breaker_health_json(b, &json);
    assert_non_null(strstr(json, "\"flapping\":true"));
    assert_non_null(strstr(json, "\"status\":\"degraded\""));
    trip_string_free(json);
    trip_breaker_prometheus(b, &json);
    assert_non_null(strstr(json, "tripsense_flapping{breaker=\"flappy\"} 1"));
    trip_string_free(json);
    /* after a quiet window it is no longer flapping */
    trip_clock_advance(clk, 61 * TEST_S_);
    call_p(b, TRIP_SUCCESS, 0);
    trip_snapshot_get(b, &s);
    assert_int_equal(s.flapping, 0);
    trip_breaker_free(b);
}

static void
test_extras_dependencies(void **state)
{
    (void)state;
    trip_registry *r;
    trip_breaker *api, *db, *cache;
    trip_config c;
    plain(&c);
    c.consecutive_failures = 2;
    c.half_open_successes = 1;
    c.open_ns = TEST_S_;
    c.flap_trips = 0;
    ensure_clock();
    trip_registry_new(&r);
    c.dependency_action = TRIP_DEP_OPEN;
    trip_registry_get_or_create(r, "api", &c, clk, &api);
    c.dependency_action = TRIP_DEP_SHED;
    trip_registry_get_or_create(r, "cache", &c, clk, &cache);
    trip_registry_get_or_create(r, "db", &c, clk, &db);
    assert_int_equal(trip_registry_depends(r, "api", "cache"), TRIP_OK);
    assert_int_equal(trip_registry_depends(r, "cache", "db"), TRIP_OK);
    assert_int_equal(trip_registry_depends(r, "db", "api"), TRIP_EINVAL);
    assert_non_null(strstr(trip_errmsg(), "cycle"));
    assert_int_equal(trip_registry_depends(r, "db", "nope"), TRIP_ENOTFOUND);
    /* db opens: cache sheds low priorities, api (needs cache) reports */
    call_p(db, TRIP_FAILURE, 0);
    call_p(db, TRIP_FAILURE, 0);
    assert_int_equal(trip_breaker_state(db), TRIP_OPEN);
    assert_int_equal(call_p(cache, TRIP_SUCCESS, 10), TRIP_LIMITED);
    assert_int_equal(call_p(cache, TRIP_SUCCESS, 200), TRIP_PASS);
    char *json;
    trip_registry_health_json(r, &json);
    assert_non_null(strstr(json, "\"needs\":[\"db\"],\"root_cause\":\"db\""));
    trip_string_free(json);
    /* cache opens too: api opens by dependency */
    call_p(cache, TRIP_FAILURE, 200);
    call_p(cache, TRIP_FAILURE, 200);
    assert_int_equal(trip_breaker_state(cache), TRIP_OPEN);
    trip_snapshot s;
    trip_snapshot_get(api, &s);
    assert_int_equal(s.state, TRIP_OPEN);
    assert_int_equal(s.last_trip.rule, TRIP_RULE_DEPENDENCY);
    trip_registry_health_json(r, &json);
    assert_non_null(
        strstr(json, "\"needs\":[\"cache\"],\"root_cause\":\"db\""));
    trip_string_free(json);
    /* coordinated recovery: api and cache wait for db */
    trip_clock_advance(clk, 10 * TEST_S_);
    assert_int_equal(call_p(api, TRIP_SUCCESS, 200), TRIP_REJECTED);
    assert_int_equal(call_p(cache, TRIP_SUCCESS, 200), TRIP_REJECTED);
    assert_int_equal(call_p(db, TRIP_SUCCESS, 0), TRIP_PASS);
    assert_int_equal(trip_breaker_state(db), TRIP_CLOSED);
    assert_int_equal(call_p(api, TRIP_SUCCESS, 200), TRIP_REJECTED);
    assert_int_equal(call_p(cache, TRIP_SUCCESS, 200), TRIP_PASS);
    assert_int_equal(trip_breaker_state(cache), TRIP_CLOSED);
    assert_int_equal(call_p(cache, TRIP_SUCCESS, 10), TRIP_PASS); /* unshed */
    assert_int_equal(call_p(api, TRIP_SUCCESS, 200), TRIP_PASS);
    assert_int_equal(trip_breaker_state(api), TRIP_CLOSED);
    trip_registry_free(r);
}

static void
test_extras_dependency_bad_input(void **state)
{
    (void)state;
    trip_config c;
    plain(&c);
    trip_breaker *a = make("a", &c), *b2 = make("b", &c);
    assert_int_equal(trip_breaker_add_dependency(a, a), TRIP_EINVAL);
    assert_int_equal(trip_breaker_add_dependency(NULL, a), TRIP_EINVAL);
    assert_int_equal(trip_breaker_add_dependency(a, b2), TRIP_OK);
    assert_int_equal(trip_breaker_add_dependency(a, b2), TRIP_OK);
    trip_breaker_free(b2); /* unlinks */
    char *json;
    trip_breaker_health_json(a, &json);
    assert_null(strstr(json, "needs"));
    trip_string_free(json);
    trip_breaker_free(a);
}

/* A cycle through 70 breakers is refused like a short one (the search
 * stopped at depth 64 and let it through; with dependency_action OPEN
 * every breaker of it then waited for the others, for good), and a layered
 * graph where each breaker needs every one of the layer below is searched
 * once per breaker, not once per path (2^40 paths here). */
static void
test_extras_long_dependency_cycle_refused(void **state)
{
    (void)state;
    trip_config c;
    plain(&c);
    enum { N = 70 };
    trip_breaker *b[N];
    char name[32];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "chain%d", i);
        b[i] = make(name, &c);
    }
    for (int i = 0; i + 1 < N; i++)
        assert_int_equal(trip_breaker_add_dependency(b[i], b[i + 1]), TRIP_OK);
    assert_int_equal(trip_breaker_add_dependency(b[N - 1], b[0]), TRIP_EINVAL);
    assert_non_null(strstr(trip_errmsg(), "dependency cycle: chain69 -> "
                                          "chain0 -> chain1"));
    assert_non_null(strstr(trip_errmsg(), "(70 breakers)"));
    for (int i = 0; i < N; i++)
        trip_breaker_free(b[i]);
    /* 41 layers of 2: a -> {x, y} at each level */
    enum { L = 41 };
    trip_breaker *g[L][2];
    for (int i = 0; i < L; i++)
        for (int k = 0; k < 2; k++) {
            snprintf(name, sizeof name, "layer%d.%d", i, k);
            g[i][k] = make(name, &c);
        }
    for (int i = 0; i + 1 < L; i++)
        for (int k = 0; k < 2; k++)
            for (int j = 0; j < 2; j++)
                assert_int_equal(
                    trip_breaker_add_dependency(g[i][k], g[i + 1][j]), TRIP_OK);
    trip_breaker *top = make("top", &c);
    assert_int_equal(trip_breaker_add_dependency(top, g[0][0]), TRIP_OK);
    /* the bottom needing top closes a cycle found through the lattice */
    assert_int_equal(trip_breaker_add_dependency(g[L - 1][1], top),
                     TRIP_EINVAL);
    for (int i = 0; i < L; i++)
        for (int k = 0; k < 2; k++)
            trip_breaker_free(g[i][k]);
    trip_breaker_free(top);
}

static void
test_extras_weighted_errors(void **state)
{
    (void)state;
    trip_config c;
    plain(&c);
    c.failure_rate = 0.5;
    c.min_calls = 10;
    trip_breaker *b = make("weighted", &c);
    trip_ticket t;
    /* 10 calls, 3 failures of weight 2: weighted rate 0.6 trips, where the
     * plain rate 0.3 would not */
    for (int i = 0; i < 10; i++) {
        assert_int_equal(trip_allow(b, &t), TRIP_PASS);
        assert_int_equal(
            trip_record_weighted(b, &t, i < 3 ? TRIP_FAILURE : TRIP_SUCCESS,
                                 0.01, 2.0),
            TRIP_OK);
    }
    trip_clock_advance(clk, TEST_S_);
    call_p(b, TRIP_IGNORED, 0);
    trip_snapshot s;
    trip_snapshot_get(b, &s);
    assert_int_equal(s.state, TRIP_OPEN);
    assert_close(s.last_trip.score, 0.6, 1e-12);
    assert_close(s.weighted_failures, 6.0, 1e-12);
    trip_breaker_set_mode(b, TRIP_MODE_NORMAL);
    trip_breaker_set_mode(b, TRIP_MODE_FORCED_CLOSED);
    assert_int_equal(trip_allow(b, &t), TRIP_PASS);
    assert_int_equal(trip_record_weighted(b, &t, TRIP_FAILURE, 0.01, -1),
                     TRIP_EINVAL);
    assert_non_null(strstr(trip_errmsg(), "weight"));
    assert_int_equal(trip_record_weighted(b, &t, TRIP_FAILURE, 0.01, NAN),
                     TRIP_EINVAL);
    assert_int_equal(trip_record_weighted(b, &t, TRIP_FAILURE, -1, 0.5),
                     TRIP_OK); /* negative latency: measured */
    trip_breaker_free(b);
}

static void
test_extras_health_signal_threshold(void **state)
{
    (void)state;
    trip_config c;
    plain(&c);
    trip_breaker *b = make("signals", &c);
    int cpu, pool;
    assert_int_equal(
        trip_breaker_add_signal(b, "cpu", 0.9, 0, 5 * TEST_S_, &cpu), TRIP_OK);
    /* before its first value a signal's sample is NaN, spelled as the
     * exposition format spells it (printf wrote "nan") */
    char *text0;
    assert_int_equal(trip_breaker_prometheus(b, &text0), TRIP_OK);
    assert_non_null(strstr(text0, "signal=\"cpu\"} NaN\n"));
    trip_string_free(text0);
    assert_int_equal(trip_breaker_add_signal(b, "c\xffu", 0.9, 0, 0, &pool),
                     TRIP_EINVAL);
    assert_non_null(strstr(trip_errmsg(), "UTF-8"));
    assert_int_equal(trip_breaker_add_signal(b, "cpu", 0.9, 0, 0, &pool),
                     TRIP_EEXIST);
    assert_int_equal(trip_breaker_add_signal(b, "pool", NAN, 0, 0, &pool),
                     TRIP_EINVAL);
    assert_int_equal(trip_breaker_signal(b, 5, 1.0), TRIP_EINVAL);
    assert_int_equal(trip_breaker_signal(b, cpu, NAN), TRIP_EINVAL);
    /* above the threshold for 4 s: not yet; a dip resets the clock */
    for (int s = 0; s < 4; s++) {
        trip_breaker_signal(b, cpu, 0.95);
        trip_clock_advance(clk, TEST_S_);
        call_p(b, TRIP_SUCCESS, 0);
    }
    trip_breaker_signal(b, cpu, 0.5);
    for (int s = 0; s < 4; s++) {
        trip_breaker_signal(b, cpu, 0.97);
        trip_clock_advance(clk, TEST_S_);
        call_p(b, TRIP_SUCCESS, 0);
    }
    assert_int_equal(trip_breaker_state(b), TRIP_CLOSED);
    trip_clock_advance(clk, TEST_S_);
    call_p(b, TRIP_SUCCESS, 0);
    trip_snapshot s;
    trip_snapshot_get(b, &s);
    assert_int_equal(s.state, TRIP_OPEN);
    assert_int_equal(s.last_trip.rule, TRIP_RULE_HEALTH_SIGNAL);
    assert_close(s.last_trip.score, 0.97, 1e-12);
    assert_close(s.last_trip.threshold, 0.9, 1e-12);
    char *text;
    trip_breaker_prometheus(b, &text);
    assert_non_null(strstr(text, "tripsense_signal{breaker=\"signals\","
                                 "signal=\"cpu\"} 0.97"));
    trip_string_free(text);
    trip_breaker_free(b);
}

static void
test_extras_health_signal_baseline(void **state)
{
    (void)state;
    trip_config c;
    plain(&c);
    trip_breaker *b = make("queue", &c);
    int q;
    assert_int_equal(
        trip_breaker_add_signal(b, "queue_depth", NAN, 6.0, 2 * TEST_S_, &q),
        TRIP_OK);
    /* learn: depth 100 +- 10 for 100 s */
    for (int i = 0; i < 100; i++) {
        trip_breaker_signal(b, q, 100 + (i % 5 - 2) * 5);
        trip_clock_advance(clk, TEST_S_);
        call_p(b, TRIP_SUCCESS, 0);
    }
    double v, mean, sd;
    trip_breaker_signal_get(b, q, &v, &mean, &sd);
    assert_close(mean, 100, 0.05);
    assert_true(sd > 3 && sd < 12);
    /* 150 is well within absolute terms but 6 sigma above the hour */
    for (int i = 0; i < 4; i++) {
        trip_breaker_signal(b, q, 200);
        trip_clock_advance(clk, TEST_S_);
        call_p(b, TRIP_SUCCESS, 0);
    }
    trip_snapshot s;
    trip_snapshot_get(b, &s);
    assert_int_equal(s.state, TRIP_OPEN);
    assert_int_equal(s.last_trip.rule, TRIP_RULE_HEALTH_SIGNAL);
    assert_true(s.last_trip.score >= 6);
    assert_close(s.last_trip.baseline, mean, 0.05);
    trip_breaker_free(b);
}

static int
teardown(void **state)
{
    (void)state;
    trip_clock_free(clk);
    clk = NULL;
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_extras_tier_defaults, teardown),
        cmocka_unit_test_teardown(test_extras_limiter_rate_and_burst, teardown),
        cmocka_unit_test_teardown(
            test_extras_adaptive_limiter_lowers_and_restores, teardown),
        cmocka_unit_test_teardown(test_extras_ramp_sheds_low_priority_first,
                                  teardown),
        cmocka_unit_test_teardown(
            test_extras_half_open_probes_from_high_priority, teardown),
        cmocka_unit_test_teardown(test_extras_flapping_lengthens_backoff,
                                  teardown),
        cmocka_unit_test_teardown(test_extras_dependencies, teardown),
        cmocka_unit_test_teardown(test_extras_dependency_bad_input, teardown),
        cmocka_unit_test_teardown(test_extras_long_dependency_cycle_refused,
                                  teardown),
        cmocka_unit_test_teardown(test_extras_weighted_errors, teardown),
        cmocka_unit_test_teardown(test_extras_health_signal_threshold,
                                  teardown),
        cmocka_unit_test_teardown(test_extras_health_signal_baseline, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
