"""What the platform says about its return (native mode, seed 003): Shopify's ``returns/*``,
``refunds/create`` and ``reverse_fulfillment_orders/dispose`` webhooks, as
:class:`~returnflow.domain.inbound.PlatformReturnEvent` facts.

Most are the echo of returnflow's own calls (it approved, processed, closed the platform
return): recorded, nothing changes. The others are a person's change in the platform's
admin, and the return follows it rather than fighting it:

- declined there -> the return is declined (before any unit came back), else a person looks;
- cancelled there -> the return is cancelled (what its approval set in motion undone), or,
  when units were received or paid for, a person looks;
- approved there -> a return in review is approved;
- closed there before returnflow completed the return -> a person looks (units not received
  need a decision); reopened there -> the closed return is reopened for review;
- a refund returnflow does not know -> recorded on the return. Asked before returnflow
  asked for any processing, it is kept (the ``platform_refund_recorded`` note): a person
  processing units in the admin sends it, and returnflow's processing, when it comes,
  follows the units the platform shows processed there (:mod:`returnflow._processed_there`:
  not refunded again, their money compared with returnflow's figure for them); when it
  shows none, the refund explains nothing the settlement knows and that processing goes
  to a person first. Whichever comes first, the webhook or the processing, ends alike;
- a disposition -> recorded;
- lines added, taken out or changed there, a label attached there ->
  :mod:`returnflow.decisions.platform_changes`.

A repeat is a duplicate by its inbound id (the shell); a fact whose platform return is not
the return's is refused with :class:`~returnflow.errors.InvalidPayload`; one about a return
with no platform return (``tags`` mode) is recorded and ignored. Only a reopen (before the
close it follows) and a label (before the approval, or while returnflow's own label is being
bought) can come early: they are parked (:mod:`returnflow.decisions.facts`); the others apply
now or never (an update older than one applied is stale).
"""

from __future__ import annotations

import attrs

from returnflow.decisions import cancellation, platform_changes, review
from returnflow.decisions import request as requests
from returnflow.decisions.change import Change
from returnflow.domain.inbound import PlatformReturnEvent, PlatformTopic
from returnflow.domain.model import DeclineReason
from returnflow.domain.policy import ReturnPolicy
from returnflow.errors import InvalidPayload

__all__ = ["REFUND_RECORDED", "apply"]

_ADMIN = "in the platform's admin"

REFUND_RECORDED = "platform_refund_recorded"
"""The history note of a refund the platform reported (``refunds/create``) before
returnflow asked for any processing (payload: ``refund``, its id, and ``amount``, `` of``
and the amount, or empty when not reported)."""


def apply(change: Change, event: PlatformReturnEvent, policy: ReturnPolicy) -> str:
    """Apply a platform fact; return why it was ignored, or ``""`` when it applied."""
    record = change.record
    known = record.refs.platform_return_id
    if event.platform_return_id is not None and known not in (None, event.platform_return_id):
        raise InvalidPayload(
            "platform_return_id", event.platform_return_id, f"return {record.id} is on {known}"
        )
    if known is None and not record.platform_units:
        # tags mode, or never opened there: nothing on the platform for the fact to be about
        return change.ignore(event, "the return has no platform return")
    topic = event.topic
    details = {"topic": topic.value, "id": event.event_id}
    if topic is PlatformTopic.UPDATE:
        return platform_changes.update(change, event, policy)
    if topic is PlatformTopic.LABEL:
        return platform_changes.label(change, event)
    if topic is PlatformTopic.DISPOSE:
        change.note("platform_disposed", details)
        return ""
    if topic is PlatformTopic.REFUND:
        return _refund(change, event)
    status = record.status
    if topic is PlatformTopic.APPROVE:
        if status != "pending_review":
            return change.ignore(event, f"approved on the platform while {status}")
        requests.approve(change, policy)
        change.note("followed_platform", details)
        return ""
    if topic is PlatformTopic.DECLINE:
        if status == "declined":
            return change.ignore(event, "declined already")
        if change.allows("decline") and not _units_in(change):
            requests.decline(change, DeclineReason.OTHER, f"declined {_ADMIN}")
            change.note("followed_platform", details)
            return ""
        return _to_a_person(change, event, f"declined {_ADMIN} while {status}")
    if topic is PlatformTopic.CANCEL:
        if status in ("cancelled", "expired", "declined", "reset"):
            return change.ignore(event, f"cancelled on the platform while {status}")
        if change.allows("cancel") and not _units_in(change):
            cancellation.cancel(change, policy)
            change.note("followed_platform", details)
            return ""
        return _to_a_person(change, event, f"cancelled {_ADMIN} while {status}")
    if topic is PlatformTopic.CLOSE:
        if status in ("closed", "cancelled", "expired", "declined", "reset"):
            return change.ignore(event, f"closed on the platform while {status}")
        if record.completed_at is not None:
            return change.ignore(event, "closed on the platform once processed")
        return _to_a_person(change, event, f"closed {_ADMIN} while {status}")
    # reopened
    if status != "closed":
        return change.ignore(event, f"reopened on the platform while {status}")
    review.reopen(change, f"reopened {_ADMIN}")
    change.note("followed_platform", details)
    return ""


def _units_in(change: Change) -> bool:
    return any(line.received or line.settled for line in change.record.lines)


def _to_a_person(change: Change, event: PlatformReturnEvent, reason: str) -> str:
    if change.allows("flag"):
        review.flag(change, reason)
        return ""
    return change.ignore(event, reason)


def _refund(change: Change, event: PlatformReturnEvent) -> str:
    refs = change.record.refs
    if event.refund_id is None or event.refund_id in refs.refund_ids:
        return change.ignore(event, "a refund the return made")
    amount = "" if event.amount is None else f" of {event.amount}"
    # on the return whoever made it: a refund of returnflow's processing whose answer is
    # not back yet (the answer does not record it twice), or a person's
    change.update(refs=attrs.evolve(refs, refund_ids=(*refs.refund_ids, event.refund_id)))
    details = {"refund": event.refund_id, "amount": amount}
    if any(units.processed for units in change.record.platform_units):
        # returnflow asked for a processing: its own refund, or a person's its processing
        # follows (units processed there first)
        change.note("platform_refund_seen", details)
        return ""
    # kept for the processing to follow (a person processed units there) or to send to a
    # person (it explains nothing the settlement knows): nothing to decide before it comes
    change.note(REFUND_RECORDED, details)
    return ""
