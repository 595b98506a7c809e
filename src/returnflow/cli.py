"""The ``returnflow`` command.

* ``returnflow demo [--db PATH]`` runs every seed flow against in-process fakes, on an
  embedded SQLite file, and prints each return's timeline;
* ``returnflow worker --db PATH [--app MODULE:CALLABLE]`` delivers due effects and runs
  the timers until stopped;
* ``returnflow inspect --db PATH RETURN_ID [--json]`` prints one return's full timeline;
* ``returnflow diagram --format mermaid`` prints the statechart from the code.

``--db`` is a SQLite file or a ``postgresql://`` URL (the ``returnflow[postgres]`` extra).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any, TextIO

from returnflow.lifecycle.chart import ReturnChart
from returnflow.lifecycle.effects import describe
from returnflow.lifecycle.table import TABLE, shopify_status
from returnflow.ports.store import ReturnStore
from returnflow.serialization import unstructure
from returnflow.service import ReturnsService
from returnflow.stores import is_postgres_url, open_store

__all__ = ["main"]


def _demo(args: argparse.Namespace, out: TextIO) -> int:
    from returnflow._scenarios import SCENARIOS

    chosen = [s for s in SCENARIOS if not args.scenario or s.name in args.scenario]
    if not chosen:
        names = ", ".join(s.name for s in SCENARIOS)
        print(f"no such scenario: {', '.join(args.scenario)} (choose from {names})", file=out)
        return 2
    path = args.db or os.path.join(tempfile.mkdtemp(prefix="returnflow-demo-"), "returns.db")
    store = open_store(path)
    print(f"returnflow demo: {len(chosen)} seed flow(s) on {path}", file=out)
    try:
        for scenario in chosen:
            shop = f"demo-{scenario.name}"
            harness, return_ids = scenario.run(shop, store)
            print(f"\n=== {scenario.title} [{scenario.name}]", file=out)
            for return_id in return_ids:
                print(harness.service.render_timeline(shop, return_id), file=out)
            calls = [
                f"{fake.port}.{call.operation}"
                for fake in (
                    harness.ports.commerce,
                    harness.ports.warehouse,
                    harness.ports.carrier,
                    harness.ports.payments,
                )
                for call in fake.calls
                if call.idempotency_key is not None
            ]
            print(f"    port calls: {', '.join(calls) or 'none'}", file=out)
            print(f"    published: {', '.join(harness.ports.events.topics())}", file=out)
    finally:
        store.close()
    example = f"--shop demo-{chosen[-1].name} {return_ids[0]}"
    print(f"\n{len(chosen)} scenario(s) ran; inspect one with:", file=out)
    print(f"  returnflow inspect --db {path} {example}", file=out)
    return 0


def _diagram(args: argparse.Namespace, out: TextIO) -> int:
    if args.format == "mermaid":
        print(f"{ReturnChart:mermaid}", file=out)
    else:
        for state in TABLE.lifecycle_states:
            for event, target in sorted(TABLE.lifecycle[state].items()):
                print(f"lifecycle {state} --{event}--> {target}", file=out)
        for state in TABLE.exchange_states:
            for event, target in sorted(TABLE.exchange[state].items()):
                print(f"exchange  {state} --{event}--> {target}", file=out)
    return 0


def _inspect(args: argparse.Namespace, out: TextIO) -> int:
    if not is_postgres_url(args.db) and not os.path.exists(args.db):
        print(f"no database at {args.db}", file=out)
        return 2
    store = open_store(args.db)
    try:
        shops = [args.shop] if args.shop else store.shops_with(args.return_id)
        if len(shops) != 1:
            found = "no shop" if not shops else f"shops {', '.join(shops)} (pass --shop)"
            print(f"return {args.return_id}: found in {found}", file=out)
            return 2
        shop = shops[0]
        record = store.get(shop, args.return_id)
        outbox = store.outbox(shop, args.return_id)
        inbound = store.inbound(shop, args.return_id)
        if args.json:
            document = {
                "return": unstructure(record),
                "shopify_status": shopify_status(record.status).value,
                "allowed_events": list(TABLE.allowed(record.state)),
                "effects": [
                    {
                        "key": entry.effect.key,
                        "description": describe(entry.effect),
                        "effect": unstructure(entry.effect),
                        "status": entry.status,
                        "attempts": entry.attempts,
                        "last_error": entry.last_error,
                        "result": entry.result,
                        "next_attempt_at": unstructure(entry.next_attempt_at),
                    }
                    for entry in outbox
                ],
                "inbound": [
                    {"source": source, "event_id": event_id, "at": at.isoformat()}
                    for source, event_id, at in inbound
                ],
            }
            print(json.dumps(document, indent=2, sort_keys=True, default=str), file=out)
            return 0
        service = ReturnsService(
            store=store,
            commerce=_Unused(),
            warehouse=_Unused(),
            carrier=_Unused(),
            payments=_Unused(),
            notifier=_Unused(),
            events=_Unused(),
        )
        print(service.render_timeline(shop, args.return_id), file=out)
        print(f"allowed events: {', '.join(TABLE.allowed(record.state)) or 'none'}", file=out)
        print(f"inbound events: {len(inbound)}", file=out)
        for source, event_id, at in inbound:
            print(f"  {at.isoformat()}  {source}:{event_id}", file=out)
        return 0
    finally:
        store.close()


class _Unused:
    """Stands in for ports where only reads happen (inspect); any call is a defect."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"inspect does not call ports ({name})")


