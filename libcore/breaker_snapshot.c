/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Snapshots, lifetime totals, reconfiguration and the names of enums. */
#include <math.h>
#include <string.h>

#include "breaker_internal.h"

void
trip__breaker_totals(trip_breaker *b, trip__sums *out, uint64_t *hist)
{
    int ns = trip__stripes_in_use();
    *out = b->totals;
    for (int s = 0; s < ns; s++) {
        trip__stripe *st = &b->stripes[s];
        for (int c = 0; c < TRIP_C_COUNT_; c++)
            out->c[c] += atomic_load_explicit(&st->c[c], memory_order_relaxed);
        out->lat_sum_s += (double)atomic_load_explicit(&st->lat_sum_us,
                                                       memory_order_relaxed) *
                          1e-6;
    }
    if (hist == NULL)
        return;
    memcpy(hist, b->life_hist, TRIP_HIST_BINS * sizeof(uint64_t));
    for (int s = 0; s < ns; s++)
        for (uint32_t i = 0; i < TRIP_HIST_BINS; i++)
            hist[i] += atomic_load_explicit(&b->stripes[s].hist[i],
                                            memory_order_relaxed);
}

static void
trip_snapshot_counts_(trip_breaker *b, trip_snapshot *s)
{
    trip__sums t;
    trip__breaker_totals(b, &t, NULL);
    s->successes = (int64_t)t.c[TRIP_C_SUCCESS_];
    s->failures = (int64_t)t.c[TRIP_C_FAILURE_];
    s->timeouts = (int64_t)t.c[TRIP_C_TIMEOUT_];
    s->ignored = (int64_t)t.c[TRIP_C_IGNORED_];
    s->slow = (int64_t)t.c[TRIP_C_SLOW_];
    s->rejected = (int64_t)t.c[TRIP_C_REJECTED_];
    s->limited = (int64_t)t.c[TRIP_C_LIMITED_];
    s->late = (int64_t)t.c[TRIP_C_LATE_];
    s->calls = s->successes + s->failures + s->timeouts + s->ignored;
    s->in_flight = (int64_t)t.c[TRIP_C_ALLOWED_] - s->calls - s->late;
    if (s->in_flight < 0)
        s->in_flight = 0;
}

static void
trip_snapshot_window_(trip_breaker *b, trip_snapshot *s)
{
    static const double qs[5] = {0.5, 0.9, 0.95, 0.99, 0.999};
    double q[5];
    const trip_eval *ev = &b->last_eval;
    s->window_calls = ev->calls;
    s->window_failures = ev->failures;
    s->window_failure_rate = ev->failure_rate;
    s->window_slow_rate = ev->slow_rate;
    s->window_slow = isnan(ev->slow_rate)
                         ? 0
                         : (int64_t)llround(ev->slow_rate * (double)ev->calls);
    trip__hist_quantiles_grouped_s(
        b->short_hist, b->short_group, b->short_hist_total,
        trip__hist_range_end(b->short_lo, b->short_hi), qs, 5, q);
    s->p50_s = q[0];
    s->p90_s = q[1];
    s->p95_s = q[2];
    s->p99_s = q[3];
    s->p999_s = q[4];
}

int
trip_snapshot_get(trip_breaker *b, trip_snapshot *s)
{
    if (b == NULL || s == NULL)
        return trip__fail(TRIP_EINVAL, "trip_snapshot_get: %s is NULL",
                          b ? "snapshot" : "breaker");
    memset(s, 0, sizeof *s);
    pthread_mutex_lock(&b->mu);
    uint64_t sw = atomic_load(&b->sw);
    s->state = trip__effective_state(sw);
    s->machine_state = (int)(sw & TRIP_SW_STATE_MASK_);
    s->generation = sw >> TRIP_SW_GEN_SHIFT_;
    trip_snapshot_counts_(b, s);
    trip_snapshot_window_(b, s);
    s->consecutive_failures = atomic_load(&b->consec_fail);
    s->consecutive_timeouts = atomic_load(&b->consec_timeout);
    s->trips = b->trips;
    s->transitions = b->transitions;
    s->last_trip = b->last_trip;
    s->half_open_in_flight = (uint32_t)atomic_load(&b->probes);
    s->half_open_successes = atomic_load(&b->probe_successes);
    int64_t now = trip_clock_now(b->clock);
    if (s->machine_state == TRIP_OPEN) {
        s->open_until_ns = atomic_load(&b->open_until_ns);
        s->ns_until_half_open =
            s->open_until_ns > now ? s->open_until_ns - now : 0;
    }
    s->ramp_fraction = 1.0;
    /* a reconfiguration to no ramp-up leaves the flag until the next call
     * clears it (trip_ramp_admit_): no ramp then, as that call decides,
     * not 0 / 0 */
    if ((sw & TRIP_SW_RAMP_) && b->cfg.ramp_ns > 0) {
        double f0 = b->cfg.ramp_start_fraction;
        double el = (double)(now - atomic_load(&b->ramp_start_ns_at));
        double f = f0 + (1 - f0) * el / (double)b->cfg.ramp_ns;
        s->ramp_fraction = f > 1 ? 1 : f;
    }
    s->flapping = atomic_load(&b->flapping);
    s->shed = !trip__needs_all_closed(b);
    s->limit_fraction =
        trip__bits_to_double(atomic_load(&b->lim_fraction_bits));
    trip__sums tot;
    trip__breaker_totals(b, &tot, NULL);
    s->weighted_failures = (double)tot.c[TRIP_C_FAILW_] / 1000.0;
    const trip__store_link *l = atomic_load(&b->link);
    if (l) {
        s->store_dropped = trip__store_dropped(l->s, l->id);
        s->store_status = trip__store_health(l->s);
    }
    pthread_mutex_unlock(&b->mu);
    return TRIP_OK;
}

