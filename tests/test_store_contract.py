"""The store contract, run against the stores shipped with returnflow, and SQLite's own tests."""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import attrs
import pytest

from returnflow.domain.model import ReturnRecord
from returnflow.errors import ConcurrencyConflict, ConfigurationError, ReturnNotFound, UnitsTaken
from returnflow.ports.store import Attempt, Commit, InboundKey, Lease, ReturnStore
from returnflow.stores.memory import MemoryStore
from returnflow.stores.sqlite import SqliteStore
from returnflow.testing.contract import (
    BASE_TIME,
    StoreContract,
    make_effect,
    make_record,
    next_version,
)


class TestMemoryStore(StoreContract):
    def make_store(self) -> ReturnStore:
        return MemoryStore()

    def test_a_key_twice_in_one_commit_raises_and_writes_nothing(self) -> None:
        super().test_a_key_twice_in_one_commit_raises_and_writes_nothing()

    def test_a_write_that_drops_history_is_refused(self) -> None:
        super().test_a_write_that_drops_history_is_refused()

    def test_a_write_that_rewrites_history_is_refused(self) -> None:
        super().test_a_write_that_rewrites_history_is_refused()

    def test_claim_filters_by_return_id_alone(self) -> None:
        super().test_claim_filters_by_return_id_alone()


class TestSqliteStore(StoreContract):
    @pytest.fixture(autouse=True)
    def _database(self, tmp_path: Path) -> None:
        self.path = tmp_path / "returns.db"

    def make_store(self) -> ReturnStore:
        return SqliteStore(self.path)

    def open_in_other_process(self) -> Callable[[], ReturnStore] | None:
        return functools.partial(SqliteStore, self.path)

    def test_a_write_that_rewrites_history_is_refused(self) -> None:
        super().test_a_write_that_rewrites_history_is_refused()

    def test_reads_under_concurrent_writes_are_consistent(self) -> None:
        super().test_reads_under_concurrent_writes_are_consistent()


# -- SQLite only ------------------------------------------------------------------------------


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "returns.db"


_SCHEMA_7 = """
CREATE TABLE history_rowid (
    shop TEXT NOT NULL, return_id TEXT NOT NULL, seq INTEGER NOT NULL,
    version INTEGER NOT NULL, at TEXT NOT NULL, event TEXT NOT NULL, actor TEXT NOT NULL,
    body TEXT NOT NULL, PRIMARY KEY (shop, return_id, seq)
);
INSERT INTO history_rowid SELECT shop, return_id, seq, version, at, event, actor, body
FROM history;
DROP TABLE history;
ALTER TABLE history_rowid RENAME TO history;
CREATE TABLE inbox_rowid (
    shop TEXT NOT NULL, source TEXT NOT NULL, event_id TEXT NOT NULL,
    return_id TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (shop, source, event_id)
);
INSERT INTO inbox_rowid SELECT shop, source, event_id, return_id, at FROM inbox;
DROP TABLE inbox;
ALTER TABLE inbox_rowid RENAME TO inbox;
CREATE INDEX inbox_by_return ON inbox (shop, return_id);
CREATE INDEX inbox_by_at ON inbox (at);
DROP INDEX returns_by_state;
CREATE INDEX returns_by_status ON returns (status);
CREATE INDEX returns_by_exchange ON returns (exchange_status);
DROP INDEX outbox_by_return;
CREATE INDEX outbox_by_return ON outbox (shop, return_id, status, seq);
DROP INDEX outbox_pending;
CREATE INDEX outbox_pending ON outbox (status, seq);
UPDATE schema_version SET version = 7;
"""
"""What turns a file of schema 8 back into what schema 7 made, its rows kept."""


def _as_schema_7(connection: sqlite3.Connection) -> None:
    connection.executescript(_SCHEMA_7)


def _layout(connection: sqlite3.Connection) -> dict[str, object]:
    """Each table's columns and whether it has rowids, and each index's table, columns and
    condition: the schema as SQLite keeps it, whatever the text it was made with."""
    layout: dict[str, object] = {}
    rows = connection.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' "
        "AND type IN ('table', 'index')"
    ).fetchall()
    for kind, name, table, sql in rows:
        if kind == "table":
            columns = [row[1:4] for row in connection.execute(f"PRAGMA table_info({name})")]
            layout[name] = (columns, "WITHOUT ROWID" in sql.upper())
        else:
            keys = [row[2] for row in connection.execute(f"PRAGMA index_info({name})")]
            condition = sql.split(" WHERE ", 1)[1].strip() if " WHERE " in sql else None
            layout[name] = (table, keys, condition)
    return layout


