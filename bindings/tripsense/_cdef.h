/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The cffi declarations of the public API (include/tripsense/*.h), written by
 * hand because cffi cannot read macros. tests/python/test_cdef.py compares it
 * with the headers so the two cannot drift. */

/* ---- status.h ---------------------------------------------------------- */
typedef enum trip_status {
    TRIP_OK = 0,
    TRIP_EINVAL = -1,
    TRIP_ENOMEM = -2,
    TRIP_ESTATE = -3,
    TRIP_ENOTFOUND = -4,
    TRIP_EEXIST = -5,
    TRIP_ERANGE = -6,
    TRIP_ENOSPC = -7,
    TRIP_ESTORE = -8,
    TRIP_EBUSY = -9,
    TRIP_ESCHEMA = -10,
    TRIP_ECORRUPT = -11,
    TRIP_EREADONLY = -12,
    TRIP_EFULL = -13,
    TRIP_EIO = -14,
    TRIP_EMATH = -15,
    TRIP_ETHREAD = -16
} trip_status;

const char *trip_strerror(int status);
const char *trip_status_name(int status);
const char *trip_errmsg(void);
void trip_string_free(char *s);
const char *trip_version(void);

/* ---- clock.h ----------------------------------------------------------- */
typedef struct trip_clock trip_clock;
trip_clock *trip_clock_system(void);
int trip_clock_manual_new(int64_t start_ns, int64_t wall_offset_ns,
                          trip_clock **out);
int trip_clock_set(trip_clock *clock, int64_t now_ns);
int trip_clock_advance(trip_clock *clock, int64_t delta_ns);
int64_t trip_clock_now(const trip_clock *clock);
int64_t trip_clock_wall(const trip_clock *clock);
void trip_clock_free(trip_clock *clock);

/* ---- config.h ---------------------------------------------------------- */
typedef enum trip_window_kind {
    TRIP_WINDOW_TIME = 0,
    TRIP_WINDOW_COUNT = 1
} trip_window_kind;

typedef enum trip_seasonality {
    TRIP_SEASON_AUTO = 0,
    TRIP_SEASON_NONE = 1,
    TRIP_SEASON_HOUR_OF_DAY = 2,
    TRIP_SEASON_HOUR_OF_WEEK = 3
} trip_seasonality;

typedef enum trip_tier {
    TRIP_TIER_NONE = -1,
    TRIP_TIER_CRITICAL = 0,
    TRIP_TIER_HIGH = 1,
    TRIP_TIER_MEDIUM = 2,
    TRIP_TIER_LOW = 3
} trip_tier;

typedef enum trip_dependency_action {
    TRIP_DEP_REPORT = 0,
    TRIP_DEP_SHED = 1,
    TRIP_DEP_OPEN = 2
} trip_dependency_action;

typedef struct trip_config {
    int window_kind;
    int64_t bucket_ns;
    uint32_t window_buckets;
    uint32_t window_calls;
    uint32_t min_calls;
    uint32_t long_window_buckets;
    uint32_t consecutive_failures;
    double failure_rate;
    double slow_call_rate;
    int64_t slow_call_ns;
    uint32_t consecutive_timeouts;
    double latency_quantile;
    int64_t latency_threshold_ns;
    double latency_baseline_factor;
    uint32_t latency_min_samples;
    double ewma_half_life_s;
    double ewma_failure_rate;
    int seasonality;
    double baseline_half_life_h;
    uint32_t baseline_min_samples;
    double anomaly_z;
    uint32_t anomaly_k;
    uint32_t anomaly_m;
    int anomaly_fast;
    double anomaly_rate_effect;
    double anomaly_latency_effect;
    double anomaly_rate_floor;
    double anomaly_sigma_floor;
    double binomial_p;
    double binomial_overdispersion;
    int adaptive;
    int64_t open_ns;
    double backoff_multiplier;
    int64_t open_max_ns;
    double jitter;
    uint64_t seed;
    int64_t backoff_reset_ns;
    uint32_t half_open_probes;
    uint32_t half_open_successes;
    int64_t half_open_max_ns;
    int64_t ramp_ns;
    double ramp_start_fraction;
    int tier;
    double probe_priority_share;
    double limit_rate;
    double limit_burst;
    int limit_adaptive;
    double limit_min_fraction;
    int64_t limit_recovery_ns;
    uint32_t flap_trips;
    int64_t flap_window_ns;
    double flap_backoff;
    int dependency_action;
} trip_config;

void trip_config_init(trip_config *cfg);
int trip_config_init_tier(trip_config *cfg, int tier);
int trip_config_validate(const trip_config *cfg, char *msg, size_t cap);
int trip_config_set(trip_config *cfg, const char *name, double value);
int trip_config_get(const trip_config *cfg, const char *name, double *value);
const char *trip_config_option_name(size_t i);
int trip_config_to_json(const trip_config *cfg, char **out);
int trip_config_from_json(trip_config *cfg, const char *json);

/* ---- breaker.h --------------------------------------------------------- */
typedef enum trip_state {
    TRIP_CLOSED = 0,
    TRIP_OPEN = 1,
    TRIP_HALF_OPEN = 2,
    TRIP_FORCED_OPEN = 3,
    TRIP_FORCED_CLOSED = 4,
    TRIP_DISABLED = 5,
    TRIP_METRICS_ONLY = 6
} trip_state;

typedef enum trip_mode {
    TRIP_MODE_NORMAL = 0,
    TRIP_MODE_FORCED_OPEN = 3,
    TRIP_MODE_FORCED_CLOSED = 4,
    TRIP_MODE_DISABLED = 5,
    TRIP_MODE_METRICS_ONLY = 6
} trip_mode;

typedef enum trip_decision {
    TRIP_PASS = 0,
    TRIP_REJECTED = 1,
    TRIP_LIMITED = 2
} trip_decision;

typedef enum trip_outcome {
    TRIP_SUCCESS = 0,
    TRIP_FAILURE = 1,
    TRIP_TIMEOUT = 2,
    TRIP_IGNORED = 3
} trip_outcome;

typedef enum trip_rule {
    TRIP_RULE_NONE = 0,
    TRIP_RULE_CONSECUTIVE_FAILURES = 1,
    TRIP_RULE_FAILURE_RATE = 2,
    TRIP_RULE_SLOW_CALL_RATE = 3,
    TRIP_RULE_LATENCY_PERCENTILE = 4,
    TRIP_RULE_EWMA_FAILURE_RATE = 5,
    TRIP_RULE_ANOMALY_FAILURE_RATE = 6,
    TRIP_RULE_ANOMALY_LATENCY = 7,
    TRIP_RULE_BINOMIAL_TAIL = 8,
    TRIP_RULE_CONSECUTIVE_TIMEOUTS = 9,
    TRIP_RULE_HALF_OPEN_FAILURE = 10,
    TRIP_RULE_HALF_OPEN_SUCCESS = 11,
    TRIP_RULE_OPEN_ELAPSED = 12,
    TRIP_RULE_MANUAL = 13,
    TRIP_RULE_DEPENDENCY = 14,
    TRIP_RULE_HEALTH_SIGNAL = 15,
    TRIP_RULE_HALF_OPEN_TIMEOUT = 16,
    TRIP_RULE_COUNT_ = 17
} trip_rule;

const char *trip_rule_name(int rule);
const char *trip_state_name(int state);
const char *trip_outcome_name(int outcome);
const char *trip_decision_name(int decision);

typedef struct trip_reason {
    int rule;
    double score;
    double threshold;
    double baseline;
    int64_t samples;
    int64_t wall_ns;
} trip_reason;

typedef struct trip_ticket {
    int64_t start_ns;
    uint64_t generation;
    int decision;
    int state;
    uint32_t flags;
    uint32_t stripe;
} trip_ticket;

typedef struct trip_snapshot {
    int state;
    int machine_state;
    uint64_t generation;
    int64_t calls, successes, failures, timeouts, ignored, slow;
    int64_t rejected, limited, late, in_flight;
    int64_t window_calls, window_failures, window_slow;
    double window_failure_rate, window_slow_rate;
    double p50_s, p90_s, p95_s, p99_s, p999_s;
    uint32_t consecutive_failures, consecutive_timeouts;
    uint32_t trips;
    int64_t open_until_ns;
    int64_t ns_until_half_open;
    uint32_t half_open_in_flight, half_open_successes;
    double ramp_fraction;
    trip_reason last_trip;
    int64_t transitions;
    int64_t store_dropped;
    int store_status;
    int flapping;
    int shed;
    double limit_fraction;
    double weighted_failures;
} trip_snapshot;

typedef struct trip_transition {
    const char *breaker;
    int from, to;
    trip_reason reason;
    int64_t mono_ns;
    uint64_t generation;
} trip_transition;

typedef struct trip_breaker trip_breaker;

typedef enum trip_event_kind {
    TRIP_EVENT_TRANSITION = 1,
    TRIP_EVENT_REJECTION = 2
} trip_event_kind;

typedef void (*trip_listener_fn)(int kind, const trip_transition *t,
                                 void *user);

int trip_breaker_new(const char *name, const trip_config *cfg,
                     trip_clock *clock, trip_breaker **out);
void trip_breaker_free(trip_breaker *b);
const char *trip_breaker_name(const trip_breaker *b);
int trip_allow(trip_breaker *b, trip_ticket *ticket);
int trip_allow_priority(trip_breaker *b, trip_ticket *ticket, int priority);
int trip_record(trip_breaker *b, const trip_ticket *ticket, int outcome);
int trip_record_latency(trip_breaker *b, const trip_ticket *ticket,
                        int outcome, double latency_s);
int trip_record_weighted(trip_breaker *b, const trip_ticket *ticket,
                         int outcome, double latency_s, double weight);
int trip_breaker_add_dependency(trip_breaker *b, trip_breaker *needed);
int trip_breaker_add_signal(trip_breaker *b, const char *name,
                            double threshold, double z, int64_t duration_ns,
                            int *id);
int trip_breaker_signal(trip_breaker *b, int id, double value);
int trip_breaker_signal_get(trip_breaker *b, int id, double *value,
                            double *mean, double *sd);
int trip_breaker_state(const trip_breaker *b);
int trip_snapshot_get(trip_breaker *b, trip_snapshot *snap);
int trip_breaker_set_mode(trip_breaker *b, int mode);
int trip_breaker_reconfigure(trip_breaker *b, const trip_config *cfg);
int trip_breaker_config(trip_breaker *b, trip_config *cfg);
int trip_breaker_add_listener(trip_breaker *b, trip_listener_fn fn,
                              void *user, int *id);
int trip_breaker_remove_listener(trip_breaker *b, int id);
int trip_breaker_tick(trip_breaker *b);

/* ---- registry.h -------------------------------------------------------- */
typedef struct trip_registry trip_registry;
int trip_registry_new(trip_registry **out);
void trip_registry_free(trip_registry *r);
int trip_registry_get_or_create(trip_registry *r, const char *name,
                                const trip_config *cfg, trip_clock *clock,
                                trip_breaker **out);
int trip_registry_add(trip_registry *r, trip_breaker *b);
int trip_registry_get(trip_registry *r, const char *name, trip_breaker **out);
int trip_registry_depends(trip_registry *r, const char *name,
                          const char *needed);
size_t trip_registry_count(trip_registry *r);
trip_breaker *trip_registry_at(trip_registry *r, size_t i);
int trip_registry_health_json(trip_registry *r, char **out);
int trip_registry_prometheus(trip_registry *r, char **out);
int trip_breaker_health_json(trip_breaker *b, char **out);
int trip_breaker_prometheus(trip_breaker *b, char **out);

/* ---- store.h ----------------------------------------------------------- */
typedef struct trip_store trip_store;

typedef enum trip_sample_mode {
    TRIP_SAMPLE_ALL = 0,
    TRIP_SAMPLE_ONE_IN_N = 1,
    TRIP_SAMPLE_FAILURES = 2
} trip_sample_mode;

typedef struct trip_store_opts {
    uint32_t ring_capacity;
    int64_t flush_interval_ns;
    uint32_t batch_size;
    int synchronous;
    int64_t busy_timeout_ms;
    int sample_mode;
    uint32_t sample_n;
    double retention_days;
    double rollup_retention_days;
    int record_rejections;
    int read_only;
    const char *vfs;
    uint32_t max_pending;
} trip_store_opts;

void trip_store_opts_init(trip_store_opts *opts);
int trip_store_open(const char *path, const trip_store_opts *opts,
                    trip_store **out);
int trip_store_close(trip_store *s);
int trip_store_flush(trip_store *s);
int trip_breaker_attach(trip_breaker *b, trip_store *s);

typedef struct trip_store_status {
    int status;
    char message[256];
    int64_t accepted;
    int64_t written;
    int64_t dropped_full;
    int64_t dropped_error;
    int64_t sampled_out;
    int64_t rollups_written, transitions_written;
    int64_t batches, write_errors, retries;
    int64_t pending;
    int64_t other_dropped;
    int64_t reopens;
} trip_store_status;

int trip_store_status_get(trip_store *s, trip_store_status *st);

typedef struct trip_outcome_row {
    int64_t wall_ns;
    double latency_s;
    int outcome;
    int state;
    int decision;
    int breaker_id;
    int slow;
    double weight;
} trip_outcome_row;

typedef struct trip_rollup_row {
    int64_t minute_ns;
    int breaker_id;
    int64_t calls, successes, failures, timeouts, ignored, slow;
    int64_t rejected, limited;
    double latency_sum_s;
    double p50_s, p90_s, p95_s, p99_s, p999_s;
} trip_rollup_row;

typedef struct trip_transition_row {
    int64_t wall_ns;
    int breaker_id;
    int from, to, rule;
    double score, threshold, baseline;
    int64_t samples;
} trip_transition_row;

typedef struct trip_baseline_row {
    int breaker_id;
    int bucket;
    int metric;
    double mean, var;
    int64_t n;
    int64_t updated_ns;
    double quantile;
} trip_baseline_row;

int trip_store_breaker_id(trip_store *s, const char *name, int *id);
int trip_store_breaker_name(trip_store *s, int id, char **name);
int trip_store_read_outcomes(trip_store *s, int breaker_id, int64_t from_ns,
                             int64_t to_ns, trip_outcome_row *rows,
                             size_t cap, size_t *n, int *more);
int trip_store_read_rollups(trip_store *s, int breaker_id, int64_t from_ns,
                            int64_t to_ns, trip_rollup_row *rows, size_t cap,
                            size_t *n, int *more);
int trip_store_read_transitions(trip_store *s, int breaker_id,
                                int64_t from_ns, int64_t to_ns,
                                trip_transition_row *rows, size_t cap,
                                size_t *n, int *more);
int trip_store_read_baselines(trip_store *s, int breaker_id,
                              trip_baseline_row *rows, size_t cap, size_t *n,
                              int *more);
int trip_store_count(trip_store *s, int table, int breaker_id,
                     int64_t from_ns, int64_t to_ns, int64_t *n);

/* ---- replay.h ---------------------------------------------------------- */
typedef struct trip_event {
    int64_t wall_ns;
    double latency_s;
    int outcome;
    int priority;
} trip_event;

typedef struct trip_eval {
    int64_t wall_ns;
    int state;
    int64_t calls, failures;
    int64_t long_calls, long_failures;
    double failure_rate, slow_rate;
    double latency_q_s;
    double ewma_failure_rate;
    double ewma_latency_s;
    double baseline_rate, baseline_rate_sd;
    double baseline_latency_s;
    double baseline_log_latency_sd;
    double z_rate, z_latency;
    double binomial_tail;
    int baseline_ready;
    int fired_rule;
    double score, threshold;
    int judged;
} trip_eval;

typedef struct trip_replay_result {
    size_t n_events;
    uint8_t *decisions;
    uint8_t *states;
    size_t n_evals;
    trip_eval *evals;
    size_t n_transitions;
    trip_transition_row *transitions;
    trip_snapshot final;
} trip_replay_result;

int trip_replay(const trip_config *cfg, const trip_event *events, size_t n,
                trip_replay_result **out);
int trip_replay_arrays(const trip_config *cfg, const int64_t *wall_ns,
                       const double *latency_s, const int32_t *outcome,
                       const int32_t *priority, size_t n,
                       trip_replay_result **out);
typedef enum trip_replay_flag {
    TRIP_REPLAY_NO_EVALS = 1
} trip_replay_flag;
int trip_replay_arrays_flags(const trip_config *cfg, const int64_t *wall_ns,
                             const double *latency_s, const int32_t *outcome,
                             const int32_t *priority, size_t n, unsigned flags,
                             trip_replay_result **out);
void trip_replay_result_free(trip_replay_result *r);

typedef struct trip_detect_opts {
    int seasonality;
    double half_life_h;
    uint32_t min_samples;
    double z;
    uint32_t k, m;
    double sigma_floor;
    double effect;
    int log_transform;
} trip_detect_opts;

void trip_detect_opts_init(trip_detect_opts *o);
int trip_detect(const trip_detect_opts *o, const int64_t *wall_ns,
                const double *values, size_t n, double *scores,
                uint8_t *flags, double *baseline_mean, double *baseline_sd);

typedef struct trip_calibration {
    double anomaly_z;
    uint32_t anomaly_k, anomaly_m;
    double latency_baseline_factor;
    double binomial_p;
    double weeks;
    int64_t false_trips;
    double false_trips_per_week;
    int64_t rejected_calls;
    int64_t fixed_rule_trips;
    double max_z_rate, max_z_latency;
    int64_t candidates;
} trip_calibration;

/* @optional trip_calibrate: left out of the build while no source defines it */
int trip_calibrate(const trip_config *base, const trip_event *events,
                   size_t n, double budget_per_week, trip_config *out,
                   trip_calibration *report);
/* @end optional */

/* ---- bindings only: the Python side of the listener callback ----------- */
extern "Python" void _tripsense_listener(int kind, const trip_transition *t,
                                         void *user);
