# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue 9 in Python: retry, fallback chains, health probes, registry."""
import asyncio
import random
import re
import threading
import time

import pytest

import tripsense
from conftest import Boom, boom, trip


# ---- Retry ---------------------------------------------------------------

def test_retry_counts_each_attempt_as_a_call(clock):
    b = tripsense.Breaker("r", clock=clock, consecutive_failures=0, failure_rate=0)
    attempts = []

    def flaky():
        attempts.append(clock.now)
        if len(attempts) < 3:
            raise Boom()
        return "ok"

    retry = tripsense.Retry(attempts=5, base=0.1, cap=1.0, jitter=0, sleep=clock.sleep)
    assert b.call(flaky, retry=retry) == "ok"
    s = b.snapshot()
    assert (s.calls, s.failures, s.successes) == (3, 2, 1)
    # exponential backoff on the clock: 0.1 s then 0.2 s
    gaps = [round(b2 - a, 6) for a, b2 in zip(attempts, attempts[1:])]
    assert gaps == [0.1, 0.2]


def test_retry_gives_up_after_attempts_with_the_last_error(clock):
    b = tripsense.Breaker("r2", clock=clock, consecutive_failures=0, failure_rate=0)
    n = []

    def f():
        n.append(1)
        raise Boom(len(n))

    with pytest.raises(Boom) as ei:
        b.call(f, retry=tripsense.Retry(attempts=4, base=0, sleep=clock.sleep))
    assert ei.value.args == (4,) and b.snapshot().failures == 4


def test_retry_stops_when_the_breaker_opens(clock):
    b = tripsense.Breaker("r3", clock=clock, consecutive_failures=3, open_s=30)
    n = []

    def f():
        n.append(1)
        raise Boom()

    with pytest.raises(tripsense.CircuitOpenError) as ei:
        b.call(f, retry=tripsense.Retry(attempts=10, base=0.01, sleep=clock.sleep))
    assert len(n) == 3  # the 4th attempt was refused, not made
    assert isinstance(ei.value.__cause__, Boom)
    assert b.snapshot().rejected == 1


def test_retry_does_not_retry_excluded_or_unlisted_errors(clock):
    b = tripsense.Breaker("r4", clock=clock, exclude=KeyError)
    n = []

    def f(exc):
        n.append(1)
        raise exc

    with pytest.raises(KeyError):
        b.call(f, KeyError("k"), retry=tripsense.Retry(5, base=0, sleep=clock.sleep))
    with pytest.raises(ValueError):
        b.call(f, ValueError(), retry=tripsense.Retry(5, base=0, retry_on=Boom,
                                                      sleep=clock.sleep))
    assert len(n) == 2


def test_retry_jitter_stays_in_its_band():
    r = tripsense.Retry(attempts=10, base=1.0, cap=5.0, jitter=0.5,
                        rng=random.Random(7))
    for i in range(8):
        d = min(5.0, 2.0 ** i)
        for _ in range(50):
            assert d * 0.5 <= r.delay(i) <= d


def test_retry_must_be_a_retry(fast):
    with pytest.raises(tripsense.InvalidConfigError, match="retry"):
        fast.call(lambda: 1, retry=3)
    with pytest.raises(tripsense.InvalidConfigError, match="retry"):
        fast.decorate(retry="twice")


def test_retry_validates():
    for bad in (dict(attempts=0), dict(base=-1), dict(jitter=2), dict(cap=float("nan")),
                dict(retry_on=3)):
        with pytest.raises(tripsense.InvalidConfigError):
            tripsense.Retry(**bad)


def test_async_retry(clock):
    b = tripsense.Breaker("ar", clock=clock, consecutive_failures=0, failure_rate=0)
    n = []

    async def flaky():
        n.append(1)
        if len(n) < 2:
            raise Boom()
        return 7

    async def sleep(s):
        clock.advance(s)

    r = asyncio.run(b.acall(flaky, retry=tripsense.Retry(3, base=0.5, jitter=0,
                                                          sleep=sleep)))
    assert r == 7 and b.snapshot().calls == 2


# ---- FallbackChain ---------------------------------------------------------

def test_fallback_chain_tries_in_order(clock):
    order = []

    def a(x):
        order.append("a")
        raise Boom()

    def c(x):
        order.append("c")
        return x + 1

    guarded = tripsense.Breaker("b", clock=clock, consecutive_failures=1)
    trip(guarded)
    chain = tripsense.FallbackChain(a, (guarded, lambda x: order.append("b")), c)
    assert chain(1) == 2
    assert order == ["a", "c"]  # b was refused by its open breaker


def test_fallback_chain_raises_the_last_error_with_all_of_them():
    def e1():
        raise Boom("1")

    def e2():
        raise ValueError("2")

    with pytest.raises(ValueError) as ei:
        tripsense.FallbackChain(e1, e2)()
    assert [type(e) for e in ei.value.chain_errors] == [Boom, ValueError]


def test_fallback_chain_async_and_validation(clock):
    async def bad():
        raise Boom()

    async def good():
        return "g"

    assert asyncio.run(tripsense.FallbackChain(bad, good).acall()) == "g"
    with pytest.raises(tripsense.InvalidConfigError):
        tripsense.FallbackChain()
    with pytest.raises(tripsense.InvalidConfigError):
        tripsense.FallbackChain(3)
    with pytest.raises(tripsense.InvalidConfigError, match="exceptions"):
        tripsense.FallbackChain(good, exceptions="oops")


