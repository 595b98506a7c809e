"""`returnflow inspect` and `returnflow worker` on the demo's SQLite file."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import attrs

from returnflow import RequestLine, ReturnPolicy, ReturnRequest
from returnflow.cli import main
from returnflow.demo.app import build
from returnflow.demo.scenarios import order_1001
from returnflow.lifecycle.table import TABLE
from returnflow.stores.sqlite import SqliteStore
from returnflow.testing import Harness, ManualClock


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out, err=out)  # results and messages, in order
    return code, out.getvalue()


def test_demo_writes_a_file_that_inspect_reads_as_text_and_json(tmp_path: Path) -> None:
    db = str(tmp_path / "demo.db")
    code, output = run("demo", "--db", db, "loop-upsell", "clickpost-rto")
    assert code == 0
    assert output.splitlines()[-1].strip() == (
        f"returnflow inspect --db {db} --shop demo-loop-upsell R0001"  # the last one run
    )

    code, text = run("inspect", "--db", db, "--shop", "demo-loop-upsell", "R0001")
    assert code == 0
    assert text.startswith("return R0001 (order 1001): closed / released")
    assert "payments.charge 10.00 EUR: done" in text
    assert "allowed events: reopen" in text
    assert "warehouse:wms-1" in text  # the inbound event, with its source

    code, raw = run("inspect", "--db", db, "--shop", "demo-loop-upsell", "R0001", "--json")
    assert code == 0
    document = json.loads(raw)
    assert document["return"]["status"] == "closed"
    assert document["shopify_status"] == "CLOSED"
    assert document["allowed_events"] == list(TABLE.allowed(("closed", "released")))
    kinds = [effect["effect"]["kind"] for effect in document["effects"]]
    assert "charge_balance" in kinds
    assert "process_platform_return" in kinds  # native (seed 003): processing releases it
    assert "release_exchange" not in kinds
    assert {effect["status"] for effect in document["effects"]} == {"done"}
    assert all(effect["attempts"] == 1 for effect in document["effects"])
    assert document["inbound"] == [
        {"source": "warehouse", "event_id": "wms-1", "at": document["inbound"][0]["at"]}
    ]


def test_inspect_needs_the_shop_when_an_id_is_in_several(tmp_path: Path) -> None:
    db = str(tmp_path / "demo.db")
    run("demo", "--db", db, "loop-even", "loop-upsell")
    code, output = run("inspect", "--db", db, "R0001")
    assert code == 2
    assert "demo-loop-even, demo-loop-upsell (pass --shop)" in output
    assert run("inspect", "--db", db, "R9999")[0] == 2
    assert run("inspect", "--db", str(tmp_path / "none.db"), "R0001")[0] == 2


def test_worker_delivers_what_a_crashed_writer_left_in_the_outbox(tmp_path: Path) -> None:
    db = tmp_path / "returns.db"
    store = SqliteStore(db)
    shop = "demo-helpdesk-auto"
    # A service that committed and never dispatched (auto_dispatch off): effects wait. The
    # worker runs on the real clock, so the order is from two days ago.
    now = datetime.now(timezone.utc)
    harness = Harness(
        store=store, policy=ReturnPolicy(), auto_dispatch=False, clock=ManualClock(now)
    )
    harness.ports.commerce.add_order(
        attrs.evolve(
            order_1001(shop),
            created_at=now - timedelta(days=2),
            fulfilled_at=now - timedelta(days=2),
        )
    )
    record = harness.service.request(
        ReturnRequest(
            shop=shop, order_id="1001", lines=[RequestLine(order_line_id="L3", quantity=1)]
        )
    )
    pending = [entry.effect.kind for entry in store.pending()]
    assert pending[:3] == ["create_label", "create_warehouse_return", "publish"]
    store.close()

    code, output = run("worker", "--db", str(db), "--demo", "--once")

    assert code == 0
    assert "worker stopped: delivered" in output
    reopened = SqliteStore(db)
    assert reopened.pending() == []
    assert reopened.get(shop, record.id).status == "label_sent"  # the label came back
    reopened.close()


def test_the_demo_app_builds_a_service_on_the_store(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "x.db")
    service = build(store)
    assert service.store is store
    assert service.tick(service.clock() + timedelta(days=1)).expired == ()
    store.close()
