"""Destinations (issue 17): each returned line goes back to a location, chosen by a merchant
rule (``then.destination``) or the host's DestinationResolver; one warehouse expectation and
one receipt stream per location, and the return is complete when every location is done."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Collection
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from _builders import (
    STORED,
    harness_with,
    insert_stored_postgres,
    insert_stored_sqlite,
    order,
    order_line,
)
from returnflow import (
    Completion,
    ConfigurationError,
    InvalidPayload,
    InvalidRule,
    Money,
    OrderSnapshot,
    PlatformMode,
    QcResult,
    ReceivedLine,
    RequestLine,
    ReturnPolicy,
    ReturnRecord,
    ReturnRequest,
    Rule,
    StaticDestination,
    UnknownLocation,
    WarehouseFinished,
    WarehouseReceipt,
    rules_from_json,
    rules_from_toml,
)
from returnflow.domain.model import ReturnLine
from returnflow.ports.store import ReturnStore
from returnflow.serialization import structure, unstructure
from returnflow.stores.memory import MemoryStore
from returnflow.stores.sqlite import SqliteStore
from returnflow.testing import Harness
from returnflow.testing.fakes import FakePorts, FakeWarehouse

sys.path.insert(0, os.path.dirname(__file__))

EUR = "EUR"
SHOP = "dest-shop"
ORDERED = datetime(2026, 1, 10, 9, 30, tzinfo=timezone.utc)
LOCATIONS = ("berlin", "bulky-hub", "outlet-store")


LINES = (
    order_line("L1", "TRAINER-42", "80.00", 2),
    order_line("S1", "LAMP", "90.00", tags=["bulky"]),
    order_line("O1", "TEE-OUTLET", "20.00", collections=["outlet"]),
)


def _order(order_id: str) -> OrderSnapshot:
    return order(SHOP, order_id, LINES)


class ByTag:
    """A host's resolver: bulky goods to the bulky hub, the rest to Berlin."""

    def __init__(self, answer: object = None, locations: Collection[str] = LOCATIONS) -> None:
        self.answer = answer
        self.known = locations
        self.asked: list[str] = []

    def locations(self, shop: str) -> Collection[str]:
        return self.known

    def destination(self, shop: str, order: OrderSnapshot, line: ReturnLine) -> str | None:
        self.asked.append(line.order_line_id)
        if self.answer is not None:
            return self.answer  # type: ignore[return-value]
        order_line = order.line(line.order_line_id)
        assert order_line is not None
        return "bulky-hub" if "bulky" in order_line.tags else "berlin"


OUTLET = Rule(
    "outlet items back to the outlet store",
    when={"collections": ["outlet"]},
    then={"destination": "outlet-store"},
)


def _harness(destinations: Any = None, store: ReturnStore | None = None, **policy: Any) -> Harness:
    more: dict[str, Any] = {} if store is None else {"store": store}
    return harness_with(
        SHOP,
        ("1001", "1002", "1003"),
        LINES,
        policy=ReturnPolicy(**policy),
        destinations=ByTag() if destinations is None else destinations,
        **more,
    )


def _request(order_id: str = "1001", lines: Any = (("L1", 2), ("S1", 1))) -> ReturnRequest:
    return ReturnRequest(
        shop=SHOP,
        order_id=order_id,
        lines=[RequestLine(order_line_id=line, quantity=qty) for line, qty in lines],
    )


def _receipt(rid: str, event: str, *items: ReceivedLine, at: str | None = None) -> Any:
    return WarehouseReceipt(
        shop=SHOP, return_id=rid, event_id=event, lines=list(items), location_id=at
    )


def _finished(rid: str, event: str, at: str | None = None) -> WarehouseFinished:
    return WarehouseFinished(shop=SHOP, return_id=rid, event_id=event, location_id=at)


def _created(harness: Harness) -> list[tuple[Any, ...]]:
    return [
        (call.args.get("location_id"), call.args["lines"])
        for call in harness.ports.warehouse.calls_to("create_return")
    ]


def _refunded(harness: Harness) -> list[Money]:
    return [call.args["amount"] for call in harness.ports.commerce.calls_to("refund")]


