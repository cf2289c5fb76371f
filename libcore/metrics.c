/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Health JSON and Prometheus text exposition for breakers. */
#include <math.h>
#include <string.h>

#include "breaker_internal.h"
#include "metrics.h"

static const char *
trip_status_of_(const trip_snapshot *s)
{
    if (s->state == TRIP_OPEN || s->state == TRIP_FORCED_OPEN)
        return "down";
    if (s->state == TRIP_HALF_OPEN || s->ramp_fraction < 1.0 ||
        s->store_status != TRIP_OK || s->flapping || s->shed)
        return "degraded";
    return "ok";
}

static int
trip_status_rank_(const char *st)
{
    return strcmp(st, "down") == 0 ? 2 : strcmp(st, "degraded") == 0 ? 1 : 0;
}

/* "needs": [...] and "root_cause": the deepest needed breaker down. */
static void
trip_health_deps_(trip__buf *o, trip_breaker *b)
{
    trip_breaker *needs[8];
    const char *root;
    int n = trip__deps_describe(b, &root, needs, 8);
    if (n == 0)
        return;
    trip__buf_printf(o, ",\"needs\":[");
    for (int i = 0; i < n; i++) {
        if (i)
            trip__buf_printf(o, ",");
        trip__buf_json_str(o, trip_breaker_name(needs[i]));
    }
    trip__buf_printf(o, "],\"root_cause\":");
    if (root)
        trip__buf_json_str(o, root);
    else
        trip__buf_printf(o, "null");
}

static void
trip_health_one_(trip__buf *o, trip_breaker *b, const trip_snapshot *s)
{
    trip__buf_printf(o, "{\"name\":");
    trip__buf_json_str(o, b->name);
    trip__buf_printf(o,
                     ",\"state\":\"%s\",\"status\":\"%s\",\"calls\":%lld,"
                     "\"failures\":%lld,\"timeouts\":%lld,\"rejected\":%lld,"
                     "\"in_flight\":%lld,\"failure_rate\":",
                     trip_state_name(s->state), trip_status_of_(s),
                     (long long)s->calls, (long long)s->failures,
                     (long long)s->timeouts, (long long)s->rejected,
                     (long long)s->in_flight);
    trip__buf_json_num(o, s->window_failure_rate);
    trip__buf_printf(o, ",\"p99_s\":");
    trip__buf_json_num(o, s->p99_s);
    trip__buf_printf(o, ",\"seconds_until_half_open\":");
    trip__buf_json_num(o, (double)s->ns_until_half_open * 1e-9);
    trip__buf_printf(o, ",\"last_trip\":");
    if (s->last_trip.rule == TRIP_RULE_NONE) {
        trip__buf_printf(o, "null");
    } else {
        trip__buf_printf(o, "{\"rule\":\"%s\",\"score\":",
                         trip_rule_name(s->last_trip.rule));
        trip__buf_json_num(o, s->last_trip.score);
        trip__buf_printf(o, ",\"threshold\":");
        trip__buf_json_num(o, s->last_trip.threshold);
        trip__buf_printf(o, ",\"baseline\":");
        trip__buf_json_num(o, s->last_trip.baseline);
        trip__buf_printf(o, ",\"samples\":%lld,\"wall_ns\":%lld}",
                         (long long)s->last_trip.samples,
                         (long long)s->last_trip.wall_ns);
    }
    trip__buf_printf(o,
                     ",\"flapping\":%s,\"store_dropped\":%lld,"
                     "\"store_status\":\"%s\"",
                     s->flapping ? "true" : "false",
                     (long long)s->store_dropped,
                     trip_status_name(s->store_status));
    trip_health_deps_(o, b);
    trip__buf_printf(o, "}");
}

int
trip__health_json(trip_breaker **bs, size_t n, char **out)
{
    trip__buf o = {0};
    int worst = 0;
    trip__buf_printf(&o, "{\"breakers\":[");
    for (size_t i = 0; i < n; i++) {
        trip_snapshot s;
        trip_snapshot_get(bs[i], &s);
        if (i)
            trip__buf_printf(&o, ",");
        trip_health_one_(&o, bs[i], &s);
        int rank = trip_status_rank_(trip_status_of_(&s));
        worst = rank > worst ? rank : worst;
    }
    static const char *names[] = {"ok", "degraded", "down"};
    trip__buf_printf(&o, "],\"status\":\"%s\"}", names[worst]);
    return trip__buf_finish(&o, out);
}

