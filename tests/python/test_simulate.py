# SPDX-License-Identifier: GPL-3.0-or-later
"""The simulator's statistics match what was asked, and incidents line up."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from tripsense.simulate import (
    DAY_S,
    DEFAULT_DEPENDENCIES,
    FAILURE,
    IGNORED,
    NS,
    SUCCESS,
    TIMEOUT,
    Dependency,
    iter_days,
    simulate,
)

DEP = Dependency("svc", peak_rate=30.0, failure_rate=0.02,
                 latency_median_s=0.1, latency_sigma=0.5, tail_prob=0.02,
                 tail_alpha=1.5, timeout_s=3.0, night_factor=0.1,
                 weekend_factor=0.4, load_failure=0.5, load_latency=0.4)


@pytest.fixture(scope="module")
def healthy():
    # Monday to Sunday, no incidents: the seasonal model alone
    return simulate(days=7, dependencies=[DEP], incidents=None, seed=3)


@pytest.fixture(scope="module")
def busy():
    # the four default dependencies at a quarter of their volume (email
    # kept at 1 call/s) with the default incidents of a week
    deps = [dataclasses.replace(d, peak_rate=max(d.peak_rate / 4, 1.0))
            for d in DEFAULT_DEPENDENCIES]
    return simulate(days=7, dependencies=deps, seed=11)


def _ns(ev):
    return ev.index.as_unit("ns").asi8


def _by_hour(ev):
    """Hour of day and day of week (Monday 0) of each call, UTC."""
    t = _ns(ev).astype("datetime64[ns]")
    days = t.astype("datetime64[D]")
    hour = (t.astype("datetime64[h]") - days).astype(np.int64)
    # numpy's weekmask counts Monday as day 0 from 1970-01-05
    dow = (days - np.datetime64("1970-01-05")).astype(np.int64) % 7
    return hour, dow


def test_start_is_a_monday():
    assert pd.Timestamp("2026-03-02").day_of_week == 0


def test_columns_types_and_order(busy):
    ev = busy.events
    assert list(ev.columns) == ["breaker", "outcome", "latency_s"]
    assert isinstance(ev.index, pd.DatetimeIndex)
    assert str(ev.index.tz) == "UTC" and ev.index.name == "time"
    assert ev["outcome"].dtype == np.int32
    assert ev["latency_s"].dtype == np.float64
    assert isinstance(ev["breaker"].dtype, pd.CategoricalDtype)
    assert list(ev["breaker"].cat.categories) == [
        "search", "payments", "inventory", "email"]
    w = _ns(ev)
    assert np.all(np.diff(w) >= 0)
    assert w[0] >= busy.start_ns and w[-1] < busy.end_ns
    assert set(np.unique(ev["outcome"])) <= {SUCCESS, FAILURE, TIMEOUT,
                                             IGNORED}
    assert np.all(np.isfinite(ev["latency_s"])) and ev["latency_s"].min() > 0


def test_breaker_order_keeps_each_breaker_in_time_order():
    sim = simulate(days=1, dependencies=2, seed=2, order="breaker")
    codes = sim.events["breaker"].cat.codes.to_numpy()
    assert np.all(np.diff(codes) >= 0)
    for name in sim.breakers:
        w = _ns(sim.for_breaker(name))
        assert len(w) > 1000 and np.all(np.diff(w) >= 0)


def test_reproducible_and_seed_matters():
    a = simulate(days=1, dependencies=2, seed=5)
    b = simulate(days=1, dependencies=2, seed=5)
    c = simulate(days=1, dependencies=2, seed=6)
    np.testing.assert_array_equal(_ns(a.events), _ns(b.events))
    for col in ("outcome", "latency_s"):
        np.testing.assert_array_equal(a.events[col].to_numpy(),
                                      b.events[col].to_numpy())
    np.testing.assert_array_equal(a.events["breaker"].cat.codes,
                                  b.events["breaker"].cat.codes)
    pd.testing.assert_frame_equal(a.incidents, b.incidents)
    assert len(a.events) != len(c.events) or not np.array_equal(
        a.events["latency_s"], c.events["latency_s"])


def test_iter_days_gives_the_same_calls_as_simulate():
    sim = simulate(days=2, dependencies=2, seed=9, order="breaker")
    chunks = list(iter_days(2, dependencies=2, seed=9))
    assert [name for name, _ in chunks] == ["search", "search",
                                            "payments", "payments"]
    for name in sim.breakers:
        want = sim.arrays(name)
        got = {k: np.concatenate([a[k] for n, a in chunks if n == name])
               for k in ("wall_ns", "outcome", "latency_s")}
        for k in got:
            np.testing.assert_array_equal(got[k], want[k])


def test_volume_follows_the_day_and_the_week(healthy):
    ev = healthy.events
    hour, dow = _by_hour(ev)
    weekday_peak = np.sum((dow < 5) & (hour == 14)) / (5 * 3600)
    weekday_night = np.sum((dow < 5) & (hour == 3)) / (5 * 3600)
    weekend_peak = np.sum((dow >= 5) & (hour == 14)) / (2 * 3600)
    # gamma volume noise has mean 1; 5 hours of ~30/s: a few % of noise
    assert weekday_peak == pytest.approx(DEP.peak_rate, rel=0.07)
    assert weekday_night == pytest.approx(DEP.peak_rate * DEP.night_factor,
                                          rel=0.1)
    assert weekend_peak / weekday_peak == pytest.approx(DEP.weekend_factor,
                                                        rel=0.1)


def test_failure_rate_follows_load_and_is_overdispersed(healthy):
    ev = healthy.events
    hour, dow = _by_hour(ev)
    bad = ev["outcome"].isin([FAILURE, TIMEOUT]).to_numpy()
    fails = ev["outcome"].to_numpy() == FAILURE
    peak = (dow < 5) & (hour == 14)
    night = (dow < 5) & (hour == 3)
    # the gamma noise (mean 1) multiplies the rate per minute
    assert fails[peak].mean() == pytest.approx(DEP.failure_rate, rel=0.15)
    want_night = DEP.failure_rate * (1 - DEP.load_failure
                                     + DEP.load_failure * DEP.night_factor)
    assert fails[night].mean() == pytest.approx(want_night, rel=0.25)
    assert fails[night].mean() < 0.75 * fails[peak].mean()
    # per-minute failure counts at peak: variance well above binomial
    minute = _ns(ev)[peak] // (60 * NS)
    _, inv = np.unique(minute, return_inverse=True)
    n = np.bincount(inv)
    k = np.bincount(inv, weights=bad[peak])
    p = k.sum() / n.sum()
    dispersion = np.var(k - n * p) / np.mean(n * p * (1 - p))
    assert dispersion > 3.0  # binomial gives ~1
    # ignored client errors at their own rate
    ign = (ev["outcome"] == IGNORED).mean()
    assert ign == pytest.approx(DEP.ignored_rate, rel=0.1)


def test_latency_has_a_seasonal_median_and_a_heavy_tail(healthy):
    ev = healthy.events
    hour, dow = _by_hour(ev)
    lat = ev["latency_s"].to_numpy()
    ok = ev["outcome"].to_numpy() == SUCCESS
    peak = ok & (dow < 5) & (hour == 14)
    night = ok & (dow < 5) & (hour == 3)
    # the median of a 2% Pareto mixture sits just above the body's median
    assert np.median(lat[peak]) == pytest.approx(DEP.latency_median_s,
                                                 rel=0.1)
    want_night = DEP.latency_median_s * (1 - DEP.load_latency
                                         + DEP.load_latency * DEP.night_factor)
    assert np.median(lat[night]) == pytest.approx(want_night, rel=0.1)
    # a lognormal with sigma 0.5 has p99.9/p50 = exp(3.09*0.5) = 4.7
    q50, q999 = np.quantile(lat[peak], [0.5, 0.999])
    assert q999 / q50 > 10
    # calls that hit the timeout are timeouts, with the timeout's latency
    to = ev["outcome"].to_numpy() == TIMEOUT
    assert to.sum() > 0
    assert np.all(lat[to] == DEP.timeout_s)
    assert lat.max() <= DEP.timeout_s


def test_expected_matches_the_data(healthy):
    exp = healthy.expected("svc", freq="1h", incidents=False)
    assert isinstance(exp.index, pd.DatetimeIndex)
    assert str(exp.index.tz) == "UTC"
    ev = healthy.events
    calls = pd.Series(1, index=ev.index).resample("1h").sum() / 3600.0
    calls = calls.reindex(exp.index, fill_value=0)
    ratio = calls.to_numpy() / exp["rate"].to_numpy()
    assert np.median(np.abs(ratio - 1)) < 0.1
    assert np.corrcoef(calls, exp["rate"])[0, 1] > 0.98


def test_default_incidents_cover_every_kind_over_a_week(busy):
    inc = busy.incidents
    assert list(inc.columns) == [
        "breaker", "kind", "start", "end", "start_ns", "end_ns",
        "expect_trip", "failure_rate", "factor", "latency_factor",
        "duration_s"]
    assert set(inc["kind"]) == {"outage", "outage_timeout", "brownout",
                                "latency_creep", "slow_night", "flapping",
                                "deploy_spike"}
    assert not inc.loc[inc["kind"] == "deploy_spike", "expect_trip"].any()
    assert inc.loc[inc["kind"] != "deploy_spike", "expect_trip"].all()
    for name, g in inc.groupby("breaker"):
        g = g.sort_values("start_ns")
        assert np.all(g["start_ns"].to_numpy()[1:]
                      >= g["end_ns"].to_numpy()[:-1]), name
    assert (inc["start_ns"] >= busy.start_ns + 6 * 3600 * NS).all()
    assert (inc["end_ns"] <= busy.end_ns).all()
    spikes = inc[inc["kind"] == "deploy_spike"]
    assert (spikes["start"].dt.day_of_week < 5).all()
    assert spikes["start"].dt.hour.between(9, 17).all()
    assert (spikes["duration_s"] <= 30).all()
    nights = inc[inc["kind"] == "slow_night"]
    assert nights["start"].dt.hour.between(1, 3).all()


def _window(ev, a, b):
    w = _ns(ev)
    return ev.iloc[np.searchsorted(w, a):np.searchsorted(w, b)]


def _bad(ev):
    return ev["outcome"].isin([FAILURE, TIMEOUT]).mean()


def test_incidents_line_up_with_the_data(busy):
    checked = set()
    per_breaker = {name: busy.for_breaker(name) for name in busy.breakers}
    for inc in busy.incident_list:
        ev = per_breaker[inc.breaker]
        inside = _window(ev, inc.start_ns, inc.end_ns)
        before = _window(ev, inc.start_ns - 1800 * NS, inc.start_ns)
        if len(inside) < 30 or len(before) < 30:
            continue  # too few calls (email at night) to judge
        o = inside["outcome"].to_numpy()
        if inc.kind == "outage":
            assert np.mean(o == FAILURE) > 0.8
            assert inside["latency_s"].median() < \
                before["latency_s"].median()
        elif inc.kind == "outage_timeout":
            assert np.mean(o == TIMEOUT) > 0.8
        elif inc.kind in ("brownout", "slow_night"):
            # skip the two-minute ramp
            full = _window(ev, inc.start_ns + 120 * NS, inc.end_ns)
            assert _bad(full) > 2.5 * _bad(before)
            if inc.kind == "slow_night":
                assert full["latency_s"].median() > \
                    2.5 * before["latency_s"].median()
        elif inc.kind == "latency_creep":
            dur = inc.end_ns - inc.start_ns
            late = _window(ev, inc.start_ns + int(0.8 * dur), inc.end_ns)
            early = _window(ev, inc.start_ns, inc.start_ns + int(0.1 * dur))
            assert late["latency_s"].median() > \
                3 * before["latency_s"].median()
            assert late["latency_s"].median() > \
                2 * early["latency_s"].median()
            assert _bad(late) < 0.2  # slow, not failing
        elif inc.kind == "flapping":
            t = (_ns(inside) - inc.start_ns) / NS
            bad_phase = (t % inc.period_s) < inc.bad_s
            assert np.mean(o[bad_phase] != SUCCESS) > 0.4
            assert np.mean(np.isin(o[~bad_phase], [FAILURE, TIMEOUT])) < 0.1
        elif inc.kind == "deploy_spike":
            assert _bad(inside) > 2 * _bad(before)
        checked.add(inc.kind)
        after = _window(ev, inc.end_ns + 300 * NS, inc.end_ns + 1800 * NS)
        if len(after) > 200 and not _overlaps(busy, inc, 1800):
            assert _bad(after) < 0.2  # the incident ends
    assert {"outage", "brownout", "latency_creep", "flapping",
            "deploy_spike"} <= checked


def _overlaps(sim, inc, margin_s):
    for other in sim.incident_list:
        if other is inc or other.breaker != inc.breaker:
            continue
        if other.start_ns < inc.end_ns + margin_s * NS and \
                other.end_ns > inc.end_ns:
            return True
    return False


def test_explicit_incidents_from_dicts():
    sim = simulate(days=1, dependencies=["payments"], seed=1, incidents=[
        {"breaker": "payments", "kind": "outage", "offset_s": 14 * 3600,
         "duration_s": 600, "failure_rate": 1.0},
    ])
    inc = sim.incidents
    assert len(inc) == 1 and bool(inc["expect_trip"].iloc[0])
    assert inc["start"].iloc[0] == pd.Timestamp("2026-03-02 14:00", tz="UTC")
    ev = sim.for_breaker("payments")
    inside = _window(ev, inc["start_ns"].iloc[0], inc["end_ns"].iloc[0])
    assert len(inside) > 1000
    assert np.all(inside["outcome"].to_numpy() == FAILURE)


def test_healthy_traffic_has_no_incidents():
    sim = simulate(days=0.5, dependencies=1, incidents=None, seed=0)
    assert len(sim.incidents) == 0
    assert sim.weeks == pytest.approx(0.5 / 7)
    assert (_ns(sim.events) < sim.start_ns + DAY_S * NS // 2).all()


def test_short_spans_still_get_incidents():
    sim = simulate(days=1, dependencies=3, seed=4)
    majors = sim.incidents[sim.incidents["expect_trip"]]
    assert set(majors["breaker"]) == {"search", "payments", "inventory"}


@pytest.mark.parametrize("kwargs, exc, words", [
    ({"days": 0}, ValueError, "days must be > 0"),
    ({"days": "x"}, TypeError, "days must be a number"),
    ({"seed": -1}, ValueError, "seed must be >= 0"),
    ({"seed": 1.5}, TypeError, "seed must be an int"),
    ({"start": "2026-03-02 10:00"}, ValueError, "midnight UTC"),
    ({"order": "random"}, ValueError, "order must be"),
    ({"dependencies": 9}, ValueError, "choose 1..4"),
    ({"dependencies": ["a", "a"]}, ValueError, "unique"),
    ({"dependencies": [{"name": "a", "peak_rate": -1}]}, ValueError,
     "peak_rate=-1"),
    ({"incidents": [{"breaker": "search", "kind": "meteor",
                     "offset_s": 0, "duration_s": 5}]},
     ValueError, "unknown incident kind 'meteor'"),
    ({"incidents": [{"breaker": "nope", "kind": "outage",
                     "offset_s": 0, "duration_s": 5}]},
     ValueError, "breaker 'nope'"),
    ({"incidents": [{"breaker": "search", "kind": "outage",
                     "offset_s": 0, "duration_s": 5, "colour": 1}]},
     ValueError, "unknown incident field"),
    ({"incidents": "lots"}, ValueError, "incidents='lots'"),
])
def test_bad_arguments_are_named(kwargs, exc, words):
    args = {"days": 0.1, **kwargs}
    with pytest.raises(exc, match=words):
        simulate(**args)


def test_for_breaker_names_the_unknown_breaker(busy):
    with pytest.raises(KeyError, match="no simulated dependency 'x'"):
        busy.for_breaker("x")


def test_module_is_callable():
    import tripsense.simulate as mod

    sim = mod(days=0.1, dependencies=1, incidents=None, seed=1)
    assert len(sim.events) > 0
