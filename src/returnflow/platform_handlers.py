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
wins. When the platform's wins, the refund it moves is written on the return (the
``platform_money_taken`` note) before the call: a retry (its answer lost, a crash) sends the
same call under the same key, though the platform's figure leaves out what was processed.
So is the platform's net figure of one call of several when later calls pay from it (it
asks for exchange items shipped ahead of the units paying for them, or pays from that): a
retry notes the figure the first attempt compared, not the one left after it acted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

import attrs

from returnflow import _processed_there as processed_there
from returnflow._answers import id_lists_of, id_pairs_of, ids_of, money_of
from returnflow._delivery import WriteFirst
from returnflow._platform_balance_calls import (
    BalanceRefunded,
    pay_platform_balance,
    refund_platform_balance,
)
from returnflow._platform_calls import (
    ENDED,
    amount_of,
    dispose_platform_units,
    items_left,
    known,
    line_ids,
    never_opened,
    platform_of,
    port_of,
    remove_items,
    remove_platform_lines,
    tried,
)
from returnflow.decisions.change import Change
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
    "BalanceRefunded",
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
    there: processed_there.There | None = None
    """Units a person processed in the platform's admin first (:mod:`._processed_there`)."""


def open_platform_return(
    d: Dispatcher, effect: fx.OpenPlatformReturn, record: ReturnRecord
) -> object:
    """Open the platform return; ``None`` (nothing opened) for a return that ended before
    it opened: not asked at all when no attempt was made yet, else asked again (an
    attempt may have opened it: the answer under the same key gives its id, and the
    cancel planned when the return ended cancels it) and done when the platform refuses.
    """
    ended = record.status in ENDED and record.refs.platform_return_id is None
    if ended and not tried(d, effect):
        return None
    try:
        opened = port_of(d, effect).open_return(
            effect.shop,
            effect.order_id,
            effect.lines,
            exchange_lines=effect.exchange_lines,
            return_shipping_fee=effect.return_shipping_fee,
            requested=effect.requested,
            idempotency_key=effect.key,
        )
    except PortError as error:
        if ended and not error.retryable:  # nothing opened under this key, nor to open
            return None
        raise
    ids_of(opened, "return_id")
    id_pairs_of(opened, "line_ids", "exchange_line_ids")
    return opened


def approve_platform_return(
    d: Dispatcher, effect: fx.ApprovePlatformReturn, record: ReturnRecord
) -> object:
    if never_opened(d, effect, record):  # nothing there to move
        return None
    port, return_id = platform_of(d, effect, record)
    now = port.get_return(effect.shop, return_id)
    if now.status.value != "REQUESTED":  # approved there already, or moved on by a person
        return now
    if record.status in ENDED:  # ended since: the cancel planned after it takes it away
        return now
    return port.approve(effect.shop, return_id, idempotency_key=effect.key)


