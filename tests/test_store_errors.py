"""Every failure of a store is a :class:`StoreError`: unavailable, read-only, full, and a
return that cannot be read (which never hides the others), on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from returnflow import (
    CarrierUpdate,
    ConfigurationError,
    InvalidPayload,
    InvalidTime,
    RequestLine,
    ReturnPolicy,
    ReturnRequest,
    StoreError,
    StoreFull,
    StoreReadOnly,
    StoreUnavailable,
    UnreadableRecord,
    ValidationError,
)
from returnflow.demo.scenarios import SHOP, order_1001
from returnflow.ports.store import Attempt, Commit, InboundKey, Lease, Listing
from returnflow.stores import open_store
from returnflow.stores.memory import MemoryStore
from returnflow.stores.sqlite import SqliteStore
from returnflow.testing import Harness
from returnflow.testing.contract import BASE_TIME, make_effect, make_record, next_version

sys.path.insert(0, os.path.dirname(__file__))


def commit_new(store: object, shop: str, return_id: str, **changes: object) -> None:
    record = make_record(shop, return_id, **changes)  # type: ignore[arg-type]
    store.commit(Commit(records=((record, 0),)))  # type: ignore[attr-defined]


# -- SQLite: opening ----------------------------------------------------------------------------


def test_a_path_in_a_missing_directory_is_unavailable_naming_the_path(tmp_path: Path) -> None:
    path = str(tmp_path / "no" / "such" / "returns.db")
    with pytest.raises(StoreUnavailable) as refused:
        SqliteStore(path)
    assert isinstance(refused.value, ConfigurationError)  # a setting to fix
    assert (refused.value.field, refused.value.value) == ("path", path)
    assert refused.value.retryable
    assert isinstance(refused.value.__cause__, sqlite3.Error)
    assert not os.path.exists(os.path.dirname(path))


def test_a_directory_is_not_a_database(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable, match="cannot open a database there"):
        SqliteStore(tmp_path)


def test_a_file_that_is_not_a_database_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"not a database, just text\n" * 200)
    before = path.read_bytes()
    for read_only in (False, True):
        with pytest.raises(StoreUnavailable, match="not a SQLite database"):
            SqliteStore(path, read_only=read_only)
    assert path.read_bytes() == before


def test_read_only_opens_nothing_that_is_not_there(tmp_path: Path) -> None:
    path = tmp_path / "returns.db"
    with pytest.raises(StoreUnavailable):
        SqliteStore(path, read_only=True)
    assert not path.exists()
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    with pytest.raises(StoreUnavailable, match="not a returnflow database"):
        SqliteStore(empty, read_only=True)


def test_read_only_does_not_migrate_an_older_schema(tmp_path: Path) -> None:
    path = tmp_path / "returns.db"
    SqliteStore(path).close()
    with contextlib.closing(sqlite3.connect(path)) as raw, raw:
        raw.execute("UPDATE schema_version SET version = 3")
    with pytest.raises(StoreUnavailable, match="schema 3"):
        SqliteStore(path, read_only=True)
    with contextlib.closing(sqlite3.connect(path)) as raw:
        assert raw.execute("SELECT version FROM schema_version").fetchone() == (3,)


# -- SQLite: read-only --------------------------------------------------------------------------


def test_a_store_opened_read_only_reads_and_refuses_every_write(tmp_path: Path) -> None:
    path = tmp_path / "returns.db"
    writer = SqliteStore(path)
    commit_new(writer, "shop-a", "R1")
    writer.commit(
        Commit(records=(), effects=(make_effect("shop-a", "R1", 0),))  # an effect to claim
    )
    writer.close()
    reader = SqliteStore(path, read_only=True)
    assert [record.id for record in reader.list("shop-a")] == ["R1"]
    record = reader.get("shop-a", "R1")
    writes = {
        "commit": lambda: reader.commit(Commit(records=((next_version(record), 1),))),
        "claim": lambda: reader.claim(
            now=BASE_TIME, lease_until=BASE_TIME + timedelta(minutes=1), worker="w"
        ),
        "record_attempt": lambda: reader.record_attempt("shop-a/R1/0", ok=True, at=BASE_TIME),
        "write_cursor": lambda: reader.write_cursor("c", "1", expected=None),
    }
    for operation, write in writes.items():
        with pytest.raises(StoreReadOnly) as refused:
            write()
        assert refused.value.operation == operation
        assert refused.value.field == "path"
    reader.close()
    again = SqliteStore(path)
    assert again.get("shop-a", "R1").version == 1
    assert [entry.status for entry in again.outbox("shop-a", "R1")] == ["pending"]
    assert again.read_cursor("c") is None
    again.close()


def test_a_connection_sqlite_keeps_read_only_refuses_the_commit(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "returns.db")
    commit_new(store, "shop-a", "R1")
    store._connection().execute("PRAGMA query_only=ON")  # what SQLite does on a RO file
    with pytest.raises(StoreReadOnly):
        commit_new(store, "shop-a", "R2")
    store._connection().execute("PRAGMA query_only=OFF")
    assert [record.id for record in store.list("shop-a")] == ["R1"]
    commit_new(store, "shop-a", "R2")  # the store goes on
    store.close()


@contextlib.contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A small file system of its own at ``where`` (mounting needs root)."""
    where.mkdir()
    mount = shutil.which("mount")
    if mount is None or os.geteuid() != 0:
        pytest.skip("mounting a file system needs root and mount(8)")
    made = subprocess.run(
        [mount, "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_file_on_a_read_only_mount_is_read_only_and_still_readable(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "mnt", "4m") as mounted:
        path = mounted / "returns.db"
        store = SqliteStore(path)
        commit_new(store, "shop-a", "R1")
        store.close()
        remount = subprocess.run(
            ["mount", "-o", "remount,ro", str(mounted)], capture_output=True, check=False
        )
        if remount.returncode != 0:
            pytest.skip(f"cannot remount read-only: {remount.stderr!r}")
        with pytest.raises(StoreReadOnly) as refused:
            SqliteStore(path)
        assert refused.value.operation == "open"
        reader = SqliteStore(path, read_only=True)
        assert [record.id for record in reader.list("shop-a")] == ["R1"]
        reader.close()


# -- SQLite: full -------------------------------------------------------------------------------


def test_a_full_database_refuses_the_commit_and_keeps_what_it_had(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "returns.db")
    commit_new(store, "shop-a", "R1")
    pages = store._connection().execute("PRAGMA page_count").fetchone()[0]
    store._connection().execute(f"PRAGMA max_page_count = {pages}")
    big = make_record("shop-a", "R2", history_len=400)
    with pytest.raises(StoreFull) as refused:
        store.commit(Commit(records=((big, 0),), inbound=InboundKey("shop-a", "c", "e1")))
    assert refused.value.operation == "commit"
    assert not refused.value.retryable
    assert [record.id for record in store.list("shop-a")] == ["R1"]
    assert not store.seen(InboundKey("shop-a", "c", "e1"))
    store._connection().execute("PRAGMA max_page_count = 1073741823")
    store.commit(Commit(records=((big, 0),)))  # room again: the same commit goes through
    assert store.count() == 2
    store.close()


def test_a_full_disk_is_store_full(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "mnt", "256k") as mounted:
        store = SqliteStore(mounted / "returns.db")

        def fill() -> None:
            for index in range(400):
                commit_new(store, "shop-a", f"R{index}", history_len=20)

        with pytest.raises(StoreFull):
            fill()
        stored = store.count()
        assert stored == len(store.list("shop-a"))
        store.close()


def test_a_lock_held_beyond_the_timeout_is_unavailable_and_retryable(tmp_path: Path) -> None:
    path = tmp_path / "returns.db"
    store = SqliteStore(path, timeout=0.05)
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreUnavailable) as refused:
            commit_new(store, "shop-a", "R1")
        assert refused.value.retryable
        other.execute("ROLLBACK")
    commit_new(store, "shop-a", "R1")
    store.close()


# -- unreadable returns -------------------------------------------------------------------------


@contextlib.contextmanager
def damaged_sqlite(
    path: Path, commit: Commit, statement: str, params: Sequence[object] = ()
) -> Iterator[SqliteStore]:
    """A store at ``path`` that wrote ``commit``, whose file was then changed behind its
    back by ``statement``: opened again (nothing cached), closed after the test."""
    store = SqliteStore(path)
    store.commit(commit)
    store.close()
    with contextlib.closing(sqlite3.connect(path)) as raw, raw:
        raw.execute(statement, params)
    store = SqliteStore(path)
    try:
        yield store
    finally:
        store.close()


WITH_EFFECT = Commit(
    records=((make_record("shop-a", "R1"), 0),), effects=(make_effect("shop-a", "R1", 0),)
)


def corrupting(return_id: str, *, history: bool = False) -> str:
    """The statement that damages ``return_id``'s body (or its history)."""
    if history:
        return f"UPDATE history SET body = '{{\"at\": 5}}' WHERE return_id = '{return_id}'"
    return f"UPDATE returns SET body = '{{not json' WHERE id = '{return_id}'"


@pytest.mark.parametrize("history", [False, True], ids=["body", "history"])
def test_an_unreadable_row_is_named_and_never_hides_the_others(
    tmp_path: Path, history: bool
) -> None:
    records = tuple(
        (make_record("shop-a", return_id, status="approved"), 0) for return_id in ("R1", "R2", "R3")
    )
    statement = corrupting("R2", history=history)
    with damaged_sqlite(tmp_path / "returns.db", Commit(records=records), statement) as store:
        with pytest.raises(UnreadableRecord) as refused:
            store.get("shop-a", "R2")
        assert (refused.value.shop, refused.value.return_id) == ("shop-a", "R2")
        assert isinstance(refused.value, StoreError)

        listed = store.list("shop-a")
        assert isinstance(listed, Listing)
        assert [record.id for record in listed] == ["R1", "R3"]
        assert [(e.shop, e.return_id) for e in listed.unreadable] == [("shop-a", "R2")]
        by_status = store.list_in("shop-a", ["approved"])
        assert [record.id for record in by_status] == ["R1", "R3"]
        assert [e.return_id for e in getattr(by_status, "unreadable", ())] == ["R2"]


def test_a_tick_reports_an_unreadable_due_return_and_runs_the_others(tmp_path: Path) -> None:
    path = tmp_path / "returns.db"
    policy = ReturnPolicy(ship_within_days=1)
    made = Harness(policy=policy, store=SqliteStore(path))
    made.ports.commerce.add_order(order_1001())
    ids = [
        made.service.request(
            ReturnRequest(
                shop=SHOP, order_id="1001", lines=[RequestLine(order_line_id=line, quantity=1)]
            )
        ).id
        for line in ("L1", "L2")
    ]
    made.store.close()  # type: ignore[attr-defined]
    with contextlib.closing(sqlite3.connect(path)) as raw, raw:
        raw.execute(corrupting(ids[0]))
    again = Harness(policy=policy, store=SqliteStore(path), clock=made.clock, ports=made.ports)
    again.clock.advance(days=2)

    report = again.service.tick()

    assert report.expired == (ids[1],)
    assert len(report.errors) == 1
    assert report.errors[0].startswith(f"{SHOP}/{ids[0]}: ")
    assert "cannot be read" in report.errors[0]
    again.store.close()  # type: ignore[attr-defined]


# -- the memory store ---------------------------------------------------------------------------


@pytest.mark.parametrize("durable", [False, True], ids=["memory", "sqlite"])
def test_a_store_lists_alike_and_refuses_a_naive_now(tmp_path: Path, durable: bool) -> None:
    store = SqliteStore(tmp_path / "r.db") if durable else MemoryStore()
    commit_new(store, "shop-a", "R1")
    listed = store.list("shop-a")
    assert isinstance(listed, Listing)
    assert listed.unreadable == ()
    naive = datetime(2026, 1, 1)
    with pytest.raises(InvalidTime):
        store.list_due(naive)
    with pytest.raises(InvalidTime):
        store.claim(now=naive, lease_until=naive, worker="w")
    with pytest.raises(InvalidPayload) as refused:
        store.record_attempt("no/such/effect", ok=True, at=BASE_TIME)
    assert (refused.value.field, refused.value.value) == ("key", "no/such/effect")


def test_open_store_maps_a_missing_directory_too(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable):
        open_store(str(tmp_path / "missing" / "x.db"))


# -- PostgreSQL ---------------------------------------------------------------------------------


def pg(dsn: str, statement: str, params: object = None) -> None:
    import psycopg

    writable = "-c default_transaction_read_only=off"
    with psycopg.connect(dsn, autocommit=True, options=writable) as connection:
        connection.execute(statement, params)  # type: ignore[arg-type]


def test_postgres_opened_read_only_reads_and_refuses_writes(pg_dsn: str) -> None:
    from returnflow.stores.postgres import PostgresStore

    writer = PostgresStore(pg_dsn)
    commit_new(writer, "shop-a", "R1")
    writer.close()
    reader = PostgresStore(pg_dsn, read_only=True)
    record = reader.get("shop-a", "R1")
    with pytest.raises(StoreReadOnly) as refused:
        reader.commit(Commit(records=((next_version(record), 1),)))
    assert (refused.value.operation, refused.value.field) == ("commit", "dsn")
    with pytest.raises(StoreReadOnly):
        reader.write_cursor("c", "1", expected=None)
    reader.close()
    again = PostgresStore(pg_dsn)
    assert again.get("shop-a", "R1").version == 1
    again.close()


def test_postgres_on_a_read_only_database_is_read_only_at_open(pg_dsn: str) -> None:
    from returnflow.stores.postgres import PostgresStore

    name = pg_dsn.rsplit("/", 1)[1].split("?", 1)[0]
    pg(pg_dsn, f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    try:
        with pytest.raises(StoreReadOnly) as refused:
            PostgresStore(pg_dsn)
        assert refused.value.operation == "open"
    finally:
        pg(pg_dsn, f'ALTER DATABASE "{name}" SET default_transaction_read_only = off')


def test_postgres_read_only_needs_the_schema(pg_dsn: str) -> None:
    from returnflow.stores.postgres import PostgresStore

    pg(pg_dsn, "UPDATE schema_version SET version = 1")
    with pytest.raises(StoreUnavailable, match="schema 1"):
        PostgresStore(pg_dsn, read_only=True)


def test_postgres_out_of_disk_is_store_full_and_writes_nothing(pg_dsn: str) -> None:
    from returnflow.stores.postgres import PostgresStore

    store = PostgresStore(pg_dsn)
    commit_new(store, "shop-a", "R1")
    # the server's own answer when a write finds no space (SQLSTATE 53100 disk_full)
    pg(
        pg_dsn,
        "CREATE FUNCTION no_space() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "RAISE EXCEPTION 'could not extend file: No space left on device' "
        "USING ERRCODE = 'disk_full'; END $$",
    )
    pg(pg_dsn, "CREATE TRIGGER no_space BEFORE INSERT ON returns EXECUTE FUNCTION no_space()")
    with pytest.raises(StoreFull) as refused:
        commit_new(store, "shop-a", "R2")
    assert refused.value.operation == "commit"
    pg(pg_dsn, "DROP TRIGGER no_space ON returns")
    assert [record.id for record in store.list("shop-a")] == ["R1"]
    commit_new(store, "shop-a", "R2")
    store.close()


def test_postgres_unreadable_row_is_named_and_never_hides_the_others(pg_dsn: str) -> None:
    from returnflow.stores.postgres import PostgresStore

    store = PostgresStore(pg_dsn)
    for return_id in ("R1", "R2", "R3"):
        commit_new(store, "shop-a", return_id)
    store.close()
    pg(pg_dsn, corrupting("R2"))
    store = PostgresStore(pg_dsn)
    with pytest.raises(UnreadableRecord) as refused:
        store.get("shop-a", "R2")
    assert (refused.value.shop, refused.value.return_id) == ("shop-a", "R2")
    listed = store.list("shop-a")
    assert [record.id for record in listed] == ["R1", "R3"]
    assert [error.return_id for error in getattr(listed, "unreadable", ())] == ["R2"]
    store.close()


def test_postgres_that_cannot_be_reached_is_unavailable(pg_dsn: str) -> None:
    import postgres_support
    from returnflow.stores.postgres import PostgresStore

    with pytest.raises(StoreUnavailable) as refused:
        PostgresStore(f"postgresql://nobody@127.0.0.1:{postgres_support.free_port()}/none")
    assert refused.value.field == "dsn"
    store = PostgresStore(pg_dsn, timeout=0.5, max_size=1)
    # the only connection is taken: the pool times out
    with store._pool.connection(), pytest.raises(StoreUnavailable) as busy:
        store.count()
    assert busy.value.retryable
    store.close()


# -- text no store can keep ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda bad: ReturnRequest(shop=bad, order_id="1", lines=[]), "shop"),
        (
            lambda bad: ReturnRequest(
                shop="s",
                order_id="1",
                lines=[RequestLine(order_line_id="L1", quantity=1, note=bad)],
            ),
            "note",
        ),
        (
            lambda bad: CarrierUpdate(shop="s", return_id="R1", event_id=bad, status="DELIVERED"),
            "event_id",
        ),
    ],
    ids=["id", "free-text", "event-id"],
)
@pytest.mark.parametrize(
    "bad", ["lone \ud800 surrogate", "nul \x00 inside"], ids=["surrogate", "nul"]
)
def test_text_no_store_can_keep_is_refused_where_it_enters(
    build: Any, field: str, bad: str
) -> None:
    if field == "note" and "\x00" in bad:
        assert build(bad).lines[0].note == bad  # free text travels inside JSON: NUL is kept
        return
    with pytest.raises(ValidationError) as refused:
        build(bad)
    assert (refused.value.field, refused.value.value) == (field, bad)


