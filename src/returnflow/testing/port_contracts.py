"""The port contracts: test suites every adapter of a host port passes.

A host that writes an adapter for its commerce platform, warehouse, carrier or payment
processor proves it with the same tests the fakes in :mod:`returnflow.testing.fakes` pass.
Subclass the port's contract in a pytest test module and say how to make the adapter::

    from returnflow.testing.port_contracts import CommercePlatformContract
    class TestMyPlatform(CommercePlatformContract):
        def make_platform(self): return MyPlatform(...)

Each contract has one factory to implement, called at most once per test:
:meth:`CommercePlatformContract.make_platform`, :meth:`WarehouseContract.make_warehouse`,
:meth:`CarrierContract.make_carrier`, :meth:`PaymentsContract.make_payments`,
:meth:`NotifierContract.make_notifier`, :meth:`EventPublisherContract.make_publisher`,
:meth:`ReturnSourceContract.make_source`, :meth:`PolicySourceContract.make_source` and
:meth:`DestinationResolverContract.make_resolver`.
Ports are closed after each test when they have a ``close()`` method. The data a test needs
on the other side is made by hooks a host overrides when its system needs it: the commerce
contract seeds its orders with :meth:`CommercePlatformContract.seed_order` (by default the
fake's ``add_order``), the payments contract prepares each return with
:meth:`PaymentsContract.seed_return` (by default nothing), the return source contract
puts returns there with :meth:`ReturnSourceContract.seed_return` (by default the fake's
``add``). The class attributes (``SHOP``,
``CURRENCY``, ``EXCHANGE_ITEMS``, ``ORDER_ID``, ``LINES``, ...) say which shop, currency,
variants and order lines the tests use. Every idempotency key and every id a test makes is
new (:meth:`PortContract.new_key`), so the suites can run again and again against a sandbox
that remembers keys.

The suites need pytest only to run them, and nothing else (not Hypothesis); importing this
module does not import pytest. A broken promise fails with an ``AssertionError`` that says
what the adapter did and what it should have done.

What the contracts hold an adapter to:

* a call repeated with its idempotency key returns a result equal to the first one and has
  no second effect, as far as the port's own reads can tell: a replayed refund or charge
  does not use up more of what can be refunded, a replayed label has the same tracking
  number, a replayed warehouse return the same RMA, a replayed hold the same items;
* an idempotency key reused with other arguments is refused with
  ``PortError(retryable=False)``;
* what retrying cannot fix (an unknown order, label or RMA; a refund above what was paid or
  charged, or in another currency; an amount that is not positive) is refused with
  ``PortError(retryable=False)``, and nothing else;
* a payment authorization is captured (at most its amount, and what is captured can be
  refunded) or voided, once: capturing or voiding an unknown authorization, or one already
  captured or voided, is refused with ``PortError(retryable=False)``;
* exchange items are on hold (``HELD``) as soon as they are added, until released
  (``RELEASED``) or all cancelled (``CANCELLED``);
* labels carry a tracking number and a URL, and distinct keys buy distinct labels; a label
  is bought for each return method the carrier serves (``method``: ``drop_off``,
  ``pickup``; mail is asked for without it, as a carrier written before methods is called),
  a drop-off's with a QR code (``Label.qr_code_url``); a replay returns the same label, QR
  code included; a key reused for another method, and a method it does not serve
  (``in_store`` never is), are refused with ``PortError(retryable=False)``;
* a return source lists a shop's returns created or updated in ``[since, until)`` (``since``
  in, ``until`` out), in keyset pages ordered by ``(updated_at, external_id)`` of at most
  ``limit``, so that a return updated while a listing is paged through is not skipped; it
  fetches one by id (``None`` when there is none, also for another shop's); bad data in one
  return is reported in the page's ``rejected``, not raised; a bad page token is refused
  with ``PortError(retryable=False)``;
* a destination resolver lists its shop's locations as location ids, answers for every line
  that ships back with ``None`` or one of them, the same answer to the same question, and
  either refuses a shop it does not serve with :class:`~returnflow.errors.UnknownShop`
  naming ``shop`` or serves it like any (:class:`DestinationResolverContract`).
"""

from __future__ import annotations

import abc
import functools
import itertools
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar, TypeVar

import attrs

from returnflow.decisions import request as requests
from returnflow.domain.external import ExternalLine, ExternalReturn
from returnflow.domain.methods import ReturnMethod
from returnflow.domain.model import (
    Exchange,
    OrderLine,
    OrderSnapshot,
    RequestLine,
    ReturnLine,
    ReturnRequest,
    StoreCredit,
)
from returnflow.domain.money import Money
from returnflow.domain.policy import ReturnPolicy
from returnflow.errors import (
    ConfigurationError,
    PortError,
    ReturnflowError,
    UnknownShop,
    ValidationError,
)
from returnflow.ports.carrier import Carrier, Label, ask_for_label
from returnflow.ports.commerce import (
    CommercePlatform,
    CreditReceipt,
    ExchangeHold,
    ExchangeItem,
    HoldStatus,
    LineQuantity,
    RefundReceipt,
)
from returnflow.ports.events import DomainEvent, EventPublisher
from returnflow.ports.locations import DestinationResolver
from returnflow.ports.notifier import Notifier
from returnflow.ports.payments import PaymentReceipt, Payments
from returnflow.ports.policies import PolicySource
from returnflow.ports.source import ReturnSource, SourcePage
from returnflow.ports.warehouse import Warehouse, WarehouseReturn

__all__ = [
    "CarrierContract",
    "CommercePlatformContract",
    "DestinationResolverContract",
    "EventPublisherContract",
    "NotifierContract",
    "PaymentsContract",
    "PolicySourceContract",
    "PortContract",
    "ReturnSourceContract",
    "WarehouseContract",
    "make_order",
]

T = TypeVar("T")
P = TypeVar("P")

ORDER_CREATED_AT = datetime(2026, 1, 10, 9, 30, tzinfo=timezone.utc)
"""When the contract's orders were placed."""


def make_order(shop: str, order_id: str, currency: str = "EUR") -> OrderSnapshot:
    """The order the commerce contract seeds: two lines, 2 x 10.00 and 1 x 10.00.

    >>> order = make_order("shop-a", "1001")
    >>> order.paid_total, [(line.id, line.quantity) for line in order.lines]
    (Money('30.00', 'EUR'), [('L1', 2), ('L2', 1)])
    """
    price = Money("10.00", currency)
    return OrderSnapshot(
        id=order_id,
        shop=shop,
        created_at=ORDER_CREATED_AT,
        currency=currency,
        lines=(
            OrderLine(id="L1", sku="SKU-1", variant_id="V-1", quantity=2, unit_price=price),
            OrderLine(id="L2", sku="SKU-2", variant_id="V-2", quantity=1, unit_price=price),
        ),
        customer_email="customer@example.com",
        fulfilled_at=ORDER_CREATED_AT,
        delivered_at=ORDER_CREATED_AT,
    )


# -- small tools the tests use ----------------------------------------------------------------


def _refused(what: str, call: Callable[[], object]) -> PortError:
    """Run ``call``, which must raise ``PortError(retryable=False)``; return the error."""
    try:
        result = call()
    except PortError as error:
        if error.retryable:
            raise AssertionError(
                f"{what}: refused with a retryable PortError ({error}); retrying cannot change "
                "the answer, so the refusal must be PortError(retryable=False)"
            ) from error
        return error
    raise AssertionError(
        f"{what}: must be refused with PortError(retryable=False), but it returned {result!r}"
    )


def _replayed(what: str, call: Callable[[], T]) -> T:
    """Run ``call``, a repetition of an earlier call with the same idempotency key."""
    try:
        return call()
    except PortError as error:
        raise AssertionError(
            f"{what}: a call repeated with its idempotency key must answer like the first "
            f"one, but it raised {error!r}"
        ) from error


def _same(what: str, first: object, again: object) -> None:
    assert again == first, (
        f"{what}: a call repeated with its idempotency key must return the first result "
        f"{first!r}, but returned {again!r}"
    )


_LABEL_METHODS = tuple(method for method in ReturnMethod if method.needs_label)


def _close(port: object) -> None:
    close = getattr(port, "close", None)
    if callable(close):
        close()


def _other_currency(currency: str) -> str:
    return "USD" if currency != "USD" else "EUR"


# -- the suites ---------------------------------------------------------------------------------


class PortContract:
    """What the port contracts share: fresh keys and ids, and closing ports after a test.

    A subclass that defines ``teardown_method`` calls the base one.
    """

    SHOP: ClassVar[str] = "shop-a"
    """The shop the tests act for."""

    OTHER_SHOP: ClassVar[str] = "shop-b"
    """Another shop, whose data the tests expect not to see."""

    def new_key(self, label: str) -> str:
        """A new idempotency key, never made before (keys carry a random run id, since a
        real system remembers the keys of earlier runs)."""
        return f"{self._run_id()}-{label}-{self._next_number()}"

    def new_id(self, label: str) -> str:
        """A new id for a return or an order, never made before (as :meth:`new_key`)."""
        return f"{label}-{self._run_id()}-{self._next_number()}"

    def opened(self, port: P) -> P:
        """Remember ``port`` so that it is closed after the test; return it."""
        self.__dict__.setdefault("_contract_ports", []).append(port)
        return port

    def teardown_method(self, method: object) -> None:
        for port in self.__dict__.pop("_contract_ports", []):
            _close(port)

    def _run_id(self) -> str:
        run_id: str = self.__dict__.setdefault("_contract_run_id", uuid.uuid4().hex[:10])
        return run_id

    def _next_number(self) -> int:
        counter: itertools.count[int] = self.__dict__.setdefault(
            "_contract_counter", itertools.count(1)
        )
        return next(counter)


