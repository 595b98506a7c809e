"""The PostgreSQL store on a real server: the whole store contract, and its own promises.

The server comes from ``postgres_support`` (a throwaway cluster, or the one
``RETURNFLOW_TEST_POSTGRES_DSN`` names); every test gets a database of its own.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import queue as queue_module
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator
from datetime import timedelta, timezone
from typing import Any

import attrs
import pytest

import postgres_support
from returnflow.errors import (
    ConcurrencyConflict,
    ConfigurationError,
    ReturnNotFound,
    UnitsTaken,
    ValidationError,
)
from returnflow.ports.store import Commit, InboundKey, ReturnStore
from returnflow.stores import open_store
from returnflow.stores.sqlite import SqliteStore
from returnflow.testing.contract import (
    BASE_TIME,
    StoreContract,
    make_effect,
    make_history_entry,
    make_record,
    next_version,
)

if not postgres_support.required():
    pytest.importorskip("psycopg", reason="the postgres extra is not installed")

import psycopg

from returnflow.stores import _postgres_commit as postgres_commit
from returnflow.stores.postgres import PostgresStore


@pytest.fixture(scope="session")
def cluster() -> postgres_support.Cluster:
    return postgres_support.cluster_or_skip()


@pytest.fixture
def dsn(cluster: postgres_support.Cluster) -> str:
    """A database with the schema and nothing in it."""
    return cluster.empty_database()


@pytest.fixture
def fresh_dsn(cluster: postgres_support.Cluster) -> Iterator[str]:
    """A new database nothing ever opened (dropped after the test)."""
    with cluster.database() as url:
        yield url


@pytest.fixture
def store(dsn: str) -> Iterator[PostgresStore]:
    opened = PostgresStore(dsn)
    try:
        yield opened
    finally:
        opened.close()


def sql(dsn: str, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
    """Run one statement on its own connection; its rows (if any)."""
    with psycopg.connect(dsn, autocommit=True) as connection:
        cursor = connection.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def read_fresh(dsn: str, shop: str, return_id: str) -> Any:
    """The return as a new store (an empty cache) reads it."""
    fresh = PostgresStore(dsn)
    try:
        return fresh.get(shop, return_id)
    finally:
        fresh.close()


class TestPostgresStore(StoreContract):
    @pytest.fixture(autouse=True)
    def _database(self, dsn: str) -> None:
        self.dsn = dsn

    def make_store(self) -> ReturnStore:
        return PostgresStore(self.dsn)

    def open_in_other_process(self) -> Callable[[], ReturnStore] | None:
        return functools.partial(PostgresStore, self.dsn)


# -- PostgreSQL only: schema ----------------------------------------------------------------


def test_schema_version_is_6_and_a_reopened_database_keeps_its_data(fresh_dsn: str) -> None:
    record = make_record("shop-a", "R1")
    effect = make_effect("shop-a", "R1", 0)
    key = InboundKey("shop-a", "carrier", "evt-1")
    store = PostgresStore(fresh_dsn)
    try:
        assert store.schema_version() == 6
        store.commit(Commit(records=((record, 0),), effects=(effect,), inbound=key))
        v2 = next_version(record, status="approved")
        store.commit(Commit(records=((v2, 1),)))
        store.record_attempt(effect.key, ok=True, at=BASE_TIME, result={"id": "evt-9"})
    finally:
        store.close()
    reopened = PostgresStore(fresh_dsn)  # a new cache: everything comes from the database
    try:
        assert reopened.schema_version() == 6
        got = reopened.get("shop-a", "R1")
        assert got == v2
        assert [entry.payload for entry in got.history] == [entry.payload for entry in v2.history]
        (entry,) = reopened.outbox("shop-a", "R1")
        assert (entry.effect, entry.status, entry.result) == (effect, "done", {"id": "evt-9"})
        assert reopened.seen(key)
        assert reopened.inbound("shop-a", "R1") == [("carrier", "evt-1", record.updated_at)]
        assert list(reopened.pending()) == []
        assert (reopened.count(), reopened.shops_with("R1"), reopened.shops_with("R2")) == (
            1,
            ["shop-a"],
            [],
        )
        v3 = next_version(got, status="closed")
        reopened.commit(Commit(records=((v3, 2),)))
        assert reopened.get("shop-a", "R1") == v3
    finally:
        reopened.close()
    assert sql(fresh_dsn, "SELECT version FROM schema_version") == [(6,)]
    tables = {
        name
        for (name,) in sql(fresh_dsn, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    }
    assert tables == {
        "schema_version",
        "returns",
        "history",
        "outbox",
        "inbox",
        "cursors",
        "order_units",
    }


def test_a_database_at_schema_1_is_migrated_to_6(fresh_dsn: str) -> None:
    PostgresStore(fresh_dsn).close()
    sql(fresh_dsn, "DROP TABLE cursors")
    sql(fresh_dsn, "DROP TABLE order_units")
    sql(fresh_dsn, "ALTER TABLE returns DROP COLUMN due_at")
    sql(fresh_dsn, "ALTER TABLE returns DROP COLUMN customer_email")  # and its index
    sql(fresh_dsn, "UPDATE schema_version SET version = 1")
    store = PostgresStore(fresh_dsn)
    try:
        assert store.schema_version() == 6
        assert store.read_cursor("import:loop:shop-a") is None
        store.write_cursor("import:loop:shop-a", "42", expected=None)
        assert store.read_cursor("import:loop:shop-a") == "42"
    finally:
        store.close()


def test_a_database_at_schema_2_gets_the_ledger_of_the_units_its_returns_hold(
    fresh_dsn: str,
) -> None:
    store = PostgresStore(fresh_dsn)
    held = make_record("shop-a", "R1", order_id="O-1", units={"L1": (0, 1)})
    closed = make_record("shop-a", "R2", order_id="O-1", units={"L1": (2,)}, status="closed")
    cancelled = attrs.evolve(
        make_record("shop-a", "R3", order_id="O-1", units={"L1": (3,)}), status="cancelled"
    )
    for record in (held, closed, cancelled):
        store.commit(Commit(records=((record, 0),)))
    store.close()
    sql(fresh_dsn, "DROP TABLE order_units")
    sql(fresh_dsn, "ALTER TABLE returns DROP COLUMN due_at")
    sql(fresh_dsn, "ALTER TABLE returns DROP COLUMN customer_email")  # and its index
    sql(fresh_dsn, "UPDATE schema_version SET version = 2")
    migrated = PostgresStore(fresh_dsn)
    try:
        assert migrated.schema_version() == 6
        ledger = migrated.units("shop-a", "O-1")
        assert {unit: ledger[unit] for unit in ledger if unit[0] == "L1"} == {
            ("L1", 0): "R1",
            ("L1", 1): "R1",
            ("L1", 2): "R2",
        }
        clash = make_record("shop-a", "R4", order_id="O-1", units={"L1": (2,)})
        with pytest.raises(UnitsTaken) as raised:
            migrated.commit(Commit(records=((clash, 0),)))
        assert raised.value.held_by == "R2"
        assert raised.value.units == (("L1", 2),)
        migrated.commit(
            Commit(records=((make_record("shop-a", "R5", order_id="O-1", units={"L1": (3,)}), 0),))
        )
    finally:
        migrated.close()


def test_a_database_with_a_newer_schema_is_refused(fresh_dsn: str) -> None:
    store = PostgresStore(fresh_dsn)
    newer = store.schema_version() + 1
    store.close()
    sql(fresh_dsn, "UPDATE schema_version SET version = %s", (newer,))
    with pytest.raises(ConfigurationError, match=f"schema {newer}") as caught:
        PostgresStore(fresh_dsn)
    assert caught.value.field == "dsn"
    assert caught.value.value == fresh_dsn
    assert sql(fresh_dsn, "SELECT version FROM schema_version") == [(newer,)]


def _open_and_report(dsn: str, barrier: Any, results: Any) -> None:
    try:
        barrier.wait(timeout=60)
        store = PostgresStore(dsn)
        try:
            results.put(("ok", store.schema_version()))
        finally:
            store.close()
    except BaseException:
        results.put(("error", traceback.format_exc()))


def test_processes_opening_a_fresh_database_at_once_migrate_it_once(fresh_dsn: str) -> None:
    context = multiprocessing.get_context("spawn")
    processes = 4
    barrier = context.Barrier(processes)
    results = context.Queue()
    children = [
        context.Process(target=_open_and_report, args=(fresh_dsn, barrier, results), daemon=True)
        for _ in range(processes)
    ]
    for child in children:
        child.start()
    try:
        outcomes = [results.get(timeout=90) for _ in children]
    except queue_module.Empty:
        raise AssertionError("a process did not open the store") from None
    finally:
        for child in children:
            child.join(timeout=30)
            if child.is_alive():
                child.kill()
    assert outcomes == [("ok", 6)] * processes, outcomes
    assert sql(fresh_dsn, "SELECT version FROM schema_version") == [(6,)]


def test_history_rows_cannot_be_changed_nor_deleted_in_the_database(
    store: PostgresStore, dsn: str
) -> None:
    store.commit(Commit(records=((make_record("shop-a", "R1", 1, history_len=2), 0),)))
    for statement in (
        "UPDATE history SET event = 'forged' WHERE seq = 0",
        "DELETE FROM history WHERE seq = 1",
    ):
        with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="append-only"):
            sql(dsn, statement)
    assert [entry.event for entry in read_fresh(dsn, "shop-a", "R1").history] == [
        "note",
        "note",
    ]


def test_times_are_timestamptz_and_bodies_text(store: PostgresStore, dsn: str) -> None:
    store.commit(
        Commit(
            records=((make_record("shop-a", "R1"), 0),),
            effects=(make_effect("shop-a", "R1", 0),),
            inbound=InboundKey("shop-a", "carrier", "evt-1"),
        )
    )
    types = dict(
        sql(
            dsn,
            "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public'",
        )
    )
    for column in (
        "returns.created_at",
        "returns.updated_at",
        "history.at",
        "outbox.updated_at",
        "outbox.next_attempt_at",
        "outbox.claimed_until",
        "inbox.at",
    ):
        assert types[column] == "timestamp with time zone", column
    for column in ("returns.body", "history.body", "outbox.body", "outbox.result"):
        assert types[column] == "text", column


def test_a_lease_is_compared_as_a_time_whatever_the_offset(store: PostgresStore) -> None:
    store.commit(
        Commit(
            records=((make_record("shop-a", "R1"), 0),),
            effects=(make_effect("shop-a", "R1", 0),),
        )
    )
    tokyo = timezone(timedelta(hours=9))
    now = BASE_TIME.astimezone(tokyo)
    (claimed,) = store.claim(now=now, lease_until=now + timedelta(seconds=30), worker="w1")
    assert claimed.claimed_until == BASE_TIME + timedelta(seconds=30)
    later = BASE_TIME + timedelta(minutes=1)
    assert store.claim(now=BASE_TIME + timedelta(seconds=20), lease_until=later, worker="w2") == []
    assert (
        len(store.claim(now=BASE_TIME + timedelta(seconds=31), lease_until=later, worker="w2")) == 1
    )


# -- PostgreSQL only: conflicts the server detects --------------------------------------------


def test_a_unique_violation_is_a_conflict_and_writes_nothing(
    store: PostgresStore, dsn: str
) -> None:
    """A stray history row under the id of a new return makes the server refuse the commit's
    history insert: that is a conflict, and the return is not half written."""
    sql(
        dsn,
        "INSERT INTO history (shop, return_id, seq, version, at, event, actor, body) "
        "VALUES ('shop-a', 'R1', 0, 1, now(), 'stray', 'someone', '{}')",
    )
    key = InboundKey("shop-a", "carrier", "evt-1")
    with pytest.raises(ConcurrencyConflict) as caught:
        store.commit(
            Commit(
                records=((make_record("shop-a", "R1"), 0),),
                effects=(make_effect("shop-a", "R1", 0),),
                inbound=key,
            )
        )
    assert isinstance(caught.value.__cause__, psycopg.errors.UniqueViolation)
    with pytest.raises(ReturnNotFound):
        store.get("shop-a", "R1")
    assert (store.pending(), store.seen(key)) == ([], False)


def test_the_driver_does_not_log_an_aborted_pipeline_again(
    dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    """When a commit's pipeline fails, psycopg may log "error ignored terminating
    <Pipeline>: pipeline aborted" besides raising; the store raises the conflict, so that
    line (seen once per conflict under several workers) is dropped, and nothing else is."""
    import returnflow.stores.postgres  # noqa: F401  (installs the filter)

    driver = logging.getLogger("psycopg")
    with psycopg.connect(dsn) as connection, caplog.at_level(logging.WARNING, logger="psycopg"):
        pipeline = psycopg.Pipeline(connection)
        aborted = psycopg.errors.PipelineAborted("pipeline aborted")
        driver.warning("error ignored terminating %r: %s", pipeline, aborted)
        driver.warning("error ignored terminating %r: %s", pipeline, RuntimeError("other"))
        driver.warning("something else: %s", aborted)
    assert [record.getMessage().split(":")[-1].strip() for record in caplog.records] == [
        "other",
        "pipeline aborted",
    ]


def test_a_deadlock_is_a_conflict(store: PostgresStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever race the server reports (here a deadlock, raised by hand) is a conflict."""
    record = make_record("shop-a", "R1")

    def deadlock(*args: object, **kwargs: object) -> None:
        raise psycopg.errors.DeadlockDetected("deadlock detected")

    monkeypatch.setattr(postgres_commit, "history_rows", deadlock)
    with pytest.raises(ConcurrencyConflict) as caught:
        store.commit(Commit(records=((record, 0),)))
    assert isinstance(caught.value.__cause__, psycopg.errors.DeadlockDetected)
    monkeypatch.undo()
    with pytest.raises(ReturnNotFound):
        store.get("shop-a", "R1")
    store.commit(Commit(records=((record, 0),)))
    assert store.get("shop-a", "R1") == record


