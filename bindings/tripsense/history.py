# SPDX-License-Identifier: GPL-3.0-or-later
"""Store and History: the SQLite history, written by breakers, read as
pandas DataFrames in bulk through the C read API."""
from __future__ import annotations

import atexit
import datetime as _dt
import math
import numbers
import os
import threading
import weakref
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Union

import numpy as np

from ._lowlevel import (InvalidConfigError, NotFoundError, StoreError,
                        TripsenseError, _check, _cname, _string, _take_string, ffi,
                        lib)

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["Store", "History", "struct_dtype"]

NS = 1_000_000_000
INT64_MIN = -(2 ** 63)
INT64_MAX = 2 ** 63 - 1

_NP = {"int64_t": "<i8", "uint64_t": "<u8", "int32_t": "<i4", "int": "<i4",
       "uint32_t": "<u4", "double": "<f8", "uint8_t": "u1"}


def struct_dtype(cname: str) -> np.dtype:
    """Return the numpy dtype with the exact layout of a C struct."""
    t = ffi.typeof(cname)
    names, formats, offsets = [], [], []
    for fname, field in t.fields:
        names.append(fname)
        formats.append(_NP[field.type.cname])
        offsets.append(field.offset)
    return np.dtype({"names": names, "formats": formats, "offsets": offsets,
                     "itemsize": ffi.sizeof(t)})


_OUTCOME_CATS = ["refused", "success", "failure", "timeout", "ignored"]
_STATE_CATS = [_string(lib.trip_state_name(i)) for i in range(7)]
_DECISION_CATS = [_string(lib.trip_decision_name(i)) for i in range(3)]
_RULE_CATS = [_string(lib.trip_rule_name(i)) for i in range(lib.TRIP_RULE_COUNT_)]
# baseline metric ids of include/tripsense/store.h (trip_baseline_row)
_METRIC_CATS = ["failure_rate", "log_p95", "log_p99", "inv_n_rate",
                "inv_n_p95", "log_q", "inv_n_p99", "inv_n_q",
                "rate_excess_var"]

_SAMPLE = {"all": 0, "one_in_n": 1, "failures": 2}

# Python option -> (C field, scale or None for bool/enum)
_STORE_OPTS: Dict[str, tuple] = {
    "ring_capacity": ("ring_capacity", 1),
    "flush_interval_s": ("flush_interval_ns", NS),
    "batch_size": ("batch_size", 1),
    "synchronous": ("synchronous", 1),
    "busy_timeout_s": ("busy_timeout_ms", 1000),
    "sample_mode": ("sample_mode", None),
    "sample_n": ("sample_n", 1),
    "retention_days": ("retention_days", 1.0),
    "rollup_retention_days": ("rollup_retention_days", 1.0),
    "record_rejections": ("record_rejections", None),
    "max_pending": ("max_pending", 1),
}

_open_lock = threading.Lock()
_open_stores: "weakref.WeakValueDictionary[str, Store]" = weakref.WeakValueDictionary()
_all_stores: "weakref.WeakSet[Store]" = weakref.WeakSet()


@atexit.register
def _close_all_stores() -> None:
    """Flush and close every store still open when the interpreter exits,
    so that rows accepted by the writer thread are not lost."""
    for s in list(_all_stores):
        try:
            s.close()
        except Exception:  # pragma: no cover - nothing to report to at exit
            pass


def _pd() -> Any:
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("tripsense needs pandas for DataFrames: "
                          "pip install 'tripsense[analysis]'") from None
    return pd


def to_ns(t: Any, what: str = "time") -> int:
    """Convert a datetime, pandas Timestamp, ISO string or int ns to int ns
    since the epoch (naive times are UTC)."""
    if t is None:
        raise InvalidConfigError(f"{what}: missing")
    if isinstance(t, bool):
        raise InvalidConfigError(f"{what}: expected a time, got {t!r}")
    if isinstance(t, numbers.Integral):
        if not INT64_MIN <= int(t) <= INT64_MAX:
            raise InvalidConfigError(f"{what}: {t} ns is outside the int64 range")
        return int(t)
    if isinstance(t, np.datetime64):
        return int(t.astype("datetime64[ns]").astype(np.int64))
    if isinstance(t, (str, _dt.datetime, _dt.date)):
        pd = _pd()
        try:
            ts = pd.Timestamp(t)
        except (ValueError, TypeError) as e:
            raise InvalidConfigError(f"{what}: cannot read {t!r} as a time: {e}") from None
        if ts.tzinfo is None:
            ts = ts.tz_localize("UTC")
        return int(ts.value)
    if hasattr(t, "value") and hasattr(t, "tz_localize"):  # pandas Timestamp
        if t.tzinfo is None:
            t = t.tz_localize("UTC")
        return int(t.value)
    raise InvalidConfigError(f"{what}: expected a datetime, a string or int "
                             f"nanoseconds, got {type(t).__name__} {t!r}")


