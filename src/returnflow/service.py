"""The application service: commands and inbound events in, one atomic write each, effects out.

Each command or inbound event:

1. loads the return (scoped to the shop) and checks the request against the derived table;
2. fires the statechart event(s) on a copy, with their payloads, and plans the effects;
3. commits the new version, the history, the effects and the inbound id in one write;
4. dispatches the effects to the ports (now, or later through :meth:`dispatch_pending`).

Nothing is written when a step fails, and no port is called before the write.
"""

from __future__ import annotations

import builtins
import os
import random
import socket
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import attrs
from statemachine.exceptions import TransitionNotAllowed

from returnflow.domain.inbound import (
    CarrierStatus,
    CarrierUpdate,
    Disposition,
    InboundEvent,
    ReceivedLine,
    WarehouseFinished,
    WarehouseReceipt,
)
from returnflow.domain.model import (
    DeclineReason,
    Exchange,
    ExchangeLine,
    ExternalRefs,
    HistoryEntry,
    Keep,
    OrderSnapshot,
    OutcomeKind,
    QcResult,
    ReturnLine,
    ReturnRecord,
    ReturnRequest,
)
from returnflow.domain.money import Money
from returnflow.domain.policy import (
    Completion,
    Decision,
    RefundTrigger,
    ReleaseTrigger,
    ReturnPolicy,
)
from returnflow.domain.policy import validate_request as _validate_request
from returnflow.domain.settlement import Settlement, lines_by_order_line, settle, unit_amounts
from returnflow.errors import (
    ConcurrencyConflict,
    InvalidPayload,
    InvalidTransition,
    PortError,
    ReturnflowError,
    ReturnNotFound,
    UnknownOrder,
)
from returnflow.lifecycle import effects as fx
from returnflow.lifecycle.engine import fire
from returnflow.lifecycle.table import TABLE, shopify_status
from returnflow.ports.carrier import Carrier
from returnflow.ports.commerce import CommercePlatform, ExchangeItem, HoldStatus, LineQuantity
from returnflow.ports.events import DomainEvent, EventPublisher
from returnflow.ports.notifier import Notifier
from returnflow.ports.payments import Payments
from returnflow.ports.store import Attempt, Commit, InboundKey, OutboxEntry, ReturnStore
from returnflow.ports.warehouse import Warehouse

if TYPE_CHECKING:
    from returnflow.importing import ImportReport

__all__ = [
    "DispatchReport",
    "HandleResult",
    "Poller",
    "ReturnsService",
    "TickReport",
    "TimelineEntry",
]

_T = TypeVar("_T")
_E = TypeVar("_E", bound=fx.Effect)

# Effects whose permanent failure needs a person; a lost message or event does not.
_CRITICAL_PORTS = frozenset({"commerce", "warehouse", "carrier", "payments"})
_CONFLICT_RETRIES = 16
_RELEASE_TRIES = 3  # releases of one hold before a person is asked to look


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _new_id() -> str:
    return f"ret_{uuid.uuid4().hex[:16]}"


@attrs.frozen
class HandleResult:
    """What became of an inbound event: ``applied``, ``duplicate`` or ``ignored``."""

    status: str
    record: ReturnRecord
    reason: str = ""


@attrs.frozen
class DispatchReport:
    delivered: int = 0
    failed: int = 0
    given_up: int = 0


@attrs.frozen
class TickReport:
    """What :meth:`ReturnsService.tick` did: returns expired, released holds checked."""

    expired: tuple[str, ...] = ()
    release_checked: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    """Timers that could not run now (a port failed), and returns a poller could not import;
    they run again on the next tick."""
    imports: tuple[ImportReport, ...] = ()
    """What each registered poller that was due imported (see :meth:`ReturnsService.tick`)."""


class Poller(Protocol):
    """Something :meth:`ReturnsService.tick` runs: an importer polling its source
    (:class:`~returnflow.importing.ReturnImporter`). ``poll`` decides itself whether it is
    due and returns ``None`` when it is not."""

    def poll(self, now: datetime) -> ImportReport | None: ...


@attrs.frozen
class TimelineEntry:
    """A line of a return's timeline: a state change or an effect."""

    version: int
    kind: str  # "event" | "effect"
    text: str
    at: datetime | None = None


class _Change:
    """A unit of work on one return: events fired, effects planned, written in one commit."""

    def __init__(self, record: ReturnRecord, *, now: datetime, actor: str, base: int) -> None:
        self.record = record
        self.base = base
        self.version = base + 1
        self.now = now
        self.actor = actor
        self.effects: list[fx.Effect] = []
        self._history: list[HistoryEntry] = []

    def fire(self, event: str, payload: Mapping[str, Any] | None = None, **engine: Any) -> None:
        """Fire ``event`` on the chart; raise :class:`InvalidTransition` if it is not allowed."""
        record = self.record
        state = record.state
        if not TABLE.is_valid(state) or TABLE.target(state, event) is None:
            allowed = TABLE.allowed(state) if TABLE.is_valid(state) else ()
            raise InvalidTransition(record.id, state, event, allowed)
        try:
            target = fire(state, event, **engine)
        except TransitionNotAllowed:  # the table and the chart disagree: a defect
            raise InvalidTransition(record.id, state, event, TABLE.allowed(state)) from None
        self._append(event, state, target, payload or {})
        self.record = attrs.evolve(record, status=target[0], exchange_status=target[1])

    def allows(self, event: str) -> bool:
        return TABLE.target(self.record.state, event) is not None

    def note(self, event: str, payload: Mapping[str, Any]) -> None:
        """A history entry that changes no state (an effect's result, an ignored fact)."""
        self._append(event, self.record.state, self.record.state, payload)

    def _append(
        self,
        event: str,
        source: tuple[str, str],
        target: tuple[str, str],
        payload: Mapping[str, Any],
    ) -> None:
        self._history.append(
            HistoryEntry(
                at=self.now,
                event=event,
                actor=self.actor,
                source=source,
                target=target,
                version=self.version,
                payload=dict(payload),
            )
        )

    def update(self, **changes: Any) -> None:
        self.record = attrs.evolve(self.record, **changes)

    def effect(self, effect_type: type[_E], **fields: Any) -> _E:
        record = self.record
        key = f"{record.shop}/{record.id}/{self.version}/{len(self.effects)}/{effect_type.kind}"
        effect = effect_type(
            key=key,
            shop=record.shop,
            return_id=record.id,
            order_id=record.order_id,
            version=self.version,
            **fields,
        )
        self.effects.append(effect)
        return effect

    def publish(self, what: str, **details: Any) -> None:
        record = self.record
        payload = {
            "return_id": record.id,
            "shop": record.shop,
            "order_id": record.order_id,
            "status": record.status,
            "exchange_status": record.exchange_status,
            "shopify_status": shopify_status(record.status).value,
            "version": self.version,
            **details,
        }
        self.effect(fx.Publish, topic=fx.TOPICS[what], payload=payload)

    def notify(self, template: str, **context: Any) -> None:
        if self.record.customer_email:
            context = {"return_id": self.record.id, "order_id": self.record.order_id, **context}
            self.effect(
                fx.Notify, recipient=self.record.customer_email, template=template, context=context
            )

    @property
    def changed(self) -> bool:
        return bool(self._history or self.effects)

    def finished(self) -> ReturnRecord:
        return attrs.evolve(
            self.record,
            version=self.version,
            updated_at=self.now,
            history=self.record.history + tuple(self._history),
        )


