# SPDX-License-Identifier: GPL-3.0-or-later
"""Python bindings benchmark (issue 6), run by ``make bench``.

Measures, in one run, per call in this thread's CPU time (best of 5, so
that other jobs on a shared machine do not count): a plain ``f()``, the
decorator, ``call()`` and ``with`` on the closed path, the rejected path,
pybreaker's decorator and rejected path on the same function when pybreaker
is installed (``make bench`` installs it into the venv for this only), 4
threads against 1 for the decorator, ``with``, a plain call and a pure-Python
call as heavy as a guarded one, each run lasting as long (wall time, and the
process's CPU time, which other jobs do not inflate; run under ``chrt -f
50`` so that the threads really share the cores; fifteen rounds, each
function against the same round's plain call), History of one
million outcomes into a DataFrame, and replay of ten million events from
Python against the C call it makes (best of 3 in this thread's CPU time,
and the first run alone: only the first pays for touching its 190 MB of
new columns for the first time), and what touching 190 MB costs this
machine when its memory is cold and when it was just used (first_touch:
a virtual machine whose host takes freed memory back, free page reporting,
faults it in again on first use).
"""
import os
import sys
import tempfile
import threading
import time

import numpy as np

import tripsense
from tripsense._lowlevel import ffi, lib


def per_call(fn, n=200_000, reps=5):
    best = float("inf")
    for _ in range(reps):
        t0 = time.thread_time_ns()
        for _ in range(n):
            fn()
        best = min(best, (time.thread_time_ns() - t0) / n)
    return best


def f():
    return 1


def closed_paths():
    b = tripsense.Breaker("bench", consecutive_failures=0, failure_rate=0,
                          adaptive=False)
    g = b(f)

    def with_block():
        with b:
            f()

    plain = per_call(f)
    rows = [("plain f()", plain), ("decorator", per_call(g)),
            ("call()", per_call(lambda: b.call(f))),
            ("with", per_call(with_block))]
    b.force_open()

    def rejected():
        try:
            g()
        except tripsense.CircuitOpenError:
            pass

    rows.append(("rejected (decorator, raises)", per_call(rejected, 50_000)))
    return plain, rows


def pybreaker_paths():
    try:
        import pybreaker
    except ImportError:
        return None
    pb = pybreaker.CircuitBreaker(fail_max=10**9)
    closed = per_call(pb(f))
    pb2 = pybreaker.CircuitBreaker(fail_max=1, reset_timeout=1e9)
    g2 = pb2(f)
    pb2.open()

    def rejected():
        try:
            g2()
        except pybreaker.CircuitBreakerError:
            pass

    return closed, per_call(rejected, 50_000)


def threads_ratio(n_threads=4, slice_s=0.1, rounds=15, reps=2):
    """Per call with n threads against one, for tripsense's decorator and
    ``with``, for a plain call (what the GIL alone imposes) and for a
    pure-Python call about as heavy as a guarded one (``heavy``: what the
    GIL imposes on a call of that weight, whose working set each hand-off
    to another core moves).

    Each function's calls are counted so that a thread's share lasts about
    slice_s (twenty of the interpreter's 5 ms switch intervals), and the
    one thread makes as many calls as the n together: a plain call's runs
    must last as long as a guarded call's, or the GIL hands the lock over
    fewer times in them (with a fixed count, four threads of plain calls
    each finished within one switch interval, and the plain ratio read low).
    One-thread and n-thread runs alternate, best of reps each, so that a
    change in the machine's load weighs on both; a round measures every
    function once, and the result is each function's ratios over the rounds
    (wall time, and the process's CPU time)."""
    b = tripsense.Breaker("threads", consecutive_failures=0, failure_rate=0,
                          adaptive=False)
    g = b(f)

    def with_block():
        with b:
            f()

    class Block:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    block = Block()

    def heavy():
        with block:
            x = 0
            for i in range(6):
                x += i
            return f()

    def run(fn, k, calls):
        def work():
            for _ in range(calls):
                fn()
        ts = [threading.Thread(target=work) for _ in range(k)]
        t0, c0 = time.perf_counter(), time.process_time()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return ((time.perf_counter() - t0) / (calls * k),
                (time.process_time() - c0) / (calls * k))

    def ratios(fn, n):
        one, many = [], []
        for _ in range(reps):
            one.append(run(fn, 1, n * n_threads))
            many.append(run(fn, n_threads, n))
        return (min(m[0] for m in many) / min(o[0] for o in one),
                min(m[1] for m in many) / min(o[1] for o in one))

    fns = (g, with_block, f, heavy)
    counts = [max(1000, int(slice_s / (per_call(fn, 50_000, 3) * 1e-9)))
              for fn in fns]
    out: list = [[] for _ in fns]
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            out[i].append(ratios(fn, counts[i]))
    return [np.array(r) for r in out]


def history_read(path, rows=1_000_000):
    clock = tripsense.ManualClock(start_ns=1_795_392_000 * 10**9)
    store = tripsense.Store(path, ring_capacity=1 << 20)
    b = tripsense.Breaker("big", clock=clock, history=store,
                          consecutive_failures=0, failure_rate=0,
                          adaptive=False)
    ok = lambda: None  # noqa: E731
    for _ in range(rows):
        clock.advance_ns(1_000_000)
        b.call(ok)
    store.flush()
    b.close()
    store.close()
    h = tripsense.History(path)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        df = h.outcomes()
        best = min(best, time.perf_counter() - t0)
    h.close()
    return len(df), best


