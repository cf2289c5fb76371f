/* SPDX-License-Identifier: GPL-3.0-or-later */
/* tripsense: an adaptive circuit breaker. Include this one header. */
#ifndef TRIPSENSE_TRIPSENSE_H
#define TRIPSENSE_TRIPSENSE_H

#define TRIP_VERSION_MAJOR 0
#define TRIP_VERSION_MINOR 1
#define TRIP_VERSION_PATCH 0

#include "breaker.h"
#include "clock.h"
#include "config.h"
#include "registry.h"
#include "replay.h"
#include "status.h"
#include "store.h"

#endif /* TRIPSENSE_TRIPSENSE_H */
