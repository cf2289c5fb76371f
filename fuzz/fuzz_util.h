/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Helpers of the libFuzzer targets: typed values from input, properties. */
#ifndef TRIPSENSE_FUZZ_UTIL_H
#define TRIPSENSE_FUZZ_UTIL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tripsense/tripsense.h"

/* The input being consumed; reads past the end yield zeros. */
typedef struct fz_in {
    const uint8_t *p;
    size_t n;
} fz_in;

static inline uint8_t
fz_u8(fz_in *in)
{
    if (in->n == 0)
        return 0;
    in->n--;
    return *in->p++;
}

static inline uint64_t
fz_u64(fz_in *in)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)fz_u8(in) << (8 * i);
    return v;
}

static inline uint32_t
fz_u32(fz_in *in)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)fz_u8(in) << (8 * i);
    return v;
}

/* A double that is often one of the values that break code: NaN, the
 * infinities, zeros, boundaries, huge and tiny numbers; else raw bits or a
 * small fraction or integer. */
static inline double
fz_double(fz_in *in)
{
    static const double special[] = {
        NAN,           INFINITY,
        -INFINITY,     0.0,
        -0.0,          1.0,
        -1.0,          0.5,
        1e-300,        1e300,
        9.2e18,        9.3e18,
        1.8e19,        18446744073709551616.0,
        4294967295.0,  4294967296.0,
        2147483647.0,  2147483648.0,
        -2147483649.0, 1e6,
        1e9,           3.6e12,
        8.64e13,       0.999999,
        1.000001,      4.9406564584124654e-324,
        2.0,           3.0,
        64.0,          65.0,
        1000.0,        0.001,
    };
    uint8_t k = fz_u8(in);
    if (k < 96)
        return special[k % (sizeof special / sizeof special[0])];
    if (k < 160) {
        uint64_t u = fz_u64(in);
        double d;
        memcpy(&d, &u, sizeof d);
        return d;
    }
    if (k < 208)
        return (double)fz_u8(in) / 255.0;
    return (double)(int32_t)fz_u32(in);
}

/* ---- config helpers shared by fuzz_config and fuzz_config_json ---- */

/* Stop at the first broken property, with the input saved by libFuzzer. */
#define FZ_CHECK(cond)                                                         \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__,          \
                    __LINE__, #cond);                                          \
            abort();                                                           \
        }                                                                      \
    } while (0)

static inline size_t
fz_nopts(void)
{
    size_t n = 0;
    while (trip_config_option_name(n))
        n++;
    return n;
}

static inline int
fz_same(double a, double b)
{
    return a == b || (isnan(a) && isnan(b));
}

/* trip_config_set: on success get() returns the value; on failure the
 * config is unchanged. */
static inline void
fz_set_ops(fz_in *in, trip_config *cfg, int nops)
{
    size_t nopts = fz_nopts();
    for (int i = 0; i < nops; i++) {
        uint8_t k = fz_u8(in);
        const char *name =
            k < 250 ? trip_config_option_name(k % nopts) : "no_such_option";
        double v = fz_double(in), before = 0, after = 0;
        int had = trip_config_get(cfg, name, &before);
        int rc = trip_config_set(cfg, name, v);
        if (had != TRIP_OK) {
            FZ_CHECK(rc == TRIP_ENOTFOUND);
            continue;
        }
        FZ_CHECK(trip_config_get(cfg, name, &after) == TRIP_OK);
        if (rc == TRIP_OK) {
            FZ_CHECK(fz_same(after, v));
        } else {
            FZ_CHECK(rc == TRIP_ERANGE && trip_errmsg()[0] != '\0');
            FZ_CHECK(fz_same(after, before));
        }
    }
}

/* validate never writes past cap and always terminates the message. */
static inline int
fz_validate(fz_in *in, const trip_config *cfg)
{
    size_t cap = fz_u8(in) % 96;
    char *msg = malloc(cap ? cap : 1);
    FZ_CHECK(msg != NULL);
    int rc = trip_config_validate(cfg, cap ? msg : NULL, cap);
    FZ_CHECK(rc == TRIP_OK || rc == TRIP_EINVAL);
    if (rc != TRIP_OK && cap)
        FZ_CHECK(memchr(msg, '\0', cap) != NULL);
    if (rc != TRIP_OK)
        FZ_CHECK(trip_errmsg()[0] != '\0');
    free(msg);
    return rc;
}

/* A valid config survives to_json -> from_json exactly. */
static inline void
fz_json_round_trip(const trip_config *cfg, int valid)
{
    char *s = NULL, *s2 = NULL;
    int rc = trip_config_to_json(cfg, &s);
    FZ_CHECK(rc == TRIP_OK && s != NULL);
    trip_config back;
    trip_config_init(&back);
    rc = trip_config_from_json(&back, s);
    if (valid) {
        if (rc != TRIP_OK)
            fprintf(stderr, "from_json: %s\n%s\n", trip_errmsg(), s);
        FZ_CHECK(rc == TRIP_OK);
        FZ_CHECK(trip_config_validate(&back, NULL, 0) == TRIP_OK);
        FZ_CHECK(trip_config_to_json(&back, &s2) == TRIP_OK);
        if (strcmp(s, s2) != 0)
            fprintf(stderr, "%s\n%s\n", s, s2);
        FZ_CHECK(strcmp(s, s2) == 0);
    }
    trip_string_free(s);
    trip_string_free(s2);
}

#endif /* TRIPSENSE_FUZZ_UTIL_H */
