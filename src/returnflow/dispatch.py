"""The outbox relay: claim due effects, deliver each to its port, write the result back.

A :class:`Dispatcher` works alone (a worker process, a task queue's task) or inside a
:class:`~returnflow.service.ReturnsService`, which hands it each return it just committed.
Each effect type has one handler in :data:`HANDLERS`: a small function that calls one port
with the effect's idempotency key and returns what the port answered. A new effect kind is
one entry there (and, if its answer changes the return, one in
:mod:`returnflow.decisions.results`). A handler that must send a retry the call its first
attempt decided raises :class:`~returnflow._delivery.WriteFirst` with the decision: it is
written on the return, and the handler called again on the return as written.

A delivery that raises is retried after the policy's back-off; one that fails for good, or
``policy.max_attempts`` times, is given up, and when the return depends on it (commerce,
warehouse, carrier, payments) the return goes to a person in the same write.
"""

from __future__ import annotations

import os
import random
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import attrs

from returnflow import commits, logs
from returnflow import platform_handlers as native
from returnflow._delivery import (
    BUDGET,
    CRITICAL_PORTS,
    RUN,
    Delivered,
    Tally,
    WriteFirst,
    heavy,
    held_run,
    runs,
)
from returnflow._handlers import (
    authorize_payment,
    cancel_exchange,
    cancel_warehouse_return,
    capture_payment,
    charge_balance,
    create_label,
    create_warehouse_return,
    hold_exchange,
    issue_refund,
    issue_store_credit,
    notify,
    publish,
    refund_balance,
    release_exchange,
    restock,
    void_authorization,
    void_label,
)
from returnflow.decisions import results
from returnflow.decisions.change import Change
from returnflow.domain._fields import check_limit
from returnflow.domain._time import CheckedClock
from returnflow.domain.model import ReturnRecord
from returnflow.domain.policy import ReturnPolicy
from returnflow.errors import ConfigurationError, PortError
from returnflow.lifecycle import effects as fx
from returnflow.lifecycle.engine import ENGINES
from returnflow.ports.carrier import Carrier
from returnflow.ports.commerce import CommercePlatform
from returnflow.ports.events import EventPublisher
from returnflow.ports.notifier import Notifier
from returnflow.ports.payments import Payments
from returnflow.ports.store import Attempt, Lease, OutboxEntry, ReturnStore
from returnflow.ports.warehouse import Warehouse
from returnflow.resolving import PolicyResolution, PolicySource, source_of

__all__ = ["HANDLERS", "DispatchReport", "Dispatcher", "Handler"]

_T = TypeVar("_T")

_WRITES = 2
"""How many decisions a handler may write on the return before its call, in one attempt."""


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


@attrs.frozen
class DispatchReport:
    """What :meth:`Dispatcher.dispatch_pending` did: effects delivered, failed (to be retried
    after their back-off) and given up."""

    delivered: int = 0
    failed: int = 0
    given_up: int = 0


Handler = Callable[["Dispatcher", Any, ReturnRecord], object]
"""Delivers one effect: ``(dispatcher, effect, record as stored) -> the port's answer``."""


