/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Drive three named breakers through a scripted outage and a brownout. */

/*
 * `make demo-c` builds and runs this program. It needs no network and no
 * database: a manual clock stands in for time, so the four simulated minutes
 * take milliseconds and every run prints the same timeline.
 *
 * The script, 50 calls per second to each of three dependencies:
 *
 *   payments  healthy; hard outage from t=60 s to t=120 s (every call fails
 *             fast with "connection refused"), then healthy again.
 *   search    healthy; brownout from t=90 s to t=150 s (latency from about
 *             40 ms to about 900 ms, 10% timeouts), then healthy again.
 *   email     healthy throughout.
 *
 * A listener prints every transition with the rule that caused it, its score
 * and its threshold; at the end the program prints each breaker's counters
 * and the registry's health report (JSON).
 *
 * Building your own program against the installed library
 * ----------------------------------------------------------
 * After `make install PREFIX=/opt/tripsense` (or any prefix):
 *
 *   with pkg-config:
 *     export PKG_CONFIG_PATH=/opt/tripsense/lib/pkgconfig
 *     cc -std=c11 app.c $(pkg-config --cflags --libs tripsense) -o app
 *     # (the loader finds libtripsense.so through LD_LIBRARY_PATH or
 *     # ldconfig); to link the static library, name it and its dependencies:
 *     cc -std=c11 app.c $(pkg-config --cflags tripsense) \
 *        /opt/tripsense/lib/libtripsense.a $(pkg-config --libs sqlite3 gsl) \
 *        -lpthread -lm -o app
 *
 *   with CMake:
 *     find_package(tripsense 0.1 REQUIRED)
 *     add_executable(app app.c)
 *     target_link_libraries(app PRIVATE tripsense::tripsense)
 *     # or tripsense::tripsense_static
 *   and configure with -DCMAKE_PREFIX_PATH=/opt/tripsense.
 *
 * tests/consumer/ does both against a temporary prefix (ctest runs it).
 */
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <tripsense/tripsense.h>

#define NS_PER_S INT64_C(1000000000)
#define CALLS_PER_S 50
#define DURATION_S 240
/* Monday 2026-01-05 09:00:00 UTC: the wall clock the demo pretends it is. */
#define WALL_START_NS (INT64_C(1767603600) * NS_PER_S)

enum { PAYMENTS, SEARCH, EMAIL, NDEPS };
static const char *const dep_names[NDEPS] = {"payments", "search", "email"};

typedef struct demo {
    trip_clock *clock;
    trip_registry *registry;
    trip_breaker *breakers[NDEPS];
    uint64_t rng;
} demo;

/* xorshift64*: a fixed seed so that every run prints the same timeline. */
static double
uniform(demo *d)
{
    d->rng ^= d->rng >> 12;
    d->rng ^= d->rng << 25;
    d->rng ^= d->rng >> 27;
    return (double)((d->rng * UINT64_C(2685821657736338717)) >> 11) * 0x1p-53;
}

static double
since_start_s(int64_t mono_ns)
{
    return (double)mono_ns / (double)NS_PER_S;
}

static void
on_event(int kind, const trip_transition *t, void *user)
{
    (void)user;
    if (kind != TRIP_EVENT_TRANSITION)
        return;
    printf("%7.2f s  %-9s %-9s -> %-9s  %-22s", since_start_s(t->mono_ns),
           t->breaker, trip_state_name(t->from), trip_state_name(t->to),
           trip_rule_name(t->reason.rule));
    /* A failed probe has no score: the one call is the evidence. */
    if (!isnan(t->reason.score))
        printf("  score %.4g, threshold %.4g, %" PRId64 " calls",
               t->reason.score, t->reason.threshold, t->reason.samples);
    printf("\n");
}

/* What a dependency does at second `sec`: an outcome and a latency. */
static int
simulate(demo *d, int dep, int64_t sec, double *latency_s)
{
    double u = uniform(d);
    *latency_s = 0.030 + 0.020 * uniform(d);
    if (dep == PAYMENTS && sec >= 60 && sec < 120) {
        *latency_s = 0.002; /* connection refused: fails fast */
        return TRIP_FAILURE;
    }
    if (dep == SEARCH && sec >= 90 && sec < 150) {
        *latency_s = 0.700 + 0.400 * uniform(d);
        if (u < 0.10) {
            *latency_s = 2.0;
            return TRIP_TIMEOUT;
        }
        return TRIP_SUCCESS;
    }
    return u < 0.005 ? TRIP_FAILURE : TRIP_SUCCESS;
}

