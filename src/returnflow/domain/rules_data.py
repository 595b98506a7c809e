"""Merchant rules as data: read from plain mappings, JSON or TOML text into
:class:`~returnflow.domain.rules.Rule` values (the same checks, the same
:class:`~returnflow.errors.InvalidRule` naming the rule and the field).

A document is a list of rules or a mapping with a ``rules`` list; each rule has ``name``,
``when`` (conditions), ``then`` (actions) and optionally ``stop``, with the field names of
:class:`~returnflow.domain.rules.When` and :class:`~returnflow.domain.rules.Then`. Amounts
are ``"500.00 EUR"`` or ``{"amount": "500.00", "currency": "EUR"}``; sets are lists.

TOML is read with :mod:`tomllib` (Python 3.11+); on Python 3.10 with ``tomli`` when it is
installed (``pip install 'returnflow[toml]'``), else reading TOML is a
:class:`~returnflow.errors.ConfigurationError` (JSON always works).

>>> rules = rules_from_toml('''
... [[rules]]
... name = "orders over 500: review"
... when = { return_value_at_least = "500.00 EUR" }
... then = { review = "a large return" }
... ''')
>>> rules[0].when.return_value_at_least
Money('500.00', 'EUR')
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from returnflow.domain.money import Money
from returnflow.domain.rules import Rule, to_rules
from returnflow.errors import ConfigurationError, InvalidRule, ValidationError

__all__ = ["rules_from_data", "rules_from_json", "rules_from_toml"]

_MONEY = {
    "when": ("line_value_at_least", "return_value_at_least", "return_value_at_most"),
    "then": ("return_shipping", "bonus"),
}
_RULE_KEYS = ("name", "when", "then", "stop")


def _money(rule: str | None, field: str, value: object) -> Money:
    if isinstance(value, Money):
        return value
    try:
        if isinstance(value, str) and len(value.split()) == 2:
            amount, currency = value.split()
            return Money(amount, currency)
        if isinstance(value, Mapping) and set(value) == {"amount", "currency"}:
            return Money(value["amount"], value["currency"])
    except ValidationError as error:
        raise InvalidRule(error.reason, rule=rule, field=field, value=value) from None
    raise InvalidRule(
        'must be "12.50 EUR" or {amount, currency}', rule=rule, field=field, value=value
    )


def _rule(index: int, data: object) -> Rule:
    where = f"rules[{index}]"
    if not isinstance(data, Mapping):
        raise InvalidRule("must be a mapping", rule=None, field=where, value=data)
    name = data.get("name")
    named = name if isinstance(name, str) and name.strip() else None
    for key in data:
        if key not in _RULE_KEYS:
            raise InvalidRule(
                f"no such field (a rule has {', '.join(_RULE_KEYS)})",
                rule=named,
                field=f"{where}.{key}",
                value=data[key],
            )
    parts: dict[str, Any] = {}
    for part in ("when", "then"):
        given = data.get(part, {})
        if not isinstance(given, Mapping):
            raise InvalidRule("must be a mapping", rule=named, field=f"{where}.{part}", value=given)
        converted = dict(given)
        for key in _MONEY[part]:
            if converted.get(key) is not None:
                converted[key] = _money(named, f"{where}.{part}.{key}", converted[key])
        parts[part] = converted
    try:
        return Rule(name, parts["when"], parts["then"], data.get("stop", False))  # type: ignore[arg-type]
    except InvalidRule as error:
        raise InvalidRule(
            error.message, rule=error.rule, field=f"{where}.{error.field}", value=error.value
        ) from None


def rules_from_data(data: object) -> tuple[Rule, ...]:
    """Rules from plain data (a list of rule mappings, or ``{"rules": [...]}``)."""
    if isinstance(data, Mapping):
        if set(data) != {"rules"}:
            raise InvalidRule(
                "a rules document has one key, rules", rule=None, field="rules", value=sorted(data)
            )
        data = data["rules"]
    if isinstance(data, (str, bytes)) or not isinstance(data, Sequence):
        raise InvalidRule("must be a list of rules", rule=None, field="rules", value=data)
    return to_rules(_rule(index, item) for index, item in enumerate(data))


def rules_from_json(text: str) -> tuple[Rule, ...]:
    """Rules from JSON text; text that is not JSON is an :class:`InvalidRule` (``rules``)."""
    try:
        data = json.loads(text)
    except (TypeError, ValueError) as error:
        raise InvalidRule(f"not JSON: {error}", rule=None, field="rules", value=text) from None
    return rules_from_data(data)


def rules_from_toml(text: str) -> tuple[Rule, ...]:
    """Rules from TOML text (an array of tables ``[[rules]]``); text that is not TOML is an
    :class:`InvalidRule` (``rules``)."""
    parser = _toml()
    try:
        data = parser.loads(text)
    except (TypeError, ValueError) as error:  # TOMLDecodeError is a ValueError
        raise InvalidRule(f"not TOML: {error}", rule=None, field="rules", value=text) from None
    return rules_from_data(data)


def _toml() -> Any:
    for name in ("tomllib", "tomli"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ConfigurationError(
        "reading TOML needs Python 3.11+ or the tomli package (pip install 'returnflow[toml]')",
        field="rules",
        value="toml",
    )