def test_schema_version_is_8_and_a_reopened_file_keeps_its_data(path: Path) -> None:
    record = make_record("shop-a", "R1")
    effect = make_effect("shop-a", "R1", 0)
    key = InboundKey("shop-a", "carrier", "evt-1")
    store = SqliteStore(path)
    try:
        assert store.schema_version() == 8
        store.commit(Commit(records=((record, 0),), effects=(effect,), inbound=key))
        v2 = next_version(record, status="approved")
        store.commit(Commit(records=((v2, 1),)))
        store.record_attempt(effect.key, ok=True, at=BASE_TIME, result={"id": "evt-9"})
    finally:
        store.close()
    reopened = SqliteStore(path)
    try:
        assert reopened.schema_version() == 8
        got = reopened.get("shop-a", "R1")
        assert got == v2
        assert [entry.payload for entry in got.history] == [entry.payload for entry in v2.history]
        (entry,) = reopened.outbox("shop-a", "R1")
        assert (entry.effect, entry.status, entry.result) == (effect, "done", {"id": "evt-9"})
        assert reopened.seen(key)
        assert list(reopened.pending()) == []
        v3 = next_version(got, status="closed")
        reopened.commit(Commit(records=((v3, 2),)))
        assert reopened.get("shop-a", "R1") == v3
    finally:
        reopened.close()


def test_a_schema_1_file_is_migrated_to_8_and_keeps_its_returns(path: Path) -> None:
    store = SqliteStore(path)
    record = make_record("shop-a", "R1")
    store.commit(Commit(records=((record, 0),)))
    store.close()
    connection = sqlite3.connect(path)  # as returnflow 0.1 left it: no cursors table
    try:
        _as_schema_7(connection)
        with connection:
            connection.execute("DROP TABLE cursors")
            connection.execute("DROP TABLE order_units")
            connection.execute("DROP INDEX returns_due")
            connection.execute("ALTER TABLE returns DROP COLUMN due_at")
            connection.execute("DROP INDEX returns_by_customer")
            connection.execute("ALTER TABLE returns DROP COLUMN customer_email")
            connection.execute("UPDATE schema_version SET version = 1")
    finally:
        connection.close()

    migrated = SqliteStore(path)
    try:
        assert migrated.schema_version() == 8
        assert migrated.get("shop-a", "R1") == record
        assert migrated.read_cursor("import:loop:shop-a") is None
        migrated.write_cursor("import:loop:shop-a", "v1", expected=None)
    finally:
        migrated.close()
    reopened = SqliteStore(path)
    try:
        assert reopened.read_cursor("import:loop:shop-a") == "v1"
    finally:
        reopened.close()


def test_a_schema_2_file_gets_the_ledger_of_the_units_its_returns_hold(path: Path) -> None:
    store = SqliteStore(path)
    held = make_record("shop-a", "R1", order_id="O-1", units={"L1": (0, 1)})
    closed = make_record("shop-a", "R2", order_id="O-1", units={"L1": (2,)}, status="closed")
    cancelled = make_record("shop-a", "R3", order_id="O-1", units={"L1": (3,)})
    cancelled = attrs.evolve(cancelled, status="cancelled")
    for record in (held, closed, cancelled):
        store.commit(Commit(records=((record, 0),)))
    store.close()
    connection = sqlite3.connect(path)  # as returnflow before the ledger left it
    try:
        _as_schema_7(connection)
        with connection:
            connection.execute("DROP TABLE order_units")
            connection.execute("DROP INDEX returns_due")
            connection.execute("ALTER TABLE returns DROP COLUMN due_at")
            connection.execute("DROP INDEX returns_by_customer")
            connection.execute("ALTER TABLE returns DROP COLUMN customer_email")
            connection.execute("UPDATE schema_version SET version = 2")
    finally:
        connection.close()

    migrated = SqliteStore(path)
    try:
        assert migrated.schema_version() == 8
        ledger = migrated.units("shop-a", "O-1")
        assert {unit: ledger[unit] for unit in ledger if unit[0] == "L1"} == {
            ("L1", 0): "R1",
            ("L1", 1): "R1",
            ("L1", 2): "R2",
        }
        clash = make_record("shop-a", "R4", order_id="O-1", units={"L1": (2,)})
        with pytest.raises(UnitsTaken):
            migrated.commit(Commit(records=((clash, 0),)))
        free = make_record("shop-a", "R5", order_id="O-1", units={"L1": (3,)})
        migrated.commit(Commit(records=((free, 0),)))
    finally:
        migrated.close()


