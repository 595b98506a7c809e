"""In-memory fakes of every port, for tests of code that drives returnflow.

Each fake satisfies its port's ``Protocol`` and behaves like a careful real system: it
honours idempotency keys (a repeated key returns the first result and changes nothing, a key
reused with other arguments is refused), refuses what a real system refuses (an unknown
order, a refund above what was paid, an amount in another currency) with a
:class:`~returnflow.errors.PortError`, and keeps state a test can inspect. Every call is
recorded in :attr:`FakePort.calls`, every fake can be told to fail with
:meth:`FakePort.fail` and :meth:`FakePort.fail_rate`, to answer slowly with
:meth:`FakePort.delay` (a real ``time.sleep``, for timeouts and overlapping calls), and to
behave again with :meth:`FakePort.heal`.

A repeated idempotency key replays the first result:

>>> from returnflow.testing import FakeCarrier
>>> carrier = FakeCarrier()
>>> label = carrier.create_label("shop-1", "ret-1", "order-1", idempotency_key="label-1")
>>> label.tracking_number
'TRK000001'
>>> again = carrier.create_label("shop-1", "ret-1", "order-1", idempotency_key="label-1")
>>> again is label, len(carrier.labels)
(True, 1)
>>> [call.outcome for call in carrier.calls]
['ok', 'replayed']
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar, cast

import attrs

from returnflow.domain._time import parse_iso
from returnflow.domain.external import ExternalReturn, imported_return_id
from returnflow.domain.methods import ReturnMethod
from returnflow.domain.model import OrderSnapshot
from returnflow.domain.money import Money
from returnflow.errors import PortError, ValidationError
from returnflow.ports.carrier import Label
from returnflow.ports.commerce import (
    CreditReceipt,
    ExchangeHold,
    ExchangeItem,
    HoldStatus,
    LineQuantity,
    RefundReceipt,
)
from returnflow.ports.events import DomainEvent
from returnflow.ports.payments import PaymentReceipt
from returnflow.ports.source import SourcePage, SourceRejection
from returnflow.ports.warehouse import WarehouseReturn
from returnflow.serialization import external_return_from_dict

__all__ = [
    "AuthorizationState",
    "Call",
    "CallOutcome",
    "ExchangeLineStatus",
    "FakeCarrier",
    "FakeCommercePlatform",
    "FakeCredit",
    "FakeEventPublisher",
    "FakeExchangeLine",
    "FakeLabel",
    "FakeMessage",
    "FakeNotifier",
    "FakePayment",
    "FakePayments",
    "FakePort",
    "FakePorts",
    "FakeRefund",
    "FakeRestock",
    "FakeReturnSource",
    "FakeWarehouse",
    "FakeWarehouseReturn",
]

T = TypeVar("T")

CallOutcome = Literal["ok", "replayed", "failed"]
"""How a recorded call ended: done, answered from an earlier call with the same key, or
raised."""

ExchangeLineStatus = Literal["on_hold", "unfulfilled", "cancelled"]
"""The platform status of an exchange line added to an order."""

AuthorizationState = Literal["authorized", "captured", "voided"]
"""The state of a payment authorization of :class:`FakePayments`."""

_KEY_REUSED = "idempotency key reused with other arguments"


def _check_times(times: object) -> None:
    """``times`` of a script: a whole number of at least 1, or ``None`` (every call)."""
    if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
        raise ValueError(f"times must be a whole number of at least 1 or None, not {times!r}")


@attrs.frozen
class Call:
    """One call a fake received.

    ``args`` are the call's arguments by name (sequences as tuples, mappings as dicts),
    without the idempotency key, which is in ``idempotency_key`` (``None`` for reads).
    """

    operation: str
    args: dict[str, Any] = attrs.field(hash=False)
    idempotency_key: str | None
    outcome: CallOutcome


@attrs.define
class _FailureScript:
    operation: str | None
    error: Exception | None
    remaining: int | None = None
    rate: float = 1.0
    rng: random.Random | None = None

    def fires(self, operation: str) -> bool:
        if self.operation is not None and self.operation != operation:
            return False
        if self.rng is not None:
            return self.rng.random() < self.rate
        if self.remaining is not None:
            if self.remaining <= 0:
                return False
            self.remaining -= 1
        return True

    @property
    def exhausted(self) -> bool:
        return self.remaining is not None and self.remaining <= 0


class _Counted:
    """A script for the next ``remaining`` calls of ``operation`` (``None``: every one / any
    operation)."""

    operation: str | None
    remaining: int | None

    def fires(self, operation: str) -> bool:
        if self.operation is not None and self.operation != operation:
            return False
        if self.remaining is not None:
            if self.remaining <= 0:
                return False
            self.remaining -= 1
        return True

    @property
    def exhausted(self) -> bool:
        return self.remaining is not None and self.remaining <= 0


@attrs.define
class _LostAnswerScript(_Counted):
    operation: str | None
    remaining: int | None


@attrs.define
class _DelayScript(_Counted):
    operation: str | None
    seconds: float
    remaining: int | None = None


class FakePort:
    """Base of every fake: call recording, idempotency keys, scripted failures and delays.

    Subclasses name their port in :attr:`port` and list what can be called in
    :attr:`operations`. All state is guarded by one lock, so a fake may be shared by threads.
    """

    port: ClassVar[str] = "port"
    """The port name used in :class:`~returnflow.errors.PortError`."""

    operations: ClassVar[frozenset[str]] = frozenset()
    """The operations this fake records and can be told to fail."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[Call] = []
        self._scripts: list[_FailureScript] = []
        self._delays: list[_DelayScript] = []
        self._lost: list[_LostAnswerScript] = []
        self._results: dict[str, tuple[str, dict[str, Any], object]] = {}
        self._counters: dict[str, int] = {}

    # -- inspection ------------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        """Every call so far, in order, with its outcome (a copy)."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, operation: str) -> list[Call]:
        """The calls of one operation, in order."""
        self._check_operation(operation)
        with self._lock:
            return [call for call in self._calls if call.operation == operation]

    # -- failure scripts -------------------------------------------------------------------

    def fail(
        self,
        operation: str | None = None,
        *,
        times: int | None = 1,
        error: Exception | None = None,
    ) -> None:
        """Make the next ``times`` calls of ``operation`` raise (``None``: every call / any one).

        The default error is a retryable ``PortError(port, operation, "injected failure")``.
        A failed call has no effect and stores no result for its idempotency key.
        """
        if operation is not None:
            self._check_operation(operation)
        _check_times(times)
        if error is not None and not isinstance(error, Exception):
            raise ValueError(f"error must be an exception to raise or None, not {error!r}")
        with self._lock:
            self._scripts.append(_FailureScript(operation, error, remaining=times))

    def fail_rate(self, rate: float, *, seed: int, operation: str | None = None) -> None:
        """Fail a ``rate`` fraction of calls (of ``operation``, or any), reproducibly.

        Which calls fail is drawn from ``random.Random(seed)``: the same seed and the same
        sequence of calls give the same failures. ``0`` never fails, ``1`` always does.
        """
        if operation is not None:
            self._check_operation(operation)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            raise ValueError(f"rate must be a number between 0 and 1, not {rate!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(
                f"seed must be a whole number (the failures repeat with it), not {seed!r}"
            )
        with self._lock:
            self._scripts.append(
                _FailureScript(operation, None, rate=rate, rng=random.Random(seed))
            )

    def lose_answers(self, operation: str | None = None, *, times: int | None = 1) -> None:
        """Make the next ``times`` calls of ``operation`` that act (``None``: every one / any
        operation) lose their answer: the call does what it was asked, keeps its result for
        its idempotency key and is recorded ``"ok"``, and then raises a retryable
        ``PortError(port, operation, "timed out")``, as when a connection drops after the
        other side acted. A retry under the same key is answered from the kept result
        (``"replayed"``); a call answered from an earlier key or refused does not count.

        >>> from returnflow.testing import FakeWarehouse
        >>> warehouse = FakeWarehouse()
        >>> warehouse.lose_answers("cancel_return", times=2)
        >>> warehouse.heal()  # answers arrive again
        """
        if operation is not None:
            self._check_operation(operation)
        _check_times(times)
        with self._lock:
            self._lost.append(_LostAnswerScript(operation, remaining=times))

    def delay(
        self, seconds: float, operation: str | None = None, *, times: int | None = None
    ) -> None:
        """Make the next ``times`` calls of ``operation`` (``None``: every call / any one)
        sleep ``seconds`` before they answer.

        The sleep is a real :func:`time.sleep`, taken before the call does anything (also
        before a scripted failure is raised) and outside the fake's lock, so calls from other
        threads go on meanwhile: use small values, to exercise timeouts and overlapping
        calls. Delays add up when several are in force. :meth:`heal` ends them all.

        >>> from returnflow.testing import FakeWarehouse
        >>> warehouse = FakeWarehouse()
        >>> warehouse.delay(0.01, "cancel_return", times=2)
        >>> warehouse.heal()  # no delay any more
        """
        if operation is not None:
            self._check_operation(operation)
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, (int, float))
            or not 0 <= seconds < math.inf
        ):
            raise ValueError(f"seconds must be a finite number of at least 0, not {seconds!r}")
        _check_times(times)
        with self._lock:
            self._delays.append(_DelayScript(operation, float(seconds), remaining=times))

    def heal(self) -> None:
        """Forget every failure, lost-answer and delay script: calls succeed again, at once."""
        with self._lock:
            self._heal_locked()

    def _heal_locked(self) -> None:
        self._scripts.clear()
        self._delays.clear()
        self._lost.clear()

    # -- machinery for subclasses ----------------------------------------------------------

    def _check_operation(self, operation: str) -> None:
        if operation not in self.operations:
            known = ", ".join(sorted(self.operations))
            raise ValueError(
                f"{type(self).__name__} has no operation {operation!r}; known: {known}"
            )

    def _refuse(self, operation: str, message: str) -> PortError:
        return PortError(self.port, operation, message, retryable=False)

    def _next_id(self, kind: str) -> int:
        number = self._counters.get(kind, 0) + 1
        self._counters[kind] = number
        return number

    def _injected_failure(self, operation: str) -> Exception | None:
        for script in self._scripts:
            if script.fires(operation):
                if script.exhausted:
                    self._scripts.remove(script)
                if script.error is not None:
                    return script.error
                return PortError(self.port, operation, "injected failure", retryable=True)
        return None

    def _take_delay(self, operation: str) -> float:
        """How long this call of ``operation`` sleeps; counts it against the delay scripts."""
        with self._lock:
            seconds = 0.0
            for script in list(self._delays):
                if script.fires(operation):
                    seconds += script.seconds
                    if script.exhausted:
                        self._delays.remove(script)
            return seconds

    def _record(
        self, operation: str, args: dict[str, Any], key: str | None, outcome: CallOutcome
    ) -> None:
        self._calls.append(Call(operation, dict(args), key, outcome))

    def _invoke(
        self,
        operation: str,
        args: dict[str, Any],
        key: str | None,
        effect: Callable[[], T],
    ) -> T:
        """Run ``effect`` under the lock, with failures, idempotency and recording.

        ``effect`` must check everything before it changes anything, so that raising leaves
        the fake as it was. A scripted :meth:`delay` is slept first, outside the lock.
        """
        seconds = self._take_delay(operation)
        if seconds > 0:
            time.sleep(seconds)
        with self._lock:
            error = self._injected_failure(operation)
            if error is not None:
                self._record(operation, args, key, "failed")
                raise error
            if key is not None and key in self._results:
                first_operation, first_args, result = self._results[key]
                if first_operation != operation or first_args != args:
                    self._record(operation, args, key, "failed")
                    raise self._refuse(operation, _KEY_REUSED)
                self._record(operation, args, key, "replayed")
                return cast(T, result)
            try:
                result = effect()
            except Exception:
                self._record(operation, args, key, "failed")
                raise
            if key is not None:
                self._results[key] = (operation, dict(args), result)
            self._record(operation, args, key, "ok")
            if self._answer_lost(operation):
                raise PortError(self.port, operation, "timed out", retryable=True)
            return result

    def _answer_lost(self, operation: str) -> bool:
        for script in self._lost:
            if script.fires(operation):
                if script.exhausted:
                    self._lost.remove(script)
                return True
        return False


