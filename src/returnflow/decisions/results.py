"""What a port answered, written back to the return (ids, labels, holds, confirmed money),
and what happens when a delivery the return depends on is given up."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from returnflow.decisions import completion, exchange, platform_write_back, review
from returnflow.decisions.change import Change
from returnflow.domain._evolve import evolve
from returnflow.domain.destinations import with_rma
from returnflow.lifecycle import effects as fx

__all__ = ["FORWARDED", "NEEDS_OUTBOX", "NEEDS_WRITE_BACK", "apply_result", "escalate"]


def _warehouse_return(change: Change, effect: Any, result: object) -> None:
    rma = getattr(result, "rma_id", None)
    where = getattr(effect, "location_id", None)
    change.update(refs=with_rma(change.record.refs, where, rma))
    change.note("warehouse_return_created", {"rma": rma, **({"location": where} if where else {})})


def _label(change: Change, effect: Any, result: object) -> None:
    tracking = getattr(result, "tracking_number", None)
    url = getattr(result, "label_url", None)
    change.update(refs=evolve(change.record.refs, tracking_number=tracking, label_url=url))
    for heir in change.heirs:  # reset before the label came: the new return ships it too
        if heir.record.refs.tracking_number is None:
            heir.update(refs=evolve(heir.record.refs, tracking_number=tracking, label_url=url))
            heir.note("label_created", {"tracking": tracking, "from": change.record.id})
    if change.allows("send_label"):
        change.fire("send_label", {"tracking": tracking})
        qr = getattr(result, "qr_code_url", None)  # a drop-off's QR code
        extra = {"qr_code_url": qr} if isinstance(qr, str) else {}
        change.notify("label_sent", tracking_number=tracking, label_url=url, **extra)
        change.publish("update", tracking_number=tracking)
    else:
        change.note("label_created", {"tracking": tracking})


def _hold(change: Change, effect: fx.HoldExchange, result: object) -> None:
    record = change.record
    hold = getattr(result, "hold_id", None)
    platform_ids = dict(
        zip(
            (item.exchange_line_id for item in effect.items),
            getattr(result, "item_ids", ()),
            strict=False,
        )
    )
    change.update(
        refs=evolve(record.refs, exchange_hold_id=hold),
        exchange_lines=tuple(
            evolve(line, status="held", platform_item_id=platform_ids[line.id])
            if line.id in platform_ids
            else line
            for line in record.exchange_lines
        ),
    )
    change.note("exchange_held", {"hold": hold, "tag": effect.hold_tag})
    change.publish("exchange_held", hold_id=hold)
    # Reset before the hold was confirmed: the returns it was reset into carry the same
    # exchange lines (origin_id) and release this hold, so they learn it too.
    item_ids = {line: platform_ids[line] for line in platform_ids}
    for heir in change.heirs:
        record = heir.record
        carried = {
            line.id: item_ids[line.origin_id]
            for line in record.exchange_lines
            if line.origin_id in item_ids
        }
        if not carried:
            break
        heir.update(
            refs=evolve(record.refs, exchange_hold_id=record.refs.exchange_hold_id or hold),
            exchange_lines=tuple(
                evolve(line, status="held", platform_item_id=carried[line.id])
                if line.id in carried and line.status == "pending"
                else line
                for line in record.exchange_lines
            ),
        )
        heir.note("exchange_held", {"hold": hold, "tag": effect.hold_tag, "from": change.record.id})
        item_ids = carried


def _release(change: Change, effect: fx.ReleaseExchange, result: object) -> None:
    change.update(exchange_lines=exchange.with_status(change.record, None, "released", only="held"))
    change.note("exchange_released", {"tag_removed": effect.hold_tag, "try": effect.attempt})
    if effect.attempt == 1:  # a retry is not news to the customer or the helpdesk
        change.publish("exchange_released")
        change.notify("exchange_released")


def _cancel(change: Change, effect: fx.CancelExchange, result: object) -> None:
    ids = effect.exchange_line_ids
    change.update(exchange_lines=exchange.with_status(change.record, set(ids), "cancelled"))
    change.note("exchange_lines_cancelled", {"lines": ", ".join(ids)})
    change.publish("exchange_cancelled", lines=list(ids))


def _charged(change: Change, effect: fx.ChargeBalance, result: object) -> None:
    payment = getattr(result, "payment_id", "")
    if not effect.prepay:  # what a settlement found owed: it is accounted for there
        charged = change.record.balance_charged
        change.update(balance_charged=effect.amount if charged is None else charged + effect.amount)
        change.note("balance_charged", {"payment": payment, "amount": str(effect.amount)})
        change.publish("balance_charged", payment_id=payment, amount=str(effect.amount))
        return
    change.update(balance_paid=effect.amount)
    change.note("balance_charged", {"payment": payment, "amount": str(effect.amount)})
    if change.allows("pay_balance"):
        change.fire("pay_balance", {"amount": str(effect.amount)})
    change.publish("balance_charged", payment_id=payment, amount=str(effect.amount))
    for heir in change.heirs:  # reset before the payment came: the new return was paid
        if heir.record.balance_paid is None and heir.record.exchange_lines:
            heir.update(balance_paid=effect.amount)
            heir.note("balance_charged", {"payment": payment, "from": change.record.id})
            if heir.allows("pay_balance"):
                heir.fire("pay_balance", {"amount": str(effect.amount)})


def _balance_refunded(change: Change, effect: fx.RefundBalance, result: object) -> None:
    payment = getattr(result, "payment_id", "")
    change.note("balance_refunded", {"payment": payment, "amount": str(effect.amount)})
    change.publish("balance_refunded", payment_id=payment, amount=str(effect.amount))
    change.notify("balance_refunded", amount=str(effect.amount))


def _authorized(change: Change, effect: fx.AuthorizePayment, result: object) -> None:
    payment = getattr(result, "payment_id", None)
    change.update(
        refs=evolve(change.record.refs, payment_authorization_id=payment),
        payment_authorized=effect.amount,
    )
    change.note("payment_authorized", {"payment": payment, "amount": str(effect.amount)})
    change.publish("payment_authorized", payment_id=payment, amount=str(effect.amount))
    # An instant exchange: the payment to fall back on is there, the new items ship now;
    # not when exchanged units failed QC before it was answered (a receipt a person's review
    # let in while it was asked): completion cancels their items, as for any exchange.
    failed = exchange.rejected(change.record)
    if effect.hold_tag is not None and change.allows("release_exchange") and not failed:
        change.effect(fx.ReleaseExchange, hold_tag=effect.hold_tag)
        change.fire(
            "release_exchange",
            {"why": "instant exchange: payment authorized", "authorization": payment},
            authorized=True,
        )
    elif effect.hold_tag is not None:
        # It came after the exchange was decided otherwise: nothing shipped on it, or the
        # units it stood for are back. Still in flight otherwise: completion settles it.
        record = change.record
        exchanged = {line.return_line_id for line in record.exchange_lines}
        back = all(line.accepted >= line.quantity for line in record.lines if line.id in exchanged)
        if record.exchange_status != "released" or back:
            why = "exchanged units failed QC before it" if failed else "no longer needed"
            exchange.settle_authorization(change, capture=False, why=why)


def _captured(change: Change, effect: fx.CapturePayment, result: object) -> None:
    payment = getattr(result, "payment_id", "")
    authorization = change.record.refs.payment_authorization_id
    details = {"payment": payment, "authorization": authorization, "amount": str(effect.amount)}
    change.note("payment_captured", details)
    change.publish(
        "payment_captured",
        payment_id=payment,
        authorization_id=authorization,
        amount=str(effect.amount),
    )


def _voided(change: Change, effect: fx.VoidAuthorization, result: object) -> None:
    authorization = change.record.refs.payment_authorization_id
    change.note("authorization_voided", {"authorization": authorization})
    change.publish("authorization_voided", authorization_id=authorization)


def _refunded(change: Change, effect: fx.IssueRefund, result: object) -> None:
    refs = change.record.refs
    refund_id = getattr(result, "refund_id", "")
    change.update(refs=evolve(refs, refund_ids=(*refs.refund_ids, refund_id)))
    change.note("refund_issued", {"refund": refund_id, "amount": str(effect.amount)})
    change.publish("refund_created", refund_id=refund_id, amount=str(effect.amount))
    change.notify("refund_issued", amount=str(effect.amount))
    completion.close_if_settled(change, delivered=effect.key)


def _credited(change: Change, effect: fx.IssueStoreCredit, result: object) -> None:
    refs = change.record.refs
    credit_id = getattr(result, "credit_id", "")
    change.update(refs=evolve(refs, credit_ids=(*refs.credit_ids, credit_id)))
    change.note("store_credit_issued", {"credit": credit_id, "amount": str(effect.amount)})
    change.publish("credit_created", credit_id=credit_id, amount=str(effect.amount))
    change.notify("store_credit_issued", amount=str(effect.amount))
    completion.close_if_settled(change, delivered=effect.key)


_WRITE_BACK: dict[type[fx.Effect], Callable[[Change, Any, object], None]] = {
    fx.CreateWarehouseReturn: _warehouse_return,
    fx.CreateLabel: _label,
    fx.HoldExchange: _hold,
    fx.ReleaseExchange: _release,
    fx.CancelExchange: _cancel,
    fx.ChargeBalance: _charged,
    fx.RefundBalance: _balance_refunded,
    fx.AuthorizePayment: _authorized,
    fx.CapturePayment: _captured,
    fx.VoidAuthorization: _voided,
    fx.IssueRefund: _refunded,
    fx.IssueStoreCredit: _credited,
    **platform_write_back.WRITE_BACK,
}

NEEDS_WRITE_BACK = frozenset(_WRITE_BACK)
"""Effect types whose result changes the return; the others' results are only recorded."""

