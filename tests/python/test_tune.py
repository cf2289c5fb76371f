# SPDX-License-Identifier: GPL-3.0-or-later
"""Scoring of replays against incidents, compare() and tune()."""

import numpy as np
import pandas as pd
import pytest

import tripsense
from tripsense.simulate import _index_ns, simulate
from tripsense.tune import (FIXED_COMMON, METRIC_COLUMNS, Run, compare,
                            replay_breakers, score_runs, tune)

NS = 1_000_000_000
S = 1_000_000_000  # one second in ns, for readable hand-made runs


def _run(times_s, outcomes, refused, transitions, name="b"):
    """A hand-made Run: transitions as (time_s, from, to)."""
    tr = np.array([t for t, _, _ in transitions], dtype=np.int64) * S
    return Run(name, np.asarray(times_s, dtype=np.int64) * S,
               np.asarray(outcomes, dtype=np.int32),
               np.asarray(refused, dtype=bool), tr,
               np.array([f for _, f, _ in transitions], dtype=object),
               np.array([to for _, _, to in transitions], dtype=object))


def _incidents(rows):
    return pd.DataFrame(rows, columns=["breaker", "kind", "start_ns",
                                       "end_ns", "expect_trip"])


def test_score_counts_caught_missed_delay_and_false_trips():
    # incident A 100..200 s: trip at 130 s -> caught after 30 s
    # incident B 500..600 s: no trip -> missed
    # deploy spike 800..810 s (expect no trip): trip at 805 s -> false
    # trip at 1000 s outside everything -> false
    times = np.arange(0, 1200)
    outcomes = np.zeros(1200, dtype=int)
    outcomes[100:200] = 1  # failures during A
    outcomes[500:600:2] = 1  # half the calls fail during B
    refused = np.zeros(1200, dtype=bool)
    refused[130:160] = True  # open 130..160
    refused[805:815] = True
    refused[1000:1010] = True
    trans = [(130, "closed", "open"), (135, "open", "half_open"),
             (135, "half_open", "open"), (160, "open", "half_open"),
             (161, "half_open", "closed"),
             (805, "closed", "open"), (815, "open", "closed"),
             (1000, "closed", "open"), (1010, "open", "closed")]
    inc = _incidents([("b", "brownout", 100 * S, 200 * S, True),
                      ("b", "outage", 500 * S, 600 * S, True),
                      ("b", "deploy_spike", 800 * S, 810 * S, False)])
    df = score_runs([_run(times, outcomes, refused, trans)], inc, weeks=0.5)
    r = df.loc["all"]
    assert list(df.columns) == METRIC_COLUMNS
    assert r["incidents"] == 2 and r["caught"] == 1 and r["missed"] == 1
    assert r["detection_delay_s"] == pytest.approx(30.0)
    assert r["trips"] == 3  # half_open -> open is not a new trip
    assert r["false_trips"] == 2
    assert r["false_trips_per_week"] == pytest.approx(4.0)
    assert r["spikes"] == 1 and r["spikes_tripped"] == 1
    # refused outside expect-trip windows: 805..815 and 1000..1010
    assert r["wrongly_rejected"] == 20
    assert r["rejected"] == 50
    # failures admitted inside A (100..130, 160..200) and all of B (50)
    assert r["failed_let_through"] == 30 + 40 + 50
    assert r["failed_in_incidents"] == 100 + 50


def test_score_open_before_the_incident_counts_with_zero_delay():
    times = np.arange(0, 100)
    trans = [(10, "closed", "open"), (70, "open", "closed")]
    refused = (times >= 10) & (times < 70)
    inc = _incidents([("b", "outage", 20 * S, 40 * S, True)])
    r = score_runs([_run(times, np.zeros(100), refused, trans)], inc,
                   weeks=1.0).loc["all"]
    assert r["caught"] == 1 and r["detection_delay_s"] == 0.0
    assert r["false_trips"] == 1  # it started before the incident


def test_score_grace_period_after_an_incident():
    times = np.arange(0, 400)
    trans = [(250, "closed", "open"), (260, "open", "closed")]
    inc = _incidents([("b", "brownout", 100 * S, 200 * S, True)])
    run = _run(times, np.zeros(400), np.zeros(400, bool), trans)
    assert score_runs([run], inc, weeks=1, grace_s=120).loc[
        "all", "false_trips"] == 0
    assert score_runs([run], inc, weeks=1, grace_s=10).loc[
        "all", "false_trips"] == 1


