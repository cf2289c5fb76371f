/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The adaptive rules on a bucket roll: EWMAs, percentile, anomaly and
 * binomial rules against the seasonal baseline, and baseline learning. */
#include <math.h>
#include <string.h>

#include <gsl/gsl_cdf.h>

#include "adaptive.h"
#include "adaptive_internal.h"
#include "internal.h"

/* z of the normal quantiles 0.95 and 0.99: the log spread between the
 * baseline's p95 and p99 gives the log-scale slope of the tail. */
#define TRIP_Z95_ 1.6448536269514722
#define TRIP_Z99_ 2.3263478740408408

/* anomaly_fast: a judged period is kept in TRIP_PARTS_ parts (10 s of a
 * minute), and of the two periods' parts the TRIP_PARTS_TRIM_ that most
 * exceed the baseline are left out of the confirmation (40 s: every part
 * a burst of up to 30 s can touch). */
#define TRIP_PARTS_ 6
#define TRIP_PARTS_TRIM_ 4

/* One part of a period: calls and failures (failures + timeouts), latency
 * samples and those above the baseline's p95 and p99. */
typedef struct trip_part_ {
    int64_t calls, fails;
    uint64_t n, over[2];
} trip_part_;

struct trip__adaptive {
    trip__baseline base;
    trip__ewratio ew_rate; /* failures / calls */
    trip__ewratio ew_lat;  /* latency seconds / calls */
    trip__kofm rate_hist, lat_hist, pct_hist;
    int64_t obs_index; /* wall_ns / observation period last seen */
    int dirty;         /* the current observation period saw trouble */
    int partial;       /* ... or was not closed throughout: never learned */
    double cq[3];      /* trip__quantile_cq of p95, p99, cfg q */
    trip_eval judged;  /* the scores of the last judgement */
    /* calls and failures of the last judged periods (closed only), a ring
     * of 64 indexed by periods_n */
    int64_t pcalls[64], pfails[64];
    uint32_t periods_n;
    /* learning waits while trouble is near: a period is learned once the
     * anomaly_m judgements from it on have passed without a trip, so the
     * quiet minutes of an incident that is still building up (between
     * its anomalous ones) do not widen the baseline it is judged by;
     * pending[] holds them in order, at most TRIP_LEARN_HOLD_ (or m) */
    trip__kofm trouble; /* the judgements that were troubled (dirty) */
    double seq;         /* CUSUM of trip__rate_llr over low-volume periods */
    trip__bobs pending[64];
    int64_t pending_wall[64];
    uint32_t pending_n;
    /* anomaly_fast: the parts of the period being filled ([0]) and of the
     * one judged before it ([1]); full: the period was closed and judged
     * throughout (one period after the judgement before it) */
    trip_part_ part[2][TRIP_PARTS_];
    int part_full[2];
    int part_ok;      /* closed since the period began */
    int part_s;       /* the part being filled */
    int64_t part_end; /* wall time at which part_s ends (0: unknown) */
    /* the period histogram's samples and exceedances at the last part's
     * end (the histogram restarts at each judgement) */
    uint64_t part_snap[3];
};

#define TRIP_LEARN_HOLD_ 16

/* What one evaluation found, before it is copied into the trip_eval. */
typedef struct trip_found_ {
    trip__rate_verdict rs, rl; /* short and long window */
    trip__rate_verdict ra;     /* the last anomaly_m periods together */
    int64_t ra_calls;
    int ra_elevated; /* periods among them at the rate effect size */
    trip__lat_verdict l95, l99, lq; /* p95, p99, configured quantile */
    double q[3];                    /* p95, p99, configured quantile (s) */
    double logq[3];                 /* their logs, NaN if unsupported */
    const trip__bcell *rate_cell, *lat_cell;
} trip_found_;

/* The judged fields before any judgement: nothing known. */
static void
trip_unjudged_(trip_eval *j)
{
    j->baseline_rate = j->baseline_rate_sd = j->z_rate = NAN;
    j->baseline_latency_s = j->baseline_log_latency_sd = j->z_latency = NAN;
    j->binomial_tail = NAN;
    j->baseline_ready = 0;
}

static void
trip_adaptive_set_(trip__adaptive *a, const trip_config *cfg)
{
    a->cq[0] = trip__quantile_cq(0.95);
    a->cq[1] = trip__quantile_cq(0.99);
    a->cq[2] = trip__quantile_cq(cfg->latency_quantile);
}

int
trip__adaptive_new(const trip_config *cfg, trip__adaptive **out)
{
    if (out == NULL || cfg == NULL)
        return trip__fail(TRIP_EINVAL, "trip__adaptive_new: NULL argument");
    trip__gsl_init();
    trip__adaptive *a = trip__calloc(1, sizeof *a);
    *out = a;
    if (a == NULL)
        return trip__fail(TRIP_ENOMEM, "adaptive state: out of memory");
    trip__baseline_init(&a->base, cfg);
    a->obs_index = INT64_MIN;
    trip_adaptive_set_(a, cfg);
    trip_unjudged_(&a->judged);
    return TRIP_OK;
}

void
trip__adaptive_free(trip__adaptive *a)
{
    trip__free(a);
}

void
trip__adaptive_reconfigure(trip__adaptive *a, const trip_config *cfg)
{
    if (a == NULL || cfg == NULL)
        return;
    trip__baseline_configure(&a->base, cfg);
    trip_adaptive_set_(a, cfg);
    trip__kofm_reset(&a->rate_hist);
    trip__kofm_reset(&a->lat_hist);
    trip__kofm_reset(&a->pct_hist);
    a->periods_n = 0;
    a->part_ok = 0;
    a->part_full[1] = 0;
}

