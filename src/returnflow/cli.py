"""The ``returnflow`` command.

* ``returnflow demo [--db PATH]`` runs every seed flow against in-process fakes, on an
  embedded SQLite file, and prints each return's timeline;
* ``returnflow worker --db PATH --app MODULE:CALLABLE`` delivers due effects and runs the
  timers until stopped (``--demo`` instead of ``--app``: to the demo's fakes);
* ``returnflow inspect --db PATH RETURN_ID [--json]`` prints one return's full timeline; it
  opens the database read-only and never migrates it;
* ``returnflow import --since ISO --until ISO [--id EXTERNAL_ID] --source MODULE:CALLABLE
  --shop SHOP --db PATH --app MODULE:CALLABLE`` imports returns from a return source,
  with progress on stderr (``--demo``: a demo Loop, the demo's fakes and a new file for
  what is not given);
* ``returnflow diagram [--format svg|png|dot|mermaid|table] [--output FILE]`` draws the
  statechart from the code (svg and png need the ``returnflow[diagram]`` extra and Graphviz,
  dot the extra).
* ``returnflow prune --db PATH --older-than 90d`` drops delivered effects of ended returns
  and old inbox keys (:mod:`returnflow.cli_prune`).

``--db`` is a SQLite file or a ``postgresql://`` URL (the ``returnflow[postgres]`` extra).
Results go to stdout; progress and errors to stderr, each error one line. Exit codes: 0
done, 1 failed while running, 2 the command line cannot be used as given (see
:mod:`returnflow._cli_support`).
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from types import FrameType
from typing import Any, TextIO

from returnflow import __version__, cli_prune
from returnflow._cli_support import (
    BadArgument,
    OneLineParser,
    Progress,
    at_least,
    loaded,
    one_line,
    run_command,
    seconds,
)
from returnflow.domain._time import instant, parse_iso
from returnflow.errors import ReturnflowError, ReturnNotFound, StoreError, ValidationError
from returnflow.importing import ImportReport, ReturnImporter
from returnflow.lifecycle import diagram
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
        raise BadArgument(f"no such scenario: {', '.join(args.scenario)} (choose from {names})")
    path = args.db or os.path.join(tempfile.mkdtemp(prefix="returnflow-demo-"), "returns.db")
    store = open_store(path)
    print(f"returnflow demo: {len(chosen)} seed flow(s) on {redacted(path)}", file=out)
    try:
        for scenario in chosen:
            shop = f"demo-{scenario.name}"
            harness, return_ids = scenario.run(shop, store)
            print(f"\n=== {scenario.title} [{scenario.name}]", file=out)
            for shown in return_ids:
                in_shop, return_id = shown if isinstance(shown, tuple) else (shop, shown)
                print(harness.service.render_timeline(in_shop, return_id), file=out)
            calls = [
                f"{fake.port}.{call.operation}"
                for fake in (
                    harness.ports.commerce,
                    harness.ports.warehouse,
                    harness.ports.carrier,
                    harness.ports.payments,
                    *((harness.platform_returns,) if harness.platform_returns else ()),
                )
                for call in fake.calls
                if call.idempotency_key is not None
            ]
            print(f"    port calls: {', '.join(calls) or 'none'}", file=out)
            print(f"    published: {', '.join(harness.ports.events.topics())}", file=out)
    finally:
        store.close()
    first = return_ids[0]
    example = (
        f"--shop {first[0]} {first[1]}"
        if isinstance(first, tuple)
        else f"--shop demo-{chosen[-1].name} {first}"
    )
    print(f"\n{len(chosen)} scenario(s) ran; inspect one with:", file=out)
    print(f"  returnflow inspect --db {redacted(path)} {example}", file=out)
    return 0


def _diagram(args: argparse.Namespace, out: TextIO) -> int:
    if args.format in diagram.FORMATS:
        try:
            drawn = diagram.render(args.format)
        except ReturnflowError as error:
            raise BadArgument(str(error)) from None  # names the format and what it needs
        if args.output:
            try:
                with open(args.output, "wb") as file:
                    file.write(drawn.encode("utf-8") if isinstance(drawn, str) else drawn)
            except OSError as error:
                raise BadArgument(f"cannot write {args.output}: {error}") from None
        elif isinstance(drawn, bytes):
            if not hasattr(out, "buffer"):
                raise BadArgument("--format png is binary: pass --output FILE")
            out.flush()
            out.buffer.write(drawn)
        else:
            print(drawn.rstrip("\n"), file=out)
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
        raise BadArgument(f"--db {args.db!r}: no database there")
    store = open_store(args.db, read_only=True)  # reads only: never migrates nor writes
    try:
        shops = [args.shop] if args.shop else store.shops_with(args.return_id)
        if len(shops) != 1:
            found = "no shop" if not shops else f"shops {', '.join(shops)} (pass --shop)"
            raise BadArgument(f"return {args.return_id}: found in {found}")
        shop = shops[0]
        try:
            record = store.get(shop, args.return_id)
        except ReturnNotFound:
            elsewhere = ", ".join(store.shops_with(args.return_id)) or "no shop"
            raise BadArgument(
                f"--shop {shop!r}: has no return {args.return_id!r} (found in {elsewhere})"
            ) from None
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


def _app(args: argparse.Namespace) -> tuple[str, Callable[[ReturnStore], ReturnsService]]:
    """The host's composition root ``--app`` names, or the demo's with ``--demo``; never the
    demo's fakes by default: effects delivered to them never reach a real system."""
    if args.app is None:
        if not args.demo:
            raise BadArgument(
                "--app is needed: MODULE:CALLABLE taking the store and returning your "
                "ReturnsService (or --demo, to use the demo's fakes)"
            )
        return _DEMO_APP, _callable("--app", _DEMO_APP)
    return args.app, _callable("--app", args.app)


