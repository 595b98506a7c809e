"""The exchange: the new items held on the order, an upsell balance charged, the hold
released when the return allows it (seed 000, seed 003), or cancelled."""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set

import attrs

from returnflow.decisions import _fees as fees_of
from returnflow.decisions.change import Change
from returnflow.domain.fees import charged
from returnflow.domain.model import Exchange, ExchangeLine, ReturnLine, ReturnRecord
from returnflow.domain.money import Money
from returnflow.domain.policy import PlatformMode, ReleaseTrigger, ReturnPolicy
from returnflow.domain.settlement import settle
from returnflow.lifecycle import effects as fx
from returnflow.ports.commerce import ExchangeItem

__all__ = [
    "asked",
    "authorizing",
    "cancel",
    "capture_due",
    "captured",
    "captured_for",
    "carried",
    "charging",
    "hold",
    "outbound_due",
    "paid_before",
    "paying_lines",
    "rejected",
    "release",
    "release_if_instant",
    "settle_authorization",
    "unpaid_cost",
    "with_status",
]


def hold(change: Change, policy: ReturnPolicy) -> None:
    """Hold the pending exchange items on the order; when the customer owes something (an
    upsell's difference, the new items' shipping, fees the payout does not cover), charge
    it first (``awaiting_payment``). Paying does not release the exchange (seed 003): the
    release still waits for its trigger."""
    record = change.record
    pending = [line for line in record.exchange_lines if line.status == "pending"]
    if not pending or not change.allows("hold_exchange"):
        return
    change.effect(
        fx.HoldExchange,
        items=tuple(
            ExchangeItem(line.id, line.variant_id, line.quantity, line.sku) for line in pending
        ),
        hold_tag=policy.hold_tag,
    )
    # What the whole return owes if every unit comes back: the shortfall of the new items
    # and their shipping, and the fees the payout does not cover (charged up front).
    fees = policy.fees_for(record.rule_return_shipping, record.method)
    quote = settle(
        record.currency,
        [(line, line.quantity - line.settled, line.settled) for line in record.lines],
        fees=fees,
        exchange_lines=pending,
        charge_shipping=fees_of.charges_shipping(record),
        charge_exchange_shipping=record.exchange_shipping_fee is None,
        difference_to=policy.exchange_difference,
        taxes_included=record.taxes_included,
    )
    if policy.platform_mode is PlatformMode.TAGS:  # native: noted as its platform return opens
        fees_of.note_left_off(change, quote)
    # what the units' own payouts do not bear of their shares of the return shipping fee
    # and of the exchanged lines' restocking fee is owed when they are paid, not up front
    # (a unit may be paid before completion)
    apart = Money.sum((part.return_shipping_fee_left for part in quote.lines), quote.currency)
    apart = apart + quote.restocking_owed
    if fees.fees_only_from_payout:  # waived, not owed
        apart = Money.zero(quote.currency)
    owed = quote.balance_due - min(apart, quote.balance_due)
    if owed:
        due = {"balance_due": str(owed)}
        if quote.exchange_shipping:  # its outbound shipping: never on a platform return
            due["exchange_shipping"] = str(quote.exchange_shipping)
        change.fire("require_payment", due)
        change.effect(fx.ChargeBalance, amount=owed)
    else:
        change.fire("hold_exchange", {"tag": policy.hold_tag})


def release(
    change: Change,
    policy: ReturnPolicy,
    *,
    why: str,
    covered: bool = False,
    authorized: bool = False,
    decided_by: str | None = None,
) -> None:
    """Release the hold: the platform ships the new items. Goods never leak: the chart
    refuses a release unless accepted units cover it (``covered``), an instant-exchange
    payment is authorized (``authorized``) or an agent decided it (``decided_by``)."""
    change.effect(fx.ReleaseExchange, hold_tag=policy.hold_tag)
    payload = {"why": why, **({"decided_by": decided_by} if decided_by else {})}
    change.fire(
        "release_exchange",
        payload,
        covered=covered,
        authorized=authorized,
        decided_by=decided_by,
    )