/* A Prometheus label value: backslash, quote and newline escaped. */
static void
trip_label_(trip__buf *o, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            trip__buf_printf(o, "\\%c", *s);
        else if (*s == '\n')
            trip__buf_printf(o, "\\n");
        else
            trip__buf_printf(o, "%c", *s);
    }
}

static void
trip_prom_calls_(trip__buf *o, trip_breaker *b, const trip_snapshot *s)
{
    static const char *res[] = {"success", "failure",  "timeout",
                                "ignored", "rejected", "limited"};
    int64_t v[] = {s->successes, s->failures, s->timeouts,
                   s->ignored,   s->rejected, s->limited};
    for (int i = 0; i < 6; i++) {
        trip__buf_printf(o, "tripsense_calls_total{breaker=\"");
        trip_label_(o, b->name);
        trip__buf_printf(o, "\",result=\"%s\"} %lld\n", res[i],
                         (long long)v[i]);
    }
}

static void
trip_prom_transitions_(trip__buf *o, trip_breaker *b)
{
    for (int f = 0; f < 7; f++)
        for (int t = 0; t < 7; t++)
            for (int r = 0; r < TRIP_RULE_COUNT_; r++) {
                uint64_t c = b->transition_counts[f][t][r];
                if (c == 0)
                    continue;
                trip__buf_printf(o, "tripsense_transitions_total{breaker=\"");
                trip_label_(o, b->name);
                trip__buf_printf(o,
                                 "\",from=\"%s\",to=\"%s\",rule=\"%s\"} "
                                 "%llu\n",
                                 trip_state_name(f), trip_state_name(t),
                                 trip_rule_name(r), (unsigned long long)c);
            }
}

static void
trip_prom_histogram_(trip__buf *o, trip_breaker *b, const uint64_t *hist,
                     const trip__sums *t)
{
    static const double le[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                0.25,  0.5,    1,     2.5,  5,     10};
    uint64_t cum = 0, total = 0;
    uint32_t bin = 0;
    for (uint32_t i = 0; i < TRIP_HIST_BINS; i++)
        total += hist[i];
    for (size_t k = 0; k < sizeof le / sizeof le[0]; k++) {
        for (; bin < TRIP_HIST_BINS; bin++) {
            double lo, w;
            trip__hist_bin_range(bin, &lo, &w);
            if ((lo + w) * 1e-6 > le[k] + 1e-12)
                break;
            cum += hist[bin];
        }
        trip__buf_printf(o, "tripsense_call_latency_seconds_bucket{breaker=\"");
        trip_label_(o, b->name);
        trip__buf_printf(o, "\",le=\"%g\"} %llu\n", le[k],
                         (unsigned long long)cum);
    }
    trip__buf_printf(o, "tripsense_call_latency_seconds_bucket{breaker=\"");
    trip_label_(o, b->name);
    trip__buf_printf(o, "\",le=\"+Inf\"} %llu\n", (unsigned long long)total);
    trip__buf_printf(o, "tripsense_call_latency_seconds_sum{breaker=\"");
    trip_label_(o, b->name);
    trip__buf_printf(o, "\"} %.9g\n", t->lat_sum_s);
    trip__buf_printf(o, "tripsense_call_latency_seconds_count{breaker=\"");
    trip_label_(o, b->name);
    trip__buf_printf(o, "\"} %llu\n", (unsigned long long)total);
}

static void
trip_prom_gauge_(trip__buf *o, const char *metric, trip_breaker *b, long long v)
{
    trip__buf_printf(o, "%s{breaker=\"", metric);
    trip_label_(o, b->name);
    trip__buf_printf(o, "\"} %lld\n", v);
}

/* A sample value as the exposition format spells it: NaN, +Inf, -Inf
 * (printf's "nan" is refused by strict parsers). */
