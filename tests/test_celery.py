"""returnflow on Celery, against a real Redis broker and real ``celery worker`` processes.

1,000 returns are opened here; their deliveries run in a worker, and every warehouse receipt
is sent to the ``returnflow.handle`` task twice. The first worker kills itself (SIGKILL) in
the middle of a task, right after a port acted and before the outbox heard of it; a second
worker takes over. In the end every effect was delivered exactly once (one acting call per
idempotency key, no effect planned twice) and nothing is left pending.

Redis: see :mod:`celery_support.redis_support` (skipped with the reason when none can be had,
unless ``RETURNFLOW_REQUIRE_REDIS=1``, as in CI).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

import pytest

celery = pytest.importorskip("celery", reason="the celery extra is not installed")

from celery_support import redis_support  # noqa: E402
from celery_support.app import SHOP, configure  # noqa: E402
from returnflow import ReceivedLine, RequestLine, ReturnRequest, WarehouseReceipt  # noqa: E402
from returnflow.errors import InvalidPayload  # noqa: E402
from returnflow.integrations.celery import ReturnflowTasks, install, send_fact  # noqa: E402
from returnflow.stores.sqlite import SqliteStore  # noqa: E402
from returnflow.testing import Harness, make_order  # noqa: E402

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
RETURNS = 1000
KILL_AFTER = 400  # the acting port call in whose task the first worker dies


@pytest.fixture(scope="module")
def broker() -> str:
    try:
        return redis_support.redis_url()
    except redis_support.Unavailable as error:
        if redis_support.required():
            pytest.fail(f"Redis is required here and none could be had: {error}")
        pytest.skip(f"no Redis: {error}")


class Workers:
    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, *options: str, **env: str) -> subprocess.Popen[bytes]:
        with open(self.logs / f"{name}.log", "wb") as log:  # the worker keeps its own copy
            worker = self._spawn(name, log, options, env)
        self.started.append(worker)
        return worker

    def _spawn(
        self, name: str, log: BinaryIO, options: tuple[str, ...], env: dict[str, str]
    ) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "celery_support.app",
                "worker",
                "--hostname",
                f"{name}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel",
                "WARNING",
                *options,
            ],
            cwd=TESTS,
            env={**self.env, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> None:
        for worker in self.started:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in self.started:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()


@pytest.fixture
def workers(broker: str, tmp_path: Path) -> Iterator[Workers]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT / "src")]),
        "RETURNFLOW_CELERY_BROKER": broker,
        "RETURNFLOW_CELERY_QUEUE": f"returnflow-test-{uuid.uuid4().hex[:8]}",
        "RETURNFLOW_CELERY_DB": str(tmp_path / "returns.db"),
        "RETURNFLOW_CELERY_NAMESPACE": f"returnflow-test-{uuid.uuid4().hex[:8]}",
        "RETURNFLOW_CELERY_COUNT": str(RETURNS),
    }
    made = Workers(env, tmp_path)
    yield made
    made.stop()
    client = configure(*_settings(env))[2].redis
    keys = [
        *client.scan_iter(f"{env['RETURNFLOW_CELERY_NAMESPACE']}:*"),
        env["RETURNFLOW_CELERY_QUEUE"],
    ]
    client.delete(*keys)


def _settings(env: dict[str, str]) -> tuple[str, str, str, str, int]:
    return (
        env["RETURNFLOW_CELERY_BROKER"],
        env["RETURNFLOW_CELERY_QUEUE"],
        env["RETURNFLOW_CELERY_DB"],
        env["RETURNFLOW_CELERY_NAMESPACE"],
        int(env["RETURNFLOW_CELERY_COUNT"]),
    )


def _wait(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.5)


def test_a_killed_worker_loses_nothing_and_every_effect_is_delivered_once(
    workers: Workers,
) -> None:
    app, tasks, ledger = configure(*_settings(workers.env))
    service = tasks.service()  # commits here are handed to the workers
    store = SqliteStore(workers.env["RETURNFLOW_CELERY_DB"])

    first = workers.start("doomed", "--pool", "solo", RETURNFLOW_CELERY_KILL_AFTER=str(KILL_AFTER))
    ids = []
    for index in range(RETURNS):
        request = ReturnRequest(shop=SHOP, order_id=f"O{index:05d}", lines=[RequestLine("L2", 1)])
        ids.append(service.request(request).id)
    for return_id in ids:
        receipt = WarehouseReceipt(
            shop=SHOP,
            return_id=return_id,
            event_id=f"wms-{return_id}",
            lines=[ReceivedLine(line_id="L2", quantity=1)],
        )
        send_fact(tasks, receipt)
        send_fact(tasks, receipt)  # the warehouse sends it again

    _wait(lambda: first.poll() is not None, 600, "the first worker to die")
    assert first.returncode == -signal.SIGKILL
    killed = ledger.entries()[KILL_AFTER - 1]
    assert killed["n"] == KILL_AFTER
    assert killed["pid"] == first.pid  # it acted, then died before writing it back

    workers.start("heir", "--pool", "prefork", "--concurrency", "2")

    def settled() -> bool:
        entries = [entry for rid in ids for entry in store.outbox(SHOP, rid)]
        statuses = {store.get(SHOP, rid).status for rid in ids}
        return statuses == {"closed"} and all(entry.status == "done" for entry in entries)

    _wait(settled, 900, "every return closed and every effect delivered")

    outbox = [entry for rid in ids for entry in store.outbox(SHOP, rid)]
    acted = ledger.entries()
    assert sorted(entry["key"] for entry in acted) == sorted(e.effect.key for e in outbox)
    assert len(acted) == len(outbox)  # each effect delivered once, none planned twice
    refunds = [entry for entry in acted if entry["operation"] == "refund"]
    assert sorted(entry["args"]["order_id"] for entry in refunds) == [
        f"O{index:05d}" for index in range(RETURNS)
    ]
    assert all(
        entry["args"]["amount"] == {"amount": "10.00", "currency": "EUR"} for entry in refunds
    )
    for return_id in ids:
        assert store.inbound(SHOP, return_id)  # the receipt, once; the repeat was a duplicate
        events = [entry.event for entry in store.get(SHOP, return_id).history]
        assert events.count("receive") == 1, (return_id, events)
    assert ledger.replays() >= 1  # the killed task's effect was called again, and replayed
    app.close()
    store.close()


def test_install_refuses_bad_settings() -> None:
    app = celery.Celery("returnflow-settings", broker="memory://")
    with pytest.raises(InvalidPayload, match="sweep_every"):
        install(app, lambda: None, sweep_every=timedelta(0))  # type: ignore[arg-type,return-value]
    with pytest.raises(InvalidPayload, match="limit"):
        install(app, lambda: None, limit=0)  # type: ignore[arg-type,return-value]


def test_install_puts_the_sweep_and_the_timers_on_the_beat_schedule() -> None:
    app = celery.Celery("returnflow-beat", broker="memory://")
    tasks = install(app, lambda: None, sweep_every=timedelta(seconds=7))  # type: ignore[arg-type,return-value]
    schedule = app.conf.beat_schedule
    assert schedule["returnflow.dispatch_pending"] == {
        "task": "returnflow.dispatch_pending",
        "schedule": 7.0,
    }
    assert schedule["returnflow.tick"]["schedule"] == 60.0
    assert tasks.dispatch_return.name == "returnflow.dispatch_return"
    assert tasks.dispatch_return.acks_late
    assert tasks.dispatch_return.reject_on_worker_lost


def test_a_fact_of_another_kind_is_refused_before_it_is_sent() -> None:
    app = celery.Celery("returnflow-facts", broker="memory://")
    tasks = install(app, lambda: None)  # type: ignore[arg-type,return-value]
    with pytest.raises(InvalidPayload, match="event"):
        send_fact(tasks, {"kind": "CarrierUpdate"})  # type: ignore[arg-type]


def _eager_harness() -> tuple[Harness, ReturnflowTasks, list[tuple[str, str]]]:
    harness = Harness()
    harness.ports.commerce.add_order(make_order("s", "1"))
    app = celery.Celery("returnflow-retry", broker="memory://")
    tasks = install(app, lambda: harness.service)
    handed: list[tuple[str, str]] = []
    tasks.service().dispatcher.hand_off = lambda shop, rid: handed.append((shop, rid))
    return harness, tasks, handed


def test_a_failed_delivery_retries_its_task_at_the_effects_back_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    harness, tasks, handed = _eager_harness()
    harness.ports.carrier.fail("create_label", times=1)
    record = tasks.service().request(
        ReturnRequest(shop="s", order_id="1", lines=[RequestLine("L2", 1)])
    )
    assert handed == [("s", record.id)]  # the commit was handed to the task, not delivered

    class Again(Exception):
        pass

    asked: list[dict[str, object]] = []
    monkeypatch.setattr(tasks.dispatch_return, "retry", lambda **kw: asked.append(kw) or Again())
    with pytest.raises(Again):
        tasks.dispatch_return.run("s", record.id)

    (label,) = [e for e in harness.store.outbox("s", record.id) if e.effect.kind == "create_label"]
    assert label.status == "pending"
    assert label.next_attempt_at is not None
    assert asked == [{"countdown": (label.next_attempt_at - harness.clock.now()).total_seconds()}]


def test_in_eager_mode_a_failed_delivery_waits_for_the_sweep_instead_of_looping() -> None:
    harness, tasks, handed = _eager_harness()
    harness.ports.carrier.fail("create_label", times=1)
    record = tasks.service().request(
        ReturnRequest(shop="s", order_id="1", lines=[RequestLine("L2", 1)])
    )
    assert tasks.dispatch_return.apply(args=handed[0]).state == "SUCCESS"
    harness.clock.advance(seconds=harness.policy.retry_cap_seconds * 2)
    assert tasks.dispatch_pending.apply().get()["delivered"] >= 1
    assert all(e.status == "done" for e in harness.store.outbox("s", record.id))


@pytest.mark.parametrize(
    ("kind", "data", "field"),
    [
        ("CarrierUpdate", {"shop": "s"}, "return_id"),
        ("Parcel", {}, "kind"),
        (
            "WarehouseReceipt",
            {"shop": "s", "return_id": "R1", "event_id": "e", "lines": 3},
            "lines",
        ),
    ],
)
def test_the_handle_task_fails_bad_data_for_good_naming_the_field(
    kind: str, data: dict[str, object], field: str
) -> None:
    _, tasks, _ = _eager_harness()
    result = tasks.handle.apply(args=(kind, data))
    assert result.state == "FAILURE"
    assert isinstance(result.result, InvalidPayload)
    assert result.result.field == field