# -- commerce -------------------------------------------------------------------------------


@attrs.frozen
class FakeExchangeLine:
    """An exchange item on an order of :class:`FakeCommercePlatform`."""

    item_id: str
    hold_id: str
    variant_id: str
    quantity: int
    status: ExchangeLineStatus
    exchange_line_id: str = ""
    sku: str | None = None


@attrs.frozen
class FakeRefund:
    """A refund made by :class:`FakeCommercePlatform`."""

    refund_id: str
    shop: str
    order_id: str
    amount: Money
    lines: tuple[LineQuantity, ...]


@attrs.frozen
class FakeCredit:
    """Store credit issued by :class:`FakeCommercePlatform`."""

    credit_id: str
    shop: str
    order_id: str
    amount: Money


@attrs.frozen
class FakeRestock:
    """Units put back into inventory by :class:`FakeCommercePlatform`."""

    shop: str
    order_id: str
    lines: tuple[LineQuantity, ...]


@attrs.define
class _Hold:
    tag: str
    item_ids: tuple[str, ...]


@attrs.define
class _OrderState:
    order: OrderSnapshot
    tags: set[str]
    lines: list[FakeExchangeLine] = attrs.field(factory=list)
    holds: dict[str, _Hold] = attrs.field(factory=dict)


class FakeCommercePlatform(FakePort):
    """A commerce platform holding seeded orders, their tags and held exchange items.

    Seed orders with :meth:`add_order`. Orders of another shop are invisible: asking for
    them fails like an unknown order. :meth:`get_order` returns the order as seeded;
    exchange items and refunds are inspected with :meth:`exchange_lines`, :attr:`refunds`,
    :attr:`credits` and :attr:`restocks`.

    :meth:`ignore_releases` scripts the real-world case of a release that the platform
    accepts but does not honour: the tag goes, the lines stay on hold.
    """

    port: ClassVar[str] = "commerce"
    operations: ClassVar[frozenset[str]] = frozenset(
        {
            "get_order",
            "add_exchange_items",
            "release_exchange",
            "exchange_hold_status",
            "cancel_exchange_items",
            "refund",
            "issue_store_credit",
            "restock",
        }
    )

    def __init__(self, orders: Iterable[OrderSnapshot] = ()) -> None:
        super().__init__()
        self._orders: dict[tuple[str, str], _OrderState] = {}
        self._refunds: list[FakeRefund] = []
        self._credits: list[FakeCredit] = []
        self._restocks: list[FakeRestock] = []
        self._ignored_releases: int | None = 0
        for order in orders:
            self.add_order(order)

    # -- seeding, scripting and inspection -------------------------------------------------

    def add_order(self, order: OrderSnapshot, *, tags: Iterable[str] = ()) -> None:
        """Seed (or replace) an order. Replacing keeps its tags, exchange items and refunds."""
        with self._lock:
            state = self._orders.get((order.shop, order.id))
            if state is None:
                self._orders[(order.shop, order.id)] = _OrderState(order, set(tags))
            else:
                state.order = order
                state.tags.update(tags)

    def ignore_releases(self, times: int | None = 1) -> None:
        """Accept the next ``times`` releases (``None``: all) without honouring them.

        Such a release returns normally and is recorded as ``"ok"``; the hold tag is removed
        but the lines stay on hold, so :meth:`exchange_hold_status` still says ``HELD``.
        :meth:`heal` ends it.
        """
        _check_times(times)
        with self._lock:
            self._ignored_releases = times

    def _heal_locked(self) -> None:
        super()._heal_locked()
        self._ignored_releases = 0

    def tags(self, shop: str, order_id: str) -> set[str]:
        """The order's tags (a copy). ``KeyError`` for an order that was never seeded."""
        with self._lock:
            return set(self._seeded(shop, order_id).tags)

    def exchange_lines(self, shop: str, order_id: str) -> list[FakeExchangeLine]:
        """The exchange items added to the order, in the order they were added."""
        with self._lock:
            return list(self._seeded(shop, order_id).lines)

    @property
    def refunds(self) -> list[FakeRefund]:
        """Every refund made, oldest first."""
        with self._lock:
            return list(self._refunds)

    @property
    def credits(self) -> list[FakeCredit]:
        """Every store credit issued, oldest first."""
        with self._lock:
            return list(self._credits)

    @property
    def restocks(self) -> list[FakeRestock]:
        """Every restock, oldest first."""
        with self._lock:
            return list(self._restocks)

    def _seeded(self, shop: str, order_id: str) -> _OrderState:
        try:
            return self._orders[(shop, order_id)]
        except KeyError:
            raise KeyError(f"no order {order_id!r} in shop {shop!r}") from None

    # -- the port --------------------------------------------------------------------------

    def _order(self, operation: str, shop: str, order_id: str) -> _OrderState:
        state = self._orders.get((shop, order_id))
        if state is None:
            raise self._refuse(operation, f"no order {order_id!r} in shop {shop!r}")
        return state

    def _hold(self, operation: str, shop: str, order_id: str, hold_id: str) -> _Hold:
        hold = self._order(operation, shop, order_id).holds.get(hold_id)
        if hold is None:
            raise self._refuse(operation, f"no exchange hold {hold_id!r} on order {order_id!r}")
        return hold

    def _hold_lines(self, state: _OrderState, hold_id: str) -> list[FakeExchangeLine]:
        return [line for line in state.lines if line.hold_id == hold_id]

    def _set_status(
        self, state: _OrderState, item_ids: Iterable[str], status: ExchangeLineStatus
    ) -> None:
        wanted = set(item_ids)
        state.lines = [
            attrs.evolve(line, status=status) if line.item_id in wanted else line
            for line in state.lines
        ]

    def _check_lines(
        self,
        operation: str,
        state: _OrderState,
        lines: Sequence[LineQuantity],
        done: Iterable[tuple[LineQuantity, ...]],
        verb: str,
    ) -> None:
        already: dict[str, int] = {}
        for earlier in done:
            for line in earlier:
                already[line.order_line_id] = already.get(line.order_line_id, 0) + line.quantity
        for line in lines:
            order_line = state.order.line(line.order_line_id)
            if order_line is None:
                raise self._refuse(
                    operation, f"order {state.order.id!r} has no line {line.order_line_id!r}"
                )
            if line.quantity < 1:
                raise self._refuse(operation, f"quantity {line.quantity} is below 1")
            already[line.order_line_id] = already.get(line.order_line_id, 0) + line.quantity
            if already[line.order_line_id] > order_line.quantity:
                raise self._refuse(
                    operation,
                    f"cannot {verb} {already[line.order_line_id]} units of line "
                    f"{line.order_line_id!r}; {order_line.quantity} were bought",
                )

    def _check_amount(self, operation: str, state: _OrderState, amount: Money) -> None:
        if amount.currency != state.order.currency:
            raise self._refuse(
                operation,
                f"amount is in {amount.currency}; order {state.order.id!r} is in "
                f"{state.order.currency}",
            )
        if amount.amount <= 0:
            raise self._refuse(operation, f"amount {amount} must be positive")

    def get_order(self, shop: str, order_id: str) -> OrderSnapshot:
        """The seeded order; ``PortError`` (not retryable) when unknown in ``shop``."""

        def effect() -> OrderSnapshot:
            return self._order("get_order", shop, order_id).order

        return self._invoke("get_order", {"shop": shop, "order_id": order_id}, None, effect)

    def add_exchange_items(
        self,
        shop: str,
        order_id: str,
        items: Sequence[ExchangeItem],
        *,
        hold_tag: str,
        idempotency_key: str,
    ) -> ExchangeHold:
        """Add ``items`` on hold (status ``"on_hold"``) and tag the order with ``hold_tag``."""
        args = {"shop": shop, "order_id": order_id, "items": tuple(items), "hold_tag": hold_tag}

        def effect() -> ExchangeHold:
            operation = "add_exchange_items"
            state = self._order(operation, shop, order_id)
            if not items:
                raise self._refuse(operation, "no items to add")
            for item in items:
                if item.quantity < 1:
                    raise self._refuse(
                        operation, f"item {item.exchange_line_id!r} has quantity {item.quantity}"
                    )
            hold_id = f"hold-{self._next_id('hold')}"
            added = [
                FakeExchangeLine(
                    item_id=f"item-{self._next_id('item')}",
                    hold_id=hold_id,
                    variant_id=item.variant_id,
                    quantity=item.quantity,
                    status="on_hold",
                    exchange_line_id=item.exchange_line_id,
                    sku=item.sku,
                )
                for item in items
            ]
            item_ids = tuple(line.item_id for line in added)
            state.lines.extend(added)
            state.holds[hold_id] = _Hold(hold_tag, item_ids)
            state.tags.add(hold_tag)
            return ExchangeHold(hold_id=hold_id, item_ids=item_ids)

        return self._invoke("add_exchange_items", args, idempotency_key, effect)

    def release_exchange(
        self, shop: str, order_id: str, hold_id: str, *, hold_tag: str, idempotency_key: str
    ) -> None:
        """Move the hold's on-hold lines to ``"unfulfilled"`` and remove ``hold_tag``, unless
        another hold of the order still has lines on hold (the tag pauses the whole order:
        taken off, it would ship those too).

        Unless :meth:`ignore_releases` is in force: then only the tag is removed.
        """
        args = {"shop": shop, "order_id": order_id, "hold_id": hold_id, "hold_tag": hold_tag}

        def effect() -> None:
            operation = "release_exchange"
            self._hold(operation, shop, order_id, hold_id)
            state = self._orders[(shop, order_id)]
            others = any(
                line.status == "on_hold" and line.hold_id != hold_id for line in state.lines
            )
            if not others:
                state.tags.discard(hold_tag)
            if self._ignored_releases is None:
                return
            if self._ignored_releases > 0:
                self._ignored_releases -= 1
                return
            on_hold = [
                line.item_id
                for line in self._hold_lines(state, hold_id)
                if line.status == "on_hold"
            ]
            self._set_status(state, on_hold, "unfulfilled")

        self._invoke("release_exchange", args, idempotency_key, effect)

    def exchange_hold_status(self, shop: str, order_id: str, hold_id: str) -> HoldStatus:
        """``HELD`` while any line is on hold, ``CANCELLED`` when all are, else ``RELEASED``."""
        args = {"shop": shop, "order_id": order_id, "hold_id": hold_id}

        def effect() -> HoldStatus:
            self._hold("exchange_hold_status", shop, order_id, hold_id)
            statuses = {
                line.status for line in self._hold_lines(self._orders[(shop, order_id)], hold_id)
            }
            if "on_hold" in statuses:
                return HoldStatus.HELD
            if statuses == {"cancelled"}:
                return HoldStatus.CANCELLED
            return HoldStatus.RELEASED

        return self._invoke("exchange_hold_status", args, None, effect)

    def cancel_exchange_items(
        self,
        shop: str,
        order_id: str,
        hold_id: str,
        item_ids: Sequence[str],
        *,
        idempotency_key: str,
    ) -> None:
        """Cancel items of a hold; the hold tag goes when no hold with that tag holds items."""
        args = {"shop": shop, "order_id": order_id, "hold_id": hold_id, "item_ids": tuple(item_ids)}

        def effect() -> None:
            operation = "cancel_exchange_items"
            hold = self._hold(operation, shop, order_id, hold_id)
            if not item_ids:
                raise self._refuse(operation, "no items to cancel")
            unknown = [item_id for item_id in item_ids if item_id not in hold.item_ids]
            if unknown:
                raise self._refuse(operation, f"hold {hold_id!r} has no items {unknown!r}")
            state = self._orders[(shop, order_id)]
            self._set_status(state, item_ids, "cancelled")
            still_held = any(
                line.status == "on_hold" and state.holds[line.hold_id].tag == hold.tag
                for line in state.lines
            )
            if not still_held:
                state.tags.discard(hold.tag)

        self._invoke("cancel_exchange_items", args, idempotency_key, effect)

    def refund(
        self,
        shop: str,
        order_id: str,
        amount: Money,
        lines: Sequence[LineQuantity],
        *,
        idempotency_key: str,
    ) -> RefundReceipt:
        """Refund ``amount``; refused in another currency or above what is left of the order.

        What is left is the order's ``charged_total`` (its lines, shipping and duties)
        minus earlier refunds; a line's
        units cannot be refunded more often than they were bought.
        """
        args = {"shop": shop, "order_id": order_id, "amount": amount, "lines": tuple(lines)}

        def effect() -> RefundReceipt:
            operation = "refund"
            state = self._order(operation, shop, order_id)
            self._check_amount(operation, state, amount)
            mine = [r for r in self._refunds if (r.shop, r.order_id) == (shop, order_id)]
            currency = state.order.currency
            paid = state.order.charged_total
            refunded = Money.sum((r.amount for r in mine), currency)
            if refunded + amount > paid:
                raise self._refuse(
                    operation,
                    f"refund of {amount} exceeds the refundable {paid - refunded} "
                    f"(paid {paid}, refunded {refunded})",
                )
            self._check_lines(operation, state, lines, (r.lines for r in mine), "refund")
            refund_id = f"refund-{self._next_id('refund')}"
            self._refunds.append(FakeRefund(refund_id, shop, order_id, amount, tuple(lines)))
            return RefundReceipt(refund_id=refund_id, amount=amount)

        return self._invoke("refund", args, idempotency_key, effect)

    def issue_store_credit(
        self, shop: str, order_id: str, amount: Money, *, idempotency_key: str
    ) -> CreditReceipt:
        """Issue a gift card (``gift-<n>``); refused unless positive and in the order currency.

        Store credit is not capped by what was paid, since it may include a bonus.
        """
        args = {"shop": shop, "order_id": order_id, "amount": amount}

        def effect() -> CreditReceipt:
            operation = "issue_store_credit"
            self._check_amount(operation, self._order(operation, shop, order_id), amount)
            credit_id = f"gift-{self._next_id('gift')}"
            self._credits.append(FakeCredit(credit_id, shop, order_id, amount))
            return CreditReceipt(credit_id=credit_id, amount=amount)

        return self._invoke("issue_store_credit", args, idempotency_key, effect)

    def restock(
        self, shop: str, order_id: str, lines: Sequence[LineQuantity], *, idempotency_key: str
    ) -> None:
        """Record a restock; refused for unknown lines or more units than were bought."""
        args = {"shop": shop, "order_id": order_id, "lines": tuple(lines)}

        def effect() -> None:
            operation = "restock"
            state = self._order(operation, shop, order_id)
            if not lines:
                raise self._refuse(operation, "no lines to restock")
            done = (r.lines for r in self._restocks if (r.shop, r.order_id) == (shop, order_id))
            self._check_lines(operation, state, lines, done, "restock")
            self._restocks.append(FakeRestock(shop, order_id, tuple(lines)))

        self._invoke("restock", args, idempotency_key, effect)


