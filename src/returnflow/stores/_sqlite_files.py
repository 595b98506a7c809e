"""The SQLite store's file: opening it (read-write in WAL mode, or read-only), the check a
store opened read-only makes of its schema, and its failures as
:class:`~returnflow.errors.StoreError`\\ s: no database at the path (a missing directory, a
directory, a file that is not a database) or a lock held beyond the timeout is
:class:`~returnflow.errors.StoreUnavailable`, a read-only file, directory or mount
:class:`~returnflow.errors.StoreReadOnly`, a full disk (or ``max_page_count``)
:class:`~returnflow.errors.StoreFull`."""

from __future__ import annotations

import os
import pathlib
import sqlite3
from typing import Any

from returnflow.errors import (
    ReturnflowError,
    StoreError,
    StoreFull,
    StoreReadOnly,
    StoreUnavailable,
)

__all__ = ["check_schema", "connect", "translate"]


def _read_only_medium(path: str) -> bool:
    """Whether the file system holding ``path`` (or its directory) is mounted read-only."""
    for candidate in (path, os.path.dirname(os.path.abspath(path))):
        try:
            return bool(os.statvfs(candidate).f_flag & os.ST_RDONLY)
        except OSError:
            continue
    return False


def connect(path: str, timeout: float, *, read_only: bool) -> sqlite3.Connection:
    """A connection to the file at ``path``; ``read_only``: through SQLite's ``mode=ro``
    with ``query_only`` on, so that nothing (not even the journal mode) is written."""
    if read_only:
        # On a read-only file system no one can change the file: SQLite may then read a
        # WAL database without the shared-memory file it cannot create there.
        fixed = "&immutable=1" if _read_only_medium(path) else ""
        connection = sqlite3.connect(
            f"{pathlib.Path(os.path.abspath(path)).as_uri()}?mode=ro{fixed}",
            uri=True,
            timeout=timeout,
            isolation_level=None,
            check_same_thread=False,
        )
    else:
        connection = sqlite3.connect(
            path, timeout=timeout, isolation_level=None, check_same_thread=False
        )
    try:
        if read_only:
            connection.execute("PRAGMA query_only=ON")
        else:
            connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA foreign_keys=ON")
    except BaseException:  # not a database, read-only, full: the caller gets the error,
        connection.close()  # never a connection left open for the collector to find
        raise
    return connection


# SQLite's primary result codes (https://www.sqlite.org/rescode.html), and the words of
# their messages for Pythons whose sqlite3 errors carry no code (before 3.11).
_BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = 5, 6, 8, 10, 11, 13, 14, 26
_BY_MESSAGE = (
    ("readonly database", _READONLY),
    ("database or disk is full", _FULL),
    ("unable to open database file", _CANTOPEN),
    ("file is not a database", _NOTADB),
    ("database is locked", _BUSY),
    ("database table is locked", _LOCKED),
    ("disk i/o error", _IOERR),
    ("malformed", _CORRUPT),
)


def _code(error: sqlite3.Error) -> int | None:
    code = getattr(error, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF
    message = str(error).lower()
    return next((known for words, known in _BY_MESSAGE if words in message), None)


def translate(store: Any, operation: str, error: BaseException) -> ReturnflowError | None:
    """A ``sqlite3`` error as the :class:`~returnflow.errors.StoreError` it means."""
    if not isinstance(error, sqlite3.Error):
        return None
    path = getattr(store, "path", None)
    code = _code(error)
    if code == _READONLY or (
        code == _CANTOPEN and path is not None and os.path.exists(path) and _read_only_medium(path)
    ):
        return StoreReadOnly(
            f"the database refuses writes ({error})", operation=operation, field="path", value=path
        )
    if code == _FULL:
        return StoreFull(f"{error}", operation=operation, field="path", value=path)
    if code in (_CANTOPEN, _NOTADB, _IOERR, _BUSY, _LOCKED):
        why = {
            _CANTOPEN: "cannot open a database there (a missing directory, a directory, no "
            "permission)",
            _NOTADB: "the file is not a SQLite database",
        }.get(code, str(error))
        return StoreUnavailable(why, operation=operation, field="path", value=path)
    return StoreError(
        f"{type(error).__name__}: {error}", operation=operation, field="path", value=path
    )


def check_schema(connection: sqlite3.Connection, path: str, known: int) -> None:
    """A file opened read-only must hold returnflow's schema, at the version this code
    reads (``known``): reading never migrates."""
    found = connection.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    )
    if found.fetchone() is None:
        raise StoreUnavailable(
            "the file is not a returnflow database", operation="open", field="path", value=path
        )
    row = connection.execute("SELECT version FROM schema_version").fetchone()
    current = 0 if row is None else int(row[0])
    if current != known:
        raise StoreUnavailable(
            f"the database has schema {current}, this returnflow reads {known}; open it once "
            "for writing to migrate it",
            operation="open",
            field="path",
            value=path,
        )