static void
trip_prom_value_(trip__buf *o, double v)
{
    if (isnan(v))
        trip__buf_printf(o, "NaN\n");
    else if (isinf(v))
        trip__buf_printf(o, "%cInf\n", v > 0 ? '+' : '-');
    else
        trip__buf_printf(o, "%.9g\n", v);
}

static void
trip_prom_signals_(trip__buf *o, trip_breaker *b)
{
    double v;
    const char *name;
    pthread_mutex_lock(&b->mu);
    for (int i = 0; (name = trip__signal_name(b, i, &v)) != NULL; i++) {
        trip__buf_printf(o, "tripsense_signal{breaker=\"");
        trip_label_(o, b->name);
        trip__buf_printf(o, "\",signal=\"");
        trip_label_(o, name);
        trip__buf_printf(o, "\"} ");
        trip_prom_value_(o, v);
    }
    pthread_mutex_unlock(&b->mu);
}

static void
trip_prom_header_(trip__buf *o, const char *name, const char *type,
                  const char *help)
{
    trip__buf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

int
trip__prometheus(trip_breaker **bs, size_t n, char **out)
{
    trip__buf o = {0};
    uint64_t *hist = trip__calloc(TRIP_HIST_BINS, sizeof *hist);
    trip_snapshot *snaps = trip__calloc(n ? n : 1, sizeof *snaps);
    if (hist == NULL || snaps == NULL) {
        trip__free(hist);
        trip__free(snaps);
        return trip__fail(TRIP_ENOMEM, "prometheus: out of memory");
    }
    for (size_t i = 0; i < n; i++)
        trip_snapshot_get(bs[i], &snaps[i]);
    trip_prom_header_(&o, "tripsense_state", "gauge",
                      "Breaker state: closed "
                      "0, open 1, half-open 2, forced-open 3, forced-closed "
                      "4, disabled 5, metrics-only 6.");
    for (size_t i = 0; i < n; i++)
        trip_prom_gauge_(&o, "tripsense_state", bs[i], snaps[i].state);
    trip_prom_header_(&o, "tripsense_calls_total", "counter",
                      "Calls by result.");
    for (size_t i = 0; i < n; i++)
        trip_prom_calls_(&o, bs[i], &snaps[i]);
    trip_prom_header_(&o, "tripsense_transitions_total", "counter",
                      "State transitions by from, to and rule.");
    for (size_t i = 0; i < n; i++) {
        pthread_mutex_lock(&bs[i]->mu);
        trip_prom_transitions_(&o, bs[i]);
        pthread_mutex_unlock(&bs[i]->mu);
    }
    trip_prom_header_(&o, "tripsense_in_flight", "gauge",
                      "Calls admitted and not yet recorded.");
    for (size_t i = 0; i < n; i++)
        trip_prom_gauge_(&o, "tripsense_in_flight", bs[i], snaps[i].in_flight);
    trip_prom_header_(&o, "tripsense_store_dropped_total", "counter",
                      "Outcome rows lost by the history store.");
    for (size_t i = 0; i < n; i++)
        trip_prom_gauge_(&o, "tripsense_store_dropped_total", bs[i],
                         snaps[i].store_dropped);
    trip_prom_header_(&o, "tripsense_flapping", "gauge",
                      "1 while the breaker opens and closes repeatedly.");
    for (size_t i = 0; i < n; i++)
        trip_prom_gauge_(&o, "tripsense_flapping", bs[i], snaps[i].flapping);
    trip_prom_header_(&o, "tripsense_signal", "gauge",
                      "Last value of each external health signal.");
    for (size_t i = 0; i < n; i++)
        trip_prom_signals_(&o, bs[i]);
    trip_prom_header_(&o, "tripsense_call_latency_seconds", "histogram",
                      "Latency of recorded calls.");
    for (size_t i = 0; i < n; i++) {
        trip__sums t;
        pthread_mutex_lock(&bs[i]->mu);
        trip__breaker_totals(bs[i], &t, hist);
        pthread_mutex_unlock(&bs[i]->mu);
        trip_prom_histogram_(&o, bs[i], hist, &t);
    }
    trip__free(hist);
    trip__free(snaps);
    return trip__buf_finish(&o, out);
}