class ReturnsService:
    """Runs returns for a host: construct it once with the host's ports (the composition root).

    See the README for a worked example; :mod:`returnflow.testing` has fakes of every port.
    """

    def __init__(
        self,
        *,
        store: ReturnStore,
        commerce: CommercePlatform,
        warehouse: Warehouse,
        carrier: Carrier,
        payments: Payments,
        notifier: Notifier,
        events: EventPublisher,
        policy: ReturnPolicy | None = None,
        clock: Callable[[], datetime] = _utc_now,
        ids: Callable[[], str] = _new_id,
        auto_dispatch: bool = True,
        worker_id: str | None = None,
        lease: timedelta = timedelta(minutes=5),
        jitter_seed: int | None = None,
    ) -> None:
        self.store = store
        self.commerce = commerce
        self.warehouse = warehouse
        self.carrier = carrier
        self.payments = payments
        self.notifier = notifier
        self.events = events
        self.policy = policy or ReturnPolicy()
        self.clock = clock
        self.ids = ids
        self.auto_dispatch = auto_dispatch
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.lease = lease
        self._jitter = random.Random(jitter_seed)
        self._pollers: builtins.list[Poller] = []

    def register_poller(self, poller: Poller) -> None:
        """Have every :meth:`tick` call ``poller.poll(now)`` (an importer polling its source;
        it runs only when its interval has elapsed). The worker ticks, so it polls too."""
        self._pollers.append(poller)

    # -- reads: never build a machine ---------------------------------------------------------

    def get(self, shop: str, return_id: str) -> ReturnRecord:
        return self.store.get(shop, return_id)

    def list(self, shop: str, *, order_id: str | None = None) -> Sequence[ReturnRecord]:
        return self.store.list(shop, order_id=order_id)

    @staticmethod
    def allowed_events(record: ReturnRecord) -> tuple[str, ...]:
        """Events the chart allows for ``record`` (from the derived table)."""
        return TABLE.allowed(record.state)

    def timeline(self, shop: str, return_id: str) -> Sequence[TimelineEntry]:
        """State changes and effects of one return, in the order they happened."""
        record = self.store.get(shop, return_id)
        entries: list[tuple[int, int, TimelineEntry]] = []
        for index, item in enumerate(record.history):
            if item.source != item.target:
                moved = f"{'/'.join(item.source)} -> {'/'.join(item.target)}"
            else:
                moved = "/".join(item.source)
            details = ", ".join(f"{key}={value}" for key, value in item.payload.items())
            text = f"{item.event:<24} {moved}" + (f"  [{details}]" if details else "")
            entries.append(
                (item.version, index, TimelineEntry(item.version, "event", text, item.at))
            )
        for entry in self.store.outbox(shop, return_id):
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

    def render_timeline(self, shop: str, return_id: str) -> str:
        """The timeline as text: a header, then ``*`` for state changes, ``->`` for effects."""
        record = self.store.get(shop, return_id)
        lines = [
            f"return {record.id} (order {record.order_id}): {record.status} / "
            f"{record.exchange_status}, Shopify {shopify_status(record.status).value}, "
            f"version {record.version}"
        ]
        for entry in self.timeline(shop, return_id):
            marker = "  *" if entry.kind == "event" else "     ->"
            lines.append(f"{marker} v{entry.version:<3} {entry.text}")
        return "\n".join(lines)

    # -- commands ------------------------------------------------------------------------------

    def _order(self, request: ReturnRequest) -> OrderSnapshot:
        """The order from the platform; a definite "no such order" is the caller's error."""
        try:
            return self.commerce.get_order(request.shop, request.order_id)
        except PortError as error:
            if error.retryable:
                raise
            raise UnknownOrder("order_id", request.order_id, str(error)) from error

    def validate_request(self, request: ReturnRequest) -> None:
        """Check ``request`` against the order without storing anything."""
        order = self._order(request)
        claimed = self._claimed_units(request.shop, request.order_id)
        _validate_request(
            order,
            request,
            {line_id: len(units) for line_id, units in claimed.items()},
            exchange_apps=self.policy.exchange_apps,
        )

    def quote(self, request: ReturnRequest) -> Settlement:
        """What ``request`` would settle to if every unit came back accepted: refund, credit,
        fees, exchange balance and ERP documents (like Shopify's ``returnCalculate``).
        Nothing is stored."""
        order, _, lines, exchange_lines = self._prepare(request, lambda: "quote")
        return settle(
            order.currency,
            [(line, line.quantity, 0) for line in lines],
            fees=self.policy.fees,
            exchange_lines=exchange_lines,
            difference_to=self.policy.exchange_difference,
        )

    def _prepare(
        self, request: ReturnRequest, new_id: Callable[[], str]
    ) -> tuple[OrderSnapshot, str, Sequence[ReturnLine], Sequence[ExchangeLine]]:
        """Validate ``request``, then take an id and build its lines, each holding units no
        open return holds, with their exact paid amounts."""
        if not isinstance(request, ReturnRequest):
            raise InvalidPayload("request", request, "must be a ReturnRequest")
        order = self._order(request)
        claimed = self._claimed_units(request.shop, request.order_id)
        returned = {line_id: len(units) for line_id, units in claimed.items()}
        _validate_request(order, request, returned, exchange_apps=self.policy.exchange_apps)
        return_id = new_id()
        amounts = unit_amounts(order)
        lines: builtins.list[ReturnLine] = []
        exchange_lines: builtins.list[ExchangeLine] = []
        for index, line in enumerate(request.lines, start=1):
            order_line = order.line(line.order_line_id)
            assert order_line is not None  # validate_request checked it
            taken = claimed.get(line.order_line_id, set())
            free = [unit for unit in range(order_line.quantity) if unit not in taken]
            units = tuple(free[: line.quantity])
            line_id = f"{return_id}-{index}"
            lines.append(
                ReturnLine(
                    id=line_id,
                    order_line_id=line.order_line_id,
                    sku=order_line.sku,
                    variant_id=order_line.variant_id,
                    quantity=line.quantity,
                    outcome=line.outcome,
                    reason=line.reason,
                    unit_amounts=tuple(amounts[order_line.id][unit] for unit in units),
                    units=units,
                    note=line.note,
                    declared_condition=line.condition,
                )
            )
            if isinstance(line.outcome, Exchange):
                exchange_lines.append(
                    ExchangeLine(
                        id=f"{line_id}-x",
                        return_line_id=line_id,
                        variant_id=line.outcome.variant_id,
                        quantity=line.outcome.quantity,
                        sku=line.outcome.sku,
                        unit_price=line.outcome.unit_price,
                    )
                )
        return order, return_id, lines, exchange_lines

    def _opened(
        self,
        request: ReturnRequest,
        ids: Callable[[], str],
        *,
        actor: str | None,
        refs: ExternalRefs | None = None,
        imported: Mapping[str, Any] | None = None,
    ) -> tuple[OrderSnapshot, _Change, Money]:
        """A new return's first change: the record built from the checked request, an
        ``imported`` note when another system opened it, and the ``requested`` note; with
        the order and the value of the units asked for."""
        order, return_id, lines, exchange_lines = self._prepare(request, ids)
        now = self.clock()
        initial = TABLE.initial
        record = ReturnRecord(
            id=return_id,
            shop=request.shop,
            order_id=request.order_id,
            currency=order.currency,
            status=initial[0],
            exchange_status=initial[1],
            lines=tuple(lines),
            exchange_lines=tuple(exchange_lines),
            refs=refs or ExternalRefs(),
            created_at=now,
            updated_at=now,
            customer_email=order.customer_email,
            customer_note=request.customer_note,
        )
        change = _Change(record, now=now, actor=actor or request.requested_by, base=0)
        if imported is not None:
            change.note("imported", imported)
        value = Money.sum(
            (amount for line in lines for amount in line.unit_amounts), order.currency
        )
        change.note(
            "requested",
            {
                "lines": ", ".join(f"{line.order_line_id}x{line.quantity}" for line in lines),
                "value": str(value),
            },
        )
        return order, change, value

    def request(self, request: ReturnRequest, *, actor: str | None = None) -> ReturnRecord:
        """Open a return: validate it, check eligibility, approve, review or decline it."""
        order, change, value = self._opened(request, self.ids, actor=actor)
        change.publish("request")
        change.notify("return_requested")
        assessment = self.policy.assess(order, request, now=change.now, value=value)
        change.fire("check", {"decision": assessment.decision.value})
        if assessment.decision is Decision.APPROVE:
            change.fire("auto_approve")
            self._approved(change)
        elif assessment.decision is Decision.REVIEW:
            change.fire("route_to_review", {"reasons": "; ".join(assessment.notes)})
            change.update(review_reasons=assessment.notes)
            change.publish("update", review_reasons=list(assessment.notes))
        else:
            reason = assessment.decline_reason or DeclineReason.OTHER
            self._declined(change, reason, "; ".join(assessment.notes))
        return self._commit(change)

    def import_return(
        self,
        request: ReturnRequest,
        *,
        return_id: str,
        source: str,
        external_id: str,
        details: Mapping[str, Any] | None = None,
    ) -> ReturnRecord:
        """Open, approved, a return another system already decided (a returns app: Loop).

        ``request`` is checked against the order as :meth:`request` checks it: an unknown
        order or order line, a line twice, more units than are left to return (counting the
        order's other returns), an exchange the order cannot get, another currency are
        refused with the same typed errors, and nothing is stored. What the source decided is
        not decided again: the policy's window, final-sale, condition, review-reason,
        auto-approval and value-limit rules do not apply. No label is bought, now or at a
        later approval (the source gave the customer one); the warehouse expectation, an
        exchange hold or balance, messages and events follow as for any approval, and the
        return expires like any other (``policy.ship_within_days`` after the import) unless
        the source cancels or expires it first. The return is stored under ``return_id``;
        ``refs.source`` / ``refs.source_return_id`` and an ``imported`` history entry (with
        ``details``) say where it came from. A ``return_id`` already stored raises
        :class:`~returnflow.errors.ConcurrencyConflict` and changes nothing.
        """
        if not isinstance(request, ReturnRequest):
            raise InvalidPayload("request", request, "must be a ReturnRequest")
        try:
            existing = self.store.get(request.shop, return_id)
        except ReturnNotFound:
            pass
        else:
            raise ConcurrencyConflict(return_id, 0, existing.version)
        _, change, _ = self._opened(
            request,
            lambda: return_id,
            actor=source,
            refs=ExternalRefs(source=source, source_return_id=external_id),
            imported={"source": source, "external_id": external_id, **(details or {})},
        )
        change.publish("request", source=source, external_id=external_id)
        change.notify("return_requested")
        change.fire("check", {"decision": Decision.APPROVE.value, "decided_by": source})
        change.fire("auto_approve", {"approved_by": source})
        self._approved(change)
        return self._commit(change)

    def approve(self, shop: str, return_id: str, *, actor: str = "agent") -> ReturnRecord:
        """An agent approves a return under review (or resumes one that needed review)."""

        def apply(change: _Change) -> None:
            change.fire("approve")
            change.update(review_reasons=())
            self._approved(change)

        return self._run(shop, return_id, actor, apply)

    def decline(
        self,
        shop: str,
        return_id: str,
        reason: DeclineReason | str = DeclineReason.OTHER,
        *,
        note: str = "",
        actor: str = "agent",
    ) -> ReturnRecord:
        try:
            reason = DeclineReason(reason)
        except ValueError:
            allowed = ", ".join(member.value for member in DeclineReason)
            raise InvalidPayload("reason", reason, f"must be one of: {allowed}") from None

        def apply(change: _Change) -> None:
            self._declined(change, reason, note)

        return self._run(shop, return_id, actor, apply)

    def cancel(self, shop: str, return_id: str, *, actor: str = "customer") -> ReturnRecord:
        """Cancel a return before anything was shipped or received."""

        def apply(change: _Change) -> None:
            change.fire("cancel")
            self._wind_down(change, why="return cancelled")
            change.publish("cancel")
            change.notify("return_cancelled")

        return self._run(shop, return_id, actor, apply)

    def issue_label(self, shop: str, return_id: str, *, actor: str = "agent") -> ReturnRecord:
        """Buy a (new) return label; it is sent to the customer when the carrier returns it."""

        def apply(change: _Change) -> None:
            if not (change.allows("send_label") or change.record.status == "label_sent"):
                self._refuse(change, "send_label")
            change.effect(fx.CreateLabel)
            change.note("label_requested", {})

        return self._run(shop, return_id, actor, apply)

    def flag(self, shop: str, return_id: str, reason: str, *, actor: str = "agent") -> ReturnRecord:
        """Send a return to ``needs_review`` for a person to look at."""

        def apply(change: _Change) -> None:
            self._flag(change, reason)

        return self._run(shop, return_id, actor, apply)

    def close(self, shop: str, return_id: str, *, actor: str = "agent") -> ReturnRecord:
        """Complete a return by hand: settle every accepted unit not yet settled, then close."""

        def apply(change: _Change) -> None:
            if not change.allows("close"):
                self._refuse(change, "close")
            self._complete(change, reviewed=change.record.status == "needs_review")

        return self._run(shop, return_id, actor, apply)

    def reopen(
        self, shop: str, return_id: str, *, reason: str = "", actor: str = "agent"
    ) -> ReturnRecord:
        """Reopen a closed return; it waits in ``needs_review`` for what comes next."""

        def apply(change: _Change) -> None:
            change.fire("reopen", {"reason": reason} if reason else None)
            change.update(review_reasons=(reason or "reopened",), completed_at=None)
            change.publish("reopen")

        return self._run(shop, return_id, actor, apply)

    def reset(
        self, shop: str, return_id: str, *, actor: str = "agent"
    ) -> tuple[ReturnRecord, ReturnRecord]:
        """Partial receipt (seed 000): close this return as ``reset`` and open a new one that
        holds only the accepted units, linked both ways. Returns ``(old, new)``."""
        for tries in range(_CONFLICT_RETRIES):
            parent = self.store.get(shop, return_id)
            now = self.clock()
            change = _Change(parent, now=now, actor=actor, base=parent.version)
            if not change.allows("reset_return"):
                self._refuse(change, "reset_return")
            carried = [line for line in parent.lines if line.accepted > 0]
            if not carried:
                raise InvalidPayload(
                    "lines", [line.id for line in parent.lines], "no accepted unit to carry over"
                )
            child_id = self.ids()
            child, child_change = self._reset_child(parent, carried, child_id, now, actor)
            change.fire("reset_return", {"child_id": child_id}, child_id=child_id)
            change.update(child_id=child_id)
            if parent.refs.warehouse_rma_id or self._planned(parent, fx.CreateWarehouseReturn):
                change.effect(fx.CancelWarehouseReturn)
            kept = _carried_exchange(parent, carried)
            dropped = [
                line.id
                for line in parent.exchange_lines
                if line.status in ("pending", "held") and line not in kept
            ]
            if change.allows("cancel_exchange"):
                if dropped:
                    change.effect(fx.CancelExchange, exchange_line_ids=tuple(dropped))
                change.fire(
                    "cancel_exchange",
                    {"transferred_to": child_id, "cancelled": ", ".join(dropped) or "none"},
                )
            change.publish("update", child_id=child_id)
            try:
                self.store.commit(
                    Commit(
                        records=((change.finished(), parent.version), (child, 0)),
                        effects=(*change.effects, *child_change.effects),
                    )
                )
            except ConcurrencyConflict:
                self._back_off(tries)
                continue
            self._after_commit(shop, [parent.id, child_id])
            return self.store.get(shop, parent.id), self.store.get(shop, child_id)
        raise ConcurrencyConflict(return_id, parent.version, -1)

    def retry_exchange_release(
        self, shop: str, return_id: str, *, actor: str = "system"
    ) -> ReturnRecord:
        """Seed 000, "the exchange isn't released": ask the platform where the hold really is
        and release it again if it is still held."""
        record = self.store.get(shop, return_id)
        if record.exchange_status != "released" or record.refs.exchange_hold_id is None:
            raise InvalidTransition(
                record.id, record.state, "retry_exchange_release", TABLE.allowed(record.state)
            )
        status = self.commerce.exchange_hold_status(
            shop, record.order_id, record.refs.exchange_hold_id
        )

        def apply(change: _Change) -> None:
            if status is not HoldStatus.HELD:
                change.note("exchange_release_checked", {"hold": status.value})
                change.update(release_confirmed=True)
                return
            attempt = 1 + sum(
                isinstance(entry.effect, fx.ReleaseExchange)
                for entry in self.store.outbox(shop, return_id)
            )
            if attempt > _RELEASE_TRIES and change.allows("flag"):
                self._flag(
                    change, f"the platform kept the exchange on hold after {attempt - 1} releases"
                )
                change.update(release_confirmed=True)  # a person takes it from here
                return
            change.effect(fx.ReleaseExchange, hold_tag=self.policy.hold_tag, attempt=attempt)
            change.note("exchange_release_retried", {"hold": "still held", "attempt": attempt})

        return self._run(shop, return_id, actor, apply)

    def expire(self, shop: str, return_id: str, *, actor: str = "timer") -> ReturnRecord:
        """An approved return that was never shipped expires: its label is voided, the
        warehouse stops expecting it, a held exchange is cancelled and a paid balance given
        back."""

        def apply(change: _Change) -> None:
            change.fire("expire", {"ship_within_days": self.policy.ship_within_days})
            self._wind_down(change, why="return expired")
            change.publish("cancel", reason="expired")
            change.notify("return_expired")

        return self._run(shop, return_id, actor, apply)

    def tick(self, now: datetime | None = None, *, limit: int = 1000) -> TickReport:
        """Run the timers due at ``now``: expire approved returns never shipped within
        ``policy.ship_within_days`` of approval, and check released exchanges the platform
        may not have honoured (seed 000), releasing them again while still held; then poll
        every registered :class:`Poller` (importers), each when its interval has elapsed."""
        moment = now or self.clock()
        expired: list[str] = []
        checked: list[str] = []
        errors: list[str] = []
        deadline = timedelta(days=self.policy.ship_within_days)
        for record in self.store.list_in(None, ("approved", "label_sent"), limit=limit):
            approved = _approved_at(record)
            if approved is not None and moment - approved > deadline:
                self.expire(record.shop, record.id)
                expired.append(record.id)
        for record in self.store.list_in(
            None, TABLE.lifecycle_states, exchange_status="released", limit=limit
        ):
            if record.release_confirmed or record.refs.exchange_hold_id is None:
                continue
            releases = [
                entry
                for entry in self.store.outbox(record.shop, record.id)
                if isinstance(entry.effect, fx.ReleaseExchange)
            ]
            if releases and all(entry.status != "pending" for entry in releases):
                try:
                    self.retry_exchange_release(record.shop, record.id, actor="timer")
                except PortError as error:
                    errors.append(f"{record.shop}/{record.id}: {error}")
                    continue
                checked.append(record.id)
        imports: list[ImportReport] = []
        for poller in self._pollers:
            try:
                report = poller.poll(moment)
            except ReturnflowError as error:  # a bad cursor, a lost store: not the next poller
                errors.append(f"poll: {type(error).__name__}: {error}")
                continue
            if report is not None:
                imports.append(report)
                errors.extend(report.problems())
        return TickReport(
            expired=tuple(expired),
            release_checked=tuple(checked),
            errors=tuple(errors),
            imports=tuple(imports),
        )

    # -- inbound events ------------------------------------------------------------------------

    def handle(self, event: InboundEvent) -> HandleResult:
        """Apply an inbound fact once. A repeat (same source and id) is a ``duplicate``; a fact
        the return's state has no use for is recorded and ``ignored``; bad data raises."""
        if not isinstance(event, (CarrierUpdate, WarehouseReceipt, WarehouseFinished)):
            raise InvalidPayload("event", event, "must be a carrier or warehouse event")
        key = InboundKey(shop=event.shop, source=event.source, event_id=event.event_id)
        for tries in range(_CONFLICT_RETRIES):
            record = self.store.get(event.shop, event.return_id)
            if self.store.seen(key):
                return HandleResult("duplicate", record, f"{event.source}:{event.event_id}")
            change = _Change(record, now=self.clock(), actor=event.source, base=record.version)
            ignored = self._apply_inbound(change, event)
            try:
                self.store.commit(
                    Commit(
                        records=((change.finished(), record.version),),
                        effects=tuple(change.effects),
                        inbound=key,
                    )
                )
            except ConcurrencyConflict:
                self._back_off(tries)
                continue
            self._after_commit(event.shop, [record.id])
            stored = self.store.get(event.shop, event.return_id)
            if ignored:
                return HandleResult("ignored", stored, ignored)
            return HandleResult("applied", stored)
        raise ConcurrencyConflict(event.return_id, record.version, -1)

    def _apply_inbound(self, change: _Change, event: InboundEvent) -> str:
        """Apply ``event`` to ``change``; return why it was ignored, or ``""``."""
        if isinstance(event, CarrierUpdate):
            return self._carrier(change, event)
        if isinstance(event, WarehouseReceipt):
            return self._receipt(change, event)
        return self._finished(change, event)

    def _ignore(self, change: _Change, event: InboundEvent, why: str) -> str:
        change.note("ignored", {"fact": type(event).__name__, "id": event.event_id, "why": why})
        return why

    def _carrier(self, change: _Change, event: CarrierUpdate) -> str:
        payload = {"carrier_event": event.event_id}
        if event.status is CarrierStatus.PICKED_UP:
            if not change.allows("hand_in"):
                return self._ignore(change, event, f"picked up while {change.record.status}")
            change.fire("hand_in", payload)
            change.publish("carrier_picked_up")
            self._release_if_instant(change)
            if self.policy.refund_trigger is RefundTrigger.ON_HANDED_IN:
                self._pay_early(change, accepted_only=False, why="handed in")
            return ""
        if event.status is CarrierStatus.DELIVERED:
            if not change.allows("deliver"):
                return self._ignore(change, event, f"delivered while {change.record.status}")
            change.fire("deliver", payload)
            change.publish("update")
            self._release_if_instant(change)  # a delivered parcel was handed in
            if self.policy.refund_trigger in (
                RefundTrigger.ON_HANDED_IN,
                RefundTrigger.ON_DELIVERED,
            ):
                self._pay_early(change, accepted_only=False, why="delivered")
            return ""
        if not change.allows("return_to_origin"):
            return self._ignore(change, event, f"return to origin while {change.record.status}")
        change.fire("return_to_origin", payload)
        change.update(review_reasons=(*change.record.review_reasons, "parcel returned to origin"))
        change.publish("carrier_rto")
        change.notify("return_to_origin")
        return ""

    def _receipt(self, change: _Change, event: WarehouseReceipt) -> str:
        record = change.record
        lines = {line.id: line for line in record.lines}
        received: dict[str, list[ReceivedLine]] = {}
        for index, item in enumerate(event.lines):
            line = record.line(item.line_id)
            if line is None:
                raise InvalidPayload(
                    f"lines[{index}].line_id", item.line_id, f"return {record.id} has no such line"
                )
            received.setdefault(line.id, []).append(item)
        if not change.allows("receive"):  # late: the return moved on; recorded, not refused
            return self._ignore(change, event, f"receipt while {record.status}")
        for index, item in enumerate(event.lines):
            line = record.line(item.line_id)
            assert line is not None
            total = sum(part.quantity for part in received[line.id])
            if total > line.outstanding:
                raise InvalidPayload(
                    f"lines[{index}].quantity",
                    item.quantity,
                    f"line {line.id} expects {line.outstanding} more unit(s)",
                )
        restock: list[LineQuantity] = []
        summary: list[str] = []
        for line_id, items in received.items():
            line = lines[line_id]
            passed = sum(item.quantity for item in items if _accepted(item))
            failed = sum(item.quantity for item in items if not _accepted(item))
            notes = tuple(item.note for item in items if item.note)
            condition = next(
                (item.condition for item in reversed(items) if item.condition), line.condition
            )
            to_restock = sum(
                item.quantity for item in items if _accepted(item) and self._restocks(item)
            )
            if to_restock:
                restock.append(LineQuantity(line.order_line_id, to_restock))
            lines[line_id] = attrs.evolve(
                line,
                received=line.received + passed + failed,
                accepted=line.accepted + passed,
                rejected=line.rejected + failed,
                restocked=line.restocked + to_restock,
                condition=condition,
                qc_notes=line.qc_notes + notes,
            )
            summary.append(f"{line.order_line_id}: {passed} pass, {failed} fail")
        change.update(lines=tuple(lines[line.id] for line in record.lines))
        change.fire("receive", {"received": "; ".join(summary)}, receipts=event.lines)
        if restock:
            change.effect(fx.Restock, lines=tuple(restock))
        change.publish("update", received=summary)
        change.notify("item_received", received="; ".join(summary))
        if self.policy.refund_trigger is RefundTrigger.ON_RECEIVED:
            self._pay_early(change, accepted_only=True, why="received")
        if self.policy.completion is Completion.ON_RECEIPT and self._fully_received(change.record):
            self._complete(change)
        return ""

    def _restocks(self, item: ReceivedLine) -> bool:
        if item.disposition is None:
            return self.policy.restock_accepted
        return item.disposition is Disposition.RESTOCKED

    def _finished(self, change: _Change, event: WarehouseFinished) -> str:
        record = change.record
        if record.status not in ("item_received", "needs_review"):
            return self._ignore(change, event, f"warehouse finished while {record.status}")
        if not self._fully_received(record):
            short = ", ".join(
                f"{line.order_line_id}: {line.received}/{line.quantity}"
                for line in record.lines
                if line.requires_receipt and line.outstanding
            )
            if record.status == "needs_review":
                return self._ignore(change, event, f"short receipt ({short}) already in review")
            self._flag(change, f"warehouse finished a short receipt: {short}")
            return ""
        if not change.allows("close"):
            return self._ignore(change, event, f"warehouse finished while {record.status}")
        self._complete(change)
        return ""

    # -- effect dispatch -----------------------------------------------------------------------

    def dispatch_pending(self, limit: int = 100) -> DispatchReport:
        """Deliver due effects, oldest first, at most ``limit``; effects of one return stay in
        order. Effects planned by a delivery (a confirmed refund's notification) are
        delivered in the same call; a failed one waits for its backoff."""
        report = DispatchReport()
        while report.delivered + report.failed + report.given_up < limit:
            now = self.clock()
            claimed = self.store.claim(
                now=now,
                lease_until=now + self.lease,
                worker=self.worker_id,
                limit=limit - (report.delivered + report.failed + report.given_up),
            )
            if not claimed:
                break
            for entry in claimed:
                outcome = self._deliver(entry)
                report = attrs.evolve(
                    report,
                    delivered=report.delivered + (outcome == "done"),
                    failed=report.failed + (outcome == "pending"),
                    given_up=report.given_up + (outcome == "failed"),
                )
        return report

    def _after_commit(self, shop: str, return_ids: Sequence[str]) -> None:
        if not self.auto_dispatch:
            return
        for return_id in return_ids:
            self._dispatch_return(shop, return_id)

    def _dispatch_return(self, shop: str, return_id: str) -> None:
        # One effect at a time, in order; results may plan more (a label's notification).
        for _ in range(1000):
            now = self.clock()
            claimed = self.store.claim(
                now=now,
                lease_until=now + self.lease,
                worker=self.worker_id,
                limit=1,
                shop=shop,
                return_id=return_id,
            )
            if not claimed or self._deliver(claimed[0]) == "pending":
                return  # nothing due, or a failure waits for its backoff

    def _deliver(self, entry: OutboxEntry) -> str:
        effect = entry.effect
        try:
            record = self.store.get(effect.shop, effect.return_id)
            result = self._call_port(effect, record)
        except Exception as error:  # a port may raise anything; it must not lose the effect
            retryable = not isinstance(error, PortError) or error.retryable
            give_up = not retryable or entry.attempts + 1 >= self.policy.max_attempts
            message = f"{type(error).__name__}: {error}"
            now = self.clock()
            attempt = Attempt(
                effect.key,
                ok=False,
                at=now,
                error=message,
                give_up=give_up,
                retry_at=now + self.policy.backoff(entry.attempts + 1, self._jitter.random()),
            )
            if give_up and effect.port in _CRITICAL_PORTS:
                self._escalate(effect, message, attempt)  # given up and flagged: one write
            else:
                self._record(attempt)
            return "failed" if give_up else "pending"
        # Done and written back in one write: a crash in between delivers it again, and the
        # port answers the same key with the same result.
        self._apply_result(
            effect, result, Attempt(effect.key, ok=True, at=self.clock(), result=result)
        )
        return "done"

    def _back_off(self, tries: int) -> None:
        """Wait a little, randomly, before retrying a write another writer beat us to."""
        time.sleep(self._jitter.uniform(0, min(0.05, 0.001 * 2**tries)))

    def _attempted(self, shop: str, return_id: str, key: str) -> bool:
        return any(
            entry.effect.key == key and entry.status != "pending"
            for entry in self.store.outbox(shop, return_id)
        )

    def _record(self, attempt: Attempt) -> None:
        self.store.record_attempt(
            attempt.key,
            ok=attempt.ok,
            at=attempt.at,
            result=attempt.result,
            error=attempt.error,
            give_up=attempt.give_up,
            retry_at=attempt.retry_at,
        )

    def _call_port(self, effect: fx.Effect, record: ReturnRecord) -> object:
        key = effect.key
        shop, order_id = effect.shop, effect.order_id
        if isinstance(effect, fx.Publish):
            event = DomainEvent(
                topic=effect.topic, shop=shop, return_id=effect.return_id, payload=effect.payload
            )
            self.events.publish(event, idempotency_key=key)
            return None
        if isinstance(effect, fx.Notify):
            self.notifier.notify(
                shop, effect.recipient, effect.template, effect.context, idempotency_key=key
            )
            return None
        if isinstance(effect, fx.CreateWarehouseReturn):
            return self.warehouse.create_return(
                shop,
                order_id,
                effect.return_id,
                effect.lines,
                reason=effect.reason,
                action=effect.action,
                idempotency_key=key,
            )
        if isinstance(effect, fx.CancelWarehouseReturn):
            rma = _required(record.refs.warehouse_rma_id, "warehouse_rma_id", effect)
            self.warehouse.cancel_return(shop, rma, idempotency_key=key)
            return None
        if isinstance(effect, fx.CreateLabel):
            return self.carrier.create_label(shop, effect.return_id, order_id, idempotency_key=key)
        if isinstance(effect, fx.VoidLabel):
            tracking = _required(record.refs.tracking_number, "tracking_number", effect)
            self.carrier.void_label(shop, tracking, idempotency_key=key)
            return None
        if isinstance(effect, fx.HoldExchange):
            return self.commerce.add_exchange_items(
                shop, order_id, effect.items, hold_tag=effect.hold_tag, idempotency_key=key
            )
        if isinstance(effect, fx.ReleaseExchange):
            hold = _required(record.refs.exchange_hold_id, "exchange_hold_id", effect)
            if any(
                isinstance(entry.effect, fx.CancelExchange) and entry.status == "failed"
                for entry in self.store.outbox(shop, effect.return_id)
            ):
                # Releasing the hold would ship the items whose cancel never went through.
                raise PortError(
                    "service",
                    "release_exchange",
                    "items of this hold were to be cancelled and were not",
                    retryable=False,
                )
            self.commerce.release_exchange(
                shop, order_id, hold, hold_tag=effect.hold_tag, idempotency_key=key
            )
            return None
        if isinstance(effect, fx.CancelExchange):
            hold = _required(record.refs.exchange_hold_id, "exchange_hold_id", effect)
            self.commerce.cancel_exchange_items(
                shop, order_id, hold, _platform_items(record, effect), idempotency_key=key
            )
            return None
        if isinstance(effect, fx.IssueRefund):
            return self.commerce.refund(
                shop, order_id, effect.amount, effect.lines, idempotency_key=key
            )
        if isinstance(effect, fx.IssueStoreCredit):
            return self.commerce.issue_store_credit(
                shop, order_id, effect.amount, idempotency_key=key
            )
        if isinstance(effect, fx.Restock):
            self.commerce.restock(shop, order_id, effect.lines, idempotency_key=key)
            return None
        if isinstance(effect, fx.ChargeBalance):
            return self.payments.charge(shop, effect.return_id, effect.amount, idempotency_key=key)
        if isinstance(effect, fx.RefundBalance):
            return self.payments.refund(shop, effect.return_id, effect.amount, idempotency_key=key)
        raise PortError("service", effect.kind, "no port handles this effect", retryable=False)

    def _apply_result(self, effect: fx.Effect, result: object, attempt: Attempt) -> None:
        """Record ``attempt`` and write back what the port answered that the return needs
        (ids, labels, holds), in one commit."""
        if isinstance(
            effect, (fx.Publish, fx.Notify, fx.Restock, fx.VoidLabel, fx.CancelWarehouseReturn)
        ):
            self._record(attempt)
            return

        def apply(change: _Change) -> None:
            record = change.record
            refs = record.refs
            if isinstance(effect, fx.CreateWarehouseReturn):
                rma = getattr(result, "rma_id", None)
                change.update(refs=attrs.evolve(refs, warehouse_rma_id=rma))
                change.note("warehouse_return_created", {"rma": rma})
            elif isinstance(effect, fx.CreateLabel):
                tracking = getattr(result, "tracking_number", None)
                url = getattr(result, "label_url", None)
                change.update(refs=attrs.evolve(refs, tracking_number=tracking, label_url=url))
                if change.allows("send_label"):
                    change.fire("send_label", {"tracking": tracking})
                    change.notify("label_sent", tracking_number=tracking, label_url=url)
                    change.publish("update", tracking_number=tracking)
                else:
                    change.note("label_created", {"tracking": tracking})
            elif isinstance(effect, fx.HoldExchange):
                hold = getattr(result, "hold_id", None)
                platform_ids = dict(
                    zip(
                        (item.exchange_line_id for item in effect.items),
                        getattr(result, "item_ids", ()),
                        strict=False,
                    )
                )
                change.update(
                    refs=attrs.evolve(refs, exchange_hold_id=hold),
                    exchange_lines=tuple(
                        attrs.evolve(line, status="held", platform_item_id=platform_ids[line.id])
                        if line.id in platform_ids
                        else line
                        for line in record.exchange_lines
                    ),
                )
                change.note("exchange_held", {"hold": hold, "tag": effect.hold_tag})
                change.publish("exchange_held", hold_id=hold)
            elif isinstance(effect, fx.ReleaseExchange):
                change.update(exchange_lines=_with_status(record, None, "released", only="held"))
                change.note(
                    "exchange_released", {"tag_removed": effect.hold_tag, "try": effect.attempt}
                )
                if effect.attempt == 1:  # a retry is not news to the customer or the helpdesk
                    change.publish("exchange_released")
                    change.notify("exchange_released")
            elif isinstance(effect, fx.CancelExchange):
                change.update(
                    exchange_lines=_with_status(record, set(effect.exchange_line_ids), "cancelled")
                )
                change.note(
                    "exchange_lines_cancelled", {"lines": ", ".join(effect.exchange_line_ids)}
                )
                change.publish("exchange_cancelled", lines=list(effect.exchange_line_ids))
            elif isinstance(effect, fx.ChargeBalance):
                payment = getattr(result, "payment_id", "")
                change.update(balance_paid=effect.amount)
                change.note("balance_charged", {"payment": payment, "amount": str(effect.amount)})
                if change.allows("pay_balance"):
                    change.fire("pay_balance", {"amount": str(effect.amount)})
                change.publish("balance_charged", payment_id=payment, amount=str(effect.amount))
            elif isinstance(effect, fx.RefundBalance):
                payment = getattr(result, "payment_id", "")
                change.note("balance_refunded", {"payment": payment, "amount": str(effect.amount)})
                change.publish("balance_refunded", payment_id=payment, amount=str(effect.amount))
                change.notify("balance_refunded", amount=str(effect.amount))
            elif isinstance(effect, fx.IssueRefund):
                refund_id = getattr(result, "refund_id", "")
                change.update(refs=attrs.evolve(refs, refund_ids=(*refs.refund_ids, refund_id)))
                change.note("refund_issued", {"refund": refund_id, "amount": str(effect.amount)})
                change.publish("refund_created", refund_id=refund_id, amount=str(effect.amount))
                change.notify("refund_issued", amount=str(effect.amount))
                self._close_if_settled(change, delivered=effect.key)
            elif isinstance(effect, fx.IssueStoreCredit):
                credit_id = getattr(result, "credit_id", "")
                change.update(refs=attrs.evolve(refs, credit_ids=(*refs.credit_ids, credit_id)))
                change.note(
                    "store_credit_issued", {"credit": credit_id, "amount": str(effect.amount)}
                )
                change.publish("credit_created", credit_id=credit_id, amount=str(effect.amount))
                change.notify("store_credit_issued", amount=str(effect.amount))
                self._close_if_settled(change, delivered=effect.key)

        self._run(
            effect.shop, effect.return_id, "dispatcher", apply, dispatch=False, attempt=attempt
        )

    def _escalate(self, effect: fx.Effect, message: str, attempt: Attempt) -> None:
        """An effect the return depends on failed for good: a person has to look."""
        reason = f"{effect.kind} failed: {message}"

        def apply(change: _Change) -> None:
            if isinstance(effect, (fx.IssueRefund, fx.IssueStoreCredit)):
                # The money never moved: undo what it settled, a later close pays it again.
                change.update(**_undo_payout(change.record, effect))
            if change.allows("flag"):
                self._flag(change, reason)
            elif change.allows("reopen"):
                change.fire("reopen", {"reason": reason})
                change.update(review_reasons=(reason,))
                change.publish("reopen", reason=reason)
            else:
                change.note("effect_failed", {"effect": effect.kind, "error": message})

        self._run(
            effect.shop, effect.return_id, "dispatcher", apply, dispatch=False, attempt=attempt
        )

    # -- planning helpers ----------------------------------------------------------------------

    def _approved(self, change: _Change) -> None:
        record = change.record
        shipped = [line for line in record.lines if line.requires_receipt]
        if shipped and not record.refs.warehouse_rma_id:
            change.effect(
                fx.CreateWarehouseReturn,
                lines=tuple(LineQuantity(line.order_line_id, line.quantity) for line in shipped),
                reason=self.policy.warehouse_reason,
                action=self.policy.warehouse_action,
            )
        if shipped and self.policy.send_label and record.refs.source is None:
            change.effect(fx.CreateLabel)  # an imported return's source gave it a label
        pending = [line for line in record.exchange_lines if line.status == "pending"]
        if pending and change.allows("hold_exchange"):
            change.effect(
                fx.HoldExchange,
                items=tuple(
                    ExchangeItem(line.id, line.variant_id, line.quantity, line.sku)
                    for line in pending
                ),
                hold_tag=self.policy.hold_tag,
            )
            # Upsell: the customer owes the difference. Paying it does not release the
            # exchange (seed 003); the release still waits for its trigger.
            exchanged = [
                (line, line.quantity, 0)
                for line in record.lines
                if any(item.return_line_id == line.id for item in pending)
            ]
            quote = settle(
                record.currency,
                exchanged,
                fees=self.policy.fees,
                exchange_lines=pending,
                charge_shipping=False,
            )
            if quote.balance_due:
                change.fire("require_payment", {"balance_due": str(quote.balance_due)})
                change.effect(fx.ChargeBalance, amount=quote.balance_due)
            else:
                change.fire("hold_exchange", {"tag": self.policy.hold_tag})
        change.publish("approve")
        change.notify("return_approved")
        if not shipped:  # returnless: nothing to wait for
            self._complete(change)

    def _declined(self, change: _Change, reason: DeclineReason, note: str) -> None:
        payload = {"reason": reason.value, **({"note": note} if note else {})}
        change.fire("decline", payload, reason=reason)
        change.update(decline_reason=reason)
        change.publish("decline", reason=reason.value, note=note)
        change.notify("return_declined", reason=reason.value, note=note)

    def _flag(self, change: _Change, reason: str) -> None:
        change.fire("flag", {"reason": reason}, reason=reason)
        change.update(review_reasons=(*change.record.review_reasons, reason))
        change.publish("update", review_reason=reason)

    def _wind_down(self, change: _Change, *, why: str) -> None:
        """Undo what an approval set in motion: label, warehouse return, exchange, balance."""
        refs = change.record.refs
        if refs.tracking_number or self._planned(change.record, fx.CreateLabel):
            change.effect(fx.VoidLabel)  # after the label in the outbox, so it exists then
        if refs.warehouse_rma_id or self._planned(change.record, fx.CreateWarehouseReturn):
            change.effect(fx.CancelWarehouseReturn)
        self._cancel_exchange(change, why=why)
        record = change.record
        if record.balance_paid is not None and not record.balance_settled:
            change.effect(fx.RefundBalance, amount=record.balance_paid)
            change.update(balance_settled=True)

    def _release_if_instant(self, change: _Change) -> None:
        if self.policy.exchange_release is ReleaseTrigger.ON_HANDED_IN and change.allows(
            "release_exchange"
        ):
            self._release_exchange(change, why="instant exchange: parcel handed in")

    def _release_exchange(self, change: _Change, *, why: str) -> None:
        change.effect(fx.ReleaseExchange, hold_tag=self.policy.hold_tag)
        change.fire("release_exchange", {"why": why})

    def _cancel_exchange(self, change: _Change, *, why: str) -> None:
        """Cancel every open exchange line and move the exchange to ``exchange_cancelled``."""
        if not change.allows("cancel_exchange"):
            return
        open_ids = tuple(
            line.id for line in change.record.exchange_lines if line.status in ("pending", "held")
        )
        if open_ids:
            change.effect(fx.CancelExchange, exchange_line_ids=open_ids)
        change.fire("cancel_exchange", {"why": why})

    def _complete(self, change: _Change, *, reviewed: bool = False) -> None:
        """Run the outcomes of every accepted, unsettled unit, release or cancel the exchange,
        and close the return (seed 000: "Finished" closes, then the outcome runs).

        An exchanged item that failed QC after an instant release needs a person first;
        ``reviewed`` says one has looked (an agent closing from ``needs_review``).
        """
        record = change.record
        failed = {
            line.id for line in record.lines if isinstance(line.outcome, Exchange) and line.rejected
        }
        if record.exchange_status == "released" and failed and not reviewed:
            self._flag(change, "QC failed on an exchanged item after the exchange was released")
            return
        if not reviewed:
            early = [line for line in record.lines if line.settled > _due_units(line)]
            if early:
                lines = ", ".join(
                    f"{line.order_line_id} ({line.settled - line.accepted})" for line in early
                )
                self._flag(change, f"paid before QC rejected units: {lines}")
                return
            if record.exchange_status == "awaiting_payment":
                self._flag(change, "the exchange balance is not paid")
                return
        parts = [
            (line, _due_units(line) - line.settled, line.settled)
            for line in record.lines
            if _due_units(line) > line.settled
        ]
        # The exchange: every exchanged unit accepted -> release; any rejected -> cancel it.
        cancel_ids = [
            line.id
            for line in record.exchange_lines
            if line.return_line_id in failed and line.status in ("pending", "held")
        ]
        keep_ids = [
            line.id
            for line in record.exchange_lines
            if line.return_line_id not in failed and line.status in ("pending", "held")
        ]
        # What the exchanged units pay for: every new item not cancelled, released or not.
        kept = [
            line
            for line in record.exchange_lines
            if line.return_line_id not in failed and line.status != "cancelled"
        ]
        if record.exchange_status == "awaiting_payment":
            # Reviewed and the upsell balance was never paid: no exchange; the returned
            # units' worth is paid out like an exchange for nothing.
            kept, keep_ids, cancel_ids = [], [], []
            self._cancel_exchange(change, why="the exchange balance was never paid")
        prepaid = None if record.balance_settled else record.balance_paid
        settlement = self._settle(change, parts, exchange_lines=kept, prepaid=prepaid)
        change.update(completed_at=change.now, balance_settled=record.balance_paid is not None)
        if settlement.refund:
            change.fire("refund", {"amount": str(settlement.refund)})
        if cancel_ids and keep_ids:
            change.effect(fx.CancelExchange, exchange_line_ids=tuple(cancel_ids))
            change.note("exchange_lines_qc_failed", {"cancelled": ", ".join(cancel_ids)})
        if keep_ids and change.allows("release_exchange"):
            self._release_exchange(change, why="return completed")
        elif cancel_ids:
            self._cancel_exchange(change, why="QC failed on every exchanged item")
        if not (settlement.refund or settlement.store_credit or settlement.bonus):
            self._close(change)
        # Otherwise the return closes when the platform confirms the money (_apply_result).

    def _settle(
        self,
        change: _Change,
        parts: Sequence[tuple[ReturnLine, int, int]],
        *,
        exchange_lines: Sequence[ExchangeLine] = (),
        prepaid: Money | None = None,
    ) -> Settlement:
        """Settle ``parts`` (line, units, first unit): count them settled, keep the fees,
        plan the refund and the store credit."""
        record = change.record
        settlement = settle(
            record.currency,
            parts,
            fees=self.policy.fees,
            exchange_lines=exchange_lines,
            charge_shipping=record.return_shipping_fee is None,
            difference_to=self.policy.exchange_difference,
            prepaid=prepaid,
        )
        if not parts and not settlement.balance_refund:
            return settlement
        added = {line.id: units for line, units, _ in parts}
        restocking = record.restocking_fees
        if settlement.restocking_fee:
            restocking = (restocking or Money.zero(record.currency)) + settlement.restocking_fee
        change.update(
            lines=tuple(
                attrs.evolve(line, settled=line.settled + added[line.id])
                if line.id in added
                else line
                for line in record.lines
            ),
            return_shipping_fee=settlement.return_shipping_fee or record.return_shipping_fee,
            restocking_fees=restocking,
        )
        # Each payout carries the units and fees it settles, to be undone if it fails.
        zero = Money.zero(record.currency)
        to_credit = self.policy.exchange_difference is OutcomeKind.STORE_CREDIT
        for payout, amount, kind, shipping in (
            (
                fx.IssueRefund,
                settlement.refund,
                OutcomeKind.REFUND,
                settlement.shipping_from_refund,
            ),
            (
                fx.IssueStoreCredit,
                settlement.store_credit + settlement.bonus,
                OutcomeKind.STORE_CREDIT,
                settlement.return_shipping_fee - settlement.shipping_from_refund,
            ),
        ):
            if not amount:
                continue
            difference_here = (kind is OutcomeKind.STORE_CREDIT) == to_credit
            covered = [
                part
                for part in settlement.lines
                if part.outcome is kind
                or (part.outcome is OutcomeKind.EXCHANGE and difference_here)
            ]
            change.effect(
                payout,
                amount=amount,
                lines=_quantities(lines_by_order_line(settlement, kind)),
                covers=tuple((part.line_id, part.units) for part in covered),
                restocking=Money.sum((part.restocking_fee for part in covered), record.currency)
                or None,
                shipping=shipping if shipping != zero else None,
            )
        if settlement.balance_refund:
            change.effect(fx.RefundBalance, amount=settlement.balance_refund)
        documents = ", ".join(f"{kind.value} {amount}" for kind, amount in settlement.documents)
        change.note("settled", {**settlement.as_dict(), "documents": documents})
        return settlement

    def _pay_early(self, change: _Change, *, accepted_only: bool, why: str) -> None:
        """Refund or credit before completion (the policy's refund trigger); exchanges and
        returnless lines settle at completion as usual."""
        parts = []
        for line in change.record.lines:
            if isinstance(line.outcome, (Exchange, Keep)):
                continue
            units = line.accepted if accepted_only else line.quantity
            if units > line.settled:
                parts.append((line, units - line.settled, line.settled))
        if parts:
            change.note("refund_trigger", {"trigger": why})
            self._settle(change, parts)

    def _close(self, change: _Change) -> None:
        change.fire("close")
        change.update(review_reasons=())
        change.publish("close")
        change.notify("return_closed")

    def _close_if_settled(self, change: _Change, *, delivered: str) -> None:
        """Close a completed return once no refund or credit it planned is still pending
        (one given up sent the return to review and was planned again from there)."""
        record = change.record
        if record.completed_at is None or record.status not in (
            "refunded",
            "item_received",
            "approved",
        ):
            return
        money = (fx.IssueRefund, fx.IssueStoreCredit)
        entries = self.store.outbox(record.shop, record.id)
        # ``delivered`` is done in the same commit as this close.
        if any(
            isinstance(e.effect, money) and e.status == "pending" and e.effect.key != delivered
            for e in entries
        ):
            return
        self._close(change)

    # -- plumbing ------------------------------------------------------------------------------

    def _refuse(self, change: _Change, event: str) -> None:
        record = change.record
        raise InvalidTransition(record.id, record.state, event, TABLE.allowed(record.state))

    @staticmethod
    def _fully_received(record: ReturnRecord) -> bool:
        return all(line.received >= line.quantity for line in record.lines if line.requires_receipt)

    def _planned(self, record: ReturnRecord, effect_type: type[fx.Effect]) -> bool:
        return any(
            isinstance(entry.effect, effect_type)
            for entry in self.store.outbox(record.shop, record.id)
        )

    def _claimed_units(self, shop: str, order_id: str) -> dict[str, set[int]]:
        """Units of each order line held by the order's returns (a reset's by its new one)."""
        claimed: dict[str, set[int]] = {}
        for record in self.store.list(shop, order_id=order_id):
            if record.status in ("declined", "cancelled", "expired", "reset"):
                continue
            for line in record.lines:
                claimed.setdefault(line.order_line_id, set()).update(line.units)
        return claimed

    def _reset_child(
        self,
        parent: ReturnRecord,
        carried: Sequence[ReturnLine],
        child_id: str,
        now: datetime,
        actor: str,
    ) -> tuple[ReturnRecord, _Change]:
        lines: list[ReturnLine] = []
        renamed: dict[str, str] = {}
        for index, line in enumerate(carried, start=1):
            new_id = f"{child_id}-{index}"
            renamed[line.id] = new_id
            units = line.accepted
            lines.append(
                attrs.evolve(
                    line,
                    id=new_id,
                    quantity=units,
                    received=units,
                    accepted=units,
                    rejected=0,
                    restocked=min(line.restocked, units),
                    settled=min(line.settled, units),
                    unit_amounts=line.unit_amounts[:units],
                    units=line.units[:units],
                )
            )
        exchange = [
            attrs.evolve(
                line,
                id=f"{renamed[line.return_line_id]}-x",
                return_line_id=renamed[line.return_line_id],
            )
            for line in _carried_exchange(parent, carried)
        ]
        exchange_status = parent.exchange_status if exchange else TABLE.initial[1]
        child = ReturnRecord(
            id=child_id,
            shop=parent.shop,
            order_id=parent.order_id,
            currency=parent.currency,
            status="item_received",
            exchange_status=exchange_status,
            lines=tuple(lines),
            exchange_lines=tuple(exchange),
            refs=attrs.evolve(parent.refs, warehouse_rma_id=None, refund_ids=(), credit_ids=())
            if exchange
            else type(parent.refs)(tracking_number=parent.refs.tracking_number),
            created_at=now,
            updated_at=now,
            customer_email=parent.customer_email,
            customer_note=parent.customer_note,
            parent_id=parent.id,
        )
        change = _Change(child, now=now, actor=actor, base=0)
        change.note("created_by_reset", {"parent_id": parent.id})
        change.effect(
            fx.CreateWarehouseReturn,
            lines=tuple(LineQuantity(line.order_line_id, line.quantity) for line in lines),
            reason=self.policy.warehouse_reason,
            action=self.policy.warehouse_action,
        )
        change.publish("request", parent_id=parent.id)
        if self.policy.completion is Completion.ON_RECEIPT:
            self._complete(change)
        return change.finished(), change

    def _run(
        self,
        shop: str,
        return_id: str,
        actor: str,
        apply: Callable[[_Change], None],
        *,
        dispatch: bool = True,
        attempt: Attempt | None = None,
    ) -> ReturnRecord:
        """Load, apply, commit with a version check; reload and re-apply on a conflict.
        ``attempt`` (an effect's delivery) is recorded in the same commit."""
        for tries in range(_CONFLICT_RETRIES):
            record = self.store.get(shop, return_id)
            change = _Change(record, now=self.clock(), actor=actor, base=record.version)
            apply(change)
            if not change.changed:
                if attempt is not None:
                    self._record(attempt)
                return record
            committed = change.finished()
            try:
                self.store.commit(
                    Commit(
                        records=((committed, record.version),),
                        effects=tuple(change.effects),
                        attempts=() if attempt is None else (attempt,),
                    )
                )
            except ConcurrencyConflict:
                if attempt is not None and self._attempted(shop, return_id, attempt.key):
                    return self.store.get(shop, return_id)  # another worker finished it
                self._back_off(tries)
                continue
            if not (dispatch and self.auto_dispatch and change.effects):
                return committed
            self._after_commit(shop, [return_id])
            return self.store.get(shop, return_id)  # as the delivered effects left it
        raise ConcurrencyConflict(return_id, record.version, -1)

    def _commit(self, change: _Change) -> ReturnRecord:
        record = change.finished()
        self.store.commit(Commit(records=((record, change.base),), effects=tuple(change.effects)))
        self._after_commit(record.shop, [record.id])
        return self.store.get(record.shop, record.id)


