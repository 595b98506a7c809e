"""Native mode: units of a processing that a person processed in the platform's admin first
(Shopify's ``returnProcess`` from the admin, which also refunds them). returnflow follows
the admin: it processes only the units still unprocessed there (compared, when the
processing asks, with the platform's figure for those units), takes the person's units as
processed with the money the platform moved for them, and never refunds them again. A
processing with nothing left to process still gives back the order's shipping and duties
its settlement gives back, in a processing of no lines (Shopify's ``returnProcess`` takes
``refundShipping`` and ``refundDuties`` with no ``returnLineItems``) under a key of its own;
with nothing of those either it is done without a call.

A person's refund that came before returnflow asked for any processing (its
``refunds/create`` webhook, :mod:`returnflow.decisions.platform_facts`) is kept on the
return; the processing follows the units the person processed, and when the platform
shows none processed there the refund explains nothing the settlement knows: the first
processing asks a person first (:func:`unexplained`).

The decision is written on the return before the call (the ``platform_processed_there``
note, through :class:`~returnflow._delivery.WriteFirst`), so that a retry sends the same
call under the same key. A retry of a call sent whole (no note) is not mistaken for a
person: only when the platform shows fewer units processed than that call would have left
did no attempt of it act; else it is sent under its key (the platform answers a call that
acted with its answer) and only the platform's refusal says a person processed them all.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

import attrs

from returnflow._delivery import WriteFirst
from returnflow._platform_calls import amount_of, line_ids
from returnflow.decisions.change import Change
from returnflow.decisions.platform_facts import REFUND_RECORDED
from returnflow.domain.model import ReturnRecord
from returnflow.domain.money import Money
from returnflow.domain.policy import MoneyAuthority
from returnflow.errors import PortError
from returnflow.lifecycle import effects as fx
from returnflow.ports.commerce import LineQuantity
from returnflow.ports.platform_returns import (
    PlatformReturn,
    PlatformReturns,
    ProcessResult,
    Quantity,
)

if TYPE_CHECKING:
    from returnflow.dispatch import Dispatcher

__all__ = ["THERE", "There", "acted", "decided", "find", "named", "reduced", "send", "unexplained"]

THERE = "platform_processed_there"
"""The history note of units a processing found processed in the platform's admin (payload:
``key``; ``lines``, the person's units, and ``sent``, those left to process, each
``order line x units``; ``refund``, what returnflow refunds for the units left; ``platform``,
what the platform refunded for the person's units (``"unknown"``: the platform does not say);
``returnflow``, returnflow's figure for them)."""


@attrs.frozen
class There:
    """What a processing decided once a person processed some of its units: the person's
    units, the units left to send, the refund for those, and the platform's money for the
    person's units (``None``: not reported) against returnflow's figure for them."""

    lines: tuple[LineQuantity, ...]
    left: tuple[LineQuantity, ...]
    refund: Money
    platform: Money | None
    returnflow: Money


def named(lines: tuple[LineQuantity, ...]) -> str:
    return ", ".join(f"{line.order_line_id}x{line.quantity}" for line in lines)


def _lines(text: object) -> tuple[LineQuantity, ...]:
    parts = [part.rsplit("x", 1) for part in str(text).split(", ") if part]
    return tuple(LineQuantity(line, int(units)) for line, units in parts)


def decided(record: ReturnRecord, effect: fx.ProcessPlatformReturn) -> There | None:
    """What the first attempt of ``effect`` decided and noted (``None``: nothing noted)."""
    currency = effect.refund.currency
    for entry in record.history:
        if entry.event == THERE and entry.payload.get("key") == effect.key:
            platform = entry.payload.get("platform")
            return There(
                _lines(entry.payload["lines"]),
                _lines(entry.payload["sent"]),
                amount_of(entry.payload["refund"], currency),
                None if platform in (None, "unknown") else amount_of(platform, currency),
                amount_of(entry.payload["returnflow"], currency),
            )
    return None


