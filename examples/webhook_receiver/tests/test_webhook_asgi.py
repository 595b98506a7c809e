"""The ASGI receiver (Starlette under uvicorn) serves a request while slow clients hold
connections open: reading a body never blocks the event loop."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from receiver_site import SECRET, Site, open_site

from returnflow.webhooks import HEADER, sign

SLOW_CLIENTS = 64  # more than http.server's pool of 8 threads could wait on


@pytest.fixture
def asgi_site(tmp_path: Path) -> Iterator[Site]:
    yield from open_site(tmp_path, server="asgi")


def test_a_request_is_served_while_slow_clients_are_connected(asgi_site: Site) -> None:
    host, port = asgi_site.running.server.server_address
    body = json.dumps(asgi_site.event("scan-1")).encode()
    slow: list[socket.socket] = []
    try:
        for _ in range(SLOW_CLIENTS):  # each announces a body and sends a third of it
            sock = socket.create_connection((host, port), timeout=30)
            sock.sendall(
                b"POST /webhooks/carrier HTTP/1.1\r\nHost: x\r\n"
                + f"Content-Length: {len(body)}\r\n{HEADER}: {sign(body, SECRET)}\r\n\r\n".encode()
                + body[: len(body) // 3]
            )
            slow.append(sock)
        started = time.monotonic()
        answer = asgi_site.post("/webhooks/carrier", asgi_site.event("scan-2"))
        waited = time.monotonic() - started
    finally:
        for sock in slow:
            sock.close()

    assert answer.status == 200
    assert answer.body["status"] == "applied"
    assert waited < 10  # served, not queued behind the slow senders (they never finish)
    inbox = [
        event_id for _, event_id, _ in asgi_site.store.inbound(asgi_site.shop, asgi_site.return_id)
    ]
    assert inbox == ["scan-2"]  # none of the unfinished bodies was taken as an event
