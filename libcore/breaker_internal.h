/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The breaker's internal layout, shared by breaker.c, registry.c, replay.c. */
#ifndef TRIPSENSE_BREAKER_INTERNAL_H
#define TRIPSENSE_BREAKER_INTERNAL_H

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>

#include "adaptive.h"
#include "hist.h"
#include "internal.h"
#include "store_internal.h"

/* Hot counters are striped so that threads do not write one cache line. */
#define TRIP_STRIPES_ 8
#define TRIP_MAX_LISTENERS_ 8
#define TRIP_PRIO_LEVELS_ 16 /* priority >> 4 */
#define TRIP_MAX_NEEDS_ 8
#define TRIP_MAX_DEPENDENTS_ 32
#define TRIP_MAX_SIGNALS_ 8
#define TRIP_FLAP_MAX_ 64

enum trip_ctr_ {
    TRIP_C_SUCCESS_ = 0, /* indexes match trip_outcome */
    TRIP_C_FAILURE_ = 1,
    TRIP_C_TIMEOUT_ = 2,
    TRIP_C_IGNORED_ = 3,
    TRIP_C_SLOW_,
    TRIP_C_REJECTED_,
    TRIP_C_LIMITED_,
    TRIP_C_LATE_,
    TRIP_C_ALLOWED_, /* in-flight = allowed - (outcomes + late): every
                        record adds exactly one of those */
    TRIP_C_FAILW_,   /* failure weights in thousandths (issue 9) */
    /* late results by kind (the rest of LATE_ are successes): kept out of
     * the windows but counted in the history's rollups, which count every
     * outcome */
    TRIP_C_LATE_FAILURE_,
    TRIP_C_LATE_TIMEOUT_,
    TRIP_C_LATE_IGNORED_,
    TRIP_C_COUNT_
};

#define TRIP_HIST_WORDS_ ((TRIP_HIST_BINS + 63) / 64)
/* a stripe's marks, padded to whole groups of four words for the harvest */
#define TRIP_TOUCHED_WORDS_ ((TRIP_HIST_WORDS_ + 3) / 4 * 4)

/* One thread stripe: counts of the current bucket, harvested on a roll. */
typedef struct trip__stripe {
    _Alignas(TRIP_CACHELINE_) _Atomic uint64_t c[TRIP_C_COUNT_];
    _Atomic uint64_t lat_sum_us;
    /* a bit per bin that may be nonzero: the record that makes a bin
     * nonzero sets it, the harvest that empties the bin clears it, so a
     * harvest visits only the bins used since the last one */
    _Atomic uint64_t touched[TRIP_TOUCHED_WORDS_]; /* the padding stays 0 */
    _Atomic uint64_t prio[TRIP_PRIO_LEVELS_];      /* calls by priority level */
    _Atomic uint32_t hist[TRIP_HIST_BINS];
} trip__stripe;

/* How many threads have taken a stripe, in this process (breaker.c). */
extern _Atomic uint64_t trip__stripes_taken;

/* Stripes [0, n) are the only ones written to: a harvest or a total
 * reads those alone (an idle stripe cost a roll about 100 instructions).
 * A thread takes its stripe before it writes to it, so a count this load
 * misses was made after it, and the next harvest takes it, as it takes any
 * count made while a harvest runs. Stripe 0 is always read: a ticket
 * zeroed by its caller names it. */
static inline int
trip__stripes_in_use(void)
{
    uint64_t n =
        atomic_load_explicit(&trip__stripes_taken, memory_order_acquire);
    return n < 1 ? 1 : n < TRIP_STRIPES_ ? (int)n : TRIP_STRIPES_;
}

/* A histogram's end for the quantile scans from its nonzero range [lo, hi]
 * (lo > hi: empty, 0: not known). */
static inline uint32_t
trip__hist_range_end(uint32_t lo, uint32_t hi)
{
    return lo <= hi ? hi + 1 : 0;
}

