/* SPDX-License-Identifier: GPL-3.0-or-later */
/* libFuzzer target: config JSON text and whole config structs through
 * trip_config_from_json, trip_config_validate and trip_config_to_json. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"

/* Arbitrary text into from_json: an error leaves the config unchanged and
 * names the problem; a success re-serialises to a fixed point. */
static void
fz_json_text(const uint8_t *p, size_t len)
{
    char *text = malloc(len + 1);
    FZ_CHECK(text != NULL);
    memcpy(text, p, len);
    text[len] = '\0';
    trip_config c, orig;
    trip_config_init(&c);
    orig = c;
    int rc = trip_config_from_json(&c, text);
    if (rc != TRIP_OK) {
        FZ_CHECK(rc == TRIP_EINVAL || rc == TRIP_ENOTFOUND ||
                 rc == TRIP_ERANGE);
        FZ_CHECK(trip_errmsg()[0] != '\0');
        FZ_CHECK(memcmp(&c, &orig, sizeof c) == 0);
    } else {
        int valid = trip_config_validate(&c, NULL, 0) == TRIP_OK;
        fz_json_round_trip(&c, valid);
    }
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    uint8_t mode = fz_u8(&in);
    if ((mode & 3) != 0) {
        fz_json_text(in.p, in.n);
        return 0;
    }
    /* arbitrary bytes as a whole struct (a careless C caller, a stale cffi
     * buffer): validate must judge it and a valid one must round-trip */
    trip_config raw;
    trip_config_init(&raw);
    size_t k = in.n < sizeof raw ? in.n : sizeof raw;
    memcpy(&raw, in.p, k);
    in.p += k;
    in.n -= k;
    int valid = fz_validate(&in, &raw) == TRIP_OK;
    fz_json_round_trip(&raw, valid);
    if (valid) {
        trip_breaker *b = NULL;
        trip_clock *clk = NULL;
        FZ_CHECK(trip_clock_manual_new(0, 0, &clk) == TRIP_OK);
        FZ_CHECK(trip_breaker_new("fuzz", &raw, clk, &b) == TRIP_OK);
        trip_breaker_free(b);
        trip_clock_free(clk);
    }
    fz_set_ops(&in, &raw, 8);
    return 0;
}
