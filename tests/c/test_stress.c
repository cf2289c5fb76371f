/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Concurrency stress of one breaker: exact counters, exact half-open
 * admission, invariants under racing calls, modes and reconfiguration. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "tripsense/tripsense.h"

/*
 * TRIP_STRESS_SCALE (a number, default 0.1) scales the sizes: 1 gives the
 * full sizes of issue 8 (16 threads x 1e6 calls, 10,000 half-open trials),
 * which `make stress` runs under ThreadSanitizer. The default keeps
 * `ctest` short on two cores, TSan included.
 */
static double
stress_scale(void)
{
    const char *s = getenv("TRIP_STRESS_SCALE");
    double v = s ? strtod(s, NULL) : 0.1;
    return v > 0 && v <= 100 ? v : 0.1;
}

static long
scaled(double full, long minimum)
{
    long n = (long)(full * stress_scale());
    return n < minimum ? minimum : n;
}

/* Every automatic rule off, no jitter: only the test decides transitions. */
static void
quiet_config(trip_config *c)
{
    trip_config_init(c);
    c->adaptive = 0;
    c->consecutive_failures = 0;
    c->consecutive_timeouts = 0;
    c->failure_rate = 0;
    c->jitter = 0;
    c->flap_trips = 0;
    c->seed = 8;
}

/* ---- 1: exact counters -------------------------------------------------- */

enum { COUNT_THREADS = 16 };

typedef struct count_arg {
    trip_breaker *b;
    long n;
    long bad; /* decisions or statuses that were not PASS / OK */
} count_arg;

static void *
count_main(void *p)
{
    count_arg *a = p;
    for (long i = 0; i < a->n; i++) {
        trip_ticket t;
        if (trip_allow(a->b, &t) != TRIP_PASS) {
            a->bad++;
            continue;
        }
        /* outcomes cycle success, failure, timeout, ignored; latencies
         * over a dozen histogram bins, so that harvests race records on
         * bins being emptied and refilled */
        if (trip_record_latency(a->b, &t, (int)(i & 3),
                                0.0005 * (1 + 0.3 * (double)(i % 12))) !=
            TRIP_OK)
            a->bad++;
    }
    return NULL;
}

static void
test_stress_counters_exact_16_threads(void **state)
{
    (void)state;
    trip_config c;
    quiet_config(&c);
    c.bucket_ns = 1000000; /* 1 ms: bucket rolls race the recording */
    trip_breaker *b = NULL;
    assert_int_equal(trip_breaker_new("stress", &c, NULL, &b), TRIP_OK);
    long per = scaled(1e6, 2000) & ~3L; /* a multiple of 4 outcomes */
    pthread_t th[COUNT_THREADS];
    count_arg a[COUNT_THREADS];
    for (int i = 0; i < COUNT_THREADS; i++) {
        a[i] = (count_arg){b, per, 0};
        assert_int_equal(pthread_create(&th[i], NULL, count_main, &a[i]), 0);
    }
    for (int i = 0; i < COUNT_THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(a[i].bad, 0);
    }
    trip_breaker_tick(b);
    trip_snapshot s;
    assert_int_equal(trip_snapshot_get(b, &s), TRIP_OK);
    int64_t total = (int64_t)per * COUNT_THREADS;
    assert_int_equal(s.calls, total);
    assert_int_equal(s.successes, total / 4);
    assert_int_equal(s.failures, total / 4);
    assert_int_equal(s.timeouts, total / 4);
    assert_int_equal(s.ignored, total / 4);
    assert_int_equal(s.in_flight, 0);
    assert_int_equal(s.late, 0);
    assert_int_equal(s.rejected + s.limited, 0);
    assert_int_equal(s.state, TRIP_CLOSED);
    /* every latency reached the histogram: none left behind in a stripe */
    char *prom = NULL;
    assert_int_equal(trip_breaker_prometheus(b, &prom), TRIP_OK);
    const char *cnt = strstr(prom, "tripsense_call_latency_seconds_count{");
    assert_non_null(cnt);
    assert_int_equal(strtoll(strchr(cnt, '}') + 1, NULL, 10), total / 4 * 3);
    trip_string_free(prom);
    trip_breaker_free(b);
}

/* ---- 2: half-open admits exactly P -------------------------------------- */

enum { PROBE_THREADS = 12, PROBE_TRIES = 3 };

typedef struct probe_pool {
    trip_breaker *_Atomic b;
    pthread_barrier_t start, done;
    _Atomic int stop;
    trip_ticket passed[PROBE_THREADS][PROBE_TRIES];
    int npassed[PROBE_THREADS];
} probe_pool;

