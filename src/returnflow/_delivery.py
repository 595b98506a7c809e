"""The bookkeeping of :class:`~returnflow.dispatch.Dispatcher`'s runs: a delivery made and
not yet written, the tally against a budget, claimed entries split into one run per return,
and which effects wait for the deliveries before them to be written."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import attrs

from returnflow.decisions import results
from returnflow.decisions.change import Change
from returnflow.errors import PortError
from returnflow.lifecycle import effects as fx
from returnflow.ports.store import Attempt, OutboxEntry

__all__ = [
    "BUDGET",
    "CRITICAL_PORTS",
    "RETRY_AFTER_CAP",
    "RUN",
    "Delivered",
    "Tally",
    "WriteFirst",
    "heavy",
    "held_run",
    "runs",
    "wait_before_retry",
]

CRITICAL_PORTS = frozenset({"commerce", "warehouse", "carrier", "payments", "platform_returns"})
"""Ports whose effects the return depends on: one given up for good needs a person (a lost
message or event does not)."""

RUN = 100
"""Most effects of one return handed out by one claim."""

BUDGET = 1000
"""Most deliveries one hand-over makes (a return planning effects without end stops)."""


RETRY_AFTER_CAP = timedelta(days=1)
"""Longest wait a port's ``retry_after`` imposes before a retry: a later one (or one that is
not a finite number of seconds) waits this long, then the effect is tried again."""


def wait_before_retry(backoff: timedelta, error: Exception) -> timedelta:
    """The wait before retrying a delivery that raised ``error``: the policy's ``backoff``,
    or longer when the port said when a retry can succeed (a retryable
    :class:`~returnflow.errors.PortError` with ``retry_after`` in seconds: HTTP 429's
    ``Retry-After``, Shopify's throttle status), at most :data:`RETRY_AFTER_CAP`. A
    ``retry_after`` that is negative, zero, not a number or not given changes nothing."""
    after = getattr(error, "retry_after", None) if isinstance(error, PortError) else None
    if (
        after is None
        or isinstance(after, bool)
        or not isinstance(after, (int, float))
        or math.isnan(after)
        or after <= 0
    ):
        return backoff
    cap = RETRY_AFTER_CAP.total_seconds()
    asked = RETRY_AFTER_CAP if after >= cap else timedelta(seconds=after)
    return max(backoff, asked)


class WriteFirst(Exception):
    """Raised by a handler before it calls its port: write ``decide``'s change on the return
    first, then call the handler again with the return as written (the dispatcher does it
    within the same attempt). A handler that decides what it sends from figures a retry
    could no longer get (the platform's money before a processing acted) so sends a retry
    the same call: it reads what it decided from the return."""

    def __init__(self, decide: Callable[[Change], None]) -> None:
        super().__init__("a change to write before the port is called")
        self.decide = decide


@attrs.frozen
class Delivered:
    """One delivery: its attempt, its effect, its new status, and what its answer (or its
    giving up) changes on the return (``None``: nothing)."""

    attempt: Attempt
    effect: fx.Effect
    status: str
    decide: Callable[[Change], None] | None

    @property
    def heavy(self) -> bool:
        return self.decide is not None or heavy(self.effect)


class Tally:
    """Deliveries made so far against a budget."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.statuses: dict[str, int] = {"done": 0, "pending": 0, "failed": 0}

    @property
    def left(self) -> int:
        return self.budget - sum(self.statuses.values())

    def count(self, status: str) -> None:
        self.statuses[status] += 1

    def report(self) -> tuple[int, int, int]:
        """Delivered, failed (to be retried) and given up."""
        return self.statuses["done"], self.statuses["pending"], self.statuses["failed"]


def runs(claimed: Sequence[OutboxEntry]) -> list[list[OutboxEntry]]:
    """Claimed entries split into runs, one per return, each its head first."""
    runs: dict[tuple[str, str], list[OutboxEntry]] = {}
    for entry in claimed:
        runs.setdefault((entry.effect.shop, entry.effect.return_id), []).append(entry)
    return list(runs.values())


def heavy(effect: fx.Effect) -> bool:
    """Whether delivering ``effect`` waits for every such delivery before it to be written:
    a port the return depends on, or an answer that changes the return."""
    return effect.port in CRITICAL_PORTS or type(effect) in results.NEEDS_WRITE_BACK


def held_run(
    outbox: Sequence[OutboxEntry], worker: str, until: datetime | None, now: datetime
) -> list[OutboxEntry] | None:
    """The run of a return whose head ``worker`` holds under the lease ending ``until``
    (its outbox in order): the head, then the pending effects behind it while due and under
    no live lease. ``[]``: nothing is pending; ``None``: the head is not held so."""
    pending = [entry for entry in outbox if entry.status == "pending"]
    if not pending:
        return []
    head = pending[0]
    if head.claimed_by != worker or until is None or head.claimed_until != until:
        return None
    run = [head]
    for entry in pending[1:RUN]:
        if (entry.next_attempt_at or now) > now or (entry.claimed_until or now) > now:
            break
        run.append(entry)
    return run
