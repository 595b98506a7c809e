"""The PostgreSQL store: for hosts that outgrow one machine; psycopg 3 with a connection pool.

Install it with ``pip install 'returnflow[postgres]'`` and open it with a DSN, or with
:func:`returnflow.stores.open_store` and a ``postgresql://`` URL::

    store = PostgresStore("postgresql://returns@db.internal/returns", max_size=20)

It keeps the same promises as the SQLite store, in the same tables: returns (current state and
version), their append-only history, the outbox of effects and the inbox of processed inbound
events, plus the importers' cursors. Each :class:`~returnflow.ports.store.Commit` is one
transaction that locks the returns it writes and checks their versions; a stale version, a
repeated inbound key or effect key, and a unique violation, serialization failure or deadlock
met on the way are all :class:`~returnflow.errors.ConcurrencyConflict` with nothing written.

Several workers, in any number of processes and machines, claim from one outbox at once: a
claim locks the heads it takes with ``FOR UPDATE SKIP LOCKED`` and leases them, so no effect is
handed out twice and no worker waits for another's rows; only the oldest pending effect of each
return is claimable; a crashed worker's claims are claimable again when the lease ends.

Times are ``timestamptz``; records, history entries, effects and results are JSON kept as
``text`` (read back faster than ``jsonb``, and any string a record holds round-trips). The
store creates and migrates its schema when it opens, under an advisory lock, so that several
processes may open a fresh database at once.

Beside this module: the schema and its migrations (``_postgres_schema``), the SQL and the
encoding of rows (``_postgres_rows``), the pipelined statements of one commit
(``_postgres_commit``) and what the server's errors mean (``_postgres_errors``).
"""

from __future__ import annotations

import builtins
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from returnflow._bodies import dump_effect, load_record
from returnflow.domain._time import instant
from returnflow.domain.model import ReturnRecord
from returnflow.errors import (
    ConcurrencyConflict,
    ConfigurationError,
    ReturnNotFound,
    StoreUnavailable,
    UnitsTaken,
    ValidationError,
)
from returnflow.ports.store import (
    Attempt,
    Commit,
    InboundKey,
    Lease,
    Listing,
    OutboxEntry,
    Pruned,
)
from returnflow.stores import _pages
from returnflow.stores._conflicts import moved as _moved
from returnflow.stores._conflicts import unknown_effect as _unknown_effect
from returnflow.stores._errors import listing, readable, translating
from returnflow.stores._pages import ENDED, PRUNE_BATCH, check_cutoff, check_page, check_run
from returnflow.stores._postgres_attempts import record_alone, record_claiming
from returnflow.stores._postgres_claim import claim_statement, claimed, claimed_or_released
from returnflow.stores._postgres_commit import Connection, apply
from returnflow.stores._postgres_errors import RACES, translate
from returnflow.stores._postgres_rows import (
    ATTEMPT,
    DONE,
    ENTRY_COLUMNS,
    RECORD,
    RECORDS,
    attempt_params,
    checked_text,
    columns,
    count_customer,
    entry,
)
from returnflow.stores._postgres_schema import check_schema, migrate
from returnflow.stores._targets import redacted

__all__ = ["PostgresStore"]


def _check_sizes(min_size: int, max_size: int, timeout: float) -> None:
    if isinstance(min_size, bool) or not isinstance(min_size, int) or min_size < 0:
        raise ConfigurationError(
            "must be a whole number, 0 or more", field="min_size", value=min_size
        )
    if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < max(min_size, 1):
        raise ConfigurationError(
            f"must be a whole number, at least 1 and at least min_size ({min_size})",
            field="max_size",
            value=max_size,
        )
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ConfigurationError(
            "must be a number of seconds above 0", field="timeout", value=timeout
        )


