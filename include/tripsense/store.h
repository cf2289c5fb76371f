/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Outcome history in SQLite: open, attach, status and the read API. */
#ifndef TRIPSENSE_STORE_H
#define TRIPSENSE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "breaker.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct trip_store trip_store;

/** What to keep of raw outcomes (rollups are always exact). */
typedef enum trip_sample_mode {
    TRIP_SAMPLE_ALL = 0,      /* every outcome row */
    TRIP_SAMPLE_ONE_IN_N = 1, /* every sample_n-th outcome per breaker */
    TRIP_SAMPLE_FAILURES = 2  /* only failures, timeouts and slow calls */
} trip_sample_mode;

/** Options for trip_store_open(); fill with trip_store_opts_init(). */
typedef struct trip_store_opts {
    uint32_t ring_capacity;    /* outcome slots (power of two); 65536 */
    int64_t flush_interval_ns; /* writer commits at least this often; 200 ms */
    uint32_t batch_size;       /* or after this many rows; 8192 */
    int synchronous;           /* 0 OFF, 1 NORMAL, 2 FULL; 1 */
    int64_t busy_timeout_ms;   /* wait on another process's lock; 5000 */
    int sample_mode;           /* trip_sample_mode; ALL */
    uint32_t sample_n;         /* for ONE_IN_N; 10 */
    double retention_days;     /* raw outcomes older are deleted; 7; 0 keeps;
                                   at most 36500 */
    double rollup_retention_days; /* rollups older are deleted; 400; 0 keeps;
                                     at most 36500 */
    int record_rejections;        /* also write a row per refused call; 0 */
    int read_only;                /* open for reading only (analysis); 0 */
    const char *vfs;              /* SQLite VFS name; NULL for the default.
                                     Copied at open. For tests (fault
                                     injection) and special filesystems. */
    uint32_t max_pending;         /* rows the writer holds while the database
                                     fails before it drops (and counts) the
                                     oldest; 0 = 4 x ring_capacity */
} trip_store_opts;

/** Fill opts with defaults. NULL is ignored. Thread-safety: safe. */
TRIP_API void trip_store_opts_init(trip_store_opts *opts);

/**
 * Open (creating if needed) a history database and start its writer thread.
 *
 * @param path  a file path, or ":memory:" for a private in-memory store.
 * @param opts  NULL for defaults.
 * @param out   receives the store; NULL on failure.
 * @return TRIP_OK; TRIP_EINVAL; TRIP_ESCHEMA (file written by a newer
 *         tripsense); TRIP_ECORRUPT (not a tripsense database or damaged);
 *         TRIP_EREADONLY; TRIP_EBUSY; TRIP_EIO; TRIP_ENOMEM; TRIP_ETHREAD.
 *         trip_errmsg() names the file and SQLite's message.
 * Thread-safety: safe from any thread.
 */
TRIP_API int trip_store_open(const char *path, const trip_store_opts *opts,
                             trip_store **out);

/**
 * Flush everything accepted so far, stop the writer and close. NULL is
 * accepted. Detach or free every breaker attached to it first.
 *
 * @return TRIP_OK or the last write error (the store is closed regardless).
 * Thread-safety: no other thread may use the store during or after.
 */
TRIP_API int trip_store_close(trip_store *s);

/**
 * Wait until every row accepted before this call is committed (or dropped
 * and counted).
 *
 * @return TRIP_OK or the store's current error status.
 * Thread-safety: safe from any thread.
 */
TRIP_API int trip_store_flush(trip_store *s);

/**
 * Attach a breaker to a store (NULL detaches). From then on its outcomes,
 * per-minute rollups and transitions are written there, its config is
 * recorded, and its baseline is warm-started from the stored rollups and
 * saved baselines. A breaker has at most one store; a store many breakers.
 * The database work (registration, which waits up to busy_timeout_ms for a
 * locked file, and the warm start's reads) runs without the breaker's lock:
 * calls, rolls and trips go on meanwhile, their outcomes not yet written.
 *
 * @return TRIP_OK, TRIP_EINVAL.
 * Thread-safety: safe from any thread; attaches of one breaker run one at
 * a time.
 */
TRIP_API int trip_breaker_attach(trip_breaker *b, trip_store *s);

/** Health of a store. */
typedef struct trip_store_status {
    int status;            /* TRIP_OK or the last write error */
    char message[256];     /* the last error, "" when healthy */
    int64_t accepted;      /* outcome rows pushed into the ring */
    int64_t written;       /* rows committed */
    int64_t dropped_full;  /* rows lost because the ring was full */
    int64_t dropped_error; /* rows lost because a write failed for good */
    int64_t sampled_out;   /* rows skipped by the sampling option */
    int64_t rollups_written, transitions_written;
    int64_t batches, write_errors, retries;
    int64_t pending;       /* rows in the ring or held by the writer */
    int64_t other_dropped; /* rollup, transition and baseline rows lost */
    int64_t reopens;       /* times the file was found deleted or replaced
                              and created anew at its path */
} trip_store_status;