class CommercePlatformContract(PortContract, abc.ABC):
    """The contract tests of a :class:`~returnflow.ports.commerce.CommercePlatform`.

    Implement :meth:`make_platform`; override :meth:`seed_order` when the platform is not
    seeded with an ``add_order(order)`` method. Each test seeds its own new order, built by
    :meth:`order_to_seed`, and reads it back with ``get_order``: amounts and lines of refunds
    follow the order as the platform reports it.
    """

    CURRENCY: ClassVar[str] = "EUR"
    """The currency of the seeded orders."""

    EXCHANGE_ITEMS: ClassVar[tuple[ExchangeItem, ...]] = (
        ExchangeItem(exchange_line_id="X1", variant_id="V-9", quantity=1, sku="SKU-9"),
        ExchangeItem(exchange_line_id="X2", variant_id="V-8", quantity=1, sku="SKU-8"),
    )
    """What the tests add on hold (at least two items, of variants the platform sells)."""

    HOLD_TAG: ClassVar[str] = "returnflow-exchange-hold"
    """The tag the tests put on held orders."""

    # -- what a host provides --------------------------------------------------------------

    @abc.abstractmethod
    def make_platform(self) -> CommercePlatform:
        """A platform adapter to test (called at most once per test)."""

    def seed_order(self, platform: CommercePlatform, order: OrderSnapshot) -> str | None:
        """Create ``order`` on the platform; return the id the platform knows it by
        (``None``: ``order.id``).

        The default calls ``platform.add_order(order)``, the way the fake is seeded; a host
        whose platform has no such method overrides this (for example to create the order in
        a sandbox shop through its admin API).
        """
        add_order = getattr(platform, "add_order", None)
        if not callable(add_order):
            raise ConfigurationError(
                f"{type(platform).__name__} has no add_order(order); override "
                f"{type(self).__name__}.seed_order(platform, order) to create the contract's "
                "orders on the platform and return their ids"
            )
        add_order(order)
        return None

    def order_to_seed(self, order_id: str) -> OrderSnapshot:
        """The order a test seeds (by default :func:`make_order` in :attr:`CURRENCY`)."""
        return make_order(self.SHOP, order_id, self.CURRENCY)

    # -- plumbing ------------------------------------------------------------------------------

    def open_platform(self) -> CommercePlatform:
        """:meth:`make_platform`, remembered so that the platform is closed after the test."""
        return self.opened(self.make_platform())

    def new_order(self, platform: CommercePlatform) -> OrderSnapshot:
        """Seed a new order and return it as ``get_order`` reports it."""
        order = self.order_to_seed(self.new_id("order"))
        order_id = self.seed_order(platform, order) or order.id
        return platform.get_order(self.SHOP, order_id)

    def hold(
        self,
        platform: CommercePlatform,
        order: OrderSnapshot,
        key: str | None = None,
        items: Sequence[ExchangeItem] | None = None,
    ) -> ExchangeHold:
        """Add exchange items (by default all of :attr:`EXCHANGE_ITEMS`) on hold."""
        return platform.add_exchange_items(
            self.SHOP,
            order.id,
            self.EXCHANGE_ITEMS if items is None else items,
            hold_tag=self.HOLD_TAG,
            idempotency_key=key if key is not None else self.new_key("hold"),
        )

    def status(
        self, platform: CommercePlatform, order: OrderSnapshot, hold: ExchangeHold
    ) -> HoldStatus:
        return platform.exchange_hold_status(self.SHOP, order.id, hold.hold_id)

    @staticmethod
    def all_units(order: OrderSnapshot) -> list[LineQuantity]:
        return [LineQuantity(line.id, line.quantity) for line in order.lines]

    # -- orders ----------------------------------------------------------------------------

    def test_get_order_returns_the_seeded_order(self) -> None:
        platform = self.open_platform()
        seeded = self.order_to_seed("unused")
        order = self.new_order(platform)
        assert (order.shop, order.currency) == (self.SHOP, self.CURRENCY), order
        assert order.paid_total == seeded.paid_total, (order.paid_total, seeded.paid_total)
        assert len(order.lines) == len(seeded.lines), order.lines
        assert platform.get_order(self.SHOP, order.id) == order, "two reads differ"

    def test_get_order_of_an_unknown_order_is_refused(self) -> None:
        platform = self.open_platform()
        self.new_order(platform)
        _refused(
            "get_order of an order that does not exist",
            lambda: platform.get_order(self.SHOP, self.new_id("no-such-order")),
        )

    def test_another_shops_order_is_unknown(self) -> None:
        platform = self.open_platform()
        order = self.new_order(platform)
        _refused(
            f"get_order of shop {self.SHOP!r}'s order asked for by shop {self.OTHER_SHOP!r}",
            lambda: platform.get_order(self.OTHER_SHOP, order.id),
        )

    # -- exchange holds --------------------------------------------------------------------

    def test_added_exchange_items_are_held(self) -> None:
        platform = self.open_platform()
        order = self.new_order(platform)
        hold = self.hold(platform, order)
        assert hold.hold_id, f"add_exchange_items returned an empty hold id: {hold!r}"
        assert len(hold.item_ids) == len(self.EXCHANGE_ITEMS), (
            f"{len(self.EXCHANGE_ITEMS)} items were added, the hold names {hold.item_ids!r}"
        )
        assert len(set(hold.item_ids)) == len(hold.item_ids), hold.item_ids
        status = self.status(platform, order, hold)
        assert status is HoldStatus.HELD, (
            f"exchange items must stay on hold until released; right after they were added "
            f"the hold is {status!r}"
        )

    def test_a_released_hold_is_released(self) -> None:
        platform = self.open_platform()
        order = self.new_order(platform)
        hold = self.hold(platform, order)
        key = self.new_key("release")

        def release() -> None:
            platform.release_exchange(
                self.SHOP, order.id, hold.hold_id, hold_tag=self.HOLD_TAG, idempotency_key=key
            )

        release()
        assert self.status(platform, order, hold) is HoldStatus.RELEASED
        _replayed("release_exchange", release)
        assert self.status(platform, order, hold) is HoldStatus.RELEASED

    def test_cancelling_every_item_cancels_the_hold(self) -> None:
        platform = self.open_platform()
        order = self.new_order(platform)
        hold = self.hold(platform, order)
        key = self.new_key("cancel")

        def cancel() -> None:
            platform.cancel_exchange_items(
                self.SHOP, order.id, hold.hold_id, hold.item_ids, idempotency_key=key
            )

        cancel()
        assert self.status(platform, order, hold) is HoldStatus.CANCELLED
        _replayed("cancel_exchange_items", cancel)
        assert self.status(platform, order, hold) is HoldStatus.CANCELLED

    def test_cancelling_some_items_keeps_the_rest_held(self) -> None:
        platform = self.open_platform()
        order = self.new_order(platform)
        hold = self.hold(platform, order)
        platform.cancel_exchange_items(
            self.SHOP, order.id, hold.hold_id, hold.item_ids[:1], idempotency_key=self.new_key("c")
        )
        assert self.status(platform, order, hold) is HoldStatus.HELD
        platform.release_exchange(
            self.SHOP,
            order.id,
            hold.hold_id,
            hold_tag=self.HOLD_TAG,
            idempotency_key=self.new_key("release"),
        )
        assert self.status(platform, order, hold) is HoldStatus.RELEASED

    def test_a_replayed_hold_is_the_same_hold_with_no_more_items(self) -> None:
        platform = self.open_platform()
        order = self.new_order(platform)
        key = self.new_key("hold")
        hold = self.hold(platform, order, key)
        again = _replayed("add_exchange_items", lambda: self.hold(platform, order, key))
        _same("add_exchange_items", hold, again)
        assert self.status(platform, order, hold) is HoldStatus.HELD
        # had the replay added the items again, cancelling the first ones would leave some
        platform.cancel_exchange_items(
            self.SHOP, order.id, hold.hold_id, hold.item_ids, idempotency_key=self.new_key("c")
        )
        assert self.status(platform, order, hold) is HoldStatus.CANCELLED, (
            "a replayed add_exchange_items added items again"
        )

    def test_a_hold_key_reused_with_other_items_is_refused(self) -> None:
        platform = self.open_platform()
        order = self.new_order(platform)
        key = self.new_key("hold")
        hold = self.hold(platform, order, key)
        _refused(
            "add_exchange_items with a used key and other items",
            lambda: self.hold(platform, order, key, items=self.EXCHANGE_ITEMS[:1]),
        )
        assert self.status(platform, order, hold) is HoldStatus.HELD

    def test_release_and_cancel_keys_reused_for_another_hold_are_refused(self) -> None:
        platform = self.open_platform()
        order = self.new_order(platform)
        first, second = self.hold(platform, order), self.hold(platform, order)
        release_key, cancel_key = self.new_key("release"), self.new_key("cancel")
        platform.release_exchange(
            self.SHOP, order.id, first.hold_id, hold_tag=self.HOLD_TAG, idempotency_key=release_key
        )
        _refused(
            "release_exchange of another hold with a used key",
            lambda: platform.release_exchange(
                self.SHOP,
                order.id,
                second.hold_id,
                hold_tag=self.HOLD_TAG,
                idempotency_key=release_key,
            ),
        )
        assert self.status(platform, order, second) is HoldStatus.HELD
        platform.cancel_exchange_items(
            self.SHOP, order.id, second.hold_id, second.item_ids[:1], idempotency_key=cancel_key
        )
        _refused(
            "cancel_exchange_items of other items with a used key",
            lambda: platform.cancel_exchange_items(
                self.SHOP, order.id, second.hold_id, second.item_ids[1:], idempotency_key=cancel_key
            ),
        )
        assert self.status(platform, order, second) is HoldStatus.HELD

    # -- refunds ---------------------------------------------------------------------------

    def test_a_refund_replay_refunds_once(self) -> None:
        platform = self.open_platform()
        order = self.new_order(platform)
        assert len(order.lines) >= 2, "the contract's order needs at least two lines"
        last = order.lines[-1]
        first_lines = [LineQuantity(last.id, last.quantity)]
        key = self.new_key("refund")

        def refund() -> RefundReceipt:
            return platform.refund(
                self.SHOP, order.id, last.paid_total, first_lines, idempotency_key=key
            )

        receipt = refund()
        assert receipt.refund_id, f"refund returned an empty refund id: {receipt!r}"
        assert receipt.amount == last.paid_total, receipt
        _same("refund", receipt, _replayed("refund", refund))
        rest = order.paid_total - last.paid_total
        rest_lines = [LineQuantity(line.id, line.quantity) for line in order.lines[:-1]]
        try:
            platform.refund(
                self.SHOP, order.id, rest, rest_lines, idempotency_key=self.new_key("r")
            )
        except PortError as error:
            raise AssertionError(
                f"refunding the rest of the order ({rest}) was refused ({error}): the replayed "
                "refund was refunded a second time"
            ) from error

    def test_a_refund_above_the_paid_total_is_refused(self) -> None:
        platform = self.open_platform()
        order = self.new_order(platform)
        paid = order.paid_total
        too_much = Money.from_minor_units(paid.minor_units + 1, paid.currency)
        _refused(
            f"refund of {too_much} on an order that paid {paid}",
            lambda: platform.refund(
                self.SHOP,
                order.id,
                too_much,
                self.all_units(order),
                idempotency_key=self.new_key("refund"),
            ),
        )
        # a refused refund refunded nothing: the whole order can still be refunded
        platform.refund(
            self.SHOP, order.id, paid, self.all_units(order), idempotency_key=self.new_key("r")
        )

    def test_refunds_add_up_to_at_most_the_paid_total(self) -> None:
        platform = self.open_platform()
        order = self.new_order(platform)
        last = order.lines[-1]
        rest = [LineQuantity(line.id, line.quantity) for line in order.lines[:-1]]
        platform.refund(
            self.SHOP,
            order.id,
            order.paid_total - last.paid_total,
            rest,
            idempotency_key=self.new_key("r"),
        )
        one_more = Money.from_minor_units(last.paid_total.minor_units + 1, order.currency)
        _refused(
            f"refund of {one_more} when {last.paid_total} is left to refund",
            lambda: platform.refund(
                self.SHOP,
                order.id,
                one_more,
                [LineQuantity(last.id, last.quantity)],
                idempotency_key=self.new_key("refund"),
            ),
        )

    def test_a_refund_in_another_currency_is_refused(self) -> None:
        platform = self.open_platform()
        order = self.new_order(platform)
        other = Money("1.00", _other_currency(order.currency))
        _refused(
            f"refund of {other} on an order in {order.currency}",
            lambda: platform.refund(
                self.SHOP,
                order.id,
                other,
                [LineQuantity(order.lines[-1].id, 1)],
                idempotency_key=self.new_key("refund"),
            ),
        )

    def test_a_refund_of_an_unknown_order_is_refused(self) -> None:
        platform = self.open_platform()
        order = self.new_order(platform)
        _refused(
            "refund of an order that does not exist",
            lambda: platform.refund(
                self.SHOP,
                self.new_id("no-such-order"),
                Money("1.00", order.currency),
                [LineQuantity(order.lines[-1].id, 1)],
                idempotency_key=self.new_key("refund"),
            ),
        )

    def test_a_refund_key_reused_with_another_amount_is_refused(self) -> None:
        platform = self.open_platform()
        order = self.new_order(platform)
        lines = [LineQuantity(order.lines[0].id, 1)]  # a line of 2 units: each call is valid
        key = self.new_key("refund")
        platform.refund(
            self.SHOP, order.id, Money("1.00", order.currency), lines, idempotency_key=key
        )
        _refused(
            "refund with a used key and another amount",
            lambda: platform.refund(
                self.SHOP, order.id, Money("2.00", order.currency), lines, idempotency_key=key
            ),
        )

    # -- store credit and restock ----------------------------------------------------------

    def test_store_credit_returns_a_receipt_with_the_amount(self) -> None:
        platform = self.open_platform()
        order = self.new_order(platform)
        amount = Money("5.00", order.currency)
        key = self.new_key("credit")

        def credit() -> CreditReceipt:
            return platform.issue_store_credit(self.SHOP, order.id, amount, idempotency_key=key)

        receipt = credit()
        assert receipt.credit_id, f"issue_store_credit returned an empty credit id: {receipt!r}"
        assert receipt.amount == amount, f"asked for {amount}, the receipt says {receipt!r}"
        _same("issue_store_credit", receipt, _replayed("issue_store_credit", credit))
        other = platform.issue_store_credit(
            self.SHOP, order.id, amount, idempotency_key=self.new_key("credit")
        )
        assert other.credit_id != receipt.credit_id, "two keys gave the same credit"

    def test_a_store_credit_key_reused_with_another_amount_is_refused(self) -> None:
        platform = self.open_platform()
        order = self.new_order(platform)
        key = self.new_key("credit")
        platform.issue_store_credit(
            self.SHOP, order.id, Money("5.00", order.currency), idempotency_key=key
        )
        _refused(
            "issue_store_credit with a used key and another amount",
            lambda: platform.issue_store_credit(
                self.SHOP, order.id, Money("6.00", order.currency), idempotency_key=key
            ),
        )

    def test_store_credit_in_another_currency_is_refused(self) -> None:
        platform = self.open_platform()
        order = self.new_order(platform)
        other = Money("5.00", _other_currency(order.currency))
        _refused(
            f"issue_store_credit of {other} on an order in {order.currency}",
            lambda: platform.issue_store_credit(
                self.SHOP, order.id, other, idempotency_key=self.new_key("credit")
            ),
        )

    def test_a_restock_replay_is_accepted_and_another_key_use_refused(self) -> None:
        platform = self.open_platform()
        order = self.new_order(platform)
        key = self.new_key("restock")
        lines = [LineQuantity(order.lines[-1].id, 1)]
        platform.restock(self.SHOP, order.id, lines, idempotency_key=key)
        _replayed(
            "restock", lambda: platform.restock(self.SHOP, order.id, lines, idempotency_key=key)
        )
        _refused(
            "restock of other lines with a used key",
            lambda: platform.restock(
                self.SHOP, order.id, [LineQuantity(order.lines[0].id, 1)], idempotency_key=key
            ),
        )


