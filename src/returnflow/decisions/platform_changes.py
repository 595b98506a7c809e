"""A person's changes to the platform return in the platform's admin (native mode, seed 003):
its lines (Shopify's ``returns/update``) and a label attached to its reverse delivery
(``reverse_deliveries/attach_deliverable``), as
:class:`~returnflow.domain.inbound.PlatformReturnEvent` facts.

**Lines** (:func:`update`). The fact carries every order line's units on the platform return
now. Compared with what returnflow opened there and did not take out itself:

- the same -> the echo of returnflow's own calls (its removals): nothing changes;
- units taken out that were not received, settled or exchanged -> followed: the return line
  loses those units (its last ones: the unit indices go back to the order), and they are
  counted removed on the platform already (returnflow never asks to remove them again). A
  return whose remaining units are all received then completes, as a receipt would;
- anything else goes to a person (``needs_review``, the change named): units added there (a
  new unit needs an eligibility check, the warehouse's expectation and a label, which only a
  person can weigh), more units taken out than are still expected (some were received),
  units of a line exchanged (the new items were held and priced for them), every unit taken
  out (a return with nothing in it is cancelled, not emptied).

An update says when the platform made it (``occurred_at``): one older than an update already
applied is stale and ignored, so that updates arriving out of order end as the newest says
(an update without it is compared with nothing: it applies as it comes).

**Labels** (:func:`label`). The tracking number and label URL are written on the return
(``refs.tracking_number``, ``refs.label_url``) and the return moves on as when its own label
came (``label_sent``; the carrier's scans then follow): the platform sent its label to the
customer, so returnflow sends none. A label attached before the return was approved, or while
returnflow's own label is still being bought, waits for that (parked,
:mod:`returnflow.decisions.facts`): the echo of returnflow's own label, attached there by the
host, is then recognised. A second, different label goes to a person; so does one on a
return past handing in. A label the platform gave is never voided through the carrier on a
cancel: returnflow did not buy it.

Pure: reads the change, plans effects, never calls a port.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import attrs

from returnflow.decisions import completion, review
from returnflow.decisions.change import Change
from returnflow.domain._time import parse_iso
from returnflow.domain.inbound import PlatformReturnEvent
from returnflow.domain.model import Exchange, ReturnLine, ReturnRecord
from returnflow.domain.policy import Completion, ReturnPolicy

__all__ = ["PLATFORM_LABEL", "label", "label_expected", "platform_label", "update"]

_ADMIN = "in the platform's admin"
_OVER = ("closed", "cancelled", "expired", "declined", "reset")
PLATFORM_LABEL = "platform_label"
"""The history note of a label the platform gave (payload: ``tracking``, ``label_url``)."""
_UPDATED = "platform_updated"


# -- lines ---------------------------------------------------------------------------------


def update(change: Change, event: PlatformReturnEvent, policy: ReturnPolicy) -> str:
    """Apply a ``returns/update`` fact (see the module); return why it was ignored, or ``""``
    when it applied (followed, or handed to a person)."""
    record = change.record
    if record.status in _OVER:
        return change.ignore(event, f"lines changed on the platform while {record.status}")
    last = _last_update(record)
    if event.occurred_at is not None and last is not None and event.occurred_at <= last:
        return change.ignore(event, f"older than the update applied, of {last.isoformat()}")
    assert event.lines is not None  # the fact refuses an update without them
    now = {line.order_line_id: line.quantity for line in event.lines}
    opened = {u.order_line_id: u.quantity for u in record.platform_units}
    left = {u.order_line_id: u.quantity - u.removed for u in record.platform_units}
    # units returnflow took out (or asks to) still shown there are not units added
    added = {k: n - opened.get(k, 0) for k, n in now.items() if n > opened.get(k, 0)}
    removed = {k: n - now.get(k, 0) for k, n in left.items() if now.get(k, 0) < n}
    if not added and not removed:
        return change.ignore(event, "the platform return's lines as returnflow left them")
    # only the platform's own times order updates (returnflow's clock is not the platform's)
    stamp = None if event.occurred_at is None else event.occurred_at.isoformat()
    described = _described(added, removed)
    change.note(_UPDATED, {"at": stamp, "id": event.event_id, "lines": described})
    conflict = _conflict(record, added, removed)
    if conflict:
        reason = f"lines changed {_ADMIN} ({described}): {conflict}"
        if change.allows("flag"):
            review.flag(change, reason)
            return ""
        return change.ignore(event, reason)
    _follow(change, removed)
    change.note("followed_platform", {"topic": event.topic.value, "id": event.event_id})
    change.publish("update", platform_lines=described)
    if (
        change.record.status == "item_received"
        and policy.completion is Completion.ON_RECEIPT
        and completion.fully_received(change)
        and change.record.completed_at is None
    ):
        completion.complete(change, policy)  # what is left all came back
    return ""


def _last_update(record: ReturnRecord) -> datetime | None:
    for entry in reversed(record.history):
        if entry.event == _UPDATED and entry.payload.get("at") is not None:
            return parse_iso(str(entry.payload["at"]))
    return None


def _described(added: Mapping[str, int], removed: Mapping[str, int]) -> str:
    parts = [f"{k}: {n} added" for k, n in sorted(added.items())]
    parts += [f"{k}: {n} taken out" for k, n in sorted(removed.items())]
    return ", ".join(parts)


def _conflict(record: ReturnRecord, added: Mapping[str, int], removed: Mapping[str, int]) -> str:
    """Why a person decides on the change, or ``""`` when the return follows it."""
    if added:
        return "units added there need an eligibility check, the warehouse and a label"
    if record.completed_at is not None:
        return "the return was completed already"
    exchanged = {line.return_line_id for line in record.exchange_lines}
    for order_line_id, count in sorted(removed.items()):
        lines = [line for line in record.lines if line.order_line_id == order_line_id]
        if any(isinstance(line.outcome, Exchange) or line.id in exchanged for line in lines):
            return f"{order_line_id} is exchanged: its new items were held for those units"
        free = sum(_free(line) for line in lines)
        if count > free:
            return f"{order_line_id} has {free} unit(s) not received, settled or claimed"
    if sum(line.quantity for line in record.lines) <= sum(removed.values()):
        return "every unit was taken out: cancel the return instead"
    return ""


def _free(line: ReturnLine) -> int:
    """Units of ``line`` that may be taken out: not received, settled or claimed."""
    if not line.requires_receipt:
        return 0
    return line.quantity - max(line.received, line.settled)


def _follow(change: Change, removed: Mapping[str, int]) -> None:
    """Take ``removed`` units per order line off the return's lines (the last free units of
    the last lines first) and count them removed from the platform return."""
    record = change.record
    lines = list(record.lines)
    for order_line_id, count in removed.items():
        for index in reversed(range(len(lines))):
            line = lines[index]
            take = min(_free(line), count) if line.order_line_id == order_line_id else 0
            if not take:
                continue
            count -= take
            if take == line.quantity:
                del lines[index]
            else:
                lines[index] = _trimmed(line, line.quantity - take)
    units = tuple(
        attrs.evolve(u, removed=u.removed + removed.get(u.order_line_id, 0))
        for u in record.platform_units
    )
    change.update(lines=tuple(lines), platform_units=units)


def _trimmed(line: ReturnLine, keep: int) -> ReturnLine:
    """``line`` with its first ``keep`` units (and their amounts)."""
    return attrs.evolve(
        line,
        quantity=keep,
        units=line.units[:keep],
        unit_amounts=line.unit_amounts[:keep],
        unit_taxes=line.unit_taxes[:keep],
        unit_shipping=line.unit_shipping[:keep],
        unit_shipping_taxes=line.unit_shipping_taxes[:keep],
        unit_duties=line.unit_duties[:keep],
    )


# -- labels --------------------------------------------------------------------------------


def label_expected(record: ReturnRecord, policy: ReturnPolicy) -> bool:
    """Whether returnflow's own label for ``record`` is being bought and not answered yet
    (what :func:`returnflow.decisions.request.approved` plans): a label attached on the
    platform meanwhile waits for it."""
    refs = record.refs
    return (
        record.status == "approved"
        and refs.tracking_number is None
        and refs.source is None
        and policy.send_label
        and record.method.needs_label
        and any(line.requires_receipt for line in record.lines)
    )


def platform_label(record: ReturnRecord) -> bool:
    """Whether the return's label is the one the platform gave last (returnflow bought
    none since): it is not voided through the carrier."""
    tracking = record.refs.tracking_number
    for entry in reversed(record.history):
        if entry.event == PLATFORM_LABEL:
            return tracking is not None and entry.payload.get("tracking") == tracking
    return False


def label(change: Change, event: PlatformReturnEvent) -> str:
    """Apply a ``reverse_deliveries/attach_deliverable`` fact (see the module); return why
    it was ignored, or ``""`` when it applied."""
    record = change.record
    refs = record.refs
    tracking, url = event.tracking_number, event.label_url
    same = tracking == refs.tracking_number if tracking else url == refs.label_url
    if same:
        return change.ignore(event, "the return's own label")
    if record.status in _OVER:
        return change.ignore(event, f"a label attached on the platform while {record.status}")
    if refs.tracking_number is None and refs.label_url is None:
        change.update(refs=attrs.evolve(refs, tracking_number=tracking, label_url=url))
        change.note(PLATFORM_LABEL, {"tracking": tracking, "label_url": url})
        if change.allows("send_label"):
            # the platform sent its label to the customer: no message of returnflow's
            change.fire("send_label", {"tracking": tracking, "by": "platform"})
        change.publish("update", tracking_number=tracking)
        return ""
    reason = (
        f"a label was attached {_ADMIN} (tracking {tracking}, {url}) while the return has "
        f"its own (tracking {refs.tracking_number})"
    )
    if change.allows("flag"):
        review.flag(change, reason)
        return ""
    return change.ignore(event, reason)
