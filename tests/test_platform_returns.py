"""The fake platform returns keep the port's contract, and the contract catches adapters that
break it (double processing, a refund above the processed lines, disposing more than was
received, a key ignored, a balance given back beyond what was paid or twice under one key)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import pytest

from returnflow.domain.inbound import Disposition
from returnflow.domain.money import Money
from returnflow.ports.commerce import CommercePlatform
from returnflow.ports.platform_returns import (
    PlatformReturn,
    PlatformReturnLine,
    PlatformReturns,
    ProcessResult,
    Quantity,
)
from returnflow.testing import FakeCommercePlatform
from returnflow.testing.platform_contract import PlatformReturnsContract
from returnflow.testing.platform_returns import FakePlatformReturns
from test_port_contracts import contract_failures


class TestFakePlatformReturns(PlatformReturnsContract):
    def make_platform(self) -> tuple[PlatformReturns, CommercePlatform]:
        commerce = FakeCommercePlatform()
        return FakePlatformReturns(commerce), commerce


class ProcessesTwice(FakePlatformReturns):
    """Forgets what was processed: the same units can be processed (and refunded) again."""

    def process(
        self, shop: str, return_id: str, lines: Sequence[Quantity], **kw: Any
    ) -> ProcessResult:
        result = super().process(shop, return_id, lines, **kw)
        with self._lock:
            for line in self._returns[(shop, return_id)].lines:
                line.processed = 0
            self._returns[(shop, return_id)].refunded = Money.zero("EUR")
        return result


class RefundsAnything(FakePlatformReturns):
    """Moves whatever refund it is asked to, whatever the lines are worth."""

    def process(
        self, shop: str, return_id: str, lines: Sequence[Quantity], **kw: Any
    ) -> ProcessResult:
        asked = kw["refund"]
        kw["refund"] = Money.zero(asked.currency)
        result = super().process(shop, return_id, lines, **kw)
        return ProcessResult(result.refund_ids, asked, result.exchange_fulfillment_ids)


class DisposesAnything(FakePlatformReturns):
    """Disposes units whether or not they were processed."""

    def dispose(
        self, shop: str, return_id: str, line_id: str, quantity: int, *a: Any, **kw: Any
    ) -> None:
        return None


class IgnoresKeys(FakePlatformReturns):
    """Opens a new return for every call, whatever its key."""

    def open_return(
        self, shop: str, order_id: str, lines: Sequence[PlatformReturnLine], **kw: Any
    ) -> PlatformReturn:
        kw["idempotency_key"] = f"{kw['idempotency_key']}-{self._next_id('fresh')}"
        return super().open_return(shop, order_id, lines, **kw)


class KeepsTheWholeFee(FakePlatformReturns):
    """Keeps a line's whole restocking fee whatever units were removed or processed."""

    def open_return(
        self, shop: str, order_id: str, lines: Sequence[PlatformReturnLine], **kw: Any
    ) -> PlatformReturn:
        opened = super().open_return(shop, order_id, lines, **kw)
        with self._lock:
            for line in self._returns[(shop, opened.return_id)].lines:
                if line.restocking_fee is not None:
                    line.fee_shares = (line.restocking_fee,) * line.quantity
        return opened


class GivesAnythingBack(FakePlatformReturns):
    """Gives back whatever shipping and duties it is asked to, charged or not."""

    def process(
        self, shop: str, return_id: str, lines: Sequence[Quantity], **kw: Any
    ) -> ProcessResult:
        shipping, duties = kw.pop("refund_shipping", None), kw.pop("refund_duties", ())
        result = super().process(shop, return_id, lines, **kw)
        extra = Money.sum([d.amount for d in duties] + ([shipping] if shipping else []), "EUR")
        return ProcessResult(result.refund_ids, result.refunded + extra)


class HoldsEveryExchange(FakePlatformReturns):
    """Holds an exchange's items whether or not a balance is owed."""

    def get_return(self, shop: str, return_id: str) -> PlatformReturn:
        return _held(super().get_return(shop, return_id))

    def open_return(
        self, shop: str, order_id: str, lines: Sequence[PlatformReturnLine], **kw: Any
    ) -> PlatformReturn:
        return _held(super().open_return(shop, order_id, lines, **kw))

    def process(
        self, shop: str, return_id: str, lines: Sequence[Quantity], **kw: Any
    ) -> ProcessResult:
        result = super().process(shop, return_id, lines, **kw)
        return attrs.evolve(result, exchange_on_hold=bool(result.exchange_fulfillment_ids))


def _held(read: PlatformReturn) -> PlatformReturn:
    return attrs.evolve(read, exchange_on_hold=bool(read.exchange_line_ids))


class HoldsNothing(FakePlatformReturns):
    """Never holds an exchange, whatever the customer owes."""

    def open_return(
        self, shop: str, order_id: str, lines: Sequence[PlatformReturnLine], **kw: Any
    ) -> PlatformReturn:
        return attrs.evolve(
            super().open_return(shop, order_id, lines, **kw), exchange_on_hold=False
        )

    def process(
        self, shop: str, return_id: str, lines: Sequence[Quantity], **kw: Any
    ) -> ProcessResult:
        return attrs.evolve(super().process(shop, return_id, lines, **kw), exchange_on_hold=False)


class GivesBackAnyBalance(FakePlatformReturns):
    """Gives back whatever part of the balance it is asked to, paid or not."""

    def refund_balance(
        self, shop: str, return_id: str, amount: Money, *, idempotency_key: str
    ) -> PlatformReturn:
        with self._lock:
            record = self._returns[(shop, return_id)]
            record.paid = amount if record.paid is None else record.paid + amount
        return super().refund_balance(shop, return_id, amount, idempotency_key=idempotency_key)


