"""What returnflow logs: standard-library :mod:`logging`, under the ``returnflow`` logger.

Each record is one of the events of :data:`EVENTS`, logged by a child logger of the room that
did it (``returnflow.service``, ``returnflow.dispatch``, ``returnflow.timers``,
``returnflow.importing``). The message is a sentence for a person; the same facts ride on the
record as attributes (``extra=``), under the names of :data:`FIELDS`, for a JSON formatter
or structlog to pick up: ``event`` (the stable event name, such as ``effect.delivered``),
``shop``, ``return_id``, and each event's own fields (see :class:`LogEvent` and the
"Logging" page of the docs).

returnflow configures no handler and sets no level: the host decides where records go.
Nothing is built for a record whose logger would drop it (each helper asks
:meth:`logging.Logger.isEnabledFor` first), so an unconfigured or quieted logger costs one
call per event.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from returnflow.domain.inbound import InboundEvent
from returnflow.domain.model import ReturnRecord
from returnflow.ports.store import Attempt, OutboxEntry

if TYPE_CHECKING:
    from returnflow.timers import TickReport

__all__ = ["EVENTS", "FIELDS", "LOGGER", "LogEvent"]

LOGGER = "returnflow"
"""The parent of every returnflow logger."""


@attrs.frozen
class LogEvent:
    """One kind of log record: its stable ``name``, the ``logger`` that emits it, its
    ``level`` (a :mod:`logging` level number), the ``fields`` it carries besides ``event``,
    and what it ``means``."""

    name: str
    logger: str
    level: int
    fields: tuple[str, ...]
    means: str
    log: logging.Logger = attrs.field(init=False, eq=False, repr=False)
    """The logger itself (looked up once: :func:`logging.getLogger` takes a lock)."""

    @log.default
    def _logger(self) -> logging.Logger:
        return logging.getLogger(self.logger)


class ImportSummary(Protocol):
    """What :func:`imported` reads of an :class:`~returnflow.importing.ImportReport`."""

    @property
    def source(self) -> str: ...
    @property
    def shop(self) -> str: ...
    @property
    def since(self) -> datetime: ...
    @property
    def until(self) -> datetime: ...
    @property
    def complete_until(self) -> datetime: ...
    @property
    def imported(self) -> tuple[str, ...]: ...
    @property
    def unchanged(self) -> tuple[str, ...]: ...
    @property
    def cancelled(self) -> tuple[str, ...]: ...
    @property
    def skipped(self) -> tuple[str, ...]: ...
    @property
    def failed(self) -> Sequence[Any]: ...
    @property
    def source_error(self) -> Exception | None: ...


_RETURN = ("shop", "return_id")
_EFFECT = (*_RETURN, "effect_kind", "key", "attempt")
_FACT = (*_RETURN, "source", "fact", "fact_id", "outcome", "reason", "state")
_SERVICE, _DISPATCH = f"{LOGGER}.service", f"{LOGGER}.dispatch"
_TIMERS, _IMPORTING = f"{LOGGER}.timers", f"{LOGGER}.importing"
INFO, WARNING, ERROR, DEBUG = logging.INFO, logging.WARNING, logging.ERROR, logging.DEBUG

EVENTS: Mapping[str, LogEvent] = {
    event.name: event
    for event in (
        LogEvent(
            "return.opened",
            _SERVICE,
            INFO,
            (*_RETURN, "actor", "order_id", "state", "outcome"),
            "A return was requested or imported and stored; ``outcome`` is its status "
            "(``approved``, ``needs_review``, ``declined``...).",
        ),
        LogEvent(
            "return.changed",
            _SERVICE,
            INFO,
            (*_RETURN, "actor", "chart_events", "state", "version"),
            "A command (approve, cancel, close, reset, a timer's) changed a return: the "
            "chart events it fired, the state it left the return in, the new version.",
        ),
        LogEvent(
            "fact.applied",
            _SERVICE,
            INFO,
            _FACT,
            "An inbound fact (carrier scan, warehouse receipt or Finished) was applied.",
        ),
        LogEvent(
            "fact.parked",
            _SERVICE,
            INFO,
            _FACT,
            "A fact came before the return could use it; it is kept and applied when it "
            "can be (``reason``).",
        ),
        LogEvent(
            "fact.ignored",
            _SERVICE,
            INFO,
            _FACT,
            "A fact the return will never use was recorded and left (``reason``).",
        ),
        LogEvent(
            "fact.duplicate",
            _SERVICE,
            INFO,
            _FACT,
            "A fact already processed (same source and id) came again; nothing was done.",
        ),
        LogEvent(
            "effect.delivered",
            _DISPATCH,
            INFO,
            _EFFECT,
            "A port accepted an effect; ``attempt`` counts from 1.",
        ),
        LogEvent(
            "effect.retried",
            _DISPATCH,
            INFO,
            _EFFECT,
            "An effect that failed before is being delivered again (``attempt`` > 1).",
        ),
        LogEvent(
            "effect.failed",
            _DISPATCH,
            WARNING,
            (*_EFFECT, "error", "retry_at"),
            "A delivery failed and will be tried again at ``retry_at`` (the policy's back-off).",
        ),
        LogEvent(
            "effect.given_up",
            _DISPATCH,
            ERROR,
            (*_EFFECT, "error", "escalated"),
            "A delivery failed for good or ``policy.max_attempts`` times; ``escalated``: the "
            "return went to ``needs_review`` in the same write.",
        ),
        LogEvent(
            "dispatch.done",
            _DISPATCH,
            INFO,
            ("delivered", "failed", "given_up"),
            "A worker's round (``dispatch_pending``) that delivered, failed or gave up "
            "anything: the counts.",
        ),
        LogEvent(
            "timer.expired",
            _TIMERS,
            INFO,
            _RETURN,
            "A return approved and never shipped expired (``policy.ship_within_days``).",
        ),
        LogEvent(
            "timer.captured",
            _TIMERS,
            INFO,
            _RETURN,
            "An instant exchange's units did not come back in time: its authorization "
            "was captured.",
        ),
        LogEvent(
            "timer.stuck",
            _TIMERS,
            WARNING,
            _RETURN,
            "A return made no progress for ``policy.stuck_after`` and went to a person.",
        ),
        LogEvent(
            "timer.release_checked",
            _TIMERS,
            INFO,
            _RETURN,
            "A released exchange hold was checked at the platform (and released again if "
            "still held).",
        ),
        LogEvent(
            "timer.failed",
            _TIMERS,
            WARNING,
            ("error",),
            "A timer or a poller could not run now (a port or the source failed); it runs "
            "again on the next tick.",
        ),
        LogEvent(
            "tick.done",
            _TIMERS,
            INFO,
            ("expired", "captured", "stuck", "release_checked", "errors", "imports"),
            "A tick that did anything: the counts.",
        ),
        LogEvent(
            "import.done",
            _IMPORTING,
            INFO,
            (
                "shop",
                "source",
                "since",
                "until",
                "imported",
                "unchanged",
                "cancelled",
                "skipped",
                "failed",
            ),
            "An import of a range or a poll finished: the counts.",
        ),
        LogEvent(
            "import.failed",
            _IMPORTING,
            WARNING,
            ("shop", "source", "external_id", "error", "retryable"),
            "One external return was not imported; a ``retryable`` one is read again by "
            "the next poll.",
        ),
        LogEvent(
            "import.source_failed",
            _IMPORTING,
            WARNING,
            ("shop", "source", "error", "complete_until"),
            "The source failed before the end of the range; returns updated from "
            "``complete_until`` on were not read.",
        ),
    )
}
"""Every event returnflow logs, by name."""

FIELDS: tuple[str, ...] = tuple(
    dict.fromkeys(["event", *(field for event in EVENTS.values() for field in event.fields)])
)
"""The record attributes returnflow sets, across all events (what a formatter copies)."""


def emit(name: str, message: str, args: Sequence[object], **fields: object) -> None:
    """Log event ``name`` of :data:`EVENTS`: ``message % args`` with ``fields`` as record
    attributes. Callers ask :func:`enabled` first, so nothing is built for a dropped record."""
    event = EVENTS[name]
    extra = {"event": name, **fields}
    event.log.log(event.level, message, *args, extra=extra, stacklevel=3)  # the caller's line


def enabled(name: str) -> bool:
    """Whether event ``name``'s logger would handle a record at its level."""
    event = EVENTS[name]
    return event.log.isEnabledFor(event.level)


