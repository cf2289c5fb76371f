/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The adaptive rules through a real breaker on a manual clock: a healthy
 * seasonal week does not trip, and the incidents the rules exist for are
 * caught quickly once the baseline has learned. */
#include <stdlib.h>
#include <string.h>

#include "adaptive_internal.h"
#include "breaker_internal.h"
#include "test_util.h"
#include "traffic_sim.h"

#define T0_ (1704067200LL * TEST_S_) /* Monday 2024-01-01 00:00 UTC */
#define HOUR_ (3600 * TEST_S_)
#define DAY_ (24 * HOUR_)

/* TRIP_SIM_SCALE (test_util.h), 1 unless set: below 1 each simulation
 * covers that fraction of its simulated time, but at least half a day
 * (night, evening and busy hours), and an incident comes on the first day
 * (after the hours before it), so that under memcheck every rule, each
 * incident and each traffic profile still runs, in minutes instead of
 * hours. Set in main(). */
static double sim_scale_ = 1;

static int64_t
sim_span(int64_t full)
{
    if (sim_scale_ >= 1)
        return full;
    int64_t v = (int64_t)((double)full * sim_scale_);
    return v < DAY_ / 2 ? DAY_ / 2 : v;
}

/* What goes wrong, from onset_ns on (kind 0: nothing). */
enum { INC_NONE, INC_OUTAGE, INC_BROWNOUT, INC_LATENCY, INC_BURST };

/* INC_BURST: a deploy-like burst, this long from onset_ns: 10x the failure
 * rate and 3x the latency. */
#define BURST_NS_ (30 * TEST_S_)

typedef struct traffic {
    double base_fail; /* healthy failure rate */
    double busy_rps;  /* weekday 08:00-20:00 */
    int incident;
    int64_t onset_ns;
    uint64_t rng;
} traffic;

typedef struct run {
    trip_clock *clk;
    trip_breaker *b;
    int trips;             /* transitions to open */
    int64_t first_trip_ns; /* wall time of the first trip, -1 if none */
    int first_rule;
    double first_score;
    int64_t evals_after_onset; /* judgements from onset to the first trip */
    int64_t evals;
    double max_z_rate, max_z_lat; /* largest healthy scores seen */
    double min_tail;
    traffic tr;
} run;

static double
unif(uint64_t *s)
{
    return ((double)(trip__splitmix64(s) >> 11) + 0.5) * 0x1.0p-53;
}

/* Calls per second at wall time t: busy weekdays, quiet nights. */
static double
rps_at(const traffic *tr, int64_t t)
{
    int how = trip__hour_of_week(t), h = how % 24, weekend = how >= 120;
    if (h < 6)
        return 0.5;
    if (h < 8 || h >= 20)
        return 5.0;
    return weekend ? tr->busy_rps / 4 : tr->busy_rps;
}

static void
on_transition(int kind, const trip_transition *t, void *user)
{
    run *r = user;
    if (kind != TRIP_EVENT_TRANSITION || t->to != TRIP_OPEN)
        return;
    if (getenv("TRIP_TEST_VERBOSE"))
        print_message("trip at %+.1f h: %s score %g threshold %g baseline "
                      "%g samples %lld\n",
                      (double)(trip_clock_wall(r->clk) - T0_) / 3.6e12,
                      trip_rule_name(t->reason.rule), t->reason.score,
                      t->reason.threshold, t->reason.baseline,
                      (long long)t->reason.samples);
    if (r->trips++ == 0) {
        r->first_trip_ns = trip_clock_wall(r->clk);
        r->first_rule = t->reason.rule;
        r->first_score = t->reason.score;
    }
}

static void
on_eval(void *user, const trip_eval *ev)
{
    run *r = user;
    r->evals++;
    if (r->tr.incident != INC_NONE && ev->wall_ns > r->tr.onset_ns &&
        r->trips == 0 && ev->judged)
        r->evals_after_onset++;
    if (r->tr.incident == INC_NONE || ev->wall_ns <= r->tr.onset_ns) {
        if (ev->z_rate > r->max_z_rate)
            r->max_z_rate = ev->z_rate;
        if (ev->z_latency > r->max_z_lat)
            r->max_z_lat = ev->z_latency;
        if (ev->binomial_tail < r->min_tail)
            r->min_tail = ev->binomial_tail;
    }
}

