# SPDX-License-Identifier: GPL-3.0-or-later
"""`with breaker:` blocks: the outcome of each block is recorded on its own
ticket and classified as the decorator classifies it, in threads, tasks,
generators and nested blocks; the block's exception propagates."""
import asyncio
import threading

import pytest

import tripsense
from conftest import Boom


class Retryable(Exception):
    pass


class MyTimeout(Exception):
    pass


def _policies():
    """Breakers that never trip, each with a classification to check."""
    return [
        dict(),
        dict(exclude=(KeyError,)),
        dict(exclude=lambda e: isinstance(e, Boom) and "ignore" in str(e)),
        dict(timeouts=(MyTimeout,)),
        dict(error_weights={Retryable: 0.5}, failure_weight=2.0),
    ]


_RAISES = [None, Boom("down"), Boom("ignore me"), KeyError("k"),
           MyTimeout(), TimeoutError(), Retryable(), KeyboardInterrupt()]


def _counts(b):
    s = b.snapshot()
    return (s.calls, s.successes, s.failures, s.timeouts, s.ignored,
            s.in_flight, round(s.weighted_failures, 9))


def _through_decorator(b, exc):
    @b
    def f():
        if exc is not None:
            raise exc

    try:
        f()
    except BaseException as e:
        assert e is exc


def _through_with(b, exc):
    try:
        with b:
            if exc is not None:
                raise exc
    except BaseException as e:
        assert e is exc  # the block's own exception propagates
    else:
        assert exc is None


@pytest.mark.parametrize("in_loop", [False, True], ids=["thread", "task"])
def test_with_classifies_exceptions_as_the_decorator_does(clock, in_loop):
    for i, policy in enumerate(_policies()):
        cfg = dict(clock=clock, consecutive_failures=0, failure_rate=0,
                   adaptive=False, **policy)
        dec = tripsense.Breaker(f"dec{i}", **cfg)
        wth = tripsense.Breaker(f"with{i}", **cfg)
        for exc in _RAISES:
            _through_decorator(dec, exc)
            if in_loop:
                async def run(exc=exc):
                    _through_with(wth, exc)
                asyncio.run(run())
            else:
                _through_with(wth, exc)
        assert _counts(wth) == _counts(dec), policy
        assert _counts(wth)[5] == 0


def _never_trips(name, clock):
    return tripsense.Breaker(name, clock=clock, consecutive_failures=0,
                             failure_rate=0, adaptive=False)


def test_blocks_of_two_breakers_closing_out_of_order(clock):
    # generators suspended inside blocks close them in any order; each
    # breaker's block keeps its own ticket
    a, b = _never_trips("a", clock), _never_trips("b", clock)
    b.force_closed()
    b.reset()  # b's generation is not a's: a ticket of a's would be late in b

    def inside(br, fail):
        with br:
            yield
            if fail:
                raise Boom()

    ga, gb = inside(a, True), inside(b, False)
    next(ga)
    a.force_closed()
    a.reset()  # a's open ticket is now from an old generation: late
    next(gb)
    with pytest.raises(Boom):
        next(ga)  # a's block closes first, under b's
    with pytest.raises(StopIteration):
        next(gb)
    sa, sb = a.snapshot(), b.snapshot()
    assert (sa.late, sa.failures, sa.in_flight) == (1, 0, 0)
    assert (sb.late, sb.successes, sb.in_flight) == (0, 1, 0)


