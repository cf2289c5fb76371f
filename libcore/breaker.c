/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The breaker's hot path: creation, admission (allow) and outcomes (record). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "breaker_internal.h"

#define TRIP_RLX_ memory_order_relaxed

_Atomic uint64_t trip__stripes_taken;
static _Thread_local uint32_t trip_my_stripe_ = UINT32_MAX;

/* Each thread takes the next stripe once, so that up to TRIP_STRIPES_
 * threads never share a written cache line. The count is 64 bits wide so
 * that it never wraps back under TRIP_STRIPES_ (trip__stripes_in_use). */
static inline uint32_t
trip_stripe_(void)
{
    if (TRIP_UNLIKELY_(trip_my_stripe_ == UINT32_MAX))
        trip_my_stripe_ = (uint32_t)(atomic_fetch_add(&trip__stripes_taken, 1) %
                                     TRIP_STRIPES_);
    return trip_my_stripe_;
}

static inline void
trip_inc_(trip__stripe *st, int ctr)
{
    atomic_fetch_add_explicit(&st->c[ctr], 1, TRIP_RLX_);
}

/* ---- creation ---------------------------------------------------------- */

static int
trip_breaker_check_args_(const char *name, trip_breaker **out)
{
    if (out == NULL)
        return trip__fail(TRIP_EINVAL, "trip_breaker_new: out is NULL");
    *out = NULL;
    if (name == NULL || name[0] == '\0')
        return trip__fail(TRIP_EINVAL, "trip_breaker_new: name must be a "
                                       "non-empty string");
    if (strlen(name) > 127)
        return trip__fail(TRIP_EINVAL, "trip_breaker_new: name is longer "
                                       "than 127 bytes");
    if (!trip__utf8_valid(name))
        return trip__fail(TRIP_EINVAL, "trip_breaker_new: name is not valid "
                                       "UTF-8 (health JSON and Prometheus "
                                       "text need it)");
    return TRIP_OK;
}

static int
trip_breaker_init_(trip_breaker *b, const char *name, const trip_config *cfg,
                   trip_clock *clock)
{
    strcpy(b->name, name);
    b->cfg = *cfg;
    b->clock = clock ? clock : trip_clock_system();
    b->rng = cfg->seed ? cfg->seed : trip__hash_str(name);
    b->minute_start_wall = -1;
    b->stripes = trip__aligned_calloc(TRIP_CACHELINE_,
                                      TRIP_STRIPES_ * sizeof(trip__stripe));
    b->life_hist = trip__calloc(TRIP_HIST_BINS, sizeof(uint64_t));
    b->minute_hist = trip__calloc(TRIP_HIST_BINS, sizeof(uint64_t));
    b->period_hist = trip__calloc(TRIP_HIST_BINS, sizeof(uint64_t));
    b->period_lo = TRIP_HIST_BINS;
    b->minute_lo = TRIP_HIST_BINS;
    if (!b->stripes || !b->life_hist || !b->minute_hist || !b->period_hist)
        return TRIP_ENOMEM;
    atomic_init(&b->prio_cum_q16[0], 65536u);
    atomic_init(&b->lim_fraction_bits, trip__double_to_bits(1.0));
    b->lim_m = 1.0;
    if (trip__windows_alloc(b) != TRIP_OK)
        return TRIP_ENOMEM;
    if (trip__adaptive_new(cfg, &b->adaptive) != TRIP_OK)
        return TRIP_ENOMEM;
    if (pthread_mutex_init(&b->mu, NULL) != 0)
        return TRIP_ENOMEM;
    if (pthread_mutex_init(&b->listen_mu, NULL) != 0) {
        pthread_mutex_destroy(&b->mu);
        return TRIP_ENOMEM;
    }
    if (pthread_mutex_init(&b->attach_mu, NULL) != 0) {
        pthread_mutex_destroy(&b->mu);
        pthread_mutex_destroy(&b->listen_mu);
        return TRIP_ENOMEM;
    }
    int64_t now = trip_clock_now(b->clock);
    b->cur_bucket = now / cfg->bucket_ns;
    b->closed_since_ns = now;
    atomic_init(&b->next_roll_ns, (b->cur_bucket + 1) * cfg->bucket_ns);
    atomic_init(&b->wall_offset_ns, trip_clock_wall(b->clock) - now);
    b->lim_close_ns = now;
    trip__publish_hot_config(b);
    atomic_init(&b->sw,
                (uint64_t)TRIP_CLOSED | trip__sw_flags_locked(b, TRIP_CLOSED));
    memset(&b->last_trip, 0, sizeof b->last_trip);
    b->last_trip.score = b->last_trip.threshold = NAN;
    b->last_trip.baseline = NAN;
    return TRIP_OK;
}