class Dispatcher(PolicyResolution):
    """Relays a store's outbox to the host's ports.

    ``clock`` returns the time, aware (default: UTC now). ``worker_id`` names the claims
    this dispatcher takes (a lease of ``lease``; another worker takes an effect whose lease
    ran out); ``jitter_seed`` seeds the back-off's jitter; ``handlers`` adds or replaces
    entries of :data:`HANDLERS`.
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
        clock: Callable[[], datetime] | None = None,
        worker_id: str | None = None,
        lease: timedelta = timedelta(minutes=5),
        jitter_seed: int | None = None,
        handlers: Mapping[type[fx.Effect], Handler] | None = None,
        engine: str = "compiled",
        policies: PolicySource | None = None,
        platform_returns: native.PlatformReturns | None = None,
    ) -> None:
        if engine not in ENGINES:
            raise ConfigurationError(f"one of {sorted(ENGINES)}", field="engine", value=engine)
        self.policies: PolicySource = source_of(policy, policies, platform_returns)
        self.platform_returns = native.required(policy, platform_returns)  # native mode's
        self.engine = engine
        self.store = store
        self.commerce = commerce
        self.warehouse = warehouse
        self.carrier = carrier
        self.payments = payments
        self.notifier = notifier
        self.events = events
        self.clock = clock or _utc_now  # read through a CheckedClock (below)
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.lease = lease
        self.rng = random.Random(jitter_seed)
        self.handlers: dict[type[fx.Effect], Handler] = {**HANDLERS, **(handlers or {})}
        self.hand_off: Callable[[str, str], object] | None = None
        """Set it to have :meth:`dispatch_return` hand each return committed to a task
        queue instead of delivering in the caller (:mod:`returnflow.integrations.celery`)."""
        self._taken = threading.local()
        self.critical_alone = True
        """``True``: an effect of a port the return depends on (commerce, warehouse,
        carrier, payments), or whose answer changes the return, is delivered only once every
        such delivery of the return before it is written: a crash repeats at most one of
        them. ``False``: they are delivered together and written in one write (fewer writes;
        a crash repeats all of them, each answered by its idempotency key); an effect that
        reads the return still waits for the answers before it to be written."""

    @property
    def clock(self) -> Callable[[], datetime]:
        """Now, as an aware UTC datetime: the host's clock read through a
        :class:`CheckedClock` (a naive reading is a ``ConfigurationError``)."""
        return self._clock

    @clock.setter
    def clock(self, clock: Callable[[], datetime]) -> None:
        self._clock = CheckedClock.of(clock)

    def lease_for(self, returns: Sequence[tuple[str, str]]) -> Lease:
        """The lease a commit takes of ``returns`` for this dispatcher (``Commit.claim``)."""
        now = self.clock()
        self._taken.until = now + self.lease  # this thread's, to find it again (see _found)
        return Lease(self.worker_id, now, self._taken.until, tuple(returns), RUN)

    def dispatch_pending(self, limit: int = 100) -> DispatchReport:
        """Deliver due effects, oldest first, at most ``limit``; effects of one return stay in
        order. Effects planned by a delivery (a confirmed refund's notification) are
        delivered in the same call; a failed one waits for its backoff.

        One claim hands out the due head of each return with the run of effects behind it;
        the deliveries that change no return are recorded together, in one write."""
        check_limit(limit)
        tally = Tally(limit)
        while tally.left > 0:
            now = self.clock()
            claimed = self.store.claim(
                now=now,
                lease_until=now + self.lease,
                worker=self.worker_id,
                limit=tally.left,
                run=min(RUN, tally.left),
            )
            if not claimed:
                break
            batch: list[Attempt] = []
            found = runs(claimed)
            for index, run in enumerate(found):
                # every head claimed is delivered: the runs before it leave it its share
                batch += self._deliver_run(
                    run, None, tally, hold=True, spare=len(found) - index - 1
                )
            commits.record_attempts(self.store, batch)
        report = DispatchReport(*tally.report())
        logs.dispatched(report.delivered, report.failed, report.given_up)
        return report

    def dispatch_return(self, shop: str, return_id: str) -> None:
        """What the service calls after each commit: :meth:`deliver_return` here, or, when
        :attr:`hand_off` is set, hand the return to it (a task queue's task)."""
        if self.hand_off is not None:
            self.hand_off(shop, return_id)
        else:
            self.deliver_return(shop, return_id)

    def deliver_return(self, shop: str, return_id: str) -> None:
        """Deliver the due effects of one return, in order; results may plan more (a label's
        notification). Stops at the first failure (it waits for its back-off)."""
        now = self.clock()
        claimed = self.store.claim(
            now=now,
            lease_until=now + self.lease,
            worker=self.worker_id,
            limit=1,
            shop=shop,
            return_id=return_id,
            run=RUN,
        )
        if claimed:
            self._deliver_run(list(claimed), None, Tally(BUDGET))

    def deliver_written(self, shop: str, written: commits.Written[Any]) -> dict[str, ReturnRecord]:
        """Deliver what a service's commit claimed (``written.claimed``, the effects as it
        holds them; ``None``: find the claims), or hand each return to :attr:`hand_off`; the
        returns as the deliveries last wrote them, by id (those they changed)."""
        if self.hand_off is not None:
            for return_id in written.written:
                self.hand_off(shop, return_id)
            return {}
        claimed = written.claimed
        found = runs(claimed) if claimed is not None else self._found(shop, written.written)
        records: dict[str, ReturnRecord] = {}
        for run in found:
            known = written.record if run[0].effect.return_id == written.record.id else None
            self._deliver_run(run, known, Tally(BUDGET), written=records)
        return records

    def _found(self, shop: str, return_ids: Sequence[str]) -> list[list[OutboxEntry]]:
        """The runs of ``return_ids`` this dispatcher holds the claim of, read from their
        outboxes (a store that did not say what its commit claimed), or claimed now (one
        that took no claim in the commit)."""
        now, taken = self.clock(), getattr(self._taken, "until", None)
        found = []
        for return_id in return_ids:
            held: Sequence[OutboxEntry] | None
            held = held_run(self.store.outbox(shop, return_id), self.worker_id, taken, now)
            if held is None:
                held = self.store.claim(
                    now=now,
                    lease_until=now + self.lease,
                    worker=self.worker_id,
                    limit=1,
                    shop=shop,
                    return_id=return_id,
                    run=RUN,
                )
            if held:
                found.append(list(held))
        return found

    def deliver(self, entry: OutboxEntry) -> str:
        """Deliver one claimed effect and write back its outcome; return its new status:
        ``done``, ``pending`` (failed, retried later) or ``failed`` (given up)."""
        delivered = self._attempt(entry)
        self._write(entry.effect.shop, entry.effect.return_id, [delivered], None, claim=False)
        return delivered.status

    def _deliver_run(
        self,
        run: Sequence[OutboxEntry],
        record: ReturnRecord | None,
        tally: Tally,
        *,
        hold: bool = False,
        written: dict[str, ReturnRecord] | None = None,
        spare: int = 0,
    ) -> list[Attempt]:
        """Deliver a claimed run of one return, in order, and write what came of it:
        deliveries that change nothing with the next write, an effect that waits
        (:meth:`_waits`) after a write of those before it that claims it, the rest in a
        write that claims what comes next (delivered next: what another commit planned while
        this run held the return goes out with it). A failure to be retried ends the run.
        ``hold``: hand back a last batch that changes nothing, for the caller to write with
        others; ``spare``: deliveries of the budget left to other heads."""
        shop, return_id = run[0].effect.shop, run[0].effect.return_id
        todo, done = list(run), list[Delivered]()
        while True:
            while todo and tally.left > spare:
                entry = todo.pop(0)
                if done and self._waits(entry, done):
                    # write what came before, claiming this one, before its port is called
                    record, fresh = self._write(shop, return_id, done, record, written=written)
                    done = []
                    if not fresh or fresh[0].effect.key != entry.effect.key:
                        return []  # no longer ours to deliver
                    entry, todo = fresh[0], fresh[1:]
                delivered = self._attempt(entry)
                tally.count(delivered.status)
                done.append(delivered)
                if delivered.status == "pending":  # waits for its back-off
                    todo = []
            if not done:
                return []
            changes = any(d.decide is not None for d in done)
            if hold and not changes:
                return [d.attempt for d in done]
            # the last write claims too: what another commit planned while this run held
            # the return (its claim found the lease) goes out with this run
            go_on = tally.left > spare and done[-1].status != "pending"
            record, todo = self._write(shop, return_id, done, record, claim=go_on, written=written)
            done = []
            if not todo:
                return []

    def _waits(self, entry: OutboxEntry, done: Sequence[Delivered]) -> bool:
        """Whether ``entry`` waits for the deliveries ``done`` before it to be written."""
        if self.critical_alone:
            return heavy(entry.effect) and any(d.heavy for d in done)
        kind = type(entry.effect)
        reads = _RECORD_FREE.get(kind) is None or self.handlers.get(kind) is not _RECORD_FREE[kind]
        return reads and any(d.decide is not None for d in done)

    def _write(
        self,
        shop: str,
        return_id: str,
        done: Sequence[Delivered],
        record: ReturnRecord | None,
        *,
        claim: bool = True,
        written: dict[str, ReturnRecord] | None = None,
    ) -> tuple[ReturnRecord | None, list[OutboxEntry]]:
        """Write the outcomes of ``done`` (deliveries of one return, in order) with what
        their answers change on the return and, with ``claim``, claim the return's next run
        in the same write; the return as written (or ``record``) and that run."""
        attempts = [d.attempt for d in done]
        decides = [d for d in done if d.decide is not None]
        if not decides:
            lease = self.lease_for([(shop, return_id)]) if claim else None
            claimed = commits.record_attempts(self.store, attempts, lease)
            if claimed is None and claim:
                return record, next(iter(self._found(shop, [return_id])), [])
            return record, list(claimed or ())
        gone: set[str] = set()

        def decide(change: Change) -> None:
            for d in decides:
                if d.attempt.key not in gone and d.decide is not None:
                    d.decide(change)

        kinds = {type(d.effect) for d in decides}
        result = commits.run(
            self.store,
            self.clock,
            self.rng,
            shop,
            return_id,
            "dispatcher",
            decide,
            attempts=attempts,
            gone=gone,
            outbox=bool(kinds & results.NEEDS_OUTBOX),
            heirs=bool(kinds & results.FORWARDED),
            after=self.drain,
            engine=self.engine,
            record=record,
            claim=self.lease_for if claim else None,
        )
        if result.written:
            record = result.record
            if written is not None:
                written[return_id] = record
        if result.claimed is None:
            return record, next(iter(self._found(shop, [return_id])), []) if claim else []
        return record, list(result.claimed)

    def _attempt(self, entry: OutboxEntry) -> Delivered:
        """Deliver one claimed effect: its attempt, and what its answer (or its giving up)
        changes on the return."""
        effect = entry.effect
        logs.delivering(entry)
        handler = self.handlers.get(type(effect))
        try:
            if handler is None:
                raise PortError(
                    "service", effect.kind, "no port handles this effect", retryable=False
                )
            free = _RECORD_FREE.get(type(effect))
            if free is not None and handler is free:
                result = free(self, effect, None)
            else:
                result = self._handled(handler, effect)
        except Exception as error:  # a port may raise anything; it must not lose the effect
            give_up, wait = self.failed_try(effect, entry.attempts + 1, error)
            message = f"{type(error).__name__}: {error}"
            now = self.clock()
            attempt = Attempt(
                effect.key,
                ok=False,
                at=now,
                error=message,
                give_up=give_up,
                retry_at=now + wait,
            )
            escalated = give_up and effect.port in CRITICAL_PORTS
            logs.failed(entry, attempt, escalated=escalated)
            return Delivered(
                attempt,
                effect,
                "failed" if give_up else "pending",
                (lambda change: results.escalate(change, effect, message)) if escalated else None,
            )
        # Done and written back in one write: a crash in between delivers it again, and the
        # port answers the same key with the same result.
        attempt = Attempt(effect.key, ok=True, at=self.clock(), result=result)
        logs.delivered(entry)
        if type(effect) in results.NEEDS_WRITE_BACK:
            return Delivered(
                attempt,
                effect,
                "done",
                lambda change: results.apply_result(change, effect, result),
            )
        return Delivered(attempt, effect, "done", None)

    def _handled(self, handler: Handler, effect: fx.Effect) -> object:
        """What ``handler`` answers for ``effect`` on the return as stored; a handler that
        raises :class:`~returnflow._delivery.WriteFirst` is called again once its change is
        written, up to :data:`_WRITES` times (one decision may need another written first:
        the units a person processed in the platform's admin, then the platform's figure
        for those left); raising it once more fails the attempt, retried."""
        record = self.store.get(effect.shop, effect.return_id)
        for _ in range(_WRITES):
            try:
                return handler(self, effect, record)
            except WriteFirst as first:
                record = commits.run(
                    self.store,
                    self.clock,
                    self.rng,
                    effect.shop,
                    effect.return_id,
                    "dispatcher",
                    first.decide,
                    engine=self.engine,
                ).record
        return handler(self, effect, record)


_RECORD_FREE: Mapping[type[fx.Effect], Callable[[Dispatcher, Any, ReturnRecord | None], object]] = {
    fx.Publish: publish,
    fx.Notify: notify,
    fx.CreateWarehouseReturn: create_warehouse_return,
    fx.CreateLabel: create_label,
    fx.HoldExchange: hold_exchange,
    fx.IssueRefund: issue_refund,
    fx.IssueStoreCredit: issue_store_credit,
    fx.Restock: restock,
    fx.ChargeBalance: charge_balance,
    fx.RefundBalance: refund_balance,
    fx.AuthorizePayment: authorize_payment,
}
"""The handlers that read nothing of the return: the record is not read for them."""

HANDLERS: Mapping[type[fx.Effect], Handler] = {
    **_RECORD_FREE,
    fx.CancelWarehouseReturn: cancel_warehouse_return,
    fx.VoidLabel: void_label,
    fx.ReleaseExchange: release_exchange,
    fx.CancelExchange: cancel_exchange,
    fx.CapturePayment: capture_payment,
    fx.VoidAuthorization: void_authorization,
    **native.HANDLERS,  # native mode's: the platform's own returns
}
"""The handler of each effect type: which port it calls, with what.

:meta hide-value:
"""
