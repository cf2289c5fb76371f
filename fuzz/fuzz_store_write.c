/* SPDX-License-Identifier: GPL-3.0-or-later */
/* libFuzzer target: arbitrary or corrupted database files opened for
 * writing: opening, attaching a breaker (registration and warm start from
 * the file's rollups and baselines), calls, every read function and
 * closing (the writer's final commit) return only statuses, and the calls
 * always succeed, whatever the file holds. */
#include "fuzz_store.h"

FZ_STORE_INITIALIZE("fuzz_store_write")

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    trip_store *s = fz_store_open_input(data, size, 0);
    if (s == NULL)
        return 0;
    trip_breaker *b = NULL;
    FZ_CHECK(trip_breaker_new("fuzz", NULL, NULL, &b) == TRIP_OK);
    FZ_CHECK(trip_breaker_attach(b, s) == TRIP_OK);
    for (int i = 0; i < 8; i++) {
        trip_ticket t;
        FZ_CHECK(trip_allow(b, &t) == TRIP_PASS);
        FZ_CHECK(trip_record(b, &t, TRIP_SUCCESS) == TRIP_OK);
    }
    fz_use_store(s);
    trip_breaker_free(b);
    FZ_CHECK(fz_status_ok(trip_store_close(s)));
    return 0;
}
