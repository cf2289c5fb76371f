/* SPDX-License-Identifier: GPL-3.0-or-later */
/* A registry of named breakers with a health report and Prometheus text. */
#ifndef TRIPSENSE_REGISTRY_H
#define TRIPSENSE_REGISTRY_H

#include <stddef.h>

#include "breaker.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct trip_registry trip_registry;

/**
 * Create an empty registry.
 * @return TRIP_OK, TRIP_EINVAL (out NULL), TRIP_ENOMEM.
 * Thread-safety: safe from any thread.
 */
TRIP_API int trip_registry_new(trip_registry **out);

/**
 * Free the registry and every breaker it owns. NULL is accepted.
 * Thread-safety: no other thread may use the registry or its breakers.
 */
TRIP_API void trip_registry_free(trip_registry *r);

/**
 * Create a breaker owned by the registry, or return the existing one of that
 * name (its configuration is then left as it is).
 *
 * @param out receives a borrowed pointer valid until trip_registry_free().
 * @return TRIP_OK, TRIP_EINVAL, TRIP_ENOMEM.
 * Thread-safety: safe from any thread.
 */
TRIP_API int trip_registry_get_or_create(trip_registry *r, const char *name,
                                         const trip_config *cfg,
                                         trip_clock *clock, trip_breaker **out);

/**
 * Hand an existing breaker to the registry, which then owns and frees it.
 * @return TRIP_OK, TRIP_EINVAL, TRIP_EEXIST (a breaker of that name is
 *         registered; ownership stays with the caller), TRIP_ENOMEM.
 * Thread-safety: safe from any thread.
 */
TRIP_API int trip_registry_add(trip_registry *r, trip_breaker *b);

/**
 * Find a breaker by name.
 * @return TRIP_OK, TRIP_EINVAL, TRIP_ENOTFOUND (*out set to NULL).
 * Thread-safety: safe from any thread.
 */
TRIP_API int trip_registry_get(trip_registry *r, const char *name,
                               trip_breaker **out);

/**
 * Declare that the breaker named `name` needs the one named `needed`
 * (see trip_breaker_add_dependency()). Both must be registered.
 * @return TRIP_OK, TRIP_EINVAL (cycle: the message names it),
 *         TRIP_ENOTFOUND, TRIP_ENOSPC.
 * Thread-safety: safe from any thread.
 */
TRIP_API int trip_registry_depends(trip_registry *r, const char *name,
                                   const char *needed);

/** Number of breakers; 0 for NULL. Thread-safety: safe. */
TRIP_API size_t trip_registry_count(trip_registry *r);

/** The i-th breaker in creation order, or NULL. Thread-safety: safe. */
TRIP_API trip_breaker *trip_registry_at(trip_registry *r, size_t i);

/**
 * Health report as JSON:
 * {"status":"ok|degraded|down","breakers":[{"name":..,"state":..,
 *  "status":"ok|degraded|down","failures":..,"failure_rate":..,
 *  "last_trip":{"rule":..,"score":..,"threshold":..}},...]}
 * A breaker is "down" when open or forced open, "degraded" in half-open,
 * ramp-up, when flapping, when a breaker it needs is not closed (then
 * "needs" lists its dependencies and "root_cause" names the deepest open
 * one), or when its store is failing; the registry takes the worst.
 *
 * @param out receives a string to free with trip_string_free().
 * @return TRIP_OK, TRIP_EINVAL, TRIP_ENOMEM.
 * Thread-safety: safe from any thread.
 */
TRIP_API int trip_registry_health_json(trip_registry *r, char **out);

/**
 * Prometheus text exposition (format 0.0.4) for every breaker:
 *   tripsense_state{breaker} gauge (closed 0, open 1, half-open 2,
 *     forced-open 3, forced-closed 4, disabled 5, metrics-only 6)
 *   tripsense_calls_total{breaker,result} counter, result one of success,
 *     failure, timeout, ignored, rejected, limited
 *   tripsense_transitions_total{breaker,from,to,rule} counter
 *   tripsense_call_latency_seconds{breaker} histogram
 *   tripsense_in_flight{breaker} gauge
 *   tripsense_store_dropped_total{breaker} counter
 *   tripsense_flapping{breaker} gauge (0 or 1)
 *   tripsense_signal{breaker,signal} gauge (last value fed)
 *
 * @param out receives a string to free with trip_string_free().
 * @return TRIP_OK, TRIP_EINVAL, TRIP_ENOMEM.
 * Thread-safety: safe from any thread.
 */
TRIP_API int trip_registry_prometheus(trip_registry *r, char **out);

/** The same two reports for a single breaker. Thread-safety: safe. */
TRIP_API int trip_breaker_health_json(trip_breaker *b, char **out);
TRIP_API int trip_breaker_prometheus(trip_breaker *b, char **out);

#ifdef __cplusplus
}
#endif
#endif /* TRIPSENSE_REGISTRY_H */
