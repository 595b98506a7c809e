"""Completion and settlement: what the accepted units are owed (refund, store credit, the
exchange), the fees kept, the payouts planned, and closing once the money is confirmed.

Seed 000: the warehouse's "Finished" completes a return, then its outcome runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from returnflow.decisions import _capture_shortfall as shortfall
from returnflow.decisions import _fees as fees_of
from returnflow.decisions import exchange, review
from returnflow.decisions.change import Change
from returnflow.domain._evolve import evolve
from returnflow.domain.model import (
    Exchange,
    ExchangeLine,
    OutcomeKind,
    Refund,
    ReturnLine,
    ReturnRecord,
    StoreCredit,
)
from returnflow.domain.money import Money
from returnflow.domain.policy import ReturnPolicy
from returnflow.domain.settlement import LineSettlement, Settlement, lines_by_order_line, settle
from returnflow.errors import InvalidPayload
from returnflow.lifecycle import effects as fx
from returnflow.ports.commerce import LineQuantity
from returnflow.ports.platform_returns import DutyRefund

__all__ = [
    "close",
    "close_by_hand",
    "close_if_settled",
    "complete",
    "due_units",
    "fully_received",
    "pay_early",
    "reopen_given_up",
    "settle_parts",
]


def due_units(line: ReturnLine) -> int:
    """Units a line's outcome is owed for now: all of a returnless line, else the accepted."""
    return line.quantity if not line.requires_receipt else line.accepted


def fully_received(change: Change) -> bool:
    """Whether every unit that has to come back has been received."""
    return all(
        line.received >= line.quantity for line in change.record.lines if line.requires_receipt
    )


UNRECEIVED = ("refund", "store_credit", "nothing")
"""What an agent closing a return by hand decides for units not received and accepted."""
EXCHANGE_DECISIONS = ("release", "cancel")
"""What an agent closing a return by hand decides for an exchange its units do not cover."""


def close_by_hand(
    change: Change,
    policy: ReturnPolicy,
    *,
    unreceived: str | None = None,
    exchange_decision: str | None = None,
) -> None:
    """An agent completes the return: settle every accepted unit not yet settled, close.

    Nothing leaks by default: units not received and accepted need a decision
    (``unreceived``: refund them anyway, credit them, or ``nothing``), and so does an open
    exchange that accepted units do not cover (``exchange_decision``: ``release`` it, the
    agent named in the history, or ``cancel`` it and pay the returned units' worth).
    Raises :class:`~returnflow.errors.InvalidPayload` naming the missing decision."""
    if not change.allows("close"):
        change.refuse("close")
    record = change.record
    if unreceived is not None and unreceived not in UNRECEIVED:
        raise InvalidPayload("unreceived", unreceived, f"must be one of: {', '.join(UNRECEIVED)}")
    if exchange_decision is not None and exchange_decision not in EXCHANGE_DECISIONS:
        raise InvalidPayload(
            "exchange", exchange_decision, f"must be one of: {', '.join(EXCHANGE_DECISIONS)}"
        )
    missing = {
        line.id: line.quantity - max(line.accepted, line.settled)
        for line in record.lines
        if line.requires_receipt and line.quantity > max(line.accepted, line.settled)
    }
    if missing and unreceived is None:
        named = ", ".join(f"{line_id}: {units}" for line_id, units in missing.items())
        raise InvalidPayload(
            "unreceived",
            None,
            f"units not received and accepted ({named}): say refund, store_credit or nothing",
        )
    exchanged = {line.return_line_id for line in record.exchange_lines}
    open_exchange = record.exchange_status in ("on_hold", "awaiting_payment")
    covered = all(line.accepted >= line.quantity for line in record.lines if line.id in exchanged)
    if open_exchange and not covered and exchange_decision is None:
        raise InvalidPayload(
            "exchange", None, "accepted units do not cover the exchange: say release or cancel"
        )
    if exchange_decision == "cancel" and open_exchange:
        exchange.cancel(change, why=f"cancelled by {change.actor} closing the return")
    extra: list[tuple[ReturnLine, int, int]] = []
    shipped = record.exchange_status == "released"
    if unreceived in ("refund", "store_credit") and missing:
        outcome = Refund() if unreceived == "refund" else StoreCredit()
        for line in record.lines:
            # an exchange released for these units (now, or shipped before: an instant
            # exchange, whose capture pays for it) already pays for them: not twice
            paid_by_exchange = line.id in exchanged and (exchange_decision == "release" or shipped)
            if line.id in missing and not paid_by_exchange:
                start = max(line.accepted, line.settled)
                extra.append((evolve(line, outcome=outcome), missing[line.id], start))
        change.note("unreceived_settled", {"as": unreceived, "decided_by": change.actor})
    decided_by = change.actor if exchange_decision == "release" else None
    complete(
        change,
        policy,
        reviewed=record.status == "needs_review",
        extra=extra,
        decided_by=decided_by,
    )