def test_a_schema_5_file_keeps_its_ledger_rows_in_one_tree(path: Path) -> None:
    store = SqliteStore(path)
    held = make_record("shop-a", "R1", order_id="O-1", units={"L1": (0, 1)})
    store.commit(Commit(records=((held, 0),)))
    store.close()
    connection = sqlite3.connect(path)  # as the ledger's first schema left it
    try:
        _as_schema_7(connection)
        with connection:
            connection.executescript(
                """
                DROP TABLE order_units;
                CREATE TABLE order_units (
                    shop TEXT NOT NULL, order_id TEXT NOT NULL, order_line_id TEXT NOT NULL,
                    unit INTEGER NOT NULL, return_id TEXT NOT NULL,
                    PRIMARY KEY (shop, order_id, order_line_id, unit)
                );
                CREATE INDEX order_units_by_return ON order_units (shop, return_id);
                INSERT INTO order_units VALUES ('shop-a', 'O-1', 'L1', 0, 'R1');
                INSERT INTO order_units VALUES ('shop-a', 'O-1', 'L1', 1, 'R1');
                INSERT INTO order_units VALUES ('shop-a', 'O-1', 'L2', 0, 'R1');
                DROP INDEX returns_by_customer;
                ALTER TABLE returns DROP COLUMN customer_email;
                UPDATE schema_version SET version = 5;
                """
            )
    finally:
        connection.close()
    migrated = SqliteStore(path)
    try:
        assert migrated.schema_version() == 8
        assert migrated.units("shop-a", "O-1") == {
            ("L1", 0): "R1",
            ("L1", 1): "R1",
            ("L2", 0): "R1",
        }
        clash = make_record("shop-a", "R2", order_id="O-1", units={"L1": (1, 2)})
        with pytest.raises(UnitsTaken) as taken:
            migrated.commit(Commit(records=((clash, 0),)))
        assert (taken.value.units, taken.value.held_by) == ((("L1", 1),), "R1")
        with pytest.raises(ReturnNotFound):
            migrated.get("shop-a", "R2")
        assert ("L1", 2) not in migrated.units("shop-a", "O-1")  # the whole commit undone
    finally:
        migrated.close()
    raw = sqlite3.connect(path)
    try:
        (sql,) = raw.execute("SELECT sql FROM sqlite_master WHERE name = 'order_units'").fetchone()
        indexes = raw.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'order_units'"
        ).fetchall()
    finally:
        raw.close()
    assert "WITHOUT ROWID" in sql
    assert indexes == []


def test_a_database_with_a_newer_schema_is_refused(path: Path) -> None:
    store = SqliteStore(path)
    newer = store.schema_version() + 1
    store.close()
    connection = sqlite3.connect(path)
    try:
        with connection:
            connection.execute("UPDATE schema_version SET version = ?", (newer,))
    finally:
        connection.close()
    with pytest.raises(ConfigurationError, match=f"schema {newer}") as caught:
        SqliteStore(path)
    assert caught.value.field == "path"
    assert caught.value.value == str(path)


def test_the_journal_is_in_wal_mode(path: Path) -> None:
    store = SqliteStore(path)
    try:
        store.commit(Commit(records=((make_record("shop-a", "R1"), 0),)))
        connection = sqlite3.connect(path)
        try:
            assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        finally:
            connection.close()
    finally:
        store.close()


def test_a_lease_is_compared_as_a_time_not_as_text(path: Path) -> None:
    """Leases and retry times in other offsets than UTC compare by the instant they name."""
    from datetime import timezone

    store = SqliteStore(path)
    try:
        store.commit(
            Commit(
                records=((make_record("shop-a", "R1"), 0),),
                effects=(make_effect("shop-a", "R1", 0),),
            )
        )
        tokyo = timezone(timedelta(hours=9))
        now = BASE_TIME.astimezone(tokyo)
        claimed = store.claim(now=now, lease_until=now + timedelta(seconds=30), worker="w1")
        assert len(claimed) == 1
        # 20 s later, in UTC: the lease (written in +09:00) is still live
        assert (
            store.claim(
                now=BASE_TIME + timedelta(seconds=20),
                lease_until=BASE_TIME + timedelta(minutes=1),
                worker="w2",
            )
            == []
        )
        assert (
            len(
                store.claim(
                    now=BASE_TIME + timedelta(seconds=31),
                    lease_until=BASE_TIME + timedelta(minutes=1),
                    worker="w2",
                )
            )
            == 1
        )
    finally:
        store.close()


