"""``returnflow demo``, ``inspect`` and ``worker`` with ``--db postgresql://...``."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import attrs
import pytest

import postgres_support

if not postgres_support.required():
    pytest.importorskip("psycopg", reason="the postgres extra is not installed")

from returnflow import RequestLine, ReturnPolicy, ReturnRequest
from returnflow.cli import main
from returnflow.demo.scenarios import order_1001
from returnflow.stores.postgres import PostgresStore
from returnflow.testing import Harness, ManualClock


@pytest.fixture(scope="session")
def cluster() -> postgres_support.Cluster:
    return postgres_support.cluster_or_skip()


@pytest.fixture
def dsn(cluster: postgres_support.Cluster) -> str:
    return cluster.empty_database()


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out, err=out)  # results and messages, in order
    return code, out.getvalue()


def test_demo_on_postgres_and_inspect_reads_it(dsn: str) -> None:
    code, output = run("demo", "--db", dsn, "loop-upsell", "clickpost-rto")
    assert code == 0
    assert output.splitlines()[0] == f"returnflow demo: 2 seed flow(s) on {dsn}"
    assert output.splitlines()[-1].strip() == (
        f"returnflow inspect --db {dsn} --shop demo-loop-upsell R0001"  # the last one run
    )

    code, text = run("inspect", "--db", dsn, "--shop", "demo-loop-upsell", "R0001")
    assert code == 0
    assert text.startswith("return R0001 (order 1001): closed / released")
    assert "payments.charge 10.00 EUR: done" in text
    assert "warehouse:wms-1" in text

    code, raw = run("inspect", "--db", dsn, "R0001", "--json")
    assert code == 2  # in two shops
    assert "demo-clickpost-rto, demo-loop-upsell (pass --shop)" in raw
    code, raw = run("inspect", "--db", dsn, "--shop", "demo-loop-upsell", "R0001", "--json")
    document = json.loads(raw)
    assert (document["return"]["status"], document["shopify_status"]) == ("closed", "CLOSED")
    assert {effect["status"] for effect in document["effects"]} == {"done"}

    store = PostgresStore(dsn)
    try:
        assert store.count() == 2
        assert store.pending() == []
    finally:
        store.close()


def test_worker_once_on_postgres_delivers_what_a_writer_left(dsn: str) -> None:
    store = PostgresStore(dsn)
    shop = "demo-helpdesk-auto"
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
    assert [entry.effect.kind for entry in store.pending()][:3] == [
        "create_label",
        "create_warehouse_return",
        "publish",
    ]

    done = subprocess.run(
        [sys.executable, "-m", "returnflow.cli", "worker", "--db", dsn, "--demo", "--once"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert "worker stopped: delivered" in done.stdout
    try:
        assert store.pending() == []
        assert store.get(shop, record.id).status == "label_sent"  # the label came back
    finally:
        store.close()


def test_cli_without_psycopg_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # ``import psycopg`` now fails
    monkeypatch.delitem(sys.modules, "returnflow.stores.postgres")
    url = "postgresql://returns@db.internal/returns"
    for argv in (
        ["worker", "--db", url, "--demo", "--once"],
        ["inspect", "--db", url, "R0001"],
        ["demo", "--db", url],
    ):
        code, output = run(*argv)
        assert code == 1
        assert output.startswith(f"returnflow {argv[0]}: ConfigurationError: db={url!r}: ")
        assert "returnflow[postgres]" in output
        assert len(output.splitlines()) == 1