def _undo_payout(
    record: ReturnRecord, effect: fx.IssueRefund | fx.IssueStoreCredit
) -> dict[str, Any]:
    """The record fields as they were before ``effect``'s settlement."""
    unpaid = dict(effect.covers)
    restocking = record.restocking_fees
    if effect.restocking is not None and restocking is not None:
        restocking = restocking - effect.restocking
    shipping = record.return_shipping_fee
    if effect.shipping is not None and shipping is not None:
        shipping = shipping - effect.shipping
    return {
        "lines": tuple(
            attrs.evolve(line, settled=line.settled - unpaid[line.id])
            if line.id in unpaid
            else line
            for line in record.lines
        ),
        "restocking_fees": restocking or None,
        "return_shipping_fee": shipping or None,
    }


def _approved_at(record: ReturnRecord) -> datetime | None:
    """When the return was (last) approved."""
    for entry in reversed(record.history):
        if entry.target[0] == "approved" and entry.source[0] != "approved":
            return entry.at
    return None


def _due_units(line: ReturnLine) -> int:
    """Units a line's outcome is owed for now: all of a returnless line, else the accepted."""
    return line.quantity if isinstance(line.outcome, Keep) else line.accepted


def _quantities(counts: Mapping[str, int]) -> tuple[LineQuantity, ...]:
    return tuple(LineQuantity(order_line_id, units) for order_line_id, units in counts.items())


