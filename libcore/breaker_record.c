/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Completing a call: counting its outcome, consecutive rules, probes. */
#include <math.h>

#include "breaker_internal.h"

#define TRIP_RLX_ memory_order_relaxed

static inline void
trip_inc_(trip__stripe *st, int ctr)
{
    atomic_fetch_add_explicit(&st->c[ctr], 1, TRIP_RLX_);
}

static inline int
trip_is_fail_(int outcome)
{
    return outcome == TRIP_FAILURE || outcome == TRIP_TIMEOUT;
}

/* Trip from the record path (a consecutive or count-window rule), unless
 * the state changed since the ticket was issued. */
static void
trip_trip_now_(trip_breaker *b, const trip_ticket *t, int rule, double score,
               double threshold, int64_t samples, int64_t now)
{
    trip__pending p = {0};
    pthread_mutex_lock(&b->mu);
    uint64_t sw = atomic_load(&b->sw);
    int ms = (int)(sw & TRIP_SW_STATE_MASK_);
    int mode = (int)((sw & TRIP_SW_MODE_MASK_) >> TRIP_SW_MODE_SHIFT_);
    if ((sw >> TRIP_SW_GEN_SHIFT_) == t->generation && ms == TRIP_CLOSED &&
        (mode == TRIP_MODE_NORMAL || mode == TRIP_MODE_METRICS_ONLY)) {
        trip_reason r = {rule, score, threshold, NAN, samples, 0};
        trip__transition_locked(b, TRIP_OPEN, -1, &r, now, &p);
    }
    pthread_mutex_unlock(&b->mu);
    trip__announce(b, &p);
}

/* Under mu, where every state change happens: checked and counted outside
 * it, a probe whose period ended after the check (the state moved to open
 * and back to half-open) took a slot of the new period back, wrapping its
 * count so that no probe was ever admitted again, and counted its success
 * toward the new period's. */
static void
trip_probe_done_(trip_breaker *b, const trip_ticket *t, int outcome,
                 int64_t lat_ns, int64_t now)
{
    trip__pending p = {0};
    pthread_mutex_lock(&b->mu);
    uint64_t sw = atomic_load(&b->sw);
    uint32_t need = atomic_load_explicit(&b->hp_successes, TRIP_RLX_);
    if ((sw >> TRIP_SW_GEN_SHIFT_) != t->generation ||
        (sw & TRIP_SW_STATE_MASK_) != TRIP_HALF_OPEN) {
        pthread_mutex_unlock(&b->mu);
        return;
    }
    /* a ticket recorded twice must not take the count below 0: that
     * borrowed from the period's tag, and no probe was admitted again */
    uint64_t cur = atomic_load(&b->probes);
    do {
        if ((uint32_t)cur == 0) {
            pthread_mutex_unlock(&b->mu);
            return;
        }
    } while (!atomic_compare_exchange_weak(&b->probes, &cur, cur - 1));
    atomic_store(&b->probe_event_ns, now);
    /* a success as slow as what opened the breaker fails the probe */
    int slow = outcome == TRIP_SUCCESS && b->probe_slow_ns > 0 &&
               lat_ns >= b->probe_slow_ns;
    if (slow)
        outcome = TRIP_FAILURE;
    uint32_t ok = outcome == TRIP_SUCCESS
                      ? atomic_fetch_add(&b->probe_successes, 1) + 1
                      : 0;
    if (outcome == TRIP_FAILURE || outcome == TRIP_TIMEOUT || ok >= need) {
        trip_reason r = {outcome == TRIP_SUCCESS ? TRIP_RULE_HALF_OPEN_SUCCESS
                                                 : TRIP_RULE_HALF_OPEN_FAILURE,
                         NAN,
                         NAN,
                         NAN,
                         1,
                         0};
        if (outcome == TRIP_SUCCESS) {
            r.score = ok;
            r.threshold = need;
            r.samples = ok;
        } else if (slow) {
            r.score = (double)lat_ns * 1e-9;
            r.threshold = (double)b->probe_slow_ns * 1e-9;
        }
        trip__transition_locked(
            b, outcome == TRIP_SUCCESS ? TRIP_CLOSED : TRIP_OPEN, -1, &r, now,
            &p);
    }
    pthread_mutex_unlock(&b->mu);
    trip__announce(b, &p);
}

/* Consecutive failures and timeouts: a success only writes the shared
 * line when a streak exists, so healthy traffic keeps it read-shared. */
