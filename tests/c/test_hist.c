/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Tests of the log-linear latency histogram against exact quantiles. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

#include "hist.h"

static uint64_t *
hist_from_golden(const golden *g, uint64_t *total)
{
    uint64_t *h = calloc(TRIP_HIST_BINS, sizeof *h);
    assert_non_null(h);
    for (size_t i = 0; i < g->nrows; i++)
        h[trip__hist_bin(g->ll[i * g->ncols])]++;
    *total = g->nrows;
    return h;
}

static void
check_quantiles(const char *file)
{
    golden *g = golden_load(file);
    double qs[5], exact[5], out[5];
    const char *qp = golden_param(g, "quantiles");
    const char *ep = golden_param(g, "exact_ns");
    char *end;
    for (int i = 0; i < 5; i++) {
        qs[i] = strtod(qp, &end);
        qp = end;
        exact[i] = strtod(ep, &end) * 1e-9;
        ep = end;
    }
    uint64_t total;
    uint64_t *h = hist_from_golden(g, &total);
    trip__hist_quantiles_s(h, total, qs, 5, out);
    for (int i = 0; i < 5; i++) {
        /* the documented bound: 1/128 of the value, plus the microsecond
         * truncation of the bin index */
        assert_close(out[i], exact[i], 0.01);
        assert_close(trip__hist_quantile_s(h, total, qs[i]), out[i], 1e-15);
    }
    free(h);
    golden_free(g);
}

static void
test_hist_quantiles_lognormal_within_1pct(void **state)
{
    (void)state;
    check_quantiles("quantiles_lognormal.txt");
}

static void
test_hist_quantiles_pareto_within_1pct(void **state)
{
    (void)state;
    check_quantiles("quantiles_pareto.txt");
}

static void
test_hist_bins_contain_their_values(void **state)
{
    (void)state;
    uint32_t prev = 0;
    for (double us = 0.5; us < 4e9; us *= 1.013) {
        int64_t ns = (int64_t)(us * 1000.0);
        uint32_t bin = trip__hist_bin(ns);
        double lo, width;
        trip__hist_bin_range(bin, &lo, &width);
        double v = (double)(ns / 1000);
        assert_true(bin < TRIP_HIST_BINS);
        assert_true(bin >= prev);
        assert_true(v >= lo && v < lo + width);
        /* the bin's midpoint is within 1/128 of every value above 64 us */
        if (v >= TRIP_HIST_SUB)
            assert_true(width / 2 <= lo / 128.0 + 1e-9);
        prev = bin;
    }
}

static void
test_hist_extremes_clamp(void **state)
{
    (void)state;
    assert_int_equal(trip__hist_bin(-5), 0);
    assert_int_equal(trip__hist_bin(0), 0);
    assert_int_equal(trip__hist_bin(INT64_MAX), TRIP_HIST_BINS - 1);
    assert_int_equal(trip__hist_bin((int64_t)1 << 62), TRIP_HIST_BINS - 1);
    double v = trip__hist_bin_value_s(TRIP_HIST_BINS + 7);
    assert_true(v > 4000.0 && v < 4400.0);
}

static void
test_hist_empty_is_nan(void **state)
{
    (void)state;
    uint64_t h[TRIP_HIST_BINS] = {0};
    double qs[2] = {0.5, 0.99}, out[2];
    assert_true(isnan(trip__hist_quantile_s(h, 0, 0.5)));
    trip__hist_quantiles_s(NULL, 10, qs, 2, out);
    assert_true(isnan(out[0]) && isnan(out[1]));
}

static void
test_hist_nearest_rank_small_counts(void **state)
{
    (void)state;
    uint64_t h[TRIP_HIST_BINS] = {0};
    /* 10, 20, 30, 40 microseconds: exact bins */
    for (int us = 10; us <= 40; us += 10)
        h[trip__hist_bin(us * 1000)]++;
    assert_close(trip__hist_quantile_s(h, 4, 0.0), 10.5e-6, 1e-12);
    assert_close(trip__hist_quantile_s(h, 4, 0.25), 10.5e-6, 1e-12);
    assert_close(trip__hist_quantile_s(h, 4, 0.26), 20.5e-6, 1e-12);
    assert_close(trip__hist_quantile_s(h, 4, 0.5), 20.5e-6, 1e-12);
    assert_close(trip__hist_quantile_s(h, 4, 0.99), 40.5e-6, 1e-12);
    assert_close(trip__hist_quantile_s(h, 4, 1.5), 40.5e-6, 1e-12);
}

