# SPDX-License-Identifier: GPL-3.0-or-later
"""Breaker: call forms, refusals, fallbacks, classification, state, listeners."""
import asyncio
import gc
import logging
import pickle
import threading
import weakref

import pytest

import tripsense
from conftest import Boom, boom, trip


def test_call_passes_through_arguments_and_result(fast):
    assert fast.call(lambda a, b=0: a + b, 2, b=3) == 5
    s = fast.snapshot()
    assert (s.calls, s.successes, s.failures) == (1, 1, 0)


def test_a_non_callable_is_refused_before_admission(fast):
    with pytest.raises(TypeError, match="callable"):
        fast.call(3)
    with pytest.raises(TypeError, match="callable"):
        asyncio.run(fast.acall("f"))
    assert fast.snapshot().calls == 0


def test_failures_trip_and_refusals_raise_circuit_open(fast, clock):
    trip(fast)
    assert fast.state == "open" and fast.is_open()
    with pytest.raises(tripsense.CircuitOpenError) as ei:
        fast.call(lambda: 1)
    e = ei.value
    assert e.breaker == "svc" and e.state == "open" and e.decision == "rejected"
    assert e.reason == e.rule == "consecutive_failures"
    assert e.retry_after == pytest.approx(5.0)
    clock.advance(2)
    with pytest.raises(tripsense.CircuitOpenError) as ei:
        fast.call(lambda: 1)
    assert ei.value.retry_after == pytest.approx(3.0)
    assert fast.snapshot().rejected == 2


def test_recovery_through_half_open(fast, clock):
    trip(fast)
    clock.advance(5)
    assert fast.call(lambda: "probe") == "probe"
    assert fast.is_half_open()
    fast.call(lambda: None)
    assert fast.is_closed() and fast.state == "closed"


def test_fallback_on_refusal_gets_the_call_arguments(clock):
    b = tripsense.Breaker("fb", clock=clock, consecutive_failures=1,
                          fallback=lambda x: ("cached", x))
    trip(b)
    assert b.call(lambda x: x, 7) == ("cached", 7)
    # a per-call fallback wins over the breaker's
    assert b.call(lambda x: x, 7, fallback=lambda x: "other") == "other"


def test_fallback_is_not_used_for_failures(clock):
    b = tripsense.Breaker("fb2", clock=clock, consecutive_failures=5,
                          fallback=lambda: "fb")
    with pytest.raises(Boom):
        b.call(boom)


def test_decorator_sync_keeps_metadata_and_counts(fast):
    @fast
    def add(a, b):
        """adds"""
        return a + b

    assert add(1, 2) == 3
    assert add.__name__ == "add" and add.__doc__ == "adds"
    with pytest.raises(Boom):
        fast(boom)()
    s = fast.snapshot()
    assert (s.successes, s.failures) == (1, 1)


def test_decorator_passes_reserved_looking_keywords_to_the_function(fast):
    @fast
    def f(priority, retry=None):
        return priority, retry

    assert f(priority=3, retry="r") == (3, "r")


def test_with_block_records_success_and_failure(fast):
    with fast:
        pass
    with pytest.raises(Boom):
        with fast:
            raise Boom()
    s = fast.snapshot()
    assert (s.successes, s.failures, s.in_flight) == (1, 1, 0)


def test_with_block_refused_when_open(fast):
    trip(fast)
    with pytest.raises(tripsense.CircuitOpenError):
        with fast:
            raise AssertionError("must not run")


def test_nested_with_blocks_use_their_own_tickets(fast):
    with fast:
        with pytest.raises(Boom):
            with fast:
                raise Boom()
    s = fast.snapshot()
    assert (s.successes, s.failures, s.in_flight) == (1, 1, 0)


def test_async_decorator_acall_and_async_with(fast):
    @fast
    async def get(x):
        await asyncio.sleep(0)
        return x * 2

    async def failing():
        raise Boom()

    async def main():
        assert await get(4) == 8
        assert await fast.acall(get, 5) == 10
        with pytest.raises(Boom):
            await fast.acall(failing)
        async with fast:
            await asyncio.sleep(0)
        with pytest.raises(Boom):
            async with fast.guard(priority=10):
                raise Boom()

    asyncio.run(main())
    s = fast.snapshot()
    # acall(get) calls the decorated get: two admitted calls for one acall
    assert (s.successes, s.failures, s.in_flight) == (4, 2, 0)


