"""Field checks the domain's value classes share: each raises a
:class:`~returnflow.errors.ValidationError` subclass naming the field and the value."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, TypeVar

import attrs

from returnflow.domain.money import Money
from returnflow.errors import InvalidPayload, InvalidQuantity, InvalidRequest, ValidationError

__all__ = ["coerce_enum"]


def _nonempty(field: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(field, value, "must be a non-empty string")


def _check_id(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _nonempty(attribute.name, value)


def _check_optional_id(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _nonempty(attribute.name, value)


def _check_count(minimum: int) -> Any:
    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidQuantity(attribute.name, value, "must be a whole number")
        if value < minimum:
            raise InvalidQuantity(attribute.name, value, f"must be at least {minimum}")

    return check


def _check_money(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, Money):
        raise InvalidPayload(attribute.name, value, "must be Money")


def _check_aware(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidPayload(attribute.name, value, "must be a timezone-aware datetime")


_E = TypeVar("_E", bound=enum.Enum)


def coerce_enum(enum_type: type[_E], value: object, error: type[ValidationError], field: str) -> _E:
    """``enum_type(value)``, or ``error`` naming ``field``, the value and the allowed values."""
    if isinstance(value, enum_type):
        return value
    try:
        return enum_type(value)
    except ValueError:
        allowed = ", ".join(str(member.value) for member in enum_type)
        raise error(field, value, f"must be one of: {allowed}") from None