def _grow(arr: np.ndarray, size: int) -> np.ndarray:
    """Return a larger array of the same exact dtype holding arr's rows.

    Never np.concatenate: NumPy 2 packs structured dtypes there, dropping
    the C struct's padding, and C would then write past the buffer.
    """
    out = np.empty(size, dtype=arr.dtype)
    out[:len(arr)] = arr
    return out


def _index(ns: np.ndarray) -> Any:
    """A UTC DatetimeIndex named ``time`` from int64 ns since the epoch.

    One copy of ns, and no time zone arithmetic: the values are UTC already
    (``tz_localize`` would copy them twice and check each one). pandas
    copies naive times as it marks them UTC, so ``copy=True`` would copy
    them a second time (80 MB of fresh memory per 10 million rows, a tenth
    of a second when the pages are new); the index never shares ``ns``'s
    memory, which is checked rather than assumed.
    """
    pd = _pd()
    m8 = np.asarray(ns, dtype=np.int64).view("datetime64[ns]")
    try:
        idx = pd.DatetimeIndex(m8, dtype=_utc_ns_dtype(pd), name="time", copy=False)
    except (TypeError, ValueError):  # pragma: no cover - older pandas
        return pd.DatetimeIndex(m8, name="time").tz_localize("UTC")
    if len(idx) and np.may_share_memory(idx.asi8, m8):  # pragma: no cover
        idx = idx.copy(deep=True)
    return idx


def _utc_ns_dtype(pd: Any) -> Any:
    return pd.DatetimeTZDtype(unit="ns", tz="UTC")


def _cat(codes: np.ndarray, cats: List[str], offset: int = 0) -> Any:
    """A Categorical from integer codes (out-of-range codes become NaN).

    Works on int8 codes and skips pandas' own validation: this runs over
    millions of rows in History and replay.
    """
    pd = _pd()
    c = np.asarray(codes)
    if offset:
        c = c.astype(np.int64) + offset
    dt = np.int8 if len(cats) < 127 else np.int32
    # range check by min and max: no temporary arrays on the common path
    if c.size and (c.min() < 0 or c.max() >= len(cats)):
        bad = (c < 0) | (c >= len(cats))  # before narrowing, which could wrap
        c = c.astype(dt)
        c[bad] = -1
    else:
        c = c.astype(dt)
    try:
        return pd.Categorical.from_codes(c, categories=cats, validate=False)
    except TypeError:  # pandas < 2.1 has no validate=
        return pd.Categorical.from_codes(c, categories=cats)


def _shared_store(path: Any) -> "Store":
    """Open a Store for path, or return the one this process has open."""
    p = os.fspath(path)
    if p == ":memory:":
        return Store(p)
    key = os.path.realpath(p)
    with _open_lock:
        s = _open_stores.get(key)
        if s is None or s._s == ffi.NULL:
            s = Store(p)
            _open_stores[key] = s
        return s


def _close_store(ptr: Any, attached: "weakref.WeakSet",
                 _attach: Any = lib.trip_breaker_attach,
                 _close: Any = lib.trip_store_close, _null: Any = ffi.NULL) -> None:
    """Destructor: detach the breakers still attached, then close.

    Everything it uses is bound as a default: at interpreter exit the
    module's globals may already be None when it runs.
    """
    for b in list(attached):
        if b._b != _null:
            _attach(b._b, _null)
    _close(ptr)


