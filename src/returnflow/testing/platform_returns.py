"""A fake of the platform's own return objects (:mod:`returnflow.ports.platform_returns`).

It models a platform return as Shopify keeps one: statuses ``REQUESTED`` / ``OPEN`` /
``CLOSED`` / ``DECLINED`` / ``CANCELED``; processed, removed and disposed quantities per
line; exchange fulfillments created when exchange items are processed, on hold while the
return leaves a balance owed (:meth:`FakePlatformReturns.pay_balance` pays it,
:meth:`FakePlatformReturns.refund_balance` gives part of it back); the order's
shipping and duties (by id) given back once, never more than charged; disposition apart
from refunding; and its own money (:meth:`FakePlatformReturns.calculate`), from the order's
paid unit amounts. Like every fake it records calls, honours idempotency keys and fails on
demand (:class:`~returnflow.testing.fakes.FakePort`).

>>> from returnflow.testing import FakeCommercePlatform, make_order
>>> commerce = FakeCommercePlatform()
>>> commerce.add_order(make_order("shop-a", "1001"))
>>> platform = FakePlatformReturns(commerce)
>>> opened = platform.open_return(
...     "shop-a", "1001", [PlatformReturnLine("L1", 2)], idempotency_key="k1"
... )
>>> opened.return_id, opened.status.value, opened.line_id("L1")
('gid://Return/1', 'OPEN', 'gid://ReturnLineItem/1')
>>> platform.calculate("shop-a", opened.return_id).refund
Money('20.00', 'EUR')
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, ClassVar

import attrs

from returnflow.domain.inbound import Disposition
from returnflow.domain.model import OrderLine, OrderSnapshot
from returnflow.domain.money import Money
from returnflow.domain.policy import returnable_units
from returnflow.domain.settlement import unit_amounts
from returnflow.ports.commerce import CommercePlatform
from returnflow.ports.platform_returns import (
    DutyRefund,
    FinancialOutcome,
    PlatformExchangeLine,
    PlatformReturn,
    PlatformReturnLine,
    ProcessResult,
    Quantity,
    ShopifyReturnStatus,
)
from returnflow.testing.fakes import FakePort

__all__ = ["FakePlatformReturns"]

_LIVE = (ShopifyReturnStatus.REQUESTED, ShopifyReturnStatus.OPEN, ShopifyReturnStatus.CLOSED)


@attrs.define
class _Line:
    id: str
    order_line_id: str
    quantity: int
    reason: str
    restocking_fee: Money | None
    fee_shares: tuple[Money, ...] = ()
    """The restocking fee allocated over the line's units (it follows the units)."""
    units: tuple[int, ...] = ()
    """The order line's units (0-based) the line takes, processed in this order (the last
    ones are those removed): those the call named (:attr:`PlatformReturnLine.units`), else
    the platform's pick, the most recently shipped units no live return holds first, then
    by index."""
    processed: int = 0
    removed: int = 0
    disposed: int = 0

    @property
    def left(self) -> int:
        return self.quantity - self.processed - self.removed

    def fee_of(self, start: int, units: int, currency: str) -> Money:
        """The fee shares of ``units`` units from unit ``start`` (processed in order)."""
        return Money.sum(self.fee_shares[start : start + units], currency)


@attrs.define
class _ExchangeLine:
    id: str
    line: PlatformExchangeLine
    processed: int = 0
    removed: int = 0

    @property
    def left(self) -> int:
        return self.line.quantity - self.processed - self.removed


