/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Tests of the standalone detector on a series with injected anomalies. */
#include <stdlib.h>

#include "test_util.h"

#include "tripsense/tripsense.h"

typedef struct series {
    golden *g;
    int64_t *t;
    double *v;
    int *label;
    size_t n;
} series;

static series
load_series(void)
{
    series s;
    s.g = golden_load("detect_series.txt");
    s.n = s.g->nrows;
    s.t = malloc(s.n * sizeof *s.t);
    s.v = malloc(s.n * sizeof *s.v);
    s.label = malloc(s.n * sizeof *s.label);
    assert_true(s.t && s.v && s.label);
    for (size_t i = 0; i < s.n; i++) {
        s.t[i] = s.g->ll[i * 3];
        s.v[i] = s.g->d[i * 3 + 1];
        s.label[i] = (int)s.g->ll[i * 3 + 2];
    }
    return s;
}

static void
free_series(series *s)
{
    free(s->t);
    free(s->v);
    free(s->label);
    golden_free(s->g);
}

/* Every injected rise is flagged within k-1 = 2 points of its start and
 * nothing else is flagged: k of m = 3 of 5 on the daily-seasonal series
 * scored in logs against hour-of-day cells. */
static void
run_detect(int log_transform)
{
    series s = load_series();
    trip_detect_opts o;
    trip_detect_opts_init(&o);
    o.seasonality = TRIP_SEASON_HOUR_OF_DAY;
    o.log_transform = log_transform;
    o.effect = 1.5;
    o.sigma_floor = log_transform ? 0.02 : 2.0;
    double *z = malloc(s.n * sizeof *z), *m = malloc(s.n * sizeof *m);
    double *sd = malloc(s.n * sizeof *sd);
    uint8_t *flags = malloc(s.n);
    assert_true(z && m && sd && flags);
    assert_int_equal(trip_detect(&o, s.t, s.v, s.n, z, flags, m, sd), TRIP_OK);
    int segments = 0, false_flags = 0;
    for (size_t i = 0; i < s.n; i++) {
        if (s.label[i] && (i == 0 || !s.label[i - 1])) {
            segments++;
            assert_true(flags[i + 2]);
            assert_true(z[i] >= o.z);
        }
        if (flags[i] && !s.label[i])
            false_flags++;
    }
    assert_int_equal(segments, 4);
    assert_int_equal(false_flags, 0);
    /* the baseline is in the value's units and near the series' level */
    size_t last = s.n - 1;
    assert_true(m[last] > 0.8 * s.v[last] && m[last] < 1.25 * s.v[last]);
    assert_true(isnan(z[0]) && isnan(m[0]) && !flags[0]);
    free(z);
    free(m);
    free(sd);
    free(flags);
    free_series(&s);
}

static void
test_detect_flags_injected_anomalies_log(void **state)
{
    (void)state;
    run_detect(1);
}

static void
test_detect_flags_injected_anomalies_linear(void **state)
{
    (void)state;
    run_detect(0);
}

static void
test_detect_null_outputs_and_nan_values(void **state)
{
    (void)state;
    int64_t t[100];
    double v[100];
    uint8_t flags[100];
    trip_detect_opts o;
    trip_detect_opts_init(&o);
    o.seasonality = TRIP_SEASON_NONE;
    o.min_samples = 5;
    for (int i = 0; i < 100; i++) {
        t[i] = (int64_t)i * 60 * TEST_S_;
        v[i] = i == 50 ? NAN : 10.0 + (i % 3);
    }
    v[90] = v[91] = v[92] = 100.0;
    assert_int_equal(trip_detect(&o, t, v, 100, NULL, flags, NULL, NULL),
                     TRIP_OK);
    assert_int_equal(flags[50], 0);
    assert_int_equal(flags[91], 0);
    assert_int_equal(flags[92], 1);
    assert_int_equal(trip_detect(&o, t, v, 0, NULL, NULL, NULL, NULL), TRIP_OK);
}

static void
test_detect_rejects_bad_input(void **state)
{
    (void)state;
    int64_t t[3] = {0, 2, 1};
    double v[3] = {1, 2, 3};
    trip_detect_opts o;
    trip_detect_opts_init(&o);
    assert_int_equal(trip_detect(NULL, t, v, 3, NULL, NULL, NULL, NULL),
                     TRIP_EINVAL);
    assert_int_equal(trip_detect(&o, NULL, v, 3, NULL, NULL, NULL, NULL),
                     TRIP_EINVAL);
    assert_int_equal(trip_detect(&o, t, v, 3, NULL, NULL, NULL, NULL),
                     TRIP_EINVAL);
    assert_non_null(strstr(trip_errmsg(), "time 2"));
    /* past 2^62 ns: the baseline's time arithmetic (t + 1) would overflow
     * at INT64_MAX (found by fuzz_replay) */
    t[2] = INT64_MAX;
    assert_int_equal(trip_detect(&o, t, v, 3, NULL, NULL, NULL, NULL),
                     TRIP_EINVAL);
    assert_non_null(strstr(trip_errmsg(), "2^62"));
    t[2] = 3;
    for (uint32_t ms = 0; ms < 2; ms++) {
        o.min_samples = ms;
        assert_int_equal(trip_detect(&o, t, v, 3, NULL, NULL, NULL, NULL),
                         TRIP_EINVAL);
        assert_non_null(strstr(trip_errmsg(), "min_samples must be >= 2"));
    }
    o.min_samples = 2;
    v[1] = -1;
    o.log_transform = 1;
    assert_int_equal(trip_detect(&o, t, v, 3, NULL, NULL, NULL, NULL),
                     TRIP_EINVAL);
    assert_non_null(strstr(trip_errmsg(), "value 1"));
    o.log_transform = 0;
    v[1] = -1e300; /* differences of such values overflowed to NaN */
    assert_int_equal(trip_detect(&o, t, v, 3, NULL, NULL, NULL, NULL),
                     TRIP_EINVAL);
    assert_non_null(strstr(trip_errmsg(), "1e150"));
    v[1] = -1;
    o.k = 6;
    assert_int_equal(trip_detect(&o, t, v, 3, NULL, NULL, NULL, NULL),
                     TRIP_EINVAL);
    assert_non_null(strstr(trip_errmsg(), "k 6"));
    trip_detect_opts_init(&o);
    o.z = NAN;
    assert_int_equal(trip_detect(&o, t, v, 3, NULL, NULL, NULL, NULL),
                     TRIP_EINVAL);
    trip_detect_opts_init(&o);
    o.seasonality = 9;
    assert_int_equal(trip_detect(&o, t, v, 3, NULL, NULL, NULL, NULL),
                     TRIP_EINVAL);
    trip_detect_opts_init(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detect_flags_injected_anomalies_log),
        cmocka_unit_test(test_detect_flags_injected_anomalies_linear),
        cmocka_unit_test(test_detect_null_outputs_and_nan_values),
        cmocka_unit_test(test_detect_rejects_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
