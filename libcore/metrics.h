/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Health JSON and Prometheus text for a list of breakers. */
#ifndef TRIPSENSE_METRICS_H
#define TRIPSENSE_METRICS_H

#include <stddef.h>

#include "tripsense/tripsense.h"

int trip__health_json(trip_breaker **bs, size_t n, char **out);
int trip__prometheus(trip_breaker **bs, size_t n, char **out);

#endif /* TRIPSENSE_METRICS_H */