# -- warehouse ------------------------------------------------------------------------------


@attrs.frozen
class FakeWarehouseReturn:
    """A return expectation held by :class:`FakeWarehouse`."""

    rma_id: str
    shop: str
    order_id: str
    return_id: str
    lines: tuple[LineQuantity, ...]
    reason: str
    action: str
    status: Literal["expected", "cancelled"] = "expected"
    location_id: str | None = None
    """The location expecting the units (``None``: the default one)."""


class FakeWarehouse(FakePort):
    """A warehouse that stores return expectations (``RMA-<n>``) and cancels them.
    ``locations``: the locations it runs (``None``: any); a return expected at another is
    refused (``PortError``, not retryable), as a WMS refuses an unknown site."""

    port: ClassVar[str] = "warehouse"
    operations: ClassVar[frozenset[str]] = frozenset({"create_return", "cancel_return"})

    def __init__(self, *, locations: Iterable[str] | None = None) -> None:
        super().__init__()
        self._returns: dict[str, FakeWarehouseReturn] = {}
        self.locations = None if locations is None else frozenset(locations)

    @property
    def returns(self) -> list[FakeWarehouseReturn]:
        """Every return expectation, in creation order."""
        with self._lock:
            return list(self._returns.values())

    def get(self, rma_id: str) -> FakeWarehouseReturn:
        """One return expectation; ``KeyError`` when unknown."""
        with self._lock:
            try:
                return self._returns[rma_id]
            except KeyError:
                raise KeyError(f"no warehouse return {rma_id!r}") from None

    def create_return(
        self,
        shop: str,
        order_id: str,
        return_id: str,
        lines: Sequence[LineQuantity],
        *,
        reason: str,
        action: str,
        idempotency_key: str,
        location_id: str | None = None,
    ) -> WarehouseReturn:
        """Expect these units back (at ``location_id``); refused without lines, with a
        quantity below 1, or at a location the warehouse does not run."""
        args: dict[str, Any] = {
            "shop": shop,
            "order_id": order_id,
            "return_id": return_id,
            "lines": tuple(lines),
            "reason": reason,
            "action": action,
        }
        if location_id is not None:  # recorded as a call made before destinations was
            args["location_id"] = location_id

        def effect() -> WarehouseReturn:
            if not lines:
                raise self._refuse("create_return", "no lines to expect")
            known = self.locations
            if location_id is not None and known is not None and location_id not in known:
                raise self._refuse("create_return", f"no location {location_id!r}")
            for line in lines:
                if line.quantity < 1:
                    raise self._refuse(
                        "create_return",
                        f"line {line.order_line_id!r} has quantity {line.quantity}",
                    )
            rma_id = f"RMA-{self._next_id('rma')}"
            self._returns[rma_id] = FakeWarehouseReturn(
                rma_id,
                shop,
                order_id,
                return_id,
                tuple(lines),
                reason,
                action,
                location_id=location_id,
            )
            return WarehouseReturn(rma_id=rma_id)

        return self._invoke("create_return", args, idempotency_key, effect)

    def cancel_return(self, shop: str, rma_id: str, *, idempotency_key: str) -> None:
        """Mark the expectation ``"cancelled"``; refused for an RMA unknown in ``shop``."""

        def effect() -> None:
            found = self._returns.get(rma_id)
            if found is None or found.shop != shop:
                raise self._refuse("cancel_return", f"no return {rma_id!r} in shop {shop!r}")
            self._returns[rma_id] = attrs.evolve(found, status="cancelled")

        args = {"shop": shop, "rma_id": rma_id}
        self._invoke("cancel_return", args, idempotency_key, effect)


