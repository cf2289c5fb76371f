/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The circuit breaker: admission, outcomes, state, snapshot and listeners. */
#ifndef TRIPSENSE_BREAKER_H
#define TRIPSENSE_BREAKER_H

#include <stddef.h>
#include <stdint.h>

#include "clock.h"
#include "config.h"
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Breaker states. The first three are the automatic machine; the others
 *  are set by an operator with trip_breaker_set_mode(). */
typedef enum trip_state {
    TRIP_CLOSED = 0,
    TRIP_OPEN = 1,
    TRIP_HALF_OPEN = 2,
    TRIP_FORCED_OPEN = 3,   /* rejects everything */
    TRIP_FORCED_CLOSED = 4, /* admits everything, still records */
    TRIP_DISABLED = 5,      /* admits everything, records nothing */
    TRIP_METRICS_ONLY = 6   /* shadow mode: runs the machine, never rejects */
} trip_state;

/** Operator modes for trip_breaker_set_mode(). */
typedef enum trip_mode {
    TRIP_MODE_NORMAL = 0,
    TRIP_MODE_FORCED_OPEN = 3,
    TRIP_MODE_FORCED_CLOSED = 4,
    TRIP_MODE_DISABLED = 5,
    TRIP_MODE_METRICS_ONLY = 6
} trip_mode;

/** What trip_allow() decided. */
typedef enum trip_decision {
    TRIP_PASS = 0,     /* make the call, then trip_record() */
    TRIP_REJECTED = 1, /* open: do not call */
    TRIP_LIMITED = 2   /* half-open probe budget or ramp-up: do not call */
} trip_decision;

/** Outcome of a call. */
typedef enum trip_outcome {
    TRIP_SUCCESS = 0,
    TRIP_FAILURE = 1,
    TRIP_TIMEOUT = 2,
    TRIP_IGNORED = 3 /* neither success nor failure (e.g. a client error) */
} trip_outcome;

/** Why a breaker changed state. */
typedef enum trip_rule {
    TRIP_RULE_NONE = 0,
    TRIP_RULE_CONSECUTIVE_FAILURES = 1,
    TRIP_RULE_FAILURE_RATE = 2,
    TRIP_RULE_SLOW_CALL_RATE = 3,
    TRIP_RULE_LATENCY_PERCENTILE = 4,
    TRIP_RULE_EWMA_FAILURE_RATE = 5,
    TRIP_RULE_ANOMALY_FAILURE_RATE = 6,
    TRIP_RULE_ANOMALY_LATENCY = 7,
    TRIP_RULE_BINOMIAL_TAIL = 8,
    TRIP_RULE_CONSECUTIVE_TIMEOUTS = 9,
    TRIP_RULE_HALF_OPEN_FAILURE = 10, /* a probe failed: reopen */
    TRIP_RULE_HALF_OPEN_SUCCESS = 11, /* S probes succeeded: close */
    TRIP_RULE_OPEN_ELAPSED = 12,      /* open duration over: half-open */
    TRIP_RULE_MANUAL = 13,            /* operator mode change */
    TRIP_RULE_DEPENDENCY = 14,        /* a needed breaker opened */
    TRIP_RULE_HEALTH_SIGNAL = 15,     /* an external gauge stayed too high */
    TRIP_RULE_HALF_OPEN_TIMEOUT = 16, /* probes out, none recorded: reopen */
    TRIP_RULE_COUNT_ = 17
} trip_rule;

/**
 * Return the snake_case name of a rule ("failure_rate"), of a state
 * ("half_open"), of an outcome ("timeout") or of a decision ("rejected").
 * Unknown values give "unknown". The strings are static.
 *
 * Thread-safety: safe from any thread.
 */
TRIP_API const char *trip_rule_name(int rule);
TRIP_API const char *trip_state_name(int state);
TRIP_API const char *trip_outcome_name(int outcome);
TRIP_API const char *trip_decision_name(int decision);