/* Log-scale slope d log Q / dz of the tail, from the baseline's p95 and p99
 * when it has them, else from this window's. */
static double
trip_slope_(const trip__bcell *c, const double *q)
{
    double s = NAN;
    if (c != NULL && c->m[TRIP_BM_LOGP95].n > 0 && c->m[TRIP_BM_LOGP99].n > 0)
        s = (c->m[TRIP_BM_LOGP99].mean - c->m[TRIP_BM_LOGP95].mean) /
            (TRIP_Z99_ - TRIP_Z95_);
    else if (q[0] > 0 && q[1] > 0)
        s = log(q[1] / q[0]) / (TRIP_Z99_ - TRIP_Z95_);
    if (!isfinite(s))
        return NAN;
    return s < 0.05 ? 0.05 : (s > 3.0 ? 3.0 : s);
}

/* Whether n samples support a q-quantile (TRIP_TAIL_SUPPORT_ beyond it). */
static int
trip_supported_(double q, uint64_t n)
{
    return q >= 1.0 || (double)n * (1.0 - q) >= TRIP_TAIL_SUPPORT_ - 1e-9;
}

/* The three quantiles of the short window in one pass over the bins; q
 * receives the values, logq their logs where the window supports them. */
static void
trip_quantiles_(const trip_config *cfg, const trip__window *w, double *q,
                double *logq)
{
    double qs[3] = {0.95, 0.99, cfg->latency_quantile}, out[3];
    int order[3] = {0, 1, 2};
    if (qs[2] < qs[1]) {
        order[1] = 2;
        order[2] = 1;
        if (qs[2] < qs[0]) {
            order[0] = 2;
            order[1] = 0;
        }
    }
    double sorted[3] = {qs[order[0]], qs[order[1]], qs[order[2]]};
    trip__hist_quantiles_from_s(w->hist, w->hist_total, w->hist_lo, sorted, 3,
                                out);
    for (int i = 0; i < 3; i++)
        q[order[i]] = out[i];
    for (int i = 0; i < 3; i++)
        logq[i] =
            trip_supported_(qs[i], w->hist_total) && q[i] > 0 ? log(q[i]) : NAN;
}

static double
trip_log_(double x)
{
    return x > 0 ? log(x) : NAN;
}

/* Samples of w's histogram above latency q (seconds) into *over; 0 when q
 * is not a latency the histogram can hold or w has no histogram. The sum
 * stops at w->hist_end when it is set (the bins past it are empty). */
static int
trip_over_count_(const trip__window *w, double q, uint64_t *over)
{
    if (w->hist == NULL || !(q > 0 && q < 4e3))
        return 0;
    uint32_t end = w->hist_end > 0 && w->hist_end < TRIP_HIST_BINS
                       ? w->hist_end
                       : TRIP_HIST_BINS;
    uint64_t o = 0;
    for (uint32_t j = trip__hist_bin((int64_t)(q * 1e9)) + 1; j < end; j++)
        o += w->hist[j];
    *over = o;
    return 1;
}

/*
 * Latency by exceedances: under the baseline a call exceeds the hour's p95
 * with probability share 0.05 (the p99: 0.01), so the count of calls above
 * it is binomial (with the rate rule's slack phi). Its tail is reported as
 * the normal deviate with the same tail, so that it is judged against
 * anomaly_z like the quantile z it stands in for: 5 calls of 5 above the
 * p95 is a tail of 3e-7 (z 5.0), 7 of 7 z 6.0. Anomalous when the z reaches
 * anomaly_z and at least twice the expected share exceeded.
 */
static int
trip_exceed_judge_(const trip_config *cfg, uint64_t over, int64_t n,
                   double share, double *z)
{
    double tail = trip__binomial_tail((int64_t)over, n, share,
                                      cfg->binomial_overdispersion);
    *z = tail < 1 ? gsl_cdf_ugaussian_Qinv(tail) : 0;
    if (isnan(*z))
        *z = tail <= 0 ? INFINITY : NAN;
    return n > 0 && (double)over >= 2 * share * (double)n &&
           *z >= cfg->anomaly_z;
}

/* Latency at low volume, where the window cannot support a p95: the
 * window's calls above the baseline's p95, judged as exceedances. */
static void
trip_exceedances_(const trip_config *cfg, const trip__bcell *c95,
                  const trip__window *lw, trip__lat_verdict *v)
{
    uint64_t over;
    if (c95 == NULL || c95->m[TRIP_BM_LOGP95].n <= 0 || lw->hist_total == 0 ||
        !trip_over_count_(lw, exp(c95->m[TRIP_BM_LOGP95].mean), &over))
        return;
    v->mean = c95->m[TRIP_BM_LOGP95].mean;
    v->anomalous =
        trip_exceed_judge_(cfg, over, (int64_t)lw->hist_total, 0.05, &v->z);
}

/* Score every adaptive statistic of this evaluation (no decisions yet). */
static void
trip_score_(const trip__adaptive *a, const trip_config *cfg, int64_t wall_ns,
            const trip__window *sw, const trip__window *lw, trip_found_ *f)
{
    const trip__baseline *b = &a->base;
    trip_quantiles_(cfg, lw, f->q, f->logq);
    f->rate_cell = trip__baseline_cell(b, wall_ns, TRIP_BM_RATE);
    double share =
        cfg->long_window_buckets > 0
            ? (double)cfg->window_buckets / (double)cfg->long_window_buckets
            : 1.0;
    trip__judge_rate(cfg, f->rate_cell, sw->calls, sw->failures + sw->timeouts,
                     share, &f->rs);
    trip__judge_rate(cfg, f->rate_cell, lw->calls, lw->failures + lw->timeouts,
                     1.0, &f->rl);
    f->lat_cell = trip__baseline_cell(b, wall_ns, TRIP_BM_LOGP99);
    double n = (double)lw->hist_total;
    double slope = trip_slope_(f->lat_cell, f->q);
    const trip__bcell *c95 = trip__baseline_cell(b, wall_ns, TRIP_BM_LOGP95);
    const trip__bcell *cq = trip__baseline_cell(b, wall_ns, b->logq_metric);
    trip__judge_latency(cfg, c95, TRIP_BM_LOGP95, f->logq[0], n, a->cq[0],
                        slope, &f->l95);
    trip__judge_latency(cfg, f->lat_cell, TRIP_BM_LOGP99, f->logq[1], n,
                        a->cq[1], slope, &f->l99);
    trip__judge_latency(cfg, cq, b->logq_metric, f->logq[2], n, a->cq[2], slope,
                        &f->lq);
    if (isnan(f->logq[0]))
        trip_exceedances_(cfg, c95, lw, &f->l95);
}

