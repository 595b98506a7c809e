"""Merchant rules on a request: the facts they read, what they do to its lines, how their
decision combines with the policy's, and the history they leave
(:mod:`returnflow.domain.rules` has the rules themselves)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import attrs

from returnflow.decisions.change import Change
from returnflow.domain.model import (
    DeclineReason,
    Keep,
    OrderSnapshot,
    OutcomeKind,
    Refund,
    ReturnLine,
    ReturnRequest,
    StoreCredit,
)
from returnflow.domain.money import Money
from returnflow.domain.policy import Assessment, Decision, ReturnPolicy
from returnflow.domain.reasons import definition_of
from returnflow.domain.settlement import with_original_charges
from returnflow.domain.verdicts import LineFacts, ReturnFacts, Verdict, check_request, evaluate

__all__ = ["combine", "facts_of", "judge", "record_firings"]


def facts_of(
    order: OrderSnapshot,
    request: ReturnRequest,
    lines: Sequence[ReturnLine],
    policy: ReturnPolicy,
    *,
    now: datetime,
    customer_returns: Mapping[int, int],
) -> ReturnFacts:
    """What the rules read of a request whose ``lines`` were built
    (:func:`~returnflow.decisions.request.build_lines`): per line its reason (and whether
    the shop's definition calls it the merchant's fault), SKU, product tags and collections,
    final sale, the outcome asked for, quantity and paid value; the return's value, the
    order's shipping country and age in whole days at ``now``, and ``customer_returns``
    (days -> the customer's returns in that many days)."""
    facts: list[LineFacts] = []
    for asked, line in zip(request.lines, lines, strict=True):
        order_line = order.line(line.order_line_id)
        assert order_line is not None  # build_lines took it from the order
        definition = definition_of(policy.reasons, line.reason)
        outcome = asked.outcome.kind
        facts.append(
            LineFacts(
                line_id=line.order_line_id,
                reason=line.reason,
                merchants_fault=definition is not None and definition.merchants_fault,
                sku=order_line.sku,
                tags=frozenset(order_line.tags),
                collections=frozenset(order_line.collections),
                final_sale=order_line.final_sale,
                outcome=outcome,
                quantity=line.quantity,
                value=Money.sum(line.unit_amounts, order.currency),
            )
        )
    return ReturnFacts(
        lines=tuple(facts),
        value=Money.sum((fact.value for fact in facts), order.currency),
        country=order.shipping_country,
        order_age_days=max((now - order.created_at).days, 0),
        customer_returns=dict(customer_returns),
        claim=request.claim.reason if request.claim else None,
    )


def judge(
    order: OrderSnapshot,
    request: ReturnRequest,
    lines: Sequence[ReturnLine],
    policy: ReturnPolicy,
    *,
    now: datetime,
    customer_returns: Mapping[int, int],
) -> tuple[list[ReturnLine], Verdict]:
    """Evaluate the shop's rules on a request and apply what they do to its lines: a line
    asking for an outcome not offered is :class:`~returnflow.errors.OutcomeNotOffered`
    (``lines[i].outcome``), one without the note or photo a rule requires
    :class:`~returnflow.errors.EvidenceRequired` (``lines[i].note`` / ``lines[i].photos``),
    each naming the rule; kept lines become returnless (:class:`Keep`, settling as asked),
    waived lines pay no fee, a bonus is added to a store credit line's. Nothing is stored
    here; the errors leave nothing behind."""
    if not policy.rules:
        return list(lines), Verdict()
    facts = facts_of(order, request, lines, policy, now=now, customer_returns=customer_returns)
    verdict = evaluate(policy.rules, facts)
    check_request(request, verdict)
    judged: list[ReturnLine] = []
    for line in lines:
        line_id = line.order_line_id
        outcome = line.outcome
        if line_id in verdict.bonus and isinstance(outcome, StoreCredit):
            extra = verdict.bonus[line_id][0]
            outcome = StoreCredit(bonus=extra if outcome.bonus is None else outcome.bonus + extra)
        if line_id in verdict.keep and isinstance(outcome, (Refund, StoreCredit)):
            settle = OutcomeKind.REFUND if isinstance(outcome, Refund) else OutcomeKind.STORE_CREDIT
            outcome = Keep(settle=settle)
        judged_line = attrs.evolve(line, outcome=outcome, fees_waived=line_id in verdict.waive_fees)
        judged.append(
            with_original_charges(
                order,
                judged_line,
                shipping=line_id in verdict.refund_shipping,
                duties=line_id in verdict.refund_duties,
            )
        )
    return judged, verdict


def combine(assessment: Assessment, verdict: Verdict) -> Assessment:
    """The policy's assessment with the rules' decision: a policy decline stands; else a
    rule's decline, review or approval decides (the policy's review notes kept with a
    rule's review, dropped by a rule's approval: the history names the rule)."""
    if assessment.decision is Decision.DECLINE or verdict.decision is None:
        return assessment
    if verdict.decision == "decline":
        return Assessment(Decision.DECLINE, DeclineReason.OTHER, verdict.notes)
    if verdict.decision == "review":
        return Assessment(Decision.REVIEW, None, (*assessment.notes, *verdict.notes))
    return Assessment(Decision.APPROVE)


def record_firings(change: Change, verdict: Verdict) -> None:
    """A ``rule`` history entry per rule that fired: the rule, its lines, why, what it did;
    and the return shipping fee a rule set, on the record."""
    for firing in verdict.firings:
        change.note(
            "rule",
            {
                "rule": firing.rule,
                "lines": ", ".join(firing.lines),
                "why": firing.why,
                "then": firing.then,
            },
        )
    if verdict.return_shipping is not None:
        change.update(rule_return_shipping=verdict.return_shipping[0])
