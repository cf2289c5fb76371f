/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The bucket roll: harvesting stripes, windows, rule evaluation, rollups. */
#include <math.h>
#include <string.h>

#include "breaker_internal.h"

#define TRIP_MINUTE_NS_ 60000000000LL

int
trip__windows_alloc(trip_breaker *b)
{
    uint32_t L = b->cfg.long_window_buckets, W = b->cfg.window_buckets;
    b->ring = trip__calloc(L, sizeof *b->ring);
    b->ring_hist = trip__calloc((size_t)W * TRIP_HIST_BINS, sizeof(uint32_t));
    b->hist_index = trip__calloc(W, sizeof(int64_t));
    b->slot_range = trip__calloc(W, sizeof(uint32_t));
    b->slot_bits = trip__calloc((size_t)W * TRIP_HIST_WORDS_, sizeof(uint64_t));
    b->short_hist = trip__calloc(TRIP_HIST_BINS, sizeof(uint64_t));
    if (!b->ring || !b->ring_hist || !b->hist_index || !b->short_hist ||
        !b->slot_range || !b->slot_bits)
        return TRIP_ENOMEM;
    b->short_lo = TRIP_HIST_BINS;
    b->short_hi = 0;
    if (b->cfg.window_kind == TRIP_WINDOW_COUNT) {
        trip__count_ring *cr =
            trip__calloc(1, sizeof *cr + b->cfg.window_calls);
        if (cr == NULL)
            return TRIP_ENOMEM;
        cr->n = b->cfg.window_calls;
        atomic_store(&b->count_ring, cr);
    }
    for (uint32_t i = 0; i < L; i++)
        b->ring[i].index = -1;
    for (uint32_t i = 0; i < W; i++)
        b->hist_index[i] = -1;
    return TRIP_OK;
}

void
trip__windows_free(trip_breaker *b)
{
    trip__free(b->ring);
    trip__free(b->ring_hist);
    trip__free(b->hist_index);
    trip__free(b->slot_range);
    trip__free(b->slot_bits);
    trip__free(b->short_hist);
    trip__free((void *)atomic_load(&b->count_ring));
    b->ring = NULL;
    b->ring_hist = NULL;
    b->hist_index = NULL;
    b->slot_range = NULL;
    b->slot_bits = NULL;
    b->short_hist = NULL;
    atomic_store(&b->count_ring, NULL);
}

static void trip_short_expire_(trip_breaker *b, uint32_t slot);
static void trip_period_reset_(trip_breaker *b);

void
trip__reset_windows(trip_breaker *b)
{
    for (uint32_t i = 0; i < b->cfg.long_window_buckets; i++)
        b->ring[i].index = -1;
    for (uint32_t i = 0; i < b->cfg.window_buckets; i++)
        trip_short_expire_(b, i);
    memset(b->short_hist, 0, TRIP_HIST_BINS * sizeof(uint64_t));
    memset(b->short_group, 0, sizeof b->short_group);
    b->short_hist_total = 0;
    b->wsum_ok = 0;
    trip_period_reset_(b);
    b->short_lo = TRIP_HIST_BINS;
    b->short_hi = 0;
    trip__count_ring *cr = atomic_load(&b->count_ring);
    if (cr != NULL)
        for (uint32_t i = 0; i < cr->n; i++)
            atomic_store_explicit(&cr->slot[i], 0, memory_order_relaxed);
    atomic_store(&b->count_calls, 0);
    atomic_store(&b->count_failures, 0);
    atomic_store(&b->count_slow, 0);
    atomic_store(&b->consec_fail, 0);
    atomic_store(&b->consec_timeout, 0);
}