int
trip__retire_reserve(trip_breaker *b)
{
    void **ret = trip__realloc(b->retired, (b->n_retired + 1) * sizeof(void *));
    if (ret == NULL)
        return TRIP_ENOMEM;
    b->retired = ret;
    return TRIP_OK;
}

static void
trip_breaker_release_(trip_breaker *b, int locks)
{
    trip__free(atomic_load(&b->link));
    trip__windows_free(b);
    trip__signals_free(b);
    for (size_t i = 0; i < b->n_retired; i++)
        trip__free(b->retired[i]);
    trip__free(b->retired);
    trip__adaptive_free(b->adaptive);
    trip__free(b->stripes);
    trip__free(b->life_hist);
    trip__free(b->minute_hist);
    trip__free(b->period_hist);
    if (locks) {
        pthread_mutex_destroy(&b->mu);
        pthread_mutex_destroy(&b->listen_mu);
        pthread_mutex_destroy(&b->attach_mu);
    }
    trip__free(b);
}

int
trip_breaker_new(const char *name, const trip_config *cfg, trip_clock *clock,
                 trip_breaker **out)
{
    trip_config defaults;
    char msg[256];
    int rc = trip_breaker_check_args_(name, out);
    if (rc != TRIP_OK)
        return rc;
    if (cfg == NULL) {
        trip_config_init(&defaults);
        cfg = &defaults;
    }
    rc = trip_config_validate(cfg, msg, sizeof msg);
    if (rc != TRIP_OK)
        return trip__fail(rc, "breaker \"%s\": %s", name, msg);
    trip_breaker *b = trip__aligned_calloc(TRIP_CACHELINE_, sizeof *b);
    if (b == NULL)
        return trip__fail(TRIP_ENOMEM, "breaker \"%s\": out of memory", name);
    rc = trip_breaker_init_(b, name, cfg, clock);
    if (rc != TRIP_OK) {
        /* the mutexes exist only if init got that far: it is the last
         * step that can fail, so destroy them only on full success */
        trip_breaker_release_(b, 0);
        return trip__fail(rc, "breaker \"%s\": out of memory", name);
    }
    *out = b;
    return TRIP_OK;
}

void
trip_breaker_free(trip_breaker *b)
{
    if (b == NULL)
        return;
    trip_breaker_attach(b, NULL);
    trip__deps_unlink(b);
    trip_breaker_release_(b, 1);
}

const char *
trip_breaker_name(const trip_breaker *b)
{
    return b ? b->name : "";
}

int
trip_breaker_state(const trip_breaker *b)
{
    if (b == NULL)
        return trip__fail(TRIP_EINVAL, "trip_breaker_state: breaker is NULL");
    return trip__effective_state(
        atomic_load_explicit(&((trip_breaker *)b)->sw, memory_order_acquire));
}

/* ---- admission --------------------------------------------------------- */