def replay_ratio(n=10_000_000, reps=3):
    """Events per second of trip_replay_arrays and of tripsense.replay on
    the same arrays: (C best, Python best, C first, Python first)."""
    rng = np.random.default_rng(1)
    t = 1_795_392_000 * 10**9 + np.cumsum(rng.integers(1, 3, n)) * 100_000
    outcome = (rng.random(n) < 0.02).astype(np.int32)
    lat = rng.lognormal(np.log(0.02), 0.3, n)
    cfg = ffi.new("trip_config *")
    lib.trip_config_init(cfg)
    out = ffi.new("trip_replay_result **")
    c_s, py_s = [], []
    for _ in range(reps):
        c0 = time.thread_time()
        rc = lib.trip_replay_arrays(cfg, ffi.from_buffer("int64_t[]", t),
                                    ffi.from_buffer("double[]", lat),
                                    ffi.from_buffer("int32_t[]", outcome),
                                    ffi.NULL, n, out)
        c_s.append(time.thread_time() - c0)
        assert rc == 0, rc
        lib.trip_replay_result_free(out[0])
        p0 = time.thread_time()
        r = tripsense.replay({"time": t, "outcome": outcome, "latency_s": lat})
        py_s.append(time.thread_time() - p0)
        del r
    return n / min(c_s), n / min(py_s), n / c_s[0], n / py_s[0]


def first_touch(nbytes=190 << 20, settle_s=5.0):
    """Seconds of this thread's CPU to fill nbytes of new memory, cold (after
    settle_s idle, when a host that takes freed guest memory back has had
    time to) and at once again (the pages the first fill freed): the part
    of a process's first replay that is the machine's, not tripsense's."""
    time.sleep(settle_s)
    out = []
    for _ in range(2):
        t0 = time.thread_time()
        a = np.ones(nbytes // 8)
        out.append(time.thread_time() - t0)
        del a
    return out[0], out[1]


def main():
    print(f"# bench_python: tripsense {tripsense.__version__}, Python "
          f"{sys.version.split()[0]}, numpy {np.__version__}")
    plain, rows = closed_paths()
    pb = pybreaker_paths()
    for name, ns in rows:
        print(f"{name:34s} {ns:8.0f} ns/call  {ns / plain:6.1f}x plain")
    if pb is None:
        print("pybreaker not installed: no peer comparison")
    else:
        dec = dict(rows)["decorator"]
        rej = dict(rows)["rejected (decorator, raises)"]
        print(f"{'pybreaker decorator':34s} {pb[0]:8.0f} ns/call  tripsense "
              f"= {dec / pb[0]:.2f}x pybreaker (target <= 0.33x)")
        print(f"{'pybreaker rejected':34s} {pb[1]:8.0f} ns/call  tripsense "
              f"= {rej / pb[1]:.2f}x pybreaker (target <= 0.33x)")
    names = ("tripsense decorator", "tripsense with", "plain call",
             "Python call")
    th = threads_ratio()
    print(f"4 threads / 1 thread per call, equal time in each (median of "
          f"{len(th[0])} rounds [min-max]; wall, process CPU)")
    for name, r in zip(names, th):
        med = np.median(r, axis=0)
        print(f"  {name:32s} {med[0]:.2f}x [{r[:, 0].min():.2f}-"
              f"{r[:, 0].max():.2f}] wall, {med[1]:.2f}x CPU")
    print("  (plain call: what the GIL imposes; Python call: pure Python as "
          "heavy as a guarded call)")
    for name, r in zip(names[:2], th[:2]):
        # the same round's plain call is the reference: drifts of the
        # machine's speed between rounds cancel
        d = r[:, 0] - th[2][:, 0]
        print(f"  {name} minus plain call, same round: median {np.median(d):+.3f}, "
              f"above it in {int((d > 0).sum())} of {len(d)} rounds "
              f"(target: no more than the GIL's share)")
    with tempfile.TemporaryDirectory() as d:
        n, s = history_read(os.path.join(d, "h.db"))
    print(f"History.outcomes() of {n:,} rows     {s:.3f} s wall, best of 3 "
          f"(target <= 1 s)")
    c_rate, py_rate, c_first, py_first = replay_ratio()
    print(f"replay of 10M events               C {c_rate / 1e6:.2f} M/s, from "
          f"Python {py_rate / 1e6:.2f} M/s = {py_rate / c_rate:.2f}x "
          f"(target >= 0.5x), best of 3")
    print(f"replay of 10M events, first run    C {c_first / 1e6:.2f} M/s, from "
          f"Python {py_first / 1e6:.2f} M/s = {py_first / c_first:.2f}x")
    cold, warm = first_touch()
    print(f"filling 190 MB of new memory       {cold:.3f} s cold, {warm:.3f} s "
          f"just after (this machine's share of a first run)")


if __name__ == "__main__":
    main()