def test_score_by_breaker_and_without_incidents():
    times = np.arange(0, 10)
    a = _run(times, np.zeros(10), np.zeros(10, bool),
             [(5, "closed", "open")], name="a")
    b = _run(times, np.zeros(10), np.zeros(10, bool), [], name="b")
    df = score_runs([a, b], None, weeks=2.0, by_breaker=True)
    assert list(df.index) == ["a", "b"]
    assert df.loc["a", "false_trips"] == 1 and df.loc["b", "trips"] == 0
    assert df.loc["a", "incidents"] == 0
    assert np.isnan(df.loc["a", "detection_delay_s"])


@pytest.fixture(scope="module")
def small_sim():
    return simulate(days=2, dependencies=[{"name": "svc", "peak_rate": 5.0}],
                    seed=3, incidents=[
                        {"breaker": "svc", "kind": "outage",
                         "offset_s": 14 * 3600, "duration_s": 600,
                         "failure_rate": 0.95},
                        {"breaker": "svc", "kind": "deploy_spike",
                         "offset_s": 36 * 3600, "duration_s": 20,
                         "failure_rate": 0.1},
                    ])


def test_replay_breakers_matches_tripsense_replay(small_sim):
    runs = replay_breakers({"svc": small_sim.arrays("svc")}, {"open_s": 10})
    res = tripsense.replay(small_sim.for_breaker("svc")[
        ["outcome", "latency_s"]], open_s=10)
    assert runs[0].refused.sum() == res.rejected
    # the lean path (no frames) keeps exactly what the frames say
    np.testing.assert_array_equal(
        runs[0].refused, (res.decisions["decision"] != "pass").to_numpy())
    tr = res.transitions
    np.testing.assert_array_equal(runs[0].trans_ns, _index_ns(tr.index))
    assert list(runs[0].trans_from) == list(tr["from_state"].astype(str))
    assert list(runs[0].trans_to) == list(tr["to_state"].astype(str))
    assert len(tr) > 0 and res.rejected > 0


def test_compare_scores_each_config_on_the_same_traffic(small_sim):
    never = {"adaptive": False, "failure_rate": 0.0,
             "consecutive_failures": 0, "consecutive_timeouts": 0}
    df = compare(small_sim, {"defaults": None, "fixed": FIXED_COMMON,
                             "never trips": never})
    assert list(df.index) == ["defaults", "fixed", "never trips"]
    assert list(df.columns) == METRIC_COLUMNS
    assert (df["incidents"] == 1).all()
    assert df.loc["defaults", "caught"] == 1
    assert df.loc["fixed", "caught"] == 1
    assert df.loc["never trips", "caught"] == 0
    assert df.loc["never trips", "rejected"] == 0
    # what a breaker does not block, it lets through
    assert df.loc["never trips", "failed_let_through"] == \
        df.loc["never trips", "failed_in_incidents"]
    assert df.loc["defaults", "failed_let_through"] < \
        df.loc["never trips", "failed_let_through"]
    assert df["weeks"].tolist() == pytest.approx([2 / 7] * 3)


def test_tune_ranks_and_recommends_within_budget(small_sim):
    grid = [{"failure_rate": 0.5},
            {"adaptive": False, "failure_rate": 0.0,
             "consecutive_failures": 0, "consecutive_timeouts": 0},
            {"anomaly_z": 1.0, "anomaly_rate_effect": 1.0,
             "anomaly_k": 1, "anomaly_m": 1, "binomial_p": 0.5}]
    df = tune(small_sim, grid, false_trip_budget=1.0)
    assert len(df) == 3
    assert list(df["rank"]) == [1, 2, 3]
    assert df["recommended"].sum() == 1
    best = df[df["recommended"]].iloc[0]
    assert best["within_budget"]
    assert best["false_trips_per_week"] <= 1.0
    # the never-tripping candidate misses the outage: it cannot be first
    never = df[df["candidate"] == 1].iloc[0]
    assert never["missed"] == 1 and never["rank"] > best["rank"]
    # the hair-trigger candidate blows the budget: ranked after those within
    trigger = df[df["candidate"] == 2].iloc[0]
    assert trigger["false_trips_per_week"] > 1.0
    assert not trigger["within_budget"]
    assert trigger["rank"] == 3
    assert df.attrs["recommended"] == grid[int(best["candidate"])]
    assert df.attrs["met_budget"] is True


def test_tune_grid_is_a_product_and_base_applies(small_sim):
    df = tune(small_sim, {"anomaly_z": [5.0, 8.0], "failure_rate": [0.3, 0.5]},
              base={"open_s": 10.0})
    assert len(df) == 4
    assert set(zip(df["anomaly_z"], df["failure_rate"])) == {
        (5.0, 0.3), (5.0, 0.5), (8.0, 0.3), (8.0, 0.5)}
    assert df.attrs["recommended"]["open_s"] == 10.0
    # sorted by the documented keys within the budget group
    within = df[df["within_budget"]]
    keys = list(zip(within["missed"], within["detection_delay_s"]))
    assert keys == sorted(keys)