# -- the scenario: one return, two locations ---------------------------------------------------


def test_a_return_sent_to_two_locations_gets_one_expectation_and_receipt_stream_each() -> None:
    harness = _harness()
    record = harness.service.request(_request())
    assert record.status == "label_sent"
    assert [(line.order_line_id, line.location_id) for line in record.lines] == [
        ("L1", "berlin"),
        ("S1", "bulky-hub"),
    ]
    [(first, lines1), (second, lines2)] = _created(harness)
    assert (first, [(q.order_line_id, q.quantity) for q in lines1]) == ("berlin", [("L1", 2)])
    assert (second, [(q.order_line_id, q.quantity) for q in lines2]) == ("bulky-hub", [("S1", 1)])
    assert [(r.rma_id, r.location_id) for r in harness.ports.warehouse.returns] == [
        ("RMA-1", "berlin"),
        ("RMA-2", "bulky-hub"),
    ]
    assert record.refs.warehouse_rma_id is None
    assert dict(record.refs.location_rma_ids) == {"berlin": "RMA-1", "bulky-hub": "RMA-2"}
    # Berlin's receipt: the return waits for the bulky hub's
    harness.service.handle(
        _receipt(record.id, "ber-1", ReceivedLine(line_id="L1", quantity=2), at="berlin")
    )
    waiting = harness.service.get(SHOP, record.id)
    assert waiting.status == "item_received"
    assert waiting.completed_at is None
    assert _refunded(harness) == []
    [entry] = [e for e in waiting.history if e.event == "receive"]
    assert entry.payload == {"received": "L1: 2 pass, 0 fail", "location": "berlin"}
    harness.service.handle(
        _receipt(record.id, "hub-1", ReceivedLine(line_id="S1", quantity=1), at="bulky-hub")
    )
    done = harness.service.get(SHOP, record.id)
    assert done.status == "closed"
    assert _refunded(harness) == [Money("250.00", EUR)]


def test_on_finished_the_return_completes_when_every_location_said_finished() -> None:
    harness = _harness(completion=Completion.ON_WAREHOUSE_FINISHED)
    rid = harness.service.request(_request()).id
    service = harness.service
    service.handle(_receipt(rid, "r1", ReceivedLine(line_id="L1", quantity=2), at="berlin"))
    service.handle(_receipt(rid, "r2", ReceivedLine(line_id="S1", quantity=1), at="bulky-hub"))
    assert service.handle(_finished(rid, "f1", "berlin")).status == "applied"
    record = service.get(SHOP, rid)
    assert (record.status, record.finished_locations) == ("item_received", ("berlin",))
    [note] = [e.payload for e in record.history if e.event == "warehouse_finished"]
    assert note == {"location": "berlin", "waiting": ["bulky-hub"]}
    again = service.handle(_finished(rid, "f1-again", "berlin"))
    assert (again.status, again.reason) == ("ignored", "warehouse finished at berlin already")
    assert _refunded(harness) == []
    service.handle(_finished(rid, "f2", "bulky-hub"))
    record = service.get(SHOP, rid)
    assert record.status == "closed"
    assert record.finished_locations == ("berlin", "bulky-hub")
    assert _refunded(harness) == [Money("250.00", EUR)]


def test_a_short_receipt_with_a_qc_failure_at_one_location_waits_in_review_the_other_done() -> None:
    harness = _harness(completion=Completion.ON_WAREHOUSE_FINISHED)
    rid = harness.service.request(_request()).id
    service = harness.service
    service.handle(_receipt(rid, "r2", ReceivedLine(line_id="S1", quantity=1), at="bulky-hub"))
    service.handle(_finished(rid, "f2", "bulky-hub"))
    failed = ReceivedLine(line_id="L1", quantity=1, qc=QcResult.FAIL, note="worn")
    service.handle(_receipt(rid, "r1", failed, at="berlin"))
    service.handle(_finished(rid, "f1", "berlin"))
    record = service.get(SHOP, rid)
    assert record.status == "needs_review"
    assert record.review_reasons == ("warehouse finished a short receipt at berlin: L1: 1/2",)
    assert record.finished_locations == ("bulky-hub",)
    assert _refunded(harness) == []
    # a second Finished while units are still to come to Berlin waits for them
    assert service.handle(_finished(rid, "f1-again", "berlin")).status == "parked"
    service.handle(_receipt(rid, "r3", ReceivedLine(line_id="L1", quantity=1), at="berlin"))
    record = service.get(SHOP, rid)
    # the unit that came makes the shortfall good: the waiting Finished applies, Berlin is
    # done, and so is the return (the QC failure is not refunded)
    assert (record.status, record.review_reasons) == ("closed", ())
    assert record.finished_locations == ("bulky-hub", "berlin")
    assert _refunded(harness) == [Money("170.00", EUR)]