def complete(
    change: Change,
    policy: ReturnPolicy,
    *,
    reviewed: bool = False,
    extra: Sequence[tuple[ReturnLine, int, int]] = (),
    decided_by: str | None = None,
) -> None:
    """Run the outcomes of every accepted, unsettled unit, release or cancel the exchange,
    and close the return (seed 000: "Finished" closes, then the outcome runs).

    An instant exchange released on an authorized payment settles it here: voided when the
    exchanged units came back accepted, captured when not (and given back when a capture
    for a late parcel is followed by the units). One released with nothing to fall back on
    whose item failed QC needs a person first; ``reviewed`` says one has looked (an agent
    closing from ``needs_review``). ``extra``: parts an agent decided to pay for anyway;
    ``decided_by``: the agent who decided to release an exchange the units do not cover.
    """
    record = change.record
    failed = {
        line.id for line in record.lines if isinstance(line.outcome, Exchange) and line.rejected
    }
    instant = record.exchange_status == "released" and record.payment_authorized is not None
    if instant:
        # An instant exchange's fallback: the customer keeps what shipped and pays what no
        # unit that came back paid for when QC failed; otherwise the authorization is let go.
        exchanged = {line.return_line_id for line in record.exchange_lines}
        back = all(line.accepted >= line.quantity for line in record.lines if line.id in exchanged)
        # the capture pays what the new items whose units did not all come back accepted
        # cost beyond what the units of theirs that did pay for them in the settlement
        # below (and their outbound shipping unless that settlement takes it)
        settling = {line.id for line in record.lines if due_units(line) > line.settled}
        settling = settling | {line.id for line, _, _ in extra}
        exchange.settle_authorization(
            change,
            capture=bool(failed) or not back,
            why="the exchanged units came back"
            if back and not failed
            else (
                "QC failed on an exchanged item" if failed else "the exchanged units did not come"
            ),
            amount=exchange.capture_due(record, policy, settling=settling),
        )
        captured = any(
            entry.event == "authorization_settled" and entry.payload.get("captured")
            for entry in record.history
        )
        given_back = any(entry.event == "capture_refunded" for entry in record.history)
        if back and not failed and captured and not given_back:
            # captured when the parcel was late, and then it came: the customer paid twice
            taken = exchange.captured(record) or record.payment_authorized
            change.effect(fx.RefundBalance, amount=taken)
            change.note("capture_refunded", {"amount": str(taken)})
    elif record.exchange_status == "released" and failed and not reviewed:
        review.flag(change, "QC failed on an exchanged item after the exchange was released")
        return
    if not reviewed:
        early = [line for line in record.lines if line.settled > due_units(line)]
        if early:
            lines = ", ".join(
                f"{line.order_line_id} ({line.settled - line.accepted})" for line in early
            )
            review.flag(change, f"paid before QC rejected units: {lines}")
            return
        if record.exchange_status == "awaiting_payment":
            review.flag(change, "the exchange balance is not paid")
            return
    given_up = reopen_given_up(change)
    parts = [
        (line, due_units(line) - line.settled, line.settled)
        for line in record.lines
        if due_units(line) > line.settled
    ] + list(extra)
    # The exchange: every exchanged unit accepted -> release; any rejected -> cancel it.
    cancel_ids = [
        line.id
        for line in record.exchange_lines
        if line.return_line_id in failed and line.status in ("pending", "held")
    ]
    keep_ids = [
        line.id
        for line in record.exchange_lines
        if line.return_line_id not in failed and line.status in ("pending", "held")
    ]
    # What the exchanged units pay for: every new item not cancelled, released or not (an
    # instant exchange's new items shipped: which of them the units settled now pay, with
    # units of theirs that failed QC or not, is decided below, exchange.paying_lines).
    kept = [
        line
        for line in record.exchange_lines
        if (instant or line.return_line_id not in failed) and line.status != "cancelled"
    ]
    if record.exchange_status == "released":
        # released already (an instant exchange): the new items are on their way, whether
        # or not the platform confirmed it yet; what QC failed is paid by the fallback
        cancel_ids = []
    if change.record.exchange_status == "exchange_cancelled":
        kept, keep_ids, cancel_ids = [], [], []  # an agent cancelled it: worth paid out
    if record.exchange_status == "awaiting_payment":
        # Reviewed and the upsell balance was never paid: no exchange; the returned
        # units' worth is paid out like an exchange for nothing.
        kept, keep_ids, cancel_ids = [], [], []
        exchange.cancel(change, why="the exchange balance was never paid")
    prepaid = None if record.balance_settled else record.balance_paid
    unpaid = outbound_unpaid = None
    if instant:
        # an instant exchange shipped on an authorization: what of the items the units that
        # came back do not pay (they did not come back, or failed QC) is paid by its capture
        # and by what was prepaid, not given back from it
        # the lines whose units settled now pay for their own items: all of an even
        # exchange's back (also with units that failed QC: the capture pays the rest), or
        # every unit back accepted (exchange.paying_lines)
        returned = exchange.paying_lines(record, {line.id for line, _, _ in parts})
        if failed or not back:  # a capture made before these units came stands
            returned -= exchange.paid_before(record, returned)
        if failed or any(line.return_line_id not in returned for line in kept):
            apart = exchange.paid_by_capture(record, returned)
            kept = [line for line in kept if line.return_line_id in returned]
            # what the capture and the prepaid balance leave unpaid of those items (an
            # upsell whose difference the other lines' payout was to cover) that payout pays
            # (after this change's capture; the outbound shipping goes with the items the
            # units came back for when there are any: their settlement takes it; else these
            # items owe it, as asked up front or, nothing asked, as the policy charges it)
            ship = Money.zero(record.currency)
            if not kept:
                ship = shortfall.asked(record) or exchange.outbound_due(record, policy, apart)
            unpaid = shortfall.unpaid(change.record, apart, prepaid, shipping=ship)
            if unpaid is not None and not kept:  # the part of it that is outbound shipping
                items = shortfall.items_left(change.record, apart, prepaid)
                outbound_unpaid = unpaid - min(unpaid, items)
            prepaid = shortfall.prepaid_left(change.record, apart, prepaid, shipping=ship)
    # The units that will never settle (QC failed, never received) charge their shares
    # of the return shipping fee now, owed (or waived) like a fee no payout covers: no
    # other unit's payout bears them, so the money is the same in any order of receipts.
    settlement = settle_parts(
        change,
        policy,
        parts,
        exchange_lines=kept,
        prepaid=prepaid,
        items_unpaid=unpaid,
        shipping_apart=_never_settled(record, parts),
        outbound_unpaid=outbound_unpaid or None,
    )
    change.update(completed_at=change.now, balance_settled=record.balance_paid is not None)
    refunds = (f"/{fx.IssueRefund.kind}", f"/{fx.ProcessPlatformReturn.kind}")
    refunds_again = [key for key in given_up if key.endswith(refunds)]
    if settlement.refund or (refunds_again and change.allows("refund")):
        change.fire("refund", {"amount": str(settlement.refund)} if settlement.refund else None)
    elif change.record.status == "needs_review" and (
        settlement.store_credit or settlement.bonus or given_up
    ):
        # A person closed it: the money goes out (store credit only), and the return closes
        # once it is confirmed, as from any state that pays out.
        credit = settlement.store_credit + settlement.bonus
        change.fire("refund", {"store_credit": str(credit)} if credit else None)
    if cancel_ids and keep_ids:
        change.effect(fx.CancelExchange, exchange_line_ids=tuple(cancel_ids))
        change.note("exchange_lines_qc_failed", {"cancelled": ", ".join(cancel_ids)})
    if keep_ids and change.allows("release_exchange"):
        kept_lines = {line.return_line_id for line in record.exchange_lines if line.id in keep_ids}
        covered = all(
            due_units(line) >= line.quantity for line in record.lines if line.id in kept_lines
        )
        exchange.release(
            change, policy, why="return completed", covered=covered, decided_by=decided_by
        )
    elif cancel_ids:
        exchange.cancel(change, why="QC failed on every exchanged item")
    if not (settlement.refund or settlement.store_credit or settlement.bonus or given_up):
        close(change)
    # Otherwise the return closes when the platform confirms the money (results.apply).


