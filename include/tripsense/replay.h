/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Replay of recorded calls through the live engine, the standalone detector
 * and calibration of thresholds against a false-trip budget. */
#ifndef TRIPSENSE_REPLAY_H
#define TRIPSENSE_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "breaker.h"
#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

/** One recorded call: it starts at wall_ns and took latency_s. */
typedef struct trip_event {
    int64_t wall_ns;  /* non-decreasing, in [0, 2^62] */
    double latency_s; /* >= 0, finite, at most a year (as recorded) */
    int outcome;      /* trip_outcome */
    int priority;     /* 0..255; 0 when unused */
} trip_event;

/**
 * One rule evaluation (a bucket roll): the window, every rule's score and
 * the baseline it was judged against. Scores of rules that are off or lack
 * data are NaN.
 */
typedef struct trip_eval {
    int64_t wall_ns;
    int state;                         /* trip_state after the evaluation */
    int64_t calls, failures;           /* short window */
    int64_t long_calls, long_failures; /* long window */
    double failure_rate, slow_rate;
    double latency_q_s; /* the configured quantile over the window */
    double ewma_failure_rate;
    double ewma_latency_s;
    double baseline_rate, baseline_rate_sd;
    double baseline_latency_s; /* exp of the baseline's mean log quantile */
    double baseline_log_latency_sd;
    double z_rate, z_latency;
    double binomial_tail;    /* P(X >= failures | baseline), NaN if unused */
    int baseline_ready;      /* the hour's bucket (or global) has data */
    int fired_rule;          /* trip_rule that fired, NONE if none */
    double score, threshold; /* of the fired rule */
    int judged; /* the anomaly rules judged the long window just now; the
                   baseline_*, z_* and binomial_tail fields are those of
                   the latest judgement */
} trip_eval;

/** Output of trip_replay(); free with trip_replay_result_free(). */
typedef struct trip_replay_result {
    size_t n_events;
    uint8_t *decisions; /* n_events trip_decision values */
    uint8_t *states;    /* n_events trip_state at each decision */
    size_t n_evals;
    trip_eval *evals; /* one per bucket roll */
    size_t n_transitions;
    trip_transition_row *transitions; /* breaker_id 0 */
    trip_snapshot final;              /* the breaker at the end */
} trip_replay_result;

/**
 * Run events through a fresh breaker on a manual clock, as live operation
 * would: for each event the clock is set to wall_ns, trip_allow() decides
 * and, on TRIP_PASS, trip_record_latency() records the outcome. The same
 * events through a live breaker on a manual clock give the same decisions,
 * evaluations and transitions, bit for bit.
 *
 * @param cfg     NULL for defaults; validated.
 * @param events  n events, wall_ns non-decreasing.
 * @param out     receives an allocated result.
 * @return TRIP_OK; TRIP_EINVAL (bad config, NULL, unsorted times, bad
 *         outcome or latency: the message names the event index);
 *         TRIP_ENOMEM.
 * Thread-safety: safe; replays share nothing.
 */
TRIP_API int trip_replay(const trip_config *cfg, const trip_event *events,
                         size_t n, trip_replay_result **out);

/**
 * Same as trip_replay() over parallel arrays (for bulk bindings).
 * priority may be NULL.
 */
TRIP_API int trip_replay_arrays(const trip_config *cfg, const int64_t *wall_ns,
                                const double *latency_s, const int32_t *outcome,
                                const int32_t *priority, size_t n,
                                trip_replay_result **out);

/** What trip_replay_arrays_flags() leaves out of its result. */
typedef enum trip_replay_flag {
    /* no evaluations (n_evals 0, evals NULL): for scoring a replay by its
     * decisions and transitions, an evaluation a bucket (176 bytes) is
     * most of what a replay at a few calls a second writes */
    TRIP_REPLAY_NO_EVALS = 1
} trip_replay_flag;

/**
 * Same as trip_replay_arrays(), with flags (trip_replay_flag values, or 0
 * for all of the result). The decisions, states, transitions and final
 * snapshot are the same whatever the flags.
 * @return as trip_replay(); TRIP_EINVAL for an unknown flag.
 * Thread-safety: safe; replays share nothing.
 */
