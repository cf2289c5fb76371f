# SPDX-License-Identifier: GPL-3.0-or-later
"""Replay recorded calls through the live engine, detect anomalies in any
series, and calibrate thresholds against a false-trip budget.

Every function here crosses into C once, over whole numpy arrays: there is
no Python loop per event.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Tuple

import numpy as np

from . import _config
from ._lowlevel import InvalidConfigError, _check, ffi, lib
from .breaker import Snapshot
from .history import (_DECISION_CATS, _OUTCOME_CATS, _RULE_CATS, _STATE_CATS,
                      _cat, _index, _pd, _transitions_frame, struct_dtype)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["replay", "ReplayResult", "detect", "calibrate", "Calibration",
           "events_arrays"]

NS = 1_000_000_000
_OUTCOME_CODES = {"success": 0, "failure": 1, "timeout": 2, "ignored": 3}
_SEASON = {"auto": 0, "none": 1, "hour_of_day": 2, "hour_of_week": 3}


# ---- input normalisation ---------------------------------------------------

def _pandas() -> Any:
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is optional here
        return None
    return pd


def _time_ns(t: Any) -> np.ndarray:
    """Times as int64 ns since the epoch from datetimes, ints or float s."""
    pd = _pandas()
    if pd is not None and isinstance(t, (pd.Series, pd.Index)):
        if isinstance(t.dtype, pd.DatetimeTZDtype):
            idx = pd.DatetimeIndex(t).tz_convert("UTC").tz_localize(None)
            return idx.to_numpy("datetime64[ns]").view(np.int64)
        t = t.to_numpy()
    a = np.asarray(t)
    if a.dtype.kind == "M":
        return a.astype("datetime64[ns]").view(np.int64)
    if a.dtype.kind in "iu":
        return a.astype(np.int64, copy=False)
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)):
            raise InvalidConfigError("events: time contains NaN or infinite values")
        return np.round(a * NS).astype(np.int64)
    if a.dtype.kind == "O" and pd is not None:
        try:
            try:  # ISO 8601 strings whose precision varies row to row
                idx = pd.DatetimeIndex(pd.to_datetime(a, utc=True, format="ISO8601"))
            except (ValueError, TypeError):
                idx = pd.DatetimeIndex(pd.to_datetime(a, utc=True))
        except (ValueError, TypeError) as e:
            raise InvalidConfigError(f"events: cannot read time: {e}") from None
        return idx.tz_localize(None).to_numpy("datetime64[ns]").view(np.int64)
    raise InvalidConfigError(f"events: time must be datetimes, int ns or float "
                             f"seconds, got dtype {a.dtype}")


def _outcome_codes(o: Any) -> np.ndarray:
    a = np.asarray(o.to_numpy() if hasattr(o, "to_numpy") else o)
    if a.dtype.kind in "iu":
        if a.size and (a.min() < 0 or a.max() > 3):  # before narrowing
            i = int(np.argmax((a < 0) | (a > 3)))
            raise InvalidConfigError(f"events: event {i}: unknown outcome code {a[i]}")
        return np.ascontiguousarray(a, dtype=np.int32)
    elif a.dtype.kind in "OUS":
        s = a.astype(str)
        codes = np.full(len(s), -1, dtype=np.int32)
        for name, c in _OUTCOME_CODES.items():
            codes[s == name] = c
        bad = codes < 0
        if bad.any():
            i = int(np.argmax(bad))
            raise InvalidConfigError(f"events: event {i}: unknown outcome {s[i]!r} "
                                     f"(expected {', '.join(_OUTCOME_CODES)})")
    elif a.dtype.kind == "f":
        if not np.all(np.isfinite(a)) or not np.all(a == np.round(a)):
            raise InvalidConfigError("events: outcome codes must be whole numbers 0..3")
        codes = a.astype(np.int32)
    else:
        raise InvalidConfigError(f"events: outcome must be names or codes, got dtype {a.dtype}")
    if codes.size and (codes.min() < 0 or codes.max() > 3):
        i = int(np.argmax((codes < 0) | (codes > 3)))
        raise InvalidConfigError(f"events: event {i}: unknown outcome code {codes[i]}")
    return np.ascontiguousarray(codes, dtype=np.int32)


def events_arrays(events: Any) -> Tuple[np.ndarray, np.ndarray, np.ndarray,
                                        Optional[np.ndarray]]:
    """Normalise events to (time ns int64, latency s float64, outcome int32,
    priority int32 or None), contiguous arrays ready for C.

    Raises
    ------
    InvalidConfigError
        For a missing column, unknown outcome, NaN or negative latency, or
        mismatched lengths (time order is checked by C, naming the event).
    """
    pd = _pandas()
    get: Any
    has: Any
    t: Any
    frame = pd is not None and isinstance(events, pd.DataFrame)
    if frame:
        has = events.columns.__contains__
    elif isinstance(events, np.ndarray) and events.dtype.names:
        has = events.dtype.names.__contains__
    elif isinstance(events, Mapping):
        has = events.__contains__
    else:
        raise InvalidConfigError(f"events: expected a DataFrame, a mapping of "
                                 f"arrays or a structured array, got "
                                 f"{type(events).__name__}")
    get = events.__getitem__
    # `wall_ns` (int64 ns, as History and Simulation.arrays name it) is
    # accepted for `time`, as `latency` is for `latency_s`
    time_key = "time" if has("time") else "wall_ns" if has("wall_ns") else None
    if time_key is not None:
        t = get(time_key)
    elif frame and isinstance(events.index, pd.DatetimeIndex):
        t = events.index
    else:
        raise InvalidConfigError("events: need a 'time' column (or 'wall_ns'"
                                 + (", or a DatetimeIndex)" if frame else ")"))
    if not has("outcome"):
        raise InvalidConfigError("events: missing the 'outcome' column")
    lat_key = "latency_s" if has("latency_s") else "latency" if has("latency") else None
    if lat_key is None:
        raise InvalidConfigError("events: missing the 'latency_s' column")
    wall = np.ascontiguousarray(_time_ns(t), dtype=np.int64)
    lat_raw = get(lat_key)
    lat = np.ascontiguousarray(np.asarray(
        lat_raw.to_numpy() if hasattr(lat_raw, "to_numpy") else lat_raw,
        dtype=np.float64))
    outcome = _outcome_codes(get("outcome"))
    prio = None
    if has("priority"):
        p = get("priority")
        prio = _priorities(np.asarray(p.to_numpy() if hasattr(p, "to_numpy") else p))
    n = len(wall)
    for name, arr in (("latency_s", lat), ("outcome", outcome), ("priority", prio)):
        if arr is not None and (arr.ndim != 1 or len(arr) != n):
            raise InvalidConfigError(f"events: {name} has {len(arr)} values for "
                                     f"{n} times")
    # a finite sum means finite values, without a temporary per value; the
    # exact check runs only when the sum is not (NaN, inf or an overflow)
    with np.errstate(over="ignore", invalid="ignore"):  # huge finite values
        lat_sum = np.add.reduce(lat) if n else 0.0
    if not np.isfinite(lat_sum) and not np.all(np.isfinite(lat)):
        i = int(np.argmax(~np.isfinite(lat)))
        raise InvalidConfigError(f"events: event {i}: latency {lat[i]} is not finite")
    return wall, lat, outcome, prio


def _priorities(p: np.ndarray) -> np.ndarray:
    """Priorities as int32 once each is known to be a whole number in
    0..255 (a cast first would wrap 2**33 to 0 and NaN to INT32_MIN)."""
    if p.dtype.kind not in "iufb":
        raise InvalidConfigError(f"events: priority must be numbers, got {p.dtype}")
    bad = ~((p >= 0) & (p <= 255))
    if p.dtype.kind == "f":
        bad |= p != np.floor(p)
    if bad.any():
        i = int(np.argmax(bad))
        raise InvalidConfigError(f"events: event {i}: priority {p[i]} is not a "
                                 f"whole number in 0..255")
    return np.ascontiguousarray(p, dtype=np.int32)


def _cfg(config: Any, kw: Mapping[str, Any]) -> Any:
    from .breaker import Breaker

    base: Dict[str, Any] = {}
    if isinstance(config, Breaker):
        base = config.config
    elif isinstance(config, Mapping):
        base = dict(config)
    elif config is not None:
        raise InvalidConfigError(f"config: expected a dict of options or a "
                                 f"Breaker, got {config!r}")
    base.update(kw)
    tier = base.pop("tier", None)
    return _config.build(base, tier)


def _ptr(ctype: str, a: Optional[np.ndarray]) -> Any:
    return ffi.NULL if a is None else ffi.from_buffer(ctype, a)


def _codes(p: Any, n: int) -> np.ndarray:
    """The n uint8 codes at p (values < 128) as int8, without a copy: valid
    only while C's buffer is."""
    if not n:
        return np.zeros(0, np.int8)
    return np.frombuffer(ffi.buffer(p, n), dtype=np.int8)


