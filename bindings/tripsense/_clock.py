# SPDX-License-Identifier: GPL-3.0-or-later
"""ManualClock: a clock that moves only when told to (tests, replay-like use)."""
from __future__ import annotations

from typing import Any

from ._config import int64, seconds_to_ns
from ._lowlevel import InvalidConfigError, _check, ffi, lib

NS = 1_000_000_000


class ManualClock:
    """A manual clock (``trip_clock_manual_new``).

    Parameters
    ----------
    start_ns : int
        Initial monotonic reading in nanoseconds (>= 0).
    wall_offset_ns : int
        Wall time = monotonic + this (nanoseconds since the Unix epoch).

    Raises
    ------
    InvalidConfigError
        For a negative start or non-integer arguments.

    Notes
    -----
    Breakers created with the clock keep it alive. Thread-safe.
    """

    def __init__(self, start_ns: int = 0, wall_offset_ns: int = 0) -> None:
        for n, v in (("start_ns", start_ns), ("wall_offset_ns", wall_offset_ns)):
            if isinstance(v, bool) or not isinstance(v, int):
                raise InvalidConfigError(f"{n}: expected an int of nanoseconds, got {v!r}")
        out = ffi.new("trip_clock **")
        _check(lib.trip_clock_manual_new(start_ns, wall_offset_ns, out), "ManualClock")
        self._ptr: Any = ffi.gc(out[0], lib.trip_clock_free)

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` (>= 0)."""
        self.advance_ns(seconds_to_ns(seconds, "advance"))

    def advance_ns(self, ns: int) -> None:
        """Move the clock forward by ``ns`` nanoseconds (>= 0)."""
        _check(lib.trip_clock_advance(self._ptr, int64(ns, "advance_ns")), "advance")

    def set_ns(self, now_ns: int) -> None:
        """Set the monotonic reading; time may not go backwards."""
        _check(lib.trip_clock_set(self._ptr, int64(now_ns, "set_ns")), "set_ns")

    def set(self, seconds: float) -> None:
        """Set the monotonic reading in seconds."""
        self.set_ns(seconds_to_ns(seconds, "set"))

    @property
    def now_ns(self) -> int:
        """Monotonic reading in nanoseconds."""
        return int(lib.trip_clock_now(self._ptr))

    @property
    def wall_ns(self) -> int:
        """Wall reading in nanoseconds since the Unix epoch."""
        return int(lib.trip_clock_wall(self._ptr))

    @property
    def now(self) -> float:
        """Monotonic reading in seconds."""
        return self.now_ns / NS

    def sleep(self, seconds: float) -> None:
        """Advance instead of sleeping: pass as ``Retry(sleep=clock.sleep)``."""
        self.advance(seconds)

    def __repr__(self) -> str:
        return f"ManualClock(now_ns={self.now_ns}, wall_ns={self.wall_ns})"
