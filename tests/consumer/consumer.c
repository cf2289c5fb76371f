/* SPDX-License-Identifier: GPL-3.0-or-later */
/* A tiny program built against an installed tripsense, as a user would. */
#include <stdio.h>
#include <string.h>

#include <tripsense/tripsense.h>

int
main(void)
{
    trip_clock *clock = NULL;
    trip_breaker *b = NULL;
    trip_config cfg;
    trip_config_init(&cfg);
    cfg.consecutive_failures = 5;
    int rc = trip_clock_manual_new(0, 0, &clock);
    if (rc == TRIP_OK)
        rc = trip_breaker_new("consumer", &cfg, clock, &b);
    for (int i = 0; rc == TRIP_OK && i < 5; i++) {
        trip_ticket t;
        if (trip_allow(b, &t) == TRIP_PASS)
            rc = trip_record_latency(b, &t, TRIP_FAILURE, 0.01);
    }
    int state = rc == TRIP_OK ? trip_breaker_state(b) : rc;
    trip_breaker_free(b);
    trip_clock_free(clock);
    if (rc != TRIP_OK) {
        fprintf(stderr, "consumer: %s (%s)\n", trip_strerror(rc),
                trip_errmsg());
        return 1;
    }
    if (state != TRIP_OPEN || strcmp(trip_version(), "0.1.0") < 0) {
        fprintf(stderr, "consumer: expected open, got %s (version %s)\n",
                trip_state_name(state), trip_version());
        return 1;
    }
    printf("consumer: tripsense %s, 5 failures opened the breaker\n",
           trip_version());
    return 0;
}
