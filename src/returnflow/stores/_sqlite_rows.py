"""How :class:`~returnflow.stores.sqlite.SqliteStore` writes a return's row and its history:
the row updated in place, history appended (never rewritten) once the stored entries are
checked to be the ones the new record keeps."""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Sequence
from datetime import datetime

from returnflow import _bodies
from returnflow.domain._time import instant
from returnflow.domain.model import HistoryEntry, ReturnRecord
from returnflow.errors import ConcurrencyConflict

__all__ = ["ROWS", "dump_entry", "iso", "rows", "write_record"]


def iso(moment: datetime | None) -> str | None:
    """UTC with a fixed width, so that SQL compares the text as it would the times."""
    if moment is None:
        return None
    # a commit writes the same few instants many times (now, the return's creation)
    text = _ISO.get(moment) if type(moment) is datetime else None
    if text is None:
        # "%Y-%m-%dT%H:%M:%S.%f+00:00" (years from 1900 have four digits), in half the time
        text = instant("time", moment).isoformat(timespec="microseconds")
        if len(_ISO) >= 1024:
            _ISO.clear()
        _ISO[moment] = text
    return text


_ISO: dict[datetime, str] = {}
"""Instants already written, by the aware datetime given (equal instants, one text)."""


def dump_entry(entry: HistoryEntry) -> str:
    return _bodies.dump_entry(entry)


def write_record(
    db: sqlite3.Connection,
    record: ReturnRecord,
    *,
    expected: int,
    cached: ReturnRecord | None,
) -> None:
    """Insert (``expected == 0``) or update ``record``'s row, whose stored version must be
    ``expected``, and append the history entries the store does not have yet; ``cached``:
    the store's copy of the return, if it has one. Raises
    :class:`~returnflow.errors.ConcurrencyConflict` when the stored version is not
    ``expected``, ``record`` is not the version after it, or ``record`` does not keep the
    stored entries as they are.

    When ``cached`` is the expected version, the version check is the update's own ``WHERE``
    (the row is that record: a version names one record) and its history is the stored one;
    a new return's row is inserted without looking first (the key refuses a second one)."""
    values = {
        "order_id": record.order_id,
        "status": record.status,
        "exchange_status": record.exchange_status,
        "version": record.version,
        "history_len": len(record.history),
        "created_at": iso(record.created_at),
        "updated_at": iso(record.updated_at),
        "body": _bodies.dump_body(record),
        "due_at": iso(record.due_at),
        "customer_email": record.customer_email,
    }
    if record.version != expected + 1:
        _check_version(db, record, expected)  # the stored version's conflict first, if any
        raise ConcurrencyConflict(record.id, expected + 1, record.version)
    if expected == 0:
        try:
            db.execute(_INSERT, (record.shop, record.id, *values.values()))
        except sqlite3.IntegrityError:
            _check_version(db, record, expected)
            raise
        stored = 0
    elif cached is not None and cached.version == expected:
        # Only what changed: a column left alone leaves its indexes alone.
        changed = _changed(values, cached)
        cursor = db.execute(
            _update(tuple(changed)), (*changed.values(), record.shop, record.id, expected)
        )
        if cursor.rowcount != 1:
            _check_version(db, record, expected)
        stored = len(cached.history)
    else:
        stored = _check_version(db, record, expected)
        db.execute(
            f"UPDATE returns SET {', '.join(f'{name} = ?' for name in values)} "
            "WHERE shop = ? AND id = ?",
            (*values.values(), record.shop, record.id),
        )
    if stored and not _extends(db, record, stored, cached):
        raise ConcurrencyConflict(record.id, stored, len(record.history))
    # History is append-only: only entries the store does not have yet are written, a
    # statement for up to ROWS of them.
    for first in range(stored, len(record.history), ROWS):
        params: list[object] = []
        for seq, entry in enumerate(record.history[first : first + ROWS], start=first):
            params += (
                record.shop,
                record.id,
                seq,
                entry.version,
                iso(entry.at),
                entry.event,
                entry.actor,
                dump_entry(entry),
            )
        db.execute(_HISTORY + rows(_HISTORY_ROW, len(params) // 8), params)


ROWS = 100
"""Rows one multi-row ``INSERT`` writes at most: its parameters stay within the 999 that
every SQLite allows."""


@functools.lru_cache(maxsize=512)
def rows(row: str, count: int) -> str:
    """``count`` times the placeholders ``row`` of a multi-row ``VALUES``, comma-separated
    (made once: the same few statements are run again and again)."""
    return ", ".join([row] * count)


_INSERT = (
    "INSERT INTO returns (shop, id, order_id, status, exchange_status, version, history_len, "
    "created_at, updated_at, body, due_at, customer_email) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_HISTORY = "INSERT INTO history (shop, return_id, seq, version, at, event, actor, body) VALUES "
_HISTORY_ROW = "(?, ?, ?, ?, ?, ?, ?, ?)"


def _check_version(db: sqlite3.Connection, record: ReturnRecord, expected: int) -> int:
    """The stored history length of ``record``'s return, whose stored version must be
    ``expected`` (else :class:`~returnflow.errors.ConcurrencyConflict`)."""
    row = db.execute(
        "SELECT version, history_len FROM returns WHERE shop = ? AND id = ?",
        (record.shop, record.id),
    ).fetchone()
    actual = 0 if row is None else int(row[0])
    if actual != expected:
        raise ConcurrencyConflict(record.id, expected, actual)
    return 0 if row is None else int(row[1])


def _changed(values: dict[str, object], stored: ReturnRecord) -> dict[str, object]:
    """``values`` without the indexed columns whose value ``stored`` (the record as the row
    holds it) already has (``version``, ``history_len``, ``updated_at`` and ``body`` always
    change), in their order."""
    changed = values.copy()
    if values["order_id"] == stored.order_id:
        del changed["order_id"]
    if values["status"] == stored.status:
        del changed["status"]
    if values["exchange_status"] == stored.exchange_status:
        del changed["exchange_status"]
    if values["created_at"] == iso(stored.created_at):
        del changed["created_at"]
    if values["due_at"] == iso(stored.due_at):
        del changed["due_at"]
    if values["customer_email"] == stored.customer_email:
        del changed["customer_email"]
    return changed


def _update(names: tuple[str, ...]) -> str:
    """The ``UPDATE`` of ``names`` of a return's row at the version it is expected at."""
    text = _UPDATES.get(names)
    if text is None:
        text = _UPDATES[names] = (
            f"UPDATE returns SET {', '.join(f'{name} = ?' for name in names)} "
            "WHERE shop = ? AND id = ? AND version = ?"
        )
    return text


_UPDATES: dict[tuple[str, ...], str] = {}
"""The statements of :func:`_update`, by the columns they set (at most 2**6 of them)."""


def _extends(
    db: sqlite3.Connection, record: ReturnRecord, stored: int, cached: ReturnRecord | None
) -> bool:
    """Whether ``record`` keeps the ``stored`` history entries as they are."""
    if len(record.history) < stored:
        return False
    if cached is not None and len(cached.history) == stored:
        old: Sequence[str | HistoryEntry] = cached.history
    else:
        rows = db.execute(
            "SELECT body FROM history WHERE shop = ? AND return_id = ? ORDER BY seq",
            (record.shop, record.id),
        )
        old = [body for (body,) in rows]
    for new_entry, old_entry in zip(record.history, old, strict=False):
        if new_entry is old_entry:
            continue
        old_body = old_entry if isinstance(old_entry, str) else dump_entry(old_entry)
        if dump_entry(new_entry) != old_body:
            return False
    return True
