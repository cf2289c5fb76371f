# SPDX-License-Identifier: GPL-3.0-or-later
"""Threads: exact counts and no serialisation of guarded calls."""
import threading

import pytest

import tripsense
from conftest import Boom


def _never_trips(name, **kw):
    return tripsense.Breaker(name, consecutive_failures=0, failure_rate=0,
                             consecutive_timeouts=0, adaptive=False, **kw)


def test_many_threads_give_exact_counts():
    b = _never_trips("threads")
    n_threads, per = 8, 3000

    def work():
        for i in range(per):
            if i % 3 == 0:
                try:
                    b.call(_fail)
                except Boom:
                    pass
            else:
                b.call(_ok)

    ts = [threading.Thread(target=work) for _ in range(n_threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    s = b.snapshot()
    assert s.calls == n_threads * per
    assert s.failures == n_threads * (per // 3)
    assert s.successes == n_threads * per - s.failures
    assert s.in_flight == 0


def _ok():
    return None


def _fail():
    raise Boom()


@pytest.mark.parametrize("form", ["call", "decorator", "with"])
def test_guarded_calls_run_at_the_same_time(form):
    # every thread waits inside its guarded call for all the others: if the
    # breaker serialised calls, the barrier would break instead
    n = 6
    b = _never_trips(f"concurrent-{form}")
    barrier = threading.Barrier(n, timeout=30)
    seen = []

    def inside():
        barrier.wait()
        seen.append(b.snapshot().in_flight)

    guarded = b(inside)

    def run():
        if form == "call":
            b.call(inside)
        elif form == "decorator":
            guarded()
        else:
            with b:
                inside()

    ts = [threading.Thread(target=run) for _ in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not barrier.broken
    assert b.snapshot().successes == n
    assert max(seen) == n  # all n were in flight together


def test_context_manager_tickets_are_per_thread():
    b = _never_trips("cm")
    n = 4
    barrier = threading.Barrier(n, timeout=30)
    errors = []

    def run(i):
        for _ in range(200):
            try:
                with b:
                    if i % 2:
                        raise Boom()
            except Boom:
                pass
            except Exception as e:  # a ticket mix-up would show here
                errors.append(e)
        barrier.wait()

    ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    s = b.snapshot()
    assert (s.calls, s.failures, s.in_flight) == (800, 400, 0)


def test_history_flush_while_threads_call(tmp_path):
    b = _never_trips("hist", history=str(tmp_path / "t.db"))
    stop = threading.Event()

    def work():
        while not stop.is_set():
            b.call(_ok)

    ts = [threading.Thread(target=work) for _ in range(3)]
    for t in ts:
        t.start()
    for _ in range(5):
        b.store.flush()  # releases the GIL: the callers keep running
    stop.set()
    for t in ts:
        t.join()
    b.store.flush()
    st = b.store.status()
    assert st["written"] + st["dropped_full"] == b.snapshot().calls


def test_flush_releases_the_gil_while_it_waits(tmp_path):
    # Another connection holds the database's write lock, so flush() must
    # wait for it in C. This thread can only take the lock away again if
    # flush() let go of the GIL while waiting; otherwise flush would return
    # first (after the busy timeout) and `flushed` would already be set.
    import sqlite3

    db = str(tmp_path / "gil.db")
    s = tripsense.Store(db, busy_timeout_s=30)
    b = _never_trips("gil", history=s)
    b.call(_ok)
    s.flush()
    con = sqlite3.connect(db, isolation_level=None, timeout=0)
    con.execute("BEGIN EXCLUSIVE")
    for _ in range(10):
        b.call(_ok)
    started, flushed = threading.Event(), threading.Event()

    def flush():
        started.set()
        s.flush()
        flushed.set()

    th = threading.Thread(target=flush)
    th.start()
    started.wait()
    flushed.wait(0.2)  # give flush time to reach its wait in C
    flushed_before_unlock = flushed.is_set()
    con.execute("COMMIT")
    th.join(60)
    assert not flushed_before_unlock
    assert flushed.is_set() and s.status()["written"] == 11


def test_hot_path_keeps_the_gil_without_deadlock(tmp_path):
    # allow/record/enter/exit keep the GIL (_hotpath.c). A failure that
    # trips the breaker takes its mutex with the GIL held, and the listener
    # then runs Python in the calling thread; meanwhile another thread, with
    # the GIL released, takes the same mutex (mode changes, snapshots,
    # attaching a store with history to warm up from). If C ever held the
    # mutex while waiting for the GIL, the threads would hang here.
    store = tripsense.Store(str(tmp_path / "hot.db"))
    b = tripsense.Breaker("hot", consecutive_failures=1, open_s=0.001,
                          jitter=0, half_open_successes=1, adaptive=False)
    seen = []
    b.add_listener(lambda ev: seen.append(ev.to_state), rejections=True)
    stop = threading.Event()
    done = []

    def calls(i):
        g = b(_fail if i % 2 else _ok)
        while not stop.is_set():
            try:
                if i % 3:
                    g()
                else:
                    with b:
                        if i % 2:
                            raise Boom()
            except (Boom, tripsense.CircuitOpenError):
                pass
        done.append(i)

    def control():
        while not stop.is_set():
            b.force_open()
            b.snapshot()
            b.reset()
            b.attach(store)
            b.attach(None)
        done.append("control")

    ts = [threading.Thread(target=calls, args=(i,)) for i in range(4)]
    ts.append(threading.Thread(target=control))
    for t in ts:
        t.start()
    stop.wait(1.0)
    stop.set()
    for t in ts:
        t.join(30)
    assert sorted(map(str, done)) == ["0", "1", "2", "3", "control"]
    assert seen and b.snapshot().in_flight == 0
    b.close()
    store.close()
