/* SPDX-License-Identifier: GPL-3.0-or-later */
/* trip_calibrate(): the chosen thresholds meet the false-trip budget on the
 * history, stay close on fresh history, still catch incidents, and bad
 * input is refused with a message. */
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "traffic_sim.h"

#define DAYS_ 2
#define BUDGET_ 7.0 /* per week: one a day, so that two days allow two */

/* TRIP_SIM_SCALE (test_util.h), 1 unless set: below 1 the histories cover
 * that fraction of their two days, but at least half a day (night, evening
 * and busy hours), and the incidents come on the first day, so that
 * calibration, its replays and each incident still run under memcheck, in
 * minutes instead of an hour. Set in main(). */
static double sim_scale_ = 1;

/* The span of the calibration and fresh histories. */
static int64_t
history_ns(void)
{
    int64_t full = DAYS_ * SIM_DAY_;
    if (sim_scale_ >= 1)
        return full;
    int64_t v = (int64_t)((double)full * sim_scale_);
    return v < SIM_DAY_ / 2 ? SIM_DAY_ / 2 : v;
}

typedef struct cal_fixture {
    trip_event *ev;
    size_t n;
    trip_config chosen;
    trip_calibration rep;
} cal_fixture;

static cal_fixture fx;

/* Trips (closed -> open) and refused calls of a replay of ev under cfg. */
static int64_t
count_trips(const trip_config *cfg, const trip_event *ev, size_t n,
            int64_t *rejected, int64_t *first_trip_ns)
{
    trip_replay_result *r = NULL;
    assert_int_equal(trip_replay(cfg, ev, n, &r), TRIP_OK);
    int64_t trips = 0;
    if (first_trip_ns)
        *first_trip_ns = -1;
    for (size_t i = 0; i < r->n_transitions; i++) {
        const trip_transition_row *t = &r->transitions[i];
        if (t->from != TRIP_CLOSED || t->to != TRIP_OPEN)
            continue;
        if (trips++ == 0 && first_trip_ns)
            *first_trip_ns = t->wall_ns;
        if (getenv("TRIP_TEST_VERBOSE"))
            print_message("  trip at +%.2f h: %s score %g threshold %g\n",
                          (double)(t->wall_ns - SIM_T0_) / 3.6e12,
                          trip_rule_name(t->rule), t->score, t->threshold);
    }
    if (rejected) {
        *rejected = 0;
        for (size_t i = 0; i < r->n_events; i++)
            *rejected += r->decisions[i] != TRIP_PASS;
    }
    trip_replay_result_free(r);
    return trips;
}

static int
setup(void **state)
{
    (void)state;
    sim_traffic t = sim_default(1);
    fx.ev = sim_generate(&t, SIM_T0_, SIM_T0_ + history_ns(), &fx.n);
    if (fx.ev == NULL)
        return -1;
    int rc = trip_calibrate(NULL, fx.ev, fx.n, BUDGET_, &fx.chosen, &fx.rep);
    print_message(
        "calibrated on %zu events over %.3f weeks: z %g, "
        "binomial_p %g, factor %g, %u of %u; %lld trips (%.2f a "
        "week, fixed rules alone %lld), %lld calls refused, max "
        "z rate %.2f latency %.2f, %lld replays\n",
        fx.n, fx.rep.weeks, fx.rep.anomaly_z, fx.rep.binomial_p,
        fx.rep.latency_baseline_factor, fx.rep.anomaly_k, fx.rep.anomaly_m,
        (long long)fx.rep.false_trips, fx.rep.false_trips_per_week,
        (long long)fx.rep.fixed_rule_trips, (long long)fx.rep.rejected_calls,
        fx.rep.max_z_rate, fx.rep.max_z_latency, (long long)fx.rep.candidates);
    return rc == TRIP_OK ? 0 : -1;
}

static int
teardown(void **state)
{
    (void)state;
    free(fx.ev);
    return 0;
}