static void
configure(trip_config *cfg, int dep)
{
    trip_config_init(cfg);
    cfg->seed = 7 + (uint64_t)dep; /* deterministic jitter */
    if (dep == SEARCH) {
        /* Latency matters for search: half the calls slower than 500 ms
         * over the window is a brownout worth shedding. */
        cfg->slow_call_ns = 500 * INT64_C(1000000);
        cfg->slow_call_rate = 0.5;
    }
}

static int
setup(demo *d)
{
    d->rng = UINT64_C(0x9E3779B97F4A7C15);
    int rc = trip_clock_manual_new(0, WALL_START_NS, &d->clock);
    if (rc == TRIP_OK)
        rc = trip_registry_new(&d->registry);
    for (int i = 0; rc == TRIP_OK && i < NDEPS; i++) {
        trip_config cfg;
        configure(&cfg, i);
        rc = trip_registry_get_or_create(d->registry, dep_names[i], &cfg,
                                         d->clock, &d->breakers[i]);
        if (rc == TRIP_OK)
            rc =
                trip_breaker_add_listener(d->breakers[i], on_event, NULL, NULL);
    }
    if (rc != TRIP_OK)
        fprintf(stderr, "demo_outage: setup failed: %s (%s)\n",
                trip_strerror(rc), trip_errmsg());
    return rc;
}

/* One call through breaker `dep`; returns TRIP_OK or an error status. */
static int
one_call(demo *d, int dep, int64_t sec)
{
    trip_ticket ticket;
    int decision = trip_allow(d->breakers[dep], &ticket);
    if (decision < 0)
        return decision;
    if (decision != TRIP_PASS)
        return TRIP_OK; /* refused: the caller would use a fallback */
    double latency_s;
    int outcome = simulate(d, dep, sec, &latency_s);
    return trip_record_latency(d->breakers[dep], &ticket, outcome, latency_s);
}

static int
run_script(demo *d)
{
    const int64_t step_ns = NS_PER_S / CALLS_PER_S;
    for (int64_t sec = 0; sec < DURATION_S; sec++) {
        for (int k = 0; k < CALLS_PER_S; k++) {
            for (int dep = 0; dep < NDEPS; dep++) {
                int rc = one_call(d, dep, sec);
                if (rc != TRIP_OK) {
                    fprintf(stderr, "demo_outage: %s: %s (%s)\n",
                            dep_names[dep], trip_strerror(rc), trip_errmsg());
                    return rc;
                }
            }
            trip_clock_advance(d->clock, step_ns);
        }
    }
    return TRIP_OK;
}

static void
print_summary(demo *d)
{
    printf("\n%-9s %7s %8s %8s %8s %8s %8s %6s\n", "breaker", "state", "calls",
           "failures", "timeouts", "rejected", "limited", "changes");
    for (int i = 0; i < NDEPS; i++) {
        trip_snapshot s;
        if (trip_snapshot_get(d->breakers[i], &s) != TRIP_OK)
            continue;
        printf("%-9s %7s %8" PRId64 " %8" PRId64 " %8" PRId64 " %8" PRId64
               " %8" PRId64 " %6" PRId64 "\n",
               dep_names[i], trip_state_name(s.state), s.calls, s.failures,
               s.timeouts, s.rejected, s.limited, s.transitions);
    }
    char *json = NULL;
    int rc = trip_registry_health_json(d->registry, &json);
    if (rc == TRIP_OK)
        printf("\nhealth: %s\n", json);
    else
        fprintf(stderr, "demo_outage: health report: %s\n", trip_errmsg());
    trip_string_free(json);
}

int
main(void)
{
    demo d = {0};
    printf("tripsense %s demo: %d s of simulated traffic, %d calls/s to each "
           "of payments, search, email\n"
           "payments fails hard from 60 s to 120 s; search browns out "
           "(slow, 10%% timeouts) from 90 s to 150 s\n\n",
           trip_version(), DURATION_S, CALLS_PER_S);
    printf("%9s  %-9s %-9s    %-9s  %s\n", "time", "breaker", "from", "to",
           "reason");
    int rc = setup(&d);
    if (rc == TRIP_OK)
        rc = run_script(&d);
    if (rc == TRIP_OK)
        print_summary(&d);
    trip_registry_free(d.registry);
    trip_clock_free(d.clock);
    return rc == TRIP_OK ? EXIT_SUCCESS : EXIT_FAILURE;
}
