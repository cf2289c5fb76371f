/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Measure the per-call cost of the breaker's paths against a floor. */

/*
 * usage: bench_core [calls_per_case [repetitions]]   (2000000, 7)
 *
 * Every repetition runs every case once, interleaved, so that noise from the
 * machine falls on all of them alike. Each case is timed by the wall clock and
 * by the thread's CPU clock; the table shows the median and the minimum CPU
 * time per call over the repetitions, and the median wall time. Ratios use
 * the CPU medians: on a shared machine the wall time also counts the time a
 * thread waited for a core. The cases:
 *
 *   floor      what any breaker must at least do per call: two
 *              CLOCK_MONOTONIC reads (start and end of the call) and three
 *              relaxed atomic counter updates (calls, successes, latency
 *              sum), written here, outside the library.
 *   closed     trip_allow() + trip_record(SUCCESS) on a closed breaker with
 *              the default configuration and the system clock (latency from
 *              the ticket, rules on every 1 s bucket roll, as in production).
 *   rejected   trip_allow() on a forced-open breaker, and on one opened by
 *              its rules (open for an hour).
 *   half-open  a probe: trip_allow() + trip_record(SUCCESS) in half-open;
 *              and trip_allow() refused (LIMITED) while the probe budget is
 *              in use.
 *   2 threads  the closed case from two threads on one breaker; the cost
 *              per call seen by each thread, against one thread alone. The
 *              floor from two threads on shared counters is shown for
 *              comparison.
 *
 * Allocations are counted around the timed loops two ways: the library's own
 * counter (every allocation of libtripsense goes through trip__malloc and
 * friends) and, on glibc, a counter of every malloc in the process.
 * Targets (issue 3): closed <= 1.25 x floor, rejected <= 0.25 x floor,
 * 2 threads <= 1.5 x one thread per call, zero allocations per call.
 * Timings are printed, never asserted.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h" /* trip__test_alloc_count: link the static library */
#include "tripsense/tripsense.h"

#define MAX_REPS 101

/* ---- a process-wide malloc counter (glibc, unsanitized builds) ----------- */

#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__) &&                    \
    !defined(__SANITIZE_THREAD__)
#define BENCH_COUNT_MALLOC 1
static atomic_long process_allocs;
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

void *malloc(size_t n);
void *calloc(size_t c, size_t n);
void *realloc(void *p, size_t n);
void *aligned_alloc(size_t a, size_t n);
int posix_memalign(void **p, size_t a, size_t n);

void *
malloc(size_t n)
{
    atomic_fetch_add_explicit(&process_allocs, 1, memory_order_relaxed);
    return __libc_malloc(n);
}

void *
calloc(size_t c, size_t n)
{
    atomic_fetch_add_explicit(&process_allocs, 1, memory_order_relaxed);
    return __libc_calloc(c, n);
}

void *
realloc(void *p, size_t n)
{
    atomic_fetch_add_explicit(&process_allocs, 1, memory_order_relaxed);
    return __libc_realloc(p, n);
}

void *
aligned_alloc(size_t a, size_t n)
{
    atomic_fetch_add_explicit(&process_allocs, 1, memory_order_relaxed);
    return __libc_memalign(a, n);
}

int
posix_memalign(void **p, size_t a, size_t n)
{
    atomic_fetch_add_explicit(&process_allocs, 1, memory_order_relaxed);
    *p = __libc_memalign(a, n);
    return *p ? 0 : ENOMEM;
}

static long
process_alloc_count(void)
{
    return atomic_load(&process_allocs);
}
#else
#define BENCH_COUNT_MALLOC 0
static long
process_alloc_count(void)
{
    return 0;
}
#endif

/* ---- helpers ------------------------------------------------------------- */

static int64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t
cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Wall and this thread's CPU time: on a busy machine the CPU time leaves out
 * the time the thread waited for a core. */
typedef struct watch {
    int64_t wall, cpu;
} watch;

/* Cost per call, ns. */
typedef struct cost {
    double wall, cpu;
} cost;

