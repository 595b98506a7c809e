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
"""

from __future__ import annotations

import builtins
import hashlib
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import attrs
import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from returnflow.domain._time import instant
from returnflow.domain.ledger import ENDED_UNSETTLED, held_units
from returnflow.domain.model import HistoryEntry, ReturnRecord
from returnflow.errors import (
    ConcurrencyConflict,
    ConfigurationError,
    InvalidPayload,
    ReturnflowError,
    ReturnNotFound,
    StoreError,
    StoreFull,
    StoreReadOnly,
    StoreUnavailable,
    UnitsTaken,
    ValidationError,
)
from returnflow.lifecycle.effects import Effect
from returnflow.ports.store import Attempt, Commit, InboundKey, Listing, OutboxEntry, Pruned
from returnflow.serialization import converter
from returnflow.stores._conflicts import moved as _moved
from returnflow.stores._conflicts import not_failed as _not_failed
from returnflow.stores._conflicts import not_pending as _not_pending
from returnflow.stores._conflicts import queued as _queued
from returnflow.stores._conflicts import seen as _seen
from returnflow.stores._conflicts import unknown_effect as _unknown_effect
from returnflow.stores._errors import listing, readable, translating
from returnflow.stores._pages import ENDED, PRUNE_BATCH, check_cutoff, check_page
from returnflow.stores._targets import redacted

__all__ = ["PostgresStore"]

# The pg_advisory_xact_lock key that schema migrations take: one number for returnflow.
_MIGRATION_LOCK = int.from_bytes(
    hashlib.sha256(b"returnflow schema").digest()[:8], byteorder="big", signed=True
)

_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """
        CREATE TABLE returns (
            shop text NOT NULL,
            id text NOT NULL,
            order_id text NOT NULL,
            status text NOT NULL,
            exchange_status text NOT NULL,
            version integer NOT NULL,
            history_len integer NOT NULL,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            body text NOT NULL,
            PRIMARY KEY (shop, id)
        )
        """,
        "CREATE INDEX returns_by_order ON returns (shop, order_id)",
        "CREATE INDEX returns_by_status ON returns (status, created_at)",
        "CREATE INDEX returns_by_exchange ON returns (exchange_status)",
        "CREATE INDEX returns_by_id ON returns (id)",
        """
        CREATE TABLE history (
            shop text NOT NULL,
            return_id text NOT NULL,
            seq integer NOT NULL,
            version integer NOT NULL,
            at timestamptz NOT NULL,
            event text NOT NULL,
            actor text NOT NULL,
            body text NOT NULL,
            PRIMARY KEY (shop, return_id, seq)
        )
        """,
        """
        CREATE FUNCTION returnflow_history_is_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'returnflow history is append-only (% refused)', TG_OP
                USING ERRCODE = 'integrity_constraint_violation';
        END
        $$
        """,
        """
        CREATE TRIGGER history_is_append_only BEFORE UPDATE OR DELETE ON history
        FOR EACH ROW EXECUTE FUNCTION returnflow_history_is_append_only()
        """,
        """
        CREATE TABLE outbox (
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            key text NOT NULL UNIQUE,
            shop text NOT NULL,
            return_id text NOT NULL,
            kind text NOT NULL,
            body text NOT NULL,
            status text NOT NULL DEFAULT 'pending',
            attempts integer NOT NULL DEFAULT 0,
            last_error text,
            result text,
            updated_at timestamptz,
            next_attempt_at timestamptz,
            claimed_until timestamptz,
            claimed_by text
        )
        """,
        "CREATE INDEX outbox_by_return ON outbox (shop, return_id, seq)",
        "CREATE INDEX outbox_pending ON outbox (seq) WHERE status = 'pending'",
        """
        CREATE INDEX outbox_pending_by_return ON outbox (shop, return_id, seq)
        WHERE status = 'pending'
        """,
        """
        CREATE TABLE inbox (
            shop text NOT NULL,
            source text NOT NULL,
            event_id text NOT NULL,
            return_id text NOT NULL,
            at timestamptz NOT NULL,
            PRIMARY KEY (shop, source, event_id)
        )
        """,
        "CREATE INDEX inbox_by_return ON inbox (shop, return_id)",
    ),
    ("CREATE TABLE cursors (name text PRIMARY KEY, value text NOT NULL)",),
    # The order-level ledger (returnflow.domain.ledger): a row per held unit; the primary
    # key makes a second return taking the same unit fail in the commit itself.
    (
        """
        CREATE TABLE order_units (
            shop text NOT NULL,
            order_id text NOT NULL,
            order_line_id text NOT NULL,
            unit bigint NOT NULL,
            return_id text NOT NULL,
            PRIMARY KEY (shop, order_id, order_line_id, unit)
        )
        """,
        "CREATE INDEX order_units_by_return ON order_units (shop, return_id)",
        """
        INSERT INTO order_units (shop, order_id, order_line_id, unit, return_id)
        SELECT r.shop, r.order_id, l.value ->> 'order_line_id', u.value::integer, r.id
        FROM returns r,
            jsonb_array_elements(r.body::jsonb -> 'lines') l,
            jsonb_array_elements_text(l.value -> 'units') u
        WHERE r.status NOT IN ('declined', 'cancelled', 'expired', 'reset')
        ON CONFLICT DO NOTHING
        """,
    ),
    # When a timer next has something to do for a return, indexed: a tick reads only what is
    # due. Returns stored before are due at once; their next commit sets the real time.
    (
        "ALTER TABLE returns ADD COLUMN due_at timestamptz",
        "CREATE INDEX returns_due ON returns (due_at) WHERE due_at IS NOT NULL",
        """
        UPDATE returns SET due_at = created_at
        WHERE status NOT IN ('closed', 'cancelled', 'expired', 'declined', 'reset')
        """,
    ),
    # Keyset pages of a shop's (and an order's) returns in (created_at, id) order; done
    # effects and inbox keys pruned by age; released exchanges still to check with the
    # platform are found through due_at like every other timer (those stored before get due
    # at once).
    (
        "CREATE INDEX IF NOT EXISTS returns_by_created "
        'ON returns (shop, created_at, id COLLATE "C")',
        "DROP INDEX IF EXISTS returns_by_order",
        'CREATE INDEX returns_by_order ON returns (shop, order_id, created_at, id COLLATE "C")',
        "CREATE INDEX IF NOT EXISTS outbox_done ON outbox (seq) WHERE status = 'done'",
        "CREATE INDEX IF NOT EXISTS inbox_by_at ON inbox (at)",
        """
        UPDATE returns SET due_at = updated_at
        WHERE due_at IS NULL AND exchange_status = 'released'
        AND (body::jsonb -> 'release_confirmed') IS DISTINCT FROM 'true'::jsonb
        AND (body::jsonb -> 'refs' ->> 'exchange_hold_id') IS NOT NULL
        """,
    ),
)

# Conflicts the server reports for racing writers; the service retries them like a version.
_RACES = (pg_errors.UniqueViolation, pg_errors.SerializationFailure, pg_errors.DeadlockDetected)


class _QuietAbortedPipeline(logging.Filter):
    """psycopg logs a warning when a pipeline whose transaction failed cannot be synced on
    the way out ("error ignored terminating ...: pipeline aborted"). The failure itself is
    raised to the store, which turns a race into a ConcurrencyConflict; the warning only
    repeats it, once per conflict, which several workers meet all the time."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not (
            record.msg == "error ignored terminating %r: %s"
            and len(args) == 2
            and isinstance(args[0], psycopg.Pipeline)
            and isinstance(args[1], psycopg.errors.PipelineAborted)
        )


