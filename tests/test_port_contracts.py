"""The port contracts, run against the fakes; adapters with planted bugs, which the contracts
must fail; and the fakes' scripted delays."""

from __future__ import annotations

import itertools
import threading
import time
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import pytest

from returnflow.domain.methods import ReturnMethod
from returnflow.domain.model import OrderSnapshot
from returnflow.domain.money import Money
from returnflow.domain.policy import ReturnPolicy
from returnflow.errors import ConfigurationError, PortError
from returnflow.ports.carrier import Carrier, Label
from returnflow.ports.commerce import (
    CommercePlatform,
    ExchangeHold,
    ExchangeItem,
    LineQuantity,
    RefundReceipt,
)
from returnflow.ports.events import DomainEvent, EventPublisher
from returnflow.ports.notifier import Notifier
from returnflow.ports.payments import PaymentReceipt, Payments
from returnflow.ports.policies import PolicySource, ShopPolicies
from returnflow.ports.warehouse import Warehouse, WarehouseReturn
from returnflow.testing.fakes import (
    FakeCarrier,
    FakeCommercePlatform,
    FakeEventPublisher,
    FakeNotifier,
    FakePayments,
    FakeWarehouse,
)
from returnflow.testing.port_contracts import (
    CarrierContract,
    CommercePlatformContract,
    EventPublisherContract,
    NotifierContract,
    PaymentsContract,
    PolicySourceContract,
    PortContract,
    WarehouseContract,
    make_order,
)

pytest_plugins = ["pytester"]


# -- the fakes pass every contract -------------------------------------------------------------


class TestFakeCommercePlatform(CommercePlatformContract):
    def make_platform(self) -> CommercePlatform:
        return FakeCommercePlatform()


class TestFakeWarehouse(WarehouseContract):
    def make_warehouse(self) -> Warehouse:
        return FakeWarehouse()


class TestFakeWarehouseWithLocations(WarehouseContract):
    LOCATION = "berlin"

    def make_warehouse(self) -> Warehouse:
        return FakeWarehouse(locations=["berlin", "bulky-hub"])


class TestFakeCarrier(CarrierContract):
    def make_carrier(self) -> Carrier:
        return FakeCarrier()


class TestFakePayments(PaymentsContract):
    def make_payments(self) -> Payments:
        return FakePayments()


class TestFakeNotifier(NotifierContract):
    def make_notifier(self) -> Notifier:
        return FakeNotifier()


class TestFakeEventPublisher(EventPublisherContract):
    def make_publisher(self) -> EventPublisher:
        return FakeEventPublisher()


class TestShopPolicies(PolicySourceContract):
    def make_source(self, policies: Mapping[str, Sequence[ReturnPolicy]]) -> PolicySource:
        return ShopPolicies(policies)


class TestFakeCommercePlatformInUsd(CommercePlatformContract):
    """The class attributes configure the suite: another currency, shop and items."""

    CURRENCY = "USD"
    SHOP = "shop-usd"
    EXCHANGE_ITEMS = (
        ExchangeItem(exchange_line_id="A", variant_id="V-A", quantity=2),
        ExchangeItem(exchange_line_id="B", variant_id="V-B", quantity=1),
        ExchangeItem(exchange_line_id="C", variant_id="V-C", quantity=1),
    )

    def make_platform(self) -> CommercePlatform:
        return FakeCommercePlatform()


# -- hooks ---------------------------------------------------------------------------------------


class _Closable(FakeCarrier):
    closed = 0

    def close(self) -> None:
        type(self).closed += 1


class _PlatformWithoutAddOrder(FakeCommercePlatform):
    """A platform seeded some other way: under its own order ids."""

    def __getattribute__(self, name: str) -> Any:
        if name == "add_order":
            raise AttributeError(name)
        return super().__getattribute__(name)


class _SeededOtherwise(CommercePlatformContract):
    """Seeds through a hook and gets the platform's own order ids back."""

    def make_platform(self) -> CommercePlatform:
        return _PlatformWithoutAddOrder()

    def seed_order(self, platform: CommercePlatform, order: OrderSnapshot) -> str:
        assert isinstance(platform, FakeCommercePlatform)
        platform_id = f"gid://platform/Order/{order.id}"
        FakeCommercePlatform.add_order(platform, make_order(order.shop, platform_id))
        return platform_id


class _NotSeeded(CommercePlatformContract):
    def make_platform(self) -> CommercePlatform:
        return _PlatformWithoutAddOrder()


def test_ports_with_close_are_closed_after_each_test() -> None:
    class Contract(CarrierContract):
        def make_carrier(self) -> Carrier:
            return _Closable()

    _Closable.closed = 0
    assert contract_failures(Contract) == {}
    tests = [name for name in dir(Contract) if name.startswith("test_")]
    assert _Closable.closed == len(tests) > 0


