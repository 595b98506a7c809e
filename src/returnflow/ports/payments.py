"""Payments: charging a balance owed by the customer (upsell exchanges), and authorizing the
value of an instant exchange, captured or voided once the returned goods are judged."""

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
        """Authorize ``amount`` (instant exchange: captured if the parcel never ships); the
        receipt's ``payment_id`` names the authorization for :meth:`capture` and
        :meth:`void`."""
        ...

    def refund(
        self, shop: str, return_id: str, amount: Money, *, idempotency_key: str
    ) -> PaymentReceipt:
        """Give back ``amount`` of what was charged (or captured) for this return (an
        exchange paid for and then cancelled)."""
        ...

    def capture(
        self,
        shop: str,
        return_id: str,
        authorization_id: str,
        amount: Money,
        *,
        idempotency_key: str,
    ) -> PaymentReceipt:
        """Collect ``amount`` of an authorization (instant exchange: the parcel never came in
        time, failed QC or went back to the customer).

        ``authorization_id`` is the ``payment_id`` of the :meth:`authorize` receipt for this
        return; ``amount`` is in the authorization's currency, positive and at most the
        authorized amount (a smaller capture releases the rest). An authorization is
        captured at most once; what it captured can be refunded like a charge. Returns a
        receipt of the captured ``amount`` with the capture's ``payment_id``.

        Raises ``PortError(retryable=False)`` for an unknown authorization (also another
        shop's), one already captured or voided, and an amount above the authorized one,
        in another currency or not positive. A repeated ``idempotency_key`` returns the first
        receipt and captures nothing more.
        """
        ...

    def void(
        self, shop: str, return_id: str, authorization_id: str, *, idempotency_key: str
    ) -> None:
        """Release an authorization, charging nothing (instant exchange: the returned units
        were received and accepted).

        ``authorization_id`` is the ``payment_id`` of the :meth:`authorize` receipt for this
        return. Raises ``PortError(retryable=False)`` for an unknown authorization (also
        another shop's) and one already captured or voided. A repeated ``idempotency_key``
        answers like the first call and does nothing more.
        """
        ...
