"""Evaluating merchant rules (:mod:`returnflow.domain.rules`) against the facts of a request:
which rules fire, for which lines, why, and what they decide together (a :class:`Verdict`).
Pure: the facts come in, counted beforehand (the customer's returns).

>>> from returnflow.domain.money import Money
>>> from returnflow.domain.rules import LINE_FLAGS, Rule, Then, When
>>> rule = Rule("big orders", When(return_value_at_least=Money("500.00", "EUR")),
...             Then(review="orders over 500 are checked by hand"))
>>> facts = ReturnFacts(lines=(), value=Money("650.00", "EUR"), country="DE",
...                     order_age_days=3, customer_returns={})
>>> evaluate([rule], facts).notes
("rule 'big orders': orders over 500 are checked by hand",)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from returnflow.domain.claims import ClaimReason
from returnflow.domain.methods import ReturnMethod
from returnflow.domain.model import OutcomeKind, Reason, ReturnRequest, reason_text
from returnflow.domain.money import Money
from returnflow.domain.rules import LINE_FLAGS, Rule, When
from returnflow.errors import EvidenceRequired, InvalidRule, MethodNotOffered, OutcomeNotOffered

__all__ = [
    "Firing",
    "LineFacts",
    "ReturnFacts",
    "Verdict",
    "check_method",
    "check_request",
    "evaluate",
    "needed_windows",
]


def _bad(field: str, value: object, message: str) -> InvalidRule:
    return InvalidRule(message, rule=None, field=field, value=value)


@attrs.frozen
class LineFacts:
    """What rules know of one line of the request."""

    line_id: str
    """The order line's id."""
    reason: Reason
    merchants_fault: bool
    sku: str
    tags: frozenset[str]
    collections: frozenset[str]
    final_sale: bool
    outcome: OutcomeKind
    quantity: int
    value: Money


@attrs.frozen
class ReturnFacts:
    """What rules know of the return: its lines, its value, the order's shipping country
    and age in whole days, and the customer's returns counted per window of days (see
    :func:`needed_windows`)."""

    lines: tuple[LineFacts, ...]
    value: Money
    country: str | None
    order_age_days: int
    customer_returns: Mapping[int, int]
    claim: ClaimReason | None = None
    """The reason of a claim (:mod:`returnflow.domain.claims`); ``None``: not a claim."""


@attrs.frozen
class Firing:
    """A rule that fired: for which lines (order line ids), why and what it did."""

    rule: str
    lines: tuple[str, ...]
    why: str
    then: str

    def explain(self) -> str:
        lines = f" ({', '.join(self.lines)})" if self.lines else ""
        return f"rule {self.rule!r}{lines}: {self.why} -> {self.then}"


@attrs.frozen
class Verdict:
    """What the rules decided for a request; empty when none fired."""

    firings: tuple[Firing, ...] = ()
    decision: str | None = None
    """``approve``, ``review``, ``decline`` or ``None`` (the policy decides)."""
    notes: tuple[str, ...] = ()
    """The review or decline reasons, each naming its rule."""
    offers: Mapping[str, tuple[frozenset[OutcomeKind], tuple[str, ...]]] = attrs.field(factory=dict)
    keep: Mapping[str, str] = attrs.field(factory=dict)
    waive_fees: Mapping[str, str] = attrs.field(factory=dict)
    bonus: Mapping[str, tuple[Money, str]] = attrs.field(factory=dict)
    require_note: Mapping[str, str] = attrs.field(factory=dict)
    require_photo: Mapping[str, str] = attrs.field(factory=dict)
    refund_shipping: Mapping[str, str] = attrs.field(factory=dict)
    refund_duties: Mapping[str, str] = attrs.field(factory=dict)
    return_shipping: tuple[Money, str] | None = None
    methods: tuple[frozenset[ReturnMethod], tuple[str, ...]] | None = None
    """The return methods every firing rule with ``methods`` offers, and those rules."""
    destination: Mapping[str, tuple[str, str]] = attrs.field(factory=dict)
    """Per order line id: the location the first firing rule with ``destination`` sends it
    to, and that rule."""


def needed_windows(rules: Sequence[Rule]) -> tuple[int, ...]:
    """The windows (days) for which the customer's returns must be counted."""
    return tuple(sorted({r.when.customer_returns.days for r in rules if r.when.customer_returns}))