def test_connections_of_threads_that_ended_are_closed(path: Path) -> None:
    """A server that runs each request on a new thread keeps one connection per live thread,
    not one per request it ever served."""
    import threading

    store = SqliteStore(path)
    try:
        store.commit(Commit(records=((make_record("shop-a", "R1"), 0),)))
        for _ in range(20):
            reader = threading.Thread(target=store.get, args=("shop-a", "R1"))
            reader.start()
            reader.join()
        store.get("shop-a", "R1")  # this thread's connection, opened first
        assert len(store._connections) <= 2
        opened = list(store._connections.values())
        store.close()
        for connection in opened:
            with pytest.raises(sqlite3.ProgrammingError):
                connection.execute("SELECT 1")
    finally:
        store.close()


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_conflict_says_what_clashed(kind: str, path: Path) -> None:
    """Not every conflict is a stale version: the message names the event, effect or
    cursor another writer got to first."""
    from returnflow.errors import ConcurrencyConflict

    store: ReturnStore = MemoryStore() if kind == "memory" else SqliteStore(path)
    record = make_record("shop-a", "R1")
    effect = make_effect("shop-a", "R1", 0)
    key = InboundKey("shop-a", "carrier", "evt-1")
    store.commit(Commit(records=((record, 0),), effects=(effect,), inbound=key))
    v2 = next_version(record, status="approved")
    with pytest.raises(ConcurrencyConflict, match="carrier:evt-1 of shop shop-a was already"):
        store.commit(Commit(records=((v2, 1),), inbound=key))
    with pytest.raises(ConcurrencyConflict, match=f"effect {effect.key} is already in the outbox"):
        store.commit(Commit(records=((v2, 1),), effects=(effect,)))
    store.write_cursor("import:loop:shop-a", "m1", expected=None)
    with pytest.raises(ConcurrencyConflict, match="'import:loop:shop-a' is no longer unset") as e:
        store.write_cursor("import:loop:shop-a", "m2", expected=None)
    assert e.value.reason is not None
    assert store.read_cursor("import:loop:shop-a") == "m1"
    assert store.get("shop-a", "R1") == record


def _released_unconfirmed(return_id: str, *, confirmed: bool = False) -> ReturnRecord:
    """A closed return whose exchange was released, the release not confirmed yet (or
    confirmed), stored before release checks were timers: no due time."""
    record = make_record("shop-a", return_id, status="closed", exchange_status="released")
    return attrs.evolve(
        record,
        refs=attrs.evolve(record.refs, exchange_hold_id="hold-1"),
        release_confirmed=confirmed,
        due_at=None,
    )


def test_a_schema_4_file_gets_its_unconfirmed_releases_due(path: Path) -> None:
    store = SqliteStore(path)
    for record in (_released_unconfirmed("R1"), _released_unconfirmed("R2", confirmed=True)):
        store.commit(Commit(records=((record, 0),)))
    store.close()
    connection = sqlite3.connect(path)  # as returnflow before keyset pages left it
    try:
        _as_schema_7(connection)
        with connection:
            connection.execute("DROP INDEX returns_by_created")
            connection.execute("DROP INDEX inbox_by_at")
            connection.execute("DROP INDEX returns_by_customer")
            connection.execute("ALTER TABLE returns DROP COLUMN customer_email")
            connection.execute("UPDATE schema_version SET version = 4")
    finally:
        connection.close()
    migrated = SqliteStore(path)
    try:
        assert migrated.schema_version() == 8
        due = migrated.list_due(BASE_TIME + timedelta(days=1))
        assert [record.id for record in due] == ["R1"]  # the next tick checks it
        assert [record.id for record in migrated.list("shop-a", limit=1, after="R1")] == ["R2"]
    finally:
        migrated.close()


def _schema_of(connection: sqlite3.Connection) -> tuple[list[str], list[str]]:
    """The ``returns`` table's columns and the names of its indexes."""
    columns = [row[1] for row in connection.execute("PRAGMA table_info(returns)")]
    indexes = sorted(
        name
        for (name,) in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'returns' "
            "AND name NOT LIKE 'sqlite_autoindex%'"
        )
    )
    return columns, indexes