static void
run_start(run *r, const trip_config *cfg, const traffic *tr)
{
    memset(r, 0, sizeof *r);
    r->tr = *tr;
    r->first_trip_ns = -1;
    r->min_tail = 1;
    assert_int_equal(trip_clock_manual_new(T0_, 0, &r->clk), TRIP_OK);
    assert_int_equal(trip_breaker_new("behaviour", cfg, r->clk, &r->b),
                     TRIP_OK);
    assert_int_equal(trip_breaker_add_listener(r->b, on_transition, r, NULL),
                     TRIP_OK);
    r->b->eval_hook = on_eval;
    r->b->eval_hook_user = r;
}

static void
run_end(run *r)
{
    trip_breaker_free(r->b);
    trip_clock_free(r->clk);
}

/* One call at t: its outcome and latency under the traffic model. */
static void
one_call(run *r, int64_t t)
{
    traffic *tr = &r->tr;
    int inc = t >= tr->onset_ns ? tr->incident : INC_NONE;
    if (inc == INC_BURST && t >= tr->onset_ns + BURST_NS_)
        inc = INC_NONE;
    double p = tr->base_fail * (inc == INC_BROWNOUT ? 5.0 : 1.0);
    if (inc == INC_OUTAGE)
        p = 1.0;
    if (inc == INC_BURST)
        p = 10 * tr->base_fail;
    double med = 0.020 * (inc == INC_LATENCY ? 2.0 : 1.0) *
                 (inc == INC_BURST ? 3.0 : 1.0);
    double u1 = unif(&tr->rng), u2 = unif(&tr->rng);
    double lat = med * exp(0.5 * sqrt(-2 * log(u1)) * cos(6.2831853 * u2));
    trip_ticket tk;
    assert_int_equal(trip_clock_set(r->clk, t), TRIP_OK);
    if (trip_allow(r->b, &tk) == TRIP_PASS)
        trip_record_latency(
            r->b, &tk, unif(&tr->rng) < p ? TRIP_FAILURE : TRIP_SUCCESS, lat);
}

/* Simulate [from, to): Poisson arrivals at the model's rate, one second at
 * a time. Stops early once tripped if stop_on_trip. */
static void
simulate(run *r, int64_t from, int64_t to, int stop_on_trip)
{
    for (int64_t s = from; s < to; s += TEST_S_) {
        double lambda = rps_at(&r->tr, s);
        /* Poisson count by inversion (lambda is at most a few hundred) */
        double u = unif(&r->tr.rng), pk = exp(-lambda), cdf = pk;
        int n = 0;
        while (u > cdf && n < 10000) {
            n++;
            pk *= lambda / n;
            cdf += pk;
        }
        /* stratified in the second, so times never go backwards */
        for (int i = 0; i < n; i++)
            one_call(r, s + (int64_t)((i + unif(&r->tr.rng)) / n * 1e9));
        if (stop_on_trip && r->trips > 0)
            return;
    }
}

static void
report(const char *what, const run *r)
{
    print_message("%s: trips %d, first rule %s score %g at +%.1f s after "
                  "onset (%lld judgements); evals %lld; max healthy z_rate "
                  "%.2f z_latency %.2f, min tail %.3g\n",
                  what, r->trips, trip_rule_name(r->first_rule), r->first_score,
                  r->first_trip_ns < 0
                      ? -1.0
                      : (double)(r->first_trip_ns - r->tr.onset_ns) / 1e9,
                  (long long)r->evals_after_onset, (long long)r->evals,
                  r->max_z_rate, r->max_z_lat, r->min_tail);
}

static traffic
default_traffic(void)
{
    traffic tr = {0.02, 40.0, INC_NONE, INT64_MAX, 12345};
    return tr;
}