def test_seed_order_may_be_overridden_and_return_the_platforms_id() -> None:
    assert contract_failures(_SeededOtherwise) == {}


def test_without_add_order_seed_order_says_to_override_it() -> None:
    contract = _NotSeeded()
    with pytest.raises(ConfigurationError, match=r"override _NotSeeded\.seed_order"):
        contract.test_get_order_returns_the_seeded_order()


def test_keys_and_ids_are_new_every_time_and_in_every_run() -> None:
    first, second = PortContract(), PortContract()
    keys = [first.new_key("k") for _ in range(3)] + [second.new_key("k") for _ in range(3)]
    ids = [first.new_id("order"), second.new_id("order")]
    assert len(set(keys)) == len(keys)
    assert len(set(ids)) == len(ids)
    assert all("-k-" in key for key in keys)
    assert all(order_id.startswith("order-") for order_id in ids)


def test_importing_the_contracts_does_not_import_pytest() -> None:
    import subprocess
    import sys

    code = (
        "import sys, returnflow.testing.port_contracts as m; "
        "assert 'pytest' not in sys.modules, 'pytest imported'; "
        "assert m.make_order('s', 'o').paid_total.amount == 30"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- running a contract against an adapter, in process ------------------------------------------


def contract_failures(contract: type[PortContract]) -> dict[str, BaseException]:
    """Run every test of ``contract`` (a concrete subclass) on a new instance each, as pytest
    would; return the tests that failed, with their errors (skipped ones did not)."""
    failures: dict[str, BaseException] = {}
    for name in sorted(dir(contract)):
        if not name.startswith("test_"):
            continue
        instance = contract()
        try:
            getattr(instance, name)()
        except pytest.skip.Exception:
            continue  # a test the contract skips for this adapter (its teardown still runs)
        except (Exception, pytest.fail.Exception) as error:
            failures[name] = error
        finally:
            instance.teardown_method(None)
    return failures


_FACTORY_METHODS: dict[type[PortContract], str] = {
    CommercePlatformContract: "make_platform",
    WarehouseContract: "make_warehouse",
    CarrierContract: "make_carrier",
    PaymentsContract: "make_payments",
    NotifierContract: "make_notifier",
    EventPublisherContract: "make_publisher",
}


def bound(contract: type[PortContract], factory: Callable[[], object]) -> type[PortContract]:
    """``contract`` with its factory method making ``factory()``."""
    method = _FACTORY_METHODS[contract]
    return type(f"Bound{contract.__name__}", (contract,), {method: lambda self: factory()})


# -- adapters with planted bugs -------------------------------------------------------------------


class _Forgetful:
    """Mixin: every call gets a key of its own, so nothing is ever replayed."""

    _numbers = itertools.count()

    def fresh(self, key: str) -> str:
        return f"{key}#{next(self._numbers)}"


class RefundsOnEveryReplay(_Forgetful, FakeCommercePlatform):
    """Refunds again when a refund is repeated with its key."""

    def refund(
        self,
        shop: str,
        order_id: str,
        amount: Money,
        lines: Sequence[LineQuantity],
        *,
        idempotency_key: str,
    ) -> Any:
        return super().refund(shop, order_id, amount, lines, idempotency_key=self.fresh("k"))


class RefundsAgainButAnswersTheFirstReceipt(FakeCommercePlatform):
    """Answers a replayed refund with the first receipt, but has refunded the amount again
    (as if the line quantities were not checked: only the money is)."""

    def refund(
        self,
        shop: str,
        order_id: str,
        amount: Money,
        lines: Sequence[LineQuantity],
        *,
        idempotency_key: str,
    ) -> Any:
        first = super().refund(shop, order_id, amount, lines, idempotency_key=idempotency_key)
        if (
            sum(1 for call in self.calls_to("refund") if call.idempotency_key == idempotency_key)
            > 1
        ):
            with self._lock:
                self._refunds.append(self._refunds[-1])
        return first


class ReleasesWhenItemsAreAdded(FakeCommercePlatform):
    """Puts exchange items straight into Unfulfilled: never holds them."""

    def add_exchange_items(
        self,
        shop: str,
        order_id: str,
        items: Sequence[ExchangeItem],
        *,
        hold_tag: str,
        idempotency_key: str,
    ) -> ExchangeHold:
        hold = super().add_exchange_items(
            shop, order_id, items, hold_tag=hold_tag, idempotency_key=idempotency_key
        )
        self.release_exchange(
            shop, order_id, hold.hold_id, hold_tag=hold_tag, idempotency_key=f"{idempotency_key}!"
        )
        return hold


class IgnoresReleases(FakeCommercePlatform):
    """Accepts releases without honouring them (the case ``ignore_releases`` scripts)."""

    def __init__(self) -> None:
        super().__init__()
        self.ignore_releases(None)


class CancelIsPartial(FakeCommercePlatform):
    """Cancels only the first of the items it is asked to cancel."""

    def cancel_exchange_items(
        self,
        shop: str,
        order_id: str,
        hold_id: str,
        item_ids: Sequence[str],
        *,
        idempotency_key: str,
    ) -> None:
        super().cancel_exchange_items(
            shop, order_id, hold_id, item_ids[:1], idempotency_key=idempotency_key
        )


class NoPaidTotalCap(FakeCommercePlatform):
    """Refunds whatever it is asked to, in any currency (unknown orders are still refused)."""

    _numbers = itertools.count(1)

    def refund(
        self,
        shop: str,
        order_id: str,
        amount: Money,
        lines: Sequence[LineQuantity],
        *,
        idempotency_key: str,
    ) -> RefundReceipt:
        self.get_order(shop, order_id)
        return RefundReceipt(refund_id=f"refund-{next(self._numbers)}", amount=amount)


class UnknownOrdersAreRetryable(FakeCommercePlatform):
    """Says an unknown order is a passing failure, so the service retries it for ever."""

    def get_order(self, shop: str, order_id: str) -> Any:
        try:
            return super().get_order(shop, order_id)
        except PortError as error:
            raise PortError("commerce", "get_order", str(error), retryable=True) from error


class LastWriteWinsOnKeys(FakeCommercePlatform):
    """A key reused with other arguments does the new thing instead of being refused."""

    def __init__(self) -> None:
        super().__init__()
        self._generation: dict[str, int] = {}
        self._seen: dict[str, tuple[object, ...]] = {}

    def _rekey(self, key: str, *args: object) -> str:
        if self._seen.setdefault(key, args) != args:
            self._seen[key] = args
            self._generation[key] = self._generation.get(key, 0) + 1
        return f"{key}@{self._generation.get(key, 0)}"

    def add_exchange_items(
        self,
        shop: str,
        order_id: str,
        items: Sequence[ExchangeItem],
        *,
        hold_tag: str,
        idempotency_key: str,
    ) -> ExchangeHold:
        key = self._rekey(idempotency_key, shop, order_id, tuple(items), hold_tag)
        return super().add_exchange_items(
            shop, order_id, items, hold_tag=hold_tag, idempotency_key=key
        )

    def refund(
        self,
        shop: str,
        order_id: str,
        amount: Money,
        lines: Sequence[LineQuantity],
        *,
        idempotency_key: str,
    ) -> Any:
        key = self._rekey(idempotency_key, shop, order_id, amount, tuple(lines))
        return super().refund(shop, order_id, amount, lines, idempotency_key=key)

    def issue_store_credit(
        self, shop: str, order_id: str, amount: Money, *, idempotency_key: str
    ) -> Any:
        key = self._rekey(idempotency_key, shop, order_id, amount)
        return super().issue_store_credit(shop, order_id, amount, idempotency_key=key)

    def release_exchange(
        self, shop: str, order_id: str, hold_id: str, *, hold_tag: str, idempotency_key: str
    ) -> None:
        key = self._rekey(idempotency_key, shop, order_id, hold_id, hold_tag)
        super().release_exchange(shop, order_id, hold_id, hold_tag=hold_tag, idempotency_key=key)

    def cancel_exchange_items(
        self,
        shop: str,
        order_id: str,
        hold_id: str,
        item_ids: Sequence[str],
        *,
        idempotency_key: str,
    ) -> None:
        key = self._rekey(idempotency_key, shop, order_id, hold_id, tuple(item_ids))
        super().cancel_exchange_items(shop, order_id, hold_id, item_ids, idempotency_key=key)

    def restock(
        self, shop: str, order_id: str, lines: Sequence[LineQuantity], *, idempotency_key: str
    ) -> None:
        key = self._rekey(idempotency_key, shop, order_id, tuple(lines))
        super().restock(shop, order_id, lines, idempotency_key=key)


class NewRmaOnEveryCall(_Forgetful, FakeWarehouse):
    """Ignores idempotency keys: a repeated create_return makes another RMA."""

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
    ) -> WarehouseReturn:
        return super().create_return(
            shop,
            order_id,
            return_id,
            lines,
            reason=reason,
            action=action,
            idempotency_key=self.fresh(idempotency_key),
        )


