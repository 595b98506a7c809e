"""Native mode's write-backs: what the platform answered to the effects of
:mod:`returnflow.decisions.platform`, written back on the return (merged by
:mod:`returnflow.decisions.results`).

Pure: reads the change and the answer, never calls a port.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from returnflow.decisions import _platform_balance as balance
from returnflow.decisions import completion, exchange
from returnflow.decisions.change import Change
from returnflow.lifecycle import effects as fx

__all__ = ["DISPOSED_THERE", "WRITE_BACK"]


def _opened(change: Change, effect: fx.OpenPlatformReturn, result: object) -> None:
    """The platform return's id and line ids; the exchange lines now sit on it. No answer:
    the return ended before its platform return opened, and none was opened."""
    record = change.record
    return_id = getattr(result, "return_id", None)
    if return_id is None:
        change.note("platform_return_not_opened", {"status": record.status})
        return
    line_ids = tuple(getattr(result, "line_ids", ()))
    exchange_ids = dict(getattr(result, "exchange_line_ids", ()))
    # The platform holds the new items only while a balance is owed (an upsell not paid
    # yet); an even exchange or one for less waits for processing, not held.
    on_hold = bool(getattr(result, "exchange_on_hold", False))
    # Opened as requested (the return in review): the exchange is not held by returnflow yet
    # and the platform's hold says nothing of it; the approval holds it (and charges).
    held = on_hold and record.exchange_status != "no_exchange"
    change.update(
        refs=attrs.evolve(record.refs, platform_return_id=return_id, platform_line_ids=line_ids),
        exchange_lines=tuple(
            attrs.evolve(
                line,
                status="held" if line.status == "pending" and held else line.status,
                platform_item_id=exchange_ids[line.id],
            )
            if line.id in exchange_ids
            else line
            for line in record.exchange_lines
        ),
    )
    status = getattr(getattr(result, "status", None), "value", None)
    change.note(
        "platform_return_opened",
        {"platform_return": return_id, "status": status, "exchange_on_hold": on_hold},
    )
    change.publish("update", platform_return_id=return_id)
    if exchange_ids and held:
        change.publish("exchange_held", platform_return_id=return_id)


_MOVED = {
    fx.ApprovePlatformReturn.kind: "platform_return_approved",
    fx.DeclinePlatformReturn.kind: "platform_return_declined",
    fx.ClosePlatformReturn.kind: "platform_return_closed",
    fx.ReopenPlatformReturn.kind: "platform_return_reopened",
    fx.CancelPlatformReturn.kind: "platform_return_cancelled",
}


def _moved(change: Change, effect: fx.Effect, result: object) -> None:
    """A status change asked of the platform (``platform_status``: where it is now: a
    person may have moved it there first)."""
    status = getattr(getattr(result, "status", None), "value", None)
    change.note(_MOVED[effect.kind], {"platform_status": status})


def _processed(change: Change, effect: fx.ProcessPlatformReturn, result: Any) -> None:
    """The refund and the exchange fulfillments (a difference with the platform's figures
    that no side wins by policy never gets here: the delivery was refused, and
    :func:`returnflow.decisions.results.escalate` sent the return to a person)."""
    platform, ours = getattr(result, "platform", None), getattr(result, "returnflow", None)
    answer = result.result
    if platform is not None and platform != ours:
        change.note("platform_money_differs", {"platform": str(platform), "returnflow": str(ours)})
    there = getattr(result, "there", None)
    if there is not None and there.platform is not None and there.platform != there.returnflow:
        # a person refunded their units in the platform's admin: their figure stands
        change.note(
            "platform_money_differs",
            {
                "platform": str(there.platform),
                "returnflow": str(there.returnflow),
                "processed_there": ", ".join(
                    f"{line.order_line_id}x{line.quantity}" for line in there.lines
                ),
            },
        )
    done = {line.order_line_id: line.quantity for line in effect.lines}
    change.update(
        platform_units=tuple(
            attrs.evolve(units, confirmed=units.confirmed + done.get(units.order_line_id, 0))
            for units in change.record.platform_units
        )
    )
    refs = change.record.refs
    refund_ids = tuple(answer.refund_ids)
    known = [i for i in refund_ids if i not in refs.refund_ids]  # not its webhook's, again
    change.update(refs=attrs.evolve(refs, refund_ids=(*refs.refund_ids, *known)))
    refunded = getattr(result, "refunded", None)
    details = {"refunds": ", ".join(refund_ids), "amount": str(refunded)}
    if effect.exchange_line_ids and effect.expected_owed is None:  # items, one call of several
        net = getattr(result, "platform_net", None)
        if net is not None and platform == ours:  # a difference decided by policy: settled
            details["platform_net"] = str(net)
    change.note("platform_return_processed", details)
    if effect.exchange_line_ids and getattr(answer, "exchange_on_hold", False):
        # Fulfilled on hold: a balance is still owed; paying it releases them.
        ids = set(effect.exchange_line_ids)
        change.update(exchange_lines=exchange.with_status(change.record, ids, "held"))
        change.note("exchange_held_for_payment", {"lines": ", ".join(sorted(ids))})
        change.publish("exchange_held", fulfillments=list(answer.exchange_fulfillment_ids))
    elif effect.exchange_line_ids:
        ids = set(effect.exchange_line_ids)
        change.update(exchange_lines=exchange.with_status(change.record, ids, "released"))
        change.publish("exchange_released", fulfillments=list(answer.exchange_fulfillment_ids))
        change.notify("exchange_released")
    if refund_ids and refunded:
        change.publish("refund_created", refund_id=refund_ids[0], amount=str(refunded))
        change.notify("refund_issued", amount=str(refunded))
    completion.close_if_settled(change, delivered=effect.key)


def _noted(change: Change, effect: fx.Effect, result: object) -> None:
    change.note(effect.kind, {"described": fx.describe(effect)})


DISPOSED_THERE = "platform_disposed_there"
"""The history note of units a disposal found disposed of on the platform already (payload:
``lines``, each ``order line: units`` and the disposition returnflow did not send;
``sent``, what it did send; ``platform``, the kinds the platform reports for the units
found, which a person may have given otherwise than returnflow would): a person's
disposition in the platform's admin stands."""


