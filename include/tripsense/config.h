/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Breaker configuration: a plain struct, its defaults and its validation. */
#ifndef TRIPSENSE_CONFIG_H
#define TRIPSENSE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Kind of the rate window used by the fixed rate rules. */
typedef enum trip_window_kind {
    TRIP_WINDOW_TIME = 0, /* window_buckets buckets of bucket_ns each */
    TRIP_WINDOW_COUNT = 1 /* the last window_calls calls */
} trip_window_kind;

/** Seasonal baseline resolution (issue 5). */
typedef enum trip_seasonality {
    TRIP_SEASON_AUTO = 0, /* hour of week, or none if history shows none */
    TRIP_SEASON_NONE = 1, /* one global baseline */
    TRIP_SEASON_HOUR_OF_DAY = 2, /* 24 buckets */
    TRIP_SEASON_HOUR_OF_WEEK = 3 /* 168 buckets, Monday 00:00 UTC first */
} trip_seasonality;

/** Service tiers (issue 9): each sets recovery defaults, see
 *  trip_config_init_tier() and docs/configuration.md. */
typedef enum trip_tier {
    TRIP_TIER_NONE = -1,
    TRIP_TIER_CRITICAL = 0, /* probe every 15 s */
    TRIP_TIER_HIGH = 1,     /* 30 s */
    TRIP_TIER_MEDIUM = 2,   /* 60 s */
    TRIP_TIER_LOW = 3       /* 120 s */
} trip_tier;

/** What a breaker does when a breaker it depends on opens. */
typedef enum trip_dependency_action {
    TRIP_DEP_REPORT = 0, /* report degraded health only */
    TRIP_DEP_SHED = 1,   /* admit only high-priority calls (>= 192) */
    TRIP_DEP_OPEN = 2    /* open too (rule "dependency") */
} trip_dependency_action;

/**
 * Every option of a breaker. Fill it with trip_config_init(), change the
 * fields you care about, then pass it to trip_breaker_new(), which validates
 * and copies it. A rule whose threshold is 0 is off. Durations are in
 * nanoseconds. docs/configuration.md gives each default and its reason.
 */
typedef struct trip_config {
    /* --- windows ------------------------------------------------------ */
    int window_kind;         /* trip_window_kind; TIME */
    int64_t bucket_ns;       /* bucket length; rules run on each roll; 1 s */
    uint32_t window_buckets; /* short window = buckets * bucket_ns; 10 */
    uint32_t window_calls;   /* count window size N; 100 */
    uint32_t min_calls;      /* calls before a rate rule may fire; 20 */
    uint32_t long_window_buckets; /* long window for low volume; 60 */

    /* --- fixed rules (0 = off) ---------------------------------------- */
    uint32_t consecutive_failures; /* trip at N failures in a row; 10 */
    double failure_rate;           /* (failures+timeouts)/calls >= r; 0.5 */
    double slow_call_rate;         /* slow/calls >= r; 0 (off) */
    int64_t slow_call_ns;          /* a call is slow at latency >= T; 1 s */
    uint32_t consecutive_timeouts; /* trip at N timeouts in a row; 5 */

    /* --- adaptive rules (issue 5; 0 = off) ----------------------------- */
    double latency_quantile;        /* quantile for the percentile rule; 0.99 */
    int64_t latency_threshold_ns;   /* absolute percentile limit; 0 (off) */
    double latency_baseline_factor; /* or >= m x baseline's value; 3.0 */
    uint32_t latency_min_samples;   /* samples before it may fire; 50 */
    double ewma_half_life_s;        /* half-life of the EWMA rates; 30 s */
    double ewma_failure_rate;       /* EWMA failure-rate limit; 0 (off) */
    int seasonality;                /* trip_seasonality; AUTO */
    double baseline_half_life_h;    /* baseline EWMA half-life, hours; 168 */
    uint32_t baseline_min_samples; /* evaluations before a bucket is used; 30 */
    double anomaly_z;              /* z-score limit; 4.0 */
    uint32_t anomaly_k;            /* trip on k of the last m judgements; 3 */
    uint32_t anomaly_m;            /* ... of m; 4 */
    int anomaly_fast; /* 1: trip at the 2nd anomalous judgement in a row when
                         the shift held through both periods; 1 */
    double anomaly_rate_effect;     /* and rate >= this x baseline; 2.0 */
    double anomaly_latency_effect;  /* and quantile >= this x baseline; 1.5 */
    double anomaly_rate_floor;      /* floor on the baseline rate; 0.001 */
    double anomaly_sigma_floor;     /* floor on a baseline sigma; 0.001 */
    double binomial_p;              /* low-volume tail probability; 1e-3 */
    double binomial_overdispersion; /* variance inflation (>= 1); 2.0 */
    int adaptive;                   /* 1: anomaly + percentile rules on; 1 */

    /* --- recovery ------------------------------------------------------ */
    int64_t open_ns;              /* first open duration; 5 s */
    double backoff_multiplier;    /* each repeated trip multiplies; 2.0 */
    int64_t open_max_ns;          /* cap on the open duration; 300 s */
    double jitter;                /* +- fraction of the duration; 0.1 */
    uint64_t seed;                /* jitter generator seed; 0 = from name */
    int64_t backoff_reset_ns;     /* closed this long resets backoff; 600 s */
    uint32_t half_open_probes;    /* P: concurrent probes; 1 */
    uint32_t half_open_successes; /* S: successes to close; 3 */
    int64_t half_open_max_ns;     /* every probe out this long with no outcome
                                     recorded: reopen; 60 s; 0 = wait */
    int64_t ramp_ns;              /* ramp-up after closing; 0 (off) */
    double ramp_start_fraction;   /* fraction admitted at ramp start; 0.1 */

    /* --- issue 9: tiers, priorities, limiter, flapping, dependencies --- */
    int tier; /* trip_tier (informational); NONE */
    double
        probe_priority_share;  /* probes from the top share by priority; 0.5 */
    double limit_rate;         /* token bucket, calls/s; 0 (off) */
    double limit_burst;        /* bucket size, calls; 0 = one second's rate */
    int limit_adaptive;        /* lower the rate while degraded; 1 */
    double limit_min_fraction; /* floor of the adaptive rate; 0.1 */
    int64_t limit_recovery_ns; /* time to restore the full rate; 60 s */
    uint32_t flap_trips;       /* trips within flap_window_ns = flapping; 5 */
    int64_t flap_window_ns;    /* 600 s */
    double flap_backoff;       /* open-duration factor while flapping; 4 */
    int dependency_action;     /* trip_dependency_action; REPORT */
} trip_config;