static int
trip_refuse_at_(trip_breaker *b, trip_ticket *t, trip__stripe *st, int decision,
                int64_t now)
{
    /* refusals roll buckets too, so their counts reach the bucket (and
     * the history's minute) they happen in during a long open period;
     * always, not only with a history, so that a replay, which has none,
     * evaluates at the same moments as the live breaker */
    if (now >= atomic_load_explicit(&b->next_roll_ns, TRIP_RLX_))
        trip_breaker_tick(b);
    const trip__store_link *l =
        atomic_load_explicit(&b->link, memory_order_acquire);
    trip_inc_(st,
              decision == TRIP_REJECTED ? TRIP_C_REJECTED_ : TRIP_C_LIMITED_);
    t->decision = decision;
    t->flags &= ~TRIP_TK_ISSUED_; /* recorded, it is refused as not admitted */
    t->start_ns = 0;
    if (l != NULL) {
        trip__outcome_rec r = {
            now + atomic_load_explicit(&b->wall_offset_ns, TRIP_RLX_),
            0,
            l->id,
            -1,
            (uint8_t)t->state,
            (uint8_t)decision,
            0,
            0.0f,
            0};
        trip__store_push_outcome(l->s, &r);
    }
    if (atomic_load_explicit(&b->has_reject_listeners, TRIP_RLX_))
        trip__notify_rejection(b, t->state, decision);
    return decision;
}

/* A refusal at the coarse clock's now. */
static int
trip_refuse_(trip_breaker *b, trip_ticket *t, trip__stripe *st, int decision)
{
    return trip_refuse_at_(b, t, st, decision, trip__clock_coarse(b->clock));
}

static int
trip_pass_(trip_breaker *b, trip_ticket *t, trip__stripe *st)
{
    t->start_ns = trip_clock_now(b->clock);
    t->decision = TRIP_PASS;
    trip_inc_(st, TRIP_C_ALLOWED_);
    return TRIP_PASS;
}

/* Ramp-up: admit a rising fraction f of calls, highest priorities first
 * (trip__prio_admit), deterministically. Returns 1 to admit. */
static int
trip_ramp_admit_(trip_breaker *b, int64_t now, int priority)
{
    int64_t start = atomic_load_explicit(&b->ramp_start_ns_at, TRIP_RLX_);
    int64_t len = atomic_load_explicit(&b->hp_ramp_ns, TRIP_RLX_);
    double f0 = trip__bits_to_double(
        atomic_load_explicit(&b->hp_ramp_start_bits, TRIP_RLX_));
    if (len <= 0 || now - start >= len) {
        uint64_t sw = atomic_load(&b->sw);
        uint64_t want = sw & ~(uint64_t)TRIP_SW_RAMP_;
        if (sw & TRIP_SW_RAMP_)
            atomic_compare_exchange_strong(&b->sw, &sw, want);
        return 1;
    }
    double f = f0 + (1.0 - f0) * (double)(now - start) / (double)len;
    return trip__prio_admit(b, priority, f);
}

/* Closed but not the plain fast path: shedding for a dependency, ramp-up,
 * or a rate limit. */
static int
trip_allow_closed_(trip_breaker *b, trip_ticket *t, trip__stripe *st,
                   uint64_t sw, int priority)
{
    if ((sw & TRIP_SW_SHED_) && priority < 192)
        return trip_refuse_(b, t, st, TRIP_LIMITED);
    int64_t now = trip_clock_now(b->clock);
    if ((sw & TRIP_SW_RAMP_) && !trip_ramp_admit_(b, now, priority))
        return trip_refuse_(b, t, st, TRIP_LIMITED);
    if ((sw & TRIP_SW_LIMIT_) && !trip__limiter_admit(b, now, priority))
        return trip_refuse_(b, t, st, TRIP_LIMITED);
    t->start_ns = now;
    t->decision = TRIP_PASS;
    atomic_fetch_add_explicit(&st->c[TRIP_C_ALLOWED_], 1, TRIP_RLX_);
    return TRIP_PASS;
}

static int
trip_open_elapsed_(trip_breaker *b, trip_ticket *t, uint64_t sw)
{
    trip__pending p = {0};
    pthread_mutex_lock(&b->mu);
    if (atomic_load(&b->sw) == sw) {
        trip_reason r = {TRIP_RULE_OPEN_ELAPSED, NAN, NAN, NAN, 0, 0};
        trip__transition_locked(b, TRIP_HALF_OPEN, -1, &r,
                                trip_clock_now(b->clock), &p);
    }
    pthread_mutex_unlock(&b->mu);
    trip__announce(b, &p);
    sw = atomic_load_explicit(&b->sw, memory_order_acquire);
    t->generation = sw >> TRIP_SW_GEN_SHIFT_;
    t->state = (int)(sw & TRIP_SW_STATE_MASK_);
    return (int)(sw & TRIP_SW_STATE_MASK_);
}