class WarehouseContract(PortContract, abc.ABC):
    """The contract tests of a :class:`~returnflow.ports.warehouse.Warehouse`.

    Implement :meth:`make_warehouse`. The returns are expected for :attr:`ORDER_ID`'s
    :attr:`LINES`; a warehouse that checks orders needs that order to exist.
    """

    ORDER_ID: ClassVar[str] = "1001"
    LINES: ClassVar[tuple[LineQuantity, ...]] = (LineQuantity("L1", 2), LineQuantity("L2", 1))
    REASON: ClassVar[str] = "size_too_small"
    ACTION: ClassVar[str] = "refund"
    LOCATION: ClassVar[str | None] = None
    """A location the warehouse runs, for the tests of returns sent to a location
    (:mod:`returnflow.domain.destinations`); ``None`` (the default): the warehouse has only
    its default location, and those tests are skipped."""

    @abc.abstractmethod
    def make_warehouse(self) -> Warehouse:
        """A warehouse adapter to test (called at most once per test)."""

    def open_warehouse(self) -> Warehouse:
        """:meth:`make_warehouse`, remembered so that it is closed after the test."""
        return self.opened(self.make_warehouse())

    def create(
        self,
        warehouse: Warehouse,
        key: str,
        return_id: str,
        lines: Sequence[LineQuantity] | None = None,
    ) -> WarehouseReturn:
        return warehouse.create_return(
            self.SHOP,
            self.ORDER_ID,
            return_id,
            self.LINES if lines is None else lines,
            reason=self.REASON,
            action=self.ACTION,
            idempotency_key=key,
        )

    def test_create_return_gives_an_rma_id(self) -> None:
        warehouse = self.open_warehouse()
        created = self.create(warehouse, self.new_key("rma"), self.new_id("return"))
        assert created.rma_id, f"create_return returned an empty rma id: {created!r}"

    def test_a_replayed_create_return_is_the_same_rma(self) -> None:
        warehouse = self.open_warehouse()
        key, return_id = self.new_key("rma"), self.new_id("return")
        created = self.create(warehouse, key, return_id)
        again = _replayed("create_return", lambda: self.create(warehouse, key, return_id))
        _same("create_return", created, again)

    def test_distinct_keys_create_distinct_returns(self) -> None:
        warehouse = self.open_warehouse()
        first = self.create(warehouse, self.new_key("rma"), self.new_id("return"))
        second = self.create(warehouse, self.new_key("rma"), self.new_id("return"))
        assert first.rma_id != second.rma_id, f"two returns got the same rma {first.rma_id!r}"

    def test_a_create_key_reused_with_other_lines_is_refused(self) -> None:
        warehouse = self.open_warehouse()
        key, return_id = self.new_key("rma"), self.new_id("return")
        self.create(warehouse, key, return_id)
        _refused(
            "create_return with a used key and other lines",
            lambda: self.create(warehouse, key, return_id, self.LINES[:1]),
        )

    def _at(self, warehouse: Warehouse, key: str, return_id: str, where: str) -> WarehouseReturn:
        return warehouse.create_return(
            self.SHOP,
            self.ORDER_ID,
            return_id,
            self.LINES,
            reason=self.REASON,
            action=self.ACTION,
            idempotency_key=key,
            location_id=where,
        )

    def _location(self) -> str:
        if self.LOCATION is None:
            import pytest

            pytest.skip("LOCATION is not set: the warehouse has only its default location")
        return self.LOCATION

    def test_a_return_expected_at_a_location_is_its_own_and_replays(self) -> None:
        where = self._location()
        warehouse = self.open_warehouse()
        key, return_id = self.new_key("rma"), self.new_id("return")
        created = self._at(warehouse, key, return_id, where)
        assert created.rma_id, f"create_return at {where!r} returned an empty rma id"
        again = _replayed("create_return", lambda: self._at(warehouse, key, return_id, where))
        _same("create_return at a location", created, again)
        other = self.create(warehouse, self.new_key("rma"), return_id)
        assert other.rma_id != created.rma_id, (
            f"the return at {where!r} and the one at the default location share {other.rma_id!r}"
        )

    def test_a_create_key_reused_at_another_location_is_refused(self) -> None:
        where = self._location()
        warehouse = self.open_warehouse()
        key, return_id = self.new_key("rma"), self.new_id("return")
        self._at(warehouse, key, return_id, where)
        _refused(
            "create_return with a used key at another location",
            lambda: self.create(warehouse, key, return_id),
        )

    def test_cancel_then_cancel_again_with_the_same_key(self) -> None:
        warehouse = self.open_warehouse()
        created = self.create(warehouse, self.new_key("rma"), self.new_id("return"))
        key = self.new_key("cancel")
        warehouse.cancel_return(self.SHOP, created.rma_id, idempotency_key=key)
        _replayed(
            "cancel_return",
            lambda: warehouse.cancel_return(self.SHOP, created.rma_id, idempotency_key=key),
        )

    def test_cancel_of_an_unknown_rma_is_refused(self) -> None:
        warehouse = self.open_warehouse()
        self.create(warehouse, self.new_key("rma"), self.new_id("return"))
        _refused(
            "cancel_return of an rma that does not exist",
            lambda: warehouse.cancel_return(
                self.SHOP, self.new_id("NO-SUCH-RMA"), idempotency_key=self.new_key("cancel")
            ),
        )

    def test_a_cancel_key_reused_for_another_rma_is_refused(self) -> None:
        warehouse = self.open_warehouse()
        first = self.create(warehouse, self.new_key("rma"), self.new_id("return"))
        second = self.create(warehouse, self.new_key("rma"), self.new_id("return"))
        key = self.new_key("cancel")
        warehouse.cancel_return(self.SHOP, first.rma_id, idempotency_key=key)
        _refused(
            "cancel_return of another rma with a used key",
            lambda: warehouse.cancel_return(self.SHOP, second.rma_id, idempotency_key=key),
        )
        # the refused cancel did nothing: the second return can still be cancelled
        warehouse.cancel_return(self.SHOP, second.rma_id, idempotency_key=self.new_key("c"))


