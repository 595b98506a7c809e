"""The PostgreSQL store's schema: the statements of each version, and the migration that runs
those a database lacks (:class:`~returnflow.stores.postgres.PostgresStore` runs it when it
opens, under an advisory lock, so that several processes may open a fresh database at once)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import psycopg

from returnflow.errors import ConfigurationError, StoreUnavailable
from returnflow.stores._targets import redacted

__all__ = ["MIGRATIONS", "check_schema", "migrate"]

# The pg_advisory_xact_lock key that schema migrations take: one number for returnflow.
MIGRATION_LOCK = int.from_bytes(
    hashlib.sha256(b"returnflow schema").digest()[:8], byteorder="big", signed=True
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (
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
    # Each customer's returns in a shop by creation time, indexed: the rule condition "the
    # customer's returns in the last N days" counts them without reading the shop's returns.
    # The e-mail is kept as its UTF-8 bytes (text cannot hold a NUL character, which a
    # free-text e-mail may). The returns stored before get it from their body; a body with
    # a NUL character anywhere, which SQL cannot read as JSON, by _emails_of_nul_bodies.
    (
        "ALTER TABLE returns ADD COLUMN customer_email bytea",
        """
        UPDATE returns SET customer_email = CASE WHEN strpos(body, '\\u0000') = 0
            THEN convert_to(body::json ->> 'customer_email', 'UTF8') END
        WHERE strpos(body, '\\u0000') = 0
        """,
        """
        CREATE INDEX returns_by_customer ON returns (shop, customer_email, created_at)
        WHERE customer_email IS NOT NULL
        """,
    ),
)


def _emails_of_nul_bodies(connection: psycopg.Connection[Any]) -> None:
    """Schema 6's e-mails of the returns whose body holds an escaped NUL character, read
    in Python (PostgreSQL's JSON functions refuse such a body)."""
    rows = connection.execute(
        "SELECT shop, id, body FROM returns WHERE strpos(body, '\\u0000') > 0"
    ).fetchall()
    for shop, return_id, body in rows:
        try:
            email = json.loads(body).get("customer_email")
        except (ValueError, AttributeError):
            continue  # a body that cannot be read: the record is unreadable, never counted
        if isinstance(email, str):
            connection.execute(
                "UPDATE returns SET customer_email = %s WHERE shop = %s AND id = %s",
                (email.encode("utf-8"), shop, return_id),
            )


# What runs after a version's statements, in Python.
_AFTER: dict[int, Callable[[psycopg.Connection[Any]], None]] = {6: _emails_of_nul_bodies}


def migrate(connection: psycopg.Connection[Any], dsn: str) -> None:
    """Bring the database ``connection`` reaches to this version's schema, in one
    transaction; a database of a newer schema is a :class:`ConfigurationError` naming
    ``dsn`` (redacted)."""
    with connection.transaction():
        # Several processes opening a fresh database at once: one migrates, the others
        # wait here and then find the schema up to date.
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        connection.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
        row = connection.execute("SELECT version FROM schema_version").fetchone()
        current = 0 if row is None else int(row[0])
        if current > len(MIGRATIONS):
            raise ConfigurationError(
                f"the database has schema {current}; this returnflow knows up to {len(MIGRATIONS)}",
                field="dsn",
                value=redacted(dsn),
            )
        for version, statements in enumerate(MIGRATIONS[current:], start=current + 1):
            for statement in statements:
                connection.execute(statement)
            if version in _AFTER:
                _AFTER[version](connection)
        if row is None:
            connection.execute(
                "INSERT INTO schema_version (version) VALUES (%s)", (len(MIGRATIONS),)
            )
        elif current != len(MIGRATIONS):
            connection.execute("UPDATE schema_version SET version = %s", (len(MIGRATIONS),))


def check_schema(connection: psycopg.Connection[Any], dsn: str) -> None:
    """Opened read-only: the database must hold this version's schema (reading never
    migrates)."""
    found = connection.execute("SELECT to_regclass('schema_version')").fetchone()
    row = (
        None
        if found is None or found[0] is None
        else (connection.execute("SELECT version FROM schema_version").fetchone())
    )
    if row is None or int(row[0]) != len(MIGRATIONS):
        have = "no returnflow schema" if row is None else f"schema {row[0]}"
        raise StoreUnavailable(
            f"the database has {have}, this returnflow reads {len(MIGRATIONS)}; open it "
            "once for writing to migrate it",
            operation="open",
            field="dsn",
            value=redacted(dsn),
        )
