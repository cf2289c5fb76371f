/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Building blocks shared by the adaptive detectors: weighted statistics,
 * the seasonal baseline, the k-of-m memory and the binomial tail. */
#ifndef TRIPSENSE_ADAPTIVE_INTERNAL_H
#define TRIPSENSE_ADAPTIVE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "tripsense/tripsense.h"

#define TRIP_NS_PER_S_ 1000000000LL
#define TRIP_HOUR_NS_ (3600LL * TRIP_NS_PER_S_)
#define TRIP_DAY_NS_ (24LL * TRIP_HOUR_NS_)
#define TRIP_WEEK_NS_ (7LL * TRIP_DAY_NS_)

/* ---- ewma.c: exponentially weighted statistics with a half-life in time */

/*
 * Exponentially weighted mean and variance of observations arriving at
 * irregular times. Between two observations dt apart every old weight is
 * multiplied by 2^(-dt / half_life); a new observation has weight 1.
 */
typedef struct trip__ewstat {
    double mean;
    double var;   /* weighted (population) variance, see trip__ewstat_var */
    double w;     /* sum of the decayed weights */
    double w2;    /* sum of their squares (for the effective sample size) */
    int64_t n;    /* observations ever taken (not decayed) */
    int64_t t_ns; /* time of the last observation */
} trip__ewstat;

/* Decay factor 2^(-dt/half_life); 1 for dt <= 0, 0 for a zero half-life. */
double trip__decay(int64_t dt_ns, double half_life_ns);

/* Take observation x at time t_ns (half_life_ns > 0). */
void trip__ewstat_add(trip__ewstat *s, double x, int64_t t_ns,
                      double half_life_ns);

/* Unbiased (reliability-weighted) variance; 0 with fewer than 2 samples. */
double trip__ewstat_var(const trip__ewstat *s);

/* Effective number of observations w^2 / w2. */
double trip__ewstat_neff(const trip__ewstat *s);

/*
 * Time-decayed ratio of sums (failures / calls, latency / calls): both sums
 * decay by the same factor, so an idle period leaves the ratio unchanged
 * and the next calls count in proportion to how long the gap was.
 */
typedef struct trip__ewratio {
    double num, den;
} trip__ewratio;

void trip__ewratio_add(trip__ewratio *r, double num, double den, int64_t dt_ns,
                       double half_life_ns);
double trip__ewratio_value(const trip__ewratio *r); /* NaN when den == 0 */

/* ---- baseline.c: the seasonal baseline ------------------------------- */

enum {
    TRIP_BM_RATE = 0, /* failure rate of an observation window */
    TRIP_BM_LOGP95 = 1,
    TRIP_BM_LOGP99 = 2,
    TRIP_BM_INVN_RATE = 3, /* 1/calls behind each rate observation */
    TRIP_BM_INVN_LAT = 4,  /* 1/samples behind each log p95 observation */
    TRIP_BM_LOGQ = 5,      /* log of cfg->latency_quantile if not p95/p99 */
    TRIP_BM_INVN_P99 = 6,  /* 1/samples behind each log p99 observation */
    TRIP_BM_INVN_Q = 7,    /* 1/samples behind each TRIP_BM_LOGQ one */
    TRIP_BM_RATE_EX = 8,   /* (rate - mean)^2 - mean(1-mean)/calls */
    TRIP_BM_COUNT_ = 9
};

/* Rate observations with fewer expected failures than this do not feed
 * TRIP_BM_RATE_EX: their sampling noise would drown the between-window
 * variance it estimates (a night window of 12 calls is 0 or 8%). */
#define TRIP_EX_MIN_EXPECTED_ 1.0

/* The 1/samples statistic that goes with a log quantile metric: each
 * quantile is learned from the windows that support it (p99 needs five
 * times the samples p95 does), so each has its own mean sampling
 * variance. */
static inline int
trip__invn_metric(int logq_metric)
{
    return logq_metric == TRIP_BM_LOGP99
               ? TRIP_BM_INVN_P99
               : (logq_metric == TRIP_BM_LOGQ ? TRIP_BM_INVN_Q
                                              : TRIP_BM_INVN_LAT);
}

#define TRIP_HOW_ 168
#define TRIP_HOD_ 24

/* One bucket of the baseline: a weighted statistic per metric. */
typedef struct trip__bcell {
    trip__ewstat m[TRIP_BM_COUNT_];
} trip__bcell;