def test_on_receipt_a_qc_failure_at_one_location_is_not_refunded_and_the_rest_is() -> None:
    harness = _harness()
    rid = harness.service.request(_request()).id
    service = harness.service
    service.handle(_receipt(rid, "r2", ReceivedLine(line_id="S1", quantity=1), at="bulky-hub"))
    passed = ReceivedLine(line_id="L1", quantity=1)
    failed = ReceivedLine(line_id="L1", quantity=1, qc=QcResult.FAIL)
    service.handle(_receipt(rid, "r1", passed, failed, at="berlin"))
    record = service.get(SHOP, rid)
    assert record.status == "closed"
    assert _refunded(harness) == [Money("170.00", EUR)]


def test_a_finished_that_comes_before_its_locations_receipt_waits_for_it() -> None:
    harness = _harness(completion=Completion.ON_WAREHOUSE_FINISHED)
    rid = harness.service.request(_request()).id
    service = harness.service
    early = service.handle(_finished(rid, "f1", "berlin"))
    assert early.status == "parked"
    assert service.get(SHOP, rid).parked[0].location_id == "berlin"
    service.handle(_receipt(rid, "r1", ReceivedLine(line_id="L1", quantity=2), at="berlin"))
    record = service.get(SHOP, rid)
    assert (record.status, record.finished_locations, record.parked) == (
        "item_received",
        ("berlin",),
        (),
    )
    service.handle(_receipt(rid, "r2", ReceivedLine(line_id="S1", quantity=1)))  # unnamed
    service.handle(_finished(rid, "f2", "bulky-hub"))
    assert service.get(SHOP, rid).status == "closed"


def test_a_rule_sets_the_destination_in_place_of_the_resolver_and_says_so() -> None:
    harness = _harness(rules=(OUTLET,))
    request = _request(lines=(("L1", 1), ("O1", 1)))
    quoted = harness.service.quote(request)
    assert any("send to outlet-store" in line for line in quoted.rules)
    record = harness.service.request(request)
    assert [(line.order_line_id, line.location_id) for line in record.lines] == [
        ("L1", "berlin"),
        ("O1", "outlet-store"),
    ]
    assert harness.service.destinations.asked == ["L1", "L1"]  # type: ignore[attr-defined]
    [rule] = [e.payload for e in record.history if e.event == "rule"]
    assert rule["rule"] == OUTLET.name
    assert [where for where, _ in _created(harness)] == ["berlin", "outlet-store"]


def test_rules_with_a_destination_load_from_json_and_toml() -> None:
    text = json.dumps(
        {
            "rules": [
                {
                    "name": OUTLET.name,
                    "when": {"collections": ["outlet"]},
                    "then": {"destination": "outlet-store"},
                }
            ]
        }
    )
    assert rules_from_json(text) == (OUTLET,)
    toml = (
        "[[rules]]\n"
        f'name = "{OUTLET.name}"\n'
        'when = { collections = ["outlet"] }\n'
        'then = { destination = "outlet-store" }\n'
    )
    assert rules_from_toml(toml) == (OUTLET,)


def test_one_named_location_and_the_default_one_behave_as_one_warehouse() -> None:
    harness = _harness(StaticDestination("berlin"), completion=Completion.ON_WAREHOUSE_FINISHED)
    rid = harness.service.request(_request()).id
    assert [where for where, _ in _created(harness)] == ["berlin"]
    harness.service.handle(
        _receipt(
            rid,
            "r1",
            ReceivedLine(line_id="L1", quantity=2),
            ReceivedLine(line_id="S1", quantity=1),
        )
    )
    harness.service.handle(_finished(rid, "f1"))  # names none: the one location
    assert harness.service.get(SHOP, rid).status == "closed"


