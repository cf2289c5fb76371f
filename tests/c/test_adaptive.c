/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Tests of the adaptive detectors' building blocks and rules, fed with
 * windows directly (no engine) and checked against golden values. */
#include <stdlib.h>

#include "test_util.h"

#include "adaptive.h"
#include "adaptive_internal.h"

#define T0_ (1704067200LL * TEST_S_) /* Monday 2024-01-01 00:00 UTC */
#define MIN_ (60 * TEST_S_)

/* ---- a small deterministic traffic generator -------------------------- */

typedef struct sim {
    uint64_t rng;
    uint64_t hist[TRIP_HIST_BINS];
    trip__window bucket, sw, lw;
} sim;

static double
sim_unif(sim *s)
{
    s->rng += 0x9E3779B97F4A7C15ull;
    uint64_t z = s->rng;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return ((double)((z ^ (z >> 31)) >> 11) + 0.5) / 9007199254740992.0;
}

static int64_t
sim_binom(sim *s, int64_t n, double p)
{
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++)
        k += sim_unif(s) < p;
    return k;
}

static double
sim_normal(sim *s)
{
    return sqrt(-2 * log(sim_unif(s))) * cos(6.283185307179586 * sim_unif(s));
}

/* Windows of a steady state: calls per second rps, failure rate p,
 * lognormal latency (median med_s, shape sigma). The short window is 10 s,
 * the long one 60 s, the bucket 1 s. */
static void
sim_windows(sim *s, double rps, double p, double med_s, double sigma)
{
    int64_t nl = (int64_t)(rps * 60), ns = (int64_t)(rps * 10);
    memset(s->hist, 0, sizeof s->hist);
    memset(&s->sw, 0, sizeof s->sw);
    s->lw = s->sw;
    s->lw.calls = nl;
    s->lw.failures = sim_binom(s, nl, p);
    s->sw.calls = ns;
    s->sw.failures = s->lw.failures * ns / (nl ? nl : 1);
    for (int64_t i = 0; i < ns; i++)
        s->hist[trip__hist_bin(
            (int64_t)(med_s * exp(sigma * sim_normal(s)) * 1e9))]++;
    s->sw.hist = s->lw.hist = s->hist;
    s->sw.hist_total = s->lw.hist_total = (uint64_t)ns;
    s->sw.span_ns = 10 * TEST_S_;
    s->lw.span_ns = 60 * TEST_S_;
    s->bucket = s->sw;
    s->bucket.calls = ns / 10;
    s->bucket.failures = s->sw.failures / 10;
    s->bucket.latency_sum_s = med_s * (double)(ns / 10);
    s->bucket.span_ns = TEST_S_;
}

static int
sim_eval(trip__adaptive *a, const trip_config *cfg, sim *s, int64_t wall,
         int closed, trip_eval *ev, trip_reason *r)
{
    trip_eval e;
    trip_reason rr = {0};
    memset(&e, 0, sizeof e);
    int rule = trip__adaptive_evaluate(a, cfg, wall, &s->bucket, &s->sw, &s->lw,
                                       closed, ev ? ev : &e, r ? r : &rr);
    return rule;
}

/* One healthy evaluation per minute for `minutes`, from wall t. */
static int64_t
learn(trip__adaptive *a, const trip_config *cfg, sim *s, int64_t t, int minutes,
      double rps, double p, double med_s)
{
    for (int m = 0; m < minutes; m++, t += MIN_) {
        sim_windows(s, rps, p, med_s, 0.5);
        assert_int_equal(sim_eval(a, cfg, s, t, 1, NULL, NULL), TRIP_RULE_NONE);
    }
    return t;
}

static trip__adaptive *
new_adaptive(const trip_config *cfg)
{
    trip__adaptive *a = NULL;
    assert_int_equal(trip__adaptive_new(cfg, &a), TRIP_OK);
    assert_non_null(a);
    return a;
}

/* ---- golden values ----------------------------------------------------- */

static void
test_adaptive_ewma_gaps_golden(void **state)
{
    (void)state;
    golden *g = golden_load("ewma_gaps.txt");
    double h = strtod(golden_param(g, "half_life_s"), NULL) * 1e9;
    trip__ewratio rate = {0, 0}, lat = {0, 0};
    for (size_t i = 0; i < g->nrows; i++) {
        const double *r = g->d + i * g->ncols;
        trip__ewratio_add(&rate, r[1], r[2], g->ll[i * g->ncols], h);
        trip__ewratio_add(&lat, r[3], r[2], g->ll[i * g->ncols], h);
        assert_close(trip__ewratio_value(&rate), r[4], 1e-9);
        assert_close(trip__ewratio_value(&lat), r[5], 1e-9);
        assert_close(rate.den, r[6], 1e-9);
    }
    golden_free(g);
}

static void
test_adaptive_ewma_through_evaluate(void **state)
{
    (void)state;
    golden *g = golden_load("ewma_gaps.txt");
    trip_config cfg;
    trip_config_init(&cfg);
    cfg.ewma_half_life_s = strtod(golden_param(g, "half_life_s"), NULL);
    trip__adaptive *a = new_adaptive(&cfg);
    trip__window w = {0};
    int64_t wall = T0_;
    for (size_t i = 0; i < g->nrows; i++) {
        const double *r = g->d + i * g->ncols;
        trip_eval ev;
        trip_reason rr;
        memset(&w, 0, sizeof w);
        w.span_ns = g->ll[i * g->ncols];
        w.failures = (int64_t)r[1];
        w.calls = (int64_t)r[2];
        w.latency_sum_s = r[3];
        wall += w.span_ns;
        trip__adaptive_evaluate(a, &cfg, wall, &w, &w, &w, 1, &ev, &rr);
        assert_close(ev.ewma_failure_rate, r[4], 1e-9);
        assert_close(ev.ewma_latency_s, r[5], 1e-9);
    }
    trip__adaptive_free(a);
    golden_free(g);
}