static double
trip_max_(double x, double y)
{
    if (isnan(x))
        return y;
    if (isnan(y))
        return x;
    return x > y ? x : y;
}

/* Keep the scores of a judgement; evaluations until the next one report
 * them. */
static void
trip_keep_judged_(trip__adaptive *a, const trip_found_ *f)
{
    trip_eval *ev = &a->judged;
    trip_unjudged_(ev);
    ev->baseline_ready = f->rate_cell != NULL;
    if (f->rate_cell != NULL) {
        /* z only where the normal approximation holds: low-volume windows
         * are judged (and reported) by their binomial tail */
        double zs = f->rs.low_volume ? NAN : f->rs.z;
        double zl = f->rl.low_volume ? NAN : f->rl.z;
        const trip__rate_verdict *v = !(zs > zl) ? &f->rl : &f->rs;
        ev->baseline_rate = f->rate_cell->m[TRIP_BM_RATE].mean;
        ev->baseline_rate_sd = v->sd;
        ev->z_rate = trip_max_(zs, zl);
    }
    double tail = NAN;
    if (f->rs.low_volume)
        tail = f->rs.tail;
    if (f->rl.low_volume && !(f->rl.tail >= tail))
        tail = f->rl.tail;
    ev->binomial_tail = tail;
    /* the larger z of the two, or the one that exists (p99 lacks tail
     * support in windows that still support p95) */
    const trip__lat_verdict *lv =
        f->l95.z > f->l99.z || isnan(f->l99.z) ? &f->l95 : &f->l99;
    ev->z_latency = lv->z;
    ev->baseline_log_latency_sd = lv->sd;
    ev->baseline_latency_s = exp(f->lq.mean);
}

/* Copy this evaluation's values and the last judgement's scores. */
static void
trip_fill_eval_(const trip__adaptive *a, double short_q, int judged,
                trip_eval *ev)
{
    const trip_eval *j = &a->judged;
    ev->ewma_failure_rate = trip__ewratio_value(&a->ew_rate);
    ev->ewma_latency_s = trip__ewratio_value(&a->ew_lat);
    ev->latency_q_s = short_q;
    ev->baseline_ready = j->baseline_ready;
    ev->baseline_rate = j->baseline_rate;
    ev->baseline_rate_sd = j->baseline_rate_sd;
    ev->z_rate = j->z_rate;
    ev->binomial_tail = j->binomial_tail;
    ev->z_latency = j->z_latency;
    ev->baseline_log_latency_sd = j->baseline_log_latency_sd;
    ev->baseline_latency_s = j->baseline_latency_s;
    ev->judged = judged;
}

/* Rules that judge the short window's quantile or the EWMA against fixed
 * limits; they work without a baseline. */
static int
trip_fixed_adaptive_(const trip__adaptive *a, const trip_config *cfg,
                     const trip__window *sw, double short_q, trip_reason *r)
{
    int64_t ns = (int64_t)sw->hist_total;
    /* an SLO limit the user set: judged at latency_min_samples as asked,
     * without the tail-support guard the baseline comparisons need */
    if (cfg->latency_threshold_ns > 0 &&
        ns >= (int64_t)cfg->latency_min_samples && ns > 0 &&
        short_q * 1e9 >= (double)cfg->latency_threshold_ns) {
        *r = (trip_reason){TRIP_RULE_LATENCY_PERCENTILE,
                           short_q,
                           (double)cfg->latency_threshold_ns * 1e-9,
                           NAN,
                           ns,
                           0};
        return r->rule;
    }
    double ew = trip__ewratio_value(&a->ew_rate);
    if (cfg->ewma_failure_rate > 0 && a->ew_rate.den >= cfg->min_calls &&
        a->ew_rate.den > 0 && ew >= cfg->ewma_failure_rate) {
        *r = (trip_reason){TRIP_RULE_EWMA_FAILURE_RATE,      ew,
                           cfg->ewma_failure_rate,           NAN,
                           (int64_t)llround(a->ew_rate.den), 0};
        return r->rule;
    }
    return TRIP_RULE_NONE;
}

/* The percentile rule against the baseline's value for this hour, on the
 * judged (long) window. */
static int
trip_percentile_baseline_(const trip_config *cfg, const trip__window *lw,
                          const trip_found_ *f, int *flag)
{
    *flag = 0;
    if (!cfg->adaptive || !(cfg->latency_baseline_factor > 0) ||
        isnan(f->lq.mean) || isnan(f->logq[2]) ||
        lw->hist_total < (uint64_t)cfg->latency_min_samples ||
        lw->hist_total == 0)
        return 0;
    *flag = f->q[2] >= cfg->latency_baseline_factor * exp(f->lq.mean);
    return *flag;
}

