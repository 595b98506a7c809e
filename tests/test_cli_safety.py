"""The installed ``returnflow`` command on data that matters: no demo parts unless asked for,
one-line errors on stderr with exit codes 0/1/2, progress on stderr, range-checked numbers,
a read-only ``inspect`` and a quiet end when its reader goes away."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import returnflow
from returnflow.ports.store import Commit
from returnflow.stores.sqlite import SqliteStore
from returnflow.testing.contract import make_effect, make_record


def _script() -> str:
    beside = Path(sys.executable).with_name("returnflow")
    found = str(beside) if beside.exists() else shutil.which("returnflow")
    if found is None:
        pytest.skip("the returnflow console script is not installed")
    return found


def returnflow_command(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_script(), *argv], capture_output=True, text=True, timeout=120, cwd=cwd, check=False
    )


def one_line_error(done: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    """The single stderr line of a failed run, with nothing on stdout."""
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def demo_db(tmp_path: Path) -> Path:
    db = tmp_path / "demo.db"
    done = returnflow_command("demo", "--db", str(db), "helpdesk-auto")
    assert done.returncode == 0, done.stderr
    return db


def test_version() -> None:
    done = returnflow_command("--version")
    assert (done.returncode, done.stdout, done.stderr) == (
        0,
        f"returnflow {returnflow.__version__}\n",
        "",
    )


def test_the_worker_refuses_a_database_without_an_app_and_leaves_it_as_it_was(
    tmp_path: Path,
) -> None:
    db = tmp_path / "prod.db"
    store = SqliteStore(db)
    store.commit(
        Commit(
            records=((make_record("shop-a", "R1"), 0),), effects=(make_effect("shop-a", "R1", 0),)
        )
    )
    store.close()

    done = returnflow_command("worker", "--db", str(db), "--once")

    one_line_error(done, 2, "returnflow worker: --app is needed", "--demo")
    store = SqliteStore(db)
    assert [entry.status for entry in store.outbox("shop-a", "R1")] == ["pending"]
    store.close()


def test_import_refuses_to_run_on_demo_parts_it_was_not_asked_for(tmp_path: Path) -> None:
    db = tmp_path / "prod.db"
    month = ("--since", "2026-01-01", "--until", "2026-02-01")
    one_line_error(returnflow_command("import", *month), 2, "--source and --db needed", "--demo")
    one_line_error(
        returnflow_command(
            "import",
            *month,
            "--source",
            "returnflow.demo.import_source:build",
            "--shop",
            "demo-loop",
            "--db",
            str(db),
        ),
        2,
        "--app is needed",
    )
    assert not db.exists()


def test_import_progress_and_the_verbose_list_go_to_stderr(tmp_path: Path) -> None:
    done = returnflow_command(
        "import", "--demo", "--since", "2026-01-01", "--until", "2026-02-01",
        "--db", str(tmp_path / "r.db"), "--verbose",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("done: 300 returns")
    assert len(done.stdout.splitlines()) == 1
    err = done.stderr.splitlines()
    assert err[0].startswith("importing 300 loop returns of shop demo-loop")
    assert [line.split(" ")[1] for line in err if line.startswith("progress: ")] == [
        "100",
        "200",
        "300",
    ]
    skipped = [line for line in err if line.startswith("skipped ")]
    assert len(skipped) == 9
    assert all(": " in line and line.split(": ", 1)[1] for line in skipped), skipped


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["worker", "--db", "x.db", "--demo", "--interval", "-1"], ["--interval", "'-1'"]),
        (["worker", "--db", "x.db", "--demo", "--interval", "inf"], ["--interval", "0 or more"]),
        (["worker", "--db", "x.db", "--demo", "--batch", "0"], ["--batch", "at least 1"]),
        (["worker", "--db", "x.db", "--demo", "--batch", "many"], ["--batch", "whole number"]),
        (["worker", "--db", "x.db", "--demo", "--max-seconds", "nan"], ["--max-seconds"]),
        (["worker", "--db", "x.db", "--app", "nosuch:thing"], ["--app 'nosuch:thing'"]),
        (["worker", "--db", "x.db", "--app", "returnflow:nothing"], ["no callable 'nothing'"]),
        (["worker", "--db", "x.db", "--app", "returnflow:Money"], ["--app 'returnflow:Money'"]),
        (["worker", "--app", "nosuch:thing"], ["--db"]),
        (["inspect", "--db", "missing.db", "R1"], ["no database there"]),
        (["demo", "no-such-scenario"], ["no such scenario"]),
        (["no-such-command"], ["invalid choice"]),
    ],
)
def test_a_bad_command_line_is_one_line_and_exit_code_2(
    tmp_path: Path, argv: list[str], words: list[str]
) -> None:
    one_line_error(returnflow_command(*argv, cwd=tmp_path), 2, *words)
    if "returnflow:Money" not in argv:  # an app is called with the store it builds on
        assert not (tmp_path / "x.db").exists()


def test_a_database_that_cannot_be_opened_is_one_line_and_exit_code_1(tmp_path: Path) -> None:
    one_line_error(
        returnflow_command("demo", "--db", "/no/such/dir/x.db"),
        1,
        "returnflow demo: StoreUnavailable: path='/no/such/dir/x.db'",
    )
    text = tmp_path / "notes.txt"
    text.write_text("shopping list\n" * 100)
    before = text.read_bytes()
    one_line_error(
        returnflow_command("inspect", "--db", str(text), "R1"), 1, "not a SQLite database"
    )
    assert text.read_bytes() == before
    one_line_error(
        returnflow_command("inspect", "--db", str(tmp_path), "R1"), 1, "StoreUnavailable"
    )


def test_inspect_with_the_wrong_shop_names_it(demo_db: Path) -> None:
    one_line_error(
        returnflow_command("inspect", "--db", str(demo_db), "--shop", "wrongshop", "R0001"),
        2,
        "--shop 'wrongshop': has no return 'R0001' (found in demo-helpdesk-auto)",
    )


def test_inspect_reads_without_writing_or_migrating(demo_db: Path) -> None:
    before = demo_db.read_bytes()
    done = returnflow_command("inspect", "--db", str(demo_db), "R0001")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("return R0001 (order 1001): ")
    assert demo_db.read_bytes() == before

    with contextlib.closing(sqlite3.connect(demo_db)) as raw, raw:
        raw.execute("UPDATE schema_version SET version = 3")
    migrated_before = demo_db.read_bytes()
    one_line_error(returnflow_command("inspect", "--db", str(demo_db), "R0001"), 1, "schema 3")
    assert demo_db.read_bytes() == migrated_before  # still schema 3: nothing migrated


@pytest.mark.parametrize("command", ["diagram", "inspect"])
def test_output_whose_reader_went_away_ends_quietly(demo_db: Path, command: str) -> None:
    argv = (
        ["diagram", "--format", "table"]
        if command == "diagram"
        else ["inspect", "--db", str(demo_db), "R0001"]
    )
    reader, writer = os.pipe()
    os.close(reader)  # like `| head` that has read all it wanted before we print
    with os.fdopen(writer, "w") as closed:
        done = subprocess.run(
            [_script(), *argv], stdout=closed, stderr=subprocess.PIPE, text=True, timeout=60
        )
    assert done.stderr == ""
    assert done.returncode == 0


def test_the_worker_rides_out_a_store_that_is_briefly_unavailable(tmp_path: Path) -> None:
    (tmp_path / "flaky.py").write_text(
        "from returnflow.demo.app import build as demo\n"
        "from returnflow.errors import StoreUnavailable\n"
        "\n"
        "def build(store):\n"
        "    service = demo(store)\n"
        "    tick, calls = service.tick, []\n"
        "\n"
        "    def flaky_tick(*args, **kwargs):\n"
        "        calls.append(1)\n"
        "        if len(calls) == 1:\n"
        "            raise StoreUnavailable('server restarting', operation='list_due')\n"
        "        return tick(*args, **kwargs)\n"
        "\n"
        "    service.tick = flaky_tick\n"
        "    return service\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run(
        [_script(), "worker", "--db", str(tmp_path / "r.db"), "--app", "flaky:build",
         "--max-seconds", "0.3", "--interval", "0.05"],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == "worker: StoreUnavailable: list_due: server restarting\n"
    assert done.stdout.startswith("worker stopped: ")


def test_the_worker_reports_a_return_it_cannot_read_and_goes_on(tmp_path: Path) -> None:
    from returnflow import RequestLine, ReturnPolicy, ReturnRequest
    from returnflow.demo.scenarios import SHOP, order_1001
    from returnflow.testing import Harness

    db = tmp_path / "returns.db"
    made = Harness(policy=ReturnPolicy(ship_within_days=1), store=SqliteStore(db))
    made.ports.commerce.add_order(order_1001())
    record = made.service.request(
        ReturnRequest(
            shop=SHOP, order_id="1001", lines=[RequestLine(order_line_id="L1", quantity=1)]
        )
    )
    made.store.close()  # type: ignore[attr-defined]
    with contextlib.closing(sqlite3.connect(db)) as raw, raw:
        raw.execute("UPDATE returns SET body = '{not json' WHERE id = ?", (record.id,))

    done = returnflow_command("worker", "--db", str(db), "--demo", "--once")

    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith(f"worker: {SHOP}/{record.id}: return {record.id!r} of shop ")
    assert "cannot be read: JSONDecodeError" in done.stderr
    assert done.stdout.splitlines()[-1].startswith("worker stopped: ")
