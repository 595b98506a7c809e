"""The return statechart: two parallel regions, the lifecycle and the exchange.

This class is the single source of truth for which event is allowed where. At import it is
compiled into :data:`returnflow.lifecycle.table.TABLE` (targets and validator names), which
read paths use and the write path fires (:mod:`returnflow.lifecycle.engine`; a service
built with ``engine="chart"`` runs this class itself, and a differential test holds the two
to the same answers).

The chart never calls a port. It decides *whether* an event is allowed and *where* it leads;
validators refuse payloads that a transition cannot carry. The service turns the transitions
it took into effects (see :mod:`returnflow.lifecycle.effects`).

Events belong to exactly one region: an event that should touch both (cancelling a return
that holds an exchange) is two events fired in one unit of work. This keeps every event's
meaning independent of the other region's state, so the derived table is exact.

>>> sorted(ReturnChart.states_map)[:4]
['approved', 'awaiting_payment', 'cancelled', 'closed']
"""

from __future__ import annotations

from typing import Any

from statemachine import State, StateChart

from returnflow.errors import InvalidPayload

__all__ = ["EXCHANGE_REGION", "LIFECYCLE_REGION", "ReturnChart"]

LIFECYCLE_REGION = "lifecycle"
EXCHANGE_REGION = "exchange"


class ReturnChart(StateChart[Any]):
    """Return lifecycle and exchange, as one parallel statechart."""

    # The StateChart defaults swallow unknown events and errors in callbacks; we want both
    # to raise, and the model to change only when the whole microstep succeeded.
    allow_event_without_transition = False
    catch_errors_as_events = False
    atomic_configuration_update = True
    enable_self_transition_entries = False

    class process(State.Parallel):
        class lifecycle(State.Compound):
            requested = State("Requested", initial=True)
            eligibility_check = State("Eligibility check")
            pending_review = State("Pending review")
            approved = State("Approved")
            declined = State("Declined")
            label_sent = State("Label sent")
            in_transit = State("In transit")
            delivered = State("Delivered")
            item_received = State("Item received")
            refunded = State("Refunded")
            closed = State("Closed")
            cancelled = State("Cancelled")
            expired = State("Expired")
            needs_review = State("Needs review")
            reset = State("Reset")

            check = requested.to(eligibility_check)
            auto_approve = eligibility_check.to(approved)
            route_to_review = eligibility_check.to(pending_review)
            approve = pending_review.to(approved) | needs_review.to(approved)
            decline = eligibility_check.to(declined, validators="needs_decline_reason") | (
                pending_review.to(declined, validators="needs_decline_reason")
            )
            cancel = (
                requested.to(cancelled)
                | eligibility_check.to(cancelled)
                | pending_review.to(cancelled)
                | approved.to(cancelled)
                | label_sent.to(cancelled)
                | needs_review.to(cancelled)  # an agent's exit: nothing paid, goods undone
            )
            send_label = approved.to(label_sent)
            hand_in = approved.to(in_transit) | label_sent.to(in_transit)
            # approved: the customer shipped with a label of their own, or before ours came
            deliver = approved.to(delivered) | label_sent.to(delivered) | in_transit.to(delivered)
            return_to_origin = (
                approved.to(needs_review)
                | label_sent.to(needs_review)
                | in_transit.to(needs_review)
                | delivered.to(needs_review)
            )
            receive = (
                approved.to(item_received, validators="needs_receipts")
                | label_sent.to(item_received, validators="needs_receipts")
                | in_transit.to(item_received, validators="needs_receipts")
                | delivered.to(item_received, validators="needs_receipts")
                | item_received.to(item_received, validators="needs_receipts")
                | needs_review.to(item_received, validators="needs_receipts")
            )
            refund = item_received.to(refunded) | approved.to(refunded) | needs_review.to(refunded)
            close = (
                item_received.to(closed)
                | refunded.to(closed)
                | approved.to(closed)
                | needs_review.to(closed)
            )
            flag = (
                approved.to(needs_review, validators="needs_reason")
                | label_sent.to(needs_review, validators="needs_reason")
                | in_transit.to(needs_review, validators="needs_reason")
                | delivered.to(needs_review, validators="needs_reason")
                | item_received.to(needs_review, validators="needs_reason")
                | refunded.to(needs_review, validators="needs_reason")
                | needs_review.to(needs_review, validators="needs_reason")
            )
            expire = approved.to(expired) | label_sent.to(expired)
            reset_return = item_received.to(reset, validators="needs_child") | needs_review.to(
                reset, validators="needs_child"
            )
            reopen = closed.to(needs_review)

        class exchange(State.Compound):
            no_exchange = State("No exchange", initial=True)
            awaiting_payment = State("Awaiting payment")
            on_hold = State("On hold")
            released = State("Released")
            exchange_cancelled = State("Exchange cancelled")

            require_payment = no_exchange.to(awaiting_payment)
            pay_balance = awaiting_payment.to(on_hold)
            hold_exchange = no_exchange.to(on_hold)
            # Goods never leak: released only when accepted units cover the exchange, an
            # instant-exchange payment is authorized, or an agent decided it (named).
            release_exchange = on_hold.to(released, validators="needs_cover")
            cancel_exchange = awaiting_payment.to(exchange_cancelled) | on_hold.to(
                exchange_cancelled
            )

    # -- validators: refuse payloads a transition cannot carry -----------------------------

    def needs_decline_reason(self, reason: Any = None, **_: Any) -> None:
        from returnflow.domain.model import DeclineReason

        if not isinstance(reason, DeclineReason):
            raise InvalidPayload("reason", reason, "decline needs a DeclineReason")

    def needs_receipts(self, receipts: Any = None, **_: Any) -> None:
        if not receipts:
            raise InvalidPayload("receipts", receipts, "receive needs at least one received line")

    def needs_reason(self, reason: Any = None, **_: Any) -> None:
        if not isinstance(reason, str) or not reason:
            raise InvalidPayload("reason", reason, "flag needs a reason")

    def needs_cover(
        self,
        covered: Any = False,
        authorized: Any = False,
        decided_by: Any = None,
        **_: Any,
    ) -> None:
        if covered is True or authorized is True:
            return
        if isinstance(decided_by, str) and decided_by:
            return
        raise InvalidPayload(
            "release_exchange",
            None,
            "needs accepted units covering it, an authorized payment, or an agent's decision",
        )

    def needs_child(self, child_id: Any = None, **_: Any) -> None:
        if not isinstance(child_id, str) or not child_id:
            raise InvalidPayload("child_id", child_id, "reset needs the new return's id")
