"""Carrier facts: the parcel picked up (handed in), delivered to the warehouse, or sent back
to the customer (return to origin, seed 002)."""

from __future__ import annotations

from returnflow.decisions import cancellation, completion, exchange
from returnflow.decisions.change import Change
from returnflow.domain.inbound import CarrierStatus, CarrierUpdate
from returnflow.domain.policy import RefundTrigger, ReturnPolicy, ReturnToOrigin

__all__ = ["STAGES", "carrier_update", "passed", "reached"]

STAGES: dict[str, int] = {"hand_in": 0, "deliver": 1, "return_to_origin": 1, "receive": 2}
"""Chart events that show the parcel went through a stage, ranked in the order they happen."""


def passed(change: Change) -> int:
    """The furthest stage (a :data:`STAGES` rank) the parcel is known to have gone through,
    ``-1`` when none."""
    return max(
        (STAGES[entry.event] for entry in change.record.history if entry.event in STAGES),
        default=-1,
    )


def reached(
    change: Change, policy: ReturnPolicy, stage: str, why: str, *, before: int | None = None
) -> None:
    """Run the rules of the carrier stages up to ``stage`` (``hand_in``, ``deliver``) the
    parcel had not been known to go through: a later fact implies them, so the return ends
    as if their scans had come first, whatever order the facts arrive in (a delivered scan
    implies the pickup; a warehouse receipt implies both). Releases an instant exchange and
    pays a refund triggered by those stages; ``why`` names the fact that implies them.
    ``before``: the stage known before the fact's own chart event fired (read now if not
    given)."""
    if (passed(change) if before is None else before) >= STAGES[stage]:
        return
    planned = len(change.effects)
    exchange.release_if_instant(change, policy)
    triggers = {RefundTrigger.ON_HANDED_IN}
    if stage != "hand_in":
        triggers.add(RefundTrigger.ON_DELIVERED)
    if policy.refund_trigger in triggers:
        completion.pay_early(change, policy, accepted_only=False, why=why)
    if before is None and len(change.effects) > planned:
        # no scan of its own says so: the history names the fact that implied the stage
        change.note("stage_implied", {"stage": stage, "by": why})


def carrier_update(change: Change, event: CarrierUpdate, policy: ReturnPolicy) -> str:
    """Apply a carrier scan; return why it was ignored, or ``""`` when it applied.

    Picked up and delivered release an instant exchange (on an authorized payment) and pay a
    refund whose trigger is that scan. A return to origin captures an instant exchange's
    authorization, then cancels the return (``policy.on_return_to_origin``: label voided,
    warehouse return and exchange cancelled, no refund) or sends it to a person."""
    payload = {"carrier_event": event.event_id}
    if event.status is CarrierStatus.PICKED_UP:
        if not change.allows("hand_in"):
            return change.ignore(event, f"picked up while {change.record.status}")
        before = passed(change)
        change.fire("hand_in", payload)
        change.publish("carrier_picked_up")
        reached(change, policy, "hand_in", "handed in", before=before)
        return ""
    if event.status is CarrierStatus.DELIVERED:
        if not change.allows("deliver"):
            return change.ignore(event, f"delivered while {change.record.status}")
        before = passed(change)
        change.fire("deliver", payload)
        change.publish("update")
        reached(change, policy, "deliver", "delivered", before=before)  # and handed in
        return ""
    if not change.allows("return_to_origin"):
        return change.ignore(event, f"return to origin while {change.record.status}")
    # Cancelled only while nothing contradicts it: not after the parcel was delivered to the
    # warehouse, and not once money went out early (a person sorts those out).
    # a parcel sent back was handed in first, scanned or not: what that stage does is done
    # (a refund on hand-in, an instant exchange's authorization), as when its scan came first
    reached(change, policy, "hand_in", "handed in")
    conflicting = change.record.status == "delivered" or any(
        line.settled for line in change.record.lines
    )
    change.fire("return_to_origin", payload)
    change.update(review_reasons=(*change.record.review_reasons, "parcel returned to origin"))
    change.publish("carrier_rto")
    change.notify("return_to_origin")
    # an instant exchange already shipped: the customer has both, the fallback is paid
    owed = exchange.capture_due(change.record, policy)
    exchange.settle_authorization(
        change, capture=True, why="parcel returned to origin", amount=owed
    )
    if policy.on_return_to_origin is ReturnToOrigin.CANCEL and not conflicting:
        change.fire("cancel", {"why": "parcel returned to origin"})
        cancellation.wind_down(change, policy, why="parcel returned to origin")
        change.update(review_reasons=())
        change.publish("cancel", reason="returned to origin")
    return ""
