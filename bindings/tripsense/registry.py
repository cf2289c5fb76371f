# SPDX-License-Identifier: GPL-3.0-or-later
"""Registry: named breakers per dependency, with health JSON and Prometheus."""
from __future__ import annotations

import asyncio
import json
import threading
from typing import Any, Dict, Iterator, List, Optional, Union

from . import _config
from ._clock import ManualClock
from ._lowlevel import (InvalidConfigError, NotFoundError, TripsenseError,
                        _check, _cname, _string, _take_string, ffi, lib)
from .breaker import Breaker

__all__ = ["Registry", "default_registry"]

_POLICY = ("exclude", "timeouts", "error_weights", "failure_weight", "fallback",
           "timeout", "priority", "health_probe", "probe_interval")


def _free_registry(ptr: Any, keep: list, _free: Any = lib.trip_registry_free) -> None:
    _free(ptr)
    keep.clear()


class Registry:
    """A set of named breakers (``trip_registry``).

    The registry owns the C breakers it creates or is given; they live until
    :meth:`close` or until the registry is garbage collected (Breaker
    objects it returned keep it alive).
    """

    def __init__(self) -> None:
        out = ffi.new("trip_registry **")
        _check(lib.trip_registry_new(out), "registry")
        self._keep: list = []  # clocks, stores and Breakers of the registry
        keep = self._keep
        # defaults bind the destructor: module globals may be None at exit
        self._r: Any = ffi.gc(out[0], lambda p, _f=_free_registry: _f(p, keep))
        self._by_name: Dict[str, Breaker] = {}
        self._lock = threading.Lock()

    def _handle(self) -> Any:
        if self._r == ffi.NULL:
            raise TripsenseError("registry is closed")
        return self._r

    def get_or_create(self, name: str, *, clock: Optional[ManualClock] = None,
                      tier: Union[str, int, None] = None, history: Any = None,
                      **config: Any) -> Breaker:
        """Return the breaker called ``name``, creating it if needed.

        Keywords are those of :class:`Breaker`; they are ignored when the
        breaker exists already.

        Raises
        ------
        InvalidConfigError
            For a bad name or option.
        """
        if not isinstance(name, str):
            _cname(name, "name")  # raises
        with self._lock:
            b = self._by_name.get(name)
            if b is None:
                b = self._create(name, tier, clock, config)
        # an existing breaker without a history gets this one (a first
        # attempt whose attach failed left it registered without)
        if history is not None and b._store is None:
            b.attach(history)
            self._keep.append(b._store)
        return b

    def _create(self, name: str, tier: Any, clock: Optional[ManualClock],
                config: Dict[str, Any]) -> Breaker:
        """A new registered breaker; under _lock. Everything is checked
        before the C breaker exists: the registry has no way to drop one, and
        a half-made breaker would be handed out by the next call."""
        cname = _cname(name, "name")
        if clock is not None and not isinstance(clock, ManualClock):
            raise InvalidConfigError(f"clock: expected a ManualClock, got {clock!r}")
        policy = dict(exclude=(), timeouts=(TimeoutError, asyncio.TimeoutError),
                      error_weights=None, failure_weight=1.0, fallback=None,
                      timeout=None, priority=None, health_probe=None,
                      probe_interval=None)
        policy.update({k: config.pop(k) for k in list(config) if k in _POLICY})
        cfg = _config.build(config, tier)
        Breaker._check_policy(**policy)
        out = ffi.new("trip_breaker **")
        _check(lib.trip_registry_get_or_create(
            self._handle(), cname, cfg, clock._ptr if clock else ffi.NULL, out),
            f"breaker {name!r}")
        b = Breaker._wrap(out[0], name, clock, self, **policy)
        self._keep.append(clock)
        self._by_name[name] = b
        return b

    def add(self, breaker: Breaker) -> None:
        """Hand an existing Breaker to the registry, which then owns it.

        Raises
        ------
        TripsenseError
            If a breaker of that name is registered (``TRIP_EEXIST``).
        """
        if not isinstance(breaker, Breaker):
            raise InvalidConfigError(f"add: expected a Breaker, got {breaker!r}")
        if breaker._owner is not None:
            raise InvalidConfigError(f"breaker {breaker.name!r} already belongs to a registry")
        with self._lock:
            _check(lib.trip_registry_add(self._handle(), breaker._c()),
                   f"breaker {breaker.name!r}")
            ffi.gc(breaker._b, None)  # the registry frees it now
            breaker._owner = self
            self._keep.append(breaker._keep)
            self._by_name[breaker.name] = breaker

    def depends(self, name: str, needed: str) -> None:
        """Declare that breaker ``name`` needs breaker ``needed``.

        Raises
        ------
        NotFoundError
            If either is not registered.
        InvalidConfigError
            For a cycle (the message names it).
        """
        _check(lib.trip_registry_depends(self._handle(), _cname(name, "depends: name"),
                                         _cname(needed, "depends: needed")),
               f"{name} needs {needed}")

    @property
    def breakers(self) -> List[Breaker]:
        """The registered breakers, in creation order."""
        return list(self._by_name.values())

    def __getitem__(self, name: str) -> Breaker:
        try:
            return self._by_name[name]
        except KeyError:
            raise NotFoundError(f"no breaker named {name!r} in the registry") from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __len__(self) -> int:
        return int(lib.trip_registry_count(self._handle()))

    def __iter__(self) -> Iterator[Breaker]:
        return iter(self.breakers)

    def health_json(self) -> str:
        """The health report of every breaker as JSON text."""
        out = ffi.new("char **")
        _check(lib.trip_registry_health_json(self._handle(), out), "health_json")
        return _take_string(out)

    def health(self) -> Dict[str, Any]:
        """The health report parsed into a dict."""
        return json.loads(self.health_json())

    def prometheus(self) -> str:
        """Prometheus text exposition (format 0.0.4) of every breaker."""
        out = ffi.new("char **")
        _check(lib.trip_registry_prometheus(self._handle(), out), "prometheus")
        return _take_string(out)

    def __enter__(self) -> "Registry":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Free the registry and its breakers; their Breaker objects then
        raise on use."""
        r = self._r
        if r == ffi.NULL:
            return
        with self._lock:
            for b in self._by_name.values():
                b._forget_c()
            self._by_name.clear()
            self._r = ffi.NULL
        ffi.release(r)


_default: Optional[Registry] = None
_default_lock = threading.Lock()


def default_registry() -> Registry:
    """Return the process-wide registry (created on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Registry()
        return _default