class CancelsAnything(FakeWarehouse):
    """Answers a cancel of an unknown RMA with success."""

    def cancel_return(self, shop: str, rma_id: str, *, idempotency_key: str) -> None:
        try:
            super().cancel_return(shop, rma_id, idempotency_key=idempotency_key)
        except PortError:
            return


class NewTrackingNumberOnReplay(_Forgetful, FakeCarrier):
    """Buys another label when create_label is repeated with its key."""

    def create_label(
        self, shop: str, return_id: str, order_id: str, *, idempotency_key: str
    ) -> Label:
        return super().create_label(
            shop, return_id, order_id, idempotency_key=self.fresh(idempotency_key)
        )


class VoidsAgainAndFails(FakeCarrier):
    """Voids again on a repeated key, and a void label cannot be voided: the replay fails."""

    def void_label(self, shop: str, tracking_number: str, *, idempotency_key: str) -> None:
        if self.get(tracking_number).status == "void":
            raise PortError("carrier", "void_label", "label already void", retryable=False)
        super().void_label(shop, tracking_number, idempotency_key=idempotency_key)


class EmptyLabelUrl(FakeCarrier):
    """Answers with a label of its own making whose URL is empty (a :class:`Label` refuses
    one itself, an object shaped like it does not)."""

    def create_label(
        self, shop: str, return_id: str, order_id: str, *, idempotency_key: str
    ) -> Any:
        label = super().create_label(shop, return_id, order_id, idempotency_key=idempotency_key)
        return types.SimpleNamespace(
            tracking_number=label.tracking_number, label_url="", qr_code_url=None
        )