class CarrierContract(PortContract, abc.ABC):
    """The contract tests of a :class:`~returnflow.ports.carrier.Carrier`.

    Implement :meth:`make_carrier`. Labels are bought for :attr:`ORDER_ID`.
    """

    ORDER_ID: ClassVar[str] = "1001"

    METHODS: ClassVar[tuple[ReturnMethod, ...]] = (
        ReturnMethod.MAIL,
        ReturnMethod.DROP_OFF,
        ReturnMethod.PICKUP,
    )
    """The return methods the carrier serves (by default every one that needs a label); a
    carrier that only sells mail labels says ``(ReturnMethod.MAIL,)``, and must then refuse
    the others. No carrier serves ``in_store``: the service never asks one for it."""

    @abc.abstractmethod
    def make_carrier(self) -> Carrier:
        """A carrier adapter to test (called at most once per test)."""

    def open_carrier(self) -> Carrier:
        """:meth:`make_carrier`, remembered so that it is closed after the test."""
        return self.opened(self.make_carrier())

    def label(self, carrier: Carrier, key: str, return_id: str) -> Label:
        return carrier.create_label(self.SHOP, return_id, self.ORDER_ID, idempotency_key=key)

    def label_for(self, carrier: Carrier, key: str, return_id: str, method: ReturnMethod) -> Label:
        """A label for ``method``, asked as the service asks (``method`` passed only when it
        is not ``mail``: :func:`~returnflow.ports.carrier.ask_for_label`). A carrier whose
        ``create_label`` takes no ``method`` fails with an ``AssertionError`` that says so."""
        try:
            return ask_for_label(carrier, self.SHOP, return_id, self.ORDER_ID, key, method)
        except TypeError as error:
            if "method" not in str(error):
                raise
            raise AssertionError(
                f"create_label takes no method ({error}): a carrier takes method= and sells "
                "the labels of the methods it serves (CarrierContract.METHODS), refusing the "
                "others with PortError(retryable=False)"
            ) from error

    def test_each_method_it_serves_gets_a_label_and_a_drop_off_a_qr_code(self) -> None:
        carrier = self.open_carrier()
        tracking: dict[str, ReturnMethod] = {}
        for method in self.METHODS:
            label = self.label_for(carrier, self.new_key("label"), self.new_id("return"), method)
            assert label.tracking_number, (
                f"a {method.value} label has no tracking number: {label!r}"
            )
            assert label.label_url, f"a {method.value} label has no label url: {label!r}"
            assert label.tracking_number not in tracking, (
                f"a {method.value} label got the tracking number {label.tracking_number!r} of "
                f"the {tracking.get(label.tracking_number, method).value} label"
            )
            tracking[label.tracking_number] = method
            if method is ReturnMethod.DROP_OFF:
                qr = label.qr_code_url if isinstance(label.qr_code_url, str) else ""
                assert qr, (
                    "a drop-off label must carry the QR code the customer shows at the "
                    f"drop-off point (Label.qr_code_url), but got {label!r}"
                )

    def test_a_replayed_label_of_each_method_is_the_same_label(self) -> None:
        carrier = self.open_carrier()
        for method in self.METHODS:
            key, return_id = self.new_key("label"), self.new_id("return")
            label = self.label_for(carrier, key, return_id, method)
            again = _replayed(
                f"create_label for {method.value}",
                lambda: self.label_for(carrier, key, return_id, method),  # noqa: B023
            )
            _same(f"create_label for {method.value}", label, again)

    def test_a_label_key_reused_for_another_method_is_refused(self) -> None:
        carrier = self.open_carrier()
        first = self.METHODS[0]
        for method in _LABEL_METHODS:
            if method is first:
                continue
            key, return_id = self.new_key("label"), self.new_id("return")
            self.label_for(carrier, key, return_id, first)
            _refused(
                f"create_label for {method.value} with the key of a {first.value} label",
                lambda: self.label_for(carrier, key, return_id, method),  # noqa: B023
            )

    def test_a_method_it_does_not_serve_is_refused(self) -> None:
        carrier = self.open_carrier()
        for method in ReturnMethod:
            if method in self.METHODS:
                continue
            _refused(
                f"create_label for {method.value}, a method the carrier does not serve",
                lambda: self.label_for(
                    carrier,
                    self.new_key("label"),
                    self.new_id("return"),
                    method,  # noqa: B023
                ),
            )

    def test_create_label_gives_a_tracking_number_and_url(self) -> None:
        carrier = self.open_carrier()
        label = self.label(carrier, self.new_key("label"), self.new_id("return"))
        assert label.tracking_number, f"create_label returned no tracking number: {label!r}"
        assert label.label_url, f"create_label returned no label url: {label!r}"

    def test_a_replayed_create_label_is_the_same_label(self) -> None:
        carrier = self.open_carrier()
        key, return_id = self.new_key("label"), self.new_id("return")
        label = self.label(carrier, key, return_id)
        again = _replayed("create_label", lambda: self.label(carrier, key, return_id))
        assert again.tracking_number == label.tracking_number, (
            f"create_label repeated with its key bought another label: {again.tracking_number!r}"
            f" instead of {label.tracking_number!r}"
        )
        _same("create_label", label, again)

    def test_distinct_keys_buy_distinct_labels(self) -> None:
        carrier = self.open_carrier()
        first = self.label(carrier, self.new_key("label"), self.new_id("return"))
        second = self.label(carrier, self.new_key("label"), self.new_id("return"))
        assert first.tracking_number != second.tracking_number, (
            f"two labels got the same tracking number {first.tracking_number!r}"
        )

    def test_a_label_key_reused_for_another_return_is_refused(self) -> None:
        carrier = self.open_carrier()
        key = self.new_key("label")
        self.label(carrier, key, self.new_id("return"))
        _refused(
            "create_label for another return with a used key",
            lambda: self.label(carrier, key, self.new_id("return")),
        )

    def test_void_then_void_again_with_the_same_key(self) -> None:
        carrier = self.open_carrier()
        label = self.label(carrier, self.new_key("label"), self.new_id("return"))
        key = self.new_key("void")
        carrier.void_label(self.SHOP, label.tracking_number, idempotency_key=key)
        _replayed(
            "void_label",
            lambda: carrier.void_label(self.SHOP, label.tracking_number, idempotency_key=key),
        )

    def test_void_of_an_unknown_label_is_refused(self) -> None:
        carrier = self.open_carrier()
        self.label(carrier, self.new_key("label"), self.new_id("return"))
        _refused(
            "void_label of a label that does not exist",
            lambda: carrier.void_label(
                self.SHOP, self.new_id("NO-SUCH-LABEL"), idempotency_key=self.new_key("void")
            ),
        )

    def test_a_void_key_reused_for_another_label_is_refused(self) -> None:
        carrier = self.open_carrier()
        first = self.label(carrier, self.new_key("label"), self.new_id("return"))
        second = self.label(carrier, self.new_key("label"), self.new_id("return"))
        key = self.new_key("void")
        carrier.void_label(self.SHOP, first.tracking_number, idempotency_key=key)
        _refused(
            "void_label of another label with a used key",
            lambda: carrier.void_label(self.SHOP, second.tracking_number, idempotency_key=key),
        )


