/* SPDX-License-Identifier: GPL-3.0-or-later */
/* libFuzzer target: a config set by name, then a breaker driven by the rest
 * of the input as calls, clock steps, modes and reports on a manual clock. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "tripsense/tripsense.h"

typedef struct fz_run {
    trip_breaker *b;
    trip_clock *clk;
    trip_ticket pend[8];
    int npend;
    int64_t records_ok, passes, refusals;
    uint64_t last_gen;
    const trip_config *alt;
} fz_run;

static int fz_listener_calls;
static void
fz_listener(int kind, const trip_transition *t, void *user)
{
    (void)user;
    FZ_CHECK(kind == TRIP_EVENT_TRANSITION || kind == TRIP_EVENT_REJECTION);
    FZ_CHECK(t != NULL);
    fz_listener_calls++;
}

static void
fz_allow(fz_run *r, fz_in *in, int with_prio)
{
    trip_ticket t;
    int prio = (int)(int8_t)fz_u8(in) * 3;
    int d =
        with_prio ? trip_allow_priority(r->b, &t, prio) : trip_allow(r->b, &t);
    FZ_CHECK(d == TRIP_PASS || d == TRIP_REJECTED || d == TRIP_LIMITED ||
             (with_prio && d == TRIP_EINVAL && (prio < 0 || prio > 255)));
    if (d != TRIP_PASS) {
        r->refusals += d > 0;
        return;
    }
    r->passes++;
    if (r->npend == 8) {
        FZ_CHECK(trip_record(r->b, &r->pend[0], TRIP_SUCCESS) == TRIP_OK);
        r->records_ok++;
        memmove(r->pend, r->pend + 1, 7 * sizeof r->pend[0]);
        r->npend--;
    }
    r->pend[r->npend++] = t;
}

static void
fz_record(fz_run *r, fz_in *in)
{
    uint8_t how = fz_u8(in);
    int outcome = fz_u8(in) % 5; /* 4 is invalid */
    if (r->npend == 0) {
        trip_ticket bad;
        memset(&bad, 0, sizeof bad); /* zeroed: reads as TRIP_PASS */
        if (how & 1)
            bad.decision = TRIP_REJECTED;
        FZ_CHECK(trip_record(r->b, &bad, TRIP_SUCCESS) == TRIP_EINVAL);
        return;
    }
    int i = (int)(how >> 2) % r->npend;
    double lat = fz_double(in), w = fz_double(in);
    int rc;
    switch (how & 3) {
    case 0:
        rc = trip_record(r->b, &r->pend[i], outcome);
        break;
    case 1:
        rc = trip_record_latency(r->b, &r->pend[i], outcome, lat);
        if (!isfinite(lat) || lat < 0)
            FZ_CHECK(rc == TRIP_EINVAL);
        break;
    default:
        rc = trip_record_weighted(r->b, &r->pend[i], outcome, lat, w);
        if (!isfinite(w) || w < 0 || w > 1000)
            FZ_CHECK(rc == TRIP_EINVAL);
        break;
    }
    if (outcome == 4)
        FZ_CHECK(rc == TRIP_EINVAL);
    if (rc != TRIP_OK)
        return;
    r->records_ok++;
    r->pend[i] = r->pend[--r->npend];
}

static void
fz_advance(fz_run *r, fz_in *in, const trip_config *c)
{
    int64_t steps[] = {0,
                       1,
                       1000000,
                       c->bucket_ns,
                       c->bucket_ns / 2,
                       c->bucket_ns * (int64_t)c->window_buckets,
                       c->open_ns,
                       c->open_max_ns,
                       3600LL * 1000000000,
                       (int64_t)fz_u32(in)};
    uint8_t k = fz_u8(in);
    int64_t d = steps[k % (sizeof steps / sizeof steps[0])];
    if (trip_clock_now(r->clk) < ((int64_t)1 << 60))
        FZ_CHECK(trip_clock_advance(r->clk, d) == TRIP_OK);
}

static void
fz_check_snapshot(fz_run *r)
{
    trip_snapshot s;
    FZ_CHECK(trip_snapshot_get(r->b, &s) == TRIP_OK);
    FZ_CHECK(s.state >= TRIP_CLOSED && s.state <= TRIP_METRICS_ONLY);
    FZ_CHECK(s.machine_state >= TRIP_CLOSED &&
             s.machine_state <= TRIP_HALF_OPEN);
    FZ_CHECK(s.state == trip_breaker_state(r->b));
    FZ_CHECK(s.generation >= r->last_gen);
    r->last_gen = s.generation;
    FZ_CHECK(s.successes >= 0 && s.failures >= 0 && s.timeouts >= 0 &&
             s.ignored >= 0 && s.late >= 0 && s.in_flight >= 0);
    FZ_CHECK(s.calls + s.late <= r->records_ok);
    FZ_CHECK(s.in_flight <= r->npend);
    /* metrics-only mode counts the refusals it would have made */
    FZ_CHECK(s.rejected + s.limited <= r->refusals + r->passes);
    FZ_CHECK(s.ramp_fraction >= 0 && s.ramp_fraction <= 1);
}