static void
test_adaptive_ewstat_golden(void **state)
{
    (void)state;
    golden *g = golden_load("ewstat.txt");
    double h = strtod(golden_param(g, "half_life_ns"), NULL);
    trip__ewstat s = {0};
    for (size_t i = 0; i < g->nrows; i++) {
        const double *r = g->d + i * g->ncols;
        trip__ewstat_add(&s, r[1], g->ll[i * g->ncols], h);
        assert_close(s.mean, r[2], 1e-9);
        assert_close(trip__ewstat_var(&s), r[3], 1e-7);
        assert_close(trip__ewstat_neff(&s), r[4], 1e-9);
    }
    golden_free(g);
}

static void
test_adaptive_binomial_tails_golden(void **state)
{
    (void)state;
    golden *g = golden_load("binomial_tails.txt");
    for (size_t i = 0; i < g->nrows; i++) {
        const double *r = g->d + i * g->ncols;
        double t =
            trip__binomial_tail((int64_t)r[0], (int64_t)r[1], r[2], r[3]);
        assert_close(t, r[4], 1e-6);
    }
    golden_free(g);
}

static void
test_adaptive_binomial_bad_input_is_nan(void **state)
{
    (void)state;
    assert_true(isnan(trip__binomial_tail(1, 4, -0.1, 2)));
    assert_true(isnan(trip__binomial_tail(1, 4, 1.5, 2)));
    assert_true(isnan(trip__binomial_tail(1, 4, NAN, 2)));
    assert_true(isnan(trip__binomial_tail(1, 4, 0.1, 0.5)));
    assert_true(isnan(trip__binomial_tail(1, -4, 0.1, 2)));
    assert_close(trip__binomial_tail(0, 4, 0.1, 2), 1, 0);
    assert_close(trip__binomial_tail(5, 4, 0.1, 2), 0, 0);
    assert_close(trip__binomial_tail(2, 4, 0, 2), 0, 0);
    assert_close(trip__binomial_tail(2, 4, 1, 2), 1, 0);
}

/* E over M of P(Binomial(n, p M) >= k) by a plain midpoint rule over the
 * normal density on [-10, 10]: independent of the Gauss-Hermite rule. */
static double
lognormal_tail_reference(int64_t k, int64_t n, double p, double s2)
{
    double s = sqrt(s2), sum = 0, h = 20.0 / 20000;
    for (int i = 0; i < 20000; i++) {
        double z = -10 + (i + 0.5) * h, pm = p * exp(s * z - s2 / 2);
        double q = pm >= 1 ? 1 : trip__binomial_tail(k, n, pm, 1.0);
        sum += q * exp(-z * z / 2) / sqrt(2 * 3.141592653589793) * h;
    }
    return sum;
}

/* Clustered failures: the rate varies as p x lognormal. s2 = 0 is the
 * binomial (golden, scipy); otherwise the library's integral agrees with
 * a 20,000-point one over a wider range, and more clustering means a
 * heavier tail. */
static void
test_adaptive_lognormal_binomial_tail(void **state)
{
    (void)state;
    assert_close(trip__lognormal_binomial_tail(3, 4, 0.01, 0), 3.97e-06, 1e-9);
    assert_close(trip__lognormal_binomial_tail(40, 1000, 0.02, 0),
                 4.339875894746396e-05, 1e-6);
    static const long long kn[4][2] = {
        {3, 4}, {16, 432}, {96, 2400}, {30, 600}};
    for (int i = 0; i < 4; i++)
        for (double s2 = 0.05; s2 < 1; s2 *= 3) {
            double t =
                trip__lognormal_binomial_tail(kn[i][0], kn[i][1], 0.007, s2);
            double ref =
                lognormal_tail_reference(kn[i][0], kn[i][1], 0.007, s2);
            if (getenv("TRIP_TEST_VERBOSE"))
                print_message("k %lld n %lld s2 %.3f: %.6g ref %.6g\n",
                              kn[i][0], kn[i][1], s2, t, ref);
            assert_close(t, ref, 1e-3);
            assert_true(t > trip__lognormal_binomial_tail(kn[i][0], kn[i][1],
                                                          0.007, s2 / 3));
        }
    /* against a limit: the same verdict, with a bound on the right side */
    static const double limits[3] = {5e-6, 3e-5, 1e-3};
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++)
            for (double s2 = 0.05; s2 < 1; s2 *= 3) {
                double e = trip__lognormal_binomial_tail(kn[i][0], kn[i][1],
                                                         0.007, s2);
                double b = trip__lognormal_binomial_tail_lim(
                    kn[i][0], kn[i][1], 0.007, s2, limits[j]);
                assert_int_equal(b <= limits[j], e <= limits[j]);
                assert_true(b <= limits[j] ? b >= e * (1 - 1e-12)
                                           : b <= e * (1 + 1e-12));
            }
    assert_true(isnan(trip__lognormal_binomial_tail(3, 4, 0.01, -1)));
    assert_true(isnan(trip__lognormal_binomial_tail(3, 4, 0.01, NAN)));
    assert_true(isnan(trip__lognormal_binomial_tail(3, 4, 1.5, 0.1)));
    assert_close(trip__lognormal_binomial_tail(0, 4, 0.01, 0.1), 1, 0);
    assert_close(trip__lognormal_binomial_tail(5, 4, 0.01, 0.1), 0, 0);
}

static void
test_adaptive_hour_of_week_golden(void **state)
{
    (void)state;
    golden *g = golden_load("hour_of_week.txt");
    for (size_t i = 0; i < g->nrows; i++) {
        const long long *r = g->ll + i * g->ncols;
        assert_int_equal(trip__hour_of_week(r[0]), r[1]);
        assert_int_equal(trip__hour_of_day(r[0]), r[2]);
    }
    /* before 1970 too: 1969-12-31 23:00 UTC was a Wednesday */
    assert_int_equal(trip__hour_of_week(-TRIP_HOUR_NS_), 2 * 24 + 23);
    golden_free(g);
}