def test_async_refusal_and_async_fallback(fast):
    trip(fast)

    async def fb(*args):
        return "fallback"

    async def main():
        with pytest.raises(tripsense.CircuitOpenError):
            await fast.acall(asyncio.sleep, 0)
        return await fast.acall(asyncio.sleep, 0, fallback=fb)

    assert asyncio.run(main()) == "fallback"


def test_acall_timeout_is_recorded_as_timeout(clock):
    b = tripsense.Breaker("slow", clock=clock, consecutive_timeouts=2,
                          consecutive_failures=0)

    async def main():
        for _ in range(2):
            with pytest.raises(asyncio.TimeoutError):
                await b.acall(asyncio.sleep, 10, timeout=0.01)

    asyncio.run(main())
    s = b.snapshot()
    assert s.timeouts == 2 and s.failures == 0
    assert b.state == "open" and s.last_trip.rule == "consecutive_timeouts"


def test_breaker_default_timeout_applies_to_async_decorator(clock):
    b = tripsense.Breaker("slow2", clock=clock, timeout=0.01)

    @b
    async def hang():
        await asyncio.sleep(10)

    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(hang())
    assert b.snapshot().timeouts == 1


def test_exclude_types_are_ignored_outcomes(clock):
    b = tripsense.Breaker("ex", clock=clock, consecutive_failures=2,
                          exclude=(KeyError, ValueError))
    for _ in range(5):
        with pytest.raises(KeyError):
            b.call(lambda: {}["x"])
    s = b.snapshot()
    assert (s.ignored, s.failures) == (5, 0) and b.is_closed()


def test_exclude_predicate(clock):
    class HTTPError(Exception):
        def __init__(self, status):
            self.status = status

    b = tripsense.Breaker("http", clock=clock, consecutive_failures=10,
                          exclude=lambda e: isinstance(e, HTTPError) and e.status < 500)

    def get(status):
        raise HTTPError(status)

    for st in (404, 500, 400, 503):
        with pytest.raises(HTTPError):
            b.call(get, st)
    s = b.snapshot()
    assert (s.ignored, s.failures) == (2, 2)


def test_a_raising_predicate_counts_a_failure_and_logs(clock, caplog):
    def bad(e):
        raise RuntimeError("predicate bug")

    b = tripsense.Breaker("pred", clock=clock, exclude=bad)
    with caplog.at_level(logging.ERROR, logger="tripsense"):
        with pytest.raises(Boom):
            b.call(boom)
    assert b.snapshot().failures == 1
    assert "predicate" in caplog.text


def test_timeout_exception_types_are_timeouts(clock):
    class MyTimeout(Exception):
        pass

    b = tripsense.Breaker("t", clock=clock, timeouts=(MyTimeout,))

    def f():
        raise MyTimeout()

    with pytest.raises(MyTimeout):
        b.call(f)
    with pytest.raises(TimeoutError):
        b.call(lambda: (_ for _ in ()).throw(TimeoutError()))
    s = b.snapshot()
    assert (s.timeouts, s.failures) == (1, 1)


def test_error_weights_follow_the_mro(clock):
    class Retryable(Exception):
        pass

    class Critical(Exception):
        pass

    class VeryCritical(Critical):
        pass

    b = tripsense.Breaker("w", clock=clock, consecutive_failures=0,
                          error_weights={Retryable: 0.5, Critical: 2.0},
                          failure_weight=1.0)
    for exc in (Retryable, VeryCritical, Boom):
        with pytest.raises(exc):
            b.call(lambda: (_ for _ in ()).throw(exc()))
    assert b.snapshot().weighted_failures == pytest.approx(0.5 + 2.0 + 1.0)


def test_keyboard_interrupt_is_ignored_not_failed(fast):
    def stop():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fast.call(stop)
    s = fast.snapshot()
    assert (s.ignored, s.failures, s.in_flight) == (1, 0, 0)


