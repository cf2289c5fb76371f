/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Breaker configuration: defaults, validation, by-name access and JSON. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define TRIP_S_ 1000000000LL

void
trip_config_init(trip_config *c)
{
    if (c == NULL)
        return;
    memset(c, 0, sizeof *c);
    /* Windows: 10 s catches a hard outage within seconds at any volume that
     * matters; 60 s is enough calls at night for the low-volume rules. */
    c->window_kind = TRIP_WINDOW_TIME;
    c->bucket_ns = 1 * TRIP_S_;
    c->window_buckets = 10;
    c->window_calls = 100;
    c->min_calls = 20;
    c->long_window_buckets = 60;
    /* Fixed rules as a safety net while the baseline warms up: generous
     * enough not to fire on a healthy service. */
    c->consecutive_failures = 10;
    c->failure_rate = 0.5;
    c->slow_call_rate = 0.0;
    c->slow_call_ns = 1 * TRIP_S_;
    c->consecutive_timeouts = 5;
    /* Adaptive rules (docs/algorithms.md gives the reasons). */
    c->latency_quantile = 0.99;
    c->latency_threshold_ns = 0;
    c->latency_baseline_factor = 3.0;
    c->latency_min_samples = 50;
    c->ewma_half_life_s = 30.0;
    c->ewma_failure_rate = 0.0;
    c->seasonality = TRIP_SEASON_AUTO;
    c->baseline_half_life_h = 168.0;
    c->baseline_min_samples = 30;
    c->anomaly_z = 4.0;
    c->anomaly_k = 3;
    c->anomaly_m = 4;
    c->anomaly_fast = 1;
    c->anomaly_rate_effect = 2.0;
    c->anomaly_latency_effect = 1.5;
    c->anomaly_rate_floor = 0.001;
    c->anomaly_sigma_floor = 0.001;
    /* Judged once a minute and confirmed by 3 of 4 judgements, a window
     * may be judged loosely: 3 failures of 4 calls against a 1% baseline
     * (tail 2.3e-5 with phi 2) is far inside it (docs/algorithms.md
     * "Defaults" has the measured false trips per week). */
    c->binomial_p = 1e-3;
    c->binomial_overdispersion = 2.0;
    c->adaptive = 1;
    /* Recovery: probe after 5 s, doubling to 5 min on repeated trips. */
    c->open_ns = 5 * TRIP_S_;
    c->backoff_multiplier = 2.0;
    c->open_max_ns = 300 * TRIP_S_;
    c->jitter = 0.1;
    c->seed = 0;
    c->backoff_reset_ns = 600 * TRIP_S_;
    c->half_open_probes = 1;
    c->half_open_successes = 3;
    c->half_open_max_ns = 60 * TRIP_S_;
    c->ramp_ns = 0;
    c->ramp_start_fraction = 0.1;
    /* Issue 9: off unless asked for, except the safeguards that only act
     * in trouble (flapping backoff, adaptive limiter when a limit is set). */
    c->tier = TRIP_TIER_NONE;
    c->probe_priority_share = 0.5;
    c->limit_rate = 0;
    c->limit_burst = 0;
    c->limit_adaptive = 1;
    c->limit_min_fraction = 0.1;
    c->limit_recovery_ns = 60 * TRIP_S_;
    c->flap_trips = 5;
    c->flap_window_ns = 600 * TRIP_S_;
    c->flap_backoff = 4.0;
    c->dependency_action = TRIP_DEP_REPORT;
}

