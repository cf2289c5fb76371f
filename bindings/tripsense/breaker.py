# SPDX-License-Identifier: GPL-3.0-or-later
"""Breaker: the circuit breaker as a decorator, context manager and caller."""
from __future__ import annotations

import asyncio
import contextvars
import datetime as _dt
import functools
import inspect
import json
import logging
import math
import numbers
import os
import threading
import time
import weakref
from dataclasses import dataclass
from typing import (Any, Callable, Dict, Mapping, Optional, Tuple, Type, TypeVar,
                    Union)

from . import _config
from ._clock import ManualClock
from ._lowlevel import (CircuitOpenError, InvalidConfigError, TripsenseError,
                        _check, _cname, _hot, _string, _take_string, ffi, lib)

__all__ = ["Breaker", "Snapshot", "Reason", "Event", "Ticket"]

log = logging.getLogger("tripsense")
NS = 1_000_000_000
F = TypeVar("F", bound=Callable[..., Any])

SUCCESS, FAILURE, TIMEOUT, IGNORED = 0, 1, 2, 3
PASS, REJECTED, LIMITED = 0, 1, 2
CLOSED, OPEN, HALF_OPEN = 0, 1, 2
FORCED_OPEN, FORCED_CLOSED, DISABLED, METRICS_ONLY = 3, 4, 5, 6

_OUTCOMES = {"success": SUCCESS, "failure": FAILURE, "timeout": TIMEOUT,
             "ignored": IGNORED}
_MODES = {"normal": 0, "forced_open": 3, "forced_closed": 4, "disabled": 5,
          "metrics_only": 6}
STATE_NAMES = [_string(lib.trip_state_name(i)) for i in range(7)]
RULE_NAMES = [_string(lib.trip_rule_name(i)) for i in range(lib.TRIP_RULE_COUNT_)]
DECISION_NAMES = [_string(lib.trip_decision_name(i)) for i in range(3)]
OUTCOME_NAMES = [_string(lib.trip_outcome_name(i)) for i in range(4)]

_allow = lib.trip_allow
_allow_priority = lib.trip_allow_priority
_record = lib.trip_record
_record_weighted = lib.trip_record_weighted
# the one-argument glue of _build_ffi.py: the decorator, call() and `with`;
# no I/O, no lock on the closed path, so they keep the GIL (_hotpath.c):
# through cffi each of a guarded call's two C calls gave it to a waiting
# thread (docs/python.md, "Threads and asyncio")
_py_allow = _hot.tripsense_py_allow
_py_allow_priority = _hot.tripsense_py_allow_priority
_py_success = _hot.tripsense_py_success
_py_record = _hot.tripsense_py_record
_py_record_weighted = _hot.tripsense_py_record_weighted
# `with` blocks outside an event loop: open in C, per thread
_py_enter = _hot.tripsense_py_enter
_py_exit = _hot.tripsense_py_exit
_py_exit_success = _hot.tripsense_py_exit_success
_NO_BLOCK = lib.TRIPSENSE_PY_NO_BLOCK
_SLOT = ffi.typeof("tripsense_py_call *")
_monotonic_ns = time.monotonic_ns
_running_loop = asyncio.events._get_running_loop
_new_exception = BaseException.__new__
_TICKET = ffi.typeof("trip_ticket *")
_SNAP = ffi.typeof("trip_snapshot *")
_tls = threading.local()

# Ticket buffers shared by all threads: list.pop and list.append are atomic,
# so a buffer popped here belongs to one call until it is pushed back
# (ffi.new costs about 0.2 us; a pop and a push about 0.05 us). The pool
# holds at most as many buffers as calls were ever in flight at once.
_pool: list = []
_pool_pop = _pool.pop
_pool_push = _pool.append
_POOL_KEEP = 1024  # what _give keeps after a burst of concurrent async calls


def _take() -> Any:
    """A ticket buffer from the pool."""
    try:
        return _pool_pop()
    except IndexError:
        return ffi.new(_TICKET)


def _give(t: Any) -> None:
    """Return a ticket buffer once C is done with it."""
    if len(_pool) < _POOL_KEEP:
        _pool_push(t)


def _scratch_snapshot() -> Any:
    try:
        return _tls.snap
    except AttributeError:
        _tls.snap = ffi.new(_SNAP)
        return _tls.snap


def _rule_name(rule: int) -> str:
    return RULE_NAMES[rule] if 0 <= rule < len(RULE_NAMES) else "unknown"


