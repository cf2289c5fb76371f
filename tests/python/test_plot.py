# SPDX-License-Identifier: GPL-3.0-or-later
"""Plot helpers: each returns a Figure drawn from real results."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import tripsense  # noqa: E402
from tripsense.demo import live_run  # noqa: E402
from tripsense.plot import (hour_of_week_band, plot_rates,  # noqa: E402
                            plot_timeline, plot_tradeoff)
from tripsense.simulate import simulate  # noqa: E402

OUTAGE = {"breaker": "svc", "kind": "outage", "offset_s": 3 * 3600,
          "duration_s": 300, "failure_rate": 1.0}


@pytest.fixture(scope="module")
def sim():
    return simulate(days=0.25, dependencies=[
        {"name": "svc", "peak_rate": 20.0, "night_factor": 0.5}],
        seed=2, incidents=[OUTAGE])


@pytest.fixture(scope="module")
def result(sim):
    return tripsense.replay(sim.for_breaker("svc")[["outcome", "latency_s"]])


@pytest.fixture(scope="module")
def history(sim, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("plot") / "h.db")
    live_run(sim, path)
    return path


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _markers(ax):
    return sum(len(c.get_offsets()) for c in ax.collections
               if isinstance(c, PathCollection))


def test_timeline_from_a_replay_marks_each_trip(result, sim):
    fig = plot_timeline(result, incidents=sim.incidents)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    tr = result.transitions
    trips = int(((tr["from_state"] == "closed")
                 & (tr["to_state"] == "open")).sum())
    assert trips >= 1
    assert _markers(ax) == trips
    labels = [t.get_text() for t in ax.texts]
    assert any("consecutive failures" in s or "failure rate" in s
               for s in labels)


def test_timeline_from_a_history_file_has_a_lane_per_breaker(history, sim):
    fig = plot_timeline(history, incidents=sim.incidents)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["svc"]
    fig2, ax2 = plt.subplots()
    assert plot_timeline(history, ax=ax2, breaker="svc") is fig2


def test_timeline_rejects_other_data():
    with pytest.raises(TypeError, match="plot_timeline needs"):
        plot_timeline(42)
    with pytest.raises(ValueError, match="from_state"):
        plot_timeline(pd.DataFrame({"x": [1]}))


def test_rates_from_rollups_with_the_saved_baseline(history, sim):
    with tripsense.History(history) as h:
        roll = h.rollups("svc")
        base = h.baselines("svc")
    fig = plot_rates(roll, base, incidents=sim.incidents, breaker="svc")
    ax_r, ax_l = fig.axes[:2]
    assert ax_l.get_yscale() == "log"
    # the observed series has one point per minute
    assert len(ax_r.lines[0].get_xdata()) == len(roll)
    # the outage is shaded: one span in each panel
    assert any(p.get_label() == "outage" for p in ax_r.patches)
    legend = [t.get_text() for t in ax_r.get_legend().get_texts()]
    assert any("seasonal baseline" in s for s in legend)


def test_rates_from_evaluations_on_one_axis(result):
    ev = result.evaluations.resample("1min").mean(numeric_only=True)
    fig, ax = plt.subplots()
    out = plot_rates(ev, ev, ax=ax)
    assert out is fig
    assert len(fig.axes) == 2  # the latency went to a twin axis


def test_rates_names_missing_columns():
    df = pd.DataFrame({"calls": [1]},
                      index=pd.DatetimeIndex(["2026-03-02"], tz="UTC"))
    with pytest.raises(ValueError, match="failure_rate"):
        plot_rates(df)
    df["failure_rate"] = 0.1
    with pytest.raises(ValueError, match="p99_s"):
        plot_rates(df)


def test_hour_of_week_band_maps_buckets_to_times():
    base = pd.DataFrame({"bucket": [0, 1, 24], "metric": ["failure_rate"] * 3,
                         "mean": [0.1, 0.2, 0.3], "sd": [0.01, 0.02, 0.03]})
    idx = pd.DatetimeIndex(["2026-03-02 00:30", "2026-03-02 01:10",
                            "2026-03-03 00:05", "2026-03-03 05:00"], tz="UTC")
    mean, sd = hour_of_week_band(idx, base, "failure_rate")
    assert mean[:3].tolist() == [0.1, 0.2, 0.3]  # Monday 0h, 1h, Tuesday 0h
    assert np.isnan(mean[3]) and sd[1] == 0.02


def test_tradeoff_marks_the_recommended_candidate(sim):
    df = tripsense.tune(sim, {"failure_rate": [0.2, 0.5],
                              "anomaly_z": [3.0, 6.0]})
    fig = plot_tradeoff(df, label=["failure_rate", "anomaly_z"])
    ax = fig.axes[0]
    rec = df[df["recommended"]].iloc[0]
    stars = [c for c in ax.collections if isinstance(c, PathCollection)
             and c.get_label() == "recommended"]
    assert len(stars) == 1
    x, y = stars[0].get_offsets()[0]
    assert x == pytest.approx(rec["false_trips_per_week"])
    assert y == pytest.approx(rec["detection_delay_s"])
    assert any(line.get_label().startswith("budget") for line in ax.lines)
    with pytest.raises(ValueError, match="missed"):
        plot_tradeoff(pd.DataFrame({"false_trips_per_week": [1],
                                    "detection_delay_s": [1]}))
