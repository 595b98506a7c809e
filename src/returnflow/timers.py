"""What runs on a tick: expiry of returns never shipped, reconciliation of released exchange
holds (seed 000), and the registered pollers (importers).

:class:`Timers` sits on top of the service: it finds what is due in the store, applies the
timer rules of :mod:`returnflow.decisions.timers` through the service's commands, and runs
each :class:`Poller`. ``ReturnsService.tick`` and ``ReturnsService.register_poller`` are the
usual way in; ``returnflow worker`` ticks.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

import attrs

from returnflow import logs
from returnflow.decisions import timers as rules
from returnflow.domain._fields import check_limit
from returnflow.domain._time import instant
from returnflow.errors import PortError, ReturnflowError

if TYPE_CHECKING:
    from returnflow.service import ReturnsService

__all__ = ["PollReport", "Poller", "TickReport", "Timers"]


class PollReport(Protocol):
    """What a poll reports (:class:`~returnflow.importing.ImportReport` is one): the
    problems to show, one line each."""

    def problems(self) -> Sequence[str]: ...


class Poller(Protocol):
    """Something :meth:`ReturnsService.tick` runs: an importer polling its source
    (:class:`~returnflow.importing.ReturnImporter`). ``poll`` decides itself whether it is
    due and returns ``None`` when it is not."""

    def poll(self, now: datetime) -> PollReport | None: ...


@attrs.frozen
class TickReport:
    """What :meth:`ReturnsService.tick` did: returns expired, released holds checked."""

    expired: tuple[str, ...] = ()
    release_checked: tuple[str, ...] = ()
    stuck: tuple[str, ...] = ()
    """Returns that made no progress for ``policy.stuck_after`` and went to a person."""
    captured: tuple[str, ...] = ()
    """Instant exchanges whose units did not come back in time: authorization captured."""
    errors: tuple[str, ...] = ()
    """Timers that could not run now (a port failed), and returns a poller could not import;
    they run again on the next tick."""
    imports: tuple[PollReport, ...] = ()
    """What each registered poller that was due imported (see :meth:`ReturnsService.tick`)."""


class Timers:
    """The timers of one service, and the pollers registered with it."""

    def __init__(self, service: ReturnsService) -> None:
        self.service = service
        self.pollers: list[Poller] = []

    def tick(self, now: datetime | None = None, *, limit: int = 1000) -> TickReport:
        """Run the timers due at ``now`` (see :meth:`ReturnsService.tick`)."""
        check_limit(limit)
        service = self.service
        store = service.store
        moment = service.clock() if now is None else instant("now", now)
        expired: list[str] = []
        checked: list[str] = []
        errors: list[str] = []
        stuck: list[str] = []
        captured: list[str] = []
        # Everything comes from the index on due_at, at most ``limit`` returns a tick: no
        # scan of the open returns, whatever their number.
        due = store.list_due(moment, limit=limit)
        errors.extend(_unreadable(due))
        for record in due:
            try:
                policy = service.dispatcher.policy_of(record)
            except ReturnflowError as error:  # a policy version the source no longer has
                errors.append(f"{record.shop}/{record.id}: {error}")
                logs.timer_failed(errors[-1])
                continue
            what = [name for at, name in rules.due(record, policy) if moment > at]
            if what and set(what) <= {"release_check"}:
                if not rules.release_check_due(record, store.outbox(record.shop, record.id)):
                    continue  # a release still on its way: checked when it was answered
                try:
                    service.retry_exchange_release(record.shop, record.id, actor="timer")
                except PortError as error:
                    errors.append(f"{record.shop}/{record.id}: {error}")
                    logs.timer_failed(errors[-1])
                    continue
                logs.timer("release_checked", record)
                checked.append(record.id)
                continue
            service.run_due(record.shop, record.id, now=moment)
            timer = [name for name in what if name != "release_check"][:1]
            if timer:
                logs.timer(timer[0], record)
            if timer == ["expire"]:
                expired.append(record.id)
            elif timer == ["capture"]:
                captured.append(record.id)
            elif timer == ["stuck"]:
                stuck.append(record.id)
        imports: list[PollReport] = []
        for poller in self.pollers:
            try:
                report = poller.poll(moment)
            except ReturnflowError as error:  # a bad cursor, a lost store: not the next poller
                errors.append(f"poll: {type(error).__name__}: {error}")
                logs.timer_failed(errors[-1])
                continue
            if report is not None:
                imports.append(report)
                errors.extend(report.problems())
        done = TickReport(
            expired=tuple(expired),
            stuck=tuple(stuck),
            captured=tuple(captured),
            release_checked=tuple(checked),
            errors=tuple(errors),
            imports=tuple(imports),
        )
        logs.ticked(done)
        return done


def _unreadable(listed: object) -> list[str]:
    """A tick's error lines for the returns a listing skipped as unreadable."""
    return [
        f"{error.shop}/{error.return_id}: {error}" for error in getattr(listed, "unreadable", ())
    ]
