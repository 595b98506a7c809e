"""The outbox relay: claim due effects, deliver each to its port, write the result back.

A :class:`Dispatcher` works alone (a worker process, a task queue's task) or inside a
:class:`~returnflow.service.ReturnsService`, which hands it each return it just committed.
Each effect type has one handler in :data:`HANDLERS`: a small function that calls one port
with the effect's idempotency key and returns what the port answered. A new effect kind is
one entry there (and, if its answer changes the return, one in
:mod:`returnflow.decisions.results`).

A delivery that raises is retried after the policy's back-off; one that fails for good, or
``policy.max_attempts`` times, is given up, and when the return depends on it (commerce,
warehouse, carrier, payments) the return goes to a person in the same write.
"""

from __future__ import annotations

import os
import random
import socket
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import attrs

from returnflow import commits, logs
from returnflow.decisions import facts, results
from returnflow.decisions import timers as timer_rules
from returnflow.decisions.change import Change
from returnflow.domain._fields import check_limit
from returnflow.domain._time import CheckedClock
from returnflow.domain.model import ReturnRecord
from returnflow.domain.policy import ReturnPolicy
from returnflow.errors import ConfigurationError, PortError, ReturnflowError
from returnflow.lifecycle import effects as fx
from returnflow.lifecycle.engine import ENGINES
from returnflow.ports.carrier import Carrier
from returnflow.ports.commerce import CommercePlatform
from returnflow.ports.events import DomainEvent, EventPublisher
from returnflow.ports.notifier import Notifier
from returnflow.ports.payments import Payments
from returnflow.ports.policies import PolicySource, StaticPolicy, resolve, the_policy
from returnflow.ports.store import Attempt, OutboxEntry, ReturnStore
from returnflow.ports.warehouse import Warehouse

__all__ = ["HANDLERS", "DispatchReport", "Dispatcher", "Handler"]

_T = TypeVar("_T")

# Effects whose permanent failure needs a person; a lost message or event does not.
_CRITICAL_PORTS = frozenset({"commerce", "warehouse", "carrier", "payments"})


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


