"""Settings of a return policy that merchant configuration added: when the order's shipping
and duties are given back (:class:`RefundOriginal`), and the checks of the policy's
version and review reasons (importable from :mod:`returnflow.domain.policy` too)."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any, TypeVar

import attrs

from returnflow.domain._fields import check_amount, text_problem
from returnflow.domain.model import ItemCondition, Reason, to_reason
from returnflow.errors import ConfigurationError, MoneyError, ValidationError

__all__ = ["RefundOriginal"]


class RefundOriginal(str, enum.Enum):
    """When a return gives back its units' share of the order's shipping or duties."""

    NEVER = "never"
    """Never by the policy (a rule still may; default)."""
    MERCHANTS_FAULT = "merchants_fault"
    """For lines whose reason is the merchant's fault (the shop's reason definitions)."""
    ALWAYS = "always"
    """For every refunded or credited line."""


def _review_reasons(value: object) -> frozenset[Reason]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ConfigurationError(
            "must be a set of return reasons", field="review_reasons", value=value
        )
    try:
        return frozenset(to_reason(item, "review_reasons") for item in value)
    except ValidationError as error:
        raise ConfigurationError(error.reason, field="review_reasons", value=error.value) from None


def _refund_original(field: str, value: object) -> RefundOriginal:
    try:
        return RefundOriginal(value)
    except ValueError:
        allowed = ", ".join(member.value for member in RefundOriginal)
        raise ConfigurationError(f"must be one of: {allowed}", field=field, value=value) from None


def _refund_shipping(value: object) -> RefundOriginal:
    return _refund_original("refund_shipping", value)


def _refund_duties(value: object) -> RefundOriginal:
    return _refund_original("refund_duties", value)


def _version(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        raise ConfigurationError("must be a non-empty string", field=attribute.name, value=value)
    if (problem := text_problem(value)) is not None:  # kept with every return it decides
        raise ConfigurationError(problem, field=attribute.name, value=value)


def _positive_int(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError("must be a whole number >= 1", field=attribute.name, value=value)


def _non_negative_int(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError("must be a whole number >= 0", field=attribute.name, value=value)


def _positive_number(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigurationError("must be a number > 0", field=attribute.name, value=value)


def _amount_setting(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """An optional amount of a policy: ``None`` or :class:`Money`, never negative (zero is
    allowed), as :func:`~returnflow.domain.model.check_amount` has it; its currency is
    checked against each order's (:meth:`ReturnPolicy.amounts`)."""
    try:
        check_amount(attribute.name, value)
    except MoneyError as error:
        raise ConfigurationError(error.reason, field=attribute.name, value=value) from None


_STUCK_AFTER: tuple[tuple[str, timedelta], ...] = (
    ("in_transit", timedelta(days=30)),
    ("delivered", timedelta(days=14)),
    ("item_received", timedelta(days=14)),
    ("refunded", timedelta(days=7)),
)


def _to_stuck_after(value: Any) -> tuple[tuple[str, timedelta], ...]:
    items = value.items() if isinstance(value, Mapping) else value
    try:
        pairs = tuple((str(state), after) for state, after in items)
    except (TypeError, ValueError):
        raise ConfigurationError(
            "must map lifecycle states to timedelta", field="stuck_after", value=value
        ) from None
    for state, after in pairs:
        if not isinstance(after, timedelta) or after <= timedelta(0):
            raise ConfigurationError(
                f"must be a positive timedelta for {state!r}", field="stuck_after", value=after
            )
    return tuple(sorted(pairs))


_S = TypeVar("_S", bound=enum.Enum)


def _setting(kind: type[_S], value: object, field: str) -> _S:
    """``kind(value)``, or :class:`ConfigurationError` naming ``field`` and the choices."""
    if isinstance(value, kind):
        return value
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(str(member.value) for member in kind)
        raise ConfigurationError(f"must be one of: {allowed}", field=field, value=value) from None


def _to_conditions(value: object) -> frozenset[ItemCondition]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ConfigurationError(
            "must be a set of item conditions", field="accepted_conditions", value=value
        )
    return frozenset(_setting(ItemCondition, item, "accepted_conditions") for item in value)


def _flag(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A yes/no setting is a ``bool``: a string such as ``"false"`` would read as yes."""
    if not isinstance(value, bool):
        raise ConfigurationError("must be True or False", field=attribute.name, value=value)


def _text(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError("must be non-empty text", field=attribute.name, value=value)
    if (problem := text_problem(value)) is not None:  # sent to the platforms, kept in history
        raise ConfigurationError(problem, field=attribute.name, value=value)