/** Why a breaker tripped: the rule that fired and its evidence. */
typedef struct trip_reason {
    int rule;         /* trip_rule */
    double score;     /* the observed value (rate, z, latency in s, ...) */
    double threshold; /* the limit it crossed */
    double baseline;  /* the baseline it was judged against, or NaN */
    int64_t samples;  /* calls behind the score */
    int64_t wall_ns;  /* when, wall clock */
} trip_reason;

/**
 * A pass to make one call. trip_allow() fills it; give it back to
 * trip_record() exactly once. It is a plain value: copy it freely, no
 * cleanup. Fields are internal except those documented.
 */
typedef struct trip_ticket {
    int64_t start_ns;    /* monotonic time of the decision */
    uint64_t generation; /* state generation at admission */
    int decision;        /* trip_decision */
    int state;           /* trip_state at the decision */
    uint32_t flags;      /* internal */
    uint32_t stripe;     /* internal */
} trip_ticket;

/** A consistent-enough copy of a breaker's counters and state. */
typedef struct trip_snapshot {
    int state;           /* trip_state (the mode if not normal) */
    int machine_state;   /* CLOSED/OPEN/HALF_OPEN underneath */
    uint64_t generation; /* bumps on every state change */
    /* lifetime counters */
    int64_t calls, successes, failures, timeouts, ignored, slow;
    int64_t rejected, limited, late, in_flight;
    /* the short window at its last evaluation */
    int64_t window_calls, window_failures, window_slow;
    double window_failure_rate, window_slow_rate;
    double p50_s, p90_s, p95_s, p99_s, p999_s; /* NaN when empty */
    /* recovery */
    uint32_t consecutive_failures, consecutive_timeouts;
    uint32_t trips;             /* trips since the backoff last reset */
    int64_t open_until_ns;      /* monotonic; 0 if not open */
    int64_t ns_until_half_open; /* 0 if not open */
    uint32_t half_open_in_flight, half_open_successes;
    double ramp_fraction;  /* admitted fraction during ramp-up, else 1 */
    trip_reason last_trip; /* rule NONE if it never tripped */
    int64_t transitions;
    /* history store (issue 4); zero without a store */
    int64_t store_dropped; /* outcome rows lost (ring full or store error) */
    int store_status;      /* last store status (TRIP_OK when healthy) */
    /* issue 9 */
    int flapping;             /* >= flap_trips trips within flap_window_ns */
    int shed;                 /* a needed breaker is open (dependency) */
    double limit_fraction;    /* adaptive limiter: share of limit_rate now */
    double weighted_failures; /* sum of failure weights, lifetime */
} trip_snapshot;

/** A state change, given to listeners. */
typedef struct trip_transition {
    const char *breaker; /* name; valid during the callback only */
    int from, to;        /* trip_state */
    trip_reason reason;
    int64_t mono_ns;
    uint64_t generation; /* generation after the change */
} trip_transition;

typedef struct trip_breaker trip_breaker;

/** Kinds of events delivered to listeners. */
typedef enum trip_event_kind {
    TRIP_EVENT_TRANSITION = 1,
    TRIP_EVENT_REJECTION = 2 /* a call was REJECTED or LIMITED */
} trip_event_kind;

/**
 * Listener callback. For TRIP_EVENT_TRANSITION, t describes the change; for
 * TRIP_EVENT_REJECTION, t->to holds the state and t->reason.rule the
 * decision (TRIP_REJECTED or TRIP_LIMITED). It runs in the thread that made
 * the change or the call, outside every internal lock, so it may call back
 * into the breaker. It must not free the breaker.
 */
typedef void (*trip_listener_fn)(int kind, const trip_transition *t,
                                 void *user);

/**
 * Create a breaker.
 *
 * @param name   non-empty, at most 127 bytes; copied.
 * @param cfg    validated and copied; NULL means trip_config_init() defaults.
 * @param clock  time source; NULL means trip_clock_system(). It must outlive
 *               the breaker.
 * @param out    receives the breaker; NULL on failure.
 * @return TRIP_OK, TRIP_EINVAL (message names the field), TRIP_ENOMEM.
 * Thread-safety: safe from any thread.
 */
TRIP_API int trip_breaker_new(const char *name, const trip_config *cfg,
                              trip_clock *clock, trip_breaker **out);

