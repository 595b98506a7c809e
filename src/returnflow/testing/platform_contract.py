"""The contract tests of a :class:`~returnflow.ports.platform_returns.PlatformReturns` adapter.

Subclass :class:`PlatformReturnsContract` in a test module, implement ``make_platform`` (and
``seed_order`` when orders are not seeded with ``add_order``); pytest collects the tests.
They hold an adapter to what a platform return must do: statuses move only as Shopify's do,
units are never returned, processed, removed or disposed twice, money never exceeds what the
processed lines are worth, and keys are honoured.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import attrs

from returnflow.domain.inbound import Disposition
from returnflow.domain.model import Duty, Fulfillment, OrderSnapshot
from returnflow.domain.money import Money
from returnflow.ports.commerce import CommercePlatform
from returnflow.ports.platform_returns import (
    DutyRefund,
    PlatformExchangeLine,
    PlatformReturn,
    PlatformReturnLine,
    PlatformReturns,
    Quantity,
    ShopifyReturnStatus,
)
from returnflow.testing.port_contracts import PortContract, _refused, _same, make_order

__all__ = ["PlatformReturnsContract"]

OPEN, CLOSED = ShopifyReturnStatus.OPEN, ShopifyReturnStatus.CLOSED


class PlatformReturnsContract(PortContract, abc.ABC):
    """The contract of a platform-returns adapter. The seeded order is
    :func:`~returnflow.testing.port_contracts.make_order` (L1: 2 x 10.00, L2: 1 x 10.00)."""

    CURRENCY: ClassVar[str] = "EUR"
    NAMES_UNITS: ClassVar[bool] = True
    """Whether the platform can be told which units of an order line a return takes, by
    index (:attr:`~returnflow.ports.platform_returns.PlatformReturnLine.units`), and values
    exactly those. ``False`` for one that takes a count of a fulfillment line item's units
    and values them itself (Shopify's ``ReturnLineItemInput``), where an order line is one
    fulfillment line item: the test of which units are valued is skipped (the count named
    must still be the quantity)."""

    REPORTS_KINDS: ClassVar[bool] = True
    """Whether the platform reports the kind of each unit disposed of
    (:attr:`~returnflow.ports.platform_returns.PlatformReturn.dispositions`); ``False``
    for one that reports counts only, where returnflow cannot tell a person's disposal in
    the platform's admin from its own kind (the test of the kinds is skipped)."""
    REPORTS_REFUNDED: ClassVar[bool] = True
    """Whether the platform reports what a return's processings refunded for its lines
    (:attr:`~returnflow.ports.platform_returns.PlatformReturn.refunded`); ``False``: a
    person's refund in the admin is followed without comparing money (the test of the
    figure is skipped)."""

    @abc.abstractmethod
    def make_platform(self) -> tuple[PlatformReturns, CommercePlatform]:
        """The adapter to test and the commerce platform its orders live on."""

    def seed_order(self, commerce: CommercePlatform, order: OrderSnapshot) -> None:
        """Create ``order`` (default: ``commerce.add_order(order)``)."""
        getattr(commerce, "add_order")(order)  # noqa: B009 (a fake's method, not the port's)

    # -- plumbing --------------------------------------------------------------------------

    def setup(self) -> tuple[PlatformReturns, str]:
        platform, commerce = self.opened(self.make_platform())
        order = make_order(self.SHOP, self.new_id("order"), self.CURRENCY)
        self.seed_order(commerce, order)
        return platform, order.id

    def money(self, amount: str) -> Money:
        return Money(amount, self.CURRENCY)

    def open(
        self, platform: PlatformReturns, order_id: str, *, requested: bool = False, **extra: object
    ) -> PlatformReturn:
        lines = [PlatformReturnLine("L1", 2), PlatformReturnLine("L2", 1)]
        return platform.open_return(
            self.SHOP,
            order_id,
            lines,
            requested=requested,
            idempotency_key=self.new_key("open"),
            **extra,  # type: ignore[arg-type]
        )

    def process(
        self, platform: PlatformReturns, opened: PlatformReturn, units: int, refund: str
    ) -> object:
        return platform.process(
            self.SHOP,
            opened.return_id,
            [Quantity(opened.line_id("L1"), units)],
            refund=self.money(refund),
            idempotency_key=self.new_key("process"),
        )

    # -- the tests ---------------------------------------------------------------------------

    def test_a_return_opens_with_its_lines_and_reads_back(self) -> None:
        platform, order_id = self.setup()
        opened = self.open(platform, order_id)
        assert opened.status is OPEN
        assert {order_line for order_line, _ in opened.line_ids} == {"L1", "L2"}
        assert platform.get_return(self.SHOP, opened.return_id) == opened

    def test_a_requested_return_is_approved_or_declined_once(self) -> None:
        platform, order_id = self.setup()
        requested = self.open(platform, order_id, requested=True)
        assert requested.status is ShopifyReturnStatus.REQUESTED
        approved = platform.approve(
            self.SHOP, requested.return_id, idempotency_key=self.new_key("approve")
        )
        assert approved.status is OPEN
        _refused(
            "declining an approved return",
            lambda: platform.decline(
                self.SHOP, requested.return_id, reason="late", idempotency_key=self.new_key("d")
            ),
        )

    def test_a_key_answers_its_first_result_and_opens_nothing_more(self) -> None:
        platform, order_id = self.setup()
        key = self.new_key("open")
        lines = [PlatformReturnLine("L2", 1)]
        first = platform.open_return(self.SHOP, order_id, lines, idempotency_key=key)
        again = platform.open_return(self.SHOP, order_id, lines, idempotency_key=key)
        _same("open_return", first, again)
        _refused(  # the unit is in the first return: a second one cannot take it
            "opening a second return of the same unit",
            lambda: platform.open_return(
                self.SHOP, order_id, lines, idempotency_key=self.new_key("open")
            ),
        )

    def test_no_more_units_than_the_order_has(self) -> None:
        platform, order_id = self.setup()
        _refused(
            "three units of a two-unit line",
            lambda: platform.open_return(
                self.SHOP,
                order_id,
                [PlatformReturnLine("L1", 3)],
                idempotency_key=self.new_key("open"),
            ),
        )
        _refused(
            "an unknown line",
            lambda: platform.open_return(
                self.SHOP,
                order_id,
                [PlatformReturnLine("L9", 1)],
                idempotency_key=self.new_key("open"),
            ),
        )

    def test_the_units_named_must_be_as_many_as_the_quantity(self) -> None:
        platform, order_id = self.setup()
        _refused(
            "one unit named for a quantity of two",
            lambda: platform.open_return(
                self.SHOP,
                order_id,
                [PlatformReturnLine("L1", 2, units=(0,))],
                idempotency_key=self.new_key("open"),
            ),
        )
        opened = platform.open_return(
            self.SHOP,
            order_id,
            [PlatformReturnLine("L1", 2, units=(1, 0))],
            idempotency_key=self.new_key("open"),
        )
        assert platform.calculate(self.SHOP, opened.return_id).refund == self.money("20.00")

    def test_the_units_named_are_the_units_valued(self) -> None:
        if not self.NAMES_UNITS:
            import pytest

            pytest.skip("the platform values a fulfillment line item's units itself")
        platform, commerce = self.opened(self.make_platform())
        plain = make_order(self.SHOP, self.new_id("order"), self.CURRENCY)
        first, second = plain.lines
        shipped = plain.created_at
        order = attrs.evolve(  # L1's units are paid 10.00, 10.00 and 9.99; L2's 2nd never shipped
            plain,
            fulfilled_at=None,
            delivered_at=None,
            lines=(
                attrs.evolve(
                    first,
                    quantity=3,
                    discount=self.money("0.01"),
                    fulfillments=(Fulfillment(3, shipped),),
                ),
                attrs.evolve(second, quantity=2, fulfillments=(Fulfillment(1, shipped),)),
            ),
        )
        self.seed_order(commerce, order)

        def open_units(line: str, *units: int) -> PlatformReturn:
            return platform.open_return(
                self.SHOP,
                order.id,
                [PlatformReturnLine(line, len(units), units=units)],
                idempotency_key=self.new_key("open"),
            )

        last = open_units("L1", 2)
        outcome = platform.calculate(self.SHOP, last.return_id)
        assert (outcome.returned, outcome.refund) == (self.money("9.99"), self.money("9.99")), (
            f"the return names unit 2 of L1 (paid 9.99) but the platform values it at "
            f"{outcome.returned}: another unit than the one named"
        )
        _refused("a unit on another return", lambda: open_units("L1", 2))
        _refused("a unit out of the line's range", lambda: open_units("L1", 3))
        _refused("a unit never shipped", lambda: open_units("L2", 1))
        both = open_units("L1", 1, 0)
        assert platform.calculate(self.SHOP, both.return_id).refund == self.money("20.00")
        _refused(
            "refunding 10.00 for the unit paid 9.99",
            lambda: platform.process(
                self.SHOP,
                last.return_id,
                [Quantity(last.line_id("L1"), 1)],
                refund=self.money("10.00"),
                idempotency_key=self.new_key("process"),
            ),
        )

    def test_units_are_processed_once(self) -> None:
        platform, order_id = self.setup()
        opened = self.open(platform, order_id)
        self.process(platform, opened, 2, "20.00")
        _refused("processing the same units again", lambda: self.process(platform, opened, 1, "0"))
        read = platform.get_return(self.SHOP, opened.return_id)
        assert dict(read.processed)[opened.line_id("L1")] == 2

    def test_a_refund_never_exceeds_what_the_processed_lines_are_worth(self) -> None:
        platform, order_id = self.setup()
        opened = self.open(platform, order_id)
        _refused(
            "refunding 10.01 for one 10.00 unit", lambda: self.process(platform, opened, 1, "10.01")
        )
        self.process(platform, opened, 1, "10.00")
        _refused(
            "refunding again for the same unit", lambda: self.process(platform, opened, 1, "10.01")
        )

    def test_only_processed_units_are_disposed(self) -> None:
        platform, order_id = self.setup()
        opened = self.open(platform, order_id)
        line = opened.line_id("L1")

        def dispose(units: int) -> None:
            platform.dispose(
                self.SHOP,
                opened.return_id,
                line,
                units,
                Disposition.RESTOCKED,
                idempotency_key=self.new_key("dispose"),
            )

        _refused("disposing a unit not processed", lambda: dispose(1))
        assert dict(platform.get_return(self.SHOP, opened.return_id).disposed).get(line, 0) == 0
        self.process(platform, opened, 1, "10.00")
        dispose(1)
        # the return reports what was disposed of: a caller disposes of only what is left
        assert dict(platform.get_return(self.SHOP, opened.return_id).disposed) == {line: 1}
        _refused("disposing more units than were processed", lambda: dispose(1))

    def test_disposed_units_are_reported_by_kind(self) -> None:
        if not self.REPORTS_KINDS:
            return
        platform, order_id = self.setup()
        opened = self.open(platform, order_id)
        line = opened.line_id("L1")
        self.process(platform, opened, 2, "20.00")
        for kind in (Disposition.NOT_RESTOCKED, Disposition.RESTOCKED):
            platform.dispose(
                self.SHOP, opened.return_id, line, 1, kind, idempotency_key=self.new_key("d")
            )
        now = platform.get_return(self.SHOP, opened.return_id)
        assert dict(now.disposed) == {line: 2}
        # the kinds given, each once: a caller takes a person's units from its own of the kind
        assert now.disposed_as(line) == {Disposition.NOT_RESTOCKED: 1, Disposition.RESTOCKED: 1}
        assert sum(units for _, _, units in now.dispositions) == 2

    def test_the_return_reports_what_its_processings_refunded_for_the_lines(self) -> None:
        if not self.REPORTS_REFUNDED:
            return
        platform, commerce = self.opened(self.make_platform())
        plain = make_order(self.SHOP, self.new_id("order"), self.CURRENCY)
        first, second = plain.lines
        duty = Duty(self.new_id("gid://shopify/Duty/"), self.money("3.00"))
        order = attrs.evolve(
            plain,
            shipping_price=self.money("4.00"),
            lines=(attrs.evolve(first, duties=(duty,)), second),
        )
        self.seed_order(commerce, order)
        opened = self.open(platform, order.id)
        line = opened.line_id("L1")
        assert platform.get_return(self.SHOP, opened.return_id).refunded == self.money("0")
        # the lines' refund, not the shipping and duties given back with them
        platform.process(
            self.SHOP,
            opened.return_id,
            [Quantity(line, 1)],
            refund=self.money("9.00"),
            refund_shipping=self.money("4.00"),
            refund_duties=[DutyRefund(duty.id, self.money("1.50"))],
            idempotency_key=self.new_key("process"),
        )
        assert platform.get_return(self.SHOP, opened.return_id).refunded == self.money("9.00")
        self.process(platform, opened, 1, "10.00")  # every processing's, not the last one's
        assert platform.get_return(self.SHOP, opened.return_id).refunded == self.money("19.00")

    def test_removed_units_cannot_be_processed(self) -> None:
        platform, order_id = self.setup()
        opened = self.open(platform, order_id)
        line = opened.line_id("L1")
        platform.remove_lines(
            self.SHOP, opened.return_id, [Quantity(line, 1)], idempotency_key=self.new_key("rm")
        )
        _refused(
            "processing two units when one was removed",
            lambda: self.process(platform, opened, 2, "0"),
        )
        self.process(platform, opened, 1, "10.00")
        _refused(
            "removing a processed unit",
            lambda: platform.remove_lines(
                self.SHOP, opened.return_id, [Quantity(line, 1)], idempotency_key=self.new_key("r")
            ),
        )

    def test_a_return_closes_when_every_unit_is_processed_or_removed(self) -> None:
        platform, order_id = self.setup()
        opened = self.open(platform, order_id)
        platform.remove_lines(
            self.SHOP,
            opened.return_id,
            [Quantity(opened.line_id("L2"), 1)],
            idempotency_key=self.new_key("rm"),
        )
        self.process(platform, opened, 2, "20.00")
        closed = platform.get_return(self.SHOP, opened.return_id)
        assert closed.status is CLOSED
        reopened = platform.reopen(self.SHOP, opened.return_id, idempotency_key=self.new_key("o"))
        assert reopened.status is OPEN

    def test_a_return_with_processed_units_cannot_be_cancelled(self) -> None:
        platform, order_id = self.setup()
        opened = self.open(platform, order_id)
        self.process(platform, opened, 1, "10.00")
        _refused(
            "cancelling a return with processed units",
            lambda: platform.cancel(self.SHOP, opened.return_id, idempotency_key=self.new_key("c")),
        )
        platform, order_id = self.setup()
        untouched = self.open(platform, order_id)
        cancelled = platform.cancel(
            self.SHOP, untouched.return_id, idempotency_key=self.new_key("c")
        )
        assert cancelled.status is ShopifyReturnStatus.CANCELED

    def test_the_platform_computes_the_money_of_the_whole_return(self) -> None:
        platform, order_id = self.setup()
        fee = self.money("2.00")
        opened = platform.open_return(
            self.SHOP,
            order_id,
            [PlatformReturnLine("L1", 2, restocking_fee=fee)],
            exchange_lines=[PlatformExchangeLine("X1", "V-9", 1, self.money("25.00"))],
            return_shipping_fee=self.money("5.00"),
            idempotency_key=self.new_key("open"),
        )
        outcome = platform.calculate(self.SHOP, opened.return_id)
        assert (outcome.returned, outcome.fees, outcome.exchanged) == (
            self.money("20.00"),
            self.money("7.00"),
            self.money("25.00"),
        )
        assert (outcome.refund, outcome.owed) == (self.money("0.00"), self.money("12.00"))

    def test_a_restocking_fee_follows_the_units(self) -> None:
        platform, order_id = self.setup()
        opened = platform.open_return(
            self.SHOP,
            order_id,
            [PlatformReturnLine("L1", 2, restocking_fee=self.money("2.00"))],
            return_shipping_fee=self.money("3.00"),
            idempotency_key=self.new_key("open"),
        )
        line = opened.line_id("L1")
        one = platform.calculate(self.SHOP, opened.return_id, [Quantity(line, 1)])
        assert (one.returned, one.fees, one.refund) == (
            self.money("10.00"),
            self.money("4.00"),
            self.money("6.00"),
        )
        alone = platform.calculate(
            self.SHOP, opened.return_id, [Quantity(line, 1)], shipping_fee=False
        )
        assert (alone.fees, alone.refund) == (self.money("1.00"), self.money("9.00"))
        platform.remove_lines(
            self.SHOP, opened.return_id, [Quantity(line, 1)], idempotency_key=self.new_key("rm")
        )
        whole = platform.calculate(self.SHOP, opened.return_id)
        assert (whole.returned, whole.fees, whole.refund) == (
            self.money("10.00"),
            self.money("4.00"),
            self.money("6.00"),
        )

    def variant(self, price: str) -> str:
        """A variant the platform prices at ``price`` (a platform that prices exchange items
        itself, as Shopify does, needs them set up: ``V-<price>`` by default)."""
        return f"V-{price}"

    def exchange(self, platform: PlatformReturns, order_id: str, price: str) -> PlatformReturn:
        """Both L1 units (20.00) for a new item priced ``price``."""
        item = PlatformExchangeLine("X1", self.variant(price), 1, self.money(price))
        return platform.open_return(
            self.SHOP,
            order_id,
            [PlatformReturnLine("L1", 2)],
            exchange_lines=[item],
            idempotency_key=self.new_key("open"),
        )

    def process_exchange(self, platform: PlatformReturns, opened: PlatformReturn) -> object:
        return platform.process(
            self.SHOP,
            opened.return_id,
            [Quantity(opened.line_id("L1"), 2)],
            exchange_lines=[Quantity(dict(opened.exchange_line_ids)["X1"], 1)],
            refund=self.money("0.00"),
            idempotency_key=self.new_key("process"),
        )

    def test_an_even_exchange_or_one_for_less_is_never_held(self) -> None:
        platform, order_id = self.setup()
        for price in ("20.00", "15.00"):
            opened = self.exchange(platform, order_id, price)
            assert (opened.exchange_on_hold, opened.balance_owed) == (False, None), price
            result = self.process_exchange(platform, opened)
            assert getattr(result, "exchange_on_hold", None) is False, price
            platform, order_id = self.setup()

    def test_an_upsell_is_held_until_its_balance_is_paid(self) -> None:
        platform, order_id = self.setup()
        opened = self.exchange(platform, order_id, "25.00")
        assert (opened.exchange_on_hold, opened.balance_owed) == (True, self.money("5.00"))
        result = self.process_exchange(platform, opened)
        assert getattr(result, "exchange_on_hold", None) is True

        def pay(amount: str) -> PlatformReturn:
            return platform.pay_balance(
                self.SHOP,
                opened.return_id,
                self.money(amount),
                idempotency_key=self.new_key("pay"),
            )

        _refused("paying more than is owed", lambda: pay("5.01"))
        assert pay("2.00").exchange_on_hold is True  # part of it: still held
        paid = pay("3.00")
        assert (paid.exchange_on_hold, paid.balance_owed) == (False, None)
        _refused("paying when nothing is owed", lambda: pay("0.01"))
        assert platform.get_return(self.SHOP, opened.return_id).exchange_on_hold is False

    def test_a_balance_paid_is_given_back_once_and_never_more_than_paid(self) -> None:
        platform, order_id = self.setup()
        opened = self.exchange(platform, order_id, "25.00")  # 5.00 owed
        paid = platform.pay_balance(
            self.SHOP, opened.return_id, self.money("5.00"), idempotency_key=self.new_key("pay")
        )
        assert (paid.balance_paid, paid.balance_owed) == (self.money("5.00"), None)

        def give_back(amount: str, key: str) -> PlatformReturn:
            return platform.refund_balance(
                self.SHOP, opened.return_id, self.money(amount), idempotency_key=key
            )

        _refused("giving back more than was paid", lambda: give_back("5.01", self.new_key("b")))
        _refused("giving back nothing", lambda: give_back("0.00", self.new_key("b")))
        key = self.new_key("back")
        back = give_back("2.00", key)
        # What was paid drops, and the return owes it again: the platform holds the exchange.
        assert (back.balance_paid, back.balance_owed) == (self.money("3.00"), self.money("2.00"))
        assert back.exchange_on_hold is True
        _same("the same refund under its key", back, give_back("2.00", key))
        now = platform.get_return(self.SHOP, opened.return_id)
        assert (now.balance_paid, now.balance_owed) == (self.money("3.00"), self.money("2.00"))
        _refused("more than is left of the payment", lambda: give_back("3.01", self.new_key("b")))
        rest = give_back("3.00", self.new_key("back"))
        assert (rest.balance_paid, rest.balance_owed) == (None, self.money("5.00"))

    def test_shipping_and_duties_go_back_once_and_never_more_than_charged(self) -> None:
        platform, commerce = self.opened(self.make_platform())
        plain = make_order(self.SHOP, self.new_id("order"), self.CURRENCY)
        first, second = plain.lines
        duty = Duty(self.new_id("gid://shopify/Duty/"), self.money("3.00"))
        order = attrs.evolve(
            plain,
            shipping_price=self.money("4.00"),
            lines=(attrs.evolve(first, duties=(duty,)), second),
        )
        self.seed_order(commerce, order)
        opened = self.open(platform, order.id)

        def process(line: str, units: int, shipping: str, duties: list[DutyRefund]) -> object:
            return platform.process(
                self.SHOP,
                opened.return_id,
                [Quantity(opened.line_id(line), units)],
                refund=self.money("10.00") * units,
                refund_shipping=self.money(shipping),
                refund_duties=duties,
                idempotency_key=self.new_key("process"),
            )

        _refused(
            "giving back a duty the order does not have",
            lambda: process("L2", 1, "0", [DutyRefund("gid://shopify/Duty/0", self.money("1"))]),
        )
        _refused("giving back more shipping than was charged", lambda: process("L2", 1, "4.01", []))
        result = process("L1", 2, "3.00", [DutyRefund(duty.id, self.money("3.00"))])
        assert getattr(result, "refunded", None) == self.money("26.00")
        _refused("giving back the shipping twice", lambda: process("L2", 1, "1.01", []))

    def test_shipping_and_duties_go_back_alone_once_every_unit_is_processed(self) -> None:
        # A person processed every unit in the platform's admin: the shipping the
        # settlement gives back goes in a processing of no lines, on the closed return.
        platform, commerce = self.opened(self.make_platform())
        order = attrs.evolve(
            make_order(self.SHOP, self.new_id("order"), self.CURRENCY),
            shipping_price=self.money("4.00"),
        )
        self.seed_order(commerce, order)
        opened = self.open(platform, order.id)
        platform.remove_lines(
            self.SHOP,
            opened.return_id,
            [Quantity(opened.line_id("L2"), 1)],
            idempotency_key=self.new_key("rm"),
        )
        self.process(platform, opened, 2, "20.00")
        assert platform.get_return(self.SHOP, opened.return_id).status is CLOSED

        def alone(shipping: str | None, key: str) -> object:
            return platform.process(
                self.SHOP,
                opened.return_id,
                [],
                refund=self.money("0.00"),
                refund_shipping=None if shipping is None else self.money(shipping),
                idempotency_key=key,
            )

        _refused("processing nothing and giving back nothing", lambda: alone(None, "n"))
        key = self.new_key("charges")
        given = alone("3.00", key)
        assert getattr(given, "refunded", None) == self.money("3.00")
        _same("the shipping given back under its key", given, alone("3.00", key))
        _refused("more shipping than is left", lambda: alone("1.01", self.new_key("more")))

    def test_another_shop_sees_nothing(self) -> None:
        platform, order_id = self.setup()
        opened = self.open(platform, order_id)
        _refused(
            "reading another shop's return",
            lambda: platform.get_return(self.OTHER_SHOP, opened.return_id),
        )