def test_a_schema_6_file_gets_its_customers_returns_indexed(path: Path, tmp_path: Path) -> None:
    from returnflow.stores._sqlite_schema import MIGRATIONS

    ana, bo = "ana@example.com", "bo@example.com"
    nul = "nul\x00@example.com"
    records = [
        attrs.evolve(
            make_record("shop-a", return_id, order_id=f"O-{return_id}", created_at=created),
            customer_email=email,
            customer_note="a NUL \x00 in a note" if return_id == "R6" else "",
        )
        for return_id, email, created in (
            ("R1", ana, BASE_TIME),
            ("R2", ana, BASE_TIME + timedelta(days=2)),
            ("R3", bo, BASE_TIME + timedelta(days=2)),
            ("R4", None, BASE_TIME + timedelta(days=2)),
            ("R5", nul, BASE_TIME + timedelta(days=2)),
            ("R6", bo, BASE_TIME + timedelta(days=3)),
        )
    ]
    store = SqliteStore(path)
    for record in records:
        store.commit(Commit(records=((record, 0),)))
    store.close()
    with contextlib.closing(sqlite3.connect(path)) as connection, connection:
        _as_schema_7(connection)
        # as returnflow with schema 6 left it: no e-mail column, no index by customer
        connection.execute("DROP INDEX returns_by_customer")
        connection.execute("ALTER TABLE returns DROP COLUMN customer_email")
        connection.execute("UPDATE schema_version SET version = 6")
        downgraded = _schema_of(connection)
    with contextlib.closing(sqlite3.connect(tmp_path / "six.db")) as six:
        for script in MIGRATIONS[:6]:
            six.executescript(script)
        assert downgraded == _schema_of(six)  # the file is what schema 6 made
    migrated = SqliteStore(path)
    try:
        assert migrated.schema_version() == 8
        since = BASE_TIME + timedelta(days=1)
        assert migrated.count_customer_returns("shop-a", ana, since=BASE_TIME) == 2
        assert migrated.count_customer_returns("shop-a", ana, since=since) == 1
        assert migrated.count_customer_returns("shop-a", bo, since=BASE_TIME) == 2
        assert migrated.count_customer_returns("shop-a", nul, since=BASE_TIME) == 1
        assert migrated.count_customer_returns("shop-a", "nul", since=BASE_TIME) == 0
        assert migrated.get("shop-a", "R2") == records[1]
        later = attrs.evolve(
            make_record("shop-a", "R9", order_id="O-R9", created_at=since), customer_email=ana
        )
        migrated.commit(Commit(records=((later, 0),)))
        assert migrated.count_customer_returns("shop-a", ana, since=since) == 2
    finally:
        migrated.close()
    with contextlib.closing(sqlite3.connect(path)) as connection:
        plan = connection.execute(
            "EXPLAIN QUERY PLAN SELECT COUNT(*) FROM returns "
            "WHERE shop = ? AND customer_email = ? AND created_at >= ?",
            ("shop-a", ana, "2026"),
        ).fetchall()
    assert "returns_by_customer" in str(plan), plan


def test_a_schema_7_file_gets_fewer_trees_and_keeps_its_rows(path: Path, tmp_path: Path) -> None:
    record = make_record("shop-a", "R1", order_id="O-1", units={"L1": (0,)})
    first, second = make_effect("shop-a", "R1", 0), make_effect("shop-a", "R1", 1)
    key = InboundKey("shop-a", "carrier", "evt-1")
    store = SqliteStore(path)
    try:
        store.commit(Commit(records=((record, 0),), effects=(first, second), inbound=key))
        v2 = next_version(record, status="approved")
        store.commit(Commit(records=((v2, 1),)))
        store.record_attempt(first.key, ok=True, at=BASE_TIME, result={"id": "lbl-1"})
        units = store.units("shop-a", "O-1")
    finally:
        store.close()
    assert units[("L1", 0)] == "R1"
    with contextlib.closing(sqlite3.connect(path)) as connection:
        _as_schema_7(connection)
        downgraded = _layout(connection)
    with contextlib.closing(sqlite3.connect(tmp_path / "seven.db")) as seven:
        from returnflow.stores._sqlite_schema import MIGRATIONS

        for script in MIGRATIONS[:7]:
            seven.executescript(script)
        seven.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        assert downgraded == _layout(seven)  # the file is what schema 7 made

    migrated = SqliteStore(path)
    try:
        assert migrated.schema_version() == 8
        got = migrated.get("shop-a", "R1")
        assert got == v2
        assert [entry.payload for entry in got.history] == [entry.payload for entry in v2.history]
        assert migrated.seen(key)
        assert [(source, event) for source, event, _ in migrated.inbound("shop-a", "R1")] == [
            ("carrier", "evt-1")
        ]
        done, pending = migrated.outbox("shop-a", "R1")
        assert (done.effect, done.status, done.result) == (first, "done", {"id": "lbl-1"})
        assert (pending.effect, pending.status) == (second, "pending")
        assert [entry.effect for entry in migrated.pending()] == [second]
        (claimed,) = migrated.claim(
            now=BASE_TIME, lease_until=BASE_TIME + timedelta(minutes=1), worker="w", run=1
        )
        assert claimed.effect == second
        assert migrated.units("shop-a", "O-1") == units
        migrated.commit(Commit(records=((next_version(got, status="closed"), 2),)))
        assert [entry.version for entry in migrated.get("shop-a", "R1").history] == [1, 2, 3]
        with pytest.raises(ConcurrencyConflict):  # the inbox key still refuses a repeat
            migrated.commit(Commit(records=(), inbound=key))
    finally:
        migrated.close()
    fresh = SqliteStore(tmp_path / "fresh.db")
    fresh.close()
    with (
        contextlib.closing(sqlite3.connect(path)) as connection,
        contextlib.closing(sqlite3.connect(tmp_path / "fresh.db")) as made,
    ):
        after = _layout(connection)
        assert after == _layout(made)
    assert after["history"] == (_layout_columns(after["history"]), True)
    assert after["inbox"] == (_layout_columns(after["inbox"]), True)
    assert after["outbox_pending"] == ("outbox", ["seq"], "status = 'pending'")
    assert after["outbox_by_return"] == ("outbox", ["shop", "return_id", "seq"], None)
    assert after["returns_by_state"] == ("returns", ["status", "exchange_status"], None)
    assert "returns_by_status" not in after
    assert "returns_by_exchange" not in after


