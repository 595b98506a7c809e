"""A request: checked against the order, its lines built from free units, then assessed by
the policy and approved (label, warehouse expectation, exchange hold), sent to review or
declined. An import opens a return another system already approved (seed 004)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from returnflow.decisions import completion, exchange, locations, merchant
from returnflow.decisions.change import Change
from returnflow.domain._fields import check_text
from returnflow.domain.claim_lines import check_claim
from returnflow.domain.methods import ReturnMethod
from returnflow.domain.model import (
    DeclineReason,
    Exchange,
    ExchangeLine,
    ExternalRefs,
    OrderSnapshot,
    ReturnLine,
    ReturnRecord,
    ReturnRequest,
)
from returnflow.domain.money import Money
from returnflow.domain.policy import (
    Decision,
    ReturnPolicy,
    returnable_units,
    validate_request,
)
from returnflow.domain.reasons import check_reasons
from returnflow.domain.settlement import (
    Settlement,
    settle,
    unit_amounts,
    unit_taxes,
    with_original_charges,
)
from returnflow.domain.verdicts import Verdict
from returnflow.errors import InvalidPayload
from returnflow.lifecycle import effects as fx
from returnflow.lifecycle.table import TABLE

__all__ = [
    "approve",
    "approved",
    "build_lines",
    "check",
    "decline",
    "decline_reason",
    "imported",
    "issue_label",
    "open_return",
    "quote",
    "requested",
]


def check(
    order: OrderSnapshot,
    request: ReturnRequest,
    claimed: Mapping[str, set[int]],
    policy: ReturnPolicy,
) -> None:
    """Check ``request`` against ``order``; ``claimed``: units the order's other returns hold.
    Raises the typed errors of :func:`~returnflow.domain.policy.validate_request`, then
    those of :func:`~returnflow.domain.reasons.check_reasons` (the shop's reasons)."""
    validate_request(order, request, claimed, exchange_apps=policy.exchange_apps, policy=policy)
    check_reasons(request, policy.reasons)
    check_claim(order, request)


def build_lines(
    order: OrderSnapshot,
    request: ReturnRequest,
    claimed: Mapping[str, set[int]],
    return_id: str,
    policy: ReturnPolicy | None = None,
) -> tuple[list[ReturnLine], list[ExchangeLine]]:
    """The lines of a checked request (see :func:`check`), each holding shipped units no
    other return holds (``claimed``), the most recently fulfilled first
    (:func:`~returnflow.domain.policy.returnable_units`), with their exact paid amounts."""
    amounts = unit_amounts(order)
    taxes = unit_taxes(order)
    lines: list[ReturnLine] = []
    exchange_lines: list[ExchangeLine] = []
    for index, line in enumerate(request.lines, start=1):
        order_line = order.line(line.order_line_id)
        assert order_line is not None  # validate_request checked it
        held = claimed.get(line.order_line_id, set())
        free = returnable_units(order, order_line, held, policy)
        units = tuple(sorted(free[: line.quantity]))
        line_id = f"{return_id}-{index}"
        built = ReturnLine(
            id=line_id,
            order_line_id=line.order_line_id,
            sku=order_line.sku,
            variant_id=order_line.variant_id,
            quantity=line.quantity,
            outcome=line.outcome,
            reason=line.reason,
            unit_amounts=tuple(amounts[order_line.id][unit] for unit in units),
            units=units,
            unit_taxes=tuple(taxes[order_line.id][unit] for unit in units),
            note=line.note,
            declared_condition=line.condition,
            photos=line.photos,
            claimed=request.claim is not None,
            fees_waived=request.claim is not None,
        )
        if policy is not None:
            shipping, duties = policy.gives_back(line.reason)
            built = with_original_charges(order, built, shipping=shipping, duties=duties)
        lines.append(built)
        if isinstance(line.outcome, Exchange):
            exchange_lines.append(
                ExchangeLine(
                    id=f"{line_id}-x",
                    return_line_id=line_id,
                    variant_id=line.outcome.variant_id,
                    quantity=line.outcome.quantity,
                    sku=line.outcome.sku,
                    unit_price=line.outcome.unit_price,
                )
            )
    return lines, exchange_lines


def open_return(
    order: OrderSnapshot,
    request: ReturnRequest,
    lines: Sequence[ReturnLine],
    exchange_lines: Sequence[ExchangeLine],
    return_id: str,
    *,
    now: datetime,
    actor: str,
    refs: ExternalRefs | None = None,
    imported: Mapping[str, Any] | None = None,
    policy_version: str | None = None,
    verdict: Verdict | None = None,
) -> tuple[Change, Money]:
    """A new return's first change: the record built from the checked request, an
    ``imported`` note when another system opened it, and the ``requested`` note; with the
    value of the units asked for. ``policy_version``: the version of the shop's policy in
    force, recorded on the return; ``verdict``: what the shop's rules decided, a ``rule``
    entry per rule that fired (:func:`~returnflow.decisions.merchant.record_firings`)."""
    initial = TABLE.initial
    record = ReturnRecord(
        id=return_id,
        shop=request.shop,
        order_id=request.order_id,
        currency=order.currency,
        status=initial[0],
        exchange_status=initial[1],
        lines=tuple(lines),
        exchange_lines=_on_platform(request, lines, exchange_lines),
        refs=attrs.evolve(
            refs or ExternalRefs(),
            platform_return_id=request.platform_return_id,
            platform_line_ids=request.platform_line_ids,
        )
        if request.platform_return_id
        else refs or ExternalRefs(),
        created_at=now,
        updated_at=now,
        customer_email=order.customer_email,
        customer_note=request.customer_note,
        taxes_included=order.taxes_included,
        policy_version=policy_version,
        method=request.method,
        claim=request.claim,
    )
    change = Change(record, now=now, actor=actor, base=0)
    if imported is not None:
        change.note("imported", imported)
    value = Money.sum((amount for line in lines for amount in line.unit_amounts), order.currency)
    claim = request.claim
    change.note(
        "requested",
        {
            "lines": ", ".join(f"{line.order_line_id}x{line.quantity}" for line in lines),
            "value": str(value),
            **({"claim": claim.reason.value, "evidence": claim.note} if claim else {}),
            **({"photos": ", ".join(claim.photos)} if claim and claim.photos else {}),
        },
    )
    if verdict is not None:
        merchant.record_firings(change, verdict)
    return change, value


def requested(
    change: Change,
    order: OrderSnapshot,
    request: ReturnRequest,
    policy: ReturnPolicy,
    *,
    value: Money,
    verdict: Verdict | None = None,
) -> None:
    """A customer's request: the policy approves it, sends it to review or declines it;
    the shop's rules (``verdict``) may decide otherwise
    (:func:`~returnflow.decisions.merchant.combine`)."""
    change.publish("request")
    change.notify("return_requested")
    units = {line.order_line_id: line.units for line in change.record.lines}
    assessment = policy.assess(order, request, now=change.now, value=value, units=units)
    if verdict is not None:
        assessment = merchant.combine(assessment, verdict)
    change.fire("check", {"decision": assessment.decision.value})
    if assessment.decision is Decision.APPROVE:
        change.fire("auto_approve")
        approved(change, policy)
    elif assessment.decision is Decision.REVIEW:
        change.fire("route_to_review", {"reasons": "; ".join(assessment.notes)})
        change.update(review_reasons=assessment.notes)
        change.publish("update", review_reasons=list(assessment.notes))
    else:
        reason = assessment.decline_reason or DeclineReason.OTHER
        decline(change, reason, "; ".join(assessment.notes))


def imported(change: Change, policy: ReturnPolicy, *, source: str, external_id: str) -> None:
    """A return another system decided: approved as it stands, the policy not asked."""
    change.publish("request", source=source, external_id=external_id)
    change.notify("return_requested")
    change.fire("check", {"decision": Decision.APPROVE.value, "decided_by": source})
    change.fire("auto_approve", {"approved_by": source})
    approved(change, policy)


def approve(change: Change, policy: ReturnPolicy) -> None:
    """An agent approves a return under review (or resumes one that needed review)."""
    change.fire("approve")
    change.update(review_reasons=())
    approved(change, policy)


def approved(change: Change, policy: ReturnPolicy) -> None:
    """What an approval sets in motion: the warehouse expectation, a label (not for an
    imported return: its source gave one), the exchange hold, the messages; a returnless
    return completes at once. A return approved again (after review) keeps the warehouse
    return and the label it has or has asked for (``change.outbox``): an agent buys a new
    label with :func:`issue_label`."""
    record = change.record
    shipped = [line for line in record.lines if line.requires_receipt]
    label = record.refs.tracking_number or change.planned(fx.CreateLabel)
    by_carrier = record.method.needs_label  # in store: handed over, no label, no transit
    if shipped and by_carrier and policy.send_label and record.refs.source is None and not label:
        # the label first: the customer waits on it (its answer sends it), not on the RMA
        change.effect(fx.CreateLabel, method=record.method)
    locations.expect(change, policy)  # one warehouse return per location
    exchange.hold(change, policy)
    change.publish("approve")
    change.notify("return_approved")
    if not shipped:  # returnless: nothing to wait for
        completion.complete(change, policy)


def decline_reason(reason: object) -> DeclineReason:
    """``reason`` as a :class:`DeclineReason` (a member or its value); anything else is an
    :class:`~returnflow.errors.InvalidPayload` naming ``reason``."""
    try:
        return DeclineReason(reason)
    except ValueError:
        allowed = ", ".join(member.value for member in DeclineReason)
        raise InvalidPayload("reason", reason, f"must be one of: {allowed}") from None


def decline(change: Change, reason: DeclineReason, note: str) -> None:
    """An agent (or the policy) declines the return, with ``reason`` and ``note`` (free
    text, :func:`~returnflow.domain._fields.check_text`, else
    :class:`~returnflow.errors.InvalidRequest` naming ``note``)."""
    check_text("note", note)
    payload = {"reason": reason.value, **({"note": note} if note else {})}
    change.fire("decline", payload, reason=reason)
    change.update(decline_reason=reason)
    change.publish("decline", reason=reason.value, note=note)
    change.notify("return_declined", reason=reason.value, note=note)


def issue_label(change: Change) -> None:
    """Buy a (new) return label; it is sent to the customer when the carrier returns it.
    An in-store return has none: :class:`~returnflow.errors.InvalidPayload` naming
    ``method``."""
    if not change.record.method.needs_label:
        raise InvalidPayload(
            "method", change.record.method.value, "an in-store return has no label"
        )
    if not (change.allows("send_label") or change.record.status == "label_sent"):
        change.refuse("send_label")
    change.effect(fx.CreateLabel, method=change.record.method)
    change.note("label_requested", {})


def quote(
    order: OrderSnapshot,
    lines: Sequence[ReturnLine],
    exchange_lines: Sequence[ExchangeLine],
    policy: ReturnPolicy,
    verdict: Verdict | None = None,
    method: ReturnMethod = ReturnMethod.MAIL,
) -> Settlement:
    """What the lines would settle to if every unit came back accepted: the balance due is
    what the customer is charged (at approval for an exchange); ``rules`` explains each
    merchant rule that fired (``verdict``); a return ``method``'s own fee is its return
    shipping fee."""
    verdict = verdict or Verdict()
    shipping = verdict.return_shipping[0] if verdict.return_shipping is not None else None
    settlement = settle(
        order.currency,
        [(line, line.quantity, 0) for line in lines],
        fees=policy.fees_for(shipping, method),
        exchange_lines=exchange_lines,
        difference_to=policy.exchange_difference,
        taxes_included=order.taxes_included,
    )
    return attrs.evolve(settlement, rules=tuple(firing.explain() for firing in verdict.firings))


def _on_platform(
    request: ReturnRequest, lines: Sequence[ReturnLine], exchange_lines: Sequence[ExchangeLine]
) -> tuple[ExchangeLine, ...]:
    """The exchange lines, with the platform's exchange line ids of a return the customer
    opened on the platform (``request.platform_exchange_line_ids``)."""
    ids = dict(request.platform_exchange_line_ids)
    order_line = {line.id: line.order_line_id for line in lines}
    return tuple(
        attrs.evolve(line, platform_item_id=ids[order_line[line.return_line_id]])
        if order_line.get(line.return_line_id) in ids
        else line
        for line in exchange_lines
    )