class RefundsAboveTheCharge(FakePayments):
    """Refunds more than was charged (does the refund as a charge, which has no cap)."""

    def refund(
        self, shop: str, return_id: str, amount: Money, *, idempotency_key: str
    ) -> PaymentReceipt:
        return self._pay("refund", "charge", shop, return_id, amount, idempotency_key)


class ChargesAgainOnReplay(FakePayments):
    """Answers a replayed charge with the first receipt, but charges again behind it."""

    def charge(
        self, shop: str, return_id: str, amount: Money, *, idempotency_key: str
    ) -> PaymentReceipt:
        replay = any(call.idempotency_key == idempotency_key for call in self.calls_to("charge"))
        receipt = super().charge(shop, return_id, amount, idempotency_key=idempotency_key)
        if replay:
            super().charge(shop, return_id, amount, idempotency_key=f"{idempotency_key}/again")
        return receipt


class AcceptsZero(FakePayments):
    """Charges and authorizes amounts of zero or less."""

    def charge(
        self, shop: str, return_id: str, amount: Money, *, idempotency_key: str
    ) -> PaymentReceipt:
        return PaymentReceipt(payment_id=f"pay-{idempotency_key}", amount=amount)


class RefusalsAreRetryable(FakePayments):
    """Refuses over-refunds with a retryable error: the service would retry for ever."""

    def refund(
        self, shop: str, return_id: str, amount: Money, *, idempotency_key: str
    ) -> PaymentReceipt:
        try:
            return super().refund(shop, return_id, amount, idempotency_key=idempotency_key)
        except PortError as error:
            raise PortError("payments", "refund", str(error), retryable=True) from error


class NotifierReplaysAnyMessage(FakeNotifier):
    """Treats a key reused with another message as a replay."""

    def notify(
        self,
        shop: str,
        recipient: str,
        template: str,
        context: Any,
        *,
        idempotency_key: str,
    ) -> None:
        if any(call.idempotency_key == idempotency_key for call in self.calls_to("notify")):
            return
        super().notify(shop, recipient, template, context, idempotency_key=idempotency_key)


class PublisherRefusesReplays(FakeEventPublisher):
    """Refuses a repeated key outright, even with the same event."""

    def publish(self, event: DomainEvent, *, idempotency_key: str) -> None:
        if any(call.idempotency_key == idempotency_key for call in self.calls_to("publish")):
            raise PortError("events", "publish", "duplicate key", retryable=False)
        super().publish(event, idempotency_key=idempotency_key)