@attrs.define
class _Return:
    id: str
    shop: str
    order: OrderSnapshot
    status: ShopifyReturnStatus
    lines: list[_Line]
    exchange: list[_ExchangeLine]
    shipping_fee: Money | None
    refunded: Money
    refund_ids: list[str] = attrs.field(factory=list)
    dispositions: list[tuple[str, int, Disposition]] = attrs.field(factory=list)
    disposed_at: list[tuple[str, int, str]] = attrs.field(factory=list)
    """``(line id, quantity, location id)`` of units disposed at a named location."""
    paid: Money | None = None
    """What the customer paid of the balance the return leaves owed."""
    balance_refunded: Money | None = None
    """What was given back of ``paid``."""
    fulfillments: dict[str, bool] = attrs.field(factory=dict)
    """The exchange fulfillments created, each with whether it is on hold."""

    def paid_net(self) -> Money:
        """What the customer paid of the balance, less what was given back of it."""
        zero = Money.zero(self.order.currency)
        return (self.paid or zero) - (self.balance_refunded or zero)

    def owed(self) -> Money:
        """What the customer still owes: the platform's own figure for the return, less what
        is paid of it. The figure is the whole return's while it is open or requested; a
        closed one's counts only what it processed (exchange items never processed are
        not fulfilled, nor charged); a cancelled or declined one owes nothing."""
        zero = Money.zero(self.order.currency)
        if self.status in (ShopifyReturnStatus.CANCELED, ShopifyReturnStatus.DECLINED):
            return zero
        if self.status is ShopifyReturnStatus.CLOSED:
            figure = _processed_owed(self)
        else:
            figure = _outcome(self, None, (), shipping_fee=True).owed
        left = figure - self.paid_net()
        return left if left > zero else zero

    def view(self) -> PlatformReturn:
        owed = self.owed()
        paid = self.paid_net()
        return PlatformReturn(
            return_id=self.id,
            order_id=self.order.id,
            status=self.status,
            line_ids=tuple((line.order_line_id, line.id) for line in self.lines),
            exchange_line_ids=tuple((x.line.exchange_line_id, x.id) for x in self.exchange),
            processed=tuple((line.id, line.processed) for line in self.lines),
            removed=tuple((line.id, line.removed) for line in self.lines),
            exchange_processed=tuple((x.id, x.processed) for x in self.exchange),
            exchange_removed=tuple((x.id, x.removed) for x in self.exchange if x.removed),
            disposed=tuple((line.id, line.disposed) for line in self.lines if line.disposed),
            exchange_on_hold=bool(self.exchange) and bool(owed),
            balance_owed=owed or None,
            balance_paid=paid or None,
            refunded=self.refunded,
            dispositions=self.kinds(),
        )

    def kinds(self) -> tuple[tuple[str, Disposition, int], ...]:
        """Units disposed of per line and kind, lines in the return's order and kinds in
        the order first given."""
        summed: dict[tuple[str, Disposition], int] = {}
        for line_id, units, kind in self.dispositions:
            summed[(line_id, kind)] = summed.get((line_id, kind), 0) + units
        order = {line.id: index for index, line in enumerate(self.lines)}
        return tuple(
            (line_id, kind, units)
            for (line_id, kind), units in sorted(summed.items(), key=lambda i: order[i[0][0]])
        )