static void
test_adaptive_behaviour_healthy_week_no_trips(void **state)
{
    (void)state;
    run r;
    traffic tr = default_traffic();
    run_start(&r, NULL, &tr);
    simulate(&r, T0_, T0_ + sim_span(7 * DAY_), 0);
    report("healthy week", &r);
    assert_int_equal(r.trips, 0);
    run_end(&r);
}

/* Learn two days, then inject the incident on Wednesday at `hour` (with
 * TRIP_SIM_SCALE below 1, on Monday: learn the hours before it). */
static run
incident(int kind, int hour, const trip_config *cfg)
{
    run r;
    traffic tr = default_traffic();
    tr.incident = kind;
    tr.onset_ns = T0_ + (sim_scale_ < 1 ? 0 : 2 * DAY_) + hour * HOUR_;
    run_start(&r, cfg, &tr);
    simulate(&r, T0_, tr.onset_ns + 10 * 60 * TEST_S_, 1);
    return r;
}

/* Issue 5: each incident caught within two judgements of the anomaly
 * rules (one per long window, a minute by default): with the defaults by
 * anomaly_fast (the shift held through both minutes), with k = 2 of 2 by
 * k-of-m alone. The onsets are on a minute, so each judgement after one
 * sees a whole minute of the incident. */
static void
expect_caught(int kind, int hour, const char *what)
{
    trip_config two;
    trip_config_init(&two);
    two.anomaly_k = 2;
    two.anomaly_m = 2;
    const trip_config *cfgs[2] = {NULL, &two};
    for (int i = 0; i < 2; i++) {
        run r = incident(kind, hour, cfgs[i]);
        print_message("%s: ", i ? "k = 2 of 2" : "defaults");
        report(what, &r);
        assert_int_equal(r.trips, 1);
        assert_true(r.evals_after_onset <= 2);
        run_end(&r);
    }
}

static void
test_adaptive_behaviour_step_outage(void **state)
{
    (void)state;
    expect_caught(INC_OUTAGE, 14, "step outage");
}

static void
test_adaptive_behaviour_brownout(void **state)
{
    (void)state;
    expect_caught(INC_BROWNOUT, 14, "brownout 5x");
}

static void
test_adaptive_behaviour_latency_doubling(void **state)
{
    (void)state;
    expect_caught(INC_LATENCY, 14, "p99 doubling");
}

static void
test_adaptive_behaviour_night_outage(void **state)
{
    (void)state;
    expect_caught(INC_OUTAGE, 3, "night outage");
}

/* anomaly_fast trips at the second anomalous judgement only if the shift
 * held through both minutes: a 30 s burst of 10x the failures and 3x the
 * latency, straddling 14:00 (13:59:45 to 14:00:15), makes both minutes
 * anomalous, so plain k = 2 of 2 trips on it; the defaults leave out the
 * four 10 s parts it touches and do not (nor does k = 3 without them). */
static void
test_adaptive_behaviour_burst_straddling_minutes(void **state)
{
    (void)state;
    trip_config two, slow;
    trip_config_init(&two);
    two.anomaly_k = 2;
    two.anomaly_m = 2;
    trip_config_init(&slow);
    slow.anomaly_fast = 0;
    const trip_config *cfgs[3] = {NULL, &slow, &two};
    const char *names[3] = {"defaults", "anomaly_fast 0", "k = 2 of 2"};
    for (int i = 0; i < 3; i++) {
        run r;
        traffic tr = default_traffic();
        tr.incident = INC_BURST;
        tr.onset_ns =
            T0_ + (sim_scale_ < 1 ? 0 : 2 * DAY_) + 14 * HOUR_ - 15 * TEST_S_;
        run_start(&r, cfgs[i], &tr);
        simulate(&r, T0_, tr.onset_ns + 10 * 60 * TEST_S_, 1);
        print_message("%s: ", names[i]);
        report("30 s burst across 14:00", &r);
        assert_int_equal(r.trips, i == 2 ? 1 : 0);
        run_end(&r);
    }
}