NEEDS_OUTBOX = frozenset({fx.IssueRefund, fx.IssueStoreCredit, fx.ProcessPlatformReturn})
"""Effect types whose write-back reads ``change.outbox`` (to close once all money is in)."""

FORWARDED = frozenset({fx.CreateLabel, fx.HoldExchange, fx.ChargeBalance})
"""Effect types whose result a reset return hands on to the returns it was reset into
(``change.heirs``): they carry its label, its exchange hold and its paid balance."""


def apply_result(change: Change, effect: fx.Effect, result: object) -> None:
    """Write back what the port answered for ``effect`` that the return needs: the warehouse
    RMA, the label (sent to the customer), the exchange hold and its items, the balance
    charged, the payment authorized, captured or voided, the refund or credit (closing a
    completed return once all its money is in)."""
    write_back = _WRITE_BACK.get(type(effect))
    if write_back is not None:
        write_back(change, effect, result)


def escalate(change: Change, effect: fx.Effect, message: str) -> None:
    """An effect the return depends on failed for good: a person has to look. A payout given
    up keeps its units settled and is remembered (``payouts_given_up``): the next completion
    re-opens it under its own key, since an attempt may have reached the platform."""
    reason = f"{effect.kind} failed: {message}"
    if isinstance(effect, (fx.IssueRefund, fx.IssueStoreCredit, fx.ProcessPlatformReturn)):
        given_up = change.record.payouts_given_up
        if effect.key not in given_up:
            change.update(payouts_given_up=(*given_up, effect.key))
    if change.allows("flag"):
        review.flag(change, reason)
    elif change.allows("reopen"):
        review.reopen(change, reason)
    else:
        change.note("effect_failed", {"effect": effect.kind, "error": message})
