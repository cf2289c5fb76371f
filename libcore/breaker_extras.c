/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Priorities, the token-bucket limiter and flapping (issue 9). */
#include <math.h>
#include <string.h>

#include "breaker_internal.h"

#define TRIP_RLX_ memory_order_relaxed
#define TRIP_Q16_ 65536.0
#define TRIP_PRIO_HALF_LIFE_NS_ 60e9

static inline int
trip_level_(int priority)
{
    if (priority < 0)
        priority = 0;
    return priority > 255 ? TRIP_PRIO_LEVELS_ - 1 : priority >> 4;
}

/* Share of recent traffic at priority level >= L (1 for L = 0). */
static inline double
trip_share_ge_(trip_breaker *b, int level)
{
    return (double)atomic_load_explicit(&b->prio_cum_q16[level], TRIP_RLX_) /
           TRIP_Q16_;
}

/*
 * Admit a share `fraction` of calls, highest priorities first: a level is
 * admitted whole while the traffic at or above it fits in the fraction,
 * refused whole when the traffic above it already fills it, and the level
 * on the edge is admitted in proportion, spread evenly by a counter (no
 * random numbers, so replay is exact). Without priorities every call is
 * level 0 and exactly `fraction` of calls pass.
 */
int
trip__prio_admit(trip_breaker *b, int priority, double fraction)
{
    int level = trip_level_(priority);
    double ge = trip_share_ge_(b, level);
    double above = trip_share_ge_(b, level + 1);
    if (ge <= fraction + 1e-12)
        return 1;
    if (above >= fraction)
        return 0;
    double p = (fraction - above) / (ge - above);
    uint64_t n = atomic_fetch_add_explicit(&b->prio_ctr[level], 1, TRIP_RLX_);
    return floor((double)(n + 1) * p) > floor((double)n * p);
}

/* Half-open probes come from the top probe_priority_share of traffic. */
int
trip__probe_eligible(trip_breaker *b, int priority)
{
    double share = trip__bits_to_double(
        atomic_load_explicit(&b->hp_probe_share_bits, TRIP_RLX_));
    return trip_share_ge_(b, trip_level_(priority) + 1) < share;
}

/*
 * Token bucket as a GCRA: one atomic "theoretical arrival time". A call is
 * admitted when the bucket would not overflow; lower priorities see a
 * smaller tolerance, so they are refused first as the bucket drains.
 */
int
trip__limiter_admit(trip_breaker *b, int64_t now, int priority)
{
    double rate = trip__bits_to_double(
        atomic_load_explicit(&b->hp_limit_rate_bits, TRIP_RLX_));
    if (rate <= 0)
        return 1;
    double frac = trip__bits_to_double(
        atomic_load_explicit(&b->lim_fraction_bits, TRIP_RLX_));
    double eff = rate * frac;
    double burst = trip__bits_to_double(
        atomic_load_explicit(&b->hp_limit_burst_bits, TRIP_RLX_));
    burst = burst > 0 ? burst * frac : eff;
    if (burst < 1)
        burst = 1;
    double interval = 1e9 / eff;
    double tol = (burst - 1) * interval *
                 (1.0 - trip_share_ge_(b, trip_level_(priority) + 1));
    int64_t tat = atomic_load(&b->lim_tat);
    for (;;) {
        int64_t base = tat > now ? tat : now;
        if ((double)(base - now) > tol + 0.5)
            return 0;
        /* a rate so low (an adaptive fraction of a low limit) that the next
         * slot lies past any clock: refuse rather than overflow */
        if (!((double)base + interval < 0x1p62))
            return 0;
        int64_t next = base + (int64_t)llround(interval);
        if (atomic_compare_exchange_weak(&b->lim_tat, &tat, next))
            return 1;
    }
}

