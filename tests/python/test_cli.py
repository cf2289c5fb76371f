# SPDX-License-Identifier: GPL-3.0-or-later
"""The tripsense command line, through main([...])."""

import json

import pandas as pd
import pytest

import tripsense
from tripsense.cli import main, parse_config
from tripsense.demo import live_run
from tripsense.simulate import simulate


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """A history file written by live breakers: one outage on 'svc'."""
    sim = simulate(days=0.25, dependencies=[
        {"name": "svc", "peak_rate": 20.0, "night_factor": 0.5},
        {"name": "quiet", "peak_rate": 2.0, "night_factor": 0.5}],
        seed=2, incidents=[{"breaker": "svc", "kind": "outage",
                            "offset_s": 3 * 3600, "duration_s": 300,
                            "failure_rate": 1.0}])
    path = str(tmp_path_factory.mktemp("hist") / "h.db")
    live_run(sim, path)
    return path, sim


def test_parse_config_types():
    assert parse_config(["failure_rate=0.3", "window_calls=50",
                         "adaptive=false", "window_kind=count"]) == {
        "failure_rate": 0.3, "window_calls": 50, "adaptive": False,
        "window_kind": "count"}


def test_inspect_lists_breakers_counts_and_trips(history, capsys):
    path, sim = history
    assert main(["inspect", path]) == 0
    out = capsys.readouterr().out
    assert "2 breaker(s)" in out
    assert "\nsvc\n" in out and "\nquiet\n" in out
    with tripsense.History(path) as h:
        r = h.rollups("svc")
        trips = h.transitions("svc")
    calls = int(r["calls"].sum())
    assert f"calls          {calls:,}" in out
    n_trips = int(((trips["from_state"] == "closed")
                   & (trips["to_state"] == "open")).sum())
    assert n_trips >= 1
    assert f"trips {n_trips}" in out


@pytest.mark.parametrize("table", ["outcomes", "rollups", "transitions",
                                   "baselines"])
def test_export_csv_round_trips(history, tmp_path, table, capsys):
    path, _ = history
    out = tmp_path / f"{table}.csv"
    assert main(["export", path, "--table", table, "-o", str(out)]) == 0
    with tripsense.History(path) as h:
        want = getattr(h, table)()
    got = pd.read_csv(out)
    assert len(got) == len(want)
    assert list(got.columns) == ["time", *want.columns]
    assert f"wrote {len(want):,} {table} rows" in capsys.readouterr().out


def test_export_parquet_filtered_by_breaker(history, tmp_path):
    pytest.importorskip("pyarrow")  # the test extra installs it
    path, _ = history
    out = tmp_path / "r.parquet"
    assert main(["export", path, "--table", "rollups", "--breaker", "quiet",
                 "--format", "parquet", "-o", str(out)]) == 0
    got = pd.read_parquet(out)
    assert len(got) > 0 and set(got["breaker"].astype(str)) == {"quiet"}
    with tripsense.History(path) as h:
        want = h.rollups("quiet")
    # a round trip: index, columns, dtypes and values come back as written
    pd.testing.assert_frame_equal(got, want)