def _accepted(item: ReceivedLine) -> bool:
    return item.qc is QcResult.PASS and item.disposition is not Disposition.MISSING


def _carried_exchange(parent: ReturnRecord, carried: Sequence[ReturnLine]) -> list[ExchangeLine]:
    """Open exchange lines a reset carries over: those of carried lines with no rejected unit."""
    clean = {line.id for line in carried if not line.rejected}
    return [
        line
        for line in parent.exchange_lines
        if line.return_line_id in clean and line.status in ("pending", "held")
    ]


def _required(value: _T | None, field: str, effect: fx.Effect) -> _T:
    if value is None:
        raise PortError(effect.port, effect.kind, f"the return has no {field} yet", retryable=True)
    return value


def _platform_items(record: ReturnRecord, effect: fx.CancelExchange) -> tuple[str, ...]:
    """The platform's ids of the exchange items to cancel."""
    wanted = set(effect.exchange_line_ids)
    return tuple(
        _required(line.platform_item_id, "platform_item_id", effect)
        for line in record.exchange_lines
        if line.id in wanted
    )


def _with_status(
    record: ReturnRecord, ids: set[str] | None, status: str, *, only: str | None = None
) -> tuple[ExchangeLine, ...]:
    return tuple(
        attrs.evolve(line, status=status)
        if (ids is None or line.id in ids) and (only is None or line.status == only)
        else line
        for line in record.exchange_lines
    )
