"""A return cancelled before anything was shipped or received, and the wind-down a cancel
and an expiry share: what an approval set in motion is undone."""

from __future__ import annotations

from returnflow.decisions import exchange, locations, platform_changes
from returnflow.decisions.change import Change
from returnflow.domain.policy import ReturnPolicy
from returnflow.errors import InvalidTransition
from returnflow.lifecycle import effects as fx
from returnflow.lifecycle.table import TABLE

__all__ = ["cancel", "wind_down"]


def cancel(change: Change, policy: ReturnPolicy) -> None:
    """The customer (or an agent, or the source of an import) cancels the return.
    Needs ``change.outbox`` (see :func:`wind_down`).

    Raises :class:`~returnflow.errors.InvalidTransition` (with the reason) for a return some
    of whose units were received and accepted or paid for already (a refund on hand-in): a
    cancel would keep the units or the money without a word; it is closed by hand instead,
    with a decision for what was not received (:func:`returnflow.decisions.completion`)."""
    record = change.record
    if any(line.accepted or line.settled for line in record.lines):
        allowed = tuple(event for event in TABLE.allowed(record.state) if event != "cancel")
        raise InvalidTransition(
            record.id,
            record.state,
            "cancel",
            allowed,
            "units were received or paid for: close it with a decision instead",
        )
    change.fire("cancel")
    wind_down(change, policy, why="return cancelled")
    change.publish("cancel")
    change.notify("return_cancelled")


def wind_down(change: Change, policy: ReturnPolicy, *, why: str) -> None:
    """Undo what an approval set in motion: label, warehouse return, exchange, balance.

    A label or warehouse return planned but not yet answered (so not in the record's refs)
    is found in ``change.outbox`` and undone after it, in outbox order."""
    refs = change.record.refs
    given = platform_changes.platform_label(change.record)  # not ours to void
    if not given and (refs.tracking_number or change.planned(fx.CreateLabel)):
        change.effect(fx.VoidLabel)  # after the label in the outbox, so it exists then
    locations.stop_expecting(change)
    exchange.cancel(change, why=why)
    # an instant exchange already shipped: the goods are the customer's, so is the bill
    owed = exchange.capture_due(change.record, policy)
    exchange.settle_authorization(change, capture=True, why=why, amount=owed)
    record = change.record
    if record.exchange_status == "released":
        return  # the new items shipped: a balance paid for them is theirs, not given back
    if record.balance_paid is not None and not record.balance_settled:
        change.effect(fx.RefundBalance, amount=record.balance_paid)
        change.update(balance_settled=True)
