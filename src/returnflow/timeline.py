"""A return's timeline: its state changes and its effects, in the order they happened."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import attrs

from returnflow.lifecycle import effects as fx
from returnflow.lifecycle.table import shopify_status
from returnflow.ports.store import ReturnStore

__all__ = ["TimelineEntry", "render", "timeline"]


@attrs.frozen
class TimelineEntry:
    """A line of a return's timeline: a state change or an effect."""

    version: int
    kind: str  # "event" | "effect"
    text: str
    at: datetime | None = None


def timeline(store: ReturnStore, shop: str, return_id: str) -> Sequence[TimelineEntry]:
    """State changes and effects of one return, in the order they happened.

    Raises :class:`~returnflow.errors.ReturnNotFound` for a return the shop does not have."""
    record = store.get(shop, return_id)
    entries: list[tuple[int, int, TimelineEntry]] = []
    for index, item in enumerate(record.history):
        if item.source != item.target:
            moved = f"{'/'.join(item.source)} -> {'/'.join(item.target)}"
        else:
            moved = "/".join(item.source)
        details = ", ".join(f"{key}={value}" for key, value in item.payload.items())
        text = f"{item.event:<24} {moved}" + (f"  [{details}]" if details else "")
        entries.append((item.version, index, TimelineEntry(item.version, "event", text, item.at)))
    for entry in store.outbox(shop, return_id):
        version = entry.effect.version
        text = f"{fx.describe(entry.effect)}: {entry.status}"
        if entry.attempts != 1:
            text += f" after {entry.attempts} attempts"
        if entry.last_error:
            text += f" ({entry.last_error})"
        entries.append(
            (version, 1_000_000 + entry.sequence, TimelineEntry(version, "effect", text))
        )
    return [entry for _, _, entry in sorted(entries, key=lambda item: item[:2])]


def render(store: ReturnStore, shop: str, return_id: str) -> str:
    """The timeline as text: a header, then ``*`` for state changes, ``->`` for effects."""
    record = store.get(shop, return_id)
    lines = [
        f"return {record.id} (order {record.order_id}): {record.status} / "
        f"{record.exchange_status}, Shopify {shopify_status(record.status).value}, "
        f"version {record.version}"
    ]
    for entry in timeline(store, shop, return_id):
        marker = "  *" if entry.kind == "event" else "     ->"
        lines.append(f"{marker} v{entry.version:<3} {entry.text}")
    return "\n".join(lines)
