"""A webhook receiver for returnflow on the standard library's ``http.server``.

Carriers and warehouses report what happened to a return by POSTing JSON to:

* ``/webhooks/carrier``             a :class:`~returnflow.CarrierUpdate` (picked up, delivered, RTO)
* ``/webhooks/warehouse/receipt``   a :class:`~returnflow.WarehouseReceipt` (units in, QC)
* ``/webhooks/warehouse/finished``  a :class:`~returnflow.WarehouseFinished`

Each body is the event in the shape :func:`returnflow.serialization.unstructure` gives it
(``source`` may be left out: the endpoint decides it). For each request the receiver

1. checks the HMAC-SHA256 signature in the ``X-Shopify-Hmac-Sha256`` header against the
   *raw* body, before parsing anything (401 when it is missing or wrong);
2. parses the body into the typed event (400 when it is not a JSON object, 422 naming the
   field and the value when the event is wrong); nothing is stored;
3. hands the event to :meth:`ReturnsService.handle`, which commits the new state, the
   effects to run and the event's id in one transaction, and answers 200 with ``applied``,
   ``parked`` (early: applied once the return can use it), ``duplicate`` (the same source
   and event id came before: nothing changes) or ``ignored``.

A :class:`Worker` thread then delivers the effects (``dispatch_pending``) and runs the timers
(``tick``); it is woken when an event was applied. The service does not deliver effects
while it answers a webhook, so a slow platform never keeps a sender waiting.

The ports here are returnflow's in-memory fakes (``returnflow.testing.FakePorts``): they
stand in for a real platform, warehouse, carrier, payment provider and mailer, and record
every call. A host passes its own adapters to :func:`build_service` instead.

Run it (it serves until Ctrl-C)::

    python examples/webhook_receiver/receiver.py --port 8000 --db returns.db

It opens a demo return and prints signed ``curl`` commands that drive it to the end.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import shlex
import signal
import sys
import threading
import typing
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, Protocol
from urllib.parse import urlsplit

import attrs

from returnflow import (
    CarrierUpdate,
    Completion,
    ConcurrencyConflict,
    Exchange,
    HandleResult,
    InboundEvent,
    InvalidPayload,
    InvalidTransition,
    Money,
    OrderLine,
    OrderSnapshot,
    Refund,
    RequestLine,
    ReturnNotFound,
    ReturnPolicy,
    ReturnRecord,
    ReturnRequest,
    ReturnsService,
    ValidationError,
    WarehouseFinished,
    WarehouseReceipt,
)
from returnflow.ports import ReturnStore
from returnflow.serialization import structure
from returnflow.stores.sqlite import SqliteStore
from returnflow.testing import FakePorts
from returnflow.webhooks import HEADER, sign, verify

__all__ = [
    "DEMO_ORDER",
    "DEMO_SHOP",
    "MAX_BODY",
    "ROUTES",
    "InboundHandler",
    "ReceiverServer",
    "Reply",
    "Route",
    "Running",
    "WebhookHandler",
    "WebhookReceiver",
    "Worker",
    "build_service",
    "demo_events",
    "json_object",
    "main",
    "open_demo_return",
    "parse_event",
    "start",
]

log = logging.getLogger("webhook_receiver")

MAX_BODY = 64 * 1024
"""Bodies above this many bytes are refused with 413 (an event is a few hundred bytes)."""

_DISCARD_LIMIT = 1024 * 1024
"""An oversized body up to this size is read and dropped so the sender sees the 413; a
larger one is not read at all and the connection is closed."""


# -- routes and replies ---------------------------------------------------------------------


@attrs.frozen
class Route:
    """An endpoint: the event type its bodies hold and the source it speaks for.

    ``source`` is half of the de-duplication key (source, event id): the endpoint decides it,
    so a sender cannot step out of its own namespace of event ids.
    """

    event_type: type[CarrierUpdate | WarehouseReceipt | WarehouseFinished]
    source: str


ROUTES: Mapping[str, Route] = {
    "/webhooks/carrier": Route(CarrierUpdate, "carrier"),
    "/webhooks/warehouse/receipt": Route(WarehouseReceipt, "warehouse"),
    "/webhooks/warehouse/finished": Route(WarehouseFinished, "warehouse"),
}


@attrs.frozen
class Reply:
    """What to answer: an HTTP status, a JSON body and extra headers."""

    status: int
    body: dict[str, Any]
    headers: tuple[tuple[str, str], ...] = ()

    def encoded(self) -> bytes:
        return json.dumps(self.body, default=repr, sort_keys=True).encode("utf-8")


def _error(status: int, error: str, message: str, **details: Any) -> Reply:
    return Reply(status, {"error": error, "message": message, **details})


def _invalid(status: int, error: ValidationError) -> Reply:
    return _error(
        status,
        type(error).__name__,
        str(error),
        field=error.field,
        value=error.value,
        reason=error.reason,
    )


class InboundHandler(Protocol):
    """What the receiver needs of the service: :meth:`ReturnsService.handle`."""

    def handle(self, event: InboundEvent) -> HandleResult: ...


# -- parsing --------------------------------------------------------------------------------


def _reject_constant(token: str) -> Any:
    raise InvalidPayload("body", token, "NaN and Infinity are not JSON numbers")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise InvalidPayload(key, value, "appears twice in one object")
        data[key] = value
    return data


def json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object: UTF-8, valid JSON, no key twice in an object, no NaN."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        sample = body[:40].decode("utf-8", "replace")
        raise InvalidPayload("body", sample, f"is not UTF-8 ({error.reason})") from None
    try:
        data = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        raise InvalidPayload("body", text[:40], f"is not JSON ({error.msg})") from None
    except RecursionError:
        raise InvalidPayload("body", text[:40], "is nested too deeply") from None
    if not isinstance(data, dict):
        raise InvalidPayload("body", data, "must be a JSON object")
    return data


_HINTS: dict[type[Any], dict[str, Any]] = {}


def _hints(cls: type[Any]) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    return hints


def _check_json_types(data: Mapping[str, Any], cls: type[Any], path: str = "") -> None:
    """Check text and whole-number fields exactly.

    The converter is lenient with scalars (it would read ``5`` as ``"5"`` and ``1.9`` or
    ``true`` as ``1``); a webhook that sends the wrong JSON type is refused instead.
    """
    hints = _hints(cls)
    for name, value in data.items():
        hint = hints.get(name)
        where = f"{path}.{name}" if path else name
        if hint is str and not isinstance(value, str):
            raise InvalidPayload(where, value, "must be a string")
        if hint is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise InvalidPayload(where, value, "must be a whole number")
        if typing.get_origin(hint) is tuple:
            if not isinstance(value, list):
                raise InvalidPayload(where, value, "must be a list")
            item_type = typing.get_args(hint)[0]
            if attrs.has(item_type):
                for index, item in enumerate(value):
                    if not isinstance(item, dict):
                        raise InvalidPayload(f"{where}[{index}]", item, "must be an object")
                    _check_json_types(item, item_type, f"{where}[{index}]")


def parse_event(route: Route, data: Mapping[str, Any]) -> InboundEvent:
    """The typed event in a JSON object; a :class:`ValidationError` names the bad field."""
    given = data.get("source", route.source)
    if given != route.source:
        raise InvalidPayload("source", given, f"this endpoint takes {route.source!r} events")
    _check_json_types(data, route.event_type)
    event: InboundEvent = structure({**data, "source": route.source}, route.event_type)
    return event


# -- the receiver (no HTTP in here: a framework handler calls it the same way) ---------------


class WebhookReceiver:
    """Signature check, parsing and :meth:`ReturnsService.handle`, behind one call.

    ``receive(path, body, signature=...)`` takes what any HTTP server or framework has at
    hand (the path, the raw body bytes, the signature header) and returns a :class:`Reply`.
    ``secret`` may be several: a signature made with any of them is accepted (while a secret
    is rotated, the new one and the old one). ``on_applied`` is called after an event was
    applied (the worker is woken with it).
    """

    def __init__(
        self,
        service: InboundHandler,
        secret: str | bytes | Sequence[str | bytes],
        *,
        max_body: int = MAX_BODY,
        on_applied: Callable[[], None] | None = None,
    ) -> None:
        keys = (secret,) if isinstance(secret, (str, bytes)) else tuple(secret)
        if not keys or not all(keys):
            raise ValueError("a webhook secret is needed to check signatures")
        self.service = service
        self.secrets = keys
        self.max_body = max_body
        self.on_applied = on_applied

    def receive(
        self,
        path: str,
        body: bytes,
        *,
        signature: str | None,
        content_type: str | None = None,
    ) -> Reply:
        route = ROUTES.get(path)
        if route is None:
            return _error(404, "not_found", f"no webhook endpoint at {path}")
        media_type = (content_type or "application/json").split(";", 1)[0].strip().lower()
        if media_type != "application/json":
            return _error(
                415, "unsupported_media_type", f"send application/json, not {content_type}"
            )
        if len(body) > self.max_body:
            return _error(413, "too_large", f"the body is over {self.max_body} bytes")
        # The signature covers the bytes as sent: check it before anything reads them.
        if not any(verify(body, signature, key) for key in self.secrets):
            return _error(401, "unauthorized", f"missing or invalid {HEADER} signature")
        try:
            data = json_object(body)
        except ValidationError as error:
            return _invalid(400, error)  # not a JSON object at all
        try:
            event = parse_event(route, data)
        except ValidationError as error:
            return _invalid(422, error)  # a JSON object, but not a valid event
        try:
            result = self.service.handle(event)
        except ValidationError as error:  # e.g. a receipt for a line the return lacks
            return _invalid(422, error)
        except ReturnNotFound as error:
            return _error(
                422,
                "ReturnNotFound",
                str(error),
                field="return_id",
                value=error.return_id,
                reason=f"no such return in shop {error.shop!r}",
            )
        except InvalidTransition as error:
            return _error(409, "InvalidTransition", str(error), state=list(error.state))
        except ConcurrencyConflict as error:
            # Other writers kept winning: nothing was stored; the sender's retry is safe.
            reply = _error(503, "busy", str(error))
            return attrs.evolve(reply, headers=(("Retry-After", "1"),))
        except Exception:
            log.exception("webhook %s %s:%s failed", path, route.source, event.event_id)
            return _error(500, "internal", "the event could not be processed; send it again")
        if result.status == "applied" and self.on_applied is not None:
            self.on_applied()
        record = result.record
        return Reply(
            200,
            {
                "status": result.status,
                "reason": result.reason,
                "return_id": record.id,
                "state": list(record.state),
                "version": record.version,
            },
        )


# -- the worker loop ------------------------------------------------------------------------


class Worker:
    """Delivers due effects and runs the timers in a background thread until stopped.

    Each round runs :meth:`ReturnsService.tick` and :meth:`ReturnsService.dispatch_pending`.
    When a round found nothing to do the worker waits ``interval`` seconds, or until
    :meth:`wake` is called. An error in a round is logged and counted; the next round runs.
    """

    def __init__(self, service: ReturnsService, *, interval: float = 1.0, batch: int = 100) -> None:
        self.service = service
        self.interval = interval
        self.batch = batch
        self.delivered = 0
        self.failed = 0
        self.given_up = 0
        self.expired = 0
        self.errors = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._rounds = threading.Condition()
        self._started = 0  # rounds begun
        self._idle = 0  # the last round that found nothing to do
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the worker was started already")
        self._thread = threading.Thread(target=self._loop, name="returnflow-worker", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Run a round now instead of at the end of the wait."""
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the current round and stop; raise if the thread is still running."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise RuntimeError(f"the worker did not stop within {timeout} s")

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run_once(self) -> bool:
        """One round; whether it did anything."""
        tick = self.service.tick()
        report = self.service.dispatch_pending(limit=self.batch)
        self.delivered += report.delivered
        self.failed += report.failed
        self.given_up += report.given_up
        self.expired += len(tick.expired)
        for error in tick.errors:  # a timer whose port failed; it runs again next round
            log.warning("timer: %s", error)
        return bool(report.delivered or report.failed or report.given_up or tick.expired)

    def drain(self, timeout: float = 30.0) -> bool:
        """Wake the worker and wait for a round that began after this call and found
        nothing due: every effect due now was delivered (or waits for its retry).
        ``False`` if that did not happen within ``timeout`` seconds."""
        with self._rounds:
            needed = self._started + 1
        self.wake()
        with self._rounds:
            return self._rounds.wait_for(lambda: self._idle >= needed, timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            with self._rounds:
                self._started += 1
                current = self._started
            try:
                busy = self.run_once()
            except Exception:
                self.errors += 1
                log.exception("worker round failed; trying again in %s s", self.interval)
                self._wake.wait(self.interval)
                continue
            if busy:
                continue
            with self._rounds:
                self._idle = current
                self._rounds.notify_all()
            self._wake.wait(self.interval)


# -- HTTP -----------------------------------------------------------------------------------


class WebhookHandler(BaseHTTPRequestHandler):
    """Turns one HTTP request into :meth:`WebhookReceiver.receive` and writes the reply."""

    server: ReceiverServer
    server_version = "returnflow-webhooks/1"
    timeout = 10  # seconds a slow or stalled sender may hold a connection

    def do_POST(self) -> None:
        receiver = self.server.receiver
        path = urlsplit(self.path).path
        if path not in ROUTES:
            self._send(_error(404, "not_found", f"no webhook endpoint at {path}"))
            return
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._send(_error(411, "length_required", "send a Content-Length, not chunks"))
            return
        declared = self.headers.get("Content-Length")
        if declared is None:
            self._send(_error(411, "length_required", "send a Content-Length"))
            return
        if not (declared.isascii() and declared.isdigit()):
            self._send(_error(400, "bad_length", f"Content-Length {declared!r} is not a size"))
            return
        length = int(declared)
        if length > receiver.max_body:
            if length <= _DISCARD_LIMIT:
                self._discard(length)
            self.close_connection = True
            self._send(_error(413, "too_large", f"the body is over {receiver.max_body} bytes"))
            return
        body = self.rfile.read(length)
        if len(body) < length:
            self._send(_error(400, "short_body", f"got {len(body)} of {length} bytes"))
            return
        self._send(
            receiver.receive(
                path,
                body,
                signature=self.headers.get(HEADER),
                content_type=self.headers.get("Content-Type"),
            )
        )

    def _not_post(self) -> None:
        path = urlsplit(self.path).path
        if path not in ROUTES:
            self._send(_error(404, "not_found", f"no webhook endpoint at {path}"))
        else:
            reply = _error(405, "method_not_allowed", f"{path} takes POST only")
            self._send(attrs.evolve(reply, headers=(("Allow", "POST"),)))

    do_GET = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _not_post

    def do_HEAD(self) -> None:
        path = urlsplit(self.path).path
        status = HTTPStatus.NOT_FOUND if path not in ROUTES else HTTPStatus.METHOD_NOT_ALLOWED
        self.send_response(status)
        if path in ROUTES:
            self.send_header("Allow", "POST")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _discard(self, length: int) -> None:
        while length > 0:
            chunk = self.rfile.read(min(length, 64 * 1024))
            if not chunk:
                return
            length -= len(chunk)

    def _send(self, reply: Reply) -> None:
        payload = reply.encoded()
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)