def test_with_the_default_resolver_the_warehouse_is_called_as_before_destinations() -> None:
    harness = _harness(StaticDestination())
    record = harness.service.request(_request())
    [call] = harness.ports.warehouse.calls_to("create_return")
    assert "location_id" not in call.args
    assert record.refs.warehouse_rma_id == "RMA-1"
    assert record.refs.location_rma_ids == ()
    assert {line.location_id for line in record.lines} == {None}
    text = harness.service.render_timeline(SHOP, record.id)
    assert "warehouse.create_return L1x2, S1x1 (reason=returnflow, action=returnflow): done" in text


def test_a_warehouse_written_before_destinations_still_works_for_the_default_location() -> None:
    from returnflow.ports.warehouse import WarehouseReturn

    class OldWarehouse:
        def __init__(self) -> None:
            self.asked: list[str] = []

        def create_return(
            self,
            shop: str,
            order_id: str,
            return_id: str,
            lines: Any,
            *,
            reason: str,
            action: str,
            idempotency_key: str,
        ) -> WarehouseReturn:
            self.asked.append(return_id)
            return WarehouseReturn("OLD-RMA")

        def cancel_return(self, shop: str, rma_id: str, *, idempotency_key: str) -> None:
            self.asked.append(f"cancel {rma_id}")

    harness = _harness(StaticDestination())
    old = OldWarehouse()
    harness.service.dispatcher.warehouse = old  # type: ignore[assignment]
    record = harness.service.request(_request())
    assert harness.service.get(SHOP, record.id).refs.warehouse_rma_id == "OLD-RMA"
    harness.service.cancel(SHOP, record.id)
    assert old.asked == [record.id, "cancel OLD-RMA"]


def test_cancelling_a_return_sent_to_two_locations_cancels_both_expectations() -> None:
    harness = _harness()
    record = harness.service.request(_request())
    harness.service.cancel(SHOP, record.id)
    cancelled = harness.ports.warehouse.calls_to("cancel_return")
    assert sorted(call.args["rma_id"] for call in cancelled) == ["RMA-1", "RMA-2"]
    assert {r.status for r in harness.ports.warehouse.returns} == {"cancelled"}


def test_a_reset_cancels_every_locations_expectation_and_the_new_return_keeps_the_routes() -> None:
    harness = _harness(completion=Completion.ON_WAREHOUSE_FINISHED)
    rid = harness.service.request(_request()).id
    service = harness.service
    passed = ReceivedLine(line_id="L1", quantity=1)
    failed = ReceivedLine(line_id="L1", quantity=1, qc=QcResult.FAIL)
    service.handle(_receipt(rid, "r1", passed, failed, at="berlin"))
    service.handle(_receipt(rid, "r2", ReceivedLine(line_id="S1", quantity=1), at="bulky-hub"))
    old, new = service.reset(SHOP, rid)
    assert old.status == "reset"
    cancelled = harness.ports.warehouse.calls_to("cancel_return")
    assert sorted(call.args["rma_id"] for call in cancelled) == ["RMA-1", "RMA-2"]
    assert [(line.order_line_id, line.quantity, line.location_id) for line in new.lines] == [
        ("L1", 1, "berlin"),
        ("S1", 1, "bulky-hub"),
    ]
    created = _created(harness)[2:]
    assert [
        (where, [(q.order_line_id, q.quantity) for q in lines]) for where, lines in created
    ] == [
        ("berlin", [("L1", 1)]),
        ("bulky-hub", [("S1", 1)]),
    ]
    new = service.get(SHOP, new.id)
    assert dict(new.refs.location_rma_ids) == {"berlin": "RMA-3", "bulky-hub": "RMA-4"}
    service.handle(_finished(new.id, "nf1", "berlin"))
    service.handle(_finished(new.id, "nf2", "bulky-hub"))
    assert service.get(SHOP, new.id).status == "closed"


