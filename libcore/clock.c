/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The only module that reads a clock: system clocks and manual clocks. */
#include <stdatomic.h>
#include <time.h>

#include "internal.h"

enum { TRIP_CLOCK_SYSTEM_ = 1, TRIP_CLOCK_MANUAL_ = 2 };

struct trip_clock {
    int kind;
    _Atomic int64_t now_ns; /* manual only */
    int64_t wall_offset_ns; /* manual only */
};

static trip_clock trip_system_clock_ = {TRIP_CLOCK_SYSTEM_, 0, 0};

trip_clock *
trip_clock_system(void)
{
    return &trip_system_clock_;
}

int
trip_clock_manual_new(int64_t start_ns, int64_t wall_offset_ns,
                      trip_clock **out)
{
    if (out == NULL)
        return trip__fail(TRIP_EINVAL, "trip_clock_manual_new: out is NULL");
    *out = NULL;
    if (start_ns < 0 || start_ns > TRIP__TIME_MAX_NS)
        return trip__fail(TRIP_EINVAL,
                          "trip_clock_manual_new: start_ns must be in "
                          "[0, 2^62], got %lld",
                          (long long)start_ns);
    /* the engine adds the offset to times up to 2^62: the sum must fit */
    if (wall_offset_ns < -TRIP__TIME_MAX_NS ||
        wall_offset_ns >= TRIP__TIME_MAX_NS)
        return trip__fail(TRIP_EINVAL,
                          "trip_clock_manual_new: wall_offset_ns must be in "
                          "[-2^62, 2^62), got %lld",
                          (long long)wall_offset_ns);
    trip_clock *c = trip__calloc(1, sizeof *c);
    if (c == NULL)
        return trip__fail(TRIP_ENOMEM, "trip_clock_manual_new: out of memory");
    c->kind = TRIP_CLOCK_MANUAL_;
    atomic_init(&c->now_ns, start_ns);
    c->wall_offset_ns = wall_offset_ns;
    *out = c;
    return TRIP_OK;
}

static int
trip_clock_check_manual_(const trip_clock *c, const char *fn)
{
    if (c == NULL)
        return trip__fail(TRIP_EINVAL, "%s: clock is NULL", fn);
    if (c->kind != TRIP_CLOCK_MANUAL_)
        return trip__fail(TRIP_EINVAL, "%s: not a manual clock", fn);
    return TRIP_OK;
}

int
trip_clock_set(trip_clock *clock, int64_t now_ns)
{
    int rc = trip_clock_check_manual_(clock, "trip_clock_set");
    if (rc != TRIP_OK)
        return rc;
    int64_t cur = atomic_load(&clock->now_ns);
    do {
        if (now_ns > TRIP__TIME_MAX_NS)
            return trip__fail(TRIP_ERANGE,
                              "trip_clock_set: %lld is past "
                              "the clock's range (2^62 ns)",
                              (long long)now_ns);
        if (now_ns < cur)
            return trip__fail(TRIP_ERANGE,
                              "trip_clock_set: time may not go backwards "
                              "(%lld < %lld)",
                              (long long)now_ns, (long long)cur);
    } while (!atomic_compare_exchange_weak(&clock->now_ns, &cur, now_ns));
    return TRIP_OK;
}

void
trip__clock_store(trip_clock *clock, int64_t now_ns)
{
    atomic_store_explicit(&clock->now_ns, now_ns, memory_order_release);
}

int
trip_clock_advance(trip_clock *clock, int64_t delta_ns)
{
    int rc = trip_clock_check_manual_(clock, "trip_clock_advance");
    if (rc != TRIP_OK)
        return rc;
    if (delta_ns < 0)
        return trip__fail(TRIP_ERANGE,
                          "trip_clock_advance: delta_ns must be >= 0, got %lld",
                          (long long)delta_ns);
    int64_t cur = atomic_load(&clock->now_ns);
    do {
        if (delta_ns > TRIP__TIME_MAX_NS - cur)
            return trip__fail(TRIP_ERANGE,
                              "trip_clock_advance: %lld + %lld "
                              "is past the clock's range (2^62 ns)",
                              (long long)cur, (long long)delta_ns);
    } while (
        !atomic_compare_exchange_weak(&clock->now_ns, &cur, cur + delta_ns));
    return TRIP_OK;
}

static int64_t
trip_read_clock_(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t
trip_clock_now(const trip_clock *clock)
{
    if (clock != NULL && clock->kind == TRIP_CLOCK_MANUAL_)
        return atomic_load_explicit(&((trip_clock *)clock)->now_ns,
                                    memory_order_acquire);
    return trip_read_clock_(CLOCK_MONOTONIC);
}

int64_t
trip__clock_coarse(const trip_clock *clock)
{
    if (clock != NULL && clock->kind == TRIP_CLOCK_MANUAL_)
        return trip_clock_now(clock);
#ifdef CLOCK_MONOTONIC_COARSE
    /* Same origin as CLOCK_MONOTONIC on Linux, a few ms behind at most:
     * enough to notice that an open period has ended. */
    return trip_read_clock_(CLOCK_MONOTONIC_COARSE);
#else
    return trip_read_clock_(CLOCK_MONOTONIC);
#endif
}

int64_t
trip_clock_wall(const trip_clock *clock)
{
    if (clock != NULL && clock->kind == TRIP_CLOCK_MANUAL_) {
        int64_t wall;
        /* saturate instead of overflowing for extreme offsets */
        if (__builtin_add_overflow(trip_clock_now(clock), clock->wall_offset_ns,
                                   &wall))
            wall = clock->wall_offset_ns > 0 ? INT64_MAX : INT64_MIN;
        return wall;
    }
    return trip_read_clock_(CLOCK_REALTIME);
}

void
trip_clock_free(trip_clock *clock)
{
    if (clock != NULL && clock->kind == TRIP_CLOCK_MANUAL_)
        trip__free(clock);
}
