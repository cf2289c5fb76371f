/* SPDX-License-Identifier: GPL-3.0-or-later */
/* libFuzzer target: arbitrary event arrays (times, outcomes, latencies with
 * NaN, negatives, unsorted) through trip_replay_arrays (with and without
 * evaluations), trip_replay, a live breaker on a manual clock, and
 * trip_detect. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"

#define FZ_MAX_EVENTS 1024

typedef struct fz_events {
    size_t n;
    int64_t wall[FZ_MAX_EVENTS];
    double lat[FZ_MAX_EVENTS];
    int32_t outcome[FZ_MAX_EVENTS];
    int32_t prio[FZ_MAX_EVENTS];
} fz_events;

static fz_events ev_; /* static: too big for the fuzzer's stack */

static int64_t
fz_step(fz_in *in, int64_t t, int64_t unit)
{
    uint8_t k = fz_u8(in);
    int64_t d;
    if (k < 200)
        d = (int64_t)k * unit;
    else if (k < 232)
        d = 0;
    else if (k < 248)
        d = (int64_t)(k - 231) * 3600LL * 1000000000; /* hours of silence */
    else if (k < 250)
        d = -(int64_t)fz_u8(in) * unit - 1; /* out of order */
    else if (k < 252)
        return (int64_t)fz_u64(in); /* anything, negative too */
    else
        d = (int64_t)fz_u32(in);
    if ((d > 0 && t > INT64_MAX - d) || (d < 0 && t < INT64_MIN - d))
        return t;
    return t + d;
}

static void
fz_read_events(fz_in *in, uint8_t mode)
{
    static const int64_t units[] = {1000000, 10000000, 100000000, 1000000000};
    int64_t unit = units[(mode >> 4) & 3];
    int64_t t = (mode & 0x40) ? 1700000000LL * 1000000000 : 0;
    size_t n = 0;
    while (in->n > 0 && n < FZ_MAX_EVENTS) {
        t = fz_step(in, t, unit);
        ev_.wall[n] = t;
        uint8_t l = fz_u8(in);
        ev_.lat[n] = l < 224 ? (double)l * 1e-3 : fz_double(in);
        uint8_t o = fz_u8(in);
        ev_.outcome[n] = o < 250 ? o % 4 : (int32_t)o - 252;
        uint8_t p = (mode & 0x80) ? fz_u8(in) : 0;
        ev_.prio[n] = p < 250 ? p : (int32_t)p * 4 - 1200;
        n++;
    }
    ev_.n = n;
}

/* What replay must accept: the documented input contract. */
static int
fz_events_valid(void)
{
    for (size_t i = 0; i < ev_.n; i++) {
        if (ev_.wall[i] < 0 || ev_.wall[i] > ((int64_t)1 << 62) ||
            (i > 0 && ev_.wall[i] < ev_.wall[i - 1]))
            return 0;
        if (!isfinite(ev_.lat[i]) || ev_.lat[i] < 0 ||
            ev_.lat[i] > 86400.0 * 365)
            return 0;
        if (ev_.outcome[i] < 0 || ev_.outcome[i] > 3)
            return 0;
        if (ev_.prio[i] < 0 || ev_.prio[i] > 255)
            return 0;
    }
    return 1;
}

static void
fz_check_result(const trip_replay_result *r)
{
    FZ_CHECK(r->n_events == ev_.n);
    for (size_t i = 0; i < r->n_events; i++) {
        FZ_CHECK(r->decisions[i] <= TRIP_LIMITED);
        FZ_CHECK(r->states[i] <= TRIP_METRICS_ONLY);
    }
    for (size_t i = 0; i < r->n_evals; i++)
        FZ_CHECK(r->evals[i].state >= 0 && r->evals[i].state <= 6);
    for (size_t i = 0; i < r->n_transitions; i++) {
        const trip_transition_row *t = &r->transitions[i];
        FZ_CHECK(t->from != t->to && t->rule > 0 && t->rule < TRIP_RULE_COUNT_);
    }
    /* every admitted event was recorded */
    FZ_CHECK(r->final.in_flight == 0);
}

/* The same events through a live breaker on a manual clock decide the
 * same, event by event (the replay contract). */
static void
fz_live_matches(const trip_config *cfg, const trip_replay_result *r)
{
    trip_clock *clk = NULL;
    trip_breaker *b = NULL;
    FZ_CHECK(trip_clock_manual_new(ev_.n ? ev_.wall[0] : 0, 0, &clk) ==
             TRIP_OK);
    FZ_CHECK(trip_breaker_new("replay", cfg, clk, &b) == TRIP_OK);
    for (size_t i = 0; i < ev_.n; i++) {
        FZ_CHECK(trip_clock_set(clk, ev_.wall[i]) == TRIP_OK);
        trip_ticket t;
        int d = trip_allow_priority(b, &t, ev_.prio[i]);
        FZ_CHECK(d == r->decisions[i] && t.state == r->states[i]);
        if (d == TRIP_PASS)
            FZ_CHECK(trip_record_latency(b, &t, ev_.outcome[i], ev_.lat[i]) ==
                     TRIP_OK);
    }
    trip_snapshot s;
    FZ_CHECK(trip_snapshot_get(b, &s) == TRIP_OK);
    FZ_CHECK(s.calls == r->final.calls && s.rejected == r->final.rejected &&
             s.transitions == r->final.transitions);
    trip_breaker_free(b);
    trip_clock_free(clk);
}