class PaymentsContract(PortContract, abc.ABC):
    """The contract tests of :class:`~returnflow.ports.payments.Payments`.

    Implement :meth:`make_payments`; override :meth:`seed_return` when a return needs
    something on the processor's side before it can be charged (a test card, a customer).
    """

    CURRENCY: ClassVar[str] = "EUR"

    @abc.abstractmethod
    def make_payments(self) -> Payments:
        """A payments adapter to test (called at most once per test)."""

    def seed_return(self, payments: Payments, return_id: str) -> None:
        """Prepare ``return_id`` of :attr:`SHOP` to be charged (by default: nothing)."""

    def open_payments(self) -> Payments:
        """:meth:`make_payments`, remembered so that it is closed after the test."""
        return self.opened(self.make_payments())

    def new_return(self, payments: Payments) -> str:
        """A new return id, seeded with :meth:`seed_return`."""
        return_id = self.new_id("return")
        self.seed_return(payments, return_id)
        return return_id

    def money(self, amount: str) -> Money:
        return Money(amount, self.CURRENCY)

    def test_charge_then_refund_what_was_charged(self) -> None:
        payments = self.open_payments()
        return_id = self.new_return(payments)
        charged = payments.charge(
            self.SHOP, return_id, self.money("10.00"), idempotency_key=self.new_key("charge")
        )
        assert charged.payment_id, f"charge returned an empty payment id: {charged!r}"
        assert charged.amount == self.money("10.00"), charged
        for amount in ("4.00", "6.00"):
            refunded = payments.refund(
                self.SHOP, return_id, self.money(amount), idempotency_key=self.new_key("refund")
            )
            assert refunded.amount == self.money(amount), refunded
            assert refunded.payment_id, f"refund returned an empty payment id: {refunded!r}"

    def test_a_refund_above_what_was_charged_is_refused(self) -> None:
        payments = self.open_payments()
        return_id = self.new_return(payments)
        payments.charge(
            self.SHOP, return_id, self.money("10.00"), idempotency_key=self.new_key("charge")
        )
        _refused(
            "refund of 10.01 after a charge of 10.00",
            lambda: payments.refund(
                self.SHOP, return_id, self.money("10.01"), idempotency_key=self.new_key("refund")
            ),
        )
        payments.refund(
            self.SHOP, return_id, self.money("7.00"), idempotency_key=self.new_key("refund")
        )
        _refused(
            "refund of 3.01 when 3.00 of the charge is left",
            lambda: payments.refund(
                self.SHOP, return_id, self.money("3.01"), idempotency_key=self.new_key("refund")
            ),
        )

    def test_a_refund_of_nothing_charged_is_refused(self) -> None:
        payments = self.open_payments()
        return_id = self.new_return(payments)
        _refused(
            "refund of a return that was never charged",
            lambda: payments.refund(
                self.SHOP, return_id, self.money("1.00"), idempotency_key=self.new_key("refund")
            ),
        )

    def test_non_positive_amounts_are_refused(self) -> None:
        payments = self.open_payments()
        return_id = self.new_return(payments)
        payments.charge(
            self.SHOP, return_id, self.money("10.00"), idempotency_key=self.new_key("charge")
        )
        operations: dict[str, Callable[..., PaymentReceipt]] = {
            "charge": payments.charge,
            "authorize": payments.authorize,
            "refund": payments.refund,
        }
        for name, operation in operations.items():
            for amount in ("0.00", "-1.00"):
                _refused(
                    f"{name} of {amount}",
                    functools.partial(
                        operation,
                        self.SHOP,
                        return_id,
                        self.money(amount),
                        idempotency_key=self.new_key(name),
                    ),
                )

    def test_a_replayed_charge_charges_once(self) -> None:
        payments = self.open_payments()
        return_id = self.new_return(payments)
        key = self.new_key("charge")

        def charge() -> PaymentReceipt:
            return payments.charge(self.SHOP, return_id, self.money("10.00"), idempotency_key=key)

        receipt = charge()
        _same("charge", receipt, _replayed("charge", charge))
        payments.refund(
            self.SHOP, return_id, self.money("10.00"), idempotency_key=self.new_key("refund")
        )
        _refused(
            "refund beyond a charge of 10.00 that was replayed once (a replay must not charge "
            "again)",
            lambda: payments.refund(
                self.SHOP, return_id, self.money("0.01"), idempotency_key=self.new_key("refund")
            ),
        )

    def test_a_replayed_refund_refunds_once(self) -> None:
        payments = self.open_payments()
        return_id = self.new_return(payments)
        payments.charge(
            self.SHOP, return_id, self.money("10.00"), idempotency_key=self.new_key("charge")
        )
        key = self.new_key("refund")

        def refund() -> PaymentReceipt:
            return payments.refund(self.SHOP, return_id, self.money("6.00"), idempotency_key=key)

        receipt = refund()
        _same("refund", receipt, _replayed("refund", refund))
        try:
            payments.refund(
                self.SHOP, return_id, self.money("4.00"), idempotency_key=self.new_key("refund")
            )
        except PortError as error:
            raise AssertionError(
                f"refunding the 4.00 left of a 10.00 charge was refused ({error}): the "
                "replayed refund of 6.00 was refunded a second time"
            ) from error

    def test_a_replayed_authorization_is_the_same(self) -> None:
        payments = self.open_payments()
        return_id = self.new_return(payments)
        key = self.new_key("authorize")

        def authorize() -> PaymentReceipt:
            return payments.authorize(
                self.SHOP, return_id, self.money("10.00"), idempotency_key=key
            )

        receipt = authorize()
        assert receipt.payment_id, f"authorize returned an empty payment id: {receipt!r}"
        assert receipt.amount == self.money("10.00"), receipt
        _same("authorize", receipt, _replayed("authorize", authorize))

    def authorized(self, payments: Payments, return_id: str, amount: str = "10.00") -> str:
        """Authorize ``amount`` for ``return_id`` under a new key; the authorization's id."""
        receipt = payments.authorize(
            self.SHOP, return_id, self.money(amount), idempotency_key=self.new_key("authorize")
        )
        assert receipt.payment_id, f"authorize returned an empty payment id: {receipt!r}"
        return receipt.payment_id

    def test_authorize_then_capture_at_most_the_amount(self) -> None:
        payments = self.open_payments()
        return_id = self.new_return(payments)
        authorization = self.authorized(payments, return_id)
        other = Money("8.00", _other_currency(self.CURRENCY))
        for amount, why in (
            (self.money("10.01"), "above the 10.00 authorized"),
            (self.money("0.00"), "of nothing"),
            (self.money("-1.00"), "of a negative amount"),
            (other, "in another currency"),
        ):
            _refused(
                f"capture of {amount} {why}",
                functools.partial(
                    payments.capture,
                    self.SHOP,
                    return_id,
                    authorization,
                    amount,
                    idempotency_key=self.new_key("capture"),
                ),
            )
        captured = payments.capture(
            self.SHOP,
            return_id,
            authorization,
            self.money("8.00"),
            idempotency_key=self.new_key("capture"),
        )
        assert captured.payment_id, f"capture returned an empty payment id: {captured!r}"
        assert captured.amount == self.money("8.00"), (
            f"a capture of 8.00 of a 10.00 authorization must answer 8.00: {captured!r}"
        )

    def test_authorize_then_void(self) -> None:
        payments = self.open_payments()
        return_id = self.new_return(payments)
        authorization = self.authorized(payments, return_id)
        payments.void(self.SHOP, return_id, authorization, idempotency_key=self.new_key("void"))

    def test_capture_or_void_of_an_unknown_authorization_is_refused(self) -> None:
        payments = self.open_payments()
        return_id = self.new_return(payments)
        authorization = self.authorized(payments, return_id)
        unknown = self.new_id("NO-SUCH-AUTHORIZATION")
        _refused(
            "capture of an authorization that does not exist",
            lambda: payments.capture(
                self.SHOP,
                return_id,
                unknown,
                self.money("1.00"),
                idempotency_key=self.new_key("capture"),
            ),
        )
        _refused(
            "void of an authorization that does not exist",
            lambda: payments.void(
                self.SHOP, return_id, unknown, idempotency_key=self.new_key("void")
            ),
        )
        _refused(
            "capture of another shop's authorization",
            lambda: payments.capture(
                self.OTHER_SHOP,
                return_id,
                authorization,
                self.money("1.00"),
                idempotency_key=self.new_key("capture"),
            ),
        )
        _refused(
            "void of another shop's authorization",
            lambda: payments.void(
                self.OTHER_SHOP, return_id, authorization, idempotency_key=self.new_key("void")
            ),
        )

    def test_a_capture_after_a_void_is_refused(self) -> None:
        payments = self.open_payments()
        return_id = self.new_return(payments)
        authorization = self.authorized(payments, return_id)
        payments.void(self.SHOP, return_id, authorization, idempotency_key=self.new_key("void"))
        _refused(
            "capture of a voided authorization",
            lambda: payments.capture(
                self.SHOP,
                return_id,
                authorization,
                self.money("1.00"),
                idempotency_key=self.new_key("capture"),
            ),
        )
        _refused(
            "void (under a new key) of a voided authorization",
            lambda: payments.void(
                self.SHOP, return_id, authorization, idempotency_key=self.new_key("void")
            ),
        )

    def test_a_void_after_a_capture_is_refused(self) -> None:
        payments = self.open_payments()
        return_id = self.new_return(payments)
        authorization = self.authorized(payments, return_id)
        payments.capture(
            self.SHOP,
            return_id,
            authorization,
            self.money("4.00"),
            idempotency_key=self.new_key("capture"),
        )
        _refused(
            "void of a captured authorization",
            lambda: payments.void(
                self.SHOP, return_id, authorization, idempotency_key=self.new_key("void")
            ),
        )
        _refused(
            "capture (under a new key) of the rest of a captured authorization",
            lambda: payments.capture(
                self.SHOP,
                return_id,
                authorization,
                self.money("6.00"),
                idempotency_key=self.new_key("capture"),
            ),
        )

    def test_a_replayed_capture_captures_once(self) -> None:
        payments = self.open_payments()
        return_id = self.new_return(payments)
        authorization = self.authorized(payments, return_id)
        key = self.new_key("capture")

        def capture() -> PaymentReceipt:
            return payments.capture(
                self.SHOP, return_id, authorization, self.money("10.00"), idempotency_key=key
            )

        receipt = capture()
        _same("capture", receipt, _replayed("capture", capture))
        try:
            payments.refund(
                self.SHOP, return_id, self.money("10.00"), idempotency_key=self.new_key("refund")
            )
        except PortError as error:
            raise AssertionError(
                f"refunding the 10.00 captured of an authorization was refused ({error}): what "
                "is captured must be refundable like a charge"
            ) from error
        _refused(
            "refund beyond a capture of 10.00 that was replayed once (a replay must not "
            "capture again)",
            lambda: payments.refund(
                self.SHOP, return_id, self.money("0.01"), idempotency_key=self.new_key("refund")
            ),
        )

    def test_a_replayed_void_is_accepted_and_voids_once(self) -> None:
        payments = self.open_payments()
        return_id = self.new_return(payments)
        authorization = self.authorized(payments, return_id)
        key = self.new_key("void")

        def void() -> None:
            payments.void(self.SHOP, return_id, authorization, idempotency_key=key)

        void()
        _replayed("void", void)
        _refused(
            "capture of an authorization voided (and the void replayed)",
            lambda: payments.capture(
                self.SHOP,
                return_id,
                authorization,
                self.money("1.00"),
                idempotency_key=self.new_key("capture"),
            ),
        )

    def test_capture_and_void_keys_reused_for_another_authorization_are_refused(self) -> None:
        payments = self.open_payments()
        return_id = self.new_return(payments)
        first, second, third, fourth = (self.authorized(payments, return_id) for _ in range(4))
        capture_key = self.new_key("capture")
        payments.capture(
            self.SHOP, return_id, first, self.money("5.00"), idempotency_key=capture_key
        )
        _refused(
            "capture of another authorization with a used key",
            lambda: payments.capture(
                self.SHOP, return_id, second, self.money("5.00"), idempotency_key=capture_key
            ),
        )
        void_key = self.new_key("void")
        payments.void(self.SHOP, return_id, third, idempotency_key=void_key)
        _refused(
            "void of another authorization with a used key",
            lambda: payments.void(self.SHOP, return_id, fourth, idempotency_key=void_key),
        )

    def test_distinct_keys_capture_and_void_separately(self) -> None:
        payments = self.open_payments()
        return_id = self.new_return(payments)
        first, second, third = (self.authorized(payments, return_id) for _ in range(3))
        assert len({first, second, third}) == 3, "three authorizations got the same payment id"
        captures = [
            payments.capture(
                self.SHOP,
                return_id,
                authorization,
                self.money("10.00"),
                idempotency_key=self.new_key("capture"),
            )
            for authorization in (first, second)
        ]
        assert captures[0].payment_id != captures[1].payment_id, (
            f"two captures of two authorizations got the same payment id: {captures!r}"
        )
        payments.void(self.SHOP, return_id, third, idempotency_key=self.new_key("void"))
        try:
            payments.refund(
                self.SHOP, return_id, self.money("20.00"), idempotency_key=self.new_key("refund")
            )
        except PortError as error:
            raise AssertionError(
                f"refunding the 20.00 of two captures of 10.00 was refused ({error}): captures "
                "under distinct keys must each capture"
            ) from error

    def test_distinct_keys_make_distinct_payments(self) -> None:
        payments = self.open_payments()
        return_id = self.new_return(payments)
        first, second = (
            payments.charge(
                self.SHOP, return_id, self.money("1.00"), idempotency_key=self.new_key("charge")
            )
            for _ in range(2)
        )
        assert first.payment_id != second.payment_id, "two charges got the same payment id"

    def test_a_payment_key_reused_with_another_amount_is_refused(self) -> None:
        payments = self.open_payments()
        return_id = self.new_return(payments)
        key = self.new_key("charge")
        payments.charge(self.SHOP, return_id, self.money("10.00"), idempotency_key=key)
        _refused(
            "charge with a used key and another amount",
            lambda: payments.charge(self.SHOP, return_id, self.money("11.00"), idempotency_key=key),
        )
        refund_key = self.new_key("refund")
        payments.refund(self.SHOP, return_id, self.money("1.00"), idempotency_key=refund_key)
        _refused(
            "refund with a used key and another amount",
            lambda: payments.refund(
                self.SHOP, return_id, self.money("2.00"), idempotency_key=refund_key
            ),
        )