int
trip_config_init_tier(trip_config *c, int tier)
{
    /* probe interval, its cap, probes and successes per tier: critical
     * dependencies are retried soonest because the service cannot work
     * without them; low ones can wait and spare the dependency */
    static const struct {
        int64_t open_s, max_s;
        uint32_t probes, successes;
    } t[4] = {
        {15, 120, 2, 3}, {30, 300, 1, 3}, {60, 600, 1, 3}, {120, 1200, 1, 5}};
    if (c == NULL)
        return trip__fail(TRIP_EINVAL, "trip_config_init_tier: cfg is NULL");
    trip_config_init(c);
    if (tier < TRIP_TIER_CRITICAL || tier > TRIP_TIER_LOW)
        return trip__fail(TRIP_EINVAL,
                          "unknown tier %d (expected 0 "
                          "critical, 1 high, 2 medium, 3 low)",
                          tier);
    c->tier = tier;
    c->open_ns = t[tier].open_s * TRIP_S_;
    c->open_max_ns = t[tier].max_s * TRIP_S_;
    c->half_open_probes = t[tier].probes;
    c->half_open_successes = t[tier].successes;
    return TRIP_OK;
}

/* ---- the option table: one row per field, used by set/get/JSON --------- */

enum { T_INT_, T_U32_, T_I64_, T_U64_, T_DBL_ };

typedef struct trip_opt_ {
    const char *name;
    size_t off;
    int type;
} trip_opt_;

#define O_(field, type)                                                        \
    {                                                                          \
#field, offsetof(trip_config, field), type                             \
    }
static const trip_opt_ trip_opts_[] = {
    O_(window_kind, T_INT_),
    O_(bucket_ns, T_I64_),
    O_(window_buckets, T_U32_),
    O_(window_calls, T_U32_),
    O_(min_calls, T_U32_),
    O_(long_window_buckets, T_U32_),
    O_(consecutive_failures, T_U32_),
    O_(failure_rate, T_DBL_),
    O_(slow_call_rate, T_DBL_),
    O_(slow_call_ns, T_I64_),
    O_(consecutive_timeouts, T_U32_),
    O_(latency_quantile, T_DBL_),
    O_(latency_threshold_ns, T_I64_),
    O_(latency_baseline_factor, T_DBL_),
    O_(latency_min_samples, T_U32_),
    O_(ewma_half_life_s, T_DBL_),
    O_(ewma_failure_rate, T_DBL_),
    O_(seasonality, T_INT_),
    O_(baseline_half_life_h, T_DBL_),
    O_(baseline_min_samples, T_U32_),
    O_(anomaly_z, T_DBL_),
    O_(anomaly_k, T_U32_),
    O_(anomaly_m, T_U32_),
    O_(anomaly_fast, T_INT_),
    O_(anomaly_rate_effect, T_DBL_),
    O_(anomaly_latency_effect, T_DBL_),
    O_(anomaly_rate_floor, T_DBL_),
    O_(anomaly_sigma_floor, T_DBL_),
    O_(binomial_p, T_DBL_),
    O_(binomial_overdispersion, T_DBL_),
    O_(adaptive, T_INT_),
    O_(open_ns, T_I64_),
    O_(backoff_multiplier, T_DBL_),
    O_(open_max_ns, T_I64_),
    O_(jitter, T_DBL_),
    O_(seed, T_U64_),
    O_(backoff_reset_ns, T_I64_),
    O_(half_open_probes, T_U32_),
    O_(half_open_successes, T_U32_),
    O_(half_open_max_ns, T_I64_),
    O_(ramp_ns, T_I64_),
    O_(ramp_start_fraction, T_DBL_),
    O_(tier, T_INT_),
    O_(probe_priority_share, T_DBL_),
    O_(limit_rate, T_DBL_),
    O_(limit_burst, T_DBL_),
    O_(limit_adaptive, T_INT_),
    O_(limit_min_fraction, T_DBL_),
    O_(limit_recovery_ns, T_I64_),
    O_(flap_trips, T_U32_),
    O_(flap_window_ns, T_I64_),
    O_(flap_backoff, T_DBL_),
    O_(dependency_action, T_INT_),
};
#undef O_
#define TRIP_NOPTS_ (sizeof trip_opts_ / sizeof trip_opts_[0])

const char *
trip_config_option_name(size_t i)
{
    return i < TRIP_NOPTS_ ? trip_opts_[i].name : NULL;
}

