"""The platform's own return objects (Shopify's native returns): opened, processed, disposed.

A platform with native returns (Shopify's Admin API since 2023: ``Return``,
``returnCreate``/``returnRequest``, ``returnApproveRequest``/``returnDeclineRequest``,
``returnProcess``, ``reverseFulfillmentOrderDispose``, ``removeFromReturn``,
``returnClose``/``returnReopen``/``returnCancel`` and ``returnCalculate``) keeps a return of
its own beside returnflow's: the merchant's admin shows it, exchanges sit on the original
order, and refunding and restocking are separate calls.

This is a port of its own rather than more of
:class:`~returnflow.ports.commerce.CommercePlatform`: a host on the older flow (exchange items
on hold behind a tag, a bare refund, a bare restock) implements nothing new, and a platform
return is an object with a life of its own (statuses, processed quantities, line ids) whose
calls a host maps one to one onto the platform's mutations.

Statuses follow Shopify's ``ReturnStatus``
(:class:`~returnflow.lifecycle.table.ShopifyReturnStatus`): ``REQUESTED`` (the customer
asked, not approved yet), ``OPEN``, ``CLOSED``, ``DECLINED``, ``CANCELED``. Every mutating
call takes an idempotency key: the same key with the same arguments answers the first result,
with other arguments it is refused. A refusal the platform will always give (an unknown
line, more units than are left, a status that does not allow the call) is
``PortError(retryable=False)``; a transient failure is a retryable ``PortError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import attrs

from returnflow.domain.inbound import Disposition
from returnflow.domain.money import Money
from returnflow.lifecycle.table import ShopifyReturnStatus

__all__ = [
    "DutyRefund",
    "FinancialOutcome",
    "PlatformExchangeLine",
    "PlatformReturn",
    "PlatformReturnLine",
    "PlatformReturns",
    "ProcessResult",
    "Quantity",
    "ShopifyReturnStatus",
]


@attrs.frozen
class PlatformReturnLine:
    """Units of an order line to return (Shopify: a return line item, by the fulfillment line
    item that shipped them), with the customer's reason and a restocking fee for the line:
    the fee of all ``quantity`` units, which follows them (each unit carries its share,
    allocated to the cent in proportion to what it was paid; a unit removed from the
    return carries none).

    ``units`` names the units the line takes: their indices among the order line's units
    (0-based, in fulfillment order, as
    :meth:`~returnflow.domain.order.OrderSnapshot.shipped_units` counts them; each shipped
    by the fulfillment, and so the fulfillment line item, that holds its index), in the
    order they are processed (removed units are the last ones), ``quantity`` of them. Units
    of one line can be paid differently (10.00, 10.00 and 9.99 when a discount does not
    split evenly), so the platform values exactly these. Empty: the line does not say (a
    call recorded before units were named), and the platform takes the units it picks:
    the most recently shipped ones no live return holds, then by index. The platform
    refuses a unit that is out of the line's range, not shipped, named twice, or on another
    live return, and a count of units other than ``quantity``."""

    order_line_id: str
    quantity: int
    reason: str = "UNKNOWN"
    restocking_fee: Money | None = None
    units: tuple[int, ...] = ()


@attrs.frozen
class DutyRefund:
    """``amount`` of the order's duty ``duty_id`` (the platform's id,
    :attr:`~returnflow.domain.order.OrderLine.duties`) given back with the units processed:
    their share of it (Shopify's ``RefundDutyInput``, refunded in proportion to them)."""

    duty_id: str
    amount: Money


@attrs.frozen
class PlatformExchangeLine:
    """A new item given in exchange (Shopify: an exchange line item), priced per unit, less
    ``discount`` off the whole line (Shopify's ``appliedDiscount`` with an amount), shared
    over its units like a line discount (the larger shares first): what prices an even
    exchange of several new items at exactly the returned units' worth."""

    exchange_line_id: str
    variant_id: str
    quantity: int
    unit_price: Money
    discount: Money | None = None

    def worth(self, start: int, units: int) -> Money:
        """What ``units`` of the new items from item ``start`` cost, the discount shared."""
        line = self.unit_price * self.quantity
        if self.discount is not None:
            line = line - self.discount
        return Money.sum(line.split(self.quantity)[start : start + units], line.currency)


@attrs.frozen
class Quantity:
    """``quantity`` units of the platform's line ``line_id`` (a return or exchange line)."""

    line_id: str
    quantity: int


@attrs.frozen
class PlatformReturn:
    """A platform return as the platform reports it.

    ``return_id`` is the platform's id (``ExternalRefs.platform_return_id``); ``line_ids``
    maps each order line id to the platform's return line id and ``exchange_line_ids`` each
    exchange line id to the platform's exchange line id. ``processed``, ``removed`` and
    ``disposed`` count units per return line id (``disposed``: processed units whose
    disposition was given, by returnflow or by a person in the platform's admin; Shopify:
    the quantities of the reverse fulfillment order line's ``dispositions``; a line not
    listed has none); ``exchange_processed`` and ``exchange_removed`` items per exchange
    line id. ``dispositions`` says of what kind the disposed units are.
    """

    return_id: str
    order_id: str
    status: ShopifyReturnStatus
    line_ids: tuple[tuple[str, str], ...]
    exchange_line_ids: tuple[tuple[str, str], ...] = ()
    processed: tuple[tuple[str, int], ...] = ()
    removed: tuple[tuple[str, int], ...] = ()
    exchange_processed: tuple[tuple[str, int], ...] = ()
    exchange_removed: tuple[tuple[str, int], ...] = ()
    disposed: tuple[tuple[str, int], ...] = ()
    exchange_on_hold: bool = False
    """Whether the exchange items wait for payment: the return leaves the customer a balance
    to pay (its exchange items are worth more than what comes back, less the fees) not paid
    yet (Shopify: a fulfillment hold, ``AWAITING_PAYMENT``). An even exchange or one for
    less is never held: its items are fulfilled when the return is processed."""
    balance_owed: Money | None = None
    """What the customer still owes on the return (``None``: nothing)."""
    balance_paid: Money | None = None
    """What the customer paid of the return's balance through
    :meth:`PlatformReturns.pay_balance`, less what :meth:`PlatformReturns.refund_balance`
    gave back of it (``None``: nothing)."""
    refunded: Money | None = None
    """What the return's processings refunded for its lines, by returnflow or by a person in
    the platform's admin (Shopify: the ``refunds`` of the Return, less the order's shipping
    and duties given back); ``None``: the platform does not report it."""
    dispositions: tuple[tuple[str, Disposition, int], ...] = ()
    """The units of ``disposed`` by kind: ``(return line id, disposition, units)``, one
    entry per line and kind given (Shopify: the ``type`` and ``quantity`` of the reverse
    fulfillment order line's ``dispositions``, summed). A line's units counted in
    ``disposed`` beyond its entries here are of a kind the platform does not report (an
    adapter that reads counts only); :meth:`disposed_as` gives them none."""

    def disposed_as(self, line_id: str) -> dict[Disposition, int]:
        """The units of return line ``line_id`` disposed of, by kind (only those reported:
        see :attr:`dispositions`)."""
        kinds: dict[Disposition, int] = {}
        for line, kind, units in self.dispositions:
            if line == line_id:
                kinds[kind] = kinds.get(kind, 0) + units
        return kinds

    def line_id(self, order_line_id: str) -> str:
        """The platform's return line id of ``order_line_id``; ``KeyError`` if none."""
        return dict(self.line_ids)[order_line_id]


@attrs.frozen
class ProcessResult:
    """What processing moved: the refunds made (ids and total) and the exchange fulfillments
    created for the exchange lines confirmed (on hold while a balance is owed)."""

    refund_ids: tuple[str, ...]
    refunded: Money
    exchange_fulfillment_ids: tuple[str, ...] = ()
    exchange_on_hold: bool = False
    """The exchange fulfillments were created on hold: a balance is still owed
    (:meth:`PlatformReturns.pay_balance` releases them)."""


@attrs.frozen
class FinancialOutcome:
    """The platform's own money for a return (Shopify's ``suggestedFinancialOutcome``): what
    the returned lines are worth, the fees kept, the exchange items' worth, and the result:
    ``refund`` to the customer or ``owed`` by the customer (one of them is zero)."""

    returned: Money
    fees: Money
    exchanged: Money
    refund: Money
    owed: Money


class PlatformReturns(Protocol):
    """The platform's return objects (Shopify's native returns). See the module docstring
    for statuses, keys and errors."""

    def open_return(
        self,
        shop: str,
        order_id: str,
        lines: Sequence[PlatformReturnLine],
        *,
        exchange_lines: Sequence[PlatformExchangeLine] = (),
        return_shipping_fee: Money | None = None,
        requested: bool = False,
        idempotency_key: str,
    ) -> PlatformReturn:
        """Open a return (``requested=True``: as the customer's request, ``REQUESTED``;
        else ``OPEN``). Refused for an unknown order or line, a quantity below 1 or above the
        units of the line not already in another open, requested or closed return, units
        named (:attr:`PlatformReturnLine.units`) that cannot be returned (out of range, not
        shipped, named twice, in another such return, fewer or more than ``quantity``), and a
        fee in another currency than the order's."""
        ...

    def get_return(self, shop: str, return_id: str) -> PlatformReturn:
        """The return as it is now; ``PortError(retryable=False)`` when there is none."""
        ...

    def approve(self, shop: str, return_id: str, *, idempotency_key: str) -> PlatformReturn:
        """Approve a ``REQUESTED`` return (it becomes ``OPEN``)."""
        ...

    def decline(
        self, shop: str, return_id: str, *, reason: str, idempotency_key: str
    ) -> PlatformReturn:
        """Decline a ``REQUESTED`` return (it becomes ``DECLINED``)."""
        ...

    def process(
        self,
        shop: str,
        return_id: str,
        lines: Sequence[Quantity],
        *,
        exchange_lines: Sequence[Quantity] = (),
        refund: Money,
        refund_shipping: Money | None = None,
        refund_duties: Sequence[DutyRefund] = (),
        idempotency_key: str,
    ) -> ProcessResult:
        """Confirm received units and exchange items of an ``OPEN`` return and move the money
        (Shopify's ``returnProcess``): ``refund`` for the lines (never more than the worth of
        all lines processed so far, less what was refunded before), plus the order's
        shipping (``refund_shipping``) and duties (``refund_duties``, by duty id) given back
        with them, never more than the order was charged for either, less what was given
        back before. ``ProcessResult.refunded`` is the whole of it. Exchange items confirmed
        are fulfilled. Refused for units not left to process (processed or removed before),
        an unknown duty id or more than is left of a charge. The return closes when every
        unit is processed or removed. With no line nor exchange item, the call gives back
        the shipping and duties alone (Shopify's ``returnLineItems`` and
        ``exchangeLineItems`` default to none), on an ``OPEN`` or ``CLOSED`` return: what
        returnflow's settlement gives back once a person processed every unit in the
        platform's admin; refused when it gives back neither."""
        ...

    def pay_balance(
        self, shop: str, return_id: str, amount: Money, *, idempotency_key: str
    ) -> PlatformReturn:
        """Record that the customer paid ``amount`` of the balance the return leaves owed,
        collected outside the platform by the host's payment processor (Shopify: a manual
        payment on the order, ``orderCreateManualPayment``). Once nothing is owed, the
        exchange is no longer held: fulfillments created on hold are released. Refused for
        an amount not above zero, in another currency, or above what is owed."""
        ...

    def refund_balance(
        self, shop: str, return_id: str, amount: Money, *, idempotency_key: str
    ) -> PlatformReturn:
        """Record that ``amount`` of what the customer paid of the balance
        (:meth:`pay_balance`) was given back, by the host's payment processor, for new items
        they no longer get or pay less for (an exchange line cancelled, a settlement that
        needs less of the payment, a return cancelled or reset): Shopify, a refund on the
        order of the manual payment (``refundCreate``, a ``REFUND`` transaction whose parent
        is the payment). The platform's money follows: what was paid drops by ``amount``,
        and what is owed is the return's figure less what is still paid. Refused for an
        amount not above zero, in another currency, or above what was paid and not given
        back yet.

        A call of its own rather than :meth:`pay_balance` with a negative amount: a refund
        is another transaction on the platform (its own id, a parent payment, a limit in
        what was paid rather than in what is owed), and a host maps it one to one."""
        ...

    def dispose(
        self,
        shop: str,
        return_id: str,
        line_id: str,
        quantity: int,
        disposition: Disposition,
        *,
        idempotency_key: str,
        location_id: str | None = None,
    ) -> None:
        """Say what became of processed units (restocked, processing required, not restocked,
        missing), apart from the refund. Refused for more units than were processed and not
        disposed yet. ``location_id``: the location the units were returned to (their
        line's destination, :mod:`returnflow.domain.destinations`), where restocked units
        go; passed only for a named location, so a host written before destinations keeps
        working (its own restock location)."""
        ...

    def remove_lines(
        self,
        shop: str,
        return_id: str,
        lines: Sequence[Quantity],
        *,
        exchange_lines: Sequence[Quantity] = (),
        idempotency_key: str,
    ) -> PlatformReturn:
        """Take units not processed out of the return (a QC failure, a partial receipt, a
        reset), and exchange items that will never ship (``exchange_lines``, by exchange
        line id: an exchange cancelled; Shopify's ``removeFromReturn`` takes both), so
        that the return's own money no longer counts them. Refused for units or items
        processed or removed already."""
        ...

    def close(self, shop: str, return_id: str, *, idempotency_key: str) -> PlatformReturn:
        """Close an ``OPEN`` return."""
        ...

    def reopen(self, shop: str, return_id: str, *, idempotency_key: str) -> PlatformReturn:
        """Reopen a ``CLOSED`` return."""
        ...

    def cancel(self, shop: str, return_id: str, *, idempotency_key: str) -> PlatformReturn:
        """Cancel a ``REQUESTED`` or ``OPEN`` return nothing of which was processed."""
        ...

    def calculate(
        self,
        shop: str,
        return_id: str,
        lines: Sequence[Quantity] | None = None,
        *,
        exchange_lines: Sequence[Quantity] = (),
        shipping_fee: bool | Money = True,
    ) -> FinancialOutcome:
        """The platform's own money (Shopify's ``returnCalculate``). With ``lines`` ``None``:
        the whole return as it stands (its units not removed, its exchange items, its fees).
        Otherwise one processing call's: the next units of ``lines`` to process (by return
        line id), the exchange items of ``exchange_lines`` (by exchange line id) and, when
        ``shipping_fee``, the return shipping fee. ``shipping_fee`` as an amount: that much
        of the return shipping fee (the units' shares a call settles, or what the whole
        return's settlements charged of it; Shopify's ``CalculateReturnInput`` takes the
        fee as an amount), at most the fee the return carries, else refused. A line's
        restocking fee follows its units: it is allocated over them to the cent (in
        proportion to what they were paid), processed units carry their shares in order
        and removed units none. Refused
        (``PortError(retryable=False)``) for units not left to process or an unknown
        line."""
        ...
