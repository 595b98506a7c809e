"""The testing kit's stateful model: it holds on returnflow's own set-ups, and it catches bugs.

* The model (:mod:`returnflow.testing.stateful`) runs on the default harness (fakes, memory
  store), with policies drawn by :func:`~returnflow.testing.strategies.policies`, on a
  SQLite file, and with every fake failing 30 % of its calls (``max_attempts=4``). Sizes come
  from the Hypothesis profile (``tests/conftest.py``).
* Four planted bugs each make the model fail, deterministically and within a bounded number
  of examples: a platform that refunds again on a repeated idempotency key, a store that
  lets a stale write through (no version check), a platform that releases an exchange
  the moment its items are added, and a store that keeps no ledger of units in its commit
  (the unit check done only before it, by the service), so that two requests racing for
  one order's units both get them.
* Defects the model led to in returnflow itself are pinned by regression tests.
* ``returnflow.testing`` does not import Hypothesis; only the two kit modules do.
"""

from __future__ import annotations

import ast
import itertools
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar

import attrs
import pytest
from hypothesis import Phase, Verbosity, settings
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test

from returnflow import (
    CarrierStatus,
    CarrierUpdate,
    Completion,
    Exchange,
    InvalidQuantity,
    MemoryStore,
    Money,
    OrderLine,
    OrderSnapshot,
    QcResult,
    ReceivedLine,
    RefundTrigger,
    RequestLine,
    ReturnNotFound,
    ReturnPolicy,
    ReturnRequest,
    WarehouseFinished,
    WarehouseReceipt,
)
from returnflow.domain.ledger import UnitKey
from returnflow.ports import ExchangeHold, ExchangeItem, LineQuantity, RefundReceipt
from returnflow.ports.store import Commit, OutboxEntry
from returnflow.stores.sqlite import SqliteStore
from returnflow.testing import FakeCommercePlatform, FakePorts, Harness
from returnflow.testing.stateful import SimulatedCrash, returns_state_machine
from returnflow.testing.strategies import policies

SRC = Path(__file__).resolve().parent.parent / "src"
SHOP = "kit-shop"  # the model's shop, used by the scenario tests too


def run(machine: type[RuleBasedStateMachine], **overrides: Any) -> None:
    """Run ``machine`` with the active profile's settings, changed by ``overrides``."""
    run_state_machine_as_test(machine, settings=settings(**overrides))


# -- the model holds ----------------------------------------------------------------------------


def test_the_model_holds_on_the_default_harness() -> None:
    run(returns_state_machine())


class ClaimsSeen(MemoryStore):
    """A memory store that counts the versions of claims committed, by state."""

    claim_states: ClassVar[Counter[tuple[str, str]]] = Counter()

    def commit(self, commit: Commit) -> Sequence[OutboxEntry]:
        for record, _ in commit.records:
            if record.claim is not None:
                self.claim_states[record.state] += 1
        return super().commit(commit)


def test_the_model_holds_for_any_policy_and_files_claims_beside_returns() -> None:
    ClaimsSeen.claim_states.clear()
    run(
        returns_state_machine(
            lambda: Harness(store=ClaimsSeen()), policy=policies("EUR"), currency="EUR"
        )
    )
    statuses = {status for status, _ in ClaimsSeen.claim_states}
    assert statuses & {"refunded", "closed"}, ClaimsSeen.claim_states  # settled at approval
    assert statuses & {"pending_review", "declined"}, ClaimsSeen.claim_states  # or judged