def test_fallback_chain_refusal_moves_on_whatever_exceptions_says(clock):
    guarded = tripsense.Breaker("b2", clock=clock, consecutive_failures=1)
    trip(guarded)
    chain = tripsense.FallbackChain((guarded, lambda: "live"), lambda: "cached",
                                    exceptions=ConnectionError)
    assert chain() == "cached"
    assert asyncio.run(chain.acall()) == "cached"


# ---- health probes -----------------------------------------------------------

def test_health_probe_decides_recovery_instead_of_live_traffic(clock):
    healthy = [False]
    probes = []

    def probe():
        probes.append(clock.now)
        if not healthy[0]:
            raise Boom("still down")

    b = tripsense.Breaker("hp", clock=clock, consecutive_failures=2, open_s=5,
                          jitter=0, half_open_successes=2, health_probe=probe,
                          probe_interval=1)
    trip(b)
    assert b.probe() is None  # not due yet
    clock.advance(5)
    assert b.probe() == "failure"  # due: half-open, the probe fails: reopen
    assert b.is_open()
    clock.advance(10)  # backoff doubled the open period
    healthy[0] = True
    assert b.probe() == "success"
    assert b.is_half_open()
    # live calls do not probe while a health probe is configured
    with pytest.raises(tripsense.CircuitOpenError) as ei:
        b.call(lambda: "live")
    assert ei.value.decision == "limited"
    assert b.probe() is None  # probe_interval not over
    clock.advance(1)
    assert b.probe() == "success"
    assert b.is_closed() and b.call(lambda: "live") == "live"
    assert len(probes) == 3


def test_health_probe_interrupted_gives_its_slot_back(clock):
    """A probe that raises KeyboardInterrupt is recorded (ignored) before
    the interrupt goes on: the half-open slot is free for the next probe."""
    calls = []

    def probe():
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt

    b = tripsense.Breaker("hpi", clock=clock, consecutive_failures=2, open_s=5,
                          jitter=0, half_open_successes=1, health_probe=probe,
                          probe_interval=1)
    trip(b)
    clock.advance(5)
    with pytest.raises(KeyboardInterrupt):
        b.probe()
    assert b.snapshot().half_open_in_flight == 0
    clock.advance(1)
    assert b.probe() == "success"
    assert b.is_closed()


def test_async_health_probe_is_refused():
    """Probes run in a thread, where nothing awaits a coroutine: one would
    count as a success whatever it raised."""
    async def probe():
        raise Boom("down")

    class Probe:
        async def __call__(self):
            raise Boom("down")

    for p in (probe, Probe()):
        with pytest.raises(tripsense.InvalidConfigError, match="coroutine function"):
            tripsense.Breaker("ahp", health_probe=p)


def test_health_probe_thread_with_the_system_clock():
    done = threading.Event()

    def probe():
        done.set()

    b = tripsense.Breaker("hp2", consecutive_failures=1, open_s=0.05, jitter=0,
                          half_open_successes=1, health_probe=probe,
                          probe_interval=0.01)
    trip(b)
    assert done.wait(10), "the probe thread never probed"
    for _ in range(1000):  # poll for the record to land, without timing it
        if b.is_closed():
            break
        time.sleep(0.01)
    assert b.is_closed()


# ---- registry ----------------------------------------------------------------

def test_registry_get_or_create_returns_the_same_breaker(clock):
    reg = tripsense.Registry()
    a = reg.get_or_create("db", clock=clock, failure_rate=0.2)
    assert reg.get_or_create("db", failure_rate=0.9) is a
    assert a.config["failure_rate"] == 0.2
    assert "db" in reg and reg["db"] is a and len(reg) == 1
    with pytest.raises(tripsense.NotFoundError):
        reg["nope"]


def test_registry_health_prometheus_and_depends(clock):
    reg = tripsense.Registry()
    db = reg.get_or_create("db", clock=clock, consecutive_failures=1)
    reg.get_or_create("api", clock=clock)
    reg.depends("api", "db")
    h = reg.health()
    assert h["status"] == "ok" and {x["name"] for x in h["breakers"]} == {"db", "api"}
    trip(db)
    h = reg.health()
    by = {x["name"]: x for x in h["breakers"]}
    assert h["status"] == "down" and by["db"]["status"] == "down"
    assert by["api"]["status"] == "degraded"
    text = reg.prometheus()
    assert re.search(r'^tripsense_state\{breaker="db"\} 1$', text, re.M)
    assert 'tripsense_calls_total{breaker="db",result="failure"} 1' in text
    with pytest.raises(tripsense.InvalidConfigError):
        reg.depends("db", "api")  # cycle
    with pytest.raises(tripsense.NotFoundError):
        reg.depends("db", "cache")


def test_registry_add_takes_ownership(clock):
    reg = tripsense.Registry()
    b = tripsense.Breaker("own", clock=clock)
    reg.add(b)
    assert reg["own"] is b and b.call(lambda: 1) == 1
    with pytest.raises(tripsense.TripsenseError):
        reg.add(tripsense.Breaker("own"))
    reg.close()
    with pytest.raises(tripsense.TripsenseError, match="closed"):
        b.call(lambda: 1)


def test_registry_breakers_outlive_a_dropped_registry(clock):
    import gc

    b = tripsense.Registry().get_or_create("kept", clock=clock)
    gc.collect()
    assert b.call(lambda: 2) == 2


def test_registry_as_a_context_manager_frees_its_breakers(clock):
    with tripsense.Registry() as reg:
        b = reg.get_or_create("cm", clock=clock)
        assert b.call(lambda: 1) == 1
    with pytest.raises(tripsense.TripsenseError, match="closed"):
        b.call(lambda: 1)
