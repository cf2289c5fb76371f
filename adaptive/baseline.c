/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The seasonal baseline: global, hour-of-day and hour-of-week cells of
 * exponentially weighted statistics, the AUTO choice and persistence. */
#include <math.h>
#include <string.h>

#include <gsl/gsl_cdf.h>

#include "adaptive_internal.h"
#include "internal.h"

/* Observations beyond mean +- this many sd are clipped before learning. */
#define TRIP_CLIP_SD_ 4.0
/* AUTO: switch to hour of week at this share of variance explained by the
 * hour (eta^2, with an F test at TRIP_AUTO_P_), back to none below _OFF_. */
#define TRIP_AUTO_ON_ 0.2
#define TRIP_AUTO_OFF_ 0.1
#define TRIP_AUTO_P_ 1e-3
#define TRIP_AUTO_MIN_CELLS_ 24

static int64_t
trip_floordiv_(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int
trip__hour_of_day(int64_t wall_ns)
{
    int64_t h = trip_floordiv_(wall_ns, TRIP_HOUR_NS_);
    return (int)(h - trip_floordiv_(h, 24) * 24);
}

int
trip__hour_of_week(int64_t wall_ns)
{
    /* 1970-01-01 was a Thursday: day 0 is weekday 3 counting from Monday */
    int64_t day = trip_floordiv_(wall_ns, TRIP_DAY_NS_);
    int64_t wd = (day + 3) - trip_floordiv_(day + 3, 7) * 7;
    return (int)wd * 24 + trip__hour_of_day(wall_ns);
}

static int
trip_logq_metric_(double q)
{
    if (fabs(q - 0.95) < 1e-9)
        return TRIP_BM_LOGP95;
    if (fabs(q - 0.99) < 1e-9)
        return TRIP_BM_LOGP99;
    return TRIP_BM_LOGQ;
}

void
trip__baseline_init(trip__baseline *b, const trip_config *cfg)
{
    memset(b, 0, sizeof *b);
    b->mode = TRIP_SEASON_NONE;
    b->last_auto_hour = -1;
    b->auto_eta2 = NAN;
    trip__baseline_configure(b, cfg);
}

void
trip__baseline_configure(trip__baseline *b, const trip_config *cfg)
{
    int was = b->configured;
    b->configured = cfg->seasonality;
    b->half_life_ns = cfg->baseline_half_life_h * (double)TRIP_HOUR_NS_;
    b->min_samples = cfg->baseline_min_samples;
    b->obs_period_ns = (int64_t)cfg->long_window_buckets * cfg->bucket_ns;
    int metric = trip_logq_metric_(cfg->latency_quantile);
    if (metric == TRIP_BM_LOGQ && b->logq_value != cfg->latency_quantile) {
        /* a different quantile than the cells hold (whatever came between:
         * 0.9, then 0.95 (a metric of its own), then 0.5 left p90 cells
         * judging the p50): what was learned for the old one is moot */
        b->global.m[TRIP_BM_LOGQ] = (trip__ewstat){0};
        b->global.m[TRIP_BM_INVN_Q] = (trip__ewstat){0};
        for (int i = 0; i < TRIP_HOD_; i++)
            b->hod[i].m[TRIP_BM_LOGQ] = b->hod[i].m[TRIP_BM_INVN_Q] =
                (trip__ewstat){0};
        for (int i = 0; i < TRIP_HOW_; i++)
            b->how[i].m[TRIP_BM_LOGQ] = b->how[i].m[TRIP_BM_INVN_Q] =
                (trip__ewstat){0};
    }
    b->logq_metric = metric;
    if (metric == TRIP_BM_LOGQ)
        b->logq_value = cfg->latency_quantile;
    if (cfg->seasonality != TRIP_SEASON_AUTO)
        b->mode = cfg->seasonality;
    else if (was != TRIP_SEASON_AUTO)
        trip__baseline_auto(b);
}

/* Clip x to the cell's mean +- TRIP_CLIP_SD_ sd once the cell is trusted,
 * so that one bad minute that slipped through moves it only a little. */
static double
trip_clip_(const trip__ewstat *s, double x, double sd_floor, uint32_t min_n)
{
    if (s->n < (int64_t)(min_n > 2 ? min_n : 2))
        return x;
    double sd = sqrt(trip__ewstat_var(s));
    if (sd < sd_floor)
        sd = sd_floor;
    if (!(sd > 0))
        return x; /* nothing to judge by yet */
    double lo = s->mean - TRIP_CLIP_SD_ * sd, hi = s->mean + TRIP_CLIP_SD_ * sd;
    return x < lo ? lo : (x > hi ? hi : x);
}

static void
trip_stat_observe_(trip__baseline *b, trip__ewstat *s, double x,
                   double clip_floor, int64_t t)
{
    trip__ewstat_add(s, trip_clip_(s, x, clip_floor, b->min_samples), t,
                     b->half_life_ns);
}

static void
trip_cell_observe_(trip__baseline *b, trip__bcell *c, const trip__bobs *o,
                   int64_t t)
{
    static const int metric[3] = {TRIP_BM_LOGP95, TRIP_BM_LOGP99, TRIP_BM_LOGQ};
    if (o->calls > 0 && isfinite(o->rate)) {
        const trip__ewstat *r = &c->m[TRIP_BM_RATE];
        if (r->n >= 2 && o->calls * r->mean >= TRIP_EX_MIN_EXPECTED_) {
            /* the window's squared surprise beyond its own sampling
             * variance: an unbiased estimate of the between-window
             * variance, from windows where it is not all noise */
            double d = o->rate - r->mean;
            double e = d * d - r->mean * (1 - r->mean) / o->calls;
            trip__ewstat_add(&c->m[TRIP_BM_RATE_EX], e, t, b->half_life_ns);
        }
        /* clipped no closer than what a period of this many calls can
         * show by chance: 4 binomial sd plus one failure, in counts. At a
         * few calls a minute one failure is a rate of 0.3 or more, and a
         * floor of 0.01 (or a cell sd learned from minutes that were
         * mostly 0) clipped every such minute to a few percent, so the
         * cell learned a fraction of the true rate and never got out (2
         * calls a minute at 2.5% learned 0.2%) */
        double p = r->mean > 0.001 ? (r->mean < 0.5 ? r->mean : 0.5) : 0.001;
        double samp = sqrt(p * (1 - p) / o->calls) + 0.25 / o->calls;
        trip_stat_observe_(b, &c->m[TRIP_BM_RATE], o->rate,
                           samp > 0.01 ? samp : 0.01, t);
        trip__ewstat_add(&c->m[TRIP_BM_INVN_RATE], 1.0 / o->calls, t,
                         b->half_life_ns);
    }
    if (!(o->lat_samples > 0))
        return;
    for (int i = 0; i < 3; i++) {
        if (!isfinite(o->logq[i]) ||
            (metric[i] == TRIP_BM_LOGQ && b->logq_metric != TRIP_BM_LOGQ))
            continue;
        trip_stat_observe_(b, &c->m[metric[i]], o->logq[i], 0.05, t);
        trip__ewstat_add(&c->m[trip__invn_metric(metric[i])],
                         1.0 / o->lat_samples, t, b->half_life_ns);
    }
}

/* Decide AUTO again at most once an hour of observed time. */
static void
trip_auto_tick_(trip__baseline *b, int64_t t)
{
    int64_t hour = trip_floordiv_(t, TRIP_HOUR_NS_);
    if (b->configured == TRIP_SEASON_AUTO && hour != b->last_auto_hour) {
        b->last_auto_hour = hour;
        trip__baseline_auto(b);
    }
}

void
trip__baseline_observe(trip__baseline *b, const trip__bobs *o, int64_t wall_ns)
{
    int64_t t = wall_ns - 1; /* the observation ended at wall_ns */
    trip_cell_observe_(b, &b->global, o, t);
    trip_cell_observe_(b, &b->hod[trip__hour_of_day(t)], o, t);
    trip_cell_observe_(b, &b->how[trip__hour_of_week(t)], o, t);
    trip_auto_tick_(b, t);
}

void
trip__baseline_observe_value(trip__baseline *b, int metric, double x,
                             double clip_floor, int64_t wall_ns)
{
    int64_t t = wall_ns - 1;
    if (!isfinite(x))
        return;
    trip_stat_observe_(b, &b->global.m[metric], x, clip_floor, t);
    trip_stat_observe_(b, &b->hod[trip__hour_of_day(t)].m[metric], x,
                       clip_floor, t);
    trip_stat_observe_(b, &b->how[trip__hour_of_week(t)].m[metric], x,
                       clip_floor, t);
    trip_auto_tick_(b, t);
}

int
trip__baseline_ready(const trip__baseline *b, const trip__ewstat *s)
{
    int64_t need = b->min_samples > 0 ? (int64_t)b->min_samples : 1;
    return s->n >= need;
}

const trip__bcell *
trip__baseline_cell(const trip__baseline *b, int64_t wall_ns, int metric)
{
    int64_t t = wall_ns - 1;
    const trip__bcell *c = NULL;
    if (b->mode == TRIP_SEASON_HOUR_OF_WEEK)
        c = &b->how[trip__hour_of_week(t)];
    else if (b->mode == TRIP_SEASON_HOUR_OF_DAY)
        c = &b->hod[trip__hour_of_day(t)];
    if (c != NULL && trip__baseline_ready(b, &c->m[metric]))
        return c;
    if (trip__baseline_ready(b, &b->global.m[metric]))
        return &b->global;
    return NULL;
}

const trip__ewstat *
trip__baseline_lookup(const trip__baseline *b, int64_t wall_ns, int metric)
{
    const trip__bcell *c = trip__baseline_cell(b, wall_ns, metric);
    return c ? &c->m[metric] : NULL;
}

/*
 * Share of the variance of one metric explained by the hour of week
 * (eta^2 = SSB / (SSB + SSW) over the trusted cells), or NaN if fewer than
 * TRIP_AUTO_MIN_CELLS_ cells are trusted or the F test is not significant.
 */
static double
trip_auto_eta2_(const trip__baseline *b, int metric)
{
    double sw = 0, swm = 0, ssw = 0, dfw = 0;
    int k = 0;
    for (int i = 0; i < TRIP_HOW_; i++) {
        const trip__ewstat *s = &b->how[i].m[metric];
        if (!trip__baseline_ready(b, s) || s->n < 2)
            continue;
        double ne = trip__ewstat_neff(s);
        sw += ne;
        swm += ne * s->mean;
        ssw += (ne - 1.0) * trip__ewstat_var(s);
        dfw += ne - 1.0;
        k++;
    }
    if (k < TRIP_AUTO_MIN_CELLS_ || dfw <= 0)
        return NAN;
    double grand = swm / sw, ssb = 0;
    for (int i = 0; i < TRIP_HOW_; i++) {
        const trip__ewstat *s = &b->how[i].m[metric];
        if (trip__baseline_ready(b, s) && s->n >= 2)
            ssb += trip__ewstat_neff(s) * (s->mean - grand) * (s->mean - grand);
    }
    if (!(ssb + ssw > 0))
        return NAN;
    double f = (ssb / (k - 1)) / (ssw > 0 ? ssw / dfw : 1e-300);
    double p = gsl_cdf_fdist_Q(f, (double)(k - 1), dfw);
    if (!(p <= TRIP_AUTO_P_))
        return 0.0;
    return ssb / (ssb + ssw);
}

void
trip__baseline_auto(trip__baseline *b)
{
    static const int metrics[3] = {TRIP_BM_RATE, TRIP_BM_LOGP95,
                                   TRIP_BM_LOGP99};
    if (b->configured != TRIP_SEASON_AUTO)
        return;
    trip__gsl_init();
    double best = NAN;
    for (int i = 0; i < 3; i++) {
        double e = trip_auto_eta2_(b, metrics[i]);
        if (isfinite(e) && !(e <= best))
            best = e;
    }
    b->auto_eta2 = best;
    if (!isfinite(best))
        return; /* too little data to decide: keep the current choice */
    if (best >= TRIP_AUTO_ON_)
        b->mode = TRIP_SEASON_HOUR_OF_WEEK;
    else if (best < TRIP_AUTO_OFF_)
        b->mode = TRIP_SEASON_NONE;
}

/* ---- persistence ----------------------------------------------------- */

size_t
trip__baseline_export_max(void)
{
    return (size_t)(1 + TRIP_HOW_ + TRIP_HOD_) * TRIP_BM_COUNT_;
}

/* Whether metric m's cells hold a latency_quantile other than p95/p99,
 * whose rows name it. */
static int
trip_is_logq_(int m)
{
    return m == TRIP_BM_LOGQ || m == TRIP_BM_INVN_Q;
}

static size_t
trip_export_cell_(const trip__baseline *b, const trip__bcell *c, int id,
                  int bucket, trip_baseline_row *rows, size_t at, size_t cap)
{
    for (int m = 0; m < TRIP_BM_COUNT_ && at < cap; m++) {
        const trip__ewstat *s = &c->m[m];
        if (s->n == 0)
            continue;
        rows[at++] =
            (trip_baseline_row){id,
                                bucket,
                                m,
                                s->mean,
                                trip__ewstat_var(s),
                                s->n,
                                s->t_ns,
                                trip_is_logq_(m) ? b->logq_value : NAN};
    }
    return at;
}

size_t
trip__baseline_export(const trip__baseline *b, int breaker_id, int64_t now_ns,
                      trip_baseline_row *rows, size_t cap)
{
    (void)now_ns; /* each row carries the time its cell last learned */
    size_t n = 0;
    if (rows == NULL)
        return 0;
    n = trip_export_cell_(b, &b->global, breaker_id, -1, rows, n, cap);
    if (b->configured == TRIP_SEASON_HOUR_OF_DAY) {
        for (int i = 0; i < TRIP_HOD_; i++)
            n = trip_export_cell_(b, &b->hod[i], breaker_id, i, rows, n, cap);
    } else if (b->configured != TRIP_SEASON_NONE) {
        for (int i = 0; i < TRIP_HOW_; i++)
            n = trip_export_cell_(b, &b->how[i], breaker_id, i, rows, n, cap);
        /* the hour-of-day cells too, as buckets 168..191: the sequential
         * test waits for them, so a restart that lost them left it off
         * for up to a day */
        for (int i = 0; i < TRIP_HOD_; i++)
            n = trip_export_cell_(b, &b->hod[i], breaker_id, TRIP_HOW_ + i,
                                  rows, n, cap);
    }
    return n;
}

/* Steady-state weight of a cell observed every obs_period_ns for an hour
 * each cycle_ns (the global cell: continuously, cycle 0). */
static double
trip_wmax_(const trip__baseline *b, int64_t cycle_ns)
{
    double per = b->obs_period_ns > 0 ? (double)b->obs_period_ns : 6e10;
    if (cycle_ns == 0)
        return 1.0 / (1.0 - exp2(-per / b->half_life_ns));
    double per_hour = (double)TRIP_HOUR_NS_ / per;
    return per_hour / (1.0 - exp2(-(double)cycle_ns / b->half_life_ns));
}

static void
trip_import_stat_(trip__ewstat *s, const trip_baseline_row *r, double wmax)
{
    double w = (double)r->n < wmax ? (double)r->n : wmax;
    memset(s, 0, sizeof *s);
    s->mean = r->mean;
    s->n = r->n;
    s->t_ns = r->updated_ns;
    s->w = w;
    s->w2 = w; /* as if w equal weights: neff = w */
    s->var = w > 1 ? r->var * (w - 1.0) / w : 0.0;
}

static int
trip_import_check_(const trip_baseline_row *r, size_t i)
{
    if (r->metric < 0 || r->metric >= TRIP_BM_COUNT_)
        return trip__fail(TRIP_EINVAL,
                          "baseline row %zu: metric %d is not "
                          "in [0, %d]",
                          i, r->metric, TRIP_BM_COUNT_ - 1);
    if (r->bucket < -1 || r->bucket >= TRIP_HOW_ + TRIP_HOD_)
        return trip__fail(TRIP_EINVAL,
                          "baseline row %zu: bucket %d is not "
                          "in [-1, 191]",
                          i, r->bucket);
    if (!isfinite(r->mean) || !isfinite(r->var) || r->var < 0 || r->n < 0)
        return trip__fail(TRIP_EINVAL,
                          "baseline row %zu: mean %g, var %g, "
                          "n %lld must be finite and var, n >= 0",
                          i, r->mean, r->var, (long long)r->n);
    /* the EWMA's decay subtracts it from the time of the next update */
    if (r->updated_ns < 0 || r->updated_ns > TRIP__TIME_MAX_NS)
        return trip__fail(TRIP_EINVAL,
                          "baseline row %zu: updated_ns %lld is not in "
                          "[0, 2^62]",
                          i, (long long)r->updated_ns);
    return TRIP_OK;
}

int
trip__baseline_import(trip__baseline *b, const trip_baseline_row *rows,
                      size_t n)
{
    int hod = b->configured == TRIP_SEASON_HOUR_OF_DAY;
    if (n > 0 && rows == NULL)
        return trip__fail(TRIP_EINVAL, "baseline import: rows is NULL");
    for (size_t i = 0; i < n; i++) {
        int rc = trip_import_check_(&rows[i], i);
        if (rc != TRIP_OK)
            return rc;
        if (rows[i].bucket >= TRIP_HOD_ && rows[i].bucket < TRIP_HOW_)
            hod = 0; /* hour-of-week rows, whatever the config says now */
    }
    for (size_t i = 0; i < n; i++) {
        const trip_baseline_row *r = &rows[i];
        /* cells of another quantile than this breaker's, or of rows saved
         * before they named theirs (NaN), would judge the wrong one: that
         * metric learns again */
        if (trip_is_logq_(r->metric) &&
            !(b->logq_metric == TRIP_BM_LOGQ && r->quantile == b->logq_value))
            continue;
        if (r->bucket < 0)
            trip_import_stat_(&b->global.m[r->metric], r, trip_wmax_(b, 0));
        else if (r->bucket >= TRIP_HOW_)
            trip_import_stat_(&b->hod[r->bucket - TRIP_HOW_].m[r->metric], r,
                              trip_wmax_(b, TRIP_DAY_NS_));
        else if (hod)
            trip_import_stat_(&b->hod[r->bucket].m[r->metric], r,
                              trip_wmax_(b, TRIP_DAY_NS_));
        else
            trip_import_stat_(&b->how[r->bucket].m[r->metric], r,
                              trip_wmax_(b, TRIP_WEEK_NS_));
    }
    trip__baseline_auto(b);
    return TRIP_OK;
}
