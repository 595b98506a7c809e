"""A receiver serving for real on a free loopback port, and a client for it (urllib)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import attrs
from receiver import Running, Worker, build_service, open_demo_return, start

from returnflow import ReturnsService
from returnflow.stores.sqlite import SqliteStore
from returnflow.testing import FakePorts, ManualClock
from returnflow.webhooks import HEADER, sign

SECRET = "whsec-test"
SIGNED = object()
"""``Site.post(signature=SIGNED)``: sign the body with the right secret."""


@attrs.frozen
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


@attrs.define
class Site:
    """A receiver serving for real on loopback, the service behind it and its fakes."""

    store: SqliteStore
    ports: FakePorts
    clock: ManualClock
    service: ReturnsService
    running: Running  # or asgi.AsgiRunning: the same url, server, worker and stop()
    return_id: str
    shop: str = "demo-shop"
    server: str = "http.server"

    @property
    def worker(self) -> Worker:
        assert self.running.worker is not None
        return self.running.worker

    def post(
        self,
        path: str,
        body: bytes | dict[str, Any],
        *,
        signature: object = SIGNED,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """POST ``body`` (a dict is sent as JSON) with urllib; any status is an answer."""
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        sent = {"Content-Type": "application/json", **(headers or {})}
        if signature is SIGNED:
            sent[HEADER] = sign(data, SECRET)
        elif isinstance(signature, str):
            sent[HEADER] = signature
        return self.request("POST", path, data, sent)

    def request(
        self,
        method: str,
        path: str,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        request = urllib.request.Request(
            self.running.url + path, data=data, method=method, headers=headers or {}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return Answer(response.status, _json(response.read()), _names(response.headers))
        except urllib.error.HTTPError as error:
            with error:
                return Answer(error.code, _json(error.read()), _names(error.headers))

    def event(
        self, event_id: str, status: str = "RETURN_PICKED_UP", **fields: Any
    ) -> dict[str, Any]:
        """A carrier update for the demo return."""
        return {
            "shop": self.shop,
            "return_id": self.return_id,
            "event_id": event_id,
            "status": status,
            **fields,
        }

    def snapshot(self) -> tuple[Any, ...]:
        """Everything stored about the demo return: record, history, outbox, inbox."""
        record = self.store.get(self.shop, self.return_id)
        outbox = [
            (entry.effect.key, entry.status, entry.attempts)
            for entry in self.store.outbox(self.shop, self.return_id)
        ]
        inbox = [
            (source, event_id)
            for source, event_id, _ in self.store.inbound(self.shop, self.return_id)
        ]
        return record.version, record.state, len(record.history), outbox, inbox


def _names(headers: Any) -> dict[str, str]:
    """Headers by their usual spelling (``Allow``, ``Retry-After``): names are not case
    sensitive, and servers send them in either case."""
    return {name.title(): value for name, value in headers.items()}


def _json(raw: bytes) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(raw) if raw else {}
    return data


SERVERS = ("http.server", "asgi")
"""The servers the receiver runs on: the standard library's, and Starlette under uvicorn."""


def open_site(
    tmp_path: Path, *, worker: bool = True, server: str = "http.server"
) -> Iterator[Site]:
    """A receiver on a new SQLite file in ``tmp_path``, with a demo return, served by
    ``server`` (one of :data:`SERVERS`); stopped after."""
    store = SqliteStore(tmp_path / "returns.db")
    ports = FakePorts()
    # now: a worker process run by a test (with the real clock) sees the same time
    clock = ManualClock(datetime.now(timezone.utc))
    service = build_service(store, ports=ports, clock=clock)
    demo = open_demo_return(service)
    running: Any
    if server == "asgi":
        from asgi import start_asgi

        running = start_asgi(service, SECRET, worker=worker, interval=30.0)
    else:
        running = start(service, SECRET, worker=worker, interval=30.0)
    try:
        yield Site(store, ports, clock, service, running, demo.id, server=server)
    finally:
        running.stop()
        store.close()