def test_native_mode_disposes_restocked_units_at_their_lines_location() -> None:
    harness = _harness(platform_mode=PlatformMode.NATIVE)
    rid = harness.service.request(_request()).id
    service = harness.service
    service.handle(_receipt(rid, "r1", ReceivedLine(line_id="L1", quantity=2), at="berlin"))
    service.handle(_receipt(rid, "r2", ReceivedLine(line_id="S1", quantity=1), at="bulky-hub"))
    record = service.get(SHOP, rid)
    assert record.status == "closed"
    assert harness.platform_returns is not None
    live = harness.platform_returns.get_return(SHOP, record.refs.platform_return_id or "")
    disposed = harness.platform_returns.calls_to("dispose")
    assert sorted((c.args["line_id"], c.args["location_id"]) for c in disposed) == sorted(
        [(live.line_id("L1"), "berlin"), (live.line_id("S1"), "bulky-hub")]
    )


def test_native_mode_with_the_default_location_disposes_as_before() -> None:
    harness = _harness(StaticDestination(), platform_mode=PlatformMode.NATIVE)
    rid = harness.service.request(_request()).id
    harness.service.handle(
        _receipt(
            rid,
            "r1",
            ReceivedLine(line_id="L1", quantity=2),
            ReceivedLine(line_id="S1", quantity=1),
        )
    )
    assert harness.platform_returns is not None
    disposed = harness.platform_returns.calls_to("dispose")
    assert disposed
    assert all("location_id" not in call.args for call in disposed)


def test_a_warehouse_that_does_not_run_a_location_refuses_its_expectation() -> None:
    ports = FakePorts(warehouse=FakeWarehouse(locations=["berlin"]))
    harness = Harness(policy=ReturnPolicy(), destinations=ByTag(), ports=ports)
    harness.ports.commerce.add_order(_order("1001"))
    harness.service.request(_request())
    outcomes = [c.outcome for c in harness.ports.warehouse.calls_to("create_return")]
    assert outcomes[0] == "ok"
    assert outcomes[1] != "ok"


# -- storage: memory, SQLite, PostgreSQL ----------------------------------------------------------


def _stored_round_trip(store: ReturnStore) -> None:
    harness = _harness(store=store, completion=Completion.ON_WAREHOUSE_FINISHED)
    rid = harness.service.request(_request()).id
    harness.service.handle(_finished(rid, "f0", "berlin"))  # parked, with its location
    harness.service.handle(
        _receipt(rid, "r2", ReceivedLine(line_id="S1", quantity=1), at="bulky-hub")
    )
    harness.service.handle(_finished(rid, "f2", "bulky-hub"))
    record = store.get(SHOP, rid)
    assert [line.location_id for line in record.lines] == ["berlin", "bulky-hub"]
    assert dict(record.refs.location_rma_ids) == {"berlin": "RMA-1", "bulky-hub": "RMA-2"}
    assert record.finished_locations == ("bulky-hub",)
    assert [fact.location_id for fact in record.parked] == ["berlin"]
    harness.service.handle(_receipt(rid, "r1", ReceivedLine(line_id="L1", quantity=2)))
    assert store.get(SHOP, rid).status == "closed"


def test_destinations_are_stored_and_read_back_in_memory() -> None:
    _stored_round_trip(MemoryStore())


def test_destinations_are_stored_and_read_back_in_sqlite(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "returns.db")
    try:
        _stored_round_trip(store)
    finally:
        store.close()


def test_destinations_are_stored_and_read_back_in_postgres(pg_dsn: str) -> None:
    from returnflow.stores.postgres import PostgresStore

    store = PostgresStore(pg_dsn)
    try:
        _stored_round_trip(store)
    finally:
        store.close()


def test_a_record_stored_before_destinations_reads_back_at_the_default_location() -> None:
    harness = _harness()
    record = harness.service.request(_request())
    data = unstructure(record)
    for line in data["lines"]:
        del line["location_id"]
    del data["refs"]["location_rma_ids"]
    del data["finished_locations"]
    old = structure(data, ReturnRecord)
    assert {line.location_id for line in old.lines} == {None}
    assert (old.refs.location_rma_ids, old.finished_locations) == ((), ())