static void
test_calibrate_meets_budget(void **state)
{
    (void)state;
    int64_t allowed = (int64_t)(BUDGET_ * fx.rep.weeks);
    assert_close(fx.rep.weeks,
                 (double)(fx.ev[fx.n - 1].wall_ns - fx.ev[0].wall_ns) /
                     SIM_WEEK_,
                 1e-12);
    assert_true(fx.rep.false_trips <= allowed);
    assert_close(fx.rep.false_trips_per_week,
                 (double)fx.rep.false_trips / fx.rep.weeks, 1e-12);
    /* the report is what trip_replay() does with the chosen config */
    int64_t rejected;
    assert_int_equal(count_trips(&fx.chosen, fx.ev, fx.n, &rejected, NULL),
                     fx.rep.false_trips);
    assert_int_equal(rejected, fx.rep.rejected_calls);
    assert_close(fx.rep.anomaly_z, fx.chosen.anomaly_z, 0);
    assert_close(fx.rep.binomial_p, fx.chosen.binomial_p, 0);
    assert_close(fx.rep.latency_baseline_factor,
                 fx.chosen.latency_baseline_factor, 0);
    /* the rest of the (default) base is kept */
    trip_config def;
    trip_config_init(&def);
    assert_int_equal(fx.chosen.anomaly_k, def.anomaly_k);
    assert_int_equal(fx.chosen.bucket_ns, def.bucket_ns);
    assert_close(fx.chosen.anomaly_rate_effect, def.anomaly_rate_effect, 0);
    assert_true(fx.rep.candidates >= 4);
}

/* The most sensitive setting within budget: this history, at the default
 * thresholds, has slack; calibration spends it. */
static void
test_calibrate_more_sensitive_than_defaults(void **state)
{
    (void)state;
    trip_config def;
    trip_config_init(&def);
    assert_true(fx.chosen.anomaly_z <= def.anomaly_z);
    assert_true(fx.chosen.binomial_p >= def.binomial_p);
    assert_true(fx.chosen.anomaly_z < def.anomaly_z ||
                fx.chosen.binomial_p > def.binomial_p);
}

/* Fresh history from the same generator: close to the budget, not a
 * multiple of it. */
static void
test_calibrate_fresh_history_close(void **state)
{
    (void)state;
    sim_traffic t = sim_default(2);
    size_t n;
    trip_event *ev = sim_generate(&t, SIM_T0_, SIM_T0_ + history_ns(), &n);
    assert_non_null(ev);
    int64_t trips = count_trips(&fx.chosen, ev, n, NULL, NULL);
    double weeks = (double)(ev[n - 1].wall_ns - ev[0].wall_ns) / SIM_WEEK_;
    print_message("fresh history: %lld trips, %.2f a week (budget %g)\n",
                  (long long)trips, (double)trips / weeks, BUDGET_);
    assert_true((double)trips / weeks <= 2.5 * BUDGET_);
    free(ev);
}

/* An incident in fresh history: caught by the chosen thresholds within
 * max_s seconds of its onset (it lasts ten minutes), on the second day
 * (the first with TRIP_SIM_SCALE below 1). */
static void
check_incident(int kind, double factor, int hour, int max_s)
{
    sim_traffic t = sim_default(3);
    t.incident = kind;
    t.factor = factor;
    t.onset_ns = SIM_T0_ + (sim_scale_ < 1 ? 0 : SIM_DAY_) + hour * SIM_HOUR_;
    t.end_ns = t.onset_ns + 10 * 60 * SIM_S_;
    size_t n;
    trip_event *ev = sim_generate(&t, SIM_T0_, t.end_ns, &n);
    assert_non_null(ev);
    trip_replay_result *r = NULL;
    assert_int_equal(trip_replay(&fx.chosen, ev, n, &r), TRIP_OK);
    const trip_transition_row *hit = NULL;
    for (size_t i = 0; i < r->n_transitions && hit == NULL; i++)
        if (r->transitions[i].to == TRIP_OPEN &&
            r->transitions[i].wall_ns >= t.onset_ns)
            hit = &r->transitions[i];
    assert_non_null(hit);
    print_message("incident %d x%g at %02d:00 caught after %.1f s by %s\n",
                  kind, factor, hour, (double)(hit->wall_ns - t.onset_ns) / 1e9,
                  trip_rule_name(hit->rule));
    assert_true(hit->wall_ns - t.onset_ns <= max_s * SIM_S_);
    trip_replay_result_free(r);
    free(ev);
}

