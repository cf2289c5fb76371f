/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Calibration: the most sensitive anomaly thresholds whose replay of healthy
 * history stays within a false-trip budget per week. */
#include <math.h>
#include <string.h>

#include "adaptive_internal.h"
#include "breaker_internal.h"
#include "internal.h"

/*
 * Three families of thresholds are calibrated, each along a ladder from the
 * most to the least sensitive setting: the z limit (rate and latency
 * anomalies share it), the low-volume binomial tail probability and the
 * percentile rule's factor over the baseline. k-of-m and the effect sizes
 * are kept: they say what change is worth a trip, not how noisy the
 * traffic is (docs/algorithms.md).
 */
enum { TRIP_CAL_Z_, TRIP_CAL_P_, TRIP_CAL_F_, TRIP_CAL_FAMILIES_ };

static const double trip_cal_z_[] = {3.0, 3.5, 4.0,  4.5,  5.0,  5.5,  6.0,
                                     7.0, 8.0, 10.0, 12.0, 15.0, 20.0, 30.0};
static const double trip_cal_p_[] = {1e-2, 3e-3, 1e-3,  3e-4, 1e-4, 3e-5,
                                     1e-5, 3e-6, 1e-6,  3e-7, 1e-7, 3e-8,
                                     1e-8, 1e-9, 1e-10, 1e-12};
static const double trip_cal_f_[] = {1.5, 2.0, 2.5, 3.0,  3.5,  4.0,
                                     5.0, 6.0, 8.0, 10.0, 15.0, 20.0};
#define TRIP_CAL_LEN_(a) ((int)(sizeof(a) / sizeof(a)[0]))
#define TRIP_CAL_MAXLEN_ 16
#define TRIP_CAL_OFF_ (-1)
/* anomaly_z that no healthy window reaches: the z family "off" (0 would be
 * invalid, and the field is shared by two rules) */
#define TRIP_CAL_Z_OFF_ 1000.0

static int
trip_cal_len_(int fam)
{
    static const int len[TRIP_CAL_FAMILIES_] = {TRIP_CAL_LEN_(trip_cal_z_),
                                                TRIP_CAL_LEN_(trip_cal_p_),
                                                TRIP_CAL_LEN_(trip_cal_f_)};
    return len[fam];
}

/* Set one family's threshold to ladder rung i, or off. */
static void
trip_cal_apply_(trip_config *c, int fam, int i)
{
    int off = i == TRIP_CAL_OFF_;
    if (fam == TRIP_CAL_Z_)
        c->anomaly_z = off ? TRIP_CAL_Z_OFF_ : trip_cal_z_[i];
    else if (fam == TRIP_CAL_P_)
        c->binomial_p = off ? 0.0 : trip_cal_p_[i];
    else
        c->latency_baseline_factor = off ? 0.0 : trip_cal_f_[i];
}

/* Whether base leaves a family on (a family the user turned off stays
 * off: calibration chooses thresholds, not which rules run). */
static int
trip_cal_active_(const trip_config *base, int fam)
{
    if (!base->adaptive)
        return 0;
    if (fam == TRIP_CAL_Z_)
        return 1;
    if (fam == TRIP_CAL_P_)
        return base->binomial_p > 0;
    return base->latency_baseline_factor > 0;
}

/* ---- one replay, counting instead of storing ------------------------- */

typedef struct trip_cal_run_ {
    int64_t trips, rejected;
    int64_t stop_after; /* stop once trips exceed this (-1: never) */
    double max_z_rate, max_z_latency;
} trip_cal_run_;

static double
trip_cal_max_(double m, double x)
{
    return isfinite(x) && !(x <= m) ? x : m;
}

static void
trip_cal_eval_(void *user, const trip_eval *ev)
{
    trip_cal_run_ *r = user;
    r->max_z_rate = trip_cal_max_(r->max_z_rate, ev->z_rate);
    r->max_z_latency = trip_cal_max_(r->max_z_latency, ev->z_latency);
}

/* A trip is a transition from closed to open; half-open -> open is the same
 * incident probing again. */
