# SPDX-License-Identifier: GPL-3.0-or-later
"""The demo: a month of simulated traffic through real breakers.

``python -m tripsense.demo [--days 30] [--out demo-output] [--seed 7]``

1. Simulates ``--days`` of calls to four dependencies with seasonal
   traffic and labelled incidents (:mod:`tripsense.simulate`).
2. Drives every call through a live C breaker per dependency (tripsense
   defaults) on a manual clock set to each call's time, with the history
   written through the SQLite store to ``OUT/history.db``.
3. Replays the same calls through a fixed-threshold breaker with common
   defaults (:data:`tripsense.tune.FIXED_COMMON`), replays every dependency
   under the defaults to check that replay decides exactly as the live
   breakers did, and scores the live breakers and the fixed ones with
   :func:`tripsense.tune.score_runs`.
4. Prints the timeline of trips with their reasons, read back from the
   history file, and the comparison table; writes ``comparison.md``,
   ``comparison.csv``, ``timeline.csv``, ``incidents.csv`` and two plots
   (``demo.png``: four incidents up close; ``demo-month.png``: the month).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
import time
from typing import Any, Sequence

import numpy as np

from .simulate import DEFAULT_DEPENDENCIES, NS, Simulation, simulate
from .tune import FIXED_COMMON, Run, score_runs

__all__ = ["main", "run", "DEMO_DEPENDENCIES", "comparison_markdown"]

#: The default dependencies at the demo's volume: a month is about 45
#: million calls, which the live loop and the fixed breaker's replay handle
#: in a few minutes on two cores. (Lower volumes starve the statistical
#: rules: a 10 s window of a few calls supports no p99.)
DEMO_DEPENDENCIES = tuple(
    dataclasses.replace(d, peak_rate=r) for d, r in
    zip(DEFAULT_DEPENDENCIES, (25.0, 10.0, 6.0, 1.0)))

#: Both the live breakers and the replays use this jitter seed, so that a
#: replay decides exactly as the live breaker did (the seed defaults to one
#: drawn from the breaker's name otherwise).
SEED_CONFIG = {"seed": 1}

LABELS = ("tripsense defaults", "fixed thresholds")


def _say(quiet: bool, *args: Any) -> None:
    if not quiet:
        print(*args, flush=True)


def _fresh(path: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)


def live_run(sim: Simulation, path: str, config: dict | None = None,
             **store_opts: Any) -> dict[str, np.ndarray]:
    """Drive every simulated call through live breakers with a history.

    One :class:`tripsense.Breaker` per dependency, each on its own
    :class:`tripsense.ManualClock` set to every call's start, attached to
    one store at ``path``. The loop calls the C API directly (allow, then
    record the outcome and latency) so a month takes a minute or two, not
    the half hour the Python wrappers would.

    ``store_opts`` are :class:`tripsense.Store` options; by default raw
    rows are kept for failures, timeouts and slow calls only (rollups are
    exact either way) and nothing expires. An existing file is replaced.

    Returns the decision of every call per breaker (0 pass, 1 rejected,
    2 limited).
    """
    from . import Breaker, ManualClock, Store
    from ._lowlevel import ffi, lib

    _fresh(path)
    # failures, timeouts and slow calls as raw rows (rollups stay exact);
    # keep everything: the simulated month lies in the past
    opts = {"sample_mode": "failures", "retention_days": 0,
            "rollup_retention_days": 0, **store_opts}
    store = Store(path, **opts)
    out: dict[str, np.ndarray] = {}
    breakers = []
    try:
        for name in sim.breakers:
            a = sim.arrays(name)
            n = len(a["wall_ns"])
            clock = ManualClock(start_ns=int(a["wall_ns"][0]) if n else 0)
            b = Breaker(name, clock=clock, history=store,
                        **{**SEED_CONFIG, **(config or {})})
            breakers.append(b)
            bp, cp = b._c(), clock._ptr
            ticket = ffi.new("trip_ticket *")
            allow, record = lib.trip_allow, lib.trip_record_latency
            set_clock = lib.trip_clock_set
            dec = np.zeros(n, dtype=np.uint8)
            for i, (t, o, lat) in enumerate(zip(a["wall_ns"].tolist(),
                                                a["outcome"].tolist(),
                                                a["latency_s"].tolist())):
                set_clock(cp, t)
                d = allow(bp, ticket)
                if d == 0:
                    record(bp, ticket, o, lat)
                else:
                    dec[i] = d
            # let the last minute end, so that its rollup is written too
            set_clock(cp, max(sim.end_ns, clock.now_ns) + 61 * NS)
            b.tick()
            out[name] = dec
        store.flush()
    finally:
        for b in breakers:
            b.close()
        store.close()
    return out


def _replay_runs(sim: Simulation, config: dict | None) -> list[Run]:
    """Replay each breaker's calls under config; keep what scoring needs
    (one breaker's arrays at a time)."""
    from .tune import replay_breakers

    cfg = {**SEED_CONFIG, **(config or {})}
    return [replay_breakers({name: sim.arrays(name)}, cfg)[0]
            for name in sim.breakers]


def _live_runs(sim: Simulation, live: dict[str, np.ndarray],
               transitions: Any) -> list[Run]:
    """Runs of the live breakers: their decisions and recorded transitions."""
    from .tune import _index_ns

    runs = []
    for name in sim.breakers:
        a = sim.arrays(name)
        tr = transitions[(transitions["breaker"].astype(str) == name)
                         .to_numpy()]
        runs.append(Run(name, a["wall_ns"], a["outcome"], live[name] != 0,
                        _index_ns(tr.index), tr["from_state"].astype(str)
                        .to_numpy(), tr["to_state"].astype(str).to_numpy()))
    return runs


def _check_replay(sim: Simulation, live: dict[str, np.ndarray],
                  name: str) -> bool:
    """Replay one breaker under the defaults: same decisions as live?"""
    from .replay import _decisions

    a = sim.arrays(name)
    codes, _ = _decisions(a, dict(SEED_CONFIG))
    return bool(np.array_equal(codes, live[name]))


def _fmt_int(x: float) -> str:
    return f"{int(x):,}"


def _fmt_delay(s: float) -> str:
    if s is None or (isinstance(s, float) and math.isnan(s)):
        return "-"
    if s < 120:
        return f"{s:.0f} s"
    return f"{s / 60:.1f} min"


def comparison_markdown(table: "Any") -> str:
    """The comparison as a Markdown table (configs as columns)."""
    rows = [
        ("incidents caught", lambda r: f"{int(r.caught)} of {int(r.incidents)}"),
        ("median detection delay", lambda r: _fmt_delay(r.detection_delay_s)),
        ("false trips per week", lambda r: f"{r.false_trips_per_week:.1f}"),
        ("calls wrongly rejected", lambda r: _fmt_int(r.wrongly_rejected)),
        ("failed calls let through",
         lambda r: f"{_fmt_int(r.failed_let_through)} of "
                   f"{_fmt_int(r.failed_in_incidents)}"),
        ("deploy spikes tripped on",
         lambda r: f"{int(r.spikes_tripped)} of {int(r.spikes)}"),
    ]
    labels = list(table.index)
    out = ["| | " + " | ".join(labels) + " |",
           "| --- | " + " | ".join("---:" for _ in labels) + " |"]
    for name, f in rows:
        out.append(f"| {name} | " + " | ".join(
            f(r) for r in table.itertuples()) + " |")
    return "\n".join(out)


def _kinds_markdown(per_kind: "Any") -> str:
    labels = [c for c in per_kind.columns if c != "incidents"]
    out = ["| incident kind | incidents | " + " | ".join(labels) + " |",
           "| --- | ---: | " + " | ".join("---:" for _ in labels) + " |"]
    for kind, r in per_kind.iterrows():
        out.append(f"| {kind.replace('_', ' ')} | {int(r['incidents'])} | "
                   + " | ".join(str(r[c]) for c in labels) + " |")
    return "\n".join(out)


def _per_kind(sim: Simulation, runs_by_label: dict[str, list[Run]]) -> Any:
    import pandas as pd

    inc = sim.incidents
    rows = {}
    for kind in [k for k in pd.unique(inc["kind"]) if k != "deploy_spike"]:
        sub = inc[inc["kind"] == kind]
        row: dict[str, Any] = {"incidents": len(sub)}
        for label, runs in runs_by_label.items():
            s = score_runs(runs, sub, weeks=sim.weeks, end_ns=sim.end_ns)
            r = s.iloc[0]
            row[label] = f"{int(r['caught'])} caught, " \
                         f"{_fmt_delay(r['detection_delay_s'])}"
        rows[kind] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def _verdict(t_ns: int, breaker: str, sim: Simulation) -> str:
    for inc in sim.incident_list:
        if inc.breaker != breaker:
            continue
        if inc.start_ns <= t_ns < inc.end_ns + 120 * NS:
            what = inc.kind.replace("_", " ")
            if not inc.expect_trip:
                return f"FALSE TRIP (during a {what})"
            return f"{what}, {(t_ns - inc.start_ns) / NS:.0f} s in"
    return "FALSE TRIP"


def _timeline(path: str, sim: Simulation) -> Any:
    import pandas as pd

    from . import History

    with History(path) as h:
        tr = h.transitions()
    trips = tr[(tr["from_state"].astype(str) == "closed")
               & (tr["to_state"].astype(str) == "open")].copy()
    ns = trips.index.as_unit("ns").asi8
    trips["verdict"] = [_verdict(int(t), str(b), sim)
                        for t, b in zip(ns, trips["breaker"])]
    return trips, tr


def _print_timeline(trips: Any, quiet: bool, limit: int = 40) -> None:
    if quiet:
        return
    print(f"\nTrips recorded in the history file ({len(trips)}; "
          f"every one is in timeline.csv):")
    print(f"  {'time (UTC)':19}  {'breaker':9}  {'rule':22}  "
          f"{'score':>9}  {'limit':>9}  {'baseline':>9}  verdict")
    shown = trips if len(trips) <= limit else trips.iloc[:limit]
    for t, r in shown.iterrows():
        base = "" if (r["baseline"] is None or math.isnan(r["baseline"])) \
            else f"{r['baseline']:.3g}"
        print(f"  {t:%Y-%m-%d %H:%M:%S}  {str(r['breaker']):9}  "
              f"{str(r['rule']):22}  {r['score']:9.3g}  "
              f"{r['threshold']:9.3g}  {base:>9}  {r['verdict']}")
    if len(trips) > limit:
        print(f"  ... {len(trips) - limit} more")


def run(days: float = 30.0, out: str = "demo-output", seed: int = 7,
        quiet: bool = False, plots: bool = True,
        dependencies: Sequence[Any] | None = None) -> dict[str, Any]:
    """Run the demo; return its tables and paths (see the module doc)."""
    import pandas as pd

    t_all = time.perf_counter()
    os.makedirs(out, exist_ok=True)
    deps = tuple(dependencies) if dependencies else DEMO_DEPENDENCIES
    t0 = time.perf_counter()
    sim = simulate(days=days, dependencies=deps, seed=seed, order="breaker")
    n = len(sim.events)
    inc = sim.incidents
    _say(quiet, f"Simulated {days:g} days of calls to "
         f"{', '.join(sim.breakers)}: {n:,} calls, "
         f"{int(inc['expect_trip'].sum())} incidents a breaker should trip "
         f"on and {int((~inc['expect_trip']).sum())} deploy spikes it should "
         f"ride out ({time.perf_counter() - t0:.1f} s).")
    kinds = inc.groupby("kind").size()
    _say(quiet, "  incidents: " + ", ".join(
        f"{k.replace('_', ' ')} {v}" for k, v in kinds.items()))
    inc.drop(columns=["start_ns", "end_ns"]).to_csv(
        os.path.join(out, "incidents.csv"), index=False)

    path = os.path.join(out, "history.db")
    t0 = time.perf_counter()
    live = live_run(sim, path)
    _say(quiet, f"Drove every call through live breakers (tripsense "
         f"defaults, manual clock); history written to {path} "
         f"({os.path.getsize(path) / 1e6:.1f} MB, "
         f"{time.perf_counter() - t0:.1f} s).")

    trips, transitions = _timeline(path, sim)
    t0 = time.perf_counter()
    runs_by_label = {LABELS[0]: _live_runs(sim, live, transitions),
                     LABELS[1]: _replay_runs(sim, FIXED_COMMON)}
    # every dependency: a live breaker writing history must decide as its
    # replay does, or tuning by replay would not predict the service
    differ = [b for b in sim.breakers if not _check_replay(sim, live, b)]
    n_calls = sum(len(live[b]) for b in sim.breakers)
    _say(quiet, f"Replayed the same calls through a fixed-threshold breaker, "
         f"and every dependency again under the defaults: the replay "
         + (f"decided exactly as the live breakers on all {n_calls:,} calls"
            if not differ else
            f"DIFFERED FROM the live breaker of {', '.join(differ)}")
         + f" ({time.perf_counter() - t0:.1f} s).")

    table = pd.concat([score_runs(runs_by_label[lb], inc, weeks=sim.weeks,
                                  end_ns=sim.end_ns).rename(index={"all": lb})
                       for lb in LABELS])
    table.index.name = "config"
    per_breaker = pd.concat({lb: score_runs(runs_by_label[lb], inc,
                                            weeks=sim.weeks,
                                            end_ns=sim.end_ns,
                                            by_breaker=True)
                             for lb in LABELS}, names=["config"])
    per_kind = _per_kind(sim, runs_by_label)

    trips.to_csv(os.path.join(out, "timeline.csv"))
    _print_timeline(trips, quiet)

    md = comparison_markdown(table)
    kinds_md = _kinds_markdown(per_kind)
    table.to_csv(os.path.join(out, "comparison.csv"))
    per_breaker.to_csv(os.path.join(out, "comparison_by_breaker.csv"))
    fixed_desc = ", ".join(f"{k}={v}" for k, v in FIXED_COMMON.items())
    with open(os.path.join(out, "comparison.md"), "w") as f:
        f.write(f"Simulated {days:g} days, seed {seed}, {n:,} calls to "
                f"{len(sim.breakers)} dependencies "
                f"(`python -m tripsense.demo --days {days:g} --seed {seed}`)."
                f"\n\n{md}\n\n{kinds_md}\n\nFixed thresholds: {fixed_desc}.\n")
    _say(quiet, f"\nOn the same traffic ({sim.weeks:.1f} weeks):\n\n{md}\n\n"
         f"{kinds_md}\n")

    paths = {"history": path}
    if plots:
        t0 = time.perf_counter()
        paths.update(_plots(sim, path, transitions, out))
        _say(quiet, f"Plots: {paths['plot']}, {paths['plot_month']} "
             f"({time.perf_counter() - t0:.1f} s).")
    _say(quiet, f"Done in {time.perf_counter() - t_all:.0f} s; "
         f"everything is in {out}/.")
    return {"simulation": sim, "table": table, "per_breaker": per_breaker,
            "per_kind": per_kind, "trips": trips,
            "replay_equals_live": not differ,
            "paths": paths, "markdown": md}


# --------------------------------------------------------------------------
# Plots


def _baselines(path: str) -> Any:
    from . import History

    with History(path) as h:
        return h.baselines()


def _observed(rollups: Any, freq: str) -> Any:
    r = rollups[["calls", "failures", "timeouts", "p99_s"]]
    g = r.resample(freq)
    df = g[["calls", "failures", "timeouts"]].sum()
    df["failure_rate"] = (df["failures"] + df["timeouts"]) / \
        df["calls"].where(df["calls"] > 0)
    df["p99_s"] = g["p99_s"].median()
    return df


def _state_strip(ax: Any, transitions: Any, breaker: str, lo: Any, hi: Any
                 ) -> None:
    """Red spans where the breaker was open, amber where half-open."""
    from .plot import STATE_COLOURS

    tr = transitions[(transitions["breaker"].astype(str) == breaker)
                     .to_numpy()]
    state, since = "closed", lo
    for t, to in zip(tr.index, tr["to_state"].astype(str)):
        if state != "closed" and t > lo and since < hi:
            ax.axvspan(max(since, lo), min(t, hi),
                       color=STATE_COLOURS.get(state, "#c62828"),
                       alpha=0.9, lw=0)
        state, since = to, t
    if state != "closed":
        ax.axvspan(max(since, lo), hi, color=STATE_COLOURS.get(state),
                   alpha=0.9, lw=0)
    # a trip that reopens within seconds is thinner than a pixel: mark it
    for t, f, to in zip(tr.index, tr["from_state"].astype(str),
                        tr["to_state"].astype(str)):
        if f == "closed" and to == "open" and lo <= t <= hi:
            ax.axvline(t, color=STATE_COLOURS["open"], lw=1.2)
    ax.set_yticks([])
    ax.set_ylabel("open", rotation=0, ha="right", va="center", fontsize=8)


def _caught_after(transitions: Any, incident: Any) -> float | None:
    """Seconds from the incident's start until its breaker was open, or
    None if it never was during the incident (as score_runs counts it)."""
    from .tune import _index_ns, _open_intervals

    tr = transitions[(transitions["breaker"].astype(str)
                      == incident["breaker"]).to_numpy()]
    run = Run(incident["breaker"], np.zeros(0, np.int64),
              np.zeros(0, np.int32), np.zeros(0, bool), _index_ns(tr.index),
              tr["from_state"].astype(str).to_numpy(),
              tr["to_state"].astype(str).to_numpy())
    opened = _open_intervals(run, int(incident["end_ns"]))
    a, b = int(incident["start_ns"]), int(incident["end_ns"])
    hit = (opened[:, 0] < b) & (opened[:, 1] > a)
    if not hit.any():
        return None
    return max(0, int(opened[hit, 0].min()) - a) / NS


def _plots(sim: Simulation, path: str, transitions: Any,
           out: str) -> dict[str, str]:
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from . import History
    from .plot import plot_rates

    with History(path) as h:
        rollups = {b: h.rollups(b) for b in sim.breakers}
        baselines = h.baselines()

    # 1. four incidents up close: the kinds a fixed breaker struggles with,
    # each one the breaker caught if it caught any (the title says which)
    inc = sim.incidents
    picks = []
    for kind in ("brownout", "slow_night", "latency_creep", "outage",
                 "flapping", "outage_timeout"):
        cand = inc[(inc["kind"] == kind)]
        if not len(cand):
            continue
        delays = [_caught_after(transitions, r) for _, r in cand.iterrows()]
        hit = [i for i, d in enumerate(delays) if d is not None]
        i = hit[len(hit) // 2] if hit else len(cand) // 2
        picks.append((cand.iloc[i], delays[i]))
        if len(picks) == 4:
            break
    fig = plt.figure(figsize=(14, 3.2 * max(len(picks), 1)),
                     layout="constrained")
    grid = fig.add_gridspec(max(len(picks), 1), 1)
    for i, (r, delay) in enumerate(picks):
        b = r["breaker"]
        verdict = "missed" if delay is None else \
            f"caught after {_fmt_delay(delay)}"
        span = max(pd.Timedelta(hours=1), (r["end"] - r["start"]) * 0.6)
        lo, hi = r["start"] - span, r["end"] + span
        sub = grid[i].subgridspec(3, 1, height_ratios=[3, 3, 0.6],
                                  hspace=0.05)
        ax_r = fig.add_subplot(sub[0])
        ax_l = fig.add_subplot(sub[1], sharex=ax_r)
        ax_s = fig.add_subplot(sub[2], sharex=ax_r)
        obs = _observed(rollups[b].loc[lo:hi], "1min")
        plot_rates(obs, baselines, ax=(ax_r, ax_l), incidents=inc, breaker=b,
                   title=f"{b}: {r['kind'].replace('_', ' ')} "
                         f"({r['start']:%a %d %b %H:%M} UTC, "
                         f"{r['duration_s'] / 60:.0f} min): {verdict}")
        _state_strip(ax_s, transitions, b, lo, hi)
        ax_r.set_xlim(lo, hi)
        plt.setp(ax_r.get_xticklabels(), visible=False)
        plt.setp(ax_l.get_xticklabels(), visible=False)
    fig.suptitle("tripsense defaults on simulated traffic: failure rate and "
                 "p99 per minute against the hour-of-week baseline the "
                 "breaker learned (grey band), incidents shaded, breaker "
                 "open in red", fontsize=10)
    p1 = os.path.join(out, "demo.png")
    fig.savefig(p1, dpi=90)
    plt.close(fig)

    # 2. the whole run, 15-minute resolution
    names = sim.breakers
    fig = plt.figure(figsize=(14, 3.0 * len(names)), layout="constrained")
    grid = fig.add_gridspec(len(names), 1)
    lo, hi = (pd.Timestamp(sim.start_ns, unit="ns", tz="UTC"),
              pd.Timestamp(sim.end_ns, unit="ns", tz="UTC"))
    for i, b in enumerate(names):
        sub = grid[i].subgridspec(3, 1, height_ratios=[3, 3, 0.6],
                                  hspace=0.05)
        ax_r = fig.add_subplot(sub[0])
        ax_l = fig.add_subplot(sub[1], sharex=ax_r)
        ax_s = fig.add_subplot(sub[2], sharex=ax_r)
        obs = _observed(rollups[b], "15min")
        plot_rates(obs, baselines, ax=(ax_r, ax_l), incidents=inc,
                   breaker=b)
        _state_strip(ax_s, transitions, b, lo, hi)
        ax_r.set_xlim(lo, hi)
        plt.setp(ax_r.get_xticklabels(), visible=False)
        plt.setp(ax_l.get_xticklabels(), visible=False)
    fig.suptitle("The whole run, per 15 minutes", fontsize=10)
    p2 = os.path.join(out, "demo-month.png")
    fig.savefig(p2, dpi=80)
    plt.close(fig)
    return {"plot": p1, "plot_month": p2}


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    p = argparse.ArgumentParser(
        prog="python -m tripsense.demo",
        description="Simulate a month of calls with incidents, drive them "
                    "through tripsense breakers with a history file, and "
                    "compare against a fixed-threshold breaker.")
    p.add_argument("--days", type=float, default=30.0,
                   help="days of traffic to simulate (default 30)")
    p.add_argument("--out", default="demo-output",
                   help="output directory (default demo-output/)")
    p.add_argument("--seed", type=int, default=7, help="simulation seed")
    p.add_argument("--quiet", action="store_true", help="print nothing")
    p.add_argument("--no-plots", action="store_true",
                   help="skip the PNG plots")
    args = p.parse_args(argv)
    if not args.days > 0:
        p.error(f"--days must be > 0, got {args.days}")
    run(days=args.days, out=args.out, seed=args.seed, quiet=args.quiet,
        plots=not args.no_plots)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
