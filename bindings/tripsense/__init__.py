# SPDX-License-Identifier: GPL-3.0-or-later
"""tripsense: an adaptive circuit breaker (C core, Python bindings)."""
from __future__ import annotations

from ._lowlevel import (
    CircuitOpenError,
    InvalidConfigError,
    NotFoundError,
    StoreError,
    TripsenseError,
    ffi as _ffi,
    lib as _lib,
)

__version__ = _ffi.string(_lib.trip_version()).decode()
