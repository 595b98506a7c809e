"""The dispatcher's handlers of native mode's balance effects: what the customer paid of the
balance a platform return leaves owed (:class:`~returnflow.lifecycle.effects.PayPlatformBalance`),
and what of it was given back (:class:`~returnflow.lifecycle.effects.RefundPlatformBalance`).
Each amount is decided once, by the first attempt, and written on the return before the call
(:class:`~returnflow._delivery.WriteFirst`), so that a retry sends the same call under the same
key; a person who paid or gave back part of it in the platform's admin is followed."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

import attrs

from returnflow._delivery import WriteFirst
from returnflow._platform_calls import amount_of, known, platform_of, port_of
from returnflow.decisions import _platform_balance as balance
from returnflow.decisions.change import Change
from returnflow.domain.model import ReturnRecord
from returnflow.domain.money import Money
from returnflow.lifecycle import effects as fx
from returnflow.ports.platform_returns import PlatformReturn

if TYPE_CHECKING:
    from returnflow.dispatch import Dispatcher

__all__ = ["BalanceRefunded", "pay_platform_balance", "refund_platform_balance"]


def pay_platform_balance(
    d: Dispatcher, effect: fx.PayPlatformBalance, record: ReturnRecord
) -> object:
    """Pay what the platform says is owed, at most ``effect.amount`` (nothing when it says
    nothing is: its figure was checked before, or a person recorded the payment there).

    The amount is decided once, by the first attempt, and written on the return before the
    call (the ``platform_balance_pay_decided`` note): a retry after a call that acted (its
    answer lost) finds less owed, and sends the same call under the same key rather than
    a smaller payment, or nothing when nothing is owed any more."""
    port, return_id = platform_of(d, effect, record)
    now = port.get_return(effect.shop, return_id)
    if now.balance_owed is None or not now.balance_owed:
        return now
    decided = _pay_decided(record, effect)
    if decided is None:
        amount = min(effect.amount, now.balance_owed)
        raise WriteFirst(partial(_note_pay, effect.key, amount))
    return port.pay_balance(effect.shop, return_id, decided, idempotency_key=effect.key)


_PAY_DECIDED = "platform_balance_pay_decided"


def _note_pay(key: str, amount: Money, change: Change) -> None:
    change.note(_PAY_DECIDED, {"key": key, "amount": str(amount)})


def _pay_decided(record: ReturnRecord, effect: fx.PayPlatformBalance) -> Money | None:
    """The payment the first attempt of ``effect`` decided (``None``: none yet)."""
    for entry in record.history:
        if entry.event == _PAY_DECIDED and entry.payload.get("key") == effect.key:
            return amount_of(entry.payload["amount"], effect.amount.currency)
    return None


@attrs.frozen
class BalanceRefunded:
    """What giving back a balance on the platform did: the platform return as it answered
    (or as read, when nothing was sent), the amount sent (zero: none) and the part of the
    effect's amount the platform showed given back already (a person refunded it in the
    platform's admin)."""

    now: PlatformReturn
    sent: Money
    there: Money

    @property
    def balance_paid(self) -> Money | None:
        return self.now.balance_paid

    @property
    def balance_owed(self) -> Money | None:
        return self.now.balance_owed


def refund_platform_balance(
    d: Dispatcher, effect: fx.RefundPlatformBalance, record: ReturnRecord
) -> object:
    """Give back ``effect.amount`` of the balance paid on the platform return, less what
    the platform shows given back beyond what returnflow knew (a person refunded part of
    it in the platform's admin: that part is not given back twice, nor refused by the
    platform as more than is left); nothing when nothing is left to give back.

    What returnflow knew paid there is the platform's figure its last payment or refund
    was answered with (:func:`returnflow.decisions._platform_balance.last_figure`); the
    effect brings it to that figure less ``effect.amount``, and sends what the platform
    now shows above it, at most ``effect.amount``. On the platform return of another
    return (``effect.paid_on``: one this return was reset from), whose figures the return
    did not note, it is at most what is paid there. The amount is decided once, by the
    first attempt that finds something to give back, and written on the return before the
    call (the ``platform_balance_refund_decided`` note): a retry sends the same call under
    the same key (a part under a key naming it), or nothing once the platform shows the
    figure reached (the call acted and its answer was lost)."""
    port = port_of(d, effect)  # on the platform return it was paid on
    return_id = effect.paid_on or known(
        record.refs.platform_return_id, "platform_return_id", effect
    )
    now = port.get_return(effect.shop, return_id)
    zero = Money.zero(effect.amount.currency)
    paid = now.balance_paid or zero
    left = min(paid, effect.amount)
    if return_id == record.refs.platform_return_id:  # the figures noted are this return's
        left = min(left, paid - (balance.last_figure(record) - effect.amount))
    decided = _refund_decided(record, effect)
    if decided is None:
        if left <= zero:  # a person gave it all back there
            return BalanceRefunded(now, zero, effect.amount)
        raise WriteFirst(partial(_note_refund, effect.key, left, effect.amount - left))
    amount, there = decided
    if left <= zero:  # the call acted and its answer was lost (or a person gave the rest)
        return BalanceRefunded(now, amount, there)
    key = effect.key if amount == effect.amount else f"{effect.key}/{amount.amount}"
    answer = port.refund_balance(effect.shop, return_id, amount, idempotency_key=key)
    return BalanceRefunded(answer, amount, there)


_REFUND_DECIDED = "platform_balance_refund_decided"


def _note_refund(key: str, amount: Money, there: Money, change: Change) -> None:
    change.note(_REFUND_DECIDED, {"key": key, "amount": str(amount), "there": str(there)})


def _refund_decided(
    record: ReturnRecord, effect: fx.RefundPlatformBalance
) -> tuple[Money, Money] | None:
    """The refund the first attempt of ``effect`` decided and the part it found given back
    there already (``None``: none decided yet)."""
    currency = effect.amount.currency
    for entry in record.history:
        if entry.event == _REFUND_DECIDED and entry.payload.get("key") == effect.key:
            there = entry.payload.get("there")
            return (
                amount_of(entry.payload["amount"], currency),
                Money.zero(currency) if there is None else amount_of(there, currency),
            )
    return None