_QUIET = _QuietAbortedPipeline()
logging.getLogger("psycopg").addFilter(_QUIET)

# One record with its history as one JSON array, in one statement (so one snapshot). The
# body is left out when the caller's cached record is of the stored version.
_RECORD = (
    "SELECT r.shop, r.id, r.version, "
    "CASE WHEN r.version = %(cached)s THEN NULL ELSE r.body END, "
    "CASE WHEN r.version = %(cached)s THEN NULL ELSE ("
    "SELECT '[' || string_agg(h.body, ',' ORDER BY h.seq) || ']' FROM history h "
    "WHERE h.shop = r.shop AND h.return_id = r.id) END "
    "FROM returns r"
)
_RECORDS = (
    "SELECT r.shop, r.id, r.version, r.body, ("
    "SELECT '[' || string_agg(h.body, ',' ORDER BY h.seq) || ']' FROM history h "
    "WHERE h.shop = r.shop AND h.return_id = r.id) "
    "FROM returns r"
)
# Delivered effects in sequence order, each with whether its return ended, has nothing due
# and was last written before the cutoff (see ``prune``).
_DONE = (
    "SELECT o.seq, COALESCE(r.status = ANY(%s) AND r.due_at IS NULL AND r.updated_at < %s, "
    "false) FROM outbox o LEFT JOIN returns r ON r.shop = o.shop AND r.id = o.return_id "
    "WHERE o.status = 'done' AND o.seq > %s ORDER BY o.seq LIMIT %s"
)
_ENTRY_COLUMNS = (
    "seq, body, status, attempts, last_error, result, updated_at, next_attempt_at, "
    "claimed_until, claimed_by"
)
_ATTEMPT = (
    "UPDATE outbox SET status = %(status)s, attempts = attempts + 1, last_error = %(error)s, "
    "result = COALESCE(%(result)s, result), updated_at = %(at)s, next_attempt_at = %(retry_at)s, "
    "claimed_until = NULL, claimed_by = NULL WHERE key = %(key)s AND status = 'pending'"
)


