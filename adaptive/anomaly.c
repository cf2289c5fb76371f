/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The anomaly verdicts: z-scores with sampling variance, effect sizes, the
 * low-volume binomial tail and the k-of-m memory. */
#include <math.h>

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_randist.h>

#include "adaptive_internal.h"

int
trip__kofm_push(trip__kofm *h, int yes, uint32_t k, uint32_t m)
{
    h->bits = (h->bits << 1) | (yes ? 1u : 0u);
    if (h->seen < 64)
        h->seen++;
    if (m == 0 || k == 0)
        return 0;
    uint64_t mask = m >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << m) - 1);
    return (uint32_t)__builtin_popcountll(h->bits & mask) >= k;
}

void
trip__kofm_reset(trip__kofm *h)
{
    h->bits = 0;
    h->seen = 0;
}

double
trip__zscore(double x, double mean, double sd, double floor)
{
    if (isnan(x) || isnan(mean) || isnan(sd))
        return NAN;
    double s = sd > floor ? sd : floor;
    if (!(s > 0))
        return x > mean ? INFINITY : (x < mean ? -INFINITY : 0.0);
    return (x - mean) / s;
}

double
trip__quantile_cq(double q)
{
    if (!(q > 0 && q < 1))
        return NAN;
    double z = gsl_cdf_ugaussian_Pinv(q);
    double d = gsl_ran_ugaussian_pdf(z);
    return q * (1 - q) / (d * d);
}

/* Between-window variance of the rate beyond binomial sampling noise: the
 * mean excess of windows with enough expected failures to measure it, else
 * the learned variance minus mean(p(1-p)/calls) of its observations (which
 * windows of very different volume make unreliable: see baseline.c). */
double
trip__rate_excess_var(const trip__bcell *c)
{
    const trip__ewstat *x = &c->m[TRIP_BM_RATE_EX];
    if (x->n >= 2)
        return x->mean > 0 ? x->mean : 0;
    const trip__ewstat *r = &c->m[TRIP_BM_RATE];
    double mu = r->mean < 0 ? 0 : (r->mean > 1 ? 1 : r->mean);
    double samp = mu * (1 - mu) * c->m[TRIP_BM_INVN_RATE].mean;
    double ex = trip__ewstat_var(r) - samp;
    return ex > 0 ? ex : 0;
}

/*
 * The larger of two tails: the beta-binomial with the fixed slack phi, and
 * the binomial mixed over a lognormal rate with the learned clustering ex
 * (heavier-tailed than a Beta of the same variance, as clustered failures
 * are). The mixture can only matter when the first is already within the
 * limit, so it is computed only then, and only as far as the verdict
 * needs: the score reported is then exact near the limit, a bound far
 * from it.
 */
static double
trip_rate_tail_(int64_t failures, int64_t calls, double p0, double phi,
                double ex, double limit)
{
    double t = trip__binomial_tail(failures, calls, p0, phi);
    if (!(t <= limit) || !(ex > 0))
        return t;
    double m = trip__lognormal_binomial_tail_lim(failures, calls, p0,
                                                 log1p(ex / (p0 * p0)), limit);
    return isnan(m) || m > t ? m : t;
}

double
trip__rate_llr(const trip_config *cfg, double p0, double ex, int64_t calls,
               int64_t failures)
{
    if (calls < 0 || failures < 0 || failures > calls)
        return NAN;
    if (p0 < cfg->anomaly_rate_floor)
        p0 = cfg->anomaly_rate_floor;
    double p1 = 2.0 * cfg->anomaly_rate_effect * p0;
    double n = (double)calls, f = (double)failures;
    if (!(p0 > 0 && p0 < 1) || !(n * p0 < TRIP_SEQ_MAX_EXPECTED_))
        return NAN;
    if (p1 > 0.999)
        p1 = 0.999;
    if (!(p1 > p0))
        return NAN;
    if (calls == 0)
        return 0.0;
    /* a period's count varies by n p0 (1 - p0) + n^2 ex: its inflation
     * over the binomial's, when the learned clustering says more than the
     * configured slack */
    double phi = cfg->binomial_overdispersion;
    double infl = 1.0 + n * (ex > 0 ? ex : 0) / (p0 * (1 - p0));
    if (infl > phi)
        phi = infl;
    if (!(phi >= 1))
        phi = 1;
    return (f * log(p1 / p0) + (n - f) * (log1p(-p1) - log1p(-p0))) / phi;
}

void
trip__judge_rate(const trip_config *cfg, const trip__bcell *c, int64_t calls,
                 int64_t failures, double span_share, trip__rate_verdict *v)
{
    *v = (trip__rate_verdict){NAN, NAN, NAN, NAN, NAN, NAN, 0, 0};
    v->p_limit = cfg->binomial_p * (span_share < 1 ? span_share : 1);
    if (calls <= 0)
        return;
    v->rate = (double)failures / (double)calls;
    if (c == NULL)
        return;
    double mu = c->m[TRIP_BM_RATE].mean;
    double p0 = mu > cfg->anomaly_rate_floor ? mu : cfg->anomaly_rate_floor;
    if (p0 > 1)
        p0 = 1;
    double phi = cfg->binomial_overdispersion;
    double n = (double)calls;
    double ex = trip__rate_excess_var(c);
    v->p0 = p0;
    v->sd = sqrt(ex + phi * p0 * (1 - p0) / n);
    v->z = trip__zscore(v->rate, p0, v->sd, cfg->anomaly_sigma_floor);
    if (v->sd < cfg->anomaly_sigma_floor)
        v->sd = cfg->anomaly_sigma_floor;
    int effect = v->rate >= cfg->anomaly_rate_effect * p0 && failures > 0;
    if (n * p0 < TRIP_LOWVOL_EXPECTED_) {
        v->low_volume = 1;
        v->tail = trip_rate_tail_(failures, calls, p0, phi, ex, v->p_limit);
        v->anomalous = v->p_limit > 0 && effect && v->tail <= v->p_limit;
    } else {
        v->anomalous = calls >= (int64_t)cfg->min_calls && effect &&
                       v->z >= cfg->anomaly_z;
    }
}

void
trip__judge_latency(const trip_config *cfg, const trip__bcell *c, int metric,
                    double logq, double samples, double cq, double slope,
                    trip__lat_verdict *v)
{
    *v = (trip__lat_verdict){logq, NAN, NAN, NAN, 0};
    if (c == NULL || !isfinite(logq) || !(samples > 0))
        return;
    const trip__ewstat *s = &c->m[metric];
    double unit = isfinite(cq) && isfinite(slope) ? cq * slope * slope : 0;
    double excess =
        trip__ewstat_var(s) - unit * c->m[trip__invn_metric(metric)].mean;
    if (!(excess > 0))
        excess = 0;
    double floor = cfg->anomaly_sigma_floor > TRIP_LOG_SIGMA_FLOOR_
                       ? cfg->anomaly_sigma_floor
                       : TRIP_LOG_SIGMA_FLOOR_;
    v->mean = s->mean;
    v->sd = sqrt(excess + unit / samples);
    v->z = trip__zscore(logq, s->mean, v->sd, floor);
    if (v->sd < floor)
        v->sd = floor;
    v->anomalous = samples >= (double)cfg->latency_min_samples &&
                   v->z >= cfg->anomaly_z &&
                   logq - s->mean >= log(cfg->anomaly_latency_effect);
}