static void
trip_streaks_(trip_breaker *b, const trip_ticket *t, int outcome, int64_t now)
{
    if (outcome == TRIP_SUCCESS) {
        if (atomic_load_explicit(&b->consec_fail, TRIP_RLX_))
            atomic_store_explicit(&b->consec_fail, 0, TRIP_RLX_);
        if (atomic_load_explicit(&b->consec_timeout, TRIP_RLX_))
            atomic_store_explicit(&b->consec_timeout, 0, TRIP_RLX_);
        return;
    }
    if (!trip_is_fail_(outcome))
        return;
    uint32_t nf = atomic_fetch_add_explicit(&b->consec_fail, 1, TRIP_RLX_) + 1;
    uint32_t nt = 0;
    if (outcome == TRIP_TIMEOUT)
        nt = atomic_fetch_add_explicit(&b->consec_timeout, 1, TRIP_RLX_) + 1;
    else if (atomic_load_explicit(&b->consec_timeout, TRIP_RLX_))
        atomic_store_explicit(&b->consec_timeout, 0, TRIP_RLX_);
    uint32_t lt = atomic_load_explicit(&b->hp_consec_timeout, TRIP_RLX_);
    uint32_t lf = atomic_load_explicit(&b->hp_consec_fail, TRIP_RLX_);
    if (lt && nt >= lt)
        trip_trip_now_(b, t, TRIP_RULE_CONSECUTIVE_TIMEOUTS, nt, lt, nt, now);
    else if (lf && nf >= lf)
        trip_trip_now_(b, t, TRIP_RULE_CONSECUTIVE_FAILURES, nf, lf, nf, now);
}

/* The count window: a ring of the last N outcomes with running counts,
 * judged on every call (a count window has no natural roll). */
static void
trip_count_window_(trip_breaker *b, const trip_ticket *t, int outcome, int slow,
                   int64_t now)
{
    trip__count_ring *ring =
        atomic_load_explicit(&b->count_ring, memory_order_acquire);
    if (ring == NULL || atomic_load_explicit(&b->hp_count_n, TRIP_RLX_) == 0)
        return;
    uint32_t n = ring->n;
    uint64_t pos = atomic_fetch_add_explicit(&b->count_pos, 1, TRIP_RLX_);
    uint8_t code =
        (uint8_t)(1u | (trip_is_fail_(outcome) ? 2u : 0u) | (slow ? 4u : 0u));
    uint8_t old =
        atomic_exchange_explicit(&ring->slot[pos % n], code, TRIP_RLX_);
    int64_t calls =
        atomic_fetch_add(&b->count_calls, old ? 0 : 1) + (old ? 0 : 1);
    int df = ((code >> 1) & 1) - ((old >> 1) & 1);
    int ds = ((code >> 2) & 1) - ((old >> 2) & 1);
    int64_t fails = atomic_fetch_add(&b->count_failures, df) + df;
    if (ds)
        atomic_fetch_add(&b->count_slow, ds);
    double limit = trip__bits_to_double(
        atomic_load_explicit(&b->hp_failure_rate_bits, TRIP_RLX_));
    uint32_t min_calls = atomic_load_explicit(&b->hp_min_calls, TRIP_RLX_);
    if (limit > 0 && calls >= (int64_t)min_calls && calls > 0 &&
        (double)fails >= limit * (double)calls)
        trip_trip_now_(b, t, TRIP_RULE_FAILURE_RATE,
                       (double)fails / (double)calls, limit, calls, now);
}

static void
trip_push_row_(trip_breaker *b, const trip_ticket *t, int outcome,
               int64_t lat_ns, int slow, int64_t now, double weight)
{
    const trip__store_link *l =
        atomic_load_explicit(&b->link, memory_order_acquire);
    if (l == NULL)
        return;
    trip__outcome_rec r = {
        now + atomic_load_explicit(&b->wall_offset_ns, TRIP_RLX_),
        lat_ns,
        l->id,
        (int8_t)outcome,
        (uint8_t)t->state,
        TRIP_PASS,
        (uint8_t)slow,
        trip_is_fail_(outcome) ? (float)weight : 0.0f,
        0};
    trip__store_push_outcome(l->s, &r);
}

static int
trip_record_at_(trip_breaker *b, const trip_ticket *t, int outcome,
                int64_t lat_ns, int64_t now, double weight)
{
    if (now >= atomic_load_explicit(&b->next_roll_ns, memory_order_acquire))
        trip_breaker_tick(b);
    trip__stripe *st = &b->stripes[t->stripe % TRIP_STRIPES_];
    uint64_t sw = atomic_load_explicit(&b->sw, memory_order_acquire);
    int slow = outcome != TRIP_IGNORED &&
               lat_ns >= atomic_load_explicit(&b->hp_slow_ns, TRIP_RLX_);
    trip_push_row_(b, t, outcome, lat_ns, slow, now, weight);
    if ((sw >> TRIP_SW_GEN_SHIFT_) != t->generation ||
        (t->flags & TRIP_TK_SHADOW_)) {
        /* issued before the last state change, or refused in shadow mode:
         * never counted into the current state's windows */
        trip_inc_(st, TRIP_C_LATE_);
        if (outcome != TRIP_SUCCESS)
            trip_inc_(st, TRIP_C_LATE_FAILURE_ + outcome - TRIP_FAILURE);
        return TRIP_OK;
    }
    trip_inc_(st, outcome);
    if (trip_is_fail_(outcome))
        atomic_fetch_add_explicit(&st->c[TRIP_C_FAILW_],
                                  (uint64_t)trip__round_nonneg(weight * 1000.0),
                                  TRIP_RLX_);
    if (outcome != TRIP_IGNORED) {
        uint32_t bin = trip__hist_bin(lat_ns);
        /* the first call in a bin since the last harvest marks it; the
         * release pairs with the harvest's acquire of the mark */
        if (atomic_fetch_add_explicit(&st->hist[bin], 1, TRIP_RLX_) == 0)
            atomic_fetch_or_explicit(&st->touched[bin / 64],
                                     (uint64_t)1 << (bin % 64),
                                     memory_order_release);
        atomic_fetch_add_explicit(&st->lat_sum_us, (uint64_t)(lat_ns / 1000),
                                  TRIP_RLX_);
        if (slow)
            trip_inc_(st, TRIP_C_SLOW_);
    }
    if (t->flags & TRIP_TK_PROBE_) {
        trip_probe_done_(b, t, outcome, lat_ns, now);
        return TRIP_OK;
    }
    if ((sw & TRIP_SW_STATE_MASK_) != TRIP_CLOSED)
        return TRIP_OK;
    trip_streaks_(b, t, outcome, now);
    if (outcome != TRIP_IGNORED)
        trip_count_window_(b, t, outcome, slow, now);
    return TRIP_OK;
}