def _service(spec: str, build: Callable[..., Any], store: ReturnStore) -> ReturnsService:
    service = loaded("--app", spec, build, store)
    if not isinstance(service, ReturnsService):
        raise BadArgument(
            f"--app {spec!r}: returned {type(service).__name__}, not a ReturnsService"
        )
    return service


def _worker(args: argparse.Namespace, out: TextIO) -> int:
    spec, build = _app(args)
    store = open_store(args.db)
    try:
        service = _service(spec, build, store)
    except BaseException:
        store.close()
        raise
    stop = False

    def request_stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    started = time.monotonic()
    totals = {"delivered": 0, "failed": 0, "given_up": 0, "expired": 0, "imported": 0}
    try:
        while not stop:
            try:
                tick = service.tick()
                report = service.dispatch_pending(limit=args.batch)
            except StoreError as error:
                if not error.retryable or args.once:
                    raise
                # a lock held too long, a server restarting: the next round tries again
                print(f"worker: {type(error).__name__}: {one_line(str(error))}", file=args.err)
                time.sleep(args.interval)
                continue
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
            _print_polls(tick, out, args.err, verbose=args.verbose)
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


def _print_polls(tick: TickReport, out: TextIO, err: TextIO, *, verbose: bool = False) -> None:
    """The worker's lines for what the registered importers did on a tick, on ``out``; on
    ``err`` one per error of the tick (a return a poll could not import, a timer that could
    not run, a return that cannot be read) and, ``verbose``, one per return skipped."""
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
        if verbose:
            for external_id, reason in polled.why_skipped:
                print(f"worker: skipped {external_id}: {one_line(reason)}", file=err)
    for line in tick.errors:
        print(f"worker: {one_line(line)}", file=err, flush=True)


# -- returnflow import ---------------------------------------------------------------------------

_DEMO_SOURCE = "returnflow.demo.import_source:build"
_DEMO_SHOP = "demo-loop"
_DEMO_APP = "returnflow.demo.app:build"

_BadArgument = BadArgument


def _when(flag: str, text: str) -> datetime:
    """An ISO 8601 date or date-time (``Z`` for UTC); one without an offset is UTC."""
    try:
        moment = parse_iso(text)
    except ValueError:
        raise _BadArgument(
            f"{flag} {text!r}: not an ISO 8601 date or date-time (2026-01-31, "
            "2026-01-31T12:00:00+01:00)"
        ) from None
    moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)
    try:  # within the instants every store keeps, checked before any file is opened
        instant(flag, moment)
    except ValidationError as refused:
        raise _BadArgument(f"{flag} {text!r}: {refused.reason}") from None
    return moment


