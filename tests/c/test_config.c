/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Tests of configuration defaults, validation, by-name access and JSON. */
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "tripsense/tripsense.h"

static void
test_config_defaults_are_valid(void **state)
{
    (void)state;
    trip_config c;
    char msg[256];
    trip_config_init(&c);
    assert_int_equal(trip_config_validate(&c, msg, sizeof msg), TRIP_OK);
    assert_string_equal(msg, "");
    assert_int_equal(c.adaptive, 1);
    assert_int_equal(c.bucket_ns, 1000000000LL);
    trip_config_init(NULL); /* ignored */
}

/* Each bad value is refused with a message naming its field. */
static void
test_config_validation_names_the_field(void **state)
{
    (void)state;
    static const struct {
        const char *field;
        double value;
    } bad[] = {
        {"window_kind", 7},
        {"bucket_ns", 0},
        {"window_buckets", 0},
        {"window_calls", 0},
        {"failure_rate", 1.5},
        {"failure_rate", -0.1},
        {"slow_call_rate", 2},
        {"slow_call_ns", 0},
        {"latency_quantile", 0},
        {"latency_baseline_factor", 0.5},
        {"ewma_half_life_s", 0},
        {"seasonality", 9},
        {"anomaly_z", 0},
        {"anomaly_k", 9},
        {"anomaly_m", 0},
        {"binomial_overdispersion", 0.5},
        {"open_ns", 0},
        {"backoff_multiplier", 0.5},
        {"jitter", 0.9},
        {"half_open_probes", 0},
        {"half_open_successes", 0},
        {"half_open_max_ns", -1},
        {"limit_rate", 1e-8},
        {"half_open_max_ns", 2 * 86400e9},
        {"ramp_start_fraction", 0},
        {"adaptive", 2},
        {"anomaly_fast", 2},
        {"long_window_buckets", 1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        trip_config c;
        char msg[256];
        trip_config_init(&c);
        assert_int_equal(trip_config_set(&c, bad[i].field, bad[i].value),
                         TRIP_OK);
        assert_int_equal(trip_config_validate(&c, msg, sizeof msg),
                         TRIP_EINVAL);
        if (strstr(msg, bad[i].field) == NULL)
            fail_msg("%s=%g: message \"%s\" does not name the field",
                     bad[i].field, bad[i].value, msg);
        assert_non_null(strstr(trip_errmsg(), bad[i].field));
    }
    assert_int_equal(trip_config_validate(NULL, NULL, 0), TRIP_EINVAL);
}

static void
test_config_nan_is_refused(void **state)
{
    (void)state;
    trip_config c;
    trip_config_init(&c);
    c.failure_rate = NAN;
    assert_int_equal(trip_config_validate(&c, NULL, 0), TRIP_EINVAL);
    trip_config_init(&c);
    assert_int_equal(trip_config_set(&c, "failure_rate", NAN), TRIP_ERANGE);
    assert_int_equal(trip_config_set(&c, "window_buckets", 2.5), TRIP_ERANGE);
    assert_int_equal(trip_config_set(&c, "window_buckets", -1), TRIP_ERANGE);
    assert_int_equal(trip_config_set(&c, "no_such_option", 1), TRIP_ENOTFOUND);
    assert_non_null(strstr(trip_errmsg(), "no_such_option"));
}

static void
test_config_set_get_every_option(void **state)
{
    (void)state;
    trip_config c;
    trip_config_init(&c);
    size_t n = 0;
    for (const char *name; (name = trip_config_option_name(n)); n++) {
        double v, w;
        assert_int_equal(trip_config_get(&c, name, &v), TRIP_OK);
        assert_int_equal(trip_config_set(&c, name, v), TRIP_OK);
        assert_int_equal(trip_config_get(&c, name, &w), TRIP_OK);
        assert_close(v, w, 0);
    }
    assert_true(n >= 40);
    assert_null(trip_config_option_name(n));
}

static void
test_config_json_round_trip(void **state)
{
    (void)state;
    trip_config a, b;
    char *json;
    trip_config_init(&a);
    a.failure_rate = 0.25;
    a.seed = 12345678901234ull;
    a.open_ns = 7000000000LL;
    assert_int_equal(trip_config_to_json(&a, &json), TRIP_OK);
    trip_config_init(&b);
    assert_int_equal(trip_config_from_json(&b, json), TRIP_OK);
    assert_memory_equal(&a, &b, sizeof a);
    trip_string_free(json);
    assert_int_equal(trip_config_from_json(&b, " { \"min_calls\" : 7 } "),
                     TRIP_OK);
    assert_int_equal(b.min_calls, 7);
    assert_int_equal(trip_config_from_json(&b, "{}"), TRIP_OK);
}

static void
test_config_json_errors(void **state)
{
    (void)state;
    trip_config c;
    trip_config_init(&c);
    trip_config before = c;
    assert_int_equal(trip_config_from_json(&c, "{\"nope\": 1}"),
                     TRIP_ENOTFOUND);
    assert_non_null(strstr(trip_errmsg(), "nope"));
    assert_int_equal(trip_config_from_json(&c, "{\"min_calls\": \"x\"}"),
                     TRIP_EINVAL);
    assert_non_null(strstr(trip_errmsg(), "min_calls"));
    assert_int_equal(trip_config_from_json(&c, "{\"min_calls\": 1"),
                     TRIP_EINVAL);
    assert_int_equal(trip_config_from_json(&c, "[1]"), TRIP_EINVAL);
    assert_int_equal(trip_config_from_json(&c, "{\"min_calls\":1} x"),
                     TRIP_EINVAL);
    assert_int_equal(trip_config_from_json(&c, "{\"min_calls\":1,"
                                               "\"failure_rate\":0.3,"
                                               "\"oops\":2}"),
                     TRIP_ENOTFOUND);
    assert_memory_equal(&c, &before, sizeof c); /* unchanged on error */
    assert_int_equal(trip_config_from_json(NULL, "{}"), TRIP_EINVAL);
    assert_int_equal(trip_config_from_json(&c, NULL), TRIP_EINVAL);
}

static void
test_config_status_strings(void **state)
{
    (void)state;
    assert_string_equal(trip_strerror(TRIP_OK), "success");
    assert_string_equal(trip_status_name(TRIP_EINVAL), "TRIP_EINVAL");
    assert_string_equal(trip_strerror(-999), "unknown status");
    assert_string_equal(trip_rule_name(TRIP_RULE_FAILURE_RATE), "failure_rate");
    assert_string_equal(trip_rule_name(99), "unknown");
    assert_string_equal(trip_state_name(TRIP_HALF_OPEN), "half_open");
    assert_string_equal(trip_outcome_name(TRIP_TIMEOUT), "timeout");
    assert_string_equal(trip_decision_name(TRIP_LIMITED), "limited");
    assert_string_equal(trip_version(), "0.1.0");
}

static void
test_config_clock(void **state)
{
    (void)state;
    trip_clock *c;
    assert_int_equal(trip_clock_manual_new(-1, 0, &c), TRIP_EINVAL);
    /* the engine adds the offset to times up to 2^62 */
    assert_int_equal(trip_clock_manual_new(0, INT64_MAX - 10, &c), TRIP_EINVAL);
    assert_non_null(strstr(trip_errmsg(), "wall_offset_ns"));
    assert_int_equal(trip_clock_manual_new(0, INT64_MIN, &c), TRIP_EINVAL);
    assert_int_equal(trip_clock_manual_new(100, 5, &c), TRIP_OK);
    assert_int_equal(trip_clock_now(c), 100);
    assert_int_equal(trip_clock_wall(c), 105);
    assert_int_equal(trip_clock_advance(c, 10), TRIP_OK);
    assert_int_equal(trip_clock_now(c), 110);
    assert_int_equal(trip_clock_set(c, 50), TRIP_ERANGE);
    assert_int_equal(trip_clock_advance(c, -1), TRIP_ERANGE);
    assert_int_equal(trip_clock_set(trip_clock_system(), 5), TRIP_EINVAL);
    assert_int_equal(trip_clock_set(NULL, 5), TRIP_EINVAL);
    int64_t a = trip_clock_now(NULL), b = trip_clock_now(NULL);
    assert_true(b >= a);
    assert_true(trip_clock_wall(NULL) > 1600000000LL * 1000000000LL);
    trip_clock_free(c);
    trip_clock_free(trip_clock_system()); /* ignored */
    trip_clock_free(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_defaults_are_valid),
        cmocka_unit_test(test_config_validation_names_the_field),
        cmocka_unit_test(test_config_nan_is_refused),
        cmocka_unit_test(test_config_set_get_every_option),
        cmocka_unit_test(test_config_json_round_trip),
        cmocka_unit_test(test_config_json_errors),
        cmocka_unit_test(test_config_status_strings),
        cmocka_unit_test(test_config_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
