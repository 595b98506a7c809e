"""The application service: commands and inbound events in, one atomic write each, effects out.

Each command or inbound event:

1. loads the return (scoped to the shop) and checks the request against the derived table;
2. lets a decision (:mod:`returnflow.decisions`) fire the statechart event(s) on a copy, with
   their payloads, and plan the effects;
3. commits the new version, the history, the effects and the inbound id in one write
   (:mod:`returnflow.commits`: a version check, and the decision made again on a conflict);
4. hands the effects to its dispatcher (:mod:`returnflow.dispatch`), now or later through
   :meth:`ReturnsService.dispatch_pending`.

A new return is opened through :mod:`returnflow.opening` (the order, the units its other
returns hold, the commit of the new return with its units).

Nothing is written when a step fails, and no port is called before the write. Timers and
pollers (:mod:`returnflow.timers`) run on :meth:`ReturnsService.tick`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

import attrs

from returnflow import commits, logs
from returnflow import timeline as timelines
from returnflow._shared import Shared
from returnflow.decisions import cancellation, completion, facts, review
from returnflow.decisions import request as requests
from returnflow.decisions import reset as resets
from returnflow.decisions import timers as timer_rules
from returnflow.decisions.change import Change
from returnflow.dispatch import Dispatcher, DispatchReport
from returnflow.domain._evolve import evolve
from returnflow.domain.external import import_details
from returnflow.domain.inbound import INBOUND_FACTS, InboundEvent
from returnflow.domain.model import (
    DeclineReason,
    ExternalRefs,
    OrderSnapshot,
    ReturnRecord,
    ReturnRequest,
)
from returnflow.domain.money import Money
from returnflow.domain.policy import ReturnPolicy
from returnflow.domain.settlement import Settlement
from returnflow.domain.verdicts import Verdict
from returnflow.errors import (
    InvalidPayload,
)
from returnflow.lifecycle.table import TABLE
from returnflow.opening import Decide, Opening
from returnflow.ports.carrier import Carrier
from returnflow.ports.commerce import CommercePlatform
from returnflow.ports.events import EventPublisher
from returnflow.ports.locations import DestinationResolver, StaticDestination
from returnflow.ports.notifier import Notifier
from returnflow.ports.payments import Payments
from returnflow.ports.platform_returns import PlatformReturns
from returnflow.ports.policies import PolicySource
from returnflow.ports.store import InboundKey, ReturnStore
from returnflow.ports.warehouse import Warehouse
from returnflow.timeline import TimelineEntry
from returnflow.timers import Poller, TickReport, Timers

__all__ = [
    "DispatchReport",
    "HandleResult",
    "Poller",
    "ReturnsService",
    "TickReport",
    "TimelineEntry",
]

_V = TypeVar("_V")


def _new_id() -> str:
    return f"ret_{uuid.uuid4().hex[:16]}"


@attrs.frozen
class HandleResult:
    """What became of an inbound event: ``applied``, ``parked`` (the return cannot use it
    yet; it is applied when it can), ``duplicate`` or ``ignored`` (it never will; ``reason``
    says why)."""

    status: str
    record: ReturnRecord
    reason: str = ""


class ReturnsService:
    """Runs returns for a host: construct it once with the host's ports (the composition root).

    The store, the ports, the policy, the clock, ``worker_id`` and ``lease`` are shared with
    :attr:`dispatcher`, the outbox relay that delivers what the service commits
    (:class:`~returnflow.dispatch.Dispatcher`; ``platform_returns`` is needed in native mode).
    ``clock`` returns the time, aware (default: UTC now); ``ids`` a new return's id. ``engine``
    fires chart events with the compiled chart (``"compiled"``, the default) or the
    python-statemachine chart itself (``"chart"``; :mod:`returnflow.lifecycle.engine`);
    another name raises :class:`~returnflow.errors.ConfigurationError`. See the README for a
    worked example; :mod:`returnflow.testing` has fakes of every port. ``destinations``
    routes each returned line to a location (default: the shop's default location;
    :mod:`returnflow.ports.locations`).
    """

    store: Shared[ReturnStore] = Shared()
    commerce: Shared[CommercePlatform] = Shared()
    warehouse: Shared[Warehouse] = Shared()
    carrier: Shared[Carrier] = Shared()
    payments: Shared[Payments] = Shared()
    notifier: Shared[Notifier] = Shared()
    events: Shared[EventPublisher] = Shared()
    policy: Shared[ReturnPolicy] = Shared()
    policies: Shared[PolicySource] = Shared()
    clock: Shared[Callable[[], datetime]] = Shared()
    worker_id: Shared[str] = Shared()
    lease: Shared[timedelta] = Shared()
    engine: Shared[str] = Shared()

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
        ids: Callable[[], str] | None = None,
        auto_dispatch: bool = True,
        worker_id: str | None = None,
        lease: timedelta = timedelta(minutes=5),
        jitter_seed: int | None = None,
        engine: str = "compiled",
        policies: PolicySource | None = None,
        platform_returns: PlatformReturns | None = None,
        destinations: DestinationResolver | None = None,
    ) -> None:
        self.dispatcher = Dispatcher(
            store=store,
            commerce=commerce,
            warehouse=warehouse,
            carrier=carrier,
            payments=payments,
            notifier=notifier,
            events=events,
            policy=policy,
            clock=clock,
            worker_id=worker_id,
            lease=lease,
            jitter_seed=jitter_seed,
            engine=engine,
            policies=policies,
            platform_returns=platform_returns,
        )
        self.ids = ids or _new_id
        self.destinations: DestinationResolver = destinations or StaticDestination()
        self.auto_dispatch = auto_dispatch
        self.timers = Timers(self)
        self.opening = Opening(self)

    def register_poller(self, poller: Poller) -> None:
        """Have every :meth:`tick` call ``poller.poll(now)`` (an importer polling its source;
        it runs only when its interval has elapsed). The worker ticks, so it polls too."""
        self.timers.pollers.append(poller)

    # -- reads: never build a machine ---------------------------------------------------------

    def get(self, shop: str, return_id: str) -> ReturnRecord:
        return self.store.get(shop, return_id)

    def list(
        self,
        shop: str,
        *,
        order_id: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> Sequence[ReturnRecord]:
        """The shop's returns (of one order), oldest first, a keyset page at a time: at most
        ``limit``, starting after the return ``after`` (see
        :meth:`ReturnStore.list <returnflow.ports.store.ReturnStore.list>`)."""
        return self.store.list(shop, order_id=order_id, after=after, limit=limit)

    @staticmethod
    def allowed_events(record: ReturnRecord) -> tuple[str, ...]:
        """Events the chart allows for ``record`` (from the derived table)."""
        return TABLE.allowed(record.state)

    def timeline(self, shop: str, return_id: str) -> Sequence[TimelineEntry]:
        """State changes and effects of one return, in the order they happened."""
        return timelines.timeline(self.store, shop, return_id)

    def render_timeline(self, shop: str, return_id: str) -> str:
        """The timeline as text: a header, then ``*`` for state changes, ``->`` for effects."""
        return timelines.render(self.store, shop, return_id)

    # -- opening a return ----------------------------------------------------------------------

    def validate_request(self, request: ReturnRequest) -> None:
        """Check ``request`` as :meth:`request` and :meth:`quote` do, without storing
        anything: against the order and the units other returns hold, the shop's rules
        (outcomes, evidence, :class:`~returnflow.errors.MethodNotOffered` for a method the
        shop or a rule leaves out) and each line's destination, from a rule or the
        destination resolver (:class:`~returnflow.errors.UnknownLocation` naming
        ``lines[i].location_id``). A request it accepts is refused by :meth:`request` only
        for what changed in between (units taken, the order, the policy, the locations)."""
        self.opening.prepare(request, lambda: "validate")

    def quote(self, request: ReturnRequest) -> Settlement:
        """What ``request`` would settle to if every unit came back accepted: refund, credit,
        fees, exchange balance and ERP documents (like Shopify's ``returnCalculate``).
        Nothing is stored."""
        order, _, lines, exchange_lines, policy, verdict = self.opening.prepare(
            request, lambda: "quote"
        )
        return requests.quote(order, lines, exchange_lines, policy, verdict, request.method)

    def request(self, request: ReturnRequest, *, actor: str | None = None) -> ReturnRecord:
        """Open a return: validate it, check eligibility, approve, review or decline it.

        The units it takes are written in the same commit as the return (the order-level
        ledger): when another return took one of them first, the request is checked again
        against what is left, and refused with :class:`~returnflow.errors.InvalidQuantity`
        (naming the line and what is left) when too few are."""

        def decide(order: OrderSnapshot, change: Change, value: Money, verdict: Verdict) -> None:
            policy = self._policy(change)
            requests.requested(change, order, request, policy, value=value, verdict=verdict)

        return self._open(request, self.ids, decide, actor=actor)

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

        ``request`` is checked against the order as :meth:`request` checks it (the same typed
        errors; nothing stored), but what the source decided is not decided again: no window,
        final-sale, condition, review or value rule applies and no label is bought. The
        warehouse expectation, an exchange hold or balance, messages and events follow as
        for any approval, and it expires like any other return. It is stored under
        ``return_id`` with ``refs.source`` / ``refs.source_return_id`` and an ``imported``
        history entry (with ``details``: JSON data, else
        :class:`~returnflow.errors.InvalidPayload` naming where); a ``return_id`` already
        stored raises :class:`~returnflow.errors.ConcurrencyConflict` and changes nothing.
        """
        if not isinstance(request, ReturnRequest):
            raise InvalidPayload("request", request, "must be a ReturnRequest")
        extra = import_details(details)
        commits.check_unused(self.store, request.shop, return_id)

        def decide(order: OrderSnapshot, change: Change, value: Money, _: Verdict) -> None:
            policy = self._policy(change)
            requests.imported(change, policy, source=source, external_id=external_id)

        return self._open(
            request,
            lambda: return_id,
            decide,
            actor=source,
            refs=ExternalRefs(source=source, source_return_id=external_id),
            imported={"source": source, "external_id": external_id, **extra},
        )

    # -- commands on a return ------------------------------------------------------------------

    def approve(self, shop: str, return_id: str, *, actor: str = "agent") -> ReturnRecord:
        """An agent approves a return under review (or resumes one that needed review)."""
        return self._run(
            shop, return_id, actor, lambda c: requests.approve(c, self._policy(c)), outbox=True
        )

    def decline(
        self,
        shop: str,
        return_id: str,
        reason: DeclineReason | str = DeclineReason.OTHER,
        *,
        note: str = "",
        actor: str = "agent",
    ) -> ReturnRecord:
        why = requests.decline_reason(reason)
        return self._run(shop, return_id, actor, lambda c: requests.decline(c, why, note))

    def cancel(self, shop: str, return_id: str, *, actor: str = "customer") -> ReturnRecord:
        """Cancel a return before anything was shipped or received."""
        return self._run(
            shop, return_id, actor, lambda c: cancellation.cancel(c, self._policy(c)), outbox=True
        )

    def issue_label(self, shop: str, return_id: str, *, actor: str = "agent") -> ReturnRecord:
        """Buy a (new) return label; it is sent to the customer when the carrier returns it."""
        return self._run(shop, return_id, actor, requests.issue_label)

    def flag(self, shop: str, return_id: str, reason: str, *, actor: str = "agent") -> ReturnRecord:
        """Send a return to ``needs_review`` for a person to look at."""
        return self._run(shop, return_id, actor, lambda c: review.flag(c, reason))

    def close(
        self,
        shop: str,
        return_id: str,
        *,
        actor: str = "agent",
        unreceived: str | None = None,
        exchange: str | None = None,
    ) -> ReturnRecord:
        """Complete a return by hand: settle every accepted unit not yet settled, then close.
        Units not received and accepted need ``unreceived`` (refund, store_credit, nothing);
        an exchange they leave uncovered needs ``exchange`` (release, cancel)."""

        def decide(change: Change) -> None:
            completion.close_by_hand(
                change, self._policy(change), unreceived=unreceived, exchange_decision=exchange
            )

        return self._run(shop, return_id, actor, decide)

    def reopen(
        self, shop: str, return_id: str, *, reason: str = "", actor: str = "agent"
    ) -> ReturnRecord:
        """Reopen a closed return; it waits in ``needs_review`` for what comes next."""
        return self._run(shop, return_id, actor, lambda c: review.reopen(c, reason))

    def reset(
        self, shop: str, return_id: str, *, actor: str = "agent"
    ) -> tuple[ReturnRecord, ReturnRecord]:
        """Partial receipt (seed 000): close this return as ``reset`` and open a new one that
        holds only the accepted units, linked both ways. Returns ``(old, new)``."""

        def decide(change: Change) -> Change:
            resets.check(change)  # before an id is taken
            return resets.reset(change, self._policy(change), self.ids())

        written = self._write(shop, return_id, actor, decide, outbox=True, opened=lambda c: (c,))
        logs.changed(written.record, actor, written.written)
        self._after_commit(shop, written)
        return self.store.get(shop, return_id), self.store.get(shop, written.written[-1])

    def retry_exchange_release(
        self, shop: str, return_id: str, *, actor: str = "system"
    ) -> ReturnRecord:
        """Seed 000, "the exchange isn't released": ask the platform where the hold really is
        and release it again if it is still held."""
        record = self.store.get(shop, return_id)
        hold_id = timer_rules.released_hold(record)
        status = self.commerce.exchange_hold_status(shop, record.order_id, hold_id)
        return self._run(
            shop,
            return_id,
            actor,
            lambda c: timer_rules.check_release(c, self._policy(c), status),
            outbox=True,
        )

    def expire(self, shop: str, return_id: str, *, actor: str = "timer") -> ReturnRecord:
        """An approved return that was never shipped expires: its label is voided, the
        warehouse stops expecting it, a held exchange is cancelled and a paid balance given
        back."""
        return self._run(
            shop, return_id, actor, lambda c: timer_rules.expire(c, self._policy(c)), outbox=True
        )

    def run_due(
        self, shop: str, return_id: str, *, now: datetime | None = None, actor: str = "timer"
    ) -> ReturnRecord:
        """Do what a timer has due for one return at ``now`` (:meth:`tick` calls it): expire
        it, capture an instant exchange's authorization, or send a stuck return to a person."""

        def decide(change: Change) -> None:
            timer_rules.on_due(change, self._policy(change), now)

        return self._run(shop, return_id, actor, decide, outbox=True)

    def tick(self, now: datetime | None = None, *, limit: int = 1000) -> TickReport:
        """Run the timers due at ``now``: expire approved returns never shipped within
        ``policy.ship_within_days`` of approval, and check released exchanges the platform
        may not have honoured (seed 000), releasing them again while still held; then poll
        every registered :class:`Poller` (importers), each when its interval has elapsed."""
        return self.timers.tick(now, limit=limit)

    # -- inbound events ------------------------------------------------------------------------

    def handle(self, event: InboundEvent) -> HandleResult:
        """Apply an inbound fact once. A repeat (same source and id) is a ``duplicate``; a fact
        that came early is ``parked`` and applied when the return can use it
        (:mod:`returnflow.decisions.facts`); one the return will never use is recorded and
        ``ignored``; bad data raises."""
        if not isinstance(event, INBOUND_FACTS):
            raise InvalidPayload("event", event, "must be a carrier, warehouse or platform fact")
        key = InboundKey(shop=event.shop, source=event.source, event_id=event.event_id)

        def decide(change: Change) -> tuple[str, str]:
            return facts.receive(change, event=event, policy=self._policy(change))

        written = self._write(event.shop, event.return_id, event.source, decide, inbound=key)
        if written.duplicate:
            logs.fact(event, "duplicate", "", written.record)
            return HandleResult("duplicate", written.record, f"{event.source}:{event.event_id}")
        status, reason = written.value or ("applied", "")
        logs.fact(event, status, reason, written.record)
        claimed = written.claimed if written.effects else None  # none planned: what is due
        delivered = self._after_commit(event.shop, evolve(written, claimed=claimed))
        return HandleResult(status, delivered.get(event.return_id, written.record), reason)

    # -- effect dispatch -----------------------------------------------------------------------

    def dispatch_pending(self, limit: int = 100) -> DispatchReport:
        """Deliver due effects, oldest first, at most ``limit``; effects of one return stay in
        order. Effects planned by a delivery (a confirmed refund's notification) are
        delivered in the same call; a failed one waits for its backoff."""
        return self.dispatcher.dispatch_pending(limit)

    # -- plumbing ------------------------------------------------------------------------------

    def _open(
        self, request: ReturnRequest, new_id: Callable[[], str], decide: Decide, **how: Any
    ) -> ReturnRecord:
        """Open a return (:meth:`Opening.open <returnflow.opening.Opening.open>`), dispatch."""
        opened = self.opening.open(request, new_id, decide, claim=self._lease, **how)
        return self._after_commit(opened.record.shop, opened).get(opened.record.id, opened.record)

    def _run(
        self,
        shop: str,
        return_id: str,
        actor: str,
        decide: Callable[[Change], None],
        *,
        outbox: bool = False,
    ) -> ReturnRecord:
        """Load, decide, commit with a version check (again on a conflict), dispatch."""
        written = self._write(shop, return_id, actor, decide, outbox=outbox)
        logs.changed(written.record, actor, written.written)
        delivered = self._after_commit(shop, written) if written.effects else {}
        return delivered.get(return_id, written.record)  # as the deliveries left it

    def _write(
        self, shop: str, return_id: str, actor: str, decide: Callable[[Change], _V], **how: Any
    ) -> commits.Written[_V]:
        """:func:`returnflow.commits.run` with this service's store, clock, jitter and engine;
        after the decision, the dispatcher's
        :meth:`~returnflow.resolving.PolicyResolution.drain`."""
        return commits.run(
            self.store,
            self.clock,
            self.dispatcher.rng,
            shop,
            return_id,
            actor,
            decide,
            after=self.dispatcher.drain,
            engine=self.engine,
            claim=self._lease,
            **how,
        )

    @property
    def _lease(self) -> commits.Claim | None:  # a commit claims what this process delivers
        dispatcher = self.dispatcher
        return dispatcher.lease_for if self.auto_dispatch and not dispatcher.hand_off else None

    def _policy(self, of: str | Change) -> ReturnPolicy:
        """A shop's policy in force, or the one a return (being changed) was opened under."""
        dispatcher = self.dispatcher
        return dispatcher.policy_for(of) if isinstance(of, str) else dispatcher.policy_of(of.record)

    def _after_commit(self, shop: str, written: commits.Written[Any]) -> dict[str, ReturnRecord]:
        """Deliver what a commit claimed; the returns as the deliveries left them, by id."""
        return self.dispatcher.deliver_written(shop, written) if self.auto_dispatch else {}