_REOPEN = (
    "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = NULL, "
    "claimed_until = NULL, claimed_by = NULL WHERE key = %s AND status = 'failed'"
)
_INSERT_RETURN = (
    "INSERT INTO returns (shop, id, order_id, status, exchange_status, version, history_len, "
    "created_at, updated_at, body, due_at) VALUES (%(shop)s, %(id)s, %(order_id)s, "
    "%(status)s, %(exchange_status)s, %(version)s, %(history_len)s, %(created_at)s, "
    "%(updated_at)s, %(body)s, %(due_at)s) ON CONFLICT DO NOTHING"
)
_UPDATE_RETURN = (
    "UPDATE returns SET order_id = %(order_id)s, status = %(status)s, "
    "exchange_status = %(exchange_status)s, version = %(version)s, "
    "history_len = %(history_len)s, created_at = %(created_at)s, updated_at = %(updated_at)s, "
    "body = %(body)s, due_at = %(due_at)s "
    "WHERE shop = %(shop)s AND id = %(id)s AND version = %(expected)s"
)
_INSERT_HISTORY = (
    "INSERT INTO history (shop, return_id, seq, version, at, event, actor, body) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
)

_Connection = psycopg.Connection[tuple[Any, ...]]


def _dump(value: Any) -> str:
    return json.dumps(converter.unstructure(value), separators=(",", ":"), sort_keys=True)


def _dump_entry(entry: HistoryEntry) -> str:
    return json.dumps(converter.unstructure(entry), separators=(",", ":"), sort_keys=True)


def _text(field: str, value: str) -> str:
    """A value for a text column: PostgreSQL text cannot hold NUL characters."""
    if "\x00" in value:
        raise ValidationError(field, value, "must not contain NUL characters")
    return value


def _diagnostic(message: str | None) -> str | None:
    """An error message fit for a text column (a port's message may carry anything)."""
    return None if message is None else message.replace("\x00", "\ufffd")