static void
test_adaptive_seasonal_baseline_golden(void **state)
{
    (void)state;
    golden *obs = golden_load("seasonal_obs.txt");
    golden *exp_ = golden_load("seasonal_baseline.txt");
    trip_config cfg;
    trip_config_init(&cfg);
    cfg.seasonality = TRIP_SEASON_HOUR_OF_WEEK;
    cfg.baseline_half_life_h = strtod(golden_param(obs, "half_life_h"), NULL);
    cfg.baseline_min_samples = 4000000000u; /* no clipping: exact sums */
    trip__baseline *b = calloc(1, sizeof *b);
    assert_non_null(b);
    trip__baseline_init(b, &cfg);
    for (size_t i = 0; i < obs->nrows; i++)
        trip__baseline_observe_value(b, 0, obs->d[i * 2 + 1], 0.001,
                                     obs->ll[i * 2]);
    double floor = strtod(golden_param(exp_, "sigma_floor"), NULL);
    for (size_t i = 0; i < exp_->nrows; i++) {
        const double *r = exp_->d + i * exp_->ncols;
        int cell = (int)r[0];
        const trip__ewstat *s = cell < 0 ? &b->global.m[0] : &b->how[cell].m[0];
        assert_int_equal(s->n, (int64_t)r[1]);
        assert_close(s->mean, r[2], 1e-9);
        assert_close(trip__ewstat_var(s), r[3], 1e-6);
        assert_close(
            trip__zscore(r[4], s->mean, sqrt(trip__ewstat_var(s)), floor), r[5],
            1e-6);
    }
    free(b);
    golden_free(obs);
    golden_free(exp_);
}

/* AUTO picks hour of week on the seasonal data and stays global on the
 * same data with the pattern removed. */
static void
test_adaptive_auto_detects_weekly_pattern(void **state)
{
    (void)state;
    golden *obs = golden_load("seasonal_obs.txt");
    trip_config cfg;
    trip_config_init(&cfg);
    cfg.baseline_min_samples = 10;
    trip__baseline *b = calloc(2, sizeof *b);
    assert_non_null(b);
    trip__baseline_init(&b[0], &cfg);
    trip__baseline_init(&b[1], &cfg);
    assert_int_equal(b[0].mode, TRIP_SEASON_NONE);
    sim s = {.rng = 3};
    for (size_t i = 0; i < obs->nrows; i++) {
        int64_t t = obs->ll[i * 2];
        trip__baseline_observe_value(&b[0], 0, obs->d[i * 2 + 1], 0.001, t);
        trip__baseline_observe_value(
            &b[1], 0, 0.015 + 0.004 * (2 * sim_unif(&s) - 1), 0.001, t);
    }
    assert_int_equal(b[0].mode, TRIP_SEASON_HOUR_OF_WEEK);
    assert_true(b[0].auto_eta2 >= 0.2);
    assert_int_equal(b[1].mode, TRIP_SEASON_NONE);
    assert_true(b[1].auto_eta2 < 0.1);
    free(b);
    golden_free(obs);
}

static void
test_adaptive_kofm_counts_last_m(void **state)
{
    (void)state;
    trip__kofm h = {0, 0};
    int seq[] = {1, 0, 1, 0, 0, 1, 1, 0, 1};
    int want[] = {0, 0, 0, 0, 0, 0, 1, 0, 1};
    for (int i = 0; i < 9; i++)
        assert_int_equal(trip__kofm_push(&h, seq[i], 3, 5), want[i]);
    trip__kofm_reset(&h);
    assert_int_equal(trip__kofm_push(&h, 1, 1, 1), 1);
    assert_int_equal(trip__kofm_push(&h, 0, 1, 1), 0);
    for (int i = 0; i < 70; i++)
        trip__kofm_push(&h, 1, 64, 64);
    assert_int_equal(trip__kofm_push(&h, 1, 64, 64), 1);
}

/* ---- the rules on synthetic windows ----------------------------------- */

static void
test_adaptive_rate_anomaly_trips_on_k_of_m(void **state)
{
    (void)state;
    trip_config cfg;
    trip_config_init(&cfg);
    cfg.seasonality = TRIP_SEASON_NONE;
    trip__adaptive *a = new_adaptive(&cfg);
    sim s = {.rng = 1};
    int64_t t = learn(a, &cfg, &s, T0_, 120, 100, 0.01, 0.02);
    trip_eval ev;
    trip_reason r = {0};
    int rules[3];
    for (int i = 0; i < 3; i++) {
        sim_windows(&s, 100, 0.10, 0.02, 0.5);
        rules[i] = sim_eval(a, &cfg, &s, t + (i + 1) * MIN_, 1, &ev, &r);
    }
    assert_int_equal(rules[0], TRIP_RULE_NONE);
    assert_int_equal(rules[1], TRIP_RULE_NONE);
    assert_int_equal(rules[2], TRIP_RULE_ANOMALY_FAILURE_RATE);
    assert_int_equal(r.rule, TRIP_RULE_ANOMALY_FAILURE_RATE);
    assert_true(r.score >= cfg.anomaly_z);
    assert_close(r.threshold, cfg.anomaly_z, 0);
    assert_true(r.baseline > 0.007 && r.baseline < 0.013);
    assert_true(r.samples == 1000 || r.samples == 6000);
    assert_int_equal(ev.baseline_ready, 1);
    assert_true(ev.z_rate >= cfg.anomaly_z);
    trip__adaptive_free(a);
}

/* A z-score alone is not enough: 1.3x the baseline on many calls is
 * significant but below the 2x effect size. */
