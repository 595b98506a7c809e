"""Domain events: what happened to a return, published under stable topic names."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import attrs

__all__ = ["DomainEvent", "EventPublisher"]


@attrs.frozen
class DomainEvent:
    """A published fact about a return. ``topic`` is one of :data:`returnflow.TOPICS`."""

    topic: str
    shop: str
    return_id: str
    payload: Mapping[str, Any] = attrs.field(eq=False, hash=False)


class EventPublisher(Protocol):
    """Where domain events go (a message bus, webhooks to a helpdesk, a log)."""

    def publish(self, event: DomainEvent, *, idempotency_key: str) -> None:
        """Hand ``event`` on; the same ``idempotency_key`` publishes it once. Raise
        :class:`~returnflow.errors.PortError` on failure (``retryable`` when it may pass)."""
