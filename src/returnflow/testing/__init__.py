"""In-memory fakes of returnflow's ports, for the tests of code that uses returnflow.

Every fake satisfies its port's ``Protocol``, honours idempotency keys like a real API,
records its calls in ``fake.calls`` and can be told to fail with ``fake.fail(...)``,
``fake.fail_rate(...)`` and healed with ``fake.heal()``. :class:`FakePorts` bundles one of
each. See :mod:`returnflow.testing.fakes` for the details.

:class:`Harness` wires a :class:`~returnflow.ReturnsService` to all of them, with a
:class:`ManualClock` and :class:`SequentialIds`, for tests, demos and docs.
"""

from returnflow.testing.contract import (
    BASE_TIME,
    StoreContract,
    commit_next_version,
    make_effect,
    make_history_entry,
    make_record,
    next_version,
)
from returnflow.testing.fakes import (
    Call,
    CallOutcome,
    ExchangeLineStatus,
    FakeCarrier,
    FakeCommercePlatform,
    FakeCredit,
    FakeEventPublisher,
    FakeExchangeLine,
    FakeLabel,
    FakeMessage,
    FakeNotifier,
    FakePayment,
    FakePayments,
    FakePort,
    FakePorts,
    FakeRefund,
    FakeRestock,
    FakeWarehouse,
    FakeWarehouseReturn,
)
from returnflow.testing.harness import Harness, ManualClock, SequentialIds

__all__ = [
    "BASE_TIME",
    "Call",
    "CallOutcome",
    "ExchangeLineStatus",
    "FakeCarrier",
    "FakeCommercePlatform",
    "FakeCredit",
    "FakeEventPublisher",
    "FakeExchangeLine",
    "FakeLabel",
    "FakeMessage",
    "FakeNotifier",
    "FakePayment",
    "FakePayments",
    "FakePort",
    "FakePorts",
    "FakeRefund",
    "FakeRestock",
    "FakeWarehouse",
    "FakeWarehouseReturn",
    "Harness",
    "ManualClock",
    "SequentialIds",
    "StoreContract",
    "commit_next_version",
    "make_effect",
    "make_history_entry",
    "make_record",
    "next_version",
]
