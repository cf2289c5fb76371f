# SPDX-License-Identifier: GPL-3.0-or-later
"""replay(), detect() and calibrate() through the C bulk API."""
from pathlib import Path

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

import tripsense
from conftest import EPOCH, S

DATA = Path(__file__).resolve().parents[1] / "data"
CFG = dict(consecutive_failures=0, failure_rate=0.5, min_calls=10, open_s=5,
           jitter=0.2, seed=42, half_open_successes=3, bucket_s=1)


def _events(n=20000, seed=1):
    """Calls every 10-30 ms with two outages of 100% / 70% failures."""
    rng = np.random.default_rng(seed)
    t = EPOCH + np.cumsum(rng.integers(10, 30, n)) * 1_000_000
    p = np.full(n, 0.02)
    p[5000:6000] = 1.0
    p[12000:13500] = 0.7
    outcome = (rng.random(n) < p).astype(np.int32)
    outcome[rng.random(n) < 0.01] = 2  # timeouts
    lat = rng.lognormal(np.log(0.02), 0.3, n)
    return t, outcome, lat


def _frame(t, outcome, lat):
    idx = pd.DatetimeIndex(t.view("datetime64[ns]")).tz_localize("UTC")
    names = np.array(["success", "failure", "timeout", "ignored"])[outcome]
    return pd.DataFrame({"outcome": names, "latency_s": lat}, index=idx)


def _live(t, outcome, lat, **cfg):
    """The same events through a live Breaker on a manual clock."""
    clock = tripsense.ManualClock(start_ns=int(t[0]), wall_offset_ns=0)
    b = tripsense.Breaker("live", clock=clock, **cfg)
    trans = []
    b.add_listener(lambda ev: trans.append((ev.from_state, ev.to_state,
                                            ev.reason.rule)))
    names = ["success", "failure", "timeout", "ignored"]
    dec = np.zeros(len(t), dtype=np.uint8)
    for i in range(len(t)):
        clock.set_ns(int(t[i]))
        try:
            tk = b.allow()
        except tripsense.CircuitOpenError as e:
            dec[i] = 1 if e.decision == "rejected" else 2
            continue
        b.record(tk, names[outcome[i]], latency=float(lat[i]))
    return dec, trans, b.snapshot()


def test_replay_equals_a_live_run_with_the_same_seed():
    t, outcome, lat = _events()
    r = tripsense.replay(_frame(t, outcome, lat), **CFG)
    dec, trans, snap = _live(t, outcome, lat, **CFG)
    codes = r.decisions["decision"].cat.codes.to_numpy()
    assert r.trips >= 2  # the outages tripped it: the comparison means something
    assert np.array_equal(codes, dec)
    assert list(zip(r.transitions["from_state"], r.transitions["to_state"],
                    r.transitions["rule"])) == trans
    assert (r.final.calls, r.final.failures, r.final.rejected, r.final.limited) == \
        (snap.calls, snap.failures, snap.rejected, snap.limited)


def test_replay_frames_have_the_documented_columns():
    t, outcome, lat = _events(3000)
    r = tripsense.replay({"time": t, "outcome": outcome, "latency_s": lat}, **CFG)
    assert list(r.decisions.columns) == ["decision", "state", "outcome", "latency_s"]
    assert len(r.decisions) == 3000 and str(r.decisions.index.tz) == "UTC"
    assert r.decisions.index[0].value == t[0]
    ev = r.evaluations
    assert list(ev.columns) == [
        "state", "calls", "failures", "long_calls", "long_failures",
        "failure_rate", "slow_rate", "latency_q_s", "ewma_failure_rate",
        "ewma_latency_s", "baseline_rate", "baseline_rate_sd",
        "baseline_latency_s", "baseline_log_latency_sd", "z_rate", "z_latency",
        "binomial_tail", "baseline_ready", "judged", "fired_rule", "score",
        "threshold"]
    # one evaluation per 1 s bucket over the span of the events, of which
    # one a minute judged the long window
    span = (t[-1] - t[0]) / S
    assert abs(len(ev) - span) <= 2
    assert abs(int(ev["judged"].sum()) - span / 60) <= 2
    assert ev.index.is_monotonic_increasing
    assert r.config["seed"] == 42 and r.config["open_s"] == 5.0


def test_replay_accepts_config_from_a_breaker_and_keywords():
    t, outcome, lat = _events(3000)
    b = tripsense.Breaker("src", **CFG)
    r1 = tripsense.replay(_frame(t, outcome, lat), b)
    r2 = tripsense.replay(_frame(t, outcome, lat), b, open_s=50)
    assert r1.config["open_s"] == 5.0 and r2.config["open_s"] == 50.0