def _attempt_params(attempt: Attempt) -> dict[str, Any]:
    ok, give_up = attempt.ok, attempt.give_up
    return {
        "status": "done" if ok else ("failed" if give_up else "pending"),
        "error": None if ok else _diagnostic(attempt.error),
        "result": _dump(attempt.result) if ok and attempt.result is not None else None,
        "at": attempt.at,
        "retry_at": None if ok or give_up else attempt.retry_at,
        "key": attempt.key,
    }


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


def _translate(store: Any, operation: str, error: BaseException) -> ReturnflowError | None:
    """A psycopg error as what it means: the server down or out of connections
    (:class:`StoreUnavailable`), a read-only transaction or server (:class:`StoreReadOnly`),
    out of disk or memory (SQLSTATE class 53, :class:`StoreFull`), a value the server cannot
    hold (:class:`InvalidPayload`), anything else a :class:`StoreError`."""
    if not isinstance(error, psycopg.Error):
        return None
    dsn = redacted(getattr(store, "dsn", ""))
    state = getattr(error, "sqlstate", None) or ""
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if isinstance(error, pg_errors.ReadOnlySqlTransaction):
        return StoreReadOnly(
            f"the database refuses writes ({message})", operation=operation, field="dsn", value=dsn
        )
    if state.startswith("53"):
        return StoreFull(message, operation=operation, field="dsn", value=dsn)
    if isinstance(error, psycopg.DataError):
        return InvalidPayload("value", None, f"the database cannot hold it: {message}")
    if isinstance(error, psycopg.OperationalError) and not state:
        return StoreUnavailable(message, operation=operation, field="dsn", value=dsn)
    return StoreError(
        f"{type(error).__name__}: {message}", operation=operation, field="dsn", value=dsn
    )


