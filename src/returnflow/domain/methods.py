"""Return methods: how the goods go back (Loop's and AfterShip Returns' return methods,
Shopify's return shipping options).

* ``mail``: the customer mails the parcel with a prepaid label (the default, and what every
  return stored before methods were recorded used);
* ``drop_off``: the customer drops the parcel at a carrier point, showing a QR code (no
  printer needed); the carrier port is asked for it (``method="drop_off"``);
* ``in_store``: the customer hands the goods over at a store: no label, no carrier, the
  return waits approved for the store's receipt;
* ``pickup``: the carrier collects the parcel at the customer's address
  (``method="pickup"``).

A policy lists the methods a shop offers (``ReturnPolicy.return_methods``, ``mail`` only by
default); a merchant rule may restrict them (``Then(methods=[...])``); each may carry its
own fee (``FeePolicy.method_fees``), in place of the return shipping fee.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping

from returnflow.errors import ConfigurationError, InvalidRequest

__all__ = ["ReturnMethod", "to_method", "to_methods"]


class ReturnMethod(str, enum.Enum):
    """How the customer sends the goods back."""

    MAIL = "mail"
    DROP_OFF = "drop_off"
    IN_STORE = "in_store"
    PICKUP = "pickup"

    @property
    def needs_label(self) -> bool:
        """Whether the carrier port is asked for a label (or a QR code, or a pickup)."""
        return self is not ReturnMethod.IN_STORE


_ALLOWED = ", ".join(member.value for member in ReturnMethod)


def _parse(value: object) -> ReturnMethod | None:
    if isinstance(value, ReturnMethod):
        return value
    if isinstance(value, str):
        try:
            return ReturnMethod(value)
        except ValueError:
            return None
    return None


def to_method(value: object) -> ReturnMethod:
    """A request's ``method`` (a member or its value); anything else is an
    :class:`~returnflow.errors.InvalidRequest` naming ``method``."""
    method = _parse(value)
    if method is None:
        raise InvalidRequest("method", value, f"must be one of: {_ALLOWED}")
    return method


def to_methods(field: str, value: object) -> frozenset[ReturnMethod]:
    """A non-empty set of methods (members or their values); anything else is a
    :class:`~returnflow.errors.ConfigurationError` naming ``field`` and the value."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise ConfigurationError(f"must be a list of: {_ALLOWED}", field=field, value=value)
    items = list(value)
    if not items:
        raise ConfigurationError("offers at least one method", field=field, value=items)
    methods: set[ReturnMethod] = set()
    for item in items:
        method = _parse(item)
        if method is None:
            raise ConfigurationError(f"must be one of: {_ALLOWED}", field=field, value=item)
        methods.add(method)
    return frozenset(methods)
