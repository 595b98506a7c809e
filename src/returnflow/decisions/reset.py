"""A reset (seed 000, partial receipt): the return closes as ``reset`` and a new one holds
only its accepted units, linked both ways, written in the same commit."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from returnflow.decisions import _platform_balance as balance
from returnflow.decisions import completion, exchange, locations, platform
from returnflow.decisions.change import Change
from returnflow.domain.model import ReturnLine, ReturnRecord
from returnflow.domain.policy import Completion, ReturnPolicy
from returnflow.errors import InvalidPayload, InvalidTransition
from returnflow.lifecycle import effects as fx
from returnflow.lifecycle.table import TABLE

__all__ = ["check", "reset"]


def check(change: Change) -> list[ReturnLine]:
    """The lines a reset of ``change``'s return carries over (those with accepted units).

    Raises :class:`~returnflow.errors.InvalidTransition` when the return cannot be reset
    (also when its exchange was released: the new items shipped against the units it holds,
    so a person closes it with a decision instead) and
    :class:`~returnflow.errors.InvalidPayload` when no unit was accepted."""
    if not change.allows("reset_return"):
        change.refuse("reset_return")
    record = change.record
    if record.exchange_status == "released":
        allowed = tuple(event for event in TABLE.allowed(record.state) if event != "reset_return")
        raise InvalidTransition(
            record.id,
            record.state,
            "reset_return",
            allowed,
            "the exchange shipped: close it with a decision instead",
        )
    carried = [line for line in change.record.lines if line.accepted > 0]
    if not carried:
        raise InvalidPayload(
            "lines", [line.id for line in change.record.lines], "no accepted unit to carry over"
        )
    return carried


def reset(change: Change, policy: ReturnPolicy, child_id: str) -> Change:
    """Reset the return of ``change`` into a new one, ``child_id``; return the child's change.

    Raises what :func:`check` raises. Needs ``change.outbox`` (a warehouse return planned
    but not yet answered is cancelled too)."""
    parent = change.record
    carried = check(change)
    child = _child(parent, carried, child_id, change, policy)
    change.fire("reset_return", {"child_id": child_id}, child_id=child_id)
    change.update(child_id=child_id)
    # The carried units stay settled by the payouts given up here: they go out again under
    # their own keys, never under new ones.
    completion.reopen_given_up(change)
    locations.stop_expecting(change)
    kept = exchange.carried(parent, carried)
    if parent.balance_paid is not None and not parent.balance_settled:
        # What the customer paid goes with the exchange it paid for, or back to them.
        if not kept:
            change.effect(fx.RefundBalance, amount=parent.balance_paid)
        change.update(balance_settled=True)
    dropped = [
        line.id
        for line in parent.exchange_lines
        if line.status in ("pending", "held") and line not in kept
    ]
    if change.allows("cancel_exchange"):
        if dropped:
            change.effect(fx.CancelExchange, exchange_line_ids=tuple(dropped))
        change.fire(
            "cancel_exchange",
            {"transferred_to": child_id, "cancelled": ", ".join(dropped) or "none"},
        )
    change.publish("update", child_id=child_id)
    return child


def _child(
    parent: ReturnRecord,
    carried: Sequence[ReturnLine],
    child_id: str,
    change: Change,
    policy: ReturnPolicy,
) -> Change:
    lines: list[ReturnLine] = []
    renamed: dict[str, str] = {}
    for index, line in enumerate(carried, start=1):
        new_id = f"{child_id}-{index}"
        renamed[line.id] = new_id
        units = line.accepted
        lines.append(
            attrs.evolve(
                line,
                id=new_id,
                quantity=units,
                received=units,
                accepted=units,
                rejected=0,
                restocked=min(line.restocked, units),
                settled=min(line.settled, units),
                unit_amounts=line.unit_amounts[:units],
                unit_taxes=line.unit_taxes[:units],
                unit_shipping=line.unit_shipping[:units],
                unit_shipping_taxes=line.unit_shipping_taxes[:units],
                unit_duties=line.unit_duties[:units],
                duty_shares=tuple((duty, shares[:units]) for duty, shares in line.duty_shares),
                units=line.units[:units],
            )
        )
    exchange_lines = [
        attrs.evolve(
            line,
            id=f"{renamed[line.return_line_id]}-x",
            return_line_id=renamed[line.return_line_id],
            origin_id=line.id,
        )
        for line in exchange.carried(parent, carried)
    ]
    exchange_status = parent.exchange_status if exchange_lines else TABLE.initial[1]
    record = ReturnRecord(
        id=child_id,
        shop=parent.shop,
        order_id=parent.order_id,
        currency=parent.currency,
        status="item_received",
        exchange_status=exchange_status,
        lines=tuple(lines),
        exchange_lines=tuple(exchange_lines),
        refs=attrs.evolve(
            parent.refs,
            warehouse_rma_id=None,
            location_rma_ids=(),
            refund_ids=(),
            credit_ids=(),
            platform_return_id=None,
            platform_line_ids=(),
        )
        if exchange_lines
        else type(parent.refs)(tracking_number=parent.refs.tracking_number),
        created_at=change.now,
        updated_at=change.now,
        customer_email=parent.customer_email,
        customer_note=parent.customer_note,
        taxes_included=parent.taxes_included,
        parent_id=parent.id,
        balance_paid=parent.balance_paid if exchange_lines and not parent.balance_settled else None,
        return_shipping_fee=parent.return_shipping_fee,
        exchange_shipping_fee=parent.exchange_shipping_fee,
        policy_version=parent.policy_version,
    )
    child = Change(record, now=change.now, actor=change.actor, base=0)
    paid: dict[str, int] = {}
    for line in lines:  # settled on the reset return: paid (and processed) there
        paid[line.order_line_id] = paid.get(line.order_line_id, 0) + line.settled
    # the parent's settlements charged the return shipping fee: the reset return's do not
    fee = parent.return_shipping_fee
    took = {"return_shipping_fee": str(fee)} if fee is not None else {}
    child.note("created_by_reset", {"parent_id": parent.id, "settled": paid, **took})
    balance.carry(parent, child)  # a balance paid on the platform stays paid there
    locations.expect(child, policy, lines)
    child.publish("request", parent_id=parent.id)
    if policy.completion is Completion.ON_RECEIPT:
        completion.complete(child, policy)
    platform.plan(child, policy)  # native mode: its own platform return
    return child
