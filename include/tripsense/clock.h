/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Injectable clocks: the system clock for live use, a manual one for tests. */
#ifndef TRIPSENSE_CLOCK_H
#define TRIPSENSE_CLOCK_H

#include <stdint.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * A source of time. Two readings are offered: a monotonic one (nanoseconds
 * from an arbitrary origin) for durations, windows and latencies, and a wall
 * one (nanoseconds since the Unix epoch, UTC) for seasonality and history.
 *
 * The system clock reads CLOCK_MONOTONIC and CLOCK_REALTIME. A manual clock
 * only moves when told to; its wall time is its monotonic time plus a fixed
 * offset given at creation, so replaying recorded wall timestamps through a
 * manual clock with offset 0 reproduces them exactly.
 */
typedef struct trip_clock trip_clock;

/**
 * Return the process-wide system clock. It is static: never free it
 * (trip_clock_free ignores it).
 *
 * Thread-safety: safe from any thread.
 */
TRIP_API trip_clock *trip_clock_system(void);

/**
 * Create a manual clock.
 *
 * @param start_ns   initial monotonic reading, nanoseconds.
 * @param wall_offset_ns  wall = monotonic + wall_offset_ns; in [-2^62, 2^62).
 * @param out        receives the clock; set to NULL on failure.
 * @return TRIP_OK, TRIP_EINVAL (out is NULL, start_ns < 0 or > 2^62, the
 *         offset out of range),
 *         TRIP_ENOMEM.
 * Thread-safety: safe from any thread.
 */
TRIP_API int trip_clock_manual_new(int64_t start_ns, int64_t wall_offset_ns,
                                   trip_clock **out);

/**
 * Set a manual clock's monotonic reading. Time may not go backwards.
 *
 * @return TRIP_OK; TRIP_EINVAL if clock is NULL or not manual;
 *         TRIP_ERANGE if now_ns is before the current reading or past
 *         2^62 ns (146 years), the latest time a manual clock reaches.
 * Thread-safety: safe; readers in other threads see the old or new value.
 */
TRIP_API int trip_clock_set(trip_clock *clock, int64_t now_ns);

/**
 * Advance a manual clock by delta_ns (>= 0).
 *
 * @return TRIP_OK; TRIP_EINVAL if clock is NULL or not manual;
 *         TRIP_ERANGE if delta_ns is negative or the result is past 2^62.
 * Thread-safety: safe from any thread.
 */
TRIP_API int trip_clock_advance(trip_clock *clock, int64_t delta_ns);

/**
 * Read the monotonic time in nanoseconds. NULL means the system clock.
 *
 * Thread-safety: safe from any thread.
 */
TRIP_API int64_t trip_clock_now(const trip_clock *clock);

/**
 * Read the wall time in nanoseconds since the Unix epoch (UTC).
 * NULL means the system clock.
 *
 * Thread-safety: safe from any thread.
 */
TRIP_API int64_t trip_clock_wall(const trip_clock *clock);

/**
 * Free a manual clock. NULL and the system clock are ignored. The clock
 * must outlive every breaker created with it.
 *
 * Thread-safety: not safe while other threads use the clock.
 */
TRIP_API void trip_clock_free(trip_clock *clock);

#ifdef __cplusplus
}
#endif
#endif /* TRIPSENSE_CLOCK_H */