@translating(translate)
class PostgresStore:
    """Returns, history, outbox, inbox and cursors in one PostgreSQL database.

    ``dsn`` is a libpq connection string or ``postgresql://`` URL; the store keeps a pool of
    ``min_size`` to ``max_size`` connections, and waits at most ``timeout`` seconds for one.
    The store is safe to share between threads; each process opens its own. ``read_only``:
    migrate nothing, and have the server refuse every write
    (:class:`~returnflow.errors.StoreReadOnly`).

    Failures are :class:`~returnflow.errors.StoreError`\\ s: a server that cannot be reached
    is :class:`~returnflow.errors.StoreUnavailable` (also a ``ConfigurationError`` naming
    ``dsn``), a read-only server or transaction :class:`~returnflow.errors.StoreReadOnly`, a
    full disk :class:`~returnflow.errors.StoreFull`, a return whose row cannot be read back
    :class:`~returnflow.errors.UnreadableRecord` (listings skip it and name it).
    """

    _CACHE_SIZE = 10_000

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 30.0,
        read_only: bool = False,
    ) -> None:
        if not isinstance(dsn, str) or not dsn.strip():
            raise ConfigurationError(
                "must be a PostgreSQL connection string", field="dsn", value=dsn
            )
        _check_sizes(min_size, max_size, timeout)
        self.dsn = dsn
        self._guard = threading.Lock()
        # Records are immutable: a version read from the database names exactly one record,
        # so one already built is reused instead of rebuilt from JSON.
        self._cache: OrderedDict[tuple[str, str], ReturnRecord] = OrderedDict()
        try:
            given = conninfo_to_dict(dsn)
        except psycopg.ProgrammingError as error:
            raise self._fail_to_connect(error) from error
        # A server that does not answer is an error in seconds, not a hang (unless the DSN
        # says how long to wait).
        self._connect: dict[str, Any] = (
            {} if "connect_timeout" in given else {"connect_timeout": 10}
        )
        self.read_only = read_only
        if read_only:
            self._connect["options"] = "-c default_transaction_read_only=on"
        self._migrate()
        self._pool: ConnectionPool[Connection] = ConnectionPool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            kwargs={"autocommit": True, **self._connect},
            open=True,
            name="returnflow",
        )

    def __repr__(self) -> str:
        return f"PostgresStore({redacted(self.dsn)!r})"

    # -- the record cache -------------------------------------------------------------------

    def _remember(self, record: ReturnRecord) -> None:
        with self._guard:
            self._cache[(record.shop, record.id)] = record
            self._cache.move_to_end((record.shop, record.id))
            while len(self._cache) > self._CACHE_SIZE:
                self._cache.popitem(last=False)

    def _cached(self, shop: str, return_id: str) -> ReturnRecord | None:
        with self._guard:
            return self._cache.get((shop, return_id))

    def _recall(self, shop: str, return_id: str, version: int) -> ReturnRecord | None:
        record = self._cached(shop, return_id)
        return record if record is not None and record.version == version else None

    # -- connections and schema -------------------------------------------------------------

    def _fail_to_connect(self, error: Exception) -> StoreUnavailable:
        return StoreUnavailable(
            f"cannot open the PostgreSQL database: {error}".strip(),
            operation="open",
            field="dsn",
            value=redacted(self.dsn),
        )

    def _migrate(self) -> None:
        try:
            connection = psycopg.connect(self.dsn, autocommit=True, **self._connect)
        except (psycopg.OperationalError, psycopg.ProgrammingError) as error:
            raise self._fail_to_connect(error) from error
        with connection:
            if self.read_only:
                check_schema(connection, self.dsn)
            else:
                migrate(connection, self.dsn)

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        with self._pool.connection() as connection:
            yield connection

    @contextmanager
    def _write(self) -> Iterator[tuple[Connection, psycopg.Pipeline]]:
        """One transaction in pipeline mode; a race the server detects (a unique violation,
        a serialization failure, a deadlock) is a :class:`ConcurrencyConflict`."""
        try:
            with (
                self._pool.connection() as connection,
                connection.pipeline() as pipeline,
                connection.transaction(),
            ):
                yield connection, pipeline
        except RACES as error:
            raise ConcurrencyConflict(
                "commit", 0, -1, f"another transaction got there first ({error.sqlstate})"
            ) from error

    def close(self) -> None:
        """Close every connection of the pool (idempotent)."""
        self._pool.close()

    def schema_version(self) -> int:
        with self._connection() as db:
            row = db.execute("SELECT version FROM schema_version").fetchone()
        assert row is not None
        return int(row[0])

    # -- reads ------------------------------------------------------------------------------

    def _build(
        self, shop: str, return_id: str, version: int, body: str, history: str | None
    ) -> ReturnRecord:
        cached = self._recall(shop, return_id, version)
        if cached is not None:
            return cached

        def build() -> ReturnRecord:
            return load_record(body, history)

        record = readable(shop, return_id, build)
        self._remember(record)
        return record

    def _records(self, rows: Sequence[tuple[Any, ...]]) -> Listing:
        return listing(rows, lambda row: self._build(*row), lambda row: (row[0], row[1]))

    def get(self, shop: str, return_id: str) -> ReturnRecord:
        cached = self._cached(shop, return_id)
        with self._connection() as db:
            row = db.execute(
                f"{RECORD} WHERE r.shop = %(shop)s AND r.id = %(id)s",
                {
                    "shop": shop,
                    "id": return_id,
                    "cached": None if cached is None else cached.version,
                },
            ).fetchone()
        if row is None:
            raise ReturnNotFound(shop, return_id)
        if row[3] is None:  # the stored version is the cached one
            assert cached is not None
            return cached
        return self._build(*row)

    def list(
        self,
        shop: str,
        *,
        order_id: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> Sequence[ReturnRecord]:
        check_page(after, limit)
        query = f"{RECORDS} WHERE r.shop = %(shop)s"
        most = None if limit is None else _pages.rows_of(limit)
        params: dict[str, Any] = {"shop": shop, "order": order_id, "limit": most}
        if order_id is not None:
            query += " AND r.order_id = %(order)s"
        with self._connection() as db:
            if after is not None:
                row = db.execute(
                    "SELECT created_at FROM returns WHERE shop = %s AND id = %s", (shop, after)
                ).fetchone()
                if row is None:
                    raise ReturnNotFound(shop, after)
                query += ' AND (r.created_at, r.id COLLATE "C") > (%(at)s, %(after)s)'
                params.update(at=row[0], after=after)
            query += ' ORDER BY r.created_at, r.id COLLATE "C"'
            if limit is not None:
                query += " LIMIT %(limit)s"
            rows = db.execute(query, params).fetchall()
        return self._records(rows)

    def count_customer_returns(self, shop: str, customer_email: str, *, since: datetime) -> int:
        with self._connection() as db:
            return count_customer(db, shop, customer_email, since)

    def list_in(
        self,
        shop: str | None,
        statuses: Sequence[str],
        *,
        exchange_status: str | None = None,
        limit: int = 1000,
    ) -> Sequence[ReturnRecord]:
        query = f"{RECORDS} WHERE r.status = ANY(%(statuses)s)"
        params: dict[str, Any] = {"statuses": list(statuses), "limit": _pages.rows_of(limit)}
        if exchange_status is not None:
            query += " AND r.exchange_status = %(exchange)s"
            params["exchange"] = exchange_status
        if shop is not None:
            query += " AND r.shop = %(shop)s"
            params["shop"] = shop
        query += ' ORDER BY r.created_at, r.shop COLLATE "C", r.id COLLATE "C" LIMIT %(limit)s'
        with self._connection() as db:
            rows = db.execute(query, params).fetchall()
        return self._records(rows)

    def list_due(self, now: datetime, *, limit: int = 1000) -> Sequence[ReturnRecord]:
        query = (
            f"{RECORDS} WHERE r.due_at IS NOT NULL AND r.due_at < %(now)s "
            'ORDER BY r.due_at, r.shop COLLATE "C", r.id COLLATE "C" LIMIT %(limit)s'
        )
        with self._connection() as db:
            params = {"now": instant("now", now), "limit": _pages.rows_of(limit)}
            rows = db.execute(query, params).fetchall()
        return self._records(rows)

    def shops_with(self, return_id: str) -> builtins.list[str]:
        """Shops that have a return with this id (for operators' tools, not tenants)."""
        with self._connection() as db:
            rows = db.execute("SELECT shop FROM returns WHERE id = %s", (return_id,)).fetchall()
        return sorted(shop for (shop,) in rows)

    def count(self) -> int:
        with self._connection() as db:
            row = db.execute("SELECT count(*) FROM returns").fetchone()
        assert row is not None
        return int(row[0])

    def prune(self, *, older_than: datetime, inbox_older_than: datetime) -> Pruned:
        outbox_cutoff = check_cutoff("older_than", older_than)
        inbox_cutoff = check_cutoff("inbox_older_than", inbox_older_than)
        outbox = inbox = 0
        last = 0
        while True:  # delivered effects in sequence order, a batch per transaction
            with self._connection() as db, db.transaction():
                rows = db.execute(DONE, (list(ENDED), outbox_cutoff, last, PRUNE_BATCH))
                found = rows.fetchall()
                if not found:
                    break
                last = int(found[-1][0])
                old = [int(seq) for seq, prunable in found if prunable]
                if old:
                    db.execute("DELETE FROM outbox WHERE seq = ANY(%s)", (old,))
                outbox += len(old)
        while True:
            with self._connection() as db, db.transaction():
                deleted = db.execute(
                    "DELETE FROM inbox WHERE ctid = ANY(ARRAY("
                    "SELECT ctid FROM inbox WHERE at < %s LIMIT %s))",
                    (inbox_cutoff, PRUNE_BATCH),
                ).rowcount
            inbox += deleted
            if deleted < PRUNE_BATCH:
                break
        return Pruned(outbox=outbox, inbox=inbox)

    def seen(self, key: InboundKey) -> bool:
        with self._connection() as db:
            row = db.execute(
                "SELECT 1 FROM inbox WHERE shop = %s AND source = %s AND event_id = %s",
                (key.shop, key.source, key.event_id),
            ).fetchone()
        return row is not None

    def inbound(self, shop: str, return_id: str) -> builtins.list[tuple[str, str, datetime]]:
        """Inbound events processed for one return: ``(source, event_id, at)``."""
        with self._connection() as db:
            rows = db.execute(
                "SELECT source, event_id, at FROM inbox WHERE shop = %s AND return_id = %s "
                'ORDER BY at, source COLLATE "C", event_id COLLATE "C"',
                (shop, return_id),
            ).fetchall()
        return [(source, event_id, at) for source, event_id, at in rows]

    def outbox(self, shop: str, return_id: str) -> Sequence[OutboxEntry]:
        with self._connection() as db:
            rows = db.execute(
                f"SELECT {ENTRY_COLUMNS} FROM outbox WHERE shop = %s AND return_id = %s "
                "ORDER BY seq",
                (shop, return_id),
            ).fetchall()
        return [entry(row) for row in rows]

    def pending(self, limit: int = 100) -> Sequence[OutboxEntry]:
        with self._connection() as db:
            rows = db.execute(
                f"SELECT {ENTRY_COLUMNS} FROM outbox WHERE status = 'pending' "
                "ORDER BY seq LIMIT %s",
                (_pages.rows_of(limit),),
            ).fetchall()
        return [entry(row) for row in rows]

    # -- writes -----------------------------------------------------------------------------

    def commit(self, commit: Commit) -> Sequence[OutboxEntry]:
        if commit == Commit(records=(), attempts=commit.attempts) and commit.attempts:
            self._attempts_alone(commit.attempts)
            return ()
        lease = commit.claim
        if lease is not None and commit == Commit(
            records=(), attempts=commit.attempts, claim=lease
        ):
            return self._attempts_claiming(commit.attempts, lease) if commit.attempts else ()
        claim: tuple[str, dict[str, Any]] | None = None
        known = {effect.key: effect for effect in commit.effects}
        if lease is not None:
            now = instant("now", lease.now)
            check_run(lease.run)
            claim = claim_statement(
                now=now,
                lease_until=instant("lease_until", lease.until),
                worker=lease.worker,
                limit=len(lease.returns),
                run=lease.run,
                returns=lease.returns,
                known=known,
            )
        # Rows are locked in one order, so that two commits of the same returns queue
        # instead of deadlocking.
        rows = sorted(
            ((record, expected, columns(record)) for record, expected in commit.records),
            key=lambda row: (row[0].shop, row[0].id),
        )
        effects = [
            (
                checked_text("effect.key", effect.key),
                checked_text("effect.shop", effect.shop),
                checked_text("effect.return_id", effect.return_id),
                effect.kind,
                dump_effect(effect),
            )
            for effect in commit.effects
        ]
        if commit.inbound is not None:
            for name in ("shop", "source", "event_id"):
                checked_text(f"inbound.{name}", getattr(commit.inbound, name))
        for record, expected, _ in rows:
            if record.version != expected + 1:
                raise ConcurrencyConflict(record.id, expected + 1, record.version)
        try:
            with self._write() as (db, pipeline):
                rows_claimed = apply(db, pipeline, commit, rows, effects, self._recall, claim)
                # a damaged row it claimed undoes the commit (as on SQLite), not raised after
                entries = claimed(rows_claimed, now, known) if lease is not None else []
        except UnitsTaken as taken:  # name the unit and the return that holds it
            held = self.units(commit.records[0][0].shop, taken.order_id)
            clash = sorted(
                unit for unit in taken.units if held.get(unit, taken.return_id) != taken.return_id
            )
            if not clash:
                raise
            raise UnitsTaken(taken.return_id, taken.order_id, clash, held[clash[0]]) from None
        except ConcurrencyConflict as conflict:
            if conflict.actual != -1 or not commit.records:
                raise
            # A version the update did not find, or a row the server refused for a racing
            # writer's: name the version stored now.
            record, expected = commit.records[0]
            actual = self._stored_version(record)
            raise ConcurrencyConflict(record.id, expected, actual) from conflict.__cause__
        for record, _ in commit.records:
            self._remember(record)
        return entries

    def _attempts_alone(self, attempts: Sequence[Attempt]) -> None:
        """A commit of delivery attempts alone (:func:`record_alone`)."""
        with self._connection() as db:
            record_alone(db, attempts)

    def _attempts_claiming(
        self, attempts: Sequence[Attempt], lease: Lease
    ) -> builtins.list[OutboxEntry]:
        """A commit of delivery attempts alone with a claim (:func:`record_claiming`)."""
        with self._connection() as db:
            return record_claiming(db, attempts, lease)

    def units(self, shop: str, order_id: str) -> dict[tuple[str, int], str]:
        """The order's ledger: each held unit and the return holding it."""
        with self._connection() as db:
            rows = db.execute(
                "SELECT order_line_id, unit, return_id FROM order_units "
                "WHERE shop = %s AND order_id = %s",
                (shop, order_id),
            ).fetchall()
        return {(line, int(unit)): holder for line, unit, holder in rows}

    def _stored_version(self, record: ReturnRecord) -> int:
        with self._connection() as db:
            row = db.execute(
                "SELECT version FROM returns WHERE shop = %s AND id = %s",
                (record.shop, record.id),
            ).fetchone()
        return 0 if row is None else int(row[0])

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
        limit = _pages.rows_of(limit)
        statement, params = claim_statement(
            now=now,
            lease_until=lease_until,
            worker=worker,
            limit=limit,
            run=run,
            shop=shop,
            return_id=return_id,
        )
        with self._connection() as db:
            rows = db.execute(statement, params).fetchall()
            return claimed_or_released(db, rows, now, worker, lease_until)

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
        attempt = Attempt(key, ok, at, result, error, give_up, retry_at)
        with self._connection() as db:
            row = db.execute(
                f"{ATTEMPT} RETURNING {ENTRY_COLUMNS}", attempt_params(attempt)
            ).fetchone()
            if row is None:  # done or given up stays so
                row = db.execute(
                    f"SELECT {ENTRY_COLUMNS} FROM outbox WHERE key = %s", (key,)
                ).fetchone()
        if row is None:
            raise _unknown_effect(key)
        return entry(row)

    # -- cursors --------------------------------------------------------------------------------

    def read_cursor(self, name: str) -> str | None:
        """The value last written under ``name``, or ``None`` if none was."""
        with self._connection() as db:
            row = db.execute("SELECT value FROM cursors WHERE name = %s", (name,)).fetchone()
        return None if row is None else str(row[0])

    def write_cursor(self, name: str, value: str, *, expected: str | None) -> None:
        """Replace the value under ``name`` with ``value`` if it is still ``expected``
        (``None``: no value yet); otherwise raise ``ConcurrencyConflict`` and write nothing."""
        for field, text in (("name", name), ("value", value), ("expected", expected)):
            if text is None and field == "expected":
                continue
            if not isinstance(text, str):
                raise ValidationError(field, text, "must be text")
            checked_text(field, text)
        with self._connection() as db:
            if expected is None:
                cursor = db.execute(
                    "INSERT INTO cursors (name, value) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                    (name, value),
                )
            else:
                cursor = db.execute(
                    "UPDATE cursors SET value = %s WHERE name = %s AND value = %s",
                    (value, name, expected),
                )
        if cursor.rowcount != 1:
            raise ConcurrencyConflict(f"cursor {name}", 0, 1, _moved(name, expected))