typedef struct probe_arg {
    probe_pool *pool;
    int id;
} probe_arg;

static void *
probe_main(void *p)
{
    probe_arg *a = p;
    probe_pool *pool = a->pool;
    for (;;) {
        pthread_barrier_wait(&pool->start);
        if (atomic_load(&pool->stop))
            return NULL;
        int n = 0;
        for (int k = 0; k < PROBE_TRIES; k++) {
            trip_ticket t;
            if (trip_allow(atomic_load(&pool->b), &t) == TRIP_PASS)
                pool->passed[a->id][n++] = t;
        }
        pool->npassed[a->id] = n;
        pthread_barrier_wait(&pool->done);
    }
}

/* One trial: open the breaker, let its open time pass, race the threads
 * for the probes, check that exactly P got one, fail a probe to reopen. */
static void
probe_trial(probe_pool *pool, trip_breaker *b, trip_clock *clk, uint32_t probes,
            long trial)
{
    trip_ticket t;
    /* closed: one failure trips (consecutive_failures 1) */
    assert_int_equal(trip_allow(b, &t), TRIP_PASS);
    assert_int_equal(trip_record(b, &t, TRIP_FAILURE), TRIP_OK);
    assert_int_equal(trip_breaker_state(b), TRIP_OPEN);
    assert_int_equal(trip_clock_advance(clk, 2 * TEST_S_), TRIP_OK);
    pthread_barrier_wait(&pool->start);
    pthread_barrier_wait(&pool->done);
    int passed = 0;
    for (int i = 0; i < PROBE_THREADS; i++)
        passed += pool->npassed[i];
    if (passed != (int)probes)
        print_error("trial %ld: %d probes admitted, want %u\n", trial, passed,
                    probes);
    assert_int_equal(passed, probes);
    trip_snapshot s;
    trip_snapshot_get(b, &s);
    assert_int_equal(s.state, TRIP_HALF_OPEN);
    assert_int_equal(s.half_open_in_flight, probes);
    /* the probes succeed: S = P successes close the breaker */
    for (int i = 0; i < PROBE_THREADS; i++)
        for (int k = 0; k < pool->npassed[i]; k++)
            assert_int_equal(trip_record(b, &pool->passed[i][k], TRIP_SUCCESS),
                             TRIP_OK);
    assert_int_equal(trip_breaker_state(b), TRIP_CLOSED);
}

static void
test_stress_half_open_admits_exactly_p(void **state)
{
    (void)state;
    long trials = scaled(10000, 100);
    probe_pool *pool = calloc(1, sizeof *pool);
    assert_non_null(pool);
    pthread_barrier_init(&pool->start, NULL, PROBE_THREADS + 1);
    pthread_barrier_init(&pool->done, NULL, PROBE_THREADS + 1);
    trip_clock *clk = NULL;
    assert_int_equal(trip_clock_manual_new(TEST_S_, 0, &clk), TRIP_OK);
    trip_breaker *bs[4] = {NULL};
    for (uint32_t p = 1; p <= 4; p++) {
        trip_config c;
        quiet_config(&c);
        c.consecutive_failures = 1;
        c.open_ns = TEST_S_;
        c.open_max_ns = TEST_S_;
        c.half_open_probes = p;
        c.half_open_successes = p;
        assert_int_equal(trip_breaker_new("probe", &c, clk, &bs[p - 1]),
                         TRIP_OK);
    }
    atomic_store(&pool->b, bs[0]);
    pthread_t th[PROBE_THREADS];
    probe_arg a[PROBE_THREADS];
    for (int i = 0; i < PROBE_THREADS; i++) {
        a[i] = (probe_arg){pool, i};
        assert_int_equal(pthread_create(&th[i], NULL, probe_main, &a[i]), 0);
    }
    for (long trial = 0; trial < trials; trial++) {
        uint32_t p = 1 + (uint32_t)(trial % 4);
        atomic_store(&pool->b, bs[p - 1]);
        probe_trial(pool, bs[p - 1], clk, p, trial);
    }
    atomic_store(&pool->stop, 1);
    pthread_barrier_wait(&pool->start);
    for (int i = 0; i < PROBE_THREADS; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++) {
        trip_snapshot s;
        trip_snapshot_get(bs[i], &s);
        assert_int_equal(s.in_flight, 0);
        trip_breaker_free(bs[i]);
    }
    trip_clock_free(clk);
    pthread_barrier_destroy(&pool->start);
    pthread_barrier_destroy(&pool->done);
    free(pool);
}

/* ---- 3: invariants under racing calls, modes and reconfiguration ------- */

enum { RACE_WORKERS = 6 };

