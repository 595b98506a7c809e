"""returnflow's testing kit: fakes, a wired harness, contract suites, strategies, a model.

What a host imports in its own CI:

* fakes of every port (:mod:`returnflow.testing.fakes`), a return source among them
  (:class:`FakeReturnSource`), and :class:`Harness`;
* contract suites (:class:`StoreContract`, :class:`CommercePlatformContract`,
  :class:`WarehouseContract`, :class:`CarrierContract`, :class:`PaymentsContract`,
  :class:`NotifierContract`, :class:`EventPublisherContract`, :class:`ReturnSourceContract`,
  :class:`DestinationResolverContract`):
  subclass one with your adapter's factory and pytest runs the whole contract against it;
* Hypothesis strategies (:mod:`returnflow.testing.strategies`) and the stateful model
  (:mod:`returnflow.testing.stateful`), imported from their modules: they need the
  ``[testing]`` extra, and importing this package does not import Hypothesis.

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
    FakeReturnSource,
    FakeWarehouse,
    FakeWarehouseReturn,
)
from returnflow.testing.harness import Harness, ManualClock, SequentialIds
from returnflow.testing.port_contracts import (
    CarrierContract,
    CommercePlatformContract,
    DestinationResolverContract,
    EventPublisherContract,
    NotifierContract,
    PaymentsContract,
    PortContract,
    ReturnSourceContract,
    WarehouseContract,
    make_order,
)

__all__ = [
    "BASE_TIME",
    "Call",
    "CallOutcome",
    "CarrierContract",
    "CommercePlatformContract",
    "DestinationResolverContract",
    "EventPublisherContract",
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
    "FakeReturnSource",
    "FakeWarehouse",
    "FakeWarehouseReturn",
    "Harness",
    "ManualClock",
    "NotifierContract",
    "PaymentsContract",
    "PortContract",
    "ReturnSourceContract",
    "SequentialIds",
    "StoreContract",
    "WarehouseContract",
    "commit_next_version",
    "make_effect",
    "make_history_entry",
    "make_order",
    "make_record",
    "next_version",
]