/* Decay the priority mix (half-life one minute) and publish its shares. */
void
trip__prio_roll_locked(trip_breaker *b, int64_t span_ns)
{
    /* the counters stay zero until a call carries a priority */
    if (!atomic_load_explicit(&b->prio_seen, TRIP_RLX_))
        return;
    double decay = exp2(-(double)span_ns / TRIP_PRIO_HALF_LIFE_NS_);
    double total = 0, cum = 0;
    int ns = trip__stripes_in_use();
    for (int l = 0; l < TRIP_PRIO_LEVELS_; l++) {
        uint64_t n = 0;
        for (int s = 0; s < ns; s++) {
            uint64_t v =
                atomic_load_explicit(&b->stripes[s].prio[l], TRIP_RLX_);
            if (v)
                n += atomic_fetch_sub_explicit(&b->stripes[s].prio[l], v,
                                               TRIP_RLX_);
        }
        b->prio_ewma[l] = b->prio_ewma[l] * decay + (double)n;
        total += b->prio_ewma[l];
    }
    if (total <= 0)
        return;
    for (int l = TRIP_PRIO_LEVELS_ - 1; l >= 0; l--) {
        cum += b->prio_ewma[l];
        double share = l == 0 ? 1.0 : cum / total;
        atomic_store_explicit(&b->prio_cum_q16[l],
                              (uint32_t)llround(share * TRIP_Q16_), TRIP_RLX_);
    }
}

/*
 * Adaptive limiter: each trip halves the admitted share (not below
 * limit_min_fraction); after closing, the share climbs back linearly to 1
 * over limit_recovery_ns. Called on transitions and on bucket rolls.
 */
void
trip__limiter_update_locked(trip_breaker *b, int to, int64_t now)
{
    const trip_config *c = &b->cfg;
    double f = 1.0;
    if (c->limit_rate <= 0 || !c->limit_adaptive) {
        b->lim_m = 1.0;
    } else if (to == TRIP_OPEN) {
        b->lim_m = fmax(c->limit_min_fraction, b->lim_m * 0.5);
        b->lim_close_ns = -1;
        f = b->lim_m;
    } else if (to == TRIP_CLOSED && b->lim_close_ns < 0) {
        b->lim_close_ns = now;
        f = b->lim_m;
    } else if (b->lim_close_ns >= 0) {
        double el = (double)(now - b->lim_close_ns);
        double len = (double)c->limit_recovery_ns;
        f = len <= 0 || el >= len ? 1.0 : b->lim_m + (1 - b->lim_m) * el / len;
        if (f >= 1.0)
            b->lim_m = 1.0;
    } else {
        f = b->lim_m;
    }
    atomic_store_explicit(&b->lim_fraction_bits, trip__double_to_bits(f),
                          TRIP_RLX_);
}

/*
 * Flapping: flap_trips trips within flap_window_ns. On a trip (record = 1)
 * the time is remembered; on rolls it is only re-checked, so the flag
 * clears once the trips age out. Returns the factor for the open duration.
 */
double
trip__flap_locked(trip_breaker *b, int64_t now, int record)
{
    const trip_config *c = &b->cfg;
    uint32_t n = c->flap_trips;
    int flapping = 0;
    if (n > 0 && n <= TRIP_FLAP_MAX_) {
        if (record)
            b->trip_times[b->trip_times_n++ % TRIP_FLAP_MAX_] = now;
        if (b->trip_times_n >= n) {
            uint32_t i = (b->trip_times_n - n) % TRIP_FLAP_MAX_;
            flapping = now - b->trip_times[i] <= c->flap_window_ns;
        }
    }
    atomic_store(&b->flapping, flapping);
    return flapping ? c->flap_backoff : 1.0;
}

/* Flags of the state word that follow from configuration and
 * dependencies rather than from the machine's state. */
uint64_t
trip__sw_flags_locked(trip_breaker *b, int to)
{
    uint64_t f = 0;
    if (b->cfg.limit_rate > 0 && to == TRIP_CLOSED)
        f |= TRIP_SW_LIMIT_;
    if (b->cfg.dependency_action == TRIP_DEP_SHED && !trip__needs_all_closed(b))
        f |= TRIP_SW_SHED_;
    return f;
}