def decline_platform_return(
    d: Dispatcher, effect: fx.DeclinePlatformReturn, record: ReturnRecord
) -> object:
    if never_opened(d, effect, record):  # nothing there to move
        return None
    port, return_id = platform_of(d, effect, record)
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
    port, return_id = platform_of(d, effect, record)
    refund, theirs, net = effect.refund, None, None
    reviewed = any(  # a person looked at the difference and closed the return: it goes out
        entry.event == "payouts_reopened" and effect.key in str(entry.payload.get("effects"))
        for entry in record.history
    )
    exchange_ids = {
        line.id: line.platform_item_id for line in record.exchange_lines if line.platform_item_id
    }
    lines = line_ids(record, effect, effect.lines)
    exchange_lines = [
        Quantity(
            known(exchange_ids.get(line.id), "platform exchange line", effect),
            line.quantity,
        )
        for line in record.exchange_lines
        if line.id in effect.exchange_line_ids
    ]
    cancelled = {x.id for x in record.exchange_lines if x.status == "cancelled"}
    if effect.expected_owed is not None and cancelled:
        # a cancelled exchange's items still on the platform return (their removal was
        # planned after this processing, the return opened late): out first
        items = items_left(port, effect, record, return_id, cancelled)
        if items:
            remove_items(port, effect, return_id, items, f"{effect.key}/cancelled")
    there = processed_there.decided(record, effect)
    if there is None and effect.lines:  # a person may have processed some in the admin
        processed_there.find(d, port, effect, record, return_id, reviewed=reviewed)  # decides
        processed_there.unexplained(port, effect, record, return_id, reviewed=reviewed)
    if there is not None:  # only what the person left, with the refund decided for it
        return _left(d, effect, record, port, return_id, there, exchange_lines, reviewed)
    taken = _taken(record, effect)
    if taken is not None:  # decided by the first attempt (which may have acted): sent again
        theirs, refund, net = taken
    elif effect.expected is not None and not reviewed:
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
        else:
            wins = d.policy_of(record).platform_money is MoneyAuthority.PLATFORM
            if wins or _counts_later(record, net):
                # the platform's figure moves the refund, or its net figure what later calls
                # pay: written before the call, so that a retry sends it again and notes the
                # same figure (the platform's leaves out what a call processed)
                raise WriteFirst(partial(_note_taken, effect.key, theirs, refund, net))
    try:
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
    except PortError as error:
        if error.retryable or not effect.lines:
            raise
        # refused: no attempt acted, and the units the platform shows processed are a person's
        processed_there.find(d, port, effect, record, return_id, reviewed=reviewed, refused=True)
        raise
    return _answered(answer, effect, refund, theirs, effect.expected, net)


def _left(
    d: Dispatcher,
    effect: fx.ProcessPlatformReturn,
    record: ReturnRecord,
    port: PlatformReturns,
    return_id: str,
    there: processed_there.There,
    exchange_lines: list[Quantity],
    reviewed: bool,
) -> Processed:
    """Process what a person left of ``effect`` (:mod:`._processed_there`): the units left
    reconciled first as one call of several would be (when ``effect.expected`` is set: the
    platform's figure for those units and items against returnflow's,
    :func:`._processed_there.reduced`), a figure that wins written before the call under
    the key of the units sent, then sent; the shipping and duties alone when no unit is
    left. A retry after the call acted finds them processed (the platform's figure for
    them gone) and sends the same call."""
    refund, theirs, ours, net = there.refund, None, None, None
    left = processed_there.reduced(record, effect, there)
    if left is not None and left.expected is not None and not reviewed:
        taken = _taken(record, left)
        if taken is not None:
            theirs, refund, net = taken
        elif not processed_there.acted(port, effect, record, return_id, there):
            lines = line_ids(record, effect, left.lines)
            theirs, refund, net = _reconciled(
                d, left, record, port, return_id, lines, exchange_lines
            )
            wins = d.policy_of(record).platform_money is MoneyAuthority.PLATFORM
            if (wins and refund != there.refund) or _counts_later(record, net):
                raise WriteFirst(partial(_note_taken, left.key, theirs, refund, net))
        ours = left.expected if theirs is not None else None
    answer = processed_there.send(port, effect, record, return_id, there, exchange_lines, refund)
    if answer is None:  # nothing left, nor shipping or duties: done without a call
        zero = Money.zero(refund.currency)
        return Processed(ProcessResult((), zero, (), False), zero, there=there)
    return _answered(answer, effect, refund, theirs, ours, net, there)


