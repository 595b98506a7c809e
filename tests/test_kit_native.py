"""The testing kit's stateful model in native mode (seed 003): every policy drawn runs with
``platform_mode="native"`` on a fake of the platform's own returns, and the model checks,
beside its invariants, that the platform returns agree with returnflow: refunds as noted,
units processed as asked and settled, nothing disposed that was not received and accepted,
no platform call twice for one key, no more refunded over an order than was paid for the
units settled; and no correct return goes to review for a difference with the platform's
figure. Sized like the model's other runs (the Hypothesis profile of
``tests/conftest.py``)."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from hypothesis import Phase, Verbosity, settings
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test

from _builders import ORDER_ID, SHOP, tee_and_caps
from returnflow import (
    FeePolicy,
    Money,
    ReceivedLine,
    RequestLine,
    ReturnPolicy,
    ReturnRequest,
    WarehouseReceipt,
)
from returnflow.domain.inbound import Disposition
from returnflow.domain.settlement import Percent
from returnflow.ports.platform_returns import FinancialOutcome, ProcessResult
from returnflow.testing import Harness
from returnflow.testing.platform_returns import FakePlatformReturns
from returnflow.testing.stateful import KitSystem, _differences, returns_state_machine
from returnflow.testing.strategies import policies


def run(machine: type[RuleBasedStateMachine], **overrides: Any) -> None:
    run_state_machine_as_test(machine, settings=settings(**overrides))


def test_the_model_holds_in_native_mode_for_any_policy() -> None:
    machine = returns_state_machine(policy=policies("EUR"), currency="EUR", platform_mode="native")
    run(machine)


def test_the_model_holds_in_native_mode_when_ports_fail() -> None:
    machine = returns_state_machine(
        policy=policies("EUR", max_attempts=4),
        currency="EUR",
        fault_rate=0.2,
        platform_mode="native",
    )
    run(machine, max_examples=max(5, settings.default.max_examples // 2))


def test_a_harness_in_native_mode_brings_its_own_platform_returns() -> None:
    harness = Harness(policy=ReturnPolicy(platform_mode="native"))
    system = KitSystem.from_harness(harness)
    assert system.platform_returns is harness.platform_returns


def test_a_system_of_fakes_in_native_mode_gets_a_fake_platform() -> None:
    system = KitSystem.from_harness(Harness())
    assert system.platform_returns is None
    machine = returns_state_machine(lambda: system, platform_mode="native")
    run(machine, max_examples=1, stateful_step_count=3)
    assert isinstance(system.platform_returns, FakePlatformReturns)


def test_a_platform_mode_that_is_not_one_is_refused() -> None:
    with pytest.raises(ValueError, match="sideways"):
        returns_state_machine(platform_mode="sideways")


# -- the model catches a platform that refunds what returnflow did not ask ------------------------

BUG_HUNT = settings(
    max_examples=150,
    stateful_step_count=30,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    verbosity=Verbosity.quiet,
    deadline=None,
)


class RefundsACentMore(FakePlatformReturns):
    """A platform whose processing refunds a cent more than it was asked (and says so)."""

    def process(
        self,
        shop: str,
        return_id: str,
        lines: Any,
        *,
        exchange_lines: Any = (),
        refund: Money,
        refund_shipping: Money | None = None,
        refund_duties: Money | None = None,
        idempotency_key: str,
    ) -> ProcessResult:
        result = super().process(
            shop,
            return_id,
            lines,
            exchange_lines=exchange_lines,
            refund=refund,
            refund_shipping=refund_shipping,
            refund_duties=refund_duties,
            idempotency_key=idempotency_key,
        )
        if refund:
            with self._lock:
                record = self._returns[(shop, return_id)]
                record.refunded = record.refunded + Money("0.01", refund.currency)
        return result


class RestocksEverything(FakePlatformReturns):
    """A platform that restocks every unit disposed, whatever it was told."""

    def dispose(
        self,
        shop: str,
        return_id: str,
        line_id: str,
        quantity: int,
        disposition: Disposition,
        *,
        idempotency_key: str,
    ) -> None:
        super().dispose(
            shop,
            return_id,
            line_id,
            quantity,
            Disposition.RESTOCKED,
            idempotency_key=idempotency_key,
        )


class MiscalculatesRefunds(FakePlatformReturns):
    """A platform whose own figure of a refund is 0.05 too high: correct returns would go
    to review for a difference of its making."""

    def calculate(
        self,
        shop: str,
        return_id: str,
        lines: Any = None,
        *,
        exchange_lines: Any = (),
        shipping_fee: bool = True,
    ) -> FinancialOutcome:
        outcome = super().calculate(
            shop, return_id, lines, exchange_lines=exchange_lines, shipping_fee=shipping_fee
        )
        if not outcome.refund:
            return outcome
        return attrs.evolve(outcome, refund=outcome.refund + Money("0.05", outcome.refund.currency))


def _on(platform: type[FakePlatformReturns]) -> Any:
    def make() -> KitSystem:
        harness = Harness()
        system = KitSystem.from_harness(harness)
        system.platform_returns = platform(harness.ports.commerce)
        return system

    return make


@pytest.mark.parametrize(
    ("platform", "found"),
    [
        (RefundsACentMore, "refunded"),
        (RestocksEverything, "restocked"),
        (MiscalculatesRefunds, "a correct return went to review"),
    ],
)
def test_the_model_catches_a_platform_that_disagrees(
    platform: type[FakePlatformReturns], found: str
) -> None:
    machine = returns_state_machine(
        _on(platform), policy=policies("EUR"), currency="EUR", platform_mode="native"
    )
    with pytest.raises(AssertionError, match=found):
        run_state_machine_as_test(machine, settings=BUG_HUNT)


def test_a_share_of_the_fee_waived_with_a_unit_that_failed_qc_is_no_difference() -> None:
    # A 40.00 return shipping fee, 15% restocking, fees taken only from a payout: the
    # T-shirt (25.00) and a cap (10.00) would pay 29.75 of the fee (each unit at most
    # what it pays out: 21.25 and 8.50), and the platform return opens with that much.
    # The T-shirt fails QC and comes out: the cap pays its own share, 8.50, and the
    # T-shirt's is waived. The platform return still carries 29.75 (Shopify cannot take a
    # fee off a return), but the figure for the processing counts the shares the
    # settlements charged, as returnCalculate takes the fee as an amount: both say 0.00.
    # When one payout took the fee whole, the platform asked 21.25 more.
    fees = FeePolicy(
        restocking=Percent(15), return_shipping=Money("40", "EUR"), fees_only_from_payout=True
    )
    made = Harness(policy=ReturnPolicy(platform_mode="native", fees=fees))
    made.ports.commerce.add_order(tee_and_caps())
    lines = [
        RequestLine(order_line_id="L1", quantity=1),
        RequestLine(order_line_id="L2", quantity=1),
    ]
    return_id = made.service.request(ReturnRequest(shop=SHOP, order_id=ORDER_ID, lines=lines)).id
    received = [
        ReceivedLine(line_id="L1", quantity=1, qc="fail"),
        ReceivedLine(line_id="L2", quantity=1),
    ]
    made.service.handle(
        WarehouseReceipt(shop=SHOP, return_id=return_id, event_id="r1", lines=received)
    )
    record = made.service.get(SHOP, return_id)
    assert _differences(record) == []
    assert (record.status, record.return_shipping_fee) == ("closed", Money("8.50", "EUR"))
    assert made.platform_returns is not None
    [opened] = made.platform_returns.calls_to("open_return")
    assert opened.args["return_shipping_fee"] == Money("29.75", "EUR")
    [processed] = made.platform_returns.calls_to("process")
    assert processed.args["refund"] == Money("0.00", "EUR")
