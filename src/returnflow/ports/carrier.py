"""The carrier: return labels."""

from __future__ import annotations

from typing import Protocol

import attrs

__all__ = ["Carrier", "Label"]


@attrs.frozen
class Label:
    tracking_number: str
    label_url: str


class Carrier(Protocol):
    """The carrier (or aggregator) that ships the parcel back."""

    def create_label(
        self, shop: str, return_id: str, order_id: str, *, idempotency_key: str
    ) -> Label:
        """Buy a return label for the parcel."""
        ...

    def void_label(self, shop: str, tracking_number: str, *, idempotency_key: str) -> None:
        """Void an unused label."""
        ...