static int
trip_rate_reason_(const trip_config *cfg, const trip__rate_verdict *v,
                  int64_t calls, trip_reason *r)
{
    if (v->low_volume)
        *r = (trip_reason){
            TRIP_RULE_BINOMIAL_TAIL, v->tail, v->p_limit, v->p0, calls, 0};
    else
        *r = (trip_reason){TRIP_RULE_ANOMALY_FAILURE_RATE,
                           v->z,
                           cfg->anomaly_z,
                           v->p0,
                           calls,
                           0};
    return r->rule;
}

/* Record this judged period and judge the last anomaly_m together (the
 * rate cell's baseline for all of them); ra_elevated counts how many of
 * the latest periods in a row, this one first, are at the effect size. */
static void
trip_aggregate_(trip__adaptive *a, const trip_config *cfg,
                const trip__window *lw, trip_found_ *f)
{
    f->ra = (trip__rate_verdict){NAN, NAN, NAN, NAN, NAN, NAN, 0, 0};
    f->ra_calls = 0;
    f->ra_elevated = 0;
    uint32_t cur = a->periods_n++ % 64;
    a->pcalls[cur] = lw->calls;
    a->pfails[cur] = lw->failures + lw->timeouts;
    uint32_t m = cfg->anomaly_m < 64 ? cfg->anomaly_m : 64;
    uint32_t n = a->periods_n < m ? a->periods_n : m;
    if (f->rate_cell == NULL || n < cfg->anomaly_k || n < 2)
        return;
    double mu = f->rate_cell->m[TRIP_BM_RATE].mean;
    double p0 = mu > cfg->anomaly_rate_floor ? mu : cfg->anomaly_rate_floor;
    int64_t calls = 0, fails = 0;
    int run = 1;
    for (uint32_t j = 0; j < n; j++) {
        uint32_t k = (a->periods_n - 1 - j) % 64;
        calls += a->pcalls[k];
        fails += a->pfails[k];
        run = run && a->pfails[k] > 0 &&
              (double)a->pfails[k] >=
                  cfg->anomaly_rate_effect * p0 * (double)a->pcalls[k];
        f->ra_elevated += run;
    }
    f->ra_calls = calls;
    /* only where the normal approximation holds: on a handful of expected
     * failures the tail hangs on a learned rate of a few failures an hour,
     * and the minutes' own tails already judge such volumes (2 calls a
     * minute tripped on healthy traffic) */
    if ((double)calls * p0 < TRIP_LOWVOL_EXPECTED_)
        return;
    trip__judge_rate(cfg, f->rate_cell, calls, fails, 1.0, &f->ra);
}

/* The baseline rate and clustering the sequential test holds a period to:
 * the highest among the judged cell, the hour of day's and the global
 * one, so that a rate that follows the time of day is not taken for a
 * rise where the judged cell averages it away (AUTO chooses no
 * seasonality when per-minute noise hides the hours' differences, and
 * a mean over minutes weights a quiet night as much as a busy noon). The
 * hour of day's cell must be ready: the test waits for a day of data. */
static int
trip_seq_baseline_(const trip__adaptive *a, int64_t wall_ns,
                   const trip__bcell *judged, double *p0, double *ex)
{
    const trip__baseline *b = &a->base;
    const trip__bcell *hod = &b->hod[trip__hour_of_day(wall_ns - 1)];
    const trip__bcell *cells[3] = {judged, hod, &b->global};
    if (judged == NULL || !trip__baseline_ready(b, &hod->m[TRIP_BM_RATE]))
        return 0;
    *p0 = 0;
    *ex = 0;
    for (int i = 0; i < 3; i++) {
        const trip__ewstat *r = &cells[i]->m[TRIP_BM_RATE];
        if (!trip__baseline_ready(b, r))
            continue;
        double x = trip__rate_excess_var(cells[i]);
        *p0 = r->mean > *p0 ? r->mean : *p0;
        *ex = x > *ex ? x : *ex;
    }
    return 1;
}

/* Evidence accumulated over low-volume periods (a CUSUM of their log
 * likelihood ratios), tripping when it reaches h = log(10 / binomial_p):
 * the likelihood ratio is then 10 / binomial_p, so under the baseline the
 * chance of ever getting there is at most binomial_p / 10 per start
 * (Ville's inequality), which exp(-evidence) reports as the trip's score.
 * A period adds at most 0.4 h, so that no two periods, and no burst
 * shorter than a period, trip alone; a period above the low-volume range
 * (judged by the z-score) starts the sum again. */
static int
trip_sequential_(trip__adaptive *a, const trip_config *cfg, int64_t wall_ns,
                 const trip__window *lw, const trip_found_ *f, trip_reason *r)
{
    double p0 = NAN, ex = 0, llr = NAN;
    if (cfg->adaptive && cfg->binomial_p > 0 &&
        trip_seq_baseline_(a, wall_ns, f->rate_cell, &p0, &ex))
        llr =
            trip__rate_llr(cfg, p0, ex, lw->calls, lw->failures + lw->timeouts);
    if (isnan(llr)) {
        a->seq = 0;
        return TRIP_RULE_NONE;
    }
    double h = log(10.0 / cfg->binomial_p);
    if (llr > 0.4 * h)
        llr = 0.4 * h;
    a->seq = a->seq + llr > 0 ? a->seq + llr : 0;
    /* evidence half way to a trip: hold the learning of these minutes */
    a->dirty |= a->seq >= 0.5 * h;
    if (!(a->seq >= h) || !(llr > 0))
        return TRIP_RULE_NONE;
    *r = (trip_reason){TRIP_RULE_BINOMIAL_TAIL,
                       exp(-a->seq),
                       exp(-h),
                       p0 > cfg->anomaly_rate_floor ? p0
                                                    : cfg->anomaly_rate_floor,
                       lw->calls,
                       0};
    return r->rule;
}

