"""Locations: where each returned line goes back to (the host's routing of returns).

A host with more than one place that receives returns (warehouses, stores, a returns
centre; Shopify's locations, Medusa's stock locations) implements
:class:`DestinationResolver`; returnflow asks it, when a return is opened, for the location
of every line that ships back, unless a merchant rule's ``Then(destination=...)`` chose one
(:mod:`returnflow.domain.destinations`). :class:`StaticDestination`, the default, sends
every line to one location: with no argument, the shop's default one, as before
destinations.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

import attrs

from returnflow.domain.model import OrderSnapshot, ReturnLine
from returnflow.errors import ConfigurationError

__all__ = ["DestinationResolver", "StaticDestination"]


class DestinationResolver(Protocol):
    """Routes returned lines to the shop's locations.

    Both methods answer the same to the same question (they are asked again when a request
    is validated, quoted and opened). A shop the resolver does not route returns for is
    either :class:`~returnflow.errors.UnknownShop` naming ``shop`` from both methods, or
    served like any shop (as :class:`StaticDestination` does).
    :class:`~returnflow.testing.port_contracts.DestinationResolverContract` checks a
    resolver keeps these promises."""

    def locations(self, shop: str) -> Collection[str]:
        """The location ids of ``shop`` that receive returns (text, not blank, no spaces
        around). A line's location (from this resolver or a rule) must be one of them, else
        :class:`~returnflow.errors.UnknownLocation` and nothing is stored."""
        ...

    def destination(self, shop: str, order: OrderSnapshot, line: ReturnLine) -> str | None:
        """The location ``line`` of ``order`` goes back to: one of :meth:`locations`, or
        ``None`` for the shop's default location. Called once per line that ships back
        (not for kept or claimed lines), before anything is stored; an exception it raises
        reaches the caller as it is."""
        ...


def _to_locations(value: object) -> frozenset[str]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Collection):
        raise ConfigurationError("must be a list of location ids", field="locations", value=value)
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item.strip() or item != item.strip():
            raise ConfigurationError(
                "must be a location id (non-empty, no spaces around)",
                field=f"locations[{index}]",
                value=item,
            )
    return frozenset(value)


@attrs.frozen
class StaticDestination:
    """Every line of every shop to one location: ``location_id`` (``None``, the default: the
    shop's default location, which is how returnflow behaved before destinations).
    ``locations``: the location ids rules may name (``location_id`` is one of them). A
    location id that is blank or not text is a
    :class:`~returnflow.errors.ConfigurationError` naming the field."""

    location_id: str | None = None
    locations_offered: frozenset[str] = attrs.field(
        default=frozenset(), converter=_to_locations, alias="locations"
    )

    def __attrs_post_init__(self) -> None:
        where = self.location_id
        if where is not None:
            if not isinstance(where, str) or not where.strip() or where != where.strip():
                raise ConfigurationError(
                    "must be a location id (non-empty, no spaces around) or None",
                    field="location_id",
                    value=where,
                )
            object.__setattr__(
                self, "locations_offered", self.locations_offered | {self.location_id}
            )

    def locations(self, shop: str) -> Collection[str]:
        return self.locations_offered

    def destination(self, shop: str, order: OrderSnapshot, line: ReturnLine) -> str | None:
        return self.location_id