static void
fz_replay(const trip_config *cfg, uint8_t mode)
{
    int with_prio = (mode & 0x80) != 0;
    trip_replay_result *r = NULL;
    int rc = trip_replay_arrays(cfg, ev_.wall, ev_.lat, ev_.outcome,
                                with_prio ? ev_.prio : NULL, ev_.n, &r);
    if (!with_prio) /* NULL priorities mean 0 */
        memset(ev_.prio, 0, ev_.n * sizeof ev_.prio[0]);
    int valid = fz_events_valid();
    if (rc != TRIP_OK) {
        FZ_CHECK(rc == TRIP_EINVAL && r == NULL);
        FZ_CHECK(trip_errmsg()[0] != '\0');
        FZ_CHECK(!valid);
        return;
    }
    FZ_CHECK(valid);
    fz_check_result(r);
    if ((mode & 7) == 1) {
        /* the struct form gives the same result */
        trip_event *e = malloc((ev_.n ? ev_.n : 1) * sizeof *e);
        FZ_CHECK(e != NULL);
        for (size_t i = 0; i < ev_.n; i++)
            e[i] = (trip_event){ev_.wall[i], ev_.lat[i], ev_.outcome[i],
                                ev_.prio[i]};
        trip_replay_result *r2 = NULL;
        FZ_CHECK(trip_replay(cfg, e, ev_.n, &r2) == TRIP_OK);
        FZ_CHECK(r2->n_evals == r->n_evals &&
                 r2->n_transitions == r->n_transitions);
        FZ_CHECK(ev_.n == 0 || memcmp(r2->decisions, r->decisions, ev_.n) == 0);
        trip_replay_result_free(r2);
        free(e);
    }
    if ((mode & 7) == 2 || (mode & 7) == 3)
        fz_live_matches(cfg, r);
    if ((mode & 7) == 4) {
        /* without evaluations: the rest of the result is the same */
        trip_replay_result *r3 = NULL;
        FZ_CHECK(trip_replay_arrays_flags(cfg, ev_.wall, ev_.lat, ev_.outcome,
                                          with_prio ? ev_.prio : NULL, ev_.n,
                                          TRIP_REPLAY_NO_EVALS,
                                          &r3) == TRIP_OK);
        FZ_CHECK(r3->n_evals == 0 && r3->evals == NULL);
        FZ_CHECK(r3->n_transitions == r->n_transitions);
        FZ_CHECK(ev_.n == 0 ||
                 (memcmp(r3->decisions, r->decisions, ev_.n) == 0 &&
                  memcmp(r3->states, r->states, ev_.n) == 0));
        FZ_CHECK(r->n_transitions == 0 ||
                 memcmp(r3->transitions, r->transitions,
                        r->n_transitions * sizeof *r->transitions) == 0);
        FZ_CHECK(memcmp(&r3->final, &r->final, sizeof r->final) == 0);
        trip_replay_result_free(r3);
    }
    trip_replay_result_free(r);
}

static void
fz_detect(fz_in *opts_in)
{
    trip_detect_opts o;
    trip_detect_opts_init(&o);
    uint8_t k = fz_u8(opts_in);
    if (k & 1)
        o.seasonality = (int)(fz_u8(opts_in) % 6) - 1;
    if (k & 2)
        o.z = fz_double(opts_in);
    if (k & 4) {
        o.k = fz_u8(opts_in) % 70;
        o.m = fz_u8(opts_in) % 70;
    }
    if (k & 8)
        o.min_samples = fz_u8(opts_in);
    if (k & 16)
        o.sigma_floor = fz_double(opts_in);
    if (k & 32)
        o.effect = fz_double(opts_in);
    o.log_transform = (k >> 6) & 1;
    if (k & 128)
        o.half_life_h = fz_double(opts_in);
    size_t n = ev_.n;
    double *scores = malloc((n ? n : 1) * sizeof(double));
    double *mean = malloc((n ? n : 1) * sizeof(double));
    uint8_t *flags = malloc(n ? n : 1);
    FZ_CHECK(scores && mean && flags);
    int rc = trip_detect(&o, ev_.wall, ev_.lat, n, scores, flags, mean, NULL);
    FZ_CHECK(rc == TRIP_OK || rc == TRIP_EINVAL);
    if (rc == TRIP_OK)
        for (size_t i = 0; i < n; i++)
            FZ_CHECK(flags[i] <= 1);
    free(scores);
    free(mean);
    free(flags);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    uint8_t mode = fz_u8(&in);
    /* a config from a few named options; invalid ones fall back to the
     * defaults (fuzz_config covers invalid configs) */
    trip_config cfg;
    trip_config_init(&cfg);
    fz_set_ops(&in, &cfg, fz_u8(&in) % 6);
    if (trip_config_validate(&cfg, NULL, 0) != TRIP_OK)
        trip_config_init(&cfg);
    uint8_t opts_bytes[16];
    for (size_t i = 0; i < sizeof opts_bytes; i++)
        opts_bytes[i] = fz_u8(&in);
    fz_read_events(&in, mode);
    if ((mode & 0xC) != 0xC)
        fz_replay(&cfg, mode);
    if ((mode & 0xC) == 0xC || (mode & 7) == 7) {
        fz_in oi = {opts_bytes, sizeof opts_bytes};
        fz_detect(&oi);
    }
    return 0;
}