static int
trip_same_windows_(const trip_config *a, const trip_config *c)
{
    return a->window_kind == c->window_kind && a->bucket_ns == c->bucket_ns &&
           a->window_buckets == c->window_buckets &&
           a->window_calls == c->window_calls &&
           a->long_window_buckets == c->long_window_buckets;
}

/* Replace the window structures; the old count ring is retired, not freed,
 * because a concurrent record may still be writing into it. */
static int
trip_swap_windows_(trip_breaker *b, const trip_config *cfg)
{
    trip_breaker tmp;
    if (trip__retire_reserve(b) != TRIP_OK)
        return TRIP_ENOMEM;
    memset(&tmp, 0, sizeof tmp);
    tmp.cfg = *cfg;
    if (trip__windows_alloc(&tmp) != TRIP_OK) {
        trip__windows_free(&tmp);
        return TRIP_ENOMEM;
    }
    trip__count_ring *old = atomic_load(&b->count_ring);
    if (old)
        b->retired[b->n_retired++] = (void *)old;
    atomic_store(&b->count_ring, NULL);
    trip__windows_free(b); /* the count ring, retired above, is not freed */
    b->ring = tmp.ring;
    b->ring_hist = tmp.ring_hist;
    b->hist_index = tmp.hist_index;
    b->slot_range = tmp.slot_range;
    b->slot_bits = tmp.slot_bits;
    b->short_hist = tmp.short_hist;
    b->short_hist_total = 0;
    memset(b->short_group, 0, sizeof b->short_group);
    b->wsum_ok = 0;
    atomic_store(&b->count_ring, atomic_load(&tmp.count_ring));
    return TRIP_OK;
}

int
trip_breaker_reconfigure(trip_breaker *b, const trip_config *cfg)
{
    char msg[256];
    if (b == NULL || cfg == NULL)
        return trip__fail(TRIP_EINVAL, "trip_breaker_reconfigure: NULL "
                                       "argument");
    int rc = trip_config_validate(cfg, msg, sizeof msg);
    if (rc != TRIP_OK)
        return trip__fail(rc, "breaker \"%s\": %s", b->name, msg);
    pthread_mutex_lock(&b->mu);
    /* windows of the same shape keep what they hold (changing open_ns
     * forgot the failures counted so far, so the breaker stayed closed) */
    int reshape = !trip_same_windows_(&b->cfg, cfg);
    if (reshape) {
        trip__sums discard;
        trip__harvest(b, &discard, 0, 0);
        atomic_store(&b->hp_count_n, 0); /* no count window while swapping */
        rc = trip_swap_windows_(b, cfg);
        if (rc == TRIP_OK) {
            b->cur_bucket = trip_clock_now(b->clock) / cfg->bucket_ns;
            atomic_store(&b->next_roll_ns,
                         (b->cur_bucket + 1) * cfg->bucket_ns);
        }
    }
    if (rc == TRIP_OK) {
        b->cfg = *cfg;
        trip__adaptive_reconfigure(b->adaptive, cfg);
        if (reshape)
            trip__reset_windows(b);
    }
    trip__publish_hot_config(b);
    uint64_t sw = atomic_load(&b->sw);
    sw &= ~(uint64_t)(TRIP_SW_LIMIT_ | TRIP_SW_SHED_);
    atomic_store(
        &b->sw, sw | trip__sw_flags_locked(b, (int)(sw & TRIP_SW_STATE_MASK_)));
    pthread_mutex_unlock(&b->mu);
    return rc == TRIP_OK ? TRIP_OK
                         : trip__fail(rc,
                                      "breaker \"%s\": out of memory "
                                      "while reconfiguring",
                                      b->name);
}