# -- carrier --------------------------------------------------------------------------------


@attrs.frozen
class FakeLabel:
    """A label bought from :class:`FakeCarrier`."""

    tracking_number: str
    label_url: str
    shop: str
    return_id: str
    order_id: str
    status: Literal["active", "void"] = "active"
    method: ReturnMethod = ReturnMethod.MAIL
    """What the label was asked for (``drop_off`` comes with a QR code)."""
    qr_code_url: str | None = None


class FakeCarrier(FakePort):
    """A carrier that sells labels (``TRK000001``, ...) and voids them."""

    port: ClassVar[str] = "carrier"
    operations: ClassVar[frozenset[str]] = frozenset({"create_label", "void_label"})

    def __init__(self) -> None:
        super().__init__()
        self._labels: dict[str, FakeLabel] = {}

    @property
    def labels(self) -> list[FakeLabel]:
        """Every label, in creation order."""
        with self._lock:
            return list(self._labels.values())

    def get(self, tracking_number: str) -> FakeLabel:
        """One label; ``KeyError`` when unknown."""
        with self._lock:
            try:
                return self._labels[tracking_number]
            except KeyError:
                raise KeyError(f"no label {tracking_number!r}") from None

    def create_label(
        self,
        shop: str,
        return_id: str,
        order_id: str,
        *,
        idempotency_key: str,
        method: ReturnMethod = ReturnMethod.MAIL,
    ) -> Label:
        """Buy a label for ``method``, stored with status ``"active"``; a drop-off's comes
        with a QR code. Refused for ``in_store`` (no carrier takes those) and, as a carrier
        refuses a service it does not offer, for a method that is not one
        (``PortError(retryable=False)``)."""
        try:
            method = ReturnMethod(method)
        except ValueError:
            raise self._refuse("create_label", f"no such return method: {method!r}") from None

        def effect() -> Label:
            if not method.needs_label:
                raise self._refuse("create_label", "an in-store return has no label")
            tracking = f"TRK{self._next_id('label'):06d}"
            url = f"https://labels.example/{tracking}.pdf"
            qr = (
                f"https://labels.example/{tracking}.qr.png"
                if method is ReturnMethod.DROP_OFF
                else None
            )
            self._labels[tracking] = FakeLabel(
                tracking, url, shop, return_id, order_id, method=method, qr_code_url=qr
            )
            return Label(tracking_number=tracking, label_url=url, qr_code_url=qr)

        args = {"shop": shop, "return_id": return_id, "order_id": order_id, "method": method.value}
        return self._invoke("create_label", args, idempotency_key, effect)

    def void_label(self, shop: str, tracking_number: str, *, idempotency_key: str) -> None:
        """Set the label ``"void"``; refused for a label unknown in ``shop``."""

        def effect() -> None:
            found = self._labels.get(tracking_number)
            if found is None or found.shop != shop:
                raise self._refuse("void_label", f"no label {tracking_number!r} in shop {shop!r}")
            self._labels[tracking_number] = attrs.evolve(found, status="void")

        args = {"shop": shop, "tracking_number": tracking_number}
        self._invoke("void_label", args, idempotency_key, effect)


