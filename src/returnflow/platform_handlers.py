"""The dispatcher's handlers of native mode's effects: each calls the platform's own return
objects (:class:`~returnflow.ports.platform_returns.PlatformReturns`) with the effect's
idempotency key (:data:`returnflow.dispatch.HANDLERS` lists them). A status change reads the
platform return first and asks nothing when it is there already or was moved on by a person
in the platform's admin: returnflow follows such a change (its webhook), never fights it.

Processing is reconciled first when the effect asks for it: the platform's own figures for
the whole return (Shopify's ``returnCalculate`` / ``suggestedFinancialOutcome``: the refund
and what the customer owes) are compared with returnflow's settlement to the cent; a
difference refuses the processing for good (a ``PortError`` naming both figures: the return
goes to a person, the processing is kept to deliver again when the person closes the return,
and then returnflow's figure goes out) unless ``policy.platform_money`` names the side that
wins.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from returnflow.domain.model import Exchange, ReturnRecord
from returnflow.domain.money import Money
from returnflow.domain.policy import MoneyAuthority, PlatformMode, ReturnPolicy
from returnflow.errors import ConfigurationError, PortError
from returnflow.lifecycle import effects as fx
from returnflow.ports.platform_returns import (
    FinancialOutcome,
    PlatformReturns,
    ProcessResult,
    Quantity,
)

if TYPE_CHECKING:
    from returnflow.dispatch import Dispatcher

__all__ = [
    "HANDLERS",
    "PlatformReturns",
    "Processed",
    "approve_platform_return",
    "cancel_platform_return",
    "close_platform_return",
    "decline_platform_return",
    "dispose_platform_units",
    "open_platform_return",
    "pay_platform_balance",
    "process_platform_return",
    "refund_platform_balance",
    "remove_platform_lines",
    "reopen_platform_return",
    "required",
]

_T = TypeVar("_T")


def _required(value: _T | None, field: str, effect: fx.Effect) -> _T:
    if value is None:
        raise PortError(effect.port, effect.kind, f"the return has no {field} yet", retryable=True)
    return value


def required(
    policy: ReturnPolicy | None, platform_returns: PlatformReturns | None
) -> PlatformReturns | None:
    """``platform_returns``, the dispatcher's port for native mode's effects;
    :class:`~returnflow.errors.ConfigurationError` naming ``platform_returns`` when
    ``policy.platform_mode`` is ``native`` and there is none."""
    if platform_returns is None and (policy or ReturnPolicy()).platform_mode is (
        PlatformMode.NATIVE
    ):
        raise ConfigurationError(
            "native mode needs a PlatformReturns port", field="platform_returns", value=None
        )
    return platform_returns


def _port(d: Dispatcher, effect: fx.Effect) -> PlatformReturns:
    if d.platform_returns is None:
        raise PortError(effect.port, effect.kind, "no PlatformReturns port", retryable=False)
    return d.platform_returns


@attrs.frozen
class Processed:
    """What processing a platform return did: the port's answer, the refund actually asked
    for (the lines', the shipping and the duties given back), and the platform's figure
    and returnflow's when they were compared (they differ only when
    ``policy.platform_money`` named the side that wins)."""

    result: ProcessResult
    refunded: Money
    platform: Money | None = None
    returnflow: Money | None = None
    platform_net: Money | None = None
    """One call of several: the platform's own figure for the call's units and items, a
    refund less what it says is owed (noted, so that the next call compares what both sides
    moved so far)."""


def _platform(
    d: Dispatcher, effect: fx.Effect, record: ReturnRecord
) -> tuple[PlatformReturns, str]:
    """The port and the platform return's id (a retryable error until it is known)."""
    return _port(d, effect), _required(record.refs.platform_return_id, "platform_return_id", effect)


def _line_ids(record: ReturnRecord, effect: fx.Effect, lines: Any) -> list[Quantity]:
    ids = dict(record.refs.platform_line_ids)
    return [
        Quantity(_required(ids.get(line.order_line_id), "platform line id", effect), line.quantity)
        for line in lines
    ]