/* Remove a short-window slot's histogram from the running sum. */
static void
trip_short_expire_(trip_breaker *b, uint32_t slot)
{
    uint32_t *h = b->ring_hist + (size_t)slot * TRIP_HIST_BINS;
    uint64_t *bits = b->slot_bits + (size_t)slot * TRIP_HIST_WORDS_;
    int live = b->hist_index[slot] >= 0;
    /* the slot's bins lie in its range (a slot never filled has [0, 0]) */
    uint32_t lo = b->slot_range[slot] >> 16, hi = b->slot_range[slot] & 0xFFFF;
    for (uint32_t w = lo / 64; lo <= hi && w <= hi / 64; w++) {
        for (uint64_t x = bits[w]; x != 0; x &= x - 1) {
            uint32_t i = w * 64 + (uint32_t)__builtin_ctzll(x);
            if (live) {
                b->short_hist[i] -= h[i];
                b->short_group[i / TRIP_HIST_SUB] -= h[i];
                b->short_hist_total -= h[i];
            }
            h[i] = 0;
        }
        bits[w] = 0;
    }
    b->slot_range[slot] = TRIP_HIST_BINS << 16; /* empty: lo > hi */
    b->hist_index[slot] = -1;
}

static inline void
trip_range_widen_(uint32_t *lo, uint32_t *hi, uint32_t from, uint32_t to)
{
    if (from < *lo)
        *lo = from;
    if (to > *hi)
        *hi = to;
}

static void
trip_harvest_stripe_(trip_breaker *b, trip__stripe *st, trip__sums *sum,
                     uint32_t *whist, uint64_t *wbits, uint32_t *range)
{
    uint64_t outcomes = 0;
    for (int c = 0; c < TRIP_C_COUNT_; c++) {
        uint64_t v = atomic_load_explicit(&st->c[c], memory_order_relaxed);
        if (v == 0)
            continue;
        /* take exactly what was read: a call counted since the load stays
         * in the stripe for the next harvest (adding fetch_sub's return
         * value instead counted it twice) */
        atomic_fetch_sub_explicit(&st->c[c], v, memory_order_relaxed);
        sum->c[c] += v;
        if (c <= TRIP_C_TIMEOUT_)
            outcomes += v;
    }
    /* read before exchanging: an idle stripe costs no locked instruction */
    uint64_t us = atomic_load_explicit(&st->lat_sum_us, memory_order_relaxed);
    if (us != 0)
        us = atomic_exchange_explicit(&st->lat_sum_us, 0, memory_order_relaxed);
    sum->lat_sum_s += (double)us * 1e-6;
    sum->lat_us += us;
    if (outcomes == 0)
        return; /* no latency was recorded since the last harvest */
    uint32_t lo = TRIP_HIST_BINS, hi = 0;
    _Atomic uint64_t *tw = st->touched;
    for (uint32_t w = 0; w < TRIP_TOUCHED_WORDS_; w++) {
        /* most words are clear: test four at a time */
        if (w % 4 == 0 &&
            (atomic_load_explicit(&tw[w], memory_order_relaxed) |
             atomic_load_explicit(&tw[w + 1], memory_order_relaxed) |
             atomic_load_explicit(&tw[w + 2], memory_order_relaxed) |
             atomic_load_explicit(&tw[w + 3], memory_order_relaxed)) == 0) {
            w += 3;
            continue;
        }
        if (atomic_load_explicit(&tw[w], memory_order_relaxed) == 0)
            continue;
        uint64_t x =
            atomic_exchange_explicit(&st->touched[w], 0, memory_order_acquire);
        for (; x != 0; x &= x - 1) {
            uint32_t i = w * 64 + (uint32_t)__builtin_ctzll(x);
            uint32_t v =
                atomic_load_explicit(&st->hist[i], memory_order_relaxed);
            if (v == 0)
                continue;
            /* a call counted since the load stays for the next harvest,
             * and so must the bin's mark (its record saw a nonzero bin) */
            if (atomic_fetch_sub_explicit(&st->hist[i], v,
                                          memory_order_relaxed) != v)
                atomic_fetch_or_explicit(&st->touched[w], x & -x,
                                         memory_order_relaxed);
            lo = i < lo ? i : lo;
            hi = i > hi ? i : hi;
            b->life_hist[i] += v;
            b->minute_hist[i] += v;
            if (whist) {
                whist[i] += v;
                wbits[w] |= x & -x;
                b->short_hist[i] += v;
                b->short_group[i / TRIP_HIST_SUB] += v;
                b->short_hist_total += v;
                b->period_hist[i] += v;
                b->period_hist_total += v;
            }
        }
    }
    uint32_t rlo = *range >> 16, rhi = *range & 0xFFFF;
    *range = (lo < rlo ? lo : rlo) << 16 | (hi > rhi ? hi : rhi);
    if (lo > hi)
        return;
    trip_range_widen_(&b->minute_lo, &b->minute_hi, lo, hi);
    if (whist)
        trip_range_widen_(&b->period_lo, &b->period_hi, lo, hi);
}