def _line_reasons(when: When, line: LineFacts) -> list[str] | None:
    """Why ``line`` meets the line conditions of ``when`` (``None``: it does not)."""
    why: list[str] = []
    checks: list[tuple[bool, str]] = []
    if when.reason is not None:
        checks.append((line.reason in when.reason, f"reason {reason_text(line.reason)}"))
    if when.merchants_fault is not None:
        fault = "the merchant's fault" if line.merchants_fault else "not the merchant's fault"
        checks.append((line.merchants_fault is when.merchants_fault, fault))
    if when.sku is not None:
        checks.append((line.sku in when.sku, f"sku {line.sku}"))
    if when.tags is not None:
        common = sorted(when.tags & line.tags)
        checks.append((bool(common), f"tagged {', '.join(common)}"))
    if when.collections is not None:
        common = sorted(when.collections & line.collections)
        checks.append((bool(common), f"in collection {', '.join(common)}"))
    if when.final_sale is not None:
        checks.append(
            (
                line.final_sale is when.final_sale,
                "final sale" if line.final_sale else "not final sale",
            )
        )
    if when.outcome is not None:
        checks.append((line.outcome in when.outcome, f"asks for {line.outcome.value}"))
    if when.quantity_at_least is not None:
        checks.append(
            (
                line.quantity >= when.quantity_at_least,
                f"quantity {line.quantity} >= {when.quantity_at_least}",
            )
        )
    if when.line_value_at_least is not None:
        bound = when.line_value_at_least
        checks.append((_at_least(line.value, bound), f"line value {line.value} >= {bound}"))
    for held, text in checks:
        if not held:
            return None
        why.append(text)
    return why


def _return_reasons(when: When, facts: ReturnFacts) -> list[str] | None:
    checks: list[tuple[bool, str]] = []
    if when.claim is not None:
        claim = facts.claim.value if facts.claim else None
        checks.append((facts.claim in when.claim, f"claim: {claim or 'none'}"))
    if when.return_value_at_least is not None:
        bound = when.return_value_at_least
        checks.append((_at_least(facts.value, bound), f"return value {facts.value} >= {bound}"))
    if when.return_value_at_most is not None:
        bound = when.return_value_at_most
        checks.append((not _above(facts.value, bound), f"return value {facts.value} <= {bound}"))
    if when.country is not None:
        checks.append((facts.country in when.country, f"shipped to {facts.country}"))
    age = facts.order_age_days
    if when.order_age_days_at_least is not None:
        bound_days = when.order_age_days_at_least
        checks.append((age >= bound_days, f"order {age} days old >= {bound_days}"))
    if when.order_age_days_at_most is not None:
        bound_days = when.order_age_days_at_most
        checks.append((age <= bound_days, f"order {age} days old <= {bound_days}"))
    if when.customer_returns is not None:
        wanted = when.customer_returns
        if wanted.days not in facts.customer_returns:
            raise InvalidRule(
                "the customer's returns were not counted for this window",
                rule=None,
                field="when.customer_returns.days",
                value=wanted.days,
            )
        count = facts.customer_returns[wanted.days]
        checks.append(
            (
                count >= wanted.at_least,
                f"{count} returns in {wanted.days} days >= {wanted.at_least}",
            )
        )
    why: list[str] = []
    for held, text in checks:
        if not held:
            return None
        why.append(text)
    return why


def _same_currency(bound: Money, value: Money) -> None:
    if bound.currency != value.currency:
        raise _bad("when", str(bound), f"is not in the return's currency {value.currency}")


def _at_least(value: Money, bound: Money) -> bool:
    _same_currency(bound, value)
    return value >= bound


def _above(value: Money, bound: Money) -> bool:
    _same_currency(bound, value)
    return value > bound


