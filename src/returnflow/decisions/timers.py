"""The rules timers apply: an approved return never shipped expires; a released exchange the
platform kept on hold is released again, then sent to a person (seed 000)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

from returnflow.decisions import cancellation, exchange, review
from returnflow.decisions.change import Change
from returnflow.domain._time import instant
from returnflow.domain.model import ReturnRecord
from returnflow.domain.policy import ReturnPolicy
from returnflow.errors import InvalidTransition
from returnflow.lifecycle import effects as fx
from returnflow.lifecycle.table import TABLE
from returnflow.ports.commerce import HoldStatus
from returnflow.ports.store import OutboxEntry

__all__ = [
    "RELEASE_TRIES",
    "approved_at",
    "check_release",
    "due",
    "expire",
    "expiry_due",
    "on_due",
    "release_check_due",
    "released_hold",
    "schedule",
]

RELEASE_TRIES = 3
"""Releases of one hold before a person is asked to look."""


def released_hold(record: ReturnRecord) -> str:
    """The exchange hold of a return whose exchange was released, to check again with the
    platform; :class:`~returnflow.errors.InvalidTransition` for any other return."""
    hold_id = record.refs.exchange_hold_id
    if record.exchange_status != "released" or hold_id is None:
        raise InvalidTransition(
            record.id, record.state, "retry_exchange_release", TABLE.allowed(record.state)
        )
    return hold_id


def approved_at(record: ReturnRecord) -> datetime | None:
    """When the return was (last) approved."""
    for entry in reversed(record.history):
        if entry.target[0] == "approved" and entry.source[0] != "approved":
            return entry.at
    return None


def expiry_due(record: ReturnRecord, policy: ReturnPolicy, now: datetime) -> bool:
    """Whether an approved return was not shipped within ``policy.ship_within_days`` (the
    ``expire`` item of :func:`due`)."""
    return any(what == "expire" and now > at for at, what in due(record, policy))


def expire(change: Change, policy: ReturnPolicy) -> None:
    """Expire the return: its label is voided, the warehouse stops expecting it, a held
    exchange is cancelled and a paid balance given back. Needs ``change.outbox``."""
    change.fire("expire", {"ship_within_days": policy.ship_within_days})
    cancellation.wind_down(change, policy, why="return expired")
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


def _last_progress(record: ReturnRecord) -> datetime:
    """When the return last changed state (its creation if it never did)."""
    for entry in reversed(record.history):
        if entry.source[0] != entry.target[0]:
            return entry.at
    return record.created_at


def _released_at(record: ReturnRecord) -> datetime | None:
    for entry in reversed(record.history):
        if entry.event == "release_exchange":
            return entry.at
    return None


def due(record: ReturnRecord, policy: ReturnPolicy) -> list[tuple[datetime, str]]:
    """What a timer has to do for the return and from when, earliest first: ``expire`` (an
    approved return never shipped), ``capture`` (an instant exchange whose units did not come
    back in time), ``stuck`` (no progress in a state ``policy.stuck_after`` names),
    ``release_check`` (a released exchange the platform has not confirmed yet: asked about
    from the release on, see :func:`release_check_due`; done by the tick, not by
    :func:`on_due`)."""
    items: list[tuple[datetime, str]] = []
    if record.status in ("approved", "label_sent"):
        approved = approved_at(record)
        if approved is not None:
            items.append((approved + timedelta(days=policy.ship_within_days), "expire"))
    if (
        record.exchange_status == "released"
        and record.payment_authorized is not None
        and not record.authorization_settled
        and record.status not in ("cancelled", "closed", "reset")
    ):
        released = _released_at(record)
        if released is not None:
            days = timedelta(days=policy.instant_exchange_return_days)
            items.append((released + days, "capture"))
    for state, stuck in policy.stuck_after:
        if state == record.status:
            items.append((_last_progress(record) + stuck, "stuck"))
    if (
        record.exchange_status == "released"
        and not record.release_confirmed
        and record.refs.exchange_hold_id is not None
    ):
        # due at once: a tick at the very moment of the release checks it (times compare
        # strictly)
        released = _released_at(record) or record.updated_at
        items.append((released - timedelta(microseconds=1), "release_check"))
    return sorted((moment.astimezone(timezone.utc), what) for moment, what in items)


def schedule(change: Change, policy: ReturnPolicy) -> None:
    """Set ``due_at``: when a timer next has something to do for the return."""
    items = due(change.record, policy)
    moment = items[0][0] if items else None
    if moment != change.record.due_at:
        change.update(due_at=moment)


def on_due(change: Change, policy: ReturnPolicy, at: datetime | None = None) -> str:
    """Do what is due at ``change.now`` (strictly after its time): expire, capture, or send
    the return to a person; return what was done (``""`` when nothing was due any more: the
    return is only rescheduled, with a note). Needs ``change.outbox`` (an expiry voids a
    label still in it). ``at``: the time the tick runs for (``change.now`` by default); an
    :class:`~returnflow.errors.InvalidTime` naming ``now`` when naive or out of range."""
    now = change.now if at is None else instant("now", at)
    for moment, what in due(change.record, policy):
        if now <= moment:
            break
        if what == "release_check":
            continue  # the tick asks the platform (ReturnsService.retry_exchange_release)
        if what == "expire" and change.allows("expire"):
            expire(change, policy)
            return what
        if what == "capture":
            days = policy.instant_exchange_return_days
            exchange.settle_authorization(
                change,
                capture=True,
                why=f"the returned units did not come back in {days} days",
                amount=exchange.capture_due(change.record, policy),
            )
            return what
        if what == "stuck" and change.allows("flag"):
            since = _last_progress(change.record).date().isoformat()
            review.flag(change, f"no progress in {change.record.status} since {since}")
            return what
    change.note("timer_checked", {"due_at": str(change.record.due_at)})
    return ""
