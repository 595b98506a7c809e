"""`returnflow import`: the demo out of the box, progress, one id, every bad argument, a
source with bad data or failing, and `returnflow worker` polling an importer the app
registered."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from returnflow.cli import main
from returnflow.demo import import_source
from returnflow.stores.sqlite import SqliteStore

MONTH = ("--since", "2026-01-01", "--until", "2026-02-01")


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out, err=out)  # results and messages, in order
    return code, out.getvalue()


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A host module, ``hostsource``, on the path: sources that go wrong in various ways."""
    module = tmp_path / "hostsource.py"
    module.write_text(
        textwrap.dedent(
            """
            from datetime import datetime, timedelta, timezone

            from returnflow import ExternalLine, ExternalReturn
            from returnflow.errors import PortError
            from returnflow.testing import FakeReturnSource

            AT = datetime(2026, 1, 5, tzinfo=timezone.utc)


            def good(n, order_id="D00000"):
                at = AT + timedelta(hours=n)
                return ExternalReturn(
                    source="loop", external_id=str(n), shop="demo-loop", order_id=order_id,
                    lines=[ExternalLine(order_line_id="L1", quantity=1)],
                    created_at=at, updated_at=at)


            def five():
                return FakeReturnSource("loop", [good(n, f"D{n:05d}") for n in range(5)])


            def bad_data():
                source = FakeReturnSource("loop", [good(0), good(1, "NO-SUCH-ORDER")])
                source.add_payload("demo-loop", "2", {"source": "loop", "lines": []},
                                   updated_at=AT + timedelta(hours=2))
                return source


            def failing():
                source = FakeReturnSource("loop", [good(n, f"D{n:05d}") for n in range(5)])
                real = source.list_returns
                def list_returns(*args, **kwargs):
                    if kwargs.get("page"):
                        raise PortError("source", "list_returns", "503 Service Unavailable")
                    return real(*args, **kwargs)
                source.list_returns = list_returns
                return source


            def build_with_importer(store):
                from returnflow import ReturnImporter
                from returnflow.demo.app import build
                service = build(store)
                now = service.clock()
                source = FakeReturnSource("loop", [
                    ExternalReturn(
                        source="loop", external_id=str(n), shop="demo-loop",
                        order_id=f"D{n:05d}", lines=[ExternalLine(order_line_id="L1",
                        quantity=1)], created_at=now - timedelta(hours=n + 1),
                        updated_at=now - timedelta(hours=n + 1))
                    for n in range(3)])
                service.register_poller(ReturnImporter(
                    service, source, shop="demo-loop", start=now - timedelta(days=1)))
                return service


            not_callable = 42
            """
        ),
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_out_of_the_box_it_imports_the_demo_month_with_progress(tmp_path: Path) -> None:
    db = tmp_path / "returns.db"
    code, output = run("import", "--demo", *MONTH, "--db", str(db))

    assert code == 0
    lines = output.splitlines()
    assert lines[0] == (
        "importing 300 loop returns of shop demo-loop created or updated in "
        f"[2026-01-01T00:00:00+00:00, 2026-02-01T00:00:00+00:00) into {db}"
    )
    progress = [line for line in lines if line.startswith("progress: ")]
    counts = [int(re.match(r"progress: (\d+) of 300 returns", line)[1]) for line in progress]  # type: ignore[index]
    # a line every 100 returns, or sooner when 5 seconds passed first (a slow machine): the
    # count at each line depends on the clock, the gaps do not
    gaps = [after - before for before, after in zip([0, *counts], [*counts, 300], strict=True)]
    assert counts
    assert all(0 < gap <= 100 for gap in gaps[:-1]), counts
    assert 0 <= gaps[-1] <= 100, counts
    # the demo Loop counts its returns: a total, and an estimate of the time left
    assert all(re.search(r", \d+ errors, [\d.]+/s, about \d+ s left$", line) for line in progress)
    skipped = sum(r.status.value != "open" for r in import_source.returns())
    imported = import_source.COUNT - skipped
    assert re.fullmatch(
        rf"done: 300 returns in [\d.]+ s \([\d.]+/s\): {imported} imported, 0 unchanged, "
        rf"0 cancelled, {skipped} skipped, 0 errors",
        lines[-1],
    ), lines[-1]
    store = SqliteStore(db)
    try:
        assert len(store.list("demo-loop")) == imported
        assert store.get("demo-loop", "loop-60000000").refs.source_return_id == "60000000"
    finally:
        store.close()

    again_code, again = run("import", "--demo", *MONTH, "--db", str(db), "--progress-every", "1000")
    assert again_code == 0
    assert again.splitlines()[-1].endswith(
        f"0 imported, {imported} unchanged, 0 cancelled, {skipped} skipped, 0 errors"
    )


def test_progress_every_n_returns_or_seconds(host: Path) -> None:
    code, output = run(
        "import", "--demo", *MONTH, "--source", "hostsource:five", "--shop", "demo-loop",
        "--progress-every", "2", "--progress-seconds", "3600",
    )  # fmt: skip
    assert code == 0
    assert re.findall(r"progress: (\d) of 5 returns", output) == ["2", "4"]

    code, output = run(
        "import", "--demo", *MONTH, "--source", "hostsource:five", "--shop", "demo-loop",
        "--progress-every", "1000", "--progress-seconds", "0",
    )  # fmt: skip
    assert code == 0
    assert re.findall(r"progress: (\d) of 5 returns", output) == ["1", "2", "3", "4", "5"]


def test_a_range_without_a_db_goes_to_a_new_file(host: Path) -> None:
    code, output = run(
        "import", "--demo", *MONTH, "--source", "hostsource:five", "--shop", "demo-loop"
    )
    assert code == 0
    path = re.search(r"into (\S+returns\.db)$", output.splitlines()[0])
    assert path is not None
    assert Path(path[1]).exists()


def test_one_return_by_its_id(tmp_path: Path) -> None:
    db = str(tmp_path / "returns.db")

    code, output = run("import", "--demo", "--id", "60000002", "--db", db)
    assert (code, output) == (
        0,
        "loop 60000002 -> return loop-60000002: imported (approved / on_hold)\n",
    )
    code, output = run("import", "--demo", "--id", "60000002", "--db", db)
    assert (code, output.split(": ")[1]) == (0, "unchanged (approved / on_hold)\n")

    code, output = run("import", "--demo", "--id", "99999999", "--db", db)
    assert code == 1
    assert output == (
        "error loop 99999999: UnknownExternalReturn: external_id='99999999': source 'loop' has "
        "no such return in shop 'demo-loop'\n"
    )


def test_bad_data_is_listed_and_the_exit_code_is_1(host: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "returns.db")
    code, output = run(
        "import",
        "--demo",
        *MONTH,
        "--source",
        "hostsource:bad_data",
        "--shop",
        "demo-loop",
        "--db",
        db,
    )

    assert code == 1
    assert "done: 3 returns" in output
    assert "1 imported" in output
    assert "2 errors" in output
    assert "error 1: UnknownOrder: order_id='NO-SUCH-ORDER'" in output
    assert re.search(r"^error 2: InvalidPayload: ", output, re.MULTILINE)
    store = SqliteStore(db)
    try:
        assert [record.id for record in store.list("demo-loop")] == ["loop-0"]
    finally:
        store.close()


def test_a_source_failing_mid_range_exits_1_and_says_where_it_stopped(host: Path) -> None:
    code, output = run(
        "import", "--demo", *MONTH, "--source", "hostsource:failing", "--shop", "demo-loop",
        "--db", str(host / "r.db"), "--page-size", "2",
    )  # fmt: skip

    assert code == 1
    assert "done: 2 returns" in output
    assert (
        "source failed: source.list_returns: 503 Service Unavailable; returns updated from "
        "2026-01-05T01:00:00+00:00 on were not read (run again from there)"
    ) in output
    code, output = run(
        "import", "--demo", *MONTH, "--source", "hostsource:failing", "--shop", "demo-loop",
        "--db", str(host / "r.db"),
    )  # fmt: skip
    assert code == 0  # all five fit on the first page of 100: no second page is asked for
    assert "3 imported, 2 unchanged" in output


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--since", "2026-13-01", "--until", "2026-02-01"], "--since '2026-13-01': not an ISO"),
        (["--since", "2026-01-01", "--until", "yesterday"], "--until 'yesterday': not an ISO"),
        (
            ["--since", "2026-02-01", "--until", "2026-01-01"],
            "--until '2026-01-01': must be after --since '2026-02-01'",
        ),
        (
            ["--since", "0001-01-01T00:00:00+05:00", "--until", "2026-02-01"],
            "--since '0001-01-01T00:00:00+05:00': is out of range: from 1900 up to 9000",
        ),
        (
            ["--since", "2026-01-01", "--until", "9999-12-31T23:59:59-05:00"],
            "--until '9999-12-31T23:59:59-05:00': is out of range: from 1900 up to 9000",
        ),
        (["--since", "1899-12-31", "--until", "2026-02-01"], "--since '1899-12-31': is out of"),
        (["--since", "2026-01-01"], "--since and --until are needed (or --id"),
        ([], "--since and --until are needed (or --id"),
        (["--id", " "], "--id ' ': must not be empty"),
        ([*MONTH, "--progress-every", "0"], "--progress-every 0: must be at least 1"),
        ([*MONTH, "--progress-seconds", "-1"], "--progress-seconds -1.0: must not be negative"),
        ([*MONTH, "--progress-seconds", "nan"], "--progress-seconds nan: must be a finite number"),
        ([*MONTH, "--progress-seconds", "inf"], "--progress-seconds inf: must be a finite number"),
        ([*MONTH, "--progress-seconds=-inf"], "--progress-seconds -inf: must be a finite number"),
        ([*MONTH, "--progress-seconds", "1e999"], "--progress-seconds inf: must be a finite"),
        ([*MONTH, "--page-size", "0"], "--page-size 0: must be at least 1"),
        ([*MONTH, "--source", "hostsource:five"], "--source 'hostsource:five': say which shop"),
        (
            [*MONTH, "--source", "nowhere", "--shop", "s"],
            "--source 'nowhere': wants MODULE:CALLABLE",
        ),
        (
            [*MONTH, "--source", "no_such_module:x", "--shop", "s"],
            "--source 'no_such_module:x': cannot import 'no_such_module'",
        ),
        (
            [*MONTH, "--source", "hostsource:not_callable", "--shop", "s"],
            "--source 'hostsource:not_callable': hostsource has no callable 'not_callable'",
        ),
        ([*MONTH, "--app", "returnflow.demo.app:nothing"], "--app 'returnflow.demo.app:nothing'"),
    ],
)
def test_bad_arguments_exit_2_naming_the_flag_and_value(
    host: Path, argv: list[str], message: str
) -> None:
    db = host / "untouched.db"
    code, output = run("import", "--demo", *argv, "--db", str(db))

    assert code == 2
    assert output.startswith(f"returnflow import: {message}"), output
    assert not db.exists()


