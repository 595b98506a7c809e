"""What returnflow logs: the documented events, with their fields, at the documented levels.

A handler on the ``returnflow`` logger collects the records of real flows (seed flows, a
failing port, timers, an import); every record must be an event of
:data:`returnflow.logs.EVENTS` carrying exactly its documented fields, every documented
event must come out of some flow here, and the table on docs/logging.md must say what
:data:`~returnflow.logs.EVENTS` says.
"""

from __future__ import annotations

import ast
import json
import logging
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import attrs
import pytest

from returnflow import (
    CarrierUpdate,
    Completion,
    Exchange,
    ReceivedLine,
    ReleaseTrigger,
    RequestLine,
    ReturnPolicy,
    ReturnRequest,
    WarehouseFinished,
    WarehouseReceipt,
    logs,
)
from returnflow.demo.scenarios import SHOP, clickpost_qc_pass, loop_xoro_returns, order_1001
from returnflow.errors import ConfigurationError, PortError
from returnflow.importing import ReturnImporter
from returnflow.testing import FakeReturnSource, Harness, make_order

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "logging.md"


class Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def events(self, *names: str) -> list[logging.LogRecord]:
        return [r for r in self.records if not names or getattr(r, "event", None) in names]

    def names(self) -> list[str]:
        return [getattr(record, "event", "") for record in self.records]


@pytest.fixture
def logged() -> Iterator[Collector]:
    collector = Collector()
    root = logging.getLogger(logs.LOGGER)
    root.addHandler(collector)
    root.setLevel(logging.DEBUG)
    for name in {event.logger for event in logs.EVENTS.values()}:
        logging.getLogger(name).setLevel(logging.NOTSET)
    yield collector
    root.removeHandler(collector)  # levels: restored by conftest


def harness(**policy: object) -> Harness:
    made = Harness(policy=ReturnPolicy(**policy))  # type: ignore[arg-type]
    made.ports.commerce.add_order(order_1001(SHOP))
    return made


def refund_request() -> ReturnRequest:
    return ReturnRequest(shop=SHOP, order_id="1001", lines=[RequestLine("L3", 1)])


def exchange_request() -> ReturnRequest:
    return ReturnRequest(
        shop=SHOP,
        order_id="1001",
        lines=[RequestLine(order_line_id="L1", quantity=1, outcome=Exchange(variant_id="tee-l"))],
    )


def scan(return_id: str, event_id: str, status: str) -> CarrierUpdate:
    return CarrierUpdate(shop=SHOP, return_id=return_id, event_id=event_id, status=status)


def fields_of(record: logging.LogRecord) -> dict[str, object]:
    return {name: getattr(record, name) for name in logs.FIELDS if hasattr(record, name)}


# -- one seed flow, told by its log ------------------------------------------------------------


def test_a_seed_flow_logs_its_commands_facts_and_every_delivered_effect(logged: Collector) -> None:
    made, (return_id,) = clickpost_qc_pass()

    story = [
        (r.event, r.outcome)  # type: ignore[attr-defined]
        for r in logged.events("return.opened", "fact.applied")
    ]
    assert story == [
        ("return.opened", "approved"),
        ("fact.applied", "applied"),
        ("fact.applied", "applied"),
    ]
    opened, pickup, receipt = logged.events("return.opened", "fact.applied")
    assert fields_of(opened) == {
        "event": "return.opened",
        "shop": SHOP,
        "return_id": return_id,
        "actor": "customer",
        "order_id": "1001",
        "state": ["approved", "on_hold"],
        "outcome": "approved",
    }
    assert (pickup.fact, pickup.source, pickup.fact_id) == (  # type: ignore[attr-defined]
        "CarrierUpdate",
        "clickpost",
        "cp-1",
    )
    assert receipt.state == list(made.service.get(SHOP, return_id).state)  # type: ignore[attr-defined]

    # One effect.delivered per effect the outbox holds as done, with its key and kind.
    done = {
        (entry.effect.key, entry.effect.kind)
        for entry in made.store.outbox(SHOP, return_id)
        if entry.status == "done"
    }
    delivered = [
        (r.key, r.effect_kind, r.attempt)  # type: ignore[attr-defined]
        for r in logged.events("effect.delivered")
    ]
    assert len(delivered) == len(done) > 5
    assert {(key, kind) for key, kind, _ in delivered} == done
    assert {attempt for _, _, attempt in delivered} == {1}
    assert [r.getMessage() for r in logged.events("return.opened")] == [
        f"return {SHOP}/{return_id} opened by customer: approved"
    ]


# -- everything else that can happen -----------------------------------------------------------