# ---- replay ----------------------------------------------------------------

@dataclass
class ReplayResult:
    """What a replay decided; see docs/python.md for the columns."""

    decisions: "pd.DataFrame"
    evaluations: "pd.DataFrame"
    transitions: "pd.DataFrame"
    final: Snapshot
    config: Dict[str, Any] = field(default_factory=dict)

    @property
    def trips(self) -> int:
        """Number of transitions into ``open``."""
        return int((self.transitions["to_state"] == "open").sum())

    @property
    def rejected(self) -> int:
        """Number of refused events (rejected or limited)."""
        return int((self.decisions["decision"] != "pass").sum())

    def __repr__(self) -> str:
        return (f"<ReplayResult events={len(self.decisions)} "
                f"evaluations={len(self.evaluations)} trips={self.trips} "
                f"rejected={self.rejected}>")


_EVAL_FLOAT = ("failure_rate", "slow_rate", "latency_q_s", "ewma_failure_rate",
               "ewma_latency_s", "baseline_rate", "baseline_rate_sd",
               "baseline_latency_s", "baseline_log_latency_sd", "z_rate",
               "z_latency", "binomial_tail")


def replay(events: Any, config: Any = None, **kwconfig: Any) -> ReplayResult:
    """Run events through a fresh breaker on a manual clock, in one C call.

    Parameters
    ----------
    events : DataFrame, mapping of arrays or structured array
        Columns ``time`` (or a DatetimeIndex), ``outcome``, ``latency_s``,
        optionally ``priority``; times non-decreasing.
    config : dict or Breaker, optional
        Options to start from; ``**kwconfig`` overrides them.

    Returns
    -------
    ReplayResult

    Raises
    ------
    InvalidConfigError
        For a bad option or a bad event (the message names its index).
    """
    pd = _pd()
    cfg = _cfg(config, kwconfig)
    wall, lat, outcome, prio = events_arrays(events)
    n = len(wall)
    r = _replay_c(cfg, wall, lat, outcome, prio)
    try:
        # C's decision and state codes are copied once, into the
        # Categoricals' own int8 codes, before C's memory is freed below
        dec = _cat(_codes(r.decisions, n), _DECISION_CATS)
        st = _cat(_codes(r.states, n), _STATE_CATS)
        ev_dt = struct_dtype("trip_eval")
        ne = int(r.n_evals)
        ev = np.frombuffer(ffi.buffer(r.evals, ne * ev_dt.itemsize), dtype=ev_dt).copy() \
            if ne else np.zeros(0, ev_dt)
        tr = _transition_rows(r)
        final = Snapshot._from_c(r.final)
    finally:
        ffi.release(r)
    # the columns are built here, once; the DataFrame takes them as they are
    # except latency_s, which may be the caller's own array
    decisions = pd.DataFrame({
        "decision": dec,
        "state": st,
        "outcome": _cat(outcome, _OUTCOME_CATS[1:]),
        "latency_s": lat.copy(),
    }, index=_index(wall), copy=False)
    cols: Dict[str, Any] = {"state": _cat(ev["state"], _STATE_CATS)}
    for c in ("calls", "failures", "long_calls", "long_failures"):
        cols[c] = ev[c].astype(np.int64)
    for c in _EVAL_FLOAT:
        cols[c] = ev[c].astype(np.float64)
    cols["baseline_ready"] = ev["baseline_ready"].astype(bool)
    cols["judged"] = ev["judged"].astype(bool)
    cols["fired_rule"] = _cat(ev["fired_rule"], _RULE_CATS)
    cols["score"] = ev["score"].astype(np.float64)
    cols["threshold"] = ev["threshold"].astype(np.float64)
    evaluations = pd.DataFrame(cols, index=_index(ev["wall_ns"]))
    transitions = _transitions_frame(
        tr, pd.Categorical(["replay"] * len(tr), categories=["replay"]))
    return ReplayResult(decisions, evaluations, transitions, final,
                        _config.to_dict(cfg))


