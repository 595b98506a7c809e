"""The SQLite store's schema: one script per version; the store runs those the file lacks."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

__all__ = ["AFTER", "MIGRATIONS"]

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE returns (
        shop TEXT NOT NULL,
        id TEXT NOT NULL,
        order_id TEXT NOT NULL,
        status TEXT NOT NULL,
        exchange_status TEXT NOT NULL,
        version INTEGER NOT NULL,
        history_len INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (shop, id)
    );
    CREATE INDEX returns_by_order ON returns (shop, order_id);
    CREATE INDEX returns_by_status ON returns (status);
    CREATE INDEX returns_by_exchange ON returns (exchange_status);
    CREATE TABLE history (
        shop TEXT NOT NULL,
        return_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        version INTEGER NOT NULL,
        at TEXT NOT NULL,
        event TEXT NOT NULL,
        actor TEXT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (shop, return_id, seq)
    );
    CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL UNIQUE,
        shop TEXT NOT NULL,
        return_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        body TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        result TEXT,
        updated_at TEXT,
        next_attempt_at TEXT,
        claimed_until TEXT,
        claimed_by TEXT
    );
    CREATE INDEX outbox_by_return ON outbox (shop, return_id, status, seq);
    CREATE INDEX outbox_pending ON outbox (status, seq);
    CREATE TABLE inbox (
        shop TEXT NOT NULL,
        source TEXT NOT NULL,
        event_id TEXT NOT NULL,
        return_id TEXT NOT NULL,
        at TEXT NOT NULL,
        PRIMARY KEY (shop, source, event_id)
    );
    CREATE INDEX inbox_by_return ON inbox (shop, return_id);
    """,
    """
    CREATE TABLE cursors (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # The order-level ledger (returnflow.domain.ledger): a row per held unit; the primary
    # key makes a second return taking the same unit fail in the commit itself.
    """
    CREATE TABLE order_units (
        shop TEXT NOT NULL,
        order_id TEXT NOT NULL,
        order_line_id TEXT NOT NULL,
        unit INTEGER NOT NULL,
        return_id TEXT NOT NULL,
        PRIMARY KEY (shop, order_id, order_line_id, unit)
    );
    CREATE INDEX order_units_by_return ON order_units (shop, return_id);
    INSERT OR IGNORE INTO order_units (shop, order_id, order_line_id, unit, return_id)
    SELECT r.shop, r.order_id, json_extract(l.value, '$.order_line_id'), u.value, r.id
    FROM returns r, json_each(r.body, '$.lines') l, json_each(l.value, '$.units') u
    WHERE r.status NOT IN ('declined', 'cancelled', 'expired', 'reset')
    ORDER BY r.created_at, r.id;
    """,
    # When a timer next has something to do for a return, indexed: a tick reads only what is
    # due. Returns stored before get their due time at their next commit; until then they
    # are due at once, and the first tick looks at each of them once.
    """
    ALTER TABLE returns ADD COLUMN due_at TEXT;
    CREATE INDEX returns_due ON returns (due_at) WHERE due_at IS NOT NULL;
    UPDATE returns SET due_at = created_at
    WHERE status NOT IN ('closed', 'cancelled', 'expired', 'declined', 'reset');
    """,
    # Keyset pages of a shop's (and an order's) returns in (created_at, id) order; inbox keys
    # pruned by age; released exchanges still to check with the platform are found through
    # due_at like every other timer (those stored before get due at once).
    """
    CREATE INDEX IF NOT EXISTS returns_by_created ON returns (shop, created_at, id);
    DROP INDEX IF EXISTS returns_by_order;
    CREATE INDEX returns_by_order ON returns (shop, order_id, created_at, id);
    CREATE INDEX IF NOT EXISTS inbox_by_at ON inbox (at);
    UPDATE returns SET due_at = updated_at
    WHERE due_at IS NULL AND exchange_status = 'released'
    AND json_extract(body, '$.release_confirmed') IS NOT 1
    AND json_extract(body, '$.refs.exchange_hold_id') IS NOT NULL;
    """,
    # The order-level ledger in one B-tree: rows clustered by their key (WITHOUT ROWID) and
    # found by their order when a return frees them, so that a new return's rows update one
    # tree, not three (the table, its key's index and an index by return).
    """
    CREATE TABLE order_units_keyed (
        shop TEXT NOT NULL,
        order_id TEXT NOT NULL,
        order_line_id TEXT NOT NULL,
        unit INTEGER NOT NULL,
        return_id TEXT NOT NULL,
        PRIMARY KEY (shop, order_id, order_line_id, unit)
    ) WITHOUT ROWID;
    INSERT INTO order_units_keyed (shop, order_id, order_line_id, unit, return_id)
    SELECT shop, order_id, order_line_id, unit, return_id FROM order_units;
    DROP TABLE order_units;
    ALTER TABLE order_units_keyed RENAME TO order_units;
    """,
    # Each customer's returns in a shop by creation time, indexed: the rule condition "the
    # customer's returns in the last N days" counts them without reading the shop's returns.
    # The returns stored before get their e-mail from their body; a body with a NUL
    # character anywhere, which SQLite's JSON functions cut short, by AFTER.
    """
    ALTER TABLE returns ADD COLUMN customer_email TEXT;
    UPDATE returns SET customer_email = json_extract(body, '$.customer_email')
    WHERE instr(body, '\\u0000') = 0 AND json_type(body, '$.customer_email') = 'text';
    CREATE INDEX returns_by_customer ON returns (shop, customer_email, created_at)
    WHERE customer_email IS NOT NULL;
    """,
    # Fewer trees for a commit to write. History and inbox rows are clustered by their key
    # (WITHOUT ROWID): an appended entry or a processed event key writes one tree, not two.
    # A return's status and exchange status share one index (every query by them names a
    # status). The outbox's index by return leaves status out and the index of what is
    # pending holds only what is pending: an effect marked done touches neither the index
    # by return nor a large one, only the row and the small index it leaves.
    """
    CREATE TABLE history_keyed (
        shop TEXT NOT NULL,
        return_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        version INTEGER NOT NULL,
        at TEXT NOT NULL,
        event TEXT NOT NULL,
        actor TEXT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (shop, return_id, seq)
    ) WITHOUT ROWID;
    INSERT INTO history_keyed (shop, return_id, seq, version, at, event, actor, body)
    SELECT shop, return_id, seq, version, at, event, actor, body FROM history;
    DROP TABLE history;
    ALTER TABLE history_keyed RENAME TO history;
    CREATE TABLE inbox_keyed (
        shop TEXT NOT NULL,
        source TEXT NOT NULL,
        event_id TEXT NOT NULL,
        return_id TEXT NOT NULL,
        at TEXT NOT NULL,
        PRIMARY KEY (shop, source, event_id)
    ) WITHOUT ROWID;
    INSERT INTO inbox_keyed (shop, source, event_id, return_id, at)
    SELECT shop, source, event_id, return_id, at FROM inbox;
    DROP TABLE inbox;
    ALTER TABLE inbox_keyed RENAME TO inbox;
    CREATE INDEX inbox_by_return ON inbox (shop, return_id, at);
    CREATE INDEX inbox_by_at ON inbox (at);
    DROP INDEX IF EXISTS returns_by_status;
    DROP INDEX IF EXISTS returns_by_exchange;
    CREATE INDEX IF NOT EXISTS returns_by_state ON returns (status, exchange_status);
    DROP INDEX IF EXISTS outbox_by_return;
    CREATE INDEX outbox_by_return ON outbox (shop, return_id, seq);
    DROP INDEX IF EXISTS outbox_pending;
    CREATE INDEX outbox_pending ON outbox (seq) WHERE status = 'pending';
    """,
)


def _emails_of_nul_bodies(db: sqlite3.Connection) -> None:
    """Schema 7's e-mails of the returns whose body holds an escaped NUL character, read in
    Python (SQLite's JSON functions would cut the text at it)."""
    rows = db.execute("SELECT shop, id, body FROM returns WHERE instr(body, '\\u0000') > 0")
    for shop, return_id, body in rows.fetchall():
        try:
            email = json.loads(body).get("customer_email")
        except (ValueError, AttributeError):
            continue  # a body that cannot be read: the record is unreadable, never counted
        if isinstance(email, str):
            db.execute(
                "UPDATE returns SET customer_email = ? WHERE shop = ? AND id = ?",
                (email, shop, return_id),
            )


AFTER: dict[int, Callable[[sqlite3.Connection], None]] = {7: _emails_of_nul_bodies}
"""What runs after a version's script, in Python, by the version it brings the file to."""