# -- payments -------------------------------------------------------------------------------


@attrs.frozen
class FakePayment:
    """A charge, authorization, capture, void or refund made through :class:`FakePayments`.

    A capture (the amount collected) and a void (the amount released) name the authorization
    they settle in ``authorization_id``."""

    payment_id: str
    shop: str
    return_id: str
    amount: Money
    kind: Literal["charge", "authorization", "capture", "void", "refund"]
    authorization_id: str | None = None


class FakePayments(FakePort):
    """A payment processor that records charges, authorizations, captures, voids and refunds
    (``pay-<n>``).

    A refund above what was charged or captured for the return, less earlier refunds, is
    refused. An authorization is captured (at most its amount) or voided once; capturing or
    voiding it again, or an authorization of another shop or return, is refused.

    >>> payments = FakePayments()
    >>> auth = payments.authorize("s", "R1", Money("30.00", "EUR"), idempotency_key="a")
    >>> payments.capture("s", "R1", auth.payment_id, Money("25.00", "EUR"), idempotency_key="c")
    PaymentReceipt(payment_id='pay-2', amount=Money('25.00', 'EUR'))
    >>> payments.authorizations("s", "R1")
    {'pay-1': 'captured'}
    """

    port: ClassVar[str] = "payments"
    operations: ClassVar[frozenset[str]] = frozenset(
        {"charge", "authorize", "capture", "void", "refund"}
    )

    def __init__(self) -> None:
        super().__init__()
        self._payments: list[FakePayment] = []
        self._authorizations: dict[str, AuthorizationState] = {}

    @property
    def payments(self) -> list[FakePayment]:
        """Every charge, authorization, capture, void and refund, oldest first."""
        with self._lock:
            return list(self._payments)

    def authorizations(self, shop: str, return_id: str) -> dict[str, AuthorizationState]:
        """The state of each authorization of a return, by id, oldest first."""
        with self._lock:
            return {
                payment.payment_id: self._authorizations[payment.payment_id]
                for payment in self._payments
                if payment.kind == "authorization"
                and (payment.shop, payment.return_id) == (shop, return_id)
            }

    def _pay(
        self,
        operation: str,
        kind: Literal["charge", "authorization", "refund"],
        shop: str,
        return_id: str,
        amount: Money,
        key: str,
    ) -> PaymentReceipt:
        def effect() -> PaymentReceipt:
            if amount.amount <= 0:
                raise self._refuse(operation, f"amount {amount} must be positive")
            if kind == "refund":
                mine = [
                    payment
                    for payment in self._payments
                    if (payment.shop, payment.return_id) == (shop, return_id)
                    and payment.amount.currency == amount.currency
                ]
                charged = Money.sum(
                    (payment.amount for payment in mine if payment.kind in ("charge", "capture")),
                    amount.currency,
                )
                refunded = Money.sum(
                    (payment.amount for payment in mine if payment.kind == "refund"),
                    amount.currency,
                )
                if amount > charged - refunded:
                    raise self._refuse(
                        operation, f"refund {amount} exceeds the {charged - refunded} left"
                    )
            payment_id = f"pay-{self._next_id('payment')}"
            self._payments.append(FakePayment(payment_id, shop, return_id, amount, kind))
            if kind == "authorization":
                self._authorizations[payment_id] = "authorized"
            return PaymentReceipt(payment_id=payment_id, amount=amount)

        args = {"shop": shop, "return_id": return_id, "amount": amount}
        return self._invoke(operation, args, key, effect)

    def _open_authorization(
        self, operation: str, shop: str, return_id: str, authorization_id: str
    ) -> FakePayment:
        """The authorization ``authorization_id`` of this return, still open; else refused."""
        found = next(
            (
                payment
                for payment in self._payments
                if payment.kind == "authorization"
                and payment.payment_id == authorization_id
                and (payment.shop, payment.return_id) == (shop, return_id)
            ),
            None,
        )
        if found is None:
            raise self._refuse(operation, f"no authorization {authorization_id!r} of {return_id}")
        state = self._authorizations[authorization_id]
        if state != "authorized":
            raise self._refuse(operation, f"authorization {authorization_id!r} is {state}")
        return found

    def _settle(
        self,
        kind: Literal["capture", "void"],
        authorization: FakePayment,
        amount: Money,
    ) -> PaymentReceipt:
        payment_id = f"pay-{self._next_id('payment')}"
        self._payments.append(
            FakePayment(
                payment_id,
                authorization.shop,
                authorization.return_id,
                amount,
                kind,
                authorization_id=authorization.payment_id,
            )
        )
        self._authorizations[authorization.payment_id] = (
            "captured" if kind == "capture" else "voided"
        )
        return PaymentReceipt(payment_id=payment_id, amount=amount)

    def charge(
        self, shop: str, return_id: str, amount: Money, *, idempotency_key: str
    ) -> PaymentReceipt:
        """Charge ``amount``; refused unless positive."""
        return self._pay("charge", "charge", shop, return_id, amount, idempotency_key)

    def authorize(
        self, shop: str, return_id: str, amount: Money, *, idempotency_key: str
    ) -> PaymentReceipt:
        """Authorize ``amount``; refused unless positive."""
        return self._pay("authorize", "authorization", shop, return_id, amount, idempotency_key)

    def capture(
        self,
        shop: str,
        return_id: str,
        authorization_id: str,
        amount: Money,
        *,
        idempotency_key: str,
    ) -> PaymentReceipt:
        """Capture ``amount`` of an open authorization of this return (a payment of kind
        ``"capture"``); refused unless positive, in its currency and at most its amount."""
        operation = "capture"

        def effect() -> PaymentReceipt:
            authorization = self._open_authorization(operation, shop, return_id, authorization_id)
            authorized = authorization.amount
            if amount.currency != authorized.currency:
                raise self._refuse(
                    operation, f"amount {amount} is not in the authorization's {authorized}"
                )
            if amount.amount <= 0:
                raise self._refuse(operation, f"amount {amount} must be positive")
            if amount > authorized:
                raise self._refuse(
                    operation, f"capture {amount} exceeds the {authorized} authorized"
                )
            return self._settle("capture", authorization, amount)

        args = {
            "shop": shop,
            "return_id": return_id,
            "authorization_id": authorization_id,
            "amount": amount,
        }
        return self._invoke(operation, args, idempotency_key, effect)

    def void(
        self, shop: str, return_id: str, authorization_id: str, *, idempotency_key: str
    ) -> None:
        """Void an open authorization of this return (a payment of kind ``"void"`` of the
        amount released)."""
        operation = "void"

        def effect() -> None:
            authorization = self._open_authorization(operation, shop, return_id, authorization_id)
            self._settle("void", authorization, authorization.amount)

        args = {"shop": shop, "return_id": return_id, "authorization_id": authorization_id}
        self._invoke(operation, args, idempotency_key, effect)

    def refund(
        self, shop: str, return_id: str, amount: Money, *, idempotency_key: str
    ) -> PaymentReceipt:
        """Refund ``amount`` of this return's charges and captures; refused above what is
        left."""
        return self._pay("refund", "refund", shop, return_id, amount, idempotency_key)