/**
 * Free a breaker. NULL is accepted. Detaches it from its store (flushing
 * nothing further) and from no registry: free registry-owned breakers with
 * trip_registry_free() instead.
 *
 * Thread-safety: no other thread may use the breaker during or after.
 */
TRIP_API void trip_breaker_free(trip_breaker *b);

/** Return the breaker's name (static for its lifetime), or "" for NULL. */
TRIP_API const char *trip_breaker_name(const trip_breaker *b);

/**
 * Decide whether a call may go ahead.
 *
 * @param b       the breaker.
 * @param ticket  filled on every decision; pass it to trip_record() when the
 *                decision is TRIP_PASS. Record every such ticket: in
 *                half-open an unrecorded one holds a probe slot until
 *                half_open_max_ns passes, when the breaker reopens.
 * @return TRIP_PASS, TRIP_REJECTED or TRIP_LIMITED (>= 0), or TRIP_EINVAL
 *         (< 0) for a NULL argument.
 * Thread-safety: safe; lock-free and allocation-free in the closed state.
 */
TRIP_API int trip_allow(trip_breaker *b, trip_ticket *ticket);

/**
 * Like trip_allow() with a priority (0 = lowest .. 255 = highest); higher
 * priorities are admitted first in half-open and ramp-up (issue 9).
 */
TRIP_API int trip_allow_priority(trip_breaker *b, trip_ticket *ticket,
                                 int priority);

/**
 * Complete a call admitted by trip_allow(); the latency is the time since
 * the ticket was issued.
 *
 * A ticket issued before the breaker's last state change is a late result:
 * it is counted in snapshot.late and in the lifetime totals but never in the
 * new state's window or probes.
 *
 * @return TRIP_OK; TRIP_EINVAL for a NULL argument, an unknown outcome, a
 *         ticket that was not a TRIP_PASS or one trip_allow() did not fill
 *         (a zeroed ticket: TRIP_PASS is 0, so it would read as admitted).
 * Thread-safety: safe; lock-free in the closed state.
 */
TRIP_API int trip_record(trip_breaker *b, const trip_ticket *ticket,
                         int outcome);

/**
 * Complete a call with an explicit latency in seconds (>= 0, finite).
 *
 * @return as trip_record(); TRIP_EINVAL for NaN, infinite or negative
 *         latency (nothing is recorded).
 * Thread-safety: as trip_record().
 */
TRIP_API int trip_record_latency(trip_breaker *b, const trip_ticket *ticket,
                                 int outcome, double latency_s);

/**
 * Complete a call with an error weight: a failure or timeout counts
 * `weight` failures in the failure-rate rule over a time window (a
 * critical error may count 2, a retryable one 0.5); a count window
 * (window_kind COUNT) counts each failure once. Successes and ignored
 * calls ignore the weight. The weight is written with the outcome row of
 * the history.
 *
 * @param latency_s  as trip_record_latency(); a negative value means "time
 *                   since the ticket was issued".
 * @param weight     finite, in [0, 1000].
 * @return as trip_record_latency(); TRIP_EINVAL for a bad weight.
 * Thread-safety: as trip_record().
 */
TRIP_API int trip_record_weighted(trip_breaker *b, const trip_ticket *ticket,
                                  int outcome, double latency_s, double weight);

/**
 * Declare that breaker b needs breaker needed (b calls through it, or its
 * work is useless without it). When needed opens, b reports degraded
 * health and, by b's dependency_action, sheds low-priority calls or opens
 * too; b does not probe (half-open) while anything it needs is not closed.
 * At most 8 needs per breaker and 32 dependents.
 *
 * @return TRIP_OK; TRIP_EINVAL (NULL, self, or a cycle: the message names
 *         the chain); TRIP_ENOSPC (too many).
 * Thread-safety: safe from any thread. Both breakers must outlive the
 * link; trip_breaker_free() removes the links of the freed breaker.
 */
TRIP_API int trip_breaker_add_dependency(trip_breaker *b, trip_breaker *needed);

