/* SPDX-License-Identifier: GPL-3.0-or-later */
/* tripsense: an adaptive circuit breaker. Include this one header. */
#ifndef TRIPSENSE_TRIPSENSE_H
#define TRIPSENSE_TRIPSENSE_H

#define TRIP_VERSION_MAJOR 0
#define TRIP_VERSION_MINOR 1
#define TRIP_VERSION_PATCH 0

#include "status.h"
#include "clock.h"
#include "config.h"
#include "breaker.h"
#include "registry.h"
#include "store.h"
#include "replay.h"

#endif /* TRIPSENSE_TRIPSENSE_H */