BUGS = [
    pytest.param(
        CommercePlatformContract,
        RefundsOnEveryReplay,
        {
            "test_a_refund_replay_refunds_once",
            "test_a_refund_key_reused_with_another_amount_is_refused",
        },
        id="commerce-refunds-twice-on-a-repeated-key",
    ),
    pytest.param(
        CommercePlatformContract,
        RefundsAgainButAnswersTheFirstReceipt,
        {"test_a_refund_replay_refunds_once"},
        id="commerce-replay-answers-first-receipt-but-refunds-again",
    ),
    pytest.param(
        CommercePlatformContract,
        ReleasesWhenItemsAreAdded,
        {
            "test_added_exchange_items_are_held",
            "test_cancelling_some_items_keeps_the_rest_held",
            "test_a_replayed_hold_is_the_same_hold_with_no_more_items",
        },
        id="commerce-releases-the-hold-at-once",
    ),
    pytest.param(
        CommercePlatformContract,
        IgnoresReleases,
        {"test_a_released_hold_is_released", "test_cancelling_some_items_keeps_the_rest_held"},
        id="commerce-ignores-releases",
    ),
    pytest.param(
        CommercePlatformContract,
        CancelIsPartial,
        {"test_cancelling_every_item_cancels_the_hold"},
        id="commerce-cancel-is-partial",
    ),
    pytest.param(
        CommercePlatformContract,
        NoPaidTotalCap,
        {
            "test_a_refund_above_the_paid_total_is_refused",
            "test_refunds_add_up_to_at_most_the_paid_total",
            "test_a_refund_in_another_currency_is_refused",
        },
        id="commerce-refunds-above-the-paid-total",
    ),
    pytest.param(
        CommercePlatformContract,
        UnknownOrdersAreRetryable,
        {"test_get_order_of_an_unknown_order_is_refused", "test_another_shops_order_is_unknown"},
        id="commerce-unknown-order-retryable",
    ),
    pytest.param(
        CommercePlatformContract,
        LastWriteWinsOnKeys,
        {
            "test_a_hold_key_reused_with_other_items_is_refused",
            "test_a_refund_key_reused_with_another_amount_is_refused",
            "test_a_store_credit_key_reused_with_another_amount_is_refused",
            "test_release_and_cancel_keys_reused_for_another_hold_are_refused",
            "test_a_restock_replay_is_accepted_and_another_key_use_refused",
        },
        id="commerce-key-reuse-not-refused",
    ),
    pytest.param(
        WarehouseContract,
        NewRmaOnEveryCall,
        {"test_a_replayed_create_return_is_the_same_rma"},
        id="warehouse-ignores-idempotency",
    ),
    pytest.param(
        WarehouseContract,
        CancelsAnything,
        {
            "test_cancel_of_an_unknown_rma_is_refused",
            "test_a_cancel_key_reused_for_another_rma_is_refused",
        },
        id="warehouse-cancels-unknown-rmas",
    ),
    pytest.param(
        CarrierContract,
        NewTrackingNumberOnReplay,
        {"test_a_replayed_create_label_is_the_same_label"},
        id="carrier-new-tracking-number-on-replay",
    ),
    pytest.param(
        CarrierContract,
        VoidsAgainAndFails,
        {"test_void_then_void_again_with_the_same_key"},
        id="carrier-void-replay-fails",
    ),
    pytest.param(
        CarrierContract,
        EmptyLabelUrl,
        {"test_create_label_gives_a_tracking_number_and_url"},
        id="carrier-empty-label-url",
    ),
    pytest.param(
        PaymentsContract,
        RefundsAboveTheCharge,
        {
            "test_a_refund_above_what_was_charged_is_refused",
            "test_a_refund_of_nothing_charged_is_refused",
        },
        id="payments-refunds-above-the-charge",
    ),
    pytest.param(
        PaymentsContract,
        ChargesAgainOnReplay,
        {"test_a_replayed_charge_charges_once"},
        id="payments-replayed-charge-charges-again",
    ),
    pytest.param(
        PaymentsContract,
        AcceptsZero,
        {
            "test_non_positive_amounts_are_refused",
            "test_a_payment_key_reused_with_another_amount_is_refused",
        },
        id="payments-accepts-non-positive-amounts",
    ),
    pytest.param(
        PaymentsContract,
        RefusalsAreRetryable,
        {"test_a_refund_above_what_was_charged_is_refused"},
        id="payments-refusal-retryable",
    ),
    pytest.param(
        NotifierContract,
        NotifierReplaysAnyMessage,
        {"test_a_notify_key_reused_with_another_message_is_refused"},
        id="notifier-key-reuse-not-refused",
    ),
    pytest.param(
        EventPublisherContract,
        PublisherRefusesReplays,
        {"test_a_replayed_event_is_accepted"},
        id="events-replay-refused",
    ),
]


@pytest.mark.parametrize(("contract", "adapter", "caught_by"), BUGS)
def test_the_contract_catches_a_planted_bug(
    contract: type[PortContract], adapter: Callable[[], object], caught_by: set[str]
) -> None:
    failures = contract_failures(bound(contract, adapter))
    missed = caught_by - failures.keys()
    assert not missed, f"the contract missed the bug in {sorted(missed)}"
    for name in caught_by:
        assert isinstance(failures[name], (AssertionError, pytest.fail.Exception)), (
            name,
            failures[name],
        )


@pytest.mark.parametrize("contract", list(_FACTORY_METHODS), ids=lambda c: c.__name__)
def test_the_in_process_runner_passes_the_fakes(contract: type[PortContract]) -> None:
    """The in-process runner of the planted-bug tests passes the real fakes."""
    fakes: dict[type[PortContract], Callable[[], object]] = {
        CommercePlatformContract: FakeCommercePlatform,
        WarehouseContract: FakeWarehouse,
        CarrierContract: FakeCarrier,
        PaymentsContract: FakePayments,
        NotifierContract: FakeNotifier,
        EventPublisherContract: FakeEventPublisher,
    }
    assert contract_failures(bound(contract, fakes[contract])) == {}