def test_latency_comes_from_the_clock(fast, clock):
    def slow():
        clock.advance(0.25)

    for _ in range(30):
        fast.call(slow)
    clock.advance(1)
    fast.tick()
    assert fast.snapshot().p50_s == pytest.approx(0.25, rel=0.05)


def test_manual_allow_and_record(fast):
    t = fast.allow()
    assert t.admitted and t.state == "closed"
    fast.record(t, "failure", latency=0.1, weight=2.0)
    assert fast.snapshot().weighted_failures == pytest.approx(2.0)
    with pytest.raises(tripsense.InvalidConfigError, match="outcome"):
        fast.record(fast.allow(), "exploded")
    with pytest.raises(tripsense.InvalidConfigError, match="latency"):
        fast.record(fast.allow(), "success", latency=float("nan"))


def test_tickets_are_recorded_once_and_only_by_their_breaker(fast, clock):
    t = fast.allow()
    fast.record(t, "success")
    assert t.recorded
    with pytest.raises(tripsense.InvalidConfigError, match="already"):
        fast.record(t, "success")
    other = tripsense.Breaker("other", clock=clock)
    with pytest.raises(tripsense.InvalidConfigError, match="issued by breaker 'svc'"):
        other.record(fast.allow(), "success")
    assert other.snapshot().calls == 0


def test_modes(fast):
    fast.force_open()
    assert fast.state == "forced_open" and fast.is_open()
    with pytest.raises(tripsense.CircuitOpenError) as ei:
        fast.call(lambda: 1)
    assert ei.value.state == "forced_open"
    fast.force_closed()
    assert fast.state == "forced_closed" and fast.is_closed()
    for _ in range(10):
        with pytest.raises(Boom):
            fast.call(boom)
    assert fast.state == "forced_closed"
    fast.disable()
    assert fast.state == "disabled" and fast.call(lambda: 3) == 3
    fast.metrics_only()
    assert fast.state == "metrics_only"
    fast.reset()
    assert fast.state == "closed"


def test_listeners_see_transitions_and_optionally_rejections(fast, clock):
    seen, rej = [], []
    lid = fast.add_listener(seen.append)
    fast.add_listener(rej.append, rejections=True)
    trip(fast)
    with pytest.raises(tripsense.CircuitOpenError):
        fast.call(lambda: 1)
    assert [(e.kind, e.from_state, e.to_state) for e in seen] == \
        [("transition", "closed", "open")]
    assert seen[0].reason.rule == "consecutive_failures"
    assert seen[0].breaker == "svc"
    kinds = [e.kind for e in rej]
    assert kinds == ["transition", "rejection"]
    assert rej[1].decision == "rejected" and rej[1].reason.rule == "none"
    assert rej[1].to_state == "open"
    fast.remove_listener(lid)
    clock.advance(5)
    fast.call(lambda: 1)
    assert len(seen) == 1 and rej[-1].to_state == "half_open"


def test_listener_exceptions_are_logged_not_propagated(fast, caplog):
    def bad(ev):
        raise ValueError("listener bug")

    fast.add_listener(bad)
    with caplog.at_level(logging.ERROR, logger="tripsense"):
        trip(fast)
    assert fast.is_open()
    assert "listener bug" in caplog.text


def test_on_transition_decorator(fast):
    seen = []

    @fast.on_transition
    def on(ev):
        seen.append(ev.to_state)

    trip(fast)
    assert seen == ["open"]


def test_priority_is_validated(fast):
    with pytest.raises(tripsense.InvalidConfigError, match="priority"):
        fast.call(lambda: 1, priority=256)
    assert fast.call(lambda: 1, priority=255) == 1


def test_high_priority_probes_first_in_half_open(clock):
    b = tripsense.Breaker("prio", clock=clock, consecutive_failures=1, open_s=1,
                          jitter=0, half_open_probes=1, probe_priority_share=0.5)
    trip(b)
    clock.advance(1)
    # the probe slot goes to a high-priority call; a low one is limited
    t = b.allow(priority=250)
    with pytest.raises(tripsense.CircuitOpenError) as ei:
        b.allow(priority=0)
    assert ei.value.decision == "limited"
    b.record(t, "success")


