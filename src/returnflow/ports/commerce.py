"""The commerce platform: orders, exchange items on hold, refunds, store credit, restock."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Protocol

import attrs

from returnflow.domain.model import OrderSnapshot
from returnflow.domain.money import Money

__all__ = [
    "CommercePlatform",
    "CreditReceipt",
    "ExchangeHold",
    "ExchangeItem",
    "HoldStatus",
    "LineQuantity",
    "RefundReceipt",
]


@attrs.frozen
class LineQuantity:
    """``quantity`` units of order line ``order_line_id``."""

    order_line_id: str
    quantity: int


@attrs.frozen
class ExchangeItem:
    """A new item added to the original order for an exchange."""

    exchange_line_id: str
    variant_id: str
    quantity: int
    sku: str | None = None


@attrs.frozen
class ExchangeHold:
    """What the platform answers when exchange items were added on hold."""

    hold_id: str
    item_ids: tuple[str, ...]


class HoldStatus(str, enum.Enum):
    """The real state of an exchange hold on the platform."""

    HELD = "held"
    RELEASED = "released"
    CANCELLED = "cancelled"


@attrs.frozen
class RefundReceipt:
    refund_id: str
    amount: Money


@attrs.frozen
class CreditReceipt:
    credit_id: str
    amount: Money


class CommercePlatform(Protocol):
    """The shop's commerce platform (Shopify, Solidus, Medusa, ...)."""

    def get_order(self, shop: str, order_id: str) -> OrderSnapshot:
        """The order as it is now.

        Raises ``PortError(retryable=False)`` when the shop has no such order (the service
        reports that as :class:`~returnflow.errors.UnknownOrder`), a retryable ``PortError``
        when it cannot be read right now.
        """
        ...

    def add_exchange_items(
        self,
        shop: str,
        order_id: str,
        items: Sequence[ExchangeItem],
        *,
        hold_tag: str,
        idempotency_key: str,
    ) -> ExchangeHold:
        """Add ``items`` to the original order, on hold, and tag the order with ``hold_tag``."""
        ...

    def release_exchange(
        self, shop: str, order_id: str, hold_id: str, *, hold_tag: str, idempotency_key: str
    ) -> None:
        """Move the held lines from On Hold to Unfulfilled and remove ``hold_tag``, unless
        another exchange hold of the order still has lines on hold (the tag pauses the whole
        order's fulfillment: removed, it would ship those too)."""
        ...

    def exchange_hold_status(self, shop: str, order_id: str, hold_id: str) -> HoldStatus:
        """Where the hold really is (a release may have been accepted but not honoured)."""
        ...

    def cancel_exchange_items(
        self,
        shop: str,
        order_id: str,
        hold_id: str,
        item_ids: Sequence[str],
        *,
        idempotency_key: str,
    ) -> None:
        """Cancel these held exchange items (all of the hold's items cancels the hold)."""
        ...

    def refund(
        self,
        shop: str,
        order_id: str,
        amount: Money,
        lines: Sequence[LineQuantity],
        *,
        idempotency_key: str,
    ) -> RefundReceipt:
        """Refund ``amount`` to the original payment method for ``lines``."""
        ...

    def issue_store_credit(
        self, shop: str, order_id: str, amount: Money, *, idempotency_key: str
    ) -> CreditReceipt:
        """Issue store credit (a gift card) to the order's customer."""
        ...

    def restock(
        self, shop: str, order_id: str, lines: Sequence[LineQuantity], *, idempotency_key: str
    ) -> None:
        """Put these units back into sellable inventory."""
        ...