/* A finished bucket, kept in the window ring. */
typedef struct trip__bucket {
    int64_t index; /* bucket number (mono_ns / bucket_ns); -1 empty */
    uint64_t c[TRIP_C_COUNT_];
    double lat_sum_s;
    uint64_t lat_us; /* the same in whole microseconds, for running sums */
} trip__bucket;

/* Plain (non-atomic) sums of counters, used by harvests and windows. */
typedef struct trip__sums {
    uint64_t c[TRIP_C_COUNT_];
    double lat_sum_s;
    uint64_t lat_us;
} trip__sums;

typedef struct trip__listener {
    trip_listener_fn fn;
    void *user;
    int id;
} trip__listener;

/* Packing of the atomic state word: generation << 16 | flags. */
#define TRIP_SW_STATE_MASK_ 0x0Fu /* machine state: closed/open/half-open */
#define TRIP_SW_MODE_SHIFT_ 4
#define TRIP_SW_MODE_MASK_ 0xF0u
#define TRIP_SW_RAMP_ 0x100u  /* closed and ramping up */
#define TRIP_SW_LIMIT_ 0x200u /* a rate limit is configured */
#define TRIP_SW_SHED_ 0x400u  /* a needed breaker is open: shed */
#define TRIP_SW_GEN_SHIFT_ 16

/* Ticket flags. */
#define TRIP_TK_PROBE_ 1u  /* a half-open probe */
#define TRIP_TK_SHADOW_ 2u /* metrics-only: the machine would have refused */
#define TRIP_TK_NOREC_ 4u  /* disabled: record nothing */
/* admitted by trip_allow: a refused ticket has it cleared, a zeroed one never
 * had it, so that one test in trip_record refuses both */
#define TRIP_TK_ISSUED_ 8u

/* The count window's ring of the last n outcomes (bit 0 set, bit 1 a
 * failure, bit 2 slow). Its length travels with it: a recorder that loaded
 * the ring before a reconfigure swapped it indexes it by its own n, never
 * by the new configuration's. */
typedef struct trip__count_ring {
    uint32_t n;
    _Atomic uint8_t slot[];
} trip__count_ring;

/* A breaker's history: the store and the breaker's id in it, published as
 * one pointer, so that a call that loaded the store writes the id that
 * goes with it (with the two published apart, a call racing a detach
 * pushed rows of id -1, which the writer retried for ever, and one racing
 * a move to another store wrote the new store's id into the old). Never
 * changed once published; a replaced one is retired, freed with the
 * breaker. */
typedef struct trip__store_link {
    trip_store *s;
    int id;
} trip__store_link;

struct trip_breaker {
    /* --- read-mostly, first cache lines ------------------------------ */
    _Alignas(TRIP_CACHELINE_) _Atomic uint64_t sw; /* state word */
    _Atomic int64_t next_roll_ns; /* mono time of the next bucket end */
    _Atomic int64_t open_until_ns;
    _Atomic int64_t wall_offset_ns;   /* wall = mono + offset, set on rolls */
    _Atomic(trip__store_link *) link; /* NULL: no history */
    _Atomic int has_reject_listeners;
    _Atomic int prio_seen; /* a call carried a priority */
    trip_clock *clock;
    char name[128];
    /* hot-path copies of config fields, atomic so reconfigure may race */
    _Atomic int64_t hp_slow_ns;
    _Atomic uint32_t hp_consec_fail, hp_consec_timeout;
    _Atomic uint32_t hp_count_n, hp_min_calls, hp_probes, hp_successes;
    _Atomic uint64_t hp_failure_rate_bits; /* double, for count windows */
    _Atomic int64_t hp_ramp_ns;
    _Atomic uint64_t hp_ramp_start_bits;
    _Atomic int64_t hp_bucket_ns;
    _Atomic uint64_t hp_limit_rate_bits, hp_limit_burst_bits;
    _Atomic uint64_t hp_probe_share_bits;
    _Atomic int64_t hp_probe_max_ns;