def _never_settled(
    record: ReturnRecord, parts: Sequence[tuple[ReturnLine, int, int]]
) -> list[tuple[ReturnLine, int, int]]:
    """The units of ``record``'s lines that completing with ``parts`` leaves unsettled:
    ``(line, units, first unit)``."""
    settling: dict[str, int] = {}
    for line, units, _ in parts:
        settling[line.id] = settling.get(line.id, 0) + units
    left = []
    for line in record.lines:
        start = line.settled + settling.get(line.id, 0)
        if start < line.quantity:
            left.append((line, line.quantity - start, start))
    return left


def reopen_given_up(change: Change) -> tuple[str, ...]:
    """Deliver again, under their own keys, the payouts whose delivery was given up (their
    units stayed settled); return their keys."""
    given_up = change.record.payouts_given_up
    if given_up:
        change.reopened.extend(given_up)
        change.update(payouts_given_up=())
        change.note("payouts_reopened", {"effects": ", ".join(given_up)})
    return given_up


def settle_parts(
    change: Change,
    policy: ReturnPolicy,
    parts: Sequence[tuple[ReturnLine, int, int]],
    *,
    exchange_lines: Sequence[ExchangeLine] = (),
    prepaid: Money | None = None,
    items_unpaid: Money | None = None,
    shipping_apart: Sequence[tuple[ReturnLine, int, int]] = (),
    outbound_unpaid: Money | None = None,
) -> Settlement:
    """Settle ``parts`` (line, units, first unit): count them settled, keep the fees, plan
    the refund and the store credit, charge what the customer owes (fees the payout did not
    cover, an exchange's shortfall not prepaid) and give back what they prepaid and no
    longer owe. ``shipping_apart``: units never to settle, whose shares of the return
    shipping fee are charged (or waived) now, apart from any payout; ``outbound_unpaid``:
    the part of ``items_unpaid`` that is the exchange's outbound shipping (noted with the
    settlement as ``outbound_unpaid``: a platform return never carries it)."""
    record = change.record
    settlement = _settlement(
        record,
        policy,
        parts,
        exchange_lines=exchange_lines,
        prepaid=prepaid,
        items_unpaid=items_unpaid,
        shipping_apart=shipping_apart,
    )
    if not (
        parts
        or settlement.balance_refund
        or settlement.return_shipping_fee
        or settlement.fees_waived  # the shares of units never settled, waived
        or settlement.balance_due  # items left unpaid (items_unpaid), their units paid before
    ):
        return settlement
    added: dict[str, int] = {}
    for line, units, _ in parts:
        added[line.id] = added.get(line.id, 0) + units
    restocking = record.restocking_fees
    if settlement.restocking_fee:
        restocking = (restocking or Money.zero(record.currency)) + settlement.restocking_fee
    change.update(
        lines=tuple(
            evolve(line, settled=line.settled + added[line.id]) if line.id in added else line
            for line in record.lines
        ),
        return_shipping_fee=(
            (record.return_shipping_fee or Money.zero(record.currency))
            + settlement.return_shipping_fee
            if settlement.return_shipping_fee
            else record.return_shipping_fee
        ),
        exchange_shipping_fee=settlement.exchange_shipping or record.exchange_shipping_fee,
        restocking_fees=restocking,
    )
    # Each payout carries the units and fees it settles, to be undone if it fails.
    zero = Money.zero(record.currency)
    to_credit = policy.exchange_difference is OutcomeKind.STORE_CREDIT
    shipping_from_credit = (
        settlement.return_shipping_fee - settlement.shipping_from_refund - settlement.shipping_owed
    )
    for payout, amount, kind, shipping in (
        (
            fx.IssueRefund,
            settlement.refund,
            OutcomeKind.REFUND,
            settlement.shipping_from_refund,
        ),
        (
            fx.IssueStoreCredit,
            settlement.store_credit + settlement.bonus,
            OutcomeKind.STORE_CREDIT,
            shipping_from_credit,
        ),
    ):
        if not amount:
            continue
        difference_here = (kind is OutcomeKind.STORE_CREDIT) == to_credit
        covered = [
            part
            for part in settlement.lines
            if part.outcome is kind or (part.outcome is OutcomeKind.EXCHANGE and difference_here)
        ]
        change.effect(
            payout,
            amount=amount,
            lines=_quantities(lines_by_order_line(settlement, kind)),
            covers=tuple((part.line_id, part.units) for part in covered),
            restocking=Money.sum((part.restocking_fee for part in covered), record.currency)
            or None,
            shipping=shipping if shipping != zero else None,
            original_shipping=Money.sum((p.original_shipping for p in covered), record.currency)
            or None,
            duties=Money.sum((part.duties for part in covered), record.currency) or None,
            duty_refunds=_duty_refunds(record, covered),
            **(
                {"bonus": settlement.bonus}
                if payout is fx.IssueStoreCredit and settlement.bonus
                else {}
            ),
        )
    if settlement.balance_refund:
        change.effect(fx.RefundBalance, amount=settlement.balance_refund)
    if settlement.balance_due:
        change.effect(fx.ChargeBalance, amount=settlement.balance_due, prepay=False)
    documents = ", ".join(f"{kind.value} {amount}" for kind, amount in settlement.documents)
    apart = {"outbound_unpaid": str(outbound_unpaid)} if outbound_unpaid else {}
    if shipping_apart and (
        settlement.shipping_owed or settlement.restocking_owed or settlement.fees_waived
    ):
        apart[fees_of.APART] = fees_of.apart_note(shipping_apart)
    for owed_apart in ("shipping_owed", "restocking_owed"):  # no payout bears them: the
        if getattr(settlement, owed_apart):  # platform's figure has them not
            apart[owed_apart] = str(getattr(settlement, owed_apart))
    change.note("settled", {**settlement.as_dict(), "documents": documents, **apart})
    return settlement