/* One observation of the baseline (NaN for what is not available). */
typedef struct trip__bobs {
    double rate, calls; /* failure rate and the calls behind it */
    double logq[3];     /* log p95, log p99, log configured q */
    double lat_samples; /* latency samples behind logq */
} trip__bobs;

/* The baseline: global, hour of day and hour of week, all learned at once
 * so that the AUTO choice can be made (and changed) from the data. */
typedef struct trip__baseline {
    trip__bcell global;
    trip__bcell hod[TRIP_HOD_];
    trip__bcell how[TRIP_HOW_];
    int mode;       /* trip_seasonality in force (never AUTO) */
    int configured; /* cfg->seasonality */
    double half_life_ns;
    uint32_t min_samples;
    int logq_metric;        /* TRIP_BM_LOGP95, _LOGP99 or _LOGQ */
    double logq_value;      /* the quantile the TRIP_BM_LOGQ cells hold */
    int64_t obs_period_ns;  /* time between observations */
    int64_t last_auto_hour; /* when AUTO was last decided */
    double auto_eta2;       /* last AUTO statistic (largest eta^2) */
} trip__baseline;

/* Hour of week (Monday 00:00 UTC = 0) and hour of day of a wall time. */
int trip__hour_of_week(int64_t wall_ns);
int trip__hour_of_day(int64_t wall_ns);

void trip__baseline_init(trip__baseline *b, const trip_config *cfg);
/* Apply a new config; keeps learned cells. */
void trip__baseline_configure(trip__baseline *b, const trip_config *cfg);
/* Learn one observation made at wall_ns. */
void trip__baseline_observe(trip__baseline *b, const trip__bobs *o,
                            int64_t wall_ns);
/* Learn a single value of one metric (the standalone detector). */
void trip__baseline_observe_value(trip__baseline *b, int metric, double x,
                                  double clip_floor, int64_t wall_ns);
/* The cell that judges wall_ns for metric (seasonal if ready, else the
 * global one), or NULL when neither has min_samples observations. */
const trip__ewstat *trip__baseline_lookup(const trip__baseline *b,
                                          int64_t wall_ns, int metric);
/* Same cell's sibling metric (same bucket as trip__baseline_lookup). */
const trip__bcell *trip__baseline_cell(const trip__baseline *b, int64_t wall_ns,
                                       int metric);
/* Whether a cell's metric has the baseline_min_samples it needs. */
int trip__baseline_ready(const trip__baseline *b, const trip__ewstat *s);
/* Re-run the AUTO seasonality test (cheap: O(168)). */
void trip__baseline_auto(trip__baseline *b);

size_t trip__baseline_export(const trip__baseline *b, int breaker_id,
                             int64_t now_ns, trip_baseline_row *rows,
                             size_t cap);
int trip__baseline_import(trip__baseline *b, const trip_baseline_row *rows,
                          size_t n);
size_t trip__baseline_export_max(void);

/* ---- anomaly.c: z-scores, effect sizes and the k-of-m memory ---------- */

/* The last up to 64 yes/no judgements, newest in bit 0. */
typedef struct trip__kofm {
    uint64_t bits;
    uint32_t seen;
} trip__kofm;

/* Push one judgement; return 1 when k of the last m are yes. */
int trip__kofm_push(trip__kofm *h, int yes, uint32_t k, uint32_t m);
void trip__kofm_reset(trip__kofm *h);

/* z-score (x - mean) / max(sd, floor); NaN if any input is NaN. */
double trip__zscore(double x, double mean, double sd, double floor);

/* Expected failures below which a window is judged by the binomial tail
 * instead of the z-score (the normal approximation is poor there). */
#define TRIP_LOWVOL_EXPECTED_ 10.0
/* A tail quantile q is judged (and learned) only from windows with at
 * least this many samples at or beyond it, n >= TRIP_TAIL_SUPPORT_/(1-q):
 * below that, p99 is the maximum of a handful of calls and one outlier
 * would trip the latency rules. */
#define TRIP_TAIL_SUPPORT_ 3.0
/* Floor on the sd of a log latency quantile (about 5% relative). */
#define TRIP_LOG_SIGMA_FLOOR_ 0.05