/* A brownout at low volume: 30 calls a minute at a 0.5% failure rate, 5x
 * from Wednesday 14:00. A minute then expects 0.75 failures against 0.15:
 * no minute alone reaches binomial_p, so the minutes' k-of-m memory never
 * fills, but the evidence adds up over minutes (the sequential test of
 * docs/algorithms.md) and trips well within the hour. */
static void
test_adaptive_behaviour_low_volume_brownout(void **state)
{
    (void)state;
    run r;
    traffic tr = default_traffic();
    tr.base_fail = 0.005;
    tr.busy_rps = 0.5;
    tr.incident = INC_BROWNOUT;
    tr.onset_ns = T0_ + 2 * DAY_ + 14 * HOUR_;
    run_start(&r, NULL, &tr);
    simulate(&r, T0_, tr.onset_ns + 60 * 60 * TEST_S_, 1);
    report("low-volume brownout 5x", &r);
    assert_int_equal(r.trips, 1);
    assert_int_equal(r.first_rule, TRIP_RULE_BINOMIAL_TAIL);
    assert_true(r.first_trip_ns - tr.onset_ns <= 45 * 60 * TEST_S_);
    run_end(&r);
}

/* ---- false trips per week with the defaults --------------------------- */

/* Healthy traffic profiles for the false-trip measurement (docs/
 * algorithms.md, "Defaults"): the generator of traffic_sim.h with its
 * volume, failure rate and overdispersion varied. */
typedef struct profile {
    const char *name;
    double busy, evening, night, fail, fail_disp, lat_disp;
    int stress; /* measured and printed, not held to the budget */
    int heavy;  /* only when TRIP_FALSE_TRIP_WEEKS is set (a minute a week) */
} profile;

/* fail_disp is the sd of the log of a per-minute failure-rate multiplier:
 * 0.3-0.5 is a CV of 0.3-0.5 (moderate clustering); 0.8 is a CV of 0.95,
 * with a 10x minute every day or two: the stress case, for which
 * docs/algorithms.md recommends calibration. */
static const profile profiles[] = {
    {"10/s busy, 0.8%", 10, 2, 0.2, 0.008, 0.4, 0.1, 0, 0},
    {"50/s busy, 0.5%", 50, 10, 1, 0.005, 0.5, 0.1, 0, 0},
    {"2/s busy, 1%", 2, 0.5, 0.05, 0.01, 0.3, 0.1, 0, 0},
    {"3/s, 4/min nights", 3, 0.5, 0.07, 0.01, 0.5, 0.1, 0, 0},
    {"10/s, CV 0.95 (stress)", 10, 2, 0.2, 0.008, 0.8, 0.2, 1, 0},
    {"200/s busy, 0.7%", 200, 40, 5, 0.007, 0.5, 0.15, 0, 1},
};

static void
count_trip(int kind, const trip_transition *t, void *user)
{
    int64_t *trips = user;
    if (kind == TRIP_EVENT_TRANSITION && t->from == TRIP_CLOSED &&
        t->to == TRIP_OPEN) {
        (*trips)++;
        if (getenv("TRIP_TEST_VERBOSE"))
            print_message("  trip: %s score %g threshold %g baseline %g "
                          "samples %lld\n",
                          trip_rule_name(t->reason.rule), t->reason.score,
                          t->reason.threshold, t->reason.baseline,
                          (long long)t->reason.samples);
    }
}

/* Trips of a breaker with cfg over span_ns of profile p's healthy
 * traffic, generated a week at a time to bound memory. */
