# SPDX-License-Identifier: GPL-3.0-or-later
"""tripsense: an adaptive circuit breaker (C core, Python bindings).

See docs/python.md. ``simulate``, ``tune``, ``plot``, ``demo`` and ``cli``
are imported on first use.
"""
from __future__ import annotations

import importlib
from typing import Any

from ._clock import ManualClock
from ._config import default_config, options
from ._lowlevel import (CircuitOpenError, InvalidConfigError, NotFoundError,
                        StoreError, TripsenseError, ffi as _ffi, lib as _lib)
from .breaker import Breaker, Event, Reason, Snapshot, Ticket
from .conveniences import FallbackChain, Retry
from .history import History, Store
from .registry import Registry, default_registry
from .replay import Calibration, ReplayResult, calibrate, detect, replay

__version__ = _ffi.string(_lib.trip_version()).decode()

__all__ = [
    "Breaker", "Snapshot", "Reason", "Event", "Ticket",
    "Registry", "default_registry", "ManualClock",
    "Store", "History",
    "replay", "ReplayResult", "detect", "calibrate", "Calibration",
    "Retry", "FallbackChain",
    "options", "default_config",
    "TripsenseError", "InvalidConfigError", "StoreError", "NotFoundError",
    "CircuitOpenError",
]
# simulate, tune, plot, demo and cli are left out of __all__ on purpose:
# "from tripsense import *" must not import matplotlib.

# name -> (module, attribute or None for the module itself)
_LAZY = {
    "simulate": (".simulate", "simulate"),
    "tune": (".tune", "tune"),
    "plot": (".plot", None),
    "demo": (".demo", None),
    "cli": (".cli", None),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        mod_name, attr = _LAZY[name]
        mod = importlib.import_module(mod_name, __name__)
        value = mod if attr is None else getattr(mod, attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tripsense' has no attribute {name!r}")


def __dir__() -> list:
    return sorted(set(globals()) | set(_LAZY))