static watch
watch_start(void)
{
    return (watch){now_ns(), cpu_ns()};
}

static void
watch_add(watch *acc, watch start)
{
    acc->wall += now_ns() - start.wall;
    acc->cpu += cpu_ns() - start.cpu;
}

static cost
per_call(watch spent, long n)
{
    return (cost){(double)spent.wall / (double)n,
                  (double)spent.cpu / (double)n};
}

static cost
since(watch start, long n)
{
    watch spent = {0, 0};
    watch_add(&spent, start);
    return per_call(spent, n);
}

static void
sleep_ns(int64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void
die(const char *what, int rc)
{
    fprintf(stderr, "bench_core: %s: %s (%s)\n", what, trip_strerror(rc),
            trip_errmsg());
    exit(EXIT_FAILURE);
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct sample {
    double ns[MAX_REPS];
    int n;
} sample;

typedef struct samples {
    sample wall, cpu;
} samples;

static double
median(sample *s)
{
    double v[MAX_REPS];
    memcpy(v, s->ns, sizeof(double) * (size_t)s->n);
    qsort(v, (size_t)s->n, sizeof v[0], cmp_double);
    return s->n % 2 ? v[s->n / 2] : (v[s->n / 2 - 1] + v[s->n / 2]) / 2;
}

static double
minimum(const sample *s)
{
    double m = s->ns[0];
    for (int i = 1; i < s->n; i++)
        m = s->ns[i] < m ? s->ns[i] : m;
    return m;
}

/* ---- allocation accounting ----------------------------------------------- */

static long lib_allocs, proc_allocs, counted_calls;
static long lib_mark, proc_mark;

/* Both counters must see the allocations of trip_breaker_new(), or they
 * cannot vouch for the zero measured on the hot path. */
static int
alloc_counters_work(void)
{
    long lib0 = trip__test_alloc_count(), proc0 = process_alloc_count();
    trip_breaker *b;
    if (trip_breaker_new("alloc_check", NULL, NULL, &b) != TRIP_OK)
        return 0;
    trip_breaker_free(b);
    return trip__test_alloc_count() > lib0 &&
           (!BENCH_COUNT_MALLOC || process_alloc_count() > proc0);
}

static void
alloc_begin(void)
{
    lib_mark = trip__test_alloc_count();
    proc_mark = process_alloc_count();
}

static void
alloc_end(long calls)
{
    lib_allocs += trip__test_alloc_count() - lib_mark;
    proc_allocs += process_alloc_count() - proc_mark;
    counted_calls += calls;
}

/* ---- the floor ----------------------------------------------------------- */

typedef struct floor_counters {
    _Alignas(64) atomic_long calls;
    atomic_long successes;
    atomic_llong latency_sum;
} floor_counters;

static cost
run_floor(floor_counters *fc, long n)
{
    watch t0 = watch_start();
    for (long i = 0; i < n; i++) {
        int64_t start = now_ns();
        atomic_fetch_add_explicit(&fc->calls, 1, memory_order_relaxed);
        int64_t end = now_ns();
        atomic_fetch_add_explicit(&fc->successes, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&fc->latency_sum, end - start,
                                  memory_order_relaxed);
    }
    return since(t0, n);
}

/* ---- the breaker's paths ------------------------------------------------- */

static cost
run_closed(trip_breaker *b, long n)
{
    watch t0 = watch_start();
    for (long i = 0; i < n; i++) {
        trip_ticket t;
        if (trip_allow(b, &t) == TRIP_PASS)
            trip_record(b, &t, TRIP_SUCCESS);
    }
    return since(t0, n);
}

static cost
run_rejected(trip_breaker *b, long n)
{
    long refused = 0;
    watch t0 = watch_start();
    for (long i = 0; i < n; i++) {
        trip_ticket t;
        refused += trip_allow(b, &t) != TRIP_PASS;
    }
    cost c = since(t0, n);
    if (refused != n) {
        fprintf(stderr, "bench_core: %ld of %ld calls refused, not all\n",
                refused, n);
        exit(EXIT_FAILURE);
    }
    return c;
}

/* Wait (reopening with failures) until b admits a probe into *probe. */
static void
reenter_half_open(trip_breaker *b, int64_t open_ns, trip_ticket *probe)
{
    for (;;) {
        int d = trip_allow(b, probe);
        if (d == TRIP_PASS && probe->state == TRIP_HALF_OPEN)
            return;
        if (d == TRIP_PASS)
            trip_record(b, probe, TRIP_FAILURE);
        else
            sleep_ns(open_ns);
    }
}

/* Probes in batches below half_open_successes, so it never closes. */
static cost
run_half_open(trip_breaker *b, long n, long batch, int64_t open_ns)
{
    watch spent = {0, 0};
    long done = 0;
    while (done < n) {
        long k = n - done < batch ? n - done : batch;
        trip_ticket t;
        /* the transition to half-open and its first probe are not timed */
        reenter_half_open(b, open_ns, &t);
        trip_record(b, &t, TRIP_SUCCESS);
        watch t0 = watch_start();
        for (long i = 0; i < k; i++) {
            if (trip_allow(b, &t) == TRIP_PASS)
                trip_record(b, &t, TRIP_SUCCESS);
        }
        watch_add(&spent, t0);
        done += k;
        /* end the batch: a failed probe reopens */
        if (trip_allow(b, &t) == TRIP_PASS)
            trip_record(b, &t, TRIP_FAILURE);
    }
    return per_call(spent, n);
}

/* ---- two threads --------------------------------------------------------- */

typedef struct worker {
    pthread_t tid;
    pthread_barrier_t *start;
    trip_breaker *b; /* NULL: run the floor on fc */
    floor_counters *fc;
    long n;
    cost per_call;
} worker;

static void *
worker_main(void *arg)
{
    worker *w = arg;
    pthread_barrier_wait(w->start);
    w->per_call = w->b ? run_closed(w->b, w->n) : run_floor(w->fc, w->n);
    return NULL;
}

/* Mean per-call cost seen by each of two threads running at once. */
static cost
run_two_threads(trip_breaker *b, floor_counters *fc, long n)
{
    pthread_barrier_t start;
    worker w[2];
    pthread_barrier_init(&start, NULL, 2);
    for (int i = 0; i < 2; i++) {
        w[i] = (worker){.start = &start, .b = b, .fc = fc, .n = n};
        if (pthread_create(&w[i].tid, NULL, worker_main, &w[i]) != 0) {
            fprintf(stderr, "bench_core: pthread_create failed\n");
            exit(EXIT_FAILURE);
        }
    }
    for (int i = 0; i < 2; i++)
        pthread_join(w[i].tid, NULL);
    pthread_barrier_destroy(&start);
    return (cost){(w[0].per_call.wall + w[1].per_call.wall) / 2,
                  (w[0].per_call.cpu + w[1].per_call.cpu) / 2};
}

/* ---- setup and report ---------------------------------------------------- */

enum {
    C_FLOOR,
    C_CLOSED,
    C_FORCED,
    C_OPEN,
    C_PROBE,
    C_LIMITED,
    C_TWO,
    C_TWO_FLOOR,
    NCASES
};

typedef struct bench {
    trip_breaker *closed, *forced, *open, *half, *limited, *two;
    trip_ticket held; /* the probe that keeps `limited` at its budget */
    int64_t half_open_ns;
    floor_counters *fc, *fc2;
    samples s[NCASES];
} bench;

static trip_breaker *
new_breaker(const char *name, const trip_config *cfg)
{
    trip_breaker *b;
    int rc = trip_breaker_new(name, cfg, NULL, &b);
    if (rc != TRIP_OK)
        die(name, rc);
    return b;
}

/* A breaker that trips on one failure and reopens for open_ns exactly. */
static void
quick_trip_config(trip_config *cfg, int64_t open_ns)
{
    trip_config_init(cfg);
    cfg->consecutive_failures = 1;
    cfg->open_ns = open_ns;
    cfg->open_max_ns = open_ns;
    cfg->backoff_multiplier = 1;
    cfg->jitter = 0;
    cfg->half_open_probes = 1;
    cfg->half_open_successes = 100000;
    cfg->flap_trips = 0;
}

static void
setup(bench *bn)
{
    trip_config cfg;
    bn->closed = new_breaker("closed", NULL);
    bn->two = new_breaker("two_threads", NULL);
    bn->forced = new_breaker("forced_open", NULL);
    int rc = trip_breaker_set_mode(bn->forced, TRIP_MODE_FORCED_OPEN);
    if (rc != TRIP_OK)
        die("set_mode", rc);

    quick_trip_config(&cfg, 3600 * INT64_C(1000000000));
    bn->open = new_breaker("open", &cfg);
    trip_ticket t;
    if (trip_allow(bn->open, &t) == TRIP_PASS)
        trip_record(bn->open, &t, TRIP_FAILURE);
    if (trip_breaker_state(bn->open) != TRIP_OPEN)
        die("open breaker did not open", TRIP_ESTATE);

    bn->half_open_ns = 1000000; /* the shortest open duration allowed */
    quick_trip_config(&cfg, bn->half_open_ns);
    bn->half = new_breaker("half_open", &cfg);
    bn->limited = new_breaker("limited", &cfg);
    /* hold the one probe admitted and never record it: the budget stays
     * in use and every later allow is LIMITED */
    reenter_half_open(bn->limited, bn->half_open_ns, &bn->held);

    bn->fc = aligned_alloc(64, sizeof *bn->fc);
    bn->fc2 = aligned_alloc(64, sizeof *bn->fc2);
    if (!bn->fc || !bn->fc2)
        die("aligned_alloc", TRIP_ENOMEM);
    memset(bn->fc, 0, sizeof *bn->fc);
    memset(bn->fc2, 0, sizeof *bn->fc2);
}

static void
add(samples *s, cost c)
{
    s->wall.ns[s->wall.n++] = c.wall;
    s->cpu.ns[s->cpu.n++] = c.cpu;
}

static void
one_repetition(bench *bn, long n)
{
    add(&bn->s[C_FLOOR], run_floor(bn->fc, n));
    alloc_begin();
    add(&bn->s[C_CLOSED], run_closed(bn->closed, n));
    add(&bn->s[C_FORCED], run_rejected(bn->forced, n));
    add(&bn->s[C_OPEN], run_rejected(bn->open, n));
    add(&bn->s[C_LIMITED], run_rejected(bn->limited, n));
    alloc_end(4 * n);
    add(&bn->s[C_PROBE], run_half_open(bn->half, n, 50000, bn->half_open_ns));
    alloc_begin();
    add(&bn->s[C_TWO], run_two_threads(bn->two, NULL, n));
    alloc_end(2 * n);
    add(&bn->s[C_TWO_FLOOR], run_two_threads(NULL, bn->fc2, n));
}

/* The table: each case, the case it is compared with, and its target
 * ratio (0: none). */
static const struct {
    int id;
    const char *name;
    int ref;
    double target;
} report_rows[] = {
    {C_FLOOR, "floor: 2 clock reads + 3 relaxed atomics", C_FLOOR, 0},
    {C_CLOSED, "closed: allow + record", C_FLOOR, 1.25},
    {C_FORCED, "rejected: forced open (allow)", C_FLOOR, 0.25},
    {C_OPEN, "rejected: open by a rule (allow)", C_FLOOR, 0.25},
    {C_PROBE, "half-open: probe allow + record", C_FLOOR, 0},
    {C_LIMITED, "half-open: limited, budget in use (allow)", C_FLOOR, 0},
    {C_TWO, "2 threads, one breaker: allow + record", C_CLOSED, 1.5},
    {C_TWO_FLOOR, "2 threads, floor on shared counters", C_FLOOR, 0},
};

static void
report_table(bench *bn)
{
    /* a Markdown table, to paste into bench/RESULTS.md as it is */
    printf("| %-42s | %7s | %7s | %7s | %-15s | %-16s | %-4s |\n", "case",
           "cpu med", "cpu min", "wall", "ratio (cpu)", "target", "met");
    printf("|--------------------------------------------|---------|------"
           "---|---------|-----------------|------------------|------|\n");
    for (size_t i = 0; i < sizeof report_rows / sizeof report_rows[0]; i++) {
        int id = report_rows[i].id, ref = report_rows[i].ref;
        const char *of = ref == C_FLOOR ? "floor" : "1 thread";
        double med = median(&bn->s[id].cpu);
        double ratio = med / median(&bn->s[ref].cpu);
        char r[32], t[32] = "", met[8] = "";
        snprintf(r, sizeof r, "%.2f x %s", ratio, of);
        if (report_rows[i].target > 0) {
            snprintf(t, sizeof t, "<= %g x %s", report_rows[i].target, of);
            snprintf(met, sizeof met, "%s",
                     ratio <= report_rows[i].target ? "yes" : "NO");
        }
        printf("| %-42s | %7.1f | %7.1f | %7.1f | %-15s | %-16s | %-4s |\n",
               report_rows[i].name, med, minimum(&bn->s[id].cpu),
               median(&bn->s[id].wall), r, t, met);
    }
}

static void
report(bench *bn, long n, int reps)
{
    printf("bench_core: %ld calls per case, %d repetitions; ns per call: "
           "median and minimum of the thread CPU time, median of the wall "
           "time\n\n",
           n, reps);
    report_table(bn);
    double load[3] = {0, 0, 0};
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3)
            load[0] = load[1] = load[2] = 0;
        fclose(f);
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    printf("\nload average at the end: %.2f %.2f %.2f on %ld CPUs\n", load[0],
           load[1], load[2], cpus);
    if (sched_getscheduler(0) == SCHED_FIFO)
        printf("real-time priority (SCHED_FIFO): the threads held their cores "
               "while timed, so the\ntwo threads ran at once (the "
               "shared-counter floor shows their contention)\n");
    else if (load[0] > (double)cpus - 1)
        printf("the machine was busy: wall times include waiting for a core; "
               "the two threads may not\nhave run at the same time, which "
               "hides their contention (the shared-counter floor\nshows it: "
               "one written cache line costs several times one thread when "
               "both run at once)\n");
    if (!alloc_counters_work()) {
        printf("allocations: the counters do not see trip_breaker_new(); "
               "no verdict\n");
        return;
    }
    printf("allocations in %ld timed calls (closed, rejected, limited, "
           "2 threads): library %ld, process %s%ld -> %s per call (target 0)"
           "\n",
           counted_calls, lib_allocs, BENCH_COUNT_MALLOC ? "" : "n/a ",
           proc_allocs, lib_allocs == 0 && proc_allocs == 0 ? "0" : "NOT 0");
}

int
main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 2000000;
    int reps = argc > 2 ? atoi(argv[2]) : 7;
    if (n < 1000 || reps < 1 || reps > MAX_REPS) {
        fprintf(stderr,
                "usage: bench_core [calls_per_case >= 1000 "
                "[repetitions 1..%d]]\n",
                MAX_REPS);
        return EXIT_FAILURE;
    }
    bench bn;
    memset(&bn, 0, sizeof bn);
    setup(&bn);
    run_floor(bn.fc, n / 10); /* warm up caches, clocks and frequency */
    run_closed(bn.closed, n / 10);
    for (int r = 0; r < reps; r++)
        one_repetition(&bn, n);
    report(&bn, n, reps);
    trip_breaker_free(bn.closed);
    trip_breaker_free(bn.two);
    trip_breaker_free(bn.forced);
    trip_breaker_free(bn.open);
    trip_breaker_free(bn.half);
    trip_breaker_free(bn.limited);
    free(bn.fc);
    free(bn.fc2);
    return EXIT_SUCCESS;
}
