"""The rules timers apply: an approved return never shipped expires; a released exchange the
platform kept on hold is released again, then sent to a person (seed 000)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from returnflow.decisions import cancellation, review
from returnflow.decisions.change import Change
from returnflow.domain.model import ReturnRecord
from returnflow.domain.policy import ReturnPolicy
from returnflow.lifecycle import effects as fx
from returnflow.ports.commerce import HoldStatus
from returnflow.ports.store import OutboxEntry

__all__ = [
    "RELEASE_TRIES",
    "approved_at",
    "check_release",
    "expire",
    "expiry_due",
    "release_check_due",
]

RELEASE_TRIES = 3
"""Releases of one hold before a person is asked to look."""


def approved_at(record: ReturnRecord) -> datetime | None:
    """When the return was (last) approved."""
    for entry in reversed(record.history):
        if entry.target[0] == "approved" and entry.source[0] != "approved":
            return entry.at
    return None


def expiry_due(record: ReturnRecord, policy: ReturnPolicy, now: datetime) -> bool:
    """Whether an approved return was not shipped within ``policy.ship_within_days``."""
    approved = approved_at(record)
    return approved is not None and now - approved > timedelta(days=policy.ship_within_days)


def expire(change: Change, policy: ReturnPolicy) -> None:
    """Expire the return: its label is voided, the warehouse stops expecting it, a held
    exchange is cancelled and a paid balance given back. Needs ``change.outbox``."""
    change.fire("expire", {"ship_within_days": policy.ship_within_days})
    cancellation.wind_down(change, why="return expired")
    change.publish("cancel", reason="expired")
    change.notify("return_expired")


def release_check_due(record: ReturnRecord, outbox: Sequence[OutboxEntry]) -> bool:
    """Whether a released exchange should be checked with the platform: not confirmed yet,
    and every release sent has been answered (none still pending)."""
    if record.release_confirmed or record.refs.exchange_hold_id is None:
        return False
    releases = [entry for entry in outbox if isinstance(entry.effect, fx.ReleaseExchange)]
    return bool(releases) and all(entry.status != "pending" for entry in releases)


def check_release(change: Change, policy: ReturnPolicy, status: HoldStatus) -> None:
    """The platform says the hold is ``status``: confirm the release, release it again, or
    after :data:`RELEASE_TRIES` releases send the return to a person (flagged, or reopened
    when it was closed). Needs
    ``change.outbox`` (to count the releases sent)."""
    if status is not HoldStatus.HELD:
        change.note("exchange_release_checked", {"hold": status.value})
        change.update(release_confirmed=True)
        return
    attempt = 1 + sum(isinstance(entry.effect, fx.ReleaseExchange) for entry in change.outbox)
    if attempt > RELEASE_TRIES and (change.allows("flag") or change.allows("reopen")):
        reason = f"the platform kept the exchange on hold after {attempt - 1} releases"
        if change.allows("flag"):
            review.flag(change, reason)
        else:  # closed: the usual case when the exchange is released on completion
            review.reopen(change, reason)
        change.update(release_confirmed=True)  # a person takes it from here
        return
    change.effect(fx.ReleaseExchange, hold_tag=policy.hold_tag, attempt=attempt)
    change.note("exchange_release_retried", {"hold": "still held", "attempt": attempt})
