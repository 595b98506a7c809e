"""The SQLite store: the embedded default, stdlib ``sqlite3`` in WAL mode.

One file holds returns (current state and version), their append-only history, the outbox
of effects, the inbox of processed inbound events and named cursors. Each :class:`Commit` is one
``BEGIN IMMEDIATE`` transaction; the version check in it makes concurrent writers, threads
or processes, safe. The schema is created and migrated by the store itself (table
``schema_version``).

>>> import tempfile, os
>>> store = SqliteStore(os.path.join(tempfile.mkdtemp(), "returns.db"))
>>> store.schema_version()
5
>>> store.close()
"""

from __future__ import annotations

import builtins
import json
import os
import sqlite3
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import attrs

from returnflow.domain.model import HistoryEntry, ReturnRecord
from returnflow.errors import ConcurrencyConflict, ConfigurationError, ReturnNotFound
from returnflow.lifecycle.effects import Effect
from returnflow.ports.store import Attempt, Commit, InboundKey, OutboxEntry, Pruned
from returnflow.serialization import converter
from returnflow.stores._conflicts import moved as _moved
from returnflow.stores._conflicts import not_failed as _not_failed
from returnflow.stores._conflicts import not_pending as _not_pending
from returnflow.stores._conflicts import queued as _queued
from returnflow.stores._conflicts import seen as _seen
from returnflow.stores._pages import check_page
from returnflow.stores._sqlite_ledger import write_units
from returnflow.stores._sqlite_retention import prune
from returnflow.stores._sqlite_schema import MIGRATIONS

__all__ = ["SqliteStore"]

_REOPEN = (
    "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = NULL, "
    "claimed_until = NULL, claimed_by = NULL WHERE key = ? AND status = 'failed'"
)


