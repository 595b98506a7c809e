"""Inbound facts in any order: applied when the return can use them, parked until it can,
ignored with the reason when it never will.

Webhooks arrive late, twice and out of order. One table, :data:`WAITS`, says in which
lifecycle states each kind of fact waits: there, the return cannot use it yet but will be
able to later (a delivery before the label, the warehouse's Finished before its receipt, a
receipt before the return was approved). A fact that waits is parked on the record
(:class:`~returnflow.domain.model.ParkedFact`); every commit that moves the return then
applies the parked facts it can now use, in the order the facts happen in the world
(:data:`RANK`: picked up, delivered or sent back, received, finished; then by arrival), within
that same commit (:func:`drain`). In any other state the fact's own rule decides
(:mod:`returnflow.decisions.carrier`,
:mod:`returnflow.decisions.warehouse`): applied, or recorded as ignored with why. A repeated
delivery of a fact, parked or not, is a duplicate (its inbound id was committed with it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from returnflow.decisions import (
    carrier,
    exchange,
    locations,
    platform_changes,
    platform_facts,
    warehouse,
)
from returnflow.decisions.change import Change
from returnflow.domain.inbound import (
    CarrierStatus,
    CarrierUpdate,
    InboundEvent,
    PlatformReturnEvent,
    PlatformTopic,
    ReceivedLine,
    WarehouseFinished,
    WarehouseReceipt,
)
from returnflow.domain.model import ParkedFact
from returnflow.domain.policy import ReturnPolicy
from returnflow.errors import ReturnflowError

__all__ = ["RANK", "WAITS", "drain", "kind_of", "parked_event", "receive", "waits"]

_BEFORE_APPROVAL = frozenset({"requested", "eligibility_check", "pending_review"})

WAITS: Mapping[str, frozenset[str]] = {
    # a scan waits for an approval (a person may approve a return in review)
    "picked_up": _BEFORE_APPROVAL | {"needs_review"},
    "delivered": _BEFORE_APPROVAL | {"needs_review"},
    "returned_to_origin": _BEFORE_APPROVAL | {"needs_review"},
    # a receipt waits for an approval only: from approval on it is received
    "receipt": _BEFORE_APPROVAL,
    # Finished waits for the whole receipt (item_received: when units are still missing)
    "finished": _BEFORE_APPROVAL
    | {"approved", "label_sent", "in_transit", "delivered", "needs_review", "item_received"},
    # the platform return reopened before returnflow saw the close it follows
    "platform_reopen": _BEFORE_APPROVAL
    | {"approved", "label_sent", "in_transit", "delivered", "item_received", "refunded"},
    # a label attached on the platform waits for the approval (and, approved, for the label
    # returnflow is buying: platform_changes.label_expected)
    "platform_label": _BEFORE_APPROVAL,
}
"""Per kind of fact, the lifecycle states in which it is parked until the return can use it."""

RANK: Mapping[str, int] = {
    "platform_label": -1,
    "picked_up": 0,
    "delivered": 1,
    "returned_to_origin": 1,
    "receipt": 2,
    "finished": 3,
    "platform_reopen": 4,
}
"""The order facts happen in: parked facts are applied in it (then by arrival)."""

_APPLY: Mapping[type[Any], Callable[[Change, Any, ReturnPolicy], str]] = {
    CarrierUpdate: carrier.carrier_update,
    WarehouseReceipt: warehouse.receipt,
    WarehouseFinished: warehouse.finished,
    PlatformReturnEvent: platform_facts.apply,
}

_CARRIER_KINDS = {
    CarrierStatus.PICKED_UP: "picked_up",
    CarrierStatus.DELIVERED: "delivered",
    CarrierStatus.RETURN_TO_ORIGIN: "returned_to_origin",
}


def kind_of(event: InboundEvent) -> str:
    """The kind of a fact, as :data:`WAITS` and :data:`RANK` name it."""
    if isinstance(event, CarrierUpdate):
        return _CARRIER_KINDS[event.status]
    if isinstance(event, PlatformReturnEvent):  # the platform facts that wait
        return "platform_label" if event.topic is PlatformTopic.LABEL else "platform_reopen"
    return "receipt" if isinstance(event, WarehouseReceipt) else "finished"


def waits(change: Change, event: InboundEvent, policy: ReturnPolicy | None = None) -> bool:
    """Whether the return cannot use ``event`` yet but will be able to later. A carrier scan
    of a stage the parcel is already past (a pickup after it was sent back) never waits.
    With the return's ``policy``: a label attached on the platform also waits for the label
    returnflow is buying (:func:`~returnflow.decisions.platform_changes.label_expected`)."""
    record = change.record
    kind = kind_of(event)
    if kind == "platform_label" and policy and platform_changes.label_expected(record, policy):
        return True
    if record.status not in WAITS[kind]:
        # The units of an instant exchange are back, or the parcel went back, before its
        # payment to fall back on was answered: the fact is applied once the exchange was
        # released on it (or a person looks at the failed ask), as when the answer came first.
        # Likewise units back before an upsell's balance charge was answered.
        if kind not in _AUTHORIZED or not change.allows(_AUTHORIZED[kind]):
            return False
        return exchange.authorizing(record) or (kind == "receipt" and exchange.charging(record))
    if isinstance(event, CarrierUpdate) and carrier.passed(change) >= RANK[kind]:
        return False
    if kind == "finished" and record.status in ("needs_review", "item_received"):
        # Finished waits there only while units are still to come (to its location); else
        # it applies.
        assert isinstance(event, WarehouseFinished)
        return not locations.ready(change, event)
    return True


def receive(change: Change, event: InboundEvent, policy: ReturnPolicy) -> tuple[str, str]:
    """Apply, park or ignore an inbound fact; return ``(status, reason)`` where status is
    ``applied``, ``parked`` or ``ignored``. A fact applied is followed by the parked facts the
    return can now use (:func:`drain`). Raises what the fact's rule raises for bad data."""
    if isinstance(event, PlatformReturnEvent) and (
        event.topic not in _PLATFORM_WAITING or _ready(change, event, policy)
    ):  # about the platform's return: now or never, but a reopen waits for its close
        ignored = platform_facts.apply(change, event, policy)
        if ignored:
            return "ignored", ignored
        drain(change, policy)
        return "applied", ""
    if isinstance(event, (WarehouseReceipt, WarehouseFinished)):
        locations.check_fact(change.record, event)  # a location the return does not go to
    decide = _APPLY[type(event)]
    if not _ready(change, event, policy):
        if isinstance(event, WarehouseReceipt):  # bad data is refused now, not later
            warehouse.check_quantities(change, event)
        why = f"{kind_of(event)} while {change.record.status}"
        if change.record.status not in WAITS[kind_of(event)]:
            why = f"{kind_of(event)} while the exchange's payment is asked"
            if isinstance(event, PlatformReturnEvent):
                why = f"{kind_of(event)} while returnflow's own label is bought"
        _park(change, event, why)
        if isinstance(event, WarehouseFinished) and change.record.status == "item_received":
            decide(change, event, policy)  # a short receipt goes to a person, and waits
            return "applied", why
        return "parked", why
    ignored = decide(change, event, policy)
    if ignored:
        return "ignored", ignored
    drain(change, policy)
    return "applied", ""


