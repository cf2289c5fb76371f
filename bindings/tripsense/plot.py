# SPDX-License-Identifier: GPL-3.0-or-later
"""Plots for notebooks and the demo: state timeline, rates against the
seasonal baseline, and the tuning trade-off.

Each function takes ``ax=None`` (a new figure) or the Axes to draw on, and
returns the matplotlib Figure. matplotlib is imported when a function is
called, never at ``import tripsense``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = ["plot_timeline", "plot_rates", "plot_tradeoff",
           "shade_incidents", "hour_of_week_band"]

#: Colours by state and incident kind, chosen to read in print too.
STATE_COLOURS = {"closed": "#2e7d32", "half_open": "#f9a825",
                 "open": "#c62828", "forced_open": "#6a1b9a",
                 "forced_closed": "#1565c0", "disabled": "#9e9e9e",
                 "metrics_only": "#00838f"}
_STATE_LEVEL = {"closed": 0, "half_open": 1, "open": 2, "forced_open": 2,
                "forced_closed": 0, "disabled": 0, "metrics_only": 0}
INCIDENT_COLOURS = {"outage": "#e53935", "outage_timeout": "#8e24aa",
                    "brownout": "#fb8c00", "latency_creep": "#3949ab",
                    "slow_night": "#00897b", "flapping": "#d81b60",
                    "deploy_spike": "#757575", "incident": "#e53935"}


def _plt() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover
        raise ImportError("tripsense.plot needs matplotlib: pip install "
                          "'tripsense[analysis]'") from None
    return plt


def _pd() -> Any:
    import pandas as pd

    return pd


def _ts(x: Any) -> Any:
    pd = _pd()
    if isinstance(x, (int, np.integer)):
        return pd.Timestamp(int(x), unit="ns", tz="UTC")
    t = pd.Timestamp(x)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def _incident_frame(incidents: Any, breaker: str | None) -> "pd.DataFrame":
    pd = _pd()
    if incidents is None:
        return pd.DataFrame(columns=["breaker", "kind", "start", "end",
                                     "expect_trip"])
    df = pd.DataFrame(incidents).copy()
    for key in ("start", "end"):
        if key not in df.columns:
            if key + "_ns" not in df.columns:
                raise ValueError(f"incidents need a {key!r} column")
            df[key] = [_ts(int(v)) for v in df[key + "_ns"]]
        else:
            df[key] = [_ts(v) for v in df[key]]
    if "kind" not in df.columns:
        df["kind"] = "incident"
    if "expect_trip" not in df.columns:
        df["expect_trip"] = True
    if breaker is not None and "breaker" in df.columns:
        df = df[df["breaker"] == breaker]
    return df


def shade_incidents(ax: Any, incidents: Any, breaker: str | None = None,
                    label: bool = True, start: Any = None,
                    end: Any = None) -> None:
    """Shade incident windows on an Axes (one colour per kind).

    Parameters
    ----------
    ax : matplotlib Axes
    incidents : DataFrame
        ``start``/``end`` (or ``start_ns``/``end_ns``), ``kind``, optionally
        ``breaker`` (filtered by ``breaker``).
    label : bool
        Add each kind once to the legend.
    start, end : optional
        Only incidents overlapping this range.
    """
    df = _incident_frame(incidents, breaker)
    seen: set[str] = set()
    lo = _ts(start) if start is not None else None
    hi = _ts(end) if end is not None else None
    for _, r in df.iterrows():
        if (hi is not None and r["start"] >= hi) or \
                (lo is not None and r["end"] <= lo):
            continue
        kind = str(r["kind"])
        colour = INCIDENT_COLOURS.get(kind, "#e53935")
        # very short windows (deploy spikes) would be invisible: widen them
        # to a visible minimum while keeping their centre
        s, e = r["start"], r["end"]
        ax.axvspan(s, e, color=colour, alpha=0.18, lw=0,
                   label=kind.replace("_", " ") if label and kind not in seen
                   else None)
        if (e - s).total_seconds() < 600:
            ax.axvline(s, color=colour, alpha=0.6, lw=0.8, ls=":")
        seen.add(kind)


def _transitions_of(data: Any, breaker: str | None) -> "pd.DataFrame":
    """Transitions from a ReplayResult, a History/path or a DataFrame."""
    pd = _pd()
    if isinstance(data, pd.DataFrame):
        tr = data
    elif hasattr(data, "transitions") and isinstance(
            getattr(data, "transitions"), pd.DataFrame):
        tr = data.transitions  # ReplayResult
    elif hasattr(data, "transitions") and callable(data.transitions):
        tr = data.transitions(breaker)  # History
    elif isinstance(data, (str, bytes)) or hasattr(data, "__fspath__"):
        from . import History

        with History(data) as h:
            tr = h.transitions(breaker)
    else:
        raise TypeError("plot_timeline needs a ReplayResult, a History, a "
                        "history file path or a transitions DataFrame, not "
                        f"{type(data).__name__}")
    missing = {"from_state", "to_state"} - set(tr.columns)
    if missing:
        raise ValueError(f"transitions lack column(s) {sorted(missing)}")
    if breaker is not None and "breaker" in tr.columns:
        tr = tr[(tr["breaker"].astype(str) == breaker).to_numpy()]
    return tr


def plot_timeline(data: Any, ax: Any = None, *, breaker: str | None = None,
                  incidents: Any = None, start: Any = None, end: Any = None,
                  annotate: int = 12) -> "Figure":
    """Breaker state over time, with trips marked by the rule that fired.

    Parameters
    ----------
    data : ReplayResult, History, str or DataFrame
        Where the transitions come from (a history file path is opened
        read-only). A DataFrame needs ``from_state``, ``to_state`` and,
        for labels, ``rule``, with a DatetimeIndex.
    ax : matplotlib Axes, optional
    breaker : str, optional
        One lane for this breaker; default one lane per breaker found.
    incidents : DataFrame, optional
        Shaded on each breaker's lane.
    start, end : optional
        Range shown (default: the transitions' span, or the incidents').
    annotate : int
        Label at most this many trips per lane with their rule.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    TypeError, ValueError
        For data that holds no transitions.
    """
    plt = _plt()
    pd = _pd()
    tr = _transitions_of(data, breaker)
    if "breaker" in tr.columns and breaker is None:
        lanes = [str(b) for b in pd.unique(tr["breaker"].astype(str))]
    else:
        lanes = [breaker or "breaker"]
    inc = _incident_frame(incidents, None)
    if breaker is None and "breaker" in inc.columns:
        for b in pd.unique(inc["breaker"]):
            if str(b) not in lanes:
                lanes.append(str(b))
    if ax is None:
        fig, ax = plt.subplots(figsize=(12, 1.0 + 0.9 * len(lanes)),
                               layout="constrained")
    else:
        fig = ax.figure
    times = list(tr.index) + list(inc["start"]) + list(inc["end"])
    lo = _ts(start) if start is not None else (min(times) if times else None)
    hi = _ts(end) if end is not None else (max(times) if times else None)
    if lo is None:
        lo = hi = pd.Timestamp.now(tz="UTC")
    for i, lane in enumerate(lanes):
        y0 = (len(lanes) - 1 - i) * 3.0
        t = tr
        if "breaker" in tr.columns and len(lanes) > 1:
            t = tr[(tr["breaker"].astype(str) == lane).to_numpy()]
        for _, r in _incident_frame(inc, lane if "breaker" in inc.columns
                                    else None).iterrows():
            colour = INCIDENT_COLOURS.get(str(r["kind"]), "#e53935")
            ax.fill_between([r["start"], r["end"]], y0 - 0.4, y0 + 2.4,
                            color=colour, alpha=0.2, lw=0)
        xs = [lo]
        ys = [y0]
        for ts_, r in zip(t.index, t.itertuples()):
            xs += [ts_, ts_]
            ys += [ys[-1], y0 + _STATE_LEVEL.get(str(r.to_state), 0)]
        xs.append(hi)
        ys.append(ys[-1])
        ax.plot(xs, ys, color="#37474f", lw=1.0, drawstyle="default")
        trips = t[(t["to_state"].astype(str) == "open")
                  & (t["from_state"].astype(str) == "closed")]
        ax.scatter(trips.index, np.full(len(trips), y0 + 2),
                   marker="v", color=STATE_COLOURS["open"], s=28, zorder=3)
        if "rule" in trips.columns and annotate > 0:
            # label trips in view, skipping those too close to the last
            # label to be read (a burst of trips gets one label)
            gap = (hi - lo) / 40
            last = None
            shown = 0
            for ts_, r in zip(trips.index, trips["rule"].astype(str)):
                if ts_ < lo or ts_ > hi or shown >= annotate:
                    continue
                if last is not None and ts_ - last < gap:
                    continue
                ax.annotate(r.replace("_", " "), (ts_, y0 + 2.1),
                            fontsize=7, rotation=35, ha="left",
                            va="bottom", color="#b71c1c")
                last = ts_
                shown += 1
    ax.set_yticks([(len(lanes) - 1 - i) * 3.0 + 1 for i in
                   range(len(lanes))])
    ax.set_yticklabels(lanes)
    ax.set_ylim(-0.8, 3.0 * len(lanes) + 0.4)
    ax.set_xlim(lo, hi)
    ax.set_title("Breaker state (low = closed, middle = half-open, high = "
                 "open; triangles = trips, labelled by rule)", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    return fig


def hour_of_week_band(index: Any, baselines: "pd.DataFrame", metric: str
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Map saved hour-of-week baselines (``History.baselines()``) onto times.

    Returns (mean, sd) arrays aligned with ``index`` (NaN where no bucket
    was learned). Buckets 0..167 start on Monday 00:00 UTC; a table of 24
    buckets is hour of day; bucket -1 is a global fallback; the hour-of-day
    cells saved beside hour-of-week ones (168..191) are not used here.
    """
    pd = _pd()
    b = baselines[baselines["metric"].astype(str) == metric]
    idx = pd.DatetimeIndex(index)
    idx = idx.tz_convert("UTC") if idx.tz is not None else idx
    how = (idx.day_of_week * 24 + idx.hour).to_numpy()
    mean = np.full(len(idx), np.nan)
    sd = np.full(len(idx), np.nan)
    if len(b) == 0:
        return mean, sd
    buckets = b["bucket"].to_numpy()
    if buckets.max() < 24:
        how = how % 24
    table_m = dict(zip(buckets, b["mean"].to_numpy()))
    table_s = dict(zip(buckets, b["sd"].to_numpy()))
    gm, gs = table_m.get(-1, np.nan), table_s.get(-1, np.nan)
    mean[:] = [table_m.get(h, gm) for h in how]
    sd[:] = [table_s.get(h, gs) for h in how]
    return mean, sd