static void
trip_cal_transition_(int kind, const trip_transition *t, void *user)
{
    trip_cal_run_ *r = user;
    if (kind == TRIP_EVENT_TRANSITION && t->to == TRIP_OPEN &&
        t->from == TRIP_CLOSED)
        r->trips++;
}

static inline trip__replay_ev
trip_cal_ev_(const trip_event *e)
{
    trip__replay_ev r = {e->wall_ns, e->latency_s, e->outcome, e->priority};
    return r;
}

/*
 * trip_replay()'s loop (same breaker name, so the same jitter seed, and
 * the same step for each event) without storing a decision per event and
 * an evaluation per second, which for weeks of history would take hundreds
 * of megabytes per candidate.
 */
static int
trip_cal_replay_(const trip_config *cfg, const trip_event *ev, size_t n,
                 trip_cal_run_ *r)
{
    trip_clock *clk = NULL;
    trip_breaker *b = NULL;
    r->trips = r->rejected = 0;
    r->max_z_rate = r->max_z_latency = NAN;
    int rc = trip_clock_manual_new(ev[0].wall_ns, 0, &clk);
    if (rc == TRIP_OK)
        rc = trip_breaker_new("replay", cfg, clk, &b);
    if (rc == TRIP_OK)
        rc = trip_breaker_add_listener(b, trip_cal_transition_, r, NULL);
    if (rc == TRIP_OK) {
        b->eval_hook = trip_cal_eval_;
        b->eval_hook_user = r;
        for (size_t i = 0; i < n && rc == TRIP_OK; i++) {
            if (r->stop_after >= 0 && r->trips > r->stop_after)
                break;
            /* checked as replay checks them (trip_cal_check_): a status
             * here is a bug to report, not a call to skip quietly */
            trip__replay_ev e = trip_cal_ev_(&ev[i]);
            int state, d = trip__replay_step(b, clk, &e, &state);
            if (d < 0)
                rc = d;
            else if (d != TRIP_PASS)
                r->rejected++;
        }
    }
    trip_breaker_free(b);
    trip_clock_free(clk);
    return rc;
}

/* ---- the search ------------------------------------------------------ */

typedef struct trip_cal_ {
    const trip_config *base;
    const trip_event *ev;
    size_t n;
    double allowed; /* false trips allowed over the whole history */
    int64_t floor;  /* trips with every calibrated family off */
    int rung[TRIP_CAL_FAMILIES_];
    /* solo trips of family f at rung i with the others off; -1 unknown */
    int64_t solo[TRIP_CAL_FAMILIES_][TRIP_CAL_MAXLEN_];
    int64_t candidates;
} trip_cal_;

/* Replay the configuration given by rungs (TRIP_CAL_OFF_ for off). */
static int
trip_cal_try_(trip_cal_ *c, const int *rungs, int64_t stop_after,
              trip_cal_run_ *r, trip_config *cfg_out)
{
    trip_config cfg = *c->base;
    for (int f = 0; f < TRIP_CAL_FAMILIES_; f++)
        if (trip_cal_active_(c->base, f))
            trip_cal_apply_(&cfg, f, rungs[f]);
    r->stop_after = stop_after;
    c->candidates++;
    if (cfg_out != NULL)
        *cfg_out = cfg;
    return trip_cal_replay_(&cfg, c->ev, c->n, r);
}

/* Trips of family fam alone at rung i (cached); the replay stops early once
 * the family's share is exceeded, since the count is then only compared. */
static int
trip_cal_solo_(trip_cal_ *c, int fam, int i, int64_t share, int64_t *trips)
{
    if (c->solo[fam][i] >= 0) {
        *trips = c->solo[fam][i];
        return TRIP_OK;
    }
    int rungs[TRIP_CAL_FAMILIES_] = {TRIP_CAL_OFF_, TRIP_CAL_OFF_,
                                     TRIP_CAL_OFF_};
    rungs[fam] = i;
    trip_cal_run_ r;
    int rc = trip_cal_try_(c, rungs, share, &r, NULL);
    if (rc == TRIP_OK)
        *trips = c->solo[fam][i] = r.trips;
    return rc;
}

/* The most sensitive rung of fam whose solo trips stay within share
 * (binary search: fewer trips up the ladder); the last rung if none. */