typedef struct race {
    trip_breaker *b;
    trip_clock *clk;
    trip_config cfg[4];
    _Atomic int stop;
    _Atomic long listener_transitions;
    _Atomic long violations;
    /* violations by kind, printed on failure: 0 listener, 1 allow, 2
     * record, 3 set_mode, 4 reconfigure, 5 snapshot ranges, 6 generation
     * going back, 7 more half-open probes than P */
    _Atomic long why[8];
    _Atomic long records_counted; /* records of tickets not issued DISABLED */
    _Atomic long reconfigures, mode_changes, snapshots;
    _Atomic long bad_probes; /* the last half_open_in_flight above P */
} race;

typedef struct race_arg {
    race *r;
    uint64_t rng;
    long ops;
} race_arg;

static uint64_t
rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void
violation(race *r, int kind)
{
    atomic_fetch_add(&r->violations, 1);
    atomic_fetch_add(&r->why[kind], 1);
}

static void
race_listener(int kind, const trip_transition *t, void *user)
{
    race *r = user;
    if (kind != TRIP_EVENT_TRANSITION)
        return;
    /* in metrics-only mode the shadow machine's transitions are announced
     * with from == to == metrics_only; any other no-op is wrong */
    if ((t->from == t->to && t->to != TRIP_METRICS_ONLY) ||
        t->to < TRIP_CLOSED || t->to > TRIP_METRICS_ONLY)
        violation(r, 0);
    atomic_fetch_add(&r->listener_transitions, 1);
}

static void *
race_worker(void *p)
{
    race_arg *a = p;
    race *r = a->r;
    trip_ticket held[4];
    int nheld = 0;
    for (long i = 0; i < a->ops; i++) {
        trip_ticket t;
        int d = trip_allow_priority(r->b, &t, (int)(rnd(&a->rng) & 255));
        if (d < 0 || d > TRIP_LIMITED)
            violation(r, 1);
        if (d != TRIP_PASS)
            continue;
        /* hold some tickets so that results arrive late, across changes */
        if (nheld < 4 && (rnd(&a->rng) & 7) == 0) {
            held[nheld++] = t;
            continue;
        }
        if (nheld > 0 && (rnd(&a->rng) & 3) == 0) {
            trip_ticket h = held[nheld - 1];
            held[nheld - 1] = t;
            t = h;
        }
        int outcome = (rnd(&a->rng) % 100) < 30 ? TRIP_FAILURE : TRIP_SUCCESS;
        if (trip_record_latency(r->b, &t, outcome, 0.001) != TRIP_OK)
            violation(r, 2);
        if (t.state != TRIP_DISABLED)
            atomic_fetch_add(&r->records_counted, 1);
    }
    for (int k = 0; k < nheld; k++) {
        if (trip_record(r->b, &held[k], TRIP_SUCCESS) != TRIP_OK)
            violation(r, 2);
        if (held[k].state != TRIP_DISABLED)
            atomic_fetch_add(&r->records_counted, 1);
    }
    return NULL;
}

/* Operator and time: modes, reconfiguration, the clock, snapshots. */
static void *
race_control(void *p)
{
    race_arg *a = p;
    race *r = a->r;
    static const int modes[] = {TRIP_MODE_NORMAL,      TRIP_MODE_NORMAL,
                                TRIP_MODE_FORCED_OPEN, TRIP_MODE_FORCED_CLOSED,
                                TRIP_MODE_DISABLED,    TRIP_MODE_METRICS_ONLY};
    uint64_t last_gen = 0;
    while (!atomic_load(&r->stop)) {
        uint64_t x = rnd(&a->rng);
        switch (x % 8) {
        case 0:
            if (trip_breaker_set_mode(r->b, modes[(x >> 8) % 6]) != TRIP_OK)
                violation(r, 3);
            atomic_fetch_add(&r->mode_changes, 1);
            break;
        case 1:
            if (trip_breaker_reconfigure(r->b, &r->cfg[(x >> 8) % 4]) !=
                TRIP_OK)
                violation(r, 4);
            atomic_fetch_add(&r->reconfigures, 1);
            break;
        case 2:
        case 3:
        case 4:
            trip_clock_advance(r->clk, (int64_t)((x >> 8) % 400) * TEST_MS_);
            break;
        default: {
            trip_snapshot s;
            trip_snapshot_get(r->b, &s);
            if (s.state < TRIP_CLOSED || s.state > TRIP_METRICS_ONLY ||
                s.machine_state > TRIP_HALF_OPEN || s.in_flight < 0)
                violation(r, 5);
            if (s.generation < last_gen)
                violation(r, 6);
            /* never more probes out than the largest P of the configs */
            if (s.half_open_in_flight > 7) {
                violation(r, 7);
                atomic_store(&r->bad_probes, s.half_open_in_flight);
            }
            last_gen = s.generation;
            atomic_fetch_add(&r->snapshots, 1);
            break;
        }
        }
    }
    return NULL;
}

