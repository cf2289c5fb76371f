# SPDX-License-Identifier: GPL-3.0-or-later
"""Configuration keywords: names, units, validation, and fuzzing."""
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tripsense

OPTIONS = tripsense.options()


def test_every_c_option_is_a_keyword_with_seconds_for_durations():
    assert "failure_rate" in OPTIONS and "open_s" in OPTIONS
    assert not any(o.endswith("_ns") for o in OPTIONS)
    d = tripsense.default_config()
    assert set(d) == set(OPTIONS)
    assert d["open_s"] == 5.0 and d["bucket_s"] == 1.0 and d["failure_rate"] == 0.5


def test_durations_round_trip_in_seconds():
    b = tripsense.Breaker("d", open_s=0.1, open_max_s=3600, bucket_s=0.25)
    c = b.config
    assert (c["open_s"], c["open_max_s"], c["bucket_s"]) == (0.1, 3600.0, 0.25)


@pytest.mark.parametrize("kw, pattern", [
    ({"failure_rat": 0.5}, "unknown config option 'failure_rat'"),
    ({"open_ns": 5}, "use open_s"),
    ({"failure_rate": 1.5}, "failure_rate"),
    ({"failure_rate": float("nan")}, "failure_rate: value is NaN"),
    ({"failure_rate": "high"}, "failure_rate: expected a number"),
    ({"min_calls": 2.5}, "min_calls"),
    ({"min_calls": -1}, "min_calls"),
    ({"seasonality": "monthly"}, "seasonality: unknown value 'monthly'"),
    ({"open_s": float("inf")}, "open_s"),
    ({"bucket_s": 1.8e299}, "bucket_s: .* out of range"),
    ({"anomaly_k": 9, "anomaly_m": 5}, "anomaly"),
    ({"anomaly_fast": 2}, "anomaly_fast must be 0 or 1"),
    ({"half_open_max_s": -1}, "half_open_max"),
    ({"half_open_max_s": 2 * 86400}, "half_open_max_ns must be in"),
])
def test_invalid_options_name_the_option(kw, pattern):
    with pytest.raises(tripsense.InvalidConfigError, match=pattern):
        tripsense.Breaker("bad", **kw)


def test_invalid_arguments():
    with pytest.raises(tripsense.InvalidConfigError):
        tripsense.Breaker("")
    with pytest.raises(tripsense.InvalidConfigError):
        tripsense.Breaker("x" * 200)
    with pytest.raises(tripsense.InvalidConfigError, match="name"):
        tripsense.Breaker(42)
    with pytest.raises(tripsense.InvalidConfigError, match="clock"):
        tripsense.Breaker("c", clock="system")
    with pytest.raises(tripsense.InvalidConfigError, match="exclude"):
        tripsense.Breaker("e", exclude=42)
    with pytest.raises(tripsense.InvalidConfigError, match="error_weights"):
        tripsense.Breaker("w", error_weights={ValueError: -1})
    with pytest.raises(tripsense.InvalidConfigError, match="timeout"):
        tripsense.Breaker("t", timeout=0)
    with pytest.raises(tripsense.InvalidConfigError, match="start_ns"):
        tripsense.ManualClock(start_ns=1.5)
    with pytest.raises(tripsense.InvalidConfigError):
        tripsense.ManualClock(start_ns=-1)


def test_manual_clock_never_goes_back():
    c = tripsense.ManualClock(start_ns=100, wall_offset_ns=1000)
    assert (c.now_ns, c.wall_ns) == (100, 1100)
    c.advance(1.5)
    assert c.now_ns == 1_500_000_100
    with pytest.raises(tripsense.InvalidConfigError):
        c.set_ns(0)
    with pytest.raises(tripsense.InvalidConfigError):
        c.advance(-1)
    for bad in (float("inf"), float("nan"), 1e300, "1"):
        with pytest.raises(tripsense.InvalidConfigError, match="advance"):
            c.advance(bad)
    with pytest.raises(tripsense.InvalidConfigError, match="advance_ns"):
        c.advance_ns(2 ** 70)
    with pytest.raises(tripsense.InvalidConfigError, match="set_ns"):
        c.set_ns(1.5)


def test_signal_arguments_are_checked():
    b = tripsense.Breaker("sig-args")
    with pytest.raises(tripsense.InvalidConfigError, match="duration"):
        b.add_signal("cpu", 0.9, duration=float("inf"))
    with pytest.raises(tripsense.InvalidConfigError, match="name"):
        b.add_signal(3, 0.9)


values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2 ** 70), max_value=2 ** 70),
    st.booleans(),
    st.text(max_size=12),
    st.none(),
    st.sampled_from(["auto", "count", "critical", "shed", "none"]),
)
# keywords of Breaker itself (history= would open a file) are left out
RESERVED = {"name", "history", "clock", "tier", "exclude", "timeouts",
            "error_weights", "failure_weight", "fallback", "timeout", "priority",
            "health_probe", "probe_interval"}
names = st.one_of(st.sampled_from(OPTIONS), st.text(min_size=1, max_size=20)) \
    .filter(lambda n: n not in RESERVED)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(names, values, max_size=6))
def test_any_keywords_give_a_breaker_or_invalid_config_error(kw):
    try:
        b = tripsense.Breaker("fuzz", **kw)
    except tripsense.InvalidConfigError as e:
        assert str(e)  # a message, never empty
        return
    assert b.call(lambda: 1) == 1
    cfg = b.config
    for k, v in kw.items():
        if k in cfg and isinstance(v, float) and math.isfinite(v) and \
                not k.endswith("_s"):
            assert cfg[k] == pytest.approx(v) or isinstance(cfg[k], int)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(OPTIONS), values, max_size=4))
def test_reconfigure_never_crashes_and_keeps_the_old_config(kw):
    b = tripsense.Breaker("rc")
    before = b.config
    try:
        b.reconfigure(**kw)
    except tripsense.InvalidConfigError:
        assert b.config == before