static void
test_adaptive_effect_size_required(void **state)
{
    (void)state;
    trip_config cfg;
    trip_config_init(&cfg);
    cfg.seasonality = TRIP_SEASON_NONE;
    cfg.anomaly_sigma_floor = 0;
    trip__adaptive *a = new_adaptive(&cfg);
    sim s = {.rng = 2};
    int64_t t = learn(a, &cfg, &s, T0_, 120, 2000, 0.05, 0.02);
    trip_eval ev;
    double zmax = 0;
    for (int i = 0; i < 10; i++) {
        sim_windows(&s, 2000, 0.065, 0.02, 0.5);
        assert_int_equal(
            sim_eval(a, &cfg, &s, t + (i + 1) * MIN_, 1, &ev, NULL),
            TRIP_RULE_NONE);
        if (ev.z_rate > zmax)
            zmax = ev.z_rate;
    }
    assert_true(zmax >= cfg.anomaly_z);
    trip__adaptive_free(a);
}

/* Minutes judged together: 6 calls a second at a 1% baseline; a brownout
 * of 12 failures a minute (3.3%, 3.3x) is not significant in any minute
 * but is in four; one burst minute among quiet ones is not. */
static void
test_adaptive_minutes_judged_together(void **state)
{
    (void)state;
    trip_config cfg;
    trip_config_init(&cfg);
    cfg.seasonality = TRIP_SEASON_NONE;
    static const int64_t brownout[] = {12, 12, 12, 12, 12, 12};
    static const int64_t burst[] = {30, 3, 3, 3, 3, 3};
    const int64_t *fails[2] = {brownout, burst};
    for (int c = 0; c < 2; c++) {
        trip__adaptive *a = new_adaptive(&cfg);
        sim s = {.rng = 21};
        int64_t t = learn(a, &cfg, &s, T0_, 120, 6, 0.01, 0.02);
        int rule = TRIP_RULE_NONE, at = -1;
        trip_reason r = {0};
        trip_eval ev;
        for (int i = 0; i < 6 && rule == TRIP_RULE_NONE; i++) {
            sim_windows(&s, 6, 0, 0.02, 0.5);
            s.lw.failures = fails[c][i];
            rule = sim_eval(a, &cfg, &s, t + (i + 1) * MIN_, 1, &ev, &r);
            at = i;
            if (c == 0 && i < 3)
                assert_true(ev.binomial_tail > cfg.binomial_p ||
                            ev.z_rate < cfg.anomaly_z);
        }
        if (c == 0) {
            assert_int_equal(rule, TRIP_RULE_ANOMALY_FAILURE_RATE);
            assert_true(at >= 2 && at <= 3);
            assert_int_equal(r.samples, 360 * (at + 1));
        } else {
            assert_int_equal(rule, TRIP_RULE_NONE);
        }
        trip__adaptive_free(a);
    }
}

/* Night: 4 calls a minute at a 1% baseline. 3 failures of 4 trips at the
 * third judgement; 2 of 4 and 1 of 4 a minute do not (too few expected
 * failures for the minutes to be judged together). */
static void
test_adaptive_night_three_of_four(void **state)
{
    (void)state;
    trip_config cfg;
    trip_config_init(&cfg); /* issue 5: judged right with the defaults */
    cfg.seasonality = TRIP_SEASON_NONE;
    for (int fails = 1; fails <= 3; fails++) {
        trip__adaptive *a = new_adaptive(&cfg);
        sim s = {.rng = 4};
        int64_t t = learn(a, &cfg, &s, T0_, 120, 50, 0.01, 0.02);
        int rule = TRIP_RULE_NONE, at = -1;
        trip_eval ev;
        trip_reason r = {0};
        for (int i = 0; i < 5 && rule == TRIP_RULE_NONE; i++) {
            sim_windows(&s, 0, 0, 0.02, 0.5);
            s.lw.calls = 4;
            s.lw.failures = fails;
            rule = sim_eval(a, &cfg, &s, t + (i + 1) * MIN_, 1, &ev, &r);
            at = i;
        }
        if (fails == 3) {
            assert_int_equal(rule, TRIP_RULE_BINOMIAL_TAIL);
            assert_int_equal(at, 2);
            /* the tail mixed over the learned clustering (5e-4 when
             * measured), beyond the former per-second limit of 1e-6 */
            assert_true(r.score <= cfg.binomial_p && r.score > 1e-6);
            assert_close(r.threshold, cfg.binomial_p, 0);
            assert_int_equal(r.samples, 4);
        } else {
            assert_int_equal(rule, TRIP_RULE_NONE);
            assert_true(ev.binomial_tail > cfg.binomial_p);
        }
        trip__adaptive_free(a);
    }
}

static void
test_adaptive_latency_anomaly_on_p99_doubling(void **state)
{
    (void)state;
    trip_config cfg;
    trip_config_init(&cfg);
    cfg.seasonality = TRIP_SEASON_NONE;
    trip__adaptive *a = new_adaptive(&cfg);
    sim s = {.rng = 5};
    int64_t t = learn(a, &cfg, &s, T0_, 120, 100, 0.01, 0.02);
    int rule = TRIP_RULE_NONE, i;
    trip_reason r = {0};
    trip_eval ev;
    for (i = 0; i < 5 && rule == TRIP_RULE_NONE; i++) {
        sim_windows(&s, 100, 0.01, 0.04, 0.5);
        rule = sim_eval(a, &cfg, &s, t + (i + 1) * MIN_, 1, &ev, &r);
    }
    assert_int_equal(rule, TRIP_RULE_ANOMALY_LATENCY);
    assert_int_equal(i, 3);
    /* the baseline of p95 (0.0455 s) or of p99 (0.064 s) */
    assert_true(r.baseline > 0.02 * exp(0.5 * 1.5) &&
                r.baseline < 0.02 * exp(0.5 * 2.6));
    assert_close(ev.baseline_latency_s, 0.02 * exp(0.5 * 2.326), 0.1);
    assert_true(ev.latency_q_s > 1.7 * ev.baseline_latency_s);
    trip__adaptive_free(a);
}