def test_a_store_refuses_text_it_cannot_encode_as_a_validation_error(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "r.db")
    record = make_record("shop-\ud800", "R1")
    with pytest.raises(InvalidPayload) as refused:
        store.commit(Commit(records=((record, 0),)))
    assert refused.value.field == "text"
    assert store.count() == 0
    store.close()


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("next_attempt_at", "garbage"),
        ("updated_at", "2026-01-01T00:00:00"),  # no offset: not what the store writes
        ("claimed_until", 42),
        ("result", "{not json"),
        ("result", "[" * 100_000),  # nested past the recursion limit
    ],
    ids=["garbage-time", "naive-time", "number-time", "not-json", "too-deep"],
)
def test_an_outbox_row_with_a_damaged_column_is_named_not_a_raw_error(
    tmp_path: Path, column: str, value: object
) -> None:
    statement = f"UPDATE outbox SET {column} = ? WHERE return_id = 'R1'"
    with damaged_sqlite(tmp_path / "returns.db", WITH_EFFECT, statement, (value,)) as store:
        with pytest.raises(UnreadableRecord) as refused:
            store.outbox("shop-a", "R1")
        assert (refused.value.shop, refused.value.return_id) == ("shop-a", "R1")
        assert "shop-a/R1/0" in refused.value.reason


