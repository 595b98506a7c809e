"""The SQLite store: the embedded default, stdlib ``sqlite3`` in WAL mode.

One file holds returns (current state and version), their append-only history, the outbox
of effects, the inbox of processed inbound events and named cursors. Each :class:`Commit` is one
``BEGIN IMMEDIATE`` transaction; the version check in it makes concurrent writers, threads
or processes, safe. The schema is created and migrated by the store itself (table
``schema_version``); opened with ``read_only=True`` (what ``returnflow inspect`` does) it
writes nothing, migrates nothing, and refuses every write with
:class:`~returnflow.errors.StoreReadOnly`.

Every failure of the file is a :class:`~returnflow.errors.StoreError` (unavailable, read-only,
full); a return whose row cannot be read back is an
:class:`~returnflow.errors.UnreadableRecord`, which listings skip and name.

>>> import tempfile, os
>>> store = SqliteStore(os.path.join(tempfile.mkdtemp(), "returns.db"))
>>> store.schema_version()
8
>>> store.close()
"""

from __future__ import annotations

import builtins
import os
import sqlite3
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from returnflow._bodies import load_record
from returnflow.domain._time import instant
from returnflow.domain.model import ReturnRecord
from returnflow.errors import ConcurrencyConflict, ConfigurationError, ReturnNotFound
from returnflow.ports.store import (
    Attempt,
    Commit,
    InboundKey,
    Listing,
    OutboxEntry,
    Pruned,
    check_count_args,
)
from returnflow.stores._conflicts import moved as _moved
from returnflow.stores._conflicts import not_failed as _not_failed
from returnflow.stores._conflicts import seen as _seen
from returnflow.stores._conflicts import unknown_effect as _unknown_effect
from returnflow.stores._errors import listing, readable, translating
from returnflow.stores._pages import check_page, check_run, rows_of
from returnflow.stores._sqlite_files import check_schema, connect
from returnflow.stores._sqlite_files import translate as _translate
from returnflow.stores._sqlite_ledger import write_units
from returnflow.stores._sqlite_outbox import (
    ENTRY,
    attempt,
    attempts,
    claim,
    claims_with_insert,
    entry,
    insert,
    insert_and_claim,
    stored_moment,
)
from returnflow.stores._sqlite_retention import prune
from returnflow.stores._sqlite_rows import iso as _iso
from returnflow.stores._sqlite_rows import write_record
from returnflow.stores._sqlite_schema import AFTER, MIGRATIONS

__all__ = ["SqliteStore"]

_REOPEN = (
    "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = NULL, "
    "claimed_until = NULL, claimed_by = NULL WHERE key = ? AND status = 'failed'"
)