static int
trip_record_check_(trip_breaker *b, const trip_ticket *t, int outcome)
{
    if (b == NULL || t == NULL)
        return trip__fail(TRIP_EINVAL, "trip_record: %s is NULL",
                          b ? "ticket" : "breaker");
    if (outcome < TRIP_SUCCESS || outcome > TRIP_IGNORED)
        return trip__fail(TRIP_EINVAL,
                          "trip_record: unknown outcome %d "
                          "(expected 0 success, 1 failure, 2 timeout, 3 "
                          "ignored)",
                          outcome);
    /* one test on the common path: a ticket trip_allow filled and admitted
     * (a refusal clears the mark; a zeroed ticket, whose decision reads as
     * TRIP_PASS, never had it) */
    if (TRIP_UNLIKELY_(!(t->flags & TRIP_TK_ISSUED_))) {
        if (t->decision != TRIP_PASS)
            return trip__fail(TRIP_EINVAL,
                              "trip_record: the ticket was not "
                              "admitted (decision %s)",
                              trip_decision_name(t->decision));
        return trip__fail(TRIP_EINVAL,
                          "trip_record: the ticket was not filled by "
                          "trip_allow (zeroed or never issued)");
    }
    return TRIP_OK;
}

int
trip_record(trip_breaker *b, const trip_ticket *t, int outcome)
{
    int rc = trip_record_check_(b, t, outcome);
    if (TRIP_UNLIKELY_(rc != TRIP_OK))
        return rc;
    if (TRIP_UNLIKELY_(t->flags & TRIP_TK_NOREC_))
        return TRIP_OK;
    int64_t now = trip_clock_now(b->clock);
    int64_t lat = now - t->start_ns;
    return trip_record_at_(b, t, outcome, lat > 0 ? lat : 0, now, 1.0);
}

int
trip_record_latency(trip_breaker *b, const trip_ticket *t, int outcome,
                    double latency_s)
{
    int rc = trip_record_check_(b, t, outcome);
    if (rc != TRIP_OK)
        return rc;
    if (!isfinite(latency_s) || latency_s < 0 || latency_s > 86400.0 * 365)
        return trip__fail(TRIP_EINVAL,
                          "trip_record_latency: latency must "
                          "be finite and in [0, 1 year] seconds, got %g",
                          latency_s);
    return trip__record_latency_checked(b, t, outcome, latency_s);
}

int
trip__record_latency_checked(trip_breaker *b, const trip_ticket *t, int outcome,
                             double latency_s)
{
    if (t->flags & TRIP_TK_NOREC_)
        return TRIP_OK;
    int64_t now = trip_clock_now(b->clock);
    return trip_record_at_(b, t, outcome, trip__round_nonneg(latency_s * 1e9),
                           now, 1.0);
}

int
trip_record_weighted(trip_breaker *b, const trip_ticket *t, int outcome,
                     double latency_s, double weight)
{
    int rc = trip_record_check_(b, t, outcome);
    if (rc != TRIP_OK)
        return rc;
    if (!isfinite(weight) || weight < 0 || weight > 1000)
        return trip__fail(TRIP_EINVAL,
                          "trip_record_weighted: weight must be "
                          "finite and in [0, 1000], got %g",
                          weight);
    if (isnan(latency_s) || latency_s > 86400.0 * 365)
        return trip__fail(TRIP_EINVAL,
                          "trip_record_weighted: latency must "
                          "be a number of seconds <= 1 year, got %g",
                          latency_s);
    if (t->flags & TRIP_TK_NOREC_)
        return TRIP_OK;
    int64_t now = trip_clock_now(b->clock);
    int64_t lat =
        latency_s < 0 ? now - t->start_ns : trip__round_nonneg(latency_s * 1e9);
    return trip_record_at_(b, t, outcome, lat > 0 ? lat : 0, now, weight);
}
