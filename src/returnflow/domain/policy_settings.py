"""Settings of a return policy that merchant configuration added: when the order's shipping
and duties are given back (:class:`RefundOriginal`), and the checks of the policy's
version and review reasons (importable from :mod:`returnflow.domain.policy` too)."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Any

import attrs

from returnflow.domain.model import Reason, to_reason
from returnflow.errors import ConfigurationError, ValidationError

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