def open_platform_return(
    d: Dispatcher, effect: fx.OpenPlatformReturn, record: ReturnRecord
) -> object:
    return _port(d, effect).open_return(
        effect.shop,
        effect.order_id,
        effect.lines,
        exchange_lines=effect.exchange_lines,
        return_shipping_fee=effect.return_shipping_fee,
        requested=effect.requested,
        idempotency_key=effect.key,
    )


def approve_platform_return(
    d: Dispatcher, effect: fx.ApprovePlatformReturn, record: ReturnRecord
) -> object:
    port, return_id = _platform(d, effect, record)
    now = port.get_return(effect.shop, return_id)
    if now.status.value != "REQUESTED":  # approved there already, or moved on by a person
        return now
    return port.approve(effect.shop, return_id, idempotency_key=effect.key)


def decline_platform_return(
    d: Dispatcher, effect: fx.DeclinePlatformReturn, record: ReturnRecord
) -> object:
    port, return_id = _platform(d, effect, record)
    now = port.get_return(effect.shop, return_id)
    if now.status.value != "REQUESTED":  # declined (or cancelled) there already
        return now
    return port.decline(effect.shop, return_id, reason=effect.reason, idempotency_key=effect.key)


def process_platform_return(
    d: Dispatcher, effect: fx.ProcessPlatformReturn, record: ReturnRecord
) -> object:
    """Reconcile (when ``effect.expected`` is set: the platform's own refund, and for the
    whole return what it says the customer owes, against returnflow's, to the cent), then
    process. One of several calls (``expected_owed`` unset) is compared for its own units,
    exchange items and, if it bears it, the return shipping fee."""
    port, return_id = _platform(d, effect, record)
    refund, theirs, net = effect.refund, None, None
    reviewed = any(  # a person looked at the difference and closed the return: it goes out
        entry.event == "payouts_reopened" and effect.key in str(entry.payload.get("effects"))
        for entry in record.history
    )
    exchange_ids = {
        line.id: line.platform_item_id for line in record.exchange_lines if line.platform_item_id
    }
    lines = _line_ids(record, effect, effect.lines)
    exchange_lines = [
        Quantity(
            _required(exchange_ids.get(line.id), "platform exchange line", effect),
            line.quantity,
        )
        for line in record.exchange_lines
        if line.id in effect.exchange_line_ids
    ]
    cancelled = {x.id for x in record.exchange_lines if x.status == "cancelled"}
    if effect.expected_owed is not None and cancelled:
        # a cancelled exchange's items still on the platform return (their removal was
        # planned after this processing, the return opened late): out first
        items = _items_left(port, effect, record, return_id, cancelled)
        if items:
            _remove_items(port, effect, return_id, items, f"{effect.key}/cancelled")
    if effect.expected is not None and not reviewed:
        try:
            theirs, refund, net = _reconciled(
                d, effect, record, port, return_id, lines, exchange_lines
            )
        except PortError:
            if not _processed_already(port, effect, record, return_id):
                raise
            # An earlier attempt processed these units and its answer was lost (a crash, a
            # timeout): its figures were compared before it; the platform's figure now leaves
            # out the units it processed. The call under the same key gives its answer.
            theirs, refund, net = None, effect.refund, None
    answer = port.process(
        effect.shop,
        return_id,
        lines,
        exchange_lines=exchange_lines,
        refund=refund,
        refund_shipping=effect.refund_shipping,
        refund_duties=effect.refund_duties,
        idempotency_key=effect.key,
    )
    extras = [duty.amount for duty in effect.refund_duties]
    if effect.refund_shipping is not None:
        extras.append(effect.refund_shipping)
    total = Money.sum((refund, *extras), refund.currency)
    return Processed(answer, total, theirs, effect.expected, net)