static void
test_calibrate_incident_still_caught(void **state)
{
    (void)state;
    /* three judgements of a minute after the onset's minute */
    check_incident(SIM_BROWNOUT, 5.0, 14, 240); /* failure rate 5x, busy */
    check_incident(SIM_LATENCY, 2.0, 14, 240);  /* latency doubles */
    /* 5x in the evening (2 calls/s, 1 failure a minute when healthy): the
     * evidence takes minutes to gather at any threshold worth having */
    check_incident(SIM_BROWNOUT, 5.0, 22, 600);
}

static void
expect_einval(const trip_config *base, const trip_event *ev, size_t n,
              double budget, trip_config *out, const char *needle)
{
    trip_calibration rep;
    assert_int_equal(trip_calibrate(base, ev, n, budget, out, &rep),
                     TRIP_EINVAL);
    if (strstr(trip_errmsg(), needle) == NULL) {
        print_error("message \"%s\" lacks \"%s\"\n", trip_errmsg(), needle);
        fail();
    }
}

static void
test_calibrate_bad_input(void **state)
{
    (void)state;
    trip_event ev[8];
    trip_config out, bad;
    for (int i = 0; i < 8; i++)
        ev[i] = (trip_event){SIM_T0_ + i * SIM_S_, 0.01, TRIP_SUCCESS, 0};
    expect_einval(NULL, NULL, 8, 1.0, &out, "events is NULL");
    expect_einval(NULL, ev, 8, 1.0, NULL, "out is NULL");
    expect_einval(NULL, ev, 0, 1.0, &out, "no events");
    expect_einval(NULL, ev, 8, 0.0, &out, "budget_per_week");
    expect_einval(NULL, ev, 8, -1.0, &out, "budget_per_week");
    expect_einval(NULL, ev, 8, NAN, &out, "budget_per_week");
    ev[5].wall_ns = ev[4].wall_ns - 1;
    expect_einval(NULL, ev, 8, 1.0, &out, "event 5");
    ev[5].wall_ns = ev[4].wall_ns;
    ev[6].outcome = 99;
    expect_einval(NULL, ev, 8, 1.0, &out, "event 6");
    ev[6].outcome = TRIP_SUCCESS;
    /* checked as replay checks them (calibrate had taken both, and the
     * time made the history span 12,439 weeks) */
    ev[7].latency_s = 1e12;
    expect_einval(NULL, ev, 8, 1.0, &out, "event 7");
    ev[7].latency_s = 0.01;
    ev[7].wall_ns = INT64_MAX;
    expect_einval(NULL, ev, 8, 1.0, &out, "past 2^62");
    ev[7].wall_ns = ev[6].wall_ns + SIM_S_;
    expect_einval(NULL, ev, 1, 1.0, &out, "spans no time");
    /* a budget beyond any count allows every trip (budget x weeks was
     * cast to int64 unchecked: undefined, then a false TRIP_ERANGE) */
    trip_calibration rep;
    assert_int_equal(trip_calibrate(NULL, ev, 8, 1e300, &out, &rep), TRIP_OK);
    trip_config_init(&bad);
    bad.anomaly_k = 9; /* > anomaly_m */
    expect_einval(&bad, ev, 8, 1.0, &out, "anomaly_k");
}

/* When the fixed rules alone exceed the budget no threshold helps:
 * TRIP_ERANGE, with the least-tripping candidate and its figures. */