    /* --- shared written counters (rare paths) ------------------------ */
    _Alignas(TRIP_CACHELINE_) _Atomic uint32_t consec_fail;
    _Alignas(TRIP_CACHELINE_) _Atomic uint32_t consec_timeout;
    /* half-open probes in flight (low 32 bits), tagged with the low 32
     * bits of the generation of the half-open period that admitted them
     * (high 32 bits): an admission that read an earlier period's state
     * can never take a probe of a later period */
    _Alignas(TRIP_CACHELINE_) _Atomic uint64_t probes;
    _Atomic uint32_t probe_successes; /* written under mu */
    /* monotonic time of the half-open period's last probe admitted or
     * recorded: all probes out since longer than half_open_max_ns reopens */
    _Atomic int64_t probe_event_ns;
    _Alignas(TRIP_CACHELINE_) _Atomic uint64_t ramp_counter;
    int64_t ramp_start_ns;
    _Alignas(TRIP_CACHELINE_) _Atomic uint64_t count_pos; /* count window */
    _Atomic int64_t count_calls, count_failures, count_slow;
    _Atomic(trip__count_ring *) count_ring;
    _Atomic int64_t ramp_start_ns_at;

    trip__stripe *stripes; /* TRIP_STRIPES_ of them */

    /* --- issue 9: limiter, priorities, flapping (atomics) -------------- */
    _Alignas(TRIP_CACHELINE_) _Atomic int64_t lim_tat; /* GCRA */
    _Atomic uint64_t lim_fraction_bits; /* adaptive share of the rate */
    _Atomic uint32_t prio_cum_q16[TRIP_PRIO_LEVELS_ + 1]; /* share >= L */
    _Atomic uint64_t prio_ctr[TRIP_PRIO_LEVELS_];
    _Atomic int flapping;

    /* --- under mu: windows, evaluation, transitions ------------------- */
    pthread_mutex_t mu;
    trip_config cfg;
    void **retired; /* count rings and store links replaced (under mu) */
    size_t n_retired;
    uint64_t *life_hist;  /* lifetime latency histogram */
    int64_t cur_bucket;   /* index of the bucket being filled */
    trip__bucket *ring;   /* long_window_buckets buckets */
    uint32_t *ring_hist;  /* window_buckets x TRIP_HIST_BINS */
    int64_t *hist_index;  /* bucket index held by each ring_hist slot */
    uint32_t *slot_range; /* per slot: lo << 16 | hi of nonzero bins */
    uint64_t *slot_bits;  /* per slot: TRIP_HIST_WORDS_ words, nonzero bins */
    uint32_t short_lo, short_hi; /* nonzero range of short_hist */
    uint64_t *short_hist;        /* running sum over the short window */
    uint64_t short_hist_total;
    uint64_t short_group[TRIP_HIST_GROUPS]; /* short_hist by bin group */
    /* the ring's sums over the short and long windows ending at bucket
     * wsum_end, kept as buckets enter the ring (wsum_ok 0: recompute) */
    trip__sums wsum_short, wsum_long;
    int64_t wsum_end;
    int wsum_ok;
    trip__sums totals; /* lifetime, harvested */
    trip__sums minute; /* the minute being accumulated */
    uint64_t *minute_hist;
    uint32_t minute_lo, minute_hi; /* nonzero range of minute_hist */
    uint64_t *period_hist; /* since the last judgement of the long window */
    uint64_t period_hist_total;
    uint32_t period_lo, period_hi; /* nonzero range of period_hist */
    int64_t minute_start_wall;     /* -1 none */
    trip__adaptive *adaptive;
    trip_eval last_eval;
    trip_reason last_trip;
    /* a successful probe at least this slow fails (ns, 0: none): set when
     * a latency rule opens the breaker (under mu) */
    int64_t probe_slow_ns;
    uint32_t trips; /* since the backoff reset */
    int64_t closed_since_ns;
    int64_t transitions;
    uint64_t rng;
    uint64_t transition_counts[7][7][TRIP_RULE_COUNT_];
    /* issue 9, under mu */
    double prio_ewma[TRIP_PRIO_LEVELS_];
    int64_t trip_times[TRIP_FLAP_MAX_];
    uint32_t trip_times_n;
    double lim_m;         /* limiter share at the last trip */
    int64_t lim_close_ns; /* when it closed after that trip; -1 open */
    struct trip__signal *signals;
    int n_signals;
    /* dependencies, under the global trip__dep_mu */
    trip_breaker *needs[TRIP_MAX_NEEDS_];
    int n_needs;
    trip_breaker *dependents[TRIP_MAX_DEPENDENTS_];
    int n_dependents;
    void (*eval_hook)(void *user, const trip_eval *ev);
    void *eval_hook_user;