def find(
    d: Dispatcher,
    port: PlatformReturns,
    effect: fx.ProcessPlatformReturn,
    record: ReturnRecord,
    return_id: str,
    *,
    reviewed: bool,
    refused: bool = False,
) -> bool:
    """Decide for the units of ``effect`` a person processed on platform return ``return_id``
    (raises :class:`~returnflow._delivery.WriteFirst` with the decision to note); ``False``
    when none is a person's, or when the platform shows every unit of the call processed:
    an attempt of it may have acted, its answer lost (a timeout, a crash before its attempt
    was recorded), so it is sent under its key, and the platform answers as it did.
    ``refused``: the platform refused that call instead, so no attempt of it acted and a
    person processed the units.

    When the platform's refund for the person's units differs from returnflow's figure and
    ``policy.platform_money`` is ``review``, a non-retryable PortError naming both sends
    the return to a person first (``reviewed``: a person closed it since, and the
    platform's stands). Under ``platform`` or ``returnflow`` the platform's stands: the
    money went out by a person's decision and returnflow neither takes it back nor adds to
    it; the difference is noted."""
    now = port.get_return(effect.shop, return_id)
    ids = dict(record.refs.platform_line_ids)
    done = dict(now.processed)
    confirmed = {units.order_line_id: units.confirmed for units in record.platform_units}
    excess = {
        line.order_line_id: done.get(ids.get(line.order_line_id, ""), 0)
        - confirmed.get(line.order_line_id, 0)
        for line in effect.lines
    }
    if all(units <= 0 for units in excess.values()):
        return False
    whole = all(excess[line.order_line_id] >= line.quantity for line in effect.lines)
    if whole and not refused:  # an attempt of this call may have acted (attempts are
        return False  # recorded after the call: a crash loses them): sent again under its key
    theirs = tuple(
        LineQuantity(line.order_line_id, min(line.quantity, excess[line.order_line_id]))
        for line in effect.lines
        if excess[line.order_line_id] > 0
    )
    person = {units.order_line_id: units.quantity for units in theirs}
    left = tuple(
        LineQuantity(line.order_line_id, line.quantity - person.get(line.order_line_id, 0))
        for line in effect.lines
        if line.quantity > person.get(line.order_line_id, 0)
    )
    ours = _share(record, effect, person, effect.refund)
    platform = _refunded_there(d, effect, record, now)
    if (
        platform is not None
        and platform != ours
        and not reviewed
        and d.policy_of(record).platform_money is MoneyAuthority.REVIEW
    ):
        raise PortError(
            effect.port,
            effect.kind,
            f"{named(theirs)} processed in the platform's admin with a refund of {platform}; "
            f"returnflow's figure for them is {ours}: nothing was processed",
            retryable=False,
        )
    refund = max(effect.refund - ours, Money.zero(ours.currency))
    raise WriteFirst(partial(_note, effect.key, There(theirs, left, refund, platform, ours)))


def send(
    port: PlatformReturns,
    effect: fx.ProcessPlatformReturn,
    record: ReturnRecord,
    return_id: str,
    there: There,
    exchange_lines: list[Quantity],
    refund: Money,
) -> ProcessResult | None:
    """Process what a person left of ``effect``'s units with ``refund`` (the one decided
    for them, or the platform's figure when it wins), and the order's shipping and duties
    the effect gives back, under the effect's key and the units sent (a retry is the same
    call; exchange items alone under the effect's key and ``/``); with no unit left nor
    exchange item, the shipping and duties alone, under the effect's key and ``charges``.
    ``None``: nothing left to send at all, no call made."""
    charges = effect.refund_shipping is not None or any(d.amount for d in effect.refund_duties)
    alone = not there.left and not exchange_lines
    if alone and not charges:
        return None
    return port.process(
        effect.shop,
        return_id,
        line_ids(record, effect, there.left),
        exchange_lines=exchange_lines,
        refund=refund,
        refund_shipping=effect.refund_shipping,
        refund_duties=effect.refund_duties,
        idempotency_key=f"{effect.key}/{'charges' if alone else named(there.left)}",
    )


def reduced(
    record: ReturnRecord, effect: fx.ProcessPlatformReturn, there: There
) -> fx.ProcessPlatformReturn | None:
    """``effect`` for the units a person left of it (``None``: none left), as its
    comparison with the platform's figure sees it: one call of several (the platform's
    figure for the units and items sent, Shopify's ``returnCalculate`` of them, not for
    the whole return, part of which the person processed and refunded), under the key of
    the call sent, with the refund decided for them, returnflow's figure and the return
    shipping fee less the person's units' parts (each spread as the refund is,
    :func:`_share`)."""
    if not there.left:
        return None
    person = {units.order_line_id: units.quantity for units in there.lines}
    expected = effect.expected
    if expected is not None:
        expected = expected - _share(record, effect, person, expected)
    fee = effect.shipping_fee_share
    whole = effect.expected_owed is not None
    if fee is not None:
        fee = fee - _share(record, effect, person, fee)
    return attrs.evolve(
        effect,
        key=f"{effect.key}/{named(there.left)}",
        lines=there.left,
        refund=there.refund,
        expected=expected,
        expected_owed=None,
        shipping_fee=effect.shipping_fee or (whole and fee is None),
        shipping_fee_share=fee,
        owed_paid_apart=None if whole else effect.owed_paid_apart,
    )


