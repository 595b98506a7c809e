"""Native mode: the balance an exchange leaves, as the platform return holds it.

Two things :mod:`returnflow.decisions.platform` asks of this module:

- **What was given back is given back there too.** A balance charged through the Payments
  port is paid on the platform return (``PayPlatformBalance``); when returnflow gives part of
  it back (``RefundBalance``: an exchange line cancelled, a settlement that needs less of
  the payment, a return cancelled or reset), the platform is told once the payment
  processor confirmed it (``RefundPlatformBalance``), never more than the platform last said
  was paid, so that its money matches returnflow's.
- **A return the customer opened on the platform follows the platform's hold.** The service
  reads the platform return when such a return is opened (the ``platform_return_read``
  note: its status, whether it holds the exchange, what is owed and what was paid). The
  exchange is held when the platform holds it, not when returnflow would; a balance the
  platform says was paid already (nothing owed, something paid) is not charged again
  through the Payments port: it counts as prepaid, and what is given back of it is given
  back on the platform (where it was paid) rather than through the Payments port.

Pure: reads the change, returns amounts and decisions; never calls a port.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from returnflow.decisions import exchange
from returnflow.decisions.change import Change
from returnflow.domain.model import ReturnRecord
from returnflow.domain.money import Money
from returnflow.lifecycle import effects as fx

__all__ = [
    "READ",
    "carry",
    "charged",
    "held_there",
    "last_figure",
    "note_asked",
    "note_read",
    "paid_on",
    "paid_there",
    "paid_write_back",
    "refunds",
    "take_over_prepay",
    "write_back",
]

READ = "platform_return_read"
"""The history event of the platform return read when a return adopted it."""
_PAID_THERE = "balance_paid_on_platform"
_PAID = "platform_balance_paid"
_REFUNDED = "platform_balance_refunded"
_ASKED = "platform_balance_refund_asked"
_PAY_ASKED = "platform_balance_pay_asked"


def note_read(change: Change, read: Any) -> None:
    """Record what the platform said of the return the customer opened there (``read``: a
    :class:`~returnflow.ports.platform_returns.PlatformReturn`)."""
    owed, paid = read.balance_owed, read.balance_paid
    change.note(
        READ,
        {
            "platform_return": read.return_id,
            "status": read.status.value,
            "exchange_on_hold": bool(read.exchange_on_hold),
            "owed": str(owed) if owed else "",
            "paid": str(paid) if paid else "",
        },
    )


def _read(record: ReturnRecord) -> Mapping[str, Any] | None:
    return next((e.payload for e in reversed(record.history) if e.event == READ), None)


def _money(text: object, currency: str) -> Money | None:
    """An amount as notes show it (``"15.00 EUR"``); ``None`` for none."""
    if not isinstance(text, str) or not text:
        return None
    return Money(text.split(" ")[0], currency)


def held_there(record: ReturnRecord, fallback: bool) -> bool:
    """Whether the platform holds the exchange of the return the customer opened there, as
    it said when the return adopted it (``fallback`` when it was not read)."""
    read = _read(record)
    return fallback if read is None else bool(read.get("exchange_on_hold"))


def paid_there(record: ReturnRecord) -> bool:
    """Whether the return's balance was paid on the platform, not through the Payments
    port (a return the customer opened and paid there)."""
    return any(entry.event == _PAID_THERE for entry in record.history)


def paid_on(record: ReturnRecord) -> str | None:
    """The platform return the balance was paid on when it is not the return's own (one
    this return was reset from); ``None`` for the return's own."""
    for entry in reversed(record.history):
        if entry.event == _PAID_THERE:
            where = entry.payload.get("platform_return")
            return where if isinstance(where, str) and where else None
    return None


def carry(parent: ReturnRecord, child: Change) -> None:
    """A reset carries the balance paid on the platform to the new return (``child``, which
    holds the exchange it paid for): it stays paid there, and what is given back of it
    later is given back on the platform return it was paid on, not through the Payments
    port (which never took it) nor on the new return's own platform return."""
    carried = child.record.balance_paid
    if carried is None or not paid_there(parent):
        return
    where = paid_on(parent) or parent.refs.platform_return_id or ""
    amount = min(carried, _paid_on_platform(parent))
    child.note(
        _PAID_THERE,
        {"amount": str(amount), "due": str(carried), "platform_return": where, "from": parent.id},
    )