def drain(change: Change, policy: ReturnPolicy) -> None:
    """Apply the parked facts the return can use now, in :data:`RANK` order, each followed
    by the ones it makes usable; drop with the reason those it never will. A parked fact
    that turns out wrong for the return (a receipt for more units than it expects) is
    dropped and recorded; it never fails the change that moved the return."""
    while change.record.parked:
        ordered = sorted(
            enumerate(change.record.parked), key=lambda item: (RANK[_kind(item[1])], item[0])
        )
        for index, parked in ordered:
            event = parked_event(change, parked)
            if not _ready(change, event, policy):
                if isinstance(event, WarehouseFinished) and change.record.status == (
                    "item_received"
                ):
                    # as when it comes now: a short receipt goes to a person, and waits
                    _APPLY[WarehouseFinished](change, event, policy)
                    break
                continue
            change.update(parked=_without(change.record.parked, index))
            point = change.checkpoint()
            try:
                ignored = _APPLY[type(event)](change, event, policy)
            except ReturnflowError as error:
                change.restore(point)
                change.update(parked=_without(point[0].parked, index))
                change.ignore(event, f"parked {parked.why}, then refused: {error}")
                break
            if not ignored:  # an ignored one: the rule recorded why it never applies
                change.note("unparked", {"fact": _kind(parked), "id": parked.event_id})
            break
        else:
            return  # everything left still waits


