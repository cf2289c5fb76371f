# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``tripsense`` command line.

::

    tripsense inspect FILE
    tripsense export FILE --table outcomes|rollups|transitions|baselines
                          [--format csv|parquet] -o OUT [--breaker B]
                          [--start T] [--end T]
    tripsense replay EVENTS.csv [--config k=v ...] [--config-json F]
                     [-o DECISIONS.csv]
    tripsense health FILE        # JSON, as a registry reports it
    tripsense prometheus FILE    # Prometheus text exposition
    tripsense simulate --days D [--dependencies N] [--seed S] -o EVENTS.csv

``health`` and ``prometheus`` describe what a history file recorded: each
breaker's last recorded state and trip, and its totals from the per-minute
rollups, under the metric names of a live registry. They read the file; no
breaker is created.

Exit status: 0 on success, 1 for a tripsense error (bad file, bad option),
2 for bad usage.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Any, Sequence

__all__ = ["main", "parse_config"]

_TABLES = ("outcomes", "rollups", "transitions", "baselines")
_RESULTS = ("success", "failure", "timeout", "ignored", "rejected",
            "limited")
_STATE_CODE = {"closed": 0, "open": 1, "half_open": 2, "forced_open": 3,
               "forced_closed": 4, "disabled": 5, "metrics_only": 6}


class CliError(Exception):
    """A problem the user can fix; printed without a traceback."""


def parse_config(pairs: Sequence[str]) -> dict[str, Any]:
    """Parse ``k=v`` options: numbers, true/false, or names (enums).

    Raises
    ------
    CliError
        For an item without ``=``.
    """
    out: dict[str, Any] = {}
    for item in pairs:
        if "=" not in item:
            raise CliError(f"--config {item!r}: expected name=value")
        k, v = item.split("=", 1)
        k, v = k.strip(), v.strip()
        low = v.lower()
        if low in ("true", "false"):
            out[k] = low == "true"
            continue
        try:
            out[k] = int(v)
        except ValueError:
            try:
                out[k] = float(v)
            except ValueError:
                out[k] = v
    return out


def _history(path: str) -> Any:
    from . import History

    if not os.path.exists(path):
        raise CliError(f"{path}: no such history file")
    return History(path)


def _span(df: Any) -> str:
    if len(df) == 0:
        return "-"
    return f"{df.index.min():%Y-%m-%d %H:%M} .. {df.index.max():%Y-%m-%d %H:%M}"


def cmd_inspect(args: argparse.Namespace) -> int:
    with _history(args.file) as h:
        names = h.breakers()
        print(f"{args.file}: {len(names)} breaker(s)")
        rollups = h.rollups()
        trans = h.transitions()
        outcomes_n = {b: 0 for b in names}
        try:
            counts = h.outcomes()["breaker"].astype(str).value_counts()
            outcomes_n.update({str(k): int(v) for k, v in counts.items()})
        except MemoryError:  # pragma: no cover - huge files
            pass
        for b in names:
            r = rollups[(rollups["breaker"].astype(str) == b).to_numpy()]
            t = trans[(trans["breaker"].astype(str) == b).to_numpy()]
            trips = t[(t["from_state"].astype(str) == "closed")
                      & (t["to_state"].astype(str) == "open")]
            calls = int(r["calls"].sum()) if len(r) else 0
            bad = int((r["failures"] + r["timeouts"]).sum()) if len(r) else 0
            print(f"\n{b}")
            print(f"  span           {_span(r)} ({len(r):,} minutes)")
            print(f"  calls          {calls:,} (failure rate "
                  f"{bad / calls if calls else float('nan'):.4f}), "
                  f"rejected {int(r['rejected'].sum()) if len(r) else 0:,}")
            print(f"  outcome rows   {outcomes_n.get(b, 0):,}")
            print(f"  transitions    {len(t):,}, trips {len(trips):,}")
            if len(trips):
                rules = trips["rule"].astype(str).value_counts()
                print("  trips by rule  " + ", ".join(
                    f"{k} {v}" for k, v in rules.items()))
                last = trips.index[-1]
                print(f"  last trip      {last:%Y-%m-%d %H:%M:%S} "
                      f"({trips['rule'].astype(str).iloc[-1]})")
            if len(t):
                print(f"  last state     {t['to_state'].astype(str).iloc[-1]}")
    return 0


PARQUET_HINT = "pip install 'tripsense[parquet]'"


def _need_pyarrow() -> None:
    """Fail before reading the history when Parquet cannot be written."""
    try:
        import pyarrow  # noqa: F401
    except ImportError as e:
        raise CliError(f"Parquet export needs pyarrow, which is not "
                       f"installed ({e}): {PARQUET_HINT}") from None