def take_over_prepay(change: Change) -> None:
    """The prepaid balance of an adopted exchange that the platform says is paid already:
    not charged again (the planned ``ChargeBalance`` goes), counted as prepaid (at most
    what the platform says was paid), and the exchange waits only for its release."""
    record = change.record
    read = _read(record)
    if read is None or read.get("owed") or read.get("exchange_on_hold"):
        return  # owed there (or never read): returnflow charges it as it would
    paid = _money(read.get("paid"), record.currency)
    charges = [e for e in change.effects if isinstance(e, fx.ChargeBalance) and e.prepay]
    if not charges or paid is None or not change.allows("pay_balance"):
        return
    due = Money.sum((e.amount for e in charges), record.currency)
    taken = min(due, paid)
    change.effects[:] = [e for e in change.effects if not any(e is c for c in charges)]
    change.update(balance_paid=taken)
    change.note(_PAID_THERE, {"amount": str(taken), "due": str(due)})
    change.fire("pay_balance", {"amount": str(taken), "paid_on": "platform"})


def refunds(change: Change, planned: Sequence[fx.Effect]) -> tuple[list[Money], list[fx.Effect]]:
    """What to give back on the platform in this change, and the ``RefundBalance`` effects
    it replaces (a balance paid on the platform is given back there, not through the
    Payments port).

    A balance paid through the Payments port: each refund it confirmed in this change
    (``balance_refunded``). A balance paid on the platform: each ``RefundBalance`` planned,
    in its place. Together at most what the platform last said was paid and not given back:
    the running total is capped, as the platform answers none of them before the next."""
    record = change.record
    if paid_there(record):
        back = [e for e in planned if isinstance(e, fx.RefundBalance)]
        return _capped(record, [e.amount for e in back]), [*back]
    confirmed = [
        _money(entry.payload.get("amount"), record.currency)
        for entry in change.history
        if entry.event == "balance_refunded"
    ]
    amounts = _capped(record, [amount for amount in confirmed if amount is not None])
    return _beyond_kept(record, amounts), []


def note_pay_asked(change: Change, effect: fx.PayPlatformBalance) -> None:
    """Record a payment asked of the platform (a captured authorization): until it answers,
    it counts as paid there when a refund of the balance is weighed (:func:`_beyond_kept`)."""
    change.note(_PAY_ASKED, {"amount": str(effect.amount), "key": effect.key})


def _beyond_kept(record: ReturnRecord, amounts: Sequence[Money]) -> list[Money]:
    """``amounts``, in order, at most what the platform holds paid beyond what returnflow
    keeps of the payments it asked the platform to record (paid, less every refund the
    payment processor confirmed). Where the platform took less than a payment asked (an
    instant exchange's capture paid after a prepaid fee: the fee paid part of the items
    there), giving the fee back through the Payments port already brings both to the same
    figure, and the platform return keeps what pays its items."""
    currency = record.currency
    zero = Money.zero(currency)
    asked, waiting = zero, []  # paid there, and asked of it not answered yet
    for entry in record.history:
        if entry.event not in (_PAY_ASKED, _PAID):
            continue
        amount = _money(entry.payload.get("amount"), currency) or zero
        if entry.event == _PAY_ASKED:
            waiting.append(amount)
        elif entry.event == _PAID:
            asked = asked + amount
            if amount in waiting:
                waiting.remove(amount)
    asked = asked + Money.sum(waiting, currency)
    given = Money.sum(
        (
            _money(e.payload.get("amount"), currency) or zero
            for e in record.history
            if e.event == "balance_refunded"
        ),
        currency,
    )
    left = _paid_on_platform(record) - max(asked - given, zero)
    capped = []
    for amount in amounts:
        taken = min(amount, left)
        if taken <= zero:
            break
        capped.append(taken)
        left = left - taken
    return capped


def _capped(record: ReturnRecord, asked: Sequence[Money]) -> list[Money]:
    """``asked``, in order, each at most what is left of the platform's figure of what was
    paid once those before it are given back (none left: none asked)."""
    left = _paid_on_platform(record)
    amounts = []
    for amount in asked:
        given = min(amount, left)
        if not given:
            break
        amounts.append(given)
        left = left - given
    return amounts


def note_asked(change: Change, asked: Sequence[fx.RefundPlatformBalance]) -> None:
    """Record the refunds asked of the platform in this change: until it answers them, what
    it last said was paid counts them as given back (see :func:`_paid_on_platform`)."""
    for effect in asked:
        change.note(_ASKED, {"amount": str(effect.amount), "key": effect.key})


