"""The ``returnflow`` command.

* ``returnflow demo [--db PATH]`` runs every seed flow against in-process fakes, on an
  embedded SQLite file, and prints each return's timeline;
* ``returnflow worker --db PATH [--app MODULE:CALLABLE]`` delivers due effects and runs
  the timers until stopped;
* ``returnflow inspect --db PATH RETURN_ID [--json]`` prints one return's full timeline;
* ``returnflow import --since ISO --until ISO [--id EXTERNAL_ID] [--source MODULE:CALLABLE]
  [--shop SHOP] [--db PATH] [--app MODULE:CALLABLE]`` imports returns from a return source
  (by default a demo Loop), printing progress;
* ``returnflow diagram --format mermaid`` prints the statechart from the code;
* ``returnflow prune --db PATH --older-than 90d`` drops delivered effects of ended returns
  and old inbox keys (:mod:`returnflow.cli_prune`).

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
from datetime import datetime, timezone
from types import FrameType
from typing import Any, TextIO

from returnflow import cli_prune
from returnflow.errors import ReturnflowError
from returnflow.importing import ImportProgress, ImportReport, ReturnImporter
from returnflow.lifecycle.chart import ReturnChart
from returnflow.lifecycle.effects import describe
from returnflow.lifecycle.table import TABLE, shopify_status
from returnflow.ports.source import ReturnSource
from returnflow.ports.store import ReturnStore
from returnflow.serialization import unstructure
from returnflow.service import ReturnsService, TickReport
from returnflow.stores import is_postgres_url, open_store
from returnflow.stores._targets import redacted

__all__ = ["main"]


def _demo(args: argparse.Namespace, out: TextIO) -> int:
    from returnflow.demo.scenarios import SCENARIOS

    chosen = [s for s in SCENARIOS if not args.scenario or s.name in args.scenario]
    if not chosen:
        names = ", ".join(s.name for s in SCENARIOS)
        print(f"no such scenario: {', '.join(args.scenario)} (choose from {names})", file=out)
        return 2
    path = args.db or os.path.join(tempfile.mkdtemp(prefix="returnflow-demo-"), "returns.db")
    store = open_store(path)
    print(f"returnflow demo: {len(chosen)} seed flow(s) on {redacted(path)}", file=out)
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
    print(f"  returnflow inspect --db {redacted(path)} {example}", file=out)
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
    totals = {"delivered": 0, "failed": 0, "given_up": 0, "expired": 0, "imported": 0}
    try:
        while not stop:
            tick = service.tick()
            report = service.dispatch_pending(limit=args.batch)
            totals["delivered"] += report.delivered
            totals["failed"] += report.failed
            totals["given_up"] += report.given_up
            totals["expired"] += len(tick.expired)
            imported = sum(len(polled.imported) for polled in _import_reports(tick))
            totals["imported"] += imported
            busy = report.delivered + report.failed + report.given_up + len(tick.expired)
            busy += imported
            if busy:
                print(
                    f"worker: delivered {report.delivered}, failed {report.failed}, "
                    f"given up {report.given_up}, expired {len(tick.expired)}, "
                    f"imported {imported}",
                    file=out,
                    flush=True,
                )
            _print_polls(tick, out)
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


def _import_reports(tick: TickReport) -> list[ImportReport]:
    """What the importers among the registered pollers reported on a tick."""
    return [polled for polled in tick.imports if isinstance(polled, ImportReport)]


def _print_polls(tick: TickReport, out: TextIO) -> None:
    """The worker's lines for what the registered importers did on a tick."""
    for polled in _import_reports(tick):
        counts = (
            f"{len(polled.imported)} imported, {len(polled.unchanged)} unchanged, "
            f"{len(polled.cancelled)} cancelled, {len(polled.skipped)} skipped, "
            f"{len(polled.failed)} errors"
        )
        print(
            f"worker: polled {polled.source}/{polled.shop} [{polled.since.isoformat()}, "
            f"{polled.until.isoformat()}): {counts}"
            + ("" if polled.advanced else " (another poller advanced the mark)"),
            file=out,
            flush=True,
        )
        for line in polled.problems():
            print(f"worker: {line}", file=out, flush=True)


# -- returnflow import ---------------------------------------------------------------------------

_DEMO_SOURCE = "returnflow.demo.import_source:build"
_DEMO_SHOP = "demo-loop"


class _BadArgument(Exception):
    """A command-line argument that cannot be used; the message names the flag and value."""