static int64_t
healthy_trips(const trip_config *cfg, const profile *p, int64_t span_ns,
              uint64_t seed)
{
    sim_traffic t = sim_default(seed);
    t.busy_rps = p->busy;
    t.evening_rps = p->evening;
    t.night_rps = p->night;
    t.fail = p->fail;
    t.fail_disp = p->fail_disp;
    t.lat_disp = p->lat_disp;
    trip_clock *clk;
    trip_breaker *b;
    int64_t trips = 0;
    assert_int_equal(trip_clock_manual_new(SIM_T0_, 0, &clk), TRIP_OK);
    assert_int_equal(trip_breaker_new("healthy", cfg, clk, &b), TRIP_OK);
    assert_int_equal(trip_breaker_add_listener(b, count_trip, &trips, NULL),
                     TRIP_OK);
    for (int64_t from = SIM_T0_; from < SIM_T0_ + span_ns; from += SIM_WEEK_) {
        int64_t to = from + SIM_WEEK_;
        if (to > SIM_T0_ + span_ns)
            to = SIM_T0_ + span_ns;
        size_t n;
        trip_event *ev = sim_generate(&t, from, to, &n);
        assert_non_null(ev);
        for (size_t i = 0; i < n; i++) {
            trip_ticket tk;
            trip_clock_set(clk, ev[i].wall_ns);
            if (trip_allow(b, &tk) == TRIP_PASS)
                trip_record_latency(b, &tk, ev[i].outcome, ev[i].latency_s);
        }
        free(ev);
    }
    trip_breaker_free(b);
    trip_clock_free(clk);
    return trips;
}

/*
 * Issue 5: with nothing set, about one false trip a week at most on
 * healthy traffic. TRIP_FALSE_TRIP_WEEKS (default 1) sets the weeks per
 * profile and adds the 200 calls/s one; the figures in docs/algorithms.md
 * come from TRIP_FALSE_TRIP_WEEKS=4.
 */
static void
test_adaptive_behaviour_default_false_trips(void **state)
{
    (void)state;
    const char *env = getenv("TRIP_FALSE_TRIP_WEEKS");
    int weeks = env ? atoi(env) : 1;
    if (weeks < 1)
        weeks = 1;
    trip_config cfg;
    trip_config_init(&cfg);
    /* to measure other settings: TRIP_FALSE_TRIP_CONFIG='{"binomial_p":1e-6}'
     */
    const char *json = getenv("TRIP_FALSE_TRIP_CONFIG");
    if (json != NULL) {
        assert_int_equal(trip_config_from_json(&cfg, json), TRIP_OK);
        print_message("config %s\n", json);
    }
    int64_t total = 0;
    int held = 0;
    size_t np = sizeof profiles / sizeof profiles[0];
    for (size_t i = 0; i < np; i++) {
        if (profiles[i].heavy && env == NULL)
            continue;
        int64_t span = sim_span(weeks * SIM_WEEK_);
        int64_t trips = healthy_trips(&cfg, &profiles[i], span, 100 + i);
        print_message("defaults, %-22s: %lld false trips in %.3g weeks "
                      "(%.2f a week)\n",
                      profiles[i].name, (long long)trips,
                      (double)span / SIM_WEEK_,
                      (double)trips * SIM_WEEK_ / (double)span);
        if (profiles[i].stress || json != NULL)
            continue;
        total += trips;
        held++;
        /* per week begun: a shortened run is held to a whole week's */
        assert_true(trips <= 2 * weeks);
    }
    assert_true(held == 0 || (double)total / (weeks * (double)held) <= 1.0);
}

int
main(void)
{
    sim_scale_ = test_env_double("TRIP_SIM_SCALE", 1, 1);
    if (sim_scale_ < 1)
        print_message("TRIP_SIM_SCALE %g: simulations shortened\n", sim_scale_);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adaptive_behaviour_healthy_week_no_trips),
        cmocka_unit_test(test_adaptive_behaviour_step_outage),
        cmocka_unit_test(test_adaptive_behaviour_brownout),
        cmocka_unit_test(test_adaptive_behaviour_latency_doubling),
        cmocka_unit_test(test_adaptive_behaviour_night_outage),
        cmocka_unit_test(test_adaptive_behaviour_burst_straddling_minutes),
        cmocka_unit_test(test_adaptive_behaviour_low_volume_brownout),
        cmocka_unit_test(test_adaptive_behaviour_default_false_trips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
