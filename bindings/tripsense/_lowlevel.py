# SPDX-License-Identifier: GPL-3.0-or-later
"""The thin layer over the C library: exceptions, ``_check`` and helpers.

Every status code from ``include/tripsense/status.h`` becomes an exception
here and nowhere else, with the thread's detailed message from
``trip_errmsg()`` (which names the field, file or event at fault).
"""
from __future__ import annotations

from typing import Any, Optional

from ._tripsense import ffi, lib

__all__ = [
    "ffi",
    "lib",
    "TripsenseError",
    "InvalidConfigError",
    "StoreError",
    "NotFoundError",
    "CircuitOpenError",
    "_check",
    "_string",
    "_take_string",
]

NS = 1_000_000_000


class TripsenseError(Exception):
    """Base class of every tripsense error.

    Attributes
    ----------
    status : int
        The C status code (``TRIP_E...``, negative), or 0 when raised by the
        Python layer itself.
    status_name : str
        Its symbolic name, e.g. ``"TRIP_EINVAL"``.
    """

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.status_name = _string(lib.trip_status_name(status)) if status else ""


class InvalidConfigError(TripsenseError, ValueError):
    """An invalid argument or configuration option (the message names it)."""


class StoreError(TripsenseError, OSError):
    """The history store failed: locked, read-only, corrupt, full, I/O."""

    def __init__(self, message: str, status: int = 0) -> None:
        TripsenseError.__init__(self, message, status)


