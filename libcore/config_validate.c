/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Validation of a breaker configuration, naming the first bad field. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define TRIP_S_ 1000000000LL
#define TRIP_DAY_ (86400LL * TRIP_S_)

typedef struct trip_vctx_ {
    char *msg;
    size_t cap;
} trip_vctx_;

static int
trip_vfail_(trip_vctx_ *v, const char *field, const char *rule, double got)
{
    char tmp[256];
    snprintf(tmp, sizeof tmp, "config.%s %s, got %g", field, rule, got);
    if (v->msg && v->cap) {
        strncpy(v->msg, tmp, v->cap - 1);
        v->msg[v->cap - 1] = '\0';
    }
    return trip__fail(TRIP_EINVAL, "%s", tmp);
}

/* A fraction in [lo, 1]; lo_open excludes lo itself. zero_ok allows 0
 * (rule off). */
static int
trip_vfrac_(trip_vctx_ *v, const char *f, double x, int zero_ok)
{
    if (isnan(x) || x < 0 || x > 1 || (x == 0 && !zero_ok))
        return trip_vfail_(
            v, f, zero_ok ? "must be in [0, 1] (0 = off)" : "must be in (0, 1]",
            x);
    return TRIP_OK;
}

static int
trip_vrange_(trip_vctx_ *v, const char *f, double x, double lo, double hi,
             const char *rule)
{
    if (isnan(x) || x < lo || x > hi)
        return trip_vfail_(v, f, rule, x);
    return TRIP_OK;
}

#define CHECK_(expr)                                                           \
    do {                                                                       \
        int rc_ = (expr);                                                      \
        if (rc_ != TRIP_OK)                                                    \
            return rc_;                                                        \
    } while (0)

static int
trip_validate_windows_(const trip_config *c, trip_vctx_ *v)
{
    if (c->window_kind != TRIP_WINDOW_TIME &&
        c->window_kind != TRIP_WINDOW_COUNT)
        return trip_vfail_(v, "window_kind", "must be 0 (time) or 1 (count)",
                           c->window_kind);
    CHECK_(trip_vrange_(v, "bucket_ns", (double)c->bucket_ns, 1e6,
                        3600.0 * TRIP_S_, "must be in [1 ms, 1 h]"));
    CHECK_(trip_vrange_(v, "window_buckets", c->window_buckets, 1, 3600,
                        "must be in [1, 3600]"));
    CHECK_(trip_vrange_(v, "window_calls", c->window_calls, 1, 1000000,
                        "must be in [1, 1000000]"));
    CHECK_(trip_vrange_(v, "long_window_buckets", c->long_window_buckets,
                        c->window_buckets, 3600,
                        "must be in [window_buckets, 3600]"));
    if (c->window_kind == TRIP_WINDOW_COUNT && c->min_calls > c->window_calls)
        return trip_vfail_(v, "min_calls",
                           "must be <= window_calls for a "
                           "count window",
                           c->min_calls);
    return TRIP_OK;
}

static int
trip_validate_rules_(const trip_config *c, trip_vctx_ *v)
{
    CHECK_(trip_vfrac_(v, "failure_rate", c->failure_rate, 1));
    CHECK_(trip_vfrac_(v, "slow_call_rate", c->slow_call_rate, 1));
    CHECK_(trip_vrange_(v, "slow_call_ns", (double)c->slow_call_ns, 1,
                        (double)TRIP_DAY_, "must be in [1 ns, 1 day]"));
    CHECK_(trip_vfrac_(v, "latency_quantile", c->latency_quantile, 0));
    CHECK_(trip_vrange_(v, "latency_threshold_ns",
                        (double)c->latency_threshold_ns, 0, (double)TRIP_DAY_,
                        "must be in [0, 1 day] (0 = off)"));
    CHECK_(trip_vrange_(v, "latency_baseline_factor",
                        c->latency_baseline_factor, 0, 1e6,
                        "must be 0 (off) or >= 1"));
    if (c->latency_baseline_factor > 0 && c->latency_baseline_factor < 1)
        return trip_vfail_(v, "latency_baseline_factor",
                           "must be 0 (off) or >= 1",
                           c->latency_baseline_factor);
    CHECK_(trip_vrange_(v, "ewma_half_life_s", c->ewma_half_life_s, 1e-3,
                        86400.0 * 30, "must be in [0.001, 2592000] seconds"));
    CHECK_(trip_vfrac_(v, "ewma_failure_rate", c->ewma_failure_rate, 1));
    return TRIP_OK;
}

static int
trip_validate_adaptive_(const trip_config *c, trip_vctx_ *v)
{
    if (c->seasonality < TRIP_SEASON_AUTO ||
        c->seasonality > TRIP_SEASON_HOUR_OF_WEEK)
        return trip_vfail_(v, "seasonality",
                           "must be 0 auto, 1 none, 2 "
                           "hour of day or 3 hour of week",
                           c->seasonality);
    CHECK_(trip_vrange_(v, "baseline_half_life_h", c->baseline_half_life_h,
                        0.01, 24.0 * 365, "must be in [0.01, 8760] hours"));
    CHECK_(trip_vrange_(v, "anomaly_z", c->anomaly_z, 0.5, 1000,
                        "must be in [0.5, 1000]"));
    CHECK_(trip_vrange_(v, "anomaly_m", c->anomaly_m, 1, 64,
                        "must be in [1, 64]"));
    CHECK_(trip_vrange_(v, "anomaly_k", c->anomaly_k, 1, c->anomaly_m,
                        "must be in [1, anomaly_m]"));
    CHECK_(trip_vrange_(v, "anomaly_rate_effect", c->anomaly_rate_effect, 1,
                        1e6, "must be >= 1"));
    CHECK_(trip_vrange_(v, "anomaly_latency_effect", c->anomaly_latency_effect,
                        1, 1e6, "must be >= 1"));
    CHECK_(trip_vfrac_(v, "anomaly_rate_floor", c->anomaly_rate_floor, 1));
    CHECK_(trip_vrange_(v, "anomaly_sigma_floor", c->anomaly_sigma_floor, 0, 1,
                        "must be in [0, 1]"));
    CHECK_(trip_vrange_(v, "binomial_p", c->binomial_p, 0, 0.5,
                        "must be in [0, 0.5] (0 = off)"));
    CHECK_(trip_vrange_(v, "binomial_overdispersion",
                        c->binomial_overdispersion, 1, 1000,
                        "must be in [1, 1000]"));
    if (c->anomaly_fast != 0 && c->anomaly_fast != 1)
        return trip_vfail_(v, "anomaly_fast", "must be 0 or 1",
                           c->anomaly_fast);
    if (c->adaptive != 0 && c->adaptive != 1)
        return trip_vfail_(v, "adaptive", "must be 0 or 1", c->adaptive);
    return TRIP_OK;
}

