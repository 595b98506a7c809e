"""A real PostgreSQL server for the test suite, and a fresh database for each test.

The tests that need PostgreSQL ask :func:`cluster` for a server (once per run):

* ``RETURNFLOW_TEST_POSTGRES_DSN`` names a server to use as it is (its user may create
  databases);
* otherwise the server programs ``initdb`` and ``pg_ctl`` are looked for on ``PATH``, then in
  ``/usr/lib/postgresql/*/bin`` (newest first); when they are missing and we run as root with
  ``apt-get``, the ``postgresql`` package is installed;
* a throwaway cluster is made with ``initdb`` in a temporary directory and started with
  ``pg_ctl`` on a free loopback port (its unix socket in the same directory, durability
  settings off: it holds nothing worth keeping). ``initdb`` refuses to run as root, so as
  root the server runs as the ``postgres`` user (created when missing). It is stopped and
  removed when the run ends.

When no server can be had the tests skip with the reason, unless ``RETURNFLOW_REQUIRE_POSTGRES``
is ``1`` (as in CI): then they fail with it.

This lives with the tests rather than in ``returnflow.testing`` because installing a server
package as root is a decision for this project's CI, not something a library should do on a
host's machine; a host that tests its own store has its own database to point at.
"""

from __future__ import annotations

import atexit
import glob
import itertools
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

DSN_VARIABLE = "RETURNFLOW_TEST_POSTGRES_DSN"
REQUIRE_VARIABLE = "RETURNFLOW_REQUIRE_POSTGRES"
SERVER_USER = "postgres"
INSTALL_COMMANDS: tuple[tuple[str, ...], ...] = (
    ("apt-get", "update"),
    ("apt-get", "install", "-y", "--no-install-recommends", "postgresql"),
)
BIN_GLOB = "/usr/lib/postgresql/*/bin"

Runner = Callable[..., "subprocess.CompletedProcess[str]"]


class Unavailable(Exception):
    """No PostgreSQL server can be had; the message says why."""


def required() -> bool:
    return os.environ.get(REQUIRE_VARIABLE, "") == "1"


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path))