@pytest.mark.parametrize("column", ["next_attempt_at", "claimed_until"])
def test_a_claim_of_one_return_names_an_outbox_time_that_is_no_text(
    tmp_path: Path, column: str
) -> None:
    # The claim of one return compares the times it read as text, as the general query
    # does in SQL; a blob there (text SQLite was handed as bytes) raised a raw TypeError.
    statement = f"UPDATE outbox SET {column} = ? WHERE return_id = 'R1'"
    with damaged_sqlite(tmp_path / "returns.db", WITH_EFFECT, statement, (b"x",)) as store:
        before = list(store._connection().execute("SELECT * FROM outbox"))
        with pytest.raises(UnreadableRecord) as refused:
            store.claim(
                now=BASE_TIME,
                lease_until=BASE_TIME + timedelta(minutes=5),
                worker="w",
                shop="shop-a",
                return_id="R1",
            )
        assert (refused.value.shop, refused.value.return_id) == ("shop-a", "R1")
        assert "shop-a/R1/0" in refused.value.reason
        assert column in refused.value.reason
        assert list(store._connection().execute("SELECT * FROM outbox")) == before


@pytest.mark.parametrize("result", ["{not json", "[" * 100_000])
def test_postgres_outbox_row_with_a_damaged_result_is_named_not_a_raw_error(
    pg_dsn: str, result: str
) -> None:
    # Its times are timestamptz (the server keeps only instants); its result is JSON text.
    from returnflow.stores.postgres import PostgresStore

    store = PostgresStore(pg_dsn)
    store.commit(WITH_EFFECT)
    pg(pg_dsn, "UPDATE outbox SET result = %s WHERE return_id = 'R1'", (result,))
    try:
        for read in (lambda: store.outbox("shop-a", "R1"), lambda: store.pending()):
            with pytest.raises(UnreadableRecord) as refused:
                read()
            assert (refused.value.shop, refused.value.return_id) == ("shop-a", "R1")
            assert "shop-a/R1/0" in refused.value.reason
    finally:
        store.close()