class NotFoundError(TripsenseError, KeyError):
    """A name that does not exist (breaker, option, listener)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class CircuitOpenError(TripsenseError):
    """A call was refused by a breaker.

    Attributes
    ----------
    breaker : str
        The breaker's name.
    state : str
        The breaker's state at the decision (``"open"``, ``"half_open"``,
        ``"forced_open"``, ...).
    decision : str
        ``"rejected"`` (open) or ``"limited"`` (half-open probe budget,
        ramp-up or rate limiter).
    reason, rule : str
        The rule behind the last trip (``"failure_rate"``, ...), or
        ``"none"``. ``rule`` is an alias of ``reason``.
    score, threshold : float
        The last trip's observed value and the limit it crossed.
    retry_after : float
        Seconds until the breaker will probe again (0 if unknown or now),
        counted from when an attribute or the message is first read.

    Notes
    -----
    A breaker raises this on its rejected path, which must stay cheap: it
    keeps the raw decision and builds the attributes and the message only
    when one of them is first read, once.
    """

    status = 0
    status_name = ""
    # _v: (state, decision, reason, retry_after, score, threshold) once
    # known. Until then _src: (breaker, state code, decision code, reason
    # cache), set by Breaker._refusal, which makes the error with
    # BaseException.__new__ (no __init__) and whose _describe_refusal
    # turns _src into _v.
    __slots__ = ("_v", "_src")

    def __init__(
        self,
        breaker: str,
        state: str,
        decision: str,
        reason: str,
        retry_after: float,
        score: float = float("nan"),
        threshold: float = float("nan"),
    ) -> None:
        Exception.__init__(self, breaker)
        self._v = (state, decision, reason, retry_after, score, threshold)

    def _fields(self) -> tuple:
        try:
            return self._v
        except AttributeError:
            src = self._src
            v = self._v = src[0]._describe_refusal(*src[1:])
            self._src = None  # the breaker need not outlive the report
            return v

    @property
    def breaker(self) -> str:
        return self.args[0]

    @property
    def state(self) -> str:
        return self._fields()[0]

    @property
    def decision(self) -> str:
        return self._fields()[1]

    @property
    def reason(self) -> str:
        return self._fields()[2]

    rule = reason

    @property
    def retry_after(self) -> float:
        return self._fields()[3]

    @property
    def score(self) -> float:
        return self._fields()[4]

    @property
    def threshold(self) -> float:
        return self._fields()[5]

    def __str__(self) -> str:
        state, decision, reason, retry_after, score, threshold = self._fields()
        msg = (
            f"circuit {self.breaker!r} is {state}: call {decision}"
            f" (last trip: {reason}"
        )
        if reason != "none" and score == score:
            msg += f", score {score:.6g} >= {threshold:.6g}"
        return msg + f"); retry after {retry_after:.3f} s"

    def __repr__(self) -> str:
        return f"CircuitOpenError({str(self)!r})"

    def __reduce__(self) -> Any:
        return (type(self), (self.breaker,) + self._fields())



_STORE = {
    lib.TRIP_ESTORE,
    lib.TRIP_EBUSY,
    lib.TRIP_ESCHEMA,
    lib.TRIP_ECORRUPT,
    lib.TRIP_EREADONLY,
    lib.TRIP_EFULL,
    lib.TRIP_EIO,
}

_MAP = {
    lib.TRIP_EINVAL: InvalidConfigError,
    lib.TRIP_ERANGE: InvalidConfigError,
    lib.TRIP_ENOTFOUND: NotFoundError,
}


def _string(p: Any) -> str:
    """Decode a C string that the library owns (static or thread-local)."""
    if p == ffi.NULL:
        return ""
    return ffi.string(p).decode("utf-8", "replace")


def _cname(name: Any, what: str) -> bytes:
    """A name as C takes it: a str without NUL (C would end it there, and
    "a\0b" would name the breaker "a"). Length and emptiness are C's to
    judge, with their own messages."""
    if not isinstance(name, str):
        raise InvalidConfigError(f"{what}: expected a str, got {name!r}")
    if "\0" in name:
        raise InvalidConfigError(f"{what}: {name!r} contains a NUL character")
    return name.encode()


def _take_string(pp: Any) -> str:
    """Decode ``*pp`` (a ``char **`` filled by the library) and free it."""
    try:
        return _string(pp[0])
    finally:
        lib.trip_string_free(pp[0])


def _error(rc: int, context: Optional[str] = None,
           named: Optional[str] = None) -> TripsenseError:
    """Build the exception for status rc, with the thread's message, after
    context unless the message already contains ``named`` (the store's
    messages name their file: the prefix repeated it)."""
    detail = _string(lib.trip_errmsg()) or _string(lib.trip_strerror(rc))
    if named is not None and named in detail:
        context = None
    msg = f"{context}: {detail}" if context else detail
    if rc in _STORE:
        cls: type = StoreError
    else:
        cls = _MAP.get(rc, TripsenseError)
    if cls is StoreError:
        return StoreError(msg, rc)
    return cls(msg, rc)


def _check(rc: int, context: Optional[str] = None,
           named: Optional[str] = None) -> int:
    """Return rc if it is not an error, else raise the mapped exception.

    ``TRIP_EINVAL`` and ``TRIP_ERANGE`` give :class:`InvalidConfigError`,
    ``TRIP_ENOTFOUND`` :class:`NotFoundError`, the store statuses
    (``ESTORE``, ``EBUSY``, ``ESCHEMA``, ``ECORRUPT``, ``EREADONLY``,
    ``EFULL``, ``EIO``) :class:`StoreError`, anything else
    :class:`TripsenseError`. The message is ``trip_errmsg()``'s, after
    context unless it already contains ``named``.
    """
    if rc < 0:
        raise _error(rc, context, named)
    return rc


def _hot_functions() -> Any:
    """The glue's hot-path functions (``tripsense_py_allow``, ``_success``,
    ``_record``, ``_enter``, ``_exit``, ...) as CPython functions that keep
    the GIL, from ``_hotpath.c``: the same names, arguments and results as
    ``lib``'s, without cffi's release and retake of the GIL around each
    call. ``lib`` itself where they do not exist (PyPy) or could not be
    made (out of memory, printed)."""
    if lib.tripsense_py_hot_install() != 0:
        return lib
    import sys

    hot = sys.modules["tripsense._tripsense_hot"]
    hot.bind(ffi.typeof("tripsense_py_call *"))
    return hot


_hot = _hot_functions()