class FakePlatformReturns(FakePort):
    """Platform returns on the orders of ``commerce`` (read with ``get_order``)."""

    port: ClassVar[str] = "platform_returns"
    operations: ClassVar[frozenset[str]] = frozenset(
        {
            "open_return",
            "approve",
            "decline",
            "process",
            "dispose",
            "remove_lines",
            "close",
            "reopen",
            "cancel",
            "pay_balance",
            "refund_balance",
        }
    )

    def __init__(self, commerce: CommercePlatform) -> None:
        super().__init__()
        self._commerce = commerce
        self._returns: dict[tuple[str, str], _Return] = {}
        # What processing gave back of an order's charges: its shipping, each duty by id.
        self._given_back: dict[tuple[str, str, str], Money] = {}

    # -- inspection --------------------------------------------------------------------------

    def dispositions(self, shop: str, return_id: str) -> list[tuple[str, int, Disposition]]:
        """``(line id, units, disposition)`` said of a return's units, in order."""
        with self._lock:
            return list(self._get(shop, return_id, "dispositions").dispositions)

    def refunded(self, shop: str, return_id: str) -> Money:
        """The total refunded for a return's lines through its processing."""
        with self._lock:
            return self._get(shop, return_id, "refunded").refunded

    def units(self, shop: str, return_id: str) -> dict[str, tuple[int, ...]]:
        """The order line units (0-based) each line of a return takes, by order line id."""
        with self._lock:
            record = self._get(shop, return_id, "units")
            return {line.order_line_id: line.units for line in record.lines}

    def fulfillments(self, shop: str, return_id: str) -> dict[str, bool]:
        """The exchange fulfillments a return's processing created, each with whether it is
        on hold (waiting for the balance owed)."""
        with self._lock:
            return dict(self._get(shop, return_id, "fulfillments").fulfillments)

    def given_back(self, shop: str, order_id: str, charge: str) -> Money | None:
        """What processing gave back of an order's ``charge``: ``"shipping"`` or a duty id
        (``None``: nothing)."""
        with self._lock:
            return self._given_back.get((shop, order_id, charge))

    # -- the port ----------------------------------------------------------------------------

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
        order = self._commerce.get_order(shop, order_id)
        args = {
            "shop": shop,
            "order_id": order_id,
            "lines": tuple(lines),
            "exchange_lines": tuple(exchange_lines),
            "return_shipping_fee": return_shipping_fee,
            "requested": requested,
        }

        def effect() -> PlatformReturn:
            refuse = partial(self._refuse, "open_return")
            if not lines:
                raise refuse("a return needs at least one line")
            fees = [line.restocking_fee for line in lines if line.restocking_fee is not None]
            if return_shipping_fee is not None:
                fees.append(return_shipping_fee)
            prices = [line.unit_price for line in exchange_lines]
            for amount in (*fees, *prices):
                if amount.currency != order.currency:
                    raise refuse(f"{amount} is not in the order's currency {order.currency}")
            taken = self._taken(shop, order_id)
            wanted: dict[str, int] = {}
            for line in lines:
                wanted[line.order_line_id] = wanted.get(line.order_line_id, 0) + line.quantity
            for line_id, units in wanted.items():
                ordered = next((line for line in order.lines if line.id == line_id), None)
                if ordered is None:
                    raise refuse(f"order {order_id} has no line {line_id!r}")
                left = ordered.quantity - taken.get(line_id, 0)
                if units < 1 or units > left:
                    raise refuse(f"line {line_id}: {units} unit(s) asked, {left} left")
            quantities = [line.quantity for line in lines] + [x.quantity for x in exchange_lines]
            if any(quantity < 1 for quantity in quantities):
                raise refuse("a quantity below 1")
            held = self._held(shop, order_id)
            picked: list[tuple[int, ...]] = []
            for index, line in enumerate(lines):
                ordered = next(x for x in order.lines if x.id == line.order_line_id)
                holding = held.setdefault(ordered.id, set())
                if line.units:  # the units named, exactly
                    picked.append(_named(order, ordered, line, holding, f"lines[{index}]", refuse))
                else:  # not named (a call recorded before units were): the platform's pick
                    free = returnable_units(order, ordered, holding)
                    free += [
                        u for u in range(ordered.quantity) if u not in free and u not in holding
                    ]
                    picked.append(tuple(free[: line.quantity]))
                holding.update(picked[-1])
            number = self._next_id("return")
            record = _Return(
                id=f"gid://Return/{number}",
                shop=shop,
                order=order,
                status=ShopifyReturnStatus.REQUESTED if requested else ShopifyReturnStatus.OPEN,
                lines=[
                    _Line(
                        f"gid://ReturnLineItem/{self._next_id('line')}",
                        line.order_line_id,
                        line.quantity,
                        line.reason,
                        line.restocking_fee,
                        _fee_shares(order, line, units),
                        units,
                    )
                    for line, units in zip(lines, picked, strict=True)
                ],
                exchange=[
                    _ExchangeLine(f"gid://ExchangeLineItem/{self._next_id('exchange')}", line)
                    for line in exchange_lines
                ],
                shipping_fee=return_shipping_fee,
                refunded=Money.zero(order.currency),
            )
            self._returns[(shop, record.id)] = record
            return record.view()

        return self._invoke("open_return", args, idempotency_key, effect)

    def get_return(self, shop: str, return_id: str) -> PlatformReturn:
        with self._lock:
            return self._get(shop, return_id, "get_return").view()

    def approve(self, shop: str, return_id: str, *, idempotency_key: str) -> PlatformReturn:
        return self._move(
            "approve", shop, return_id, idempotency_key, {ShopifyReturnStatus.REQUESTED}
        )

    def decline(
        self, shop: str, return_id: str, *, reason: str, idempotency_key: str
    ) -> PlatformReturn:
        return self._move(
            "decline",
            shop,
            return_id,
            idempotency_key,
            {ShopifyReturnStatus.REQUESTED},
            extra={"reason": reason},
        )

    def close(self, shop: str, return_id: str, *, idempotency_key: str) -> PlatformReturn:
        return self._move("close", shop, return_id, idempotency_key, {ShopifyReturnStatus.OPEN})

    def reopen(self, shop: str, return_id: str, *, idempotency_key: str) -> PlatformReturn:
        return self._move("reopen", shop, return_id, idempotency_key, {ShopifyReturnStatus.CLOSED})

    def cancel(self, shop: str, return_id: str, *, idempotency_key: str) -> PlatformReturn:
        return self._move(
            "cancel",
            shop,
            return_id,
            idempotency_key,
            {ShopifyReturnStatus.REQUESTED, ShopifyReturnStatus.OPEN},
        )

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
        args = {
            "shop": shop,
            "return_id": return_id,
            "lines": tuple(lines),
            "exchange_lines": tuple(exchange_lines),
            "refund": refund,
            "refund_shipping": refund_shipping,
            "refund_duties": tuple(refund_duties),
        }

        def effect() -> ProcessResult:
            refuse = partial(self._refuse, "process")
            record = self._get(shop, return_id, "process")
            # no line nor item: the order's shipping or duties given back alone, also once
            # every unit is processed (Shopify's returnLineItems default to none)
            alone = not lines and not exchange_lines
            given = bool(refund_shipping) or any(duty.amount for duty in refund_duties)
            if alone and not given:
                raise refuse("nothing to process")
            allowed = (ShopifyReturnStatus.OPEN, ShopifyReturnStatus.CLOSED) if alone else ()
            if record.status is not ShopifyReturnStatus.OPEN and record.status not in allowed:
                raise refuse(f"return {return_id} is {record.status.value}, not OPEN")
            by_id = _checked(record, lines, refuse, "to process")
            exchange_by_id = {x.id: x for x in record.exchange}
            currency = record.order.currency
            duties = [duty.amount for duty in refund_duties]
            for amount in (refund, refund_shipping, *duties):
                if amount is not None and (amount.currency != currency or amount.is_negative):
                    raise refuse(f"a refund of {amount} on an order in {currency}")
            charges = _given_back(record, refund_shipping, refund_duties, self._given_back, refuse)
            counts = _sum(lines)
            exchange_counts = _sum(exchange_lines)
            for line_id, units in exchange_counts.items():
                item = exchange_by_id.get(line_id)
                if item is None:
                    raise refuse(f"return {return_id} has no exchange line {line_id!r}")
                left = item.left
                if units < 1 or units > left:
                    raise refuse(f"exchange line {line_id}: {units} to process, {left} left")
            worth = _worth(record, {**_processed(record), **_plus(record, counts)})
            if record.refunded + refund > worth:
                raise refuse(
                    f"refund {refund} with {record.refunded} refunded before is more than "
                    f"the {worth} the processed lines are worth"
                )
            for line_id, units in counts.items():
                by_id[line_id].processed += units
            fulfillments = []
            held = bool(record.owed())  # a balance not paid: the new items wait for it
            for line_id, units in exchange_counts.items():
                exchange_by_id[line_id].processed += units
                fulfillments.append(f"gid://FulfillmentOrder/{self._next_id('fulfillment')}")
                record.fulfillments[fulfillments[-1]] = held
            total = refund
            for key, amount in charges.items():
                self._given_back[key] = self._given_back.get(key, Money.zero(currency)) + amount
                total = total + amount
            refund_ids: tuple[str, ...] = ()
            if total:
                refund_ids = (f"gid://Refund/{self._next_id('refund')}",)
                record.refund_ids.extend(refund_ids)
            record.refunded = record.refunded + refund
            if all(line.left == 0 for line in record.lines) and all(
                x.left == 0 for x in record.exchange
            ):
                record.status = ShopifyReturnStatus.CLOSED
            return ProcessResult(
                refund_ids, total, tuple(fulfillments), held and bool(fulfillments)
            )

        return self._invoke("process", args, idempotency_key, effect)

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
        args: dict[str, Any] = {
            "shop": shop,
            "return_id": return_id,
            "line_id": line_id,
            "quantity": quantity,
            "disposition": disposition,
        }
        if location_id is not None:  # recorded as a call made before destinations was
            args["location_id"] = location_id

        def effect() -> None:
            refuse = partial(self._refuse, "dispose")
            record = self._get(shop, return_id, "dispose")
            line = next((line for line in record.lines if line.id == line_id), None)
            if line is None:
                raise refuse(f"return {return_id} has no line {line_id!r}")
            left = line.processed - line.disposed
            if quantity < 1 or quantity > left:
                raise refuse(f"line {line_id}: {quantity} to dispose, {left} processed and not")
            line.disposed += quantity
            record.dispositions.append((line_id, quantity, disposition))
            if location_id is not None:
                record.disposed_at.append((line_id, quantity, location_id))

        self._invoke("dispose", args, idempotency_key, effect)

    def remove_lines(
        self,
        shop: str,
        return_id: str,
        lines: Sequence[Quantity],
        *,
        exchange_lines: Sequence[Quantity] = (),
        idempotency_key: str,
    ) -> PlatformReturn:
        args: dict[str, Any] = {"shop": shop, "return_id": return_id, "lines": tuple(lines)}
        if exchange_lines:  # recorded as a call made before exchange items could go
            args["exchange_lines"] = tuple(exchange_lines)

        def effect() -> PlatformReturn:
            refuse = partial(self._refuse, "remove_lines")
            record = self._get(shop, return_id, "remove_lines")
            if record.status not in (ShopifyReturnStatus.REQUESTED, ShopifyReturnStatus.OPEN):
                raise refuse(f"return {return_id} is {record.status.value}")
            if not lines and not exchange_lines:
                raise refuse("nothing to remove")
            by_id = _checked(record, lines, refuse, "to remove") if lines else {}
            items = {x.id: x for x in record.exchange}
            for line_id, units in _sum(exchange_lines).items():
                item = items.get(line_id)
                if item is None:
                    raise refuse(f"return {return_id} has no exchange line {line_id!r}")
                if units < 1 or units > item.left:
                    raise refuse(f"exchange line {line_id}: {units} to remove, {item.left} left")
            for line_id, units in _sum(lines).items():
                by_id[line_id].removed += units
            for line_id, units in _sum(exchange_lines).items():
                items[line_id].removed += units
            return record.view()

        return self._invoke("remove_lines", args, idempotency_key, effect)

    def calculate(
        self,
        shop: str,
        return_id: str,
        lines: Sequence[Quantity] | None = None,
        *,
        exchange_lines: Sequence[Quantity] = (),
        shipping_fee: bool | Money = True,
    ) -> FinancialOutcome:
        with self._lock:
            record = self._get(shop, return_id, "calculate")
            refuse = partial(self._refuse, "calculate")
            if isinstance(shipping_fee, Money):
                carried = record.shipping_fee or Money.zero(record.order.currency)
                if (
                    shipping_fee.currency != carried.currency
                    or shipping_fee.is_negative
                    or shipping_fee > carried
                ):
                    raise refuse(
                        f"a return shipping fee of {shipping_fee} on a return that carries "
                        f"{carried}"
                    )
            if lines is not None:
                _checked(record, lines, refuse, "to calculate")
                unknown = set(_sum(exchange_lines)) - {x.id for x in record.exchange}
                if unknown:
                    raise refuse(f"return {return_id} has no exchange line {sorted(unknown)}")
            return _outcome(record, lines, exchange_lines, shipping_fee=shipping_fee)

    def pay_balance(
        self, shop: str, return_id: str, amount: Money, *, idempotency_key: str
    ) -> PlatformReturn:
        args = {"shop": shop, "return_id": return_id, "amount": amount}

        def effect() -> PlatformReturn:
            refuse = partial(self._refuse, "pay_balance")
            record = self._get(shop, return_id, "pay_balance")
            currency = record.order.currency
            if amount.currency != currency or amount <= Money.zero(currency):
                raise refuse(f"a payment of {amount} on an order in {currency}")
            owed = record.owed()
            if amount > owed:
                raise refuse(f"{amount} paid, {owed} owed")
            record.paid = amount if record.paid is None else record.paid + amount
            if not record.owed():  # paid in full: the new items ship
                record.fulfillments = dict.fromkeys(record.fulfillments, False)
            return record.view()

        return self._invoke("pay_balance", args, idempotency_key, effect)

    def refund_balance(
        self, shop: str, return_id: str, amount: Money, *, idempotency_key: str
    ) -> PlatformReturn:
        args = {"shop": shop, "return_id": return_id, "amount": amount}

        def effect() -> PlatformReturn:
            refuse = partial(self._refuse, "refund_balance")
            record = self._get(shop, return_id, "refund_balance")
            currency = record.order.currency
            if amount.currency != currency or amount <= Money.zero(currency):
                raise refuse(f"a refund of {amount} on an order in {currency}")
            paid = record.paid_net()
            if amount > paid:
                raise refuse(f"{amount} to give back, {paid} paid and not given back")
            before = record.balance_refunded
            record.balance_refunded = amount if before is None else before + amount
            return record.view()

        return self._invoke("refund_balance", args, idempotency_key, effect)

    # -- machinery ---------------------------------------------------------------------------

    def _get(self, shop: str, return_id: str, operation: str) -> _Return:
        record = self._returns.get((shop, return_id))
        if record is None:
            raise self._refuse(operation, f"shop {shop} has no return {return_id!r}")
        return record

    def _taken(self, shop: str, order_id: str) -> dict[str, int]:
        taken: dict[str, int] = {}
        for record in self._returns.values():
            if record.shop != shop or record.order.id != order_id or record.status not in _LIVE:
                continue
            for line in record.lines:
                units = line.quantity - line.removed
                taken[line.order_line_id] = taken.get(line.order_line_id, 0) + units
        return taken

    def _held(self, shop: str, order_id: str) -> dict[str, set[int]]:
        """The units of each order line the live returns of the order take (not removed)."""
        held: dict[str, set[int]] = {}
        for record in self._returns.values():
            if record.shop != shop or record.order.id != order_id or record.status not in _LIVE:
                continue
            for line in record.lines:
                kept = line.units[: line.quantity - line.removed]
                held.setdefault(line.order_line_id, set()).update(kept)
        return held

    def _move(
        self,
        operation: str,
        shop: str,
        return_id: str,
        key: str,
        allowed: set[ShopifyReturnStatus],
        *,
        extra: dict[str, object] | None = None,
    ) -> PlatformReturn:
        target = {
            "approve": ShopifyReturnStatus.OPEN,
            "decline": ShopifyReturnStatus.DECLINED,
            "close": ShopifyReturnStatus.CLOSED,
            "reopen": ShopifyReturnStatus.OPEN,
            "cancel": ShopifyReturnStatus.CANCELED,
        }[operation]

        def effect() -> PlatformReturn:
            record = self._get(shop, return_id, operation)
            if record.status not in allowed:
                raise self._refuse(operation, f"return {return_id} is {record.status.value}")
            if operation == "cancel" and any(line.processed for line in record.lines):
                raise self._refuse(operation, f"return {return_id} has processed units")
            record.status = target
            return record.view()

        args = {"shop": shop, "return_id": return_id, **(extra or {})}
        return self._invoke(operation, args, key, effect)


