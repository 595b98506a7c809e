"""The receiver over real HTTP on loopback: signatures, bad payloads, HTTP's own answers.

Every refused request leaves the store exactly as it was.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from receiver import MAX_BODY, WebhookReceiver, start
from receiver_site import SECRET, Site

from returnflow import (
    CarrierUpdate,
    ConcurrencyConflict,
    HandleResult,
    InboundEvent,
    InvalidTransition,
)
from returnflow.webhooks import HEADER, sign

CARRIER = "/webhooks/carrier"
RECEIPT = "/webhooks/warehouse/receipt"
FINISHED = "/webhooks/warehouse/finished"


# -- signatures -----------------------------------------------------------------------------


def test_a_signed_event_is_applied(site: Site) -> None:
    answer = site.post(CARRIER, site.event("scan-1"))

    assert answer.status == 200
    assert answer.body["status"] == "applied"
    assert answer.body["return_id"] == site.return_id
    assert answer.body["state"] == ["in_transit", "on_hold"]
    stored = site.store.get(site.shop, site.return_id)
    assert stored.state == ("in_transit", "on_hold")
    assert answer.body["version"] == stored.version
    assert [(s, e) for s, e, _ in site.store.inbound(site.shop, site.return_id)] == [
        ("carrier", "scan-1")
    ]


def _forged(body: bytes) -> dict[str, object]:
    return {
        "missing": None,
        "empty": "",
        "other secret": sign(body, "not-the-secret"),
        "another body": sign(body + b" ", SECRET),
        "not base64": "%%%not-base64%%%",
        "truncated": sign(body, SECRET)[:-4],
        "hex digest": sign(body, SECRET).encode().hex(),
        "raw digest as text": base64.b64decode(sign(body, SECRET)).hex(),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "empty",
        "other secret",
        "another body",
        "not base64",
        "truncated",
        "hex digest",
        "raw digest as text",
    ],
)
def test_a_missing_or_wrong_signature_is_401_and_stores_nothing(site: Site, case: str) -> None:
    body = json.dumps(site.event("scan-1")).encode()
    before = site.snapshot()

    answer = site.post(CARRIER, body, signature=_forged(body)[case])

    assert answer.status == 401
    assert answer.body["error"] == "unauthorized"
    assert HEADER in answer.body["message"]
    assert site.snapshot() == before
    # The refused delivery did not mark the event as seen: signed properly, it applies.
    assert site.post(CARRIER, body).body["status"] == "applied"


def test_the_signature_is_checked_on_the_raw_bytes(site: Site) -> None:
    """The same JSON, re-serialised with other spacing, no longer matches its signature."""
    sent = json.dumps(site.event("scan-1")).encode()
    respaced = json.dumps(site.event("scan-1"), separators=(",", ":")).encode()
    assert json.loads(sent) == json.loads(respaced)
    before = site.snapshot()

    answer = site.post(CARRIER, respaced, signature=sign(sent, SECRET))

    assert answer.status == 401
    assert site.snapshot() == before


def test_the_signature_is_checked_before_the_body_is_parsed(site: Site) -> None:
    answer = site.post(CARRIER, b"not json at all", signature="bad")

    assert answer.status == 401  # not 400: an unsigned body is not even looked at


# -- bad payloads ---------------------------------------------------------------------------


Body = Callable[[Site], bytes]


def _raw_body(data: bytes) -> Body:
    return lambda site: data


def _json(data: Any) -> Body:
    return lambda site: json.dumps(data).encode()


def _carrier(**changes: Any) -> Body:
    """The demo return's pick-up scan with fields changed (``_DROP``: left out)."""

    def body(site: Site) -> bytes:
        event = {**site.event("scan-1"), **changes}
        return json.dumps({k: v for k, v in event.items() if v is not _DROP}).encode()

    return body


def _receipt(lines: Any) -> Body:
    def body(site: Site) -> bytes:
        event = {"shop": site.shop, "return_id": site.return_id, "event_id": "wms-1"}
        return json.dumps({**event, "lines": lines}).encode()

    return body


def _line(**fields: Any) -> dict[str, Any]:
    return {"line_id": "L1", "quantity": 1, **fields}


_DROP = object()

