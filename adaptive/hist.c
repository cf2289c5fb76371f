/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Quantiles of the log-linear latency histogram declared in hist.h. */
#include "hist.h"

#include <math.h>

_Static_assert(TRIP_HIST_SUB % 8 == 0, "the scans pass eight bins at a time");

void
trip__hist_bin_range(uint32_t bin, double *lo_us, double *width_us)
{
    if (bin < TRIP_HIST_SUB) {
        *lo_us = (double)bin;
        *width_us = 1.0;
        return;
    }
    uint32_t shift = bin / TRIP_HIST_SUB - 1u;
    uint32_t sub = bin % TRIP_HIST_SUB;
    /* a power of two below 2^64 converts exactly: ldexp's result, without
     * the library call */
    double scale = (double)((uint64_t)1 << shift);
    *lo_us = (double)(TRIP_HIST_SUB + sub) * scale;
    *width_us = scale;
}

double
trip__hist_bin_value_s(uint32_t bin)
{
    double lo, width;
    if (bin >= TRIP_HIST_BINS)
        bin = TRIP_HIST_BINS - 1;
    trip__hist_bin_range(bin, &lo, &width);
    /* Bins below TRIP_HIST_SUB hold whole microseconds [lo, lo+1): their
     * midpoint keeps the error under half a microsecond. */
    return (lo + width / 2.0) * 1e-6;
}

void
trip__hist_quantiles_s(const uint64_t *counts, uint64_t total, const double *qs,
                       size_t nq, double *out)
{
    trip__hist_quantiles_from_s(counts, total, 0, qs, nq, out);
}

/* Nearest rank: the smallest value with rank >= ceil(q * n), q ascending.
 * Ranks are computed once so the scans are tight loops over the bins.
 * Returns 0 when there is nothing to rank (out is then NaN). */
static int
trip_hist_ranks_(uint64_t total, const double *qs, size_t nq, uint64_t *rank,
                 double *out)
{
    if (total == 0 || nq > 16) {
        for (size_t i = 0; i < nq; i++)
            out[i] = NAN;
        return 0;
    }
    for (size_t i = 0; i < nq; i++) {
        double q = qs[i] < 0 ? 0 : (qs[i] > 1 ? 1 : qs[i]);
        rank[i] = (uint64_t)ceil(q * (double)total);
        if (rank[i] == 0)
            rank[i] = 1;
    }
    return 1;
}

/* Scan bins [from, to) adding to *seen and assigning the quantiles whose
 * rank is reached; returns the index of the next quantile to assign.
 * Eight bins whose sum cannot reach the next rank are passed at once (a
 * sum without branches); the eight that can are read one by one. */
static size_t
trip_hist_scan_(const uint64_t *counts, uint32_t from, uint32_t to,
                const uint64_t *rank, size_t qi, size_t nq, uint64_t *seen,
                double *out)
{
    uint32_t bin = from;
    while (bin < to && qi < nq) {
        uint32_t end = to - bin >= 8 ? bin + 8 : to;
        if (end == bin + 8) {
            uint64_t s = 0;
            for (uint32_t j = bin; j < end; j++)
                s += counts[j];
            if (*seen + s < rank[qi]) {
                *seen += s;
                bin = end;
                continue;
            }
        }
        for (; bin < end && qi < nq; bin++) {
            if (counts[bin] == 0)
                continue;
            *seen += counts[bin];
            while (qi < nq && *seen >= rank[qi])
                out[qi++] = trip__hist_bin_value_s(bin);
        }
    }
    return qi;
}

void
trip__hist_quantiles_from_s(const uint64_t *counts, uint64_t total,
                            uint32_t from, const double *qs, size_t nq,
                            double *out)
{
    uint64_t rank[16] = {0}, seen = 0;
    if (counts == NULL || !trip_hist_ranks_(total, qs, nq, rank, out)) {
        for (size_t i = 0; i < nq; i++)
            out[i] = NAN;
        return;
    }
    size_t qi =
        trip_hist_scan_(counts, from, TRIP_HIST_BINS, rank, 0, nq, &seen, out);
    for (; qi < nq; qi++)
        out[qi] = trip__hist_bin_value_s(TRIP_HIST_BINS - 1);
}

/* The bin of nearest rank `rank` found from the top: the highest bin with
 * at least total - rank + 1 samples at or above it is the lowest whose
 * running sum from the bottom reaches rank, so the answer is the same; a
 * rank in the upper half has fewer bins above it. Returns 0 when the
 * counts hold fewer than total - rank + 1 samples (the caller scans up). */
static int
trip_hist_top_down_(const uint64_t *counts, const uint64_t *groups,
                    uint64_t total, uint32_t top, uint64_t rank, double *out)
{
    uint64_t need = total - rank + 1, above = 0;
    for (uint32_t g = (top - 1) / TRIP_HIST_SUB + 1; g-- > 0;) {
        if (above + groups[g] < need) {
            above += groups[g];
            continue;
        }
        /* eight bins at a time, then one by one in the eight that reach
         * it (TRIP_HIST_SUB is a multiple of eight), from the eight that
         * hold bin top - 1 down */
        uint32_t first = (g + 1) * TRIP_HIST_SUB;
        if (first > (top + 7) / 8 * 8)
            first = (top + 7) / 8 * 8;
        for (uint32_t end = first; end > g * TRIP_HIST_SUB; end -= 8) {
            uint64_t s = 0;
            for (uint32_t j = end - 8; j < end; j++)
                s += counts[j];
            if (above + s < need) {
                above += s;
                continue;
            }
            for (uint32_t bin = end; bin-- > end - 8;) {
                above += counts[bin];
                if (above >= need) {
                    *out = trip__hist_bin_value_s(bin);
                    return 1;
                }
            }
        }
        return 0; /* a group total above its bins' sum */
    }
    return 0;
}

void
trip__hist_quantiles_grouped_s(const uint64_t *counts, const uint64_t *groups,
                               uint64_t total, uint32_t end, const double *qs,
                               size_t nq, double *out)
{
    uint64_t rank[16] = {0}, seen = 0;
    size_t qi = 0;
    if (counts == NULL || groups == NULL ||
        !trip_hist_ranks_(total, qs, nq, rank, out)) {
        for (size_t i = 0; i < nq; i++)
            out[i] = NAN;
        return;
    }
    /* one high quantile (the percentile rule's p99): from the top */
    uint32_t top = end > 0 && end < TRIP_HIST_BINS ? end : TRIP_HIST_BINS;
    if (nq == 1 && rank[0] > total / 2 &&
        trip_hist_top_down_(counts, groups, total, top, rank[0], out))
        return;
    for (uint32_t g = 0; g < TRIP_HIST_GROUPS && qi < nq; g++) {
        if (seen + groups[g] < rank[qi]) {
            seen += groups[g];
            continue;
        }
        qi = trip_hist_scan_(counts, g * TRIP_HIST_SUB, (g + 1) * TRIP_HIST_SUB,
                             rank, qi, nq, &seen, out);
    }
    for (; qi < nq; qi++)
        out[qi] = trip__hist_bin_value_s(TRIP_HIST_BINS - 1);
}

double
trip__hist_quantile_s(const uint64_t *counts, uint64_t total, double q)
{
    double out;
    trip__hist_quantiles_s(counts, total, &q, 1, &out);
    return out;
}
