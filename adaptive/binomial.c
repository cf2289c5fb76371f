/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Upper tails of the binomial, of the overdispersed beta-binomial and of the
 * lognormal-mixed binomial (GSL). */
#include <math.h>
#include <pthread.h>

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_sf_gamma.h>

#include "adaptive_internal.h"

/* Past this many terms the series is abandoned (NaN): never reached for
 * the low-volume windows the anomaly rule hands over. */
#define TRIP_BB_MAX_TERMS_ 100000

static pthread_once_t trip_gsl_once_ = PTHREAD_ONCE_INIT;

static void
trip_gsl_off_(void)
{
    /* GSL's default handler calls abort(): a library must never do that
     * to its host. Every GSL call here checks its status instead. */
    gsl_set_error_handler_off();
}

void
trip__gsl_init(void)
{
    pthread_once(&trip_gsl_once_, trip_gsl_off_);
}

/* Prior size M = a + b of the rate's Beta(a, b): variance inflation phi at
 * n calls, but never a rate spread wider than CV^2 = phi - 1. */
static double
trip_bb_size_(int64_t n, double p, double phi)
{
    double m_match = ((double)n - 1.0) / (phi - 1.0) - 1.0;
    double m_min = (1.0 - p) / (p * (phi - 1.0)) - 1.0;
    double m = m_match > m_min ? m_match : m_min;
    return m > 1e-3 ? m : 1e-3;
}

/* log P(X = k) of the beta-binomial(n, a, b); NaN on a GSL error. */
static double
trip_bb_logpmf_(int64_t k, int64_t n, double a, double b)
{
    gsl_sf_result c, num, den;
    if (gsl_sf_lnchoose_e((unsigned)n, (unsigned)k, &c) != GSL_SUCCESS ||
        gsl_sf_lnbeta_e((double)k + a, (double)(n - k) + b, &num) !=
            GSL_SUCCESS ||
        gsl_sf_lnbeta_e(a, b, &den) != GSL_SUCCESS)
        return NAN;
    return c.val + num.val - den.val;
}

/* P(X = k+1) / P(X = k) */
static double
trip_bb_ratio_(int64_t k, int64_t n, double a, double b)
{
    return ((double)(n - k) / (double)(k + 1)) *
           (((double)k + a) / ((double)(n - k - 1) + b));
}

static double
trip_bb_tail_(int64_t k0, int64_t n, double p, double phi)
{
    double m = trip_bb_size_(n, p, phi);
    double a = p * m, b = (1.0 - p) * m;
    double sum = 0;
    if ((double)k0 > (double)n * p) {
        /* above the mean: terms fall quickly, sum them upward */
        double t = exp(trip_bb_logpmf_(k0, n, a, b));
        for (int64_t k = k0; k <= n && isfinite(t); k++) {
            sum += t;
            if (k - k0 > TRIP_BB_MAX_TERMS_)
                return NAN;
            double r = trip_bb_ratio_(k, n, a, b);
            if (t < sum * 1e-17 && r < 1)
                break;
            t *= r;
        }
        return isfinite(sum) ? (sum < 1 ? sum : 1) : NAN;
    }
    /* at or below the mean: one minus the (short) lower sum */
    if (k0 > TRIP_BB_MAX_TERMS_)
        return NAN;
    double t = exp(trip_bb_logpmf_(0, n, a, b));
    for (int64_t k = 0; k < k0 && isfinite(t); k++) {
        sum += t;
        t *= trip_bb_ratio_(k, n, a, b);
    }
    if (!isfinite(sum))
        return NAN;
    return sum < 1 ? 1 - sum : 0;
}

double
trip__binomial_tail(int64_t k, int64_t n, double p, double phi)
{
    if (n < 0 || !(p >= 0 && p <= 1) || !(phi >= 1) ||
        n > (int64_t)UINT32_MAX / 2)
        return NAN;
    if (k <= 0)
        return 1.0;
    if (k > n)
        return 0.0;
    if (p <= 0)
        return 0.0;
    if (p >= 1)
        return 1.0;
    trip__gsl_init();
    if (phi <= 1.0) {
        double q = gsl_cdf_binomial_Q((unsigned)(k - 1), p, (unsigned)n);
        return isfinite(q) ? q : NAN;
    }
    return trip_bb_tail_(k, n, p, phi);
}