/** Fill *st. @return TRIP_OK or TRIP_EINVAL. Thread-safety: safe. */
TRIP_API int trip_store_status_get(trip_store *s, trip_store_status *st);

/** A raw outcome row. */
typedef struct trip_outcome_row {
    int64_t wall_ns;
    double latency_s;
    int outcome;  /* trip_outcome, or -1 for a refused call */
    int state;    /* trip_state when the call was decided */
    int decision; /* trip_decision */
    int breaker_id;
    int slow;      /* 1 if latency >= the breaker's slow-call threshold */
    double weight; /* error weight (trip_record_weighted); 0 for success */
} trip_outcome_row;

/** Per-minute rollup row. Counts are exact; quantiles from the histogram. */
typedef struct trip_rollup_row {
    int64_t minute_ns; /* wall time of the minute's start */
    int breaker_id;
    int64_t calls, successes, failures, timeouts, ignored, slow;
    int64_t rejected, limited;
    double latency_sum_s;
    double p50_s, p90_s, p95_s, p99_s, p999_s; /* NaN when no calls */
} trip_rollup_row;

/** A recorded state change. */
typedef struct trip_transition_row {
    int64_t wall_ns;
    int breaker_id;
    int from, to, rule;
    double score, threshold, baseline;
    int64_t samples;
} trip_transition_row;

/** One saved baseline bucket (issue 5). */
typedef struct trip_baseline_row {
    int breaker_id;
    int bucket; /* 0..167 hour of week, 0..23 hour of day, -1 global */
    int metric; /* 0 failure rate, 1 log p95, 2 log p99,
                   3 1/calls behind the rate, 4 1/samples behind
                   log p95, 5 log of the configured quantile,
                   6 1/samples behind log p99, 7 1/samples behind
                   metric 5, 8 excess rate variance between
                   windows (docs/algorithms.md) */
    double mean, var;
    int64_t n;
    int64_t updated_ns;
    double quantile; /* metrics 5 and 7: the latency_quantile they were
                        learned for, else NaN (and in rows saved before
                        schema 3, which a warm start does not use) */
} trip_baseline_row;

/**
 * Look up a breaker's id in the store by name.
 * @return TRIP_OK, TRIP_EINVAL, TRIP_ENOTFOUND.
 * Thread-safety: safe from any thread.
 */
TRIP_API int trip_store_breaker_id(trip_store *s, const char *name, int *id);

/**
 * Return the name of breaker id as a string to free with trip_string_free().
 * @return TRIP_OK, TRIP_EINVAL, TRIP_ENOTFOUND.
 */
TRIP_API int trip_store_breaker_name(trip_store *s, int id, char **name);

/**
 * Read rows with from_ns <= time < to_ns, oldest first, for one breaker
 * (breaker_id >= 0) or all (-1), into caller arrays of capacity cap.
 * *n receives the number of rows written. If more rows exist than cap,
 * *n == cap and *more is set to 1: call again with from_ns past the last
 * row's time (rows of the same timestamp are never split across calls).
 * Reads see committed rows only; they never block writers (WAL).
 *
 * @return TRIP_OK, TRIP_EINVAL, TRIP_ECORRUPT, TRIP_EIO, TRIP_EBUSY.
 * Thread-safety: safe from any thread.
 */
TRIP_API int trip_store_read_outcomes(trip_store *s, int breaker_id,
                                      int64_t from_ns, int64_t to_ns,
                                      trip_outcome_row *rows, size_t cap,
                                      size_t *n, int *more);
TRIP_API int trip_store_read_rollups(trip_store *s, int breaker_id,
                                     int64_t from_ns, int64_t to_ns,
                                     trip_rollup_row *rows, size_t cap,
                                     size_t *n, int *more);
TRIP_API int trip_store_read_transitions(trip_store *s, int breaker_id,
                                         int64_t from_ns, int64_t to_ns,
                                         trip_transition_row *rows, size_t cap,
                                         size_t *n, int *more);
TRIP_API int trip_store_read_baselines(trip_store *s, int breaker_id,
                                       trip_baseline_row *rows, size_t cap,
                                       size_t *n, int *more);

/**
 * Count rows in a range, to size the arrays of the read functions.
 * table: 0 outcomes, 1 rollups, 2 transitions, 3 baselines.
 */
TRIP_API int trip_store_count(trip_store *s, int table, int breaker_id,
                              int64_t from_ns, int64_t to_ns, int64_t *n);

#ifdef __cplusplus
}
#endif
#endif /* TRIPSENSE_STORE_H */
