/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Interface between the engine and the history store (issue 4). */
#ifndef TRIPSENSE_STORE_INTERNAL_H
#define TRIPSENSE_STORE_INTERNAL_H

#include <stdint.h>

#include "tripsense/tripsense.h"

/* One outcome as pushed by the hot path: 32 bytes, no pointers. */
typedef struct trip__outcome_rec {
    int64_t wall_ns;
    int64_t latency_ns;
    int32_t breaker_id;
    int8_t outcome; /* trip_outcome, or -1 for a refused call */
    uint8_t state;  /* trip_state at the decision */
    uint8_t decision;
    uint8_t slow; /* 1 if latency >= the breaker's slow_call_ns */
    float weight; /* error weight (issue 9): 1 by default, 0 for success */
    uint32_t reserved_; /* zero */
} trip__outcome_rec;

/*
 * Register a breaker by name (insert or update its row: config as JSON,
 * first/last seen) and return its id. Called from trip_breaker_attach(),
 * never on the hot path; may do I/O synchronously. On a failing store it
 * still returns an id (kept in memory) and TRIP_OK, and reports the error
 * through the store's status: attaching never fails because of the disk.
 */
int trip__store_register(trip_store *s, const char *name,
                         const trip_config *cfg, int *breaker_id);

/*
 * Push one outcome. Lock-free, allocation-free, never blocks, never does
 * I/O. Applies the sampling option. Returns 1 if accepted, 0 if sampled
 * out, -1 if dropped because the ring is full (counted by the store, per
 * breaker too).
 */
int trip__store_push_outcome(trip_store *s, const trip__outcome_rec *r);

/*
 * Queue a rollup, a transition or a set of baselines (bucket-roll path,
 * at most a few times a minute): may take a short mutex, never waits on
 * I/O. Copies the rows. Drops and counts on allocation failure.
 */
void trip__store_push_rollup(trip_store *s, const trip_rollup_row *r);
void trip__store_push_transition(trip_store *s, const trip_transition_row *r);
void trip__store_push_baselines(trip_store *s, const trip_baseline_row *rows,
                                size_t n);

/* Rows of this breaker lost so far (ring full + failed writes). */
int64_t trip__store_dropped(trip_store *s, int breaker_id);

/* The store's current status (TRIP_OK when healthy). Lock-free. */
int trip__store_health(trip_store *s);

#endif /* TRIPSENSE_STORE_INTERNAL_H */
