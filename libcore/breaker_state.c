/* SPDX-License-Identifier: GPL-3.0-or-later */
/* State changes, operator modes, listeners, snapshots and reconfiguration. */
#include <math.h>
#include <string.h>

#include "breaker_internal.h"

int
trip__effective_state(uint64_t sw)
{
    int mode = (int)((sw & TRIP_SW_MODE_MASK_) >> TRIP_SW_MODE_SHIFT_);
    return mode != TRIP_MODE_NORMAL ? mode : (int)(sw & TRIP_SW_STATE_MASK_);
}

void
trip__publish_hot_config(trip_breaker *b)
{
    const trip_config *c = &b->cfg;
    atomic_store(&b->hp_slow_ns, c->slow_call_ns);
    atomic_store(&b->hp_consec_fail, c->consecutive_failures);
    atomic_store(&b->hp_consec_timeout, c->consecutive_timeouts);
    atomic_store(&b->hp_count_n,
                 c->window_kind == TRIP_WINDOW_COUNT ? c->window_calls : 0);
    atomic_store(&b->hp_min_calls, c->min_calls);
    atomic_store(&b->hp_probes, c->half_open_probes);
    atomic_store(&b->hp_successes, c->half_open_successes);
    atomic_store(&b->hp_probe_max_ns, c->half_open_max_ns);
    atomic_store(&b->hp_failure_rate_bits,
                 trip__double_to_bits(c->failure_rate));
    atomic_store(&b->hp_ramp_ns, c->ramp_ns);
    atomic_store(&b->hp_ramp_start_bits,
                 trip__double_to_bits(c->ramp_start_fraction));
    atomic_store(&b->hp_bucket_ns, c->bucket_ns);
    atomic_store(&b->hp_limit_rate_bits, trip__double_to_bits(c->limit_rate));
    atomic_store(&b->hp_limit_burst_bits, trip__double_to_bits(c->limit_burst));
    atomic_store(&b->hp_probe_share_bits,
                 trip__double_to_bits(c->probe_priority_share));
}

/* Open duration for the n-th trip in a row: exponential backoff, capped,
 * then jittered by +-jitter from the breaker's seeded generator. */
static int64_t
trip_open_duration_(trip_breaker *b, double flap_factor)
{
    const trip_config *c = &b->cfg;
    double d = (double)c->open_ns;
    /* a flapping breaker waits flap_backoff times longer, cap included */
    double cap = (double)c->open_max_ns * flap_factor;
    for (uint32_t i = 1; i < b->trips && d < cap; i++)
        d *= c->backoff_multiplier;
    d *= flap_factor;
    if (d > cap)
        d = cap;
    if (c->jitter > 0) {
        double u = (double)(trip__splitmix64(&b->rng) >> 11) * 0x1.0p-53;
        d *= 1.0 + c->jitter * (2.0 * u - 1.0);
    }
    if (d > cap)
        d = cap;
    return d < 1e6 ? 1000000 : (int64_t)d;
}

/*
 * After a latency rule opened the breaker, a probe that succeeds as slowly
 * as what tripped it is no evidence of recovery (the failure rules' probes
 * succeed or fail on their own): the slow-call limit, the percentile's
 * limit, or the baseline quantile times the latency effect size. Peers
 * judge half-open calls by the same slow-call rule that trips (Resilience4j
 * counts slow calls in half-open).
 */
static int64_t
trip_probe_slow_ns_(const trip_breaker *b, const trip_reason *r)
{
    double s = 0;
    switch (r->rule) {
    case TRIP_RULE_SLOW_CALL_RATE:
        return b->cfg.slow_call_ns;
    case TRIP_RULE_LATENCY_PERCENTILE:
        s = r->threshold;
        break;
    case TRIP_RULE_ANOMALY_LATENCY:
        s = r->baseline * b->cfg.anomaly_latency_effect;
        break;
    default:
        return 0;
    }
    return isfinite(s) && s > 0 && s < 86400 ? (int64_t)(s * 1e9) : 0;
}