static void
test_calibrate_budget_out_of_reach(void **state)
{
    (void)state;
    trip_config base;
    trip_config_init(&base);
    base.failure_rate = 0.02; /* trips on healthy 0.8% traffic */
    base.min_calls = 10;
    sim_traffic t = sim_default(4);
    size_t n;
    trip_event *ev = sim_generate(&t, SIM_T0_ + 12 * SIM_HOUR_,
                                  SIM_T0_ + 18 * SIM_HOUR_, &n);
    assert_non_null(ev);
    trip_config out;
    trip_calibration rep;
    assert_int_equal(trip_calibrate(&base, ev, n, 1.0, &out, &rep),
                     TRIP_ERANGE);
    assert_non_null(strstr(trip_errmsg(), "no candidate meets"));
    assert_true(rep.fixed_rule_trips > 0);
    assert_true(rep.false_trips_per_week > 1.0);
    assert_true(out.anomaly_z >= base.anomaly_z); /* the least sensitive */
    assert_close(out.failure_rate, 0.02, 0);
    free(ev);
}

/* Each family's search gets an equal share of the allowed trips; the
 * combined step then spends what the others left. Two latency bumps (2.2x
 * for 10 minutes at 14:00 on both days): the z family alone trips on both
 * at z 7 and on neither at 8, the percentile factor on neither at 2.5.
 * Two days at 7.5 a week allow 2 false trips, a share of 0 each of the
 * three families, so the searches stop at z 8; the combined step goes
 * back to 7, whose 2 trips fit the 2 allowed. */
static void
test_calibrate_combination_spends_the_slack(void **state)
{
    (void)state;
    /* full size under TRIP_SIM_SCALE too: the bumps need both days */
    sim_traffic t = sim_default(3);
    t.incident = SIM_LATENCY;
    t.factor = 2.2;
    t.onset_ns = SIM_T0_ + 14 * SIM_HOUR_;
    t.end_ns = t.onset_ns + 600 * SIM_S_;
    size_t n1, n2;
    trip_event *a = sim_generate(&t, SIM_T0_, SIM_T0_ + SIM_DAY_, &n1);
    t.onset_ns += SIM_DAY_;
    t.end_ns += SIM_DAY_;
    trip_event *b =
        sim_generate(&t, SIM_T0_ + SIM_DAY_, SIM_T0_ + 2 * SIM_DAY_, &n2);
    trip_event *ev = malloc((n1 + n2) * sizeof *ev);
    assert_true(a != NULL && b != NULL && ev != NULL);
    memcpy(ev, a, n1 * sizeof *ev);
    memcpy(ev + n1, b, n2 * sizeof *ev);
    size_t n = n1 + n2;
    trip_config chosen;
    trip_calibration rep;
    assert_int_equal(trip_calibrate(NULL, ev, n, 7.5, &chosen, &rep), TRIP_OK);
    assert_close(chosen.anomaly_z, 7.0, 0);
    assert_close(chosen.latency_baseline_factor, 2.5, 0);
    assert_int_equal(rep.false_trips, 2);
    trip_config zonly = chosen;
    zonly.binomial_p = 0;
    zonly.latency_baseline_factor = 0;
    assert_int_equal(count_trips(&zonly, ev, n, NULL, NULL), 2);
    zonly.anomaly_z = 8.0;
    assert_int_equal(count_trips(&zonly, ev, n, NULL, NULL), 0);
    free(a);
    free(b);
    free(ev);
}

int
main(void)
{
    sim_scale_ = test_env_double("TRIP_SIM_SCALE", 1, 1);
    if (sim_scale_ < 1)
        print_message("TRIP_SIM_SCALE %g: histories shortened\n", sim_scale_);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_calibrate_meets_budget),
        cmocka_unit_test(test_calibrate_more_sensitive_than_defaults),
        cmocka_unit_test(test_calibrate_fresh_history_close),
        cmocka_unit_test(test_calibrate_incident_still_caught),
        cmocka_unit_test(test_calibrate_bad_input),
        cmocka_unit_test(test_calibrate_budget_out_of_reach),
        cmocka_unit_test(test_calibrate_combination_spends_the_slack),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