def cmd_export(args: argparse.Namespace) -> int:
    fmt = args.format or ("parquet" if args.output.endswith(".parquet")
                          else "csv")
    if fmt == "parquet":
        _need_pyarrow()
    with _history(args.file) as h:
        if args.table == "baselines":
            df = h.baselines(args.breaker)
        else:
            df = getattr(h, args.table)(args.breaker, args.start, args.end)
    if fmt == "parquet":
        df.to_parquet(args.output, engine="pyarrow")
    else:
        df.to_csv(args.output)
    print(f"wrote {len(df):,} {args.table} rows to {args.output}")
    return 0


def _read_events(path: str) -> Any:
    import pandas as pd

    if not os.path.exists(path):
        raise CliError(f"{path}: no such events file")
    df = pd.read_csv(path)
    if "time" not in df.columns:
        raise CliError(f"{path}: needs a 'time' column (ISO times or int ns)")
    if pd.api.types.is_integer_dtype(df["time"]):
        pass
    else:
        try:
            df["time"] = pd.to_datetime(df["time"], utc=True,
                                        format="ISO8601")
        except (ValueError, TypeError) as e:
            raise CliError(f"{path}: cannot read the time column: {e}") \
                from None
    return df


def cmd_replay(args: argparse.Namespace) -> int:
    import pandas as pd

    from . import replay

    config: dict[str, Any] = {}
    if args.config_json:
        with open(args.config_json) as f:
            obj = json.load(f)
        if not isinstance(obj, dict):
            raise CliError(f"{args.config_json}: expected a JSON object of "
                           f"options, got {type(obj).__name__}")
        config.update(obj)
    config.update(parse_config(args.config or []))
    df = _read_events(args.events)
    if df.empty:
        raise CliError(f"{args.events}: no events")
    groups = [(str(b), g) for b, g in df.groupby("breaker", sort=False)] \
        if "breaker" in df.columns else [("replay", df)]
    outs = []
    for name, g in groups:
        ev = g.drop(columns=["breaker"], errors="ignore")
        res = replay(ev, config)
        tr = res.transitions
        trips = tr[(tr["from_state"].astype(str) == "closed")
                   & (tr["to_state"].astype(str) == "open")]
        print(f"{name}: {len(ev):,} events, {res.rejected:,} refused, "
              f"{len(trips)} trip(s), final state {res.final.state}")
        for t, r in trips.iterrows():
            print(f"  {t:%Y-%m-%d %H:%M:%S}  {r['rule']}  score "
                  f"{r['score']:.4g} >= {r['threshold']:.4g}")
        if args.output:
            d = res.decisions[["decision", "state", "outcome",
                               "latency_s"]].copy()
            d.insert(0, "breaker", name)
            outs.append(d)
    if args.output:
        pd.concat(outs).to_csv(args.output)
        print(f"wrote decisions to {args.output}")
    return 0


def _history_report(path: str) -> tuple[list[dict[str, Any]], Any]:
    with _history(path) as h:
        names = h.breakers()
        rollups = h.rollups()
        trans = h.transitions()
    rows = []
    for b in names:
        r = rollups[(rollups["breaker"].astype(str) == b).to_numpy()]
        t = trans[(trans["breaker"].astype(str) == b).to_numpy()]
        state = t["to_state"].astype(str).iloc[-1] if len(t) else "closed"
        trips = t[(t["from_state"].astype(str) == "closed")
                  & (t["to_state"].astype(str) == "open")]
        calls = int(r["calls"].sum()) if len(r) else 0
        fails = int((r["failures"] + r["timeouts"]).sum()) if len(r) else 0
        last = None
        if len(trips):
            lt = trips.iloc[-1]
            last = {"rule": str(lt["rule"]), "score": _num(lt["score"]),
                    "threshold": _num(lt["threshold"]),
                    "baseline": _num(lt["baseline"]),
                    "time": trips.index[-1].isoformat()}
        rows.append({
            "name": b,
            "state": state,
            "status": "ok" if state in ("closed", "forced_closed",
                                         "disabled", "metrics_only")
            else "down" if state in ("open", "forced_open") else "degraded",
            "calls": calls,
            "failures": fails,
            "failure_rate": fails / calls if calls else None,
            "trips": int(len(trips)),
            "last_trip": last,
            "last_minute": r.index.max().isoformat() if len(r) else None,
        })
    return rows, (rollups, trans)


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def cmd_health(args: argparse.Namespace) -> int:
    rows, _ = _history_report(args.file)
    order = {"ok": 0, "degraded": 1, "down": 2}
    worst = max((r["status"] for r in rows), key=order.__getitem__,
                default="ok")
    print(json.dumps({"status": worst, "source": args.file,
                      "breakers": rows}, indent=2))
    return 0