static void
test_adaptive_percentile_rules(void **state)
{
    (void)state;
    trip_config cfg;
    trip_config_init(&cfg);
    cfg.seasonality = TRIP_SEASON_NONE;
    cfg.anomaly_z = 1000; /* leave the percentile rule alone */
    trip__adaptive *a = new_adaptive(&cfg);
    sim s = {.rng = 6};
    int64_t t = learn(a, &cfg, &s, T0_, 120, 100, 0.01, 0.02);
    trip_reason r = {0};
    /* 4x: past the 3x factor, confirmed like the anomaly rules (k of m) */
    for (int i = 1; i <= (int)cfg.anomaly_k; i++) {
        sim_windows(&s, 100, 0.01, 0.08, 0.5);
        assert_int_equal(sim_eval(a, &cfg, &s, t + i * MIN_, 1, NULL, &r),
                         i < (int)cfg.anomaly_k ? TRIP_RULE_NONE
                                                : TRIP_RULE_LATENCY_PERCENTILE);
    }
    assert_close(r.threshold, 3 * r.baseline, 1e-12);
    assert_true(r.score >= r.threshold);
    /* too few samples: silent */
    sim_windows(&s, 4, 0.01, 0.08, 0.5);
    assert_int_equal(sim_eval(a, &cfg, &s, t + 9 * MIN_, 1, NULL, &r),
                     TRIP_RULE_NONE);
    /* the absolute limit needs no baseline and works with adaptive off */
    trip__adaptive_free(a);
    cfg.adaptive = 0;
    cfg.latency_threshold_ns = 100 * TEST_MS_;
    a = new_adaptive(&cfg);
    sim_windows(&s, 100, 0.01, 0.08, 0.5);
    assert_int_equal(sim_eval(a, &cfg, &s, T0_, 1, NULL, &r),
                     TRIP_RULE_LATENCY_PERCENTILE);
    assert_close(r.threshold, 0.1, 1e-12);
    assert_true(isnan(r.baseline));
    assert_int_equal(r.samples, 1000);
    /* ... and at latency_min_samples as the user set it (60 samples, fewer
     * than the 300 a baseline comparison of p99 needs) */
    sim_windows(&s, 6, 0.01, 0.2, 0.1);
    assert_int_equal(sim_eval(a, &cfg, &s, T0_ + TEST_S_, 1, NULL, &r),
                     TRIP_RULE_LATENCY_PERCENTILE);
    assert_int_equal(r.samples, 60);
    trip__adaptive_free(a);
}

/* A p99 over fewer than 300 samples is one of the three largest calls: it
 * is not judged against the baseline (nor learned into it). */
static void
test_adaptive_tail_support(void **state)
{
    (void)state;
    trip_config cfg;
    trip_config_init(&cfg);
    cfg.seasonality = TRIP_SEASON_NONE;
    trip__adaptive *a = new_adaptive(&cfg);
    sim s = {.rng = 16};
    int64_t t = learn(a, &cfg, &s, T0_, 120, 100, 0.01, 0.02);
    trip_eval ev;
    trip_reason r = {0};
    /* 200 samples at 5x the latency: p95 is supported (10 beyond it) and
     * judged, p99 (2 beyond it) is not */
    sim_windows(&s, 20, 0.01, 0.1, 0.5);
    memset(&ev, 0, sizeof ev);
    int rule = sim_eval(a, &cfg, &s, t + MIN_, 1, &ev, &r);
    assert_true(ev.z_latency > cfg.anomaly_z);
    assert_int_equal(rule, TRIP_RULE_NONE); /* p99 is 5x: 3x would fire */
    /* 40 samples (>= latency_min_samples would be 50: lower it) support
     * neither quantile: the percentile rule is quiet, and latency is
     * judged by the calls above the baseline's p95 instead (most of them
     * at 5x), the first of the k judgements */
    cfg.latency_min_samples = 10;
    sim_windows(&s, 4, 0.01, 0.1, 0.5);
    memset(&ev, 0, sizeof ev);
    rule = sim_eval(a, &cfg, &s, t + 2 * MIN_, 1, &ev, &r);
    assert_true(ev.z_latency >= cfg.anomaly_z);
    assert_int_equal(rule, TRIP_RULE_NONE);
    /* at the baseline's own latency: few calls above its p95 */
    sim_windows(&s, 4, 0.01, 0.02, 0.5);
    rule = sim_eval(a, &cfg, &s, t + 3 * MIN_, 1, &ev, &r);
    assert_true(ev.z_latency < 2);
    assert_int_equal(rule, TRIP_RULE_NONE);
    trip__adaptive_free(a);
}

/* p95 and p99 are learned from different windows (p99 needs 300 samples):
 * each keeps the mean 1/samples of its own windows, or the sampling
 * variance of p99 is overstated and its between-window spread lost. */
static void
test_adaptive_sampling_variance_per_quantile(void **state)
{
    (void)state;
    trip_config cfg;
    trip_config_init(&cfg);
    cfg.seasonality = TRIP_SEASON_NONE;
    trip__baseline b;
    trip__baseline_init(&b, &cfg);
    for (int i = 0; i < 100; i++) {
        int big = i % 2;
        trip__bobs o = {0.01,
                        600,
                        {log(0.05), big ? log(0.08) : NAN, NAN},
                        big ? 600 : 100};
        trip__baseline_observe(&b, &o, T0_ + (i + 1) * MIN_);
    }
    assert_close(b.global.m[TRIP_BM_INVN_P99].mean, 1.0 / 600, 1e-9);
    assert_int_equal(b.global.m[TRIP_BM_INVN_P99].n, 50);
    assert_int_equal(b.global.m[TRIP_BM_INVN_LAT].n, 100);
    double m95 = b.global.m[TRIP_BM_INVN_LAT].mean;
    assert_true(m95 > 1.0 / 600 && m95 < 1.0 / 100);
    assert_int_equal(b.global.m[TRIP_BM_INVN_Q].n, 0);
}

