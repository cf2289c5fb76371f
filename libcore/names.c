/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Names of rules, states, outcomes and decisions for reports and logs. */
#include "internal.h"

const char *
trip_rule_name(int rule)
{
    static const char *names[TRIP_RULE_COUNT_] = {"none",
                                                  "consecutive_failures",
                                                  "failure_rate",
                                                  "slow_call_rate",
                                                  "latency_percentile",
                                                  "ewma_failure_rate",
                                                  "anomaly_failure_rate",
                                                  "anomaly_latency",
                                                  "binomial_tail",
                                                  "consecutive_timeouts",
                                                  "half_open_failure",
                                                  "half_open_success",
                                                  "open_elapsed",
                                                  "manual",
                                                  "dependency",
                                                  "health_signal",
                                                  "half_open_timeout"};
    return rule >= 0 && rule < TRIP_RULE_COUNT_ ? names[rule] : "unknown";
}

const char *
trip_state_name(int state)
{
    static const char *names[] = {"closed",      "open",          "half_open",
                                  "forced_open", "forced_closed", "disabled",
                                  "metrics_only"};
    return state >= 0 && state < 7 ? names[state] : "unknown";
}

const char *
trip_outcome_name(int outcome)
{
    static const char *names[] = {"success", "failure", "timeout", "ignored"};
    return outcome >= 0 && outcome < 4 ? names[outcome] : "unknown";
}

const char *
trip_decision_name(int decision)
{
    static const char *names[] = {"pass", "rejected", "limited"};
    return decision >= 0 && decision < 3 ? names[decision] : "unknown";
}