def evaluate(rules: Sequence[Rule], facts: ReturnFacts) -> Verdict:
    """Evaluate ``rules`` in order against ``facts`` (pure). Raises :class:`InvalidRule`
    naming the rule for an amount in another currency than the return's, or a customer
    returns window not counted."""
    firings: list[Firing] = []
    decisions: dict[str, list[str]] = {"approve": [], "review": [], "decline": []}
    offers: dict[str, tuple[frozenset[OutcomeKind], tuple[str, ...]]] = {}
    per_line: dict[str, dict[str, Any]] = {name: {} for name in (*LINE_FLAGS, "bonus")}
    shipping: tuple[Money, str] | None = None
    methods: tuple[frozenset[ReturnMethod], tuple[str, ...]] | None = None
    destination: dict[str, tuple[str, str]] = {}
    for rule in rules:
        try:
            fired = _fire(rule, facts)
        except InvalidRule as error:
            raise error.named(rule.name) from None
        if fired is None:
            continue
        lines, why = fired
        then = rule.then
        firings.append(Firing(rule.name, lines, why, then.describe()))
        for name, text in (("approve", ""), ("review", then.review), ("decline", then.decline)):
            if getattr(then, name):
                decisions[name].append(f"rule {rule.name!r}" + (f": {text}" if text else ""))
        for line_id in lines:
            if then.offer is not None:
                allowed, names = offers.get(line_id, (frozenset(OutcomeKind), ()))
                offers[line_id] = (allowed & then.offer, (*names, rule.name))
            for name in LINE_FLAGS:
                if getattr(then, name):
                    per_line[name].setdefault(line_id, rule.name)
            if then.bonus is not None:
                _money_in(rule, "then.bonus", then.bonus, facts.value.currency)
                earlier = per_line["bonus"].get(line_id)
                total = then.bonus if earlier is None else earlier[0] + then.bonus
                per_line["bonus"][line_id] = (total, rule.name)
            if then.destination is not None:
                destination.setdefault(line_id, (then.destination, rule.name))
        if then.return_shipping is not None and shipping is None:
            _money_in(rule, "then.return_shipping", then.return_shipping, facts.value.currency)
            shipping = (then.return_shipping, rule.name)
        if then.methods is not None:
            usable, by = methods or (frozenset(ReturnMethod), ())
            methods = (usable & then.methods, (*by, rule.name))
        if rule.stop:
            break
    decision = next((name for name in ("decline", "review", "approve") if decisions[name]), None)
    return Verdict(
        firings=tuple(firings),
        decision=decision,
        notes=tuple(decisions[decision]) if decision in ("decline", "review") else (),
        offers=offers,
        return_shipping=shipping,
        methods=methods,
        destination=destination,
        **per_line,
    )


def _money_in(rule: Rule, field: str, amount: Money, currency: str) -> None:
    if amount.currency != currency:
        raise InvalidRule(
            f"is not in the return's currency {currency}",
            rule=rule.name,
            field=field,
            value=str(amount),
        )


def _fire(rule: Rule, facts: ReturnFacts) -> tuple[tuple[str, ...], str] | None:
    """The lines ``rule`` fires for and why, or ``None`` when it does not fire."""
    on_return = _return_reasons(rule.when, facts)
    if on_return is None:
        return None
    if not rule.when.on_lines:
        return tuple(line.line_id for line in facts.lines), "; ".join(on_return) or "always"
    picked: list[str] = []
    reasons: list[str] = []
    for line in facts.lines:
        why = _line_reasons(rule.when, line)
        if why is None:
            continue
        picked.append(line.line_id)
        reasons.append(f"{line.line_id}: {', '.join(why)}")
    if not picked:
        return None
    return tuple(picked), "; ".join([*on_return, *reasons])


def check_request(request: ReturnRequest, verdict: Verdict) -> None:
    """Refuse a request line the rules do not allow as asked:
    :class:`~returnflow.errors.OutcomeNotOffered` (``lines[i].outcome``) for an outcome no
    firing rule offers, :class:`~returnflow.errors.EvidenceRequired` (``lines[i].note`` /
    ``lines[i].photos``) for a note or photo a rule requires; each names the rule."""
    for index, asked in enumerate(request.lines):
        path, line_id = f"lines[{index}]", asked.order_line_id
        kind = asked.outcome.kind
        offered = verdict.offers.get(line_id)
        if offered is not None and kind not in offered[0]:
            allowed = ", ".join(sorted(item.value for item in offered[0])) or "nothing"
            names = ", ".join(repr(name) for name in offered[1])
            raise OutcomeNotOffered(
                f"{path}.outcome", kind.value, f"rule {names} offers only: {allowed}"
            )
        if line_id in verdict.require_note and not asked.note.strip():
            rule = verdict.require_note[line_id]
            raise EvidenceRequired(f"{path}.note", asked.note, f"rule {rule!r} needs a note")
        if line_id in verdict.require_photo and not asked.photos:
            rule = verdict.require_photo[line_id]
            raise EvidenceRequired(f"{path}.photos", [], f"rule {rule!r} needs a photo")


def check_method(method: ReturnMethod, offered: frozenset[ReturnMethod], verdict: Verdict) -> None:
    """Refuse a return ``method`` the shop does not offer (``offered``: the policy's
    ``return_methods``) or a firing rule's ``methods`` leaves out:
    :class:`~returnflow.errors.MethodNotOffered` naming ``method`` (and the rules)."""
    allowed, names = offered, ""
    if verdict.methods is not None:
        allowed = offered & verdict.methods[0]
        names = "rule " + ", ".join(repr(name) for name in verdict.methods[1]) + ": "
    if method not in allowed:
        shown = ", ".join(sorted(item.value for item in allowed)) or "nothing"
        raise MethodNotOffered("method", method.value, f"{names}the shop offers only: {shown}")