def cmd_prometheus(args: argparse.Namespace) -> int:
    rows, (rollups, trans) = _history_report(args.file)
    lines = [
        "# HELP tripsense_state Last recorded state (closed 0, open 1, "
        "half-open 2, forced-open 3, forced-closed 4, disabled 5, "
        "metrics-only 6).",
        "# TYPE tripsense_state gauge",
    ]
    for r in rows:
        lines.append(f'tripsense_state{{breaker="{_esc(r["name"])}"}} '
                     f'{_STATE_CODE.get(r["state"], 0)}')
    lines += ["# HELP tripsense_calls_total Calls by result, from the "
              "history's rollups.", "# TYPE tripsense_calls_total counter"]
    cols = {"success": "successes", "failure": "failures",
            "timeout": "timeouts", "ignored": "ignored",
            "rejected": "rejected", "limited": "limited"}
    for r in rows:
        sub = rollups[(rollups["breaker"].astype(str) == r["name"])
                      .to_numpy()]
        for res in _RESULTS:
            v = int(sub[cols[res]].sum()) if len(sub) else 0
            lines.append(f'tripsense_calls_total{{breaker="'
                         f'{_esc(r["name"])}",result="{res}"}} {v}')
    lines += ["# HELP tripsense_transitions_total State changes recorded.",
              "# TYPE tripsense_transitions_total counter"]
    if len(trans):
        g = trans.groupby([trans["breaker"].astype(str),
                           trans["from_state"].astype(str),
                           trans["to_state"].astype(str),
                           trans["rule"].astype(str)]).size()
        for (b, f, to, rule), v in g.items():
            lines.append(f'tripsense_transitions_total{{breaker="{_esc(b)}",'
                         f'from="{f}",to="{to}",rule="{rule}"}} {int(v)}')
    print("\n".join(lines))
    return 0


def _esc(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def cmd_simulate(args: argparse.Namespace) -> int:
    from .simulate import simulate

    sim = simulate(days=args.days, dependencies=args.dependencies,
                   seed=args.seed)
    ev = sim.events
    out = ev.reset_index()
    out["time"] = out["time"].map(lambda t: t.isoformat()) \
        if args.iso else ev.index.as_unit("ns").asi8
    out.to_csv(args.output, index=False)
    inc_path = os.path.splitext(args.output)[0] + "-incidents.csv"
    sim.incidents.drop(columns=["start_ns", "end_ns"]).to_csv(
        inc_path, index=False)
    print(f"wrote {len(ev):,} events to {args.output} and "
          f"{len(sim.incidents)} incidents to {inc_path}")
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tripsense",
        description="Inspect, export and replay tripsense history.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("inspect", help="breakers, row counts, time span, "
                       "transitions")
    s.add_argument("file")
    s.set_defaults(func=cmd_inspect)

    s = sub.add_parser("export", help="a table to CSV or Parquet")
    s.add_argument("file")
    s.add_argument("--table", required=True, choices=_TABLES)
    s.add_argument("--format", choices=("csv", "parquet"))
    s.add_argument("-o", "--output", required=True)
    s.add_argument("--breaker")
    s.add_argument("--start")
    s.add_argument("--end")
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("replay", help="replay an events CSV under a config")
    s.add_argument("events", help="CSV: time, outcome, latency_s "
                   "[, breaker, priority]")
    s.add_argument("--config", nargs="*", metavar="NAME=VALUE",
                   help="options in Python names (durations in seconds)")
    s.add_argument("--config-json", help="a JSON object of options")
    s.add_argument("-o", "--output", help="write the decisions to this CSV")
    s.set_defaults(func=cmd_replay)

    s = sub.add_parser("health", help="health JSON of a history file")
    s.add_argument("file")
    s.set_defaults(func=cmd_health)

    s = sub.add_parser("prometheus", help="Prometheus text of a history file")
    s.add_argument("file")
    s.set_defaults(func=cmd_prometheus)

    s = sub.add_parser("simulate", help="write simulated events to a CSV")
    s.add_argument("--days", type=float, default=1.0)
    s.add_argument("--dependencies", type=int, default=1)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--iso", action="store_true",
                   help="ISO times instead of int ns")
    s.add_argument("-o", "--output", required=True)
    s.set_defaults(func=cmd_simulate)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    from ._lowlevel import TripsenseError

    args = _parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (CliError, TripsenseError, ValueError, OSError, KeyError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"tripsense {args.command}: {msg}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
