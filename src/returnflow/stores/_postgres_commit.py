"""One :class:`~returnflow.ports.store.Commit` of
:class:`~returnflow.stores.postgres.PostgresStore`, as pipelined statements: the version
checks, the returns' rows and history, the order-level ledger, the inbox key, the outbox rows,
re-opened effects and delivery attempts, each with the count of rows it must touch."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

import psycopg

from returnflow.domain.ledger import ENDED_UNSETTLED, held_units
from returnflow.domain.model import HistoryEntry, ReturnRecord
from returnflow.errors import ConcurrencyConflict, UnitsTaken
from returnflow.ports.store import Commit
from returnflow.stores._conflicts import not_failed as _not_failed
from returnflow.stores._conflicts import not_pending as _not_pending
from returnflow.stores._conflicts import queued as _queued
from returnflow.stores._conflicts import seen as _seen
from returnflow.stores._postgres_rows import (
    ATTEMPTS,
    INSERT_RETURN,
    REOPEN,
    UPDATE_RETURN,
    attempt_params,
    columns_of,
    extends,
    history_rows,
)

__all__ = ["Connection", "apply", "now_of", "write_units"]

Connection = psycopg.Connection[tuple[Any, ...]]


def apply(
    db: Connection,
    pipeline: psycopg.Pipeline,
    commit: Commit,
    rows: Sequence[tuple[ReturnRecord, int, dict[str, Any]]],
    effects: Sequence[tuple[str, str, str, str, str]],
    recall: Callable[[str, str, int], ReturnRecord | None],
    claim: tuple[str, dict[str, Any]] | None = None,
) -> list[tuple[Any, ...]]:
    """The statements of one commit, pipelined: two round trips when the cache knows
    every record as the writer read it, three when it does not. Every count is checked
    before the transaction commits. ``rows``: each record with the version it replaces and
    its columns (:func:`~returnflow.stores._postgres_rows.columns`), in lock order;
    ``effects``: the outbox rows; ``recall``: the store's cached record of a return at a
    version, or ``None``; ``claim``: the claim's statement and parameters, run last. The
    claim's rows (none without one). Raises :class:`ConcurrencyConflict` or
    :class:`UnitsTaken` for a count that is off; the caller's transaction then writes
    nothing."""
    # 1. Records the cache does not know at the expected version: lock them and read
    # their stored history, to check that the new one only extends it.
    stored_history: dict[tuple[str, str], Sequence[str | HistoryEntry]] = {}
    looked = [
        (
            record,
            expected,
            db.execute(
                "SELECT version FROM returns WHERE shop = %s AND id = %s FOR UPDATE",
                (record.shop, record.id),
            ),
            db.execute(
                "SELECT body FROM history WHERE shop = %s AND return_id = %s ORDER BY seq",
                (record.shop, record.id),
            ),
        )
        for record, expected, _ in rows
        if expected and recall(record.shop, record.id, expected) is None
    ]
    if looked:
        pipeline.sync()
    for record, expected, version, history in looked:
        row = version.fetchone()
        actual = 0 if row is None else int(row[0])
        if actual != expected:
            raise ConcurrencyConflict(record.id, expected, actual)
        stored_history[(record.shop, record.id)] = [body for (body,) in history.fetchall()]

    # 2. Every write of returns, history, the inbox key, the outbox and the attempts in one
    # statement (each part counted), then the ledger's; each with the count of rows it must
    # touch.
    writes = _Writes()
    entries: list[tuple[Any, ...]] = []
    for record, expected, columns in rows:
        if expected == 0:
            stored: Sequence[str | HistoryEntry] = ()
            writes.add(INSERT_RETURN, columns, 1, ConcurrencyConflict(record.id, 0, -1))
        else:
            known = recall(record.shop, record.id, expected)
            stored = (
                known.history if known is not None else stored_history[(record.shop, record.id)]
            )
            if not extends(record, stored):
                raise ConcurrencyConflict(record.id, len(stored), len(record.history))
            # The version check is in the update itself: it finds the row only at
            # ``expected``.
            conflict = ConcurrencyConflict(record.id, expected, -1)
            writes.add(UPDATE_RETURN, {**columns, "expected": expected}, 1, conflict)
        entries += history_rows(record, len(stored))
    if entries:
        appended = dict(zip(_HISTORY_COLUMNS, columns_of(entries), strict=True))
        writes.add(INSERT_HISTORY_NAMED, appended, len(entries), None)
    if commit.inbound is not None:
        key = commit.inbound
        inbox = {
            "shop": key.shop,
            "source": key.source,
            "event_id": key.event_id,
            "return_id": commit.records[0][0].id if commit.records else "",
            "at": now_of(commit),
        }
        writes.add(
            INSERT_INBOX, inbox, 1, ConcurrencyConflict(f"inbound {key.event_id}", 0, 1, _seen(key))
        )
    if effects:
        outbox = dict(zip(_OUTBOX_COLUMNS, columns_of(effects), strict=True))
        writes.add(INSERT_OUTBOX_NAMED, outbox, len(effects), _queued, returning="key")
    if commit.attempts:
        params = [attempt_params(attempt) for attempt in commit.attempts]
        attempted = {name: [p[name] for p in params] for name in params[0]}
        writes.add(ATTEMPTS, attempted, len(params), _not_pending, returning="o.key")
    freed = any(record.status in ENDED_UNSETTLED for record, _ in commit.records)
    if not freed:  # a new return's units in the same statement (none are freed first)
        for record, expected in commit.records:
            units = sorted(held_units(record))
            if expected or not units:
                continue
            held = [(record.shop, record.order_id, line, unit, record.id) for line, unit in units]
            taken = UnitsTaken(record.id, record.order_id, units)
            writes.add(
                INSERT_UNITS_NAMED,
                dict(zip(_UNITS_COLUMNS, columns_of(held), strict=True)),
                len(held),
                taken,
            )
    counted = writes.execute(db)
    checks: list[tuple[psycopg.Cursor[Any], int, ConcurrencyConflict]] = []
    if freed:
        checks.extend(write_units(db, commit))
    for reopened in commit.reopened:
        cursor = db.execute(REOPEN, (reopened,))
        conflict = ConcurrencyConflict(f"effect {reopened}", 0, 1, _not_failed(reopened))
        checks.append((cursor, 1, conflict))
    claiming = None if claim is None else db.execute(*claim)
    pipeline.sync()
    writes.check(counted)
    for cursor, touched, conflict in checks:
        if cursor.rowcount != touched:
            raise conflict
    return [] if claiming is None else claiming.fetchall()


_HISTORY_COLUMNS = ("shop", "return_id", "seq", "version", "at", "event", "actor", "body")
_OUTBOX_COLUMNS = ("key", "shop", "return_id", "kind", "body")
INSERT_HISTORY_NAMED = (
    "INSERT INTO history (shop, return_id, seq, version, at, event, actor, body) "
    "SELECT * FROM unnest(%(shop)s::text[], %(return_id)s::text[], %(seq)s::int[], "
    "%(version)s::int[], %(at)s::timestamptz[], %(event)s::text[], %(actor)s::text[], "
    "%(body)s::text[])"
)
INSERT_OUTBOX_NAMED = (
    "INSERT INTO outbox (key, shop, return_id, kind, body) SELECT * FROM unnest("
    "%(key)s::text[], %(shop)s::text[], %(return_id)s::text[], %(kind)s::text[], "
    "%(body)s::text[]) ON CONFLICT (key) DO NOTHING"
)
_UNITS_COLUMNS = ("shop", "order_id", "order_line_id", "unit", "return_id")
INSERT_UNITS_NAMED = (
    "INSERT INTO order_units (shop, order_id, order_line_id, unit, return_id) "
    "SELECT * FROM unnest(%(shop)s::text[], %(order_id)s::text[], %(order_line_id)s::text[], "
    "%(unit)s::bigint[], %(return_id)s::text[]) ON CONFLICT DO NOTHING"
)
INSERT_INBOX = (
    "INSERT INTO inbox (shop, source, event_id, return_id, at) "
    "VALUES (%(shop)s, %(source)s, %(event_id)s, %(return_id)s, %(at)s) ON CONFLICT DO NOTHING"
)


class _Writes:
    """Writes made one statement: each a part ``wN AS (... RETURNING 1)`` with its own
    parameters (renamed ``pN_name``), the statement selecting how many rows each touched.

    A part of effects (the outbox's rows, delivery attempts) returns each row's key instead,
    and the statement also selects, when a row was not touched, the keys given that were
    not: the conflict then names the first effect that clashed, in the commit's order, as
    the other stores do, and not the whole batch."""

    def __init__(self) -> None:
        self.parts: list[tuple[str, int, ConcurrencyConflict | None, _Keyed | None]] = []
        self.params: dict[str, Any] = {}

    def add(
        self,
        statement: str,
        params: dict[str, Any],
        touched: int,
        conflict: ConcurrencyConflict | Callable[[str], str] | None,
        *,
        returning: str = "1",
    ) -> None:
        """``conflict``: the error when the part touches other than ``touched`` rows; or,
        for a part of effects (``params["key"]`` their keys, ``returning`` the column of
        the row's key), what to say of the key that clashed."""
        n = len(self.parts)
        renamed = statement
        for name in sorted(params, key=len, reverse=True):
            renamed = renamed.replace(f"%({name})s", f"%(p{n}_{name})s")
            self.params[f"p{n}_{name}"] = params[name]
        part = f"w{n} AS ({renamed} RETURNING {returning})"
        if callable(conflict):
            self.parts.append((part, touched, None, (params["key"], conflict)))
        else:
            self.parts.append((part, touched, conflict, None))

    def execute(self, db: Connection) -> psycopg.Cursor[Any] | None:
        if not self.parts:
            return None
        counts = [f"(SELECT count(*) FROM w{n})" for n in range(len(self.parts))]
        for n, (_, touched, _, keyed) in enumerate(self.parts):
            if keyed is not None:  # the keys not touched, only when some were not
                counts.append(
                    f"(CASE WHEN (SELECT count(*) FROM w{n}) = {int(touched)} THEN NULL "
                    f"ELSE (SELECT array_agg(k) FROM unnest(%(p{n}_key)s::text[]) AS k "
                    f"WHERE k NOT IN (SELECT * FROM w{n})) END)"
                )
        ctes = ", ".join(part for part, _, _, _ in self.parts)
        return db.execute(f"WITH {ctes} SELECT {', '.join(counts)}", self.params)

    def check(self, cursor: psycopg.Cursor[Any] | None) -> None:
        if cursor is None:
            return
        row = cursor.fetchone()
        assert row is not None
        untouched = iter(row[len(self.parts) :])
        for (_, touched, conflict, keyed), count in zip(self.parts, row, strict=False):
            missing = next(untouched) if keyed is not None else None
            if int(count) == touched:
                continue
            if keyed is not None:
                keys, say = keyed
                key = _clash(keys, missing or ())
                raise ConcurrencyConflict(f"effect {key}", 0, 1, say(key))
            if conflict is not None:
                raise conflict


_Keyed = tuple[Sequence[str], Callable[[str], str]]
"""A part of effects: their keys, in the commit's order, and what to say of one that clashed."""


def _clash(keys: Sequence[str], untouched: Sequence[str]) -> str:
    """The first of ``keys`` that clashed: one whose row was not touched (queued before, not
    pending) or one given twice (the statement touches its row once)."""
    left = set(untouched)
    counted = Counter(keys)
    return next((key for key in keys if key in left or counted[key] > 1), keys[0])


def write_units(
    db: Connection, commit: Commit
) -> list[tuple[psycopg.Cursor[Any], int, ConcurrencyConflict]]:
    """Queue the order-level ledger's writes: a return ending unsettled frees its units
    (first, so that a reset's new return can take them in the same commit); a new return
    takes its units, each insert counted so that a unit another return holds fails the
    commit with :class:`UnitsTaken`. Rows go in key order, so two racing commits wait for
    each other instead of deadlocking. A return's units are fixed when it is opened."""
    for record, _ in commit.records:
        if record.status in ENDED_UNSETTLED:
            db.execute(
                "DELETE FROM order_units WHERE shop = %s AND return_id = %s",
                (record.shop, record.id),
            )
            kept = sorted(held_units(record))  # paid for and not handed on: stays taken
            if kept:
                db.cursor().executemany(
                    "INSERT INTO order_units (shop, order_id, order_line_id, unit, return_id) "
                    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    [(record.shop, record.order_id, line, unit, record.id) for line, unit in kept],
                )
    checks: list[tuple[psycopg.Cursor[Any], int, ConcurrencyConflict]] = []
    for record, expected in commit.records:
        units = sorted(held_units(record))
        if expected or not units:
            continue
        cursor = db.cursor()
        cursor.executemany(
            "INSERT INTO order_units (shop, order_id, order_line_id, unit, return_id) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [(record.shop, record.order_id, line, unit, record.id) for line, unit in units],
        )
        checks.append((cursor, len(units), UnitsTaken(record.id, record.order_id, units)))
    return checks


def now_of(commit: Commit) -> datetime:
    """The time of a commit: its newest record's ``updated_at`` (or now, with none)."""
    return max(
        (record.updated_at for record, _ in commit.records), default=datetime.now(timezone.utc)
    )