static void
fz_reports(fz_run *r)
{
    char *h = NULL, *p = NULL;
    int rc = trip_breaker_health_json(r->b, &h);
    FZ_CHECK(rc == TRIP_OK && h && h[0] == '{');
    rc = trip_breaker_prometheus(r->b, &p);
    FZ_CHECK(rc == TRIP_OK && p);
    trip_string_free(h);
    trip_string_free(p);
}

static void
fz_op(fz_run *r, fz_in *in, const trip_config *c)
{
    int rc;
    switch (fz_u8(in) % 16) {
    case 0:
    case 1:
    case 2:
        fz_allow(r, in, 0);
        break;
    case 3:
        fz_allow(r, in, 1);
        break;
    case 4:
    case 5:
    case 6:
        fz_record(r, in);
        break;
    case 7:
    case 8:
        fz_advance(r, in, c);
        break;
    case 9: {
        int mode = fz_u8(in) % 8;
        rc = trip_breaker_set_mode(r->b, mode);
        FZ_CHECK(rc == ((mode == 1 || mode == 2 || mode == 7) ? TRIP_EINVAL
                                                              : TRIP_OK));
        break;
    }
    case 10:
        rc = trip_breaker_reconfigure(r->b, (fz_u8(in) & 1) ? r->alt : c);
        FZ_CHECK(rc == TRIP_OK);
        break;
    case 11:
        fz_check_snapshot(r);
        break;
    case 12:
        FZ_CHECK(trip_breaker_tick(r->b) == TRIP_OK);
        break;
    case 13:
        /* the reports scan every histogram bin: keep them rare */
        if ((fz_u8(in) & 15) == 0)
            fz_reports(r);
        break;
    case 14: {
        int id = -1;
        rc = trip_breaker_add_listener(r->b, fz_listener, NULL, &id);
        FZ_CHECK(rc == TRIP_OK || rc == TRIP_ENOSPC);
        if (rc == TRIP_OK && (fz_u8(in) & 1))
            FZ_CHECK(trip_breaker_remove_listener(r->b, id) == TRIP_OK);
        break;
    }
    default: {
        trip_config got;
        FZ_CHECK(trip_breaker_config(r->b, &got) == TRIP_OK);
        FZ_CHECK(trip_config_validate(&got, NULL, 0) == TRIP_OK);
        break;
    }
    }
}

static void
fz_drive(fz_in *in, const trip_config *cfg, const trip_config *alt)
{
    fz_run r;
    memset(&r, 0, sizeof r);
    r.alt = alt;
    FZ_CHECK(trip_clock_manual_new((int64_t)(fz_u32(in) & 0xFFFFFF) * 1000000,
                                   1700000000LL * 1000000000,
                                   &r.clk) == TRIP_OK);
    int rc = trip_breaker_new("fuzz", cfg, r.clk, &r.b);
    FZ_CHECK(rc == TRIP_OK);
    trip_config c;
    for (int ops = 0; in->n > 0 && ops < 512; ops++) {
        FZ_CHECK(trip_breaker_config(r.b, &c) == TRIP_OK);
        fz_op(&r, in, &c);
    }
    fz_check_snapshot(&r);
    for (int i = 0; i < r.npend; i++)
        FZ_CHECK(trip_record(r.b, &r.pend[i], TRIP_FAILURE) == TRIP_OK);
    trip_breaker_free(r.b);
    trip_clock_free(r.clk);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    uint8_t mode = fz_u8(&in);

    /* defaults (or a tier's) changed by name, as the bindings and the CLI
     * do; fuzz_config_json covers whole structs and JSON text */
    trip_config cfg, alt;
    if (mode & 1)
        trip_config_init_tier(&cfg, (int)(fz_u8(&in) % 6) - 1);
    else
        trip_config_init(&cfg);
    fz_set_ops(&in, &cfg, fz_u8(&in) % 16);
    int valid = fz_validate(&in, &cfg) == TRIP_OK;
    if (mode & 2)
        fz_json_round_trip(&cfg, valid);
    trip_config_init(&alt);
    fz_set_ops(&in, &alt, (mode >> 2) & 3);
    if (fz_validate(&in, &alt) != TRIP_OK)
        trip_config_init(&alt);

    /* a breaker from a valid config, then calls */
    trip_config def;
    trip_config_init(&def);
    trip_breaker *bad = NULL;
    if (!valid)
        FZ_CHECK(trip_breaker_new("fuzz", &cfg, NULL, &bad) == TRIP_EINVAL &&
                 bad == NULL);
    fz_drive(&in, valid ? &cfg : &def, &alt);
    return 0;
}