def test_deeply_nested_blocks_of_two_breakers(clock):
    a, b = _never_trips("a", clock), _never_trips("b", clock)
    depth = 150  # more blocks than the first few sizes of the thread's list
    seen = []

    def nest(i):
        if i == depth:
            seen.append((a.snapshot().in_flight, b.snapshot().in_flight))
            raise Boom()
        with (a if i % 2 else b):
            nest(i + 1)

    with pytest.raises(Boom):
        nest(0)
    assert seen == [(depth // 2, depth // 2)]
    for br in (a, b):
        s = br.snapshot()
        assert (s.calls, s.failures, s.in_flight) == (depth // 2, depth // 2, 0)


def test_exit_without_enter_raises(clock):
    b = _never_trips("x", clock)
    with pytest.raises(tripsense.TripsenseError, match="exit without enter"):
        b.__exit__(None, None, None)
    with b:
        pass

    async def in_task():
        with pytest.raises(tripsense.TripsenseError, match="exit without enter"):
            b.__exit__(None, None, None)
        with b:
            pass

    asyncio.run(in_task())
    s = b.snapshot()
    assert (s.successes, s.in_flight) == (2, 0)


def test_a_block_whose_breaker_closes_inside_it(clock):
    a, b = _never_trips("a", clock), _never_trips("b", clock)
    with a:
        with b:
            b.close()  # b's block ends without touching the freed breaker
        with pytest.raises(tripsense.TripsenseError, match="closed"):
            with b:
                raise AssertionError("must not run")
    s = a.snapshot()
    assert (s.successes, s.in_flight) == (1, 0)


def test_refused_block_raises_circuit_open_with_its_reason(fast):
    for _ in range(3):
        with pytest.raises(Boom):
            with fast:
                raise Boom()
    with pytest.raises(tripsense.CircuitOpenError) as ei:
        with fast:
            raise AssertionError("must not run")
    e = ei.value
    assert (e.state, e.decision, e.rule) == ("open", "rejected",
                                            "consecutive_failures")
    assert e.retry_after == pytest.approx(5.0)
    s = fast.snapshot()
    assert (s.rejected, s.failures, s.in_flight) == (1, 3, 0)


def test_plain_with_around_await_in_interleaved_tasks_classifies(clock):
    b = tripsense.Breaker("tasks", clock=clock, consecutive_failures=0,
                          failure_rate=0, exclude=(KeyError,),
                          timeouts=(MyTimeout,))
    kinds = [None, Boom, KeyError, MyTimeout]

    async def one(i):
        with b:  # a plain `with`, open across awaits of the other tasks
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            if kinds[i % 4] is not None:
                raise kinds[i % 4]()

    async def main():
        return await asyncio.gather(*(one(i) for i in range(40)),
                                    return_exceptions=True)

    res = asyncio.run(main())
    assert [type(r) for r in res[:4]] == [type(None), Boom, KeyError, MyTimeout]
    s = b.snapshot()
    assert (s.successes, s.failures, s.ignored, s.timeouts, s.in_flight) == \
        (10, 10, 10, 10, 0)


def test_sync_block_around_an_event_loop(clock):
    # the outer block is open in the thread, the inner ones in tasks
    b = _never_trips("mixed", clock)

    async def task(fail):
        with b:
            await asyncio.sleep(0)
            if fail:
                raise Boom()

    async def main():
        async with b:
            await asyncio.gather(task(False), task(True),
                                 return_exceptions=True)

    with b:
        asyncio.run(main())
        assert b.snapshot().in_flight == 1
    s = b.snapshot()
    assert (s.calls, s.successes, s.failures, s.in_flight) == (4, 3, 1, 0)


def test_nested_blocks_in_threads_that_end(clock):
    b = _never_trips("threads", clock)
    n, depth = 6, 20
    errors = []

    def nest(i):
        if i == depth:
            raise Boom()
        with b:
            nest(i + 1)

    def run():
        for _ in range(20):
            try:
                nest(0)
            except Boom:
                pass
            except Exception as e:  # a ticket mix-up would show here
                errors.append(e)

    for _ in range(3):  # threads come and go, each with its own list
        ts = [threading.Thread(target=run) for _ in range(n)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    assert not errors
    s = b.snapshot()
    assert (s.calls, s.failures, s.in_flight) == (3 * n * 20 * depth,
                                                 3 * n * 20 * depth, 0)


def _half_open_after_one_failure(clock, **kw):
    b = tripsense.Breaker("moved", clock=clock, consecutive_failures=1, open_s=1,
                          jitter=0, half_open_successes=1, **kw)
    with pytest.raises(Boom):
        with b:
            raise Boom("down")
    clock.advance(2)
    return b


def _resume_in_thread(gen):
    """Run the rest of a started generator in another thread; return what
    that thread raised, or None."""
    err = []

    def rest():
        try:
            list(gen)
        except BaseException as e:  # noqa: BLE001 - handed to the test
            err.append(e)

    th = threading.Thread(target=rest)
    th.start()
    th.join()
    return err[0] if err else None


def test_with_block_ended_in_another_thread_is_refused_and_recovered(clock):
    """A generator holding `with breaker:` resumed in another thread (what a
    thread pool does to a streaming response): the block's ticket is in the
    first thread's stack, so its exit raises, naming guard(); the probe it
    took is never recorded, and half_open_max_s reopens the breaker instead
    of refusing every call for good."""
    b = _half_open_after_one_failure(clock, half_open_max_s=30)

    def gen():
        with b:
            yield 1

    g = gen()
    next(g)  # the half-open probe is out
    err = _resume_in_thread(g)
    assert isinstance(err, tripsense.TripsenseError)
    assert "guard()" in str(err)
    clock.advance(29)
    with pytest.raises(tripsense.CircuitOpenError) as ei:
        with b:
            pass
    assert ei.value.decision == "limited"
    clock.advance(1)
    with pytest.raises(tripsense.CircuitOpenError) as ei:
        with b:
            pass
    assert ei.value.decision == "rejected"
    assert b.snapshot().last_trip.rule == "half_open_timeout"
    clock.advance(2)  # the open period, backed off to 2 s
    with b:
        pass
    assert b.state == "closed"


def test_guard_block_may_end_in_another_thread(clock):
    """guard() keeps its block's ticket: the generator's probe, ended in
    another thread, is recorded there and closes the breaker."""
    b = _half_open_after_one_failure(clock)

    def gen():
        with b.guard():
            yield 1

    g = gen()
    next(g)
    assert _resume_in_thread(g) is None
    assert b.state == "closed"
    assert b.snapshot().in_flight == 0


def test_guard_block_may_end_in_another_task(clock):
    b = _half_open_after_one_failure(clock)

    async def agen():
        async with b.guard():
            yield 1

    async def main():
        g = agen()
        await asyncio.create_task(g.__anext__())
        with pytest.raises(StopAsyncIteration):
            await asyncio.create_task(g.__anext__())

    asyncio.run(main())
    assert b.state == "closed"


def test_guard_is_one_block(clock):
    b = _never_trips("g", clock)
    g = b.guard()
    with g:
        with pytest.raises(tripsense.TripsenseError, match="open already"):
            g.__enter__()
    with pytest.raises(tripsense.TripsenseError, match="exit without enter"):
        g.__exit__(None, None, None)
    with g:  # reusable once closed
        pass
    assert b.snapshot().successes == 2
