"""The demo return source of ``returnflow import``: a fake Loop holding a few hundred returns
of January 2026 for the shop ``demo-loop``, made the same way every time, and the orders
they are of (the demo app seeds them on its fake platform).

>>> [external.external_id for external in returns()[:2]]
['60000000', '60000001']
>>> len(returns()), len(orders()), returns() == returns()
(300, 300, True)
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from returnflow.domain.external import ExternalLine, ExternalReturn, SourceStatus
from returnflow.domain.model import (
    Exchange,
    OrderLine,
    OrderSnapshot,
    Outcome,
    Refund,
    ReturnReason,
    StoreCredit,
)
from returnflow.domain.money import Money
from returnflow.testing.fakes import FakeReturnSource

__all__ = ["COUNT", "SHOP", "build", "orders", "returns"]

SHOP = "demo-loop"
COUNT = 300
_MONTH = datetime(2026, 1, 1, tzinfo=timezone.utc)
_ITEMS = (
    ("TEE", "tee", "25.00"),
    ("CAP", "cap", "12.50"),
    ("JACKET", "jacket", "120.00"),
    ("SNEAKER", "sneaker", "89.90"),
    ("SOCKS", "socks", "7.00"),
)
_REASONS = (
    ReturnReason.SIZE_TOO_SMALL,
    ReturnReason.SIZE_TOO_LARGE,
    ReturnReason.STYLE,
    ReturnReason.UNWANTED,
    ReturnReason.COLOR,
)


def _order(number: int, rng: random.Random) -> OrderSnapshot:
    first, second = rng.sample(_ITEMS, 2)
    created = _MONTH - timedelta(days=10) + timedelta(minutes=number * 140)
    return OrderSnapshot(
        id=f"D{number:05d}",
        shop=SHOP,
        created_at=created,
        fulfilled_at=created,
        currency="EUR",
        customer_email=f"customer{number}@example.com",
        lines=[
            OrderLine(
                id="L1",
                sku=f"{first[0]}-M",
                variant_id=f"{first[1]}-m",
                quantity=rng.randint(1, 3),
                unit_price=Money(first[2], "EUR"),
            ),
            OrderLine(
                id="L2",
                sku=f"{second[0]}-M",
                variant_id=f"{second[1]}-m",
                quantity=rng.randint(1, 2),
                unit_price=Money(second[2], "EUR"),
            ),
        ],
    )


def _outcome(line: OrderLine, rng: random.Random) -> Outcome:
    pick = rng.random()
    if pick < 0.45:
        return Refund()
    if pick < 0.75:
        return StoreCredit()
    return Exchange(variant_id=line.variant_id.replace("-m", "-l"), quantity=1)


def _made() -> tuple[list[OrderSnapshot], list[ExternalReturn]]:
    rng = random.Random(4)
    made_orders: list[OrderSnapshot] = []
    made_returns: list[ExternalReturn] = []
    for number in range(COUNT):
        order = _order(number, rng)
        made_orders.append(order)
        returned = [line for line in order.lines if rng.random() < 0.6] or [order.lines[0]]
        lines = []
        for line in returned:
            outcome = _outcome(line, rng)
            quantity = 1 if isinstance(outcome, Exchange) else rng.randint(1, line.quantity)
            lines.append(
                ExternalLine(
                    order_line_id=line.id,
                    quantity=quantity,
                    outcome=outcome,
                    reason=rng.choice(_REASONS),
                )
            )
        created = _MONTH + timedelta(minutes=number * 140 + rng.randint(0, 120))
        made_returns.append(
            ExternalReturn(
                source="loop",
                external_id=str(60_000_000 + number),
                shop=SHOP,
                order_id=order.id,
                lines=tuple(lines),
                created_at=created,
                updated_at=created + timedelta(minutes=rng.randint(0, 180)),
                status=SourceStatus.CANCELLED if rng.random() < 0.05 else SourceStatus.OPEN,
            )
        )
    return made_orders, made_returns


def orders() -> list[OrderSnapshot]:
    """The orders the demo returns are of."""
    return _made()[0]


def returns() -> list[ExternalReturn]:
    """The demo returns: one per order, created through January 2026, a few cancelled."""
    return _made()[1]


def build() -> FakeReturnSource:
    """The demo source (the default ``--source`` of ``returnflow import``)."""
    return FakeReturnSource("loop", returns())