class NotifierContract(PortContract, abc.ABC):
    """The contract tests of a :class:`~returnflow.ports.notifier.Notifier`.

    Implement :meth:`make_notifier`; messages go to :attr:`RECIPIENT` with :attr:`TEMPLATE`.
    """

    RECIPIENT: ClassVar[str] = "customer@example.com"
    TEMPLATE: ClassVar[str] = "return_approved"

    @abc.abstractmethod
    def make_notifier(self) -> Notifier:
        """A notifier adapter to test (called at most once per test)."""

    def open_notifier(self) -> Notifier:
        """:meth:`make_notifier`, remembered so that it is closed after the test."""
        return self.opened(self.make_notifier())

    def test_a_replayed_message_is_accepted(self) -> None:
        notifier = self.open_notifier()
        key = self.new_key("notify")
        context = {"return_id": self.new_id("return"), "lines": [{"sku": "SKU-1", "qty": 1}]}

        def notify() -> None:
            notifier.notify(self.SHOP, self.RECIPIENT, self.TEMPLATE, context, idempotency_key=key)

        notify()
        _replayed("notify", notify)

    def test_a_notify_key_reused_with_another_message_is_refused(self) -> None:
        notifier = self.open_notifier()
        key = self.new_key("notify")
        notifier.notify(self.SHOP, self.RECIPIENT, self.TEMPLATE, {"n": 1}, idempotency_key=key)
        _refused(
            "notify with a used key and another context",
            lambda: notifier.notify(
                self.SHOP, self.RECIPIENT, self.TEMPLATE, {"n": 2}, idempotency_key=key
            ),
        )


class EventPublisherContract(PortContract, abc.ABC):
    """The contract tests of an :class:`~returnflow.ports.events.EventPublisher`.

    Implement :meth:`make_publisher`.
    """

    TOPIC: ClassVar[str] = "returns/update"

    @abc.abstractmethod
    def make_publisher(self) -> EventPublisher:
        """A publisher adapter to test (called at most once per test)."""

    def open_publisher(self) -> EventPublisher:
        """:meth:`make_publisher`, remembered so that it is closed after the test."""
        return self.opened(self.make_publisher())

    def event(self, return_id: str, **payload: Any) -> DomainEvent:
        return DomainEvent(self.TOPIC, self.SHOP, return_id, {"return_id": return_id, **payload})

    def test_a_replayed_event_is_accepted(self) -> None:
        publisher = self.open_publisher()
        key = self.new_key("publish")
        event = self.event(self.new_id("return"), version=2)
        publisher.publish(event, idempotency_key=key)
        _replayed("publish", lambda: publisher.publish(event, idempotency_key=key))

    def test_a_publish_key_reused_with_another_event_is_refused(self) -> None:
        publisher = self.open_publisher()
        key = self.new_key("publish")
        return_id = self.new_id("return")
        publisher.publish(self.event(return_id, version=2), idempotency_key=key)
        _refused(
            "publish with a used key and another payload",
            lambda: publisher.publish(self.event(return_id, version=3), idempotency_key=key),
        )


