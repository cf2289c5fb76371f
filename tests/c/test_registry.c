/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Tests of the registry, the health report and Prometheus exposition. */
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "tripsense/tripsense.h"

static void
drive(trip_breaker *b, int outcome, int n)
{
    for (int i = 0; i < n; i++) {
        trip_ticket t;
        if (trip_allow(b, &t) == TRIP_PASS)
            trip_record_latency(b, &t, outcome, 0.02);
    }
}

static void
test_registry_get_or_create_and_lookup(void **state)
{
    (void)state;
    trip_registry *r;
    trip_breaker *a, *a2, *b, *found;
    assert_int_equal(trip_registry_new(&r), TRIP_OK);
    assert_int_equal(trip_registry_get_or_create(r, "payments", NULL, NULL, &a),
                     TRIP_OK);
    assert_int_equal(
        trip_registry_get_or_create(r, "payments", NULL, NULL, &a2), TRIP_OK);
    assert_ptr_equal(a, a2);
    assert_int_equal(trip_registry_get_or_create(r, "search", NULL, NULL, &b),
                     TRIP_OK);
    assert_int_equal(trip_registry_count(r), 2);
    assert_ptr_equal(trip_registry_at(r, 1), b);
    assert_null(trip_registry_at(r, 2));
    assert_int_equal(trip_registry_get(r, "search", &found), TRIP_OK);
    assert_ptr_equal(found, b);
    assert_int_equal(trip_registry_get(r, "nope", &found), TRIP_ENOTFOUND);
    assert_non_null(strstr(trip_errmsg(), "nope"));
    trip_breaker *dup;
    assert_int_equal(trip_breaker_new("search", NULL, NULL, &dup), TRIP_OK);
    assert_int_equal(trip_registry_add(r, dup), TRIP_EEXIST);
    trip_breaker_free(dup);
    assert_int_equal(trip_registry_add(NULL, b), TRIP_EINVAL);
    trip_registry_free(r);
    trip_registry_free(NULL);
}

static void
test_registry_health_json(void **state)
{
    (void)state;
    trip_registry *r;
    trip_breaker *a, *b;
    trip_clock *clk;
    trip_config c;
    trip_config_init(&c);
    c.consecutive_failures = 3;
    trip_clock_manual_new(0, 0, &clk);
    trip_registry_new(&r);
    trip_registry_get_or_create(r, "pay\"ments", &c, clk, &a);
    trip_registry_get_or_create(r, "search", &c, clk, &b);
    drive(a, TRIP_FAILURE, 3);
    drive(b, TRIP_SUCCESS, 10);
    char *json;
    assert_int_equal(trip_registry_health_json(r, &json), TRIP_OK);
    assert_non_null(strstr(json, "\"name\":\"pay\\\"ments\",\"state\":\"open\","
                                 "\"status\":\"down\""));
    assert_non_null(strstr(json, "\"rule\":\"consecutive_failures\""));
    assert_non_null(strstr(json, "\"name\":\"search\",\"state\":\"closed\","
                                 "\"status\":\"ok\",\"calls\":10,"
                                 "\"failures\":0"));
    assert_non_null(strstr(json, "],\"status\":\"down\"}"));
    trip_string_free(json);
    assert_int_equal(trip_breaker_health_json(b, &json), TRIP_OK);
    assert_non_null(strstr(json, "\"status\":\"ok\"}"));
    trip_string_free(json);
    trip_registry_free(r);
    trip_clock_free(clk);
}

static void
test_registry_prometheus(void **state)
{
    (void)state;
    trip_registry *r;
    trip_breaker *a;
    trip_clock *clk;
    trip_config c;
    trip_config_init(&c);
    c.consecutive_failures = 3;
    trip_clock_manual_new(0, 0, &clk);
    trip_registry_new(&r);
    trip_registry_get_or_create(r, "db", &c, clk, &a);
    drive(a, TRIP_SUCCESS, 5);
    drive(a, TRIP_FAILURE, 3);
    drive(a, TRIP_SUCCESS, 2); /* rejected */
    char *text;
    assert_int_equal(trip_registry_prometheus(r, &text), TRIP_OK);
    assert_non_null(strstr(text, "# TYPE tripsense_state gauge\n"
                                 "tripsense_state{breaker=\"db\"} 1\n"));
    assert_non_null(strstr(text, "tripsense_calls_total{breaker=\"db\","
                                 "result=\"success\"} 5\n"));
    assert_non_null(strstr(text, "tripsense_calls_total{breaker=\"db\","
                                 "result=\"failure\"} 3\n"));
    assert_non_null(strstr(text, "tripsense_calls_total{breaker=\"db\","
                                 "result=\"rejected\"} 2\n"));
    assert_non_null(strstr(text, "tripsense_transitions_total{breaker=\"db\","
                                 "from=\"closed\",to=\"open\","
                                 "rule=\"consecutive_failures\"} 1\n"));
    /* 8 calls of 20 ms: all below 25 ms, none below 10 ms */
    assert_non_null(strstr(text, "tripsense_call_latency_seconds_bucket{"
                                 "breaker=\"db\",le=\"0.01\"} 0\n"));
    assert_non_null(strstr(text, "tripsense_call_latency_seconds_bucket{"
                                 "breaker=\"db\",le=\"0.025\"} 8\n"));
    assert_non_null(strstr(text, "tripsense_call_latency_seconds_bucket{"
                                 "breaker=\"db\",le=\"+Inf\"} 8\n"));
    assert_non_null(strstr(text, "tripsense_call_latency_seconds_count{"
                                 "breaker=\"db\"} 8\n"));
    trip_string_free(text);
    trip_registry_free(r);
    trip_clock_free(clk);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry_get_or_create_and_lookup),
        cmocka_unit_test(test_registry_health_json),
        cmocka_unit_test(test_registry_prometheus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