def _check_default(record: ReturnRecord) -> None:
    assert record.id == "R-stored"
    assert {line.location_id for line in record.lines} == {None}
    assert (record.refs.location_rma_ids, record.finished_locations) == ((), ())
    assert all(fact.location_id is None for fact in record.parked)


def test_a_sqlite_row_stored_before_destinations_reads_back_at_the_default_location(
    tmp_path: Path,
) -> None:
    path = tmp_path / "returns.db"
    SqliteStore(path).close()
    assert "location_id" not in STORED["returns"][0]["body"]
    insert_stored_sqlite(path)
    store = SqliteStore(path)
    try:
        _check_default(store.get("shop-a", "R-stored"))
    finally:
        store.close()


def test_a_postgres_row_stored_before_destinations_reads_back_at_the_default_location(
    pg_dsn: str,
) -> None:
    from returnflow.stores.postgres import PostgresStore

    insert_stored_postgres(pg_dsn)
    store = PostgresStore(pg_dsn)
    try:
        _check_default(store.get("shop-a", "R-stored"))
    finally:
        store.close()


# -- bad input: typed errors naming the field, nothing stored ---------------------------------


def _nothing_stored(harness: Harness) -> None:
    assert list(harness.service.list(SHOP)) == []
    assert harness.ports.warehouse.calls == []
    assert harness.ports.carrier.calls == []


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ("", "gave no location id"),
        (" berlin", "gave no location id"),
        (7, "gave no location id"),
        ("paris", "not a location of the shop"),
    ],
)
def test_a_location_the_resolver_makes_up_is_refused_and_nothing_is_stored(
    answer: object, why: str
) -> None:
    harness = _harness(ByTag(answer=answer))
    for call in (harness.service.request, harness.service.quote):
        with pytest.raises(UnknownLocation) as caught:
            call(_request())
        assert (caught.value.field, caught.value.value) == ("lines[0].location_id", answer)
        assert "the destination resolver" in caught.value.reason
        assert why in caught.value.reason
    _nothing_stored(harness)


def test_a_rule_sending_lines_to_a_location_the_shop_does_not_have_is_refused() -> None:
    harness = _harness(ByTag(locations=("berlin", "bulky-hub")), rules=(OUTLET,))
    with pytest.raises(UnknownLocation) as caught:
        harness.service.request(_request(lines=(("L1", 1), ("O1", 1))))
    assert (caught.value.field, caught.value.value) == ("lines[1].location_id", "outlet-store")
    assert repr(OUTLET.name) in caught.value.reason
    assert "berlin, bulky-hub" in caught.value.reason
    _nothing_stored(harness)


def test_with_no_locations_configured_a_rule_destination_says_what_to_configure() -> None:
    harness = _harness(StaticDestination(), rules=(OUTLET,))
    with pytest.raises(UnknownLocation) as caught:
        harness.service.request(_request(lines=(("O1", 1),)))
    assert "configure a DestinationResolver" in caught.value.reason
    _nothing_stored(harness)


