/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Exponentially weighted statistics with a half-life in time, not in calls. */
#include <math.h>

#include "adaptive_internal.h"

double
trip__decay(int64_t dt_ns, double half_life_ns)
{
    if (dt_ns <= 0)
        return 1.0;
    if (!(half_life_ns > 0))
        return 0.0;
    return exp2(-(double)dt_ns / half_life_ns);
}

void
trip__ewstat_add(trip__ewstat *s, double x, int64_t t_ns, double half_life_ns)
{
    if (!isfinite(x))
        return;
    double alpha = s->n > 0 ? trip__decay(t_ns - s->t_ns, half_life_ns) : 0;
    s->w = alpha * s->w + 1.0;
    s->w2 = alpha * alpha * s->w2 + 1.0;
    /* West / Finch incremental update with weight 1 against s->w. */
    double a = 1.0 / s->w;
    double d = x - s->mean;
    double incr = a * d;
    s->mean += incr;
    s->var = (1.0 - a) * (s->var + d * incr);
    s->n++;
    if (t_ns > s->t_ns || s->n == 1)
        s->t_ns = t_ns;
}

double
trip__ewstat_neff(const trip__ewstat *s)
{
    return s->w2 > 0 ? s->w * s->w / s->w2 : 0.0;
}

double
trip__ewstat_var(const trip__ewstat *s)
{
    double neff = trip__ewstat_neff(s);
    if (s->n < 2 || neff <= 1.0 + 1e-12)
        return 0.0;
    /* the weighted population variance underestimates by (neff-1)/neff */
    return s->var * neff / (neff - 1.0);
}

void
trip__ewratio_add(trip__ewratio *r, double num, double den, int64_t dt_ns,
                  double half_life_ns)
{
    double alpha = trip__decay(dt_ns, half_life_ns);
    r->num = alpha * r->num + num;
    r->den = alpha * r->den + den;
}

double
trip__ewratio_value(const trip__ewratio *r)
{
    return r->den > 0 ? r->num / r->den : NAN;
}