def test_a_writer_with_a_stale_cache_still_checks_the_version(dsn: str) -> None:
    """Two stores (two processes' caches) writing one return: the second store's cached
    version is stale, and its write conflicts instead of overwriting."""
    first, second = PostgresStore(dsn), PostgresStore(dsn)
    try:
        v1 = make_record("shop-a", "R1")
        first.commit(Commit(records=((v1, 0),)))
        assert second.get("shop-a", "R1") == v1  # now in the second store's cache
        v2 = next_version(first.get("shop-a", "R1"), status="approved")
        first.commit(Commit(records=((v2, 1),)))
        stale = next_version(v1, status="declined")  # from v1, as the second store read it
        with pytest.raises(ConcurrencyConflict) as caught:
            second.commit(Commit(records=((stale, 1),)))
        assert (caught.value.expected, caught.value.actual) == (1, 2)
        assert second.get("shop-a", "R1") == v2
    finally:
        first.close()
        second.close()


# -- bad input --------------------------------------------------------------------------------


def test_text_with_nul_characters_is_refused_and_nothing_is_written(store: PostgresStore) -> None:
    bad_note = make_history_entry(1, actor="agent\x00x")
    record = attrs.evolve(make_record("shop-a", "R1"), history=(bad_note,))
    with pytest.raises(ValidationError) as caught:
        store.commit(Commit(records=((record, 0),)))
    assert (caught.value.field, caught.value.value) == ("history[0].actor", "agent\x00x")
    with pytest.raises(ValidationError) as caught:
        store.commit(
            Commit(
                records=((make_record("shop-a", "R1"), 0),),
                inbound=InboundKey("shop-a", "carrier", "evt\x001"),
            )
        )
    assert caught.value.field == "inbound.event_id"
    assert store.count() == 0
    # NUL inside JSON bodies is fine: the body is escaped JSON text
    noted = attrs.evolve(make_record("shop-a", "R1"), customer_note="a\x00b")
    store.commit(Commit(records=((noted, 0),)))
    assert read_fresh(store.dsn, "shop-a", "R1").customer_note == "a\x00b"


