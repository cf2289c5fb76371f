/* SPDX-License-Identifier: GPL-3.0-or-later */
/* A registry of named breakers, one per dependency. */
#include <pthread.h>
#include <string.h>

#include "breaker_internal.h"
#include "metrics.h"

struct trip_registry {
    pthread_mutex_t mu;
    trip_breaker **items;
    size_t n, cap;
};

int
trip_registry_new(trip_registry **out)
{
    if (out == NULL)
        return trip__fail(TRIP_EINVAL, "trip_registry_new: out is NULL");
    trip_registry *r = trip__calloc(1, sizeof *r);
    if (r == NULL || pthread_mutex_init(&r->mu, NULL) != 0) {
        trip__free(r);
        *out = NULL;
        return trip__fail(TRIP_ENOMEM, "trip_registry_new: out of memory");
    }
    *out = r;
    return TRIP_OK;
}

void
trip_registry_free(trip_registry *r)
{
    if (r == NULL)
        return;
    /* unlink first so that no breaker points at one already freed */
    for (size_t i = 0; i < r->n; i++)
        trip__deps_unlink(r->items[i]);
    for (size_t i = 0; i < r->n; i++)
        trip_breaker_free(r->items[i]);
    trip__free(r->items);
    pthread_mutex_destroy(&r->mu);
    trip__free(r);
}

static trip_breaker *
trip_find_locked_(trip_registry *r, const char *name)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->items[i]->name, name) == 0)
            return r->items[i];
    return NULL;
}

static int
trip_push_locked_(trip_registry *r, trip_breaker *b)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        trip_breaker **p = trip__realloc(r->items, cap * sizeof *p);
        if (p == NULL)
            return trip__fail(TRIP_ENOMEM, "registry: out of memory");
        r->items = p;
        r->cap = cap;
    }
    r->items[r->n++] = b;
    return TRIP_OK;
}

int
trip_registry_add(trip_registry *r, trip_breaker *b)
{
    if (r == NULL || b == NULL)
        return trip__fail(TRIP_EINVAL, "trip_registry_add: %s is NULL",
                          r ? "breaker" : "registry");
    pthread_mutex_lock(&r->mu);
    int rc = trip_find_locked_(r, b->name)
                 ? trip__fail(TRIP_EEXIST,
                              "registry: a breaker named \"%s\" "
                              "is already registered",
                              b->name)
                 : trip_push_locked_(r, b);
    pthread_mutex_unlock(&r->mu);
    return rc;
}

int
trip_registry_get_or_create(trip_registry *r, const char *name,
                            const trip_config *cfg, trip_clock *clock,
                            trip_breaker **out)
{
    if (r == NULL || name == NULL || out == NULL)
        return trip__fail(TRIP_EINVAL, "trip_registry_get_or_create: NULL "
                                       "argument");
    *out = NULL;
    pthread_mutex_lock(&r->mu);
    trip_breaker *b = trip_find_locked_(r, name);
    int rc = TRIP_OK;
    if (b == NULL) {
        rc = trip_breaker_new(name, cfg, clock, &b);
        if (rc == TRIP_OK && (rc = trip_push_locked_(r, b)) != TRIP_OK) {
            trip_breaker_free(b);
            b = NULL;
        }
    }
    pthread_mutex_unlock(&r->mu);
    *out = b;
    return rc;
}

int
trip_registry_get(trip_registry *r, const char *name, trip_breaker **out)
{
    if (r == NULL || name == NULL || out == NULL)
        return trip__fail(TRIP_EINVAL, "trip_registry_get: NULL argument");
    pthread_mutex_lock(&r->mu);
    *out = trip_find_locked_(r, name);
    pthread_mutex_unlock(&r->mu);
    return *out ? TRIP_OK
                : trip__fail(TRIP_ENOTFOUND,
                             "registry: no breaker named "
                             "\"%s\"",
                             name);
}

int
trip_registry_depends(trip_registry *r, const char *name, const char *needed)
{
    trip_breaker *a, *b;
    if (r == NULL || name == NULL || needed == NULL)
        return trip__fail(TRIP_EINVAL, "trip_registry_depends: NULL argument");
    int rc = trip_registry_get(r, name, &a);
    if (rc == TRIP_OK)
        rc = trip_registry_get(r, needed, &b);
    return rc == TRIP_OK ? trip_breaker_add_dependency(a, b) : rc;
}

size_t
trip_registry_count(trip_registry *r)
{
    if (r == NULL)
        return 0;
    pthread_mutex_lock(&r->mu);
    size_t n = r->n;
    pthread_mutex_unlock(&r->mu);
    return n;
}

trip_breaker *
trip_registry_at(trip_registry *r, size_t i)
{
    if (r == NULL)
        return NULL;
    pthread_mutex_lock(&r->mu);
    trip_breaker *b = i < r->n ? r->items[i] : NULL;
    pthread_mutex_unlock(&r->mu);
    return b;
}

/* Run a report writer over a consistent list of breakers. */
static int
trip_registry_report_(trip_registry *r, char **out,
                      int (*write)(trip_breaker **, size_t, char **))
{
    if (r == NULL || out == NULL)
        return trip__fail(TRIP_EINVAL, "registry report: NULL argument");
    pthread_mutex_lock(&r->mu);
    int rc = write(r->items, r->n, out);
    pthread_mutex_unlock(&r->mu);
    return rc;
}

int
trip_registry_health_json(trip_registry *r, char **out)
{
    return trip_registry_report_(r, out, trip__health_json);
}

int
trip_registry_prometheus(trip_registry *r, char **out)
{
    return trip_registry_report_(r, out, trip__prometheus);
}

int
trip_breaker_health_json(trip_breaker *b, char **out)
{
    if (b == NULL || out == NULL)
        return trip__fail(TRIP_EINVAL, "trip_breaker_health_json: NULL "
                                       "argument");
    return trip__health_json(&b, 1, out);
}

int
trip_breaker_prometheus(trip_breaker *b, char **out)
{
    if (b == NULL || out == NULL)
        return trip__fail(TRIP_EINVAL, "trip_breaker_prometheus: NULL "
                                       "argument");
    return trip__prometheus(&b, 1, out);
}