/*
 * Every probe of the half-open period is out. When none was admitted or
 * recorded for half_open_max_ns, their callers are not going to record
 * them (a ticket dropped, a Python block that ended in another thread):
 * the period reopens, as a failed probe would, and the next one probes
 * afresh; their outcomes, if they come, are late. Else the call is
 * limited. Resilience4j users met the same stuck half-open (its issues 903
 * and 935); its maxWaitDurationInHalfOpenState (default off) bounds the
 * whole period instead. Here a period whose probes keep coming back runs as
 * long as it needs.
 */
static int
trip_half_open_full_(trip_breaker *b, trip_ticket *t, trip__stripe *st,
                     uint32_t limit)
{
    int64_t max = atomic_load_explicit(&b->hp_probe_max_ns, TRIP_RLX_);
    /* the coarse clock, as every refusal: this runs for each call refused
     * while the probes are out (the fine clock cost 30 ns a refusal here),
     * and a stall is seen at most the coarse clock's resolution late (a
     * few ms on Linux; exact on a manual clock) */
    int64_t now = trip__clock_coarse(b->clock);
    if (max <= 0 ||
        now - atomic_load_explicit(&b->probe_event_ns, TRIP_RLX_) < max)
        return trip_refuse_at_(b, t, st, TRIP_LIMITED, now);
    trip__pending p = {0};
    pthread_mutex_lock(&b->mu);
    uint64_t sw = atomic_load(&b->sw), cur = atomic_load(&b->probes);
    int64_t since = atomic_load(&b->probe_event_ns);
    if ((sw >> TRIP_SW_GEN_SHIFT_) == t->generation &&
        (sw & TRIP_SW_STATE_MASK_) == TRIP_HALF_OPEN &&
        (cur & ~(uint64_t)UINT32_MAX) == trip__probe_tag(t->generation) &&
        (uint32_t)cur >= limit && now - since >= max) {
        trip_reason r = {
            TRIP_RULE_HALF_OPEN_TIMEOUT, (double)(now - since) * 1e-9,
            (double)max * 1e-9,          NAN,
            (int64_t)(uint32_t)cur,      0};
        trip__transition_locked(b, TRIP_OPEN, -1, &r, now, &p);
    }
    pthread_mutex_unlock(&b->mu);
    trip__announce(b, &p);
    sw = atomic_load_explicit(&b->sw, memory_order_acquire);
    t->generation = sw >> TRIP_SW_GEN_SHIFT_;
    t->state = (int)(sw & TRIP_SW_STATE_MASK_);
    return trip_refuse_at_(
        b, t, st, t->state == TRIP_OPEN ? TRIP_REJECTED : TRIP_LIMITED, now);
}

static int
trip_allow_half_open_(trip_breaker *b, trip_ticket *t, trip__stripe *st)
{
    uint32_t limit = atomic_load_explicit(&b->hp_probes, TRIP_RLX_);
    uint64_t tag = trip__probe_tag(t->generation);
    uint64_t cur = atomic_load(&b->probes);
    do {
        /* another period's count: the state moved on since this call read
         * it, so its probe would be late and never given back */
        if ((cur & ~(uint64_t)UINT32_MAX) != tag)
            return trip_refuse_(b, t, st, TRIP_LIMITED);
        if ((uint32_t)cur >= limit)
            return trip_half_open_full_(b, t, st, limit);
    } while (!atomic_compare_exchange_weak(&b->probes, &cur, cur + 1));
    t->flags |= TRIP_TK_PROBE_;
    int d = trip_pass_(b, t, st);
    /* relaxed: read only as a time, and the period's start was stored
     * before its state word was published */
    atomic_store_explicit(&b->probe_event_ns, t->start_ns, TRIP_RLX_);
    return d;
}