/* Empty the histogram of the period the anomaly rules judge. */
static void
trip_period_reset_(trip_breaker *b)
{
    if (b->period_lo <= b->period_hi && b->period_hi < TRIP_HIST_BINS)
        memset(b->period_hist + b->period_lo, 0,
               (size_t)(b->period_hi - b->period_lo + 1) * sizeof(uint64_t));
    b->period_hist_total = 0;
    b->period_lo = TRIP_HIST_BINS;
    b->period_hi = 0;
}

/* Attribute counts to their wall-clock minute: before a harvest adds the
 * current bucket's counts, a minute accumulated for an earlier bucket is
 * emitted, so each bucket's counts land in the minute it began in (exact
 * when the bucket length divides a minute, as the default 1 s does). */
static void
trip_minute_roll_(trip_breaker *b, int64_t bucket_wall)
{
    int64_t minute = bucket_wall - (bucket_wall % TRIP_MINUTE_NS_);
    if (b->minute_start_wall < 0)
        b->minute_start_wall = minute;
    else if (minute != b->minute_start_wall) {
        trip__flush_minute(b);
        b->minute_start_wall = minute;
    }
}

/* The short window's nonzero range, exactly: the union of its live slots'
 * ranges (an expired slot's range is empty). */
static void
trip_short_range_(trip_breaker *b)
{
    uint32_t lo = TRIP_HIST_BINS, hi = 0;
    for (uint32_t i = 0; i < b->cfg.window_buckets; i++) {
        uint32_t r = b->slot_range[i];
        if (b->hist_index[i] >= 0 && (r >> 16) <= (r & 0xFFFF))
            trip_range_widen_(&lo, &hi, r >> 16, r & 0xFFFF);
    }
    b->short_lo = lo;
    b->short_hi = hi;
}

static void
trip_sums_add_(trip__sums *s, const uint64_t *c, uint64_t lat_us)
{
    for (int k = 0; k < TRIP_C_COUNT_; k++)
        s->c[k] += c[k];
    s->lat_us += lat_us;
}

static void
trip_sums_sub_(trip__sums *s, const trip__bucket *rb)
{
    for (int k = 0; k < TRIP_C_COUNT_; k++)
        s->c[k] -= rb->c[k];
    s->lat_us -= rb->lat_us;
}

/* Bucket idx is about to enter the ring, over the bucket L before it. When
 * the window sums end at idx - 1, move them on by one bucket: add it, take
 * out what leaves each window (integers, so exactly the ring's sum); any
 * other step leaves them to be recomputed from the ring. */
static void
trip_wsum_enter_(trip_breaker *b, int64_t idx, const trip__sums *bucket)
{
    int64_t L = b->cfg.long_window_buckets, W = b->cfg.window_buckets;
    if (!b->wsum_ok || b->wsum_end != idx - 1) {
        b->wsum_ok = 0;
        return;
    }
    const trip__bucket *out_long = &b->ring[idx % L];
    const trip__bucket *out_short = &b->ring[((idx - W) % L + L) % L];
    if (out_long->index >= 0 && out_long->index == idx - L)
        trip_sums_sub_(&b->wsum_long, out_long);
    if (out_short->index >= 0 && out_short->index == idx - W)
        trip_sums_sub_(&b->wsum_short, out_short);
    trip_sums_add_(&b->wsum_long, bucket->c, bucket->lat_us);
    trip_sums_add_(&b->wsum_short, bucket->c, bucket->lat_us);
    b->wsum_end = idx;
}

