"""Merchant rules: an ordered list per shop (``ReturnPolicy.rules``), each "when these facts
hold, then do this", evaluated when a return is requested (and quoted), pure and explained.

A :class:`Rule` has a ``name``, conditions (:class:`When`: every one given must hold) and
actions (:class:`Then`). Conditions on a line (reason, merchant's fault, SKU, product tags
or collections, final sale, outcome asked for, quantity, line value) pick the lines a rule
fires for; conditions on the return (its value, the shipping country, the order's age, the
customer's returns in the last N days, a claim and its reason) hold for all of them. A rule
with no line condition fires for every line. Every rule whose conditions hold fires, in
order, until one with ``stop`` fired; how actions combine:

* decision: ``decline`` beats ``review`` beats ``approve``; a rule's ``approve`` approves a
  return the policy would have sent to review, never one the policy declined (the window,
  final sale: set ``decline_final_sale=False`` to let rules decide final-sale lines);
* ``offer``: the outcomes offered for a line are what every firing rule offers (their
  intersection); a line asking for another is refused
  (:class:`~returnflow.errors.OutcomeNotOffered`, nothing stored);
* ``keep`` (returnless: refund or credit without the item; not for an exchange),
  ``waive_fees``, ``bonus`` (added to a store credit line's bonus), ``require_note``,
  ``require_photo`` (else :class:`~returnflow.errors.EvidenceRequired`),
  ``refund_shipping`` and ``refund_duties`` (the lines give back their share of the
  order's shipping / duties, :func:`~returnflow.domain.settlement.original_charges`): per
  line;
* ``return_shipping``: the first firing rule's fee replaces the policy's for the return;
* ``methods``: the return methods offered are those of the policy that every firing rule
  offers (their intersection); a request for another is refused
  (:class:`~returnflow.errors.MethodNotOffered` naming ``method``, nothing stored);
* ``destination``: the location a line is sent back to (Shopify's location, Medusa's
  ``location_id``), in place of what the host's
  :class:`~returnflow.ports.locations.DestinationResolver` says; the first firing rule's
  wins, per line (:mod:`returnflow.domain.destinations`).

Each firing is recorded in the return's history (a ``rule`` entry: the rule, its lines,
why it fired and what it did) and listed in ``quote().rules``. Rules are data too:
:mod:`returnflow.domain.rules_data` reads them from JSON or TOML. A rule that cannot work is
an :class:`~returnflow.errors.InvalidRule` naming the rule and the field. Evaluation is in
:mod:`returnflow.domain.verdicts`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from returnflow.domain._fields import text_problem
from returnflow.domain.claims import ClaimReason
from returnflow.domain.methods import ReturnMethod, to_methods
from returnflow.domain.model import OutcomeKind, Reason, to_reason
from returnflow.domain.money import Money
from returnflow.errors import ConfigurationError, InvalidRule, ValidationError

__all__ = [
    "LINE_CONDITIONS",
    "LINE_FLAGS",
    "CustomerReturns",
    "Rule",
    "Then",
    "When",
    "to_rules",
]

LINE_CONDITIONS = (
    "reason",
    "merchants_fault",
    "sku",
    "tags",
    "collections",
    "final_sale",
    "outcome",
    "quantity_at_least",
    "line_value_at_least",
)


def _bad(field: str, value: object, message: str) -> InvalidRule:
    return InvalidRule(message, rule=None, field=field, value=value)


def _strings(field: str, value: object) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Iterable) or isinstance(value, (bytes, Mapping)):
        raise _bad(field, value, "must be a list of strings")
    items = list(value)
    if not items or not all(isinstance(item, str) and item.strip() for item in items):
        raise _bad(field, value, "must be a non-empty list of non-empty strings")
    for item in items:
        if (problem := text_problem(item)) is not None:
            raise _bad(field, item, problem)
    return frozenset(items)


def _when_reasons(value: object) -> frozenset[Reason] | None:
    names = _strings("when.reason", [value] if isinstance(value, str) else value)
    if names is None:
        return None
    try:
        return frozenset(to_reason(name, "when.reason") for name in names)
    except ValidationError as error:
        raise _bad("when.reason", error.value, error.reason) from None


def _outcomes(field: str, value: object) -> frozenset[OutcomeKind] | None:
    names = _strings(field, value)
    if names is None:
        return None
    allowed = {kind.value for kind in OutcomeKind}
    unknown = sorted(name for name in names if name not in allowed)
    if unknown:
        raise _bad(field, unknown[0], f"must be among: {', '.join(sorted(allowed))}")
    return frozenset(OutcomeKind(name) for name in names)


def _skus(value: object) -> frozenset[str] | None:
    return _strings("when.sku", value)


def _tags(value: object) -> frozenset[str] | None:
    return _strings("when.tags", value)


def _collections(value: object) -> frozenset[str] | None:
    return _strings("when.collections", value)


def _when_outcomes(value: object) -> frozenset[OutcomeKind] | None:
    return _outcomes("when.outcome", value)


def _offers(value: object) -> frozenset[OutcomeKind] | None:
    return _outcomes("then.offer", value)


def _methods(value: object) -> frozenset[ReturnMethod] | None:
    if value is None:
        return None
    try:
        return to_methods("then.methods", [value] if isinstance(value, str) else value)
    except ConfigurationError as error:
        raise _bad("then.methods", error.value, error.args[0].split(": ", 1)[-1]) from None


def _claims(value: object) -> frozenset[ClaimReason] | None:
    if value is True:
        return frozenset(ClaimReason)
    names = _strings("when.claim", value)
    if names is None:
        return None
    allowed = {reason.value for reason in ClaimReason}
    unknown = sorted(name for name in names if name not in allowed)
    if unknown:
        raise _bad("when.claim", unknown[0], f"must be true or among: {', '.join(sorted(allowed))}")
    return frozenset(ClaimReason(name) for name in names)


def _countries(value: object) -> frozenset[str] | None:
    names = _strings("when.country", value)
    if names is None:
        return None
    for name in names:
        if len(name) != 2 or not name.isascii() or not name.isalpha():
            raise _bad("when.country", name, "must be ISO 3166 alpha-2 codes")
    return frozenset(name.upper() for name in names)


def _count(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _bad(f"when.{attribute.name}", value, "must be a whole number >= 0")


def _money(prefix: str) -> Any:
    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is not None and (not isinstance(value, Money) or value.is_negative):
            raise _bad(f"{prefix}.{attribute.name}", value, "must be Money, not negative")

    return check


def _flag(prefix: str, optional: bool) -> Any:
    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if (value is None and optional) or isinstance(value, bool):
            return
        raise _bad(f"{prefix}.{attribute.name}", value, "must be true or false")

    return check


def _text(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise _bad(f"then.{attribute.name}", value, "must be a non-empty text")
    if value is not None and (problem := text_problem(value)) is not None:  # a review reason
        raise _bad(f"then.{attribute.name}", value, problem)


def _location(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise _bad("then.destination", value, "must be a location id (non-empty, no spaces around)")
    if (problem := text_problem(value)) is not None:  # kept as the lines' location
        raise _bad("then.destination", value, problem)


@attrs.frozen
class CustomerReturns:
    """The customer (by the order's e-mail) asked for at least ``at_least`` returns in the
    shop in the last ``days`` days, this one not counted."""

    days: int = attrs.field()
    at_least: int = attrs.field()

    def __attrs_post_init__(self) -> None:
        for name in ("days", "at_least"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise _bad(f"when.customer_returns.{name}", value, "must be a whole number >= 1")


def _customer_returns(value: object) -> CustomerReturns | None:
    if value is None or isinstance(value, CustomerReturns):
        return value
    if isinstance(value, Mapping) and set(value) == {"days", "at_least"}:
        return CustomerReturns(value["days"], value["at_least"])
    raise _bad("when.customer_returns", value, "must be {days, at_least}")


@attrs.frozen
class When:
    """The conditions of a rule; every one given must hold (``None``: not a condition).
    Sets hold when the fact is one of them (``tags`` and ``collections``: any in common)."""

    reason: frozenset[Reason] | None = attrs.field(default=None, converter=_when_reasons)
    merchants_fault: bool | None = attrs.field(default=None, validator=_flag("when", True))
    sku: frozenset[str] | None = attrs.field(default=None, converter=_skus)
    tags: frozenset[str] | None = attrs.field(default=None, converter=_tags)
    collections: frozenset[str] | None = attrs.field(default=None, converter=_collections)
    final_sale: bool | None = attrs.field(default=None, validator=_flag("when", True))
    outcome: frozenset[OutcomeKind] | None = attrs.field(default=None, converter=_when_outcomes)
    quantity_at_least: int | None = attrs.field(default=None, validator=_count)
    line_value_at_least: Money | None = attrs.field(default=None, validator=_money("when"))
    return_value_at_least: Money | None = attrs.field(default=None, validator=_money("when"))
    return_value_at_most: Money | None = attrs.field(default=None, validator=_money("when"))
    country: frozenset[str] | None = attrs.field(default=None, converter=_countries)
    order_age_days_at_least: int | None = attrs.field(default=None, validator=_count)
    order_age_days_at_most: int | None = attrs.field(default=None, validator=_count)
    customer_returns: CustomerReturns | None = attrs.field(
        default=None, converter=_customer_returns
    )
    claim: frozenset[ClaimReason] | None = attrs.field(default=None, converter=_claims)
    """The return is a claim (:mod:`returnflow.domain.claims`) for one of these reasons
    (``True``: for any reason)."""

    @property
    def on_lines(self) -> bool:
        """Whether a condition picks lines (else the rule fires for every line)."""
        return any(getattr(self, name) is not None for name in LINE_CONDITIONS)


@attrs.frozen
class Then:
    """The actions of a rule (see the module for how they combine)."""

    approve: bool = attrs.field(default=False, validator=_flag("then", False))
    review: str | None = attrs.field(default=None, validator=_text)
    decline: str | None = attrs.field(default=None, validator=_text)
    offer: frozenset[OutcomeKind] | None = attrs.field(default=None, converter=_offers)
    keep: bool = attrs.field(default=False, validator=_flag("then", False))
    waive_fees: bool = attrs.field(default=False, validator=_flag("then", False))
    return_shipping: Money | None = attrs.field(default=None, validator=_money("then"))
    bonus: Money | None = attrs.field(default=None, validator=_money("then"))
    require_note: bool = attrs.field(default=False, validator=_flag("then", False))
    require_photo: bool = attrs.field(default=False, validator=_flag("then", False))
    refund_shipping: bool = attrs.field(default=False, validator=_flag("then", False))
    refund_duties: bool = attrs.field(default=False, validator=_flag("then", False))
    methods: frozenset[ReturnMethod] | None = attrs.field(default=None, converter=_methods)
    destination: str | None = attrs.field(default=None, validator=_location)
    """The location id the lines go back to (a location of the shop's
    :class:`~returnflow.ports.locations.DestinationResolver`)."""

    def __attrs_post_init__(self) -> None:
        decisions = [
            name
            for name in ("approve", "review", "decline")
            if getattr(self, name) not in (None, False)
        ]
        if len(decisions) > 1:
            raise _bad("then", ", ".join(decisions), "one of approve, review or decline")
        if not self.describe():
            raise _bad("then", {}, "a rule does at least one thing")

    def describe(self) -> str:
        """What the actions do, as text (``review: ...; offer store_credit``)."""
        parts: list[str] = []
        if self.approve:
            parts.append("approve")
        if self.review is not None:
            parts.append(f"review: {self.review}")
        if self.decline is not None:
            parts.append(f"decline: {self.decline}")
        if self.offer is not None:
            parts.append("offer " + ", ".join(sorted(kind.value for kind in self.offer)))
        for name in LINE_FLAGS:
            if getattr(self, name):
                parts.append(name.replace("_", " "))
        if self.return_shipping is not None:
            parts.append(f"return shipping {self.return_shipping}")
        if self.bonus is not None:
            parts.append(f"bonus {self.bonus}")
        if self.methods is not None:
            parts.append("methods " + ", ".join(sorted(item.value for item in self.methods)))
        if self.destination is not None:
            parts.append(f"send to {self.destination}")
        return "; ".join(parts)


LINE_FLAGS = (
    "keep",
    "waive_fees",
    "require_note",
    "require_photo",
    "refund_shipping",
    "refund_duties",
)
"""The actions that are a flag per line."""


def _when(value: object) -> When:
    if isinstance(value, When):
        return value
    if isinstance(value, Mapping):
        return When(**_known("when", value, attrs.fields_dict(When)))
    raise _bad("when", value, "must be When(...) or a mapping of conditions")


def _then(value: object) -> Then:
    if isinstance(value, Then):
        return value
    if isinstance(value, Mapping):
        return Then(**_known("then", value, attrs.fields_dict(Then)))
    raise _bad("then", value, "must be Then(...) or a mapping of actions")


def _known(prefix: str, value: Mapping[Any, Any], fields: Mapping[str, Any]) -> dict[str, Any]:
    for key in value:
        if key not in fields:
            raise _bad(f"{prefix}.{key}", value[key], f"no such {prefix}: {', '.join(fields)}")
    return dict(value)


@attrs.frozen(init=False)
class Rule:
    """One merchant rule. ``when`` and ``then`` may be given as mappings
    (``when={"sku": ["GIFT-BOX"]}``), and are then checked with the rule's name in the
    error; ``stop``: no later rule is evaluated once this one fired."""

    name: str
    when: When
    then: Then
    stop: bool = False

    def __init__(
        self,
        name: str,
        when: When | Mapping[str, Any] | None = None,
        then: Any = None,
        stop: Any = False,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise InvalidRule("a rule needs a name", rule=None, field="name", value=name)
        if (problem := text_problem(name)) is not None:  # kept in the returns it decides
            raise InvalidRule(problem, rule=None, field="name", value=name)
        try:
            built_when = _when({} if when is None else when)
            built_then = _then({} if then is None else then)
        except InvalidRule as error:
            raise error.named(name) from None
        if not isinstance(stop, bool):
            raise InvalidRule("must be true or false", rule=name, field="stop", value=stop)
        self.__attrs_init__(name, built_when, built_then, stop)


def to_rules(value: object) -> tuple[Rule, ...]:
    """A converter for ``ReturnPolicy.rules``: a sequence of :class:`Rule`, names unique
    (else :class:`InvalidRule` naming ``rules[<index>]``)."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise InvalidRule("must be a sequence of Rule", rule=None, field="rules", value=value)
    rules = tuple(value)
    seen: set[str] = set()
    for index, rule in enumerate(rules):
        if not isinstance(rule, Rule):
            raise InvalidRule("must be a Rule", rule=None, field=f"rules[{index}]", value=rule)
        if rule.name in seen:
            raise InvalidRule(
                "another rule has this name",
                rule=rule.name,
                field=f"rules[{index}].name",
                value=rule.name,
            )
        seen.add(rule.name)
    return rules