def _pg_leases(dsn: str) -> list[tuple[object, ...]]:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT key, status, attempts, claimed_until, claimed_by FROM outbox ORDER BY seq"
        )
        return list(rows.fetchall())


@pytest.mark.parametrize("how", ["claim", "commit", "attempts"])
def test_postgres_claim_of_a_damaged_row_raises_and_keeps_nothing(pg_dsn: str, how: str) -> None:
    # The claim's statement leases (autocommit, or the commit's transaction) before its rows
    # are read: a damaged head raised after the lease, or the whole commit, was kept, where
    # SQLite reads in its transaction and keeps nothing.
    from returnflow.stores.postgres import PostgresStore

    store = PostgresStore(pg_dsn)
    first, second = make_effect("shop-a", "R1", 0), make_effect("shop-a", "R1", 1)
    store.commit(Commit(records=((make_record("shop-a", "R1"), 0),), effects=(first, second)))
    pg(pg_dsn, "UPDATE outbox SET body = '{not json' WHERE key = %s", (second.key,))
    lease = Lease("w", BASE_TIME, BASE_TIME + timedelta(minutes=5), (("shop-a", "R1"),))
    try:
        before = _pg_leases(pg_dsn)
        record = store.get("shop-a", "R1")
        act = {
            "claim": lambda: store.claim(
                now=lease.now, lease_until=lease.until, worker="w", shop="shop-a", run=5
            ),
            "commit": lambda: store.commit(
                Commit(records=((next_version(record), record.version),), claim=lease)
            ),
            "attempts": lambda: store.commit(
                Commit(records=(), attempts=(Attempt(first.key, True, BASE_TIME),), claim=lease)
            ),
        }[how]
        with pytest.raises(UnreadableRecord) as refused:
            act()
        assert (refused.value.shop, refused.value.return_id) == ("shop-a", "R1")
        after = _pg_leases(pg_dsn)
        if how == "attempts":  # the first delivered, kept; the damaged head not leased
            assert after[0][1] == "done"
            assert after[1] == before[1]
        else:
            assert after == before
        assert store.get("shop-a", "R1").version == record.version
    finally:
        store.close()