def _reconciled(
    d: Dispatcher,
    effect: fx.ProcessPlatformReturn,
    record: ReturnRecord,
    port: PlatformReturns,
    return_id: str,
    lines: list[Quantity],
    exchange_lines: list[Quantity],
) -> tuple[Money, Money, Money | None]:
    """The platform's refund for this processing, the refund to ask for and, for one call
    of several, the platform's own net figure for it; a non-retryable PortError when the
    figures differ and a person decides (``platform_money="review"``).

    The exchange's items may be processed ahead of the units paying for them (an instant
    exchange ships its items first): the platform asks for them in that call and would
    refund the exchanged units in full in a later one, so what it asked ahead is taken from
    what the exchanged units of the calls after it are worth."""
    assert effect.expected is not None
    refund = effect.refund
    net = None
    if effect.expected_owed is None:  # one call of several: its own units
        outcome = port.calculate(
            effect.shop,
            return_id,
            lines,
            exchange_lines=exchange_lines,
            shipping_fee=effect.shipping_fee,
        )
        net = outcome.refund - outcome.owed
        zero = Money.zero(net.currency)
        theirs = outcome.refund
        # what the platform asked ahead, less what a captured authorization paid of it: the
        # exchanged units no longer pay that part of the items
        paid_apart = effect.owed_paid_apart or zero
        ahead = min(_owed_ahead(record, net.currency) + paid_apart, zero)
        exchanged = {x.order_line_id for x in record.lines if isinstance(x.outcome, Exchange)}
        ids = dict(record.refs.platform_line_ids)
        paying = [q for q in lines if q.line_id in {ids.get(k) for k in exchanged}]
        if exchange_lines and lines and not paying:
            # the items go out ahead of the units paying for them, with units that never
            # pay for them (an instant exchange released by the fact that pays the others):
            # the platform nets them against those units; returnflow pays the units in full,
            # and what the items ask is ahead of the exchanged units' later call
            alone = port.calculate(effect.shop, return_id, lines, shipping_fee=effect.shipping_fee)
            theirs = alone.refund
            net = net - (alone.refund - alone.owed)
        if ahead and paying:  # only the exchanged units pay for the items shipped ahead
            worth = port.calculate(effect.shop, return_id, paying, shipping_fee=False)
            theirs = max(net - min(-ahead, max(worth.refund - worth.owed, zero)), zero)
    else:
        outcome = port.calculate(effect.shop, return_id)
        theirs = outcome.refund
    authority = d.policy_of(record).platform_money  # the return's own policy version
    review = authority is MoneyAuthority.REVIEW
    owed = outcome.owed
    if effect.owed_paid_apart and effect.expected_owed is not None:
        theirs, owed = _items_paid_apart(outcome, effect.owed_paid_apart)
    for what, platform, ours in (
        ("refund", theirs, effect.expected),
        ("owed", owed, effect.expected_owed),
    ):
        if review and ours is not None and platform != ours:
            raise PortError(
                effect.port,
                effect.kind,
                f"the platform's {what} {platform} differs from returnflow's settlement "
                f"{ours}: nothing was processed",
                retryable=False,
            )
    if theirs != effect.expected and authority is MoneyAuthority.PLATFORM:
        refund = max(refund + (theirs - effect.expected), Money.zero(refund.currency))
    return theirs, refund, net


def _items_paid_apart(outcome: FinancialOutcome, paid: Money) -> tuple[Money, Money]:
    """The platform's refund and owed for the whole return once the exchange items are paid
    apart, up to ``paid`` (an instant exchange's authorization captured when QC failed).

    The platform nets the items against every unit it refunds (Shopify's
    ``suggestedFinancialOutcome`` is one refund or one balance), also units of other lines
    that were never to pay for them; the capture pays for them instead, so their worth (at
    most what was captured) goes back into the platform's net figure, whether that figure is
    a balance owed or a refund."""
    zero = Money.zero(paid.currency)
    net = outcome.refund - outcome.owed + min(paid, outcome.exchanged)  # items left on it
    return (net, zero) if net >= zero else (zero, zero - net)