    /* --- attaching to a store: serialises trip_breaker_attach, whose
     * database work runs outside mu (so a call that rolls or trips never
     * waits on the database) --------------------------------------------- */
    pthread_mutex_t attach_mu;

    /* --- listeners ---------------------------------------------------- */
    pthread_mutex_t listen_mu;
    trip__listener listeners[TRIP_MAX_LISTENERS_];
    int next_listener_id;
};

/* Transitions made under mu, announced after it is released. */
typedef struct trip__pending {
    int n;
    trip_transition t[4];
} trip__pending;

/* A transition as the history stores it (and replay returns it). */
static inline trip_transition_row
trip__transition_row(const trip_transition *t, int breaker_id)
{
    return (trip_transition_row){t->reason.wall_ns,
                                 breaker_id,
                                 t->from,
                                 t->to,
                                 t->reason.rule,
                                 t->reason.score,
                                 t->reason.threshold,
                                 t->reason.baseline,
                                 t->reason.samples};
}

/* Make room in b->retired for one more pointer; under mu. TRIP_OK or
 * TRIP_ENOMEM. */
int trip__retire_reserve(trip_breaker *b);

/* Sum the lifetime counters (harvested + not yet harvested); under mu.
 * hist (TRIP_HIST_BINS) may be NULL. */
void trip__breaker_totals(trip_breaker *b, trip__sums *out, uint64_t *hist);

/* breaker_roll.c: the bucket roll (under mu). */
void trip__roll_locked(trip_breaker *b, int64_t now, trip__pending *p);
/* Move the stripes' counts into the lifetime totals and the minute, and,
 * if into_window, into the window ring for bucket index idx. */
void trip__harvest(trip_breaker *b, trip__sums *bucket, int into_window,
                   int64_t idx);
/* Forget the windows (after a state change). */
void trip__reset_windows(trip_breaker *b);
/* Emit the minute being accumulated as a rollup row, if any. */
void trip__flush_minute(trip_breaker *b);
/* Allocate / free the window structures for b->cfg. */
int trip__windows_alloc(trip_breaker *b);
void trip__windows_free(trip_breaker *b);

/* breaker_state.c: transitions (under mu) and their announcement. */
void trip__transition_locked(trip_breaker *b, int to, int mode,
                             const trip_reason *r, int64_t now,
                             trip__pending *p);
void trip__announce(trip_breaker *b, trip__pending *p);
/* trip_record_latency() once its arguments are checked (replay checks
 * each event before it allows it). */
int trip__record_latency_checked(trip_breaker *b, const trip_ticket *t,
                                 int outcome, double latency_s);

/* replay.c: one recorded call, as replay and calibration play it. */
typedef struct trip__replay_ev {
    int64_t wall;
    double lat;
    int32_t outcome, prio;
} trip__replay_ev;
/* The event against the limits of the engine, so that the calls that play
 * it cannot fail; prev is event i - 1's time (ignored for i == 0) and who
 * begins the message. Inline: the replay loop runs it per event. */