@translating(_translate)
class SqliteStore:
    """Returns, history, outbox and inbox in one SQLite file (WAL).

    ``timeout``: seconds to wait for another writer's lock; ``read_only``: open the file
    as it is, without creating or migrating it, and refuse writes."""

    _write_units = staticmethod(write_units)  # the order-level ledger's rows

    def __init__(
        self, path: str | os.PathLike[str], *, timeout: float = 30.0, read_only: bool = False
    ) -> None:
        self.path = os.fspath(path)
        self.read_only = read_only
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
            connection = connect(self.path, self._timeout, read_only=self.read_only)
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
            if connection.in_transaction:  # SQLite rolls back by itself on a full disk
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
        if self.read_only:
            self._check_schema()
            return
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
            for version, script in enumerate(MIGRATIONS[current:], start=current + 1):
                for statement in script.split(";"):
                    if statement.strip():
                        db.execute(statement)
                if version in AFTER:
                    AFTER[version](db)
            if row is None:
                db.execute("INSERT INTO schema_version (version) VALUES (?)", (len(MIGRATIONS),))
            else:
                db.execute("UPDATE schema_version SET version = ?", (len(MIGRATIONS),))

    def _check_schema(self) -> None:
        """Opened read-only: the file must hold returnflow's schema as this version has it."""
        check_schema(self._connection(), self.path, len(MIGRATIONS))

    def schema_version(self) -> int:
        row = self._connection().execute("SELECT version FROM schema_version").fetchone()
        return int(row[0])

    # -- reads ------------------------------------------------------------------------------

    def _record(self, row: sqlite3.Row | tuple[Any, ...]) -> ReturnRecord:
        shop, return_id, body = row[0], row[1], row[2]
        history = (
            self._connection()
            .execute(
                "SELECT body FROM history WHERE shop = ? AND return_id = ? ORDER BY seq",
                (shop, return_id),
            )
            .fetchall()
        )

        def build() -> ReturnRecord:
            return load_record(body, [entry for (entry,) in history])

        return readable(shop, return_id, build)

    def _records(self, rows: builtins.list[Any]) -> Listing:
        return listing(rows, self._record, lambda row: (row[0], row[1]))

    def get(self, shop: str, return_id: str) -> ReturnRecord:
        connection = self._connection()
        if not connection.in_transaction:
            # The stored version, read on its own (one statement is one snapshot): when this
            # store built that version already, that record is the answer, without the read
            # transaction a record read from its rows needs.
            row = connection.execute(
                "SELECT version FROM returns WHERE shop = ? AND id = ?", (shop, return_id)
            ).fetchone()
            cached = None if row is None else self._recall(shop, return_id, int(row[0]))
            if cached is not None:
                return cached
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
        if after is None:
            cached = self._listed(where, params, limit)
            if cached is not None:
                return cached
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
                query += f" LIMIT {rows_of(limit)}"

            def build(row: Any) -> ReturnRecord:
                record = self._recall(row[0], row[1], int(row[3]))
                if record is None:
                    record = self._record(row)
                    self._remember(record)
                return record

            rows = db.execute(query, params).fetchall()
            return listing(rows, build, lambda row: (row[0], row[1]))

    def _listed(self, where: str, params: builtins.list[Any], limit: int | None) -> Listing | None:
        """A first page read in one statement (one snapshot), when this store built every
        record on it at the version the row holds (none: an order without returns), without
        the read transaction records read from their rows need; ``None`` otherwise."""
        connection = self._connection()
        if connection.in_transaction:
            return None
        query = f"SELECT shop, id, version FROM returns WHERE {where} ORDER BY created_at, id"
        if limit is not None:
            query += f" LIMIT {rows_of(limit)}"
        records = []
        for shop, return_id, version in connection.execute(query, params).fetchall():
            record = self._recall(shop, return_id, int(version))
            if record is None:
                return None
            records.append(record)
        return Listing(records)

    def count_customer_returns(self, shop: str, customer_email: str, *, since: datetime) -> int:
        moment = check_count_args(customer_email, since)
        row = (
            self._connection()
            .execute(
                "SELECT COUNT(*) FROM returns INDEXED BY returns_by_customer "
                "WHERE shop = ? AND customer_email = ? AND created_at >= ?",
                (shop, customer_email, _iso(moment)),
            )
            .fetchone()
        )
        return int(row[0])

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
        params.append(rows_of(limit))
        with self._read() as db:
            return self._records(db.execute(query, params).fetchall())

    def list_due(self, now: datetime, *, limit: int = 1000) -> Sequence[ReturnRecord]:
        moment = instant("now", now)
        with self._read() as db:
            rows = db.execute(
                "SELECT shop, id FROM returns WHERE due_at IS NOT NULL AND due_at < ? "
                "ORDER BY due_at, shop, id LIMIT ?",
                (_iso(moment), rows_of(limit)),
            ).fetchall()
            return listing(rows, lambda row: self._get(db, *row), lambda row: (row[0], row[1]))

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
        return [
            (source, event_id, stored_moment(at, shop, return_id, f"its inbound event {event_id}"))
            for source, event_id, at in rows
        ]

    def outbox(self, shop: str, return_id: str) -> Sequence[OutboxEntry]:
        rows = self._connection().execute(
            f"{ENTRY} WHERE shop = ? AND return_id = ? ORDER BY seq", (shop, return_id)
        )
        return [entry(row) for row in rows.fetchall()]

    def pending(self, limit: int = 100) -> Sequence[OutboxEntry]:
        rows = self._connection().execute(
            f"{ENTRY} WHERE status = 'pending' ORDER BY seq LIMIT ?", (rows_of(limit),)
        )
        return [entry(row) for row in rows.fetchall()]

    # -- writes -----------------------------------------------------------------------------

    def commit(self, commit: Commit) -> Sequence[OutboxEntry]:
        lease, now, until = commit.claim, None, None
        if lease is not None:
            now, until = instant("now", lease.now), instant("lease_until", lease.until)
            check_run(lease.run)
        claimed: builtins.list[OutboxEntry] = []
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")  # as _write() does, without a generator per commit
        try:
            self._commit(db, commit, claimed, now, until)
        except BaseException:
            if db.in_transaction:  # SQLite rolls back by itself on a full disk
                db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        for record, _ in commit.records:
            self._remember(record)
        return claimed

    def _commit(
        self,
        db: sqlite3.Connection,
        commit: Commit,
        claimed: builtins.list[OutboxEntry],
        now: datetime | None = None,
        until: datetime | None = None,
    ) -> None:
        """Write ``commit`` in the open write transaction ``db``; what its lease (checked:
        ``now`` and ``until`` its times) claimed added to ``claimed``."""
        lease = commit.claim
        for record, expected in commit.records:
            self._write_record(db, record, expected)
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
        effects = commit.effects
        together = claims_with_insert(commit)
        if not together:
            insert(db, effects)
        attempts(db, commit.attempts)
        for reopened in commit.reopened:
            if db.execute(_REOPEN, (reopened,)).rowcount != 1:
                raise ConcurrencyConflict(f"effect {reopened}", 0, 1, _not_failed(reopened))
        if together and lease is not None and now is not None and until is not None:
            run = insert_and_claim(db, effects, now, until, lease.worker, lease.run)
            if run is not None:
                claimed += run
                return
            insert(db, effects)
        if lease is not None and now is not None and until is not None:
            known = {effect.key: effect for effect in commit.effects}
            for shop, return_id in lease.returns:
                claimed += claim(
                    db,
                    now=now,
                    lease_until=until,
                    worker=lease.worker,
                    limit=1,
                    shop=shop,
                    return_id=return_id,
                    run=lease.run,
                    known=known,
                )

    def units(self, shop: str, order_id: str) -> dict[tuple[str, int], str]:
        """The order's ledger: each held unit and the return holding it."""
        with self._read() as db:
            rows = db.execute(
                "SELECT order_line_id, unit, return_id FROM order_units "
                "WHERE shop = ? AND order_id = ?",
                (shop, order_id),
            )
            return {(line, int(unit)): holder for line, unit, holder in rows}

    def _write_record(self, db: sqlite3.Connection, record: ReturnRecord, expected: int) -> None:
        with self._guard:
            cached = self._cache.get((record.shop, record.id))
        write_record(db, record, expected=expected, cached=cached)

    def claim(
        self,
        *,
        now: datetime,
        lease_until: datetime,
        worker: str,
        limit: int = 100,
        shop: str | None = None,
        return_id: str | None = None,
        run: int = 1,
    ) -> Sequence[OutboxEntry]:
        now, lease_until = instant("now", now), instant("lease_until", lease_until)
        check_run(run)
        limit = rows_of(limit)
        with self._write() as db:
            return claim(
                db,
                now=now,
                lease_until=lease_until,
                worker=worker,
                limit=limit,
                shop=shop,
                return_id=return_id,
                run=run,
            )

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
            row = db.execute(f"{ENTRY} WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise _unknown_effect(key)
        return entry(row)

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
    def _attempt(db: sqlite3.Connection, item: Attempt) -> int:
        """Record ``item`` on its effect if still pending; the number of rows changed."""
        return attempt(db, item)


def _close_all(
    connections: dict[threading.Thread, sqlite3.Connection], guard: threading.Lock
) -> None:
    with guard:
        for connection in connections.values():
            connection.close()
        connections.clear()


def _now_of(commit: Commit) -> datetime:
    """The time of a commit: its newest record's ``updated_at`` (or now, with none)."""
    return max(
        (record.updated_at for record, _ in commit.records), default=datetime.now(timezone.utc)
    )