class ReturnSourceContract(PortContract, abc.ABC):
    """The contract tests of a :class:`~returnflow.ports.source.ReturnSource`.

    Implement :meth:`make_source`. Returns are put at the source with :meth:`seed_return`,
    changed with :meth:`update_return` and bad data with :meth:`seed_bad_return` (by default
    the fake's ``add`` and ``add_payload``); each returns the return as the source then
    reports it, and the tests go by what it reports (its times, its ids). Each test makes
    returns with ids of its own and looks only at those, so a sandbox holding other returns
    does no harm. :attr:`ORDER_ID` is the order the returns are of.
    """

    ORDER_ID: ClassVar[str] = "1001"
    START: ClassVar[datetime] = datetime(2026, 1, 12, 9, 0, tzinfo=timezone.utc)
    """When the first return of a test was created; the next ones follow a minute apart."""

    # -- what a host provides --------------------------------------------------------------

    @abc.abstractmethod
    def make_source(self) -> ReturnSource:
        """A source adapter to test (called at most once per test)."""

    def seed_return(self, source: ReturnSource, external: ExternalReturn) -> ExternalReturn:
        """Create ``external`` at the source; return it as the source reports it.

        The default calls ``source.add(external)``, the way the fake is seeded.
        """
        return self._call_hook(source, "add", "seed_return", external)

    def update_return(self, source: ReturnSource, external: ExternalReturn) -> ExternalReturn:
        """Change a return at the source to ``external`` (a later ``updated_at``); return it
        as the source reports it. The default calls ``source.add(external)``."""
        return self._call_hook(source, "add", "update_return", external)

    def seed_bad_return(
        self, source: ReturnSource, shop: str, external_id: str, at: datetime
    ) -> None:
        """Put a return at the source whose data cannot be read (here: a quantity of
        ``"many"``), updated at ``at``. The default calls the fake's ``add_payload``."""
        add_payload = getattr(source, "add_payload", None)
        if not callable(add_payload):
            raise ConfigurationError(
                f"{type(source).__name__} has no add_payload(...); override "
                f"{type(self).__name__}.seed_bad_return(source, shop, external_id, at) to put "
                "a return with bad data at the source"
            )
        add_payload(
            shop,
            external_id,
            {
                "source": source.name,
                "external_id": external_id,
                "shop": shop,
                "order_id": self.ORDER_ID,
                "created_at": at.isoformat(),
                "updated_at": at.isoformat(),
                "lines": [{"order_line_id": "L1", "quantity": "many"}],
            },
            updated_at=at,
        )

    def _call_hook(
        self, source: ReturnSource, method: str, hook: str, external: ExternalReturn
    ) -> ExternalReturn:
        add = getattr(source, method, None)
        if not callable(add):
            raise ConfigurationError(
                f"{type(source).__name__} has no {method}(external); override "
                f"{type(self).__name__}.{hook}(source, external) to put the contract's "
                "returns at the source and return them as it reports them"
            )
        add(external)
        return external

    # -- plumbing ------------------------------------------------------------------------------

    def open_source(self) -> ReturnSource:
        """:meth:`make_source`, remembered so that the source is closed after the test."""
        return self.opened(self.make_source())

    def external(
        self, source: ReturnSource, minute: int = 0, *, shop: str | None = None, **changes: Any
    ) -> ExternalReturn:
        """A new return (a new id) created and updated ``minute`` minutes after
        :attr:`START`: a refund of L1, store credit on L2."""
        at = self.START + timedelta(minutes=minute)
        external = ExternalReturn(
            source=source.name,
            external_id=self.new_id("ret"),
            shop=shop or self.SHOP,
            order_id=self.ORDER_ID,
            lines=(
                ExternalLine(order_line_id="L1", quantity=1),
                ExternalLine(order_line_id="L2", quantity=1, outcome=StoreCredit()),
            ),
            created_at=at,
            updated_at=at,
        )
        return attrs.evolve(external, **changes) if changes else external

    def seeded(self, source: ReturnSource, *minutes: int) -> list[ExternalReturn]:
        """New returns at the source, one per minute offset, as the source reports them."""
        return [self.seed_return(source, self.external(source, minute)) for minute in minutes]

    def listing(
        self,
        source: ReturnSource,
        since: datetime,
        until: datetime,
        *,
        shop: str | None = None,
        limit: int = 100,
    ) -> list[SourcePage]:
        """Every page of a listing, following the tokens (at most 1,000 pages)."""
        pages: list[SourcePage] = []
        token: str | None = None
        for _ in range(1000):
            page = source.list_returns(shop or self.SHOP, since, until, page=token, limit=limit)
            pages.append(page)
            if page.next_page is None:
                return pages
            token = page.next_page
        raise AssertionError("a listing did not end within 1,000 pages")

    @staticmethod
    def ids(pages: Sequence[SourcePage], mine: Sequence[ExternalReturn]) -> list[str]:
        """The ids of ``mine`` in the order the pages list them (repeats kept)."""
        wanted = {external.external_id for external in mine}
        return [
            external.external_id
            for page in pages
            for external in page.returns
            if external.external_id in wanted
        ]

    @staticmethod
    def window(returns: Sequence[ExternalReturn]) -> tuple[datetime, datetime]:
        """``[first updated_at, last updated_at + 1 s)``: a window holding every one."""
        moments = [external.updated_at for external in returns]
        return min(moments), max(moments) + timedelta(seconds=1)

    # -- fetching ------------------------------------------------------------------------

    def test_get_return_returns_the_return(self) -> None:
        source = self.open_source()
        seeded = self.seed_return(
            source,
            self.external(
                source,
                lines=(
                    ExternalLine(
                        order_line_id="L1", quantity=2, outcome=Exchange(variant_id="V-9")
                    ),
                ),
            ),
        )
        got = source.get_return(self.SHOP, seeded.external_id)
        assert got == seeded, f"get_return answered {got!r} for the return {seeded!r}"
        assert got is not None
        assert (got.source, got.shop) == (source.name, self.SHOP), got

    def test_get_return_of_an_unknown_id_is_none(self) -> None:
        source = self.open_source()
        self.seeded(source, 0)
        missing = self.new_id("no_such_return")
        try:
            got = source.get_return(self.SHOP, missing)
        except PortError as error:
            raise AssertionError(
                f"get_return of a return the source does not have must answer None, but it "
                f"raised {error!r}"
            ) from error
        assert got is None, f"get_return of a return the source does not have gave {got!r}"

    def test_another_shops_return_is_invisible(self) -> None:
        source = self.open_source()
        (theirs,) = [self.seed_return(source, self.external(source, 0, shop=self.OTHER_SHOP))]
        (mine,) = self.seeded(source, 1)
        assert source.get_return(self.SHOP, theirs.external_id) is None, (
            f"shop {self.SHOP!r} can fetch shop {self.OTHER_SHOP!r}'s return"
        )
        since, until = self.window([theirs, mine])
        listed = self.ids(self.listing(source, since, until), [theirs, mine])
        assert listed == [mine.external_id], (
            f"a listing of shop {self.SHOP!r} gave {listed!r}; it must hold its own return "
            f"{mine.external_id!r} only"
        )

    # -- listing ------------------------------------------------------------------------

    def test_since_is_in_the_window_and_until_is_not(self) -> None:
        source = self.open_source()
        first, second, third = self.seeded(source, 0, 1, 2)
        everything = [first, second, third]
        listed = self.ids(self.listing(source, second.updated_at, third.updated_at), everything)
        assert listed == [second.external_id], (
            f"the window [second's updated_at, third's updated_at) listed {listed!r}: since is "
            "in the window, until is not"
        )
        since, until = self.window(everything)
        listed = self.ids(self.listing(source, since, until), everything)
        assert listed == [item.external_id for item in everything], listed
        after = self.ids(self.listing(source, until, until + timedelta(hours=1)), everything)
        assert after == [], f"a window after every return listed {after!r}"

    def test_a_return_created_in_the_window_and_updated_after_it_is_listed(self) -> None:
        source = self.open_source()
        created = self.START + timedelta(minutes=30)
        external = self.seed_return(
            source,
            self.external(source, 30, updated_at=created + timedelta(hours=2)),
        )
        listed = self.ids(self.listing(source, created, created + timedelta(hours=1)), [external])
        assert listed == [external.external_id], (
            "a return created in the window and updated after it must be listed (a listing "
            f"holds the returns created or updated in the window); it listed {listed!r}"
        )

    def test_pages_are_bounded_ordered_and_complete(self) -> None:
        source = self.open_source()
        everything = self.seeded(source, 0, 1, 1, 1, 2, 3, 4)  # three at the same minute
        since, until = self.window(everything)
        pages = self.listing(source, since, until, limit=2)
        for page in pages:
            size = len(page.returns) + len(page.rejected)
            assert size <= 2, f"a page of limit 2 held {size} returns"
        assert pages[-1].next_page is None
        listed = [external for page in pages for external in page.returns]
        keys = [(external.updated_at, external.external_id) for external in listed]
        assert keys == sorted(keys), f"pages are not ordered by (updated_at, external_id): {keys}"
        ids = self.ids(pages, everything)
        assert sorted(ids) == sorted(item.external_id for item in everything), (
            f"paging through the window listed {ids!r}, not each of the {len(everything)} "
            "returns once"
        )

    def test_a_return_updated_while_paging_is_not_skipped(self) -> None:
        source = self.open_source()
        everything = self.seeded(source, 0, 1, 2, 3)
        since = everything[0].updated_at
        until = since + timedelta(hours=1)
        first = source.list_returns(self.SHOP, since, until, limit=2)
        first_ids = self.ids([first], everything)
        assert first.next_page is not None, "a page of 2 out of 4 ended the listing"
        assert first_ids, f"the first page held none of the test's returns: {first!r}"
        # the first return listed changes meanwhile: it moves to the end of the listing
        moved = next(item for item in everything if item.external_id == first_ids[0])
        self.update_return(source, attrs.evolve(moved, updated_at=since + timedelta(minutes=30)))
        pages = [first]
        token: str | None = first.next_page
        while token is not None:
            page = source.list_returns(self.SHOP, since, until, page=token, limit=2)
            pages.append(page)
            token = page.next_page
        listed = set(self.ids(pages, everything))
        missing = sorted({item.external_id for item in everything} - listed)
        assert not missing, (
            f"{missing} were never listed: a return updated while the listing was paged "
            "through made the pages skip one (pages must be keyset pages, not offsets)"
        )

    def test_a_listing_changes_nothing(self) -> None:
        source = self.open_source()
        everything = self.seeded(source, 0, 1, 2)
        since, until = self.window(everything)
        once = self.ids(self.listing(source, since, until, limit=1), everything)
        again = self.ids(self.listing(source, since, until, limit=1), everything)
        assert once == again == [item.external_id for item in everything], (once, again)

    def test_an_updated_return_reads_back_updated(self) -> None:
        source = self.open_source()
        (external,) = self.seeded(source, 0)
        later = external.updated_at + timedelta(hours=3)
        updated = self.update_return(
            source, attrs.evolve(external, status="cancelled", updated_at=later)
        )
        got = source.get_return(self.SHOP, external.external_id)
        assert got == updated, f"get_return answered {got!r} for the updated {updated!r}"
        assert got is not None
        assert got.status.value == "cancelled", got
        listed = self.ids(self.listing(source, later, later + timedelta(seconds=1)), [external])
        assert listed == [external.external_id], (
            f"a return updated at {later} is not listed in a window starting then: {listed!r}"
        )

    def test_bad_data_is_rejected_in_the_page_not_raised(self) -> None:
        source = self.open_source()
        good = self.seeded(source, 0, 2)
        bad_id = self.new_id("bad")
        self.seed_bad_return(source, self.SHOP, bad_id, self.START + timedelta(minutes=1))
        since, until = self.window(good)
        try:
            pages = self.listing(source, since, until)
        except ValidationError as error:
            raise AssertionError(
                f"one return's bad data failed the whole listing ({error!r}); it belongs in "
                "the page's rejected"
            ) from error
        assert self.ids(pages, good) == [item.external_id for item in good]
        rejected = [item for page in pages for item in page.rejected if item.external_id == bad_id]
        assert len(rejected) == 1, f"the return with bad data is not in rejected once: {rejected}"
        assert isinstance(rejected[0].error, ValidationError), rejected[0]
        try:
            fetched = source.get_return(self.SHOP, bad_id)
        except ValidationError:
            return
        raise AssertionError(f"get_return of a return with bad data gave {fetched!r}")

    def test_a_bad_page_token_is_refused(self) -> None:
        source = self.open_source()
        everything = self.seeded(source, 0, 1, 2)
        since, until = self.window(everything)
        _refused(
            "list_returns with a page token the source never gave",
            lambda: source.list_returns(
                self.SHOP, since, until, page=self.new_id("no-such-page"), limit=1
            ),
        )


class PolicySourceContract(PortContract, abc.ABC):
    """The contract tests of a :class:`~returnflow.ports.policies.PolicySource`.

    Implement :meth:`make_source`: a source serving ``policies`` (each shop's versions,
    oldest first, the last in force) and nothing for any other shop.
    """

    @abc.abstractmethod
    def make_source(self, policies: Mapping[str, Sequence[ReturnPolicy]]) -> PolicySource:
        """A policy source to test, seeded with ``policies`` (called at most once per test)."""

    def _seeded(self) -> tuple[PolicySource, ReturnPolicy, ReturnPolicy]:
        old = ReturnPolicy(version=f"v1-{self._run_id()}", window_days=30)
        new = ReturnPolicy(version=f"v2-{self._run_id()}", window_days=14)
        return self.opened(self.make_source({self.SHOP: [old, new]})), old, new

    def test_the_policy_in_force_is_the_last_version(self) -> None:
        source, _, new = self._seeded()
        assert source.policy_for(self.SHOP) == new

    def test_an_earlier_version_is_served_by_its_name(self) -> None:
        source, old, new = self._seeded()
        assert source.policy_for(self.SHOP, old.version) == old
        assert source.policy_for(self.SHOP, new.version) == new

    def test_a_shop_without_a_policy_is_unknown_shop(self) -> None:
        source, _, _ = self._seeded()
        error = _raised(UnknownShop, lambda: source.policy_for(self.OTHER_SHOP))
        assert (error.field, error.value) == ("shop", self.OTHER_SHOP), error

    def test_a_version_not_served_is_a_configuration_error_naming_it(self) -> None:
        source, _, _ = self._seeded()
        error = _raised(ConfigurationError, lambda: source.policy_for(self.SHOP, "no-such-version"))
        assert (error.field, error.value) == ("policy_version", "no-such-version"), error