def test_the_model_holds_on_a_sqlite_store(tmp_path: Path) -> None:
    numbers = itertools.count()

    def on_sqlite() -> Harness:
        return Harness(store=SqliteStore(tmp_path / f"returns-{next(numbers)}.db"))

    machine = returns_state_machine(on_sqlite, policy=policies("EUR"), currency="EUR")
    run(machine, max_examples=max(5, settings.default.max_examples // 3))


def test_the_model_holds_on_the_chart_engine() -> None:
    # the python-statemachine chart itself on the write path, as the reference
    machine = returns_state_machine(policy=policies("EUR"), currency="EUR", engine="chart")
    run(machine, max_examples=max(5, settings.default.max_examples // 2))


def test_the_model_holds_with_critical_deliveries_together() -> None:
    # a return's deliveries to the ports it depends on go out together, written in one write
    machine = returns_state_machine(
        policy=policies("EUR", max_attempts=4),
        currency="EUR",
        fault_rate=0.2,
        critical_alone=False,
    )
    run(machine, max_examples=max(5, settings.default.max_examples // 2))


def test_the_model_holds_when_ports_fail_30_percent_of_calls() -> None:
    machine = returns_state_machine(
        policy=policies("EUR", max_attempts=4), currency="EUR", fault_rate=0.3
    )
    run(machine)


# -- the model catches bugs ---------------------------------------------------------------------

BUG_HUNT = settings(
    max_examples=150,
    stateful_step_count=30,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: the failure is enough
    verbosity=Verbosity.quiet,
    deadline=None,
)


def hunt(make: Callable[[], Harness], **model: Any) -> None:
    run_state_machine_as_test(returns_state_machine(make, **model), settings=BUG_HUNT)


class RefundsAgainOnARepeatedKey(FakeCommercePlatform):
    """A platform that does not replay a refund: a repeated key refunds again."""

    def refund(
        self,
        shop: str,
        order_id: str,
        amount: Money,
        lines: Sequence[LineQuantity],
        *,
        idempotency_key: str,
    ) -> RefundReceipt:
        with self._lock:  # forget the key's first result
            self._results.pop(idempotency_key, None)
        return super().refund(shop, order_id, amount, lines, idempotency_key=idempotency_key)


class NoVersionCheckStore(MemoryStore):
    """A store whose write does not check the version it was read at (``UPDATE ... WHERE
    id = ?`` without ``AND version = ?``): the history rows are appended, the return is
    overwritten by whoever writes last."""

    def commit(self, commit: Commit) -> None:
        records = []
        for record, expected in commit.records:
            try:
                stored = self.get(record.shop, record.id)
            except ReturnNotFound:
                records.append((record, expected))
                continue
            if stored.version != expected:  # stale: let it through anyway
                added = tuple(entry for entry in record.history if entry.version > expected)
                record = attrs.evolve(
                    record, version=stored.version + 1, history=stored.history + added
                )
                expected = stored.version
            records.append((record, expected))
        super().commit(attrs.evolve(commit, records=tuple(records)))


class LedgerOutsideTheCommit(MemoryStore):
    """A store that keeps no order-level ledger in its commit: it never refuses a unit held
    by another return, so the only unit check left is the service's read of the order's
    returns before it writes (the check done outside the commit)."""

    def _ledger(
        self, commit: Commit
    ) -> tuple[dict[tuple[str, str, UnitKey], str], Sequence[tuple[str, str, UnitKey]]]:
        return {}, []


class ReleasesAtOnce(FakeCommercePlatform):
    """A platform that releases exchange items the moment they are added on hold."""

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
            shop, order_id, hold.hold_id, hold_tag=hold_tag, idempotency_key=f"{idempotency_key}/+"
        )
        return hold


def test_the_model_catches_a_platform_that_refunds_twice_for_one_key() -> None:
    def make() -> Harness:
        return Harness(ports=FakePorts(commerce=RefundsAgainOnARepeatedKey()))

    # A crash after the refund and before the outbox recorded it delivers it again.
    with pytest.raises(AssertionError, match=r"executed more than once|the platform paid"):
        hunt(make, crash_rate=0.3)


def test_the_model_catches_a_store_that_lets_a_stale_write_through() -> None:
    def make() -> Harness:
        return Harness(store=NoVersionCheckStore())

    # Another worker commits between a read and a write; the stale write overwrites it.
    with pytest.raises(AssertionError, match=r"not a path|lost history|append-only|new version"):
        hunt(make)


def test_the_model_catches_a_platform_that_releases_an_exchange_at_once() -> None:
    def make() -> Harness:
        return Harness(ports=FakePorts(commerce=ReleasesAtOnce()))

    with pytest.raises(AssertionError, match="the platform released exchange item"):
        hunt(make)


def test_the_model_catches_a_unit_check_done_outside_the_commit() -> None:
    def make() -> Harness:
        return Harness(store=LedgerOutsideTheCommit())

    # Another worker's request takes a unit between this request's check and its commit;
    # with no ledger in the commit, both returns hold the unit.
    with pytest.raises(
        AssertionError, match=r"racing requests both took units|held by two returns"
    ):
        hunt(make)


def test_the_bug_doubles_work_like_the_fakes_until_their_bug_is_hit() -> None:
    """So what fails the model above is the planted bug, not a broken double."""
    harness = Harness(ports=FakePorts(commerce=ReleasesAtOnce()), store=NoVersionCheckStore())
    order = two_line_order("O-doubles")
    harness.ports.commerce.add_order(order)
    record = harness.service.request(
        ReturnRequest(
            shop=SHOP, order_id=order.id, lines=[RequestLine(order_line_id="A", quantity=1)]
        )
    )
    assert record.state == ("label_sent", "no_exchange")
    # Without a ledger in the commit, a request made after another one still finds its unit
    # taken: only a race gets past the service's check.
    unchecked = Harness(store=LedgerOutsideTheCommit())
    unchecked.ports.commerce.add_order(order)
    request = ReturnRequest(
        shop=SHOP, order_id=order.id, lines=[RequestLine(order_line_id="A", quantity=1)]
    )
    unchecked.service.request(request)
    with pytest.raises(InvalidQuantity):
        unchecked.service.request(request)


# -- the kit's packaging ------------------------------------------------------------------------


def test_importing_returnflow_testing_does_not_import_hypothesis() -> None:
    code = (
        "import sys, returnflow, returnflow.testing, returnflow.testing.contract; "
        "sys.exit('hypothesis' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def eager_imports(path: Path) -> set[str]:
    """Modules ``path`` imports when it is imported (not inside functions: lazy is fine)."""
    package = ".".join(path.relative_to(SRC).with_suffix("").parts[:-1])
    found: set[str] = set()
    todo: list[ast.AST] = [ast.parse(path.read_text(encoding="utf-8"))]
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        todo.extend(ast.iter_child_nodes(node))
    return found


def test_only_the_kit_modules_import_hypothesis_or_each_other() -> None:
    kit = {
        "returnflow.testing.strategies",
        "returnflow.testing.stateful",
        "returnflow.testing.reordering",
    }
    for path in (SRC / "returnflow").rglob("*.py"):
        if ".".join(path.relative_to(SRC).with_suffix("").parts) in kit:
            continue
        imported = eager_imports(path)
        assert not {name for name in imported if name.split(".")[0] == "hypothesis"}, path
        assert not imported & kit, path


# -- defects in returnflow the model led to -----------------------------------------------------


def two_line_order(order_id: str) -> OrderSnapshot:
    return OrderSnapshot(
        id=order_id,
        shop=SHOP,
        created_at=datetime(2026, 1, 10, tzinfo=timezone.utc),
        fulfilled_at=datetime(2026, 1, 10, tzinfo=timezone.utc),
        currency="EUR",
        customer_email="ann@example.com",
        lines=[
            OrderLine(
                id=line,
                sku=line,
                variant_id=f"v{line}",
                quantity=1,
                unit_price=Money("10.00", "EUR"),
            )
            for line in ("A", "B")
        ],
    )


class LosesTheNextRefundAck(MemoryStore):
    """The worker dies after the platform refunded and before the outbox recorded it."""

    armed = True

    def commit(self, commit: Commit) -> None:
        refunds = {
            entry.effect.key for entry in self.pending(1000) if entry.effect.kind == "issue_refund"
        }
        if self.armed and any(attempt.ok and attempt.key in refunds for attempt in commit.attempts):
            self.armed = False
            raise SimulatedCrash("died after the refund")
        super().commit(commit)


def test_a_refund_that_reached_the_platform_is_not_planned_again() -> None:
    store = LosesTheNextRefundAck()
    harness = Harness(store=store, policy=ReturnPolicy(max_attempts=2))
    harness.ports.commerce.add_order(two_line_order("O-refund"))
    service = harness.service
    record = service.request(
        ReturnRequest(
            shop=SHOP, order_id="O-refund", lines=[RequestLine(order_line_id="A", quantity=1)]
        )
    )
    with pytest.raises(SimulatedCrash):  # refunded on the platform; the outbox never heard
        service.handle(
            WarehouseReceipt(
                shop=SHOP,
                return_id=record.id,
                event_id="w-1",
                lines=[ReceivedLine(line_id="A", quantity=1)],
            )
        )
    harness.ports.commerce.fail("refund", times=2)  # the platform is down for a while
    for _ in range(3):
        harness.dispatch_due()  # the refund is delivered again, fails twice, is given up
    harness.ports.commerce.heal()
    service.close(SHOP, record.id)  # an agent closes the return from review
    harness.dispatch_due()

    refunded = [refund.amount for refund in harness.ports.commerce.refunds]
    planned = [
        entry.effect
        for entry in store.outbox(SHOP, record.id)
        if entry.effect.kind == "issue_refund"
    ]
    assert refunded == [Money("10.00", "EUR")]
    assert len(planned) == 1, "the refund the platform made was planned again"


def test_an_exchange_item_whose_return_failed_qc_is_never_released() -> None:
    harness = Harness(policy=ReturnPolicy(max_attempts=2))
    harness.ports.commerce.add_order(two_line_order("O-qc"))
    service = harness.service
    record = service.request(
        ReturnRequest(
            shop=SHOP,
            order_id="O-qc",
            lines=[
                RequestLine(order_line_id="A", quantity=1, outcome=Exchange(variant_id="vA2")),
                RequestLine(order_line_id="B", quantity=1, outcome=Exchange(variant_id="vB2")),
            ],
        )
    )
    harness.ports.commerce.fail("cancel_exchange_items", times=2)
    service.handle(
        WarehouseReceipt(
            shop=SHOP,
            return_id=record.id,
            event_id="w-1",
            lines=[
                ReceivedLine(line_id="A", quantity=1),
                ReceivedLine(line_id="B", quantity=1, qc=QcResult.FAIL),
            ],
        )
    )
    for _ in range(3):
        harness.dispatch_due()

    items = {
        item.exchange_line_id: item.status
        for item in harness.ports.commerce.exchange_lines(SHOP, "O-qc")
    }
    assert items[f"{record.id}-2-x"] != "unfulfilled", "the QC-failed unit's exchange shipped"
    # The platform releases a hold as a whole: with the failed item still on it, the good one
    # waits too, and a person is asked to look.
    assert items[f"{record.id}-1-x"] == "on_hold"
    stored = service.get(SHOP, record.id)
    assert stored.status == "needs_review"
    assert "were to be cancelled and were not" in stored.review_reasons[-1]


def test_a_return_reset_before_its_hold_was_confirmed_still_releases_the_exchange() -> None:
    harness = Harness(policy=ReturnPolicy(completion=Completion.ON_WAREHOUSE_FINISHED))
    harness.ports.commerce.add_order(two_line_order("O-reset"))
    service = harness.service
    harness.ports.commerce.fail("add_exchange_items", times=1)
    record = service.request(
        ReturnRequest(
            shop=SHOP,
            order_id="O-reset",
            lines=[
                RequestLine(order_line_id="A", quantity=1, outcome=Exchange(variant_id="vA2")),
                RequestLine(order_line_id="B", quantity=1),
            ],
        )
    )
    service.handle(
        WarehouseReceipt(
            shop=SHOP,
            return_id=record.id,
            event_id="w-1",
            lines=[ReceivedLine(line_id="A", quantity=1)],
        )
    )
    _, child = service.reset(SHOP, record.id)  # B never came; the hold is still pending
    harness.dispatch_due()  # the hold is confirmed now
    service.handle(WarehouseFinished(shop=SHOP, return_id=child.id, event_id="f-1"))
    for _ in range(4):
        harness.dispatch_due()

    items = harness.ports.commerce.exchange_lines(SHOP, "O-reset")
    assert [item.status for item in items] == ["unfulfilled"], service.render_timeline(
        SHOP, child.id
    )


def test_a_unit_paid_before_qc_rejected_it_stays_taken_after_a_reset() -> None:
    harness = Harness(policy=ReturnPolicy(refund_trigger=RefundTrigger.ON_HANDED_IN))
    order = attrs.evolve(
        two_line_order("O-early"), lines=[attrs.evolve(two_line_order("O").lines[0], quantity=2)]
    )
    harness.ports.commerce.add_order(order)
    service = harness.service
    request = ReturnRequest(
        shop=SHOP, order_id=order.id, lines=[RequestLine(order_line_id="A", quantity=2)]
    )
    record = service.request(request)
    service.handle(
        CarrierUpdate(
            shop=SHOP, return_id=record.id, event_id="c-1", status=CarrierStatus.PICKED_UP
        )
    )
    harness.dispatch_due()  # both units refunded at the hand-in
    for event_id, qc in (("w-1", QcResult.PASS), ("w-2", QcResult.FAIL)):
        service.handle(
            WarehouseReceipt(
                shop=SHOP,
                return_id=record.id,
                event_id=event_id,
                lines=[ReceivedLine(line_id="A", quantity=1, qc=qc)],
            )
        )
    service.reset(SHOP, record.id)  # the new return carries the accepted unit only
    assert [refund.amount for refund in harness.ports.commerce.refunds] == [Money("20.00", "EUR")]
    with pytest.raises(InvalidQuantity):  # the rejected unit was refunded: not returnable again
        service.request(attrs.evolve(request, lines=[RequestLine(order_line_id="A", quantity=1)]))