def _rate_columns(df: "pd.DataFrame", quantile: str) -> tuple[str, str]:
    rate = "failure_rate"
    if rate not in df.columns:
        raise ValueError("plot_rates needs a 'failure_rate' column "
                         "(History.rollups() or ReplayResult.evaluations)")
    for q in (quantile, "latency_q_s"):
        if q in df.columns:
            return rate, q
    raise ValueError(f"plot_rates needs a {quantile!r} (or 'latency_q_s') "
                     "column")


def plot_rates(df: "pd.DataFrame", baseline: Any = None, *, ax: Any = None,
               incidents: Any = None, breaker: str | None = None,
               quantile: str = "p99_s", band: float = 3.0,
               title: str | None = None) -> "Figure":
    """Failure rate and a latency percentile against the seasonal baseline.

    Parameters
    ----------
    df : DataFrame
        Per-minute ``History.rollups()`` (``failure_rate``, ``p99_s``) or
        ``ReplayResult.evaluations`` (``failure_rate``, ``latency_q_s``),
        with a DatetimeIndex. Rows of other breakers are dropped when
        ``breaker`` is given and ``df`` has a ``breaker`` column.
    baseline : DataFrame, optional
        Either ``History.baselines()`` (hour-of-week buckets of
        ``failure_rate`` and ``log_p99``), or a frame with columns
        ``baseline_rate``, ``baseline_rate_sd``, ``baseline_latency_s``,
        ``baseline_log_latency_sd`` on a DatetimeIndex (replay
        evaluations, e.g. resampled per minute). Drawn as a band of
        mean +- ``band`` sd.
    ax : Axes or pair of Axes, optional
        Two Axes (rate, latency); one Axes gets the latency on a twin axis.
    incidents : DataFrame, optional
        Shaded windows (see :func:`shade_incidents`).
    quantile : str
        The latency column to draw.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    pd = _pd()
    if breaker is not None and "breaker" in df.columns:
        df = df[(df["breaker"].astype(str) == breaker).to_numpy()]
    rate_col, lat_col = _rate_columns(df, quantile)
    if ax is None:
        fig, (ax_r, ax_l) = plt.subplots(2, 1, figsize=(12, 5), sharex=True,
                                         layout="constrained")
    elif isinstance(ax, (list, tuple, np.ndarray)):
        ax_r, ax_l = ax[0], ax[1]
        fig = ax_r.figure
    else:
        ax_r, ax_l = ax, ax.twinx()
        fig = ax.figure
    x = df.index
    ax_r.plot(x, df[rate_col].to_numpy(), color="#c62828", lw=0.7,
              label="failure rate")
    ax_l.plot(x, df[lat_col].to_numpy(), color="#1565c0", lw=0.7,
              label=lat_col.replace("_s", "").replace("latency_q", "quantile"))
    if baseline is not None and len(baseline):
        if "metric" in baseline.columns:
            if breaker is not None and "breaker" in baseline.columns:
                baseline = baseline[
                    (baseline["breaker"].astype(str) == breaker).to_numpy()]
            m_r, s_r = hour_of_week_band(x, baseline, "failure_rate")
            metrics = set(baseline["metric"].astype(str))
            # the engine learns the tail it can judge: p99, or p95 where
            # windows are too small for a p99
            lat_metric = "log_p99" if "log_p99" in metrics else "log_p95"
            m_l, s_l = hour_of_week_band(x, baseline, lat_metric)
            lat_mid = np.exp(m_l)
            lat_lo, lat_hi = np.exp(m_l - band * s_l), np.exp(m_l + band * s_l)
            bx = x
        else:
            bl = baseline
            bx = bl.index
            m_r = bl["baseline_rate"].to_numpy()
            s_r = bl["baseline_rate_sd"].to_numpy()
            lat_mid = bl["baseline_latency_s"].to_numpy()
            s_l = bl["baseline_log_latency_sd"].to_numpy()
            lat_lo, lat_hi = lat_mid * np.exp(-band * s_l), \
                lat_mid * np.exp(band * s_l)
        ax_r.fill_between(bx, np.clip(m_r - band * s_r, 0, None),
                          m_r + band * s_r, color="#9e9e9e", alpha=0.35,
                          lw=0, label=f"seasonal baseline ±{band:g} sd")
        ax_r.plot(bx, m_r, color="#616161", lw=0.6)
        ax_l.fill_between(bx, lat_lo, lat_hi, color="#9e9e9e", alpha=0.35,
                          lw=0, label=f"seasonal baseline ±{band:g} sd")
        ax_l.plot(bx, lat_mid, color="#616161", lw=0.6)
    if incidents is not None:
        rng = (x[0], x[-1]) if len(x) else (None, None)
        shade_incidents(ax_r, incidents, breaker, start=rng[0], end=rng[1])
        shade_incidents(ax_l, incidents, breaker, label=False,
                        start=rng[0], end=rng[1])
    ax_r.set_ylabel("failure rate")
    ax_l.set_ylabel(lat_col.removesuffix("_s").replace("latency_q",
                                                       "quantile") + " (s)")
    ax_l.set_yscale("log")
    ax_r.set_ylim(0, max(0.05, min(1.0, float(np.nanmax(
        np.r_[df[rate_col].to_numpy(dtype=float), 0.0])) * 1.05)))
    if len(x):
        ax_r.set_xlim(x[0], x[-1])
    ax_r.legend(loc="upper left", fontsize=7, ncol=4)
    ax_r.grid(alpha=0.3)
    ax_l.grid(alpha=0.3)
    if title or breaker:
        ax_r.set_title(title or breaker, fontsize=10, loc="left")
    del pd
    return fig


def plot_tradeoff(tune_df: "pd.DataFrame", ax: Any = None, *,
                  x: str = "false_trips_per_week",
                  y: str = "detection_delay_s",
                  budget: float | None = None,
                  label: Sequence[str] | None = None) -> "Figure":
    """The tuning trade-off: each candidate's false trips against delay.

    Parameters
    ----------
    tune_df : DataFrame
        The result of :func:`tripsense.tune`.
    x, y : str
        Columns for the axes.
    budget : float, optional
        False-trip budget drawn as a vertical line (default:
        ``tune_df.attrs["budget"]`` when present).
    label : list of str, optional
        Grid columns to print next to the recommended point.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _plt()
    for col in (x, y, "missed"):
        if col not in tune_df.columns:
            raise ValueError(f"plot_tradeoff needs a {col!r} column (the "
                             "result of tripsense.tune)")
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    else:
        fig = ax.figure
    missed = tune_df["missed"].to_numpy()
    sc = ax.scatter(tune_df[x], tune_df[y], c=missed, cmap="viridis_r",
                    s=36, edgecolor="k", lw=0.3)
    cb = fig.colorbar(sc, ax=ax)
    cb.set_label("missed incidents")
    # the Pareto front: no other candidate is better on both axes
    pts = tune_df[[x, y]].dropna().sort_values([x, y]).to_numpy()
    front = []
    best_y = np.inf
    for px, py in pts:
        if py < best_y:
            front.append((px, py))
            best_y = py
    if front:
        fx, fy = zip(*front)
        ax.plot(fx, fy, color="#9e9e9e", lw=1, ls="--", zorder=0,
                label="Pareto front")
    if budget is None:
        budget = tune_df.attrs.get("budget")
    if budget is not None:
        ax.axvline(budget, color="#c62828", lw=1,
                   label=f"budget {budget:g}/week")
    if "recommended" in tune_df.columns and tune_df["recommended"].any():
        r = tune_df[tune_df["recommended"]].iloc[0]
        ax.scatter([r[x]], [r[y]], marker="*", s=220, color="#f9a825",
                   edgecolor="k", zorder=4, label="recommended")
        if label:
            text = ", ".join(f"{k}={r[k]:g}" if isinstance(r[k], float)
                             else f"{k}={r[k]}" for k in label)
            ax.annotate(text, (r[x], r[y]), xytext=(8, 8),
                        textcoords="offset points", fontsize=8)
    xs = tune_df[x].to_numpy(dtype=float)
    if len(xs) and np.nanmax(xs) > 20 * max(budget or 1.0, 1.0):
        # a lax candidate far over budget would squash the rest against 0
        ax.set_xscale("symlog", linthresh=max(budget or 1.0, 1.0))
    def _axis_label(col: str) -> str:
        if col.endswith("_s"):
            return col[:-2].replace("_", " ") + " (s)"
        return col.replace("_", " ")

    ax.set_xlabel(_axis_label(x))
    ax.set_ylabel(_axis_label(y))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return fig