/**
 * Fill cfg with the defaults: the adaptive breaker with the fixed rules as a
 * safety net. NULL is ignored.
 *
 * Thread-safety: safe from any thread.
 */
TRIP_API void trip_config_init(trip_config *cfg);

/**
 * Fill cfg with the defaults of a service tier: trip_config_init() and then
 * the tier's recovery settings (open duration, cap, probes). Critical
 * dependencies are probed every 15 s, high 30 s, medium 60 s, low 120 s.
 *
 * @return TRIP_OK, or TRIP_EINVAL for NULL or an unknown tier (the message
 *         names it; cfg is then left with plain defaults).
 * Thread-safety: safe from any thread.
 */
TRIP_API int trip_config_init_tier(trip_config *cfg, int tier);

/**
 * Check every field of cfg.
 *
 * @param cfg   the configuration; NULL gives TRIP_EINVAL.
 * @param msg   if not NULL, receives a NUL-terminated message naming the
 *              first bad field and its value (also kept for trip_errmsg()).
 * @param cap   size of msg in bytes.
 * @return TRIP_OK or TRIP_EINVAL.
 * Thread-safety: safe from any thread.
 */
TRIP_API int trip_config_validate(const trip_config *cfg, char *msg,
                                  size_t cap);

/**
 * Set one option by name from a number ("failure_rate", 0.4). Durations
 * named *_ns take nanoseconds. Used by the bindings and the CLI so that
 * option names live in one place.
 *
 * @return TRIP_OK; TRIP_EINVAL for a NULL argument; TRIP_ENOTFOUND for an
 *         unknown name; TRIP_ERANGE for a value the field cannot hold
 *         (NaN, a fraction in an integer field, out of the type's range).
 *         Validation of the whole config is trip_config_validate()'s job.
 * Thread-safety: safe if no other thread uses cfg.
 */
TRIP_API int trip_config_set(trip_config *cfg, const char *name, double value);

/**
 * Read one option by name as a double.
 *
 * @return TRIP_OK, TRIP_EINVAL (NULL argument), TRIP_ENOTFOUND.
 * Thread-safety: safe if no other thread writes cfg.
 */
TRIP_API int trip_config_get(const trip_config *cfg, const char *name,
                             double *value);

/**
 * Return the name of option number i (0-based), or NULL past the last.
 * Lets the bindings enumerate every option.
 *
 * Thread-safety: safe from any thread.
 */
TRIP_API const char *trip_config_option_name(size_t i);

/**
 * Serialise cfg as a JSON object of every option ({"failure_rate":0.5,...}).
 *
 * @param out receives a string to free with trip_string_free().
 * @return TRIP_OK, TRIP_EINVAL, TRIP_ENOMEM.
 * Thread-safety: safe if no other thread writes cfg.
 */
TRIP_API int trip_config_to_json(const trip_config *cfg, char **out);

/**
 * Apply a flat JSON object of options ({"failure_rate":0.4}) over cfg.
 * Unknown keys, non-numeric values and malformed JSON are errors that name
 * the key or the byte offset; cfg is unchanged on error.
 *
 * @return TRIP_OK, TRIP_EINVAL, TRIP_ENOTFOUND, TRIP_ERANGE.
 * Thread-safety: safe if no other thread uses cfg.
 */
TRIP_API int trip_config_from_json(trip_config *cfg, const char *json);

#ifdef __cplusplus
}
#endif
#endif /* TRIPSENSE_CONFIG_H */