static const trip_opt_ *
trip_opt_find_(const char *name, size_t len)
{
    for (size_t i = 0; i < TRIP_NOPTS_; i++)
        if (strlen(trip_opts_[i].name) == len &&
            memcmp(trip_opts_[i].name, name, len) == 0)
            return &trip_opts_[i];
    return NULL;
}

static int
trip_opt_store_(trip_config *c, const trip_opt_ *o, double v)
{
    char *p = (char *)c + o->off;
    if (isnan(v))
        return trip__fail(TRIP_ERANGE, "config.%s: value is NaN", o->name);
    if (o->type == T_DBL_) {
        *(double *)p = v;
        return TRIP_OK;
    }
    if (v != floor(v))
        return trip__fail(TRIP_ERANGE,
                          "config.%s must be a whole number, "
                          "got %g",
                          o->name, v);
    switch (o->type) {
    case T_INT_:
        if (v < -2147483648.0 || v > 2147483647.0)
            break;
        *(int *)p = (int)v;
        return TRIP_OK;
    case T_U32_:
        if (v < 0 || v > 4294967295.0)
            break;
        *(uint32_t *)p = (uint32_t)v;
        return TRIP_OK;
    case T_I64_:
        if (v < -9223372036854775808.0 || v >= 9223372036854775808.0)
            break;
        *(int64_t *)p = (int64_t)v;
        return TRIP_OK;
    case T_U64_:
        if (v < 0 || v >= 18446744073709551616.0)
            break;
        *(uint64_t *)p = (uint64_t)v;
        return TRIP_OK;
    }
    return trip__fail(TRIP_ERANGE,
                      "config.%s: %g is out of range for the "
                      "field",
                      o->name, v);
}

int
trip_config_set(trip_config *c, const char *name, double value)
{
    if (c == NULL || name == NULL)
        return trip__fail(TRIP_EINVAL, "trip_config_set: NULL argument");
    const trip_opt_ *o = trip_opt_find_(name, strlen(name));
    if (o == NULL)
        return trip__fail(TRIP_ENOTFOUND, "unknown config option \"%s\"", name);
    return trip_opt_store_(c, o, value);
}

static double
trip_opt_load_(const trip_config *c, const trip_opt_ *o)
{
    const char *p = (const char *)c + o->off;
    switch (o->type) {
    case T_INT_:
        return *(const int *)p;
    case T_U32_:
        return *(const uint32_t *)p;
    case T_I64_:
        return (double)*(const int64_t *)p;
    case T_U64_:
        return (double)*(const uint64_t *)p;
    default:
        return *(const double *)p;
    }
}

int
trip_config_get(const trip_config *c, const char *name, double *value)
{
    if (c == NULL || name == NULL || value == NULL)
        return trip__fail(TRIP_EINVAL, "trip_config_get: NULL argument");
    const trip_opt_ *o = trip_opt_find_(name, strlen(name));
    if (o == NULL)
        return trip__fail(TRIP_ENOTFOUND, "unknown config option \"%s\"", name);
    *value = trip_opt_load_(c, o);
    return TRIP_OK;
}

int
trip_config_to_json(const trip_config *c, char **out)
{
    if (c == NULL || out == NULL)
        return trip__fail(TRIP_EINVAL, "trip_config_to_json: NULL argument");
    trip__buf b = {0};
    trip__buf_printf(&b, "{");
    for (size_t i = 0; i < TRIP_NOPTS_; i++) {
        const trip_opt_ *o = &trip_opts_[i];
        const char *p = (const char *)c + o->off;
        trip__buf_printf(&b, "%s\"%s\":", i ? "," : "", o->name);
        if (o->type == T_U64_)
            trip__buf_printf(&b, "%llu",
                             (unsigned long long)*(const uint64_t *)p);
        else if (o->type == T_I64_)
            trip__buf_printf(&b, "%lld", (long long)*(const int64_t *)p);
        else
            trip__buf_json_num(&b, trip_opt_load_(c, o));
    }
    trip__buf_printf(&b, "}");
    return trip__buf_finish(&b, out);
}

