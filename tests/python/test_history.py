# SPDX-License-Identifier: GPL-3.0-or-later
"""History: write through a Breaker, flush, read DataFrames back."""
import gc
import os

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

import tripsense
from conftest import EPOCH, S, Boom, boom


def _traffic(b, clock, n=300, every=0.5, latency=0.02, fail_every=0):
    """n calls, one every `every` s, each taking `latency` s on the clock."""
    fails = 0
    for i in range(n):
        clock.advance(every)
        if fail_every and i % fail_every == 0:
            fails += 1
            with pytest.raises(Boom):
                b.call(boom)
        else:
            b.call(lambda: clock.advance(latency))
    return fails


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "history.db")


def test_round_trip_counts_and_columns(db, clock):
    b = tripsense.Breaker("payments", clock=clock, history=db,
                          consecutive_failures=0, failure_rate=0)
    fails = _traffic(b, clock, n=300, fail_every=10)
    for _ in range(3):  # let every minute roll up, the last partial one too
        clock.advance(60)
        b.tick()
    b.store.flush()
    st = b.store.status()
    assert st["status"] == "TRIP_OK" and st["written"] == 300

    with tripsense.History(db) as h:
        assert h.breakers() == ["payments"]
        o = h.outcomes()
        assert list(o.columns) == ["breaker", "outcome", "latency_s", "state",
                                   "decision", "slow", "weight"]
        assert len(o) == 300
        assert isinstance(o.index, pd.DatetimeIndex) and str(o.index.tz) == "UTC"
        assert o.index.name == "time" and o.index.is_monotonic_increasing
        assert (o["outcome"] == "failure").sum() == fails
        assert (o["outcome"] == "success").sum() == 300 - fails
        assert set(o["breaker"]) == {"payments"}
        ok = o[o["outcome"] == "success"]
        assert np.allclose(ok["latency_s"], 0.02, rtol=1e-6)
        assert o.index[0] == pd.Timestamp(EPOCH + S // 2, unit="ns", tz="UTC")

        r = h.rollups("payments")
        assert list(r.columns)[:9] == ["breaker", "calls", "successes", "failures",
                                       "timeouts", "ignored", "slow", "rejected",
                                       "limited"]
        assert r["calls"].sum() == 300 and r["failures"].sum() == fails
        assert (r["successes"] + r["failures"] == r["calls"]).all()
        assert np.allclose(r["failure_rate"], r["failures"] / r["calls"])
        assert (r.index.second == 0).all()

        # a time range selects rows: the first minute only
        first = h.outcomes(start=EPOCH, end=EPOCH + 60 * S)
        cut = pd.Timestamp(EPOCH + 60 * S, unit="ns", tz="UTC")
        assert 100 < len(first) == (o.index < cut).sum() < 300
        assert first.index.max() < pd.Timestamp(EPOCH + 60 * S, unit="ns", tz="UTC")
        # and accepts datetimes
        same = h.outcomes(start=first.index[0].to_pydatetime(),
                          end=pd.Timestamp(EPOCH + 60 * S, unit="ns", tz="UTC"))
        assert len(same) == len(first)


def test_transitions_are_recorded(db, clock):
    b = tripsense.Breaker("db", clock=clock, history=db, consecutive_failures=3,
                          open_s=5, jitter=0)
    for _ in range(3):
        with pytest.raises(Boom):
            b.call(boom)
    assert b.is_open()
    clock.advance(5)
    b.call(lambda: None)
    b.store.flush()
    t = tripsense.History(db).transitions("db")
    assert list(t.columns) == ["breaker", "from_state", "to_state", "rule",
                               "score", "threshold", "baseline", "samples"]
    assert list(zip(t["from_state"], t["to_state"])) == [("closed", "open"),
                                                         ("open", "half_open")]
    assert t["rule"].iloc[0] == "consecutive_failures"
    assert t["score"].iloc[0] == 3.0


def test_two_breakers_share_one_file_and_filter(db, clock):
    a = tripsense.Breaker("a", clock=clock, history=db)
    b = tripsense.Breaker("b", clock=clock, history=db)
    assert a.store is b.store  # one Store per file per process
    _traffic(a, clock, n=10)
    _traffic(b, clock, n=4)
    a.store.flush()
    h = tripsense.History(db)
    assert sorted(h.breakers()) == ["a", "b"]
    assert len(h.outcomes("a")) == 10 and len(h.outcomes("b")) == 4
    assert len(h.outcomes()) == 14
    with pytest.raises(tripsense.NotFoundError, match="no breaker named 'c'"):
        h.outcomes("c")


def test_empty_frames_keep_their_columns(db, clock):
    tripsense.Breaker("quiet", clock=clock, history=db).store.flush()
    h = tripsense.History(db)
    for frame in (h.outcomes(), h.rollups(), h.transitions(), h.baselines()):
        assert len(frame) == 0 and len(frame.columns) >= 7
        assert isinstance(frame.index, pd.DatetimeIndex)


def test_paging_reads_every_row(tmp_path, clock):
    db = str(tmp_path / "big.db")
    b = tripsense.Breaker("big", clock=clock, history=db)
    for i in range(5000):
        if i % 7:  # bursts of calls sharing one timestamp
            clock.advance_ns(1_000_000)
        b.call(lambda: None)
    b.store.flush()
    h = tripsense.History(db)
    whole = h.outcomes()
    h._first_cap = 100  # read in pages of ~100 rows, growing the buffer
    paged = h.outcomes()
    assert len(whole) == len(paged) == 5000
    assert (whole.index == paged.index).all()
    assert paged.index.is_monotonic_increasing


def test_missing_file_read_only_is_a_store_error(tmp_path):
    with pytest.raises(tripsense.StoreError, match="does not exist"):
        tripsense.History(str(tmp_path / "nope.db"))


def test_corrupt_file_is_a_store_error(tmp_path):
    p = tmp_path / "bad.db"
    p.write_bytes(b"this is not a database" * 100)
    with pytest.raises(tripsense.StoreError) as ei:
        tripsense.History(str(p))
    # the file is named once: C's message names it, so no prefix repeats it
    assert isinstance(ei.value, OSError) and str(ei.value).count("bad.db") == 1
    with pytest.raises(tripsense.StoreError) as ei:
        tripsense.Store(str(p))
    assert str(ei.value).count("bad.db") == 1
    with pytest.raises(tripsense.StoreError) as ei:
        tripsense.Store(str(tmp_path / "no" / "such" / "dir.db"))
    assert str(ei.value).count("dir.db") == 1


def test_store_options_are_validated(tmp_path):
    with pytest.raises(tripsense.InvalidConfigError, match="unknown store option"):
        tripsense.Store(str(tmp_path / "x.db"), flush_every=1)
    with pytest.raises(tripsense.InvalidConfigError, match="sample_mode"):
        tripsense.Store(str(tmp_path / "x.db"), sample_mode="some")
    with pytest.raises(tripsense.InvalidConfigError, match="sample_mode"):
        tripsense.Store(str(tmp_path / "x.db"), sample_mode=None)


def test_time_bounds_outside_int64_are_invalid(db):
    tripsense.Store(db).close()
    with tripsense.History(db) as h:
        with pytest.raises(tripsense.InvalidConfigError, match="end: .* int64"):
            h.outcomes(end=2 ** 70)


def test_read_only_history_cannot_take_a_breaker(db, clock):
    tripsense.Store(db).close()
    h = tripsense.History(db)
    with pytest.raises(tripsense.InvalidConfigError, match="read-only"):
        tripsense.Breaker("w", clock=clock, history=h)


def test_closing_a_store_detaches_its_breakers(db, clock):
    s = tripsense.Store(db)
    b = tripsense.Breaker("d", clock=clock, history=s)
    s.close()
    s.close()
    assert b.call(lambda: 5) == 5  # keeps deciding in memory
    with pytest.raises(tripsense.TripsenseError, match="closed"):
        s.flush()


def test_gc_closes_store_after_breakers(db, clock):
    b = tripsense.Breaker("g", clock=clock, history=db)
    _traffic(b, clock, n=5)
    del b
    gc.collect()
    assert len(tripsense.History(db).outcomes()) == 5  # closed = flushed


def test_events_feed_replay(db, clock):
    b = tripsense.Breaker("ev", clock=clock, history=db, consecutive_failures=0,
                          failure_rate=0)
    _traffic(b, clock, n=50, fail_every=5)
    b.store.flush()
    ev = tripsense.History(db).events("ev")
    assert list(ev.columns) == ["outcome", "latency_s"] and len(ev) == 50
    r = tripsense.replay(ev, consecutive_failures=0, failure_rate=0)
    assert (r.decisions["decision"] == "pass").all()
    assert r.final.failures == 10


def test_categorical_codes_out_of_range_become_missing():
    from tripsense.history import _cat

    c = _cat(np.array([0, 2, 3, -1, 300], dtype=np.int64), ["a", "b", "c"])
    assert list(c.astype(object)[:2]) == ["a", "c"]
    assert c.isna().tolist() == [False, False, True, True, True]


def test_rows_are_flushed_at_interpreter_exit(tmp_path):
    import subprocess
    import sys

    db = tmp_path / "exit.db"
    code = (
        "import tripsense\n"
        f"s = tripsense.Store({str(db)!r}, flush_interval_s=600, batch_size=100000)\n"
        "b = tripsense.Breaker('exit', history=s, consecutive_failures=0,"
        " failure_rate=0)\n"
        "for _ in range(500): b.call(lambda: None)\n"
    )  # no flush, no close, a writer told to wait 10 minutes: exit must commit
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert len(tripsense.History(str(db)).outcomes()) == 500


def test_exit_with_live_handles_is_clean(tmp_path):
    import subprocess
    import sys

    db = str(tmp_path / "clean.db")
    code = (
        "import tripsense\n"
        "reg = tripsense.default_registry()\n"
        f"a = reg.get_or_create('a', history={db!r})\n"
        "import time; clock = tripsense.ManualClock(wall_offset_ns=time.time_ns())\n"
        f"b = tripsense.Breaker('b', history={db!r}, clock=clock)\n"
        "a.call(lambda: 1); b.call(lambda: 1)\n"
        "b.add_listener(lambda ev: None)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Exception ignored" not in out.stderr, out.stderr
    assert len(tripsense.History(db).outcomes()) == 2


def test_paging_grows_past_a_burst_sharing_one_timestamp(tmp_path, clock):
    # 250 rows with one timestamp cannot be split across pages: the reader
    # must grow its buffer (TRIP_ERANGE) and never write past it
    db = str(tmp_path / "burst.db")
    b = tripsense.Breaker("burst", clock=clock, history=db)
    for burst in range(4):
        clock.advance(1)
        for _ in range(250):
            b.call(lambda: None)
    b.store.flush()
    h = tripsense.History(db)
    h._first_cap = 100
    o = h.outcomes()
    assert len(o) == 1000 and o.index.nunique() == 4


def test_baselines_name_their_quantile(tmp_path):
    """Rows of an extra latency quantile (log_q, inv_n_q) say which one
    they were learned for; the other metrics' rows say NaN."""
    from tripsense.demo import live_run
    from tripsense.simulate import simulate
    sim = simulate(days=0.05, dependencies=[{"name": "svc", "peak_rate": 10.0}],
                   seed=3, incidents=[])
    path = str(tmp_path / "q.db")
    live_run(sim, path, config={"latency_quantile": 0.9})
    with tripsense.History(path) as h:
        base = h.baselines("svc")
    assert list(base.columns) == ["breaker", "bucket", "metric", "mean", "var",
                                  "sd", "n", "quantile"]
    extra = base["metric"].isin(["log_q", "inv_n_q"])
    assert extra.sum() >= 2 and (base.loc[extra, "quantile"] == 0.9).all()
    assert base.loc[~extra, "quantile"].isna().all() and (~extra).sum() >= 2