@translating(_translate)
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
        self._pool: ConnectionPool[_Connection] = ConnectionPool(
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
        if self.read_only:
            with connection:
                self._check_schema(connection)
            return
        with connection, connection.transaction():
            # Several processes opening a fresh database at once: one migrates, the others
            # wait here and then find the schema up to date.
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            connection.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)"
            )
            row = connection.execute("SELECT version FROM schema_version").fetchone()
            current = 0 if row is None else int(row[0])
            if current > len(_MIGRATIONS):
                raise ConfigurationError(
                    f"the database has schema {current}; this returnflow knows up to "
                    f"{len(_MIGRATIONS)}",
                    field="dsn",
                    value=redacted(self.dsn),
                )
            for statements in _MIGRATIONS[current:]:
                for statement in statements:
                    connection.execute(statement)
            if row is None:
                connection.execute(
                    "INSERT INTO schema_version (version) VALUES (%s)", (len(_MIGRATIONS),)
                )
            elif current != len(_MIGRATIONS):
                connection.execute("UPDATE schema_version SET version = %s", (len(_MIGRATIONS),))

    def _check_schema(self, connection: _Connection) -> None:
        """Opened read-only: the database must hold this version's schema (reading never
        migrates)."""
        found = connection.execute("SELECT to_regclass('schema_version')").fetchone()
        row = (
            None
            if found is None or found[0] is None
            else (connection.execute("SELECT version FROM schema_version").fetchone())
        )
        if row is None or int(row[0]) != len(_MIGRATIONS):
            have = "no returnflow schema" if row is None else f"schema {row[0]}"
            raise StoreUnavailable(
                f"the database has {have}, this returnflow reads {len(_MIGRATIONS)}; open it "
                "once for writing to migrate it",
                operation="open",
                field="dsn",
                value=redacted(self.dsn),
            )

    @contextmanager
    def _connection(self) -> Iterator[_Connection]:
        with self._pool.connection() as connection:
            yield connection

    @contextmanager
    def _write(self) -> Iterator[tuple[_Connection, psycopg.Pipeline]]:
        """One transaction in pipeline mode; a race the server detects (a unique violation,
        a serialization failure, a deadlock) is a :class:`ConcurrencyConflict`."""
        try:
            with (
                self._pool.connection() as connection,
                connection.pipeline() as pipeline,
                connection.transaction(),
            ):
                yield connection, pipeline
        except _RACES as error:
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
            data = json.loads(body)
            data["history"] = json.loads(history) if history is not None else []
            built: ReturnRecord = converter.structure(data, ReturnRecord)
            return built

        record = readable(shop, return_id, build)
        self._remember(record)
        return record

    def _records(self, rows: Sequence[tuple[Any, ...]]) -> Listing:
        return listing(rows, lambda row: self._build(*row), lambda row: (row[0], row[1]))

    def get(self, shop: str, return_id: str) -> ReturnRecord:
        cached = self._cached(shop, return_id)
        with self._connection() as db:
            row = db.execute(
                f"{_RECORD} WHERE r.shop = %(shop)s AND r.id = %(id)s",
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
        query = f"{_RECORDS} WHERE r.shop = %(shop)s"
        params: dict[str, Any] = {"shop": shop, "order": order_id, "limit": limit}
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

    def list_in(
        self,
        shop: str | None,
        statuses: Sequence[str],
        *,
        exchange_status: str | None = None,
        limit: int = 1000,
    ) -> Sequence[ReturnRecord]:
        query = f"{_RECORDS} WHERE r.status = ANY(%(statuses)s)"
        params: dict[str, Any] = {"statuses": list(statuses), "limit": limit}
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
            f"{_RECORDS} WHERE r.due_at IS NOT NULL AND r.due_at < %(now)s "
            'ORDER BY r.due_at, r.shop COLLATE "C", r.id COLLATE "C" LIMIT %(limit)s'
        )
        with self._connection() as db:
            rows = db.execute(query, {"now": instant("now", now), "limit": limit}).fetchall()
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
                rows = db.execute(_DONE, (list(ENDED), outbox_cutoff, last, PRUNE_BATCH))
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

    @staticmethod
    def _entry(row: Sequence[Any]) -> OutboxEntry:
        effect: Effect = converter.structure(json.loads(row[1]), Effect)
        return OutboxEntry(
            effect=effect,
            sequence=int(row[0]),
            status=row[2],
            attempts=int(row[3]),
            last_error=row[4],
            result=None if row[5] is None else json.loads(row[5]),
            updated_at=row[6],
            next_attempt_at=row[7],
            claimed_until=row[8],
            claimed_by=row[9],
        )

    def outbox(self, shop: str, return_id: str) -> Sequence[OutboxEntry]:
        with self._connection() as db:
            rows = db.execute(
                f"SELECT {_ENTRY_COLUMNS} FROM outbox WHERE shop = %s AND return_id = %s "
                "ORDER BY seq",
                (shop, return_id),
            ).fetchall()
        return [self._entry(row) for row in rows]

    def pending(self, limit: int = 100) -> Sequence[OutboxEntry]:
        with self._connection() as db:
            rows = db.execute(
                f"SELECT {_ENTRY_COLUMNS} FROM outbox WHERE status = 'pending' "
                "ORDER BY seq LIMIT %s",
                (limit,),
            ).fetchall()
        return [self._entry(row) for row in rows]

    # -- writes -----------------------------------------------------------------------------

    def commit(self, commit: Commit) -> None:
        # Rows are locked in one order, so that two commits of the same returns queue
        # instead of deadlocking.
        rows = sorted(
            ((record, expected, self._columns(record)) for record, expected in commit.records),
            key=lambda row: (row[0].shop, row[0].id),
        )
        effects = [
            (
                _text("effect.key", effect.key),
                _text("effect.shop", effect.shop),
                _text("effect.return_id", effect.return_id),
                effect.kind,
                _dump(effect),
            )
            for effect in commit.effects
        ]
        if commit.inbound is not None:
            for name in ("shop", "source", "event_id"):
                _text(f"inbound.{name}", getattr(commit.inbound, name))
        for record, expected, _ in rows:
            if record.version != expected + 1:
                raise ConcurrencyConflict(record.id, expected + 1, record.version)
        try:
            with self._write() as (db, pipeline):
                self._apply(db, pipeline, commit, rows, effects)
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

    def _apply(
        self,
        db: _Connection,
        pipeline: psycopg.Pipeline,
        commit: Commit,
        rows: Sequence[tuple[ReturnRecord, int, dict[str, Any]]],
        effects: Sequence[tuple[str, str, str, str, str]],
    ) -> None:
        """The statements of one commit, pipelined: two round trips when the cache knows
        every record as the writer read it, three when it does not. Every count is checked
        before the transaction commits."""
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
            if expected and self._recall(record.shop, record.id, expected) is None
        ]
        if looked:
            pipeline.sync()
        for record, expected, version, history in looked:
            row = version.fetchone()
            actual = 0 if row is None else int(row[0])
            if actual != expected:
                raise ConcurrencyConflict(record.id, expected, actual)
            stored_history[(record.shop, record.id)] = [body for (body,) in history.fetchall()]

        # 2. Every write, queued; each with the count of rows it must touch.
        checks: list[tuple[psycopg.Cursor[Any], int, ConcurrencyConflict]] = []
        for record, expected, columns in rows:
            if expected == 0:
                stored: Sequence[str | HistoryEntry] = ()
                cursor = db.execute(_INSERT_RETURN, columns)
            else:
                known = self._recall(record.shop, record.id, expected)
                stored = (
                    known.history if known is not None else stored_history[(record.shop, record.id)]
                )
                if not _extends(record, stored):
                    raise ConcurrencyConflict(record.id, len(stored), len(record.history))
                # The version check is in the update itself: it finds the row only at
                # ``expected``.
                cursor = db.execute(_UPDATE_RETURN, {**columns, "expected": expected})
            checks.append((cursor, 1, ConcurrencyConflict(record.id, expected, -1)))
            entries = _history_rows(record, len(stored))
            if entries:
                db.cursor().executemany(_INSERT_HISTORY, entries)
        checks.extend(_write_units(db, commit))
        if commit.inbound is not None:
            key = commit.inbound
            cursor = db.execute(
                "INSERT INTO inbox (shop, source, event_id, return_id, at) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (
                    key.shop,
                    key.source,
                    key.event_id,
                    commit.records[0][0].id if commit.records else "",
                    _now_of(commit),
                ),
            )
            checks.append(
                (cursor, 1, ConcurrencyConflict(f"inbound {key.event_id}", 0, 1, _seen(key)))
            )
        if effects:
            keys = [effect[0] for effect in effects]
            twice = [key for key in keys if keys.count(key) > 1]
            cursor = db.cursor()
            cursor.executemany(
                "INSERT INTO outbox (key, shop, return_id, kind, body) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (key) DO NOTHING",
                effects,
            )
            clash = twice[0] if twice else " or ".join(keys)
            checks.append(
                (cursor, len(effects), ConcurrencyConflict(f"effect {clash}", 0, 1, _queued(clash)))
            )
        for reopened in commit.reopened:
            cursor = db.execute(_REOPEN, (reopened,))
            conflict = ConcurrencyConflict(f"effect {reopened}", 0, 1, _not_failed(reopened))
            checks.append((cursor, 1, conflict))
        for attempt in commit.attempts:
            cursor = db.execute(_ATTEMPT, _attempt_params(attempt))
            checks.append(
                (
                    cursor,
                    1,
                    ConcurrencyConflict(f"effect {attempt.key}", 0, 1, _not_pending(attempt.key)),
                )
            )
        pipeline.sync()
        for cursor, touched, conflict in checks:
            if cursor.rowcount != touched:
                raise conflict

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

    @staticmethod
    def _columns(record: ReturnRecord) -> dict[str, Any]:
        body = converter.unstructure(attrs.evolve(record, history=()))
        del body["history"]
        return {
            "shop": _text("record.shop", record.shop),
            "id": _text("record.id", record.id),
            "order_id": _text("record.order_id", record.order_id),
            "status": _text("record.status", record.status),
            "exchange_status": _text("record.exchange_status", record.exchange_status),
            "version": record.version,
            "history_len": len(record.history),
            "created_at": record.created_at,
            "updated_at": record.updated_at,
            "body": json.dumps(body, separators=(",", ":"), sort_keys=True),
            "due_at": record.due_at,
        }

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
        filters = ""
        params: dict[str, Any] = {
            "now": instant("now", now),
            "lease": instant("lease_until", lease_until),
            "worker": _diagnostic(worker),
            "limit": limit,
        }
        if shop is not None:
            filters += " AND o.shop = %(shop)s"
            params["shop"] = shop
        if return_id is not None:
            filters += " AND o.return_id = %(return_id)s"
            params["return_id"] = return_id
        # Heads only: due, not under a live lease, and the oldest pending effect of their
        # return (one probe of outbox_pending_by_return each; as a NOT EXISTS anti-join the
        # planner may pick a scan of every older pending row instead). Rows another worker
        # is claiming right now are skipped, not waited for.
        query = (
            "WITH picked AS MATERIALIZED ("
            "SELECT o.seq FROM outbox o WHERE o.status = 'pending' "
            "AND (o.next_attempt_at IS NULL OR o.next_attempt_at <= %(now)s) "
            "AND (o.claimed_until IS NULL OR o.claimed_until <= %(now)s) "
            "AND o.seq = (SELECT h.seq FROM outbox h WHERE h.shop = o.shop "
            "AND h.return_id = o.return_id AND h.status = 'pending' ORDER BY h.seq LIMIT 1)"
            f"{filters} ORDER BY o.seq LIMIT %(limit)s FOR UPDATE OF o SKIP LOCKED) "
            "UPDATE outbox u SET claimed_until = %(lease)s, claimed_by = %(worker)s "
            f"FROM picked WHERE u.seq = picked.seq RETURNING "
            + ", ".join(f"u.{column.strip()}" for column in _ENTRY_COLUMNS.split(","))
        )
        with self._connection() as db:
            rows = db.execute(query, params).fetchall()
        return sorted((self._entry(row) for row in rows), key=lambda entry: entry.sequence)

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
                f"{_ATTEMPT} RETURNING {_ENTRY_COLUMNS}", _attempt_params(attempt)
            ).fetchone()
            if row is None:  # done or given up stays so
                row = db.execute(
                    f"SELECT {_ENTRY_COLUMNS} FROM outbox WHERE key = %s", (key,)
                ).fetchone()
        if row is None:
            raise _unknown_effect(key)
        return self._entry(row)

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
            _text(field, text)
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