def _settlement(
    record: ReturnRecord,
    policy: ReturnPolicy,
    parts: Sequence[tuple[ReturnLine, int, int]],
    *,
    exchange_lines: Sequence[ExchangeLine] = (),
    prepaid: Money | None = None,
    items_unpaid: Money | None = None,
    shipping_apart: Sequence[tuple[ReturnLine, int, int]] = (),
) -> Settlement:
    """What ``parts`` of ``record`` settle to under ``policy`` (:func:`settle_parts`)."""
    return settle(
        record.currency,
        parts,
        fees=policy.fees_for(record.rule_return_shipping, record.method),
        exchange_lines=exchange_lines,
        charge_shipping=fees_of.charges_shipping(record),
        charge_exchange_shipping=record.exchange_shipping_fee is None,
        difference_to=policy.exchange_difference,
        prepaid=prepaid,
        taxes_included=record.taxes_included,
        # the fee is spread over all the return's units once, in both modes (the platform
        # return bears it from its opening, and Shopify's removeFromReturn removes line
        # items only): each unit pays its own share, whatever settles when
        shipping_lines=record.lines,
        items_unpaid=items_unpaid,
        left_off=fees_of.left_off(record),  # what the return opened without: never charged
        shipping_apart=shipping_apart,
        shares_paid=fees_of.shares_paid(record.history),
    )