def test_an_error_message_with_nul_characters_is_still_recorded(store: PostgresStore) -> None:
    store.commit(
        Commit(
            records=((make_record("shop-a", "R1"), 0),),
            effects=(make_effect("shop-a", "R1", 0),),
        )
    )
    entry = store.record_attempt(
        "shop-a/R1/0", ok=False, at=BASE_TIME, error="bad\x00body", retry_at=BASE_TIME
    )
    assert (entry.status, entry.last_error) == ("pending", "bad\ufffdbody")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"min_size": -1}, "min_size"),
        ({"max_size": 0}, "max_size"),
        ({"min_size": 5, "max_size": 2}, "max_size"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": "soon"}, "timeout"),
    ],
)
def test_bad_pool_settings_are_refused_by_name(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        PostgresStore("postgresql://nobody@127.0.0.1:1/none", **kwargs)
    assert (caught.value.field, caught.value.value) == (field, kwargs[field])


def test_a_server_that_cannot_be_reached_is_a_configuration_error_without_the_password() -> None:
    dsn = f"postgresql://app:s3cret@127.0.0.1:{postgres_support.free_port()}/returns"
    with pytest.raises(ConfigurationError) as caught:
        PostgresStore(dsn)
    assert caught.value.field == "dsn"
    assert caught.value.value == dsn.replace("s3cret", "***")
    assert "s3cret" not in str(caught.value)
    with pytest.raises(ConfigurationError) as caught:
        PostgresStore("")
    assert (caught.value.field, caught.value.value) == ("dsn", "")
    with pytest.raises(ConfigurationError, match='missing "=" after "nonsense"') as caught:
        PostgresStore("nonsense password=s3cret")
    assert (caught.value.field, caught.value.value) == ("dsn", "nonsense password=***")


def test_a_record_read_by_another_store_round_trips(dsn: str, store: PostgresStore) -> None:
    """Reads that miss the cache build the record from the database alone."""
    record = make_record("shop-a", "R1", 1, history_len=3)
    store.commit(Commit(records=((record, 0),)))
    v2 = next_version(record, status="approved")
    store.commit(Commit(records=((v2, 1),)))
    fresh = PostgresStore(dsn)
    try:
        for got in (
            fresh.get("shop-a", "R1"),
            fresh.list("shop-a")[0],
            fresh.list_in(None, ["approved"])[0],
        ):
            assert got == v2
            assert [e.payload for e in got.history] == [e.payload for e in v2.history]
        v3 = next_version(fresh.get("shop-a", "R1"))
        fresh.commit(Commit(records=((v3, 2),)))
        assert store.get("shop-a", "R1") == v3
    finally:
        fresh.close()


# -- cursors (the importers' high-water marks) ---------------------------------------------------


def test_an_unknown_cursor_reads_none(store: PostgresStore) -> None:
    assert store.read_cursor("import:loop:shop-a") is None


def test_a_cursor_written_is_read_back(store: PostgresStore) -> None:
    store.write_cursor("import:loop:shop-a", "2026-01-15T12:00:00Z", expected=None)
    assert store.read_cursor("import:loop:shop-a") == "2026-01-15T12:00:00Z"
    store.write_cursor(
        "import:loop:shop-a", "2026-01-16T08:30:00Z", expected="2026-01-15T12:00:00Z"
    )
    assert store.read_cursor("import:loop:shop-a") == "2026-01-16T08:30:00Z"


def test_a_cursor_compare_and_set_refuses_a_stale_expected_value(store: PostgresStore) -> None:
    with pytest.raises(ConcurrencyConflict):
        store.write_cursor("c", "1", expected="0")  # nothing there yet
    assert store.read_cursor("c") is None
    store.write_cursor("c", "1", expected=None)
    with pytest.raises(ConcurrencyConflict):
        store.write_cursor("c", "2", expected=None)  # there is a value now
    with pytest.raises(ConcurrencyConflict):
        store.write_cursor("c", "2", expected="0")  # not the value there
    assert store.read_cursor("c") == "1"
    store.write_cursor("c", "2", expected="1")
    with pytest.raises(ConcurrencyConflict):
        store.write_cursor("c", "3", expected="1")  # stale: another writer moved it on
    assert store.read_cursor("c") == "2"


def test_cursor_names_are_independent(store: PostgresStore) -> None:
    store.write_cursor("import:loop:shop-a", "a1", expected=None)
    store.write_cursor("import:loop:shop-b", "b1", expected=None)
    store.write_cursor("import:loop:shop-a", "a2", expected="a1")
    assert store.read_cursor("import:loop:shop-a") == "a2"
    assert store.read_cursor("import:loop:shop-b") == "b1"
    assert store.read_cursor("import:loop") is None


def _read_cursor_in_process(dsn: str, name: str, results: Any) -> None:
    try:
        store = PostgresStore(dsn)
        try:
            results.put(("ok", store.read_cursor(name)))
        finally:
            store.close()
    except BaseException:
        results.put(("error", traceback.format_exc()))


def test_a_cursor_written_is_read_by_another_process(store: PostgresStore) -> None:
    store.write_cursor("import:loop:shop-a", "cursor-9", expected=None)
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    child = context.Process(
        target=_read_cursor_in_process, args=(store.dsn, "import:loop:shop-a", results)
    )
    child.start()
    try:
        assert results.get(timeout=60) == ("ok", "cursor-9")
    finally:
        child.join(timeout=30)


@pytest.mark.parametrize(
    ("name", "value", "expected", "field"),
    [
        (7, "v", None, "name"),
        ("c", None, None, "value"),
        ("c", "v", 3, "expected"),
        ("c\x00", "v", None, "name"),
        ("c", "v\x00", None, "value"),
    ],
)
def test_a_cursor_of_anything_but_text_is_refused(
    store: PostgresStore, name: Any, value: Any, expected: Any, field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        store.write_cursor(name, value, expected=expected)
    assert caught.value.field == field
    assert store.read_cursor("c") is None


# -- open_store -------------------------------------------------------------------------------


def test_open_store_opens_postgres_for_a_url_and_sqlite_for_a_path(dsn: str, tmp_path: Any) -> None:
    for url in (dsn, dsn.replace("postgresql://", "postgres://", 1)):
        opened = open_store(url)
        try:
            assert isinstance(opened, PostgresStore)
            assert opened.schema_version() == 6
        finally:
            opened.close()
    local = open_store(str(tmp_path / "returns.db"))
    try:
        assert isinstance(local, SqliteStore)
    finally:
        local.close()


def test_open_store_without_psycopg_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # ``import psycopg`` now fails
    monkeypatch.delitem(sys.modules, "returnflow.stores.postgres")
    url = "postgresql://app:s3cret@db.internal/returns"
    with pytest.raises(ConfigurationError) as caught:
        open_store(url)
    assert caught.value.field == "db"
    assert caught.value.value == "postgresql://app:***@db.internal/returns"
    assert "returnflow[postgres]" in str(caught.value)
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize("target", ["", "   ", None])
def test_open_store_refuses_an_empty_target(target: Any) -> None:
    with pytest.raises(ConfigurationError) as caught:
        open_store(target)
    assert (caught.value.field, caught.value.value) == ("db", target)


def test_importing_returnflow_imports_no_psycopg() -> None:
    code = (
        "import sys, returnflow, returnflow.stores, returnflow.cli, returnflow.testing\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('psycopg', 'psycopg_pool')]\n"
        "assert not loaded, loaded\n"
        "assert 'returnflow.stores.postgres' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_a_database_at_schema_4_gets_its_unconfirmed_releases_due(fresh_dsn: str) -> None:
    store = PostgresStore(fresh_dsn)
    for return_id, confirmed in (("R1", False), ("R2", True)):
        record = make_record("shop-a", return_id, status="closed", exchange_status="released")
        record = attrs.evolve(
            record,
            refs=attrs.evolve(record.refs, exchange_hold_id="hold-1"),
            release_confirmed=confirmed,
        )
        store.commit(Commit(records=((record, 0),)))
    store.close()
    sql(fresh_dsn, "DROP INDEX returns_by_created")
    sql(fresh_dsn, "ALTER TABLE returns DROP COLUMN customer_email")  # and its index
    sql(fresh_dsn, "UPDATE schema_version SET version = 4")
    migrated = PostgresStore(fresh_dsn)
    try:
        assert migrated.schema_version() == 6
        due = migrated.list_due(BASE_TIME + timedelta(days=1))
        assert [record.id for record in due] == ["R1"]  # the next tick checks it
        assert [record.id for record in migrated.list("shop-a", after="R1")] == ["R2"]
    finally:
        migrated.close()


def test_a_database_at_schema_5_gets_its_customers_returns_indexed(fresh_dsn: str) -> None:
    ana = "ana@example.com"
    store = PostgresStore(fresh_dsn)
    for return_id, email, days in (
        ("R1", ana, 0),
        ("R2", ana, 2),
        ("R3", "bo@example.com", 2),
        ("R4", None, 2),
        ("R5", "nul\x00@example.com", 2),
        ("R6", ana, 3),
    ):
        record = make_record(
            "shop-a", return_id, order_id=f"O-{return_id}", created_at=BASE_TIME + timedelta(days)
        )
        note = "a NUL \x00 in a note" if return_id == "R6" else ""
        record = attrs.evolve(record, customer_email=email, customer_note=note)
        store.commit(Commit(records=((record, 0),)))
    store.close()
    sql(fresh_dsn, "ALTER TABLE returns DROP COLUMN customer_email")  # and its index
    sql(fresh_dsn, "UPDATE schema_version SET version = 5")
    migrated = PostgresStore(fresh_dsn)
    try:
        assert migrated.schema_version() == 6
        since = BASE_TIME + timedelta(days=1)
        assert migrated.count_customer_returns("shop-a", ana, since=BASE_TIME) == 3
        assert migrated.count_customer_returns("shop-a", ana, since=since) == 2
        assert migrated.count_customer_returns("shop-a", "bo@example.com", since=since) == 1
        # bodies with a NUL character (PostgreSQL's JSON functions refuse them) too
        nul = "nul\x00@example.com"
        assert migrated.count_customer_returns("shop-a", nul, since=since) == 1
        record = migrated.get("shop-a", "R5")
        migrated.commit(Commit(records=((next_version(record), 1),)))
        assert migrated.count_customer_returns("shop-a", nul, since=since) == 1
    finally:
        migrated.close()
    with psycopg.connect(fresh_dsn) as connection:
        connection.execute("SET enable_seqscan = off")
        plan = connection.execute(
            "EXPLAIN SELECT count(*) FROM returns "
            "WHERE shop = %s AND customer_email = %s AND created_at >= %s",
            ("shop-a", ana.encode(), BASE_TIME),
        ).fetchall()
    assert "returns_by_customer" in str(plan), plan