def _callable(flag: str, spec: str) -> Callable[..., Any]:
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise _BadArgument(f"{flag} {spec!r}: wants MODULE:CALLABLE")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise _BadArgument(f"{flag} {spec!r}: cannot import {module_name!r} ({error})") from None
    except Exception as error:  # the host's module fails as it is imported
        raise _BadArgument(
            f"{flag} {spec!r}: importing {module_name!r} failed: {type(error).__name__}: {error}"
        ) from None
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise _BadArgument(f"{flag} {spec!r}: {module_name} has no callable {attribute!r}")
    found: Callable[..., Any] = factory
    return found


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
    if not math.isfinite(args.progress_seconds):  # nan, inf: no time between lines
        raise _BadArgument(f"--progress-seconds {args.progress_seconds}: must be a finite number")
    if args.progress_seconds < 0:
        raise _BadArgument(f"--progress-seconds {args.progress_seconds}: must not be negative")
    if args.source is not None and args.shop is None:
        raise _BadArgument(f"--source {args.source!r}: say which shop with --shop")
    if not args.demo:
        missing = [flag for flag in ("source", "db") if getattr(args, flag) is None]
        if missing:
            flags = " and ".join(f"--{flag}" for flag in missing)
            raise _BadArgument(
                f"{flags} needed: your source and database (or --demo, to import the demo "
                "Loop's returns into a new file)"
            )
    spec = args.source or _DEMO_SOURCE
    source: ReturnSource = loaded("--source", spec, _callable("--source", spec))
    return since, until, source, args.shop or _DEMO_SHOP


def _total(source: ReturnSource, shop: str, since: datetime, until: datetime) -> int | None:
    """How many returns the range holds, when the source can say (else ``None``)."""
    count = getattr(source, "count_returns", None)
    if not callable(count):
        return None
    try:
        total = count(shop, since, until)
    except ReturnflowError:
        return None  # the listing itself will say what is wrong
    return total if isinstance(total, int) and total >= 0 else None


def _import(args: argparse.Namespace, out: TextIO) -> int:
    since, until, source, shop = _import_arguments(args)
    spec, build = _app(args)
    path = args.db or os.path.join(tempfile.mkdtemp(prefix="returnflow-import-"), "returns.db")
    store = open_store(path)
    try:
        service = _service(spec, build, store)
        importer = ReturnImporter(service, source, shop=shop, page_size=args.page_size)
        if args.id is not None:
            return _import_one(importer, args.id, out, args.err)
        assert since is not None
        assert until is not None
        total = _total(source, shop, since, until)
        print(
            f"importing {'' if total is None else f'{total} '}{source.name} returns of shop "
            f"{shop} created or updated in [{since.isoformat()}, {until.isoformat()}) into "
            f"{redacted(path)}",
            file=args.err,
            flush=True,
        )
        progress = Progress(args.err, args.progress_every, args.progress_seconds, total)
        report = importer.import_range(since, until, progress=progress)
        _print_report(report, out, args.err, verbose=args.verbose)
        return 0 if report.ok else 1
    finally:
        store.close()


def _import_one(importer: ReturnImporter, external_id: str, out: TextIO, err: TextIO) -> int:
    name = importer.source.name
    try:
        result = importer.import_one(external_id)
    except ReturnflowError as error:
        print(
            f"error {name} {external_id}: {type(error).__name__}: {one_line(str(error))}", file=err
        )
        return 1
    record = result.record
    state = "" if record is None else f" ({record.status} / {record.exchange_status})"
    reason = f": {result.reason}" if result.reason else ""
    print(
        f"{name} {external_id} -> return {result.return_id}: {result.outcome}{state}{reason}",
        file=out,
    )
    return 0