BAD = [
    # Not a JSON object: 400.
    pytest.param(CARRIER, _raw_body(b"{status: RTO"), 400, "body", "{status: RTO", id="not json"),
    pytest.param(
        CARRIER, _raw_body(b'{"shop": "\xff"}'), 400, "body", '{"shop": "\ufffd"}', id="not utf-8"
    ),
    pytest.param(CARRIER, _json([1, 2]), 400, "body", [1, 2], id="a list"),
    pytest.param(CARRIER, _json("RTO"), 400, "body", "RTO", id="a string"),
    pytest.param(CARRIER, _raw_body(b'{"shop": NaN}'), 400, "body", "NaN", id="NaN"),
    pytest.param(
        CARRIER,
        _raw_body(b'{"status": "DELIVERED", "status": "RTO"}'),
        400,
        "status",
        "RTO",
        id="a key twice",
    ),
    # A JSON object that is not a valid event: 422.
    pytest.param(CARRIER, _carrier(status="LOST"), 422, "status", "LOST", id="unknown status"),
    pytest.param(CARRIER, _carrier(event_id=_DROP), 422, "event_id", None, id="no event id"),
    pytest.param(CARRIER, _carrier(shop=" "), 422, "shop", " ", id="blank shop"),
    pytest.param(CARRIER, _carrier(shop=None), 422, "shop", None, id="null shop"),
    pytest.param(CARRIER, _carrier(event_id=7), 422, "event_id", 7, id="number as id"),
    pytest.param(CARRIER, _carrier(colour="red"), 422, "colour", None, id="unknown field"),
    pytest.param(
        CARRIER,
        _carrier(occurred_at="2026-01-16T10:00:00"),
        422,
        "occurred_at",
        "2026-01-16T10:00:00",
        id="time without offset",
    ),
    pytest.param(
        CARRIER, _carrier(source="warehouse"), 422, "source", "warehouse", id="another source"
    ),
    pytest.param(
        CARRIER, _carrier(return_id="ret_nope"), 422, "return_id", "ret_nope", id="no such return"
    ),
    pytest.param(RECEIPT, _receipt([]), 422, "lines", [], id="no lines"),
    pytest.param(RECEIPT, _receipt("L1"), 422, "lines", "L1", id="lines not a list"),
    pytest.param(RECEIPT, _receipt(["L1"]), 422, "lines[0]", "L1", id="a line not an object"),
    pytest.param(
        RECEIPT, _receipt([_line(quantity=0)]), 422, "lines[0].quantity", 0, id="zero units"
    ),
    pytest.param(
        RECEIPT, _receipt([_line(quantity=1.5)]), 422, "lines[0].quantity", 1.5, id="1.5 units"
    ),
    pytest.param(
        RECEIPT, _receipt([_line(quantity=True)]), 422, "lines[0].quantity", True, id="true units"
    ),
    pytest.param(
        RECEIPT, _receipt([_line(quantity="1")]), 422, "lines[0].quantity", "1", id="text units"
    ),
    pytest.param(RECEIPT, _receipt([_line(qc="meh")]), 422, "lines[0].qc", "meh", id="unknown QC"),
    # Valid as an event, refused by the return it names (the service raises): 422.
    pytest.param(
        RECEIPT, _receipt([_line(line_id="L9")]), 422, "lines[0].line_id", "L9", id="no such line"
    ),
    pytest.param(
        RECEIPT, _receipt([_line(quantity=2)]), 422, "lines[0].quantity", 2, id="too many units"
    ),
    pytest.param(
        FINISHED,
        _json({"shop": "demo-shop", "return_id": "R1"}),
        422,
        "event_id",
        None,
        id="finished without an id",
    ),
]


@pytest.mark.parametrize(("path", "body", "status", "field", "value"), BAD)
def test_a_bad_payload_names_the_field_and_value_and_stores_nothing(
    site: Site, path: str, body: Body, status: int, field: str, value: Any
) -> None:
    before = site.snapshot()

    answer = site.post(path, body(site))

    assert answer.status == status, answer.body
    assert answer.body["field"] == field
    assert answer.body["value"] == value
    assert answer.body["reason"]
    assert f"{field}=" in answer.body["message"]
    assert site.snapshot() == before
    assert site.worker.drain()
    assert site.snapshot() == before


def test_a_source_matching_the_endpoint_is_accepted(site: Site) -> None:
    answer = site.post(CARRIER, site.event("scan-1", source="carrier"))

    assert answer.body["status"] == "applied"


