/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Attaching a breaker to a history store: registration, warm start, detach. */
#include <string.h>

#include "breaker_internal.h"

#define TRIP_WEEK_NS_ (7LL * 86400 * 1000000000LL)
#define TRIP_WARM_ROWS_ 4096

/* Warm-start the baseline: saved baselines if any, else up to four weeks
 * of per-minute rollups. A store that cannot be read leaves it cold. */
static void
trip_warm_start_(trip_breaker *b, trip_store *s)
{
    size_t cap = trip__adaptive_export_max(), n = 0;
    int more = 0;
    trip_baseline_row *rows = trip__calloc(cap, sizeof *rows);
    if (rows != NULL &&
        trip_store_read_baselines(s, b->store_id, rows, cap, &n, &more) ==
            TRIP_OK &&
        n > 0) {
        trip__adaptive_import(b->adaptive, rows, n);
        trip__free(rows);
        return;
    }
    trip__free(rows);
    trip_rollup_row *rr = trip__calloc(TRIP_WARM_ROWS_, sizeof *rr);
    if (rr == NULL)
        return;
    int64_t to = trip_clock_wall(b->clock) + 1;
    int64_t from = to - 4 * TRIP_WEEK_NS_;
    do {
        if (trip_store_read_rollups(s, b->store_id, from, to, rr,
                                    TRIP_WARM_ROWS_, &n, &more) != TRIP_OK)
            break;
        trip__adaptive_warm_start(b->adaptive, &b->cfg, rr, n);
        if (n > 0)
            from = rr[n - 1].minute_ns + 1;
    } while (more && n > 0);
    trip__free(rr);
}

/* Save the baseline and the partial minute before leaving a store. */
static void
trip_detach_locked_(trip_breaker *b, trip_store *old)
{
    int64_t wall = trip_clock_wall(b->clock);
    size_t cap = trip__adaptive_export_max();
    trip__flush_minute(b);
    trip_baseline_row *rows = trip__calloc(cap, sizeof *rows);
    if (rows != NULL) {
        size_t n =
            trip__adaptive_export(b->adaptive, b->store_id, wall, rows, cap);
        if (n > 0)
            trip__store_push_baselines(old, rows, n);
        trip__free(rows);
    }
}

int
trip_breaker_attach(trip_breaker *b, trip_store *s)
{
    if (b == NULL)
        return trip__fail(TRIP_EINVAL, "trip_breaker_attach: breaker is "
                                       "NULL");
    pthread_mutex_lock(&b->mu);
    trip_store *old = atomic_load(&b->store);
    if (old == s) {
        pthread_mutex_unlock(&b->mu);
        return TRIP_OK;
    }
    if (old != NULL) {
        /* harvest so the minute row holds everything recorded so far */
        trip__sums discard;
        trip__harvest(b, &discard, 0, 0);
        trip_detach_locked_(b, old);
        atomic_store(&b->store, NULL);
        b->store_id = -1;
    }
    int rc = TRIP_OK;
    if (s != NULL) {
        int id = -1;
        rc = trip__store_register(s, b->name, &b->cfg, &id);
        if (rc == TRIP_OK) {
            b->store_id = id;
            trip_warm_start_(b, s);
            atomic_store_explicit(&b->store, s, memory_order_release);
        }
    }
    pthread_mutex_unlock(&b->mu);
    return rc;
}