static void
test_stress_transitions_keep_invariants(void **state)
{
    (void)state;
    race *r = calloc(1, sizeof *r);
    assert_non_null(r);
    /* four shapes: time window, count window, another time window, a count
     * window of another length (records index the ring that reconfigure
     * swaps: each ring carries its own length); all trip easily so that
     * the machine moves */
    for (int i = 0; i < 4; i++) {
        trip_config_init(&r->cfg[i]);
        r->cfg[i].adaptive = 0;
        r->cfg[i].bucket_ns = 50 * TEST_MS_;
        r->cfg[i].min_calls = 5;
        r->cfg[i].failure_rate = 0.25;
        r->cfg[i].consecutive_failures = 4;
        r->cfg[i].open_ns = 100 * TEST_MS_;
        r->cfg[i].open_max_ns = 400 * TEST_MS_;
        r->cfg[i].half_open_probes = 1 + (uint32_t)i * 3;
        r->cfg[i].half_open_successes = 2;
        r->cfg[i].flap_window_ns = TEST_S_;
    }
    r->cfg[1].window_kind = TRIP_WINDOW_COUNT;
    r->cfg[1].window_calls = 20;
    r->cfg[2].window_buckets = 4;
    r->cfg[2].long_window_buckets = 8;
    r->cfg[2].ramp_ns = 200 * TEST_MS_;
    r->cfg[3].window_kind = TRIP_WINDOW_COUNT;
    r->cfg[3].window_calls = 7;
    r->cfg[3].half_open_probes = 4;
    assert_int_equal(trip_clock_manual_new(TEST_S_, 0, &r->clk), TRIP_OK);
    assert_int_equal(trip_breaker_new("race", &r->cfg[0], r->clk, &r->b),
                     TRIP_OK);
    assert_int_equal(trip_breaker_add_listener(r->b, race_listener, r, NULL),
                     TRIP_OK);
    pthread_t th[RACE_WORKERS + 1];
    race_arg a[RACE_WORKERS + 1];
    long ops = scaled(2e6, 20000);
    for (int i = 0; i <= RACE_WORKERS; i++) {
        a[i] = (race_arg){r, 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1), ops};
        assert_int_equal(
            pthread_create(&th[i], NULL,
                           i == RACE_WORKERS ? race_control : race_worker,
                           &a[i]),
            0);
    }
    for (int i = 0; i < RACE_WORKERS; i++)
        pthread_join(th[i], NULL);
    atomic_store(&r->stop, 1);
    pthread_join(th[RACE_WORKERS], NULL);

    trip_snapshot s;
    assert_int_equal(trip_snapshot_get(r->b, &s), TRIP_OK);
    if (atomic_load(&r->violations) != 0) {
        for (int k = 0; k < 8; k++)
            print_error("violations of kind %d: %ld\n", k,
                        atomic_load(&r->why[k]));
        print_error("half-open probes in flight seen above P: %ld\n",
                    atomic_load(&r->bad_probes));
    }
    assert_int_equal(atomic_load(&r->violations), 0);
    /* every admitted call was recorded once: nothing left in flight, and
     * every record landed in the counts or the late results */
    assert_int_equal(s.in_flight, 0);
    assert_int_equal(s.calls + s.late, atomic_load(&r->records_counted));
    /* listeners saw every transition */
    assert_int_equal(atomic_load(&r->listener_transitions), s.transitions);
    /* the race did exercise the machine */
    assert_true(s.transitions > 0);
    assert_true(atomic_load(&r->reconfigures) > 0);
    trip_breaker_free(r->b);
    trip_clock_free(r->clk);
    free(r);
}

/* ---- 4: half-open periods in quick succession --------------------------- */

enum { CYCLE_WORKERS = 4, CYCLE_PROBES = 1 };

typedef struct cycle {
    trip_breaker *b;
    trip_clock *clk;
    _Atomic int stop;
    _Atomic long over;       /* snapshots with more probes out than P */
    _Atomic long worst;      /* the largest such count */
    _Atomic long half_opens; /* periods, counted by a listener */
} cycle;

typedef struct cycle_arg {
    cycle *c;
    uint64_t rng;
    long ops;
} cycle_arg;

/* Calls that fail half the time: every failure trips (closed) or reopens
 * (half-open), every pair of successes closes, so periods follow each
 * other as fast as the clock lets the open time pass. */