def _load_app(spec: str) -> Callable[[ReturnStore], ReturnsService]:
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise SystemExit(f"--app wants MODULE:CALLABLE, got {spec!r}")
    factory = getattr(importlib.import_module(module_name), attribute)
    if not callable(factory):
        raise SystemExit(f"--app {spec}: not callable")
    app: Callable[[ReturnStore], ReturnsService] = factory
    return app


def _worker(args: argparse.Namespace, out: TextIO) -> int:
    store = open_store(args.db)
    service = _load_app(args.app)(store)
    stop = False

    def request_stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    started = time.monotonic()
    totals = {"delivered": 0, "failed": 0, "given_up": 0, "expired": 0}
    try:
        while not stop:
            tick = service.tick()
            report = service.dispatch_pending(limit=args.batch)
            totals["delivered"] += report.delivered
            totals["failed"] += report.failed
            totals["given_up"] += report.given_up
            totals["expired"] += len(tick.expired)
            busy = report.delivered + report.failed + report.given_up + len(tick.expired)
            if busy:
                print(
                    f"worker: delivered {report.delivered}, failed {report.failed}, "
                    f"given up {report.given_up}, expired {len(tick.expired)}",
                    file=out,
                    flush=True,
                )
            if args.once and not busy:
                break
            if args.max_seconds is not None and time.monotonic() - started >= args.max_seconds:
                break
            if not busy:
                time.sleep(args.interval)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        store.close()
    print(
        "worker stopped: "
        + ", ".join(f"{name.replace('_', ' ')} {count}" for name, count in totals.items()),
        file=out,
    )
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="returnflow", description="Returns and exchanges as an explicit state machine."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run every seed flow against fakes on SQLite")
    demo.add_argument("scenario", nargs="*", help="run only these scenarios")
    demo.add_argument(
        "--db", help="a SQLite file or a postgresql:// URL (default: a new temporary file)"
    )
    demo.set_defaults(run=_demo)
    diagram = commands.add_parser("diagram", help="print the statechart")
    diagram.add_argument("--format", choices=["mermaid", "table"], default="mermaid")
    diagram.set_defaults(run=_diagram)
    inspect = commands.add_parser("inspect", help="print one return's timeline")
    inspect.add_argument("--db", required=True, help="a SQLite file or a postgresql:// URL")
    inspect.add_argument("--shop", help="the shop (needed when several have this id)")
    inspect.add_argument("--json", action="store_true", help="print JSON")
    inspect.add_argument("return_id")
    inspect.set_defaults(run=_inspect)
    worker = commands.add_parser("worker", help="deliver effects and run timers")
    worker.add_argument("--db", required=True, help="a SQLite file or a postgresql:// URL")
    worker.add_argument(
        "--app",
        default="returnflow._demo_app:build",
        help="MODULE:CALLABLE taking the store and returning the host's ReturnsService "
        "(default: the demo's fakes)",
    )
    worker.add_argument("--once", action="store_true", help="stop when nothing is due")
    worker.add_argument("--interval", type=float, default=1.0, help="seconds between polls")
    worker.add_argument("--max-seconds", type=float, default=None, help="stop after this long")
    worker.add_argument("--batch", type=int, default=100, help="effects per round")
    worker.set_defaults(run=_worker)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    args = _parser().parse_args(argv)
    stream = out if out is not None else sys.stdout
    code: int = args.run(args, stream)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
