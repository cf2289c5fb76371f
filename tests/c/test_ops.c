/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The operations files use only metric names that the exposition has. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "tripsense/tripsense.h"

static char *
slurp(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/../../ops/%s", TRIP_TEST_DATA_DIR, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = calloc((size_t)n + 1, 1);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return s;
}

/* A registry whose exposition holds every metric family. */
static char *
exposition(void)
{
    trip_registry *r;
    trip_breaker *b;
    trip_clock *clk;
    trip_config c;
    trip_config_init(&c);
    c.consecutive_failures = 1;
    c.flap_trips = 1;
    trip_clock_manual_new(0, 0, &clk);
    trip_registry_new(&r);
    trip_registry_get_or_create(r, "payments", &c, clk, &b);
    int id;
    trip_breaker_add_signal(b, "cpu", 0.9, 0, TEST_S_, &id);
    trip_breaker_signal(b, id, 0.5);
    trip_ticket t;
    trip_allow(b, &t);
    trip_record_latency(b, &t, TRIP_FAILURE, 0.2);
    trip_allow(b, &t);
    char *text;
    assert_int_equal(trip_registry_prometheus(r, &text), TRIP_OK);
    trip_registry_free(r);
    trip_clock_free(clk);
    return text;
}

static int
has_metric(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = text; (p = strstr(p, name)) != NULL; p += n) {
        int starts = p == text || p[-1] == '\n';
        if (starts && (p[n] == '{' || p[n] == ' '))
            return 1;
    }
    return 0;
}

static void
check_file(const char *file)
{
    char *text = exposition();
    char *src = slurp(file);
    int found = 0;
    for (char *p = src; (p = strstr(p, "tripsense_")) != NULL;) {
        char name[128];
        size_t n = 0;
        while ((isalnum((unsigned char)p[n]) || p[n] == '_') && n < 127) {
            name[n] = p[n];
            n++;
        }
        name[n] = '\0';
        p += n;
        if (strcmp(name, "tripsense_") == 0)
            continue;
        found++;
        if (!has_metric(text, name))
            fail_msg("%s uses %s, which the exposition does not have", file,
                     name);
    }
    assert_true(found >= 5);
    free(src);
    trip_string_free(text);
}

static void
test_ops_alert_rules_use_real_metrics(void **state)
{
    (void)state;
    check_file("prometheus-alerts.yml");
}

static void
test_ops_dashboard_uses_real_metrics(void **state)
{
    (void)state;
    check_file("grafana-dashboard.json");
}

static void
test_ops_labels_exist(void **state)
{
    (void)state;
    char *text = exposition();
    const char *labels[] = {"breaker=\"payments\"",
                            "result=\"rejected\"",
                            "rule=\"consecutive_failures\"",
                            "to=\"open\"",
                            "signal=\"cpu\"",
                            "le=\"+Inf\""};
    for (size_t i = 0; i < sizeof labels / sizeof labels[0]; i++)
        if (strstr(text, labels[i]) == NULL)
            fail_msg("label %s missing from:\n%s", labels[i], text);
    trip_string_free(text);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ops_alert_rules_use_real_metrics),
        cmocka_unit_test(test_ops_dashboard_uses_real_metrics),
        cmocka_unit_test(test_ops_labels_exist),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
