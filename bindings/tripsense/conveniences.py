# SPDX-License-Identifier: GPL-3.0-or-later
"""Retry with backoff inside a breaker, and fallback chains (issue 9)."""
from __future__ import annotations

import asyncio
import inspect
import math
import random
import time
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

from ._lowlevel import CircuitOpenError, InvalidConfigError

__all__ = ["Retry", "FallbackChain"]


class Retry:
    """Exponential backoff with jitter, for ``Breaker.call(..., retry=)``.

    Parameters
    ----------
    attempts : int
        Calls in total (>= 1), the first included.
    base : float
        Delay before the second attempt, in seconds, before jitter.
    cap : float
        Largest delay in seconds.
    jitter : float
        0..1: the delay is uniform in ``[d * (1 - jitter), d]`` with
        ``d = min(cap, base * 2**i)``; 1 is "full jitter".
    retry_on : exception type(s) or predicate
        Which exceptions are retried (default every ``Exception``).
    sleep : callable, optional
        ``sleep(seconds)``; default ``time.sleep`` in ``call`` and
        ``asyncio.sleep`` in ``acall``. Tests pass ``clock.sleep``.
    rng : random.Random, optional
        Source of the jitter (seed it for reproducible delays).

    Raises
    ------
    InvalidConfigError
        For attempts < 1, negative or non-finite delays, jitter outside
        [0, 1].
    """

    def __init__(self, attempts: int = 3, base: float = 0.1, cap: float = 2.0,
                 jitter: float = 1.0, *, retry_on: Any = Exception,
                 sleep: Optional[Callable[[float], Any]] = None,
                 rng: Optional[random.Random] = None) -> None:
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise InvalidConfigError(f"Retry: attempts must be an int >= 1, got {attempts!r}")
        for n, v in (("base", base), ("cap", cap)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or \
                    not math.isfinite(v) or v < 0:
                raise InvalidConfigError(f"Retry: {n} must be seconds >= 0, got {v!r}")
        if isinstance(jitter, bool) or not isinstance(jitter, (int, float)) or \
                not 0 <= jitter <= 1:
            raise InvalidConfigError(f"Retry: jitter must be in [0, 1], got {jitter!r}")
        if isinstance(retry_on, type) or isinstance(retry_on, tuple):
            types = retry_on if isinstance(retry_on, tuple) else (retry_on,)
            if not all(isinstance(t, type) and issubclass(t, BaseException) for t in types):
                raise InvalidConfigError(f"Retry: retry_on must be exception types "
                                         f"or a predicate, got {retry_on!r}")
            self._pred: Callable[[BaseException], bool] = lambda e: isinstance(e, types)
        elif callable(retry_on):
            self._pred = retry_on
        else:
            raise InvalidConfigError(f"Retry: retry_on must be exception types or "
                                     f"a predicate, got {retry_on!r}")
        self.attempts = attempts
        self.base = float(base)
        self.cap = float(cap)
        self.jitter = float(jitter)
        self.sleep = sleep
        self.rng = rng or random.Random()

    def delay(self, i: int) -> float:
        """Seconds to wait after failed attempt ``i`` (0-based)."""
        d = min(self.cap, self.base * (2.0 ** min(i, 1000)))
        return d * (1.0 - self.jitter * self.rng.random())

    def should_retry(self, e: BaseException) -> bool:
        """True if exception ``e`` may be retried."""
        if not isinstance(e, Exception) or isinstance(e, CircuitOpenError):
            return False
        return bool(self._pred(e))

    def _sleep_sync(self, s: float) -> None:
        (self.sleep or time.sleep)(s)

    async def _sleep_async(self, s: float) -> None:
        r = (self.sleep or asyncio.sleep)(s)
        if inspect.isawaitable(r):
            await r

    def __repr__(self) -> str:
        return (f"Retry(attempts={self.attempts}, base={self.base}, cap={self.cap}, "
                f"jitter={self.jitter})")


Step = Union[Callable[..., Any], Tuple[Any, Callable[..., Any]]]


class FallbackChain:
    """Try callables in order with the same arguments; return the first result.

    Parameters
    ----------
    *steps : callable or (Breaker, callable)
        A pair is called through its breaker (``breaker.call``); a refused
        call moves on to the next step like a failure.
    exceptions : exception type(s)
        What moves on to the next step (default ``Exception``); anything
        else propagates at once, except a refusal (``CircuitOpenError``),
        which always moves on.

    Raises
    ------
    Exception
        The last step's exception when every step failed; it carries
        ``.chain_errors``, the list of every step's exception in order.
    """

    def __init__(self, *steps: Step, exceptions: Any = Exception) -> None:
        if not steps:
            raise InvalidConfigError("FallbackChain needs at least one step")
        from .breaker import Breaker, _exception_types

        self.steps: List[Tuple[Any, Callable[..., Any]]] = []
        for s in steps:
            if isinstance(s, tuple) and len(s) == 2 and isinstance(s[0], Breaker) \
                    and callable(s[1]):
                self.steps.append((s[0], s[1]))
            elif callable(s) and not isinstance(s, tuple):
                self.steps.append((None, s))
            else:
                raise InvalidConfigError(f"FallbackChain: a step is a callable or "
                                         f"(Breaker, callable), got {s!r}")
        self.exceptions = _exception_types(exceptions, "FallbackChain: exceptions")
        self._moves_on = self.exceptions + (CircuitOpenError,)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        errors: List[BaseException] = []
        for breaker, f in self.steps:
            try:
                if breaker is None:
                    return f(*args, **kwargs)
                return breaker._call(f, args, kwargs, None, None, None)
            except self._moves_on as e:
                errors.append(e)
        last = errors[-1]
        last.chain_errors = errors  # type: ignore[attr-defined]
        raise last

    async def acall(self, *args: Any, **kwargs: Any) -> Any:
        """Async form: each step may return an awaitable."""
        errors: List[BaseException] = []
        for breaker, f in self.steps:
            try:
                if breaker is None:
                    r = f(*args, **kwargs)
                    return await r if inspect.isawaitable(r) else r
                return await breaker._acall(f, args, kwargs, None, None, None, None)
            except self._moves_on as e:
                errors.append(e)
        last = errors[-1]
        last.chain_errors = errors  # type: ignore[attr-defined]
        raise last
