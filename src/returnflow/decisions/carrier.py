"""Carrier facts: the parcel picked up (handed in), delivered to the warehouse, or sent back
to the customer (return to origin, seed 002)."""

from __future__ import annotations

from returnflow.decisions import completion, exchange
from returnflow.decisions.change import Change
from returnflow.domain.inbound import CarrierStatus, CarrierUpdate
from returnflow.domain.policy import RefundTrigger, ReturnPolicy

__all__ = ["carrier_update"]


def carrier_update(change: Change, event: CarrierUpdate, policy: ReturnPolicy) -> str:
    """Apply a carrier scan; return why it was ignored, or ``""`` when it applied.

    Picked up and delivered release an instant exchange and pay a refund whose trigger is
    that scan; a return to origin sends the return to a person."""
    payload = {"carrier_event": event.event_id}
    if event.status is CarrierStatus.PICKED_UP:
        if not change.allows("hand_in"):
            return change.ignore(event, f"picked up while {change.record.status}")
        change.fire("hand_in", payload)
        change.publish("carrier_picked_up")
        exchange.release_if_instant(change, policy)
        if policy.refund_trigger is RefundTrigger.ON_HANDED_IN:
            completion.pay_early(change, policy, accepted_only=False, why="handed in")
        return ""
    if event.status is CarrierStatus.DELIVERED:
        if not change.allows("deliver"):
            return change.ignore(event, f"delivered while {change.record.status}")
        change.fire("deliver", payload)
        change.publish("update")
        exchange.release_if_instant(change, policy)  # a delivered parcel was handed in
        if policy.refund_trigger in (RefundTrigger.ON_HANDED_IN, RefundTrigger.ON_DELIVERED):
            completion.pay_early(change, policy, accepted_only=False, why="delivered")
        return ""
    if not change.allows("return_to_origin"):
        return change.ignore(event, f"return to origin while {change.record.status}")
    change.fire("return_to_origin", payload)
    change.update(review_reasons=(*change.record.review_reasons, "parcel returned to origin"))
    change.publish("carrier_rto")
    change.notify("return_to_origin")
    return ""