def _paid_on_platform(record: ReturnRecord) -> Money:
    """What the platform last said was paid of the balance and not given back (its answer
    to the last payment or refund returnflow asked of it), less the refunds asked of it
    that it has not answered yet (planned by an earlier change, or failing and retried)."""
    zero = Money.zero(record.currency)
    answered = {e.payload.get("key") for e in record.history if e.event == _REFUNDED}
    waiting = Money.sum(
        (
            _money(e.payload.get("amount"), record.currency) or zero
            for e in record.history
            if e.event == _ASKED and e.payload.get("key") not in answered
        ),
        record.currency,
    )
    left = last_figure(record) - waiting
    return left if left > zero else zero


def last_figure(record: ReturnRecord) -> Money:
    """What the platform last said was paid of the balance and not given back: its answer to
    the last payment or refund returnflow asked of it (before any: what was paid there, less
    what was given back)."""
    zero = Money.zero(record.currency)
    for entry in reversed(record.history):
        if entry.event in (_PAID, _REFUNDED) and "paid" in entry.payload:
            return _money(entry.payload["paid"], record.currency) or zero
    paid = [e for e in record.history if e.event in (_PAID, _PAID_THERE)]  # before any figure
    back = [e for e in record.history if e.event == _REFUNDED]
    total = Money.sum(
        (_money(e.payload.get("amount"), record.currency) or zero for e in paid), record.currency
    ) - Money.sum(
        (_money(e.payload.get("amount"), record.currency) or zero for e in back), record.currency
    )
    return total if total > zero else zero


def write_back(change: Change, effect: fx.RefundPlatformBalance, result: object) -> None:
    """The platform learnt what was given back: what it says is paid and owed now, what
    returnflow sent (``amount``) and, apart, what it found given back there already
    (``there``: a person refunded it in the platform's admin)."""
    paid = getattr(result, "balance_paid", None)
    owed = getattr(result, "balance_owed", None)
    sent = getattr(result, "sent", effect.amount)
    there = getattr(result, "there", None)
    details: dict[str, object] = {
        "amount": str(sent),
        "paid": str(paid or Money.zero(change.record.currency)),
        "key": effect.key,
    }
    if owed:
        details["owed"] = str(owed)
    if there:
        details["there"] = str(there)
    change.note(_REFUNDED, details)
    if paid_there(change.record):  # given back where it was paid: the customer's money
        change.publish("balance_refunded", amount=str(effect.amount))
        change.notify("balance_refunded", amount=str(effect.amount))


def charged(change: Change) -> list[Money]:
    """What the customer paid of the return's balance in this change (a charge confirmed:
    an upsell's balance, fees owed), to pay on the platform return too
    (``PayPlatformBalance``): the platform holds an exchange's items while a balance is
    owed."""
    record = change.record
    paid = [
        _money(str(entry.payload["amount"]), record.currency)
        for entry in change.history
        if entry.event == "balance_charged" and "amount" in entry.payload
    ]
    return [amount for amount in paid if amount]


def paid_write_back(change: Change, effect: fx.PayPlatformBalance, result: object) -> None:
    """The platform learnt of the payment: once it no longer holds the exchange, the new
    items it fulfilled on hold ship (released) and the others wait for processing."""
    held = bool(getattr(result, "exchange_on_hold", False))
    owed = getattr(result, "balance_owed", None)
    details: dict[str, object] = {
        "amount": str(effect.amount),
        "exchange_on_hold": held,
    }
    if owed:
        details["owed"] = str(owed)
    paid = getattr(result, "balance_paid", None)
    details["paid"] = str(paid or Money.zero(change.record.currency))
    change.note("platform_balance_paid", details)
    if held:
        return
    done = {item for item, units in getattr(result, "exchange_processed", ()) if units}
    record = change.record
    shipped = {
        x.id for x in record.exchange_lines if x.status == "held" and x.platform_item_id in done
    }
    waiting = {x.id for x in record.exchange_lines if x.status == "held"} - shipped
    if waiting:
        change.update(exchange_lines=exchange.with_status(change.record, waiting, "pending"))
    if shipped:
        change.update(exchange_lines=exchange.with_status(change.record, shipped, "released"))
        change.publish("exchange_released", lines=sorted(shipped))
        change.notify("exchange_released")