def test_replay_bad_input_names_the_problem():
    t, outcome, lat = _events(100)
    with pytest.raises(tripsense.InvalidConfigError, match="outcome"):
        tripsense.replay({"time": t, "outcome": np.full(100, 9), "latency_s": lat})
    bad = lat.copy()
    bad[7] = np.nan
    with pytest.raises(tripsense.InvalidConfigError, match="event 7"):
        tripsense.replay({"time": t, "outcome": outcome, "latency_s": bad})
    back = t.copy()
    back[50] = back[10]
    with pytest.raises(tripsense.InvalidConfigError, match="event 50"):
        tripsense.replay({"time": back, "outcome": outcome, "latency_s": lat})
    with pytest.raises(tripsense.InvalidConfigError, match="latency_s"):
        tripsense.replay({"time": t, "outcome": outcome})
    with pytest.raises(tripsense.InvalidConfigError, match="failure_rate"):
        tripsense.replay({"time": t, "outcome": outcome, "latency_s": lat},
                         failure_rate=2)
    with pytest.raises(tripsense.InvalidConfigError):
        tripsense.replay([1, 2, 3])
    with pytest.raises(tripsense.InvalidConfigError,
                       match=r"need a 'time' column \(or 'wall_ns'\)"):
        tripsense.replay({"outcome": outcome, "latency_s": lat})
    with pytest.raises(tripsense.InvalidConfigError, match="DatetimeIndex"):
        tripsense.replay(pd.DataFrame({"outcome": outcome, "latency_s": lat}))


def test_replay_takes_wall_ns_for_time():
    # as History and Simulation.arrays name int64 nanoseconds
    t, outcome, lat = _events(300)
    a = tripsense.replay({"time": t, "outcome": outcome, "latency_s": lat})
    b = tripsense.replay({"wall_ns": t, "outcome": outcome, "latency_s": lat})
    pd.testing.assert_frame_equal(a.decisions, b.decisions)
    # priorities are checked before the int32 cast, which would wrap them
    for p, i in ((2 ** 33, 3), (np.nan, 4), (-1, 5), (7.5, 6)):
        prio = np.zeros(100)
        prio[i] = p
        with pytest.raises(tripsense.InvalidConfigError,
                           match=f"event {i}: priority .* 0..255"):
            tripsense.replay({"time": t, "outcome": outcome, "latency_s": lat,
                              "priority": prio})


def test_replay_checks_outcome_codes_before_narrowing_them():
    t, outcome, lat = _events(100)
    wide = outcome.astype(np.int64)
    wide[3] = 2**32 + 1  # int32 would wrap it to 1, a failure
    with pytest.raises(tripsense.InvalidConfigError, match="event 3"):
        tripsense.replay({"time": t, "outcome": wide, "latency_s": lat})
    inf = lat.copy()
    inf[5] = np.inf
    with pytest.raises(tripsense.InvalidConfigError, match="event 5"):
        tripsense.replay({"time": t, "outcome": outcome, "latency_s": inf})


def test_replay_huge_latencies_are_refused_without_a_numpy_warning():
    # their sum overflows to inf; that is a quick check's false alarm, not
    # the caller's problem to be warned of
    import warnings
    t = EPOCH + np.arange(3, dtype=np.int64) * S
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(tripsense.InvalidConfigError, match="latency"):
            tripsense.replay({"time": t, "outcome": np.zeros(3, np.int32),
                              "latency_s": np.array([1e308, 1e308, 0.0])})


def test_replay_frames_do_not_share_the_callers_arrays():
    t, outcome, lat = _events(500)
    r = tripsense.replay({"time": t, "outcome": outcome, "latency_s": lat}, **CFG)
    before = r.decisions.copy()
    t += 1
    lat[:] = 9.0
    outcome[:] = 3
    pd.testing.assert_frame_equal(r.decisions, before)


def test_replay_of_nothing_is_empty():
    r = tripsense.replay({"time": np.zeros(0, np.int64), "outcome": np.zeros(0),
                          "latency_s": np.zeros(0)})
    assert len(r.decisions) == 0 and r.trips == 0


def _golden_series():
    rows = np.loadtxt(DATA / "detect_series.txt", comments="#",
                      dtype=np.float64)
    raw = [ln.split() for ln in (DATA / "detect_series.txt").read_text().splitlines()
           if ln and not ln.startswith("#")]
    t = np.array([int(r[0]) for r in raw], dtype=np.int64)
    return t, rows[:, 1], rows[:, 2].astype(int)