def test_a_contract_calls_a_planted_bug_out_by_name() -> None:
    """A failing contract test says what the adapter did wrong."""
    contract = bound(CarrierContract, NewTrackingNumberOnReplay)()
    with pytest.raises(AssertionError, match="bought another label"):
        contract.test_a_replayed_create_label_is_the_same_label()  # type: ignore[attr-defined]
    contract = bound(CommercePlatformContract, ReleasesWhenItemsAreAdded)()
    with pytest.raises(AssertionError, match="must stay on hold until released"):
        contract.test_added_exchange_items_are_held()  # type: ignore[attr-defined]


HOST_MODULE = """
from returnflow.testing.fakes import FakeCommercePlatform
from returnflow.testing.port_contracts import CommercePlatformContract


class ReleasesAtOnce(FakeCommercePlatform):
    def add_exchange_items(self, shop, order_id, items, *, hold_tag, idempotency_key):
        hold = super().add_exchange_items(
            shop, order_id, items, hold_tag=hold_tag, idempotency_key=idempotency_key
        )
        self.release_exchange(
            shop, order_id, hold.hold_id, hold_tag=hold_tag, idempotency_key=idempotency_key + "!"
        )
        return hold


class TestGoodPlatform(CommercePlatformContract):
    def make_platform(self): return FakeCommercePlatform()


class TestBuggyPlatform(CommercePlatformContract):
    def make_platform(self): return ReleasesAtOnce()
"""


def test_a_host_module_runs_the_contract_under_pytest(pytester: pytest.Pytester) -> None:
    """What a host writes: the subclasses are collected, the good one passes, the bad one
    fails."""
    pytester.makepyfile(test_host=HOST_MODULE)
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-q", "-rf"
    )
    outcomes = result.parseoutcomes()
    tests = len([name for name in dir(CommercePlatformContract) if name.startswith("test_")])
    assert outcomes["failed"] >= 1
    assert outcomes["passed"] + outcomes["failed"] == 2 * tests
    failed = [line for line in result.outlines if line.startswith("FAILED")]
    assert failed
    assert all("TestBuggyPlatform" in line for line in failed), failed
    assert any("test_added_exchange_items_are_held" in line for line in failed), failed


# -- delays --------------------------------------------------------------------------------------


DELAY = 0.05
"""The delay the tests script; an undelayed call of a fake takes far less."""

SLACK = 0.001
"""Clock rounding allowed when checking that a delay was slept."""


def _timed(call: Callable[[], object]) -> float:
    start = time.monotonic()
    call()
    return time.monotonic() - start


def _label(carrier: FakeCarrier, key: str) -> Label:
    return carrier.create_label("shop-1", "ret-1", "order-1", idempotency_key=key)


def test_delay_sleeps_before_answering_and_heal_ends_it() -> None:
    carrier = FakeCarrier()
    carrier.delay(DELAY)
    assert _timed(lambda: _label(carrier, "k1")) >= DELAY - SLACK
    assert (
        _timed(lambda: carrier.void_label("shop-1", "TRK000001", idempotency_key="v"))
        >= DELAY - SLACK
    )
    carrier.heal()
    assert _timed(lambda: _label(carrier, "k2")) < DELAY
    assert [call.outcome for call in carrier.calls] == ["ok", "ok", "ok"]


def test_delay_of_one_operation_a_number_of_times() -> None:
    warehouse = FakeWarehouse()
    warehouse.delay(DELAY, "cancel_return", times=1)
    line = [LineQuantity("L1", 1)]

    def create() -> WarehouseReturn:
        return warehouse.create_return(
            "s", "o", "r", line, reason="x", action="refund", idempotency_key="c"
        )

    assert _timed(create) < DELAY
    assert (
        _timed(lambda: warehouse.cancel_return("s", "RMA-1", idempotency_key="x")) >= DELAY - SLACK
    )
    assert _timed(lambda: warehouse.cancel_return("s", "RMA-1", idempotency_key="x")) < DELAY


def test_delays_add_up_and_apply_to_failing_calls() -> None:
    payments = FakePayments()
    payments.delay(0.03, "charge", times=1)
    payments.delay(0.03, times=1)
    payments.fail("charge")

    def charge() -> None:
        with pytest.raises(PortError, match="injected failure"):
            payments.charge("s", "r", Money("1.00", "EUR"), idempotency_key="c")

    assert _timed(charge) >= 0.06 - SLACK
    # both delays were used up by the failed call: the retry answers at once
    retry = payments.charge("s", "r", Money("1.00", "EUR"), idempotency_key="c")
    assert _timed(lambda: payments.charge("s", "r", retry.amount, idempotency_key="c")) < 0.03