class Dispatcher:
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
    ) -> None:
        if engine not in ENGINES:
            raise ConfigurationError(f"one of {sorted(ENGINES)}", field="engine", value=engine)
        if policy is not None and policies is not None:
            raise ConfigurationError(
                "give one policy for every shop or a source of policies, not both",
                field="policies",
                value=policies,
            )
        self.policies: PolicySource = policies if policies is not None else StaticPolicy(policy)
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

    @property
    def policy(self) -> ReturnPolicy:
        """The one policy of every shop (a :class:`StaticPolicy` source); setting it makes
        the source that. With another source this raises
        :class:`~returnflow.errors.ConfigurationError`: use :meth:`policy_for`."""
        return the_policy(self.policies)

    @policy.setter
    def policy(self, policy: ReturnPolicy) -> None:
        self.policies = StaticPolicy(policy)

    def policy_for(self, shop: str, version: str | None = None) -> ReturnPolicy:
        """The policy of ``shop`` (in force, or its ``version``) from :attr:`policies`;
        anything but a :class:`ReturnPolicy` from the source is a ``ConfigurationError``."""
        return resolve(self.policies, shop, version)

    def policy_of(self, record: ReturnRecord) -> ReturnPolicy:
        """The policy ``record`` was opened under (its shop's, at its ``policy_version``)."""
        return self.policy_for(record.shop, record.policy_version)

    def _retry_policy(self, effect: fx.Effect) -> ReturnPolicy:
        """The policy whose retry settings govern ``effect``: its return's, else its shop's
        in force, else the defaults (a return or shop that cannot be read still retries)."""
        try:
            return self.policy_of(self.store.get(effect.shop, effect.return_id))
        except ReturnflowError:
            try:
                return self.policy_for(effect.shop)
            except ReturnflowError:
                return ReturnPolicy()

    @property
    def clock(self) -> Callable[[], datetime]:
        """Now, as an aware UTC datetime: the host's clock read through a
        :class:`CheckedClock` (a naive reading is a ``ConfigurationError``)."""
        return self._clock

    @clock.setter
    def clock(self, clock: Callable[[], datetime]) -> None:
        self._clock = CheckedClock.of(clock)

    def dispatch_pending(self, limit: int = 100) -> DispatchReport:
        """Deliver due effects, oldest first, at most ``limit``; effects of one return stay in
        order. Effects planned by a delivery (a confirmed refund's notification) are
        delivered in the same call; a failed one waits for its backoff."""
        check_limit(limit)
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
                outcome = self.deliver(entry)
                report = attrs.evolve(
                    report,
                    delivered=report.delivered + (outcome == "done"),
                    failed=report.failed + (outcome == "pending"),
                    given_up=report.given_up + (outcome == "failed"),
                )
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
        """Deliver the due effects of one return, one at a time, in order; results may plan
        more (a label's notification). Stops at the first failure (it waits for its
        back-off)."""
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
            if not claimed or self.deliver(claimed[0]) == "pending":
                return  # nothing due, or a failure waits for its backoff

    def deliver(self, entry: OutboxEntry) -> str:
        """Deliver one claimed effect and write back its outcome; return its new status:
        ``done``, ``pending`` (failed, retried later) or ``failed`` (given up)."""
        effect = entry.effect
        logs.delivering(entry)
        try:
            record = self.store.get(effect.shop, effect.return_id)
            handler = self.handlers.get(type(effect))
            if handler is None:
                raise PortError(
                    "service", effect.kind, "no port handles this effect", retryable=False
                )
            result = handler(self, effect, record)
        except Exception as error:  # a port may raise anything; it must not lose the effect
            retryable = not isinstance(error, PortError) or error.retryable
            policy = self._retry_policy(effect)
            give_up = not retryable or entry.attempts + 1 >= policy.max_attempts
            message = f"{type(error).__name__}: {error}"
            now = self.clock()
            attempt = Attempt(
                effect.key,
                ok=False,
                at=now,
                error=message,
                give_up=give_up,
                retry_at=now + policy.backoff(entry.attempts + 1, self.rng.random()),
            )
            logs.failed(entry, attempt, escalated=give_up and effect.port in _CRITICAL_PORTS)
            if give_up and effect.port in _CRITICAL_PORTS:
                self._write(
                    effect, attempt, lambda change: results.escalate(change, effect, message)
                )
            else:
                commits.record_attempt(self.store, attempt)
            return "failed" if give_up else "pending"
        # Done and written back in one write: a crash in between delivers it again, and the
        # port answers the same key with the same result.
        attempt = Attempt(effect.key, ok=True, at=self.clock(), result=result)
        if type(effect) in results.NEEDS_WRITE_BACK:
            self._write(
                effect, attempt, lambda change: results.apply_result(change, effect, result)
            )
        else:
            commits.record_attempt(self.store, attempt)
        logs.delivered(entry)
        return "done"

    def _after(self, change: Change) -> None:
        policy = self.policy_of(change.record)
        facts.drain(change, policy)
        timer_rules.schedule(change, policy)

    def _write(self, effect: fx.Effect, attempt: Attempt, decide: Callable[[Change], None]) -> None:
        commits.run(
            self.store,
            self.clock,
            self.rng,
            effect.shop,
            effect.return_id,
            "dispatcher",
            decide,
            attempt=attempt,
            outbox=type(effect) in results.NEEDS_OUTBOX,
            heirs=type(effect) in results.FORWARDED,
            after=self._after,
            engine=self.engine,
        )


# -- one handler per effect type ---------------------------------------------------------------


def _required(value: _T | None, field: str, effect: fx.Effect) -> _T:
    if value is None:
        raise PortError(effect.port, effect.kind, f"the return has no {field} yet", retryable=True)
    return value


def _publish(d: Dispatcher, effect: fx.Publish, record: ReturnRecord) -> object:
    event = DomainEvent(
        topic=effect.topic, shop=effect.shop, return_id=effect.return_id, payload=effect.payload
    )
    d.events.publish(event, idempotency_key=effect.key)
    return None


def _notify(d: Dispatcher, effect: fx.Notify, record: ReturnRecord) -> object:
    d.notifier.notify(
        effect.shop, effect.recipient, effect.template, effect.context, idempotency_key=effect.key
    )
    return None


def _create_warehouse_return(
    d: Dispatcher, effect: fx.CreateWarehouseReturn, record: ReturnRecord
) -> object:
    return d.warehouse.create_return(
        effect.shop,
        effect.order_id,
        effect.return_id,
        effect.lines,
        reason=effect.reason,
        action=effect.action,
        idempotency_key=effect.key,
    )


def _cancel_warehouse_return(
    d: Dispatcher, effect: fx.CancelWarehouseReturn, record: ReturnRecord
) -> object:
    rma = _required(record.refs.warehouse_rma_id, "warehouse_rma_id", effect)
    d.warehouse.cancel_return(effect.shop, rma, idempotency_key=effect.key)
    return None


def _create_label(d: Dispatcher, effect: fx.CreateLabel, record: ReturnRecord) -> object:
    return d.carrier.create_label(
        effect.shop, effect.return_id, effect.order_id, idempotency_key=effect.key
    )


def _void_label(d: Dispatcher, effect: fx.VoidLabel, record: ReturnRecord) -> object:
    tracking = _required(record.refs.tracking_number, "tracking_number", effect)
    d.carrier.void_label(effect.shop, tracking, idempotency_key=effect.key)
    return None


