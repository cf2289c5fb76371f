/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Upper tail of the binomial and of the overdispersed beta-binomial (GSL). */
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

/* Prior size M = a + b of the rate's Beta(a, b), whose variance is
 * p(1-p)/(M+1): variance inflation phi at n calls, but never a rate spread
 * wider than CV^2 = phi - 1; and at least the learned between-window
 * variance ex of the rate, when there is one. */
static double
trip_bb_size_(int64_t n, double p, double phi, double ex)
{
    double m = INFINITY;
    if (phi > 1.0) {
        double m_match = ((double)n - 1.0) / (phi - 1.0) - 1.0;
        double m_min = (1.0 - p) / (p * (phi - 1.0)) - 1.0;
        m = m_match > m_min ? m_match : m_min;
    }
    if (ex > 0) {
        double m_ex = p * (1.0 - p) / ex - 1.0;
        if (m_ex < m)
            m = m_ex;
    }
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
trip_bb_tail_(int64_t k0, int64_t n, double p, double phi, double ex)
{
    double m = trip_bb_size_(n, p, phi, ex);
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
    return trip__binomial_tail_ex(k, n, p, phi, 0.0);
}

double
trip__binomial_tail_ex(int64_t k, int64_t n, double p, double phi, double ex)
{
    if (n < 0 || !(p >= 0 && p <= 1) || !(phi >= 1) || !(ex >= 0) ||
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
    if (phi <= 1.0 && !(ex > 0)) {
        double q = gsl_cdf_binomial_Q((unsigned)(k - 1), p, (unsigned)n);
        return isfinite(q) ? q : NAN;
    }
    return trip_bb_tail_(k, n, p, phi, ex);
}