def test_a_delayed_call_does_not_hold_the_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Other threads go on while a call sleeps its delay."""
    carrier = FakeCarrier()
    slept: list[tuple[float, bool]] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        slept.append((seconds, carrier._lock.locked()))
        real_sleep(0)

    monkeypatch.setattr(time, "sleep", sleep)
    carrier.delay(0.25, "create_label")
    _label(carrier, "k1")
    assert slept == [(0.25, False)]


def test_delayed_calls_from_threads_overlap() -> None:
    carrier = FakeCarrier()
    carrier.delay(0.2, "create_label")
    threads = [threading.Thread(target=_label, args=(carrier, f"k{n}")) for n in range(4)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert time.monotonic() - start < 0.2 * len(threads)
    assert len(carrier.labels) == len(threads)


@pytest.mark.parametrize(
    ("seconds", "operation", "times", "error"),
    [
        (-0.1, None, None, "seconds"),
        (float("nan"), None, None, "seconds"),
        (float("inf"), None, None, "seconds"),
        (True, None, None, "seconds"),
        (0.01, "no_such_operation", None, "no operation"),
        (0.01, None, 0, "times"),
    ],
)
def test_delay_refuses_bad_arguments(
    seconds: float, operation: str | None, times: int | None, error: str
) -> None:
    carrier = FakeCarrier()
    with pytest.raises(ValueError, match=error):
        carrier.delay(seconds, operation, times=times)
    assert _timed(lambda: _label(carrier, "k")) < DELAY


class _EveryVersionIsTheLast:
    """A policy source that forgets versions: every return gets today's rules."""

    def __init__(self, policies: Mapping[str, Sequence[ReturnPolicy]]) -> None:
        self.policies = {shop: list(versions)[-1] for shop, versions in policies.items()}

    def policy_for(self, shop: str, version: str | None = None) -> ReturnPolicy:
        return ShopPolicies(self.policies).policy_for(shop)


def test_the_policy_source_contract_catches_a_source_that_forgets_versions() -> None:
    class Contract(PolicySourceContract):
        def make_source(self, policies: Mapping[str, Sequence[ReturnPolicy]]) -> PolicySource:
            return _EveryVersionIsTheLast(policies)

    assert set(contract_failures(Contract)) == {
        "test_an_earlier_version_is_served_by_its_name",
        "test_a_version_not_served_is_a_configuration_error_naming_it",
    }


# -- the carrier and return methods ----------------------------------------------------------------


class IgnoresTheMethod(FakeCarrier):
    """Sells a mail label whatever the method (no QR code for a drop-off, a label for an
    in-store return, and a key reused for another method is answered as a replay)."""

    def create_label(
        self,
        shop: str,
        return_id: str,
        order_id: str,
        *,
        idempotency_key: str,
        method: ReturnMethod = ReturnMethod.MAIL,
    ) -> Label:
        return super().create_label(shop, return_id, order_id, idempotency_key=idempotency_key)


class LosesTheQrCodeOnReplay(FakeCarrier):
    """Answers a replayed drop-off label without its QR code (as if only the tracking number
    and the label were kept with the key)."""

    def create_label(
        self,
        shop: str,
        return_id: str,
        order_id: str,
        *,
        idempotency_key: str,
        method: ReturnMethod = ReturnMethod.MAIL,
    ) -> Label:
        seen = idempotency_key in self.__dict__.setdefault("keys", set())
        self.__dict__["keys"].add(idempotency_key)
        label = super().create_label(
            shop, return_id, order_id, idempotency_key=idempotency_key, method=method
        )
        return attrs.evolve(label, qr_code_url=None) if seen else label


class SellsInStoreLabels(FakeCarrier):
    """Sells a label for an in-store return (which no carrier carries)."""

    def create_label(
        self,
        shop: str,
        return_id: str,
        order_id: str,
        *,
        idempotency_key: str,
        method: ReturnMethod = ReturnMethod.MAIL,
    ) -> Label:
        if ReturnMethod(method) is ReturnMethod.IN_STORE:
            method = ReturnMethod.MAIL
        return super().create_label(
            shop, return_id, order_id, idempotency_key=idempotency_key, method=method
        )


class KeyedWithoutTheMethod(FakeCarrier):
    """Remembers a label by its key and return but not its method: a key reused for
    another method gets the first label back instead of a refusal."""

    def create_label(
        self,
        shop: str,
        return_id: str,
        order_id: str,
        *,
        idempotency_key: str,
        method: ReturnMethod = ReturnMethod.MAIL,
    ) -> Label:
        sold: dict[tuple[str, str], Label] = self.__dict__.setdefault("sold", {})
        if (idempotency_key, return_id) not in sold:
            sold[(idempotency_key, return_id)] = super().create_label(
                shop, return_id, order_id, idempotency_key=idempotency_key, method=method
            )
        return sold[(idempotency_key, return_id)]