static void
trip_enter_state_(trip_breaker *b, int to, int64_t now, uint64_t gen)
{
    if (to == TRIP_OPEN) {
        if (b->closed_since_ns >= 0 &&
            now - b->closed_since_ns >= b->cfg.backoff_reset_ns)
            b->trips = 0;
        b->trips++;
        b->closed_since_ns = -1;
        double flap = trip__flap_locked(b, now, 1);
        atomic_store(&b->open_until_ns, now + trip_open_duration_(b, flap));
    } else {
        atomic_store(&b->open_until_ns, 0);
    }
    if (to == TRIP_HALF_OPEN) {
        /* before the new state word is published: whoever reads it finds
         * this period's tag */
        atomic_store(&b->probes, trip__probe_tag(gen));
        atomic_store(&b->probe_successes, 0);
        atomic_store(&b->probe_event_ns, now);
    }
    trip__limiter_update_locked(b, to, now);
    if (to == TRIP_CLOSED) {
        b->closed_since_ns = now;
        atomic_store(&b->ramp_counter, 0);
        atomic_store(&b->ramp_start_ns_at, now);
    }
}

void
trip__transition_locked(trip_breaker *b, int to, int mode, const trip_reason *r,
                        int64_t now, trip__pending *p)
{
    uint64_t sw = atomic_load(&b->sw);
    int from = trip__effective_state(sw);
    if (mode < 0)
        mode = (int)((sw & TRIP_SW_MODE_MASK_) >> TRIP_SW_MODE_SHIFT_);
    trip__sums discard;
    /* counts of the old state go to the totals, never the new windows */
    trip__harvest(b, &discard, 0, 0);
    if (to != TRIP_HALF_OPEN)
        trip__reset_windows(b);
    uint64_t gen = (sw >> TRIP_SW_GEN_SHIFT_) + 1;
    /* an operator mode change keeps the machine where it was */
    if (to != (int)(sw & TRIP_SW_STATE_MASK_) || r->rule != TRIP_RULE_MANUAL)
        trip_enter_state_(b, to, now, gen);
    uint64_t nsw = gen << TRIP_SW_GEN_SHIFT_ |
                   (uint64_t)mode << TRIP_SW_MODE_SHIFT_ | (uint64_t)to;
    if (to == TRIP_CLOSED && b->cfg.ramp_ns > 0 &&
        r->rule == TRIP_RULE_HALF_OPEN_SUCCESS)
        nsw |= TRIP_SW_RAMP_;
    nsw |= trip__sw_flags_locked(b, to);
    atomic_store_explicit(&b->sw, nsw, memory_order_release);
    int eff = trip__effective_state(nsw);
    trip_reason reason = *r;
    reason.wall_ns = now + atomic_load(&b->wall_offset_ns);
    if (to == TRIP_OPEN)
        b->last_trip = reason;
    if (to == TRIP_CLOSED ||
        (to == TRIP_OPEN && r->rule != TRIP_RULE_HALF_OPEN_FAILURE &&
         r->rule != TRIP_RULE_HALF_OPEN_TIMEOUT))
        b->probe_slow_ns = trip_probe_slow_ns_(b, r);
    /* under a forced or disabled mode the machine may still move while
     * what callers see stays put: count and announce only visible changes
     * (the shadow machine of metrics-only mode is announced as documented) */
    if (from == eff && eff != TRIP_METRICS_ONLY)
        return;
    b->transitions++;
    if (from < 7 && eff < 7 && reason.rule >= 0 &&
        reason.rule < TRIP_RULE_COUNT_)
        b->transition_counts[from][eff][reason.rule]++;
    if (p->n < (int)(sizeof p->t / sizeof p->t[0]))
        p->t[p->n++] = (trip_transition){b->name, from, eff, reason, now, gen};
}

static int
trip_copy_listeners_(trip_breaker *b, trip__listener *out)
{
    int n = 0;
    pthread_mutex_lock(&b->listen_mu);
    for (int i = 0; i < TRIP_MAX_LISTENERS_; i++)
        if (b->listeners[i].fn)
            out[n++] = b->listeners[i];
    pthread_mutex_unlock(&b->listen_mu);
    return n;
}

void
trip__announce(trip_breaker *b, trip__pending *p)
{
    if (p->n == 0)
        return;
    const trip__store_link *l = atomic_load(&b->link);
    for (int i = 0; l && i < p->n; i++) {
        trip_transition_row row = trip__transition_row(&p->t[i], l->id);
        trip__store_push_transition(l->s, &row);
    }
    trip__listener ls[TRIP_MAX_LISTENERS_];
    int n = trip_copy_listeners_(b, ls);
    for (int i = 0; i < p->n; i++)
        for (int k = 0; k < n; k++)
            ls[k].fn(TRIP_EVENT_TRANSITION, &p->t[i], ls[k].user);
    trip__deps_announce(b, p);
    p->n = 0;
}