def failing_delivery(logged: Collector) -> None:
    made = harness()
    made.ports.commerce.fail("refund", times=1)
    record = made.service.request(refund_request())
    made.service.handle(
        WarehouseReceipt(
            shop=SHOP,
            return_id=record.id,
            event_id="r1",
            lines=[ReceivedLine(line_id="L3", quantity=1)],
        )
    )
    failed = logged.events("effect.failed")
    assert [(r.effect_kind, r.attempt) for r in failed] == [("issue_refund", 1)]  # type: ignore[attr-defined]
    assert "injected failure" in failed[0].error  # type: ignore[attr-defined]
    assert failed[0].levelno == logging.WARNING
    made.dispatch_due()
    retried = logged.events("effect.retried")
    assert [(r.effect_kind, r.attempt) for r in retried] == [("issue_refund", 2)]  # type: ignore[attr-defined]
    delivered = [(r.effect_kind, r.attempt) for r in logged.events("effect.delivered")]  # type: ignore[attr-defined]
    assert ("issue_refund", 2) in delivered
    (round_,) = logged.events("dispatch.done")
    assert (round_.delivered, round_.failed, round_.given_up) >= (1, 0, 0)  # type: ignore[attr-defined]


def given_up_delivery(logged: Collector) -> None:
    made = harness()
    error = PortError("commerce", "refund", "card declined", retryable=False)
    made.ports.commerce.fail("refund", times=None, error=error)
    record = made.service.request(refund_request())
    made.service.handle(
        WarehouseReceipt(
            shop=SHOP,
            return_id=record.id,
            event_id="r1",
            lines=[ReceivedLine(line_id="L3", quantity=1)],
        )
    )
    (gave_up,) = logged.events("effect.given_up")
    assert (gave_up.effect_kind, gave_up.escalated) == ("issue_refund", True)  # type: ignore[attr-defined]
    assert gave_up.levelno == logging.ERROR
    assert made.service.get(SHOP, record.id).status == "needs_review"


def facts_of_every_outcome(logged: Collector) -> None:
    made = harness(completion=Completion.ON_WAREHOUSE_FINISHED)
    record = made.service.request(exchange_request())
    finished = WarehouseFinished(shop=SHOP, return_id=record.id, event_id="fin-1")
    assert made.service.handle(finished).status == "parked"
    assert made.service.handle(finished).status == "duplicate"
    assert made.service.handle(scan(record.id, "c2", "DELIVERED")).status == "applied"
    assert made.service.handle(scan(record.id, "c1", "RETURN_PICKED_UP")).status == "ignored"
    outcomes = [
        (r.event, r.fact_id, r.outcome)  # type: ignore[attr-defined]
        for r in logged.events("fact.parked", "fact.duplicate", "fact.applied", "fact.ignored")
    ]
    assert outcomes == [
        ("fact.parked", "fin-1", "parked"),
        ("fact.duplicate", "fin-1", "duplicate"),
        ("fact.applied", "c2", "applied"),
        ("fact.ignored", "c1", "ignored"),
    ]
    assert logged.events("fact.ignored")[0].reason  # type: ignore[attr-defined]


def timers(logged: Collector) -> None:
    made = harness(ship_within_days=14, stuck_after={"in_transit": timedelta(days=30)})
    never_shipped = made.service.request(refund_request())
    in_transit = made.service.request(exchange_request())
    made.service.handle(scan(in_transit.id, "s1", "RETURN_PICKED_UP"))

    class Broken:
        def poll(self, now: object) -> None:
            raise ConfigurationError("no cursor", field="cursor", value="x")

    made.service.register_poller(Broken())
    made.clock.advance(days=31)
    report = made.service.tick()
    assert (report.expired, report.stuck) == ((never_shipped.id,), (in_transit.id,))
    assert [r.return_id for r in logged.events("timer.expired")] == [never_shipped.id]  # type: ignore[attr-defined]
    assert [r.return_id for r in logged.events("timer.stuck")] == [in_transit.id]  # type: ignore[attr-defined]
    assert "ConfigurationError" in logged.events("timer.failed")[0].error  # type: ignore[attr-defined]
    (tick,) = logged.events("tick.done")
    assert (tick.expired, tick.stuck, tick.errors) == (1, 1, 1)  # type: ignore[attr-defined]
    changed = logged.events("return.changed")
    expired = [r for r in changed if r.return_id == never_shipped.id]  # type: ignore[attr-defined]
    assert expired[-1].chart_events == ["expire"]  # type: ignore[attr-defined]
    assert expired[-1].actor == "timer"  # type: ignore[attr-defined]


def release_check(logged: Collector) -> None:
    made = harness(exchange_release=ReleaseTrigger.ON_HANDED_IN)
    record = made.service.request(exchange_request())
    made.ports.commerce.ignore_releases(times=1)
    made.service.handle(scan(record.id, "s1", "RETURN_PICKED_UP"))
    assert made.service.tick().release_checked == (record.id,)
    assert [r.return_id for r in logged.events("timer.release_checked")] == [record.id]  # type: ignore[attr-defined]


