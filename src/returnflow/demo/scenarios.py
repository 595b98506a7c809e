"""The seed flows, run against in-process fakes: what ``returnflow demo`` shows.

Each scenario builds a :class:`~returnflow.testing.Harness`, drives returns through the
public API and returns the harness and the ids of the returns it made, so the caller can
print their timelines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone

import attrs

from returnflow.demo.merchant import FLOWS, Shown
from returnflow.domain.external import ExternalLine, ExternalReturn
from returnflow.domain.inbound import (
    CarrierStatus,
    CarrierUpdate,
    ReceivedLine,
    WarehouseFinished,
    WarehouseReceipt,
)
from returnflow.domain.model import (
    Exchange,
    ItemCondition,
    OrderLine,
    OrderSnapshot,
    QcResult,
    Refund,
    RequestLine,
    ReturnReason,
    ReturnRequest,
    StoreCredit,
)
from returnflow.domain.money import Money
from returnflow.domain.policy import Completion, ReleaseTrigger, ReturnPolicy, ReturnToOrigin
from returnflow.domain.settlement import FeePolicy, Percent
from returnflow.importing import ReturnImporter
from returnflow.ports.store import ReturnStore
from returnflow.service import ReturnsService
from returnflow.stores.memory import MemoryStore
from returnflow.testing.fakes import FakeReturnSource
from returnflow.testing.harness import Harness

__all__ = ["SCENARIOS", "Scenario", "order_1001"]

SHOP = "demo-shop"


def order_1001(shop: str = SHOP, order_id: str = "1001") -> OrderSnapshot:
    """A T-shirt, two caps and a jacket, ordered on 10 January 2026 and shipped in one go
    the same day."""
    return OrderSnapshot(
        id=order_id,
        shop=shop,
        created_at=datetime(2026, 1, 10, 9, 30, tzinfo=timezone.utc),
        fulfilled_at=datetime(2026, 1, 10, 9, 30, tzinfo=timezone.utc),
        currency="EUR",
        customer_email="customer@example.com",
        lines=[
            OrderLine(
                id="L1",
                sku="TEE-M",
                variant_id="tee-m",
                quantity=1,
                unit_price=Money("25.00", "EUR"),
                title="T-shirt, M",
            ),
            OrderLine(
                id="L2",
                sku="CAP",
                variant_id="cap",
                quantity=2,
                unit_price=Money("10.00", "EUR"),
                tax=Money("3.80", "EUR"),
                title="Cap",
            ),
            OrderLine(
                id="L3",
                sku="JACKET-M",
                variant_id="jacket-m",
                quantity=1,
                unit_price=Money("120.00", "EUR"),
                discount=Money("20.00", "EUR"),
                title="Jacket, M",
            ),
        ],
    )


@attrs.frozen
class Scenario:
    name: str
    title: str
    run: Callable[[str, ReturnStore | None], tuple[Harness, Shown]]
    """``run(shop, store)``: the flow in ``shop`` on ``store`` (a fresh memory store if None);
    the returns to show, by id in ``shop`` or as ``(shop, id)``."""


def _harness(shop: str, store: ReturnStore | None, **policy: object) -> Harness:
    harness = Harness(policy=ReturnPolicy(**policy), store=store or MemoryStore())  # type: ignore[arg-type]
    harness.ports.commerce.add_order(order_1001(shop))
    return harness


def _scan(
    service: ReturnsService,
    shop: str,
    return_id: str,
    event_id: str,
    status: CarrierStatus | str,
    *,
    source: str = "carrier",
) -> None:
    """A carrier notification for the return."""
    service.handle(
        CarrierUpdate(
            shop=shop, return_id=return_id, event_id=event_id, status=status, source=source
        )
    )


def _exchange_request(shop: str, variant: str = "tee-l") -> ReturnRequest:
    return ReturnRequest(
        shop=shop,
        order_id="1001",
        lines=[
            RequestLine(
                order_line_id="L1",
                quantity=1,
                outcome=Exchange(variant_id=variant),
                reason=ReturnReason.SIZE_TOO_SMALL,
            )
        ],
    )


def smartpack_exchange(
    shop: str = SHOP, store: ReturnStore | None = None
) -> tuple[Harness, Sequence[str]]:
    """Seed 000: exchange on hold with the hold-order tag, warehouse "Finished" closes, the
    outcome runs and the hold is released."""
    harness = _harness(shop, store, completion=Completion.ON_WAREHOUSE_FINISHED)
    service = harness.service
    record = service.request(_exchange_request(shop))
    _scan(service, shop, record.id, "scan-1", "RETURN_PICKED_UP")
    harness.clock.advance(days=3)
    service.handle(
        WarehouseReceipt(
            shop=shop,
            return_id=record.id,
            event_id="wms-rcv-1",
            lines=[ReceivedLine(line_id="L1", quantity=1, condition=ItemCondition.NEW)],
        )
    )
    service.handle(WarehouseFinished(shop=shop, return_id=record.id, event_id="wms-fin-1"))
    return harness, [record.id]


def smartpack_instant_exchange(
    shop: str = SHOP, store: ReturnStore | None = None
) -> tuple[Harness, Sequence[str]]:
    """Seed 000: Instant Exchange releases the hold when the parcel is handed in; a release
    the platform did not honour is retried."""
    harness = _harness(
        shop,
        store,
        completion=Completion.ON_WAREHOUSE_FINISHED,
        exchange_release=ReleaseTrigger.ON_HANDED_IN,
    )
    service = harness.service
    record = service.request(_exchange_request(shop))
    harness.ports.commerce.ignore_releases(times=1)
    _scan(service, shop, record.id, "scan-1", "RETURN_PICKED_UP")
    service.retry_exchange_release(shop, record.id)
    return harness, [record.id]


def instant_exchange(
    shop: str = SHOP, store: ReturnStore | None = None
) -> tuple[Harness, Sequence[str]]:
    """Instant exchange (Loop's instant exchanges, Solidus' expedited exchanges): at hand-in
    the customer's payment is authorized for the exchanged T-shirt's worth and the held
    exchange is released on it; the T-shirt comes back accepted and the authorization is
    voided."""
    harness = _harness(shop, store, exchange_release=ReleaseTrigger.ON_HANDED_IN)
    service = harness.service
    record = service.request(_exchange_request(shop))
    _scan(service, shop, record.id, "scan-1", CarrierStatus.PICKED_UP)
    harness.clock.advance(days=3)
    service.handle(
        WarehouseReceipt(
            shop=shop,
            return_id=record.id,
            event_id="wms-1",
            lines=[ReceivedLine(line_id="L1", quantity=1)],
        )
    )
    return harness, [record.id]


def smartpack_partial_reset(
    shop: str = SHOP, store: ReturnStore | None = None
) -> tuple[Harness, Sequence[str]]:
    """Seed 000: only part of the return arrived. Not "Finished": reset, and a new return
    holds the accepted items only; the warehouse finishes that one."""
    harness = _harness(shop, store, completion=Completion.ON_WAREHOUSE_FINISHED)
    service = harness.service
    record = service.request(
        ReturnRequest(
            shop=shop,
            order_id="1001",
            lines=[
                RequestLine(order_line_id="L2", quantity=2, outcome=Refund()),
                RequestLine(order_line_id="L3", quantity=1, outcome=Refund()),
            ],
        )
    )
    service.handle(
        WarehouseReceipt(
            shop=shop,
            return_id=record.id,
            event_id="wms-rcv-1",
            lines=[ReceivedLine(line_id="L2", quantity=2)],
        )
    )
    _, child = service.reset(shop, record.id)
    service.handle(WarehouseFinished(shop=shop, return_id=child.id, event_id="wms-fin-2"))
    return harness, [record.id, child.id]


def helpdesk_auto_approved(
    shop: str = SHOP, store: ReturnStore | None = None
) -> tuple[Harness, Sequence[str]]:
    """Seed 001: request, eligibility (30 days, condition), auto-approval, label sent, item
    received and inspected, refund processed; a status event at every step."""
    harness = _harness(shop, store)
    service = harness.service
    record = service.request(
        ReturnRequest(
            shop=shop,
            order_id="1001",
            lines=[
                RequestLine(
                    order_line_id="L3",
                    quantity=1,
                    reason=ReturnReason.SIZE_TOO_LARGE,
                    condition=ItemCondition.NEW,
                )
            ],
        )
    )
    harness.clock.advance(days=4)
    service.handle(
        WarehouseReceipt(
            shop=shop,
            return_id=record.id,
            event_id="wms-1",
            lines=[ReceivedLine(line_id="L3", quantity=1, condition=ItemCondition.GOOD)],
        )
    )
    return harness, [record.id]


def helpdesk_agent_review(
    shop: str = SHOP, store: ReturnStore | None = None
) -> tuple[Harness, Sequence[str]]:
    """Seed 001: an item declared used goes to an agent, who approves it."""
    harness = _harness(shop, store)
    service = harness.service
    record = service.request(
        ReturnRequest(
            shop=shop,
            order_id="1001",
            lines=[
                RequestLine(
                    order_line_id="L2",
                    quantity=1,
                    reason=ReturnReason.DEFECTIVE,
                    condition=ItemCondition.USED,
                )
            ],
        )
    )
    service.approve(shop, record.id, actor="agent:maria")
    _scan(service, shop, record.id, "scan-1", "RETURN_PICKED_UP")
    _scan(service, shop, record.id, "scan-2", "DELIVERED")
    service.handle(
        WarehouseReceipt(
            shop=shop,
            return_id=record.id,
            event_id="wms-1",
            lines=[ReceivedLine(line_id="L2", quantity=1)],
        )
    )
    return harness, [record.id]


def helpdesk_window_ended(
    shop: str = SHOP, store: ReturnStore | None = None
) -> tuple[Harness, Sequence[str]]:
    """Seed 001: a request after the 30-day window is declined with RETURN_PERIOD_ENDED."""
    harness = _harness(shop, store)
    harness.clock.advance(days=40)
    record = harness.service.request(
        ReturnRequest(
            shop=shop, order_id="1001", lines=[RequestLine(order_line_id="L1", quantity=1)]
        )
    )
    return harness, [record.id]


def clickpost_qc_pass(
    shop: str = SHOP, store: ReturnStore | None = None
) -> tuple[Harness, Sequence[str]]:
    """Seed 002: RETURN_PICKED_UP, then QC pass releases the held exchange."""
    harness = _harness(shop, store)
    service = harness.service
    record = service.request(_exchange_request(shop))
    _scan(service, shop, record.id, "cp-1", CarrierStatus.PICKED_UP, source="clickpost")
    service.handle(
        WarehouseReceipt(
            shop=shop,
            return_id=record.id,
            event_id="increff-qc-1",
            source="increff",
            lines=[ReceivedLine(line_id="L1", quantity=1, qc=QcResult.PASS)],
        )
    )
    return harness, [record.id]


def clickpost_qc_fail(
    shop: str = SHOP, store: ReturnStore | None = None
) -> tuple[Harness, Sequence[str]]:
    """Seed 002: QC fail cancels the held exchange lines."""
    harness = _harness(shop, store)
    service = harness.service
    record = service.request(_exchange_request(shop))
    service.handle(
        WarehouseReceipt(
            shop=shop,
            return_id=record.id,
            event_id="increff-qc-1",
            source="increff",
            lines=[
                ReceivedLine(line_id="L1", quantity=1, qc=QcResult.FAIL, note="worn, tags removed")
            ],
        )
    )
    return harness, [record.id]


def clickpost_rto(
    shop: str = SHOP, store: ReturnStore | None = None
) -> tuple[Harness, Sequence[str]]:
    """Seed 002: the carrier reports RTO; the return waits for an agent (the shop's policy
    sends a parcel back to the customer to review; the default cancels the return)."""
    harness = _harness(shop, store, on_return_to_origin=ReturnToOrigin.REVIEW)
    service = harness.service
    record = service.request(
        ReturnRequest(
            shop=shop, order_id="1001", lines=[RequestLine(order_line_id="L3", quantity=1)]
        )
    )
    _scan(service, shop, record.id, "cp-1", CarrierStatus.PICKED_UP, source="clickpost")
    _scan(service, shop, record.id, "cp-2", CarrierStatus.RETURN_TO_ORIGIN, source="clickpost")
    return harness, [record.id]


def _loop_exchange(
    price: str | None, shop: str, store: ReturnStore | None, **policy: object
) -> tuple[Harness, Sequence[str]]:
    # Native mode (seed 003): the return lives on the platform's own return object too.
    harness = _harness(shop, store, platform_mode="native", **policy)
    service = harness.service
    unit_price = None if price is None else Money(price, "EUR")
    record = service.request(
        ReturnRequest(
            shop=shop,
            order_id="1001",
            lines=[
                RequestLine(
                    order_line_id="L1",
                    quantity=1,
                    outcome=Exchange(variant_id="tee-l", unit_price=unit_price),
                    reason=ReturnReason.SIZE_TOO_SMALL,
                )
            ],
        )
    )
    service.handle(
        WarehouseReceipt(
            shop=shop,
            return_id=record.id,
            event_id="wms-1",
            lines=[ReceivedLine(line_id="L1", quantity=1)],
        )
    )
    return harness, [record.id]


def loop_even_exchange(
    shop: str = SHOP, store: ReturnStore | None = None
) -> tuple[Harness, Sequence[str]]:
    """Seed 003: an even exchange settles to nothing either way."""
    return _loop_exchange(None, shop, store)


def loop_exchange_for_less(
    shop: str = SHOP, store: ReturnStore | None = None
) -> tuple[Harness, Sequence[str]]:
    """Seed 003: the new item costs 20.00 for a 25.00 return; 5.00 is refunded when the
    refund event is reached."""
    return _loop_exchange("20.00", shop, store)


def loop_upsell(
    shop: str = SHOP, store: ReturnStore | None = None
) -> tuple[Harness, Sequence[str]]:
    """Seed 003: the new item costs 35.00; the 10.00 balance is charged through Payments,
    and being paid does not release the exchange: completion does."""
    return _loop_exchange("35.00", shop, store)


def loop_fees_and_credit(
    shop: str = SHOP, store: ReturnStore | None = None
) -> tuple[Harness, Sequence[str]]:
    """Seeds 003 and 004: a 15 % restocking fee and a 4.95 shipping fee reduce the refund;
    store credit with a bonus; each outcome becomes an ERP document."""
    harness = _harness(
        shop, store, fees=FeePolicy(restocking=Percent(15), return_shipping=Money("4.95", "EUR"))
    )
    service = harness.service
    record = service.request(
        ReturnRequest(
            shop=shop,
            order_id="1001",
            lines=[
                RequestLine(order_line_id="L3", quantity=1, outcome=Refund()),
                RequestLine(
                    order_line_id="L2",
                    quantity=2,
                    outcome=StoreCredit(bonus=Money("5.00", "EUR")),
                ),
            ],
        )
    )
    service.handle(
        WarehouseReceipt(
            shop=shop,
            return_id=record.id,
            event_id="wms-1",
            lines=[
                ReceivedLine(line_id="L3", quantity=1),
                ReceivedLine(line_id="L2", quantity=2),
            ],
        )
    )
    return harness, [record.id]


LOOP_RETURNS_AT = datetime(2026, 1, 12, 9, 0, tzinfo=timezone.utc)
"""When the seed-004 customer asked Loop for the returns."""


def loop_xoro_returns(shop: str = SHOP) -> list[ExternalReturn]:
    """Seed 004: two Loop returns. 52393555, of order 1001: the T-shirt exchanged for a size
    L, both caps for store credit, the jacket refunded; 52393556, of order 1002 (the same
    items): both caps for store credit."""
    at = LOOP_RETURNS_AT
    return [
        ExternalReturn(
            source="loop",
            external_id="52393555",
            shop=shop,
            order_id="1001",
            lines=(
                ExternalLine(
                    order_line_id="L1",
                    quantity=1,
                    outcome=Exchange(variant_id="tee-l"),
                    reason=ReturnReason.SIZE_TOO_SMALL,
                ),
                ExternalLine(
                    order_line_id="L2",
                    quantity=2,
                    outcome=StoreCredit(),
                    reason=ReturnReason.UNWANTED,
                ),
                ExternalLine(
                    order_line_id="L3", quantity=1, outcome=Refund(), reason=ReturnReason.STYLE
                ),
            ),
            created_at=at,
            updated_at=at,
        ),
        ExternalReturn(
            source="loop",
            external_id="52393556",
            shop=shop,
            order_id="1002",
            lines=(
                ExternalLine(
                    order_line_id="L2",
                    quantity=2,
                    outcome=StoreCredit(),
                    reason=ReturnReason.UNWANTED,
                ),
            ),
            created_at=at + timedelta(hours=1),
            updated_at=at + timedelta(hours=1),
        ),
    ]


def loop_xoro_import(
    shop: str = SHOP, store: ReturnStore | None = None
) -> tuple[Harness, Sequence[str]]:
    """Seed 004: Loop returns imported by date range as RMAs, each with an ASN linked to it.
    The first ASN is closed fully received: the return is processed (refunded credit memo,
    credit memo, exchange order). The second is closed short: the return is flagged for a
    person."""
    harness = _harness(shop, store, completion=Completion.ON_WAREHOUSE_FINISHED)
    harness.ports.commerce.add_order(order_1001(shop, "1002"))
    service = harness.service
    source = FakeReturnSource("loop", loop_xoro_returns(shop))
    importer = ReturnImporter(service, source, shop=shop)
    report = importer.import_range(
        LOOP_RETURNS_AT - timedelta(days=1), LOOP_RETURNS_AT + timedelta(days=1)
    )
    full, short = report.imported
    harness.clock.advance(days=3)
    service.handle(
        WarehouseReceipt(
            shop=shop,
            return_id=full,
            event_id="asn-1-receipt",
            lines=[
                ReceivedLine(line_id="L1", quantity=1),
                ReceivedLine(line_id="L2", quantity=2),
                ReceivedLine(line_id="L3", quantity=1),
            ],
        )
    )
    service.handle(WarehouseFinished(shop=shop, return_id=full, event_id="asn-1-closed"))
    service.handle(
        WarehouseReceipt(
            shop=shop,
            return_id=short,
            event_id="asn-2-receipt",
            lines=[ReceivedLine(line_id="L2", quantity=1)],
        )
    )
    service.handle(WarehouseFinished(shop=shop, return_id=short, event_id="asn-2-closed"))
    return harness, [full, short]


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("smartpack-exchange", "Returnflows x SmartPack: exchange on hold", smartpack_exchange),
    Scenario(
        "smartpack-instant",
        "Returnflows x SmartPack: instant exchange, release retried",
        smartpack_instant_exchange,
    ),
    Scenario(
        "instant-exchange",
        "Instant exchange: released on an authorized payment, voided on receipt",
        instant_exchange,
    ),
    Scenario(
        "smartpack-reset",
        "Returnflows x SmartPack: partial receipt and reset",
        smartpack_partial_reset,
    ),
    Scenario("helpdesk-auto", "Helpdesk workflow: auto-approved refund", helpdesk_auto_approved),
    Scenario("helpdesk-review", "Helpdesk workflow: agent review", helpdesk_agent_review),
    Scenario("helpdesk-late", "Helpdesk workflow: window ended", helpdesk_window_ended),
    Scenario("clickpost-qc-pass", "Increff x Clickpost: QC pass releases", clickpost_qc_pass),
    Scenario("clickpost-qc-fail", "Increff x Clickpost: QC fail cancels", clickpost_qc_fail),
    Scenario("clickpost-rto", "Increff x Clickpost: return to origin", clickpost_rto),
    Scenario("loop-even", "Loop x Shopify native returns: even exchange", loop_even_exchange),
    Scenario(
        "loop-for-less", "Loop x Shopify native returns: exchange for less", loop_exchange_for_less
    ),
    Scenario("loop-upsell", "Loop x Shopify native returns: upsell exchange", loop_upsell),
    Scenario(
        "loop-fees-credit",
        "Loop x Shopify / Xoro: fees, store credit bonus, ERP documents",
        loop_fees_and_credit,
    ),
    *(Scenario(name, title, run) for name, title, run in FLOWS),  # what merchants configure
    Scenario(
        "loop-xoro-import",
        "Loop x Xoro: returns imported as RMAs, ASN closed in full or short",
        loop_xoro_import,
    ),
)