@pytest.mark.parametrize("bad", ["", "  ", " outlet", 5, ["outlet"]])
def test_a_rule_with_a_bad_destination_is_an_invalid_rule_naming_the_field(bad: object) -> None:
    with pytest.raises(InvalidRule) as caught:
        Rule("bad", when={}, then={"destination": bad})
    assert (caught.value.rule, caught.value.field) == ("bad", "then.destination")
    text = json.dumps([{"name": "bad", "then": {"destination": bad}}])
    with pytest.raises(InvalidRule) as loaded:
        rules_from_json(text)
    assert loaded.value.field == "rules[0].then.destination"


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({"location_id": ""}, "location_id"),
        ({"location_id": 3}, "location_id"),
        ({"locations": "berlin"}, "locations"),
        ({"locations": ["berlin", ""]}, "locations[1]"),
    ],
)
def test_a_static_destination_that_cannot_work_is_a_configuration_error(
    given: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        StaticDestination(**given)
    assert caught.value.field == field


def test_a_static_destination_offers_its_location_and_the_ones_named() -> None:
    static = StaticDestination("berlin", locations=["outlet-store"])
    assert set(static.locations(SHOP)) == {"berlin", "outlet-store"}


def test_a_receipt_naming_a_location_its_line_does_not_go_to_is_refused_and_changes_nothing() -> (
    None
):
    harness = _harness()
    rid = harness.service.request(_request()).id
    before = harness.service.get(SHOP, rid)
    with pytest.raises(InvalidPayload) as caught:
        harness.service.handle(
            _receipt(rid, "bad", ReceivedLine(line_id="S1", quantity=1), at="berlin")
        )
    assert (caught.value.field, caught.value.value) == ("lines[0].line_id", "S1")
    assert "bulky-hub" in caught.value.reason
    assert harness.service.get(SHOP, rid) == before


def test_a_finished_at_a_location_the_return_does_not_go_to_is_refused() -> None:
    harness = _harness(completion=Completion.ON_WAREHOUSE_FINISHED)
    rid = harness.service.request(_request()).id
    before = harness.service.get(SHOP, rid)
    with pytest.raises(InvalidPayload) as caught:
        harness.service.handle(_finished(rid, "bad", "paris"))
    assert (caught.value.field, caught.value.value) == ("location_id", "paris")
    assert "berlin, bulky-hub" in caught.value.reason
    with pytest.raises(InvalidPayload) as unnamed:
        harness.service.handle(_finished(rid, "bad-2"))
    assert (unnamed.value.field, unnamed.value.value) == ("location_id", None)
    assert harness.service.get(SHOP, rid) == before


def test_a_location_on_a_return_sent_to_the_default_location_is_refused() -> None:
    harness = _harness(StaticDestination())
    rid = harness.service.request(_request()).id
    with pytest.raises(InvalidPayload) as caught:
        harness.service.handle(_finished(rid, "bad", "berlin"))
    assert caught.value.field == "location_id"
    with pytest.raises(InvalidPayload) as receipt:
        harness.service.handle(
            _receipt(rid, "bad-2", ReceivedLine(line_id="L1", quantity=1), at="berlin")
        )
    assert receipt.value.field == "lines[0].line_id"


@pytest.mark.parametrize("bad", ["", "   ", 4])
def test_a_fact_with_a_blank_location_is_refused_naming_it(bad: object) -> None:
    with pytest.raises(InvalidPayload) as caught:
        _finished("R1", "e1", bad)  # type: ignore[arg-type]
    assert caught.value.field == "location_id"
    with pytest.raises(InvalidPayload) as receipt:
        _receipt("R1", "e2", ReceivedLine(line_id="L1", quantity=1), at=bad)  # type: ignore[arg-type]
    assert receipt.value.field == "location_id"


def test_kept_lines_go_nowhere_and_the_resolver_is_not_asked_for_them() -> None:
    keep = Rule("cheap tees: keep them", when={"collections": ["outlet"]}, then={"keep": True})
    harness = _harness(rules=(keep,))
    record = harness.service.request(_request(lines=(("L1", 1), ("O1", 1))))
    assert [(line.order_line_id, line.location_id) for line in record.lines] == [
        ("L1", "berlin"),
        ("O1", None),
    ]
    assert harness.service.destinations.asked == ["L1"]  # type: ignore[attr-defined]
    assert [where for where, _ in _created(harness)] == ["berlin"]


def test_the_demo_flow_sends_one_return_to_three_locations_and_closes_it_on_the_last() -> None:
    from returnflow.demo.destinations import destinations

    harness, [rid] = destinations("demo-shop")
    record = harness.service.get("demo-shop", rid)
    assert record.status == "closed"
    assert record.finished_locations == ("berlin", "bulky-hub", "outlet-store")
    assert [(r.location_id, r.status) for r in harness.ports.warehouse.returns] == [
        ("berlin", "expected"),
        ("bulky-hub", "expected"),
        ("outlet-store", "expected"),
    ]
    assert [c.args["amount"] for c in harness.ports.commerce.calls_to("refund")] == [
        Money("235.00", EUR)
    ]