def find_binaries(
    *,
    which: Callable[[str], str | None] = shutil.which,
    candidates: Callable[[str], list[str]] = glob.glob,
) -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``: from ``PATH``, else the newest
    ``/usr/lib/postgresql/*/bin`` that has both; ``None`` if there is none."""
    initdb, pg_ctl = which("initdb"), which("pg_ctl")
    if initdb and pg_ctl:
        return Path(os.path.realpath(initdb)).parent
    for directory in sorted(candidates(BIN_GLOB), key=_version_key, reverse=True):
        if all(os.access(os.path.join(directory, name), os.X_OK) for name in ("initdb", "pg_ctl")):
            return Path(directory)
    return None


def locate_or_install(
    *,
    find: Callable[[], Path | None] = find_binaries,
    euid: Callable[[], int] = os.geteuid,
    which: Callable[[str], str | None] = shutil.which,
    run: Runner = subprocess.run,
) -> Path:
    """The server programs' directory, installing the ``postgresql`` package when they are
    missing and this process may (root, with ``apt-get``); :class:`Unavailable` otherwise."""
    found = find()
    if found is not None:
        return found
    if euid() != 0:
        raise Unavailable("initdb/pg_ctl not found, and not root to install postgresql")
    if which("apt-get") is None:
        raise Unavailable("initdb/pg_ctl not found, and no apt-get to install postgresql")
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in INSTALL_COMMANDS:
        done = run(list(command), capture_output=True, text=True, env=environment, check=False)
        if done.returncode != 0:
            raise Unavailable(
                f"{' '.join(command)} failed ({done.returncode}): "
                f"{(done.stderr or done.stdout).strip()[-2000:]}"
            )
    found = find()
    if found is None:
        raise Unavailable("installed postgresql, but still no initdb/pg_ctl")
    return found


def ensure_user(
    name: str = SERVER_USER,
    *,
    lookup: Callable[[str], Any] = pwd.getpwnam,
    run: Runner = subprocess.run,
) -> tuple[int, int]:
    """The uid and gid of the unprivileged user the server runs as (root only), created as
    a system user when missing."""
    try:
        entry = lookup(name)
    except KeyError:
        command = ["useradd", "--system", "--user-group", "--no-create-home", name]
        done = run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise Unavailable(f"cannot create user {name}: {done.stderr.strip()}") from None
        entry = lookup(name)
    return int(entry.pw_uid), int(entry.pw_gid)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def url(params: dict[str, str], dbname: str) -> str:
    """A ``postgresql://`` URL from connection parameters, for ``dbname``."""
    rest = dict(params)
    user = rest.pop("user", "")
    password = rest.pop("password", "")
    host = rest.pop("host", "")
    port = rest.pop("port", "")
    rest.pop("dbname", None)
    credentials = quote(user, safe="")
    if password:
        credentials += ":" + quote(password, safe="")
    netloc = f"{credentials}@" if credentials else ""
    if host and not host.startswith("/") and "," not in host:
        netloc += f"[{host}]" if ":" in host else host
        if port:
            netloc += f":{port}"
    elif host:
        rest["host"] = host
        if port:
            rest["port"] = port
    query = f"?{urlencode(rest)}" if rest else ""
    return f"postgresql://{netloc}/{quote(dbname, safe='')}{query}"


@dataclass
class Cluster:
    """A server the tests may create databases on."""

    admin_dsn: str
    params: dict[str, str]
    stop: Callable[[], None] = lambda: None
    log: Path | None = None
    _names: Iterator[int] = field(default_factory=itertools.count)
    _shared: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def dsn(self, dbname: str) -> str:
        return url(self.params, dbname)

    def _admin(self, statement: str) -> None:
        import psycopg

        with psycopg.connect(self.admin_dsn, autocommit=True) as connection:
            connection.execute(statement)

    def create_database(self) -> str:
        """A new database, never opened; its ``postgresql://`` URL."""
        with self._lock:
            name = f"rf_test_{os.getpid()}_{next(self._names)}"
        self._admin(f'CREATE DATABASE "{name}" TEMPLATE template0 STRATEGY FILE_COPY')
        return self.dsn(name)

    def empty_database(self) -> str:
        """The run's shared database, emptied: every table but ``schema_version`` truncated
        (identities restarted). Much faster than a new database; a test that changes the
        schema, or needs one never opened, asks :meth:`database` for a new one instead."""
        import psycopg

        with self._lock:
            shared = self._shared
        if shared is None:
            shared = self._shared = self.create_database()
        with psycopg.connect(shared, autocommit=True) as connection:
            tables = [
                name
                for (name,) in connection.execute(
                    "SELECT quote_ident(tablename) FROM pg_tables "
                    "WHERE schemaname = 'public' AND tablename <> 'schema_version'"
                )
            ]
            if tables:
                connection.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY")
        return shared

    def drop_database(self, dsn: str) -> None:
        from psycopg.conninfo import conninfo_to_dict

        name = conninfo_to_dict(dsn)["dbname"]
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        """Drop the shared database (on a server the run did not start, it would stay) and
        stop the server if the run started it."""
        try:
            if self._shared is not None:
                self.drop_database(self._shared)
        except Exception:
            pass  # the server is going away anyway, or was never ours to tidy
        finally:
            self.stop()

    @contextmanager
    def database(self) -> Iterator[str]:
        dsn = self.create_database()
        try:
            yield dsn
        finally:
            self.drop_database(dsn)


def _as_server_user(command: Sequence[str], owner: tuple[int, int] | None) -> list[str]:
    if owner is None:
        return list(command)
    return ["runuser", "-u", SERVER_USER, "--", *command]


# Waits until its standard input closes (the test process ended, however it ended: even
# killed), then stops the server and removes its directory.
_WATCHDOG = """
import shutil, subprocess, sys
sys.stdin.read()
try:
    subprocess.run(sys.argv[2:], capture_output=True, cwd=sys.argv[1], check=False)
finally:
    shutil.rmtree(sys.argv[1], ignore_errors=True)
"""


def spawn_watchdog(
    stop_command: Sequence[str], base: Path, *, popen: Callable[..., Any] = subprocess.Popen
) -> Any:
    """A process that stops the cluster when this one ends without doing so itself."""
    return popen(
        [sys.executable, "-c", _WATCHDOG, str(base), *stop_command],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C meant for the tests does not reach it
    )


def start_cluster(
    binaries: Path,
    *,
    run: Runner = subprocess.run,
    euid: Callable[[], int] = os.geteuid,
    server_user: Callable[[], tuple[int, int]] = ensure_user,
    watch: Callable[[Sequence[str], Path], Any] = spawn_watchdog,
) -> Cluster:
    """``initdb`` and ``pg_ctl start`` a throwaway cluster on a free loopback port."""
    owner = server_user() if euid() == 0 else None
    base = Path(tempfile.mkdtemp(prefix="returnflow-pg-"))
    data, sockets, log = base / "data", base / "sock", base / "server.log"
    sockets.mkdir()
    if owner is not None:
        for path in (base, sockets):
            os.chown(path, *owner)

    def call(*command: str) -> None:
        done = run(
            _as_server_user(command, owner), capture_output=True, text=True, cwd=base, check=False
        )
        if done.returncode != 0:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise Unavailable(
                f"{' '.join(command)} failed ({done.returncode}): "
                f"{(done.stderr or done.stdout).strip()[-2000:]}\n{tail}"
            )

    try:
        call(
            str(binaries / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        for attempt in range(5):
            port = free_port()
            options = " ".join(
                [
                    f"-p {port}",
                    "-c listen_addresses=127.0.0.1",
                    f"-c unix_socket_directories={sockets}",
                    "-c max_connections=300",
                    "-c fsync=off",
                    "-c synchronous_commit=off",
                    "-c full_page_writes=off",
                    "-c shared_buffers=64MB",
                ]
            )
            try:
                call(str(binaries / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60",
                     "-o", options, "start")  # fmt: skip
                break
            except Unavailable:
                if attempt == 4:
                    raise
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise

    stop_command = _as_server_user(
        [str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], owner
    )
    watchdog = watch(stop_command, base)

    def stop() -> None:
        run(stop_command, capture_output=True, text=True, cwd=base, check=False)
        shutil.rmtree(base, ignore_errors=True)
        if watchdog is not None and watchdog.stdin is not None:
            watchdog.stdin.close()
            watchdog.wait(timeout=30)

    # Clients come in through the unix socket: on a busy machine it answers faster than TCP.
    params = {"user": "postgres", "host": str(sockets), "port": str(port)}
    return Cluster(admin_dsn=url(params, "postgres"), params=params, stop=stop, log=log)


def external_cluster(dsn: str) -> Cluster:
    """The server ``RETURNFLOW_TEST_POSTGRES_DSN`` names (databases are made beside it)."""
    from psycopg.conninfo import conninfo_to_dict

    params = {key: str(value) for key, value in conninfo_to_dict(dsn).items()}
    admin = params.get("dbname", "postgres")
    return Cluster(admin_dsn=url(params, admin), params=params)


_state: dict[str, Cluster | Unavailable] = {}
_state_lock = threading.Lock()


def _open() -> Cluster:
    try:
        import psycopg  # noqa: F401
    except ImportError as error:
        raise Unavailable(f"psycopg is not installed ({error}): pip install -e '.[dev]'") from None
    dsn = os.environ.get(DSN_VARIABLE)
    cluster = external_cluster(dsn) if dsn else start_cluster(locate_or_install())
    deadline = time.monotonic() + 30
    while True:
        try:
            cluster._admin("SELECT 1")
            return cluster
        except Exception as error:
            if time.monotonic() > deadline:
                cluster.stop()
                raise Unavailable(f"the server does not answer: {error}") from None
            time.sleep(0.1)


def cluster() -> Cluster:
    """The run's server (started on first use, stopped at exit); :class:`Unavailable` when
    none can be had. The outcome is remembered: one try per run."""
    with _state_lock:
        if "cluster" not in _state:
            try:
                started = _open()
            except Unavailable as error:
                _state["cluster"] = error
            else:
                _state["cluster"] = started
                atexit.register(started.close)
        outcome = _state["cluster"]
    if isinstance(outcome, Unavailable):
        raise outcome
    return outcome


def cluster_or_skip() -> Cluster:
    """:func:`cluster`, or skip the test (fail it under ``RETURNFLOW_REQUIRE_POSTGRES=1``)."""
    import pytest

    try:
        return cluster()
    except Unavailable as error:
        message = f"no PostgreSQL server: {error}"
        if required():
            pytest.fail(f"{message} ({REQUIRE_VARIABLE}=1)", pytrace=False)
        pytest.skip(message)
