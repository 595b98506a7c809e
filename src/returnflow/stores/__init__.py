"""Store adapters: one module per backend, all passing the same contract.

:func:`open_store` opens a durable store from one string, as the ``returnflow`` command's
``--db`` takes it: a ``postgresql://`` (or ``postgres://``) URL opens a
:class:`~returnflow.stores.postgres.PostgresStore` (the ``returnflow[postgres]`` extra),
anything else is the path of a SQLite file.

>>> import os, tempfile
>>> store = open_store(os.path.join(tempfile.mkdtemp(), "returns.db"))
>>> type(store).__name__, store.count()
('SqliteStore', 0)
>>> store.close()
"""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Protocol

from returnflow.errors import ConfigurationError
from returnflow.ports.store import ReturnStore
from returnflow.stores._targets import is_postgres_url, redacted
from returnflow.stores.memory import MemoryStore

__all__ = ["DurableStore", "MemoryStore", "is_postgres_url", "open_store"]


class DurableStore(ReturnStore, Protocol):
    """A store kept in a file or on a server: the store port, plus what operators' tools
    (``returnflow inspect``, ``returnflow worker``) read and the closing of connections."""

    def schema_version(self) -> int: ...

    def shops_with(self, return_id: str) -> builtins.list[str]: ...

    def inbound(self, shop: str, return_id: str) -> builtins.list[tuple[str, str, datetime]]: ...

    def count(self) -> int: ...

    def close(self) -> None: ...


def open_store(target: str, *, read_only: bool = False) -> DurableStore:
    """The store ``target`` names: a PostgreSQL URL, or else a SQLite file path.
    ``read_only``: open what is there without creating or migrating anything, and refuse
    writes (:class:`~returnflow.errors.StoreReadOnly`).

    PostgreSQL needs the ``postgres`` extra (``pip install 'returnflow[postgres]'``); without
    it, a URL is a :class:`~returnflow.errors.ConfigurationError` naming the field ``db``.
    Neither backend is imported before it is asked for.
    """
    if not isinstance(target, str) or not target.strip():
        raise ConfigurationError(
            "must be a SQLite file path or a postgresql:// URL", field="db", value=target
        )
    if is_postgres_url(target):
        try:
            from returnflow.stores.postgres import PostgresStore
        except ImportError as error:
            raise ConfigurationError(
                f"PostgreSQL needs psycopg ({error}); install returnflow[postgres]: "
                "pip install 'returnflow[postgres]'",
                field="db",
                value=redacted(target),
            ) from error
        return PostgresStore(target, read_only=read_only)
    from returnflow.stores.sqlite import SqliteStore

    return SqliteStore(target, read_only=read_only)
