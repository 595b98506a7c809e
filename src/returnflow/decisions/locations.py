"""A return sent to one or several locations: its warehouse expectations (one per location),
the location a receipt or a Finished names, and the return's completion when every location
said Finished (:mod:`returnflow.domain.destinations` has the values and the rules)."""

from __future__ import annotations

from collections.abc import Sequence

from returnflow.decisions import completion, review
from returnflow.decisions.change import Change
from returnflow.domain.destinations import (
    key_of,
    lines_at,
    locations,
    received_at,
    rma_at,
    several,
)
from returnflow.domain.inbound import WarehouseFinished, WarehouseReceipt
from returnflow.domain.model import ReturnLine, ReturnRecord
from returnflow.domain.policy import ReturnPolicy
from returnflow.errors import InvalidPayload
from returnflow.lifecycle import effects as fx
from returnflow.ports.commerce import LineQuantity

__all__ = ["check_fact", "expect", "finished_at", "ready", "stop_expecting"]

SHORT = "warehouse finished a short receipt"


def _name(location_id: str | None) -> str:
    return "the default location" if location_id is None else location_id


def _planned(change: Change, effect_type: type[fx.Effect], location_id: str | None) -> bool:
    return any(
        isinstance(entry.effect, effect_type)
        and getattr(entry.effect, "location_id", None) == location_id
        for entry in change.outbox
    )


def expect(change: Change, policy: ReturnPolicy, lines: Sequence[ReturnLine] | None = None) -> None:
    """Plan a warehouse return (``CreateWarehouseReturn``) for each location the lines that
    ship back go to (``lines``: the return's), unless one is there or planned
    (``change.outbox``) for that location already."""
    shipped = change.record.lines if lines is None else lines
    for where in locations(shipped):
        if rma_at(change.record.refs, where) or _planned(change, fx.CreateWarehouseReturn, where):
            continue
        change.effect(
            fx.CreateWarehouseReturn,
            lines=tuple(
                LineQuantity(line.order_line_id, line.quantity) for line in lines_at(shipped, where)
            ),
            reason=policy.warehouse_reason,
            action=policy.warehouse_action,
            location_id=where,
        )


def stop_expecting(change: Change) -> None:
    """Cancel the warehouse return of every location that has one or asked for one (found
    in ``change.outbox``, so it is cancelled after it is made)."""
    record = change.record
    wheres = [None, *(where for where, _ in record.refs.location_rma_ids)]
    wheres += [
        entry.effect.location_id
        for entry in change.outbox
        if isinstance(entry.effect, fx.CreateWarehouseReturn)
    ]
    done: list[str | None] = []
    for where in wheres:
        if where in done:
            continue
        done.append(where)
        if rma_at(record.refs, where) or _planned(change, fx.CreateWarehouseReturn, where):
            change.effect(fx.CancelWarehouseReturn, location_id=where)


def check_fact(record: ReturnRecord, event: WarehouseReceipt | WarehouseFinished) -> None:
    """Refuse a receipt or a Finished whose ``location_id`` the return does not go to:
    :class:`~returnflow.errors.InvalidPayload` naming ``lines[i].line_id`` (a received line
    sent elsewhere) or ``location_id``. A Finished that names none, on a return sent to
    several locations none of which is the default, names ``location_id`` too."""
    wheres = locations(record.lines)
    shown = ", ".join(_name(where) for where in wheres) or "nowhere"
    if isinstance(event, WarehouseReceipt):
        if event.location_id is None:
            return
        for index, item in enumerate(event.lines):
            line = record.line(item.line_id)
            if line is not None and line.location_id != event.location_id:
                raise InvalidPayload(
                    f"lines[{index}].line_id",
                    item.line_id,
                    f"line goes to {_name(line.location_id)}, not {event.location_id}",
                )
        return
    where = event.location_id
    if where is not None and where not in wheres:
        raise InvalidPayload("location_id", where, f"return {record.id} goes to: {shown}")
    if where is None and len(wheres) > 1 and None not in wheres:
        raise InvalidPayload(
            "location_id", where, f"return {record.id} goes to several locations: {shown}"
        )


def ready(change: Change, event: WarehouseFinished) -> bool:
    """Whether the units a Finished is about have all come: those of its location on a
    return sent to several, else every unit."""
    if several(change.record):
        return received_at(change.record, event.location_id)
    return completion.fully_received(change)


def finished_at(change: Change, event: WarehouseFinished, policy: ReturnPolicy) -> str:
    """A Finished at one location of a return sent to several: a short receipt there goes
    to a person; else the location is done, and the return completes when every location
    is. Return why it was ignored, or ``""`` when it applied."""
    record = change.record
    where = event.location_id
    if record.status not in ("item_received", "needs_review"):
        return change.ignore(event, f"warehouse finished while {record.status}")
    if record.completed_at is not None:
        return change.ignore(event, "warehouse finished a return already completed")
    if key_of(where) in record.finished_locations:
        return change.ignore(event, f"warehouse finished at {_name(where)} already")
    if not received_at(record, where):
        short = ", ".join(
            f"{line.order_line_id}: {line.received}/{line.quantity}"
            for line in lines_at(record.lines, where)
            if line.outstanding
        )
        if record.status == "needs_review":
            return change.ignore(event, f"short receipt at {_name(where)} ({short}) in review")
        at = f"{SHORT} at {_name(where)}"
        change.update(
            review_reasons=tuple(r for r in record.review_reasons if not r.startswith(at))
        )
        review.flag(change, f"{at}: {short}")
        return ""
    done = (*record.finished_locations, key_of(where))
    change.update(finished_locations=done)
    waiting = [_name(other) for other in locations(record.lines) if key_of(other) not in done]
    if waiting:
        change.note("warehouse_finished", {"location": _name(where), "waiting": waiting})
        return ""
    if not change.allows("close"):
        return change.ignore(event, f"warehouse finished while {record.status}")
    completion.complete(change, policy)
    return ""