static int
trip_validate_recovery_(const trip_config *c, trip_vctx_ *v)
{
    CHECK_(trip_vrange_(v, "open_ns", (double)c->open_ns, 1e6,
                        (double)TRIP_DAY_, "must be in [1 ms, 1 day]"));
    CHECK_(trip_vrange_(v, "open_max_ns", (double)c->open_max_ns,
                        (double)c->open_ns, (double)TRIP_DAY_,
                        "must be in [open_ns, 1 day]"));
    CHECK_(trip_vrange_(v, "backoff_multiplier", c->backoff_multiplier, 1, 100,
                        "must be in [1, 100]"));
    CHECK_(trip_vrange_(v, "jitter", c->jitter, 0, 0.5, "must be in [0, 0.5]"));
    CHECK_(trip_vrange_(v, "backoff_reset_ns", (double)c->backoff_reset_ns, 0,
                        30.0 * TRIP_DAY_, "must be in [0, 30 days]"));
    CHECK_(trip_vrange_(v, "half_open_probes", c->half_open_probes, 1, 10000,
                        "must be in [1, 10000]"));
    CHECK_(trip_vrange_(v, "half_open_successes", c->half_open_successes, 1,
                        100000, "must be in [1, 100000]"));
    CHECK_(trip_vrange_(v, "half_open_max_ns", (double)c->half_open_max_ns, 0,
                        (double)TRIP_DAY_, "must be in [0, 1 day] (0 = wait)"));
    CHECK_(trip_vrange_(v, "ramp_ns", (double)c->ramp_ns, 0, (double)TRIP_DAY_,
                        "must be in [0, 1 day] (0 = off)"));
    CHECK_(trip_vfrac_(v, "ramp_start_fraction", c->ramp_start_fraction, 0));
    return TRIP_OK;
}

static int
trip_validate_issue9_(const trip_config *c, trip_vctx_ *v)
{
    CHECK_(trip_vrange_(v, "tier", c->tier, TRIP_TIER_NONE, TRIP_TIER_LOW,
                        "must be -1 none, 0 critical, 1 high, 2 medium or "
                        "3 low"));
    CHECK_(trip_vfrac_(v, "probe_priority_share", c->probe_priority_share, 0));
    if (!(c->limit_rate == 0 ||
          (c->limit_rate >= 1e-6 && c->limit_rate <= 1e9)))
        return trip_vfail_(v, "limit_rate",
                           "must be 0 (off) or in [1e-6, 1e9] calls/s",
                           c->limit_rate);
    CHECK_(trip_vrange_(v, "limit_burst", c->limit_burst, 0, 1e9,
                        "must be in [0, 1e9] calls (0 = one second)"));
    if (c->limit_adaptive != 0 && c->limit_adaptive != 1)
        return trip_vfail_(v, "limit_adaptive", "must be 0 or 1",
                           c->limit_adaptive);
    CHECK_(trip_vfrac_(v, "limit_min_fraction", c->limit_min_fraction, 0));
    CHECK_(trip_vrange_(v, "limit_recovery_ns", (double)c->limit_recovery_ns, 0,
                        (double)TRIP_DAY_, "must be in [0, 1 day]"));
    CHECK_(trip_vrange_(v, "flap_trips", c->flap_trips, 0, 64,
                        "must be in [0, 64] (0 = off)"));
    CHECK_(trip_vrange_(v, "flap_window_ns", (double)c->flap_window_ns, 1e9,
                        (double)TRIP_DAY_, "must be in [1 s, 1 day]"));
    CHECK_(trip_vrange_(v, "flap_backoff", c->flap_backoff, 1, 100,
                        "must be in [1, 100]"));
    CHECK_(trip_vrange_(v, "dependency_action", c->dependency_action, 0, 2,
                        "must be 0 report, 1 shed or 2 open"));
    return TRIP_OK;
}

int
trip_config_validate(const trip_config *cfg, char *msg, size_t cap)
{
    trip_vctx_ v = {msg, cap};
    if (msg && cap)
        msg[0] = '\0';
    if (cfg == NULL) {
        if (msg && cap)
            snprintf(msg, cap, "config is NULL");
        return trip__fail(TRIP_EINVAL, "config is NULL");
    }
    CHECK_(trip_validate_windows_(cfg, &v));
    CHECK_(trip_validate_rules_(cfg, &v));
    CHECK_(trip_validate_adaptive_(cfg, &v));
    CHECK_(trip_validate_recovery_(cfg, &v));
    CHECK_(trip_validate_issue9_(cfg, &v));
    return TRIP_OK;
}