def _owed_ahead(record: ReturnRecord, currency: str) -> Money:
    """What the platform asked for items processed ahead of the units paying for them
    (negative; zero when none), that the next calls' units pay first: replayed over the
    platform's net figure of each call with exchange items compared so far (a fee owed in
    a call without them is charged apart, and paid on the platform return)."""
    ahead = Money.zero(currency)
    for entry in record.history:
        if entry.event == "platform_return_processed" and "platform_net" in entry.payload:
            ahead = min(
                ahead + _amount(entry.payload["platform_net"], currency), Money.zero(currency)
            )
    return ahead


def _amount(text: object, currency: str) -> Money:
    """An amount as a note shows it (``"12.50 EUR"``)."""
    return Money(str(text).split(" ")[0], currency)


def _processed_already(
    port: PlatformReturns, effect: fx.ProcessPlatformReturn, record: ReturnRecord, return_id: str
) -> bool:
    """Whether the platform return shows every unit of this processing processed beyond
    what returnflow saw confirmed: an earlier attempt of this call acted."""
    if not effect.lines:
        return False
    done = dict(port.get_return(effect.shop, return_id).processed)
    ids = dict(record.refs.platform_line_ids)
    confirmed = {units.order_line_id: units.confirmed for units in record.platform_units}
    return all(
        done.get(ids.get(line.order_line_id, ""), 0)
        >= confirmed.get(line.order_line_id, 0) + line.quantity
        for line in effect.lines
    )


def pay_platform_balance(
    d: Dispatcher, effect: fx.PayPlatformBalance, record: ReturnRecord
) -> object:
    """Pay what the platform says is owed, at most ``effect.amount`` (nothing when it says
    nothing is: its figure was checked before, or a person recorded the payment there)."""
    port, return_id = _platform(d, effect, record)
    now = port.get_return(effect.shop, return_id)
    if now.balance_owed is None or not now.balance_owed:
        return now
    amount = min(effect.amount, now.balance_owed)
    return port.pay_balance(effect.shop, return_id, amount, idempotency_key=effect.key)


def refund_platform_balance(
    d: Dispatcher, effect: fx.RefundPlatformBalance, record: ReturnRecord
) -> object:
    """Give back ``effect.amount`` of the balance paid on the platform return; nothing when
    the platform says nothing is paid (an earlier attempt gave it all back and its answer
    was lost, or a person refunded it there): the call under the same key answers a
    partial one."""
    port = _port(d, effect)  # on the platform return it was paid on
    return_id = effect.paid_on or _required(
        record.refs.platform_return_id, "platform_return_id", effect
    )
    now = port.get_return(effect.shop, return_id)
    if now.balance_paid is None or not now.balance_paid:
        return now
    return port.refund_balance(effect.shop, return_id, effect.amount, idempotency_key=effect.key)


def dispose_platform_units(
    d: Dispatcher, effect: fx.DisposePlatformUnits, record: ReturnRecord
) -> object:
    port, return_id = _platform(d, effect, record)
    ids = dict(record.refs.platform_line_ids)
    for index, item in enumerate(effect.disposals):
        line_id = _required(ids.get(item.order_line_id), "platform line id", effect)
        # where the units came back to: only a named location is passed (a host written
        # before destinations restocks where it always did)
        wheres = {
            line.location_id for line in record.lines if line.order_line_id == item.order_line_id
        }
        where = {"location_id": wheres.pop()} if len(wheres) == 1 and None not in wheres else {}
        port.dispose(
            effect.shop,
            return_id,
            line_id,
            item.quantity,
            item.disposition,
            idempotency_key=f"{effect.key}/{index}",
            **where,
        )
    return None