/* The period index of wall_ns (floor division: times may be negative). */
static int64_t
trip_period_index_(int64_t wall_ns, int64_t period)
{
    int64_t q = wall_ns / period;
    return q - (wall_ns % period < 0);
}

/* Samples of w's histogram above the baseline's p95 and p99 for wall_ns;
 * 0 when either is not known. */
static int
trip_part_over_(const trip__adaptive *a, int64_t wall_ns, const trip__window *w,
                uint64_t over[2])
{
    static const int metric[2] = {TRIP_BM_LOGP95, TRIP_BM_LOGP99};
    for (int i = 0; i < 2; i++) {
        const trip__bcell *c =
            trip__baseline_cell(&a->base, wall_ns, metric[i]);
        if (c == NULL ||
            !trip_over_count_(w, exp(c->m[metric[i]].mean), &over[i]))
            return 0;
    }
    return 1;
}

/* Count this roll's bucket into the part of the period it ends in, and
 * close the part when the next roll falls in another (or this one is the
 * period's judgement): its latencies are the period histogram's growth
 * since the last part's end, so the bucket that crosses into a new part
 * still counts to the old one, calls and latencies alike. */
static void
trip_parts_roll_(trip__adaptive *a, const trip_config *cfg, int64_t wall_ns,
                 int64_t period, const trip__window *bucket,
                 const trip__window *lw, int judge, int closed)
{
    if (!closed || !cfg->adaptive || !cfg->anomaly_fast) {
        a->part_ok = 0;
        a->part_full[1] = 0;
        return;
    }
    trip_part_ *cur = &a->part[0][a->part_s];
    cur->calls += bucket->calls;
    cur->fails += bucket->failures + bucket->timeouts;
    int s = TRIP_PARTS_;
    if (!judge) {
        if (wall_ns < a->part_end &&
            wall_ns >= a->part_end - period / TRIP_PARTS_)
            return; /* most rolls: still in the part */
        int64_t p = trip_period_index_(wall_ns, period);
        double at = (double)(wall_ns - p * period) / (double)period;
        s = (int)(at * TRIP_PARTS_);
        s = s < 0 ? 0 : (s >= TRIP_PARTS_ ? TRIP_PARTS_ - 1 : s);
        /* the part's end: the first wall time that maps to the next */
        a->part_end = p * period + (int64_t)ceil((double)(s + 1) *
                                                 (double)period / TRIP_PARTS_);
        if (s == a->part_s)
            return;
    }
    uint64_t over[2], *snap = a->part_snap;
    if (lw->hist_total < snap[0]) /* the histogram restarted (a gap) */
        snap[0] = snap[1] = snap[2] = 0;
    if (trip_part_over_(a, wall_ns, lw, over)) {
        cur->n = lw->hist_total - snap[0];
        for (int i = 0; i < 2; i++)
            cur->over[i] = over[i] > snap[1 + i] ? over[i] - snap[1 + i] : 0;
        snap[1] = over[0];
        snap[2] = over[1];
    } else {
        cur->n = cur->over[0] = cur->over[1] = 0;
        snap[1] = snap[2] = UINT64_MAX; /* unknown: no growth counted */
    }
    snap[0] = lw->hist_total;
    if (s < TRIP_PARTS_)
        a->part_s = s;
}

/* After a judgement: its period becomes the one before, and a new one
 * begins (the period histogram restarts with it). */
static void
trip_parts_next_(trip__adaptive *a, int full)
{
    memcpy(a->part[1], a->part[0], sizeof a->part[0]);
    memset(a->part[0], 0, sizeof a->part[0]);
    a->part_full[1] = full;
    a->part_ok = 1;
    a->part_s = 0;
    a->part_end = 0;
    memset(a->part_snap, 0, sizeof a->part_snap);
}

/* Sum x[] and n[] over the last two periods' parts except the
 * TRIP_PARTS_TRIM_ whose x exceeds share q of n the most. */
static void
trip_parts_trimmed_(const double *x, const double *n, double q, double *sx,
                    double *sn)
{
    int used[2 * TRIP_PARTS_] = {0};
    for (int t = 0; t < TRIP_PARTS_TRIM_; t++) {
        int worst = -1;
        for (int i = 0; i < 2 * TRIP_PARTS_; i++)
            if (!used[i] &&
                (worst < 0 || x[i] - q * n[i] > x[worst] - q * n[worst]))
                worst = i;
        used[worst] = 1;
    }
    *sx = *sn = 0;
    for (int i = 0; i < 2 * TRIP_PARTS_; i++)
        if (!used[i]) {
            *sx += x[i];
            *sn += n[i];
        }
}

/* anomaly_fast: at the second anomalous judgement in a row of a family
 * (rate_two, lat_two), trip if the shift held through both periods: with
 * the parts that exceed the baseline most left out (a burst, however
 * strong, that straddles the periods' boundary), the rest of the two
 * periods is still anomalous by the same tests. */