def test_config_and_reconfigure(fast):
    cfg = fast.config
    assert cfg["open_s"] == 5.0 and cfg["consecutive_failures"] == 3
    fast.reconfigure(open_s=7.5, failure_rate=0.25)
    assert fast.config["open_s"] == 7.5 and fast.config["failure_rate"] == 0.25
    with pytest.raises(tripsense.InvalidConfigError, match="failure_rate"):
        fast.reconfigure(failure_rate=1.5)
    assert fast.config["failure_rate"] == 0.25


def test_tier_defaults():
    b = tripsense.Breaker("crit", tier="critical")
    assert b.config["open_s"] == 15.0 and b.config["tier"] == 0
    low = tripsense.default_config("low")
    assert low["open_s"] == 120.0
    with pytest.raises(tripsense.InvalidConfigError, match="tier"):
        tripsense.Breaker("x", tier="platinum")


def test_enum_names_and_bools():
    b = tripsense.Breaker("e", window_kind="count", seasonality="hour_of_week",
                          adaptive=False, dependency_action="shed")
    c = b.config
    assert (c["window_kind"], c["seasonality"], c["adaptive"],
            c["dependency_action"]) == (1, 3, 0, 1)


def test_dependency_and_health(clock):
    db = tripsense.Breaker("db", clock=clock, consecutive_failures=1)
    api = tripsense.Breaker("api", clock=clock)
    api.add_dependency(db, action="report")
    trip(db)
    h = api.health()
    assert h["status"] in ("degraded", "down")
    with pytest.raises(tripsense.InvalidConfigError):
        db.add_dependency(api)  # a cycle


def test_signals(clock):
    b = tripsense.Breaker("sig", clock=clock, bucket_s=1)
    b.add_signal("cpu", threshold=0.9, duration=2)
    b.signal("cpu", 0.95)
    assert b.signal_value("cpu")[0] == 0.95
    for _ in range(4):
        clock.advance(1)
        b.signal("cpu", 0.95)
        b.tick()
    assert b.state == "open"
    assert b.snapshot().last_trip.rule == "health_signal"
    with pytest.raises(tripsense.NotFoundError):
        b.signal("mem", 1.0)
    with pytest.raises(tripsense.InvalidConfigError, match="value: expected a number"):
        b.signal("cpu", "x")
    with pytest.raises(tripsense.InvalidConfigError, match="threshold: expected a number"):
        b.add_signal("mem", threshold="5")


def test_close_frees_and_later_use_raises():
    b = tripsense.Breaker("c")
    b.close()
    b.close()  # idempotent
    with pytest.raises(tripsense.TripsenseError, match="closed"):
        b.call(lambda: 1)
    with pytest.raises(tripsense.TripsenseError, match="closed"):
        b.state


@pytest.mark.parametrize("owner", ["self", "registry"])
def test_every_call_form_of_a_closed_breaker_raises(owner):
    if owner == "self":
        b = tripsense.Breaker("c")
        close = b.close
    else:
        reg = tripsense.Registry()
        b = reg.get_or_create("c")
        close = reg.close
    g = b(lambda: 1)
    assert g() == 1 and b.call(lambda: 2) == 2  # buffers now in the pools
    with b:
        pass
    close()
    with pytest.raises(tripsense.TripsenseError, match="closed") as ei:
        g()
    assert not isinstance(ei.value, tripsense.CircuitOpenError)
    with pytest.raises(tripsense.TripsenseError, match="closed"):
        b.call(lambda: 1)
    with pytest.raises(tripsense.TripsenseError, match="closed"):
        with b:
            raise AssertionError("must not run")


def test_a_call_in_flight_when_its_breaker_closes_completes():
    # the outcome of a call admitted before close() is dropped: the freed
    # breaker is never touched (ASan would report it in make sanitize)
    b = tripsense.Breaker("c")

    @b
    def closes():
        b.close()
        return 7

    assert closes() == 7
    with pytest.raises(tripsense.TripsenseError, match="closed"):
        closes()