@pytest.mark.parametrize("value", ["garbage", "2026-01-01T00:00:00", 42])
def test_an_inbox_row_with_a_damaged_time_is_named_not_a_raw_error(
    tmp_path: Path, value: object
) -> None:
    key = InboundKey("shop-a", "carrier", "e1")
    commit = Commit(records=((make_record("shop-a", "R1"), 0),), inbound=key)
    statement = "UPDATE inbox SET at = ? WHERE event_id = 'e1'"
    with damaged_sqlite(tmp_path / "returns.db", commit, statement, (value,)) as store:
        with pytest.raises(UnreadableRecord) as refused:
            store.inbound("shop-a", "R1")
        assert (refused.value.shop, refused.value.return_id) == ("shop-a", "R1")
        assert "e1" in refused.value.reason


_DAMAGED_ENTRIES = [
    ("status = 'lost'", "lost"),
    ("attempts = -1", "-1"),
    ("key = 'shop-a/R1/9'", "shop-a/R1/0"),
    ("result = 'NaN'", "NaN"),
]
_DAMAGED_IDS = ["unknown-status", "negative-attempts", "other-key", "nan-result"]


@pytest.mark.parametrize(("change", "named"), _DAMAGED_ENTRIES, ids=_DAMAGED_IDS)
def test_an_outbox_row_the_store_did_not_write_is_named_not_read_as_another(
    tmp_path: Path, change: str, named: str
) -> None:
    # Each was read as an entry: a status no effect has, a count below zero, the body of
    # another effect than the row's key, a result JSON has no value for.
    statement = f"UPDATE outbox SET {change} WHERE return_id = 'R1'"
    with damaged_sqlite(tmp_path / "returns.db", WITH_EFFECT, statement) as store:
        with pytest.raises(UnreadableRecord) as refused:
            store.outbox("shop-a", "R1")
        assert (refused.value.shop, refused.value.return_id) == ("shop-a", "R1")
        assert named in refused.value.reason


