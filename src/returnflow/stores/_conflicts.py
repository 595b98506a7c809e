"""What a store says when a commit clashes with another writer's over something other than a
return's version, so that every store words its :class:`~returnflow.errors.ConcurrencyConflict`
alike."""

from __future__ import annotations

from returnflow.errors import InvalidPayload
from returnflow.ports.store import InboundKey


def seen(key: InboundKey) -> str:
    return f"inbound event {key.source}:{key.event_id} of shop {key.shop} was already processed"


def queued(key: str) -> str:
    return f"effect {key} is already in the outbox"


def not_pending(key: str) -> str:
    return f"effect {key} is not pending (done, given up or unknown)"


def not_failed(key: str) -> str:
    return f"effect {key} was not given up (pending, done or unknown): nothing to reopen"


def moved(name: str, expected: str | None) -> str:
    was = "unset" if expected is None else repr(expected)
    return f"cursor {name!r} is no longer {was}: another writer moved it"


def unknown_effect(key: str) -> InvalidPayload:
    """``record_attempt`` of a key no effect in the outbox has."""
    return InvalidPayload("key", key, "no effect in the outbox has this key")
