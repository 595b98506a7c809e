"""The unit of work a decision works on: one return's record, the events fired on it, the
history written and the effects planned, all to be committed together.

A :class:`Change` is plain data plus the chart: it never reads a store, calls a port or a
clock. The shell (:mod:`returnflow.service`, :mod:`returnflow.dispatch`) builds it from what
it loaded (the record, and the return's outbox when a decision needs to know what was
already planned), hands it to a decision, then commits :meth:`Change.finished` with
:attr:`Change.effects`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import attrs
from statemachine.exceptions import TransitionNotAllowed

from returnflow.domain._evolve import evolver
from returnflow.domain._fields import check_actor
from returnflow.domain.inbound import InboundEvent
from returnflow.domain.model import HistoryEntry, ReturnRecord
from returnflow.errors import InvalidTransition
from returnflow.lifecycle import effects as fx
from returnflow.lifecycle.engine import fire
from returnflow.lifecycle.table import TABLE, shopify_status
from returnflow.ports.store import OutboxEntry

__all__ = ["Change"]

_E = TypeVar("_E", bound=fx.Effect)

_evolve = evolver(ReturnRecord)
_FIELDS = frozenset(field.alias or field.name for field in attrs.fields(ReturnRecord) if field.init)


class Change:
    """A unit of work on one return: events fired, effects planned, written in one commit.

    ``base`` is the stored version the change starts from (0 for a new return); the commit
    writes version ``base + 1``. ``outbox`` is the return's outbox as loaded before the
    change, for the decisions that ask what was already planned (:meth:`planned`).
    """

    def __init__(
        self,
        record: ReturnRecord,
        *,
        now: datetime,
        actor: str,
        base: int,
        outbox: Sequence[OutboxEntry] = (),
    ) -> None:
        self._record = record
        # Changes to the record not applied yet: a decision's steps (events fired, notes,
        # updates) are applied in one copy when the record is next read, not one each.
        self._pending: dict[str, Any] = {}
        self.base = base
        self.version = base + 1
        self.now = now
        self.actor = check_actor(actor)
        self.outbox = outbox
        self.effects: list[fx.Effect] = []
        self.reopened: list[str] = []
        """Keys of effects given up to deliver again (see ``Commit.reopened``)."""
        self.heirs: list[Change] = []
        """Changes to the returns this one was reset into, newest last, when the shell
        loaded them (a result that arrives after a reset is theirs too)."""
        self._history: list[HistoryEntry] = []

    @property
    def record(self) -> ReturnRecord:
        """The return as the change has it now."""
        if self._pending:
            self._record = _evolve(self._record, **self._pending)
            self._pending = {}
        return self._record

    @record.setter
    def record(self, record: ReturnRecord) -> None:
        self._record = record
        self._pending = {}

    def _now(self, name: str) -> Any:
        """A field of :attr:`record`, without applying what is pending."""
        pending = self._pending
        return pending[name] if name in pending else getattr(self._record, name)

    @property
    def _state(self) -> tuple[str, str]:
        return (self._now("status"), self._now("exchange_status"))

    def fire(self, event: str, payload: Mapping[str, Any] | None = None, **engine: Any) -> None:
        """Fire ``event`` on the chart; raise :class:`InvalidTransition` if it is not allowed."""
        state = self._state
        if not TABLE.is_valid(state) or TABLE.target(state, event) is None:
            allowed = TABLE.allowed(state) if TABLE.is_valid(state) else ()
            raise InvalidTransition(self._now("id"), state, event, allowed)
        try:
            target = fire(state, event, **engine)
        except TransitionNotAllowed:  # the table and the chart disagree: a defect
            raise InvalidTransition(self._now("id"), state, event, TABLE.allowed(state)) from None
        entry = self._entry(event, state, target, payload or {})
        self._pending.update(
            status=target[0],
            exchange_status=target[1],
            history=(*self._now("history"), entry),
        )

    def allows(self, event: str) -> bool:
        return TABLE.target(self._state, event) is not None

    def refuse(self, event: str) -> None:
        """Raise :class:`InvalidTransition`: ``event`` is not allowed now."""
        state = self._state
        raise InvalidTransition(self._now("id"), state, event, TABLE.allowed(state))

    def note(self, event: str, payload: Mapping[str, Any]) -> None:
        """A history entry that changes no state (an effect's result, an ignored fact)."""
        state = self._state
        entry = self._entry(event, state, state, payload)
        self._pending["history"] = (*self._now("history"), entry)

    def ignore(self, event: InboundEvent, why: str) -> str:
        """Record that ``event`` was of no use to the return now; return ``why``."""
        self.note("ignored", {"fact": type(event).__name__, "id": event.event_id, "why": why})
        return why

    def planned(self, effect_type: type[fx.Effect]) -> bool:
        """Whether an effect of ``effect_type`` is in the return's outbox (any status)."""
        return any(isinstance(entry.effect, effect_type) for entry in self.outbox)

    def _entry(
        self,
        event: str,
        source: tuple[str, str],
        target: tuple[str, str],
        payload: Mapping[str, Any],
    ) -> HistoryEntry:
        entry = HistoryEntry(
            at=self.now,
            event=event,
            actor=self.actor,
            source=source,
            target=target,
            version=self.version,
            payload=payload,
        )
        self._history.append(entry)
        return entry

    def checkpoint(self) -> tuple[ReturnRecord, int, int, int]:
        """Where the change is now, to go back to with :meth:`restore`."""
        return (self.record, len(self.effects), len(self._history), len(self.reopened))

    def restore(self, point: tuple[ReturnRecord, int, int, int]) -> None:
        """Undo what was decided since ``point`` (a :meth:`checkpoint`)."""
        record, effects, history, reopened = point
        self.record = record
        del self.effects[effects:], self._history[history:], self.reopened[reopened:]

    def update(self, **changes: Any) -> None:
        if not changes.keys() <= _FIELDS:  # the TypeError attrs.evolve raises, at once
            _evolve(self._record, **changes)
        self._pending.update(changes)

    def effect(self, effect_type: type[_E], **fields: Any) -> _E:
        # a return's shop, id and order never change: read from the record as loaded
        record, version = self._record, self.version
        shop, return_id = record.shop, record.id
        key = f"{shop}/{return_id}/{version}/{len(self.effects)}/{effect_type.kind}"
        effect = effect_type(
            key=key,
            shop=shop,
            return_id=return_id,
            order_id=record.order_id,
            version=version,
            **fields,
        )
        self.effects.append(effect)
        return effect

    def publish(self, what: str, **details: Any) -> None:
        record, pending = self._record, self._pending
        status = pending.get("status", record.status)
        payload = {
            "return_id": record.id,
            "shop": record.shop,
            "order_id": record.order_id,
            "status": status,
            "exchange_status": pending.get("exchange_status", record.exchange_status),
            "shopify_status": shopify_status(status).value,
            "version": self.version,
            **details,
        }
        self.effect(fx.Publish, topic=fx.TOPICS[what], payload=payload)

    def notify(self, template: str, **context: Any) -> None:
        email = self._now("customer_email")
        if email:
            context = {"return_id": self._now("id"), "order_id": self._now("order_id"), **context}
            self.effect(fx.Notify, recipient=email, template=template, context=context)

    @property
    def changed(self) -> bool:
        return bool(self._history or self.effects or self.reopened)

    @property
    def history(self) -> tuple[HistoryEntry, ...]:
        """The history entries this change adds."""
        return tuple(self._history)

    def finished(self) -> ReturnRecord:
        return _evolve(
            self._record,
            **{**self._pending, "version": self.version, "updated_at": self.now},
        )