def test_tune_when_nothing_meets_the_budget(small_sim):
    grid = [{"anomaly_z": 1.0, "anomaly_rate_effect": 1.0, "anomaly_k": 1,
             "anomaly_m": 1, "binomial_p": 0.5},
            {"anomaly_z": 1.5, "anomaly_rate_effect": 1.0, "anomaly_k": 1,
             "anomaly_m": 1, "binomial_p": 0.5}]
    df = tune(small_sim, grid, false_trip_budget=0.0)
    assert not df["within_budget"].any()
    assert df.attrs["met_budget"] is False
    rec = df[df["recommended"]].iloc[0]
    assert rec["false_trips_per_week"] == df["false_trips_per_week"].min()


def test_tune_on_a_plain_events_frame(small_sim):
    ev = small_sim.for_breaker("svc")[["outcome", "latency_s"]]
    df = tune(ev, {"failure_rate": [0.5]},
              incidents=small_sim.incidents)  # breaker "svc" != "replay"
    assert df.loc[0, "incidents"] == 0  # no incident names this breaker
    df2 = tune(small_sim.events, {"failure_rate": [0.5]},
               incidents=small_sim.incidents)
    assert df2.loc[0, "incidents"] == 1


@pytest.mark.parametrize("kwargs, exc, words", [
    ({"false_trip_budget": -1}, ValueError, "false_trip_budget"),
    ({"false_trip_budget": float("nan")}, ValueError, "false_trip_budget"),
    ({"grid": {}}, None, None),
    ({"grid": []}, ValueError, "empty list"),
    ({"grid": {"anomaly_z": []}}, ValueError, "grid\\['anomaly_z'\\] is empty"),
    ({"grid": {"anomaly_z": 5}}, TypeError, "must be a list"),
    ({"grid": {"no_such_option": [1]}}, tripsense.InvalidConfigError,
     "no_such_option"),
    ({"grid": {"failure_rate": [1.5]}}, tripsense.InvalidConfigError,
     "failure_rate"),
])
def test_tune_bad_arguments_are_named(small_sim, kwargs, exc, words):
    if exc is None:
        df = tune(small_sim, **kwargs)  # an empty dict: the base alone
        assert len(df) == 1
        return
    with pytest.raises(exc, match=words):
        tune(small_sim, **kwargs)


def test_tune_rejects_unknown_data():
    with pytest.raises(TypeError, match="events must be"):
        tune(42)


def test_tune_module_is_callable(small_sim):
    import tripsense.tune as mod

    df = mod(small_sim, [{"failure_rate": 0.5}])
    assert len(df) == 1


def test_tune_reads_a_history_file(small_sim, tmp_path):
    from tripsense.demo import live_run

    path = str(tmp_path / "h.db")
    live_run(small_sim, path, sample_mode="all")
    df = tune(path, {"failure_rate": [0.3, 0.5]},
              incidents=small_sim.incidents)
    assert len(df) == 2
    assert (df["incidents"] == 1).all()  # the outage of breaker 'svc'
    with tripsense.History(path) as h:
        admitted = len(h.events("svc"))
    assert (df["calls"] == admitted).all()
    with pytest.raises(tripsense.StoreError):
        tune(str(tmp_path / "missing.db"))


def test_tune_in_threads_gives_the_same_ranking(small_sim):
    grid = {"anomaly_z": [4.0, 6.0], "failure_rate": [0.3, 0.5]}
    one = tune(small_sim, grid)
    two = tune(small_sim, grid, n_jobs=2)
    pd.testing.assert_frame_equal(one, two)
    with pytest.raises(ValueError, match="n_jobs"):
        tune(small_sim, grid, n_jobs=0)


def test_in_windows_sorted_and_unsorted_agree_with_brute_force():
    from tripsense.tune import _in_windows
    rng = np.random.default_rng(5)
    for _ in range(200):
        k = int(rng.integers(1, 6))
        starts = rng.integers(0, 100, k)
        ends = starts + rng.integers(0, 30, k)  # empty windows too
        t = np.sort(rng.integers(-5, 140, int(rng.integers(0, 60))))
        t = np.concatenate([t, starts, ends])  # times on the edges
        want = np.array([any(s <= x < e for s, e in zip(starts, ends))
                         for x in t], dtype=bool)
        srt = np.sort(t)
        np.testing.assert_array_equal(
            _in_windows(srt, starts, ends),
            np.array([any(s <= x < e for s, e in zip(starts, ends))
                      for x in srt], dtype=bool))
        np.testing.assert_array_equal(_in_windows(t, starts, ends), want)
