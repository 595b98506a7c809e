"""Native mode (seed 003): the return lives on the platform's own return object too.

With ``policy.platform_mode`` ``native``, the platform return (Shopify's ``Return``) is the
primary record the merchant's admin shows: exchanges sit on it, the platform computes the
money, refunding and restocking are separate calls. The rules of the lifecycle stay those of
the other decisions; :func:`plan` runs after each of them (the shell calls it with the
parked facts and timers) and turns what they planned and fired into platform-return
effects, in place of the tag-and-hold ones:

- the return approved (or sent to review: opened as *requested*) -> open the platform
  return for its units by order line, its exchange lines and fees (in place of holding the
  exchange behind a tag); the platform holds the exchange only while a balance is owed (an
  upsell: its lines are ``held`` until paid; an even exchange or one for less waits for
  processing, never held); approved or declined from review -> approve or decline it;
- a balance charged through the Payments port -> paid on the platform return too
  (``PayPlatformBalance``): its hold goes, and items it fulfilled on hold are released;
  what is given back of it is given back there too (``RefundPlatformBalance``,
  :mod:`returnflow.decisions._platform_balance`);
- a refund, and an exchange release, -> process the platform return: the units settled,
  the exchange lines confirmed, the refund moved, with the order's shipping and duties
  given back (by duty id) beside it (checked against the platform's own figure, for the
  whole return or for the call's own units); a store credit stays a gift card
  (``CommercePlatform.issue_store_credit``: Shopify has no native flow for gift cards) but
  its units are processed too, for nothing;
- a restock -> a disposition of processed, accepted units (restocked or not by the QC
  result), apart from the refund;
- completion -> units on the platform return that will never be processed (QC failed, not
  received) are removed first; a cancelled exchange line is simply never processed;
- closed / reopened -> close / reopen it; cancelled or expired -> cancel it; declined from
  review -> decline it; reset -> take its unprocessed units out and cancel it (close it
  when some were processed): the new return opens its own;
- a return the customer opened on the platform (``ReturnRequest.platform_return_id``) ->
  adopted: no new platform return; the requested one is approved or declined; its
  exchange is held as the platform holds it, and a balance paid there is not charged again.

A claim (:mod:`returnflow.domain.claims`) never gets a platform return: a platform return
stands for goods coming back (Shopify's ``Return`` opens reverse fulfillment orders the
warehouse waits on, and counts in the shop's returns), and a claim's units never do.
Shopify has no claims object; a merchant settles a lost or damaged parcel with a refund on
the order and a replacement added to it. So a claim keeps the effects of ``tags`` mode: a
plain refund on the order (``CommercePlatform.refund``, its units named, nothing
restocked), a gift card for store credit, and the replacement added to the order on hold
and released in the same commit. A claim cannot adopt a return the customer opened on the
platform (:func:`~returnflow.domain.claim_lines.check_claim`).

The money is reconciled for every processing call: the whole return's refund and owed
when it is processed at once, else each call's refund for its own units (a refund per
receipt).

Pure: reads the change and the policy, plans effects, never calls a port.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import attrs

from returnflow.decisions import _fees as fees_of
from returnflow.decisions import _platform_balance as balance
from returnflow.decisions import _platform_money as money
from returnflow.decisions import exchange
from returnflow.decisions.change import Change
from returnflow.domain.inbound import Disposition
from returnflow.domain.model import (
    Exchange,
    ExchangeLine,
    PlatformUnits,
    ReturnRecord,
    platform_reason,
)
from returnflow.domain.money import Money
from returnflow.domain.policy import PlatformMode, ReturnPolicy
from returnflow.domain.settlement import settle
from returnflow.lifecycle import effects as fx
from returnflow.ports.commerce import LineQuantity
from returnflow.ports.platform_returns import DutyRefund, PlatformExchangeLine, PlatformReturnLine

__all__ = ["opened", "plan"]

# The tag-and-hold effects native mode plans something else for.
_REPLACED = (fx.HoldExchange, fx.ReleaseExchange, fx.CancelExchange, fx.IssueRefund, fx.Restock)
_NOT_YET = ("requested", "eligibility_check")
_NOT_YET_OPEN = ("requested", "eligibility_check", "declined", "cancelled", "expired", "reset")
_ENDED = ("cancelled", "expired", "declined")
_E = TypeVar("_E", bound=fx.Effect)


def opened(record: ReturnRecord) -> bool:
    """Whether the platform return was opened (asked for, answered or not)."""
    return bool(record.platform_units)


def plan(change: Change, policy: ReturnPolicy) -> None:
    """Turn what the decisions of ``change`` planned into platform-return effects (native
    mode; nothing in ``tags`` mode). Run once per change, after the decisions."""
    if policy.platform_mode is not PlatformMode.NATIVE or change.record.claim is not None:
        return  # a claim ships nothing back: no platform return (see the module's docstring)
    balance.take_over_prepay(change)  # an adopted exchange the platform says is paid
    record = change.record
    moves = [
        (entry.source[0], entry.target[0], entry.event)
        for entry in change.history
        if entry.source[0] != entry.target[0]
    ]
    planned = list(change.effects)
    first = next((e for e in planned if isinstance(e, _REPLACED)), None)
    new: list[fx.Effect] = []
    adopting = record.refs.platform_return_id is not None and record.status not in _NOT_YET
    if not opened(record) and adopting:
        new.extend(_adopt(change))
    elif not opened(record) and record.status not in _NOT_YET_OPEN:
        opening = _open(change, policy)
        new.extend([opening] if opening is not None else [])
    elif opened(record):
        new.extend(_review_outcome(change, moves))
    for effect in planned:
        if isinstance(effect, fx.CancelExchange):
            _cancel_lines(change, effect.exchange_line_ids)
    # An exchange released in the change that ends the return (a return to origin implying
    # the hand-in that releases an instant exchange) is processed all the same: the new
    # items ship, as when the release came in a change of its own before the end.
    released = any(isinstance(effect, fx.ReleaseExchange) for effect in planned)
    if opened(change.record) and (change.record.status not in _ENDED or released):
        new.extend(_make(change, fx.PayPlatformBalance, amount=a) for a in balance.charged(change))
        new.extend(_settle(change, policy, planned))
        captured = _captured(change.record)
        settled_now = any(e.event == "authorization_settled" for e in change.history)
        # a return that ended asks nothing to be paid on the platform (it is cancelled)
        if captured is not None and settled_now and change.record.status not in _ENDED:
            paying = _make(change, fx.PayPlatformBalance, amount=captured)
            balance.note_pay_asked(change, paying)
            new.append(paying)
    replaced: list[fx.Effect] = []
    if opened(change.record):
        amounts, replaced = balance.refunds(change, planned)
        paid_on = balance.paid_on(change.record)
        asked = [
            _make(change, fx.RefundPlatformBalance, amount=amount, paid_on=paid_on)
            for amount in amounts
        ]
        balance.note_asked(change, asked)
        new.extend(asked)
    ended = any(target in ("cancelled", "expired", "reset") for _, target, _ in moves)
    if opened(change.record) and ended:
        # Reset: the accepted units move to the new return's own platform return.
        done = any(units.processed for units in change.record.platform_units)
        new.append(_make(change, fx.ClosePlatformReturn if done else fx.CancelPlatformReturn))
    if opened(change.record) and any(target == "closed" for _, target, _ in moves):
        new.append(_make(change, fx.ClosePlatformReturn))
    if opened(change.record) and any(event == "reopen" for *_, event in moves):
        new.append(_make(change, fx.ReopenPlatformReturn))  # after a close in this change
    # The platform effects take the place of the first one they replace (else they come
    # last), in the order planned here.
    ours = {id(effect) for effect in (*new, *replaced)}
    others = [e for e in change.effects if id(e) not in ours and not isinstance(e, _REPLACED)]
    anchor = len(others)
    if first is not None:
        before = planned[: planned.index(first)]
        anchor = sum(1 for e in others if any(e is b for b in before))
    change.effects[:] = [*others[:anchor], *new, *others[anchor:]]


def _make(change: Change, effect_type: type[_E], **fields: object) -> _E:
    """An effect of ``change`` keyed apart from those the decisions planned (``n`` counts
    the platform effects of this change)."""
    record = change.record
    number = sum(1 for e in change.effects if e.port == "platform_returns")
    key = f"{record.shop}/{record.id}/{change.version}/p{number}/{effect_type.kind}"
    effect = effect_type(
        key=key,
        shop=record.shop,
        return_id=record.id,
        order_id=record.order_id,
        version=change.version,
        **fields,
    )
    change.effects.append(effect)  # counted by the next key; placed by plan()
    return effect


def _open(change: Change, policy: ReturnPolicy) -> fx.OpenPlatformReturn | None:
    """The platform return for the return's units but those a return reset from another one
    carried paid, processed and disposed on that one's platform return (the ``settled`` of
    its ``created_by_reset`` note); ``None`` when that is every unit: nothing to open."""
    record = change.record
    carried = next(
        (
            entry.payload.get("settled")
            for entry in record.history
            if entry.event == "created_by_reset"
        ),
        None,
    )
    # The fees of every unit on the platform return, those settled already included (a
    # returnless line is settled at the request, its restocking fee with it): the platform
    # deducts a line's fee when it is processed. Units a reset carried paid are not on it.
    left = {key: int(value) for key, value in (carried or {}).items()}
    parts = []
    # The units the ledger gave each order line, but those carried paid, in the order they
    # settle: the platform values exactly these (a line stored without units: it picks).
    named: dict[str, list[int] | None] = {}
    for line in record.lines:
        skip = min(line.quantity, left.get(line.order_line_id, 0))
        left[line.order_line_id] = left.get(line.order_line_id, 0) - skip
        parts.append((line, line.quantity - skip, skip))
        known = named.setdefault(line.order_line_id, [])
        if known is not None and len(line.units) == line.quantity:
            known.extend(line.units[skip:])
        else:
            named[line.order_line_id] = None
    quote = settle(
        record.currency,
        parts,
        # the fees its settlements charge: the return method's or a merchant rule's return
        # shipping fee, the reasons that waive fees
        fees=policy.fees_for(record.rule_return_shipping, record.method),
        exchange_lines=[line for line in record.exchange_lines if line.status != "cancelled"],
        charge_shipping=fees_of.charges_shipping(record),
        charge_exchange_shipping=record.exchange_shipping_fee is None,
        difference_to=policy.exchange_difference,
        taxes_included=record.taxes_included,
    )
    zero = Money.zero(record.currency)
    units: dict[str, int] = {}
    reasons: dict[str, str] = {}
    paid: dict[str, int] = {}
    for line in record.lines:
        units[line.order_line_id] = units.get(line.order_line_id, 0) + line.quantity
        paid[line.order_line_id] = int((carried or {}).get(line.order_line_id, 0))
        reasons.setdefault(line.order_line_id, platform_reason(line.reason))
    if all(units[line_id] <= paid[line_id] for line_id in units):
        return None
    # A fee waived because no payout covers it (fees_only_from_payout) is not put on the
    # platform return, and no settlement charges it later (decisions._fees).
    fees = fees_of.note_left_off(change, quote)
    # An even exchange's new item costs what was returned (as the settlement prices it).
    worth = {part.line_id: part.value for part in quote.lines}
    exchange_lines = tuple(
        _exchange_line(line, worth.get(line.return_line_id, zero))
        for line in record.exchange_lines
        if line.status in ("pending", "held")
    )
    change.update(
        platform_units=tuple(
            PlatformUnits(
                line_id,
                count,
                processed=paid[line_id],
                not_restocked=paid[line_id],
                confirmed=paid[line_id],
            )
            for line_id, count in units.items()
        )
    )
    requested = record.status == "pending_review"
    change.note("platform_return_opening", {"requested": requested})
    return _make(
        change,
        fx.OpenPlatformReturn,
        lines=tuple(
            PlatformReturnLine(
                line_id,
                count - paid[line_id],
                reasons[line_id],
                fees[line_id] or None,
                _exactly(named[line_id], count - paid[line_id]),
            )
            for line_id, count in units.items()
            if count > paid[line_id]
        ),
        exchange_lines=exchange_lines,
        # charged already by a settlement of this return (a returnless line's at the
        # request, a reset's units settled as it was made): the platform takes it with
        # their processing; a reset's charged on its parent's is not charged again
        return_shipping_fee=quote.return_shipping_fee
        or (
            record.return_shipping_fee
            if carried is None or fees_of.took_shipping_fee(record.history)
            else None
        )
        or None,
        requested=requested,
    )


def _exchange_line(line: ExchangeLine, worth: Money) -> PlatformExchangeLine:
    """An exchange line as the platform return carries it; an even exchange's new items
    cost exactly what was returned: a unit price rounded up, the cents over taken off."""
    if line.unit_price is not None:
        return PlatformExchangeLine(line.id, line.variant_id, line.quantity, line.unit_price)
    unit = worth.split(line.quantity)[0]
    over = unit * line.quantity - worth
    return PlatformExchangeLine(line.id, line.variant_id, line.quantity, unit, over or None)


def _exactly(units: list[int] | None, count: int) -> tuple[int, ...]:
    """``units`` when they are ``count`` units, else none (the platform picks them)."""
    return tuple(units) if units is not None and len(units) == count else ()


def _adopt(change: Change) -> list[fx.Effect]:
    """A return the customer opened on the platform (``ReturnRequest.platform_return_id``):
    no new platform return; the requested one is approved or declined as returnflow
    decided (a review decides later)."""
    record = change.record
    units: dict[str, int] = {}
    for line in record.lines:
        units[line.order_line_id] = units.get(line.order_line_id, 0) + line.quantity
    # held there until paid, as the platform said when the return was read
    owed = balance.held_there(record, record.exchange_status == "awaiting_payment")
    change.update(
        platform_units=tuple(PlatformUnits(line_id, count) for line_id, count in units.items()),
        exchange_lines=tuple(  # on the platform return already
            attrs.evolve(line, status="held")
            if line.platform_item_id and line.status == "pending" and owed
            else line
            for line in record.exchange_lines
        ),
    )
    change.note("platform_return_adopted", {"platform_return": record.refs.platform_return_id})
    if record.status == "pending_review":
        return []
    if record.status == "declined":
        reason = record.decline_reason
        return [_make(change, fx.DeclinePlatformReturn, reason=reason.value if reason else "OTHER")]
    return [_make(change, fx.ApprovePlatformReturn)]


def _review_outcome(change: Change, moves: Sequence[tuple[str, str, str]]) -> list[fx.Effect]:
    """A platform return opened as requested (the return went to review) is approved or
    declined with it."""
    for source, target, _ in moves:
        if source != "pending_review":
            continue
        if target == "declined":
            reason = change.record.decline_reason
            return [
                _make(
                    change,
                    fx.DeclinePlatformReturn,
                    reason=reason.value.upper() if reason else "OTHER",
                )
            ]
        if target != "pending_review":
            return [_make(change, fx.ApprovePlatformReturn)]
    return []


def _cancel_lines(change: Change, ids: Sequence[str]) -> None:
    """Exchange lines cancelled: on the platform they are never processed (the return's
    close or cancel leaves them unfulfilled)."""
    change.update(exchange_lines=exchange.with_status(change.record, set(ids), "cancelled"))
    change.note("exchange_lines_cancelled", {"lines": ", ".join(ids)})
    change.publish("exchange_cancelled", lines=list(ids))


def _settle(change: Change, policy: ReturnPolicy, planned: Sequence[fx.Effect]) -> list[fx.Effect]:
    """Remove what will never be processed, process what was settled (with the refund and
    the exchange lines released), dispose what is processed and accepted."""
    record = change.record
    by_line = {units.order_line_id: units for units in record.platform_units}
    # every order line of the platform return, also one a person took out of the return
    settled = dict.fromkeys(by_line, 0)
    accepted = dict.fromkeys(by_line, 0)
    restocked = dict.fromkeys(by_line, 0)
    for line in record.lines:
        settled[line.order_line_id] = settled.get(line.order_line_id, 0) + line.settled
        accepted[line.order_line_id] = accepted.get(line.order_line_id, 0) + line.accepted
        restocked[line.order_line_id] = restocked.get(line.order_line_id, 0) + line.restocked
    effects: list[fx.Effect] = []
    finished = record.completed_at == change.now or record.status in ("closed", "reset")
    removals: dict[str, int] = {}
    if finished:  # what was not settled now never will be: out of the platform return
        removals = {
            line_id: units.quantity - units.removed - max(settled[line_id], units.processed)
            for line_id, units in by_line.items()
        }
        removals = {line_id: count for line_id, count in removals.items() if count > 0}
    gone = _cancelled_items(record)  # never to ship: out of the platform return too
    if removals or gone:
        fields = {"exchange_line_ids": gone} if gone else {}
        if gone:
            change.note("platform_exchange_removed", {"lines": ", ".join(gone)})
        effects.append(_make(change, fx.RemovePlatformLines, lines=_quantities(removals), **fields))
        by_line = {
            k: attrs.evolve(u, removed=u.removed + removals.get(k, 0)) for k, u in by_line.items()
        }
    refunds = [e for e in planned if isinstance(e, fx.IssueRefund)]
    credits = [e for e in planned if isinstance(e, fx.IssueStoreCredit)]
    zero = Money.zero(record.currency)
    # The order's shipping and duties given back go with the processing apart from the
    # lines' refund (Shopify's refundShipping / refundDuties by duty id); a store credit
    # carries its share in the gift card. Neither is in the platform's figure for the units.
    shipping_back = Money.sum((e.original_shipping or zero for e in refunds), record.currency)
    duty_refunds = _by_duty(refunds)
    refund = Money.sum((e.amount for e in refunds), record.currency) - shipping_back
    refund = refund - Money.sum((d.amount for d in duty_refunds), record.currency)
    outside = Money.sum(  # a store credit's share of them, and its bonus: in the gift card
        ((e.original_shipping or zero) + (e.duties or zero) + (e.bonus or zero) for e in credits),
        record.currency,
    )
    released = any(isinstance(e, fx.ReleaseExchange) for e in planned)
    exchange_ids = tuple(
        line.id for line in record.exchange_lines if released and line.status in ("pending", "held")
    )
    to_process = {
        line_id: settled[line_id] - units.processed
        for line_id, units in by_line.items()
        if settled[line_id] > units.processed
    }
    settling = any(entry.event == "settled" for entry in change.history) or any(
        isinstance(e, (fx.IssueRefund, fx.IssueStoreCredit, fx.ReleaseExchange)) for e in planned
    )
    if settling and (to_process or exchange_ids or refund):
        whole = not any(u.processed for u in by_line.values()) and all(
            u.quantity - u.removed == to_process.get(k, 0) for k, u in by_line.items()
        )
        credit = Money.sum((e.amount for e in credits), record.currency) - outside
        expected, owed = refund + credit, None
        if whole:  # the platform nets the whole return (see _whole), but for the shares
            # of the exchanged lines' restocking fee owed apart, never on its lines
            owed = money.owed(change, planned)
            owed -= min(money.restocking_owed(record.history, record.currency), max(owed, zero))
            expected, owed = money.whole(
                record, expected, owed, paid_apart=_paid_by_capture(record)
            )
        else:  # the outbound shipping of this change the units paid, not a balance
            outbound = money.outbound(change.history, record.currency)
            owed = money.owed(change, planned)
            # nor the shares of the return shipping fee owed apart, as far as what the
            # customer paid counts them (not in the call's figure)
            outbound += min(money.owed_apart(record.history, record.currency), max(owed, zero))
            if exchange_ids and _pays_for_items(record, to_process):
                # the platform nets the items against all of the call's units (units
                # refunded apart too), without the outbound shipping: the balance the
                # customer pays for them is not refunded of those units
                expected = max(expected + outbound - owed, zero)
            else:  # no items, or items ahead of the units paying for them: compared apart
                expected = expected + max(outbound - owed, zero)
            owed = None
        effects.append(
            _make(
                change,
                fx.ProcessPlatformReturn,
                lines=_quantities(to_process),
                exchange_line_ids=exchange_ids,
                refund=refund,
                refund_shipping=shipping_back or None,
                refund_duties=duty_refunds,
                expected=expected,
                expected_owed=owed,
                owed_paid_apart=_paid_by_capture(record),
                shipping_fee_share=money.shipping_fee_share(
                    record.history if whole else change.history, record.currency, whole=whole
                ),
            )
        )
        by_line = {
            k: attrs.evolve(u, processed=u.processed + to_process.get(k, 0))
            for k, u in by_line.items()
        }
    disposals: list[fx.Disposal] = []
    for line_id, units in by_line.items():
        # only units whose processing the platform confirmed (its write-back plans them)
        done = units.restocked + units.not_restocked
        due = min(units.confirmed, accepted[line_id]) - done
        if due <= 0:
            continue
        restock = max(0, min(due, restocked[line_id] - units.restocked))
        if restock:
            disposals.append(fx.Disposal(line_id, restock, Disposition.RESTOCKED))
        if due - restock:
            disposals.append(fx.Disposal(line_id, due - restock, Disposition.NOT_RESTOCKED))
        by_line[line_id] = attrs.evolve(
            units,
            restocked=units.restocked + restock,
            not_restocked=units.not_restocked + due - restock,
        )
    if disposals:
        effects.append(_make(change, fx.DisposePlatformUnits, disposals=tuple(disposals)))
    change.update(platform_units=tuple(by_line[u.order_line_id] for u in record.platform_units))
    return effects


def _pays_for_items(record: ReturnRecord, to_process: dict[str, int]) -> bool:
    """Whether a call of ``to_process`` units with the exchange's items has units paying for
    them (an exchanged line's), or none at all: the platform's figure nets the items against
    all of the call's units. With units that never pay for them only (an instant exchange
    released by the receipt that refunds the others), the items are compared apart from
    those units (the dispatcher asks the platform for the units alone), and what they ask
    is ahead of the exchanged units' later call, as when a scan released them first: those
    units are paid in full, whatever the customer paid for the items."""
    exchanged = {line.order_line_id for line in record.lines if isinstance(line.outcome, Exchange)}
    return not to_process or bool(exchanged & to_process.keys())


def _cancelled_items(record: ReturnRecord) -> tuple[str, ...]:
    """The exchange lines cancelled on the platform return and not taken out of it yet."""
    removed = [e for e in record.history if e.event == "platform_exchange_removed"]
    out = {i for e in removed for i in str(e.payload["lines"]).split(", ")}
    return tuple(
        x.id
        for x in record.exchange_lines
        if x.status == "cancelled" and x.platform_item_id and x.id not in out
    )


def _captured(record: ReturnRecord) -> Money | None:
    """An instant exchange's authorization captured (QC failed, the units never came) and
    kept: it pays for the new items the platform return asks to be paid."""
    refunded = any(e.event == "capture_refunded" for e in record.history)
    return None if refunded else exchange.captured(record)


def _paid_by_capture(record: ReturnRecord) -> Money | None:
    """What a captured authorization kept pays of the new items the platform return asks to
    be paid, at most what was captured (``None``: nothing): the items whose units did not
    come back accepted, and those it paid in full before their units came back (the parcel
    returned to origin): completion pays such units out rather than spending them on items
    paid already (:func:`~returnflow.decisions.exchange.paid_before`), whether the capture
    and the receipts came in one change or apart. Only returnflow knows this: the
    platform's figure nets every item against the units processed, and a balance paid on
    the platform return does not enter it."""
    captured = _captured(record)
    if captured is None:
        return None
    back = {line.id for line in record.lines if line.settled >= line.quantity}
    back -= exchange.paid_before(record, back)  # their units are paid out (completion)
    paid = min(captured, exchange.cost(record, exchange.paid_by_capture(record, back)))
    return paid or None


def _by_duty(refunds: Sequence[fx.IssueRefund]) -> tuple[DutyRefund, ...]:
    """The duties the refunds give back, by duty id."""
    given: dict[str, Money] = {}
    for effect in refunds:
        for duty in effect.duty_refunds:
            given[duty.duty_id] = (
                given[duty.duty_id] + duty.amount if duty.duty_id in given else duty.amount
            )
    return tuple(DutyRefund(duty, amount) for duty, amount in given.items())


def _quantities(counts: dict[str, int]) -> tuple[LineQuantity, ...]:
    return tuple(LineQuantity(line_id, count) for line_id, count in counts.items())