TRIP_API int trip_replay_arrays_flags(const trip_config *cfg,
                                      const int64_t *wall_ns,
                                      const double *latency_s,
                                      const int32_t *outcome,
                                      const int32_t *priority, size_t n,
                                      unsigned flags, trip_replay_result **out);

/** Free a replay result. NULL is accepted. */
TRIP_API void trip_replay_result_free(trip_replay_result *r);

/** Options of the standalone detector. Fill with trip_detect_opts_init(). */
typedef struct trip_detect_opts {
    int seasonality;      /* trip_seasonality; AUTO */
    double half_life_h;   /* baseline half-life in hours; 168 */
    uint32_t min_samples; /* points before a bucket is used (>= 2); 30 */
    double z;             /* flag when z >= this; 6.0 */
    uint32_t k, m;        /* ... on k of the last m points; 3, 5 */
    double sigma_floor;   /* floor on the baseline sigma; 0.01 */
    double effect;        /* and value >= effect x baseline mean; 0 off */
    int log_transform;    /* score log(value) (for latencies); 0 */
} trip_detect_opts;

TRIP_API void trip_detect_opts_init(trip_detect_opts *o);

/**
 * Score any (time, value) series against its own seasonal baseline, with
 * the code the anomaly rule uses. Outputs have n entries each; any output
 * pointer may be NULL.
 *
 * @param flags  1 where the k-of-m rule fires.
 * @return TRIP_OK; TRIP_EINVAL (NULL inputs, negative, unsorted or
 *         past 2^62 ns times, bad options, finite values beyond
 *         +-1e150, non-positive values with log_transform); TRIP_ENOMEM.
 * Thread-safety: safe.
 */
TRIP_API int trip_detect(const trip_detect_opts *o, const int64_t *wall_ns,
                         const double *values, size_t n, double *scores,
                         uint8_t *flags, double *baseline_mean,
                         double *baseline_sd);

/** What calibration chose and what that choice would have done. */
typedef struct trip_calibration {
    double anomaly_z;               /* chosen k (z limit) */
    uint32_t anomaly_k, anomaly_m;  /* kept from base */
    double latency_baseline_factor; /* chosen percentile-rule factor */
    double binomial_p;              /* chosen low-volume tail limit */
    double weeks;                   /* length of the history used */
    int64_t false_trips;            /* trips (closed -> open) the chosen config
                                       makes on it */
    double false_trips_per_week;
    int64_t rejected_calls;   /* calls it refused (rejected or limited) */
    int64_t fixed_rule_trips; /* trips with every calibrated rule off */
    double max_z_rate, max_z_latency; /* largest healthy scores seen */
    int64_t candidates;               /* replays run */
} trip_calibration;

/**
 * Choose anomaly thresholds from healthy history so that a replay of it
 * trips at most budget_per_week times per week, preferring the most
 * sensitive such setting. The rest of base is kept.
 *
 * Three thresholds are chosen, each from a ladder of candidates: anomaly_z,
 * binomial_p and latency_baseline_factor (a rule base turns off stays off;
 * k-of-m and the effect sizes are kept). Each is first searched alone with
 * an equal share of the budget left by the fixed rules, then together,
 * loosening the one that trips most until the replay meets the budget, then
 * tightening each once more if the budget still holds. docs/algorithms.md
 * has the ladders. Every candidate is a full replay of the history (as
 * trip_replay() would run it), so the cost is about 10-20 replays.
 *
 * @param base    starting configuration (NULL for defaults).
 * @param events  healthy history, wall_ns non-decreasing.
 * @param budget_per_week  false trips allowed per week (> 0), e.g. 1.
 * @param out     receives the chosen configuration.
 * @param report  receives what it chose and would have done; may be NULL.
 * @return TRIP_OK; TRIP_EINVAL (NULL events or out, n = 0, a budget that
 *         is not finite and > 0, unsorted times or a bad event: the message
 *         names its index; a history spanning no time; an invalid base);
 *         TRIP_ENOMEM; TRIP_ERANGE if no candidate meets the budget (out
 *         and report then hold the least-tripping one, and the message
 *         gives its trips per week and the fixed rules' alone).
 * Thread-safety: safe.
 */
TRIP_API int trip_calibrate(const trip_config *base, const trip_event *events,
                            size_t n, double budget_per_week, trip_config *out,
                            trip_calibration *report);

#ifdef __cplusplus
}
#endif
#endif /* TRIPSENSE_REPLAY_H */