class DestinationResolverContract(PortContract, abc.ABC):
    """The contract tests of a host's :class:`~returnflow.ports.locations.DestinationResolver`.

    Implement :meth:`make_resolver`: the resolver to test, routing the returns of
    :attr:`~PortContract.SHOP`. It is asked about the lines of :meth:`orders` (override it
    with orders whose lines your routing tells apart: tags, collections, SKUs, countries),
    built as the service builds a return's lines: each returnable line alone, and all of an
    order's returnable lines together. What it must do:

    * ``locations(shop)`` is a collection of location ids (text, not blank, no spaces
      around), the same on every call;
    * ``destination(shop, order, line)`` answers for every line that ships back without
      raising: ``None`` (the shop's default location) or one of ``locations(shop)``;
    * the same question gets the same answer, whatever was asked before;
    * a shop it does not route returns for (:attr:`~PortContract.OTHER_SHOP`) is either
      :class:`~returnflow.errors.UnknownShop` naming ``shop`` from both methods, or served
      like any shop, within that shop's ``locations`` (as
      :class:`~returnflow.ports.locations.StaticDestination` does);
    * a return of each order opened through a :class:`~returnflow.service.ReturnsService`
      (on the fakes, the warehouse running the shop's locations) is not refused, its lines
      go where the resolver says, and the warehouse is asked to expect units only there.
    """

    CURRENCY_OF_ORDERS: ClassVar[str] = "EUR"
    """The currency of the default :meth:`orders`."""

    @abc.abstractmethod
    def make_resolver(self) -> DestinationResolver:
        """The resolver to test (called at most once per test)."""

    def orders(self) -> Sequence[OrderSnapshot]:
        """The orders of :attr:`~PortContract.SHOP` whose lines the resolver is asked about.
        By default two: :func:`make_order`'s, and one with a ``bulky``-tagged line, a line
        of the ``outlet`` collection and a final sale line, shipped to Switzerland. Lines
        that cannot be returned (a gift card, nothing shipped) are not asked about."""
        currency = self.CURRENCY_OF_ORDERS
        price = Money("25.00", currency)
        varied = OrderSnapshot(
            id=self.new_id("order"),
            shop=self.SHOP,
            created_at=ORDER_CREATED_AT,
            currency=currency,
            lines=(
                OrderLine(
                    id="B1",
                    sku="SOFA",
                    variant_id="V-SOFA",
                    quantity=1,
                    unit_price=price,
                    tags=["bulky"],
                ),
                OrderLine(
                    id="O1",
                    sku="TEE",
                    variant_id="V-TEE",
                    quantity=3,
                    unit_price=price,
                    collections=["outlet"],
                ),
                OrderLine(
                    id="F1",
                    sku="SALE",
                    variant_id="V-SALE",
                    quantity=1,
                    unit_price=price,
                    final_sale=True,
                ),
            ),
            customer_email="customer@example.com",
            fulfilled_at=ORDER_CREATED_AT,
            delivered_at=ORDER_CREATED_AT,
            shipping_country="CH",
        )
        return (make_order(self.SHOP, self.new_id("order"), currency), varied)

    # -- what the tests ask --------------------------------------------------------------------

    @staticmethod
    def _request(order: OrderSnapshot, lines: Sequence[RequestLine]) -> ReturnRequest:
        return ReturnRequest(shop=order.shop, order_id=order.id, lines=lines)

    def _returnable(self, order: OrderSnapshot) -> list[RequestLine]:
        """A request line for all of each order line that can be returned."""
        found: list[RequestLine] = []
        for order_line in order.lines:
            one = RequestLine(order_line_id=order_line.id, quantity=order_line.quantity)
            try:
                requests.check(order, self._request(order, [one]), {}, _CONTRACT_POLICY)
            except ValidationError:
                continue
            found.append(one)
        return found

    def _questions(self, orders: Sequence[OrderSnapshot]) -> list[tuple[OrderSnapshot, ReturnLine]]:
        """The lines that ship back of a return of each returnable line alone and of all of
        an order's returnable lines together, as the service builds them."""
        asked: list[tuple[OrderSnapshot, ReturnLine]] = []
        for order in orders:
            returnable = self._returnable(order)
            groups = [[one] for one in returnable] + ([returnable] if len(returnable) > 1 else [])
            for group in groups:
                request = self._request(order, group)
                return_id = self.new_id("R")
                lines, _ = requests.build_lines(order, request, {}, return_id, _CONTRACT_POLICY)
                asked += [(order, line) for line in lines if line.requires_receipt]
        assert asked, "orders() has no line that can be returned: the contract would ask nothing"
        return asked

    @staticmethod
    def _locations(resolver: DestinationResolver, shop: str) -> frozenset[str]:
        """The resolver's locations, checked; an exception other than a typed error fails
        the test."""
        try:
            known = resolver.locations(shop)
        except ReturnflowError:
            raise
        except Exception as error:
            raise AssertionError(f"locations({shop!r}) raised {error!r}") from error
        if isinstance(known, (str, bytes)) or not isinstance(known, Collection):
            raise AssertionError(
                f"locations({shop!r}) must be a collection of location ids, got {known!r}"
            )
        for item in known:
            if not isinstance(item, str) or not item.strip() or item != item.strip():
                raise AssertionError(
                    f"locations({shop!r}): {item!r} is not a location id (text, not blank, "
                    "no spaces around)"
                )
        return frozenset(known)

    @staticmethod
    def _answer(
        resolver: DestinationResolver, shop: str, order: OrderSnapshot, line: ReturnLine
    ) -> str | None:
        """The resolver's answer; an exception other than a typed error fails the test."""
        try:
            return resolver.destination(shop, order, line)
        except ReturnflowError:
            raise
        except Exception as error:
            raise AssertionError(
                f"destination({shop!r}, order {order.id}, line {line.order_line_id} "
                f"x{line.quantity}) must answer for every line that ships back, "
                f"but raised {error!r}"
            ) from error

    def _check_answers(
        self, resolver: DestinationResolver, shop: str, orders: Sequence[OrderSnapshot]
    ) -> None:
        known = self._locations(resolver, shop)
        for order, line in self._questions(orders):
            where = self._answer(resolver, shop, order, line)
            assert where is None or (isinstance(where, str) and where in known), (
                f"destination({shop!r}, order {order.id}, line {line.order_line_id}) answered "
                f"{where!r}: it must be None (the shop's default location) or one of "
                f"locations({shop!r}) = {sorted(known)}"
            )

    # -- the tests -----------------------------------------------------------------------------

    def test_locations_are_location_ids_the_same_on_every_call(self) -> None:
        resolver = self.opened(self.make_resolver())
        first = self._locations(resolver, self.SHOP)
        again = self._locations(resolver, self.SHOP)
        assert again == first, (
            f"locations({self.SHOP!r}) answered {sorted(first)}, then {sorted(again)}"
        )

    def test_every_line_that_ships_back_goes_to_one_of_the_shops_locations(self) -> None:
        resolver = self.opened(self.make_resolver())
        self._check_answers(resolver, self.SHOP, self.orders())

    def test_the_same_line_gets_the_same_answer_every_time(self) -> None:
        resolver = self.opened(self.make_resolver())
        questions = self._questions(self.orders())
        first = [self._answer(resolver, self.SHOP, order, line) for order, line in questions]
        backwards = [self._answer(resolver, self.SHOP, o, line) for o, line in questions[::-1]]
        for (order, line), one, other in zip(questions, first, backwards[::-1], strict=True):
            assert one == other, (
                f"destination({self.SHOP!r}, order {order.id}, line {line.order_line_id}) "
                f"answered {one!r}, then {other!r}: the same line must get the same answer"
            )

    def test_a_shop_it_does_not_serve_is_unknown_shop_or_served_like_any(self) -> None:
        resolver = self.opened(self.make_resolver())
        other = self.OTHER_SHOP
        orders = [attrs.evolve(order, shop=other) for order in self.orders()]
        try:
            self._check_answers(resolver, other, orders)
        except UnknownShop:
            pass
        except ReturnflowError as error:
            raise AssertionError(
                f"a shop the resolver does not serve must be UnknownShop naming 'shop', or "
                f"be served like any; {other!r} raised {error!r}"
            ) from error
        else:
            return
        order, line = self._questions(orders)[0]
        for what, call in (
            ("locations", lambda: resolver.locations(other)),
            ("destination", lambda: resolver.destination(other, order, line)),
        ):
            try:
                result = call()
            except UnknownShop as error:
                refused = error
            except Exception as error:
                raise AssertionError(
                    f"{what}({other!r}) raised {error!r}: a shop the resolver does not serve "
                    "must be UnknownShop from both methods"
                ) from error
            else:
                raise AssertionError(
                    f"{what}({other!r}) answered {result!r}: a shop the resolver does not "
                    "serve must be UnknownShop from both methods"
                )
            assert (refused.field, refused.value) == ("shop", other), (
                f"{what}({other!r}): UnknownShop must name field 'shop' and the shop, "
                f"not {refused.field!r}={refused.value!r}"
            )

    def test_a_return_opened_through_the_service_goes_where_the_resolver_says(self) -> None:
        from returnflow.testing.fakes import FakePorts, FakeWarehouse
        from returnflow.testing.harness import Harness, ManualClock

        resolver = self.opened(self.make_resolver())
        known = self._locations(resolver, self.SHOP)
        for order in self.orders():
            returnable = self._returnable(order)
            if not returnable:
                continue
            dates = (order.created_at, order.fulfilled_at, order.delivered_at)
            harness = Harness(
                policy=_CONTRACT_POLICY,
                ports=FakePorts(warehouse=FakeWarehouse(locations=known)),
                clock=ManualClock(max(d for d in dates if d is not None) + timedelta(days=1)),
                destinations=resolver,
            )
            harness.ports.commerce.add_order(order)
            try:
                record = harness.service.request(self._request(order, returnable))
            except Exception as error:
                raise AssertionError(
                    f"a return of order {order.id} through the service was refused: {error!r}"
                ) from error
            for line in record.lines:
                asked = attrs.evolve(line, location_id=None)
                said = self._answer(resolver, self.SHOP, order, asked)
                assert line.location_id == said, (
                    f"line {line.order_line_id} of order {order.id} went to "
                    f"{line.location_id!r}, the resolver says {said!r}"
                )
            routed = {line.location_id for line in record.lines}
            for call in harness.ports.warehouse.calls_to("create_return"):
                where = call.args.get("location_id")
                assert where in routed, (
                    f"the warehouse was asked to expect units at {where!r}; the lines go to "
                    f"{sorted(map(str, routed))}"
                )
                assert call.outcome == "ok", f"the warehouse refused {where!r}: {call.outcome}"


_CONTRACT_POLICY = ReturnPolicy(decline_final_sale=False)
"""The policy the destination contract builds lines and opens returns under."""


E = TypeVar("E", bound=Exception)


def _raised(kind: type[E], call: Callable[[], object]) -> E:
    """Run ``call``, which must raise ``kind``; return the error."""
    try:
        result = call()
    except kind as error:
        return error
    raise AssertionError(f"expected {kind.__name__}, got {result!r}")