def _when(flag: str, text: str) -> datetime:
    """An ISO 8601 date or date-time; one without an offset is UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _BadArgument(
            f"{flag} {text!r}: not an ISO 8601 date or date-time (2026-01-31, "
            "2026-01-31T12:00:00+01:00)"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _callable(flag: str, spec: str) -> Callable[..., Any]:
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise _BadArgument(f"{flag} {spec!r}: wants MODULE:CALLABLE")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise _BadArgument(f"{flag} {spec!r}: cannot import {module_name!r} ({error})") from None
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise _BadArgument(f"{flag} {spec!r}: {module_name} has no callable {attribute!r}")
    found: Callable[..., Any] = factory
    return found


class _Progress:
    """Prints a progress line every ``every`` returns or ``seconds`` seconds."""

    def __init__(self, out: TextIO, every: int, seconds: float) -> None:
        self.out = out
        self.every = every
        self.seconds = seconds
        self.count = 0
        self.at = 0.0

    def __call__(self, progress: ImportProgress) -> None:
        if progress.count - self.count < self.every and progress.elapsed - self.at < self.seconds:
            return
        self.count, self.at = progress.count, progress.elapsed
        print(
            f"progress: {progress.count} returns, {progress.imported} imported, "
            f"{progress.unchanged} unchanged, {progress.cancelled} cancelled, "
            f"{progress.skipped} skipped, {progress.errors} errors, {progress.rate:.1f}/s",
            file=self.out,
            flush=True,
        )


def _import_arguments(
    args: argparse.Namespace,
) -> tuple[datetime | None, datetime | None, ReturnSource, str]:
    since = None if args.since is None else _when("--since", args.since)
    until = None if args.until is None else _when("--until", args.until)
    if args.id is None:
        if since is None or until is None:
            raise _BadArgument("--since and --until are needed (or --id to import one return)")
        if until <= since:
            raise _BadArgument(f"--until {args.until!r}: must be after --since {args.since!r}")
    elif args.id.strip() == "":
        raise _BadArgument(f"--id {args.id!r}: must not be empty")
    if args.page_size < 1:
        raise _BadArgument(f"--page-size {args.page_size}: must be at least 1")
    if args.progress_every < 1:
        raise _BadArgument(f"--progress-every {args.progress_every}: must be at least 1")
    if args.progress_seconds < 0:
        raise _BadArgument(f"--progress-seconds {args.progress_seconds}: must not be negative")
    if args.source is not None and args.shop is None:
        raise _BadArgument(f"--source {args.source!r}: say which shop with --shop")
    source: ReturnSource = _callable("--source", args.source or _DEMO_SOURCE)()
    return since, until, source, args.shop or _DEMO_SHOP


def _import(args: argparse.Namespace, out: TextIO) -> int:
    try:
        since, until, source, shop = _import_arguments(args)
        build = _callable("--app", args.app)
    except _BadArgument as error:
        print(f"returnflow import: {error}", file=out)
        return 2
    path = args.db or os.path.join(tempfile.mkdtemp(prefix="returnflow-import-"), "returns.db")
    store = open_store(path)
    try:
        service: ReturnsService = build(store)
        importer = ReturnImporter(service, source, shop=shop, page_size=args.page_size)
        if args.id is not None:
            return _import_one(importer, args.id, out)
        assert since is not None
        assert until is not None
        print(
            f"importing {source.name} returns of shop {shop} created or updated in "
            f"[{since.isoformat()}, {until.isoformat()}) into {redacted(path)}",
            file=out,
            flush=True,
        )
        report = importer.import_range(
            since, until, progress=_Progress(out, args.progress_every, args.progress_seconds)
        )
        _print_report(report, out)
        return 0 if report.ok else 1
    finally:
        store.close()


def _import_one(importer: ReturnImporter, external_id: str, out: TextIO) -> int:
    name = importer.source.name
    try:
        result = importer.import_one(external_id)
    except ReturnflowError as error:
        print(f"error {name} {external_id}: {type(error).__name__}: {error}", file=out)
        return 1
    record = result.record
    state = "" if record is None else f" ({record.status} / {record.exchange_status})"
    reason = f": {result.reason}" if result.reason else ""
    print(
        f"{name} {external_id} -> return {result.return_id}: {result.outcome}{state}{reason}",
        file=out,
    )
    return 0


def _print_report(report: ImportReport, out: TextIO) -> None:
    print(
        f"done: {report.count} returns in {report.elapsed:.1f} s ({report.rate:.1f}/s): "
        f"{len(report.imported)} imported, {len(report.unchanged)} unchanged, "
        f"{len(report.cancelled)} cancelled, {len(report.skipped)} skipped, "
        f"{len(report.failed)} errors",
        file=out,
    )
    for failure in report.failed:
        print(f"error {failure}", file=out)
    if report.source_error is not None:
        print(
            f"source failed: {report.source_error}; returns updated from "
            f"{report.complete_until.isoformat()} on were not read (run again from there)",
            file=out,
        )


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
        default="returnflow.demo.app:build",
        help="MODULE:CALLABLE taking the store and returning the host's ReturnsService "
        "(default: the demo's fakes)",
    )
    worker.add_argument("--once", action="store_true", help="stop when nothing is due")
    worker.add_argument("--interval", type=float, default=1.0, help="seconds between polls")
    worker.add_argument("--max-seconds", type=float, default=None, help="stop after this long")
    worker.add_argument("--batch", type=int, default=100, help="effects per round")
    worker.set_defaults(run=_worker)
    importing = commands.add_parser(
        "import", help="import returns from a return source (by default a demo Loop)"
    )
    importing.add_argument("--since", help="ISO date or date-time (UTC without an offset)")
    importing.add_argument("--until", help="ISO date or date-time, not included")
    importing.add_argument("--id", help="import this one return (its id at the source)")
    importing.add_argument(
        "--source",
        help="MODULE:CALLABLE returning the ReturnSource (needs --shop; default: a demo Loop "
        "with a few hundred returns of January 2026)",
    )
    importing.add_argument("--shop", help=f"the shop to import (default: {_DEMO_SHOP})")
    importing.add_argument("--db", help="the SQLite file (default: a new temporary one)")
    importing.add_argument(
        "--app",
        default="returnflow.demo.app:build",
        help="MODULE:CALLABLE taking the store and returning the host's ReturnsService "
        "(default: the demo's fakes)",
    )
    importing.add_argument(
        "--page-size", type=int, default=100, help="returns asked of the source per page"
    )
    importing.add_argument(
        "--progress-every", type=int, default=100, help="a progress line every N returns"
    )
    importing.add_argument(
        "--progress-seconds", type=float, default=5.0, help="and at least every S seconds"
    )
    importing.set_defaults(run=_import)
    cli_prune.add_to(commands)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    args = _parser().parse_args(argv)
    stream = out if out is not None else sys.stdout
    code: int = args.run(args, stream)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