class GivesBackTwice(FakePlatformReturns):
    """Gives the balance back again when a refund is repeated under its key."""

    def refund_balance(
        self, shop: str, return_id: str, amount: Money, *, idempotency_key: str
    ) -> PlatformReturn:
        key = f"{idempotency_key}-{self._next_id('fresh')}"
        return super().refund_balance(shop, return_id, amount, idempotency_key=key)


class OwesNothingAgain(FakePlatformReturns):
    """Lowers what was paid when it is given back, but not what the return owes."""

    def refund_balance(
        self, shop: str, return_id: str, amount: Money, *, idempotency_key: str
    ) -> PlatformReturn:
        before = self.get_return(shop, return_id)
        after = super().refund_balance(shop, return_id, amount, idempotency_key=idempotency_key)
        return attrs.evolve(
            after, balance_owed=before.balance_owed, exchange_on_hold=before.exchange_on_hold
        )


class ValuesItsOwnPick(FakePlatformReturns):
    """Takes the units it picks itself, not those the return names."""

    def open_return(
        self, shop: str, order_id: str, lines: Sequence[PlatformReturnLine], **kw: Any
    ) -> PlatformReturn:
        unnamed = [attrs.evolve(line, units=()) for line in lines]
        return super().open_return(shop, order_id, unnamed, **kw)


class HidesDisposals(FakePlatformReturns):
    """Does not report the units disposed of (as the view did before it counted them)."""

    def get_return(self, shop: str, return_id: str) -> PlatformReturn:
        return attrs.evolve(super().get_return(shop, return_id), disposed=())


class ReportsEveryKindAsRestocked(FakePlatformReturns):
    """Counts the units disposed of right, but reports all of them as restocked."""

    def get_return(self, shop: str, return_id: str) -> PlatformReturn:
        read = super().get_return(shop, return_id)
        kinds = tuple((line, Disposition.RESTOCKED, units) for line, units in read.disposed)
        return attrs.evolve(read, dispositions=kinds)


class CountsShippingAsRefunded(FakePlatformReturns):
    """Reports the shipping and duties given back in what the lines were refunded."""

    def process(
        self, shop: str, return_id: str, lines: Sequence[Quantity], **kw: Any
    ) -> ProcessResult:
        result = super().process(shop, return_id, lines, **kw)
        with self._lock:
            record = self._returns[(shop, return_id)]
            record.refunded = record.refunded + (result.refunded - kw["refund"])
        return result


class RefundedOfTheLastCall(FakePlatformReturns):
    """Reports what the last processing refunded, not every processing's."""

    def process(
        self, shop: str, return_id: str, lines: Sequence[Quantity], **kw: Any
    ) -> ProcessResult:
        with self._lock:
            record = self._returns[(shop, return_id)]
            record.refunded = Money.zero(record.refunded.currency)
        return super().process(shop, return_id, lines, **kw)


def failures(fake: type[FakePlatformReturns]) -> dict[str, BaseException]:
    class Contract(PlatformReturnsContract):
        def make_platform(self) -> tuple[PlatformReturns, CommercePlatform]:
            commerce = FakeCommercePlatform()
            return fake(commerce), commerce

    return contract_failures(Contract)


@pytest.mark.parametrize(
    ("fake", "caught_by"),
    [
        (ProcessesTwice, "test_units_are_processed_once"),
        (RefundsAnything, "test_a_refund_never_exceeds_what_the_processed_lines_are_worth"),
        (DisposesAnything, "test_only_processed_units_are_disposed"),
        (HidesDisposals, "test_only_processed_units_are_disposed"),
        (ReportsEveryKindAsRestocked, "test_disposed_units_are_reported_by_kind"),
        (
            CountsShippingAsRefunded,
            "test_the_return_reports_what_its_processings_refunded_for_the_lines",
        ),
        (
            RefundedOfTheLastCall,
            "test_the_return_reports_what_its_processings_refunded_for_the_lines",
        ),
        (IgnoresKeys, "test_a_key_answers_its_first_result_and_opens_nothing_more"),
        (KeepsTheWholeFee, "test_a_restocking_fee_follows_the_units"),
        (HoldsEveryExchange, "test_an_even_exchange_or_one_for_less_is_never_held"),
        (HoldsNothing, "test_an_upsell_is_held_until_its_balance_is_paid"),
        (GivesAnythingBack, "test_shipping_and_duties_go_back_once_and_never_more_than_charged"),
        (GivesBackAnyBalance, "test_a_balance_paid_is_given_back_once_and_never_more_than_paid"),
        (GivesBackTwice, "test_a_balance_paid_is_given_back_once_and_never_more_than_paid"),
        (OwesNothingAgain, "test_a_balance_paid_is_given_back_once_and_never_more_than_paid"),
        (ValuesItsOwnPick, "test_the_units_named_are_the_units_valued"),
    ],
)
def test_the_contract_catches_a_planted_bug(
    fake: type[FakePlatformReturns], caught_by: str
) -> None:
    assert caught_by in failures(fake)


def test_the_unchanged_fake_passes_every_test() -> None:
    assert failures(FakePlatformReturns) == {}


def test_a_failed_call_changes_nothing_and_a_retry_with_the_key_succeeds() -> None:
    commerce = FakeCommercePlatform()
    from returnflow.testing import make_order

    commerce.add_order(make_order("s", "1"))
    platform = FakePlatformReturns(commerce)
    platform.fail("open_return")
    lines = [PlatformReturnLine("L1", 1)]
    with pytest.raises(Exception, match="injected failure"):
        platform.open_return("s", "1", lines, idempotency_key="k")
    opened = platform.open_return("s", "1", lines, idempotency_key="k")
    assert opened.return_id == "gid://Return/1"
    assert [call.outcome for call in platform.calls_to("open_return")] == ["failed", "ok"]