def pay_early(change: Change, policy: ReturnPolicy, *, accepted_only: bool, why: str) -> None:
    """Refund or credit before completion (the policy's refund trigger); exchanges settle
    at completion as usual. The units paid pay their own shares of the return shipping
    fee (:func:`~returnflow.domain.fees.unit_shipping_fees`), whatever settles later.

    A returnless line (:class:`Keep`) is paid with the units: nothing is to come for it,
    and it is part of the payout a fee is taken from. Left to completion, a fee taken here
    from the units alone would be waived (``fees_only_from_payout``) where the whole
    return's payout covers it, and the return would settle differently from one whose
    units and kept lines settle together (the platform return's figure). Paid on receipt
    (``accepted_only``), it waits for a receipt that pays units: paid by one whose units
    all failed QC, it was paid apart from the units of a later receipt, or with them when
    that receipt came first (a fee taken from the refund or the credit, two refunds or one,
    depending on the order the receipts came in)."""
    parts = []
    for line in change.record.lines:
        if isinstance(line.outcome, Exchange) or line.claimed:
            continue
        units = line.accepted if accepted_only and line.requires_receipt else line.quantity
        if units > line.settled:
            parts.append((line, units - line.settled, line.settled))
    if accepted_only and not any(line.requires_receipt for line, _, _ in parts):
        # no unit that came back is paid now (a receipt whose units all failed QC): the
        # kept lines wait for a payout of units, or completion, whichever receipt came first
        return
    if parts:
        change.note("refund_trigger", {"trigger": why})
        # each unit pays its own share of the return shipping fee: what is paid when does
        # not change the money, nor which payout bears the fee
        settle_parts(change, policy, parts)


