/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The standalone detector: any (time, value) series scored against its own
 * seasonal baseline with the anomaly rule's baseline and k-of-m code. */
#include <math.h>
#include <string.h>

#include "adaptive_internal.h"
#include "internal.h"

void
trip_detect_opts_init(trip_detect_opts *o)
{
    if (o == NULL)
        return;
    memset(o, 0, sizeof *o);
    o->seasonality = TRIP_SEASON_AUTO;
    o->half_life_h = 168.0;
    o->min_samples = 30;
    o->z = 6.0;
    o->k = 3;
    o->m = 5;
    o->sigma_floor = 0.01;
    o->effect = 0.0;
    o->log_transform = 0;
}

static int
trip_detect_check_opts_(const trip_detect_opts *o)
{
    if (o->seasonality < TRIP_SEASON_AUTO ||
        o->seasonality > TRIP_SEASON_HOUR_OF_WEEK)
        return trip__fail(TRIP_EINVAL,
                          "detect: seasonality must be 0 auto, "
                          "1 none, 2 hour of day or 3 hour of week, got %d",
                          o->seasonality);
    if (!(o->half_life_h >= 0.01 && o->half_life_h <= 8760))
        return trip__fail(TRIP_EINVAL,
                          "detect: half_life_h must be in "
                          "[0.01, 8760] hours, got %g",
                          o->half_life_h);
    if (!(o->z > 0 && isfinite(o->z)))
        return trip__fail(TRIP_EINVAL, "detect: z must be > 0, got %g", o->z);
    /* a spread needs two points: with one, a sigma_floor of 0 made the
     * next point's score infinite */
    if (o->min_samples < 2)
        return trip__fail(TRIP_EINVAL,
                          "detect: min_samples must be >= 2 (a spread "
                          "needs two points), got %u",
                          o->min_samples);
    if (o->m < 1 || o->m > 64 || o->k < 1 || o->k > o->m)
        return trip__fail(TRIP_EINVAL,
                          "detect: need 1 <= k <= m <= 64, got "
                          "k %u, m %u",
                          o->k, o->m);
    if (!(o->sigma_floor >= 0 && isfinite(o->sigma_floor)))
        return trip__fail(TRIP_EINVAL,
                          "detect: sigma_floor must be >= 0, "
                          "got %g",
                          o->sigma_floor);
    if (!(o->effect >= 0 && isfinite(o->effect)))
        return trip__fail(TRIP_EINVAL,
                          "detect: effect must be >= 0 (0 off), "
                          "got %g",
                          o->effect);
    if (o->log_transform != 0 && o->log_transform != 1)
        return trip__fail(TRIP_EINVAL,
                          "detect: log_transform must be 0 or "
                          "1, got %d",
                          o->log_transform);
    return TRIP_OK;
}

static int
trip_detect_check_data_(const trip_detect_opts *o, const int64_t *t,
                        const double *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        /* as replay: before 1970 is a bug in the caller, and spans between
         * times of opposite signs overflow the decay arithmetic */
        if (t[i] < 0)
            return trip__fail(TRIP_EINVAL,
                              "detect: time %zu (%lld) is "
                              "negative",
                              i, (long long)t[i]);
        if (t[i] > TRIP__TIME_MAX_NS)
            return trip__fail(TRIP_EINVAL,
                              "detect: time %zu (%lld) is past 2^62 ns "
                              "(the year 2116)",
                              i, (long long)t[i]);
        if (i > 0 && t[i] < t[i - 1])
            return trip__fail(TRIP_EINVAL,
                              "detect: time %zu (%lld) is "
                              "before time %zu",
                              i, (long long)t[i], i - 1);
        /* the baseline squares differences of values: above 1e150 they
         * overflow, and one such point made every later score NaN */
        if (isfinite(v[i]) && fabs(v[i]) > 1e150)
            return trip__fail(TRIP_EINVAL,
                              "detect: value %zu is %g: values must be "
                              "within +-1e150",
                              i, v[i]);
        if (o->log_transform && !(v[i] > 0) && !isnan(v[i]))
            return trip__fail(TRIP_EINVAL,
                              "detect: value %zu is %g: "
                              "log_transform needs values > 0 (or NaN for "
                              "missing)",
                              i, v[i]);
    }
    return TRIP_OK;
}

/* The per-point outputs of trip_detect(), any of them NULL. */
typedef struct trip_detect_out_ {
    double *scores;
    uint8_t *flags;
    double *mean, *sd;
} trip_detect_out_;

/* Score point i, push it into the k-of-m memory and learn from it unless
 * it looked anomalous (so an incident never becomes the new normal). */
static void
trip_detect_point_(const trip_detect_opts *o, trip__baseline *b, trip__kofm *h,
                   int64_t t, double raw, const trip_detect_out_ *out, size_t i)
{
    double x = o->log_transform ? log(raw) : raw;
    double z = NAN, mean = NAN, sd = NAN;
    const trip__ewstat *s = trip__baseline_lookup(b, t + 1, 0);
    if (s != NULL) {
        sd = sqrt(trip__ewstat_var(s));
        if (sd < o->sigma_floor)
            sd = o->sigma_floor;
        mean = o->log_transform ? exp(s->mean) : s->mean;
        z = trip__zscore(x, s->mean, sd, o->sigma_floor);
    }
    int anomalous = z >= o->z && (o->effect <= 0 || raw >= o->effect * mean);
    int flag = 0;
    if (!isnan(raw))
        flag = trip__kofm_push(h, anomalous, o->k, o->m);
    if (!anomalous)
        trip__baseline_observe_value(b, 0, x, o->sigma_floor, t + 1);
    if (out->scores)
        out->scores[i] = z;
    if (out->flags)
        out->flags[i] = (uint8_t)(flag && anomalous);
    if (out->mean)
        out->mean[i] = mean;
    if (out->sd)
        out->sd[i] = sd;
}

int
trip_detect(const trip_detect_opts *o, const int64_t *wall_ns,
            const double *values, size_t n, double *scores, uint8_t *flags,
            double *baseline_mean, double *baseline_sd)
{
    if (o == NULL || (n > 0 && (wall_ns == NULL || values == NULL)))
        return trip__fail(TRIP_EINVAL, "trip_detect: NULL argument");
    int rc = trip_detect_check_opts_(o);
    if (rc == TRIP_OK)
        rc = trip_detect_check_data_(o, wall_ns, values, n);
    if (rc != TRIP_OK)
        return rc;
    trip__gsl_init();
    trip__baseline *b = trip__calloc(1, sizeof *b);
    if (b == NULL)
        return trip__fail(TRIP_ENOMEM, "detect: out of memory");
    trip_config cfg;
    trip_config_init(&cfg);
    cfg.seasonality = o->seasonality;
    cfg.baseline_half_life_h = o->half_life_h;
    cfg.baseline_min_samples = o->min_samples;
    trip__baseline_init(b, &cfg);
    trip__kofm h = {0, 0};
    trip_detect_out_ out = {scores, flags, baseline_mean, baseline_sd};
    for (size_t i = 0; i < n; i++)
        trip_detect_point_(o, b, &h, wall_ns[i], values[i], &out, i);
    trip__free(b);
    return TRIP_OK;
}
