"""How the test suite gets its PostgreSQL server, with the machine faked: finding the server
programs, installing them when they are missing, running them as an unprivileged user when
root, and failing instead of skipping when CI requires a server."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import postgres_support as support


class FakeRun:
    """Stands in for ``subprocess.run``: records commands, answers with ``returncode``s."""

    def __init__(self, *codes: int, on_call: Any = None) -> None:
        self.commands: list[list[str]] = []
        self.environments: list[dict[str, str] | None] = []
        self.codes = list(codes)
        self.on_call = on_call

    def __call__(self, command: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        self.commands.append(list(command))
        self.environments.append(kwargs.get("env"))
        if self.on_call is not None:
            self.on_call(list(command))
        code = self.codes.pop(0) if self.codes else 0
        return subprocess.CompletedProcess(command, code, "", "E: no such package" if code else "")


def executable(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)


def test_programs_on_path_are_found_first(tmp_path: Path) -> None:
    executable(tmp_path / "bin" / "initdb")
    executable(tmp_path / "bin" / "pg_ctl")
    on_path = {name: str(tmp_path / "bin" / name) for name in ("initdb", "pg_ctl")}
    found = support.find_binaries(which=on_path.get, candidates=lambda pattern: ["/nowhere"])
    assert found == tmp_path / "bin"


def test_else_the_newest_debian_directory_with_both_programs(tmp_path: Path) -> None:
    for version in ("9.6", "13", "15", "16"):
        executable(tmp_path / version / "bin" / "initdb")
        if version != "16":  # a half-installed newer version does not count
            executable(tmp_path / version / "bin" / "pg_ctl")
    patterns: list[str] = []

    def candidates(pattern: str) -> list[str]:
        patterns.append(pattern)
        return [str(tmp_path / version / "bin") for version in ("9.6", "16", "15", "13")]

    assert support.find_binaries(which=lambda name: None, candidates=candidates) == (
        tmp_path / "15" / "bin"
    )
    assert patterns == ["/usr/lib/postgresql/*/bin"]
    assert support.find_binaries(which=lambda name: None, candidates=lambda p: []) is None


def test_found_programs_install_nothing() -> None:
    run = FakeRun()
    found = support.locate_or_install(find=lambda: Path("/pg/bin"), euid=lambda: 0, run=run)
    assert (found, run.commands) == (Path("/pg/bin"), [])


def test_missing_programs_are_installed_with_apt_get_as_root() -> None:
    installed: list[Path] = []
    run = FakeRun(on_call=lambda command: installed.append(Path("/usr/lib/postgresql/15/bin")))

    found = support.locate_or_install(
        find=lambda: installed[-1] if installed else None,
        euid=lambda: 0,
        which=lambda name: "/usr/bin/apt-get" if name == "apt-get" else None,
        run=run,
    )

    assert found == Path("/usr/lib/postgresql/15/bin")
    assert run.commands == [
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "--no-install-recommends", "postgresql"],
    ]
    assert all(
        env is not None and env["DEBIAN_FRONTEND"] == "noninteractive" for env in run.environments
    )


def test_missing_programs_without_root_or_apt_get_are_unavailable() -> None:
    run = FakeRun()
    with pytest.raises(support.Unavailable, match="not root"):
        support.locate_or_install(find=lambda: None, euid=lambda: 1000, run=run)
    with pytest.raises(support.Unavailable, match="no apt-get"):
        support.locate_or_install(find=lambda: None, euid=lambda: 0, which=lambda n: None, run=run)
    assert run.commands == []


def test_a_failed_install_is_unavailable_with_its_error() -> None:
    run = FakeRun(0, 100)
    with pytest.raises(support.Unavailable, match="no such package"):
        support.locate_or_install(
            find=lambda: None, euid=lambda: 0, which=lambda name: "/usr/bin/" + name, run=run
        )
    assert len(run.commands) == 2
    with pytest.raises(support.Unavailable, match="still no initdb"):
        support.locate_or_install(
            find=lambda: None, euid=lambda: 0, which=lambda name: "/usr/bin/" + name, run=FakeRun()
        )


def test_a_missing_server_user_is_created() -> None:
    users: dict[str, Any] = {}

    def lookup(name: str) -> Any:
        return users[name]

    def create(command: list[str]) -> None:
        users[command[-1]] = SimpleNamespace(pw_uid=990, pw_gid=991)

    run = FakeRun(on_call=create)
    assert support.ensure_user("postgres", lookup=lookup, run=run) == (990, 991)
    assert run.commands == [["useradd", "--system", "--user-group", "--no-create-home", "postgres"]]
    assert support.ensure_user("postgres", lookup=lookup, run=FakeRun()) == (990, 991)


@pytest.mark.parametrize("root", [True, False])
def test_the_cluster_is_made_and_started_as_the_server_user_when_root(root: bool) -> None:
    run = FakeRun()
    watched: list[tuple[list[str], Path]] = []
    cluster = support.start_cluster(
        Path("/pg/bin"),
        run=run,
        euid=lambda: 0 if root else 1000,
        server_user=lambda: (os.getuid(), os.getgid()),
        watch=lambda command, base: watched.append((list(command), base)),
    )
    prefix = ["runuser", "-u", "postgres", "--"] if root else []
    initdb, start = run.commands
    assert initdb[: len(prefix) + 1] == [*prefix, "/pg/bin/initdb"]
    assert "--auth=trust" in initdb
    assert start[: len(prefix) + 1] == [*prefix, "/pg/bin/pg_ctl"]
    assert start[-1] == "start"
    options = start[start.index("-o") + 1]
    base = Path(initdb[initdb.index("-D") + 1]).parent
    assert base.is_dir()
    assert f"-c unix_socket_directories={base / 'sock'}" in options
    assert "-c listen_addresses=127.0.0.1" in options
    assert f"-p {cluster.params['port']}" in options
    assert cluster.params["host"] == str(base / "sock")
    assert cluster.dsn("rf_x").startswith("postgresql://postgres@/rf_x?host=")

    # a watchdog is told how to stop it, should this process die first
    assert watched == [
        (
            [*prefix, "/pg/bin/pg_ctl", "-D", str(base / "data"), "-m", "immediate", "-w", "stop"],
            base,
        )
    ]

    cluster.stop()
    assert run.commands[-1] == watched[0][0]
    assert not base.exists()


def test_the_watchdog_stops_the_server_when_the_test_process_dies(tmp_path: Path) -> None:
    base = tmp_path / "cluster"
    base.mkdir()
    marker = tmp_path / "stopped"
    stop = [sys.executable, "-c", f"open({str(marker)!r}, 'w').write('stop')"]
    watchdog = support.spawn_watchdog(stop, base)
    assert watchdog.poll() is None  # waiting while this process lives
    assert not marker.exists()
    watchdog.stdin.close()  # what the kernel does when this process ends, however it ends
    assert watchdog.wait(timeout=30) == 0
    assert marker.read_text() == "stop"
    assert not base.exists()


def test_a_cluster_that_fails_to_start_is_unavailable_and_leaves_nothing() -> None:
    run = FakeRun(1)
    with pytest.raises(support.Unavailable, match="initdb"):
        support.start_cluster(Path("/pg/bin"), run=run, euid=lambda: 1000)
    base = Path(run.commands[0][run.commands[0].index("-D") + 1]).parent
    assert not base.exists()


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            {"user": "app", "password": "p w@", "host": "db.internal", "port": "5433"},
            "postgresql://app:p%20w%40@db.internal:5433/rf_1",
        ),
        ({"host": "/tmp/s", "port": "5432", "sslmode": "disable"}, None),
        ({"user": "app", "host": "::1"}, "postgresql://app@[::1]/rf_1"),
    ],
)
def test_urls_are_made_from_connection_parameters(
    params: dict[str, str], expected: str | None
) -> None:
    made = support.url(params, "rf_1")
    if expected is not None:
        assert made == expected
    else:
        assert made == "postgresql:///rf_1?sslmode=disable&host=%2Ftmp%2Fs&port=5432"


def test_without_a_server_tests_skip_unless_ci_requires_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(support._state, "cluster", support.Unavailable("initdb not found"))
    monkeypatch.delenv(support.REQUIRE_VARIABLE, raising=False)
    with pytest.raises(pytest.skip.Exception, match="no PostgreSQL server: initdb not found"):
        support.cluster_or_skip()
    monkeypatch.setenv(support.REQUIRE_VARIABLE, "1")
    with pytest.raises(pytest.fail.Exception, match=r"initdb not found.*REQUIRE_POSTGRES=1"):
        support.cluster_or_skip()