def release_if_instant(change: Change, policy: ReturnPolicy) -> None:
    """An instant exchange (Loop's instant exchange, Solidus' expedited exchange) is released
    once the parcel is handed in, on a payment to fall back on: the customer's payment is
    authorized for the exchanged units' worth, and the hold is released when the platform
    confirms it (:mod:`returnflow.decisions.results`). The authorization is voided when the
    units come back accepted and captured when QC fails or the parcel goes back
    (:func:`settle_authorization`), for what no returned unit paid for (:func:`capture_due`).
    Nothing is authorized twice."""
    if policy.exchange_release is not ReleaseTrigger.ON_HANDED_IN:
        return
    record = change.record
    if not change.allows("release_exchange") or record.refs.payment_authorization_id:
        return
    if asked(record):
        return  # asked for already (its answer may not be back): never twice
    exchanged = {line.return_line_id for line in record.exchange_lines}
    worth = Money.sum(
        (amount for line in record.lines if line.id in exchanged for amount in line.unit_amounts),
        record.currency,
    )
    if not worth:
        release(change, policy, why="instant exchange of nothing to pay for", covered=True)
        return
    change.effect(fx.AuthorizePayment, amount=worth, hold_tag=policy.hold_tag)
    change.note("instant_exchange_authorizing", {"amount": str(worth)})


def asked(record: ReturnRecord) -> bool:
    """Whether the instant exchange's authorization was asked for (answered or not)."""
    return any(entry.event == "instant_exchange_authorizing" for entry in record.history)


def authorizing(record: ReturnRecord) -> bool:
    """Whether the instant exchange's authorization was asked for and not answered yet (a
    person looks at it once the ask has failed for good)."""
    return record.payment_authorized is None and record.status != "needs_review" and asked(record)


def rejected(record: ReturnRecord) -> bool:
    """Whether a unit of a line with an open exchange line (pending or held) failed QC: its
    new item is not to ship on an instant exchange's authorization answered after that."""
    exchanged = {
        line.return_line_id for line in record.exchange_lines if line.status in ("pending", "held")
    }
    return any(line.rejected for line in record.lines if line.id in exchanged)


def charging(record: ReturnRecord) -> bool:
    """Whether an upsell's balance charge is asked and not answered yet (``awaiting_payment``
    outside review: a charge given up for good sends the return to a person)."""
    return record.exchange_status == "awaiting_payment" and record.status != "needs_review"


def settle_authorization(
    change: Change, *, capture: bool, why: str, amount: Money | None = None
) -> None:
    """Void the instant exchange's authorization (the units came back accepted) or capture
    it (QC failed, the parcel went back, the units never came): once, and only when there
    is one. ``amount``: what the capture takes (:func:`capture_due`), at most the
    authorization (``None``: all of it); a capture of nothing voids it."""
    record = change.record
    if record.payment_authorized is None or record.authorization_settled:
        return
    taken = record.payment_authorized if amount is None else min(amount, record.payment_authorized)
    capture = capture and taken > Money.zero(record.currency)
    if capture:
        change.effect(fx.CapturePayment, amount=taken)
    else:
        change.effect(fx.VoidAuthorization)
    change.update(authorization_settled=True)
    partly = {"amount": str(taken)} if capture and taken != record.payment_authorized else {}
    change.note("authorization_settled", {"captured": capture, "why": why, **partly})


