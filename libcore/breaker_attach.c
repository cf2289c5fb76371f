/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Attaching a breaker to a history store: registration, warm start, detach. */
#include <string.h>

#include "breaker_internal.h"

#define TRIP_WEEK_NS_ (7LL * 86400 * 1000000000LL)
#define TRIP_WARM_ROWS_ 4096

/* Warm-start the baseline from store s (breaker id `id`): saved baselines
 * if any (and all valid: a damaged row refuses them all, and the rollups
 * serve instead of leaving the baseline cold), else up to four weeks of
 * per-minute rollups; also the rollups for an extra latency quantile whose
 * saved rows were not its own. The reads run outside mu; each batch read
 * is applied under it. A store that cannot be read leaves the baseline
 * cold. */
static void
trip_warm_start_(trip_breaker *b, trip_store *s, int id)
{
    size_t cap = trip__adaptive_export_max(), n = 0;
    int more = 0, logq_only = 0;
    trip_baseline_row *rows = trip__calloc(cap, sizeof *rows);
    if (rows != NULL &&
        trip_store_read_baselines(s, id, rows, cap, &n, &more) == TRIP_OK &&
        n > 0) {
        pthread_mutex_lock(&b->mu);
        int rc = trip__adaptive_import(b->adaptive, rows, n);
        logq_only = rc == TRIP_OK && trip__adaptive_logq_cold(b->adaptive);
        pthread_mutex_unlock(&b->mu);
        if (rc == TRIP_OK && !logq_only) {
            trip__free(rows);
            return;
        }
    }
    trip__free(rows);
    trip_rollup_row *rr = trip__calloc(TRIP_WARM_ROWS_, sizeof *rr);
    if (rr == NULL)
        return;
    int64_t to = trip_clock_wall(b->clock) + 1;
    int64_t from = to - 4 * TRIP_WEEK_NS_;
    do {
        if (trip_store_read_rollups(s, id, from, to, rr, TRIP_WARM_ROWS_, &n,
                                    &more) != TRIP_OK)
            break;
        pthread_mutex_lock(&b->mu);
        trip__adaptive_warm_start(b->adaptive, &b->cfg, rr, n, logq_only);
        pthread_mutex_unlock(&b->mu);
        if (n > 0)
            from = rr[n - 1].minute_ns + 1;
    } while (more && n > 0);
    trip__free(rr);
}

/* Save the baseline and the partial minute before leaving a store. */
static void
trip_detach_locked_(trip_breaker *b, const trip__store_link *old)
{
    int64_t wall = trip_clock_wall(b->clock);
    size_t cap = trip__adaptive_export_max();
    trip__flush_minute(b);
    trip_baseline_row *rows = trip__calloc(cap, sizeof *rows);
    if (rows != NULL) {
        size_t n = trip__adaptive_export(b->adaptive, old->id, wall, rows, cap);
        if (n > 0)
            trip__store_push_baselines(old->s, rows, n);
        trip__free(rows);
    }
}

int
trip_breaker_attach(trip_breaker *b, trip_store *s)
{
    if (b == NULL)
        return trip__fail(TRIP_EINVAL, "trip_breaker_attach: breaker is "
                                       "NULL");
    /* mu is held for the in-memory steps only: registration and the warm
     * start's reads wait on the database (a busy file, a large history),
     * and a call that rolls a bucket or trips needs mu. attach_mu keeps
     * attaches of this breaker in order. Until the end the breaker has no
     * store, as before: its outcomes meanwhile are not written. */
    pthread_mutex_lock(&b->attach_mu);
    pthread_mutex_lock(&b->mu);
    trip__store_link *old = atomic_load(&b->link);
    if ((old ? old->s : NULL) == s) {
        pthread_mutex_unlock(&b->mu);
        pthread_mutex_unlock(&b->attach_mu);
        return TRIP_OK;
    }
    trip__store_link *nl = s != NULL ? trip__calloc(1, sizeof *nl) : NULL;
    if ((s != NULL && nl == NULL) ||
        (old != NULL && trip__retire_reserve(b) != TRIP_OK)) {
        trip__free(nl);
        pthread_mutex_unlock(&b->mu);
        pthread_mutex_unlock(&b->attach_mu);
        return trip__fail(TRIP_ENOMEM, "trip_breaker_attach: out of memory");
    }
    if (old != NULL) {
        /* harvest so the minute row holds everything recorded so far */
        trip__sums discard;
        trip__harvest(b, &discard, 0, 0);
        trip_detach_locked_(b, old);
        atomic_store(&b->link, NULL);
        /* a call may still be using it: freed with the breaker */
        b->retired[b->n_retired++] = old;
    }
    trip_config cfg = b->cfg;
    pthread_mutex_unlock(&b->mu);
    int rc = TRIP_OK;
    if (nl != NULL) {
        rc = trip__store_register(s, b->name, &cfg, &nl->id);
        if (rc == TRIP_OK) {
            nl->s = s;
            trip_warm_start_(b, s, nl->id);
            pthread_mutex_lock(&b->mu);
            atomic_store_explicit(&b->link, nl, memory_order_release);
            pthread_mutex_unlock(&b->mu);
        } else {
            trip__free(nl);
        }
    }
    pthread_mutex_unlock(&b->attach_mu);
    return rc;
}