def _layout_columns(table: object) -> object:
    """The columns of a table's entry in :func:`_layout`."""
    assert isinstance(table, tuple)
    return table[0]


_QUERIES = {
    "a return's version": "SELECT version FROM returns WHERE shop = ? AND id = ?",
    "a return's history": "SELECT body FROM history WHERE shop = ? AND return_id = ? ORDER BY seq",
    "returns by status": "SELECT shop, id, body FROM returns WHERE status IN (?, ?) "
    "AND exchange_status = ? ORDER BY created_at, shop, id LIMIT 10",
    "an inbound key": "SELECT 1 FROM inbox WHERE shop = ? AND source = ? AND event_id = ?",
    "a return's inbound keys": "SELECT source, event_id, at FROM inbox WHERE shop = ? "
    "AND return_id = ? ORDER BY at, source, event_id",
    "old inbound keys": "SELECT shop, source, event_id FROM inbox WHERE at < ? LIMIT 10",
    "a return's outbox": "SELECT key FROM outbox WHERE shop = ? AND return_id = ? ORDER BY seq",
    "what is pending": "SELECT key FROM outbox WHERE status = 'pending' ORDER BY seq LIMIT 10",
    "an effect": "SELECT seq FROM outbox WHERE key = ?",
    "a return's run": "SELECT key FROM outbox WHERE shop = ? AND return_id = ? "
    "AND status = 'pending' AND seq > ? ORDER BY seq LIMIT 10",
    "a return's pending effects": "SELECT key FROM outbox WHERE shop = ? AND return_id = ? "
    "AND status = 'pending' ORDER BY seq LIMIT 10",
    "delivered effects to prune": "SELECT seq FROM outbox WHERE status = 'done' AND seq > ? "
    "ORDER BY seq LIMIT 10",
}


@pytest.mark.parametrize("query", sorted(_QUERIES))
def test_every_query_of_the_sqlite_store_finds_its_rows_through_a_key(
    query: str, path: Path
) -> None:
    SqliteStore(path).close()
    with contextlib.closing(sqlite3.connect(path)) as connection:
        plan = connection.execute(
            f"EXPLAIN QUERY PLAN {_QUERIES[query]}", ("a", "b", "c")[: _QUERIES[query].count("?")]
        ).fetchall()
    steps = [row[3] for row in plan]
    # a whole table is never read: each step searches a key or walks an index in order
    assert [step for step in steps if step.startswith("SCAN") and " USING " not in step] == []
    assert any(step.startswith(("SEARCH", "SCAN")) for step in steps), steps


def _store_of(kind: str, path: Path, request: pytest.FixtureRequest) -> Iterator[ReturnStore]:
    """A store of ``kind`` (``memory``, ``sqlite``, ``postgres``: a database of its own),
    closed after the test."""
    if kind == "memory":
        yield MemoryStore()
        return
    if kind == "sqlite":
        with contextlib.closing(SqliteStore(path)) as sqlite:
            yield sqlite
        return
    from returnflow.stores.postgres import PostgresStore

    with contextlib.closing(PostgresStore(request.getfixturevalue("pg_dsn"))) as postgres:
        yield postgres