def capture_due(
    record: ReturnRecord, policy: ReturnPolicy, *, settling: Set[str] | None = None
) -> Money:
    """What capturing the instant exchange's authorization takes: what the goods shipped
    cost that no accepted returned unit pays for. The new items (not cancelled) of the
    lines whose units did not all come back accepted (QC failed, never received), less
    what the accepted units of the same lines pay for them (:func:`paying_lines`,
    :func:`unpaid_cost`), and the exchange's outbound shipping (:func:`outbound_due`) when
    no settlement of new items paid by units that came back takes it. ``settling``: the
    lines whose accepted units a settlement pays, now or later (default: every line with
    an accepted unit); units settled before pay as well. :func:`settle_authorization`
    takes at most the authorization.

    The authorization holds the exchanged units' worth; a for-less exchange (two caps at
    10.00 for one at 15.00) is captured for what the customer kept without paying (15.00),
    not for what was held (20.00): Loop's instant exchanges (on Shopify) hold the new
    item's value and charge, when the return never comes, for the goods shipped. An upsell
    is captured for the authorization at most, its difference paid up front. Two T-shirts
    (25.00 each) for two others at the same price, one back accepted and the other never
    (or failing QC): the settlement pays one new T-shirt with the unit back (exchange credit
    25.00) and the capture takes the other (25.00), not both (the customer paid 75.00 for
    50.00 of goods)."""
    failed = {
        line.id for line in record.lines if isinstance(line.outcome, Exchange) and line.rejected
    }
    whole = {line.id for line in record.lines if line.accepted >= line.quantity} - failed
    items = paid_by_capture(record, whole)
    if settling is None:
        settling = {line.id for line in record.lines if line.accepted}
    payers = paying_lines(record, settling)
    taken = any(
        line.status != "cancelled" and line.return_line_id in payers
        for line in record.exchange_lines
    )
    paying = {
        line.id: max(line.settled, line.accepted) if line.id in settling else line.settled
        for line in record.lines
    }
    due = unpaid_cost(record, items, paying)
    return due if taken or not items else due + outbound_due(record, policy, items)


def paying_lines(record: ReturnRecord, settling: Set[str]) -> set[str]:
    """Of the lines ``settling`` (whose accepted units a settlement pays), those whose units
    pay for their own new items there: every unit came back accepted, or the exchange is
    even (its new items cost what its units were paid, so the units back pay their share
    and the capture the rest). A priced new item of a line not all back accepted is paid
    whole by the capture and that line's accepted units are paid out: the settlement would
    price the item whole against them and charge its shortfall apart from the
    authorization, once it was let go."""
    priced = {
        item.return_line_id
        for item in record.exchange_lines
        if item.status != "cancelled" and item.unit_price is not None
    }
    return {
        line.id
        for line in record.lines
        if line.id in settling
        and (line.id not in priced or (line.accepted >= line.quantity and not line.rejected))
    }


def unpaid_cost(
    record: ReturnRecord, items: Sequence[ExchangeLine], paying: Mapping[str, int]
) -> Money:
    """What the new items ``items`` cost (:func:`cost`) that the accepted units of their
    own lines do not pay; ``paying``: by returned line id, how many of its units (the
    first ones) are settled, or to be, for the exchange. A settlement prices an even
    exchange's new items at what those units were paid, so they pay that part
    (:func:`~returnflow.domain.settlement.settle`); a priced new item is left whole
    (:func:`paying_lines`)."""
    zero = Money.zero(record.currency)
    lines = {line.id: line for line in record.lines}
    left = []
    for item in items:
        line = lines.get(item.return_line_id)
        units = min(paying.get(item.return_line_id, 0), line.quantity) if line else 0
        paid = line.amount_for(units) if line and units and item.unit_price is None else zero
        left.append(max(cost(record, [item]) - paid, zero))
    return Money.sum(left, record.currency)


def outbound_due(
    record: ReturnRecord, policy: ReturnPolicy, items: Sequence[ExchangeLine]
) -> Money:
    """The exchange's outbound shipping (``policy.fees.exchange_shipping``, its tax added
    unless the order's prices include it) owed for the new items ``items``: nothing once a
    settlement charged it, nor when every line of theirs was returned for a reason that
    waives the fees (the merchant's fault) or is a claim, as a settlement charges it."""
    zero = Money.zero(record.currency)
    fees = policy.fees_for(record.rule_return_shipping, record.method)
    if fees.exchange_shipping is None or record.exchange_shipping_fee is not None or not items:
        return zero
    theirs = {item.return_line_id for item in items}
    if all(
        line.reason in fees.waive_for_reasons or line.claimed
        for line in record.lines
        if line.id in theirs
    ):
        return zero
    return charged(fees.exchange_shipping, zero, taxes_included=record.taxes_included)


def captured(record: ReturnRecord) -> Money | None:
    """What the capture of the instant exchange's authorization took (``None``: it was not
    captured): all of it, or the part the settling note names."""
    for entry in record.history:
        if entry.event == "authorization_settled" and entry.payload.get("captured"):
            amount = entry.payload.get("amount")
            if amount is None:
                return record.payment_authorized
            return Money(str(amount).split(" ")[0], record.currency)
    return None