static int
trip_fast_(const trip__adaptive *a, const trip_config *cfg, int64_t wall_ns,
           const trip_found_ *f, int rate_two, int lat_two, trip_reason *r)
{
    double x[2 * TRIP_PARTS_], n[2 * TRIP_PARTS_], sx, sn;
    if (!a->part_full[0] || !a->part_full[1])
        return TRIP_RULE_NONE;
    if (rate_two && f->rate_cell != NULL) {
        double mu = f->rate_cell->m[TRIP_BM_RATE].mean;
        double p0 = mu > cfg->anomaly_rate_floor ? mu : cfg->anomaly_rate_floor;
        for (int i = 0; i < 2 * TRIP_PARTS_; i++) {
            x[i] = (double)a->part[i / TRIP_PARTS_][i % TRIP_PARTS_].fails;
            n[i] = (double)a->part[i / TRIP_PARTS_][i % TRIP_PARTS_].calls;
        }
        trip_parts_trimmed_(x, n, p0, &sx, &sn);
        trip__rate_verdict v;
        trip__judge_rate(cfg, f->rate_cell, (int64_t)sn, (int64_t)sx, 1.0, &v);
        if (v.anomalous)
            return trip_rate_reason_(cfg, &v, (int64_t)sn, r);
    }
    if (!lat_two)
        return TRIP_RULE_NONE;
    static const double share[2] = {0.05, 0.01};
    static const int metric[2] = {TRIP_BM_LOGP95, TRIP_BM_LOGP99};
    for (int k = 0; k < 2; k++) {
        const trip__bcell *c =
            trip__baseline_cell(&a->base, wall_ns, metric[k]);
        if (c == NULL)
            continue;
        for (int i = 0; i < 2 * TRIP_PARTS_; i++) {
            x[i] = (double)a->part[i / TRIP_PARTS_][i % TRIP_PARTS_].over[k];
            n[i] = (double)a->part[i / TRIP_PARTS_][i % TRIP_PARTS_].n;
        }
        trip_parts_trimmed_(x, n, share[k], &sx, &sn);
        double z;
        if (trip_exceed_judge_(cfg, (uint64_t)sx, (int64_t)sn, share[k], &z)) {
            *r = (trip_reason){
                TRIP_RULE_ANOMALY_LATENCY, z,           cfg->anomaly_z,
                exp(c->m[metric[k]].mean), (int64_t)sn, 0};
            return r->rule;
        }
    }
    return TRIP_RULE_NONE;
}

/* The anomaly rules with their k-of-m memory; returns the rule or NONE. */
static int
trip_anomaly_(trip__adaptive *a, const trip_config *cfg, int64_t wall_ns,
              const trip__window *sw, const trip__window *lw,
              const trip_found_ *f, trip_reason *r)
{
    int rate_now = cfg->adaptive && (f->rs.anomalous || f->rl.anomalous);
    int lat_now = cfg->adaptive && (f->l95.anomalous || f->l99.anomalous);
    int rate_trip = trip__kofm_push(&a->rate_hist, rate_now, cfg->anomaly_k,
                                    cfg->anomaly_m);
    int lat_trip =
        trip__kofm_push(&a->lat_hist, lat_now, cfg->anomaly_k, cfg->anomaly_m);
    if (rate_trip && rate_now) {
        if (f->rs.anomalous && !(f->rl.anomalous && f->rl.z >= f->rs.z))
            return trip_rate_reason_(cfg, &f->rs, sw->calls, r);
        return trip_rate_reason_(cfg, &f->rl, lw->calls, r);
    }
    /* evidence spread over the last anomaly_m minutes, none significant
     * alone (a few extra failures a minute at a few calls a second): the
     * periods together are judged, and trip when the latest anomaly_k in a
     * row are at the effect size (a burst in one of them is not enough) */
    if (cfg->adaptive && f->ra.anomalous &&
        f->ra_elevated >= (int)cfg->anomaly_k)
        return trip_rate_reason_(cfg, &f->ra, f->ra_calls, r);
    if (lat_trip && lat_now) {
        const trip__lat_verdict *v =
            f->l99.anomalous && !(f->l95.anomalous && f->l95.z > f->l99.z)
                ? &f->l99
                : &f->l95;
        *r = (trip_reason){
            TRIP_RULE_ANOMALY_LATENCY, v->z, cfg->anomaly_z, exp(v->mean),
            (int64_t)lw->hist_total,   0};
        return r->rule;
    }
    /* the second anomalous judgement in a row (bit 1: the one before) */
    int rate_two =
        rate_now && a->rate_hist.seen >= 2 && (a->rate_hist.bits & 2);
    int lat_two = lat_now && a->lat_hist.seen >= 2 && (a->lat_hist.bits & 2);
    if (cfg->adaptive && cfg->anomaly_fast && cfg->anomaly_k > 2 &&
        (rate_two || lat_two))
        return trip_fast_(a, cfg, wall_ns, f, rate_two, lat_two, r);
    return TRIP_RULE_NONE;
}

/* Learn the oldest n pending periods, in order. */
static void
trip_learn_pending_(trip__adaptive *a, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        trip__baseline_observe(&a->base, &a->pending[i], a->pending_wall[i]);
    a->pending_n -= n;
    memmove(a->pending, a->pending + n, a->pending_n * sizeof a->pending[0]);
    memmove(a->pending_wall, a->pending_wall + n,
            a->pending_n * sizeof a->pending_wall[0]);
}

/* Queue one period's observation (o NULL: none) behind the memory of
 * trouble, then learn what need not wait any longer: everything once no
 * judgement among the last m was troubled, else all but the newest
 * max(m, TRIP_LEARN_HOLD_). A trip empties the queue instead (see
 * trip__adaptive_evaluate), so an incident's minutes, quiet or not, are
 * never learned, and every other minute is, outliers included (clipped by
 * the baseline): leaving out the minutes that merely looked anomalous
 * biased a low-volume baseline down, since at a few failures a minute the
 * minutes left out are exactly those with more failures. */
static void
trip_learn_queue_(trip__adaptive *a, const trip_config *cfg, int troubled,
                  const trip__bobs *o, int64_t wall_ns)
{
    uint32_t m = cfg->anomaly_m > 0 ? cfg->anomaly_m : 1;
    int near = trip__kofm_push(&a->trouble, troubled, 1, m);
    if (o != NULL) {
        if (a->pending_n == 64)
            trip_learn_pending_(a, 1);
        a->pending[a->pending_n] = *o;
        a->pending_wall[a->pending_n++] = wall_ns;
    }
    uint32_t hold = m > TRIP_LEARN_HOLD_ ? m : TRIP_LEARN_HOLD_;
    if (!near)
        trip_learn_pending_(a, a->pending_n);
    else if (a->pending_n > hold)
        trip_learn_pending_(a, a->pending_n - hold);
}

