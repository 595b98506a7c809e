"""The exchange: the new items held on the order, an upsell balance charged, the hold
released when the return allows it (seed 000, seed 003), or cancelled."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from returnflow.decisions.change import Change
from returnflow.domain.model import ExchangeLine, ReturnLine, ReturnRecord
from returnflow.domain.policy import ReleaseTrigger, ReturnPolicy
from returnflow.domain.settlement import settle
from returnflow.lifecycle import effects as fx
from returnflow.ports.commerce import ExchangeItem

__all__ = [
    "cancel",
    "carried",
    "hold",
    "release",
    "release_if_instant",
    "with_status",
]


def hold(change: Change, policy: ReturnPolicy) -> None:
    """Hold the pending exchange items on the order; with an upsell, charge the difference
    first (``awaiting_payment``). Paying does not release the exchange (seed 003): the
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
    exchanged = [
        (line, line.quantity, 0)
        for line in record.lines
        if any(item.return_line_id == line.id for item in pending)
    ]
    quote = settle(
        record.currency,
        exchanged,
        fees=policy.fees,
        exchange_lines=pending,
        charge_shipping=False,
    )
    if quote.balance_due:
        change.fire("require_payment", {"balance_due": str(quote.balance_due)})
        change.effect(fx.ChargeBalance, amount=quote.balance_due)
    else:
        change.fire("hold_exchange", {"tag": policy.hold_tag})


def release(change: Change, policy: ReturnPolicy, *, why: str) -> None:
    """Release the hold: the platform ships the new items."""
    change.effect(fx.ReleaseExchange, hold_tag=policy.hold_tag)
    change.fire("release_exchange", {"why": why})


def release_if_instant(change: Change, policy: ReturnPolicy) -> None:
    """An instant exchange is released once the parcel is handed in."""
    if policy.exchange_release is ReleaseTrigger.ON_HANDED_IN and change.allows("release_exchange"):
        release(change, policy, why="instant exchange: parcel handed in")


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
