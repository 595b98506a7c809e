"""The warehouse (WMS): return expectations (RMA / ASN) linked to the order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import attrs

from returnflow.ports.commerce import LineQuantity

__all__ = ["Warehouse", "WarehouseReturn"]


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
    ) -> WarehouseReturn:
        """Expect these units back, linked to ``order_id``, labelled with reason and action."""
        ...

    def cancel_return(self, shop: str, rma_id: str, *, idempotency_key: str) -> None:
        """Stop expecting the return (cancelled, expired or superseded by a reset)."""
        ...