def _replay_c(cfg: Any, wall: np.ndarray, lat: np.ndarray, outcome: np.ndarray,
              prio: Optional[np.ndarray], flags: int = 0) -> Any:
    """trip_replay_arrays_flags over columns from events_arrays: the result,
    for the caller to ``ffi.release`` (the garbage collector frees it else)."""
    n = len(wall)
    out = ffi.new("trip_replay_result **")
    _check(lib.trip_replay_arrays_flags(
        cfg, _ptr("int64_t[]", wall) if n else ffi.NULL,
        _ptr("double[]", lat) if n else ffi.NULL,
        _ptr("int32_t[]", outcome) if n else ffi.NULL,
        _ptr("int32_t[]", prio) if n and prio is not None else ffi.NULL,
        n, flags, out), "replay")
    return ffi.gc(out[0], lib.trip_replay_result_free)


def _transition_rows(r: Any) -> np.ndarray:
    """A copy of a replay result's transitions as a structured array."""
    tr_dt = struct_dtype("trip_transition_row")
    nt = int(r.n_transitions)
    if not nt:
        return np.zeros(0, tr_dt)
    return np.frombuffer(ffi.buffer(r.transitions, nt * tr_dt.itemsize),
                         dtype=tr_dt).copy()


def _decisions(events: Any, config: Any) -> Tuple[np.ndarray, np.ndarray]:
    """What scoring needs of a replay, without building its frames: the
    decision code of each event (uint8, 0 pass) and the transitions
    (structured trip_transition_row array). The C call of :func:`replay`,
    without the frames (for a month of calls they cost as much as the
    replay itself) and without the evaluations (``TRIP_REPLAY_NO_EVALS``:
    at a few calls a second most of what a replay writes); scoring reads
    neither."""
    cfg = _cfg(config, {})
    wall, lat, outcome, prio = events_arrays(events)
    r = _replay_c(cfg, wall, lat, outcome, prio, lib.TRIP_REPLAY_NO_EVALS)
    try:
        codes = _codes(r.decisions, len(wall)).view(np.uint8).copy()
        tr = _transition_rows(r)
    finally:
        ffi.release(r)
    return codes, tr