def remove_platform_lines(
    d: Dispatcher, effect: fx.RemovePlatformLines, record: ReturnRecord
) -> object:
    """Take the effect's units out under its key, then the exchange items of its cancelled
    lines still there under a key naming them: what is left of the items is read from the
    platform, so a retry after a call that acted (its answer lost) finds none and makes no
    call, and a different removal never reuses a key."""
    port, return_id = _platform(d, effect, record)
    lines = _line_ids(record, effect, effect.lines)
    answer: object = None
    if lines or not effect.exchange_line_ids:  # the call as made before items could go
        answer = port.remove_lines(effect.shop, return_id, lines, idempotency_key=effect.key)
    if effect.exchange_line_ids:
        items = _items_left(port, effect, record, return_id, set(effect.exchange_line_ids))
        if items:  # else taken out before a processing, or by an attempt that acted
            answer = _remove_items(port, effect, return_id, items, effect.key)
    return answer if answer is not None else port.get_return(effect.shop, return_id)


def _remove_items(
    port: PlatformReturns, effect: fx.Effect, return_id: str, items: list[Quantity], base: str
) -> object:
    """Take exchange items out, under ``base`` and the items and units removed: one key
    per distinct removal, the same for a retry of it."""
    named = ",".join(f"{item.line_id}x{item.quantity}" for item in items)
    return port.remove_lines(
        effect.shop, return_id, [], exchange_lines=items, idempotency_key=f"{base}/{named}"
    )


def _items_left(
    port: PlatformReturns,
    effect: fx.Effect,
    record: ReturnRecord,
    return_id: str,
    ids: set[str],
) -> list[Quantity]:
    """The items of exchange lines ``ids`` still on the platform return, neither processed
    nor removed."""
    now = port.get_return(effect.shop, return_id)
    done, gone = dict(now.exchange_processed), dict(now.exchange_removed)
    items = []
    for line in record.exchange_lines:
        item = line.platform_item_id
        if line.id in ids and item is not None:
            left = line.quantity - done.get(item, 0) - gone.get(item, 0)
            items.extend([Quantity(item, left)] if left > 0 else [])
    return items


def close_platform_return(
    d: Dispatcher, effect: fx.ClosePlatformReturn, record: ReturnRecord
) -> object:
    port, return_id = _platform(d, effect, record)
    now = port.get_return(effect.shop, return_id)
    if now.status.value != "OPEN":  # closed by its last processing, or by a person there
        return now
    return port.close(effect.shop, return_id, idempotency_key=effect.key)


def reopen_platform_return(
    d: Dispatcher, effect: fx.ReopenPlatformReturn, record: ReturnRecord
) -> object:
    port, return_id = _platform(d, effect, record)
    now = port.get_return(effect.shop, return_id)
    if now.status.value != "CLOSED":
        return now
    return port.reopen(effect.shop, return_id, idempotency_key=effect.key)


def cancel_platform_return(
    d: Dispatcher, effect: fx.CancelPlatformReturn, record: ReturnRecord
) -> object:
    port, return_id = _platform(d, effect, record)
    now = port.get_return(effect.shop, return_id)
    if now.status.value not in ("REQUESTED", "OPEN"):  # declined or cancelled there already
        return now
    return port.cancel(effect.shop, return_id, idempotency_key=effect.key)


HANDLERS: Mapping[type[fx.Effect], Callable[[Dispatcher, Any, ReturnRecord], object]] = {
    fx.OpenPlatformReturn: open_platform_return,
    fx.ApprovePlatformReturn: approve_platform_return,
    fx.DeclinePlatformReturn: decline_platform_return,
    fx.ProcessPlatformReturn: process_platform_return,
    fx.DisposePlatformUnits: dispose_platform_units,
    fx.PayPlatformBalance: pay_platform_balance,
    fx.RefundPlatformBalance: refund_platform_balance,
    fx.RemovePlatformLines: remove_platform_lines,
    fx.ClosePlatformReturn: close_platform_return,
    fx.ReopenPlatformReturn: reopen_platform_return,
    fx.CancelPlatformReturn: cancel_platform_return,
}
"""One handler per native-mode effect type (:data:`returnflow.dispatch.HANDLERS` holds them)."""