def _wall_to_datetime(ns: int) -> Optional[_dt.datetime]:
    if ns == 0:
        return None
    return _dt.datetime.fromtimestamp(ns // NS, _dt.timezone.utc) + \
        _dt.timedelta(microseconds=(ns % NS) // 1000)


@dataclass(frozen=True)
class Reason:
    """Why a breaker changed state: the rule and its evidence."""

    rule: str
    score: float
    threshold: float
    baseline: float
    samples: int
    time: Optional[_dt.datetime]

    @classmethod
    def _from_c(cls, r: Any) -> "Reason":
        return cls(_rule_name(r.rule), r.score, r.threshold, r.baseline,
                   int(r.samples), _wall_to_datetime(int(r.wall_ns)))


@dataclass(frozen=True)
class Snapshot:
    """A copy of a breaker's state and counters (``trip_snapshot_get``)."""

    state: str
    machine_state: str
    generation: int
    calls: int
    successes: int
    failures: int
    timeouts: int
    ignored: int
    slow: int
    rejected: int
    limited: int
    late: int
    in_flight: int
    window_calls: int
    window_failures: int
    window_slow: int
    window_failure_rate: float
    window_slow_rate: float
    p50_s: float
    p90_s: float
    p95_s: float
    p99_s: float
    p999_s: float
    consecutive_failures: int
    consecutive_timeouts: int
    trips: int
    seconds_until_half_open: float
    half_open_in_flight: int
    half_open_successes: int
    ramp_fraction: float
    last_trip: Reason
    transitions: int
    store_dropped: int
    store_status: str
    flapping: bool
    shed: bool
    limit_fraction: float
    weighted_failures: float

    @classmethod
    def _from_c(cls, s: Any) -> "Snapshot":
        return cls(
            state=STATE_NAMES[s.state], machine_state=STATE_NAMES[s.machine_state],
            generation=int(s.generation), calls=s.calls, successes=s.successes,
            failures=s.failures, timeouts=s.timeouts, ignored=s.ignored,
            slow=s.slow, rejected=s.rejected, limited=s.limited, late=s.late,
            in_flight=s.in_flight, window_calls=s.window_calls,
            window_failures=s.window_failures, window_slow=s.window_slow,
            window_failure_rate=s.window_failure_rate,
            window_slow_rate=s.window_slow_rate, p50_s=s.p50_s, p90_s=s.p90_s,
            p95_s=s.p95_s, p99_s=s.p99_s, p999_s=s.p999_s,
            consecutive_failures=s.consecutive_failures,
            consecutive_timeouts=s.consecutive_timeouts, trips=s.trips,
            seconds_until_half_open=s.ns_until_half_open / NS,
            half_open_in_flight=s.half_open_in_flight,
            half_open_successes=s.half_open_successes,
            ramp_fraction=s.ramp_fraction, last_trip=Reason._from_c(s.last_trip),
            transitions=s.transitions, store_dropped=s.store_dropped,
            store_status=_string(lib.trip_status_name(s.store_status)),
            flapping=bool(s.flapping), shed=bool(s.shed),
            limit_fraction=s.limit_fraction,
            weighted_failures=s.weighted_failures,
        )


@dataclass(frozen=True)
class Event:
    """A state change or a refused call, given to listeners."""

    kind: str
    breaker: str
    from_state: str
    to_state: str
    reason: Reason
    decision: Optional[str]
    generation: int


class Ticket:
    """A pass for one call from :meth:`Breaker.allow`; record it once.

    Attributes
    ----------
    decision : str
        Always ``"pass"`` (refusals raise instead).
    state : str
        The breaker's state at the decision.
    admitted : bool
        True.
    recorded : bool
        True once :meth:`Breaker.record` took it.
    """

    __slots__ = ("_t", "_owner", "decision", "state", "recorded")

    def __init__(self, t: Any, owner: "Breaker", decision: str, state: str) -> None:
        self._t = t
        self._owner = owner
        self.decision = decision
        self.state = state
        self.recorded = False

    @property
    def admitted(self) -> bool:
        return self.decision == "pass"

    def __repr__(self) -> str:
        return (f"<Ticket {self._owner.name!r} {self.decision} in {self.state}"
                f"{' recorded' if self.recorded else ''}>")


class _Listener:
    __slots__ = ("fn", "rejections", "__weakref__")

    def __init__(self, fn: Callable[[Event], Any], rejections: bool) -> None:
        self.fn = fn
        self.rejections = rejections


def _listener_onerror(exc: Any, value: Any, tb: Any) -> None:
    log.error("tripsense listener callback failed", exc_info=(exc, value, tb))


@ffi.def_extern(onerror=_listener_onerror)
def _tripsense_listener(kind: int, t: Any, user: Any) -> None:
    slot = ffi.from_handle(user)
    if kind == lib.TRIP_EVENT_REJECTION and not slot.rejections:
        return
    try:
        if kind == lib.TRIP_EVENT_REJECTION:
            # reason.rule carries the decision here, not a rule
            dec = t.reason.rule
            reason = Reason("none", math.nan, math.nan, math.nan, 0, None)
            ev = Event("rejection", _string(t.breaker), STATE_NAMES[t.to],
                       STATE_NAMES[t.to], reason,
                       DECISION_NAMES[dec] if 0 <= dec < 3 else "unknown",
                       int(t.generation))
        else:
            reason = Reason._from_c(t.reason)
            ev = Event("transition", _string(t.breaker),
                       STATE_NAMES[getattr(t, "from")], STATE_NAMES[t.to],
                       reason, None, int(t.generation))
        slot.fn(ev)
    except Exception:  # a listener must never break the breaker or the caller
        log.exception("tripsense listener %r raised", slot.fn)


def _real(v: Any, what: str) -> float:
    """A real number (not a bool or a string) as a float; NaN and the
    infinities are the C side's to judge, with its own message."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise InvalidConfigError(f"{what}: expected a number, got {v!r}")
    return float(v)


def _check_timeout(timeout: Any) -> Optional[float]:
    """None, or seconds > 0 and finite (not a bool)."""
    if timeout is not None and not (isinstance(timeout, (int, float))
                                    and not isinstance(timeout, bool)
                                    and timeout > 0 and math.isfinite(timeout)):
        raise InvalidConfigError(f"timeout: expected seconds > 0, got {timeout!r}")
    return timeout


def _check_fallback(fallback: Any) -> Any:
    if fallback is not None and not callable(fallback):
        raise InvalidConfigError(f"fallback: expected a callable, got {fallback!r}")
    return fallback


def _is_async_callable(f: Any) -> bool:
    """f is a coroutine function, or an object whose __call__ is one."""
    return f is not None and (inspect.iscoroutinefunction(f) or
                              inspect.iscoroutinefunction(getattr(f, "__call__", None)))


def _exception_types(x: Any, what: str) -> Tuple[Type[BaseException], ...]:
    if isinstance(x, type) and issubclass(x, BaseException):
        return (x,)
    if isinstance(x, (tuple, list)) and all(
            isinstance(t, type) and issubclass(t, BaseException) for t in x):
        return tuple(x)
    raise InvalidConfigError(f"{what}: expected an exception type or a tuple "
                             f"of them, got {x!r}")


class _Guard:
    """``with breaker.guard(priority=...)``: one guarded block. It keeps its
    own ticket, so the block may end in another thread or task than it
    began in (a generator resumed in a thread pool), which ``with
    breaker:`` (a stack per thread or task) does not allow."""

    __slots__ = ("_b", "_priority", "_t")

    def __init__(self, b: "Breaker", priority: Optional[int]) -> None:
        self._b = b
        self._priority = priority
        self._t: Any = None

    def __enter__(self) -> "Breaker":
        if self._t is not None:
            raise TripsenseError(f"breaker {self._b._name!r}: this guard's block is "
                                 "open already; call guard() for each block")
        b = self._b
        t, d = b._admit(self._priority)
        if d:
            raise b._refusal(d, t)
        self._t = t
        return b

    def __exit__(self, et: Any, e: Any, tb: Any) -> bool:
        t, self._t = self._t, None
        b = self._b
        if t is None:
            raise TripsenseError(f"breaker {b._name!r}: exit without enter")
        return b._finish(t, e)

    async def __aenter__(self) -> "Breaker":
        return self.__enter__()

    async def __aexit__(self, et: Any, e: Any, tb: Any) -> bool:
        return self.__exit__(et, e, tb)


class Breaker:
    """An adaptive circuit breaker over the C engine.

    Parameters
    ----------
    name : str
        Non-empty, at most 127 bytes of UTF-8.
    history : str, os.PathLike or Store, optional
        Record outcomes, rollups and transitions to this history (a path
        opens or shares a :class:`~tripsense.Store`).
    clock : ManualClock, optional
        Time source for tests; default the system clock.
    tier : str or int, optional
        Start from a service tier's defaults ("critical", "high", "medium",
        "low").
    exclude : exception type(s) or predicate, optional
        Exceptions recorded as *ignored* (neither success nor failure).
    timeouts : tuple of exception types
        Exceptions recorded as *timeout*.
    error_weights : mapping of exception type to float, optional
        Failure weights by exception class (first match along the MRO).
    failure_weight : float
        Weight of other failures (default 1).
    fallback : callable, optional
        ``fallback(*args, **kwargs)`` is returned for refused calls.
    timeout : float, optional
        Default timeout in seconds of async calls.
    priority : int, optional
        Default call priority 0..255.
    health_probe : callable, optional
        Called instead of live traffic to decide recovery (see ``probe``).
    probe_interval : float, optional
        Seconds between probes in half-open (default 1).
    **config
        Engine options (see ``tripsense.options()``), durations in seconds.

    Raises
    ------
    InvalidConfigError
        For a bad name, an unknown option or an invalid value (the message
        names it).
    StoreError
        If the history cannot be opened.
    """

    def __init__(
        self,
        name: str,
        *,
        history: Any = None,
        clock: Optional[ManualClock] = None,
        tier: Union[str, int, None] = None,
        exclude: Any = (),
        timeouts: Any = (TimeoutError, asyncio.TimeoutError),
        error_weights: Optional[Mapping[Type[BaseException], float]] = None,
        failure_weight: float = 1.0,
        fallback: Optional[Callable[..., Any]] = None,
        timeout: Optional[float] = None,
        priority: Optional[int] = None,
        health_probe: Optional[Callable[[], Any]] = None,
        probe_interval: Optional[float] = None,
        **config: Any,
    ) -> None:
        cname = _cname(name, "name")
        if clock is not None and not isinstance(clock, ManualClock):
            raise InvalidConfigError(f"clock: expected a ManualClock, got {clock!r}")
        cfg = _config.build(config, tier)
        out = ffi.new("trip_breaker **")
        _check(lib.trip_breaker_new(cname, cfg,
                                    clock._ptr if clock else ffi.NULL, out),
               f"breaker {name!r}")
        keep: list = [clock]
        # defaults bind what the destructor needs: at interpreter exit the
        # module's globals may already be None when it runs
        ptr = ffi.gc(out[0], lambda p, _k=keep, _free=lib.trip_breaker_free: _free(p))
        self._setup(ptr, name, clock, keep, owner=None)
        try:
            self._policy(exclude, timeouts, error_weights, failure_weight, fallback,
                         timeout, priority, health_probe, probe_interval)
        except BaseException:
            self.close()
            raise
        self._start_probing()
        if history is not None:
            try:
                self.attach(history)
            except BaseException:
                self.close()
                raise

    # ---- construction helpers -------------------------------------------

    def _setup(self, ptr: Any, name: str, clock: Optional[ManualClock],
               keep: list, owner: Any) -> None:
        self._b = ptr
        self._name = name
        self._clock = clock
        self._keep = keep
        self._owner = owner  # a Registry that owns the C breaker, or None
        self._store: Any = None
        self._reason_cache: Optional[tuple] = None
        # tripsense_py_call buffers (breaker + ticket) of this breaker: the
        # free ones, and every one made, which close() points at NULL
        self._slots: list = []
        self._slots_made: list = []
        # the owner of this breaker's plain `with` blocks in the glue's
        # per-thread list (close() clears its b like any slot's)
        self._with = self._new_slot()
        self._listeners: Dict[int, Tuple[Any, _Listener]] = {}
        self._signals: Dict[str, int] = {}
        self._cv: contextvars.ContextVar = contextvars.ContextVar(
            f"tripsense-ticket-{name}-{id(self)}", default=None)

    def _policy(self, exclude: Any, timeouts: Any, error_weights: Any,
                failure_weight: float, fallback: Any, timeout: Any,
                priority: Any, health_probe: Any, probe_interval: Any) -> None:
        self._exclude_types: Tuple[type, ...] = ()
        self._exclude_pred: Optional[Callable[[BaseException], bool]] = None
        if exclude is None or exclude == ():
            pass
        elif isinstance(exclude, (type, tuple, list)):
            self._exclude_types = _exception_types(exclude, "exclude")
        elif callable(exclude):
            self._exclude_pred = exclude
        else:
            raise InvalidConfigError(f"exclude: expected exception types or a "
                                     f"predicate, got {exclude!r}")
        self._timeouts = _exception_types(timeouts, "timeouts") if timeouts else ()
        self._failure_weight = self._weight(failure_weight, "failure_weight")
        self._weights: Dict[type, float] = {}
        if error_weights is not None and not isinstance(error_weights, Mapping):
            raise InvalidConfigError(f"error_weights: expected a mapping of "
                                     f"exception type to weight, got {error_weights!r}")
        for k, v in (error_weights or {}).items():
            # one type per key: the lookup walks the exception's MRO
            if not (isinstance(k, type) and issubclass(k, BaseException)):
                raise InvalidConfigError(f"error_weights: keys must be single "
                                         f"exception types, got {k!r}")
            self._weights[k] = self._weight(v, f"error_weights[{k.__name__}]")
        self._fallback = _check_fallback(fallback)
        self._timeout = _check_timeout(timeout)
        self._priority = self._check_priority(priority)
        if health_probe is not None and not callable(health_probe):
            raise InvalidConfigError(f"health_probe: expected a callable, got {health_probe!r}")
        if _is_async_callable(health_probe):
            # probes run in a thread, where nothing would await it: its
            # coroutine would count as a success whatever it raised
            raise InvalidConfigError("health_probe: expected a plain function, got "
                                     f"a coroutine function {health_probe!r}; "
                                     "wrap it, e.g. lambda: asyncio.run(probe())")
        self._probe_fn = health_probe
        # `with breaker:` may admit inline: no probe, no default priority
        self._plain = health_probe is None and self._priority is None
        if probe_interval is None:
            probe_interval = 1.0
        if not (isinstance(probe_interval, (int, float)) and probe_interval >= 0
                and math.isfinite(probe_interval)):
            raise InvalidConfigError(f"probe_interval: expected seconds >= 0, got {probe_interval!r}")
        self._probe_interval_ns = int(probe_interval * NS)
        self._probe_lock = threading.Lock()
        # the probe thread's start and its decision to stop: one at a time,
        # else a trip between the loop's last look and its exit found the
        # thread alive, started none, and nothing probed
        self._probe_thread_lock = threading.Lock()
        self._last_probe_ns: Optional[int] = None
        self._probe_thread: Optional[threading.Thread] = None

    def _start_probing(self) -> None:
        """After _policy: probe in a thread when the breaker opens."""
        if self._probe_fn is not None and self._clock is None:
            self.add_listener(self._on_probe_transition)

    @staticmethod
    def _weight(w: Any, what: str) -> float:
        if isinstance(w, bool) or not isinstance(w, (int, float)) or \
                not (0 <= w <= 1000):
            raise InvalidConfigError(f"{what}: expected a weight in [0, 1000], got {w!r}")
        return float(w)

    @staticmethod
    def _check_priority(p: Any) -> Optional[int]:
        if p is None:
            return None
        if isinstance(p, bool) or not isinstance(p, int) or not 0 <= p <= 255:
            raise InvalidConfigError(f"priority: expected an int in [0, 255], got {p!r}")
        return p

    @staticmethod
    def _check_retry(r: Any) -> Any:
        if r is None:  # the common case: no import on the hot path
            return None
        from .conveniences import Retry

        if not isinstance(r, Retry):
            raise InvalidConfigError(f"retry: expected a tripsense.Retry, got {r!r}")
        return r

    @classmethod
    def _wrap(cls, ptr: Any, name: str, clock: Optional[ManualClock],
              owner: Any, **policy: Any) -> "Breaker":
        self = cls.__new__(cls)
        self._setup(ptr, name, clock, [clock], owner)
        self._policy(**policy)
        self._start_probing()
        return self

    @classmethod
    def _check_policy(cls, **policy: Any) -> None:
        """Raise InvalidConfigError for a bad policy keyword, as the
        constructor would, before any C breaker exists."""
        cls.__new__(cls)._policy(**policy)

    # ---- identity and lifetime -------------------------------------------

    @property
    def name(self) -> str:
        """The breaker's name."""
        return self._name

    def __repr__(self) -> str:
        st = self.state if self._b != ffi.NULL else "freed"
        return f"<tripsense.Breaker {self._name!r} {st}>"

    def close(self) -> None:
        """Free the C breaker now; using the breaker afterwards raises
        :class:`TripsenseError`.

        A breaker a :class:`Registry` owns lives as long as the registry,
        which keeps handing it out: close() leaves it as it is (close the
        registry instead).
        """
        b = self._b
        if b == ffi.NULL or self._owner is not None:
            return
        for lid in list(self._listeners):
            lib.trip_breaker_remove_listener(b, lid)
        self._forget_c()
        if self._owner is None:
            ffi.release(b)

    def _forget_c(self) -> None:
        """Drop every reference to the C breaker, which is about to be
        freed: later calls get TRIP_EINVAL and raise "closed"."""
        self._b = ffi.NULL
        for slot in self._slots_made:
            slot.b = ffi.NULL

    def _closed_error(self) -> TripsenseError:
        return TripsenseError(f"breaker {self._name!r} is closed")

    def _c(self) -> Any:
        if self._b == ffi.NULL:
            raise self._closed_error()
        return self._b

    # ---- history ----------------------------------------------------------

    def attach(self, history: Any) -> None:
        """Attach to a history store (a path or a Store); None detaches."""
        from .history import Store, _shared_store

        b = self._c()
        if history is None:
            _check(lib.trip_breaker_attach(b, ffi.NULL), "attach")
            self._store = None
            return
        store = history if isinstance(history, Store) else _shared_store(history)
        _check(lib.trip_breaker_attach(b, store._handle()), "attach")
        store._attached.add(self)
        self._store = store
        self._keep.append(store)

    @property
    def store(self) -> Any:
        """The attached Store, or None."""
        return self._store

    # ---- state ------------------------------------------------------------

    @property
    def state(self) -> str:
        """The current state name ("closed", "open", "half_open", ...)."""
        st = lib.trip_breaker_state(self._c())
        return STATE_NAMES[_check(st)]

    def _state_code(self) -> int:
        return _check(lib.trip_breaker_state(self._c()))

    def is_open(self) -> bool:
        """True when open or forced open (calls are rejected)."""
        return self._state_code() in (OPEN, FORCED_OPEN)

    def is_half_open(self) -> bool:
        """True in half-open (only probe calls pass)."""
        return self._state_code() == HALF_OPEN

    def is_closed(self) -> bool:
        """True when calls pass normally (closed, forced closed, disabled,
        metrics-only)."""
        return self._state_code() in (CLOSED, FORCED_CLOSED, DISABLED, METRICS_ONLY)

    def snapshot(self) -> Snapshot:
        """Return a :class:`Snapshot` of state and counters."""
        s = ffi.new("trip_snapshot *")
        _check(lib.trip_snapshot_get(self._c(), s), "snapshot")
        return Snapshot._from_c(s)

    def _set_mode(self, mode: str) -> None:
        _check(lib.trip_breaker_set_mode(self._c(), _MODES[mode]), mode)

    def force_open(self) -> None:
        """Reject every call until :meth:`reset`."""
        self._set_mode("forced_open")

    def force_closed(self) -> None:
        """Admit every call (still recording) until :meth:`reset`."""
        self._set_mode("forced_closed")

    def disable(self) -> None:
        """Admit every call and record nothing until :meth:`reset`."""
        self._set_mode("disabled")

    def metrics_only(self) -> None:
        """Shadow mode: run the machine, count would-be refusals, admit all."""
        self._set_mode("metrics_only")

    def reset(self) -> None:
        """Back to normal operation: closed, with fresh windows."""
        self._set_mode("normal")

    def tick(self) -> None:
        """Run the bucket roll now if the bucket has ended (manual clocks)."""
        _check(lib.trip_breaker_tick(self._c()), "tick")

    @property
    def config(self) -> Dict[str, Union[int, float]]:
        """Every option, under its Python name and in Python units."""
        cfg = ffi.new("trip_config *")
        _check(lib.trip_breaker_config(self._c(), cfg), "config")
        return _config.to_dict(cfg)

    def _config_ptr(self) -> Any:
        cfg = ffi.new("trip_config *")
        _check(lib.trip_breaker_config(self._c(), cfg), "config")
        return cfg

    def reconfigure(self, **config: Any) -> None:
        """Change options of the running breaker.

        Raises
        ------
        InvalidConfigError
            Naming the option; the old configuration stays.
        """
        cfg = self._config_ptr()
        _config.apply(cfg, config)
        _config.validate(cfg)
        _check(lib.trip_breaker_reconfigure(self._c(), cfg), "reconfigure")

    # ---- reports ----------------------------------------------------------

    def health_json(self) -> str:
        """The health report of this breaker as JSON text."""
        out = ffi.new("char **")
        _check(lib.trip_breaker_health_json(self._c(), out), "health_json")
        return _take_string(out)

    def health(self) -> Dict[str, Any]:
        """The health report parsed into a dict."""
        return json.loads(self.health_json())

    def prometheus(self) -> str:
        """Prometheus text exposition of this breaker."""
        out = ffi.new("char **")
        _check(lib.trip_breaker_prometheus(self._c(), out), "prometheus")
        return _take_string(out)

    # ---- dependencies and signals -----------------------------------------

    def add_dependency(self, other: "Breaker", action: Optional[str] = None) -> None:
        """Declare that this breaker needs ``other``.

        Parameters
        ----------
        other : Breaker
        action : {"report", "shed", "open"}, optional
            What this breaker does when ``other`` opens
            (``dependency_action``).

        Raises
        ------
        InvalidConfigError
            For self, a cycle (the message names it) or a bad action.
        """
        if not isinstance(other, Breaker):
            raise InvalidConfigError(f"add_dependency: expected a Breaker, got {other!r}")
        if action is not None:
            self.reconfigure(dependency_action=action)
        _check(lib.trip_breaker_add_dependency(self._c(), other._c()),
               f"{self._name} needs {other._name}")
        self._keep.append(other)

    def add_signal(self, name: str, threshold: Optional[float] = None, *,
                   z: float = 0.0, duration: float = 0.0) -> str:
        """Declare a health signal that trips the breaker when it stays high.

        Parameters
        ----------
        name : str
            1..31 bytes, unique for this breaker.
        threshold : float, optional
            Absolute limit (None: none).
        z : float
            Limit in standard deviations above its own seasonal baseline
            (0: off).
        duration : float
            Seconds the value must stay above the limit.
        """
        idp = ffi.new("int *")
        thr = math.inf if threshold is None else _real(threshold, "add_signal: threshold")
        z = _real(z, "add_signal: z")
        cname = _cname(name, "add_signal: name")
        _check(lib.trip_breaker_add_signal(self._c(), cname, thr, z,
                                           _config.seconds_to_ns(duration, "duration"),
                                           idp),
               f"signal {name!r}")
        self._signals[name] = idp[0]
        return name

    def _signal_id(self, name: str) -> int:
        from ._lowlevel import NotFoundError

        try:
            return self._signals[name]
        except KeyError:
            raise NotFoundError(f"breaker {self._name!r} has no signal {name!r}") from None

    def signal(self, name: str, value: float) -> None:
        """Feed the current value of a signal."""
        _check(lib.trip_breaker_signal(self._c(), self._signal_id(name),
                                       _real(value, f"signal {name!r}: value")),
               f"signal {name!r}")

    def signal_value(self, name: str) -> Tuple[float, float, float]:
        """Return (last value, baseline mean, baseline sd) of a signal."""
        v = ffi.new("double[3]")
        _check(lib.trip_breaker_signal_get(self._c(), self._signal_id(name),
                                           v, v + 1, v + 2), f"signal {name!r}")
        return (v[0], v[1], v[2])

    # ---- listeners --------------------------------------------------------

    def add_listener(self, fn: Callable[[Event], Any], *, rejections: bool = False) -> int:
        """Call ``fn(event)`` on every state change (and refused call if
        ``rejections``). Returns an id for :meth:`remove_listener`.

        Raises
        ------
        TripsenseError
            When 8 listeners are registered already.
        """
        if not callable(fn):
            raise InvalidConfigError(f"add_listener: expected a callable, got {fn!r}")
        slot = _Listener(fn, rejections)
        handle = ffi.new_handle(slot)
        idp = ffi.new("int *")
        _check(lib.trip_breaker_add_listener(self._c(), lib._tripsense_listener,
                                             handle, idp), "add_listener")
        self._listeners[idp[0]] = (handle, slot)
        return idp[0]

    def remove_listener(self, listener_id: int) -> None:
        """Remove a listener by the id add_listener returned."""
        _check(lib.trip_breaker_remove_listener(self._c(), listener_id),
               f"listener {listener_id}")
        # the callback may still run once in another thread: keep the handle
        # alive until then by dropping it only from our table
        self._listeners.pop(listener_id, None)

    def on_transition(self, fn: F) -> F:
        """Decorator form of :meth:`add_listener`."""
        self.add_listener(fn)
        return fn

    # ---- the call paths ---------------------------------------------------

    def _refusal(self, d: int, t: Any) -> TripsenseError:
        """The exception for decision d (> 0: refused, < 0: an error);
        gives the ticket buffer t back to the pool.

        Callers ``raise self._refusal(d, t)`` with no local name for the
        exception: a name would tie it, its traceback and the frame into a
        cycle that only the garbage collector frees, on every refusal.
        """
        st, gen = t.state, t.generation
        _pool_push(t)  # held for microseconds: the pool stays bounded
        return self._refusal_of(d, st, gen)

    def _refusal_of(self, d: int, st: int, gen: int) -> TripsenseError:
        """The exception for decision d of a ticket in state st, generation
        gen (the caller has given the ticket back)."""
        if d < 0:
            if self._b == ffi.NULL:
                return self._closed_error()
            from ._lowlevel import _error
            return _error(d, "allow")
        # the last trip and the open deadline change only with the state
        # generation: read a snapshot once per generation, not per refusal
        c = self._reason_cache
        if c is None or c[0] != gen:
            s = _scratch_snapshot()
            lib.trip_snapshot_get(self._b, s)
            r = s.last_trip
            c = (s.generation, _rule_name(r.rule), r.score, r.threshold,
                 s.open_until_ns)
            self._reason_cache = c
        # names, retry time and message are made when first read: no
        # Python __init__ runs (see CircuitOpenError._fields)
        e = _new_exception(CircuitOpenError, self._name)
        e._src = (self, st, d, c)  # type: ignore[attr-defined]
        return e

    def _describe_refusal(self, state: int, d: int, c: tuple) -> tuple:
        """CircuitOpenError's attributes from what the refusal kept."""
        until = c[4]
        retry_after = 0.0
        if until:  # allow() does not read the clock when it rejects
            now = self._now_ns()
            retry_after = (until - now) / NS if until > now else 0.0
        return (STATE_NAMES[state], DECISION_NAMES[d], c[1], retry_after,
                c[2], c[3])

    def _classify(self, e: BaseException) -> Tuple[int, float]:
        if not isinstance(e, Exception):
            return IGNORED, 1.0
        if self._exclude_types and isinstance(e, self._exclude_types):
            return IGNORED, 1.0
        if self._exclude_pred is not None:
            try:
                if self._exclude_pred(e):
                    return IGNORED, 1.0
            except Exception:
                log.exception("tripsense exclude predicate raised; "
                              "counting the call as a failure")
        outcome = TIMEOUT if self._timeouts and isinstance(e, self._timeouts) else FAILURE
        w = self._failure_weight
        if self._weights:
            for k in type(e).__mro__:
                if k in self._weights:
                    w = self._weights[k]
                    break
        return outcome, w

    def _record_exc(self, t: Any, e: BaseException) -> int:
        outcome, w = self._classify(e)
        if w == 1.0 or outcome in (SUCCESS, IGNORED):
            _record(self._b, t, outcome)
        else:
            _record_weighted(self._b, t, outcome, -1.0, w)
        return outcome

    def _slot_record_exc(self, s: Any, e: BaseException) -> int:
        """_record_exc for a tripsense_py_call."""
        outcome, w = self._classify(e)
        if w == 1.0 or outcome in (SUCCESS, IGNORED):
            _py_record(s, outcome)
        else:
            _py_record_weighted(s, outcome, w)
        return outcome

    def _new_slot(self) -> Any:
        """A tripsense_py_call for this breaker (the pool was empty)."""
        s = ffi.new(_SLOT)
        # listed before it points at the breaker, so that a close() in
        # between still finds it
        self._slots_made.append(s)
        s.b = self._b
        return s

    def _slot_refusal(self, d: int, s: Any) -> TripsenseError:
        """_refusal for a tripsense_py_call, given back to the pool."""
        st, gen = s.state, s.generation  # s.t's, without making s.t
        self._slots.append(s)
        c = self._reason_cache
        if d > 0 and c is not None and c[0] == gen:
            # _refusal_of's common case inlined: the rejected path under
            # load, where a frame is a tenth of its cost
            e = _new_exception(CircuitOpenError, self._name)
            e._src = (self, st, d, c)  # type: ignore[attr-defined]
            return e
        return self._refusal_of(d, st, gen)

    def _admit(self, priority: Optional[int]) -> Tuple[Any, int]:
        t = _take()
        p = self._priority if priority is None else priority
        if self._probe_fn is not None:
            st = lib.trip_breaker_state(self._b)
            if st in (OPEN, HALF_OPEN):
                # live traffic does not probe: the health probe does
                self._kick_probe()
                t.state = st
                t.generation = 0  # never cached: refusal reads a snapshot
                return t, REJECTED if st == OPEN else LIMITED
        d = _allow(self._b, t) if p is None else _allow_priority(self._b, t, p)
        return t, d

    def _refused(self, d: int, t: Any, fallback: Any, args: tuple,
                 kwargs: dict, cause: Optional[BaseException] = None) -> Any:
        fb = self._fallback if fallback is None else fallback
        if fb is not None and d > 0:
            _give(t)
            return fb(*args, **kwargs)
        if cause is not None:
            raise self._refusal(d, t) from cause
        raise self._refusal(d, t)

    def _call(self, f: Callable[..., Any], args: tuple, kwargs: dict,
              retry: Any, priority: Optional[int], fallback: Any) -> Any:
        if retry is not None:
            return self._call_retry(f, args, kwargs, retry, priority, fallback)
        if self._probe_fn is None:
            # the hot path, inlined: one allow, the call, one record
            try:
                t = _pool_pop()
            except IndexError:
                t = ffi.new(_TICKET)
            p = self._priority if priority is None else priority
            d = _allow(self._b, t) if p is None else _allow_priority(self._b, t, p)
        else:
            t, d = self._admit(priority)
        if d:
            fb = self._fallback if fallback is None else fallback
            if fb is not None and d > 0:
                _give(t)
                return fb(*args, **kwargs)
            raise self._refusal(d, t)
        try:
            r = f(*args, **kwargs)
        except BaseException as e:
            self._record_exc(t, e)
            _give(t)
            raise
        _record(self._b, t, SUCCESS)
        _give(t)
        return r

    def call(self, f: Callable[..., Any], *args: Any, retry: Any = None,
             priority: Optional[int] = None, fallback: Any = None,
             **kwargs: Any) -> Any:
        """Call ``f(*args, **kwargs)`` through the breaker.

        Parameters
        ----------
        retry : Retry, optional
            Retry failed attempts with backoff (each attempt is a call).
        priority : int, optional
            0..255; default the breaker's.
        fallback : callable, optional
            Returned as ``fallback(*args, **kwargs)`` if the call is refused.

        Raises
        ------
        CircuitOpenError
            If the call is refused and there is no fallback.
        Exception
            Whatever ``f`` raises (after recording it).
        """
        if not callable(f):  # else calling it would count as a failure
            raise TypeError(f"call: expected a callable, got {f!r}")
        if fallback is not None:
            _check_fallback(fallback)
        if retry is not None or priority is not None or self._probe_fn is not None:
            return self._call(f, args, kwargs, self._check_retry(retry),
                              self._check_priority(priority), fallback)
        # the common case inlined, as in the decorator
        slots = self._slots
        try:
            s = slots.pop()
        except IndexError:
            s = self._new_slot()
        p = self._priority
        d = _py_allow(s) if p is None else _py_allow_priority(s, p)
        if d:
            fb = self._fallback if fallback is None else fallback
            if fb is not None and d > 0:
                slots.append(s)
                return fb(*args, **kwargs)
            raise self._slot_refusal(d, s)
        try:
            r = f(*args, **kwargs)
        except BaseException as e:
            self._slot_record_exc(s, e)
            slots.append(s)
            raise
        _py_success(s)
        slots.append(s)
        return r

    def _call_retry(self, f: Callable[..., Any], args: tuple, kwargs: dict,
                    retry: Any, priority: Optional[int], fallback: Any) -> Any:
        last: Optional[BaseException] = None
        for i in range(retry.attempts):
            if i:
                retry._sleep_sync(retry.delay(i - 1))
            t, d = self._admit(priority)
            if d:
                return self._refused(d, t, fallback, args, kwargs, cause=last)
            try:
                r = f(*args, **kwargs)
            except BaseException as e:
                outcome = self._record_exc(t, e)
                _give(t)
                if outcome == IGNORED or i + 1 >= retry.attempts or \
                        not retry.should_retry(e):
                    raise
                last = e
                continue
            _record(self._b, t, SUCCESS)
            _give(t)
            return r
        raise AssertionError("unreachable")  # attempts >= 1 is validated

    async def _acall(self, f: Callable[..., Any], args: tuple, kwargs: dict,
                     timeout: Optional[float], retry: Any,
                     priority: Optional[int], fallback: Any) -> Any:
        to = self._timeout if timeout is None else timeout
        attempts = 1 if retry is None else retry.attempts
        last: Optional[BaseException] = None
        for i in range(attempts):
            if i:
                await retry._sleep_async(retry.delay(i - 1))
            t, d = self._admit(priority)
            if d:
                r = self._refused(d, t, fallback, args, kwargs, cause=last)
                return await r if inspect.isawaitable(r) else r
            try:
                r = f(*args, **kwargs)
                if inspect.isawaitable(r):
                    r = await (asyncio.wait_for(r, to) if to is not None else r)
            except BaseException as e:
                if to is not None and isinstance(e, asyncio.TimeoutError):
                    _record(self._b, t, TIMEOUT)
                    outcome = TIMEOUT
                else:
                    outcome = self._record_exc(t, e)
                _give(t)
                if retry is None or outcome == IGNORED or i + 1 >= attempts \
                        or not retry.should_retry(e):
                    raise
                last = e
                continue
            _record(self._b, t, SUCCESS)
            _give(t)
            return r
        raise AssertionError("unreachable")

    async def acall(self, f: Callable[..., Any], *args: Any,
                    timeout: Optional[float] = None, retry: Any = None,
                    priority: Optional[int] = None, fallback: Any = None,
                    **kwargs: Any) -> Any:
        """Await ``f(*args, **kwargs)`` through the breaker.

        ``timeout`` (seconds, default the breaker's) bounds the call with
        ``asyncio.wait_for``; expiry is recorded as a timeout and raises
        ``asyncio.TimeoutError``. Other parameters as :meth:`call`; the
        fallback may be a coroutine function.
        """
        if not callable(f):
            raise TypeError(f"acall: expected a callable, got {f!r}")
        return await self._acall(f, args, kwargs, _check_timeout(timeout),
                                 self._check_retry(retry),
                                 self._check_priority(priority), _check_fallback(fallback))

    def decorate(self, *, priority: Optional[int] = None, fallback: Any = None,
                 retry: Any = None, timeout: Optional[float] = None) -> Callable[[F], F]:
        """Return a decorator with per-function options (sync or async).

        ``timeout`` (seconds) bounds each call of a coroutine function as in
        :meth:`acall`; a plain function cannot be interrupted, so giving it
        a timeout is an error.
        """
        priority = self._check_priority(priority)
        self._check_retry(retry)
        _check_timeout(timeout)
        _check_fallback(fallback)

        def deco(f: F) -> F:
            if not callable(f):
                raise TypeError(f"decorate: expected a callable, got {f!r}")
            if timeout is not None and not inspect.iscoroutinefunction(f):
                raise InvalidConfigError(
                    f"timeout: {getattr(f, '__qualname__', f)!r} is not a coroutine "
                    "function; a plain call cannot be interrupted (raise a "
                    "TimeoutError from it to record a timeout)")
            if inspect.iscoroutinefunction(f):
                @functools.wraps(f)
                async def aw(*args: Any, **kwargs: Any) -> Any:
                    return await self._acall(f, args, kwargs, timeout, retry,
                                             priority, fallback)
                return aw  # type: ignore[return-value]

            if retry is not None or self._probe_fn is not None:
                @functools.wraps(f)
                def w(*args: Any, **kwargs: Any) -> Any:
                    return self._call(f, args, kwargs, retry, priority, fallback)
                return w  # type: ignore[return-value]
            return functools.wraps(f)(  # type: ignore[return-value]
                self._fast_wrapper(f, priority, fallback))
        return deco

    def _fast_wrapper(self, f: Callable[..., Any], priority: Optional[int],
                      fallback: Any) -> Callable[..., Any]:
        """The decorated call with everything inlined into one frame: the
        common case (no retry, no health probe) is the hot path of a
        service, and each Python frame, attribute lookup or argument to C
        costs a visible share of it. The policy is fixed at construction,
        so it is bound here. Each call takes a tripsense_py_call (breaker
        and ticket) from the breaker's pool: one argument per C call."""
        me = self
        p = self._priority if priority is None else priority
        fb = self._fallback if fallback is None else fallback
        slots = self._slots
        pop, push, new_slot = slots.pop, slots.append, self._new_slot
        success = _py_success
        # a frame more only for calls with a priority
        allow: Callable[[Any], int] = _py_allow if p is None else (
            lambda s, _a=_py_allow_priority, _p=p: _a(s, _p))

        def w(*args: Any, **kwargs: Any) -> Any:
            try:
                s = pop()
            except IndexError:
                s = new_slot()
            d = allow(s)
            if d:
                if fb is not None and d > 0:
                    push(s)
                    return fb(*args, **kwargs)
                raise me._slot_refusal(d, s)
            try:
                r = f(*args, **kwargs)
            except BaseException as e:
                me._slot_record_exc(s, e)
                push(s)
                raise
            success(s)
            push(s)
            return r
        return w

    def __call__(self, f: F) -> F:
        """Use the breaker as a decorator of a function or coroutine function."""
        if not callable(f):
            raise TypeError(f"Breaker decorates callables, got {f!r}")
        return self.decorate()(f)

    # ---- context managers ---------------------------------------------------

    def _enter(self, priority: Optional[int]) -> "Breaker":
        if priority is None and self._plain:
            try:
                t = _pool_pop()
            except IndexError:
                t = ffi.new(_TICKET)
            d = _allow(self._b, t)
        else:
            t, d = self._admit(priority)
        if d:
            raise self._refusal(d, t)
        # the open blocks of this thread or task: a linked list (ticket, rest)
        cv = self._cv
        cv.set((t, cv.get()))
        return self

    def _exit(self, e: Optional[BaseException]) -> bool:
        cv = self._cv
        top = cv.get()
        if top is None:
            raise self._no_block_error()
        t, rest = top
        cv.set(rest)
        return self._finish(t, e)

    def _finish(self, t: Any, e: Optional[BaseException]) -> bool:
        """Record a block's ticket t by how it ended (e: its exception or
        None) and give the buffer back; False: the exception goes on."""
        if e is None:
            _record(self._b, t, SUCCESS)
        else:
            self._record_exc(t, e)
        _give(t)
        return False

    # __enter__ and __exit__ are _enter(None) and _exit(e) inlined when the
    # policy allows (self._plain, fixed). The open blocks are a stack per
    # thread, or per task while an event loop runs (tasks interleave). With
    # no loop running, the glue keeps the thread's blocks in C
    # (tripsense_py_enter/exit): admitting a block and recording it are the
    # two C calls any guarded call makes, and the per-thread stack comes
    # with them (a threading.local stack cost about 0.14 us per block).
    # Under a running loop, the context variable: each task runs in its own
    # context. Whether a loop runs is the same at a block's exit as at its
    # entry: a coroutine runs only while its loop does.

    def __enter__(self) -> "Breaker":
        if not self._plain:
            return self._enter(None)
        if _running_loop() is None:
            r = _py_enter(self._with)
            if r:
                raise self._with_refusal(r)
            return self
        try:
            s = self._slots.pop()
        except IndexError:
            s = self._new_slot()
        d = _py_allow(s)
        if d:
            raise self._slot_refusal(d, s)
        cv = self._cv
        cv.set((s, cv.get()))
        return self

    def __exit__(self, et: Any, e: Any, tb: Any) -> bool:
        if not self._plain:
            return self._exit(e)
        if _running_loop() is None:
            if e is None:
                rc = _py_exit_success(self._with)
            else:
                outcome, w = self._classify(e)
                # as _slot_record_exc: weighted only when it changes something
                rc = _py_exit(self._with, outcome,
                              -1.0 if w == 1.0 or outcome == IGNORED else w)
            if rc and rc == _NO_BLOCK:  # other statuses: as _py_success's
                raise self._no_block_error()
            return False
        cv = self._cv
        top = cv.get()
        if top is None:
            raise self._no_block_error()
        s, rest = top
        cv.set(rest)
        if e is None:
            _py_success(s)
        else:
            self._slot_record_exc(s, e)
        self._slots.append(s)
        return False

    def _no_block_error(self) -> TripsenseError:
        return TripsenseError(
            f"breaker {self._name!r}: exit without enter in this thread or task: "
            "a `with breaker:` block must end where it began; for a block that "
            "may end elsewhere (a generator resumed in another thread), use "
            "`with breaker.guard():`")

    def _with_refusal(self, r: int) -> TripsenseError:
        """The exception for what tripsense_py_enter returned (r != 0): a
        status, or the decision, state and generation of a refusal."""
        if r < 0:
            return self._refusal_of(r, 0, 0)
        d, st, gen = r & 3, (r >> 2) & 7, r >> 5
        c = self._reason_cache
        if c is not None and c[0] == gen:
            # as in _slot_refusal: no frame more on the common case
            e = _new_exception(CircuitOpenError, self._name)
            e._src = (self, st, d, c)  # type: ignore[attr-defined]
            return e
        return self._refusal_of(d, st, gen)

    async def __aenter__(self) -> "Breaker":
        return self._enter(None)

    async def __aexit__(self, et: Any, e: Any, tb: Any) -> bool:
        return self._exit(e)

    def guard(self, priority: Optional[int] = None) -> _Guard:
        """A context manager guarding a block at a priority."""
        return _Guard(self, self._check_priority(priority))

    # ---- manual tickets ---------------------------------------------------

    def allow(self, priority: Optional[int] = None) -> Ticket:
        """Ask to make one call; raise CircuitOpenError if refused.

        Record the returned ticket exactly once with :meth:`record`.
        """
        t, d = self._admit(self._check_priority(priority))
        if d:
            raise self._refusal(d, t)
        # the caller keeps this one: copy it out of the pool's buffer
        own = ffi.new(_TICKET, t[0])
        _give(t)  # t may be another thread's from here on: read own
        return Ticket(own, self, "pass", STATE_NAMES[own.state])

    def record(self, ticket: Ticket, outcome: str, latency: Optional[float] = None,
               weight: Optional[float] = None) -> None:
        """Record the outcome of a call admitted by :meth:`allow`.

        Raises
        ------
        InvalidConfigError
            For an unknown outcome, a bad latency (NaN, negative) or weight.
        """
        if not isinstance(ticket, Ticket):
            raise InvalidConfigError(f"record: expected a Ticket, got {ticket!r}")
        if ticket._owner is not self:
            raise InvalidConfigError(f"record: the ticket was issued by breaker "
                                     f"{ticket._owner.name!r}, not {self._name!r}")
        if ticket.recorded:
            raise InvalidConfigError("record: this ticket was recorded already")
        try:
            oc = _OUTCOMES[outcome]
        except (KeyError, TypeError):
            raise InvalidConfigError(f"record: unknown outcome {outcome!r} "
                                     f"(expected one of {', '.join(_OUTCOMES)})") from None
        lat = -1.0 if latency is None else float(latency)
        if latency is not None and not (lat >= 0 and math.isfinite(lat)):
            raise InvalidConfigError(f"record: latency must be finite and >= 0, got {latency!r}")
        w = 1.0 if weight is None else self._weight(weight, "weight")
        _check(_record_weighted(self._c(), ticket._t, oc, lat, w), "record")
        ticket.recorded = True

    # ---- health probes ----------------------------------------------------

    def _now_ns(self) -> int:
        if self._clock is None:
            # the system clock reads CLOCK_MONOTONIC, as time.monotonic_ns()
            # does on POSIX: no call into C on the rejected path
            return _monotonic_ns()
        return int(lib.trip_clock_now(self._clock._ptr))

    def probe(self) -> Optional[str]:
        """Run the health probe if one is due; return its outcome name.

        A probe is due when the breaker is open and its open period is
        over, or half-open and ``probe_interval`` has passed since the last
        probe. The probe is admitted at priority 255 and its outcome is
        recorded like a call's. Returns None when nothing was due.
        """
        if self._probe_fn is None:
            raise TripsenseError(f"breaker {self._name!r} has no health_probe")
        b = self._c()
        with self._probe_lock:
            st = lib.trip_breaker_state(b)
            now = self._now_ns()
            if st == OPEN:
                s = ffi.new("trip_snapshot *")
                lib.trip_snapshot_get(b, s)
                if s.ns_until_half_open > 0:
                    return None
            elif st == HALF_OPEN:
                if self._last_probe_ns is not None and \
                        now - self._last_probe_ns < self._probe_interval_ns:
                    return None
            else:
                return None
            t = ffi.new(_TICKET)
            if _allow_priority(b, t, 255) != PASS:
                return None
            self._last_probe_ns = now
            try:
                self._probe_fn()
            except Exception as e:
                return OUTCOME_NAMES[self._record_exc(t, e)]
            except BaseException as e:
                # KeyboardInterrupt, SystemExit: recorded (as ignored) so
                # that the probe's slot is given back, then passed on
                self._record_exc(t, e)
                raise
            _record(b, t, SUCCESS)
            return "success"

    def _on_probe_transition(self, ev: Event) -> None:
        if ev.to_state == "open":
            self._kick_probe()

    def _kick_probe(self) -> None:
        if self._clock is not None:
            return  # manual clocks: the test drives probe()
        with self._probe_thread_lock:
            th = self._probe_thread
            if th is not None and th.is_alive():
                return
            th = threading.Thread(target=_probe_loop, args=(weakref.ref(self),),
                                  name=f"tripsense-probe-{self._name}", daemon=True)
            self._probe_thread = th
            th.start()


def _probe_loop(wref: "weakref.ref[Breaker]") -> None:
    """Probe while the breaker is open or half-open (system clock only)."""
    stop = threading.Event()
    while True:
        b = wref()
        if b is None or b._b == ffi.NULL:
            return
        try:
            with b._probe_thread_lock:
                if lib.trip_breaker_state(b._b) not in (OPEN, HALF_OPEN):
                    b._probe_thread = None
                    return
            b.probe()
            wait = b._probe_interval_ns / NS
            if lib.trip_breaker_state(b._b) == OPEN:
                s = ffi.new("trip_snapshot *")
                lib.trip_snapshot_get(b._b, s)
                wait = max(s.ns_until_half_open / NS, 0.001)
        except Exception:
            log.exception("tripsense health probe loop failed")
            wait = 1.0
        del b
        stop.wait(min(max(wait, 0.001), 60.0))