# -- notifier -------------------------------------------------------------------------------


@attrs.frozen
class FakeMessage:
    """A message sent through :class:`FakeNotifier`."""

    shop: str
    recipient: str
    template: str
    context: dict[str, Any] = attrs.field(hash=False)


class FakeNotifier(FakePort):
    """A notifier that keeps every message instead of sending it."""

    port: ClassVar[str] = "notifier"
    operations: ClassVar[frozenset[str]] = frozenset({"notify"})

    def __init__(self) -> None:
        super().__init__()
        self._messages: list[FakeMessage] = []

    @property
    def messages(self) -> list[FakeMessage]:
        """Every message, oldest first."""
        with self._lock:
            return list(self._messages)

    def notify(
        self,
        shop: str,
        recipient: str,
        template: str,
        context: Mapping[str, Any],
        *,
        idempotency_key: str,
    ) -> None:
        """Keep the message (with a copy of ``context``)."""
        args = {
            "shop": shop,
            "recipient": recipient,
            "template": template,
            "context": dict(context),
        }

        def effect() -> None:
            self._messages.append(FakeMessage(shop, recipient, template, dict(context)))

        self._invoke("notify", args, idempotency_key, effect)


# -- events ---------------------------------------------------------------------------------


class FakeEventPublisher(FakePort):
    """An event publisher that keeps every event.

    A repeated key is compared on the event's topic, shop, return id and payload.
    """

    port: ClassVar[str] = "events"
    operations: ClassVar[frozenset[str]] = frozenset({"publish"})

    def __init__(self) -> None:
        super().__init__()
        self._events: list[DomainEvent] = []

    @property
    def events(self) -> list[DomainEvent]:
        """Every published event, oldest first."""
        with self._lock:
            return list(self._events)

    def topics(self) -> list[str]:
        """The topics of every published event, in order."""
        with self._lock:
            return [event.topic for event in self._events]

    def topics_for(self, return_id: str) -> list[str]:
        """The topics of one return's events, in order."""
        with self._lock:
            return [event.topic for event in self._events if event.return_id == return_id]

    def publish(self, event: DomainEvent, *, idempotency_key: str) -> None:
        """Keep ``event``."""
        args = {
            "topic": event.topic,
            "shop": event.shop,
            "return_id": event.return_id,
            "payload": dict(event.payload),
        }

        def effect() -> None:
            self._events.append(event)

        self._invoke("publish", args, idempotency_key, effect)