def _hold_exchange(d: Dispatcher, effect: fx.HoldExchange, record: ReturnRecord) -> object:
    return d.commerce.add_exchange_items(
        effect.shop,
        effect.order_id,
        effect.items,
        hold_tag=effect.hold_tag,
        idempotency_key=effect.key,
    )


def _release_exchange(d: Dispatcher, effect: fx.ReleaseExchange, record: ReturnRecord) -> object:
    hold = _required(record.refs.exchange_hold_id, "exchange_hold_id", effect)
    if any(
        isinstance(entry.effect, fx.CancelExchange) and entry.status == "failed"
        for entry in d.store.outbox(effect.shop, effect.return_id)
    ):
        # Releasing the hold would ship the items whose cancel never went through.
        raise PortError(
            "service",
            "release_exchange",
            "items of this hold were to be cancelled and were not",
            retryable=False,
        )
    d.commerce.release_exchange(
        effect.shop, effect.order_id, hold, hold_tag=effect.hold_tag, idempotency_key=effect.key
    )
    return None


def _cancel_exchange(d: Dispatcher, effect: fx.CancelExchange, record: ReturnRecord) -> object:
    hold = _required(record.refs.exchange_hold_id, "exchange_hold_id", effect)
    wanted = set(effect.exchange_line_ids)
    items = tuple(
        _required(line.platform_item_id, "platform_item_id", effect)
        for line in record.exchange_lines
        if line.id in wanted
    )
    d.commerce.cancel_exchange_items(
        effect.shop, effect.order_id, hold, items, idempotency_key=effect.key
    )
    return None


def _issue_refund(d: Dispatcher, effect: fx.IssueRefund, record: ReturnRecord) -> object:
    return d.commerce.refund(
        effect.shop, effect.order_id, effect.amount, effect.lines, idempotency_key=effect.key
    )


def _issue_store_credit(d: Dispatcher, effect: fx.IssueStoreCredit, record: ReturnRecord) -> object:
    return d.commerce.issue_store_credit(
        effect.shop, effect.order_id, effect.amount, idempotency_key=effect.key
    )


def _restock(d: Dispatcher, effect: fx.Restock, record: ReturnRecord) -> object:
    d.commerce.restock(effect.shop, effect.order_id, effect.lines, idempotency_key=effect.key)
    return None


def _charge_balance(d: Dispatcher, effect: fx.ChargeBalance, record: ReturnRecord) -> object:
    return d.payments.charge(
        effect.shop, effect.return_id, effect.amount, idempotency_key=effect.key
    )


def _refund_balance(d: Dispatcher, effect: fx.RefundBalance, record: ReturnRecord) -> object:
    return d.payments.refund(
        effect.shop, effect.return_id, effect.amount, idempotency_key=effect.key
    )


def _authorize_payment(d: Dispatcher, effect: fx.AuthorizePayment, record: ReturnRecord) -> object:
    return d.payments.authorize(
        effect.shop, effect.return_id, effect.amount, idempotency_key=effect.key
    )


def _capture_payment(d: Dispatcher, effect: fx.CapturePayment, record: ReturnRecord) -> object:
    authorization = _required(
        record.refs.payment_authorization_id, "payment_authorization_id", effect
    )
    return d.payments.capture(
        effect.shop, effect.return_id, authorization, effect.amount, idempotency_key=effect.key
    )


def _void_authorization(
    d: Dispatcher, effect: fx.VoidAuthorization, record: ReturnRecord
) -> object:
    authorization = _required(
        record.refs.payment_authorization_id, "payment_authorization_id", effect
    )
    d.payments.void(effect.shop, effect.return_id, authorization, idempotency_key=effect.key)
    return None


HANDLERS: Mapping[type[fx.Effect], Handler] = {
    fx.Publish: _publish,
    fx.Notify: _notify,
    fx.CreateWarehouseReturn: _create_warehouse_return,
    fx.CancelWarehouseReturn: _cancel_warehouse_return,
    fx.CreateLabel: _create_label,
    fx.VoidLabel: _void_label,
    fx.HoldExchange: _hold_exchange,
    fx.ReleaseExchange: _release_exchange,
    fx.CancelExchange: _cancel_exchange,
    fx.IssueRefund: _issue_refund,
    fx.IssueStoreCredit: _issue_store_credit,
    fx.Restock: _restock,
    fx.ChargeBalance: _charge_balance,
    fx.RefundBalance: _refund_balance,
    fx.AuthorizePayment: _authorize_payment,
    fx.CapturePayment: _capture_payment,
    fx.VoidAuthorization: _void_authorization,
}
"""The handler of each effect type: which port it calls, with what.

:meta hide-value:
"""