/* ---- a small parser for flat JSON objects of numbers ------------------- */

static const char *
trip_skip_ws_(const char *p)
{
    while (*p && isspace((unsigned char)*p))
        p++;
    return p;
}

static int
trip_json_fail_(const char *json, const char *p, const char *what)
{
    return trip__fail(TRIP_EINVAL, "config JSON: %s at byte %ld", what,
                      (long)(p - json));
}

/* A 64-bit field written as a whole decimal number is stored exactly, not
 * through a double, so that every value to_json writes (a seed above 2^53,
 * say) reads back the same. Returns 1 if it handled the token. */
static int
trip_json_int64_(trip_config *tmp, const trip_opt_ *o, const char *p,
                 const char *end, int *rc)
{
    const char *q = p + (*p == '-');
    if ((o->type != T_I64_ && o->type != T_U64_) || q == end)
        return 0;
    for (const char *d = q; d < end; d++)
        if (*d < '0' || *d > '9')
            return 0;
    char *stop;
    errno = 0;
    if (o->type == T_I64_) {
        long long v = strtoll(p, &stop, 10);
        if (errno == 0)
            *(int64_t *)((char *)tmp + o->off) = v;
    } else {
        unsigned long long v = *p == '-' ? 0 : strtoull(p, &stop, 10);
        if (*p == '-')
            errno = ERANGE;
        if (errno == 0)
            *(uint64_t *)((char *)tmp + o->off) = v;
    }
    *rc = errno == 0
              ? TRIP_OK
              : trip__fail(TRIP_ERANGE,
                           "config JSON: option \"%s\": "
                           "%.*s is out of range for the field",
                           o->name, (int)(end - p > 32 ? 32 : end - p), p);
    return 1;
}

static int
trip_json_pair_(trip_config *tmp, const char *json, const char **pp)
{
    const char *p = trip_skip_ws_(*pp);
    if (*p != '"')
        return trip_json_fail_(json, p, "expected a quoted key");
    const char *key = ++p;
    while (*p && *p != '"')
        p++;
    if (*p != '"')
        return trip_json_fail_(json, p, "unterminated key");
    size_t klen = (size_t)(p - key);
    p = trip_skip_ws_(p + 1);
    if (*p != ':')
        return trip_json_fail_(json, p, "expected ':'");
    p = trip_skip_ws_(p + 1);
    const trip_opt_ *o = trip_opt_find_(key, klen);
    if (o == NULL)
        return trip__fail(TRIP_ENOTFOUND,
                          "config JSON: unknown option "
                          "\"%.*s\"",
                          (int)(klen > 64 ? 64 : klen), key);
    char *end;
    double v = strtod(p, &end);
    if (end == p)
        return trip__fail(TRIP_EINVAL,
                          "config JSON: option \"%s\" needs a "
                          "number (byte %ld)",
                          o->name, (long)(p - json));
    int rc;
    if (!trip_json_int64_(tmp, o, p, end, &rc))
        rc = trip_opt_store_(tmp, o, v);
    if (rc != TRIP_OK)
        return rc;
    *pp = trip_skip_ws_(end);
    return TRIP_OK;
}

int
trip_config_from_json(trip_config *c, const char *json)
{
    if (c == NULL || json == NULL)
        return trip__fail(TRIP_EINVAL, "trip_config_from_json: NULL argument");
    trip_config tmp = *c;
    const char *p = trip_skip_ws_(json);
    if (*p != '{')
        return trip_json_fail_(json, p, "expected '{'");
    p = trip_skip_ws_(p + 1);
    if (*p == '}')
        goto done;
    for (;;) {
        int rc = trip_json_pair_(&tmp, json, &p);
        if (rc != TRIP_OK)
            return rc;
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p == '}')
            break;
        return trip_json_fail_(json, p, "expected ',' or '}'");
    }
done:
    p = trip_skip_ws_(p + 1);
    if (*p != '\0')
        return trip_json_fail_(json, p, "trailing characters");
    *c = tmp;
    return TRIP_OK;
}
