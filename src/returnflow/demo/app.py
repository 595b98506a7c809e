"""The default app of ``returnflow worker`` and ``returnflow import``: a service on the given
store with the demo's fakes (and the orders of the demo's scenarios and demo returns).

A host passes its own ``--app MODULE:CALLABLE``: a callable that takes the store and
returns a :class:`~returnflow.ReturnsService` built with the host's adapters.
"""

from __future__ import annotations

from returnflow.demo import import_source
from returnflow.demo.scenarios import SCENARIOS, order_1001
from returnflow.ports.store import ReturnStore
from returnflow.service import ReturnsService
from returnflow.testing.fakes import FakePorts


def build(store: ReturnStore) -> ReturnsService:
    ports = FakePorts()
    for scenario in SCENARIOS:  # the demo's orders, one shop per scenario
        ports.commerce.add_order(order_1001(f"demo-{scenario.name}"))
    ports.commerce.add_order(order_1001("demo-loop-xoro-import", "1002"))
    for order in import_source.orders():  # what `returnflow import` imports by default
        ports.commerce.add_order(order)
    return ReturnsService(
        store=store,
        commerce=ports.commerce,
        warehouse=ports.warehouse,
        carrier=ports.carrier,
        payments=ports.payments,
        notifier=ports.notifier,
        events=ports.events,
    )
