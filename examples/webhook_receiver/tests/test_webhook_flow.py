"""Webhooks over real HTTP drive returns: de-duplication, concurrent redeliveries, the worker
delivering what the events caused, a whole return from first scan to refund, and the
receiver as a command that serves until Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from receiver import DEMO_SHOP, Worker, demo_events, open_demo_return
from receiver_site import Answer, Site

from returnflow import Money
from returnflow.ports.commerce import LineQuantity
from returnflow.webhooks import HEADER, verify

EXAMPLE = Path(__file__).resolve().parent.parent
CARRIER = "/webhooks/carrier"


def _port_calls(site: Site) -> list[tuple[str, str, str]]:
    return [
        (fake.port, call.operation, call.outcome)
        for fake in site.ports.all()
        for call in fake.calls
    ]


# -- de-duplication -------------------------------------------------------------------------


def test_a_redelivered_webhook_is_a_duplicate_and_changes_nothing(site: Site) -> None:
    body = json.dumps(site.event("scan-1")).encode()
    first = site.post(CARRIER, body)
    assert first.body["status"] == "applied"
    assert site.worker.drain()
    stored, calls = site.snapshot(), _port_calls(site)

    again = site.post(CARRIER, body)

    assert again.status == 200
    assert again.body["status"] == "duplicate"
    assert again.body["reason"] == "carrier:scan-1"
    assert again.body["version"] == first.body["version"]
    assert site.worker.drain()
    assert site.snapshot() == stored
    assert _port_calls(site) == calls


def test_a_redelivery_is_known_by_its_id_whatever_its_body_says(site: Site) -> None:
    assert site.post(CARRIER, site.event("scan-1")).body["status"] == "applied"
    assert site.worker.drain()
    stored = site.snapshot()

    other = site.post(CARRIER, site.event("scan-1", status="DELIVERED"))

    assert other.body["status"] == "duplicate"
    assert site.worker.drain()
    assert site.snapshot() == stored
    assert site.store.get(site.shop, site.return_id).status == "in_transit"


def test_event_ids_are_kept_apart_by_source(site: Site) -> None:
    assert site.post(CARRIER, site.event("evt-1")).body["status"] == "applied"

    finished = site.post(
        "/webhooks/warehouse/finished",
        {"shop": site.shop, "return_id": site.return_id, "event_id": "evt-1"},
    )

    # Not a duplicate of the carrier's evt-1: recorded, and parked because the parcel is
    # still on its way (it applies once the receipt has come).
    assert finished.body["status"] == "parked"
    assert "in_transit" in finished.body["reason"]
    inbox = [(s, e) for s, e, _ in site.store.inbound(site.shop, site.return_id)]
    assert sorted(inbox) == [("carrier", "evt-1"), ("warehouse", "evt-1")]


def test_concurrent_deliveries_of_one_event_apply_it_once(site: Site) -> None:
    senders = 8
    body = json.dumps(site.event("scan-1")).encode()
    before = site.store.get(site.shop, site.return_id)
    ready = threading.Barrier(senders)
    answers: list[Answer] = []
    lock = threading.Lock()

    def send() -> None:
        ready.wait()
        answer = site.post(CARRIER, body)
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=send) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [answer.status for answer in answers] == [200] * senders
    assert Counter(answer.body["status"] for answer in answers) == {
        "applied": 1,
        "duplicate": senders - 1,
    }
    after = site.store.get(site.shop, site.return_id)
    assert after.version == before.version + 1
    assert [entry.event for entry in after.history].count("hand_in") == 1
    assert [(s, e) for s, e, _ in site.store.inbound(site.shop, site.return_id)] == [
        ("carrier", "scan-1")
    ]
    assert site.worker.drain()
    assert site.ports.events.topics_for(site.return_id).count("carrier/picked_up") == 1


# -- the worker -----------------------------------------------------------------------------


def test_the_receiver_only_commits_and_the_outbox_waits_for_a_worker(bare_site: Site) -> None:
    published = len(bare_site.ports.events.calls)

    answer = bare_site.post(CARRIER, bare_site.event("scan-1"))

    assert answer.body["status"] == "applied"
    pending = [
        entry.effect.kind
        for entry in bare_site.store.outbox(bare_site.shop, bare_site.return_id)
        if entry.status == "pending"
    ]
    assert pending == ["publish"]
    assert len(bare_site.ports.events.calls) == published


def test_the_worker_delivers_the_effects_the_events_caused(site: Site) -> None:
    (pickup, delivered, receipt, finished) = demo_events(site.return_id)
    for path, event in (pickup, delivered, receipt):
        assert site.post(path, event).body["status"] == "applied"
    assert site.worker.drain()

    assert site.ports.events.topics_for(site.return_id)[-3:] == [
        "carrier/picked_up",
        "returns/update",
        "returns/update",
    ]
    [restock] = site.ports.commerce.calls_to("restock")
    assert restock.outcome == "ok"
    assert restock.args["lines"] == (LineQuantity("L1", 1), LineQuantity("L2", 1))
    assert site.ports.commerce.calls_to("refund") == []  # completion waits for "Finished"

    assert site.post(*finished).body["status"] == "applied"
    assert site.worker.drain()

    [refund] = site.ports.commerce.refunds
    assert refund.amount == Money("25.00", "EUR")
    assert refund.lines == (LineQuantity("L1", 1),)
    assert [call.outcome for call in site.ports.commerce.calls_to("release_exchange")] == ["ok"]
    outbox = site.store.outbox(site.shop, site.return_id)
    assert {entry.status for entry in outbox} == {"done"}
    assert site.worker.delivered == len(
        [entry for entry in outbox if entry.effect.version > 4]  # after open_demo_return
    )


def test_the_worker_retries_a_failed_effect_after_its_backoff(site: Site) -> None:
    site.ports.commerce.fail("refund")
    for path, event in demo_events(site.return_id):
        site.post(path, event)
    assert site.worker.drain()

    assert [call.outcome for call in site.ports.commerce.calls_to("refund")] == ["failed"]
    assert site.store.get(site.shop, site.return_id).status == "refunded"
    assert site.worker.failed == 1

    site.clock.advance(minutes=1)  # past the retry's backoff
    assert site.worker.drain()

    assert [call.outcome for call in site.ports.commerce.calls_to("refund")] == ["failed", "ok"]
    assert site.store.get(site.shop, site.return_id).state == ("closed", "released")


def test_a_failing_round_is_logged_and_the_worker_goes_on(
    bare_site: Site, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real_tick = bare_site.service.tick
    calls = []

    def tick_failing_once() -> object:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("disk unplugged")
        return real_tick()

    monkeypatch.setattr(bare_site.service, "tick", tick_failing_once)
    bare_site.post(CARRIER, bare_site.event("scan-1"))
    worker = Worker(bare_site.service, interval=0.01)
    worker.start()
    try:
        assert worker.drain()
    finally:
        worker.stop()

    assert worker.errors == 1
    assert "disk unplugged" in caplog.text
    assert worker.delivered == 1
    assert bare_site.ports.events.topics_for(bare_site.return_id)[-1] == "carrier/picked_up"


def test_stopping_stops_the_server_and_the_worker(site: Site) -> None:
    url = site.running.url

    site.running.stop()

    assert not site.worker.running
    with pytest.raises(urllib.error.URLError, match="refused"):
        urllib.request.urlopen(url + CARRIER, data=b"{}", timeout=5)
    site.running.stop()  # a second stop does nothing


def test_a_worker_starts_once(site: Site) -> None:
    with pytest.raises(RuntimeError, match="started already"):
        site.worker.start()


def test_drain_says_so_when_no_worker_runs(bare_site: Site) -> None:
    assert Worker(bare_site.service).drain(timeout=0.01) is False


# -- a whole return -------------------------------------------------------------------------


def test_a_whole_return_is_driven_by_webhooks_to_its_end(site: Site) -> None:
    states = []
    for path, event in demo_events(site.return_id):
        answer = site.post(path, event)
        assert answer.body["status"] == "applied"
        states.append(tuple(answer.body["state"]))
    assert site.worker.drain()

    assert states == [
        ("in_transit", "on_hold"),
        ("delivered", "on_hold"),
        ("item_received", "on_hold"),
        ("refunded", "released"),
    ]
    record = site.store.get(site.shop, site.return_id)
    assert record.state == ("closed", "released")
    assert [line.accepted for line in record.lines] == [1, 1]
    assert [(r.amount, r.lines) for r in site.ports.commerce.refunds] == [
        (Money("25.00", "EUR"), (LineQuantity("L1", 1),))
    ]
    assert "hold-order" not in site.ports.commerce.tags(DEMO_SHOP, "1001")
    assert [line.status for line in site.ports.commerce.exchange_lines(DEMO_SHOP, "1001")] == [
        "unfulfilled"
    ]
    assert site.ports.notifier.calls_to("notify")[-1].args["template"] == "exchange_released"
    assert {outcome for _, _, outcome in _port_calls(site)} == {"ok"}
    inbox = [(s, e) for s, e, _ in site.store.inbound(site.shop, site.return_id)]
    assert sorted(inbox) == [
        ("carrier", "scan-1"),
        ("carrier", "scan-2"),
        ("warehouse", "wms-1"),
        ("warehouse", "wms-2"),
    ]


def test_the_demo_return_is_opened_once(site: Site) -> None:
    assert open_demo_return(site.service).id == site.return_id
    assert len(site.service.list(DEMO_SHOP)) == 1


# -- processes ------------------------------------------------------------------------------


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RETURNFLOW_WEBHOOK_SECRET"}
    paths = [str(EXAMPLE), *filter(None, [env.get("PYTHONPATH")])]
    return {**env, "PYTHONPATH": os.pathsep.join(paths), **extra}


def test_a_worker_in_another_process_delivers_what_the_receiver_committed(
    bare_site: Site,
) -> None:
    for path, event in demo_events(bare_site.return_id)[:2]:
        assert bare_site.post(path, event).body["status"] == "applied"
    pending = [e for e in bare_site.store.outbox(DEMO_SHOP, bare_site.return_id) if e.attempts == 0]
    assert [entry.effect.kind for entry in pending] == ["publish", "publish"]

    done = subprocess.run(
        [sys.executable, "-m", "returnflow.cli", "worker", "--once", "--interval", "0",
         "--db", bare_site.store.path, "--app", "receiver:build_service"],
        capture_output=True, text=True, env=_env(), timeout=120,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert "delivered 2" in done.stdout
    outbox = bare_site.store.outbox(DEMO_SHOP, bare_site.return_id)
    assert {entry.status for entry in outbox} == {"done"}


def test_the_command_serves_until_interrupted(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLE / "receiver.py"), "--port", "0",
         "--db", str(tmp_path / "returns.db")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
    )  # fmt: skip
    watchdog = threading.Timer(60, process.kill)
    watchdog.start()
    try:
        assert process.stdout is not None
        lines: list[str] = []
        while not (line := process.stdout.readline()).startswith("Ctrl-C"):
            assert line, "the receiver ended early:\n" + "".join(lines)
            lines.append(line)
        [secret] = [
            match.group(1)
            for ln in lines
            if (match := re.match(r"no secret given; using (\S+)", ln))
        ]
        commands = [shlex.split(ln) for ln in lines if ln.strip().startswith("curl")]
        assert len(commands) == 4
        for command in commands:  # every printed command is signed with the run's secret
            headers = dict(
                command[i + 1].split(": ", 1) for i, arg in enumerate(command) if arg == "-H"
            )
            body = command[command.index("-d") + 1].encode()
            assert verify(body, headers[HEADER], secret)

        request = urllib.request.Request(  # the first one, as curl would send it
            commands[0][4],
            data=commands[0][commands[0].index("-d") + 1].encode(),
            headers=dict(
                commands[0][i + 1].split(": ", 1)
                for i, arg in enumerate(commands[0])
                if arg == "-H"
            ),
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert json.load(response)["status"] == "applied"

        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert out.strip().endswith("stopped")
    assert '"POST /webhooks/carrier HTTP/1.1" 200' in err