def _iso(moment: datetime | None) -> str | None:
    """UTC with a fixed width, so that SQL compares the text as it would the times."""
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def _moment(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _dump(value: Any) -> str:
    return json.dumps(converter.unstructure(value), separators=(",", ":"), sort_keys=True)


class SqliteStore:
    """Returns, history, outbox and inbox in one SQLite file (WAL)."""

    _write_units = staticmethod(write_units)  # the order-level ledger's rows

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 30.0) -> None:
        self.path = os.fspath(path)
        self._timeout = timeout
        self._local = threading.local()
        # each thread's connection, so that those of threads that ended can be closed
        self._connections: dict[threading.Thread, sqlite3.Connection] = {}
        self._guard = threading.Lock()
        # Records are immutable: a version read from the file names exactly one record, so
        # one already built is reused instead of rebuilt from JSON.
        self._cache: OrderedDict[tuple[str, str], ReturnRecord] = OrderedDict()
        # A store dropped without close() still closes its connections (Python 3.13 warns
        # about a connection collected open).
        self._closer = weakref.finalize(self, _close_all, self._connections, self._guard)
        self._migrate()

    _CACHE_SIZE = 10_000

    def _remember(self, record: ReturnRecord) -> None:
        with self._guard:
            self._cache[(record.shop, record.id)] = record
            self._cache.move_to_end((record.shop, record.id))
            while len(self._cache) > self._CACHE_SIZE:
                self._cache.popitem(last=False)

    def _recall(self, shop: str, return_id: str, version: int) -> ReturnRecord | None:
        with self._guard:
            record = self._cache.get((shop, return_id))
        return record if record is not None and record.version == version else None

    # -- connections ----------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(
                self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False
            )
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA foreign_keys=ON")
            self._local.connection = connection
            with self._guard:
                # a server that starts a thread per request would otherwise leave one open
                # connection behind per request
                for thread, stale in builtins.list(self._connections.items()):
                    if not thread.is_alive():
                        stale.close()
                        del self._connections[thread]
                self._connections[threading.current_thread()] = connection
        return connection

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every statement in it sees one snapshot of the file."""
        connection = self._connection()
        if connection.in_transaction:
            yield connection
            return
        connection.execute("BEGIN")
        try:
            yield connection
        finally:
            connection.execute("COMMIT")

    def close(self) -> None:
        """Close every connection this store opened (in any thread)."""
        _close_all(self._connections, self._guard)
        self._local = threading.local()

    def _migrate(self) -> None:
        with self._write() as db:
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = db.execute("SELECT version FROM schema_version").fetchone()
            current = 0 if row is None else int(row[0])
            if current > len(MIGRATIONS):
                raise ConfigurationError(
                    f"the database has schema {current}; this returnflow knows up to "
                    f"{len(MIGRATIONS)}",
                    field="path",
                    value=self.path,
                )
            for script in MIGRATIONS[current:]:
                for statement in script.split(";"):
                    if statement.strip():
                        db.execute(statement)
            if row is None:
                db.execute("INSERT INTO schema_version (version) VALUES (?)", (len(MIGRATIONS),))
            else:
                db.execute("UPDATE schema_version SET version = ?", (len(MIGRATIONS),))

    def schema_version(self) -> int:
        row = self._connection().execute("SELECT version FROM schema_version").fetchone()
        return int(row[0])

    # -- reads ------------------------------------------------------------------------------

    def _record(self, row: sqlite3.Row | tuple[Any, ...]) -> ReturnRecord:
        shop, return_id, body = row[0], row[1], row[2]
        data = json.loads(body)
        rows = self._connection().execute(
            "SELECT body FROM history WHERE shop = ? AND return_id = ? ORDER BY seq",
            (shop, return_id),
        )
        data["history"] = [json.loads(entry) for (entry,) in rows]
        record: ReturnRecord = converter.structure(data, ReturnRecord)
        return record

    def get(self, shop: str, return_id: str) -> ReturnRecord:
        with self._read() as db:
            return self._get(db, shop, return_id)

    def _get(self, db: sqlite3.Connection, shop: str, return_id: str) -> ReturnRecord:
        row = db.execute(
            "SELECT version FROM returns WHERE shop = ? AND id = ?", (shop, return_id)
        ).fetchone()
        if row is None:
            raise ReturnNotFound(shop, return_id)
        cached = self._recall(shop, return_id, int(row[0]))
        if cached is not None:
            return cached
        full = db.execute(
            "SELECT shop, id, body FROM returns WHERE shop = ? AND id = ?", (shop, return_id)
        ).fetchone()
        if full is None:  # deleted between the two reads; returns are never deleted
            raise ReturnNotFound(shop, return_id)
        record = self._record(full)
        self._remember(record)
        return record

    def list(
        self,
        shop: str,
        *,
        order_id: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> Sequence[ReturnRecord]:
        check_page(after, limit)
        where, params = "shop = ?", [shop]
        if order_id is not None:
            where += " AND order_id = ?"
            params.append(order_id)
        with self._read() as db:
            if after is not None:
                row = db.execute(
                    "SELECT created_at FROM returns WHERE shop = ? AND id = ?", (shop, after)
                ).fetchone()
                if row is None:
                    raise ReturnNotFound(shop, after)
                where += " AND (created_at, id) > (?, ?)"
                params += [row[0], after]
            query = (
                f"SELECT shop, id, body, version FROM returns WHERE {where} ORDER BY created_at, id"
            )
            if limit is not None:
                query += f" LIMIT {int(limit)}"
            page = []
            for row in db.execute(query, params).fetchall():
                record = self._recall(row[0], row[1], int(row[3]))
                if record is None:
                    record = self._record(row)
                    self._remember(record)
                page.append(record)
            return page

    def list_in(
        self,
        shop: str | None,
        statuses: Sequence[str],
        *,
        exchange_status: str | None = None,
        limit: int = 1000,
    ) -> Sequence[ReturnRecord]:
        marks = ", ".join("?" for _ in statuses)
        query = f"SELECT shop, id, body FROM returns WHERE status IN ({marks})"
        params: builtins.list[Any] = list(statuses)
        if exchange_status is not None:
            query += " AND exchange_status = ?"
            params.append(exchange_status)
        if shop is not None:
            query += " AND shop = ?"
            params.append(shop)
        query += " ORDER BY created_at, shop, id LIMIT ?"
        params.append(limit)
        with self._read() as db:
            return [self._record(row) for row in db.execute(query, params).fetchall()]

    def list_due(self, now: datetime, *, limit: int = 1000) -> Sequence[ReturnRecord]:
        with self._read() as db:
            rows = db.execute(
                "SELECT shop, id FROM returns WHERE due_at IS NOT NULL AND due_at < ? "
                "ORDER BY due_at, shop, id LIMIT ?",
                (_iso(now), limit),
            ).fetchall()
            return [self._get(db, shop, return_id) for shop, return_id in rows]

    def shops_with(self, return_id: str) -> builtins.list[str]:
        """Shops that have a return with this id (for operators' tools, not tenants)."""
        rows = self._connection().execute("SELECT shop FROM returns WHERE id = ?", (return_id,))
        return sorted(shop for (shop,) in rows)

    def count(self) -> int:
        return int(self._connection().execute("SELECT COUNT(*) FROM returns").fetchone()[0])

    def prune(self, *, older_than: datetime, inbox_older_than: datetime) -> Pruned:
        return prune(self._write, older_than=older_than, inbox_older_than=inbox_older_than)

    def seen(self, key: InboundKey) -> bool:
        row = (
            self._connection()
            .execute(
                "SELECT 1 FROM inbox WHERE shop = ? AND source = ? AND event_id = ?",
                (key.shop, key.source, key.event_id),
            )
            .fetchone()
        )
        return row is not None

    def inbound(self, shop: str, return_id: str) -> builtins.list[tuple[str, str, datetime]]:
        """Inbound events processed for one return: ``(source, event_id, at)``."""
        rows = self._connection().execute(
            "SELECT source, event_id, at FROM inbox WHERE shop = ? AND return_id = ? "
            "ORDER BY at, source, event_id",
            (shop, return_id),
        )
        return [(source, event_id, datetime.fromisoformat(at)) for source, event_id, at in rows]

    _ENTRY = (
        "SELECT seq, body, status, attempts, last_error, result, updated_at, next_attempt_at, "
        "claimed_until, claimed_by FROM outbox"
    )

    def _entry(self, row: tuple[Any, ...]) -> OutboxEntry:
        effect: Effect = converter.structure(json.loads(row[1]), Effect)
        return OutboxEntry(
            effect=effect,
            sequence=int(row[0]),
            status=row[2],
            attempts=int(row[3]),
            last_error=row[4],
            result=None if row[5] is None else json.loads(row[5]),
            updated_at=_moment(row[6]),
            next_attempt_at=_moment(row[7]),
            claimed_until=_moment(row[8]),
            claimed_by=row[9],
        )

    def outbox(self, shop: str, return_id: str) -> Sequence[OutboxEntry]:
        rows = self._connection().execute(
            f"{self._ENTRY} WHERE shop = ? AND return_id = ? ORDER BY seq", (shop, return_id)
        )
        return [self._entry(row) for row in rows.fetchall()]

    def pending(self, limit: int = 100) -> Sequence[OutboxEntry]:
        rows = self._connection().execute(
            f"{self._ENTRY} WHERE status = 'pending' ORDER BY seq LIMIT ?", (limit,)
        )
        return [self._entry(row) for row in rows.fetchall()]

    # -- writes -----------------------------------------------------------------------------

    def commit(self, commit: Commit) -> None:
        with self._write() as db:
            for record, expected in commit.records:
                row = db.execute(
                    "SELECT version, history_len FROM returns WHERE shop = ? AND id = ?",
                    (record.shop, record.id),
                ).fetchone()
                actual = 0 if row is None else int(row[0])
                if actual != expected:
                    raise ConcurrencyConflict(record.id, expected, actual)
                if record.version != expected + 1:
                    raise ConcurrencyConflict(record.id, expected + 1, record.version)
                self._write_record(db, record, known=actual, stored=0 if row is None else row[1])
            self._write_units(db, commit)
            if commit.inbound is not None:
                key = commit.inbound
                try:
                    db.execute(
                        "INSERT INTO inbox (shop, source, event_id, return_id, at) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (
                            key.shop,
                            key.source,
                            key.event_id,
                            commit.records[0][0].id if commit.records else "",
                            _iso(_now_of(commit)),
                        ),
                    )
                except sqlite3.IntegrityError:
                    raise ConcurrencyConflict(f"inbound {key.event_id}", 0, 1, _seen(key)) from None
            for effect in commit.effects:
                try:
                    db.execute(
                        "INSERT INTO outbox (key, shop, return_id, kind, body) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (effect.key, effect.shop, effect.return_id, effect.kind, _dump(effect)),
                    )
                except sqlite3.IntegrityError:
                    raise ConcurrencyConflict(
                        f"effect {effect.key}", 0, 1, _queued(effect.key)
                    ) from None
            for attempt in commit.attempts:
                if self._attempt(db, attempt) != 1:
                    raise ConcurrencyConflict(
                        f"effect {attempt.key}", 0, 1, _not_pending(attempt.key)
                    )
            for reopened in commit.reopened:
                if db.execute(_REOPEN, (reopened,)).rowcount != 1:
                    raise ConcurrencyConflict(f"effect {reopened}", 0, 1, _not_failed(reopened))
        for record, _ in commit.records:
            self._remember(record)

    def units(self, shop: str, order_id: str) -> dict[tuple[str, int], str]:
        """The order's ledger: each held unit and the return holding it."""
        with self._read() as db:
            rows = db.execute(
                "SELECT order_line_id, unit, return_id FROM order_units "
                "WHERE shop = ? AND order_id = ?",
                (shop, order_id),
            )
            return {(line, int(unit)): holder for line, unit, holder in rows}

    def _write_record(
        self, db: sqlite3.Connection, record: ReturnRecord, *, known: int, stored: int
    ) -> None:
        body = converter.unstructure(attrs.evolve(record, history=()))
        del body["history"]
        params = (
            record.order_id,
            record.status,
            record.exchange_status,
            record.version,
            len(record.history),
            _iso(record.created_at),
            _iso(record.updated_at),
            json.dumps(body, separators=(",", ":"), sort_keys=True),
            _iso(record.due_at),
            record.shop,
            record.id,
        )
        if known == 0:
            db.execute(
                "INSERT INTO returns (order_id, status, exchange_status, version, history_len, "
                "created_at, updated_at, body, due_at, shop, id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                params,
            )
        else:
            db.execute(
                "UPDATE returns SET order_id = ?, status = ?, exchange_status = ?, version = ?, "
                "history_len = ?, created_at = ?, updated_at = ?, body = ?, due_at = ? "
                "WHERE shop = ? AND id = ?",
                params,
            )
        if stored and not self._extends(db, record, stored):
            raise ConcurrencyConflict(record.id, stored, len(record.history))
        # History is append-only: only entries the store does not have yet are written.
        db.executemany(
            "INSERT INTO history (shop, return_id, seq, version, at, event, actor, body) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    record.shop,
                    record.id,
                    seq,
                    entry.version,
                    _iso(entry.at),
                    entry.event,
                    entry.actor,
                    _dump_entry(entry),
                )
                for seq, entry in enumerate(record.history[stored:], start=stored)
            ],
        )

    def _extends(self, db: sqlite3.Connection, record: ReturnRecord, stored: int) -> bool:
        """Whether ``record`` keeps the ``stored`` history entries as they are."""
        if len(record.history) < stored:
            return False
        with self._guard:
            known = self._cache.get((record.shop, record.id))
        if known is not None and len(known.history) == stored:
            old: Sequence[str | HistoryEntry] = known.history
        else:
            rows = db.execute(
                "SELECT body FROM history WHERE shop = ? AND return_id = ? ORDER BY seq",
                (record.shop, record.id),
            )
            old = [body for (body,) in rows]
        for new_entry, old_entry in zip(record.history, old, strict=False):
            if new_entry is old_entry:
                continue
            old_body = old_entry if isinstance(old_entry, str) else _dump_entry(old_entry)
            if _dump_entry(new_entry) != old_body:
                return False
        return True

    def claim(
        self,
        *,
        now: datetime,
        lease_until: datetime,
        worker: str,
        limit: int = 100,
        shop: str | None = None,
        return_id: str | None = None,
    ) -> Sequence[OutboxEntry]:
        moment = _iso(now)
        where = (
            "o.status = 'pending' "
            "AND (o.next_attempt_at IS NULL OR o.next_attempt_at <= :now) "
            "AND (o.claimed_until IS NULL OR o.claimed_until <= :now) "
            "AND o.seq = (SELECT MIN(h.seq) FROM outbox h WHERE h.shop = o.shop "
            "AND h.return_id = o.return_id AND h.status = 'pending')"
        )
        params: dict[str, Any] = {"now": moment, "limit": limit}
        if shop is not None:
            where += " AND o.shop = :shop"
            params["shop"] = shop
        if return_id is not None:
            where += " AND o.return_id = :return_id"
            params["return_id"] = return_id
        with self._write() as db:
            keys = [
                key
                for (key,) in db.execute(
                    f"SELECT o.key FROM outbox o WHERE {where} ORDER BY o.seq LIMIT :limit", params
                )
            ]
            db.executemany(
                "UPDATE outbox SET claimed_until = ?, claimed_by = ? WHERE key = ?",
                [(_iso(lease_until), worker, key) for key in keys],
            )
            return [
                self._entry(db.execute(f"{self._ENTRY} WHERE key = ?", (key,)).fetchone())
                for key in keys
            ]

    def record_attempt(
        self,
        key: str,
        *,
        ok: bool,
        at: datetime,
        result: object = None,
        error: str | None = None,
        give_up: bool = False,
        retry_at: datetime | None = None,
    ) -> OutboxEntry:
        with self._write() as db:
            self._attempt(db, Attempt(key, ok, at, result, error, give_up, retry_at))
            row = db.execute(f"{self._ENTRY} WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        return self._entry(row)

    # -- cursors ----------------------------------------------------------------------------

    def read_cursor(self, name: str) -> str | None:
        row = (
            self._connection()
            .execute("SELECT value FROM cursors WHERE name = ?", (name,))
            .fetchone()
        )
        return None if row is None else str(row[0])

    def write_cursor(self, name: str, value: str, *, expected: str | None) -> None:
        with self._write() as db:
            row = db.execute("SELECT value FROM cursors WHERE name = ?", (name,)).fetchone()
            if (None if row is None else row[0]) != expected:
                raise ConcurrencyConflict(f"cursor {name}", 0, 1, _moved(name, expected))
            if row is None:
                db.execute("INSERT INTO cursors (name, value) VALUES (?, ?)", (name, value))
            else:
                db.execute("UPDATE cursors SET value = ? WHERE name = ?", (value, name))

    @staticmethod
    def _attempt(db: sqlite3.Connection, attempt: Attempt) -> int:
        """Record ``attempt`` on its effect if still pending; the number of rows changed."""
        ok, give_up = attempt.ok, attempt.give_up
        cursor = db.execute(
            "UPDATE outbox SET status = ?, attempts = attempts + 1, last_error = ?, "
            "result = COALESCE(?, result), updated_at = ?, next_attempt_at = ?, "
            "claimed_until = NULL, claimed_by = NULL WHERE key = ? AND status = 'pending'",
            (
                "done" if ok else ("failed" if give_up else "pending"),
                None if ok else attempt.error,
                _dump(attempt.result) if ok and attempt.result is not None else None,
                _iso(attempt.at),
                None if ok or give_up else _iso(attempt.retry_at),
                attempt.key,
            ),
        )
        return cursor.rowcount


def _close_all(
    connections: dict[threading.Thread, sqlite3.Connection], guard: threading.Lock
) -> None:
    with guard:
        for connection in connections.values():
            connection.close()
        connections.clear()


def _dump_entry(entry: HistoryEntry) -> str:
    return json.dumps(converter.unstructure(entry), separators=(",", ":"), sort_keys=True)


def _now_of(commit: Commit) -> datetime:
    """The time of a commit: its newest record's ``updated_at`` (or now, with none)."""
    return max(
        (record.updated_at for record, _ in commit.records), default=datetime.now(timezone.utc)
    )
