# SPDX-License-Identifier: GPL-3.0-or-later
"""Status codes become the documented exception classes."""
import pytest

import tripsense
from tripsense._lowlevel import _check, lib


def test_version_is_the_library_version():
    assert tripsense.__version__.count(".") == 2


@pytest.mark.parametrize(
    "rc, cls",
    [
        (lib.TRIP_EINVAL, tripsense.InvalidConfigError),
        (lib.TRIP_ERANGE, tripsense.InvalidConfigError),
        (lib.TRIP_ENOTFOUND, tripsense.NotFoundError),
        (lib.TRIP_ESTORE, tripsense.StoreError),
        (lib.TRIP_EBUSY, tripsense.StoreError),
        (lib.TRIP_ECORRUPT, tripsense.StoreError),
        (lib.TRIP_EREADONLY, tripsense.StoreError),
        (lib.TRIP_ENOMEM, tripsense.TripsenseError),
    ],
)
def test_check_maps_status_to_class(rc, cls):
    with pytest.raises(cls) as ei:
        _check(rc)
    assert ei.value.status == rc
    assert isinstance(ei.value, tripsense.TripsenseError)


def test_check_passes_non_negative():
    assert _check(0) == 0
    assert _check(2) == 2


def test_error_classes_are_also_builtin_kinds():
    assert issubclass(tripsense.InvalidConfigError, ValueError)
    assert issubclass(tripsense.StoreError, OSError)
    assert issubclass(tripsense.NotFoundError, KeyError)


def test_circuit_open_error_message_and_pickling():
    import pickle

    e = tripsense.CircuitOpenError("db", "open", "rejected", "failure_rate", 2.5,
                                   0.75, 0.5)
    assert str(e) == ("circuit 'db' is open: call rejected (last trip: "
                      "failure_rate, score 0.75 >= 0.5); retry after 2.500 s")
    e2 = pickle.loads(pickle.dumps(e))
    assert (e2.breaker, e2.state, e2.decision, e2.rule, e2.retry_after) == \
        ("db", "open", "rejected", "failure_rate", 2.5)
    assert str(e2) == str(e)


def test_messages_come_from_the_c_library():
    with pytest.raises(tripsense.InvalidConfigError) as ei:
        tripsense.Breaker("bad", failure_rate=2.0)
    assert "failure_rate" in str(ei.value) and ei.value.status_name == "TRIP_EINVAL"