def _disposed(change: Change, effect: fx.DisposePlatformUnits, result: object) -> None:
    """The disposal noted; units it found disposed of there already noted apart (a person
    gave their disposition in the platform's admin: returnflow follows it)."""
    _noted(change, effect, result)
    there = getattr(result, "there", ())
    if there:
        sent = getattr(result, "sent", ())
        change.note(
            DISPOSED_THERE,
            {
                "lines": ", ".join(_disposal(d) for d in there),
                "sent": ", ".join(_disposal(d) for d in sent),
                "platform": ", ".join(_disposal(d) for d in getattr(result, "theirs", ())),
            },
        )


def _disposal(disposal: fx.Disposal) -> str:
    return f"{disposal.order_line_id}: {disposal.quantity} {disposal.disposition.value}"


WRITE_BACK: dict[type[fx.Effect], Callable[[Change, Any, object], None]] = {
    fx.OpenPlatformReturn: _opened,
    fx.ApprovePlatformReturn: _moved,
    fx.DeclinePlatformReturn: _moved,
    fx.ClosePlatformReturn: _moved,
    fx.ReopenPlatformReturn: _moved,
    fx.CancelPlatformReturn: _moved,
    fx.ProcessPlatformReturn: _processed,
    fx.RemovePlatformLines: _noted,
    fx.PayPlatformBalance: balance.paid_write_back,
    fx.RefundPlatformBalance: balance.write_back,
    fx.DisposePlatformUnits: _disposed,
}
"""Native mode's write-backs (:mod:`returnflow.decisions.results` merges them)."""
