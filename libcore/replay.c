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
    r->transitions[r->n_transitions++] =
        (trip_transition_row){t->reason.wall_ns,
                              0,
                              t->from,
                              t->to,
                              t->reason.rule,
                              t->reason.score,
                              t->reason.threshold,
                              t->reason.baseline,
                              t->reason.samples};
}

static int
trip_replay_check_(const int64_t *wall, const double *lat,
                   const int32_t *outcome, const int32_t *prio, size_t i)
{
    if (wall[i] < 0 || (i > 0 && wall[i] < wall[i - 1]))
        return trip__fail(TRIP_EINVAL,
                          "replay: event %zu: time %lld is "
                          "negative or before the previous event",
                          i, (long long)wall[i]);
    if (wall[i] > TRIP__TIME_MAX_NS)
        return trip__fail(TRIP_EINVAL,
                          "replay: event %zu: time %lld is "
                          "past 2^62 ns (the year 2116)",
                          i, (long long)wall[i]);
    /* the limits of trip_record_latency(): an event it would refuse must
     * not be admitted and then never recorded */
    if (!isfinite(lat[i]) || lat[i] < 0 || lat[i] > 86400.0 * 365)
        return trip__fail(TRIP_EINVAL,
                          "replay: event %zu: latency %g must "
                          "be finite and in [0, 1 year] seconds",
                          i, lat[i]);
    if (outcome[i] < TRIP_SUCCESS || outcome[i] > TRIP_IGNORED)
        return trip__fail(TRIP_EINVAL,
                          "replay: event %zu: unknown outcome "
                          "%d",
                          i, (int)outcome[i]);
    if (prio && (prio[i] < 0 || prio[i] > 255))
        return trip__fail(TRIP_EINVAL,
                          "replay: event %zu: priority %d not "
                          "in [0, 255]",
                          i, (int)prio[i]);
    return TRIP_OK;
}

static int
trip_replay_run_(trip_breaker *b, trip_clock *clk, const int64_t *wall,
                 const double *lat, const int32_t *outcome, const int32_t *prio,
                 trip_replay_result *r)
{
    for (size_t i = 0; i < r->n_events; i++) {
        int rc = trip_replay_check_(wall, lat, outcome, prio, i);
        if (rc != TRIP_OK)
            return rc;
        trip_clock_set(clk, wall[i]);
        trip_ticket t;
        int d = trip_allow_priority(b, &t, prio ? prio[i] : 0);
        r->decisions[i] = (uint8_t)d;
        r->states[i] = (uint8_t)t.state;
        if (d == TRIP_PASS)
            trip_record_latency(b, &t, outcome[i], lat[i]);
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

int
trip_replay_arrays(const trip_config *cfg, const int64_t *wall_ns,
                   const double *latency_s, const int32_t *outcome,
                   const int32_t *priority, size_t n, trip_replay_result **out)
{
    if (out == NULL || (n > 0 && (!wall_ns || !latency_s || !outcome)))
        return trip__fail(TRIP_EINVAL, "trip_replay: NULL argument");
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
    if (rc == TRIP_OK && n > 0)
        rc = trip_replay_check_(wall_ns, latency_s, outcome, priority, 0);
    if (rc == TRIP_OK)
        rc = trip_clock_manual_new(n ? wall_ns[0] : 0, 0, &clk);
    if (rc == TRIP_OK)
        rc = trip_breaker_new("replay", cfg, clk, &b);
    if (rc == TRIP_OK) {
        b->eval_hook = trip_replay_eval_;
        b->eval_hook_user = &ctx;
        rc = trip_breaker_add_listener(b, trip_replay_transition_, &ctx, NULL);
    }
    if (rc == TRIP_OK)
        rc = trip_replay_run_(b, clk, wall_ns, latency_s, outcome, priority, r);
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
trip_replay(const trip_config *cfg, const trip_event *events, size_t n,
            trip_replay_result **out)
{
    if (out == NULL || (n > 0 && events == NULL))
        return trip__fail(TRIP_EINVAL, "trip_replay: NULL argument");
    int64_t *w = trip__malloc((n ? n : 1) * sizeof *w);
    double *l = trip__malloc((n ? n : 1) * sizeof *l);
    int32_t *o = trip__malloc((n ? n : 1) * sizeof *o);
    int32_t *p = trip__malloc((n ? n : 1) * sizeof *p);
    int rc;
    if (!w || !l || !o || !p) {
        rc = trip__fail(TRIP_ENOMEM, "replay: out of memory");
    } else {
        for (size_t i = 0; i < n; i++) {
            w[i] = events[i].wall_ns;
            l[i] = events[i].latency_s;
            o[i] = events[i].outcome;
            p[i] = events[i].priority;
        }
        rc = trip_replay_arrays(cfg, w, l, o, p, n, out);
    }
    trip__free(w);
    trip__free(l);
    trip__free(o);
    trip__free(p);
    return rc;
}