class Store:
    """A history database (``trip_store``): breakers write through it.

    Parameters
    ----------
    path : str or os.PathLike
        The SQLite file (created if missing unless read-only), or
        ``":memory:"``.
    read_only : bool
        Open for analysis only (no writer thread).
    **opts
        ``ring_capacity``, ``flush_interval_s``, ``batch_size``,
        ``synchronous``, ``busy_timeout_s``, ``sample_mode`` ("all",
        "one_in_n", "failures"), ``sample_n``, ``retention_days``,
        ``rollup_retention_days``, ``record_rejections``, ``max_pending``.

    Raises
    ------
    StoreError
        Missing file (read-only), corrupt file, newer schema, locked, I/O.
    InvalidConfigError
        For an unknown or invalid option.
    """

    # tests set a small first buffer to exercise paging
    _first_cap: Optional[int] = None

    def __init__(self, path: Union[str, "os.PathLike[str]"], *,
                 read_only: bool = False, **opts: Any) -> None:
        p = os.fspath(path)
        if not isinstance(p, str):
            p = os.fsdecode(p)
        o = ffi.new("trip_store_opts *")
        lib.trip_store_opts_init(o)
        for k, v in opts.items():
            self._set_opt(o, k, v)
        o.read_only = 1 if read_only else 0
        if read_only and p != ":memory:" and not os.path.exists(p):
            raise StoreError(f"history file {p!r} does not exist",
                             lib.TRIP_EIO)
        out = ffi.new("trip_store **")
        _check(lib.trip_store_open(os.fsencode(p), o, out), f"history {p!r}", p)
        self._attached: "weakref.WeakSet[Any]" = weakref.WeakSet()
        attached = self._attached
        self._s: Any = ffi.gc(out[0], lambda ptr, _c=_close_store: _c(ptr, attached))
        self.path = p
        self.read_only = bool(read_only)
        _all_stores.add(self)

    @staticmethod
    def _set_opt(o: Any, k: str, v: Any) -> None:
        if k not in _STORE_OPTS:
            raise InvalidConfigError(f"unknown store option {k!r} (expected one of "
                                     f"{', '.join(_STORE_OPTS)})")
        field, scale = _STORE_OPTS[k]
        if k == "sample_mode":
            if isinstance(v, str):
                if v not in _SAMPLE:
                    raise InvalidConfigError(f"sample_mode: unknown mode {v!r} "
                                             f"(expected {', '.join(_SAMPLE)})")
                v = _SAMPLE[v]
            elif not isinstance(v, numbers.Integral) or isinstance(v, bool):
                raise InvalidConfigError(f"sample_mode: expected one of "
                                         f"{', '.join(_SAMPLE)}, got {v!r}")
            setattr(o, field, int(v))
            return
        if k == "record_rejections":
            setattr(o, field, 1 if v else 0)
            return
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or \
                not math.isfinite(v) or v < 0:
            raise InvalidConfigError(f"{k}: expected a finite number >= 0, got {v!r}")
        try:
            setattr(o, field, v * scale if isinstance(scale, float)
                    else int(round(v * scale)))
        except OverflowError:
            raise InvalidConfigError(f"{k}: {v!r} is out of range") from None

    def _handle(self) -> Any:
        if self._s == ffi.NULL:
            raise TripsenseError(f"history {self.path!r} is closed")
        return self._s

    # ---- lifetime ---------------------------------------------------------

    def flush(self) -> None:
        """Wait until every row accepted so far is committed (GIL released).

        Raises
        ------
        StoreError
            The store's current error (rows were dropped and counted).
        """
        _check(lib.trip_store_flush(self._handle()), f"history {self.path!r}")

    def close(self) -> None:
        """Detach attached breakers, flush, stop the writer and close."""
        s = self._s
        if s == ffi.NULL:
            return
        self._s = ffi.NULL
        ffi.release(s)

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._s == ffi.NULL else ("read-only" if self.read_only else "open")
        return f"<tripsense.{type(self).__name__} {self.path!r} {state}>"

    def status(self) -> Dict[str, Any]:
        """Return the store's health and counters as a dict."""
        st = ffi.new("trip_store_status *")
        _check(lib.trip_store_status_get(self._handle(), st), "status")
        # every field of trip_store_status, so new counters appear by themselves
        out: Dict[str, Any] = {}
        for name, _ in ffi.typeof("trip_store_status").fields:
            v = getattr(st, name)
            if name == "status":
                v = _string(lib.trip_status_name(v))
            elif name == "message":
                v = ffi.string(v).decode("utf-8", "replace")
            out[name] = v
        return out

    # ---- names ------------------------------------------------------------

    def _breaker_id(self, name: Optional[str]) -> int:
        if name is None:
            return -1
        idp = ffi.new("int *")
        rc = lib.trip_store_breaker_id(self._handle(), _cname(str(name), "breaker"),
                                       idp)
        if rc == lib.TRIP_ENOTFOUND:
            known = ", ".join(self.breakers()) or "none"
            raise NotFoundError(f"history {self.path!r} has no breaker named "
                                f"{name!r} (it has: {known})", rc)
        _check(rc, "breaker")
        return idp[0]

    def _name_of(self, bid: int) -> Optional[str]:
        out = ffi.new("char **")
        rc = lib.trip_store_breaker_name(self._handle(), int(bid), out)
        if rc == lib.TRIP_ENOTFOUND:
            return None
        _check(rc, "breaker name")
        return _take_string(out)

    def breakers(self) -> List[str]:
        """Names of the breakers recorded in this history, by id."""
        names = []
        misses = 0
        bid = 0
        while misses < 16:  # ids are SQLite rowids: dense, from 1
            n = self._name_of(bid)
            if n is None:
                misses += 1
            else:
                misses = 0
                names.append(n)
            bid += 1
        return names

    # ---- bulk reads -------------------------------------------------------

    def _read(self, table: int, cname: str, reader: Callable[..., int],
              breaker: Optional[str], start: Any, end: Any,
              time_field: Optional[str]) -> np.ndarray:
        s = self._handle()
        bid = self._breaker_id(breaker)
        lo = INT64_MIN if start is None else to_ns(start, "start")
        hi = INT64_MAX if end is None else to_ns(end, "end")
        if lo > hi:
            raise InvalidConfigError(f"start ({start}) is after end ({end})")
        cnt = ffi.new("int64_t *")
        _check(lib.trip_store_count(s, table, bid, lo, hi, cnt), f"history {self.path!r}")
        dtype = struct_dtype(cname)
        # the count sizes the buffer; rows written since are read by paging
        first = self._first_cap or max(int(cnt[0]), 0) + 64
        arr = np.empty(first, dtype=dtype)
        n = ffi.new("size_t *")
        more = ffi.new("int *")
        pos = 0
        while True:
            cap = len(arr) - pos
            if cap < 64:
                arr = _grow(arr, 2 * len(arr) + 64)
                cap = len(arr) - pos
            buf = ffi.from_buffer(cname + "[]", arr[pos:])
            # C writes cap rows of its own struct size: never more than fit
            if arr.dtype.itemsize != ffi.sizeof(cname) or len(buf) < cap:
                raise TripsenseError(f"internal error: buffer for {cname} does "
                                     f"not match the C layout")
            if time_field is None:
                rc = reader(s, bid, buf, cap, n, more)
            else:
                rc = reader(s, bid, lo, hi, buf, cap, n, more)
            if rc == lib.TRIP_ERANGE and time_field is not None:
                # one timestamp has more rows than cap: grow and read again
                arr = _grow(arr, 2 * len(arr))
                continue
            _check(rc, f"history {self.path!r}")
            if time_field is None:
                if more[0]:  # no paging key: read everything again, larger
                    arr = np.empty(len(arr) * 2, dtype=dtype)
                    continue
                pos = n[0]
                break
            pos += n[0]
            if not more[0]:
                break
            lo = int(arr[pos - 1][time_field]) + 1
        return arr[:pos]

    def _names(self, ids: np.ndarray) -> Any:
        uniq = np.unique(ids)
        names = [self._name_of(int(i)) or f"#{int(i)}" for i in uniq]
        return _cat(np.searchsorted(uniq, ids), names)

    def outcomes(self, breaker: Optional[str] = None, start: Any = None,
                 end: Any = None) -> "pd.DataFrame":
        """Raw outcome rows as a DataFrame (see docs/python.md for columns).

        Raises
        ------
        NotFoundError
            If ``breaker`` is not in the history.
        StoreError
            If the database cannot be read.
        """
        pd = _pd()
        a = self._read(0, "trip_outcome_row", lib.trip_store_read_outcomes,
                       breaker, start, end, "wall_ns")
        return pd.DataFrame({
            "breaker": self._names(a["breaker_id"]),
            "outcome": _cat(a["outcome"], _OUTCOME_CATS, 1),
            "latency_s": a["latency_s"].astype(np.float64),
            "state": _cat(a["state"], _STATE_CATS),
            "decision": _cat(a["decision"], _DECISION_CATS),
            "slow": a["slow"].astype(bool),
            "weight": a["weight"].astype(np.float64),
        }, index=_index(a["wall_ns"]))

    def rollups(self, breaker: Optional[str] = None, start: Any = None,
                end: Any = None) -> "pd.DataFrame":
        """Per-minute rollups as a DataFrame (index: start of the minute)."""
        pd = _pd()
        a = self._read(1, "trip_rollup_row", lib.trip_store_read_rollups,
                       breaker, start, end, "minute_ns")
        calls = a["calls"].astype(np.int64)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(calls > 0, a["latency_sum_s"] / np.maximum(calls, 1), np.nan)
            rate = np.where(calls > 0, (a["failures"] + a["timeouts"]) /
                            np.maximum(calls, 1), np.nan)
        cols: Dict[str, Any] = {"breaker": self._names(a["breaker_id"])}
        for c in ("calls", "successes", "failures", "timeouts", "ignored", "slow",
                  "rejected", "limited"):
            cols[c] = a[c].astype(np.int64)
        cols["latency_sum_s"] = a["latency_sum_s"].astype(np.float64)
        cols["latency_mean_s"] = mean
        cols["failure_rate"] = rate
        for c in ("p50_s", "p90_s", "p95_s", "p99_s", "p999_s"):
            cols[c] = a[c].astype(np.float64)
        return pd.DataFrame(cols, index=_index(a["minute_ns"]))

    def transitions(self, breaker: Optional[str] = None, start: Any = None,
                    end: Any = None) -> "pd.DataFrame":
        """State changes as a DataFrame."""
        a = self._read(2, "trip_transition_row", lib.trip_store_read_transitions,
                       breaker, start, end, "wall_ns")
        return _transitions_frame(a, self._names(a["breaker_id"]))

    def baselines(self, breaker: Optional[str] = None) -> "pd.DataFrame":
        """Saved seasonal baseline buckets (index: last update)."""
        pd = _pd()
        a = self._read(3, "trip_baseline_row", lib.trip_store_read_baselines,
                       breaker, None, None, None)
        var = a["var"].astype(np.float64)
        return pd.DataFrame({
            "breaker": self._names(a["breaker_id"]),
            "bucket": a["bucket"].astype(np.int64),
            "metric": _cat(a["metric"], _METRIC_CATS),
            "mean": a["mean"].astype(np.float64),
            "var": var,
            "sd": np.sqrt(np.maximum(var, 0.0)),
            "n": a["n"].astype(np.int64),
            "quantile": a["quantile"].astype(np.float64),
        }, index=_index(a["updated_ns"]))

    def events(self, breaker: str, start: Any = None, end: Any = None) -> "pd.DataFrame":
        """The admitted outcome rows of one breaker in the replay input
        format (index ``time``; columns ``outcome``, ``latency_s``)."""
        pd = _pd()
        a = self._read(0, "trip_outcome_row", lib.trip_store_read_outcomes,
                       breaker, start, end, "wall_ns")
        a = a[a["outcome"] >= 0]
        return pd.DataFrame({
            "outcome": _cat(a["outcome"], _OUTCOME_CATS[1:]),
            "latency_s": a["latency_s"].astype(np.float64),
        }, index=_index(a["wall_ns"]))


def _transitions_frame(a: np.ndarray, breaker_col: Any) -> "pd.DataFrame":
    pd = _pd()
    return pd.DataFrame({
        "breaker": breaker_col,
        "from_state": _cat(a["from"], _STATE_CATS),
        "to_state": _cat(a["to"], _STATE_CATS),
        "rule": _cat(a["rule"], _RULE_CATS),
        "score": a["score"].astype(np.float64),
        "threshold": a["threshold"].astype(np.float64),
        "baseline": a["baseline"].astype(np.float64),
        "samples": a["samples"].astype(np.int64),
    }, index=_index(a["wall_ns"]))


class History(Store):
    """A history opened for analysis (read-only by default).

    Same as :class:`Store` with ``read_only=True``; see its readers
    :meth:`outcomes`, :meth:`rollups`, :meth:`transitions`,
    :meth:`baselines` and :meth:`events`.
    """

    def __init__(self, path: Union[str, "os.PathLike[str]"], *,
                 read_only: bool = True, **opts: Any) -> None:
        super().__init__(path, read_only=read_only, **opts)