static int
trip_cal_family_(trip_cal_ *c, int fam, int64_t share)
{
    int lo = 0, hi = trip_cal_len_(fam) - 1;
    int64_t t;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        int rc = trip_cal_solo_(c, fam, mid, share, &t);
        if (rc != TRIP_OK)
            return rc;
        if (t <= share)
            hi = mid;
        else
            lo = mid + 1;
    }
    c->rung[fam] = lo;
    return TRIP_OK;
}

/* Make the family that trips most on its own one rung less sensitive;
 * 0 when every family is already at its last rung. */
static int
trip_cal_step_up_(trip_cal_ *c, int64_t share, int *rc)
{
    int best = -1;
    int64_t most = -1, t = 0;
    *rc = TRIP_OK;
    for (int f = 0; f < TRIP_CAL_FAMILIES_; f++) {
        if (!trip_cal_active_(c->base, f) || c->rung[f] >= trip_cal_len_(f) - 1)
            continue;
        *rc = trip_cal_solo_(c, f, c->rung[f], share, &t);
        if (*rc != TRIP_OK)
            return 0;
        if (t > most) {
            most = t;
            best = f;
        }
    }
    if (best < 0)
        return 0;
    c->rung[best]++;
    return 1;
}

/* Walk the families together up their ladders until the combined replay
 * meets the budget, then try each one rung more sensitive again. */
static int
trip_cal_combine_(trip_cal_ *c, int64_t share, int64_t allowed,
                  trip_cal_run_ *r, trip_config *out)
{
    int rc;
    for (;;) {
        rc = trip_cal_try_(c, c->rung, allowed, r, out);
        if (rc != TRIP_OK || r->trips <= allowed)
            break;
        if (!trip_cal_step_up_(c, share, &rc))
            return rc != TRIP_OK ? rc : TRIP_ERANGE;
    }
    for (int f = 0; rc == TRIP_OK && f < TRIP_CAL_FAMILIES_; f++) {
        if (!trip_cal_active_(c->base, f) || c->rung[f] == 0)
            continue;
        trip_cal_run_ r2;
        trip_config cfg2;
        c->rung[f]--;
        rc = trip_cal_try_(c, c->rung, allowed, &r2, &cfg2);
        if (rc == TRIP_OK && r2.trips <= allowed) {
            *r = r2;
            *out = cfg2;
        } else {
            c->rung[f]++;
        }
    }
    return rc;
}

static int
trip_cal_check_(const trip_event *ev, size_t n, double budget,
                const trip_config *out)
{
    if (out == NULL || (ev == NULL && n > 0))
        return trip__fail(TRIP_EINVAL, "trip_calibrate: %s is NULL",
                          out == NULL ? "out" : "events");
    if (n == 0)
        return trip__fail(TRIP_EINVAL, "trip_calibrate: no events: "
                                       "calibration needs healthy history");
    if (!(budget > 0) || !isfinite(budget))
        return trip__fail(TRIP_EINVAL,
                          "trip_calibrate: budget_per_week "
                          "must be finite and > 0, got %g",
                          budget);
    /* as trip_replay checks them: a time past 2^62 made the history span
     * thousands of weeks, and a latency over a year was admitted and never
     * recorded */
    for (size_t i = 0; i < n; i++) {
        trip__replay_ev e = trip_cal_ev_(&ev[i]);
        int rc = trip__replay_check("trip_calibrate", &e, i,
                                    i ? ev[i - 1].wall_ns : 0);
        if (rc != TRIP_OK)
            return rc;
    }
    if (ev[n - 1].wall_ns == ev[0].wall_ns)
        return trip__fail(TRIP_EINVAL,
                          "trip_calibrate: the history spans "
                          "no time (every event at %lld ns)",
                          (long long)ev[0].wall_ns);
    return TRIP_OK;
}

