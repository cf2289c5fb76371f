/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Log-linear latency histogram: O(1) insert, mergeable, <= 0.8% error. */
#ifndef TRIPSENSE_HIST_H
#define TRIPSENSE_HIST_H

#include <stddef.h>
#include <stdint.h>

/*
 * Values are latencies in microseconds, clamped to [0, 2^TRIP_HIST_MAX_BITS).
 * Values below 2^TRIP_HIST_SUB_BITS get a bin each (exact); above, each
 * power of two is split into 2^TRIP_HIST_SUB_BITS equal bins, so a bin's
 * width is at most 1/64 of its lower edge and reporting the bin's midpoint
 * is within 1/128 (0.78%) of any value in it.
 */
#define TRIP_HIST_SUB_BITS 6
#define TRIP_HIST_SUB (1 << TRIP_HIST_SUB_BITS)
#define TRIP_HIST_MAX_BITS 32
#define TRIP_HIST_BINS                                                         \
    ((TRIP_HIST_MAX_BITS - TRIP_HIST_SUB_BITS + 1) * TRIP_HIST_SUB)

/* Bin of a latency in nanoseconds (negative counts as 0). */
static inline uint32_t
trip__hist_bin(int64_t latency_ns)
{
    uint64_t us = latency_ns > 0 ? (uint64_t)latency_ns / 1000u : 0u;
    if (us < TRIP_HIST_SUB)
        return (uint32_t)us;
    if (us >= ((uint64_t)1 << TRIP_HIST_MAX_BITS))
        return TRIP_HIST_BINS - 1;
    unsigned msb = 63u - (unsigned)__builtin_clzll(us);
    unsigned shift = msb - TRIP_HIST_SUB_BITS;
    uint32_t sub = (uint32_t)(us >> shift) - TRIP_HIST_SUB;
    return (shift + 1u) * TRIP_HIST_SUB + sub;
}

/* Bins are also counted in groups of TRIP_HIST_SUB (one power of two above
 * the exact bins), so that a quantile scan can skip whole groups. */
#define TRIP_HIST_GROUPS (TRIP_HIST_BINS / TRIP_HIST_SUB)

/* Lower edge and width of a bin, in microseconds. */
void trip__hist_bin_range(uint32_t bin, double *lo_us, double *width_us);

/* Representative value (midpoint) of a bin, in seconds. */
double trip__hist_bin_value_s(uint32_t bin);

/*
 * The q-quantile (0 <= q <= 1) of counts[TRIP_HIST_BINS] holding total
 * values, in seconds; NaN when total is 0. Nearest-rank on the bins.
 */
double trip__hist_quantile_s(const uint64_t *counts, uint64_t total, double q);

/* Several quantiles in one pass; qs ascending. */
void trip__hist_quantiles_s(const uint64_t *counts, uint64_t total,
                            const double *qs, size_t nq, double *out);

/* The same, for counts that are zero below bin `from`: the scan starts
 * there. */
void trip__hist_quantiles_from_s(const uint64_t *counts, uint64_t total,
                                 uint32_t from, const double *qs, size_t nq,
                                 double *out);

/* The same over counts whose group totals (groups[TRIP_HIST_GROUPS], each
 * the sum of its TRIP_HIST_SUB bins) are kept alongside: the scan visits
 * every group but only the bins of the groups where a quantile falls, at
 * most TRIP_HIST_GROUPS + nq * TRIP_HIST_SUB reads whatever the range of
 * the values; a single quantile in the upper half is found from the top,
 * from bin end down (the bins from end on are empty; 0: not known). Same
 * results as trip__hist_quantiles_s(). */
void trip__hist_quantiles_grouped_s(const uint64_t *counts,
                                    const uint64_t *groups, uint64_t total,
                                    uint32_t end, const double *qs, size_t nq,
                                    double *out);

#endif /* TRIPSENSE_HIST_H */