# -- the service -------------------------------------------------------------------------------


def opened(record: ReturnRecord, actor: str | None) -> None:
    if enabled("return.opened"):
        emit(
            "return.opened",
            "return %s/%s opened by %s: %s",
            (record.shop, record.id, actor, record.status),
            shop=record.shop,
            return_id=record.id,
            actor=actor,
            order_id=record.order_id,
            state=list(record.state),
            outcome=record.status,
        )


def changed(record: ReturnRecord, actor: str, written: Sequence[str]) -> None:
    """``record`` as a command committed it (nothing is logged when ``written`` is empty)."""
    if written and enabled("return.changed"):
        fired = [e.event for e in record.history if e.version == record.version]
        emit(
            "return.changed",
            "return %s/%s %s by %s: now %s",
            (record.shop, record.id, ", ".join(fired), actor, "/".join(record.state)),
            shop=record.shop,
            return_id=record.id,
            actor=actor,
            chart_events=fired,
            state=list(record.state),
            version=record.version,
        )


def fact(event: InboundEvent, status: str, reason: str, record: ReturnRecord) -> None:
    """An inbound fact and what became of it (``status``: applied, parked, ignored,
    duplicate)."""
    name = f"fact.{status}"
    if enabled(name):
        kind = type(event).__name__
        why = f" ({reason})" if reason else ""
        emit(
            name,
            "%s %s from %s for %s/%s: %s%s",
            (kind, event.event_id, event.source, event.shop, record.id, status, why),
            shop=event.shop,
            return_id=record.id,
            source=event.source,
            fact=kind,
            fact_id=event.event_id,
            outcome=status,
            reason=reason,
            state=list(record.state),
        )