@pytest.fixture
def batch_store(path: Path, request: pytest.FixtureRequest) -> Iterator[ReturnStore]:
    """The store the test's ``kind`` names."""
    yield from _store_of(request.getfixturevalue("kind"), path, request)


_KINDS = ["memory", "sqlite", "postgres"]


@pytest.mark.parametrize("kind", _KINDS)
def test_a_conflict_in_a_batch_names_the_member_that_clashed(
    kind: str, batch_store: ReturnStore
) -> None:
    """Effects, history and attempts are written a statement per batch: a clash names the
    effect it is about, not the batch's first, and leaves nothing of the batch written."""
    store = batch_store
    record = make_record("shop-a", "R1")
    queued = [make_effect("shop-a", "R1", n) for n in range(3)]
    store.commit(Commit(records=((record, 0),), effects=tuple(queued)))
    v2 = next_version(record, status="approved")
    fresh = make_effect("shop-a", "R1", 3)
    with pytest.raises(ConcurrencyConflict, match=f"effect {queued[1].key} is already"):
        store.commit(Commit(records=((v2, 1),), effects=(fresh, queued[1], queued[2])))
    with pytest.raises(ConcurrencyConflict, match=f"effect {fresh.key} is already"):
        store.commit(
            Commit(records=((v2, 1),), effects=(fresh, make_effect("shop-a", "R1", 4), fresh))
        )
    assert [entry.effect for entry in store.outbox("shop-a", "R1")] == queued
    store.record_attempt(queued[1].key, ok=True, at=BASE_TIME)
    attempts = tuple(Attempt(effect.key, ok=True, at=BASE_TIME) for effect in queued)
    with pytest.raises(ConcurrencyConflict, match=f"effect {queued[1].key} is not pending"):
        store.commit(Commit(records=((v2, 1),), attempts=attempts))
    assert [entry.status for entry in store.outbox("shop-a", "R1")] == [
        "pending",
        "done",
        "pending",
    ]
    assert store.get("shop-a", "R1") == record
    stale = next_version(v2)  # version 3 over a stored 1: refused, whatever the store holds
    with pytest.raises(ConcurrencyConflict):
        store.commit(Commit(records=((stale, 2),)))
    store.commit(Commit(records=((v2, 1),), attempts=(attempts[0], attempts[2])))
    assert [entry.status for entry in store.outbox("shop-a", "R1")] == ["done"] * 3
    assert store.get("shop-a", "R1") == v2


def test_a_version_another_process_wrote_is_refused_though_this_store_holds_its_own(
    path: Path,
) -> None:
    """A store writes a return's row without reading it when it holds the version it
    expects; the row's version is still checked by the write itself."""
    record = make_record("shop-a", "R1")
    mine, theirs = SqliteStore(path), SqliteStore(path)
    try:
        mine.commit(Commit(records=((record, 0),)))
        assert theirs.get("shop-a", "R1") == record
        theirs.commit(Commit(records=((next_version(record, status="approved"), 1),)))
        with pytest.raises(ConcurrencyConflict) as clash:
            mine.commit(Commit(records=((next_version(record, status="cancelled"), 1),)))
        assert (clash.value.expected, clash.value.actual) == (1, 2)
        assert mine.get("shop-a", "R1").status == "approved"
        with pytest.raises(ConcurrencyConflict) as again:
            theirs.commit(Commit(records=((make_record("shop-a", "R1"), 0),)))
        assert (again.value.expected, again.value.actual) == (0, 2)
    finally:
        mine.close()
        theirs.close()


