"""Opening a return: the write path of a return that is not stored yet.

:class:`Opening` reads the order from the platform and the units the order's other returns
hold (the order-level ledger), checks the request and builds its lines
(:mod:`returnflow.decisions.request`), lets a decision assess the new return, and commits it
with its units (:func:`returnflow.commits.commit_new`). When another return took one of the
units in between (:class:`~returnflow.errors.UnitsTaken`), the request is checked again
against what is left, under the same id. ``ReturnsService.request``,
``ReturnsService.import_return``, ``ReturnsService.quote`` and
``ReturnsService.validate_request`` are the way in.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from returnflow import commits, logs
from returnflow.decisions import _platform_balance, merchant, platform
from returnflow.decisions import request as requests
from returnflow.decisions import timers as timer_rules
from returnflow.decisions.change import Change
from returnflow.domain._time import EARLIEST
from returnflow.domain.destinations import check_location, route
from returnflow.domain.ledger import claimed_units
from returnflow.domain.model import (
    ExchangeLine,
    ExternalRefs,
    OrderSnapshot,
    ReturnLine,
    ReturnRequest,
)
from returnflow.domain.money import Money
from returnflow.domain.policy import PlatformMode, ReturnPolicy
from returnflow.domain.verdicts import Verdict, check_method, needed_windows
from returnflow.errors import (
    ConcurrencyConflict,
    InvalidPayload,
    InvalidRequest,
    PortError,
    UnitsTaken,
    UnknownOrder,
)
from returnflow.lifecycle.engine import using
from returnflow.ports.platform_returns import PlatformReturn
from returnflow.ports.store import count_customer_returns

if TYPE_CHECKING:
    from returnflow.service import ReturnsService

__all__ = ["Decide", "Opening"]

Decide = Callable[[OrderSnapshot, Change, Money, Verdict], None]
"""A decision on a new return: the order, the new return's change, the value of its lines
(for the review threshold) and what the shop's rules decided in; it fires the chart events
and plans the effects."""


def _since(now: datetime, days: int) -> datetime:
    """``days`` days before ``now``, or the earliest time a store keeps when that is
    before it (a window longer than the stores' calendar counts every return)."""
    if days > (now - EARLIEST).days:
        return EARLIEST
    return now - timedelta(days=days)


class Opening:
    """How one service opens returns: with its store, commerce port, policy, clock, jitter
    and chart engine."""

    def __init__(self, service: ReturnsService) -> None:
        self.service = service

    def order(self, request: ReturnRequest) -> OrderSnapshot:
        """The order from the platform; a definite "no such order" is the caller's error
        (:class:`~returnflow.errors.UnknownOrder`), a retryable failure goes up as is."""
        try:
            return self.service.commerce.get_order(request.shop, request.order_id)
        except PortError as error:
            if error.retryable:
                raise
            raise UnknownOrder("order_id", request.order_id, str(error)) from error

    def platform_return(self, request: ReturnRequest) -> PlatformReturn | None:
        """The platform return a request adopts (``platform_return_id``, native mode), read
        from the platform: whether it holds the exchange, what is owed and paid there. One
        the platform does not have, or of another order, is the caller's error
        (:class:`~returnflow.errors.InvalidRequest` naming ``platform_return_id``); a
        retryable failure goes up as is. ``None``: nothing to read."""
        wanted = request.platform_return_id
        dispatcher = self.service.dispatcher
        port = dispatcher.platform_returns
        native = dispatcher.policy_for(request.shop).platform_mode is PlatformMode.NATIVE
        if wanted is None or port is None or not native or request.claim is not None:
            return None
        try:
            read = port.get_return(request.shop, wanted)
        except PortError as error:
            if error.retryable:
                raise
            raise InvalidRequest("platform_return_id", wanted, str(error)) from error
        if read.order_id != request.order_id:
            raise InvalidRequest(
                "platform_return_id", wanted, f"a return of order {read.order_id}, not this one"
            )
        return read

    def claimed(
        self, request: ReturnRequest, refused: Sequence[UnitsTaken] = ()
    ) -> dict[str, set[int]]:
        """The units of the order the stored returns hold, by order line id; with the units
        a commit was ``refused`` for, when the return holding them is not among those the
        listing could read (a damaged row the listing skips: the store's ledger still
        counts it)."""
        listing = self.service.store.list(request.shop, order_id=request.order_id)
        claimed = claimed_units(listing)
        listed = {record.id for record in listing}
        for taken in refused:
            if taken.held_by not in listed:
                for line_id, unit in taken.units:
                    claimed.setdefault(line_id, set()).add(unit)
        return claimed

    def customer_returns(
        self, order: OrderSnapshot, policy: ReturnPolicy, now: datetime
    ) -> dict[int, int]:
        """The customer's returns in the shop (by the order's e-mail) in each window of days
        the shop's rules ask about (:func:`~returnflow.domain.rules.needed_windows`), one
        indexed count per window
        (:meth:`~returnflow.ports.store.ReturnStore.count_customer_returns` says what
        counts); none asked, or an order without an e-mail, no read."""
        windows = needed_windows(policy.rules)
        if not windows or order.customer_email is None:
            return dict.fromkeys(windows, 0)
        return {
            days: count_customer_returns(
                self.service.store, order.shop, order.customer_email, since=_since(now, days)
            )
            for days in windows
        }

    def prepare(
        self,
        request: ReturnRequest,
        new_id: Callable[[], str],
        refused: Sequence[UnitsTaken] = (),
        *,
        judge: bool = True,
    ) -> tuple[
        OrderSnapshot, str, Sequence[ReturnLine], Sequence[ExchangeLine], ReturnPolicy, Verdict
    ]:
        """Check ``request`` (typed errors, nothing stored) under its shop's policy in force,
        then take an id, build its lines and (``judge``) apply the shop's rules
        (:func:`~returnflow.decisions.merchant.judge`): ``(order, return_id, lines,
        exchange_lines, policy, verdict)``; ``refused``: see :meth:`claimed`."""
        if not isinstance(request, ReturnRequest):
            raise InvalidPayload("request", request, "must be a ReturnRequest")
        order = self.order(request)
        policy = self.service.dispatcher.policy_for(request.shop)
        claimed = self.claimed(request, refused)
        requests.check(order, request, claimed, policy)
        return_id = new_id()
        lines, exchange_lines = requests.build_lines(order, request, claimed, return_id, policy)
        verdict = Verdict()
        if judge and policy.rules:
            now = self.service.clock()
            counts = self.customer_returns(order, policy, now)
            lines, verdict = merchant.judge(
                order, request, lines, policy, now=now, customer_returns=counts
            )
        if judge and request.claim is None:  # a claim ships nothing back
            check_method(request.method, policy.return_methods, verdict)
        lines = self.route(order, lines, verdict)
        return order, return_id, lines, exchange_lines, policy, verdict

    def route(
        self, order: OrderSnapshot, lines: Sequence[ReturnLine], verdict: Verdict
    ) -> list[ReturnLine]:
        """``lines`` each with the location it goes back to: a firing rule's
        ``destination``, else the service's destination resolver's; a blank one, or one not
        among the shop's locations, is :class:`~returnflow.errors.UnknownLocation` naming
        ``lines[i].location_id`` (:mod:`returnflow.domain.destinations`)."""
        resolver = self.service.destinations
        known: Collection[str] | None = None
        chosen: list[str | None] = []
        for index, line in enumerate(lines):
            if not line.requires_receipt:  # kept or claimed: nothing goes anywhere
                chosen.append(None)
                continue
            if known is None:
                known = resolver.locations(order.shop)
            path = f"lines[{index}].location_id"
            ruled = verdict.destination.get(line.order_line_id)
            if ruled is not None:
                where = check_location(path, ruled[0], known, f"rule {ruled[1]!r}")
            else:
                given = resolver.destination(order.shop, order, line)
                where = check_location(path, given, known, "the destination resolver")
            chosen.append(where)
        return route(lines, chosen)

    def open(
        self,
        request: ReturnRequest,
        new_id: Callable[[], str],
        decide: Decide,
        *,
        actor: str | None,
        refs: ExternalRefs | None = None,
        imported: Mapping[str, Any] | None = None,
        claim: commits.Claim | None = None,
    ) -> commits.Written[None]:
        """Check the request, build the new return, let ``decide`` assess it, commit it with
        its units (taking ``claim`` of what it planned) and return it as committed, with what
        was claimed (nothing is dispatched here). On
        :class:`~returnflow.errors.UnitsTaken` check again against what is left, under the
        same id; when another return was stored under its id first, check again under a new
        id from ``new_id`` (the loser of a race sees what a request made after the winner
        sees: :class:`~returnflow.errors.InvalidQuantity` when its units are gone), or raise
        the :class:`~returnflow.errors.ConcurrencyConflict` when ``new_id`` gives the same id
        again (an id the caller chose); :class:`~returnflow.errors.ConcurrencyConflict` when
        units kept being taken :data:`~returnflow.commits.CONFLICT_RETRIES` times."""
        service = self.service
        taken: list[str] = []
        refused: list[UnitsTaken] = []
        read = self.platform_return(request) if isinstance(request, ReturnRequest) else None

        def same_id() -> str:
            if not taken:
                taken.append(new_id())
            return taken[0]

        for tries in range(commits.CONFLICT_RETRIES):
            order, return_id, lines, exchange_lines, policy, verdict = self.prepare(
                request, same_id, refused, judge=imported is None
            )
            change, value = requests.open_return(
                order,
                request,
                lines,
                exchange_lines,
                return_id,
                now=service.clock(),
                actor=actor or request.requested_by,
                refs=refs,
                imported=imported,
                policy_version=policy.version,
                verdict=verdict,
            )
            if read is not None:  # the platform's hold and money, before deciding
                _platform_balance.note_read(change, read)
            with using(service.engine):
                decide(order, change, value, verdict)
                platform.plan(change, service.dispatcher.policy_of(change.record))
            timer_rules.schedule(change, service.dispatcher.policy_of(change.record))
            try:
                record, claimed = commits.commit_new(service.store, change, claim)
            except UnitsTaken as error:
                refused.append(error)
                commits.back_off(service.dispatcher.rng, tries)
                continue
            except ConcurrencyConflict:
                # another writer stored a return under this id first: with a new id, decide
                # again on what is stored now (its units may be gone, as they would be for a
                # request made after it); an id the caller chose stays taken
                fresh = new_id()
                if fresh == return_id:
                    raise
                taken[:] = [fresh]
                continue
            logs.opened(record, change.actor)
            return commits.Written(record, (record.id,), bool(change.effects), claimed=claimed)
        raise ConcurrencyConflict(taken[0] if taken else "", 0, 1, "units kept being taken")