/* The rate's between-window variance is learned from the windows with
 * enough expected failures to show it: a quarter of 12-call night windows
 * (sampling variance 8e-4, thirty times the signal) must not hide it. */
static void
test_adaptive_rate_excess_variance(void **state)
{
    (void)state;
    trip_config cfg;
    trip_config_init(&cfg);
    cfg.seasonality = TRIP_SEASON_NONE;
    cfg.baseline_half_life_h = 8760;
    cfg.anomaly_sigma_floor = 0; /* read sqrt(ex) from the sd at huge n */
    trip__baseline b;
    trip__baseline_init(&b, &cfg);
    sim s = {.rng = 17};
    double sd_log = 0.5; /* per-window rate multiplier, mean 1 */
    double ex = 0.01 * 0.01 * (exp(sd_log * sd_log) - 1); /* 2.84e-5 */
    for (int i = 0; i < 4000; i++) {
        int64_t n = i % 4 == 0 ? 12 : 600;
        double p =
            i % 4 == 0
                ? 0.01
                : 0.01 * exp(sd_log * sim_normal(&s) - sd_log * sd_log / 2);
        trip__bobs o = {(double)sim_binom(&s, n, p) / (double)n,
                        (double)n,
                        {NAN, NAN, NAN},
                        0};
        trip__baseline_observe(&b, &o, T0_ + (i + 1) * MIN_);
    }
    trip__rate_verdict v;
    trip__judge_rate(&cfg, &b.global, 1000000000, 10000000, 1.0, &v);
    print_message("learned between-window sd %.5f, true %.5f\n", v.sd,
                  sqrt(ex));
    assert_close(v.sd, sqrt(ex), 0.2);
}

static void
test_adaptive_ewma_rule(void **state)
{
    (void)state;
    trip_config cfg;
    trip_config_init(&cfg);
    cfg.ewma_failure_rate = 0.2;
    cfg.adaptive = 0;
    trip__adaptive *a = new_adaptive(&cfg);
    sim s = {.rng = 7};
    trip_reason r = {0};
    int rule = TRIP_RULE_NONE, i;
    for (i = 0; i < 60 && rule == TRIP_RULE_NONE; i++) {
        sim_windows(&s, 10, i < 30 ? 0.0 : 1.0, 0.02, 0.5);
        s.bucket.failures = i < 30 ? 0 : s.bucket.calls;
        rule = sim_eval(a, &cfg, &s, T0_ + i * TEST_S_, 1, NULL, &r);
    }
    /* 30 s of successes then failures: the EWMA (half-life 30 s) is
     * (1 - 2^(-k/30)) / (1 - 2^(-(30+k)/30)) after k s, past 0.2 at 6 s */
    assert_int_equal(rule, TRIP_RULE_EWMA_FAILURE_RATE);
    assert_true(i >= 35 && i <= 37);
    assert_true(r.score >= 0.2 && r.score < 0.3);
    trip__adaptive_free(a);
}

static void
test_adaptive_off_and_not_closed_are_silent(void **state)
{
    (void)state;
    trip_config cfg;
    trip_config_init(&cfg);
    cfg.seasonality = TRIP_SEASON_NONE;
    trip__adaptive *a = new_adaptive(&cfg);
    sim s = {.rng = 8};
    int64_t t = learn(a, &cfg, &s, T0_, 120, 100, 0.01, 0.02);
    trip_config off = cfg;
    off.adaptive = 0;
    trip_eval ev;
    for (int i = 0; i < 10; i++) {
        sim_windows(&s, 100, 0.3, 0.08, 0.5);
        assert_int_equal(
            sim_eval(a, &off, &s, t + TEST_S_ * (i + 1), 1, &ev, NULL),
            TRIP_RULE_NONE);
        assert_true(ev.z_rate > 6); /* still scored for the record */
        assert_int_equal(
            sim_eval(a, &cfg, &s, t + TEST_S_ * (i + 1), 0, &ev, NULL),
            TRIP_RULE_NONE);
    }
    trip__adaptive_free(a);
}

/* Three hours of a 20% failure rate (open breaker, then closed but
 * anomalous) must not move the baseline. */
static void
test_adaptive_outage_not_learned(void **state)
{
    (void)state;
    trip_config cfg;
    trip_config_init(&cfg);
    cfg.seasonality = TRIP_SEASON_NONE;
    trip__adaptive *a = new_adaptive(&cfg);
    sim s = {.rng = 9};
    int64_t t = learn(a, &cfg, &s, T0_, 120, 100, 0.01, 0.02);
    trip_eval ev;
    for (int m = 0; m < 180; m++, t += MIN_) {
        sim_windows(&s, 100, 0.2, 0.02, 0.5);
        sim_eval(a, &cfg, &s, t, m % 2, &ev, NULL);
    }
    sim_windows(&s, 100, 0.01, 0.02, 0.5);
    sim_eval(a, &cfg, &s, t, 1, &ev, NULL);
    assert_true(ev.baseline_rate > 0.007 && ev.baseline_rate < 0.013);
    trip__adaptive_free(a);
}