void
trip__notify_rejection(trip_breaker *b, int state, int decision)
{
    trip__listener ls[TRIP_MAX_LISTENERS_];
    int n = trip_copy_listeners_(b, ls);
    trip_transition t;
    memset(&t, 0, sizeof t);
    t.breaker = b->name;
    t.from = t.to = state;
    t.reason.rule = decision;
    t.reason.score = t.reason.threshold = t.reason.baseline = NAN;
    t.generation = atomic_load(&b->sw) >> TRIP_SW_GEN_SHIFT_;
    for (int k = 0; k < n; k++)
        ls[k].fn(TRIP_EVENT_REJECTION, &t, ls[k].user);
}

int
trip_breaker_add_listener(trip_breaker *b, trip_listener_fn fn, void *user,
                          int *id)
{
    if (b == NULL || fn == NULL)
        return trip__fail(TRIP_EINVAL,
                          "trip_breaker_add_listener: %s is "
                          "NULL",
                          b ? "fn" : "breaker");
    int rc = trip__fail(TRIP_ENOSPC,
                        "breaker \"%s\" already has %d "
                        "listeners",
                        b->name, TRIP_MAX_LISTENERS_);
    pthread_mutex_lock(&b->listen_mu);
    for (int i = 0; i < TRIP_MAX_LISTENERS_; i++) {
        if (b->listeners[i].fn)
            continue;
        b->listeners[i] = (trip__listener){fn, user, ++b->next_listener_id};
        if (id)
            *id = b->next_listener_id;
        atomic_store(&b->has_reject_listeners, 1);
        rc = TRIP_OK;
        break;
    }
    pthread_mutex_unlock(&b->listen_mu);
    if (rc == TRIP_OK)
        trip__clear_error();
    return rc;
}

int
trip_breaker_remove_listener(trip_breaker *b, int id)
{
    if (b == NULL)
        return trip__fail(TRIP_EINVAL, "trip_breaker_remove_listener: "
                                       "breaker is NULL");
    int found = 0, left = 0;
    pthread_mutex_lock(&b->listen_mu);
    for (int i = 0; i < TRIP_MAX_LISTENERS_; i++) {
        if (b->listeners[i].fn && b->listeners[i].id == id) {
            memset(&b->listeners[i], 0, sizeof b->listeners[i]);
            found = 1;
        }
        left += b->listeners[i].fn != NULL;
    }
    atomic_store(&b->has_reject_listeners, left > 0);
    pthread_mutex_unlock(&b->listen_mu);
    return found ? TRIP_OK
                 : trip__fail(TRIP_ENOTFOUND, "no listener with id %d", id);
}

int
trip_breaker_set_mode(trip_breaker *b, int mode)
{
    if (b == NULL)
        return trip__fail(TRIP_EINVAL, "trip_breaker_set_mode: breaker is "
                                       "NULL");
    if (mode != TRIP_MODE_NORMAL &&
        (mode < TRIP_MODE_FORCED_OPEN || mode > TRIP_MODE_METRICS_ONLY))
        return trip__fail(TRIP_EINVAL,
                          "trip_breaker_set_mode: unknown mode "
                          "%d",
                          mode);
    trip__pending p = {0};
    pthread_mutex_lock(&b->mu);
    uint64_t sw = atomic_load(&b->sw);
    int cur = (int)((sw & TRIP_SW_MODE_MASK_) >> TRIP_SW_MODE_SHIFT_);
    if (cur != mode) {
        trip_reason r = {TRIP_RULE_MANUAL, NAN, NAN, NAN, 0, 0};
        int64_t now = trip_clock_now(b->clock);
        /* back to normal resumes closed with fresh windows; entering
         * metrics-only starts the shadow machine closed too */
        int to = (mode == TRIP_MODE_NORMAL || mode == TRIP_MODE_METRICS_ONLY)
                     ? TRIP_CLOSED
                     : (int)(sw & TRIP_SW_STATE_MASK_);
        trip__transition_locked(b, to, mode, &r, now, &p);
    }
    pthread_mutex_unlock(&b->mu);
    trip__announce(b, &p);
    return TRIP_OK;
}

int
trip_breaker_config(trip_breaker *b, trip_config *cfg)
{
    if (b == NULL || cfg == NULL)
        return trip__fail(TRIP_EINVAL, "trip_breaker_config: NULL argument");
    pthread_mutex_lock(&b->mu);
    *cfg = b->cfg;
    pthread_mutex_unlock(&b->mu);
    return TRIP_OK;
}
