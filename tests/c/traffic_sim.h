/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Synthetic seasonal traffic for the calibration and false-trip tests: busy
 * weekdays, quiet nights, overdispersed failures, lognormal latencies. */
#ifndef TRIPSENSE_TRAFFIC_SIM_H
#define TRIPSENSE_TRAFFIC_SIM_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "tripsense/tripsense.h"

#define SIM_S_ 1000000000LL
#define SIM_HOUR_ (3600 * SIM_S_)
#define SIM_DAY_ (24 * SIM_HOUR_)
#define SIM_WEEK_ (7 * SIM_DAY_)
#define SIM_T0_ (1704067200LL * SIM_S_) /* Monday 2024-01-01 00:00 UTC */

enum { SIM_NONE, SIM_OUTAGE, SIM_BROWNOUT, SIM_LATENCY };

typedef struct sim_traffic {
    double busy_rps;    /* weekdays 08:00-20:00 */
    double evening_rps; /* 06:00-08:00 and 20:00-24:00 */
    double night_rps;   /* 00:00-06:00 */
    double weekend;     /* factor on busy_rps on Saturday and Sunday */
    double fail;        /* mean failure rate */
    double fail_disp;   /* sd of log of a per-minute rate multiplier */
    double lat_med_s;   /* median latency */
    double lat_sigma;   /* sd of log latency within a minute */
    double lat_disp;    /* sd of log of a per-minute median multiplier */
    int incident;       /* SIM_* from onset_ns to end_ns */
    int64_t onset_ns, end_ns;
    double factor; /* brownout: failure rate x; latency: median x */
    uint64_t rng;
    /* per-minute state */
    int64_t minute;
    double fail_mult, lat_mult;
} sim_traffic;

/* Busy service, 0.8% failures with overdispersion, 20 ms median. */
static inline sim_traffic
sim_default(uint64_t seed)
{
    sim_traffic t = {10.0,  2.0,  0.2, 0.3,      0.008,     0.4,
                     0.020, 0.5,  0.1, SIM_NONE, INT64_MAX, INT64_MAX,
                     1.0,   seed, -1,  1,        1};
    return t;
}

static inline double
sim_unif(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return ((double)(z >> 11) + 0.5) * 0x1.0p-53;
}

static inline double
sim_normal(uint64_t *s)
{
    double u1 = sim_unif(s), u2 = sim_unif(s);
    return sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2);
}

static inline double
sim_rps(const sim_traffic *t, int64_t wall)
{
    int64_t day = wall / SIM_DAY_; /* days since 1970-01-01, a Thursday */
    int wd = (int)((day + 3) % 7), h = (int)((wall % SIM_DAY_) / SIM_HOUR_);
    if (h < 6)
        return t->night_rps;
    if (h < 8 || h >= 20)
        return t->evening_rps;
    return wd >= 5 ? t->busy_rps * t->weekend : t->busy_rps;
}

/* Per-minute multipliers with mean 1: the overdispersion of real traffic. */
static inline void
sim_minute(sim_traffic *t, int64_t wall)
{
    int64_t m = wall / (60 * SIM_S_);
    if (m == t->minute)
        return;
    t->minute = m;
    double a = t->fail_disp, b = t->lat_disp;
    t->fail_mult = exp(a * sim_normal(&t->rng) - a * a / 2);
    t->lat_mult = exp(b * sim_normal(&t->rng));
}

static inline void
sim_call(sim_traffic *t, int64_t wall, trip_event *e)
{
    int inc = wall >= t->onset_ns && wall < t->end_ns ? t->incident : SIM_NONE;
    double p = t->fail * t->fail_mult;
    if (inc == SIM_BROWNOUT)
        p *= t->factor;
    if (inc == SIM_OUTAGE)
        p = 1.0;
    double med =
        t->lat_med_s * t->lat_mult * (inc == SIM_LATENCY ? t->factor : 1);
    e->wall_ns = wall;
    e->latency_s = med * exp(t->lat_sigma * sim_normal(&t->rng));
    e->outcome = sim_unif(&t->rng) < p ? TRIP_FAILURE : TRIP_SUCCESS;
    e->priority = 0;
}

/* Events in [from, to), Poisson arrivals; *n receives the count. The array
 * is malloc'ed (NULL if out of memory). */
static inline trip_event *
sim_generate(sim_traffic *t, int64_t from, int64_t to, size_t *n)
{
    size_t cap = 1 << 16, k = 0;
    trip_event *ev = malloc(cap * sizeof *ev);
    *n = 0;
    for (int64_t s = from; ev != NULL && s < to; s += SIM_S_) {
        double lambda = sim_rps(t, s), u = sim_unif(&t->rng);
        double pk = exp(-lambda), cdf = pk;
        int c = 0;
        while (u > cdf && c < 100000) {
            c++;
            pk *= lambda / c;
            cdf += pk;
        }
        sim_minute(t, s);
        for (int i = 0; i < c; i++) {
            if (k == cap) {
                trip_event *p = realloc(ev, 2 * cap * sizeof *ev);
                if (p == NULL) {
                    free(ev);
                    return NULL;
                }
                ev = p;
                cap *= 2;
            }
            /* stratified in the second, so times never go backwards */
            int64_t w = s + (int64_t)((i + sim_unif(&t->rng)) / c * 1e9);
            sim_call(t, w, &ev[k++]);
        }
    }
    *n = k;
    return ev;
}

#endif /* TRIPSENSE_TRAFFIC_SIM_H */
