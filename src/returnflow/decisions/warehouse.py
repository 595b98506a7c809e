"""The warehouse's facts: a receipt (units received, QC passed or failed, dispositions) and
its Finished, which completes the return (seed 000, seed 002)."""

from __future__ import annotations

import attrs

from returnflow.decisions import carrier, completion, locations, review
from returnflow.decisions.change import Change
from returnflow.domain.destinations import several
from returnflow.domain.inbound import Disposition, ReceivedLine, WarehouseFinished, WarehouseReceipt
from returnflow.domain.model import QcResult
from returnflow.domain.policy import Completion, RefundTrigger, ReturnPolicy
from returnflow.errors import InvalidPayload
from returnflow.lifecycle import effects as fx
from returnflow.ports.commerce import LineQuantity

__all__ = ["accepted", "check_lines", "finished", "receipt"]


def accepted(item: ReceivedLine) -> bool:
    """Whether a received unit counts as accepted: QC passed and not reported missing."""
    return item.qc is QcResult.PASS and item.disposition is not Disposition.MISSING


def check_lines(change: Change, event: WarehouseReceipt) -> dict[str, list[ReceivedLine]]:
    """The receipt's entries by return line; :class:`~returnflow.errors.InvalidPayload`
    naming ``lines[i].line_id`` for a line the return does not have."""
    record = change.record
    received: dict[str, list[ReceivedLine]] = {}
    for index, item in enumerate(event.lines):
        line = record.line(item.line_id)
        if line is None:
            raise InvalidPayload(
                f"lines[{index}].line_id", item.line_id, f"return {record.id} has no such line"
            )
        received.setdefault(line.id, []).append(item)
    return received


_SHORT = "warehouse finished a short receipt"


def receipt(change: Change, event: WarehouseReceipt, policy: ReturnPolicy) -> str:
    """Apply a receipt; return why it was ignored, or ``""`` when it applied.

    Raises :class:`~returnflow.errors.InvalidPayload` naming ``lines[i].line_id`` for a line
    the return does not have, and ``lines[i].quantity`` for more units than it expects."""
    received = check_lines(change, event)
    if not change.allows("receive"):  # late: the return moved on; recorded, not refused
        return change.ignore(event, f"receipt while {change.record.status}")
    for index, item in enumerate(event.lines):
        line = change.record.line(item.line_id)
        assert line is not None
        total = sum(part.quantity for part in received[line.id])
        if total > line.outstanding:  # the line's first entry is named
            raise InvalidPayload(
                f"lines[{index}].quantity",
                item.quantity,
                f"line {line.id} expects {line.outstanding} more unit(s)",
            )
    # the parcel reached the warehouse: it was handed in and delivered, scanned or not
    carrier.reached(change, policy, "deliver", "received")
    record = change.record
    lines = {line.id: line for line in record.lines}
    restock: list[LineQuantity] = []
    summary: list[str] = []
    for line_id, items in received.items():
        line = lines[line_id]
        passed = sum(item.quantity for item in items if accepted(item))
        failed = sum(item.quantity for item in items if not accepted(item))
        notes = tuple(item.note for item in items if item.note)
        condition = next(
            (item.condition for item in reversed(items) if item.condition), line.condition
        )
        to_restock = sum(
            item.quantity for item in items if accepted(item) and _restocks(item, policy)
        )
        if to_restock:
            restock.append(LineQuantity(line.order_line_id, to_restock))
        lines[line_id] = attrs.evolve(
            line,
            received=line.received + passed + failed,
            accepted=line.accepted + passed,
            rejected=line.rejected + failed,
            restocked=line.restocked + to_restock,
            condition=condition,
            qc_notes=line.qc_notes + notes,
        )
        summary.append(f"{line.order_line_id}: {passed} pass, {failed} fail")
    change.update(lines=tuple(lines[line.id] for line in record.lines))
    at = {"location": event.location_id} if event.location_id else {}
    change.fire("receive", {"received": "; ".join(summary), **at}, receipts=event.lines)
    if completion.fully_received(change):  # a shortfall named before is made good
        reasons = change.record.review_reasons
        change.update(review_reasons=tuple(r for r in reasons if not r.startswith(_SHORT)))
    change.publish("update", received=summary, **at)
    change.notify("item_received", received="; ".join(summary))
    if policy.refund_trigger is RefundTrigger.ON_RECEIVED:
        completion.pay_early(change, policy, accepted_only=True, why="received")
    if policy.completion is Completion.ON_RECEIPT and completion.fully_received(change):
        completion.complete(change, policy)
    if restock:  # after the customer's money: its answer changes nothing on the return
        change.effect(fx.Restock, lines=tuple(restock))
    return ""


def _restocks(item: ReceivedLine, policy: ReturnPolicy) -> bool:
    if item.disposition is None:
        return policy.restock_accepted
    return item.disposition is Disposition.RESTOCKED


def finished(change: Change, event: WarehouseFinished, policy: ReturnPolicy) -> str:
    """The warehouse is done with the return: complete it, or send a short receipt to a
    person. Return why it was ignored, or ``""`` when it applied."""
    record = change.record
    if several(record):  # one of the locations finished
        return locations.finished_at(change, event, policy)
    if record.status not in ("item_received", "needs_review"):
        return change.ignore(event, f"warehouse finished while {record.status}")
    if record.completed_at is not None:  # a receipt completed it already: once is enough
        return change.ignore(event, "warehouse finished a return already completed")
    if not completion.fully_received(change):
        short = ", ".join(
            f"{line.order_line_id}: {line.received}/{line.quantity}"
            for line in record.lines
            if line.requires_receipt and line.outstanding
        )
        if record.status == "needs_review":
            return change.ignore(event, f"short receipt ({short}) already in review")
        # what is missing now: a shortfall named before (units came since) is superseded
        change.update(
            review_reasons=tuple(
                reason for reason in record.review_reasons if not reason.startswith(_SHORT)
            )
        )
        review.flag(change, f"{_SHORT}: {short}")
        return ""
    if not change.allows("close"):
        return change.ignore(event, f"warehouse finished while {record.status}")
    completion.complete(change, policy)
    return ""