def _write_units(
    db: _Connection, commit: Commit
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


def _history_rows(record: ReturnRecord, stored: int) -> list[tuple[Any, ...]]:
    """History is append-only: the rows of the entries the store does not have yet."""
    return [
        (
            record.shop,
            record.id,
            seq,
            entry.version,
            entry.at,
            _text(f"history[{seq}].event", entry.event),
            _text(f"history[{seq}].actor", entry.actor),
            _dump_entry(entry),
        )
        for seq, entry in enumerate(record.history[stored:], start=stored)
    ]


def _extends(record: ReturnRecord, stored: Sequence[str | HistoryEntry]) -> bool:
    """Whether ``record`` keeps the ``stored`` history entries (objects or JSON) as they are."""
    if len(record.history) < len(stored):
        return False
    for new_entry, old_entry in zip(record.history, stored, strict=False):
        if new_entry is old_entry:
            continue
        old_body = old_entry if isinstance(old_entry, str) else _dump_entry(old_entry)
        if _dump_entry(new_entry) != old_body:
            return False
    return True


def _now_of(commit: Commit) -> datetime:
    """The time of a commit: its newest record's ``updated_at`` (or now, with none)."""
    return max(
        (record.updated_at for record, _ in commit.records), default=datetime.now(timezone.utc)
    )
