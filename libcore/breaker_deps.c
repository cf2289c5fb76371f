/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Dependency chains between breakers and external health signals. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "breaker_internal.h"

#define TRIP_WEEK_HOURS_ 168

/* Guards every needs/dependents list. It may be taken while one
 * breaker's mu is held (the state word's shed flag, trip__sw_flags_locked,
 * is computed under mu), and no mu is ever taken while it is held: the
 * order is mu, then trip_dep_mu. So announcements to dependents, which
 * take their mu, copy the list and run after releasing it. */
static pthread_mutex_t trip_dep_mu = PTHREAD_MUTEX_INITIALIZER;

typedef struct trip__signal {
    char name[32];
    double threshold, z;
    int64_t duration_ns;
    double value;
    int has_value;
    int64_t above_since; /* mono ns, -1 when not above */
    double mean[TRIP_WEEK_HOURS_], var[TRIP_WEEK_HOURS_];
    uint32_t n[TRIP_WEEK_HOURS_];
} trip__signal;

static int
trip_closed_enough_(trip_breaker *b)
{
    int st = trip__effective_state(atomic_load(&b->sw));
    return st == TRIP_CLOSED || st == TRIP_FORCED_CLOSED ||
           st == TRIP_DISABLED || st == TRIP_METRICS_ONLY;
}

typedef struct trip_dfs_ {
    trip_breaker *b;
    int next; /* the next of b's needs to follow */
} trip_dfs_;

/* Grow *p (n used of *cap, elements of size sz) to hold one more. */
static int
trip_grow_(void **p, size_t *cap, size_t n, size_t sz)
{
    if (n < *cap)
        return 1;
    void *q = trip__realloc(*p, 2 * *cap * sz);
    if (q == NULL)
        return 0;
    *p = q;
    *cap *= 2;
    return 1;
}

/*
 * Is `target` reachable from `from` through needs? Depth-first, each
 * breaker visited once: following every path took time exponential in a
 * layered graph, under trip_dep_mu, and a search cut at depth 64 missed
 * longer cycles (then, with dependency_action OPEN, every breaker of the
 * cycle waited for the others to close, for good). Returns the length of
 * the path found (from .. target, its first `cap` breakers in path), 0
 * when there is none, -1 out of memory.
 */
static int
trip_reaches_(trip_breaker *from, trip_breaker *target, trip_breaker **path,
              int cap)
{
    size_t scap = 16, vcap = 16, sn = 0, vn = 0;
    trip_dfs_ *st = trip__malloc(scap * sizeof *st);
    trip_breaker **seen = trip__malloc(vcap * sizeof *seen);
    int found = 0, ok = st != NULL && seen != NULL;
    if (ok) {
        st[sn++] = (trip_dfs_){from, 0};
        seen[vn++] = from;
    }
    while (ok && sn > 0 && !(found = st[sn - 1].b == target)) {
        trip_dfs_ *f = &st[sn - 1];
        if (f->next >= f->b->n_needs) {
            sn--;
            continue;
        }
        trip_breaker *c = f->b->needs[f->next++];
        int dup = 0;
        for (size_t i = 0; i < vn && !dup; i++)
            dup = seen[i] == c;
        if (dup)
            continue;
        ok = trip_grow_((void **)&seen, &vcap, vn, sizeof *seen) &&
             trip_grow_((void **)&st, &scap, sn, sizeof *st);
        if (ok) {
            seen[vn++] = c;
            st[sn++] = (trip_dfs_){c, 0};
        }
    }
    for (size_t i = 0; found && i < sn && i < (size_t)cap; i++)
        path[i] = st[i].b;
    trip__free(st);
    trip__free(seen);
    return !ok ? -1 : found ? (int)sn : 0;
}

/* "dependency cycle: b -> path[0] -> ... -> b"; a long one is cut after
 * the names that fit in about 250 bytes, with its length. */
static int
trip_cycle_fail_(trip_breaker *b, trip_breaker **path, int n, int cap)
{
    char msg[400];
    size_t len = (size_t)snprintf(msg, sizeof msg, "%s", b->name);
    int i = 0;
    for (; i < n && i < cap && len < 250; i++)
        len += (size_t)snprintf(msg + len, sizeof msg - len, " -> %s",
                                path[i]->name);
    if (i < n && len < sizeof msg)
        snprintf(msg + len, sizeof msg - len, " -> ... (%d breakers)", n);
    return trip__fail(TRIP_EINVAL, "dependency cycle: %s", msg);
}