static void
trip_cal_report_(const trip_cal_ *c, const trip_config *cfg,
                 const trip_cal_run_ *r, double weeks, trip_calibration *rep)
{
    if (rep == NULL)
        return;
    memset(rep, 0, sizeof *rep);
    rep->anomaly_z = cfg->anomaly_z;
    rep->anomaly_k = cfg->anomaly_k;
    rep->anomaly_m = cfg->anomaly_m;
    rep->latency_baseline_factor = cfg->latency_baseline_factor;
    rep->binomial_p = cfg->binomial_p;
    rep->weeks = weeks;
    rep->false_trips = r->trips;
    rep->false_trips_per_week = (double)r->trips / weeks;
    rep->rejected_calls = r->rejected;
    rep->fixed_rule_trips = c->floor;
    rep->max_z_rate = r->max_z_rate;
    rep->max_z_latency = r->max_z_latency;
    rep->candidates = c->candidates;
}

/* No candidate meets the budget: replay the least-tripping one in full
 * for the report, and say why. Returns TRIP_ERANGE or a replay's error. */
static int
trip_cal_least_(trip_cal_ *c, int fams, double budget, double weeks,
                trip_cal_run_ *r, trip_config *chosen)
{
    for (int f = 0; f < TRIP_CAL_FAMILIES_; f++)
        c->rung[f] = trip_cal_len_(f) - 1;
    if (fams > 0) {
        int rc = trip_cal_try_(c, c->rung, -1, r, chosen);
        if (rc != TRIP_OK)
            return rc;
    }
    return trip__fail(TRIP_ERANGE,
                      "trip_calibrate: no candidate meets %g "
                      "false trips per week: the least tripping makes %.3g "
                      "(the fixed rules alone %.3g)",
                      budget, (double)r->trips / weeks,
                      (double)c->floor / weeks);
}

int
trip_calibrate(const trip_config *base, const trip_event *events, size_t n,
               double budget_per_week, trip_config *out,
               trip_calibration *report)
{
    trip_config def;
    int rc = trip_cal_check_(events, n, budget_per_week, out);
    if (rc != TRIP_OK)
        return rc;
    if (base == NULL) {
        trip_config_init(&def);
        base = &def;
    }
    char msg[256];
    if (trip_config_validate(base, msg, sizeof msg) != TRIP_OK)
        return trip__fail(TRIP_EINVAL, "trip_calibrate: base: %s", msg);
    trip_cal_ c = {.base = base, .ev = events, .n = n};
    memset(c.solo, 0xff, sizeof c.solo); /* -1: not replayed yet */
    double weeks = (double)(events[n - 1].wall_ns - events[0].wall_ns) /
                   (double)TRIP_WEEK_NS_;
    /* a budget beyond any count of trips allows them all (the cast of a
     * larger double is undefined) */
    double allow_d = floor(budget_per_week * weeks + 1e-9);
    int64_t allowed = allow_d < 1e15 ? (int64_t)allow_d : (int64_t)1e15;
    int off[TRIP_CAL_FAMILIES_] = {TRIP_CAL_OFF_, TRIP_CAL_OFF_, TRIP_CAL_OFF_};
    trip_cal_run_ r;
    trip_config chosen;
    /* the fixed rules alone: the floor no threshold can go below */
    rc = trip_cal_try_(&c, off, -1, &r, &chosen);
    c.floor = r.trips;
    int fams = 0;
    for (int f = 0; f < TRIP_CAL_FAMILIES_; f++)
        fams += trip_cal_active_(base, f);
    /* each family gets an equal share of what the fixed rules leave */
    int64_t share = fams ? c.floor + (allowed - c.floor) / fams : allowed;
    if (rc == TRIP_OK && c.floor > allowed)
        rc = TRIP_ERANGE;
    for (int f = 0; rc == TRIP_OK && f < TRIP_CAL_FAMILIES_; f++)
        if (trip_cal_active_(base, f))
            rc = trip_cal_family_(&c, f, share);
    if (rc == TRIP_OK && fams > 0)
        rc = trip_cal_combine_(&c, share, allowed, &r, &chosen);
    if (rc == TRIP_ERANGE)
        rc = trip_cal_least_(&c, fams, budget_per_week, weeks, &r, &chosen);
    if (rc != TRIP_OK && rc != TRIP_ERANGE)
        return rc;
    *out = chosen;
    trip_cal_report_(&c, &chosen, &r, weeks, report);
    return rc;
}