def _given_back(
    record: _Return,
    shipping: Money | None,
    duties: Sequence[DutyRefund],
    before: dict[tuple[str, str, str], Money],
    refuse: Callable[[str], Exception],
) -> dict[tuple[str, str, str], Money]:
    """The order's charges given back by one processing (``(shop, order, "shipping" or the
    duty id) -> amount``), once each is one the order was charged and no more than is left
    of it; ``refuse`` raises otherwise."""
    order = record.order
    zero = Money.zero(order.currency)
    charged = zero if order.shipping_price is None else order.shipping_price
    if order.shipping_tax is not None and not order.taxes_included:
        charged = charged + order.shipping_tax
    limits = {"shipping": charged}
    limits.update({duty.id: duty.amount for line in order.lines for duty in line.duties})
    asked: dict[tuple[str, str, str], Money] = {}
    wanted = [("shipping", shipping)] if shipping else []
    wanted.extend((duty.duty_id, duty.amount) for duty in duties if duty.amount)
    for charge, amount in wanted:
        if amount is None:
            continue
        if charge not in limits:
            raise refuse(f"order {order.id} has no duty {charge!r}")
        key = (record.shop, order.id, charge)
        asked[key] = asked.get(key, zero) + amount
        left = limits[charge] - before.get(key, zero)
        if asked[key] > left:
            raise refuse(f"{asked[key]} of the order's {charge} asked, {left} left to give back")
    return asked