def captured_for(record: ReturnRecord, items: Sequence[ExchangeLine]) -> Money:
    """What the capture of the instant exchange's authorization paid of the new items
    ``items``: what it took (:func:`captured`), less what it paid of the others (an even
    exchange's items whose units came back in part: those pay their share, the capture the
    rest, :func:`unpaid_cost`)."""
    zero = Money.zero(record.currency)
    taken = captured(record) or zero
    others = [
        item
        for item in record.exchange_lines
        if item.status != "cancelled" and item.unit_price is None and item not in items
    ]
    paying = {line.id: max(line.settled, line.accepted) for line in record.lines}
    return taken - min(taken, unpaid_cost(record, others, paying))


def cancel(change: Change, *, why: str) -> None:
    """Cancel every open exchange line and move the exchange to ``exchange_cancelled``."""
    if not change.allows("cancel_exchange"):
        return
    open_ids = tuple(
        line.id for line in change.record.exchange_lines if line.status in ("pending", "held")
    )
    if open_ids:
        change.effect(fx.CancelExchange, exchange_line_ids=open_ids)
    change.fire("cancel_exchange", {"why": why})


def carried(parent: ReturnRecord, lines: Sequence[ReturnLine]) -> list[ExchangeLine]:
    """Open exchange lines a reset carries over: those of lines whose every unit came back
    accepted. A line only partly accepted would get all its new items for fewer units back;
    its exchange is cancelled instead, and its accepted units are settled as an exchange
    for nothing (their worth paid out)."""
    clean = {line.id for line in lines if not line.rejected and line.accepted == line.quantity}
    return [
        line
        for line in parent.exchange_lines
        if line.return_line_id in clean and line.status in ("pending", "held")
    ]


def with_status(
    record: ReturnRecord, ids: set[str] | None, status: str, *, only: str | None = None
) -> tuple[ExchangeLine, ...]:
    """The exchange lines with ``status`` set on those in ``ids`` (all when ``None``) whose
    status is ``only`` (any when ``None``)."""
    return tuple(
        attrs.evolve(line, status=status)
        if (ids is None or line.id in ids) and (only is None or line.status == only)
        else line
        for line in record.exchange_lines
    )


def paid_before(record: ReturnRecord, lines: Set[str]) -> set[str]:
    """Of the returned lines ``lines``, those whose new items a capture made before their
    units came back (the parcel returned to origin, or late past the tick) paid in full
    (:func:`captured_for`): units of theirs accepted since are paid out, not spent on items
    paid already. Two T-shirts exchanged, the parcel back to origin (50.00 captured), one of
    them received and accepted later: its 25.00 is refunded, not taken for the new T-shirt
    the capture paid (the customer would have paid 75.00 for 50.00 of goods)."""
    if captured(record) is None:
        return set()
    paid = set()
    for line_id in lines:
        items = [
            item
            for item in record.exchange_lines
            if item.return_line_id == line_id and item.status != "cancelled"
        ]
        if items and captured_for(record, items) >= cost(record, items):
            paid.add(line_id)
    return paid


def paid_by_capture(record: ReturnRecord, came_back: set[str]) -> list[ExchangeLine]:
    """The new items an instant exchange's captured authorization pays for: those not
    cancelled whose returned line is not among ``came_back`` (its units failed QC or never
    came)."""
    return [
        line
        for line in record.exchange_lines
        if line.status != "cancelled" and line.return_line_id not in came_back
    ]


def cost(record: ReturnRecord, items: Sequence[ExchangeLine]) -> Money:
    """What ``items`` cost: their price, or, for an even exchange, what their returned line
    was paid."""
    zero = Money.zero(record.currency)
    value = {line.id: Money.sum(line.unit_amounts, record.currency) for line in record.lines}
    return Money.sum(
        (
            item.unit_price * item.quantity
            if item.unit_price is not None
            else value.get(item.return_line_id, zero)
            for item in items
        ),
        record.currency,
    )
