/* SPDX-License-Identifier: GPL-3.0-or-later */
/* libFuzzer target: arbitrary or corrupted database files opened read-only
 * through every history read function: only statuses, never a crash.
 * Opening such files for writing is fuzz_store_write's. */
#include "fuzz_store.h"

FZ_STORE_INITIALIZE("fuzz_store_read")

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    trip_store *s = fz_store_open_input(data, size, 1);
    if (s != NULL) {
        fz_use_store(s);
        FZ_CHECK(trip_store_close(s) == TRIP_OK);
    }
    return 0;
}
