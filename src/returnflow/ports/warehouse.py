"""The warehouse (WMS): return expectations (RMA / ASN) linked to the order, one per
location the return's lines go back to (:mod:`returnflow.domain.destinations`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import attrs

from returnflow.ports.commerce import LineQuantity

__all__ = ["Expectation", "Warehouse", "WarehouseReturn", "expect_return"]


@attrs.frozen
class WarehouseReturn:
    """What the warehouse answers when a return expectation was created."""

    rma_id: str


class Warehouse(Protocol):
    """The warehouse that receives and inspects returned items."""

    def create_return(
        self,
        shop: str,
        order_id: str,
        return_id: str,
        lines: Sequence[LineQuantity],
        *,
        reason: str,
        action: str,
        idempotency_key: str,
        location_id: str | None = None,
    ) -> WarehouseReturn:
        """Expect these units back, linked to ``order_id``, labelled with reason and action,
        at ``location_id`` (a location of the host's
        :class:`~returnflow.ports.locations.DestinationResolver`). The service passes
        ``location_id`` only for a named location, so a warehouse written before
        destinations keeps working for the default one."""
        ...

    def cancel_return(self, shop: str, rma_id: str, *, idempotency_key: str) -> None:
        """Stop expecting the return (cancelled, expired or superseded by a reset)."""
        ...


class Expectation(Protocol):
    """What a warehouse return is asked for with (the ``CreateWarehouseReturn`` effect)."""

    @property
    def shop(self) -> str: ...
    @property
    def order_id(self) -> str: ...
    @property
    def return_id(self) -> str: ...
    @property
    def lines(self) -> Sequence[LineQuantity]: ...
    @property
    def reason(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def location_id(self) -> str | None: ...


def expect_return(warehouse: Warehouse, asked: Expectation) -> WarehouseReturn:
    """``warehouse.create_return`` for ``asked``, with ``location_id`` only when it names a
    location: a warehouse written before destinations is called as it always was."""
    where = {} if asked.location_id is None else {"location_id": asked.location_id}
    return warehouse.create_return(
        asked.shop,
        asked.order_id,
        asked.return_id,
        asked.lines,
        reason=asked.reason,
        action=asked.action,
        idempotency_key=asked.key,
        **where,
    )