def acted(
    port: PlatformReturns,
    effect: fx.ProcessPlatformReturn,
    record: ReturnRecord,
    return_id: str,
    there: There,
) -> bool:
    """Whether the platform shows the units a person left of ``effect`` processed too: the
    call sending them acted and its answer was lost (the platform's figure for them is
    gone; the call under its key answers as it did)."""
    now = port.get_return(effect.shop, return_id)
    ids = dict(record.refs.platform_line_ids)
    done = dict(now.processed)
    confirmed = {units.order_line_id: units.confirmed for units in record.platform_units}
    person = {units.order_line_id: units.quantity for units in there.lines}
    return all(
        done.get(ids.get(line.order_line_id, ""), 0)
        >= confirmed.get(line.order_line_id, 0) + person.get(line.order_line_id, 0) + line.quantity
        for line in there.left
    )


def unexplained(
    port: PlatformReturns,
    effect: fx.ProcessPlatformReturn,
    record: ReturnRecord,
    return_id: str,
    *,
    reviewed: bool,
) -> None:
    """Refuse the first processing (a non-retryable PortError naming the refunds) when
    refunds made in the platform's admin before returnflow asked for any processing are
    explained by no unit processed there: money went out outside the settlement (a refund
    on the order, not a processing of the return), and a person decides before returnflow
    pays its own (``reviewed``: one did, and the processing goes out)."""
    early = [entry.payload for entry in record.history if entry.event == REFUND_RECORDED]
    if reviewed or not early or any(units.confirmed for units in record.platform_units):
        return
    if any(entry.event == THERE for entry in record.history):
        return  # a person's units were found: their processing is followed
    now = port.get_return(effect.shop, return_id)
    ids = dict(record.refs.platform_line_ids)
    done = dict(now.processed)
    if any(done.get(ids.get(units.order_line_id, ""), 0) for units in record.platform_units):
        return  # units processed there: the person's (followed) or this call's, answer lost
    refunds = ", ".join(f"{entry['refund']}{entry.get('amount', '')}" for entry in early)
    raise PortError(
        effect.port,
        effect.kind,
        f"refunded in the platform's admin ({refunds}) with no unit processed there: "
        "nothing was processed",
        retryable=False,
    )


def _note(key: str, there: There, change: Change) -> None:
    change.note(
        THERE,
        {
            "key": key,
            "lines": named(there.lines),
            "sent": named(there.left),
            "refund": str(there.refund),
            "platform": "unknown" if there.platform is None else str(there.platform),
            "returnflow": str(there.returnflow),
        },
    )


def _share(
    record: ReturnRecord,
    effect: fx.ProcessPlatformReturn,
    person: dict[str, int],
    amount: Money,
) -> Money:
    """The person's units' part of ``amount`` (``effect.refund``: returnflow's figure for
    them): ``amount`` spread over the effect's units in proportion to what they were paid
    (the units next to process on each order line, after those confirmed), to the cent;
    evenly when nothing was paid."""
    confirmed = {units.order_line_id: units.confirmed for units in record.platform_units}
    paid: dict[str, list[Money]] = {}
    for returned in record.lines:
        paid.setdefault(returned.order_line_id, []).extend(returned.unit_amounts)
    weights: list[int] = []
    mine: list[bool] = []
    for line in effect.lines:
        start = confirmed.get(line.order_line_id, 0)
        amounts = paid.get(line.order_line_id, [])[start : start + line.quantity]
        for index in range(line.quantity):
            weights.append(amounts[index].minor_units if index < len(amounts) else 0)
            mine.append(index < person.get(line.order_line_id, 0))
    if not any(weights):
        weights = [1] * len(weights)
    shares = amount.allocate(weights)
    return Money.sum(
        (share for share, theirs in zip(shares, mine, strict=True) if theirs), amount.currency
    )


def _refunded_there(
    d: Dispatcher, effect: fx.ProcessPlatformReturn, record: ReturnRecord, now: PlatformReturn
) -> Money | None:
    """What the platform refunded for the return's lines beyond returnflow's processings
    delivered (the refund each sent): the person's refund (``None``: the platform does not
    report its refunds)."""
    if now.refunded is None:
        return None
    sent = Money.zero(now.refunded.currency)
    for entry in d.store.outbox(effect.shop, effect.return_id):
        other = entry.effect
        if entry.status != "done" or not isinstance(other, fx.ProcessPlatformReturn):
            continue
        sent = sent + _sent(record, other)
    return now.refunded - sent


def _sent(record: ReturnRecord, effect: fx.ProcessPlatformReturn) -> Money:
    """The refund a delivered processing sent for its lines: the one it decided and noted
    (a person's units found, or the platform's money taken), else its own."""
    there = decided(record, effect)
    key = effect.key
    if there is not None:
        if not there.left:  # the shipping and duties alone, or no call at all
            return Money.zero(there.refund.currency)
        key = f"{effect.key}/{named(there.left)}"  # the platform's figure for them may win
    for entry in record.history:
        if entry.event == "platform_money_taken" and entry.payload.get("key") == key:
            return amount_of(entry.payload["refund"], effect.refund.currency)
    return effect.refund if there is None else there.refund