int
trip_breaker_add_dependency(trip_breaker *b, trip_breaker *needed)
{
    trip_breaker *path[64];
    if (b == NULL || needed == NULL)
        return trip__fail(TRIP_EINVAL, "trip_breaker_add_dependency: NULL "
                                       "breaker");
    if (b == needed)
        return trip__fail(TRIP_EINVAL,
                          "dependency cycle: \"%s\" cannot "
                          "need itself",
                          b->name);
    pthread_mutex_lock(&trip_dep_mu);
    int rc = TRIP_OK, n = trip_reaches_(needed, b, path, 64);
    for (int i = 0; i < b->n_needs && rc == TRIP_OK; i++)
        if (b->needs[i] == needed)
            rc = TRIP_EEXIST;
    if (n < 0)
        rc = trip__fail(TRIP_ENOMEM, "trip_breaker_add_dependency: out of "
                                     "memory");
    else if (n)
        rc = trip_cycle_fail_(b, path, n, 64);
    else if (rc == TRIP_EEXIST)
        rc = TRIP_OK; /* declaring it twice is harmless */
    else if (b->n_needs == TRIP_MAX_NEEDS_ ||
             needed->n_dependents == TRIP_MAX_DEPENDENTS_)
        rc = trip__fail(TRIP_ENOSPC, "\"%s\" has too many dependencies",
                        b->name);
    else {
        b->needs[b->n_needs++] = needed;
        needed->dependents[needed->n_dependents++] = b;
    }
    pthread_mutex_unlock(&trip_dep_mu);
    return rc;
}

int
trip__needs_all_closed(trip_breaker *b)
{
    int ok = 1;
    pthread_mutex_lock(&trip_dep_mu);
    for (int i = 0; i < b->n_needs && ok; i++)
        ok = trip_closed_enough_(b->needs[i]);
    pthread_mutex_unlock(&trip_dep_mu);
    return ok;
}

static void
trip_remove_ptr_(trip_breaker **list, int *n, trip_breaker *x)
{
    for (int i = 0; i < *n; i++)
        if (list[i] == x) {
            list[i] = list[--*n];
            i--;
        }
}

void
trip__deps_unlink(trip_breaker *b)
{
    pthread_mutex_lock(&trip_dep_mu);
    for (int i = 0; i < b->n_needs; i++)
        trip_remove_ptr_(b->needs[i]->dependents, &b->needs[i]->n_dependents,
                         b);
    for (int i = 0; i < b->n_dependents; i++)
        trip_remove_ptr_(b->dependents[i]->needs, &b->dependents[i]->n_needs,
                         b);
    b->n_needs = b->n_dependents = 0;
    pthread_mutex_unlock(&trip_dep_mu);
}

/* React in dependent d to a change of a breaker it needs. */
static void
trip_dependent_react_(trip_breaker *d, int needed_opened)
{
    trip__pending p = {0};
    pthread_mutex_lock(&d->mu);
    uint64_t sw = atomic_load(&d->sw);
    int ms = (int)(sw & TRIP_SW_STATE_MASK_);
    int mode = (int)((sw & TRIP_SW_MODE_MASK_) >> TRIP_SW_MODE_SHIFT_);
    if (needed_opened && d->cfg.dependency_action == TRIP_DEP_OPEN &&
        ms == TRIP_CLOSED && mode == TRIP_MODE_NORMAL) {
        trip_reason r = {TRIP_RULE_DEPENDENCY, NAN, NAN, NAN, 0, 0};
        trip__transition_locked(d, TRIP_OPEN, -1, &r, trip_clock_now(d->clock),
                                &p);
    } else {
        uint64_t keep = sw & ~(uint64_t)(TRIP_SW_SHED_ | TRIP_SW_LIMIT_);
        atomic_store(&d->sw, keep | trip__sw_flags_locked(d, ms));
    }
    pthread_mutex_unlock(&d->mu);
    trip__announce(d, &p);
}

