/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Interface between the engine and the adaptive detectors (issue 5). */
#ifndef TRIPSENSE_ADAPTIVE_H
#define TRIPSENSE_ADAPTIVE_H

#include <stddef.h>
#include <stdint.h>

#include "hist.h"
#include "tripsense/tripsense.h"

/*
 * Aggregates of a span of time (one bucket, the short or the long window),
 * as the engine hands them to the detectors. hist has TRIP_HIST_BINS
 * entries summing to hist_total (the non-ignored calls with a latency).
 * The engine keeps per-bucket histograms for the short window only: the
 * bucket and the short window point at the short window's histogram (the
 * percentile rule judges it at every roll); the long window points at the
 * histogram of the calls since the last judgement (the period's), which
 * the anomaly rules judge and the baseline learns. Counts (calls,
 * failures, ...) are each window's own.
 */
typedef struct trip__window {
    int64_t calls; /* successes + failures + timeouts (not ignored) */
    int64_t successes, failures, timeouts, ignored, slow;
    int64_t rejected, limited;
    double latency_sum_s;
    const uint64_t *hist;
    uint64_t hist_total;
    uint32_t hist_lo;  /* no nonzero bin below it (0 when unknown) */
    uint32_t hist_end; /* nor from it on (0 when unknown: TRIP_HIST_BINS) */
    /* hist summed by bin group (TRIP_HIST_GROUPS), or NULL: quantiles
     * then skip groups instead of scanning from hist_lo */
    const uint64_t *hist_groups;
    int64_t span_ns; /* length of time the window covers */
} trip__window;

/* Opaque per-breaker adaptive state: EWMAs, baseline, k-of-m memory. */
typedef struct trip__adaptive trip__adaptive;

/* Create for cfg (already validated). Returns TRIP_OK or TRIP_ENOMEM. */
int trip__adaptive_new(const trip_config *cfg, trip__adaptive **out);
void trip__adaptive_free(trip__adaptive *a);

/* Apply a new validated config, keeping learned baselines where the
 * seasonality is unchanged. */
void trip__adaptive_reconfigure(trip__adaptive *a, const trip_config *cfg);

/*
 * Evaluate the adaptive rules once, at the end of a bucket.
 *
 * wall_ns: wall time at the end of the bucket (seasonality uses it).
 * bucket:  the bucket that just ended (EWMAs take it; its span_ns may be
 *          more than one bucket after an idle gap).
 * shortw, longw: the short and long windows, bucket included.
 * closed:  1 when the machine is CLOSED (not open, half-open or ramping):
 *          only then may a rule fire and only then may the baseline learn,
 *          and then only from evaluations the detectors judge healthy.
 * ev:      receives the adaptive fields (ewma_*, baseline_*, z_*,
 *          binomial_tail, latency_q_s, baseline_ready); the engine fills
 *          the rest.
 * reason:  if a rule fires, receives rule, score, threshold, baseline and
 *          samples (wall_ns is filled by the engine).
 * Returns the trip_rule that fired or TRIP_RULE_NONE. Never fails: a
 * numerical problem leaves that score NaN and the rule silent.
 * Pure: no I/O, no clock reads, no allocation.
 */
int trip__adaptive_evaluate(trip__adaptive *a, const trip_config *cfg,
                            int64_t wall_ns, const trip__window *bucket,
                            const trip__window *shortw,
                            const trip__window *longw, int closed,
                            trip_eval *ev, trip_reason *reason);

/* Baseline persistence through the store's baselines table. */
size_t trip__adaptive_export(const trip__adaptive *a, int breaker_id,
                             int64_t now_wall_ns, trip_baseline_row *rows,
                             size_t cap);
int trip__adaptive_import(trip__adaptive *a, const trip_baseline_row *rows,
                          size_t n);
/* Warm start from stored per-minute rollups (oldest first): every metric,
 * or (logq_only) only the extra latency quantile's, for a baseline whose
 * saved rows held everything else (trip__adaptive_logq_cold). */
int trip__adaptive_warm_start(trip__adaptive *a, const trip_config *cfg,
                              const trip_rollup_row *rows, size_t n,
                              int logq_only);
/* Whether the breaker judges a latency quantile other than p95/p99 whose
 * baseline has learned nothing (its saved rows were of another quantile,
 * or saved before rows named theirs) and which the rollups keep (p50, p90,
 * p99.9). */
int trip__adaptive_logq_cold(const trip__adaptive *a);
/* Upper bound on the rows trip__adaptive_export() can produce. */
size_t trip__adaptive_export_max(void);

#endif /* TRIPSENSE_ADAPTIVE_H */