def _print_report(report: ImportReport, out: TextIO, err: TextIO, *, verbose: bool) -> None:
    """The summary on ``out``; a line per failed return (and, ``verbose``, per skipped
    return, with the reason) and the source's failure on ``err``."""
    print(
        f"done: {report.count} returns in {report.elapsed:.1f} s ({report.rate:.1f}/s): "
        f"{len(report.imported)} imported, {len(report.unchanged)} unchanged, "
        f"{len(report.cancelled)} cancelled, {len(report.skipped)} skipped, "
        f"{len(report.failed)} errors",
        file=out,
    )
    for failure in report.failed:
        print(f"error {one_line(str(failure))}", file=err)
    if verbose:
        for external_id, reason in report.why_skipped:
            print(f"skipped {external_id}: {one_line(reason)}", file=err)
    if report.source_error is not None:
        print(
            f"source failed: {one_line(str(report.source_error))}; returns updated from "
            f"{report.complete_until.isoformat()} on were not read (run again from there)",
            file=err,
        )


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="returnflow",
        description="Returns and exchanges as an explicit state machine.",
        epilog="Exit codes: 0 done, 1 failed while running, 2 the command line cannot be used "
        "as given. Results go to stdout; progress and errors (one line each) to stderr.",
    )
    parser.add_argument("--version", action="version", version=f"returnflow {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run every seed flow against fakes on SQLite")
    demo.add_argument("scenario", nargs="*", help="run only these scenarios")
    demo.add_argument(
        "--db", help="a SQLite file or a postgresql:// URL (default: a new temporary file)"
    )
    demo.set_defaults(run=_demo)
    drawing = commands.add_parser("diagram", help="draw the statechart")
    drawing.add_argument(
        "--format",
        choices=[*diagram.FORMATS, "table"],
        default="mermaid",
        help="svg or png (needs the diagram extra and Graphviz), dot (the diagram extra), "
        "mermaid, or a table of transitions",
    )
    drawing.add_argument("--output", "-o", help="write to this file instead of stdout")
    drawing.set_defaults(run=_diagram)
    inspect = commands.add_parser("inspect", help="print one return's timeline")
    inspect.add_argument("--db", required=True, help="a SQLite file or a postgresql:// URL")
    inspect.add_argument("--shop", help="the shop (needed when several have this id)")
    inspect.add_argument("--json", action="store_true", help="print JSON")
    inspect.add_argument("return_id")
    inspect.set_defaults(run=_inspect)
    worker = commands.add_parser("worker", help="deliver effects and run timers")
    worker.add_argument("--db", required=True, help="a SQLite file or a postgresql:// URL")
    worker.add_argument(
        "--app", help="MODULE:CALLABLE taking the store and returning your ReturnsService"
    )
    worker.add_argument(
        "--demo", action="store_true", help="without --app: deliver to the demo's fakes"
    )
    worker.add_argument("--once", action="store_true", help="stop when nothing is due")
    worker.add_argument(
        "--interval", type=seconds(zero=True), default=1.0, help="seconds between idle polls (>= 0)"
    )
    worker.add_argument(
        "--max-seconds", type=seconds(zero=True), default=None, help="stop after this long"
    )
    worker.add_argument("--batch", type=at_least(1), default=100, help="effects per round (>= 1)")
    worker.add_argument(
        "--verbose", action="store_true", help="list each return a poll skipped, and why"
    )
    worker.set_defaults(run=_worker)
    importing = commands.add_parser(
        "import", help="import returns from a return source (--demo: a demo Loop)"
    )
    importing.add_argument("--since", help="ISO date or date-time (UTC without an offset)")
    importing.add_argument("--until", help="ISO date or date-time, not included")
    importing.add_argument("--id", help="import this one return (its id at the source)")
    importing.add_argument(
        "--source",
        help="MODULE:CALLABLE returning the ReturnSource (needs --shop; with --demo and "
        "without it: a demo Loop with a few hundred returns of January 2026)",
    )
    importing.add_argument("--shop", help=f"the shop to import (--demo: {_DEMO_SHOP})")
    importing.add_argument(
        "--db", help="a SQLite file or a postgresql:// URL (--demo: a new temporary file)"
    )
    importing.add_argument(
        "--app", help="MODULE:CALLABLE taking the store and returning your ReturnsService"
    )
    importing.add_argument(
        "--demo",
        action="store_true",
        help="use the demo's source, shop, app and a new file for what is not given",
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
    importing.add_argument(
        "--verbose", action="store_true", help="list each return skipped, and why"
    )
    importing.set_defaults(run=_import)
    cli_prune.add_to(commands)
    return parser


def main(
    argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run the command ``argv`` (by default the process's arguments); results to ``out``,
    progress and errors to ``err`` (stdout and stderr by default); the exit code."""
    return run_command(
        _parser(),
        argv,
        out if out is not None else sys.stdout,
        err if err is not None else sys.stderr,
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