static void *
cycle_worker(void *p)
{
    cycle_arg *a = p;
    cycle *c = a->c;
    for (long i = 0; i < a->ops; i++) {
        trip_ticket t;
        if (trip_allow(c->b, &t) != TRIP_PASS)
            continue;
        trip_record(c->b, &t, (rnd(&a->rng) & 1) ? TRIP_FAILURE : TRIP_SUCCESS);
    }
    return NULL;
}

static void
cycle_listener(int kind, const trip_transition *t, void *user)
{
    cycle *c = user;
    if (kind == TRIP_EVENT_TRANSITION && t->to == TRIP_HALF_OPEN)
        atomic_fetch_add(&c->half_opens, 1);
}

static void *
cycle_clock(void *p)
{
    cycle *c = p;
    while (!atomic_load(&c->stop)) {
        trip_clock_advance(c->clk, 2 * TEST_MS_); /* open time is 1 ms */
        trip_snapshot s;
        trip_snapshot_get(c->b, &s);
        if (s.half_open_in_flight > CYCLE_PROBES) {
            atomic_fetch_add(&c->over, 1);
            atomic_store(&c->worst, s.half_open_in_flight);
        }
    }
    return NULL;
}

/* A probe's result that arrives after its period ended (the breaker went
 * open and half-open again meanwhile) must not change the new period's
 * count, nor may an admission that read the old period take a slot of the
 * new one: either left the count wrapped or full with no probe out, and
 * the breaker refused every call from then on. */
static void
test_stress_half_open_periods_keep_probe_counts(void **state)
{
    (void)state;
    cycle *c = calloc(1, sizeof *c);
    assert_non_null(c);
    trip_config cfg;
    quiet_config(&cfg);
    cfg.consecutive_failures = 1;
    cfg.open_ns = TEST_MS_;
    cfg.open_max_ns = TEST_MS_;
    cfg.half_open_probes = CYCLE_PROBES;
    cfg.half_open_successes = 2;
    assert_int_equal(trip_clock_manual_new(TEST_S_, 0, &c->clk), TRIP_OK);
    assert_int_equal(trip_breaker_new("cycle", &cfg, c->clk, &c->b), TRIP_OK);
    assert_int_equal(trip_breaker_add_listener(c->b, cycle_listener, c, NULL),
                     TRIP_OK);
    pthread_t th[CYCLE_WORKERS], clk;
    cycle_arg a[CYCLE_WORKERS];
    long ops = scaled(2e6, 20000);
    assert_int_equal(pthread_create(&clk, NULL, cycle_clock, c), 0);
    for (int i = 0; i < CYCLE_WORKERS; i++) {
        a[i] = (cycle_arg){c, 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1), ops};
        assert_int_equal(pthread_create(&th[i], NULL, cycle_worker, &a[i]), 0);
    }
    for (int i = 0; i < CYCLE_WORKERS; i++)
        pthread_join(th[i], NULL);
    atomic_store(&c->stop, 1);
    pthread_join(clk, NULL);
    if (atomic_load(&c->over) != 0)
        print_error("%ld snapshots with more than %d probes out (last %ld)\n",
                    atomic_load(&c->over), CYCLE_PROBES,
                    atomic_load(&c->worst));
    assert_int_equal(atomic_load(&c->over), 0);
    assert_true(atomic_load(&c->half_opens) > 0);
    /* nothing is out now: once the open time has passed, a call passes
     * (closed, or the first probe of a half-open period) */
    assert_int_equal(trip_clock_advance(c->clk, TEST_S_), TRIP_OK);
    trip_ticket t;
    int d = trip_allow(c->b, &t);
    if (d != TRIP_PASS)
        print_error("state %d refused the call (%d)\n",
                    trip_breaker_state(c->b), d);
    assert_int_equal(d, TRIP_PASS);
    assert_int_equal(trip_record(c->b, &t, TRIP_SUCCESS), TRIP_OK);
    trip_breaker_free(c->b);
    trip_clock_free(c->clk);
    free(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stress_counters_exact_16_threads),
        cmocka_unit_test(test_stress_half_open_admits_exactly_p),
        cmocka_unit_test(test_stress_transitions_keep_invariants),
        cmocka_unit_test(test_stress_half_open_periods_keep_probe_counts),
    };
    /* TRIP_STRESS_ONLY=<pattern> runs only the tests whose names match
     * (cmocka's filter, '*' and '?' wildcards): to loop one test */
    const char *only = getenv("TRIP_STRESS_ONLY");
    if (only != NULL && only[0] != '\0')
        cmocka_set_test_filter(only);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