# ---- detect ----------------------------------------------------------------

def detect(series: Any, time: Any = None, *, seasonality: Any = "auto",
           half_life_h: float = 168.0, min_samples: int = 30, z: float = 6.0,
           k: int = 3, m: int = 5, sigma_floor: float = 0.01, effect: float = 0.0,
           log: bool = False) -> "pd.DataFrame":
    """Score a metric series against its own seasonal baseline (trip_detect).

    Parameters
    ----------
    series : pandas Series with a DatetimeIndex, or array of values
    time : array of times, optional
        Needed when ``series`` has no DatetimeIndex.
    seasonality : {"auto", "none", "hour_of_day", "hour_of_week"} or int
    half_life_h, min_samples, z, k, m, sigma_floor, effect : options of the
        anomaly rule (see docs/configuration.md); min_samples >= 2.
    log : bool
        Score log(value) (for latencies; values must be > 0).

    Returns
    -------
    DataFrame
        Index ``time``; columns ``value``, ``score``, ``flag``,
        ``baseline_mean``, ``baseline_sd``.

    Raises
    ------
    InvalidConfigError
        Bad options, unsorted times, NaN values, non-positive values with
        ``log``.
    """
    pd = _pd()
    if time is None:
        if isinstance(series, pd.Series) and isinstance(series.index, pd.DatetimeIndex):
            time = series.index
        else:
            raise InvalidConfigError("detect: give a Series with a DatetimeIndex "
                                     "or the times as time=")
    values = np.ascontiguousarray(np.asarray(
        series.to_numpy() if hasattr(series, "to_numpy") else series, dtype=np.float64))
    wall = np.ascontiguousarray(_time_ns(time), dtype=np.int64)
    if values.ndim != 1 or len(values) != len(wall):
        raise InvalidConfigError(f"detect: {len(values)} values for {len(wall)} times")
    if len(values) and not np.all(np.isfinite(values)):
        i = int(np.argmax(~np.isfinite(values)))
        raise InvalidConfigError(f"detect: value {i} is {values[i]}")
    o = ffi.new("trip_detect_opts *")
    lib.trip_detect_opts_init(o)
    if isinstance(seasonality, str):
        if seasonality not in _SEASON:
            raise InvalidConfigError(f"detect: unknown seasonality {seasonality!r} "
                                     f"(expected {', '.join(_SEASON)})")
        seasonality = _SEASON[seasonality]
    try:
        o.seasonality = int(seasonality)
        o.half_life_h = float(half_life_h)
        o.min_samples = int(min_samples)
        o.z = float(z)
        o.k = int(k)
        o.m = int(m)
        o.sigma_floor = float(sigma_floor)
        o.effect = float(effect)
        o.log_transform = 1 if log else 0
    except (OverflowError, TypeError, ValueError) as e:
        raise InvalidConfigError(f"detect: bad option: {e}") from None
    n = len(values)
    scores = np.full(n, np.nan)
    flags = np.zeros(n, dtype=np.uint8)
    mean = np.full(n, np.nan)
    sd = np.full(n, np.nan)
    if n:
        _check(lib.trip_detect(o, ffi.from_buffer("int64_t[]", wall),
                               ffi.from_buffer("double[]", values), n,
                               ffi.from_buffer("double[]", scores),
                               ffi.from_buffer("uint8_t[]", flags),
                               ffi.from_buffer("double[]", mean),
                               ffi.from_buffer("double[]", sd)), "detect")
    return pd.DataFrame({"value": values, "score": scores, "flag": flags.astype(bool),
                         "baseline_mean": mean, "baseline_sd": sd},
                        index=_index(wall))