# -- return source --------------------------------------------------------------------------


@attrs.frozen
class _Listed:
    """A return as the fake source holds it: a good one, or data that does not parse."""

    shop: str
    external_id: str
    created_at: datetime
    updated_at: datetime
    value: ExternalReturn | None = None
    payload: Mapping[str, Any] | None = attrs.field(default=None, eq=False)

    @property
    def key(self) -> tuple[datetime, str]:
        return (self.updated_at, self.external_id)

    def read(self) -> ExternalReturn:
        """The return; the data's :class:`ValidationError` when it does not parse."""
        if self.value is not None:
            return self.value
        return external_return_from_dict(self.payload or {})


class FakeReturnSource(FakePort):
    """A return source (a returns app such as Loop) that holds the returns a test adds.

    :meth:`add` adds or replaces a return, :meth:`update` changes one the way the source
    would (``updated_at`` moves forward), :meth:`add_payload` adds data that may not parse
    (listings report it in ``SourcePage.rejected``). Listings are keyset pages ordered by
    ``(updated_at, external_id)``: the page token names the last return handed out, so a
    return updated while a listing is paged through is listed again later, never skipped.
    Other shops' returns are invisible. Reads are recorded in :attr:`FakePort.calls` and can
    be told to fail like any fake's calls.

    >>> from datetime import datetime, timezone
    >>> from returnflow import ExternalLine, ExternalReturn
    >>> source = FakeReturnSource()
    >>> at = datetime(2026, 1, 12, 9, 0, tzinfo=timezone.utc)
    >>> source.add(ExternalReturn(source="loop", external_id="52393555", shop="shop-a",
    ...     order_id="1001", lines=[ExternalLine(order_line_id="L1", quantity=1)],
    ...     created_at=at, updated_at=at))
    >>> page = source.list_returns("shop-a", at, datetime(2026, 2, 1, tzinfo=timezone.utc))
    >>> [ret.external_id for ret in page.returns], page.next_page
    (['52393555'], None)
    >>> source.get_return("shop-a", "404") is None
    True
    """

    port: ClassVar[str] = "source"
    operations: ClassVar[frozenset[str]] = frozenset({"list_returns", "get_return"})

    def __init__(self, name: str = "loop", returns: Iterable[ExternalReturn] = ()) -> None:
        super().__init__()
        imported_return_id(name, "x")  # a valid source name, or a ValidationError
        self._name = name
        self._returns: dict[tuple[str, str], _Listed] = {}
        for external in returns:
            self.add(external)

    @property
    def name(self) -> str:
        """The source's name: imported returns' ids start with it."""
        return self._name

    # -- seeding and inspection ------------------------------------------------------------

    def add(self, external: ExternalReturn) -> None:
        """Add a return, or replace the one with its shop and id."""
        if not isinstance(external, ExternalReturn):
            raise TypeError(f"add() takes an ExternalReturn, not {external!r}")
        if external.source != self._name:
            raise ValueError(f"{external.source!r} is not this source ({self._name!r})")
        with self._lock:
            self._returns[(external.shop, external.external_id)] = _Listed(
                external.shop,
                external.external_id,
                external.created_at,
                external.updated_at,
                value=external,
            )

    def update(
        self, shop: str, external_id: str, *, at: datetime, **changes: Any
    ) -> ExternalReturn:
        """Change a return as the source would: ``changes`` (``status=...``, ``lines=...``)
        and ``updated_at=at``, which must not go back. Returns the new value."""
        with self._lock:
            listed = self._returns.get((shop, external_id))
            if listed is None or listed.value is None:
                raise KeyError(f"no return {external_id!r} in shop {shop!r}")
            if at < listed.updated_at:
                raise ValueError(f"updated_at goes back from {listed.updated_at} to {at}")
            external = attrs.evolve(listed.value, updated_at=at, **changes)
            self._returns[(shop, external_id)] = attrs.evolve(listed, updated_at=at, value=external)
            return external

    def add_payload(
        self,
        shop: str,
        external_id: str,
        payload: Mapping[str, Any],
        *,
        updated_at: datetime,
        created_at: datetime | None = None,
    ) -> None:
        """Add a return as raw data, read with
        :func:`~returnflow.serialization.external_return_from_dict` when it is listed or
        fetched: data that does not parse is how a source's bad data reaches an importer."""
        with self._lock:
            self._returns[(shop, external_id)] = _Listed(
                shop,
                external_id,
                created_at or updated_at,
                updated_at,
                payload=dict(payload),
            )

    @property
    def returns(self) -> list[ExternalReturn]:
        """Every good return, in listing order (all shops)."""
        with self._lock:
            listed = sorted(self._returns.values(), key=lambda item: item.key)
        return [item.value for item in listed if item.value is not None]

    # -- the port --------------------------------------------------------------------------

    def list_returns(
        self,
        shop: str,
        since: datetime,
        until: datetime,
        *,
        page: str | None = None,
        limit: int = 100,
    ) -> SourcePage:
        """One keyset page of the shop's returns created or updated in ``[since, until)``;
        refused (not retryable) for naive times, a ``limit`` below 1 or a bad token."""
        args = {"shop": shop, "since": since, "until": until, "page": page, "limit": limit}

        def effect() -> SourcePage:
            operation = "list_returns"
            for field, moment in (("since", since), ("until", until)):
                if not isinstance(moment, datetime) or moment.tzinfo is None:
                    raise self._refuse(operation, f"{field} must be a timezone-aware datetime")
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                raise self._refuse(operation, f"limit {limit!r} must be at least 1")
            after = self._after(operation, page, shop, since, until)
            chosen = sorted(
                (
                    item
                    for item in self._returns.values()
                    if item.shop == shop
                    and (since <= item.updated_at < until or since <= item.created_at < until)
                    and (after is None or item.key > after)
                ),
                key=lambda item: item.key,
            )
            taken, more = chosen[:limit], len(chosen) > limit
            returns: list[ExternalReturn] = []
            rejected: list[SourceRejection] = []
            for item in taken:
                try:
                    returns.append(item.read())
                except ValidationError as error:
                    rejected.append(SourceRejection(item.external_id, item.updated_at, error))
            token = None
            if more:
                last = taken[-1]
                token = self._token(shop, since, until, last.key)
            return SourcePage(tuple(returns), tuple(rejected), token)

        return self._invoke("list_returns", args, None, effect)

    def count_returns(self, shop: str, since: datetime, until: datetime) -> int:
        """How many returns :meth:`list_returns` lists for ``[since, until)`` (the optional
        :class:`~returnflow.ports.source.CountingSource` call)."""

        def effect() -> int:
            return sum(
                1
                for item in self._returns.values()
                if item.shop == shop
                and (since <= item.updated_at < until or since <= item.created_at < until)
            )

        args = {"shop": shop, "since": since, "until": until}
        return self._invoke("count_returns", args, None, effect)

    def get_return(self, shop: str, external_id: str) -> ExternalReturn | None:
        """The return, or ``None``; data that does not parse raises its ValidationError."""

        def effect() -> ExternalReturn | None:
            item = self._returns.get((shop, external_id))
            return None if item is None else item.read()

        return self._invoke("get_return", {"shop": shop, "external_id": external_id}, None, effect)

    @staticmethod
    def _token(shop: str, since: datetime, until: datetime, key: tuple[datetime, str]) -> str:
        return "|".join((shop, since.isoformat(), until.isoformat(), key[0].isoformat(), key[1]))

    def _after(
        self, operation: str, page: str | None, shop: str, since: datetime, until: datetime
    ) -> tuple[datetime, str] | None:
        if page is None:
            return None
        parts = page.split("|", 4) if isinstance(page, str) else []
        if len(parts) != 5 or parts[:3] != [shop, since.isoformat(), until.isoformat()]:
            raise self._refuse(operation, f"page token {page!r} is not one of this listing's")
        try:
            return (parse_iso(parts[3]), parts[4])
        except ValueError:
            raise self._refuse(operation, f"page token {page!r} is malformed") from None


