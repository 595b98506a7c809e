"""Destinations: the location each returned line goes back to (pure).

A location is where returned goods are received: a warehouse, a store, a returns centre
(Shopify's ``Location``, to which a return's reverse fulfillment orders are sent; Medusa's
``location_id`` on a return). Each line of a return that ships back has one
(:attr:`ReturnLine.location_id <returnflow.domain.model.ReturnLine.location_id>`), chosen
when the return is opened:

1. by the first merchant rule that fires for the line with ``Then(destination=...)``
   (:mod:`returnflow.domain.rules`), else
2. by the host's :class:`~returnflow.ports.locations.DestinationResolver` (the default,
   :class:`~returnflow.ports.locations.StaticDestination`, sends every line to the shop's
   default location).

``None`` is the shop's default location: the warehouse as it was before destinations, called
as before (no location argument), and what every line stored before destinations reads back
as. A named location must be one of the shop's (the resolver's ``locations(shop)``), else
:class:`~returnflow.errors.UnknownLocation` naming ``lines[i].location_id``, nothing stored.

A return whose lines go to several locations gets one warehouse expectation per location
(``CreateWarehouseReturn`` with its ``location_id``; the RMA ids are kept per location in
``ExternalRefs.location_rma_ids``), one receipt stream per location (a receipt may name its
``location_id``), and completes when every location is done: on receipt when every unit is
received (wherever it was), on the warehouse's Finished when every location said Finished
(``ReturnRecord.finished_locations``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

from returnflow.domain._evolve import evolve
from returnflow.domain.model import ExternalRefs, ReturnLine, ReturnRecord
from returnflow.errors import UnknownLocation

__all__ = [
    "DEFAULT_KEY",
    "check_location",
    "key_of",
    "lines_at",
    "locations",
    "received_at",
    "rma_at",
    "route",
    "several",
    "with_rma",
]

DEFAULT_KEY = ""
"""The default location (``None``) as ``ReturnRecord.finished_locations`` names it."""


def key_of(location_id: str | None) -> str:
    """``location_id`` as ``ReturnRecord.finished_locations`` names it."""
    return DEFAULT_KEY if location_id is None else location_id


def check_location(path: str, value: object, known: Collection[str], source: str) -> str | None:
    """``value`` as a line's location: ``None`` (the default location) or one of ``known``
    (the shop's locations). A blank value, one that is not text, or one the shop does not
    have is :class:`~returnflow.errors.UnknownLocation` naming ``path`` and ``source`` (the
    rule or the resolver that gave it)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise UnknownLocation(path, value, f"{source} gave no location id")
    if value not in known:
        shown = ", ".join(sorted(known)) or "none (configure a DestinationResolver)"
        raise UnknownLocation(path, value, f"{source}: not a location of the shop: {shown}")
    return value


def route(lines: Sequence[ReturnLine], chosen: Sequence[str | None]) -> list[ReturnLine]:
    """``lines`` each with its location from ``chosen`` (checked before); a line that ships
    nothing back (kept, claimed) goes nowhere."""
    return [
        evolve(line, location_id=where if line.requires_receipt else None)
        for line, where in zip(lines, chosen, strict=True)
    ]


def locations(lines: Iterable[ReturnLine]) -> tuple[str | None, ...]:
    """The locations the lines that ship back go to, each once, in line order."""
    seen: list[str | None] = []
    for line in lines:
        if line.requires_receipt and line.location_id not in seen:
            seen.append(line.location_id)
    return tuple(seen)


def several(record: ReturnRecord) -> bool:
    """Whether the return's lines go to more than one location."""
    return len(locations(record.lines)) > 1


def lines_at(lines: Iterable[ReturnLine], location_id: str | None) -> tuple[ReturnLine, ...]:
    """The lines that ship back to ``location_id``."""
    return tuple(
        line for line in lines if line.requires_receipt and line.location_id == location_id
    )


def received_at(record: ReturnRecord, location_id: str | None) -> bool:
    """Whether every unit due at ``location_id`` has been received."""
    return all(line.received >= line.quantity for line in lines_at(record.lines, location_id))


def rma_at(refs: ExternalRefs, location_id: str | None) -> str | None:
    """The RMA id of the warehouse return at ``location_id`` (``None``: none yet)."""
    if location_id is None:
        return refs.warehouse_rma_id
    return next((rma for where, rma in refs.location_rma_ids if where == location_id), None)


def with_rma(refs: ExternalRefs, location_id: str | None, rma: str | None) -> ExternalRefs:
    """``refs`` with the RMA id of the warehouse return at ``location_id``."""
    if location_id is None:
        return evolve(refs, warehouse_rma_id=rma)
    kept = tuple(pair for pair in refs.location_rma_ids if pair[0] != location_id)
    added = ((location_id, rma),) if rma is not None else ()
    return evolve(refs, location_rma_ids=kept + added)