static void
test_hist_merge_equals_union(void **state)
{
    (void)state;
    golden *g = golden_load("quantiles_lognormal.txt");
    uint64_t *a = calloc(TRIP_HIST_BINS, sizeof *a);
    uint64_t *b = calloc(TRIP_HIST_BINS, sizeof *b);
    uint64_t total;
    uint64_t *all = hist_from_golden(g, &total);
    assert_non_null(a);
    assert_non_null(b);
    for (size_t i = 0; i < g->nrows; i++)
        (i % 3 ? a : b)[trip__hist_bin(g->ll[i])]++;
    for (uint32_t i = 0; i < TRIP_HIST_BINS; i++)
        a[i] += b[i];
    for (double q = 0.05; q < 1; q += 0.05)
        assert_close(trip__hist_quantile_s(a, total, q),
                     trip__hist_quantile_s(all, total, q), 0);
    free(a);
    free(b);
    free(all);
    golden_free(g);
}

/* Quantiles through the group totals equal the full scan's, on histograms
 * from one value to every bin, the top bin and the exact bins included. */
/* Nearest rank the plain way, bin by bin: what both scans must give. */
static double
ref_quantile(const uint64_t *h, uint64_t total, double q)
{
    uint64_t rank = (uint64_t)ceil(q * (double)total), seen = 0;
    if (rank == 0)
        rank = 1;
    for (uint32_t bin = 0; bin < TRIP_HIST_BINS; bin++) {
        seen += h[bin];
        if (seen >= rank)
            return trip__hist_bin_value_s(bin);
    }
    return trip__hist_bin_value_s(TRIP_HIST_BINS - 1);
}

static void
test_hist_grouped_equals_scan(void **state)
{
    (void)state;
    static const double qs[7] = {0, 0.01, 0.5, 0.9, 0.99, 0.999, 1};
    uint64_t *h = calloc(TRIP_HIST_BINS, sizeof *h);
    uint64_t g[TRIP_HIST_GROUPS];
    uint64_t x = 12345;
    assert_non_null(h);
    for (int round = 0; round < 2000; round++) {
        uint64_t total = 0;
        memset(h, 0, TRIP_HIST_BINS * sizeof *h);
        memset(g, 0, sizeof g);
        int n = 1 + round % 50, span = 1 + (round * 37) % TRIP_HIST_BINS;
        uint32_t base = (uint32_t)((round * 101) % TRIP_HIST_BINS), top = 0;
        for (int i = 0; i < n; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            uint32_t bin =
                (base + (uint32_t)(x >> 33) % (uint32_t)span) % TRIP_HIST_BINS;
            uint64_t c = 1 + (x >> 20) % 5;
            h[bin] += c;
            g[bin / TRIP_HIST_SUB] += c;
            total += c;
            top = bin > top ? bin : top;
        }
        if (round % 7 == 0) {
            h[TRIP_HIST_BINS - 1]++;
            g[TRIP_HIST_GROUPS - 1]++;
            total++;
            top = TRIP_HIST_BINS - 1;
        }
        double a[7], b[7];
        trip__hist_quantiles_s(h, total, qs, 7, a);
        trip__hist_quantiles_grouped_s(h, g, total, 0, qs, 7, b);
        for (int i = 0; i < 7; i++) {
            double one;
            assert_true(a[i] == b[i]);
            assert_true(a[i] == ref_quantile(h, total, qs[i]));
            /* a quantile alone: those above the median are found from the
             * top, with the same result */
            trip__hist_quantiles_grouped_s(h, g, total, 0, &qs[i], 1, &one);
            assert_true(one == a[i]);
            /* and from the bin after the highest nonzero one */
            trip__hist_quantiles_grouped_s(h, g, total, top + 1, &qs[i], 1,
                                           &one);
            assert_true(one == a[i]);
        }
    }
    double out[2];
    trip__hist_quantiles_grouped_s(h, g, 0, 0, qs, 2, out);
    assert_true(isnan(out[0]) && isnan(out[1]));
    trip__hist_quantiles_grouped_s(h, NULL, 3, 0, qs, 2, out);
    assert_true(isnan(out[0]) && isnan(out[1]));
    free(h);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hist_quantiles_lognormal_within_1pct),
        cmocka_unit_test(test_hist_quantiles_pareto_within_1pct),
        cmocka_unit_test(test_hist_bins_contain_their_values),
        cmocka_unit_test(test_hist_extremes_clamp),
        cmocka_unit_test(test_hist_empty_is_nan),
        cmocka_unit_test(test_hist_nearest_rank_small_counts),
        cmocka_unit_test(test_hist_merge_equals_union),
        cmocka_unit_test(test_hist_grouped_equals_scan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