/* The verdict on one window's failure rate against a baseline cell. */
typedef struct trip__rate_verdict {
    double rate;    /* failures / calls */
    double p0;      /* baseline rate, floored at anomaly_rate_floor */
    double sd;      /* sd of the window's rate under the baseline */
    double z;       /* (rate - p0) / sd */
    double tail;    /* P(X >= failures), NaN above low volume */
    double p_limit; /* the tail limit this window is judged by */
    int low_volume; /* judged by the tail rather than z */
    int anomalous;  /* significance AND effect size (k-of-m input) */
} trip__rate_verdict;

/*
 * span_share: the window's span over the long window's (1 for the long
 * window and for minute rollups). A low-volume window is judged at tail
 * probability binomial_p x span_share, so that short and long windows get
 * the same false-alarm rate per unit of time: a 10 s window is one of six
 * times as many independent tests as a 60 s one.
 */
void trip__judge_rate(const trip_config *cfg, const trip__bcell *c,
                      int64_t calls, int64_t failures, double span_share,
                      trip__rate_verdict *v);

/*
 * Sequential evidence against a baseline rate p0, for periods with few
 * expected failures (n p0 < TRIP_SEQ_MAX_EXPECTED_), where one period's
 * tail cannot reach binomial_p but a run of periods can: the binomial log
 * likelihood ratio of the period's failures under p1 = 2 x
 * anomaly_rate_effect x p0 against p0, divided by the overdispersion
 * (binomial_overdispersion, or that of the learned between-period
 * variance ex when larger: a quasi-likelihood). NaN above that volume or
 * without a usable p0; 0 for a period without calls.
 */
#define TRIP_SEQ_MAX_EXPECTED_ 3.0
double trip__rate_llr(const trip_config *cfg, double p0, double ex,
                      int64_t calls, int64_t failures);

/* Between-period variance of a cell's rate beyond binomial noise. */
double trip__rate_excess_var(const trip__bcell *c);

/* The verdict on one window's log latency quantile. */
typedef struct trip__lat_verdict {
    double logq; /* observed log quantile (log seconds) */
    double mean; /* baseline mean log quantile */
    double sd;   /* sd of the window's log quantile under the baseline */
    double z;
    int anomalous;
} trip__lat_verdict;

/*
 * cq: sampling-variance constant q(1-q)/phi(z_q)^2 of the quantile; slope:
 * d log Q / dz near the tail (log-scale spread); samples: latencies in the
 * window. c may be NULL (no verdict, NaN z).
 */
void trip__judge_latency(const trip_config *cfg, const trip__bcell *c,
                         int metric, double logq, double samples, double cq,
                         double slope, trip__lat_verdict *v);

/* q(1-q)/phi(z_q)^2: n x the variance of an empirical q-quantile's log,
 * per unit of squared log-scale slope. */
double trip__quantile_cq(double q);

/* ---- binomial.c: low-volume tail probabilities (GSL) ------------------ */

/* Turn GSL's aborting error handler off, once per process. */
void trip__gsl_init(void);

/*
 * P(X >= k) for X ~ n trials at rate p, with overdispersion phi >= 1 as a
 * beta-binomial (docs/algorithms.md): the variance is inflated by phi, and
 * at most by 1 + (phi - 1) x (expected failures) when that is smaller.
 * phi == 1 is the plain binomial. NaN on a numerical failure.
 */
double trip__binomial_tail(int64_t k, int64_t n, double p, double phi);

/*
 * P(X >= k) for n trials whose rate is p x M, M lognormal with mean 1 and
 * log-variance s2 (the binomial-lognormal mixture of clustered failures),
 * by a midpoint rule over the normal density (step 0.025, stopping once
 * the terms are nil: a few hundred GSL calls at most). s2 = 0 is the
 * binomial. NaN on bad input or a numerical failure.
 */
double trip__lognormal_binomial_tail(int64_t k, int64_t n, double p, double s2);

/*
 * The same, for a decision against limit > 0: the result is <= limit
 * exactly when the tail is, but is only a bound when it is far from the
 * limit (an upper bound below it from one GSL call, or a partial sum
 * above it), so a clear verdict costs a few GSL calls, not hundreds.
 */
double trip__lognormal_binomial_tail_lim(int64_t k, int64_t n, double p,
                                         double s2, double limit);

#endif /* TRIPSENSE_ADAPTIVE_INTERNAL_H */