class OldStyleCarrier(FakeCarrier):
    """A carrier written before methods: ``create_label`` takes no ``method``."""

    def create_label(  # type: ignore[override]
        self, shop: str, return_id: str, order_id: str, *, idempotency_key: str
    ) -> Label:
        return super().create_label(shop, return_id, order_id, idempotency_key=idempotency_key)


class MailOnly(FakeCarrier):
    """Serves mail only and refuses the other methods with PortError(retryable=False)."""

    def create_label(
        self,
        shop: str,
        return_id: str,
        order_id: str,
        *,
        idempotency_key: str,
        method: ReturnMethod = ReturnMethod.MAIL,
    ) -> Label:
        if ReturnMethod(method) is not ReturnMethod.MAIL:
            raise PortError("carrier", "create_label", f"no {method.value}", retryable=False)
        return super().create_label(shop, return_id, order_id, idempotency_key=idempotency_key)


METHOD_BUGS = [
    pytest.param(
        IgnoresTheMethod,
        {
            "test_each_method_it_serves_gets_a_label_and_a_drop_off_a_qr_code",
            "test_a_label_key_reused_for_another_method_is_refused",
            "test_a_method_it_does_not_serve_is_refused",
        },
        id="carrier-ignores-the-method",
    ),
    pytest.param(
        LosesTheQrCodeOnReplay,
        {"test_a_replayed_label_of_each_method_is_the_same_label"},
        id="carrier-loses-the-qr-code-on-replay",
    ),
    pytest.param(
        SellsInStoreLabels,
        {"test_a_method_it_does_not_serve_is_refused"},
        id="carrier-sells-in-store-labels",
    ),
    pytest.param(
        KeyedWithoutTheMethod,
        {"test_a_label_key_reused_for_another_method_is_refused"},
        id="carrier-keys-without-the-method",
    ),
    pytest.param(
        OldStyleCarrier,
        {
            "test_each_method_it_serves_gets_a_label_and_a_drop_off_a_qr_code",
            "test_a_replayed_label_of_each_method_is_the_same_label",
            "test_a_label_key_reused_for_another_method_is_refused",
            "test_a_method_it_does_not_serve_is_refused",
        },
        id="carrier-without-methods",
    ),
]


@pytest.mark.parametrize(("adapter", "caught_by"), METHOD_BUGS)
def test_the_carrier_contract_catches_a_planted_method_bug(
    adapter: Callable[[], object], caught_by: set[str]
) -> None:
    """Each bug fails exactly the method tests named, with an AssertionError saying what
    the carrier did; the tests of mail labels (asked without a method) still pass."""
    failures = contract_failures(bound(CarrierContract, adapter))
    assert set(failures) == caught_by, sorted(failures)
    for name in caught_by:
        assert isinstance(failures[name], AssertionError), (name, failures[name])


def test_a_carrier_that_mails_only_passes_when_it_says_so() -> None:
    class MailOnlyContract(CarrierContract):
        METHODS = (ReturnMethod.MAIL,)

        def make_carrier(self) -> Carrier:
            return MailOnly()

    assert contract_failures(MailOnlyContract) == {}
    failures = contract_failures(bound(CarrierContract, MailOnly))  # claims every method
    assert set(failures) == {
        "test_each_method_it_serves_gets_a_label_and_a_drop_off_a_qr_code",
        "test_a_replayed_label_of_each_method_is_the_same_label",
    }


def test_a_carrier_without_methods_is_told_what_to_take() -> None:
    contract = bound(CarrierContract, OldStyleCarrier)()
    with pytest.raises(AssertionError, match="create_label takes no method"):
        contract.test_a_method_it_does_not_serve_is_refused()  # type: ignore[attr-defined]
    contract = bound(CarrierContract, IgnoresTheMethod)()
    with pytest.raises(AssertionError, match="QR code"):
        contract.test_each_method_it_serves_gets_a_label_and_a_drop_off_a_qr_code()  # type: ignore[attr-defined]


class DropsTheLocation(FakeWarehouse):
    """Expects every return at its default location, whatever location it was asked for."""

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
        return super().create_return(
            shop,
            order_id,
            return_id,
            lines,
            reason=reason,
            action=action,
            idempotency_key=idempotency_key,
        )


def test_the_warehouse_contract_catches_a_warehouse_that_drops_the_location() -> None:
    at_berlin = {"LOCATION": "berlin", "make_warehouse": lambda self: DropsTheLocation()}
    failures = contract_failures(type("Bound", (WarehouseContract,), at_berlin))
    assert set(failures) == {"test_a_create_key_reused_at_another_location_is_refused"}
    passing = {"LOCATION": "berlin", "make_warehouse": lambda self: FakeWarehouse()}
    assert contract_failures(type("Bound", (WarehouseContract,), passing)) == {}