void
trip__harvest(trip_breaker *b, trip__sums *bucket, int into_window, int64_t idx)
{
    uint32_t *whist = NULL;
    uint64_t *wbits = NULL;
    uint32_t range = (uint32_t)TRIP_HIST_BINS << 16; /* empty */
    uint32_t slot = 0;
    memset(bucket, 0, sizeof *bucket);
    /* the counts harvested belong to the current bucket's minute: close the
     * minute accumulated so far first if that is an earlier one */
    trip_minute_roll_(
        b, b->cur_bucket * b->cfg.bucket_ns +
               atomic_load_explicit(&b->wall_offset_ns, memory_order_relaxed));
    if (into_window) {
        slot = (uint32_t)(idx % b->cfg.window_buckets);
        trip_short_expire_(b, slot);
        whist = b->ring_hist + (size_t)slot * TRIP_HIST_BINS;
        wbits = b->slot_bits + (size_t)slot * TRIP_HIST_WORDS_;
        b->hist_index[slot] = idx;
    }
    for (int s = 0, ns = trip__stripes_in_use(); s < ns; s++)
        trip_harvest_stripe_(b, &b->stripes[s], bucket, whist, wbits, &range);
    for (int c = 0; c < TRIP_C_COUNT_; c++) {
        b->totals.c[c] += bucket->c[c];
        b->minute.c[c] += bucket->c[c];
    }
    /* the minute's rollup counts late results as the outcomes they are */
    const uint64_t *c = bucket->c;
    uint64_t late_other = c[TRIP_C_LATE_FAILURE_] + c[TRIP_C_LATE_TIMEOUT_] +
                          c[TRIP_C_LATE_IGNORED_];
    b->minute.c[TRIP_C_SUCCESS_] += c[TRIP_C_LATE_] - late_other;
    b->minute.c[TRIP_C_FAILURE_] += c[TRIP_C_LATE_FAILURE_];
    b->minute.c[TRIP_C_TIMEOUT_] += c[TRIP_C_LATE_TIMEOUT_];
    b->minute.c[TRIP_C_IGNORED_] += c[TRIP_C_LATE_IGNORED_];
    b->totals.lat_sum_s += bucket->lat_sum_s;
    b->minute.lat_sum_s += bucket->lat_sum_s;
    if (into_window) {
        b->slot_range[slot] = range;
        trip__bucket *rb = &b->ring[idx % b->cfg.long_window_buckets];
        trip_wsum_enter_(b, idx, bucket);
        rb->index = idx;
        memcpy(rb->c, bucket->c, sizeof rb->c);
        rb->lat_sum_s = bucket->lat_sum_s;
        rb->lat_us = bucket->lat_us;
    }
}

/* Sum the ring buckets with index in [from, to]. */
static void
trip_ring_sum_(const trip_breaker *b, int64_t from, int64_t to, trip__sums *s)
{
    /* a span shorter than the ring visits only its own slots */
    int64_t L = b->cfg.long_window_buckets, span = to - from + 1;
    int64_t n = span > 0 && span < L ? span : L;
    memset(s, 0, sizeof *s);
    for (int64_t j = 0; j < n; j++) {
        int64_t slot = n == L ? j : ((from + j) % L + L) % L;
        const trip__bucket *rb = &b->ring[slot];
        if (rb->index < 0 || rb->index < from || rb->index > to)
            continue;
        trip_sums_add_(s, rb->c, rb->lat_us);
    }
}

