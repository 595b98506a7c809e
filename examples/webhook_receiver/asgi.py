"""The same webhook receiver as an ASGI application (Starlette), served by uvicorn.

:class:`receiver.WebhookReceiver` does the work that does not depend on a server (the
signature check on the raw body, parsing, :meth:`ReturnsService.handle`, the typed 4xx
answers); this module puts it behind Starlette, for hosts whose web stack is ASGI (Starlette,
FastAPI). The body is read as the client sends it, without blocking the event loop, and at
most ``max_body`` bytes of it; the service is called on Starlette's thread pool, so a slow
client or a slow commit never holds up another request.

Run it (it serves until Ctrl-C)::

    python examples/webhook_receiver/asgi.py --port 8000 --db returns.db

Or mount :func:`create_app`'s application in a host's own ASGI app (``Mount``), or hand it to
any ASGI server.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import attrs
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parent))

from receiver import (
    MAX_BODY,
    ROUTES,
    Reply,
    WebhookReceiver,
    Worker,
    _error,
    build_service,
    demo_events,
    open_demo_return,
)

from returnflow import ReturnsService
from returnflow.webhooks import HEADER

__all__ = ["AsgiRunning", "create_app", "start_asgi"]

_METHODS = ["GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _response(reply: Reply, *, head: bool = False) -> Response:
    return Response(
        b"" if head else reply.encoded(),
        status_code=reply.status,
        media_type="application/json",
        headers=dict(reply.headers),
    )


def create_app(receiver: WebhookReceiver) -> Starlette:
    """An ASGI application answering the receiver's endpoints (``ROUTES``): POST goes to
    :meth:`WebhookReceiver.receive`; other methods are 405 with ``Allow: POST``; other paths
    404, all with the receiver's JSON bodies."""

    async def webhook(request: Request) -> Response:
        path = request.url.path
        declared = request.headers.get("content-length")
        if declared is not None and not (declared.isascii() and declared.isdigit()):
            return _response(
                _error(400, "bad_length", f"Content-Length {declared!r} is not a size")
            )
        if declared is not None and int(declared) > receiver.max_body:
            too_large = _error(413, "too_large", f"the body is over {receiver.max_body} bytes")
            return _response(attrs.evolve(too_large, headers=(("Connection", "close"),)))
        body = bytearray()
        try:
            async for chunk in request.stream():
                body += chunk
                if len(body) > receiver.max_body:
                    return _response(
                        _error(413, "too_large", f"the body is over {receiver.max_body} bytes")
                    )
        except ClientDisconnect:
            return _response(_error(400, "short_body", "the client left before the body ended"))
        reply = await run_in_threadpool(
            receiver.receive,
            path,
            bytes(body),
            signature=request.headers.get(HEADER),
            content_type=request.headers.get("content-type"),
        )
        return _response(reply)

    async def other_method(request: Request) -> Response:
        path = request.url.path
        reply = _error(405, "method_not_allowed", f"{path} takes POST only")
        reply = attrs.evolve(reply, headers=(("Allow", "POST"),))
        return _response(reply, head=request.method == "HEAD")

    async def not_found(request: Request, error: Exception) -> Response:
        reply = _error(404, "not_found", f"no webhook endpoint at {request.url.path}")
        return _response(reply, head=request.method == "HEAD")

    routes = [
        route
        for path in ROUTES
        for route in (
            Route(path, webhook, methods=["POST"]),
            Route(path, other_method, methods=_METHODS),
        )
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: not_found})


class _Server(uvicorn.Server):
    """uvicorn in a thread of its own: no signal handlers (they belong to the main thread)."""

    def install_signal_handlers(self) -> None:  # uvicorn before 0.29
        pass


@attrs.frozen
class _Address:
    """What the tests read of a running server: its address and its receiver."""

    server_address: tuple[str, int]
    receiver: WebhookReceiver


class AsgiRunning:
    """The ASGI receiver serving under uvicorn in a thread, with its worker; a context
    manager that stops both (like :class:`receiver.Running`)."""

    def __init__(self, receiver: WebhookReceiver, worker: Worker | None, host: str) -> None:
        self.worker = worker
        config = uvicorn.Config(
            create_app(receiver),
            host=host,
            port=0,
            log_level="warning",
            lifespan="off",
            timeout_keep_alive=5,
        )
        self._server = _Server(config)
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._server.serve()), name="asgi-server", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the ASGI server did not start")
            time.sleep(0.01)
        socket = self._server.servers[0].sockets[0]
        bound = socket.getsockname()
        self.server = _Address((str(bound[0]), int(bound[1])), receiver)
        if worker is not None:
            worker.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address
        return f"http://{host}:{port}"

    def stop(self) -> None:
        """Stop taking requests, finish those in flight, then stop the worker."""
        if self._thread.is_alive():
            self._server.should_exit = True
            self._thread.join(timeout=30)
        if self.worker is not None:
            self.worker.stop()

    def __enter__(self) -> AsgiRunning:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_asgi(
    service: ReturnsService,
    secret: str | bytes | Sequence[str | bytes],
    *,
    host: str = "127.0.0.1",
    worker: bool = True,
    interval: float = 1.0,
    max_body: int = MAX_BODY,
) -> AsgiRunning:
    """Serve webhooks for ``service`` on a free port of ``host`` under uvicorn, in a thread,
    with a :class:`receiver.Worker` unless ``worker=False``."""
    loop = Worker(service, interval=interval) if worker else None
    receiver = WebhookReceiver(
        service, secret, max_body=max_body, on_applied=loop.wake if loop else None
    )
    return AsgiRunning(receiver, loop, host)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--db", default="returns.db", help="the SQLite file of the returns")
    parser.add_argument("--secret", default="whsec-demo", help="the webhooks' signing secret")
    args = parser.parse_args(argv)
    from returnflow.stores.sqlite import SqliteStore

    service = build_service(SqliteStore(args.db))
    demo = open_demo_return(service)
    loop = Worker(service)
    receiver = WebhookReceiver(service, args.secret, on_applied=loop.wake)
    print(f"demo return {demo.id}; events to send: {[path for path, _ in demo_events(demo.id)]}")
    loop.start()
    try:
        uvicorn.run(create_app(receiver), host=args.host, port=args.port, log_level="info")
    finally:
        loop.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