def close(change: Change) -> None:
    """Close the return: nothing is left to do."""
    change.fire("close")
    change.update(review_reasons=())
    change.publish("close")
    change.notify("return_closed")


def close_if_settled(change: Change, *, delivered: str) -> None:
    """Close a completed return once no refund or credit it planned is still pending
    (one given up sent the return to review and was planned again from there).
    ``delivered`` is the key of the payout confirmed in this change; the rest of the
    return's payouts are read from ``change.outbox``."""
    record = change.record
    if record.completed_at is None or record.status not in (
        "refunded",
        "item_received",
        "approved",
    ):
        return
    money = (fx.IssueRefund, fx.IssueStoreCredit, fx.ProcessPlatformReturn)
    if any(
        isinstance(e.effect, money) and e.status == "pending" and e.effect.key != delivered
        for e in change.outbox
    ):
        return
    close(change)


def _duty_refunds(record: ReturnRecord, parts: Sequence[LineSettlement]) -> tuple[DutyRefund, ...]:
    """The duties ``parts`` give back, by the platform's duty id."""
    lines = {line.id: line for line in record.lines}
    given: dict[str, Money] = {}
    for part in parts:
        if not part.duties:
            continue
        for duty, share in lines[part.line_id].duties_for(part.units, start=part.start):
            given[duty] = given[duty] + share if duty in given else share
    return tuple(DutyRefund(duty, amount) for duty, amount in given.items())


def _quantities(counts: Mapping[str, int]) -> tuple[LineQuantity, ...]:
    return tuple(LineQuantity(order_line_id, units) for order_line_id, units in counts.items())