static void
test_adaptive_export_import_roundtrip(void **state)
{
    (void)state;
    trip_config cfg;
    trip_config_init(&cfg);
    trip__adaptive *a = new_adaptive(&cfg);
    sim s = {.rng = 10};
    int64_t t = learn(a, &cfg, &s, T0_, 180, 100, 0.01, 0.02);
    size_t cap = trip__adaptive_export_max();
    trip_baseline_row *rows = calloc(cap, sizeof *rows);
    assert_non_null(rows);
    size_t n = trip__adaptive_export(a, 7, t, rows, cap);
    /* global + 3 hour-of-week cells + the same 3 hours as hour-of-day
     * cells (buckets 168 + hour), 7 metrics each: rate, 1/calls, the
     * rate's excess variance, log p95 and p99 and the 1/samples of each
     * (no extra quantile) */
    assert_int_equal(n, 7 * 7);
    int hod_rows = 0;
    for (size_t i = 0; i < n; i++)
        hod_rows += rows[i].bucket >= 168 && rows[i].bucket < 192;
    assert_int_equal(hod_rows, 3 * 7);
    assert_int_equal(rows[0].bucket, -1);
    assert_int_equal(rows[0].breaker_id, 7);
    assert_int_equal(rows[0].n, 179);
    assert_int_equal(trip__adaptive_export(a, 7, t, rows, 3), 3);
    n = trip__adaptive_export(a, 7, t, rows, cap);
    trip__adaptive *b = new_adaptive(&cfg);
    assert_int_equal(trip__adaptive_import(b, rows, n), TRIP_OK);
    /* every cell came back, the hour-of-day ones (which the sequential
     * test waits for) included */
    trip_baseline_row *again = calloc(cap, sizeof *again);
    assert_non_null(again);
    assert_int_equal(trip__adaptive_export(b, 7, t, again, cap), n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(again[i].bucket, rows[i].bucket);
        assert_int_equal(again[i].n, rows[i].n);
        assert_close(again[i].mean, rows[i].mean, 1e-12);
    }
    free(again);
    trip_eval e1, e2;
    sim_windows(&s, 100, 0.05, 0.03, 0.5);
    sim_eval(a, &cfg, &s, t + MIN_, 1, &e1, NULL);
    sim_eval(b, &cfg, &s, t + MIN_, 1, &e2, NULL);
    assert_close(e2.baseline_rate, e1.baseline_rate, 1e-12);
    assert_close(e2.z_rate, e1.z_rate, 1e-9);
    assert_close(e2.z_latency, e1.z_latency, 1e-9);
    rows[1].metric = 42;
    assert_int_equal(trip__adaptive_import(b, rows, n), TRIP_EINVAL);
    assert_non_null(strstr(trip_errmsg(), "metric 42"));
    rows[1].metric = 1;
    rows[2].var = -1;
    assert_int_equal(trip__adaptive_import(b, rows, n), TRIP_EINVAL);
    rows[2].var = 0;
    rows[3].updated_ns = INT64_MIN; /* a damaged or foreign history */
    assert_int_equal(trip__adaptive_import(b, rows, n), TRIP_EINVAL);
    assert_non_null(strstr(trip_errmsg(), "updated_ns"));
    free(rows);
    trip__adaptive_free(a);
    trip__adaptive_free(b);
}

/* b: a baseline without seasons that learned 100 minutes of a p90 (the
 * third quantile) of 40 ms; cfg its configuration. */
static void
learn_p90(trip__baseline *b, trip_config *cfg)
{
    trip_config_init(cfg);
    cfg->latency_quantile = 0.9;
    cfg->seasonality = TRIP_SEASON_NONE;
    trip__baseline_init(b, cfg);
    for (int i = 0; i < 100; i++) {
        trip__bobs o = {0.01, 1000, {log(0.05), log(0.1), log(0.04)}, 1000};
        trip__baseline_observe(b, &o, T0_ + (int64_t)(i + 1) * MIN_);
    }
}

/* The latency_quantile cells hold one quantile: a change to another one,
 * even through p95 (a metric of its own) in between, forgets them (0.9,
 * then 0.95, then 0.5 left the p90 cells judging the p50). */
static void
test_adaptive_quantile_change_forgets_its_cells(void **state)
{
    (void)state;
    trip_config cfg;
    static trip__baseline b;
    learn_p90(&b, &cfg);
    const trip__ewstat *s =
        trip__baseline_lookup(&b, T0_ + 200 * MIN_, b.logq_metric);
    assert_non_null(s); /* the p90 learned */
    cfg.latency_quantile = 0.95;
    trip__baseline_configure(&b, &cfg);
    cfg.latency_quantile = 0.9; /* back: the p90 cells are still its own */
    trip__baseline_configure(&b, &cfg);
    assert_non_null(trip__baseline_lookup(&b, T0_ + 200 * MIN_, b.logq_metric));
    cfg.latency_quantile = 0.95;
    trip__baseline_configure(&b, &cfg);
    cfg.latency_quantile = 0.5;
    trip__baseline_configure(&b, &cfg);
    assert_null(trip__baseline_lookup(&b, T0_ + 200 * MIN_, b.logq_metric));
}

/* Saved cells of a latency_quantile other than p95/p99 (metrics 5 and 7)
 * name their quantile: a restart with that quantile imports them, one with
 * another quantile, or rows that name none (saved before schema 3), learns
 * that metric again instead of judging the wrong quantile. */
static void
test_adaptive_import_checks_the_quantile(void **state)
{
    (void)state;
    trip_config cfg;
    static trip__baseline b, c;
    learn_p90(&b, &cfg);
    int64_t t = T0_ + 200 * MIN_;
    trip_baseline_row rows[64];
    size_t n = trip__baseline_export(&b, 1, t, rows, 64);
    int logq = 0;
    for (size_t i = 0; i < n; i++) {
        int q =
            rows[i].metric == TRIP_BM_LOGQ || rows[i].metric == TRIP_BM_INVN_Q;
        logq += q;
        if (q)
            assert_true(rows[i].quantile == 0.9);
        else
            assert_true(isnan(rows[i].quantile));
    }
    assert_int_equal(logq, 2);
    /* the same quantile: the p90 cells come back */
    trip__baseline_init(&c, &cfg);
    assert_int_equal(trip__baseline_import(&c, rows, n), TRIP_OK);
    const trip__ewstat *s = trip__baseline_lookup(&c, t, c.logq_metric);
    assert_non_null(s);
    assert_close(s->mean, log(0.04), 1e-12);
    /* another quantile: not imported; the other metrics are */
    cfg.latency_quantile = 0.5;
    trip__baseline_init(&c, &cfg);
    assert_int_equal(trip__baseline_import(&c, rows, n), TRIP_OK);
    assert_null(trip__baseline_lookup(&c, t, c.logq_metric));
    assert_non_null(trip__baseline_lookup(&c, t, TRIP_BM_RATE));
    assert_null(trip__baseline_lookup(&c, t, TRIP_BM_LOGQ));
    /* rows that name no quantile (an older file's): not imported */
    cfg.latency_quantile = 0.9;
    for (size_t i = 0; i < n; i++)
        rows[i].quantile = NAN;
    trip__baseline_init(&c, &cfg);
    assert_int_equal(trip__baseline_import(&c, rows, n), TRIP_OK);
    assert_null(trip__baseline_lookup(&c, t, c.logq_metric));
    assert_non_null(trip__baseline_lookup(&c, t, TRIP_BM_LOGP99));
}