void
trip__deps_announce(trip_breaker *b, const trip__pending *p)
{
    trip_breaker *deps[TRIP_MAX_DEPENDENTS_];
    int opened = 0;
    for (int i = 0; i < p->n; i++)
        opened |= p->t[i].to == TRIP_OPEN || p->t[i].to == TRIP_FORCED_OPEN;
    pthread_mutex_lock(&trip_dep_mu);
    int n = b->n_dependents;
    memcpy(deps, b->dependents, (size_t)n * sizeof deps[0]);
    pthread_mutex_unlock(&trip_dep_mu);
    for (int i = 0; i < n; i++)
        trip_dependent_react_(deps[i], opened);
}

/* Walk down the needs to the deepest breaker that is not closed. */
static trip_breaker *
trip_root_cause_(trip_breaker *b, int depth)
{
    for (int i = 0; i < b->n_needs && depth < 64; i++) {
        trip_breaker *n = b->needs[i];
        if (trip_closed_enough_(n))
            continue;
        trip_breaker *deeper = trip_root_cause_(n, depth + 1);
        return deeper ? deeper : n;
    }
    return NULL;
}

int
trip__deps_describe(trip_breaker *b, const char **root, trip_breaker **needs,
                    int cap)
{
    pthread_mutex_lock(&trip_dep_mu);
    int n = b->n_needs < cap ? b->n_needs : cap;
    memcpy(needs, b->needs, (size_t)n * sizeof needs[0]);
    trip_breaker *rc = trip_root_cause_(b, 0);
    *root = rc ? rc->name : NULL;
    pthread_mutex_unlock(&trip_dep_mu);
    return n;
}

/* ---- health signals ----------------------------------------------------- */

static int
trip_hour_of_week_(int64_t wall_ns)
{
    int64_t h = wall_ns / 3600000000000LL;
    /* 1970-01-01 was a Thursday: Monday 00:00 is hour 72 of that week */
    return (int)(((h + 72) % TRIP_WEEK_HOURS_ + TRIP_WEEK_HOURS_) %
                 TRIP_WEEK_HOURS_);
}

int
trip_breaker_add_signal(trip_breaker *b, const char *name, double threshold,
                        double z, int64_t duration_ns, int *id)
{
    if (b == NULL || name == NULL || id == NULL)
        return trip__fail(TRIP_EINVAL, "trip_breaker_add_signal: NULL "
                                       "argument");
    if (name[0] == '\0' || strlen(name) > 31)
        return trip__fail(TRIP_EINVAL, "signal name must be 1..31 bytes");
    if (!trip__utf8_valid(name))
        return trip__fail(TRIP_EINVAL, "signal name is not valid UTF-8");
    if (isnan(z) || z < 0 || duration_ns < 0 || (isnan(threshold) && z == 0))
        return trip__fail(TRIP_EINVAL,
                          "signal \"%s\": need z >= 0, "
                          "duration_ns >= 0 and a threshold or a z",
                          name);
    int rc = TRIP_OK;
    pthread_mutex_lock(&b->mu);
    if (b->signals == NULL)
        b->signals = trip__calloc(TRIP_MAX_SIGNALS_, sizeof(trip__signal));
    for (int i = 0; b->signals && i < b->n_signals; i++)
        if (strcmp(b->signals[i].name, name) == 0)
            rc = trip__fail(TRIP_EEXIST, "signal \"%s\" exists", name);
    if (b->signals == NULL)
        rc = trip__fail(TRIP_ENOMEM, "out of memory adding a signal");
    else if (rc == TRIP_OK && b->n_signals == TRIP_MAX_SIGNALS_)
        rc = trip__fail(TRIP_ENOSPC, "breaker \"%s\" has %d signals already",
                        b->name, TRIP_MAX_SIGNALS_);
    if (rc == TRIP_OK) {
        trip__signal *s = &b->signals[b->n_signals];
        memset(s, 0, sizeof *s);
        strcpy(s->name, name);
        s->threshold = isnan(threshold) ? INFINITY : threshold;
        s->z = z;
        s->duration_ns = duration_ns;
        s->above_since = -1;
        *id = b->n_signals++;
    }
    pthread_mutex_unlock(&b->mu);
    return rc;
}