/* The period that just ended (the long window, judged just now) joins the
 * learning queue, unless it is the first (which may be partial) or the
 * breaker was not closed throughout it. */
static void
trip_learn_(trip__adaptive *a, const trip_config *cfg, int64_t wall_ns,
            int64_t idx, const trip__window *lw, const double *logq)
{
    int skip = a->obs_index == INT64_MIN || a->partial;
    int troubled = a->dirty;
    a->obs_index = idx;
    a->dirty = 0;
    a->partial = 0;
    trip__bobs o = {NAN, 0, {NAN, NAN, NAN}, 0};
    if (lw->calls > 0) {
        o.rate = (double)(lw->failures + lw->timeouts) / (double)lw->calls;
        o.calls = (double)lw->calls;
    }
    if (lw->hist_total >= (uint64_t)cfg->latency_min_samples &&
        lw->hist_total > 0) {
        for (int i = 0; i < 3; i++)
            o.logq[i] = logq[i];
        o.lat_samples = (double)lw->hist_total;
    }
    trip_learn_queue_(a, cfg, troubled, skip ? NULL : &o, wall_ns);
}

static void
trip_ewma_(trip__adaptive *a, const trip_config *cfg,
           const trip__window *bucket, int closed)
{
    double h = cfg->ewma_half_life_s * 1e9;
    if (!closed) {
        /* a fresh start after recovery, like the windows */
        a->ew_rate = (trip__ewratio){0, 0};
        a->ew_lat = (trip__ewratio){0, 0};
        return;
    }
    trip__ewratio_add(&a->ew_rate,
                      (double)(bucket->failures + bucket->timeouts),
                      (double)bucket->calls, bucket->span_ns, h);
    trip__ewratio_add(&a->ew_lat, bucket->latency_sum_s, (double)bucket->calls,
                      bucket->span_ns, h);
}

/* The fixed failure-rate rule's condition, so that a minute in which it
 * fired is never learned even though the engine judged it. */
static int
trip_fixed_rate_hit_(const trip_config *cfg, const trip__window *sw)
{
    return cfg->failure_rate > 0 && sw->calls >= (int64_t)cfg->min_calls &&
           sw->calls > 0 &&
           (double)(sw->failures + sw->timeouts) >=
               cfg->failure_rate * (double)sw->calls;
}

int
trip__adaptive_evaluate(trip__adaptive *a, const trip_config *cfg,
                        int64_t wall_ns, const trip__window *bucket,
                        const trip__window *shortw, const trip__window *longw,
                        int closed, trip_eval *ev, trip_reason *reason)
{
    trip_found_ f;
    trip_reason r = {0};
    int rule = TRIP_RULE_NONE, pflag = 0;
    if (a == NULL || cfg == NULL || bucket == NULL || shortw == NULL ||
        longw == NULL)
        return TRIP_RULE_NONE;
    trip_ewma_(a, cfg, bucket, closed);
    /* the anomaly rules judge each long window once, at its end: a burst
     * shorter than the window touches at most two judgements, so k >= 3
     * consecutive ones ride it out (docs/algorithms.md) */
    int64_t period = a->base.obs_period_ns > 0 ? a->base.obs_period_ns : 1;
    int64_t idx = trip_period_index_(wall_ns, period);
    int judge = idx != a->obs_index;
    double short_q = NAN;
    if (cfg->latency_threshold_ns > 0 || ev != NULL) {
        if (shortw->hist_groups != NULL)
            trip__hist_quantiles_grouped_s(shortw->hist, shortw->hist_groups,
                                           shortw->hist_total, shortw->hist_end,
                                           &cfg->latency_quantile, 1, &short_q);
        else
            trip__hist_quantiles_from_s(shortw->hist, shortw->hist_total,
                                        shortw->hist_lo, &cfg->latency_quantile,
                                        1, &short_q);
    }
    trip_parts_roll_(a, cfg, wall_ns, period, bucket, longw, judge, closed);
    if (judge) {
        /* this period's parts are whole when it was closed throughout and
         * its judgement comes one period after the one before */
        a->part_full[0] = a->part_ok && a->obs_index == idx - 1;
        trip_score_(a, cfg, wall_ns, shortw, longw, &f);
        trip_keep_judged_(a, &f);
    }
    if (ev != NULL)
        trip_fill_eval_(a, short_q, judge, ev);
    if (!closed) {
        trip__kofm_reset(&a->rate_hist);
        trip__kofm_reset(&a->lat_hist);
        trip__kofm_reset(&a->pct_hist);
        trip__kofm_reset(&a->trouble);
        a->seq = 0;
        a->pending_n = 0; /* the incident's minutes: never learned */
        a->periods_n = 0;
        a->partial = 1;
    } else {
        rule = trip_fixed_adaptive_(a, cfg, shortw, short_q, &r);
        if (judge) {
            trip_aggregate_(a, cfg, longw, &f);
            trip_reason ra = {0};
            int arule = trip_anomaly_(a, cfg, wall_ns, shortw, longw, &f, &ra);
            trip_reason rs = {0};
            int srule = trip_sequential_(a, cfg, wall_ns, longw, &f, &rs);
            if (arule == TRIP_RULE_NONE && srule != TRIP_RULE_NONE) {
                arule = srule;
                ra = rs;
            }
            if (rule == TRIP_RULE_NONE && arule != TRIP_RULE_NONE) {
                rule = arule;
                r = ra; /* a fixed rule's reason stays its own */
            }
            /* confirmed like the anomaly rules: one minute's p99 can sit
             * on a few slow calls */
            int pct = trip_percentile_baseline_(cfg, longw, &f, &pflag);
            pct = trip__kofm_push(&a->pct_hist, pct, cfg->anomaly_k,
                                  cfg->anomaly_m) &&
                  pct;
            if (pct && rule == TRIP_RULE_NONE) {
                double base = exp(f.lq.mean);
                r = (trip_reason){TRIP_RULE_LATENCY_PERCENTILE,        f.q[2],
                                  cfg->latency_baseline_factor * base, base,
                                  (int64_t)longw->hist_total,          0};
                rule = r.rule;
            }
            a->dirty |=
                pflag || f.rs.anomalous || f.rl.anomalous || f.l95.anomalous ||
                f.l99.anomalous ||
                (f.ra.anomalous && f.ra_elevated >= (int)cfg->anomaly_k);
        }
        a->dirty |= rule != TRIP_RULE_NONE || trip_fixed_rate_hit_(cfg, shortw);
    }
    if (rule != TRIP_RULE_NONE) {
        a->pending_n = 0; /* what led up to the trip */
        a->partial = 1;
    }
    if (judge) {
        trip_parts_next_(a,
                         a->part_full[0] && closed && rule == TRIP_RULE_NONE);
        trip_learn_(a, cfg, wall_ns, idx, longw, f.logq);
    }
    if (rule != TRIP_RULE_NONE && reason != NULL)
        *reason = r;
    return rule;
}

