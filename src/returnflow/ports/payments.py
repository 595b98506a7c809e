"""Payments: charging a balance owed by the customer (upsell exchanges)."""

from __future__ import annotations

from typing import Protocol

import attrs

from returnflow.domain.money import Money

__all__ = ["PaymentReceipt", "Payments"]


@attrs.frozen
class PaymentReceipt:
    payment_id: str
    amount: Money


class Payments(Protocol):
    """The payment processor that collects what the customer owes."""

    def charge(
        self, shop: str, return_id: str, amount: Money, *, idempotency_key: str
    ) -> PaymentReceipt:
        """Charge ``amount`` to the customer."""
        ...

    def authorize(
        self, shop: str, return_id: str, amount: Money, *, idempotency_key: str
    ) -> PaymentReceipt:
        """Authorize ``amount`` (instant exchange: captured if the parcel never ships)."""
        ...

    def refund(
        self, shop: str, return_id: str, amount: Money, *, idempotency_key: str
    ) -> PaymentReceipt:
        """Give back ``amount`` of what was charged for this return (an exchange paid for
        and then cancelled)."""
        ...