/* Step in z of the mixture integral, and its range: the binomial tail
 * is a step in z for large n, which Gauss-Hermite rules integrate badly. */
#define TRIP_LN_H_ 0.025
#define TRIP_LN_ZMAX_ 8.5
#define TRIP_INV_SQRT_2PI_ 0.3989422804014327

double
trip__lognormal_binomial_tail(int64_t k, int64_t n, double p, double s2)
{
    return trip__lognormal_binomial_tail_lim(k, n, p, s2, 0.0);
}

/* Upper bound P(Z >= z*) + P(X >= k | rate p R(z*)), z* where the first is
 * limit/2: one GSL call, enough to settle a clearly anomalous window. */
static double
trip_ln_upper_(int64_t k, int64_t n, double p, double s, double limit)
{
    double z = gsl_cdf_ugaussian_Qinv(limit / 2);
    double pm = p * exp(s * z - s * s / 2);
    if (!isfinite(z) || pm >= 1)
        return 1.0;
    double q = gsl_cdf_binomial_Q((unsigned)(k - 1), pm, (unsigned)n);
    return isfinite(q) ? limit / 2 + q : 1.0;
}

/* Lower bound P(Z >= z) P(X >= k | rate p R(z)) at a few z whose normal
 * tail is above the limit: settles a clearly normal window in a few calls. */
static double
trip_ln_lower_(int64_t k, int64_t n, double p, double s, double limit)
{
    static const double mult[3] = {100.0, 10.0, 2.0};
    double best = 0;
    for (int i = 0; i < 3; i++) {
        double tz = limit * mult[i];
        if (tz >= 0.5)
            continue;
        double z = gsl_cdf_ugaussian_Qinv(tz);
        double pm = p * exp(s * z - s * s / 2);
        double q = pm >= 1
                       ? 1.0
                       : gsl_cdf_binomial_Q((unsigned)(k - 1), pm, (unsigned)n);
        if (isfinite(q) && tz * q > best)
            best = tz * q;
    }
    return best;
}

double
trip__lognormal_binomial_tail_lim(int64_t k, int64_t n, double p, double s2,
                                  double limit)
{
    if (n < 0 || !(p >= 0 && p <= 1) || !(s2 >= 0) || !isfinite(s2) ||
        n > (int64_t)UINT32_MAX / 2)
        return NAN;
    if (k <= 0)
        return 1.0;
    if (k > n || p <= 0)
        return 0.0;
    trip__gsl_init();
    if (s2 == 0) {
        double q = gsl_cdf_binomial_Q((unsigned)(k - 1), p, (unsigned)n);
        return isfinite(q) ? q : NAN;
    }
    double s = sqrt(s2), sum = 0;
    double ztop = TRIP_LN_ZMAX_;
    if (limit > 0) {
        double b = trip_ln_lower_(k, n, p, s, limit);
        if (b > limit)
            return b;
        b = trip_ln_upper_(k, n, p, s, limit);
        if (b <= limit)
            return b;
        /* the mass above ztop, limit/1e4, is counted in full (as if every
         * call there failed): the result stays an upper bound */
        double zt = gsl_cdf_ugaussian_Qinv(limit * 1e-4);
        if (isfinite(zt) && zt < ztop) {
            ztop = zt;
            sum = limit * 1e-4;
        }
    }
    /* midpoint rule from the top: the binomial tail falls with z and so
     * does the density below 0, so the sum stops once terms are nil, or
     * once it is past the limit (the partial sums only grow) */
    for (int i = 0; i < (int)((ztop + TRIP_LN_ZMAX_) / TRIP_LN_H_); i++) {
        double z = ztop - (i + 0.5) * TRIP_LN_H_;
        double pm = p * exp(s * z - s2 / 2);
        double q = pm >= 1
                       ? 1.0
                       : gsl_cdf_binomial_Q((unsigned)(k - 1), pm, (unsigned)n);
        if (!isfinite(q))
            return NAN;
        double c = q * exp(-z * z / 2) * TRIP_INV_SQRT_2PI_ * TRIP_LN_H_;
        sum += c;
        if ((z < 0 && c <= 1e-9 * sum) || (limit > 0 && sum > limit))
            break;
    }
    return sum < 1 ? sum : 1;
}