# -- the dispatcher ----------------------------------------------------------------------------


def _effect(entry: OutboxEntry) -> dict[str, object]:
    effect = entry.effect
    return {
        "shop": effect.shop,
        "return_id": effect.return_id,
        "effect_kind": effect.kind,
        "key": effect.key,
        "attempt": entry.attempts + 1,
    }


def delivering(entry: OutboxEntry) -> None:
    """Before a delivery: logs ``effect.retried`` when the effect failed before."""
    if entry.attempts and enabled("effect.retried"):
        effect = entry.effect
        args = (effect.kind, effect.shop, effect.return_id, entry.attempts + 1)
        emit("effect.retried", "%s for %s/%s: attempt %d", args, **_effect(entry))


def delivered(entry: OutboxEntry) -> None:
    if enabled("effect.delivered"):
        effect = entry.effect
        args = (effect.kind, effect.shop, effect.return_id, entry.attempts + 1)
        emit("effect.delivered", "%s delivered for %s/%s (attempt %d)", args, **_effect(entry))


def failed(entry: OutboxEntry, attempt: Attempt, *, escalated: bool) -> None:
    """A failed delivery: retried at ``attempt.retry_at``, or given up (``escalated``: the
    return went to a person)."""
    name = "effect.given_up" if attempt.give_up else "effect.failed"
    if enabled(name):
        effect, error = entry.effect, attempt.error
        args = (effect.kind, effect.shop, effect.return_id, entry.attempts + 1, error)
        if attempt.give_up:
            message = "%s for %s/%s given up after attempt %d: %s"
            emit(name, message, args, **_effect(entry), error=error, escalated=escalated)
        else:
            retry_at = attempt.retry_at.isoformat() if attempt.retry_at else None
            message = "%s for %s/%s failed (attempt %d): %s; retried at %s"
            emit(name, message, (*args, retry_at), **_effect(entry), error=error, retry_at=retry_at)


def dispatched(delivered: int, failed: int, given_up: int) -> None:
    if (delivered or failed or given_up) and enabled("dispatch.done"):
        counts = {"delivered": delivered, "failed": failed, "given_up": given_up}
        message = "dispatch: %d delivered, %d failed, %d given up"
        emit("dispatch.done", message, (delivered, failed, given_up), **counts)


# -- the timers and the importer ---------------------------------------------------------------

_DUE = {"expire": "timer.expired", "capture": "timer.captured", "stuck": "timer.stuck"}


def timer(what: str, record: ReturnRecord) -> None:
    """A timer ran for ``record``: ``what`` is expire, capture, stuck or release_checked."""
    name = _DUE.get(what, f"timer.{what}")
    if enabled(name):
        emit(
            name, "%s: %s/%s", (name, record.shop, record.id), shop=record.shop, return_id=record.id
        )


def timer_failed(error: str) -> None:
    if enabled("timer.failed"):
        emit("timer.failed", "timer failed: %s", (error,), error=error)


def ticked(report: TickReport) -> None:
    counts = {
        "expired": len(report.expired),
        "captured": len(report.captured),
        "stuck": len(report.stuck),
        "release_checked": len(report.release_checked),
        "errors": len(report.errors),
        "imports": len(report.imports),
    }
    if any(counts.values()) and enabled("tick.done"):
        text = ", ".join(f"{count} {name}" for name, count in counts.items() if count)
        emit("tick.done", "tick: %s", (text,), **counts)


def imported(report: ImportSummary) -> None:
    """Log what an import did: each failure, a failed source, the counts."""
    where = {"shop": report.shop, "source": report.source}
    if enabled("import.failed"):
        for failure in report.failed:
            emit(
                "import.failed",
                "import %s/%s: %s",
                (report.source, report.shop, failure),
                **where,
                external_id=failure.external_id,
                error=f"{type(failure.error).__name__}: {failure.error}",
                retryable=failure.retryable,
            )
    if report.source_error is not None and enabled("import.source_failed"):
        until = report.complete_until.isoformat()
        emit(
            "import.source_failed",
            "import %s/%s: source failed (%s); not read from %s on",
            (report.source, report.shop, report.source_error, until),
            **where,
            error=str(report.source_error),
            complete_until=until,
        )
    if enabled("import.done"):
        counts = {
            "imported": len(report.imported),
            "unchanged": len(report.unchanged),
            "cancelled": len(report.cancelled),
            "skipped": len(report.skipped),
            "failed": len(report.failed),
        }
        text = ", ".join(f"{count} {name}" for name, count in counts.items())
        emit(
            "import.done",
            "import %s/%s [%s, %s): %s",
            (report.source, report.shop, report.since.isoformat(), report.until.isoformat(), text),
            **where,
            since=report.since.isoformat(),
            until=report.until.isoformat(),
            **counts,
        )