# -- HTTP's own answers ---------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_another_method_on_an_endpoint_is_405_with_allow(site: Site, method: str) -> None:
    answer = site.request(method, CARRIER)

    assert answer.status == 405
    assert answer.headers["Allow"] == "POST"


def test_head_on_an_endpoint_is_405_without_a_body(site: Site) -> None:
    host, port = site.running.server.server_address[:2]
    connection = http.client.HTTPConnection(str(host), port, timeout=30)
    try:
        connection.request("HEAD", CARRIER)
        response = connection.getresponse()
        assert response.status == 405
        assert response.getheader("Allow") == "POST"
        assert response.read() == b""
    finally:
        connection.close()


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("path", ["/", "/webhooks", "/webhooks/carrier/extra", "/webhooks/shop"])
def test_an_unknown_path_is_404(site: Site, method: str, path: str) -> None:
    before = site.snapshot()
    if method == "POST":
        answer = site.post(path, site.event("scan-1"))
    else:
        answer = site.request(method, path)

    assert answer.status == 404
    assert answer.body["error"] == "not_found"
    assert site.snapshot() == before


def test_a_query_string_does_not_change_the_endpoint(site: Site) -> None:
    assert site.post(CARRIER + "?attempt=2", site.event("scan-1")).status == 200


def test_a_body_over_the_limit_is_413_and_stores_nothing(site: Site) -> None:
    event = site.event("scan-1", padding="x" * MAX_BODY)
    body = json.dumps(event).encode()
    assert len(body) > MAX_BODY
    before = site.snapshot()

    answer = site.post(CARRIER, body)

    assert answer.status == 413
    assert answer.body["error"] == "too_large"
    assert site.snapshot() == before


def test_a_huge_declared_length_is_413_before_the_body_is_read(site: Site) -> None:
    host, port = site.running.server.server_address[:2]
    connection = http.client.HTTPConnection(str(host), port, timeout=30)
    try:
        connection.putrequest("POST", CARRIER)
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(10**9))
        connection.endheaders()  # and no body: the answer must not wait for one
        response = connection.getresponse()
        assert response.status == 413
    finally:
        connection.close()


def _raw(site: Site, request: bytes) -> bytes:
    """Send bytes as they are and read the whole answer."""
    host, port = site.running.server.server_address[:2]
    with socket.create_connection((str(host), port), timeout=30) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _status(answer: bytes) -> int | None:
    """The status code of a raw answer (``None`` when the server answered nothing)."""
    return int(answer.split(b" ", 2)[1]) if answer else None


def test_no_content_length_is_refused_and_stores_nothing(site: Site) -> None:
    before = site.snapshot()
    answer = _raw(site, b"POST /webhooks/carrier HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")

    # http.server asks for a length; uvicorn reads no length as an empty body: unsigned
    assert _status(answer) == (411 if site.server == "http.server" else 401)
    assert site.snapshot() == before


def test_a_chunked_body_is_411_on_http_server_and_read_under_asgi(site: Site) -> None:
    body = json.dumps(site.event("scan-1")).encode()
    request = (
        b"POST /webhooks/carrier HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        + f"{HEADER}: {sign(body, SECRET)}\r\nConnection: close\r\n\r\n".encode()
        + f"{len(body):x}\r\n".encode()
        + body
        + b"\r\n0\r\n\r\n"
    )
    before = site.snapshot()

    answer = _raw(site, request)

    if site.server == "http.server":
        assert _status(answer) == 411
        assert site.snapshot() == before
    else:  # the ASGI server frames the chunks; the signature covers the body they carry
        assert _status(answer) == 200
        assert b'"applied"' in answer


def test_a_content_length_that_is_not_a_size_is_400(site: Site) -> None:
    answer = _raw(site, b"POST /webhooks/carrier HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n")

    assert _status(answer) == 400