@pytest.mark.parametrize("version", [(3, 34, 1), (3, 40, 1)])
def test_a_batch_of_attempts_past_one_statement_is_recorded_on_any_supported_sqlite(
    version: tuple[int, int, int], path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python's own SQLite may predate ``UPDATE ... FROM`` and ``RETURNING`` (3.33, 3.35:
    Debian 11 has 3.34): there, a batch of attempts is recorded an effect at a time, with
    the same outcome as the one statement newer SQLite takes; more than a statement's worth
    of rows (150) is recorded whole either way."""
    monkeypatch.setattr(sqlite3, "sqlite_version_info", version)
    store = SqliteStore(path)
    try:
        record = make_record("shop-a", "R1")
        queued = [make_effect("shop-a", "R1", n) for n in range(150)]
        store.commit(Commit(records=((record, 0),), effects=tuple(queued)))
        statements: list[str] = []
        store._connection().set_trace_callback(statements.append)
        v2 = next_version(record, status="approved")
        attempts = tuple(Attempt(effect.key, ok=True, at=BASE_TIME) for effect in queued)
        store.commit(Commit(records=((v2, 1),), attempts=attempts))
        store._connection().set_trace_callback(None)
        newer = [text for text in statements if "RETURNING" in text or " FROM v " in text]
        assert (len(newer) > 0) == (version >= (3, 35, 0))
        assert [entry.status for entry in store.outbox("shop-a", "R1")] == ["done"] * 150
        assert [entry.attempts for entry in store.outbox("shop-a", "R1")] == [1] * 150
    finally:
        store.close()


@pytest.mark.parametrize("kind", _KINDS)
@pytest.mark.parametrize("clash", ["queued before", "given twice"])
def test_a_clash_past_the_first_statement_of_a_batch_names_its_own_effect(
    kind: str, clash: str, batch_store: ReturnStore
) -> None:
    """Effects are queued a statement per 100 (SQLite) or in one statement (PostgreSQL):
    the effects written before the one refused, by the same commit, are not the clash, nor
    is the rest of the batch."""
    store = batch_store
    record = make_record("shop-a", "R1")
    before = make_effect("shop-a", "R1", 999)
    store.commit(Commit(records=((record, 0),), effects=(before,)))
    effects = [make_effect("shop-a", "R1", n) for n in range(150)]
    effects[120] = before if clash == "queued before" else effects[30]
    with pytest.raises(ConcurrencyConflict, match=f"effect {effects[120].key} is already"):
        store.commit(Commit(records=((next_version(record), 1),), effects=tuple(effects)))
    assert [entry.effect for entry in store.outbox("shop-a", "R1")] == [before]
    assert store.get("shop-a", "R1") == record


@pytest.mark.parametrize("count", [3, 40])  # a few pending effects, and more than one read takes
@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_claim_of_one_return_hands_out_its_head_and_run_and_waits_for_a_lease_behind(
    kind: str, count: int, path: Path
) -> None:
    store: ReturnStore = MemoryStore() if kind == "memory" else SqliteStore(path)
    try:
        effects = [make_effect("shop-a", "R1", index) for index in range(count)]
        record = make_record("shop-a", "R1")
        store.commit(Commit(records=((record, 0),), effects=tuple(effects)))

        def claim(worker: str, at: timedelta = timedelta(0), run: int = 100) -> list[str]:
            now = BASE_TIME + at
            claimed = store.claim(
                now=now,
                lease_until=now + timedelta(minutes=5),
                worker=worker,
                shop="shop-a",
                return_id="R1",
                run=run,
            )
            return [entry.effect.key for entry in claimed]

        keys = [effect.key for effect in effects]
        assert claim("w1", run=count) == keys  # the head leased, the run behind it handed out
        assert claim("w2") == []  # the head is out with w1
        store.record_attempt(keys[0], ok=False, at=BASE_TIME, error="down", give_up=True)
        assert claim("w1", run=1) == [keys[1]]
        store.commit(Commit(records=((next_version(record), 1),), reopened=(keys[0],)))
        # the re-opened head waits for w1's lease of the effect behind it
        assert claim("w2") == []
        lease = store.commit(
            Commit(
                records=((next_version(store.get("shop-a", "R1")), 2),),
                claim=Lease("w2", BASE_TIME, BASE_TIME + timedelta(minutes=5), (("shop-a", "R1"),)),
            )
        )
        assert list(lease) == []
        assert claim("w2", at=timedelta(minutes=10), run=2) == keys[:2]
    finally:
        close = getattr(store, "close", None)
        if close is not None:
            close()


def test_a_listing_never_serves_a_record_another_store_changed(path: Path) -> None:
    # a first page whose every record this store built at the stored version is read in one
    # statement, without a transaction: the versions on the rows decide, as for get()
    mine, theirs = SqliteStore(path), SqliteStore(path)
    try:
        record = make_record("shop-a", "R1", order_id="O-1")
        mine.commit(Commit(records=((record, 0),)))
        assert mine.list("shop-a", order_id="O-1") == [record]
        newer = next_version(record, status="approved")
        theirs.commit(Commit(records=((newer, 1),)))
        assert mine.list("shop-a", order_id="O-1") == [newer]
        second = make_record("shop-a", "R2", order_id="O-1")
        theirs.commit(Commit(records=((second, 0),)))
        assert [r.id for r in mine.list("shop-a", order_id="O-1", limit=1)] == ["R1"]
        assert mine.list("shop-a") == [newer, second]
        assert mine.list("shop-a", order_id="O-2") == []
    finally:
        mine.close()
        theirs.close()