def test_dates_take_an_offset_and_default_to_utc(tmp_path: Path) -> None:
    code, output = run(
        "import", "--demo", "--since", "2026-01-31T12:00:00+01:00", "--until", "2026-01-31T23:30",
        "--db", str(tmp_path / "r.db"),
    )  # fmt: skip
    assert code == 0
    assert "[2026-01-31T12:00:00+01:00, 2026-01-31T23:30:00+00:00)" in output


def test_the_worker_polls_an_importer_the_app_registered(host: Path) -> None:
    db = host / "returns.db"
    code, output = run(
        "worker", "--db", str(db), "--app", "hostsource:build_with_importer", "--once"
    )

    assert code == 0
    assert "worker: delivered 0, failed 0, given up 0, expired 0, imported 3" in output
    assert re.search(
        r"worker: polled loop/demo-loop \[\S+, \S+\): 3 imported, 0 unchanged, 0 cancelled, "
        r"0 skipped, 0 errors$",
        output,
        re.MULTILINE,
    )
    assert output.splitlines()[-1].endswith("expired 0, imported 3")
    store = SqliteStore(db)
    try:
        assert [record.id for record in store.list("demo-loop")] == ["loop-2", "loop-1", "loop-0"]
        assert store.read_cursor("import:loop:demo-loop") is not None
    finally:
        store.close()
    # a second worker run right away: the interval has not elapsed, nothing is polled
    code, output = run(
        "worker", "--db", str(db), "--app", "hostsource:build_with_importer", "--once"
    )
    assert "polled" not in output
    assert output.splitlines()[-1].endswith("imported 0")


def test_the_module_runs_the_import_as_a_program(host: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "returnflow.cli", "import", "--demo", "--since", "2026-13-01"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("returnflow import: --since '2026-13-01'")
    assert len(done.stderr.splitlines()) == 1
    done = subprocess.run(
        [sys.executable, "-m", "returnflow.cli", "import", "--demo", "--since", "2030-01-01",
         "--until", "2030-02-01", "--db", str(host / "r.db")],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1].startswith("done: 0 returns")  # the demo is January 2026
