/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Internal helpers shared by the library's modules: errors, allocation. */
#ifndef TRIPSENSE_INTERNAL_H
#define TRIPSENSE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "tripsense/tripsense.h"

#if defined(__GNUC__)
#define TRIP_PRINTF_(a, b) __attribute__((format(printf, a, b)))
#define TRIP_LIKELY_(x) __builtin_expect(!!(x), 1)
#define TRIP_UNLIKELY_(x) __builtin_expect(!!(x), 0)
#else
#define TRIP_PRINTF_(a, b)
#define TRIP_LIKELY_(x) (x)
#define TRIP_UNLIKELY_(x) (x)
#endif

#define TRIP_CACHELINE_ 64

/*
 * Record a failure for trip_errmsg() in this thread and return status, so
 * that call sites read: return trip__fail(TRIP_EINVAL, "x must be ...").
 */
int trip__fail(int status, const char *fmt, ...) TRIP_PRINTF_(2, 3);

/* Clear this thread's message (used at the start of some entry points). */
void trip__clear_error(void);

/*
 * All heap allocation of the library goes through these, so that the
 * fault-injection tests (issue 8) can fail the Nth allocation.
 */
void *trip__malloc(size_t n);
void *trip__calloc(size_t count, size_t size);
void *trip__aligned_calloc(size_t align, size_t size);
void *trip__realloc(void *p, size_t n);
void trip__free(void *p);
char *trip__strdup(const char *s);

/*
 * Test hook: make the nth allocation from now fail (n >= 1), then every
 * allocation succeeds again; 0 disables. Returns the number of allocations
 * counted since the last call. Not part of the public API.
 */
TRIP_API void trip__test_fail_alloc_after(long n);
TRIP_API long trip__test_alloc_count(void);

/* The latest time a manual clock or a replay may reach: 2^62 ns (146
 * years). The engine adds durations (buckets, open periods, windows) to
 * the time; below this bound none of those sums can overflow. */
#define TRIP__TIME_MAX_NS ((int64_t)1 << 62)

/* Coarse monotonic reading (a few ms resolution) for the rejected path. */
int64_t trip__clock_coarse(const trip_clock *clock);

/* Move a manual clock to now_ns, which the caller has checked: in
 * [current time, 2^62]. For a clock only its caller moves (replay's):
 * a plain store where trip_clock_set() needs a compare-and-swap loop. */
void trip__clock_store(trip_clock *clock, int64_t now_ns);

/* A growable string for the JSON and Prometheus writers. */
typedef struct trip__buf {
    char *data;
    size_t len, cap;
    int failed; /* an allocation failed: everything after is dropped */
} trip__buf;

void trip__buf_printf(trip__buf *b, const char *fmt, ...) TRIP_PRINTF_(2, 3);
/* Append s as a JSON string literal with escapes. */
void trip__buf_json_str(trip__buf *b, const char *s);
/* 1 if s is valid UTF-8 (names end up in JSON and Prometheus text, which
 * require it), else 0. */
int trip__utf8_valid(const char *s);
/* Append a double as JSON (null for NaN/inf). */
void trip__buf_json_num(trip__buf *b, double v);
/* Hand the string to *out (TRIP_OK) or free it (TRIP_ENOMEM). */
int trip__buf_finish(trip__buf *b, char **out);

/* splitmix64: the jitter generator, deterministic for a seed. */
static inline uint64_t
trip__splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* llround(x) for 0 <= x < 2^63, inlined: the library call was a tenth
 * of a replayed event's instructions. The truncation is x's floor and
 * x - floor(x) is exact, so halves round up as llround's do. */
static inline int64_t
trip__round_nonneg(double x)
{
    int64_t r = (int64_t)x;
    return r + (x - (double)r >= 0.5);
}

/* FNV-1a of a string, used to seed jitter from a breaker's name. */
uint64_t trip__hash_str(const char *s);

#endif /* TRIPSENSE_INTERNAL_H */
