# SPDX-License-Identifier: GPL-3.0-or-later
"""Simulated call traffic with seasonality and labelled incidents.

The model, per dependency and per second of UTC time:

* volume: ``peak_rate`` calls/s times a daily profile (quiet nights, a
  working-day hump peaking at 14:00) times ``weekend_factor`` on Saturday
  and Sunday, times per-minute gamma noise; calls arrive as a Poisson
  process within each second;
* failure rate: ``failure_rate`` at peak load, lower when quiet
  (``load_failure``), times per-minute gamma noise of shape ``dispersion``
  (overdispersion: a plain binomial model underestimates the spread);
* latency: a lognormal body (median ``latency_median_s``, rising with load
  by ``load_latency``) with a Pareto tail on ``tail_prob`` of calls; a call
  that reaches ``timeout_s`` is a timeout;
* a small share of client errors (``ignored_rate``), outcome IGNORED.

Incidents change these parameters over labelled windows: ``outage``
(fast failures), ``outage_timeout`` (the dependency hangs), ``brownout``
(failure rate several times baseline), ``latency_creep`` (median latency
climbing for up to an hour), ``slow_night`` (slow and failing while volume
is low), ``flapping`` (bad and good phases alternating) and
``deploy_spike`` (a few seconds of errors during a deploy, which a breaker
should ride out: labelled ``expect_trip=False``).

Generation is vectorised per day and seeded per (seed, dependency, day), so
the same seed gives the same calls whatever the chunking
(:func:`iter_days` yields the same days :func:`simulate` concatenates).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "SUCCESS",
    "FAILURE",
    "TIMEOUT",
    "IGNORED",
    "INCIDENT_KINDS",
    "Dependency",
    "Incident",
    "Simulation",
    "DEFAULT_DEPENDENCIES",
    "simulate",
    "iter_days",
    "default_incidents",
]

# Outcome codes: the values of the C enum trip_outcome.
SUCCESS = 0
FAILURE = 1
TIMEOUT = 2
IGNORED = 3

NS = 1_000_000_000
DAY_S = 86_400
WEEK_NS = 7 * DAY_S * NS

#: Incident kinds and whether a breaker should trip on them.
INCIDENT_KINDS: dict[str, bool] = {
    "outage": True,
    "outage_timeout": True,
    "brownout": True,
    "latency_creep": True,
    "slow_night": True,
    "flapping": True,
    "deploy_spike": False,
}


@dataclass(frozen=True)
class Dependency:
    """One simulated dependency and its healthy behaviour.

    Rates and latencies are those of the busiest hour of a weekday; quiet
    hours scale them down as described in the module docstring.
    """

    name: str
    peak_rate: float = 20.0  # calls/s at 14:00 on a weekday
    failure_rate: float = 0.01  # failures/calls at peak load
    latency_median_s: float = 0.05
    latency_sigma: float = 0.5  # lognormal shape of the body
    tail_prob: float = 0.01  # share of calls in the Pareto tail
    tail_alpha: float = 1.8  # Pareto shape (lower = heavier)
    timeout_s: float = 2.0  # the caller gives up here: outcome TIMEOUT
    ignored_rate: float = 0.002  # client errors (outcome IGNORED)
    night_factor: float = 0.08  # volume at night relative to the peak
    weekend_factor: float = 0.35  # weekend volume relative to weekdays
    load_failure: float = 0.5  # share of the failure rate that follows load
    load_latency: float = 0.4  # share of the median latency that follows load
    dispersion: float = 4.0  # gamma shape of per-minute failure-rate noise
    volume_noise: float = 0.15  # CV of per-minute volume noise

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("Dependency.name must be a non-empty string")
        checks = {
            "peak_rate": self.peak_rate > 0,
            "failure_rate": 0 <= self.failure_rate < 1,
            "latency_median_s": self.latency_median_s > 0,
            "latency_sigma": self.latency_sigma >= 0,
            "tail_prob": 0 <= self.tail_prob <= 1,
            "tail_alpha": self.tail_alpha > 0,
            "timeout_s": self.timeout_s > self.latency_median_s,
            "ignored_rate": 0 <= self.ignored_rate < 1,
            "night_factor": 0 < self.night_factor <= 1,
            "weekend_factor": 0 < self.weekend_factor <= 1,
            "load_failure": 0 <= self.load_failure <= 1,
            "load_latency": 0 <= self.load_latency <= 1,
            "dispersion": self.dispersion > 0,
            "volume_noise": 0 <= self.volume_noise < 1,
        }
        for key, ok in checks.items():
            value = getattr(self, key)
            if not ok or not math.isfinite(float(value)):
                raise ValueError(
                    f"Dependency {self.name!r}: {key}={value!r} is out of range"
                )


#: Four dependencies of a typical service: a busy search backend, payments,
#: an inventory service and a low-volume email provider.
DEFAULT_DEPENDENCIES: tuple[Dependency, ...] = (
    Dependency("search", peak_rate=40.0, failure_rate=0.02,
               latency_median_s=0.08, dispersion=3.0),
    Dependency("payments", peak_rate=15.0, failure_rate=0.005,
               latency_median_s=0.25, latency_sigma=0.4, timeout_s=5.0),
    Dependency("inventory", peak_rate=10.0, failure_rate=0.01,
               latency_median_s=0.03, tail_alpha=1.5),
    Dependency("email", peak_rate=1.0, failure_rate=0.01,
               latency_median_s=0.4, timeout_s=10.0, night_factor=0.05),
)


@dataclass(frozen=True)
class Incident:
    """A labelled incident on one dependency, over [start_ns, end_ns).

    ``failure_rate`` is the failure rate the incident imposes (for
    ``brownout`` a multiple of the baseline, see ``factor``), and
    ``latency_factor`` multiplies the median latency at the incident's
    worst point.
    """

    breaker: str
    kind: str
    start_ns: int
    end_ns: int
    expect_trip: bool = True
    failure_rate: float = float("nan")
    factor: float = 1.0  # failure-rate multiple (brownout, slow_night)
    latency_factor: float = 1.0
    period_s: float = 0.0  # flapping: one bad + good cycle
    bad_s: float = 0.0  # flapping: bad part of each cycle

    def __post_init__(self) -> None:
        if self.kind not in INCIDENT_KINDS:
            raise ValueError(
                f"unknown incident kind {self.kind!r}; expected one of "
                f"{', '.join(INCIDENT_KINDS)}"
            )
        if int(self.end_ns) <= int(self.start_ns):
            raise ValueError(
                f"incident {self.kind!r} on {self.breaker!r}: end_ns "
                f"{self.end_ns} is not after start_ns {self.start_ns}"
            )

    @property
    def duration_s(self) -> float:
        return (self.end_ns - self.start_ns) / NS


@dataclass
class Simulation:
    """What :func:`simulate` returns.

    Attributes
    ----------
    events : pandas.DataFrame
        One row per call, in the input format of :func:`tripsense.replay`:
        a UTC DatetimeIndex named ``time`` (start of the call) and columns
        ``breaker`` (categorical), ``outcome`` (int32, the C enum
        ``trip_outcome``: 0 success, 1 failure, 2 timeout, 3 ignored) and
        ``latency_s`` (float64). Sorted by time (``order="time"``) or by
        breaker then time (``order="breaker"``).
    incidents : pandas.DataFrame
        One row per incident. Columns: ``breaker``, ``kind``, ``start``,
        ``end`` (UTC Timestamps), ``start_ns``, ``end_ns`` (int64),
        ``expect_trip`` (bool), ``failure_rate``, ``factor``,
        ``latency_factor``, ``duration_s``.
    dependencies : tuple of Dependency
    start_ns, end_ns : int
        The simulated span, [start_ns, end_ns).
    seed : int
    """

    events: "pd.DataFrame"
    incidents: "pd.DataFrame"
    dependencies: tuple[Dependency, ...]
    start_ns: int
    end_ns: int
    seed: int
    incident_list: tuple[Incident, ...] = field(default=(), repr=False)

    @property
    def weeks(self) -> float:
        """Length of the simulated span in weeks."""
        return (self.end_ns - self.start_ns) / WEEK_NS

    @property
    def breakers(self) -> list[str]:
        return [d.name for d in self.dependencies]

    def for_breaker(self, name: str) -> "pd.DataFrame":
        """The events of one breaker, in time order.

        Raises
        ------
        KeyError
            If no dependency has that name.
        """
        if name not in self.breakers:
            raise KeyError(
                f"no simulated dependency {name!r}; have {self.breakers}"
            )
        ev = self.events
        return ev[(ev["breaker"] == name).to_numpy()]

    def arrays(self, name: str) -> dict[str, np.ndarray]:
        """The calls of one breaker as numpy arrays, for bulk use.

        Returns
        -------
        dict
            ``wall_ns`` (int64 ns since the epoch), ``outcome`` (int32) and
            ``latency_s`` (float64), in time order, contiguous.
        """
        ev = self.for_breaker(name)
        return {
            "wall_ns": np.ascontiguousarray(_index_ns(ev.index)),
            "outcome": np.ascontiguousarray(ev["outcome"].to_numpy()),
            "latency_s": np.ascontiguousarray(ev["latency_s"].to_numpy()),
        }

    def incidents_for(self, name: str) -> "pd.DataFrame":
        """The incidents of one breaker."""
        inc = self.incidents
        return inc[inc["breaker"] == name].reset_index(drop=True)

    def expected(self, name: str, freq: str = "1min",
                 incidents: bool = True) -> "pd.DataFrame":
        """The model's expected rates for one breaker, without noise.

        Parameters
        ----------
        name : str
            The dependency.
        freq : str
            Resolution of the result (pandas offset alias), e.g. ``"1min"``.
        incidents : bool
            Apply the incidents (True) or give the healthy seasonal
            baseline (False).

        Returns
        -------
        pandas.DataFrame
            UTC DatetimeIndex; columns ``rate`` (calls/s),
            ``failure_rate`` (failures + timeouts over calls) and
            ``latency_median_s`` (median of the lognormal body).
        """
        import pandas as pd

        dep = _dep_by_name(self.dependencies, name)
        incs = [i for i in self.incident_list if i.breaker == name] \
            if incidents else []
        secs = np.arange(self.start_ns // NS, self.end_ns // NS,
                         dtype=np.int64)
        prof = _profile(dep, secs)
        _apply_incidents(dep, prof, secs, incs)
        idx = pd.to_datetime(secs * NS, utc=True)
        df = pd.DataFrame({
            "rate": prof["rate"],
            "failure_rate": np.minimum(prof["p_fail"] + prof["p_timeout"], 1),
            "latency_median_s": prof["median"],
        }, index=idx)
        df.index.name = "time"
        return df.resample(freq).mean()


def _index_ns(index: Any) -> np.ndarray:
    """int64 ns since the epoch of a UTC DatetimeIndex (no copy if it can)."""
    values = index.tz_convert("UTC").tz_localize(None) \
        if getattr(index, "tz", None) is not None else index
    return np.asarray(values.as_unit("ns")).view(np.int64)


def _dep_by_name(deps: Sequence[Dependency], name: str) -> Dependency:
    for d in deps:
        if d.name == name:
            return d
    raise KeyError(f"no simulated dependency {name!r}; have "
                   f"{[d.name for d in deps]}")


# --------------------------------------------------------------------------
# The seasonal profile


def _daily_shape(hour: np.ndarray) -> np.ndarray:
    """Working-day hump in [0, 1]: 0 from 22:00 to 06:00, 1 at 14:00."""
    x = np.clip((hour - 6.0) / 16.0, 0.0, 1.0)
    return np.sin(np.pi * x) ** 1.5


def _load(dep: Dependency, secs: np.ndarray) -> np.ndarray:
    """Volume relative to the weekday peak for each second (UTC)."""
    hour = (secs % DAY_S) / 3600.0
    # 1970-01-01 was a Thursday: day 0 -> weekday 3 (Monday = 0).
    weekday = ((secs // DAY_S) + 3) % 7
    shape = dep.night_factor + (1.0 - dep.night_factor) * _daily_shape(hour)
    week = np.where(weekday >= 5, dep.weekend_factor, 1.0)
    return shape * week


def _profile(dep: Dependency, secs: np.ndarray) -> dict[str, np.ndarray]:
    """Healthy per-second parameters, before noise and incidents."""
    load = _load(dep, secs)
    p_fail = dep.failure_rate * (1.0 - dep.load_failure
                                 + dep.load_failure * load)
    median = dep.latency_median_s * (1.0 - dep.load_latency
                                     + dep.load_latency * load)
    n = len(secs)
    return {
        "rate": dep.peak_rate * load,
        "p_fail": p_fail,
        "p_timeout": np.zeros(n),
        "median": median,
        # failures' latency relative to a success's (errors come back fast)
        "fail_latency": np.full(n, 0.5),
    }


def _apply_incidents(dep: Dependency, prof: dict[str, np.ndarray],
                     secs: np.ndarray, incidents: Iterable[Incident]) -> None:
    """Apply incidents to the per-second parameters, in place."""
    if len(secs) == 0:
        return
    s0 = int(secs[0])
    for inc in incidents:
        a = max(inc.start_ns // NS - s0, 0)
        b = min(-(-inc.end_ns // NS) - s0, len(secs))
        if a >= b:
            continue
        sl = slice(a, b)
        t = (secs[sl] - inc.start_ns / NS)  # seconds since the start
        dur = inc.duration_s
        if inc.kind == "outage":
            prof["p_fail"][sl] = inc.failure_rate
            prof["fail_latency"][sl] = 0.05  # connection refused
        elif inc.kind == "outage_timeout":
            prof["p_timeout"][sl] = inc.failure_rate
            prof["p_fail"][sl] = 0.0
        elif inc.kind in ("brownout", "slow_night"):
            ramp = np.clip(t / 120.0, 0.0, 1.0)  # two minutes to full effect
            mult = 1.0 + (inc.factor - 1.0) * ramp
            prof["p_fail"][sl] = np.minimum(prof["p_fail"][sl] * mult, 0.95)
            lmult = 1.0 + (inc.latency_factor - 1.0) * ramp
            prof["median"][sl] *= lmult
        elif inc.kind == "latency_creep":
            # climbs linearly over the first 75% of the window, then holds
            ramp = np.clip(t / (0.75 * dur), 0.0, 1.0)
            prof["median"][sl] *= 1.0 + (inc.latency_factor - 1.0) * ramp
        elif inc.kind == "flapping":
            bad = (t % inc.period_s) < inc.bad_s
            prof["p_fail"][sl] = np.where(bad, inc.failure_rate,
                                          prof["p_fail"][sl])
            prof["median"][sl] *= np.where(bad, inc.latency_factor, 1.0)
        elif inc.kind == "deploy_spike":
            prof["p_fail"][sl] = np.maximum(prof["p_fail"][sl],
                                            inc.failure_rate)
            prof["median"][sl] *= inc.latency_factor


# --------------------------------------------------------------------------
# Incidents


def _make_incident(rng: np.random.Generator, dep: Dependency, kind: str,
                   start_s: float) -> Incident:
    """Draw one incident of a kind with its severity and duration."""
    if kind in ("outage", "outage_timeout"):
        dur = rng.uniform(180, 900)
        kw: dict[str, Any] = {"failure_rate": rng.uniform(0.9, 0.99)}
    elif kind == "brownout":
        dur = rng.uniform(1800, 5400)
        factor = rng.uniform(4.0, 8.0)
        kw = {"factor": factor, "latency_factor": rng.uniform(1.0, 1.5),
              "failure_rate": min(dep.failure_rate * factor, 0.95)}
    elif kind == "latency_creep":
        dur = rng.uniform(1800, 3600)
        kw = {"latency_factor": rng.uniform(5.0, 8.0)}
    elif kind == "slow_night":
        dur = rng.uniform(3600, 7200)
        factor = rng.uniform(5.0, 10.0)
        kw = {"factor": factor, "latency_factor": rng.uniform(4.0, 6.0),
              "failure_rate": min(dep.failure_rate * factor, 0.95)}
    elif kind == "flapping":
        dur = rng.uniform(1800, 3600)
        period = rng.uniform(150, 300)
        kw = {"failure_rate": rng.uniform(0.5, 0.8), "period_s": period,
              "bad_s": period * rng.uniform(0.3, 0.5),
              "latency_factor": 2.0}
    elif kind == "deploy_spike":
        dur = rng.uniform(10, 30)
        kw = {"failure_rate": rng.uniform(0.05, 0.15),
              "latency_factor": rng.uniform(1.5, 2.5)}
    else:  # pragma: no cover - guarded by Incident
        raise ValueError(kind)
    # whole seconds: the model applies an incident to every second it
    # touches, so a label starting mid-second would call the calls of that
    # second before it healthy although they fail
    start_ns = int(round(start_s)) * NS
    return Incident(dep.name, kind, start_ns,
                    start_ns + max(int(round(dur)), 1) * NS,
                    INCIDENT_KINDS[kind], **kw)


_MAJOR_KINDS = ("outage", "brownout", "latency_creep", "slow_night",
                "flapping", "outage_timeout")


def default_incidents(dependencies: Sequence[Dependency], start_ns: int,
                      end_ns: int, seed: int = 0,
                      per_week: float = 4.0,
                      deploys_per_week: float = 3.0) -> list[Incident]:
    """The default incident schedule.

    Each dependency gets about ``per_week`` incidents a breaker should trip
    on, cycling through the kinds (starting at a different kind for each
    dependency), and ``deploys_per_week`` deploy spikes on weekdays between
    09:00 and 17:00 UTC. ``slow_night`` incidents start between 01:00 and
    03:00. The first six hours are kept free of incidents, and incidents
    never overlap on one dependency. Any span of at least 12 hours gets at
    least one incident per dependency.
    """
    rng = np.random.default_rng([seed, 0x1C1DE47])
    out: list[Incident] = []
    s0, s1 = start_ns / NS, end_ns / NS
    warm = 6 * 3600.0
    span = s1 - s0 - warm - 3 * 3600.0  # leave room for the last one
    if span < 6 * 3600.0:
        return out
    weeks = (s1 - s0) / (7 * DAY_S)
    for di, dep in enumerate(dependencies):
        n_major = max(1, int(round(per_week * weeks)))
        slot = span / n_major
        for j in range(n_major):
            kind = _MAJOR_KINDS[(di + j) % len(_MAJOR_KINDS)]
            lo = s0 + warm + j * slot
            t = lo + rng.uniform(0.05, 0.6) * slot
            if kind == "slow_night":
                day0 = math.floor(t / DAY_S) * DAY_S
                t = day0 + rng.uniform(1, 3) * 3600.0
                if t < lo:
                    t += DAY_S
                if t + 7200 > lo + slot or t + 7200 > s1:
                    kind = "brownout"  # no night fits this slot
                    t = lo + rng.uniform(0.05, 0.6) * slot
            out.append(_make_incident(rng, dep, kind, t))
        n_dep = int(round(deploys_per_week * weeks))
        days = [d for d in range(int(math.ceil((s1 - s0) / DAY_S)))
                if _weekday(s0 + d * DAY_S) < 5]
        busy = [(i.start_ns / NS, i.end_ns / NS) for i in out
                if i.breaker == dep.name]
        for _ in range(n_dep if days else 0):
            for _attempt in range(20):
                d = days[int(rng.integers(len(days)))]
                t = s0 + d * DAY_S + rng.uniform(9, 17) * 3600.0
                if t < s0 + warm or t + 60 > s1:
                    continue
                if any(a - 600 < t < b + 600 for a, b in busy):
                    continue
                inc = _make_incident(rng, dep, "deploy_spike", t)
                busy.append((t, inc.end_ns / NS))
                out.append(inc)
                break
    out.sort(key=lambda i: (i.start_ns, i.breaker))
    return out


def _weekday(sec: float) -> int:
    return int(((sec // DAY_S) + 3) % 7)


def _coerce_incident(x: Any, start_ns: int) -> Incident:
    """An Incident from an Incident or a dict with start/end or duration.

    start and end may be ns since the epoch (int), anything
    pandas.Timestamp accepts, or, with ``offset_s``, seconds after the
    start of the simulation.
    """
    if isinstance(x, Incident):
        return x
    if not isinstance(x, dict):
        raise TypeError(f"incident must be an Incident or a dict, not "
                        f"{type(x).__name__}")
    d = dict(x)
    if "offset_s" in d:
        d["start_ns"] = start_ns + int(float(d.pop("offset_s")) * NS)
    for key in ("start", "end"):
        if key in d:
            d[key + "_ns"] = _to_ns(d.pop(key))
    if "duration_s" in d:
        d["end_ns"] = int(d["start_ns"]) + int(float(d.pop("duration_s")) * NS)
    kind = d.get("kind")
    if "expect_trip" not in d and kind in INCIDENT_KINDS:
        d["expect_trip"] = INCIDENT_KINDS[kind]
    fields = {f.name for f in dataclasses.fields(Incident)}
    unknown = set(d) - fields
    if unknown:
        raise ValueError(f"unknown incident field(s) {sorted(unknown)}; "
                         f"expected {sorted(fields)}")
    return Incident(**d)


def _to_ns(x: Any) -> int:
    if isinstance(x, (int, np.integer)):
        return int(x)
    import pandas as pd

    ts = pd.Timestamp(x)
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return int(ts.value)


def _coerce_dependencies(dependencies: Any) -> tuple[Dependency, ...]:
    if dependencies is None:
        return DEFAULT_DEPENDENCIES[:3]
    if isinstance(dependencies, (int, np.integer)):
        n = int(dependencies)
        if not 1 <= n <= len(DEFAULT_DEPENDENCIES):
            raise ValueError(f"dependencies={n}: choose 1.."
                             f"{len(DEFAULT_DEPENDENCIES)} defaults or pass "
                             "Dependency objects")
        return DEFAULT_DEPENDENCIES[:n]
    if isinstance(dependencies, (str, Dependency, dict)):
        dependencies = [dependencies]
    out = []
    defaults = {d.name: d for d in DEFAULT_DEPENDENCIES}
    for d in dependencies:
        if isinstance(d, Dependency):
            out.append(d)
        elif isinstance(d, str):
            out.append(defaults.get(d, Dependency(d)))
        elif isinstance(d, dict):
            out.append(Dependency(**d))
        else:
            raise TypeError(f"dependency must be a name, a dict or a "
                            f"Dependency, not {type(d).__name__}")
    names = [d.name for d in out]
    if len(set(names)) != len(names):
        raise ValueError(f"dependency names must be unique: {names}")
    if not out:
        raise ValueError("dependencies is empty")
    return tuple(out)


# --------------------------------------------------------------------------
# Generation


def _day_arrays(dep: Dependency, dep_index: int, day_start_s: int,
                n_seconds: int, incidents: Sequence[Incident],
                seed: int) -> dict[str, np.ndarray]:
    """Generate the calls of one dependency over one day (or less)."""
    rng = np.random.default_rng([seed, dep_index, day_start_s // DAY_S])
    secs = np.arange(day_start_s, day_start_s + DAY_S, dtype=np.int64)
    prof = _profile(dep, secs)
    # per-minute noise: volume, failure rate (overdispersion), latency
    n_min = DAY_S // 60
    if dep.volume_noise > 0:
        k = 1.0 / dep.volume_noise ** 2
        vol_noise = rng.gamma(k, 1.0 / k, n_min)
    else:
        vol_noise = np.ones(n_min)
    fail_noise = rng.gamma(dep.dispersion, 1.0 / dep.dispersion, n_min)
    lat_noise = np.exp(rng.normal(0.0, 0.08, n_min))
    prof["rate"] *= np.repeat(vol_noise, 60)
    prof["p_fail"] = np.minimum(prof["p_fail"] * np.repeat(fail_noise, 60),
                                0.5)
    prof["median"] *= np.repeat(lat_noise, 60)
    _apply_incidents(dep, prof, secs, incidents)

    secs = secs[:n_seconds]
    counts = rng.poisson(prof["rate"][:n_seconds])
    n = int(counts.sum())
    sec_of = np.repeat(np.arange(n_seconds), counts)

    # Poisson arrivals within a second: uniform order statistics from
    # exponential spacings, O(n) with no sort.
    e = rng.standard_exponential(n)
    extra = rng.standard_exponential(n_seconds)
    cs = np.cumsum(e)
    ends = np.cumsum(counts)
    before = np.concatenate(([0.0], cs))[ends - counts]  # cs before group
    total = np.concatenate(([0.0], cs))[ends] - before + extra
    frac = (cs - before[sec_of]) / total[sec_of]
    wall_ns = (day_start_s + sec_of).astype(np.int64) * NS \
        + np.minimum((frac * NS).astype(np.int64), NS - 1)

    # outcomes
    u = rng.random(n)
    p_to = prof["p_timeout"][sec_of]
    p_f = prof["p_fail"][sec_of]
    outcome = np.full(n, SUCCESS, dtype=np.int32)
    outcome[u < p_to + p_f + dep.ignored_rate] = IGNORED
    outcome[u < p_to + p_f] = FAILURE
    outcome[u < p_to] = TIMEOUT

    # latency: lognormal body, Pareto tail above the body's p95
    med = prof["median"][sec_of]
    lat = med * np.exp(dep.latency_sigma * rng.standard_normal(n))
    tail = rng.random(n) < dep.tail_prob
    nt = int(tail.sum())
    if nt:
        p95 = med[tail] * math.exp(1.645 * dep.latency_sigma)
        lat[tail] = p95 * rng.random(nt) ** (-1.0 / dep.tail_alpha)
    failed = outcome == FAILURE
    lat[failed] *= prof["fail_latency"][sec_of[failed]]
    slow = (lat >= dep.timeout_s) & (outcome != IGNORED)
    outcome[slow] = TIMEOUT
    lat[(outcome == TIMEOUT)] = dep.timeout_s
    np.minimum(lat, dep.timeout_s, out=lat)
    return {"wall_ns": wall_ns, "outcome": outcome, "latency_s": lat}


def iter_days(days: float = 7.0, *, dependencies: Any = None,
              start: Any = "2026-03-02", seed: int = 0,
              incidents: Any = "default"
              ) -> Iterator[tuple[str, dict[str, np.ndarray]]]:
    """Generate the calls day by day, without pandas, for large volumes.

    Yields ``(breaker, arrays)`` for each dependency and each day, in
    dependency order then time order; ``arrays`` holds ``wall_ns``
    (int64), ``outcome`` (int32) and ``latency_s`` (float64), sorted by
    time. The parameters are those of :func:`simulate`, and the calls are
    exactly those :func:`simulate` returns for the same arguments.
    """
    deps, start_ns, end_ns, incs = _setup(days, dependencies, start, seed,
                                          incidents)
    yield from _iter(deps, start_ns, end_ns, incs, seed)


def _setup(days: float, dependencies: Any, start: Any, seed: int,
           incidents: Any) -> tuple[tuple[Dependency, ...], int, int,
                                    list[Incident]]:
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, not {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    try:
        days = float(days)
    except (TypeError, ValueError):
        raise TypeError(f"days must be a number, not {days!r}") from None
    if not (math.isfinite(days) and days > 0):
        raise ValueError(f"days must be > 0, got {days}")
    deps = _coerce_dependencies(dependencies)
    start_ns = _to_ns(start)
    if start_ns % (DAY_S * NS):
        raise ValueError(f"start must be midnight UTC, got {start!r}")
    end_ns = start_ns + int(round(days * DAY_S)) * NS
    if isinstance(incidents, str):
        if incidents != "default":
            raise ValueError(f"incidents={incidents!r}: use 'default', None "
                             "or a list of incidents")
        incs = default_incidents(deps, start_ns, end_ns, seed)
    elif incidents is None:
        incs = []
    else:
        incs = [_coerce_incident(x, start_ns) for x in incidents]
        names = {d.name for d in deps}
        for i in incs:
            if i.breaker not in names:
                raise ValueError(f"incident {i.kind!r} names breaker "
                                 f"{i.breaker!r}, which is not simulated "
                                 f"({sorted(names)})")
    return deps, start_ns, end_ns, incs


def _iter(deps: Sequence[Dependency], start_ns: int, end_ns: int,
          incs: Sequence[Incident], seed: int
          ) -> Iterator[tuple[str, dict[str, np.ndarray]]]:
    s0, s1 = start_ns // NS, end_ns // NS
    for di, dep in enumerate(deps):
        mine = [i for i in incs if i.breaker == dep.name]
        for day_start in range(s0, s1, DAY_S):
            n_sec = min(DAY_S, s1 - day_start)
            near = [i for i in mine if i.end_ns > day_start * NS
                    and i.start_ns < (day_start + DAY_S) * NS]
            yield dep.name, _day_arrays(dep, di, day_start, n_sec, near, seed)


def simulate(days: float = 7.0, *, dependencies: Any = None,
             start: Any = "2026-03-02", seed: int = 0,
             incidents: Any = "default", order: str = "time") -> Simulation:
    """Simulate calls to one or more dependencies, with labelled incidents.

    Parameters
    ----------
    days : float
        Length of the simulation in days (whole seconds are kept).
    dependencies : None, int, str, dict, Dependency or a list of them
        None: the first three of :data:`DEFAULT_DEPENDENCIES` (search,
        payments, inventory); an int n: the first n of them; names of the
        defaults, or new names with default parameters; dicts of
        :class:`Dependency` fields; Dependency objects.
    start : str, pandas.Timestamp or int
        Start of the simulation, midnight UTC (ns since the epoch for an
        int). The default is a Monday.
    seed : int
        Seed: the same seed and arguments give the same calls.
    incidents : "default", None or list
        ``"default"``: :func:`default_incidents`; None: healthy traffic
        only; or a list of :class:`Incident` or dicts with ``breaker``,
        ``kind``, ``start`` (or ``start_ns``, or ``offset_s`` after
        ``start``) and ``end`` / ``end_ns`` / ``duration_s``, plus optional
        severity fields.
    order : {"time", "breaker"}
        Sort the events by time across breakers (a single stream, as a
        process would see it), or by breaker then time (cheaper for large
        simulations; each breaker's calls are in time order either way).

    Returns
    -------
    Simulation
        ``.events`` and ``.incidents`` DataFrames (columns documented on
        :class:`Simulation`), and helpers.

    Raises
    ------
    ValueError
        For a bad length, start, order, dependency or incident.
    TypeError
        For arguments of the wrong type.

    Examples
    --------
    >>> sim = simulate(days=1, dependencies=["payments"], seed=1)
    >>> list(sim.events.columns)
    ['breaker', 'outcome', 'latency_s']
    """
    import pandas as pd

    if order not in ("time", "breaker"):
        raise ValueError(f"order must be 'time' or 'breaker', not {order!r}")
    deps, start_ns, end_ns, incs = _setup(days, dependencies, start, seed,
                                          incidents)
    parts: dict[str, list[dict[str, np.ndarray]]] = {d.name: [] for d in deps}
    for name, arrays in _iter(deps, start_ns, end_ns, incs, seed):
        parts[name].append(arrays)
    cols = {}
    codes = []
    for k in ("wall_ns", "outcome", "latency_s"):
        cols[k] = np.concatenate([a[k] for d in deps for a in parts[d.name]])
    for ci, d in enumerate(deps):
        codes.append(np.full(sum(len(a["wall_ns"]) for a in parts[d.name]),
                             ci, dtype=np.int8))
    del parts
    code = np.concatenate(codes)
    if order == "time" and len(deps) > 1:
        perm = np.argsort(cols["wall_ns"], kind="stable")
        for k in cols:
            cols[k] = cols[k][perm]
        code = code[perm]
    index = pd.DatetimeIndex(cols["wall_ns"].view("M8[ns]"),
                             name="time").tz_localize("UTC")
    events = pd.DataFrame({
        "breaker": pd.Categorical.from_codes(code, [d.name for d in deps]),
        "outcome": cols["outcome"],
        "latency_s": cols["latency_s"],
    }, index=index)
    return Simulation(events, _incident_frame(incs), deps, start_ns, end_ns,
                      int(seed), tuple(incs))


def _incident_frame(incs: Sequence[Incident]) -> "pd.DataFrame":
    import pandas as pd

    rows = [{
        "breaker": i.breaker,
        "kind": i.kind,
        "start": pd.Timestamp(i.start_ns, unit="ns", tz="UTC"),
        "end": pd.Timestamp(i.end_ns, unit="ns", tz="UTC"),
        "start_ns": int(i.start_ns),
        "end_ns": int(i.end_ns),
        "expect_trip": bool(i.expect_trip),
        "failure_rate": float(i.failure_rate),
        "factor": float(i.factor),
        "latency_factor": float(i.latency_factor),
        "duration_s": i.duration_s,
    } for i in incs]
    cols = ["breaker", "kind", "start", "end", "start_ns", "end_ns",
            "expect_trip", "failure_rate", "factor", "latency_factor",
            "duration_s"]
    df = pd.DataFrame(rows, columns=cols)
    return df.astype({"start_ns": "int64", "end_ns": "int64",
                      "expect_trip": "bool"})


def _make_module_callable() -> None:
    """Let ``tripsense.simulate(...)`` work once this module is imported.

    Importing ``tripsense.simulate`` binds the package attribute
    ``simulate`` to this module, shadowing a function of the same name; a
    callable module keeps ``tripsense.simulate(...)`` meaning
    :func:`simulate` either way.
    """
    import sys
    import types

    class _CallableModule(types.ModuleType):
        def __call__(self, *args: Any, **kwargs: Any) -> Simulation:
            return simulate(*args, **kwargs)

    sys.modules[__name__].__class__ = _CallableModule


_make_module_callable()