class ReceiverServer(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` answering on a fixed pool of threads.

    The SQLite store keeps one connection per thread that used it, so a thread per request
    would open a connection per request; a pool bounds them (and the work in flight).
    """

    daemon_threads = True
    request_queue_size = 64

    def __init__(
        self, address: tuple[str, int], receiver: WebhookReceiver, *, threads: int = 8
    ) -> None:
        self.receiver = receiver
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="webhook")
        super().__init__(address, WebhookHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        self._pool.submit(self.process_request_thread, request, client_address)

    def server_close(self) -> None:
        super().server_close()
        self._pool.shutdown(wait=True)


class Running:
    """A receiver serving in a thread, with its worker; a context manager that stops both."""

    def __init__(self, server: ReceiverServer, worker: Worker | None) -> None:
        self.server = server
        self.worker = worker
        # serve_forever looks for a stop request every poll interval: stopping takes that long.
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="webhook-server", daemon=True
        )
        self._thread.start()
        if worker is not None:
            worker.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        """Stop taking requests, finish those in flight, then stop the worker."""
        if self._thread.is_alive():
            self.server.shutdown()
            self._thread.join()
            self.server.server_close()
        if self.worker is not None:
            self.worker.stop()

    def __enter__(self) -> Running:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start(
    service: ReturnsService,
    secret: str | bytes | Sequence[str | bytes],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    worker: bool = True,
    interval: float = 1.0,
    max_body: int = MAX_BODY,
    threads: int = 8,
) -> Running:
    """Serve webhooks for ``service`` on ``host:port`` (0: a free port) in a thread, with a
    :class:`Worker` unless ``worker=False`` (effects are then left to another process, such
    as ``returnflow worker``)."""
    loop = Worker(service, interval=interval) if worker else None
    receiver = WebhookReceiver(
        service, secret, max_body=max_body, on_applied=loop.wake if loop else None
    )
    return Running(ReceiverServer((host, port), receiver, threads=threads), loop)


# -- wiring: the composition root, with fakes standing in for the platform ------------------

DEMO_SHOP = "demo-shop"
DEMO_ORDER = "1001"


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def build_service(
    store: ReturnStore,
    *,
    ports: FakePorts | None = None,
    clock: Callable[[], datetime] | None = None,
) -> ReturnsService:
    """The service on ``store``, with returnflow's fakes as ports and the demo order seeded.

    Returns complete when the warehouse reports "Finished". Effects are left to the worker
    (``auto_dispatch=False``). This is also an ``--app`` for ``returnflow worker``.
    """
    ports = ports or FakePorts()
    now = clock or _utc_now
    ordered = now() - timedelta(days=3)
    ports.commerce.add_order(
        OrderSnapshot(
            id=DEMO_ORDER,
            shop=DEMO_SHOP,
            created_at=ordered,
            fulfilled_at=ordered,  # shipped in one go
            currency="EUR",
            customer_email="ann@example.com",
            lines=[
                OrderLine(
                    id="L1",
                    sku="TEE-M",
                    variant_id="tee-m",
                    quantity=1,
                    unit_price=Money("25.00", "EUR"),
                    title="T-shirt, M",
                ),
                OrderLine(
                    id="L2",
                    sku="CAP-BLUE",
                    variant_id="cap-blue",
                    quantity=1,
                    unit_price=Money("10.00", "EUR"),
                    title="Cap, blue",
                ),
            ],
        )
    )
    return ReturnsService(
        store=store,
        commerce=ports.commerce,
        warehouse=ports.warehouse,
        carrier=ports.carrier,
        payments=ports.payments,
        notifier=ports.notifier,
        events=ports.events,
        policy=ReturnPolicy(completion=Completion.ON_WAREHOUSE_FINISHED),
        clock=now,
        auto_dispatch=False,
    )


def open_demo_return(service: ReturnsService) -> ReturnRecord:
    """The demo order's open return, opened if there is none: the T-shirt for a refund and
    the blue cap exchanged for a red one. Its label is bought before this returns."""
    for record in service.list(DEMO_SHOP, order_id=DEMO_ORDER):
        if record.status not in ("declined", "cancelled", "expired", "reset"):
            return record
    record = service.request(
        ReturnRequest(
            shop=DEMO_SHOP,
            order_id=DEMO_ORDER,
            lines=[
                RequestLine(order_line_id="L1", quantity=1, outcome=Refund()),
                RequestLine(order_line_id="L2", quantity=1, outcome=Exchange(variant_id="cap-red")),
            ],
        )
    )
    service.dispatch_pending()  # the warehouse return, the label, the exchange hold
    return service.get(DEMO_SHOP, record.id)


def demo_events(return_id: str) -> list[tuple[str, dict[str, Any]]]:
    """The webhooks that take the demo return to its end: ``(path, body)`` in order."""
    base = {"shop": DEMO_SHOP, "return_id": return_id}
    return [
        ("/webhooks/carrier", {**base, "event_id": "scan-1", "status": "RETURN_PICKED_UP"}),
        ("/webhooks/carrier", {**base, "event_id": "scan-2", "status": "DELIVERED"}),
        (
            "/webhooks/warehouse/receipt",
            {
                **base,
                "event_id": "wms-1",
                "lines": [
                    {"line_id": "L1", "quantity": 1, "qc": "pass"},
                    {"line_id": "L2", "quantity": 1, "qc": "pass"},
                ],
            },
        ),
        ("/webhooks/warehouse/finished", {**base, "event_id": "wms-2"}),
    ]


# -- the command ----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Receive carrier and warehouse webhooks for returnflow (demo ports)."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port (0: any free port)")
    parser.add_argument("--db", required=True, help="the SQLite file")
    parser.add_argument(
        "--secret",
        default=os.environ.get("RETURNFLOW_WEBHOOK_SECRET"),
        help="the shared signing secret (default: $RETURNFLOW_WEBHOOK_SECRET; "
        "without either a random one is made and printed)",
    )
    parser.add_argument(
        "--no-worker",
        action="store_true",
        help="do not deliver effects here (run `returnflow worker` in another process)",
    )
    parser.add_argument("--interval", type=float, default=1.0, help="worker poll, seconds")
    parser.add_argument("--max-body", type=int, default=MAX_BODY, help="largest body, bytes")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    secret = args.secret
    if not secret:
        secret = secrets.token_hex(16)
        print(f"no secret given; using {secret} for this run")
    store = SqliteStore(args.db)
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        service = build_service(store)
        demo = open_demo_return(service)
        running = start(
            service,
            secret,
            host=args.host,
            port=args.port,
            worker=not args.no_worker,
            interval=args.interval,
            max_body=args.max_body,
        )
        try:
            print(f"listening on {running.url}", flush=True)
            print(f"demo return {demo.id}: {'/'.join(demo.state)}; drive it with:")
            for path, event in demo_events(demo.id):
                body = json.dumps(event)
                signature = sign(body.encode(), secret)
                command = [
                    "curl", "-s", "-X", "POST", running.url + path,
                    "-H", "Content-Type: application/json",
                    "-H", f"{HEADER}: {signature}", "-d", body,
                ]  # fmt: skip
                print("  " + shlex.join(command))
            print("Ctrl-C stops.", flush=True)
            stop.wait()
        finally:
            running.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        store.close()
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