def _answered(
    answer: ProcessResult, effect: fx.ProcessPlatformReturn, refund: Money, *figures: Any
) -> Processed:
    """What a processing call did: ``figures``, :class:`Processed`'s after ``refunded``."""
    id_lists_of(answer, "refund_ids", "exchange_fulfillment_ids")
    money_of(answer, "refunded")
    extras = [duty.amount for duty in effect.refund_duties]
    if effect.refund_shipping is not None:
        extras.append(effect.refund_shipping)
    total = Money.sum((refund, *extras), refund.currency)
    return Processed(answer, total, *figures)


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
    # the return shipping fee the call's units bear (each unit its own share), as an amount
    share = effect.shipping_fee_share
    fee: Money | bool = share if share is not None else effect.shipping_fee
    if effect.expected_owed is None:  # one call of several: its own units
        outcome = port.calculate(
            effect.shop, return_id, lines, exchange_lines=exchange_lines, shipping_fee=fee
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
            alone = port.calculate(effect.shop, return_id, lines, shipping_fee=fee)
            theirs = alone.refund
            net = net - (alone.refund - alone.owed)
        if ahead and paying:  # only the exchanged units pay for the items shipped ahead
            worth = port.calculate(effect.shop, return_id, paying, shipping_fee=False)
            theirs = max(net - min(-ahead, max(worth.refund - worth.owed, zero)), zero)
    else:
        outcome = port.calculate(
            effect.shop, return_id, shipping_fee=True if share is None else share
        )
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


_TAKEN = "platform_money_taken"
"""The history note of the figures a processing's first attempt decided, that its retries
send and note again: written when the platform's money wins, or when later calls pay from
its net figure (payload: ``key``, ``platform``, ``refund`` and, for one call of several,
``net``)."""


def _note_taken(key: str, theirs: Money, refund: Money, net: Money | None, change: Change) -> None:
    details = {"key": key, "platform": str(theirs), "refund": str(refund)}
    change.note(_TAKEN, details if net is None else {**details, "net": str(net)})


def _taken(
    record: ReturnRecord, effect: fx.ProcessPlatformReturn
) -> tuple[Money, Money, Money | None] | None:
    """The platform's figure, the refund and the net figure the first attempt of ``effect``
    decided and noted (``None``: none noted)."""
    for entry in record.history:
        if entry.event == _TAKEN and entry.payload.get("key") == effect.key:
            currency = effect.refund.currency
            net = entry.payload.get("net")
            return (
                amount_of(entry.payload["platform"], currency),
                amount_of(entry.payload["refund"], currency),
                None if net is None else amount_of(net, currency),
            )
    return None


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
                ahead + amount_of(entry.payload["platform_net"], currency), Money.zero(currency)
            )
    return ahead


def _counts_later(record: ReturnRecord, net: Money | None) -> bool:
    """Whether a call's net figure ``net`` (one call of several) moves what the platform
    asked ahead for exchange items (:func:`_owed_ahead`), which the later calls pay from:
    it asks for items (negative), or pays from what earlier calls asked. A retry after the
    call acted (its answer lost, a crash) could not get it again: the platform's figure then
    leaves out the units and items the call processed (an item processed counts 0.00)."""
    if net is None:
        return False
    zero = Money.zero(net.currency)
    return net < zero or _owed_ahead(record, net.currency) < zero


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


def close_platform_return(
    d: Dispatcher, effect: fx.ClosePlatformReturn, record: ReturnRecord
) -> object:
    if never_opened(d, effect, record):  # nothing there to move
        return None
    port, return_id = platform_of(d, effect, record)
    now = port.get_return(effect.shop, return_id)
    if now.status.value != "OPEN":  # closed by its last processing, or by a person there
        return now
    return port.close(effect.shop, return_id, idempotency_key=effect.key)


def reopen_platform_return(
    d: Dispatcher, effect: fx.ReopenPlatformReturn, record: ReturnRecord
) -> object:
    if never_opened(d, effect, record):  # nothing there to move
        return None
    port, return_id = platform_of(d, effect, record)
    now = port.get_return(effect.shop, return_id)
    if now.status.value != "CLOSED":
        return now
    return port.reopen(effect.shop, return_id, idempotency_key=effect.key)


def cancel_platform_return(
    d: Dispatcher, effect: fx.CancelPlatformReturn, record: ReturnRecord
) -> object:
    if never_opened(d, effect, record):  # nothing there to move
        return None
    port, return_id = platform_of(d, effect, record)
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