/**
 * Declare an external health signal (CPU, pool use, queue depth...) that
 * trips the breaker when its value stays above threshold for duration_ns,
 * or, if z > 0, when it stays z standard deviations above its own
 * hour-of-week baseline (learned from the values fed) for duration_ns.
 * At most 8 signals per breaker.
 *
 * @param name  1..31 bytes, unique per breaker.
 * @param threshold  absolute limit (NaN or +inf: none).
 * @param z     z-score limit against the baseline; 0 = off.
 * @param id    receives the signal's id for trip_breaker_signal().
 * @return TRIP_OK, TRIP_EINVAL, TRIP_EEXIST, TRIP_ENOSPC.
 * Thread-safety: safe from any thread.
 */
TRIP_API int trip_breaker_add_signal(trip_breaker *b, const char *name,
                                     double threshold, double z,
                                     int64_t duration_ns, int *id);

/**
 * Feed the current value of a signal. The rule is judged on bucket rolls.
 *
 * @return TRIP_OK; TRIP_EINVAL (NULL, unknown id, NaN or infinite value).
 * Thread-safety: safe from any thread (takes the breaker's evaluation lock
 * briefly; do not call at call rate).
 */
TRIP_API int trip_breaker_signal(trip_breaker *b, int id, double value);

/**
 * Read a signal's last value and its baseline mean and sd (NaN until
 * learned). Any output may be NULL.
 * @return TRIP_OK, TRIP_EINVAL.
 */
TRIP_API int trip_breaker_signal_get(trip_breaker *b, int id, double *value,
                                     double *mean, double *sd);

/**
 * Return the current trip_state, or a negative status for NULL.
 * Thread-safety: safe, lock-free.
 */
TRIP_API int trip_breaker_state(const trip_breaker *b);

/**
 * Fill *snap. Counters are read without stopping callers, so totals may be
 * a few calls apart from each other under concurrent use.
 *
 * @return TRIP_OK or TRIP_EINVAL.
 * Thread-safety: safe from any thread.
 */
TRIP_API int trip_snapshot_get(trip_breaker *b, trip_snapshot *snap);

/**
 * Set the operator mode (forced open/closed, disabled, metrics-only, or
 * back to normal, which resumes in CLOSED with fresh windows).
 *
 * @return TRIP_OK or TRIP_EINVAL (NULL, unknown mode).
 * Thread-safety: safe from any thread; listeners see the transition.
 */
TRIP_API int trip_breaker_set_mode(trip_breaker *b, int mode);

/**
 * Replace the configuration of a running breaker. Windows and counters are
 * kept when their shape is unchanged, reset otherwise.
 *
 * @return TRIP_OK or TRIP_EINVAL (cfg invalid; the old one stays).
 * Thread-safety: safe from any thread.
 */
TRIP_API int trip_breaker_reconfigure(trip_breaker *b, const trip_config *cfg);

/** Copy the breaker's configuration into *cfg. Thread-safety: safe. */
TRIP_API int trip_breaker_config(trip_breaker *b, trip_config *cfg);

/**
 * Register a listener (at most 8 per breaker).
 *
 * @param id  receives an id for trip_breaker_remove_listener(); may be NULL.
 * @return TRIP_OK, TRIP_EINVAL, TRIP_ENOSPC (8 already).
 * Thread-safety: safe; a callback may still run once after removal if it
 * had already started in another thread.
 */
TRIP_API int trip_breaker_add_listener(trip_breaker *b, trip_listener_fn fn,
                                       void *user, int *id);

/** Remove a listener. @return TRIP_OK, TRIP_EINVAL, TRIP_ENOTFOUND. */
TRIP_API int trip_breaker_remove_listener(trip_breaker *b, int id);

/**
 * Run a bucket roll now if the current bucket has ended (normally the next
 * call does it). Useful with a manual clock when no calls arrive.
 *
 * @return TRIP_OK or TRIP_EINVAL. Thread-safety: safe.
 */
TRIP_API int trip_breaker_tick(trip_breaker *b);

#ifdef __cplusplus
}
#endif
#endif /* TRIPSENSE_BREAKER_H */