_PLATFORM_WAITING = (PlatformTopic.REOPEN, PlatformTopic.LABEL)
"""The platform facts that can come early (the others apply now or never)."""

_AUTHORIZED: Mapping[str, str] = {"receipt": "receive", "returned_to_origin": "return_to_origin"}
"""Facts that wait for an instant exchange's authorization, and the chart event they fire."""

_IMPLIED: Mapping[str, tuple[str, str]] = {
    "receipt": ("deliver", "received"),
    "returned_to_origin": ("hand_in", "sent back"),
}
"""Per fact, the carrier stages it implies (the last one) and why."""


def _ready(change: Change, event: InboundEvent, policy: ReturnPolicy) -> bool:
    """Whether the return can use ``event`` now. A receipt or a parcel sent back that the
    return can use first runs the carrier stages it implies (handed in, and for a receipt
    delivered: :func:`~returnflow.decisions.carrier.reached`), which may ask for an instant
    exchange's authorization: the fact then waits for the answer."""
    if waits(change, event, policy):
        return False
    kind = kind_of(event)
    if kind in _IMPLIED and change.allows(_AUTHORIZED[kind]):
        point = change.checkpoint()
        carrier.reached(change, policy, *_IMPLIED[kind])
        if waits(change, event):
            return False
        change.restore(point)  # the fact's own rule runs them, in its change
    return True


def _park(change: Change, event: InboundEvent, why: str) -> None:
    lines: tuple[Mapping[str, Any], ...] = ()
    status = None
    if isinstance(event, WarehouseReceipt):
        lines = tuple(_line_data(line) for line in event.lines)
    elif isinstance(event, CarrierUpdate):
        status = event.status.value
    elif isinstance(event, PlatformReturnEvent):
        status = event.topic.value
        data = _platform_data(event)
        lines = (data,) if data else ()
    kind = "carrier" if status else ("receipt" if lines else "finished")
    if isinstance(event, PlatformReturnEvent):
        kind = "platform"
    parked = ParkedFact(
        kind=kind,
        event_id=event.event_id,
        source=event.source,
        arrived_at=change.now,
        why=why,
        status=status,
        lines=lines,
        location_id=getattr(event, "location_id", None),
    )
    change.update(parked=(*change.record.parked, parked))
    change.note("parked", {"fact": kind_of(event), "id": event.event_id, "why": why})


def _line_data(line: ReceivedLine) -> dict[str, Any]:
    return {
        "line_id": line.line_id,
        "quantity": line.quantity,
        "qc": line.qc.value,
        "condition": None if line.condition is None else line.condition.value,
        "note": line.note,
        "disposition": None if line.disposition is None else line.disposition.value,
    }


def _platform_data(event: PlatformReturnEvent) -> dict[str, Any]:
    data = {
        "platform_return_id": event.platform_return_id,
        "tracking_number": event.tracking_number,
        "label_url": event.label_url,
    }
    return {name: value for name, value in data.items() if value is not None}


def _kind(parked: ParkedFact) -> str:
    if parked.kind == "platform":
        label = parked.status == PlatformTopic.LABEL.value
        return "platform_label" if label else "platform_reopen"
    if parked.kind == "carrier":
        return _CARRIER_KINDS[CarrierStatus(parked.status)]
    return parked.kind


def parked_event(change: Change, parked: ParkedFact) -> InboundEvent:
    """The inbound fact ``parked`` stands for, on the return of ``change``."""
    record = change.record
    common: dict[str, Any] = {
        "shop": record.shop,
        "return_id": record.id,
        "event_id": parked.event_id,
        "source": parked.source,
    }
    if parked.kind == "carrier":
        return CarrierUpdate(status=parked.status, **common)
    if parked.kind == "platform":
        data = dict(parked.lines[0]) if parked.lines else {}
        return PlatformReturnEvent(topic=parked.status, **common, **data)
    where = parked.location_id
    if parked.kind == "receipt":
        lines = [ReceivedLine(**line) for line in parked.lines]
        return WarehouseReceipt(lines=lines, location_id=where, **common)
    return WarehouseFinished(location_id=where, **common)


def _without(parked: tuple[ParkedFact, ...], index: int) -> tuple[ParkedFact, ...]:
    return parked[:index] + parked[index + 1 :]
