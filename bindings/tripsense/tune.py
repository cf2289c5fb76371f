# SPDX-License-Identifier: GPL-3.0-or-later
"""Score breaker configurations on recorded or simulated traffic, and tune.

Every configuration is judged the same way, by :func:`score_runs`: the
demo's comparison table and :func:`tune`'s ranking are two uses of that one
implementation.

Definitions (``incidents`` are labelled windows ``[start, end)``; those
with ``expect_trip`` True are the ones a breaker should act on):

* a **trip** is a transition from ``closed`` to ``open``;
* an incident is **caught** if the breaker is open (or half-open) at some
  time inside its window; its **detection delay** is the time from the
  incident's start to the first such moment (0 if the breaker was already
  open when it began);
* a **false trip** is a trip that starts outside every expect-trip window
  (a window counts until ``grace_s`` after its end, since windows lag);
  trips during deploy spikes (``expect_trip`` False) are false trips;
* **wrongly rejected** calls are calls refused (rejected or limited)
  outside every expect-trip window;
* **failed calls let through** are calls admitted inside an expect-trip
  window whose outcome was a failure or a timeout.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import numpy as np

from .simulate import _index_ns, _to_ns

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "FIXED_COMMON",
    "DEFAULT_GRID",
    "METRIC_COLUMNS",
    "Run",
    "replay_breakers",
    "score_runs",
    "compare",
    "tune",
]

NS = 1_000_000_000
WEEK_S = 7 * 86_400
FAILURE, TIMEOUT = 1, 2
CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"

#: A fixed-threshold breaker with common defaults (Resilience4j's count
#: window of 100 calls at 50% failures, Hystrix's 1 s timeout as the slow
#: threshold, pybreaker's 5 consecutive failures, 60 s open): no adaptive
#: rule, no backoff.
FIXED_COMMON: dict[str, Any] = {
    "adaptive": False,
    "window_kind": "count",
    "window_calls": 100,
    "min_calls": 100,
    "failure_rate": 0.5,
    "slow_call_rate": 0.5,
    "slow_call_s": 1.0,
    "consecutive_failures": 5,
    "consecutive_timeouts": 0,
    "ewma_failure_rate": 0.0,
    "latency_threshold_s": 0.0,
    "open_s": 60.0,
    "backoff_multiplier": 1.0,
}

#: The grid :func:`tune` searches when none is given: the sensitivity of
#: the anomaly rules, the effect sizes they require and how long they must
#: persist.
DEFAULT_GRID: dict[str, list[Any]] = {
    "anomaly_z": [4.0, 6.0, 8.0],
    "anomaly_rate_effect": [1.5, 2.0, 3.0],
    "latency_baseline_factor": [2.0, 3.0, 5.0],
    "anomaly_k": [2, 3],  # of anomaly_m (4): 2 is faster, 3 rides out bursts
}

#: Columns of :func:`score_runs` (and of :func:`compare` and :func:`tune`).
METRIC_COLUMNS: list[str] = [
    "incidents",  # expect-trip incidents in the data
    "caught",
    "missed",
    "detection_delay_s",  # median over caught incidents
    "trips",  # closed -> open transitions
    "false_trips",
    "false_trips_per_week",
    "wrongly_rejected",  # calls refused outside expect-trip windows
    "failed_let_through",  # failed calls admitted inside expect-trip windows
    "failed_in_incidents",  # failed calls inside them had all been admitted
    "rejected",  # every refused call
    "spikes",  # incidents labelled expect_trip=False (deploy spikes)
    "spikes_tripped",  # of which a trip started inside
    "calls",
    "weeks",
]


@dataclass
class Run:
    """The replay of one breaker's calls under one configuration.

    Attributes
    ----------
    breaker : str
    wall_ns : numpy.ndarray
        int64 times of the calls (ns since the epoch).
    outcome : numpy.ndarray
        The outcome each call had (or would have had if refused).
    refused : numpy.ndarray
        bool, True where the breaker refused the call.
    trans_ns : numpy.ndarray
        int64 times of the breaker's transitions.
    trans_from, trans_to : numpy.ndarray
        State names (``"closed"``, ``"open"``, ``"half_open"``, ...).
    """

    breaker: str
    wall_ns: np.ndarray
    outcome: np.ndarray
    refused: np.ndarray
    trans_ns: np.ndarray
    trans_from: np.ndarray
    trans_to: np.ndarray


# --------------------------------------------------------------------------
# Inputs


_OUTCOME_CODES = {"success": 0, "failure": 1, "timeout": 2, "ignored": 3}


def _events_by_breaker(data: Any) -> tuple[dict[str, dict[str, np.ndarray]],
                                           Any, float | None]:
    """Split events into per-breaker arrays.

    Returns (arrays by breaker, incidents found in data or None, weeks or
    None when it must come from the data's span).
    """
    import pandas as pd

    from .simulate import Simulation

    if isinstance(data, Simulation):
        arrays = {name: data.arrays(name) for name in data.breakers}
        return arrays, data.incidents, data.weeks
    if isinstance(data, (str, bytes)) or hasattr(data, "__fspath__"):
        from . import History

        with History(data) as h:
            frames = {b: h.events(b) for b in h.breakers()}
        return ({b: _frame_arrays(f, b) for b, f in frames.items()},
                None, None)
    if hasattr(data, "events") and hasattr(data, "breakers") \
            and callable(data.breakers):
        return ({b: _frame_arrays(data.events(b), b)
                 for b in data.breakers()}, None, None)
    if isinstance(data, pd.DataFrame):
        if "breaker" in data.columns:
            out = {}
            for name in pd.unique(data["breaker"]):
                sel = data[(data["breaker"] == name).to_numpy()]
                out[str(name)] = _frame_arrays(sel, str(name))
            return out, None, None
        return {"replay": _frame_arrays(data, "replay")}, None, None
    raise TypeError(
        "events must be a Simulation, a DataFrame of events (a time index "
        "or column, outcome, latency_s, optionally breaker), a History or "
        f"a history file path, not {type(data).__name__}")


def _frame_arrays(df: "pd.DataFrame", name: str) -> dict[str, np.ndarray]:
    import pandas as pd

    if "time" in df.columns:
        t = df["time"]
        if pd.api.types.is_integer_dtype(t):
            wall = t.to_numpy(np.int64)
        else:
            wall = _index_ns(pd.DatetimeIndex(pd.to_datetime(t, utc=True)))
    elif isinstance(df.index, pd.DatetimeIndex):
        wall = _index_ns(df.index)
    else:
        raise ValueError(f"events of {name!r}: need a DatetimeIndex or a "
                         "'time' column")
    for col in ("outcome",):
        if col not in df.columns:
            raise ValueError(f"events of {name!r}: no {col!r} column")
    lat_col = "latency_s" if "latency_s" in df.columns else "latency"
    if lat_col not in df.columns:
        raise ValueError(f"events of {name!r}: no 'latency_s' column")
    o = df["outcome"]
    if isinstance(o.dtype, pd.CategoricalDtype) or o.dtype == object:
        names = o.astype(str).to_numpy()
        bad = set(np.unique(names)) - set(_OUTCOME_CODES)
        if bad:
            raise ValueError(f"events of {name!r}: unknown outcome(s) "
                             f"{sorted(bad)}")
        codes = np.vectorize(_OUTCOME_CODES.__getitem__, otypes=[np.int32])(
            names) if len(names) else np.zeros(0, np.int32)
    else:
        codes = o.to_numpy(np.int32)
    return {"wall_ns": np.ascontiguousarray(wall, dtype=np.int64),
            "outcome": np.ascontiguousarray(codes, dtype=np.int32),
            "latency_s": np.ascontiguousarray(df[lat_col].to_numpy(),
                                              dtype=np.float64)}


def _incident_arrays(incidents: Any) -> "pd.DataFrame":
    """Normalise incidents to breaker, start_ns, end_ns, expect_trip."""
    import pandas as pd

    cols = ["breaker", "kind", "start_ns", "end_ns", "expect_trip"]
    if incidents is None:
        return pd.DataFrame({c: [] for c in cols}).astype(
            {"start_ns": "int64", "end_ns": "int64", "expect_trip": bool})
    df = pd.DataFrame(incidents).copy()
    for key in ("start", "end"):
        if key + "_ns" not in df.columns:
            if key not in df.columns:
                raise ValueError(f"incidents need a {key!r} or {key}_ns "
                                 "column")
            df[key + "_ns"] = [_to_ns(x) for x in df[key]]
    if "breaker" not in df.columns:
        raise ValueError("incidents need a 'breaker' column")
    if "expect_trip" not in df.columns:
        df["expect_trip"] = True
    if "kind" not in df.columns:
        df["kind"] = "incident"
    bad = df["end_ns"] <= df["start_ns"]
    if bad.any():
        raise ValueError(f"incident {int(np.argmax(bad.to_numpy()))} ends "
                         "before it starts")
    return df[cols].astype({"start_ns": "int64", "end_ns": "int64",
                            "expect_trip": bool})


# --------------------------------------------------------------------------
# Replay


def replay_breakers(arrays: Mapping[str, Mapping[str, np.ndarray]],
                    config: Mapping[str, Any] | None = None) -> list[Run]:
    """Replay each breaker's calls through the C engine under one config.

    Parameters
    ----------
    arrays : mapping
        breaker name -> ``{"wall_ns", "outcome", "latency_s"}`` arrays.
    config : dict, optional
        Keyword options (Python names, see docs/python.md).

    Returns
    -------
    list of Run
    """
    from ._lowlevel import lib
    from .history import _STATE_CATS
    from .replay import _decisions

    states = np.array(_STATE_CATS, dtype=object)
    runs = []
    for name, a in arrays.items():
        codes, tr = _decisions(a, dict(config or {}))
        runs.append(Run(name, a["wall_ns"], a["outcome"], codes != lib.TRIP_PASS,
                        tr["wall_ns"].astype(np.int64), states[tr["from"]],
                        states[tr["to"]]))
    return runs


# --------------------------------------------------------------------------
# Scoring


def _open_intervals(run: Run, end_ns: int) -> np.ndarray:
    """[start, end) intervals during which the breaker was not closed."""
    out = []
    start = None
    for t, f, to in zip(run.trans_ns, run.trans_from, run.trans_to):
        if start is None and f == CLOSED and to != CLOSED:
            start = int(t)
        elif start is not None and to == CLOSED:
            out.append((start, int(t)))
            start = None
    if start is not None:
        out.append((start, end_ns))
    return np.array(out, dtype=np.int64).reshape(-1, 2)


def _in_windows(t: np.ndarray, starts: np.ndarray,
                ends: np.ndarray) -> np.ndarray:
    """Boolean mask: t inside any [start, end) (windows may overlap)."""
    if len(starts) == 0:
        return np.zeros(len(t), dtype=bool)
    order = np.argsort(starts)
    s, e = starts[order], ends[order]
    # merge overlaps so a searchsorted answers membership
    merged_s, merged_e = [int(s[0])], [int(e[0])]
    for a, b in zip(s[1:], e[1:]):
        if a <= merged_e[-1]:
            merged_e[-1] = max(merged_e[-1], int(b))
        else:
            merged_s.append(int(a))
            merged_e.append(int(b))
    ms, me = np.array(merged_s), np.array(merged_e)
    res = np.zeros(len(t), dtype=bool)
    if len(t) > 1 and not np.all(t[1:] >= t[:-1]):
        i = np.searchsorted(ms, t, side="right") - 1
        ok = i >= 0
        res[ok] = t[ok] < me[i[ok]]
        return res
    # sorted times (calls and transitions are): each window is the slice
    # from its first time >= start to its first time >= end, found with a
    # search per window instead of one per time
    for a, b in zip(np.searchsorted(t, ms, side="left"),
                    np.searchsorted(t, me, side="left")):
        res[a:b] = True
    return res


def _score_one(run: Run, inc: "pd.DataFrame", end_ns: int,
               grace_s: float) -> dict[str, Any]:
    mine = inc[inc["breaker"] == run.breaker]
    exp = mine[mine["expect_trip"]]
    spikes = mine[~mine["expect_trip"]]
    es, ee = exp["start_ns"].to_numpy(), exp["end_ns"].to_numpy()

    trips = run.trans_ns[(run.trans_from == CLOSED) & (run.trans_to == OPEN)]
    true_trip = _in_windows(trips, es, ee + int(grace_s * NS))

    opened = _open_intervals(run, end_ns)
    delays = []
    for a, b in zip(es, ee):
        hit = (opened[:, 0] < b) & (opened[:, 1] > a)
        if hit.any():
            delays.append(max(0, int(opened[hit, 0].min()) - int(a)) / NS)

    spikes_tripped = 0
    for a, b in zip(spikes["start_ns"], spikes["end_ns"]):
        if np.any((trips >= a) & (trips < b + int(grace_s * NS))):
            spikes_tripped += 1

    inside = _in_windows(run.wall_ns, es, ee)
    failed = np.isin(run.outcome, (FAILURE, TIMEOUT))
    return {
        "incidents": len(exp),
        "caught": len(delays),
        "delays": delays,
        "trips": int(len(trips)),
        "false_trips": int((~true_trip).sum()),
        "wrongly_rejected": int((run.refused & ~inside).sum()),
        "failed_let_through": int((~run.refused & inside & failed).sum()),
        "failed_in_incidents": int((inside & failed).sum()),
        "rejected": int(run.refused.sum()),
        "spikes": len(spikes),
        "spikes_tripped": spikes_tripped,
        "calls": int(len(run.wall_ns)),
    }


def score_runs(runs: Sequence[Run], incidents: Any = None, *,
               weeks: float | None = None, end_ns: int | None = None,
               grace_s: float = 120.0, by_breaker: bool = False
               ) -> "pd.DataFrame":
    """Score replays against labelled incidents.

    Parameters
    ----------
    runs : sequence of Run
        One per breaker, from :func:`replay_breakers`.
    incidents : DataFrame, optional
        Columns ``breaker``, ``start``/``end`` (or ``start_ns``/``end_ns``)
        and optionally ``expect_trip`` (default True) and ``kind``. Without
        incidents every trip is a false trip.
    weeks : float, optional
        Length of the observed span; default: from the first to the last
        call over all runs.
    end_ns : int, optional
        End of the span (an interval still open then ends there).
    grace_s : float
        A trip up to this long after an incident's end still belongs to it.
    by_breaker : bool
        One row per breaker (True) or one row for all (False).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`METRIC_COLUMNS`; index ``breaker`` (``"all"`` for the
        total).
    """
    import pandas as pd

    inc = _incident_arrays(incidents)
    first = min((int(r.wall_ns[0]) for r in runs if len(r.wall_ns)),
                default=0)
    last = max((int(r.wall_ns[-1]) for r in runs if len(r.wall_ns)),
               default=0)
    if end_ns is None:
        end_ns = last + 1
    if weeks is None:
        weeks = max(last - first, 1) / NS / WEEK_S
    parts = [_score_one(r, inc, end_ns, grace_s) for r in runs]

    def row(ps: list[dict[str, Any]]) -> dict[str, Any]:
        delays = [d for p in ps for d in p["delays"]]
        out = {k: sum(p[k] for p in ps) for k in (
            "incidents", "caught", "trips", "false_trips",
            "wrongly_rejected", "failed_let_through", "failed_in_incidents",
            "rejected", "spikes", "spikes_tripped", "calls")}
        out["missed"] = out["incidents"] - out["caught"]
        out["detection_delay_s"] = float(np.median(delays)) if delays \
            else math.nan
        out["weeks"] = weeks
        out["false_trips_per_week"] = out["false_trips"] / weeks
        return {k: out[k] for k in METRIC_COLUMNS}

    if by_breaker:
        rows = [row([p]) for p in parts]
        index = [r.breaker for r in runs]
    else:
        rows, index = [row(parts)], ["all"]
    df = pd.DataFrame(rows, index=pd.Index(index, name="breaker"),
                      columns=METRIC_COLUMNS)
    return df


# --------------------------------------------------------------------------
# Comparison and tuning


def compare(data: Any, configs: Mapping[str, Mapping[str, Any] | None], *,
            incidents: Any = None, weeks: float | None = None,
            grace_s: float = 120.0) -> "pd.DataFrame":
    """Replay the same traffic under several configurations and score each.

    Parameters
    ----------
    data : Simulation, DataFrame, History or path
        The calls (see :func:`tune`).
    configs : mapping
        label -> keyword options (None for the defaults).
    incidents : DataFrame, optional
        Labelled incidents; taken from a Simulation when not given.

    Returns
    -------
    pandas.DataFrame
        One row per label (index ``config``), columns
        :data:`METRIC_COLUMNS`.
    """
    import pandas as pd

    arrays, inc0, weeks0, end_ns = _prepare(data)
    inc = incidents if incidents is not None else inc0
    rows = []
    for label, cfg in configs.items():
        runs = replay_breakers(arrays, cfg)
        rows.append(score_runs(runs, inc, weeks=weeks or weeks0,
                               end_ns=end_ns, grace_s=grace_s
                               ).to_dict("records")[0])
    df = pd.DataFrame(rows, columns=METRIC_COLUMNS)
    df.index = pd.Index(list(configs), name="config")
    return df


def _prepare(data: Any) -> tuple[dict[str, dict[str, np.ndarray]], Any,
                                 float | None, int | None]:
    from .simulate import Simulation

    arrays, inc, weeks = _events_by_breaker(data)
    if not arrays or all(len(a["wall_ns"]) == 0 for a in arrays.values()):
        raise ValueError("no events to replay")
    end_ns = data.end_ns if isinstance(data, Simulation) else None
    return arrays, inc, weeks, end_ns


def _candidates(grid: Any) -> list[dict[str, Any]]:
    if grid is None:
        grid = DEFAULT_GRID
    if isinstance(grid, Mapping):
        if not grid:
            return [{}]
        keys = list(grid)
        for k in keys:
            v = grid[k]
            if isinstance(v, (str, bytes)) or not isinstance(v, Iterable):
                raise TypeError(f"grid[{k!r}] must be a list of values, not "
                                f"{type(v).__name__}")
        values = [list(grid[k]) for k in keys]
        for k, v in zip(keys, values):
            if not v:
                raise ValueError(f"grid[{k!r}] is empty")
        return [dict(zip(keys, combo)) for combo in itertools.product(*values)]
    out = [dict(c) for c in grid]
    if not out:
        raise ValueError("grid is an empty list of candidates")
    return out


def _map(fn: Any, items: Sequence[Any], n_jobs: int) -> list[Any]:
    """fn over items, in order; threads when n_jobs > 1 (the replay runs in
    C with the GIL released, so candidates overlap on several cores)."""
    if not isinstance(n_jobs, int) or isinstance(n_jobs, bool) or n_jobs < 1:
        raise ValueError(f"n_jobs must be an int >= 1, got {n_jobs!r}")
    if n_jobs == 1 or len(items) < 2:
        return [fn(x) for x in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=n_jobs) as pool:
        return list(pool.map(fn, items))


def tune(data: Any, grid: Any = None, *, false_trip_budget: float = 1.0,
         incidents: Any = None, base: Mapping[str, Any] | None = None,
         weeks: float | None = None, grace_s: float = 120.0,
         n_jobs: int = 1) -> "pd.DataFrame":
    """Replay candidate configurations and rank them.

    Parameters
    ----------
    data : Simulation, DataFrame, History or str
        The calls: a :class:`~tripsense.simulate.Simulation` (its incidents
        are used), a DataFrame of events (UTC DatetimeIndex or ``time``
        column, ``outcome``, ``latency_s``, optionally ``breaker``), a
        ``History`` or the path of a history file (its admitted outcomes).
    grid : dict of lists, list of dicts, or None
        A dict gives the Cartesian product of its values; a list gives the
        candidates one by one; None uses :data:`DEFAULT_GRID`.
    false_trip_budget : float
        False trips per week allowed (over all breakers together).
    incidents : DataFrame, optional
        Labelled incidents (``breaker``, ``start``, ``end``,
        ``expect_trip``). Without them every trip counts as false.
    base : dict, optional
        Options applied under every candidate (default: engine defaults).
    weeks : float, optional
        Length of the span (default: the simulation's, or the data's).
    grace_s : float
        See :func:`score_runs`.
    n_jobs : int
        Candidates replayed at once, in threads (the results do not depend
        on it).

    Returns
    -------
    pandas.DataFrame
        One row per candidate, best first: ranked by whether it meets the
        budget, then missed incidents, median detection delay, false trips
        per week and wrongly rejected calls. Columns: ``candidate`` (its
        position in the grid), one column per grid option,
        :data:`METRIC_COLUMNS`, ``within_budget`` (bool), ``rank`` (1 =
        best) and ``recommended`` (True on the recommended row: the best
        within the budget, or the one with the fewest false trips when none
        meets it). ``df.attrs["recommended"]`` holds the recommended
        options (``base`` plus the candidate) and ``df.attrs["budget"]``
        the budget.

    Raises
    ------
    ValueError
        For a bad budget, an empty grid or events without calls.
    InvalidConfigError
        For an unknown option or a bad value in the grid (named).
    """
    import pandas as pd

    if not (isinstance(false_trip_budget, (int, float))
            and math.isfinite(false_trip_budget) and false_trip_budget >= 0):
        raise ValueError(f"false_trip_budget must be a number >= 0, got "
                         f"{false_trip_budget!r}")
    cands = _candidates(grid)
    arrays, inc0, weeks0, end_ns = _prepare(data)
    inc = incidents if incidents is not None else inc0
    base = dict(base or {})

    def one(cand: dict[str, Any]) -> dict[str, Any]:
        runs = replay_breakers(arrays, {**base, **cand})
        return score_runs(runs, inc, weeks=weeks or weeks0, end_ns=end_ns,
                          grace_s=grace_s).to_dict("records")[0]

    scores = _map(one, cands, n_jobs)
    rows = [{"candidate": i, **cand, **m}
            for i, (cand, m) in enumerate(zip(cands, scores))]
    keys = list(dict.fromkeys(k for c in cands for k in c))
    df = pd.DataFrame(rows, columns=["candidate", *keys, *METRIC_COLUMNS])
    df["within_budget"] = df["false_trips_per_week"] <= false_trip_budget
    df = df.sort_values(
        ["within_budget", "missed", "detection_delay_s",
         "false_trips_per_week", "wrongly_rejected", "candidate"],
        ascending=[False, True, True, True, True, True],
        na_position="last", kind="stable").reset_index(drop=True)
    df["rank"] = np.arange(1, len(df) + 1)
    if df["within_budget"].any():
        best = int(np.argmax(df["within_budget"].to_numpy()))
    else:
        best = int(df["false_trips_per_week"].to_numpy().argmin())
    df["recommended"] = False
    df.loc[best, "recommended"] = True
    chosen = cands[int(df.loc[best, "candidate"])]
    df.attrs["recommended"] = {**base, **chosen}
    df.attrs["budget"] = float(false_trip_budget)
    df.attrs["met_budget"] = bool(df["within_budget"].any())
    return df


def _make_module_callable() -> None:
    """Let ``tripsense.tune(...)`` work once this module is imported."""
    import sys
    import types

    class _CallableModule(types.ModuleType):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return tune(*args, **kwargs)

    sys.modules[__name__].__class__ = _CallableModule


_make_module_callable()