/* ---- persistence and warm start --------------------------------------- */

size_t
trip__adaptive_export_max(void)
{
    return trip__baseline_export_max();
}

size_t
trip__adaptive_export(const trip__adaptive *a, int breaker_id,
                      int64_t now_wall_ns, trip_baseline_row *rows, size_t cap)
{
    if (a == NULL)
        return 0;
    return trip__baseline_export(&a->base, breaker_id, now_wall_ns, rows, cap);
}

int
trip__adaptive_import(trip__adaptive *a, const trip_baseline_row *rows,
                      size_t n)
{
    if (a == NULL)
        return trip__fail(TRIP_EINVAL, "baseline import: state is NULL");
    return trip__baseline_import(&a->base, rows, n);
}

/* Which of the rollups' quantiles (p50, p90, p95, p99, p99.9) q is, or -1. */
static int
trip_rollup_qi_(double q)
{
    static const double qs[5] = {0.5, 0.9, 0.95, 0.99, 0.999};
    for (int i = 0; i < 5; i++)
        if (fabs(q - qs[i]) < 1e-9)
            return i;
    return -1;
}

/* The rollup's value for a quantile it stores, else NaN. */
static double
trip_rollup_q_(const trip_rollup_row *r, double q)
{
    const double v[5] = {r->p50_s, r->p90_s, r->p95_s, r->p99_s, r->p999_s};
    int i = trip_rollup_qi_(q);
    return i >= 0 ? v[i] : NAN;
}

int
trip__adaptive_logq_cold(const trip__adaptive *a)
{
    /* and the rollups keep that quantile, or reading them gives nothing */
    return a != NULL && a->base.logq_metric == TRIP_BM_LOGQ &&
           a->base.global.m[TRIP_BM_LOGQ].n == 0 &&
           trip_rollup_qi_(a->base.logq_value) >= 0;
}

int
trip__adaptive_warm_start(trip__adaptive *a, const trip_config *cfg,
                          const trip_rollup_row *rows, size_t n, int logq_only)
{
    if (a == NULL || cfg == NULL || (n > 0 && rows == NULL))
        return trip__fail(TRIP_EINVAL, "warm start: NULL argument");
    /* a minute against the long window, as trip__judge_rate wants */
    double long_ns = (double)cfg->long_window_buckets * (double)cfg->bucket_ns;
    double minute_share = long_ns > 0 ? 60.0 * TRIP_NS_PER_S_ / long_ns : 1;
    for (size_t i = 0; i < n; i++) {
        const trip_rollup_row *r = &rows[i];
        /* a minute with refused calls was not a closed, healthy minute,
         * nor were those that led up to it (as live: a trip empties the
         * learning queue) */
        if (r->rejected > 0 || r->limited > 0) {
            a->pending_n = 0;
            continue;
        }
        if (r->calls <= 0)
            continue;
        int64_t fails = r->failures + r->timeouts;
        trip__rate_verdict v;
        trip__judge_rate(
            cfg, trip__baseline_cell(&a->base, r->minute_ns + 1, TRIP_BM_RATE),
            r->calls, fails, minute_share, &v);
        /* logq_only: a NaN leaves a metric as it is (trip__baseline_observe) */
        trip__bobs o = {logq_only ? NAN : (double)fails / (double)r->calls,
                        (double)r->calls,
                        {NAN, NAN, NAN},
                        0};
        if (r->calls >= (int64_t)cfg->latency_min_samples) {
            uint64_t n_ = (uint64_t)r->calls;
            double q = cfg->latency_quantile;
            if (!logq_only) {
                o.logq[0] =
                    trip_supported_(0.95, n_) ? trip_log_(r->p95_s) : NAN;
                o.logq[1] =
                    trip_supported_(0.99, n_) ? trip_log_(r->p99_s) : NAN;
            }
            o.logq[2] =
                trip_supported_(q, n_) ? trip_log_(trip_rollup_q_(r, q)) : NAN;
            o.lat_samples = (double)r->calls;
        }
        trip_learn_queue_(a, cfg, v.anomalous, &o,
                          r->minute_ns + 60 * TRIP_NS_PER_S_);
    }
    return TRIP_OK;
}