static inline int
trip__replay_check(const char *who, const trip__replay_ev *e, size_t i,
                   int64_t prev)
{
    if (e->wall < 0 || (i > 0 && e->wall < prev))
        return trip__fail(TRIP_EINVAL,
                          "%s: event %zu: time %lld is "
                          "negative or before the previous event",
                          who, i, (long long)e->wall);
    if (e->wall > TRIP__TIME_MAX_NS)
        return trip__fail(TRIP_EINVAL,
                          "%s: event %zu: time %lld is "
                          "past 2^62 ns (the year 2116)",
                          who, i, (long long)e->wall);
    /* the limits of trip_record_latency(): an event it would refuse must
     * not be admitted and then never recorded */
    if (!isfinite(e->lat) || e->lat < 0 || e->lat > 86400.0 * 365)
        return trip__fail(TRIP_EINVAL,
                          "%s: event %zu: latency %g must "
                          "be finite and in [0, 1 year] seconds",
                          who, i, e->lat);
    if (e->outcome < TRIP_SUCCESS || e->outcome > TRIP_IGNORED)
        return trip__fail(TRIP_EINVAL, "%s: event %zu: unknown outcome %d", who,
                          i, (int)e->outcome);
    if (e->prio < 0 || e->prio > 255)
        return trip__fail(TRIP_EINVAL,
                          "%s: event %zu: priority %d not "
                          "in [0, 255]",
                          who, i, (int)e->prio);
    return TRIP_OK;
}

/* A checked event as a live caller makes it: move clk (the replay's own
 * manual clock: a store, not trip_clock_set()'s compare-and-swap), allow,
 * and record an admitted call. Returns the decision; *state receives the
 * ticket's state. */
static inline int
trip__replay_step(trip_breaker *b, trip_clock *clk, const trip__replay_ev *e,
                  int *state)
{
    trip_ticket t;
    trip__clock_store(clk, e->wall);
    int d = trip_allow_priority(b, &t, e->prio);
    *state = t.state;
    if (d == TRIP_PASS && t.decision == TRIP_PASS)
        trip__record_latency_checked(b, &t, e->outcome, e->lat);
    return d;
}

void trip__notify_rejection(trip_breaker *b, int state, int decision);
int trip__effective_state(uint64_t sw);
void trip__publish_hot_config(trip_breaker *b);

/* breaker_extras.c: issue 9 (limiter, priorities, flapping, dependencies,
 * signals). Functions named _locked run under mu. */
int trip__prio_admit(trip_breaker *b, int priority, double fraction);
int trip__limiter_admit(trip_breaker *b, int64_t now, int priority);
int trip__probe_eligible(trip_breaker *b, int priority);
void trip__prio_roll_locked(trip_breaker *b, int64_t span_ns);
void trip__limiter_update_locked(trip_breaker *b, int to, int64_t now);
double trip__flap_locked(trip_breaker *b, int64_t now, int record);
int trip__signals_evaluate_locked(trip_breaker *b, int64_t now, int64_t wall,
                                  trip_reason *r);
int trip__needs_all_closed(trip_breaker *b);
void trip__deps_announce(trip_breaker *b, const trip__pending *p);
void trip__deps_unlink(trip_breaker *b);
int trip__deps_describe(trip_breaker *b, const char **root,
                        trip_breaker **needs, int cap);
void trip__signals_free(trip_breaker *b);
uint64_t trip__sw_flags_locked(trip_breaker *b, int to);
const char *trip__signal_name(trip_breaker *b, int i, double *value);

/* The tag of b->probes for a half-open period of this generation. */
static inline uint64_t
trip__probe_tag(uint64_t generation)
{
    return (generation & 0xFFFFFFFFu) << 32;
}

static inline double
trip__bits_to_double(uint64_t u)
{
    double d;
    __builtin_memcpy(&d, &u, sizeof d);
    return d;
}

static inline uint64_t
trip__double_to_bits(double d)
{
    uint64_t u;
    __builtin_memcpy(&u, &d, sizeof u);
    return u;
}

#endif /* TRIPSENSE_BREAKER_INTERNAL_H */
