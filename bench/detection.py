# SPDX-License-Identifier: GPL-3.0-or-later
"""Score configurations on the demo's simulated month by replay.

    python bench/detection.py '{}' '{"anomaly_k": 2}' ...

Simulates the demo's traffic (30 days, four dependencies, seed 7; `--days`
and `--seed` to change) once, replays every dependency under each
configuration given as JSON (over the defaults; `fixed` for the
fixed-threshold breaker of the demo) and prints the scores of
`tripsense.tune.score_runs` overall, per kind of incident and per
dependency. This is how the detection figures in docs/algorithms.md were
measured; `make demo` runs the live breakers and writes the history.
"""
import argparse
import json
import time

import pandas as pd

from tripsense import demo, simulate
from tripsense.tune import FIXED_COMMON, score_runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("configs", nargs="*", default=["{}"])
    ap.add_argument("--days", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    sim = simulate(days=args.days, dependencies=demo.DEMO_DEPENDENCIES,
                   seed=args.seed, order="breaker")
    pd.set_option("display.width", 200)
    for text in args.configs:
        cfg = FIXED_COMMON if text == "fixed" else json.loads(text)
        t0 = time.perf_counter()
        runs = demo._replay_runs(sim, cfg)
        total = score_runs(runs, sim.incidents, weeks=sim.weeks,
                           end_ns=sim.end_ns)
        per_dep = score_runs(runs, sim.incidents, weeks=sim.weeks,
                             end_ns=sim.end_ns, by_breaker=True)
        print(f"== {text} ({time.perf_counter() - t0:.0f} s)")
        print(total.T.to_string())
        print(demo._per_kind(sim, {"caught, median delay": runs}).to_string())
        print(per_dep[["caught", "false_trips_per_week", "spikes_tripped"]]
              .to_string())


if __name__ == "__main__":
    main()