/* The automatic machine: closed (maybe ramping), open, half-open. */
static int
trip_machine_decide_(trip_breaker *b, trip_ticket *t, trip__stripe *st,
                     uint64_t sw, int priority)
{
    int ms = (int)(sw & TRIP_SW_STATE_MASK_);
    if (ms == TRIP_CLOSED)
        return trip_allow_closed_(b, t, st, sw, priority);
    if (ms == TRIP_OPEN) {
        int64_t until = atomic_load_explicit(&b->open_until_ns, TRIP_RLX_);
        int64_t now = trip__clock_coarse(b->clock);
        /* coordinated recovery: no probe while a needed breaker is down */
        if (now < until || !trip__needs_all_closed(b))
            return trip_refuse_at_(b, t, st, TRIP_REJECTED, now);
        ms = trip_open_elapsed_(b, t, sw);
        if (ms == TRIP_CLOSED)
            return trip_allow_closed_(b, t, st, atomic_load(&b->sw), priority);
        if (ms == TRIP_OPEN)
            return trip_refuse_(b, t, st, TRIP_REJECTED);
    }
    if (!trip__probe_eligible(b, priority))
        return trip_refuse_(b, t, st, TRIP_LIMITED);
    return trip_allow_half_open_(b, t, st);
}

static int
trip_allow_slow_(trip_breaker *b, trip_ticket *t, trip__stripe *st, uint64_t sw,
                 int priority)
{
    int mode = (int)((sw & TRIP_SW_MODE_MASK_) >> TRIP_SW_MODE_SHIFT_);
    t->state = trip__effective_state(sw);
    switch (mode) {
    case TRIP_MODE_DISABLED:
        t->flags |= TRIP_TK_NOREC_;
        t->start_ns = trip_clock_now(b->clock);
        t->decision = TRIP_PASS;
        return TRIP_PASS;
    case TRIP_MODE_FORCED_OPEN:
        return trip_refuse_(b, t, st, TRIP_REJECTED);
    case TRIP_MODE_FORCED_CLOSED:
        return trip_pass_(b, t, st);
    case TRIP_MODE_METRICS_ONLY: {
        int d = trip_machine_decide_(b, t, st, sw, priority);
        if (d != TRIP_PASS) {
            t->flags |= TRIP_TK_SHADOW_ | TRIP_TK_ISSUED_;
            trip_pass_(b, t, st);
        }
        return TRIP_PASS;
    }
    default:
        return trip_machine_decide_(b, t, st, sw, priority);
    }
}

int
trip_allow_priority(trip_breaker *b, trip_ticket *t, int priority)
{
    if (TRIP_UNLIKELY_(b == NULL || t == NULL))
        return trip__fail(TRIP_EINVAL, "trip_allow: %s is NULL",
                          b ? "ticket" : "breaker");
    uint64_t sw = atomic_load_explicit(&b->sw, memory_order_acquire);
    uint32_t si = trip_stripe_();
    trip__stripe *st = &b->stripes[si];
    if (TRIP_UNLIKELY_(priority != 0) &&
        !atomic_load_explicit(&b->prio_seen, TRIP_RLX_))
        atomic_store_explicit(&b->prio_seen, 1, TRIP_RLX_);
    if (atomic_load_explicit(&b->prio_seen, TRIP_RLX_))
        atomic_fetch_add_explicit(&st->prio[priority <= 0    ? 0
                                            : priority > 255 ? 15
                                                             : priority >> 4],
                                  1, TRIP_RLX_);
    t->stripe = si;
    t->flags = TRIP_TK_ISSUED_;
    t->generation = sw >> TRIP_SW_GEN_SHIFT_;
    if (TRIP_LIKELY_((sw & 0xFFFFu) == TRIP_CLOSED)) {
        t->state = TRIP_CLOSED;
        return trip_pass_(b, t, st);
    }
    return trip_allow_slow_(b, t, st, sw, priority);
}

int
trip_allow(trip_breaker *b, trip_ticket *t)
{
    return trip_allow_priority(b, t, 0);
}
