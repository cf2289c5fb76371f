/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Replay of recorded calls through the live engine on a manual clock. */
#include <math.h>
#include <string.h>

#include "breaker_internal.h"

typedef struct trip_replay_ctx_ {
    trip_replay_result *res;
    size_t cap_evals, cap_trans;
    int failed;
} trip_replay_ctx_;

static void
trip_replay_eval_(void *user, const trip_eval *ev)
{
    trip_replay_ctx_ *c = user;
    trip_replay_result *r = c->res;
    if (c->failed)
        return;
    if (r->n_evals == c->cap_evals) {
        size_t cap = c->cap_evals ? c->cap_evals * 2 : 1024;
        trip_eval *p = trip__realloc(r->evals, cap * sizeof *p);
        if (p == NULL) {
            c->failed = 1;
            return;
        }
        r->evals = p;
        c->cap_evals = cap;
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
typedef struct trip_replay_ev_ {
    int64_t wall;
    double lat;
    int32_t outcome, prio;
} trip_replay_ev_;

static inline trip_replay_ev_
trip_replay_read_(const trip_replay_cols_ *c, size_t i)
{
    trip_replay_ev_ e = {trip_col_wall_(c, i), trip_col_lat_(c, i),
                         trip_col_int_(c->outcome, c->outcome_step, i),
                         trip_col_int_(c->prio, c->prio_step, i)};
    return e;
}

/* Event i against the limits of the engine; prev is event i - 1's time
 * (ignored for i == 0). */
static int
trip_replay_check_(const trip_replay_ev_ *e, size_t i, int64_t prev)
{
    if (e->wall < 0 || (i > 0 && e->wall < prev))
        return trip__fail(TRIP_EINVAL,
                          "replay: event %zu: time %lld is "
                          "negative or before the previous event",
                          i, (long long)e->wall);
    if (e->wall > TRIP__TIME_MAX_NS)
        return trip__fail(TRIP_EINVAL,
                          "replay: event %zu: time %lld is "
                          "past 2^62 ns (the year 2116)",
                          i, (long long)e->wall);
    /* the limits of trip_record_latency(): an event it would refuse must
     * not be admitted and then never recorded */
    if (!isfinite(e->lat) || e->lat < 0 || e->lat > 86400.0 * 365)
        return trip__fail(TRIP_EINVAL,
                          "replay: event %zu: latency %g must "
                          "be finite and in [0, 1 year] seconds",
                          i, e->lat);
    if (e->outcome < TRIP_SUCCESS || e->outcome > TRIP_IGNORED)
        return trip__fail(TRIP_EINVAL,
                          "replay: event %zu: unknown outcome "
                          "%d",
                          i, (int)e->outcome);
    if (e->prio < 0 || e->prio > 255)
        return trip__fail(TRIP_EINVAL,
                          "replay: event %zu: priority %d not "
                          "in [0, 255]",
                          i, (int)e->prio);
    return TRIP_OK;
}

/* Each event as a live caller makes it: move the clock, allow, record.
 * The event is checked first, so the public calls' own checks (a clock
 * that goes back, a latency out of range) cannot fail, and the checked
 * forms are called: the same engine without the second check and the
 * clock's compare-and-swap (the replay's clock is its own). */
static int
trip_replay_run_(trip_breaker *b, trip_clock *clk, const trip_replay_cols_ *c,
                 trip_replay_result *r)
{
    int64_t prev = 0;
    for (size_t i = 0; i < r->n_events; i++) {
        trip_replay_ev_ e = trip_replay_read_(c, i);
        int rc = trip_replay_check_(&e, i, prev);
        if (rc != TRIP_OK)
            return rc;
        prev = e.wall;
        trip__clock_store(clk, e.wall);
        trip_ticket t;
        int d = trip_allow_priority(b, &t, e.prio);
        r->decisions[i] = (uint8_t)d;
        r->states[i] = (uint8_t)t.state;
        if (d == TRIP_PASS && t.decision == TRIP_PASS)
            trip__record_latency_checked(b, &t, e.outcome, e.lat);
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

static int
trip_replay_cols_run_(const trip_config *cfg, const trip_replay_cols_ *c,
                      size_t n, trip_replay_result **out)
{
    *out = NULL;
    trip_clock *clk = NULL;
    trip_breaker *b = NULL;
    trip_replay_result *r = trip__calloc(1, sizeof *r);
    trip_replay_ctx_ ctx = {r, 0, 0, 0};
    int rc = r ? TRIP_OK : TRIP_ENOMEM;
    if (rc == TRIP_OK) {
        r->n_events = n;
        r->decisions = trip__calloc(n ? n : 1, 1);
        r->states = trip__calloc(n ? n : 1, 1);
        if (!r->decisions || !r->states)
            rc = TRIP_ENOMEM;
    }
    if (rc == TRIP_OK && n > 0) {
        trip_replay_ev_ e0 = trip_replay_read_(c, 0);
        rc = trip_replay_check_(&e0, 0, 0);
    }
    if (rc == TRIP_OK)
        rc = trip_clock_manual_new(n ? trip_col_wall_(c, 0) : 0, 0, &clk);
    if (rc == TRIP_OK)
        rc = trip_breaker_new("replay", cfg, clk, &b);
    if (rc == TRIP_OK) {
        b->eval_hook = trip_replay_eval_;
        b->eval_hook_user = &ctx;
        rc = trip_breaker_add_listener(b, trip_replay_transition_, &ctx, NULL);
    }
    if (rc == TRIP_OK)
        rc = trip_replay_run_(b, clk, c, r);
    if (rc == TRIP_OK && ctx.failed)
        rc = trip__fail(TRIP_ENOMEM, "replay: out of memory");
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
trip_replay_arrays(const trip_config *cfg, const int64_t *wall_ns,
                   const double *latency_s, const int32_t *outcome,
                   const int32_t *priority, size_t n, trip_replay_result **out)
{
    if (out == NULL || (n > 0 && (!wall_ns || !latency_s || !outcome)))
        return trip__fail(TRIP_EINVAL, "trip_replay: NULL argument");
    trip_replay_cols_ c = {(const char *)wall_ns, (const char *)latency_s,
                           (const char *)outcome, (const char *)priority,
                           sizeof *wall_ns,       sizeof *latency_s,
                           sizeof *outcome,       sizeof *priority};
    return trip_replay_cols_run_(cfg, &c, n, out);
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
    return trip_replay_cols_run_(cfg, &c, n, out);
}