@pytest.mark.parametrize("log", [True, False])
def test_detect_flags_the_golden_series_like_the_c_test(log):
    # the same series and options as tests/c/test_detect.c
    t, v, label = _golden_series()
    s = pd.Series(v, index=pd.DatetimeIndex(t.view("datetime64[ns]")).tz_localize("UTC"))
    d = tripsense.detect(s, seasonality="hour_of_day", log=log, effect=1.5,
                         sigma_floor=0.02 if log else 2.0)
    assert list(d.columns) == ["value", "score", "flag", "baseline_mean", "baseline_sd"]
    flags = d["flag"].to_numpy()
    starts = np.flatnonzero((label == 1) & (np.r_[0, label[:-1]] == 0))
    assert len(starts) == 4
    for i in starts:
        assert flags[i + 2] and d["score"].iloc[i] >= 6.0
    assert not (flags & (label == 0)).any()
    assert np.isnan(d["score"].iloc[0])


def test_detect_validates():
    with pytest.raises(tripsense.InvalidConfigError, match="DatetimeIndex"):
        tripsense.detect([1.0, 2.0])
    with pytest.raises(tripsense.InvalidConfigError, match="seasonality"):
        tripsense.detect([1.0], time=[EPOCH], seasonality="weekly")
    with pytest.raises(tripsense.InvalidConfigError):
        tripsense.detect([1.0, -1.0], time=[EPOCH, EPOCH + S], log=True)
    with pytest.raises(tripsense.InvalidConfigError, match="min_samples must be >= 2"):
        tripsense.detect([1.0, 2.0], time=[EPOCH, EPOCH + S], min_samples=1)


@pytest.mark.skipif(not hasattr(tripsense._lib, "trip_calibrate"),
                    reason="this build has no trip_calibrate")
def test_calibrate_returns_a_usable_config():
    rng = np.random.default_rng(3)
    n = 60000  # about 10 minutes of healthy traffic
    t = EPOCH + np.cumsum(rng.integers(5, 15, n)) * 1_000_000
    outcome = (rng.random(n) < 0.01).astype(np.int32)
    lat = rng.lognormal(np.log(0.02), 0.3, n)
    cal = tripsense.calibrate(_frame(t, outcome, lat), budget_per_week=1.0)
    assert cal.candidates >= 1 and cal.weeks > 0
    assert cal.config["anomaly_z"] == cal.anomaly_z
    tripsense.Breaker("calibrated", **cal.config)  # a valid config
    with pytest.raises(tripsense.InvalidConfigError, match="budget"):
        tripsense.calibrate(_frame(t, outcome, lat), budget_per_week=0)


def test_replay_reads_iso_strings_of_varying_precision():
    t0 = pd.Timestamp("2026-03-02 12:00", tz="UTC")
    times = [(t0 + pd.Timedelta(milliseconds=100 * i)).isoformat() for i in range(50)]
    df = pd.DataFrame({"time": times, "outcome": ["success"] * 50, "latency_s": 0.01})
    r = tripsense.replay(df)
    assert r.decisions.index[0] == t0 and r.decisions.index[1] == t0 + pd.Timedelta("100ms")


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

_n = st.integers(min_value=0, max_value=40)


@settings(max_examples=150, deadline=None)
@given(_n.flatmap(lambda n: st.tuples(
    hnp.arrays(np.int64, n, elements=st.integers(-10, 2 ** 62)),
    hnp.arrays(np.float64, n),
    hnp.arrays(np.int32, n, elements=st.integers(-2, 5)),
    hnp.arrays(np.int32, n, elements=st.integers(-5, 300)))))
def test_replay_of_any_arrays_is_a_result_or_invalid_config_error(arrays):
    t, lat, outcome, prio = arrays
    try:
        r = tripsense.replay({"time": t, "outcome": outcome, "latency_s": lat,
                              "priority": prio})
    except tripsense.InvalidConfigError as e:
        assert str(e)
        return
    # accepted: then the input was valid and every event got a decision
    assert len(r.decisions) == len(t)
    assert (np.diff(t) >= 0).all() and (t >= 0).all()
    assert np.isfinite(lat).all() and (lat >= 0).all()


@settings(max_examples=100, deadline=None)
@given(_n.flatmap(lambda n: st.tuples(
    hnp.arrays(np.int64, n, elements=st.integers(0, 2 ** 62), unique=True).map(np.sort),
    hnp.arrays(np.float64, n))), st.booleans())
def test_detect_of_any_series_is_a_frame_or_invalid_config_error(arrays, log):
    t, v = arrays
    try:
        d = tripsense.detect(v, time=t, log=log, min_samples=2)
    except tripsense.InvalidConfigError as e:
        assert str(e)
        return
    assert len(d) == len(v)