# -- all of them ----------------------------------------------------------------------------


@attrs.define
class FakePorts:
    """One fake of each port, ready to hand to a service: ``FakePorts()``."""

    commerce: FakeCommercePlatform = attrs.field(factory=FakeCommercePlatform)
    warehouse: FakeWarehouse = attrs.field(factory=FakeWarehouse)
    carrier: FakeCarrier = attrs.field(factory=FakeCarrier)
    payments: FakePayments = attrs.field(factory=FakePayments)
    notifier: FakeNotifier = attrs.field(factory=FakeNotifier)
    events: FakeEventPublisher = attrs.field(factory=FakeEventPublisher)

    def all(self) -> tuple[FakePort, ...]:
        """The six fakes."""
        return (
            self.commerce,
            self.warehouse,
            self.carrier,
            self.payments,
            self.notifier,
            self.events,
        )

    def heal_all(self) -> None:
        """:meth:`FakePort.heal` every fake."""
        for fake in self.all():
            fake.heal()

    def fail_all_rate(self, rate: float, seed: int) -> None:
        """:meth:`FakePort.fail_rate` every fake, each with its own ``random.Random(seed)``."""
        for fake in self.all():
            fake.fail_rate(rate, seed=seed)


if TYPE_CHECKING:
    from returnflow.ports.carrier import Carrier
    from returnflow.ports.commerce import CommercePlatform
    from returnflow.ports.events import EventPublisher
    from returnflow.ports.notifier import Notifier
    from returnflow.ports.payments import Payments
    from returnflow.ports.source import ReturnSource
    from returnflow.ports.warehouse import Warehouse

    def _conforms(ports: FakePorts) -> None:
        commerce: CommercePlatform = ports.commerce
        warehouse: Warehouse = ports.warehouse
        carrier: Carrier = ports.carrier
        payments: Payments = ports.payments
        notifier: Notifier = ports.notifier
        events: EventPublisher = ports.events
        del commerce, warehouse, carrier, payments, notifier, events

    def _source_conforms(fake: FakeReturnSource) -> None:
        source: ReturnSource = fake
        del source
