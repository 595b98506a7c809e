"""``returnflow prune``: drop delivered effects of ended returns and old inbox keys
(:mod:`returnflow.retention`).

``returnflow prune --db PATH --older-than 90d [--inbox-older-than 400d]`` prints what it
dropped; it exits 0 when done, 1 when the store failed (one line on stderr), 2 for a bad
argument.
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from typing import Any, TextIO

from returnflow import retention
from returnflow.errors import ReturnflowError
from returnflow.stores import open_store
from returnflow.stores._targets import redacted

__all__ = ["add_to"]


def _age(field: str) -> Any:
    def parse(text: str) -> Any:
        try:
            return retention.age(text, field=field)
        except ReturnflowError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse


def _prune(args: argparse.Namespace, out: TextIO) -> int:
    try:
        store = open_store(args.db)
        try:
            pruned = retention.prune(
                store, older_than=args.older_than, inbox_older_than=args.inbox_older_than
            )
        finally:
            store.close()
    except ReturnflowError as error:
        print(f"returnflow prune: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(
        f"pruned {redacted(args.db)}: {pruned.outbox} delivered effects of returns ended "
        f"more than {_span(args.older_than)} ago, {pruned.inbox} inbox keys older than "
        f"{_span(args.inbox_older_than)}",
        file=out,
    )
    return 0


def _span(span: timedelta) -> str:
    hours = int(span.total_seconds()) // 3600
    return f"{hours // 24} days" if hours % 24 == 0 else f"{hours} hours"


def add_to(commands: Any) -> None:
    """Add the ``prune`` subcommand to ``commands`` (argparse's subparsers)."""
    prune = commands.add_parser(
        "prune", help="drop delivered effects of ended returns and old inbox keys"
    )
    prune.add_argument("--db", required=True, help="a SQLite file or a postgresql:// URL")
    prune.add_argument(
        "--older-than",
        required=True,
        type=_age("--older-than"),
        help="delivered effects of returns ended longer ago than this: 90d, 36h, 2w",
    )
    prune.add_argument(
        "--inbox-older-than",
        type=_age("--inbox-older-than"),
        default=retention.INBOX_WINDOW,
        help="inbox keys (redelivered events are refused while kept) older than this "
        f"(default: {retention.INBOX_WINDOW.days}d, far longer than senders redeliver)",
    )
    prune.set_defaults(run=_prune)