def test_an_outbox_count_that_is_no_whole_number_is_named(tmp_path: Path) -> None:
    statement = "UPDATE outbox SET attempts = 2.5 WHERE return_id = 'R1'"
    with (
        damaged_sqlite(tmp_path / "returns.db", WITH_EFFECT, statement) as store,
        pytest.raises(UnreadableRecord, match=r"attempts 2\.5"),
    ):
        store.outbox("shop-a", "R1")


@pytest.mark.parametrize(("change", "named"), _DAMAGED_ENTRIES, ids=_DAMAGED_IDS)
def test_postgres_outbox_row_the_store_did_not_write_is_named(
    pg_dsn: str, change: str, named: str
) -> None:
    from returnflow.stores.postgres import PostgresStore

    store = PostgresStore(pg_dsn)
    store.commit(WITH_EFFECT)
    pg(pg_dsn, f"UPDATE outbox SET {change} WHERE return_id = 'R1'")
    try:
        with pytest.raises(UnreadableRecord) as refused:
            store.outbox("shop-a", "R1")
        assert (refused.value.shop, refused.value.return_id) == ("shop-a", "R1")
        assert named in refused.value.reason
    finally:
        store.close()


@pytest.mark.parametrize("scope", ["all", "shop", "return"])
@pytest.mark.parametrize("value", [b"x", "garbage"], ids=["blob", "garbage"])
@pytest.mark.parametrize("column", ["next_attempt_at", "claimed_until"])
def test_every_claim_names_an_outbox_time_the_store_did_not_write(
    tmp_path: Path, column: str, value: object, scope: str
) -> None:
    # SQL orders a blob, and text such as "garbage", after every time the store writes: the
    # claim of all returns (or a shop's) read the head as not due, or under a live lease,
    # and skipped it for good without a word; so did the claim of one return for such text.
    statement = f"UPDATE outbox SET {column} = ? WHERE return_id = 'R1'"
    with damaged_sqlite(tmp_path / "returns.db", WITH_EFFECT, statement, (value,)) as store:
        before = list(store._connection().execute("SELECT * FROM outbox"))
        with pytest.raises(UnreadableRecord) as refused:
            store.claim(
                now=BASE_TIME,
                lease_until=BASE_TIME + timedelta(minutes=5),
                worker="w",
                shop=None if scope == "all" else "shop-a",
                return_id="R1" if scope == "return" else None,
            )
        assert (refused.value.shop, refused.value.return_id) == ("shop-a", "R1")
        assert "shop-a/R1/0" in refused.value.reason
        assert column in refused.value.reason
        assert list(store._connection().execute("SELECT * FROM outbox")) == before


@pytest.mark.parametrize("value", [b"x", "garbage"], ids=["blob", "garbage"])
def test_a_damaged_lease_behind_a_head_holds_nothing_back_and_is_named_when_read(
    tmp_path: Path, value: object
) -> None:
    # SQL read a damaged lease on the effect after the head as a live one, and kept the
    # head back without a word.
    first, second = make_effect("shop-a", "R1", 0), make_effect("shop-a", "R1", 1)
    commit = Commit(records=((make_record("shop-a", "R1"), 0),), effects=(first, second))
    statement = "UPDATE outbox SET claimed_until = ? WHERE key = ?"
    with damaged_sqlite(tmp_path / "returns.db", commit, statement, (value, second.key)) as store:
        before = list(store._connection().execute("SELECT * FROM outbox"))
        until = BASE_TIME + timedelta(minutes=5)
        with pytest.raises(UnreadableRecord) as refused:
            store.claim(now=BASE_TIME, lease_until=until, worker="w", run=2)
        assert second.key in refused.value.reason
        assert list(store._connection().execute("SELECT * FROM outbox")) == before
        claimed = store.claim(now=BASE_TIME, lease_until=until, worker="w")
        assert [entry.effect.key for entry in claimed] == [first.key]