static void
trip_sums_to_window_(const trip__sums *s, trip__window *w)
{
    memset(w, 0, sizeof *w);
    w->successes = (int64_t)s->c[TRIP_C_SUCCESS_];
    w->failures = (int64_t)s->c[TRIP_C_FAILURE_];
    w->timeouts = (int64_t)s->c[TRIP_C_TIMEOUT_];
    w->ignored = (int64_t)s->c[TRIP_C_IGNORED_];
    w->slow = (int64_t)s->c[TRIP_C_SLOW_];
    w->rejected = (int64_t)s->c[TRIP_C_REJECTED_];
    w->limited = (int64_t)s->c[TRIP_C_LIMITED_];
    w->calls = w->successes + w->failures + w->timeouts;
    w->latency_sum_s = s->lat_sum_s;
}

/* The short and long windows ending at bucket end (inclusive): from the
 * running sums when they end there, else summed from the ring, which then
 * restarts the running sums. */
static void
trip_windows_(trip_breaker *b, int64_t end, trip__window *sw, double *failw,
              trip__window *lw, double *lfailw)
{
    int64_t W = b->cfg.window_buckets, L = b->cfg.long_window_buckets;
    if (!b->wsum_ok || b->wsum_end != end) {
        trip_ring_sum_(b, end - W + 1, end, &b->wsum_short);
        trip_ring_sum_(b, end - L + 1, end, &b->wsum_long);
        b->wsum_end = end;
        b->wsum_ok = 1;
    }
    b->wsum_short.lat_sum_s = (double)b->wsum_short.lat_us * 1e-6;
    b->wsum_long.lat_sum_s = (double)b->wsum_long.lat_us * 1e-6;
    trip_sums_to_window_(&b->wsum_short, sw);
    trip_sums_to_window_(&b->wsum_long, lw);
    sw->span_ns = W * b->cfg.bucket_ns;
    lw->span_ns = L * b->cfg.bucket_ns;
    *failw = (double)b->wsum_short.c[TRIP_C_FAILW_] / 1000.0;
    *lfailw = (double)b->wsum_long.c[TRIP_C_FAILW_] / 1000.0;
}

void
trip__flush_minute(trip_breaker *b)
{
    static const double qs[5] = {0.5, 0.9, 0.95, 0.99, 0.999};
    double q[5];
    const trip__store_link *l = atomic_load(&b->link);
    const uint64_t *c = b->minute.c;
    uint64_t n = c[TRIP_C_SUCCESS_] + c[TRIP_C_FAILURE_] + c[TRIP_C_TIMEOUT_];
    if (b->minute_start_wall >= 0 && l != NULL &&
        n + c[TRIP_C_IGNORED_] + c[TRIP_C_REJECTED_] + c[TRIP_C_LIMITED_]) {
        /* over the latencies the histogram holds: late results count as
         * outcomes of the minute but left no latency (ranks past the
         * histogram's total read as the top bin, 4295 s) */
        uint64_t nh = 0;
        for (uint32_t i = b->minute_lo; i <= b->minute_hi; i++)
            nh += b->minute_hist[i];
        trip__hist_quantiles_s(b->minute_hist, nh, qs, 5, q);
        trip_rollup_row r = {b->minute_start_wall,
                             l->id,
                             (int64_t)n,
                             (int64_t)c[TRIP_C_SUCCESS_],
                             (int64_t)c[TRIP_C_FAILURE_],
                             (int64_t)c[TRIP_C_TIMEOUT_],
                             (int64_t)c[TRIP_C_IGNORED_],
                             (int64_t)c[TRIP_C_SLOW_],
                             (int64_t)c[TRIP_C_REJECTED_],
                             (int64_t)c[TRIP_C_LIMITED_],
                             b->minute.lat_sum_s,
                             q[0],
                             q[1],
                             q[2],
                             q[3],
                             q[4]};
        trip__store_push_rollup(l->s, &r);
    }
    memset(&b->minute, 0, sizeof b->minute);
    if (b->minute_lo <= b->minute_hi)
        memset(b->minute_hist + b->minute_lo, 0,
               (size_t)(b->minute_hi - b->minute_lo + 1) * sizeof(uint64_t));
    b->minute_lo = TRIP_HIST_BINS;
    b->minute_hi = 0;
    b->minute_start_wall = -1;
}

