/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Replay of recorded calls through the live engine on a manual clock. */
/* madvise and MADV_HUGEPAGE (sys/mman.h) are not POSIX */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE 1
#endif
#include <math.h>
#include <string.h>
#include <sys/mman.h>

#include "breaker_internal.h"

typedef struct trip_replay_ctx_ {
    trip_replay_result *res;
    size_t cap_evals, cap_trans;
    int failed;
    int overflow; /* more evaluations than trip_replay_reserve_ allowed */
} trip_replay_ctx_;

/* A result array of `bytes` at p, at least partly not yet written: ask
 * for huge pages where the kernel gives them on request (transparent huge
 * pages in "madvise" mode). Its first writes then fault once per 2 MiB,
 * not once per 4 KiB; the faults were most of the kernel's share of a
 * replay of ten million events (bench/RESULTS.md). Advice only: a refusal
 * changes nothing. Only arrays of 32 MiB or more, which glibc always maps
 * on their own (its largest mmap threshold): advice on a smaller one could
 * fall on heap memory that later allocations reuse. */
static void
trip_replay_advise_(void *p, size_t bytes)
{
#if defined(MADV_HUGEPAGE)
    const uintptr_t huge = (uintptr_t)2 << 20;
    uintptr_t lo = ((uintptr_t)p + huge - 1) & ~(huge - 1);
    uintptr_t hi = ((uintptr_t)p + bytes) & ~(huge - 1);
    if (p != NULL && bytes >= ((size_t)32 << 20) && hi > lo)
        (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
#else
    (void)p;
    (void)bytes;
#endif
}

static void
trip_replay_eval_(void *user, const trip_eval *ev)
{
    trip_replay_ctx_ *c = user;
    trip_replay_result *r = c->res;
    if (c->failed || c->overflow)
        return;
    if (r->n_evals == c->cap_evals) {
        /* only times out of order roll more often than the span allows,
         * and the replay fails at the first of them */
        c->overflow = 1;
        return;
    }
    r->evals[r->n_evals++] = *ev;
}

static void
trip_replay_transition_(int kind, const trip_transition *t, void *user)
{
    trip_replay_ctx_ *c = user;
    trip_replay_result *r = c->res;
    if (kind != TRIP_EVENT_TRANSITION || c->failed)
        return;
    if (r->n_transitions == c->cap_trans) {
        size_t cap = c->cap_trans ? c->cap_trans * 2 : 64;
        trip_transition_row *p = trip__realloc(r->transitions, cap * sizeof *p);
        if (p == NULL) {
            c->failed = 1;
            return;
        }
        r->transitions = p;
        c->cap_trans = cap;
    }
    r->transitions[r->n_transitions++] = trip__transition_row(t, 0);
}

/* The event columns, read in place: parallel arrays (trip_replay_arrays)
 * or the fields of an array of trip_event (trip_replay), each a base and a
 * stride in bytes, so that neither form is copied into the other. */
typedef struct trip_replay_cols_ {
    const char *wall, *lat, *outcome, *prio; /* prio NULL: all 0 */
    size_t wall_step, lat_step, outcome_step, prio_step;
} trip_replay_cols_;

static inline int64_t
trip_col_wall_(const trip_replay_cols_ *c, size_t i)
{
    int64_t v;
    memcpy(&v, c->wall + i * c->wall_step, sizeof v);
    return v;
}

static inline double
trip_col_lat_(const trip_replay_cols_ *c, size_t i)
{
    double v;
    memcpy(&v, c->lat + i * c->lat_step, sizeof v);
    return v;
}

static inline int32_t
trip_col_int_(const char *base, size_t step, size_t i)
{
    int32_t v = 0;
    if (base != NULL)
        memcpy(&v, base + i * step, sizeof v);
    return v;
}

/* One event's columns, read once. */
static inline trip__replay_ev
trip_replay_read_(const trip_replay_cols_ *c, size_t i)
{
    trip__replay_ev e = {trip_col_wall_(c, i), trip_col_lat_(c, i),
                         trip_col_int_(c->outcome, c->outcome_step, i),
                         trip_col_int_(c->prio, c->prio_step, i)};
    return e;
}

/* Each event checked, then played as a live caller makes it. */
static int
trip_replay_run_(trip_breaker *b, trip_clock *clk, const trip_replay_cols_ *c,
                 trip_replay_result *r)
{
    int64_t prev = 0;
    for (size_t i = 0; i < r->n_events; i++) {
        trip__replay_ev e = trip_replay_read_(c, i);
        int rc = trip__replay_check("replay", &e, i, prev);
        if (rc != TRIP_OK)
            return rc;
        prev = e.wall;
        int state;
        r->decisions[i] = (uint8_t)trip__replay_step(b, clk, &e, &state);
        r->states[i] = (uint8_t)state;
    }
    return TRIP_OK;
}

void
trip_replay_result_free(trip_replay_result *r)
{
    if (r == NULL)
        return;
    trip__free(r->decisions);
    trip__free(r->states);
    trip__free(r->evals);
    trip__free(r->transitions);
    trip__free(r);
}

/* The evaluations' array, allocated once. A roll happens only when an
 * event enters a later bucket than the last, so there are at most as many
 * as the events' span has buckets, and at most one per event. Only the
 * pages written are ever touched, and trip_replay_shrink_ gives back what
 * a span of few events left unused (a burst, then one event a year later,
 * reserved a slot per event). Times out of order can roll more often:
 * the hook then stops storing, and the replay fails at the first such
 * event. */
static int
trip_replay_reserve_(trip_replay_ctx_ *ctx, const trip_replay_cols_ *c,
                     size_t n, int64_t bucket_ns)
{
    size_t cap = 1;
    if (n > 0) {
        /* unchecked times (each is checked as it is played): unsigned, so
         * that any pair gives a span without overflow */
        uint64_t first = (uint64_t)trip_col_wall_(c, 0);
        uint64_t last = (uint64_t)trip_col_wall_(c, n - 1);
        uint64_t span = last > first ? last - first : 0;
        uint64_t buckets = span / (uint64_t)bucket_ns + 2;
        cap = buckets < (uint64_t)n + 1 ? (size_t)buckets : n + 1;
    }
    trip_eval *p =
        cap <= SIZE_MAX / sizeof *p ? trip__malloc(cap * sizeof *p) : NULL;
    if (p == NULL)
        return trip__fail(TRIP_ENOMEM, "replay: out of memory");
    trip_replay_advise_(p, cap * sizeof *p);
    ctx->res->evals = p;
    ctx->cap_evals = cap;
    return TRIP_OK;
}

/* Give back the evaluations' slots left unused (a failure keeps them). */
static void
trip_replay_shrink_(trip_replay_ctx_ *ctx)
{
    trip_replay_result *r = ctx->res;
    size_t keep = r->n_evals ? r->n_evals : 1;
    if (keep >= ctx->cap_evals)
        return;
    trip_eval *p = trip__realloc(r->evals, keep * sizeof *p);
    if (p != NULL) {
        r->evals = p;
        ctx->cap_evals = keep;
    }
}

static int
trip_replay_cols_run_(const trip_config *cfg, const trip_replay_cols_ *c,
                      size_t n, unsigned flags, trip_replay_result **out)
{
    *out = NULL;
    trip_clock *clk = NULL;
    trip_breaker *b = NULL;
    trip_replay_result *r = trip__calloc(1, sizeof *r);
    trip_replay_ctx_ ctx = {r, 0, 0, 0, 0};
    int rc = r ? TRIP_OK : TRIP_ENOMEM;
    if (rc == TRIP_OK) {
        r->n_events = n;
        r->decisions = trip__calloc(n ? n : 1, 1);
        r->states = trip__calloc(n ? n : 1, 1);
        if (!r->decisions || !r->states)
            rc = TRIP_ENOMEM;
        trip_replay_advise_(r->decisions, n);
        trip_replay_advise_(r->states, n);
    }
    if (rc == TRIP_OK && n > 0) {
        trip__replay_ev e0 = trip_replay_read_(c, 0);
        rc = trip__replay_check("replay", &e0, 0, 0);
    }
    if (rc == TRIP_OK)
        rc = trip_clock_manual_new(n ? trip_col_wall_(c, 0) : 0, 0, &clk);
    if (rc == TRIP_OK)
        rc = trip_breaker_new("replay", cfg, clk, &b);
    int evals = !(flags & TRIP_REPLAY_NO_EVALS);
    if (rc == TRIP_OK && evals)
        rc = trip_replay_reserve_(&ctx, c, n, b->cfg.bucket_ns);
    if (rc == TRIP_OK) {
        if (evals) {
            b->eval_hook = trip_replay_eval_;
            b->eval_hook_user = &ctx;
        }
        rc = trip_breaker_add_listener(b, trip_replay_transition_, &ctx, NULL);
    }
    if (rc == TRIP_OK)
        rc = trip_replay_run_(b, clk, c, r);
    if (rc == TRIP_OK && ctx.failed)
        rc = trip__fail(TRIP_ENOMEM, "replay: out of memory");
    if (rc == TRIP_OK && ctx.overflow) /* not reached: see the reserve */
        rc = trip__fail(TRIP_ERANGE, "replay: more evaluations than the "
                                     "events' span has buckets");
    if (rc == TRIP_OK && evals)
        trip_replay_shrink_(&ctx);
    if (rc == TRIP_OK)
        trip_snapshot_get(b, &r->final);
    trip_breaker_free(b);
    trip_clock_free(clk);
    if (rc != TRIP_OK) {
        if (rc == TRIP_ENOMEM && strlen(trip_errmsg()) == 0)
            trip__fail(rc, "replay: out of memory");
        trip_replay_result_free(r);
        return rc;
    }
    *out = r;
    return TRIP_OK;
}

int
trip_replay_arrays_flags(const trip_config *cfg, const int64_t *wall_ns,
                         const double *latency_s, const int32_t *outcome,
                         const int32_t *priority, size_t n, unsigned flags,
                         trip_replay_result **out)
{
    if (out == NULL || (n > 0 && (!wall_ns || !latency_s || !outcome)))
        return trip__fail(TRIP_EINVAL, "trip_replay: NULL argument");
    if (flags & ~(unsigned)TRIP_REPLAY_NO_EVALS) {
        *out = NULL;
        return trip__fail(TRIP_EINVAL, "trip_replay: unknown flags 0x%x",
                          flags & ~(unsigned)TRIP_REPLAY_NO_EVALS);
    }
    trip_replay_cols_ c = {(const char *)wall_ns, (const char *)latency_s,
                           (const char *)outcome, (const char *)priority,
                           sizeof *wall_ns,       sizeof *latency_s,
                           sizeof *outcome,       sizeof *priority};
    return trip_replay_cols_run_(cfg, &c, n, flags, out);
}

int
trip_replay_arrays(const trip_config *cfg, const int64_t *wall_ns,
                   const double *latency_s, const int32_t *outcome,
                   const int32_t *priority, size_t n, trip_replay_result **out)
{
    return trip_replay_arrays_flags(cfg, wall_ns, latency_s, outcome, priority,
                                    n, 0, out);
}

int
trip_replay(const trip_config *cfg, const trip_event *events, size_t n,
            trip_replay_result **out)
{
    if (out == NULL || (n > 0 && events == NULL))
        return trip__fail(TRIP_EINVAL, "trip_replay: NULL argument");
    /* with n == 0 nothing is read; the fields' addresses are not taken
     * from a NULL array */
    static const trip_event none;
    const trip_event *e = n > 0 ? events : &none;
    _Static_assert(sizeof e->outcome == sizeof(int32_t) &&
                       sizeof e->priority == sizeof(int32_t),
                   "trip_event's outcome and priority are 32-bit");
    trip_replay_cols_ c = {(const char *)&e->wall_ns,
                           (const char *)&e->latency_s,
                           (const char *)&e->outcome,
                           (const char *)&e->priority,
                           sizeof *e,
                           sizeof *e,
                           sizeof *e,
                           sizeof *e};
    return trip_replay_cols_run_(cfg, &c, n, 0, out);
}