def test_a_body_shorter_than_announced_stores_nothing(site: Site) -> None:
    before = site.snapshot()
    body = json.dumps(site.event("scan-1")).encode()
    host, port = site.running.server.server_address[:2]
    with socket.create_connection((str(host), port), timeout=30) as sock:
        sock.sendall(
            b"POST /webhooks/carrier HTTP/1.1\r\nHost: x\r\n"
            + f"Content-Length: {len(body) + 10}\r\n{HEADER}: {sign(body, SECRET)}\r\n\r\n".encode()
            + body
        )
        sock.shutdown(socket.SHUT_WR)  # the sender hangs up before the announced end
        answer = sock.recv(65536)

    # http.server answers 400; uvicorn drops a connection whose sender left mid-body
    assert _status(answer) == (400 if site.server == "http.server" else None)
    assert site.snapshot() == before
    assert site.store.inbound(site.shop, site.return_id) == []


def test_a_body_that_is_not_json_by_its_type_is_415(site: Site) -> None:
    before = site.snapshot()

    answer = site.post(CARRIER, site.event("scan-1"), headers={"Content-Type": "text/plain"})

    assert answer.status == 415
    assert site.snapshot() == before


def test_json_with_a_charset_is_json(site: Site) -> None:
    answer = site.post(
        CARRIER, site.event("scan-1"), headers={"Content-Type": "application/json; charset=utf-8"}
    )

    assert answer.body["status"] == "applied"


# -- what the service may raise ------------------------------------------------------------


class _Refusing:
    """Stands in for the service: ``handle`` raises what it is given."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.events: list[InboundEvent] = []

    def handle(self, event: InboundEvent) -> HandleResult:
        self.events.append(event)
        raise self.error


@pytest.fixture
def refusing() -> Iterator[tuple[_Refusing, str]]:
    stand_in = _Refusing(RuntimeError("boom"))
    running = start(stand_in, SECRET, worker=False)  # type: ignore[arg-type]
    try:
        yield stand_in, running.url
    finally:
        running.stop()


def _post_to(url: str, event: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
    body = json.dumps(event).encode()
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request(
            "POST", CARRIER, body, {HEADER: sign(body, SECRET), "Content-Type": "application/json"}
        )
        response = connection.getresponse()
        return response.status, json.loads(response.read()), dict(response.getheaders())
    finally:
        connection.close()


_EVENT = {"shop": "s", "return_id": "r", "event_id": "e", "status": "DELIVERED"}


def test_a_write_that_keeps_losing_to_others_is_503_with_retry_after(
    refusing: tuple[_Refusing, str],
) -> None:
    stand_in, url = refusing
    stand_in.error = ConcurrencyConflict("r", 3, 4)

    status, body, headers = _post_to(url, _EVENT)

    assert status == 503
    assert headers["Retry-After"] == "1"
    assert body["error"] == "busy"
    assert stand_in.events == [CarrierUpdate(**_EVENT)]  # type: ignore[arg-type]


def test_an_event_the_state_refuses_is_409(refusing: tuple[_Refusing, str]) -> None:
    stand_in, url = refusing
    stand_in.error = InvalidTransition("r", ("closed", "released"), "deliver", ("reopen",))

    status, body, _ = _post_to(url, _EVENT)

    assert status == 409
    assert body["state"] == ["closed", "released"]


def test_an_unexpected_failure_is_500_without_details(
    refusing: tuple[_Refusing, str], caplog: pytest.LogCaptureFixture
) -> None:
    stand_in, url = refusing
    stand_in.error = RuntimeError("the database file is on fire")

    status, body, _ = _post_to(url, _EVENT)

    assert status == 500
    assert body == {
        "error": "internal",
        "message": "the event could not be processed; send it again",
    }
    assert "the database file is on fire" in caplog.text  # logged for the operator


@pytest.mark.parametrize("secret", ["", b"", (), ("new", "")])
def test_a_receiver_needs_a_secret(secret: Any) -> None:
    with pytest.raises(ValueError, match="secret"):
        WebhookReceiver(_Refusing(RuntimeError()), secret)


def test_while_a_secret_is_rotated_both_sign(site: Site) -> None:
    site.running.server.receiver.secrets = ("whsec-new", SECRET)
    old = json.dumps(site.event("scan-1")).encode()
    new = json.dumps(site.event("scan-2", status="DELIVERED")).encode()
    other = json.dumps(site.event("scan-3", status="RTO")).encode()

    assert site.post(CARRIER, old, signature=sign(old, SECRET)).body["status"] == "applied"
    assert site.post(CARRIER, new, signature=sign(new, "whsec-new")).body["status"] == "applied"
    assert site.post(CARRIER, other, signature=sign(other, "whsec-older")).status == 401