def test_refusals_leave_no_reference_cycles(fast):
    # a cycle (exception, traceback, frame) per refusal would be freed only
    # by the garbage collector: a load on exactly the path under overload
    trip(fast)
    g = fast(lambda: 1)
    gc.collect()
    gc.disable()
    try:
        for form in (g, lambda: fast.call(lambda: 1)):
            for _ in range(3):
                try:
                    form()
                except tripsense.CircuitOpenError:
                    pass
        for _ in range(3):
            try:
                with fast:
                    pass
            except tripsense.CircuitOpenError:
                pass
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_refusal_details_are_those_of_the_decision(fast, clock):
    trip(fast)
    g = fast(lambda: 1)
    with pytest.raises(tripsense.CircuitOpenError) as ei:
        g()
    e = ei.value
    assert e.args == ("svc",)
    assert (e.breaker, e.state, e.decision, e.reason, e.retry_after) == \
        ("svc", "open", "rejected", "consecutive_failures", pytest.approx(5.0))
    assert e.score == 3 and e.threshold == 3
    # read once, the details stay as they were read
    clock.advance(1)
    assert e.retry_after == pytest.approx(5.0)
    assert "retry after 5.000 s" in str(e)
    fast.reset()
    assert e.state == "open"
    e2 = pickle.loads(pickle.dumps(e))
    assert (e2.breaker, e2.state, e2.reason, e2.retry_after) == \
        ("svc", "open", "consecutive_failures", pytest.approx(5.0))