/* The failure-rate rule counts failures by their weights (issue 9); with
 * the default weight of 1 that is the plain count. */
static int
trip_fixed_rules_(const trip_breaker *b, const trip__window *w, double failw,
                  trip_eval *ev, trip_reason *r)
{
    const trip_config *c = &b->cfg;
    int64_t fails = w->failures + w->timeouts;
    ev->calls = w->calls;
    ev->failures = fails;
    ev->failure_rate = w->calls ? failw / (double)w->calls : NAN;
    ev->slow_rate = w->calls ? (double)w->slow / (double)w->calls : NAN;
    if (c->window_kind != TRIP_WINDOW_TIME ||
        w->calls < (int64_t)c->min_calls || w->calls == 0)
        return TRIP_RULE_NONE;
    if (c->failure_rate > 0 && ev->failure_rate >= c->failure_rate) {
        *r = (trip_reason){TRIP_RULE_FAILURE_RATE,
                           ev->failure_rate,
                           c->failure_rate,
                           NAN,
                           w->calls,
                           0};
        return r->rule;
    }
    if (c->slow_call_rate > 0 && ev->slow_rate >= c->slow_call_rate) {
        *r = (trip_reason){TRIP_RULE_SLOW_CALL_RATE,
                           ev->slow_rate,
                           c->slow_call_rate,
                           NAN,
                           w->calls,
                           0};
        return r->rule;
    }
    return TRIP_RULE_NONE;
}

static void
trip_eval_init_(trip_eval *ev)
{
    memset(ev, 0, sizeof *ev);
    double *nan_fields[] = {&ev->failure_rate,
                            &ev->slow_rate,
                            &ev->latency_q_s,
                            &ev->ewma_failure_rate,
                            &ev->ewma_latency_s,
                            &ev->baseline_rate,
                            &ev->baseline_rate_sd,
                            &ev->baseline_latency_s,
                            &ev->baseline_log_latency_sd,
                            &ev->z_rate,
                            &ev->z_latency,
                            &ev->binomial_tail,
                            &ev->score,
                            &ev->threshold};
    for (size_t i = 0; i < sizeof nan_fields / sizeof nan_fields[0]; i++)
        *nan_fields[i] = NAN;
}

/* Evaluate every rule once for the bucket that just ended. */
static void
trip_evaluate_(trip_breaker *b, int64_t new_idx, int64_t now, int64_t wall_end,
               const trip__sums *bucket, int64_t span_ns, trip__pending *p)
{
    trip__window bw, sw_, lw;
    trip_eval ev;
    trip_reason r = {0}, ra = {0};
    uint64_t sw = atomic_load(&b->sw);
    int ms = (int)(sw & TRIP_SW_STATE_MASK_);
    int mode = (int)((sw & TRIP_SW_MODE_MASK_) >> TRIP_SW_MODE_SHIFT_);
    int judging = ms == TRIP_CLOSED && !(sw & TRIP_SW_RAMP_) &&
                  (mode == TRIP_MODE_NORMAL || mode == TRIP_MODE_METRICS_ONLY);
    trip_sums_to_window_(bucket, &bw);
    bw.span_ns = span_ns;
    double failw, lfailw;
    trip_windows_(b, new_idx - 1, &sw_, &failw, &lw, &lfailw);
    bw.hist = sw_.hist = b->short_hist;
    bw.hist_groups = sw_.hist_groups = b->short_group;
    bw.hist_total = sw_.hist_total = b->short_hist_total;
    bw.hist_lo = sw_.hist_lo = b->short_lo < TRIP_HIST_BINS ? b->short_lo : 0;
    bw.hist_end = sw_.hist_end = trip__hist_range_end(b->short_lo, b->short_hi);
    /* the long window's latencies: those since the last judgement, which
     * is the long window when buckets roll without gaps */
    lw.hist = b->period_hist;
    lw.hist_total = b->period_hist_total;
    lw.hist_lo = b->period_lo < TRIP_HIST_BINS ? b->period_lo : 0;
    lw.hist_end = trip__hist_range_end(b->period_lo, b->period_hi);
    trip_eval_init_(&ev);
    ev.wall_ns = wall_end;
    ev.long_calls = lw.calls;
    ev.long_failures = lw.failures + lw.timeouts;
    int rule = trip_fixed_rules_(b, &sw_, failw, &ev, &r);
    int arule = trip__adaptive_evaluate(b->adaptive, &b->cfg, wall_end, &bw,
                                        &sw_, &lw, judging, &ev, &ra);
    if (ev.judged)
        trip_period_reset_(b);
    if (rule == TRIP_RULE_NONE && arule != TRIP_RULE_NONE) {
        rule = arule;
        r = ra;
    }
    if (rule == TRIP_RULE_NONE && b->n_signals > 0)
        rule = trip__signals_evaluate_locked(b, now, wall_end, &r);
    if (!judging)
        rule = TRIP_RULE_NONE;
    if (rule != TRIP_RULE_NONE) {
        ev.fired_rule = rule;
        ev.score = r.score;
        ev.threshold = r.threshold;
        r.rule = rule;
        trip__transition_locked(b, TRIP_OPEN, -1, &r, now, p);
    }
    ev.state = trip__effective_state(atomic_load(&b->sw));
    b->last_eval = ev;
    if (b->eval_hook)
        b->eval_hook(b->eval_hook_user, &ev);
}