# ---- calibrate -------------------------------------------------------------

@dataclass
class Calibration:
    """What calibration chose and what it would have done on the history."""

    config: Dict[str, Any]
    anomaly_z: float
    anomaly_k: int
    anomaly_m: int
    latency_baseline_factor: float
    binomial_p: float
    weeks: float
    false_trips: int
    false_trips_per_week: float
    rejected_calls: int
    fixed_rule_trips: int
    max_z_rate: float
    max_z_latency: float
    candidates: int
    met_budget: bool


def calibrate(events: Any, budget_per_week: float = 1.0, config: Any = None,
              **kwconfig: Any) -> Calibration:
    """Choose anomaly thresholds from healthy history (trip_calibrate).

    Parameters
    ----------
    events : as :func:`replay`
        Healthy history.
    budget_per_week : float
        False trips allowed per week (> 0).
    config : dict or Breaker, optional
        Base options; ``**kwconfig`` overrides them.

    Returns
    -------
    Calibration
        ``met_budget`` is False when no candidate met the budget (the config
        is then the least-tripping one).

    Raises
    ------
    InvalidConfigError
        For bad events, options or budget.
    TripsenseError
        If this build of the library has no calibration.
    """
    if not hasattr(lib, "trip_calibrate"):
        from ._lowlevel import TripsenseError
        raise TripsenseError("this build of tripsense has no trip_calibrate")
    if isinstance(budget_per_week, bool) or not isinstance(budget_per_week, (int, float)) \
            or not (budget_per_week > 0 and math.isfinite(budget_per_week)):
        raise InvalidConfigError(f"budget_per_week must be > 0, got {budget_per_week!r}")
    base = _cfg(config, kwconfig)
    wall, lat, outcome, prio = events_arrays(events)
    n = len(wall)
    ev = np.zeros(n, dtype=struct_dtype("trip_event"))
    ev["wall_ns"] = wall
    ev["latency_s"] = lat
    ev["outcome"] = outcome
    if prio is not None:
        ev["priority"] = prio
    if ev.dtype.itemsize != ffi.sizeof("trip_event"):  # C reads n structs
        raise InvalidConfigError("calibrate: internal error: event layout mismatch")
    out = ffi.new("trip_config *")
    rep = ffi.new("trip_calibration *")
    rc = lib.trip_calibrate(base, ffi.from_buffer("trip_event[]", ev) if n else ffi.NULL,
                            n, float(budget_per_week), out, rep)
    met = rc != lib.TRIP_ERANGE
    if met:
        _check(rc, "calibrate")
    return Calibration(
        config=_config.to_dict(out), anomaly_z=rep.anomaly_z,
        anomaly_k=rep.anomaly_k, anomaly_m=rep.anomaly_m,
        latency_baseline_factor=rep.latency_baseline_factor,
        binomial_p=rep.binomial_p, weeks=rep.weeks, false_trips=rep.false_trips,
        false_trips_per_week=rep.false_trips_per_week,
        rejected_calls=rep.rejected_calls, fixed_rule_trips=rep.fixed_rule_trips,
        max_z_rate=rep.max_z_rate, max_z_latency=rep.max_z_latency,
        candidates=rep.candidates, met_budget=met)
