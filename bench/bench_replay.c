/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Replay throughput and the cost of a bucket roll with every rule on. */

/*
 * usage: bench_replay [events_per_case [repetitions]]   (10000000, 3)
 *
 * Issue 5's targets: replay >= 20 M events/s on one core, reported with the
 * event mix; rule evaluation on a bucket roll with all rules on <= 5 us.
 *
 *   replay   trip_replay() of events_per_case events at a steady rate of
 *            10 to 100,000 calls per second (the mix: 2% failures, 0.5%
 *            timeouts, 1% ignored; lognormal latencies around 20 ms with a
 *            1% tail at 10x), default configuration. The rate sets how many
 *            events share each 1 s bucket roll, which is what the cost per
 *            event depends on.
 *   roll     the same at one call per second with every rule on (fixed
 *            rules, slow calls, EWMA, absolute latency limit, anomaly and
 *            percentile rules on an hour-of-week baseline that has
 *            learned): the time per roll, every roll judging the short
 *            window and one in 60 also judging the long window.
 *   judge    trip_replay() at 2 calls a minute with one-minute buckets and
 *            a one-bucket long window: every roll is a judging one (window
 *            sums, quantiles, baseline cells, z-scores, binomial tails and
 *            learning), so the time per roll is the cost of the full
 *            evaluation.
 *
 * Times are the thread's CPU time (the median over the repetitions and the
 * minimum); the replay allocates its result arrays once per run, which the
 * figure includes. Timings are printed, never asserted.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tripsense/tripsense.h"

#define S_ 1000000000LL
#define T0_ (1704067200LL * S_) /* Monday 2024-01-01 00:00 UTC */
#define MAX_REPS 21

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static double
unif(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return ((double)(rng >> 11) + 0.5) * 0x1.0p-53;
}

static double
normal(void)
{
    return sqrt(-2 * log(unif())) * cos(6.283185307179586 * unif());
}

/* n events at `rate` per second from T0_, the mix of the usage above. */
static trip_event *
make_events(size_t n, double rate)
{
    trip_event *ev = malloc(n * sizeof *ev);
    if (ev == NULL)
        return NULL;
    double gap_ns = 1e9 / rate;
    for (size_t i = 0; i < n; i++) {
        double u = unif();
        ev[i].wall_ns = T0_ + (int64_t)(((double)i + 0.5 * unif()) * gap_ns);
        ev[i].outcome = u < 0.02    ? TRIP_FAILURE
                        : u < 0.025 ? TRIP_TIMEOUT
                        : u < 0.035 ? TRIP_IGNORED
                                    : TRIP_SUCCESS;
        double lat = 0.020 * exp(0.4 * normal());
        ev[i].latency_s = unif() < 0.01 ? 10 * lat : lat;
        ev[i].priority = 0;
    }
    return ev;
}

static double
cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* CPU seconds of one trip_replay(); *rolls receives its evaluations. */
static double
time_replay(const trip_config *cfg, const trip_event *ev, size_t n,
            size_t *rolls, int64_t *trips)
{
    trip_replay_result *r = NULL;
    double t0 = cpu_s();
    int rc = trip_replay(cfg, ev, n, &r);
    double t = cpu_s() - t0;
    if (rc != TRIP_OK) {
        fprintf(stderr, "trip_replay: %s\n", trip_errmsg());
        exit(1);
    }
    *rolls = r->n_evals;
    *trips = (int64_t)r->final.trips;
    for (size_t i = 0; i < r->n_transitions; i++)
        if (r->transitions[i].to == TRIP_OPEN && getenv("BENCH_VERBOSE"))
            fprintf(stderr, "  trip at +%.0f s: %s score %g limit %g\n",
                    (double)(r->transitions[i].wall_ns - T0_) / 1e9,
                    trip_rule_name(r->transitions[i].rule),
                    r->transitions[i].score, r->transitions[i].threshold);
    trip_replay_result_free(r);
    return t;
}

typedef struct result {
    double median, min;
    size_t rolls;
    int64_t trips;
} result;

static result
measure(const trip_config *cfg, const trip_event *ev, size_t n, int reps)
{
    double t[MAX_REPS];
    result res = {0, 0, 0, 0};
    for (int i = 0; i < reps; i++)
        t[i] = time_replay(cfg, ev, n, &res.rolls, &res.trips);
    qsort(t, (size_t)reps, sizeof t[0], cmp_double);
    res.median = t[reps / 2];
    res.min = t[0];
    return res;
}

/* Every rule of the engine on, over the default adaptive rules. */
static void
all_rules(trip_config *cfg)
{
    trip_config_init(cfg);
    cfg->slow_call_rate = 0.5;
    cfg->ewma_failure_rate = 0.5;
    cfg->latency_threshold_ns = 5 * S_;
    cfg->seasonality = TRIP_SEASON_HOUR_OF_WEEK;
    cfg->baseline_min_samples = 5;
}

int
main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 10000000;
    int reps = argc > 2 ? atoi(argv[2]) : 3;
    if (n < 1000)
        n = 1000;
    if (reps < 1 || reps > MAX_REPS)
        reps = 3;
    printf("# bench_replay: %zu events per case, %d repetitions, CPU time "
           "of one thread (median, min)\n",
           n, reps);
    printf("%-34s %12s %12s %10s %8s\n", "case", "M events/s", "best", "rolls",
           "trips");
    static const double rates[] = {10, 100, 1000, 10000, 100000};
    trip_config def;
    trip_config_init(&def);
    for (size_t i = 0; i < sizeof rates / sizeof rates[0]; i++) {
        trip_event *ev = make_events(n, rates[i]);
        if (ev == NULL)
            return 1;
        result r = measure(&def, ev, n, reps);
        char name[64];
        snprintf(name, sizeof name, "replay, defaults, %g calls/s", rates[i]);
        printf("%-34s %12.2f %12.2f %10zu %8lld\n", name,
               (double)n / r.median / 1e6, (double)n / r.min / 1e6, r.rolls,
               (long long)r.trips);
        free(ev);
    }
    /* a roll with every rule on: one call per second for three weeks, so
     * that the hour-of-week cells have learned */
    trip_config all;
    all_rules(&all);
    size_t nr = 21 * 24 * 3600;
    trip_event *ev = make_events(nr, 1.0);
    if (ev == NULL)
        return 1;
    result r = measure(&all, ev, nr, reps);
    printf("%-34s %12s %12s %10zu %8lld   %.2f us per roll (best %.2f)\n",
           "roll, all rules, 1 call/s", "-", "-", r.rolls, (long long)r.trips,
           r.median / (double)r.rolls * 1e6, r.min / (double)r.rolls * 1e6);
    free(ev);
    /* every roll a judging one */
    trip_config judge = all;
    judge.bucket_ns = 60 * S_;
    judge.window_buckets = 1;
    judge.long_window_buckets = 1;
    judge.latency_min_samples = 1;
    nr = 8 * 7 * 24 * 60 * 2;
    ev = make_events(nr, 1.0 / 30);
    if (ev == NULL)
        return 1;
    r = measure(&judge, ev, nr, reps);
    printf("%-34s %12s %12s %10zu %8lld   %.2f us per roll (best %.2f)\n",
           "judge, all rules, every roll", "-", "-", r.rolls,
           (long long)r.trips, r.median / (double)r.rolls * 1e6,
           r.min / (double)r.rolls * 1e6);
    free(ev);
    printf("# targets (issue 5): replay >= 20 M events/s; a roll with every "
           "rule on <= 5 us\n");
    return 0;
}
