# SPDX-License-Identifier: GPL-3.0-or-later
"""Configuration keywords: Python names and units over trip_config.

The option list comes from the C side (``trip_config_option_name``), so a
new engine option is a new keyword without a change here. Python names are
the C names with ``_ns`` replaced by ``_s`` (seconds).
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Dict, List, Mapping, Optional, Union

from ._lowlevel import InvalidConfigError, _check, _string, ffi, lib

NS = 1_000_000_000

_ENUMS: Dict[str, Dict[str, int]] = {
    "window_kind": {"time": 0, "count": 1},
    "seasonality": {"auto": 0, "none": 1, "hour_of_day": 2, "hour_of_week": 3},
    "tier": {"none": -1, "critical": 0, "high": 1, "medium": 2, "low": 3},
    "dependency_action": {"report": 0, "shed": 1, "open": 2},
}
_BOOLS = {"adaptive", "limit_adaptive"}


def _c_names() -> List[str]:
    names: List[str] = []
    i = 0
    while True:
        p = lib.trip_config_option_name(i)
        if p == ffi.NULL:
            return names
        names.append(_string(p))
        i += 1


C_NAMES: List[str] = _c_names()
# Python keyword -> (C name, scale from Python units to C units)
PY_TO_C: Dict[str, tuple] = {}
for _c in C_NAMES:
    if _c.endswith("_ns"):
        PY_TO_C[_c[:-3] + "_s"] = (_c, NS)
    else:
        PY_TO_C[_c] = (_c, 1)
C_TO_PY: Dict[str, str] = {c: py for py, (c, _) in PY_TO_C.items()}


def options() -> List[str]:
    """Return every configuration keyword (Python names, in C order)."""
    return list(PY_TO_C)


def seconds_to_ns(value: Any, what: str, minimum: float = 0.0) -> int:
    """Convert seconds to int64 nanoseconds, or raise InvalidConfigError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidConfigError(f"{what}: expected seconds, got {value!r}")
    v = float(value)
    if not (v >= minimum and abs(v * NS) < 9.2e18):
        raise InvalidConfigError(f"{what}: expected finite seconds >= {minimum:g}, "
                                 f"got {value!r}")
    return int(round(v * NS))


def int64(value: Any, what: str) -> int:
    """Check an int64 argument, or raise InvalidConfigError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or \
            not -(2 ** 63) <= int(value) < 2 ** 63:
        raise InvalidConfigError(f"{what}: expected an int64, got {value!r}")
    return int(value)


def _tier_code(tier: Union[str, int, None]) -> int:
    if tier is None:
        return -1
    if isinstance(tier, str):
        try:
            return _ENUMS["tier"][tier.lower()]
        except KeyError:
            raise InvalidConfigError(
                f"tier: unknown tier {tier!r} (expected one of "
                f"{', '.join(_ENUMS['tier'])})"
            ) from None
    if isinstance(tier, bool) or not isinstance(tier, numbers.Integral):
        raise InvalidConfigError(f"tier: expected a name or an int, got {tier!r}")
    return int(tier)


def _to_number(key: str, value: Any) -> float:
    """Convert one keyword's value to the C number (C units)."""
    c_name, scale = PY_TO_C[key]
    if key in _ENUMS and isinstance(value, str):
        try:
            return float(_ENUMS[key][value.lower()])
        except KeyError:
            raise InvalidConfigError(
                f"{key}: unknown value {value!r} (expected one of "
                f"{', '.join(_ENUMS[key])})"
            ) from None
    if isinstance(value, bool):
        if key not in _BOOLS:
            raise InvalidConfigError(f"{key}: expected a number, got {value!r}")
        return 1.0 if value else 0.0
    if not isinstance(value, numbers.Real):
        raise InvalidConfigError(
            f"{key}: expected a number, got {type(value).__name__} {value!r}"
        )
    v = float(value)
    if math.isnan(v):
        raise InvalidConfigError(f"{key}: value is NaN")
    if scale != 1:
        if math.isinf(v):
            raise InvalidConfigError(f"{key}: value is infinite")
        ns = v * scale
        if not abs(ns) < 9.2e18:
            raise InvalidConfigError(f"{key}: {value!r} s is out of range "
                                     f"(at most about 292 years)")
        # round to whole nanoseconds: 0.1 s is not exact in binary
        v = float(round(ns))
    return v


def apply(cfg: Any, config: Mapping[str, Any]) -> None:
    """Set keywords on a ``trip_config *`` (each checked by name)."""
    for key, value in config.items():
        if key not in PY_TO_C:
            hint = ""
            if key.endswith("_ns") and key[:-3] + "_s" in PY_TO_C:
                hint = f"; durations are in seconds in Python: use {key[:-3]}_s"
            elif key in C_TO_PY:
                hint = f"; did you mean {C_TO_PY[key]}?"
            raise InvalidConfigError(f"unknown config option {key!r}{hint}")
        c_name, _ = PY_TO_C[key]
        v = _to_number(key, value)
        rc = lib.trip_config_set(cfg, c_name.encode(), v)
        _check(rc, key)


def validate(cfg: Any) -> None:
    """Raise InvalidConfigError if the config as a whole is invalid."""
    msg = ffi.new("char[512]")
    rc = lib.trip_config_validate(cfg, msg, 512)
    if rc != 0:
        raise InvalidConfigError(ffi.string(msg).decode("utf-8", "replace"), rc)


def build(
    config: Optional[Mapping[str, Any]] = None,
    tier: Union[str, int, None] = None,
) -> Any:
    """Return a validated ``trip_config *`` from tier defaults + keywords."""
    cfg = ffi.new("trip_config *")
    t = _tier_code(tier)
    if t == -1:
        lib.trip_config_init(cfg)
    else:
        _check(lib.trip_config_init_tier(cfg, t), "tier")
    apply(cfg, config or {})
    validate(cfg)
    return cfg


def to_dict(cfg: Any) -> Dict[str, Union[int, float]]:
    """Return every option of a ``trip_config *`` in Python names and units."""
    out: Dict[str, Union[int, float]] = {}
    for py, (c_name, scale) in PY_TO_C.items():
        raw = getattr(cfg, c_name)
        out[py] = raw / scale if scale != 1 else raw
    return out


def default_config(tier: Union[str, int, None] = None) -> Dict[str, Union[int, float]]:
    """Return the default options (of a service tier) as keywords.

    Raises
    ------
    InvalidConfigError
        For an unknown tier.
    """
    return to_dict(build(None, tier))