static void
test_adaptive_warm_start_from_rollups(void **state)
{
    (void)state;
    trip_config cfg;
    trip_config_init(&cfg);
    trip__adaptive *a = new_adaptive(&cfg);
    trip_rollup_row rows[120];
    sim s = {.rng = 11};
    for (int i = 0; i < 120; i++) {
        memset(&rows[i], 0, sizeof rows[i]);
        rows[i].minute_ns = T0_ + i * MIN_;
        rows[i].calls = 6000;
        rows[i].successes =
            6000 - (rows[i].failures = sim_binom(&s, 6000, 0.01));
        rows[i].p50_s = 0.02;
        rows[i].p95_s = 0.02 * exp(0.5 * 1.645);
        rows[i].p99_s = 0.02 * exp(0.5 * 2.326) * (1 + 0.05 * sim_normal(&s));
        rows[i].p90_s = rows[i].p999_s = NAN;
    }
    rows[50].failures = 3000; /* an incident minute is not learned */
    rows[51].rejected = 10;   /* nor a minute the breaker was open */
    assert_int_equal(trip__adaptive_warm_start(a, &cfg, rows, 120, 0), TRIP_OK);
    trip_eval ev;
    sim_windows(&s, 100, 0.01, 0.02, 0.5);
    sim_eval(a, &cfg, &s, T0_ + 121 * MIN_, 1, &ev, NULL);
    assert_int_equal(ev.baseline_ready, 1);
    assert_true(ev.baseline_rate > 0.009 && ev.baseline_rate < 0.011);
    assert_close(ev.baseline_latency_s, 0.02 * exp(0.5 * 2.326), 0.03);
    assert_int_equal(trip__adaptive_warm_start(a, &cfg, NULL, 3, 0),
                     TRIP_EINVAL);
    trip__adaptive_free(a);
}

static void
test_adaptive_eval_is_nan_without_data(void **state)
{
    (void)state;
    trip_config cfg;
    trip_config_init(&cfg);
    trip__adaptive *a = new_adaptive(&cfg);
    trip__window w = {0};
    trip_eval ev;
    trip_reason r = {0};
    memset(&ev, 0, sizeof ev);
    w.span_ns = TEST_S_;
    assert_int_equal(
        trip__adaptive_evaluate(a, &cfg, T0_, &w, &w, &w, 1, &ev, &r),
        TRIP_RULE_NONE);
    assert_true(isnan(ev.ewma_failure_rate) && isnan(ev.ewma_latency_s));
    assert_true(isnan(ev.latency_q_s) && isnan(ev.baseline_rate));
    assert_true(isnan(ev.z_rate) && isnan(ev.z_latency));
    assert_true(isnan(ev.binomial_tail) && isnan(ev.baseline_latency_s));
    assert_int_equal(ev.baseline_ready, 0);
    assert_int_equal(trip__adaptive_new(NULL, &a), TRIP_EINVAL);
    trip__adaptive_free(a);
    trip__adaptive_free(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adaptive_ewma_gaps_golden),
        cmocka_unit_test(test_adaptive_ewma_through_evaluate),
        cmocka_unit_test(test_adaptive_ewstat_golden),
        cmocka_unit_test(test_adaptive_binomial_tails_golden),
        cmocka_unit_test(test_adaptive_binomial_bad_input_is_nan),
        cmocka_unit_test(test_adaptive_lognormal_binomial_tail),
        cmocka_unit_test(test_adaptive_hour_of_week_golden),
        cmocka_unit_test(test_adaptive_seasonal_baseline_golden),
        cmocka_unit_test(test_adaptive_auto_detects_weekly_pattern),
        cmocka_unit_test(test_adaptive_kofm_counts_last_m),
        cmocka_unit_test(test_adaptive_rate_anomaly_trips_on_k_of_m),
        cmocka_unit_test(test_adaptive_effect_size_required),
        cmocka_unit_test(test_adaptive_night_three_of_four),
        cmocka_unit_test(test_adaptive_minutes_judged_together),
        cmocka_unit_test(test_adaptive_latency_anomaly_on_p99_doubling),
        cmocka_unit_test(test_adaptive_percentile_rules),
        cmocka_unit_test(test_adaptive_tail_support),
        cmocka_unit_test(test_adaptive_sampling_variance_per_quantile),
        cmocka_unit_test(test_adaptive_rate_excess_variance),
        cmocka_unit_test(test_adaptive_ewma_rule),
        cmocka_unit_test(test_adaptive_off_and_not_closed_are_silent),
        cmocka_unit_test(test_adaptive_outage_not_learned),
        cmocka_unit_test(test_adaptive_export_import_roundtrip),
        cmocka_unit_test(test_adaptive_quantile_change_forgets_its_cells),
        cmocka_unit_test(test_adaptive_import_checks_the_quantile),
        cmocka_unit_test(test_adaptive_warm_start_from_rollups),
        cmocka_unit_test(test_adaptive_eval_is_nan_without_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