def test_nested_decorated_calls_in_threads_keep_their_tickets(clock):
    b = tripsense.Breaker("nest", clock=clock, consecutive_failures=0,
                          failure_rate=0, adaptive=False)

    @b
    def inner(i):
        if i % 3 == 0:
            raise Boom()
        return i

    @b
    def outer(i):
        try:
            return inner(i)
        except Boom:
            return -1

    errors = []

    def work():
        try:
            for i in range(3000):
                assert outer(i) == (-1 if i % 3 == 0 else i)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    ts = [threading.Thread(target=work) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert errors == []
    s = b.snapshot()
    assert (s.calls, s.failures, s.in_flight) == (24000, 4000, 0)


def test_garbage_collector_frees_breakers_and_clocks():
    clock = tripsense.ManualClock()
    b = tripsense.Breaker("gc", clock=clock)
    b.add_listener(lambda ev: None)
    wb, wc = weakref.ref(b), weakref.ref(clock)
    del b, clock
    gc.collect()
    assert wb() is None and wc() is None


def test_breaker_keeps_its_clock_alive():
    b = tripsense.Breaker("keep", clock=tripsense.ManualClock(start_ns=5))
    gc.collect()
    assert b.call(lambda: 1) == 1  # would crash if the clock were freed


def test_snapshot_carries_every_field_of_the_c_snapshot():
    import dataclasses

    from tripsense._lowlevel import ffi

    c_fields = {name for name, _ in ffi.typeof("trip_snapshot").fields}
    py_fields = {f.name for f in dataclasses.fields(tripsense.Snapshot)}
    renamed = {"ns_until_half_open": "seconds_until_half_open"}
    dropped = {"open_until_ns"}  # a monotonic deadline: seconds_until_half_open says it
    expected = {renamed.get(n, n) for n in c_fields - dropped}
    assert py_fields == expected


def test_a_listener_may_call_back_into_the_breaker(fast):
    states = []

    def on(ev):
        states.append((ev.to_state, fast.snapshot().state, fast.is_open()))

    fast.add_listener(on)
    trip(fast)
    assert states == [("open", "open", True)]


def test_decorate_with_options(fast, clock):
    calls = []

    @fast.decorate(priority=200, fallback=lambda x: -x)
    def f(x):
        calls.append(x)
        return x

    assert f(3) == 3
    trip(fast)
    assert f(4) == -4 and calls == [3]


def test_default_registry_is_one_per_process():
    assert tripsense.default_registry() is tripsense.default_registry()


def test_interleaved_async_with_blocks_record_their_own_calls(clock):
    b = tripsense.Breaker("tasks", clock=clock, consecutive_failures=0,
                          failure_rate=0)

    async def one(i):
        async with b:
            await asyncio.sleep(0)  # every task is inside at once
            await asyncio.sleep(0)
            if i % 4 == 0:
                raise Boom()

    async def main():
        res = await asyncio.gather(*(one(i) for i in range(40)),
                                   return_exceptions=True)
        return sum(isinstance(r, Boom) for r in res)

    assert asyncio.run(main()) == 10
    s = b.snapshot()
    assert (s.calls, s.failures, s.successes, s.in_flight) == (40, 10, 30, 0)


def _first_in_first_out(enter_a, enter_b, exit_a, exit_b, b):
    """A enters, the state changes, B enters, A fails, B succeeds. Each must
    record its own ticket: A's, issued before the change, is a late result
    and not counted; with the tickets swapped, B's would carry A's failure."""
    enter_a()
    b.force_closed()
    b.reset()  # a new generation, with a fresh window
    enter_b()
    exit_a()
    exit_b()
    s = b.snapshot()
    assert (s.late, s.failures, s.successes) == (1, 0, 1)


def test_sync_with_blocks_in_interleaved_tasks_record_their_own_calls(clock):
    b = tripsense.Breaker("tasks", clock=clock, consecutive_failures=0,
                          failure_rate=0)
    steps = {k: asyncio.Event() for k in ("a_in", "b_go", "b_in", "a_out")}

    async def a():
        with pytest.raises(Boom):
            with b:  # a plain `with`, open across awaits
                steps["a_in"].set()
                await steps["b_in"].wait()
                raise Boom()
        steps["a_out"].set()

    async def b_task():
        await steps["b_go"].wait()
        with b:
            steps["b_in"].set()
            await steps["a_out"].wait()

    async def main():
        ta, tb = asyncio.create_task(a()), asyncio.create_task(b_task())
        await steps["a_in"].wait()
        b.force_closed()
        b.reset()
        steps["b_go"].set()
        await asyncio.gather(ta, tb)

    asyncio.run(main())
    s = b.snapshot()
    assert (s.late, s.failures, s.successes) == (1, 0, 1)


def test_sync_with_blocks_in_two_threads_record_their_own_calls(clock):
    b = tripsense.Breaker("threads", clock=clock, consecutive_failures=0,
                          failure_rate=0)
    go = {k: threading.Event() for k in ("a_in", "b_go", "b_in", "a_out", "b_out")}

    def a():
        with pytest.raises(Boom):
            with b:
                go["a_in"].set()
                go["b_in"].wait()
                raise Boom()
        go["a_out"].set()

    def b_thread():
        go["b_go"].wait()
        with b:
            go["b_in"].set()
            go["a_out"].wait()
        go["b_out"].set()

    ta, tb = threading.Thread(target=a), threading.Thread(target=b_thread)
    _first_in_first_out(lambda: (ta.start(), go["a_in"].wait()),
                        lambda: (go["b_go"].set(), tb.start(), go["b_in"].wait()),
                        lambda: ta.join(), lambda: tb.join(), b)


def test_python_and_c_read_the_same_monotonic_clock():
    import time

    from tripsense._lowlevel import ffi, lib

    a = time.monotonic_ns()
    c = lib.trip_clock_now(ffi.NULL)
    b = time.monotonic_ns()
    assert a <= c <= b  # retry_after of the system clock relies on it


def test_retry_after_with_the_system_clock():
    b = tripsense.Breaker("sys", consecutive_failures=1, open_s=30, jitter=0)
    trip(b)
    with pytest.raises(tripsense.CircuitOpenError) as ei:
        b.call(lambda: 1)
    assert 0 < ei.value.retry_after <= 30


def test_limiter_rate_and_burst_are_exact(clock):
    # 10 calls/s with a burst of 5: five at once, then one per 0.1 s
    b = tripsense.Breaker("lim", clock=clock, limit_rate=10, limit_burst=5,
                          limit_adaptive=False)
    passed = 0
    for _ in range(8):
        try:
            b.call(lambda: None)
            passed += 1
        except tripsense.CircuitOpenError as e:
            assert e.decision == "limited"
    assert passed == 5
    for _ in range(10):
        clock.advance(0.1)
        b.call(lambda: None)  # one token each step: never limited
    with pytest.raises(tripsense.CircuitOpenError):
        b.call(lambda: None)
    assert b.snapshot().limited == 4


def test_flapping_is_detected_and_lengthens_the_open_period(clock):
    b = tripsense.Breaker("flap", clock=clock, consecutive_failures=1,
                          open_s=1, jitter=0, half_open_successes=1,
                          flap_trips=3, flap_window_s=600, flap_backoff=4,
                          backoff_multiplier=1, adaptive=False)
    seen = []
    for _ in range(3):
        trip(b)
        seen.append(b.snapshot().flapping)
        clock.advance(1.01)  # past a 1 s open period unless flapping
        try:
            b.call(lambda: None)  # the probe closes it
        except tripsense.CircuitOpenError:
            pass
    assert seen == [False, False, True]
    # the third trip within the window made it flapping: 4 x 1 s open
    assert b.is_open()
    assert "tripsense_flapping" in b.prometheus()


# ---- policy and names checked up front ----------------------------------------

@pytest.mark.parametrize("kw, pattern", [
    (dict(error_weights={(ValueError, KeyError): 2.0}), "single exception types"),
    (dict(error_weights=[(ValueError, 2.0)]), "expected a mapping"),
    (dict(fallback="cached"), "fallback: expected a callable"),
    (dict(timeout=True), "timeout"),
    (dict(timeout=float("inf")), "timeout"),
])
def test_bad_policy_keywords_are_invalid_config(kw, pattern):
    with pytest.raises(tripsense.InvalidConfigError, match=pattern):
        tripsense.Breaker("p", **kw)


@pytest.mark.parametrize("kw, pattern", [
    (dict(timeout=-1), "timeout"),
    (dict(timeout="5"), "timeout"),
    (dict(fallback="cached"), "fallback"),
])
def test_decorate_checks_its_options_when_called(clock, kw, pattern):
    b = tripsense.Breaker("d", clock=clock)
    with pytest.raises(tripsense.InvalidConfigError, match=pattern):
        b.decorate(**kw)


def test_decorate_refuses_a_timeout_for_a_plain_function(clock):
    b = tripsense.Breaker("d", clock=clock)
    deco = b.decorate(timeout=5)
    with pytest.raises(tripsense.InvalidConfigError, match="not a coroutine"):
        deco(lambda: 1)

    async def f():
        return 2

    assert asyncio.run(deco(f)()) == 2


def test_call_checks_the_fallback_before_calling(clock):
    b = tripsense.Breaker("d", clock=clock)
    with pytest.raises(tripsense.InvalidConfigError, match="fallback"):
        b.call(lambda: 1, fallback=42)
    assert b.snapshot().calls == 0


def test_names_with_nul_are_refused(clock):
    """C would end the name at the NUL: "db\0primary" would be "db"."""
    with pytest.raises(tripsense.InvalidConfigError, match="NUL"):
        tripsense.Breaker("pay\0ments")
    reg = tripsense.Registry()
    reg.get_or_create("db", clock=clock)
    with pytest.raises(tripsense.InvalidConfigError, match="NUL"):
        reg.get_or_create("db\0primary", clock=clock)
    with pytest.raises(tripsense.InvalidConfigError, match="NUL"):
        reg.depends("db", "db\0")
    with pytest.raises(tripsense.InvalidConfigError, match="NUL"):
        reg["db"].add_signal("cpu\0x", threshold=1.0)
    with pytest.raises(tripsense.InvalidConfigError, match="name: expected a str"):
        reg.get_or_create(["db"])
    assert len(reg) == 1
    reg.close()


def test_registry_bad_keyword_registers_nothing(clock):
    """A refused policy keyword leaves no breaker behind: the retry creates
    it with its own options."""
    reg = tripsense.Registry()
    with pytest.raises(tripsense.InvalidConfigError, match="fallback"):
        reg.get_or_create("db", clock=clock, failure_rate=0.2, fallback=5)
    assert "db" not in reg and len(reg) == 0
    b = reg.get_or_create("db", clock=clock, failure_rate=0.9)
    assert b.config["failure_rate"] == 0.9
    reg.close()


def test_close_leaves_a_registry_breaker_to_its_registry(clock):
    reg = tripsense.Registry()
    b = reg.get_or_create("db", clock=clock)
    b.close()
    assert reg.get_or_create("db") is b
    assert b.call(lambda: 7) == 7
    reg.close()
    with pytest.raises(tripsense.TripsenseError, match="closed"):
        b.call(lambda: 7)