def _named(
    order: OrderSnapshot,
    ordered: OrderLine,
    line: PlatformReturnLine,
    holding: set[int],
    path: str,
    refuse: Callable[[str], Exception],
) -> tuple[int, ...]:
    """The units ``line`` names, once each is a shipped unit of ``ordered`` that no live
    return holds (``holding``), named once, ``line.quantity`` of them; ``refuse`` raises
    otherwise, naming the field and the value."""
    units = line.units
    if len(units) != line.quantity:
        raise refuse(
            f"{path}.units={list(units)}: {len(units)} unit(s) for a quantity of {line.quantity}"
        )
    shipped = order.shipped_units(ordered)
    for unit in units:
        if type(unit) is not int or not 0 <= unit < ordered.quantity:
            raise refuse(
                f"{path}.units: unit {unit!r} is not one of the {ordered.quantity} of line "
                f"{ordered.id}"
            )
        if unit not in shipped:
            raise refuse(f"{path}.units: unit {unit} of line {ordered.id} was not shipped")
        if unit in holding:
            raise refuse(f"{path}.units: unit {unit} of line {ordered.id} is on another return")
    if len(set(units)) != len(units):
        raise refuse(f"{path}.units={list(units)}: a unit named twice")
    return tuple(units)


def _sum(quantities: Sequence[Quantity]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in quantities:
        counts[item.line_id] = counts.get(item.line_id, 0) + item.quantity
    return counts


def _checked(
    record: _Return,
    lines: Sequence[Quantity],
    refuse: Callable[[str], Exception],
    what: str,
) -> dict[str, _Line]:
    """The return's lines by id, once every line of ``lines`` is one of them and has the
    units asked for left (not processed or removed); ``refuse`` raises otherwise."""
    by_id = {line.id: line for line in record.lines}
    for line_id, units in _sum(lines).items():
        line = by_id.get(line_id)
        if line is None:
            raise refuse(f"return {record.id} has no line {line_id!r}")
        if units < 1 or units > line.left:
            raise refuse(f"line {line_id}: {units} unit(s) {what}, {line.left} left")
    return by_id


def _processed(record: _Return) -> dict[str, int]:
    return {line.id: line.processed for line in record.lines}


def _plus(record: _Return, counts: dict[str, int]) -> dict[str, int]:
    return {line.id: line.processed + counts.get(line.id, 0) for line in record.lines}


def _outcome(
    record: _Return,
    lines: Sequence[Quantity] | None,
    exchange_lines: Sequence[Quantity],
    *,
    shipping_fee: bool | Money,
) -> FinancialOutcome:
    """The platform's money for the whole return as it stands (``lines`` ``None``: every unit
    and exchange item not removed, the fees) or for one processing call (the next units
    of ``lines``, the items of ``exchange_lines``, the shipping fee if ``shipping_fee``);
    ``shipping_fee`` as an amount: that much of the return shipping fee (a call's units'
    shares, or what the whole return's settlements charged of it)."""
    currency = record.order.currency
    if lines is None:
        start = {line.id: 0 for line in record.lines}
        counts = {line.id: line.quantity - line.removed for line in record.lines}
        items = {x.id: x.line.quantity - x.removed for x in record.exchange}
        shipping_fee = shipping_fee if isinstance(shipping_fee, Money) else True
    else:
        start = _processed(record)
        counts = _sum(lines)
        items = _sum(exchange_lines)
    end = {line_id: units + counts.get(line_id, 0) for line_id, units in start.items()}
    returned = _worth(record, end) - _worth(record, start)
    fees = Money.sum(
        (line.fee_of(start[line.id], counts.get(line.id, 0), currency) for line in record.lines),
        currency,
    )
    if isinstance(shipping_fee, Money):
        fees = fees + shipping_fee
    elif record.shipping_fee is not None and shipping_fee:
        fees = fees + record.shipping_fee
    begun = {x.id: 0 if lines is None else x.processed for x in record.exchange}
    exchanged = Money.sum(
        (x.line.worth(begun[x.id], items.get(x.id, 0)) for x in record.exchange), currency
    )
    balance = returned - fees - exchanged
    zero = Money.zero(currency)
    return FinancialOutcome(
        returned=returned,
        fees=fees,
        exchanged=exchanged,
        refund=balance if balance > zero else zero,
        owed=zero - balance if balance < zero else zero,
    )


def _processed_owed(record: _Return) -> Money:
    """What a closed return leaves the customer owing for what it processed: the exchange
    items processed, the fees of the units processed and the return shipping fee once any
    unit was, against what those units were paid."""
    currency = record.order.currency
    processed = _processed(record)
    returned = _worth(record, processed)
    fees = Money.sum((line.fee_of(0, line.processed, currency) for line in record.lines), currency)
    if record.shipping_fee is not None and any(processed.values()):
        fees = fees + record.shipping_fee
    exchanged = Money.sum((x.line.worth(0, x.processed) for x in record.exchange), currency)
    balance = returned - fees - exchanged
    zero = Money.zero(currency)
    return zero - balance if balance < zero else zero


def _fee_shares(
    order: OrderSnapshot, line: PlatformReturnLine, units: tuple[int, ...]
) -> tuple[Money, ...]:
    """``line``'s restocking fee allocated over its ``units`` to the cent, in proportion to
    what they were paid (evenly when none was paid)."""
    if line.restocking_fee is None or line.quantity < 1:
        return ()
    amounts = unit_amounts(order).get(line.order_line_id, ())
    paid = [amounts[unit] for unit in units if unit < len(amounts)]
    weights = [amount.minor_units for amount in paid]
    if len(weights) != line.quantity or not any(weights):
        weights = [1] * line.quantity
    return line.restocking_fee.allocate(weights)


def _worth(record: _Return, units: dict[str, int]) -> Money:
    """What the first ``units`` (per return line id) of the return's lines were paid: the
    order's unit amounts of the units each line takes, in the order it processes them."""
    paid = unit_amounts(record.order)
    return Money.sum(
        (
            paid[line.order_line_id][unit]
            for line in record.lines
            for unit in line.units[: units.get(line.id, 0)]
        ),
        record.order.currency,
    )