def capture(logged: Collector) -> None:
    policy = ReturnPolicy(
        exchange_release=ReleaseTrigger.ON_HANDED_IN, instant_exchange_return_days=5
    )
    made = Harness(policy=policy)
    made.ports.commerce.add_order(make_order(SHOP, "1001"))
    swap = RequestLine("L1", 2, outcome=Exchange(variant_id="v2", quantity=2))
    record = made.service.request(ReturnRequest(shop=SHOP, order_id="1001", lines=[swap]))
    made.service.handle(scan(record.id, "p", "RETURN_PICKED_UP"))
    made.clock.advance(days=6)
    assert made.service.tick().captured == (record.id,)
    assert [r.return_id for r in logged.events("timer.captured")] == [record.id]  # type: ignore[attr-defined]


def imports(logged: Collector) -> None:
    made = harness()  # order 1002 is unknown: one return fails
    source = FakeReturnSource("loop", loop_xoro_returns(SHOP))
    importer = ReturnImporter(made.service, source, shop=SHOP)
    at = min(external.updated_at for external in loop_xoro_returns(SHOP))
    report = importer.import_range(at - timedelta(days=1), at + timedelta(days=1))
    assert len(report.imported) == len(report.failed) == 1
    (failed,) = logged.events("import.failed")
    assert (failed.external_id, failed.retryable) == (report.failed[0].external_id, False)  # type: ignore[attr-defined]
    assert "UnknownOrder" in failed.error  # type: ignore[attr-defined]
    source.fail("list_returns")
    importer.import_range(at - timedelta(days=1), at + timedelta(days=1))
    (source_failed,) = logged.events("import.source_failed")
    assert source_failed.source == "loop"  # type: ignore[attr-defined]
    done = logged.events("import.done")
    assert [(r.imported, r.failed) for r in done] == [(1, 1), (0, 0)]  # type: ignore[attr-defined]


FLOWS = [
    failing_delivery,
    given_up_delivery,
    facts_of_every_outcome,
    timers,
    release_check,
    capture,
    imports,
]


@pytest.mark.parametrize("flow", FLOWS, ids=lambda flow: flow.__name__)
def test_each_flow_logs_what_it_did(flow: object, logged: Collector) -> None:
    flow(logged)  # type: ignore[operator]
    for record in logged.records:
        event = logs.EVENTS[record.event]  # type: ignore[attr-defined]
        assert (record.name, record.levelno) == (event.logger, event.level), record.event  # type: ignore[attr-defined]
        assert set(fields_of(record)) == {"event", *event.fields}, record.event  # type: ignore[attr-defined]
        json.dumps(fields_of(record))  # plain data


def test_every_documented_event_comes_out_of_some_flow(logged: Collector) -> None:
    clickpost_qc_pass()
    seen = set(logged.names())
    for flow in FLOWS:
        logged.records.clear()
        flow(logged)
        seen.update(logged.names())
    assert seen == set(logs.EVENTS)


# -- cheap when off ----------------------------------------------------------------------------


def test_nothing_is_built_for_a_logger_that_drops_it(
    logged: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[str] = []
    real = logs.emit

    def counting(name: str, *args: object, **fields: object) -> None:
        built.append(name)
        real(name, *args, **fields)  # type: ignore[arg-type]

    monkeypatch.setattr(logs, "emit", counting)
    logging.getLogger(logs.LOGGER).setLevel(logging.WARNING)
    made = harness()
    made.ports.commerce.fail("refund", times=1)
    record = made.service.request(refund_request())
    made.service.handle(
        WarehouseReceipt(
            shop=SHOP,
            return_id=record.id,
            event_id="r1",
            lines=[ReceivedLine(line_id="L3", quantity=1)],
        )
    )
    made.dispatch_due()
    assert built == ["effect.failed"]  # the only record at WARNING or above
    assert logged.names() == ["effect.failed"]


# -- the docs and the code say the same --------------------------------------------------------


def _table() -> dict[str, tuple[str, int, tuple[str, ...], str]]:
    text = PAGE.read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([\w.]+)` \| `([\w.]+)` \| (\w+) \| ([^|]*) \| (.*) \|$", text, re.M)
    return {
        name: (
            logger,
            logging.getLevelName(level),
            tuple(re.findall(r"`(\w+)`", fields)),
            meaning,
        )
        for name, logger, level, fields, meaning in rows
    }


def test_the_docs_table_is_the_list_of_events() -> None:
    table = _table()
    assert list(table) == list(logs.EVENTS)
    for name, event in logs.EVENTS.items():
        assert table[name] == (
            event.logger,
            event.level,
            event.fields,
            event.means.replace("``", "`"),
        ), name


def test_events_are_frozen_values() -> None:
    event = logs.EVENTS["effect.delivered"]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        event.level = logging.DEBUG  # type: ignore[misc]


# -- no print outside the command --------------------------------------------------------------


def test_nothing_but_the_command_prints() -> None:
    src = ROOT / "src" / "returnflow"
    printing = []
    for path in sorted(src.glob("**/*.py")):
        if path.name in ("cli.py", "cli_prune.py", "_cli_support.py"):  # the command
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "print"
            ):
                printing.append(f"{path.relative_to(src)}:{node.lineno}")
    assert not printing, f"print outside the CLI: {printing}"