/* Learn the hour's mean and variance (EWMA over ~100 values per hour). */
static void
trip_signal_learn_(trip__signal *s, int h, double v)
{
    double a = 1.0 / (s->n[h] < 100 ? s->n[h] + 1 : 100);
    double d = v - s->mean[h];
    s->mean[h] += a * d;
    s->var[h] = (1 - a) * (s->var[h] + a * d * d);
    s->n[h]++;
}

static double
trip_signal_z_(const trip__signal *s, int h, double v)
{
    if (s->n[h] < 30)
        return NAN;
    double sd = sqrt(s->var[h]);
    double floor_sd = 0.01 * fabs(s->mean[h]) + 1e-9;
    return (v - s->mean[h]) / (sd > floor_sd ? sd : floor_sd);
}

int
trip_breaker_signal(trip_breaker *b, int id, double value)
{
    if (b == NULL || !isfinite(value))
        return trip__fail(TRIP_EINVAL, "trip_breaker_signal: %s",
                          b ? "value must be finite" : "breaker is NULL");
    pthread_mutex_lock(&b->mu);
    int rc = TRIP_OK;
    if (id < 0 || id >= b->n_signals) {
        rc = trip__fail(TRIP_EINVAL,
                        "trip_breaker_signal: unknown signal "
                        "id %d",
                        id);
    } else {
        trip__signal *s = &b->signals[id];
        int h = trip_hour_of_week_(trip_clock_wall(b->clock));
        double z = trip_signal_z_(s, h, value);
        int above = value > s->threshold || (s->z > 0 && z >= s->z);
        s->value = value;
        s->has_value = 1;
        if (above && s->above_since < 0)
            s->above_since = trip_clock_now(b->clock);
        else if (!above) {
            s->above_since = -1;
            trip_signal_learn_(s, h, value);
        }
    }
    pthread_mutex_unlock(&b->mu);
    return rc;
}

int
trip_breaker_signal_get(trip_breaker *b, int id, double *value, double *mean,
                        double *sd)
{
    if (b == NULL)
        return trip__fail(TRIP_EINVAL, "trip_breaker_signal_get: breaker is "
                                       "NULL");
    pthread_mutex_lock(&b->mu);
    int ok = id >= 0 && id < b->n_signals;
    if (ok) {
        trip__signal *s = &b->signals[id];
        int h = trip_hour_of_week_(trip_clock_wall(b->clock));
        if (value)
            *value = s->has_value ? s->value : NAN;
        if (mean)
            *mean = s->n[h] >= 30 ? s->mean[h] : NAN;
        if (sd)
            *sd = s->n[h] >= 30 ? sqrt(s->var[h]) : NAN;
    }
    pthread_mutex_unlock(&b->mu);
    return ok ? TRIP_OK
              : trip__fail(TRIP_EINVAL,
                           "trip_breaker_signal_get: unknown "
                           "signal id %d",
                           id);
}

int
trip__signals_evaluate_locked(trip_breaker *b, int64_t now, int64_t wall,
                              trip_reason *r)
{
    for (int i = 0; i < b->n_signals; i++) {
        trip__signal *s = &b->signals[i];
        if (s->above_since < 0 || now - s->above_since < s->duration_ns)
            continue;
        int h = trip_hour_of_week_(wall);
        int absolute = s->value > s->threshold;
        *r = (trip_reason){TRIP_RULE_HEALTH_SIGNAL,
                           absolute ? s->value : trip_signal_z_(s, h, s->value),
                           absolute ? s->threshold : s->z,
                           s->n[h] >= 30 ? s->mean[h] : NAN,
                           1,
                           0};
        return TRIP_RULE_HEALTH_SIGNAL;
    }
    return TRIP_RULE_NONE;
}

const char *
trip__signal_name(trip_breaker *b, int i, double *value)
{
    if (i < 0 || i >= b->n_signals)
        return NULL;
    *value = b->signals[i].has_value ? b->signals[i].value : NAN;
    return b->signals[i].name;
}

void
trip__signals_free(trip_breaker *b)
{
    trip__free(b->signals);
    b->signals = NULL;
}
