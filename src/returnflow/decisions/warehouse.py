"""The warehouse's facts: a receipt (units received, QC passed or failed, dispositions) and
its Finished, which completes the return (seed 000, seed 002)."""

from __future__ import annotations

from returnflow.decisions import carrier, completion, locations, review
from returnflow.decisions.change import Change
from returnflow.domain._evolve import evolve
from returnflow.domain.destinations import several
from returnflow.domain.inbound import Disposition, ReceivedLine, WarehouseFinished, WarehouseReceipt
from returnflow.domain.model import QcResult, ReturnLine, ReturnRecord
from returnflow.domain.policy import Completion, RefundTrigger, ReturnPolicy
from returnflow.errors import InvalidPayload
from returnflow.lifecycle import effects as fx
from returnflow.ports.commerce import LineQuantity

__all__ = ["accepted", "check_lines", "finished", "receipt", "units_to_come"]


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


def units_to_come(record: ReturnRecord, line: ReturnLine) -> int:
    """The units of ``line`` the warehouse has still to report: not received, nor in a
    receipt parked with the return (one that waits for an upsell's balance charge or an
    instant exchange's authorization counts: its units are at the warehouse already)."""
    parked = sum(
        int(item["quantity"])
        for fact in record.parked
        if fact.kind == "receipt"
        for item in fact.lines
        if record.line(str(item["line_id"])) is line
    )
    return max(line.outstanding - parked, 0)


def check_quantities(change: Change, event: WarehouseReceipt) -> None:
    """:class:`~returnflow.errors.InvalidPayload` naming ``lines[i].quantity`` (a line's
    first entry) for more units of a line than it has still to come
    (:func:`units_to_come`)."""
    received = check_lines(change, event)
    record = change.record
    for index, item in enumerate(event.lines):
        line = record.line(item.line_id)
        assert line is not None
        total = sum(part.quantity for part in received[line.id])
        left = units_to_come(record, line)
        if total > left:
            raise InvalidPayload(
                f"lines[{index}].quantity",
                item.quantity,
                f"line {line.id} expects {left} more unit(s)",
            )


_SHORT = "warehouse finished a short receipt"


def receipt(change: Change, event: WarehouseReceipt, policy: ReturnPolicy) -> str:
    """Apply a receipt; return why it was ignored, or ``""`` when it applied.

    Raises :class:`~returnflow.errors.InvalidPayload` naming ``lines[i].line_id`` for a line
    the return does not have, and ``lines[i].quantity`` for more units than it expects."""
    received = check_lines(change, event)
    if not change.allows("receive"):  # late: the return moved on; recorded, not refused
        return change.ignore(event, f"receipt while {change.record.status}")
    check_quantities(change, event)
    in_review = change.record.status == "needs_review"
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
        lines[line_id] = evolve(
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
    if in_review and change.record.status == "item_received":
        _still_in_review(change)
    return ""


# Reasons the units coming back answer: the parcel did arrive, the return moved.
_ANSWERED_BY_UNITS = ("parcel returned to origin", "no progress in ")


def _still_in_review(change: Change) -> None:
    """Units received while a person is to look: the return stays with the person unless
    the units answer every reason it went to them for (DESIGN.md section 6: the outcome
    must not depend on whether a failure was answered before or after the receipt)."""
    open_reasons = [
        reason
        for reason in change.record.review_reasons
        if not reason.startswith((_SHORT, *_ANSWERED_BY_UNITS))
    ]
    if open_reasons:
        change.fire(
            "flag", {"reason": open_reasons[-1], "kept": "units received"}, reason=open_reasons[-1]
        )


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
    if record.payouts_given_up:
        # completed, and a payout given up for good reopened it: a person closes it (and
        # the payout goes out again then), not the warehouse's Finished that follows
        return change.ignore(event, "warehouse finished a return whose payout a person decides")
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