void
trip__roll_locked(trip_breaker *b, int64_t now, trip__pending *p)
{
    int64_t bns = b->cfg.bucket_ns;
    int64_t new_idx = now / bns, old_idx = b->cur_bucket;
    if (new_idx <= old_idx)
        return;
    int64_t offset = trip_clock_wall(b->clock) - trip_clock_now(b->clock);
    atomic_store_explicit(&b->wall_offset_ns, offset, memory_order_relaxed);
    trip__sums bucket;
    trip__harvest(b, &bucket, 1, old_idx);
    /* expire short-window slots that fell out during an idle gap. After
     * each roll every live slot is at or after new_idx - window_buckets,
     * and the harvest just reused the slot of old_idx - window_buckets,
     * so a roll by one bucket leaves nothing to expire */
    if (new_idx - old_idx > 1)
        for (uint32_t i = 0; i < b->cfg.window_buckets; i++)
            if (b->hist_index[i] >= 0 &&
                b->hist_index[i] < new_idx - (int64_t)b->cfg.window_buckets)
                trip_short_expire_(b, i);
    trip_short_range_(b);
    /* after a gap longer than the long window, the latencies since the
     * last judgement are all older than the window it will judge */
    if (old_idx < new_idx - (int64_t)b->cfg.long_window_buckets)
        trip_period_reset_(b);
    b->cur_bucket = new_idx;
    trip__prio_roll_locked(b, (new_idx - old_idx) * bns);
    trip__limiter_update_locked(b, -1, now);
    trip__flap_locked(b, now, 0);
    trip_evaluate_(b, new_idx, now, new_idx * bns + offset, &bucket,
                   (new_idx - old_idx) * bns, p);
    atomic_store_explicit(&b->next_roll_ns, (new_idx + 1) * bns,
                          memory_order_release);
}

int
trip_breaker_tick(trip_breaker *b)
{
    if (b == NULL)
        return trip__fail(TRIP_EINVAL, "trip_breaker_tick: breaker is NULL");
    /* Whoever crosses the boundary rolls, once; others carry on: their
     * counts land in the stripes and join the next harvest. */
    if (pthread_mutex_trylock(&b->mu) != 0)
        return TRIP_OK;
    trip__pending p = {0};
    int64_t now = trip_clock_now(b->clock);
    if (now >= atomic_load(&b->next_roll_ns))
        trip__roll_locked(b, now, &p);
    pthread_mutex_unlock(&b->mu);
    trip__announce(b, &p);
    return TRIP_OK;
}
