# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared fixtures: a manual clock and a breaker that trips fast."""
import pytest

import tripsense

S = 1_000_000_000
# 2026-11-23 00:00 UTC, a Monday: wall times look real in DataFrames
EPOCH = 1_795_392_000 * S


@pytest.fixture
def clock():
    return tripsense.ManualClock(start_ns=EPOCH, wall_offset_ns=0)


@pytest.fixture
def fast(clock):
    """A breaker that opens after 3 failures in a row, for 5 s, without
    jitter, and closes after 2 probe successes."""
    return tripsense.Breaker("svc", clock=clock, consecutive_failures=3,
                             open_s=5, jitter=0, half_open_successes=2)


class Boom(Exception):
    pass


def boom(*a, **k):
    raise Boom("down")


def trip(b):
    """Fail through b until it opens (at most 100 calls)."""
    for _ in range(100):
        if b.is_open():
            return
        try:
            b.call(boom)
        except Boom:
            pass
    raise AssertionError(f"{b} did not open")
