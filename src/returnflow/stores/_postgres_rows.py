"""How :class:`~returnflow.stores.postgres.PostgresStore` reads and writes rows: its SQL
statements, a return's row and its history rows (JSON kept as ``text``), an outbox row and a
delivery attempt, and the values a text column refuses (NUL characters)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from returnflow import _bodies
from returnflow.domain.model import HistoryEntry, ReturnRecord
from returnflow.errors import ValidationError
from returnflow.lifecycle.effects import Effect
from returnflow.ports.store import Attempt, OutboxEntry, check_count_args
from returnflow.stores._outbox_entries import ENTRY_COLUMNS, readable_entry

__all__ = [
    "ATTEMPT",
    "ATTEMPTS",
    "DONE",
    "ENTRY_COLUMNS",
    "INSERT_HISTORY",
    "INSERT_OUTBOX",
    "INSERT_RETURN",
    "RECORD",
    "RECORDS",
    "REOPEN",
    "UPDATE_RETURN",
    "attempt_params",
    "checked_text",
    "columns",
    "columns_of",
    "count_customer",
    "diagnostic",
    "dump",
    "dump_entry",
    "email_bytes",
    "entry",
    "extends",
    "history_rows",
]

# One record with its history as one JSON array, in one statement (so one snapshot). The
# body is left out when the caller's cached record is of the stored version.
RECORD = (
    "SELECT r.shop, r.id, r.version, "
    "CASE WHEN r.version = %(cached)s THEN NULL ELSE r.body END, "
    "CASE WHEN r.version = %(cached)s THEN NULL ELSE ("
    "SELECT '[' || string_agg(h.body, ',' ORDER BY h.seq) || ']' FROM history h "
    "WHERE h.shop = r.shop AND h.return_id = r.id) END "
    "FROM returns r"
)
RECORDS = (
    "SELECT r.shop, r.id, r.version, r.body, ("
    "SELECT '[' || string_agg(h.body, ',' ORDER BY h.seq) || ']' FROM history h "
    "WHERE h.shop = r.shop AND h.return_id = r.id) "
    "FROM returns r"
)
# Delivered effects in sequence order, each with whether its return ended, has nothing due
# and was last written before the cutoff (see ``prune``).
DONE = (
    "SELECT o.seq, COALESCE(r.status = ANY(%s) AND r.due_at IS NULL AND r.updated_at < %s, "
    "false) FROM outbox o LEFT JOIN returns r ON r.shop = o.shop AND r.id = o.return_id "
    "WHERE o.status = 'done' AND o.seq > %s ORDER BY o.seq LIMIT %s"
)
ATTEMPT = (
    "UPDATE outbox SET status = %(status)s, attempts = attempts + 1, last_error = %(error)s, "
    "result = COALESCE(%(result)s, result), updated_at = %(at)s, next_attempt_at = %(retry_at)s, "
    "claimed_until = NULL, claimed_by = NULL WHERE key = %(key)s AND status = 'pending'"
)


REOPEN = (
    "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = NULL, "
    "claimed_until = NULL, claimed_by = NULL WHERE key = %s AND status = 'failed'"
)
INSERT_RETURN = (
    "INSERT INTO returns (shop, id, order_id, status, exchange_status, version, history_len, "
    "created_at, updated_at, body, due_at, customer_email) VALUES (%(shop)s, %(id)s, "
    "%(order_id)s, %(status)s, %(exchange_status)s, %(version)s, %(history_len)s, "
    "%(created_at)s, %(updated_at)s, %(body)s, %(due_at)s, %(customer_email)s) "
    "ON CONFLICT DO NOTHING"
)
UPDATE_RETURN = (
    "UPDATE returns SET order_id = %(order_id)s, status = %(status)s, "
    "exchange_status = %(exchange_status)s, version = %(version)s, "
    "history_len = %(history_len)s, created_at = %(created_at)s, updated_at = %(updated_at)s, "
    "body = %(body)s, due_at = %(due_at)s, customer_email = %(customer_email)s "
    "WHERE shop = %(shop)s AND id = %(id)s AND version = %(expected)s"
)
INSERT_HISTORY = (
    "INSERT INTO history (shop, return_id, seq, version, at, event, actor, body) "
    "SELECT * FROM unnest(%s::text[], %s::text[], %s::int[], %s::int[], %s::timestamptz[], "
    "%s::text[], %s::text[], %s::text[])"
)
"""Every new history row of a commit in one statement: a column's values per array
(:func:`columns_of`)."""
INSERT_OUTBOX = (
    "INSERT INTO outbox (key, shop, return_id, kind, body) "
    "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[]) "
    "ON CONFLICT (key) DO NOTHING"
)
"""Every effect of a commit in one statement; a key already there is not inserted (the
count of rows inserted tells)."""
ATTEMPTS = (
    "UPDATE outbox o SET status = a.status, attempts = o.attempts + 1, last_error = a.error, "
    "result = COALESCE(a.result, o.result), updated_at = a.at, next_attempt_at = a.retry_at, "
    "claimed_until = NULL, claimed_by = NULL FROM unnest(%(key)s::text[], %(status)s::text[], "
    "%(error)s::text[], %(result)s::text[], %(at)s::timestamptz[], "
    "%(retry_at)s::timestamptz[]) AS a(key, status, error, result, at, retry_at) "
    "WHERE o.key = a.key AND o.status = 'pending'"
)
"""Every delivery attempt of a commit in one statement, each on its effect if still
pending (the count of rows updated tells)."""


ATTEMPTS_LOCKED = (
    "WITH locked AS MATERIALIZED (SELECT key FROM outbox WHERE key = ANY(%(key)s) "
    "AND status = 'pending' ORDER BY key FOR UPDATE), "
    "whole AS MATERIALIZED (SELECT count(*) = %(n)s AS yes FROM locked)"
)
ATTEMPTS_GATED = (
    "UPDATE outbox o SET status = a.status, attempts = o.attempts + 1, last_error = a.error, "
    "result = COALESCE(a.result, o.result), updated_at = a.at, next_attempt_at = a.retry_at, "
    "claimed_until = NULL, claimed_by = NULL FROM unnest(%(key)s::text[], %(status)s::text[], "
    "%(error)s::text[], %(result)s::text[], %(at)s::timestamptz[], "
    "%(retry_at)s::timestamptz[]) AS a(key, status, error, result, at, retry_at), whole "
    "WHERE whole.yes AND o.key = a.key AND o.status = 'pending'"
)
ATTEMPTS_ALONE = f"{ATTEMPTS_LOCKED} {ATTEMPTS_GATED}"
""":data:`ATTEMPTS` as a statement of its own: the effects locked first, and all of them
recorded or (one not pending) none."""


def columns_of(rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """Rows turned into one list per column, for ``unnest``."""
    return [list(column) for column in zip(*rows, strict=True)]


def dump(value: Any) -> str:
    return _bodies.dump_value(value)


def dump_entry(entry: HistoryEntry) -> str:
    return _bodies.dump_entry(entry)


def checked_text(field: str, value: str) -> str:
    """A value for a text column: PostgreSQL text cannot hold NUL characters."""
    if "\x00" in value:
        raise ValidationError(field, value, "must not contain NUL characters")
    return value


def diagnostic(message: str | None) -> str | None:
    """An error message fit for a text column (a port's message may carry anything)."""
    return None if message is None else message.replace("\x00", "\ufffd")


def attempt_params(attempt: Attempt) -> dict[str, Any]:
    ok, give_up = attempt.ok, attempt.give_up
    return {
        "status": "done" if ok else ("failed" if give_up else "pending"),
        "error": None if ok else diagnostic(attempt.error),
        "result": dump(attempt.result) if ok and attempt.result is not None else None,
        "at": attempt.at,
        "retry_at": None if ok or give_up else attempt.retry_at,
        "key": attempt.key,
    }


def entry(row: Sequence[Any], effect: Effect | None = None) -> OutboxEntry:
    """An outbox row (:data:`ENTRY_COLUMNS`, in order) as an :class:`OutboxEntry`; its
    effect ``effect`` when the caller holds it, else parsed from the row; a damaged row is
    an :class:`~returnflow.errors.UnreadableRecord` (see :func:`readable_entry`)."""
    return readable_entry(row, effect)


def columns(record: ReturnRecord) -> dict[str, Any]:
    """The ``returns`` row of ``record``: its columns, and its body without the history
    (kept in ``history``, a row per entry)."""
    return {
        "shop": checked_text("record.shop", record.shop),
        "id": checked_text("record.id", record.id),
        "order_id": checked_text("record.order_id", record.order_id),
        "status": checked_text("record.status", record.status),
        "exchange_status": checked_text("record.exchange_status", record.exchange_status),
        "version": record.version,
        "history_len": len(record.history),
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "body": _bodies.dump_body(record),
        "due_at": record.due_at,
        "customer_email": email_bytes(record.customer_email),
    }


def count_customer(db: Any, shop: str, customer_email: str, since: datetime) -> int:
    """:meth:`~returnflow.ports.store.ReturnStore.count_customer_returns` on connection
    ``db``, through the index ``returns_by_customer``."""
    moment = check_count_args(customer_email, since)
    if "\x00" in shop:  # text cannot hold it: no such shop has returns
        return 0
    row = db.execute(
        "SELECT count(*) FROM returns WHERE shop = %s AND customer_email = %s AND created_at >= %s",
        (shop, email_bytes(customer_email), moment),
    ).fetchone()
    return int(row[0])


def email_bytes(email: str | None) -> bytes | None:
    """The ``customer_email`` column: the e-mail's UTF-8 bytes (``bytea``: text cannot hold
    a NUL character, which a free-text e-mail may)."""
    return None if email is None else email.encode("utf-8")


def history_rows(record: ReturnRecord, stored: int) -> list[tuple[Any, ...]]:
    """History is append-only: the rows of the entries the store does not have yet."""
    return [
        (
            record.shop,
            record.id,
            seq,
            entry.version,
            entry.at,
            checked_text(f"history[{seq}].event", entry.event),
            checked_text(f"history[{seq}].actor", entry.actor),
            dump_entry(entry),
        )
        for seq, entry in enumerate(record.history[stored:], start=stored)
    ]


def extends(record: ReturnRecord, stored: Sequence[str | HistoryEntry]) -> bool:
    """Whether ``record`` keeps the ``stored`` history entries (objects or JSON) as they are."""
    if len(record.history) < len(stored):
        return False
    for new_entry, old_entry in zip(record.history, stored, strict=False):
        if new_entry is old_entry:
            continue
        old_body = old_entry if isinstance(old_entry, str) else dump_entry(old_entry)
        if dump_entry(new_entry) != old_body:
            return False
    return True