def test_export_parquet_without_pyarrow_names_the_extra(history, tmp_path,
                                                         monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import fails
    path, _ = history
    out = tmp_path / "r.parquet"
    assert main(["export", path, "--table", "rollups", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "Parquet export needs pyarrow" in err
    assert "pip install 'tripsense[parquet]'" in err
    assert not out.exists()


def test_simulate_then_replay_with_a_config(tmp_path, capsys):
    events = tmp_path / "ev.csv"
    assert main(["simulate", "--days", "0.1", "--dependencies", "2",
                 "-o", str(events)]) == 0
    df = pd.read_csv(events)
    assert list(df.columns) == ["time", "breaker", "outcome", "latency_s"]
    capsys.readouterr()
    dec = tmp_path / "dec.csv"
    assert main(["replay", str(events), "--config", "failure_rate=0.3",
                 "open_s=10", "-o", str(dec)]) == 0
    out = capsys.readouterr().out
    assert "search:" in out and "payments:" in out
    got = pd.read_csv(dec)
    assert len(got) == len(df)
    assert set(got["decision"]) <= {"pass", "rejected", "limited"}


def test_replay_trips_on_an_outage_file(tmp_path, capsys):
    t0 = pd.Timestamp("2026-03-02 12:00", tz="UTC")
    n = 2000
    df = pd.DataFrame({
        "time": [(t0 + pd.Timedelta(milliseconds=100 * i)).isoformat()
                 for i in range(n)],
        "outcome": ["success"] * 1000 + ["failure"] * 1000,
        "latency_s": 0.01,
    })
    path = tmp_path / "outage.csv"
    df.to_csv(path, index=False)
    assert main(["replay", str(path), "--config", "adaptive=false"]) == 0
    out = capsys.readouterr().out
    assert "replay: 2,000 events" in out
    assert "consecutive_failures" in out or "failure_rate" in out


def test_health_and_prometheus(history, capsys):
    path, _ = history
    assert main(["health", path]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["status"] in ("ok", "degraded", "down")
    names = [b["name"] for b in rep["breakers"]]
    assert names == ["svc", "quiet"]
    svc = rep["breakers"][0]
    assert svc["trips"] >= 1 and svc["last_trip"]["rule"]
    assert main(["prometheus", path]) == 0
    text = capsys.readouterr().out
    assert 'tripsense_state{breaker="svc"}' in text
    with tripsense.History(path) as h:
        r = h.rollups("svc")
    assert (f'tripsense_calls_total{{breaker="svc",result="failure"}} '
            f'{int(r["failures"].sum())}') in text
    assert 'tripsense_transitions_total{breaker="svc",from="closed",' \
           'to="open"' in text


@pytest.mark.parametrize("argv, words", [
    (["inspect", "/nonexistent/h.db"], "no such history file"),
    (["replay", "/nonexistent/e.csv"], "no such events file"),
    (["export", "/nonexistent/h.db", "--table", "rollups", "-o", "x.csv"],
     "no such history file"),
])
def test_missing_files_are_named(argv, words, capsys):
    assert main(argv) == 1
    assert words in capsys.readouterr().err


def test_bad_option_is_named(tmp_path, capsys):
    events = tmp_path / "ev.csv"
    main(["simulate", "--days", "0.05", "-o", str(events)])
    capsys.readouterr()
    assert main(["replay", str(events), "--config", "no_such=1"]) == 1
    assert "no_such" in capsys.readouterr().err
    assert main(["replay", str(events), "--config", "failure_rate"]) == 1
    assert "expected name=value" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["[1, 2]", '"x"', "3"])
def test_config_json_must_be_an_object(tmp_path, capsys, text):
    events = tmp_path / "ev.csv"
    events.write_text("time,outcome,latency_s\n0,success,0.01\n")
    cfg = tmp_path / "cfg.json"
    cfg.write_text(text)
    assert main(["replay", str(events), "--config-json", str(cfg)]) == 1
    assert "expected a JSON object" in capsys.readouterr().err


def test_replay_of_no_events_says_so(tmp_path, capsys):
    events = tmp_path / "ev.csv"
    events.write_text("time,outcome,latency_s,breaker\n")
    assert main(["replay", str(events)]) == 1
    assert "no events" in capsys.readouterr().err


def test_corrupt_history_is_an_error_not_a_crash(tmp_path, capsys):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not a database" * 100)
    assert main(["inspect", str(bad)]) == 1
    assert str(bad) in capsys.readouterr().err


def test_usage_errors_exit_2():
    with pytest.raises(SystemExit) as e:
        main(["export", "x.db", "--table", "nope", "-o", "y"])
    assert e.value.code == 2
