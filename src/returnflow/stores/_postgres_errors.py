"""What PostgreSQL's errors mean to :class:`~returnflow.stores.postgres.PostgresStore`: the
races a commit retries as a conflict, the store errors the rest become, and the driver's
warning that only repeats a conflict, kept out of the log."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from returnflow.errors import (
    InvalidPayload,
    ReturnflowError,
    StoreError,
    StoreFull,
    StoreReadOnly,
    StoreUnavailable,
)
from returnflow.stores._targets import redacted

__all__ = ["RACES", "translate"]

# Conflicts the server reports for racing writers; the service retries them like a version.
RACES = (pg_errors.UniqueViolation, pg_errors.SerializationFailure, pg_errors.DeadlockDetected)


class _QuietAbortedPipeline(logging.Filter):
    """psycopg logs a warning when a pipeline whose transaction failed cannot be synced on
    the way out ("error ignored terminating ...: pipeline aborted"). The failure itself is
    raised to the store, which turns a race into a ConcurrencyConflict; the warning only
    repeats it, once per conflict, which several workers meet all the time."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not (
            record.msg == "error ignored terminating %r: %s"
            and len(args) == 2
            and isinstance(args[0], psycopg.Pipeline)
            and isinstance(args[1], psycopg.errors.PipelineAborted)
        )


_QUIET = _QuietAbortedPipeline()
logging.getLogger("psycopg").addFilter(_QUIET)


def translate(store: Any, operation: str, error: BaseException) -> ReturnflowError | None:
    """A psycopg error as what it means: the server down or out of connections
    (:class:`StoreUnavailable`), a read-only transaction or server (:class:`StoreReadOnly`),
    out of disk or memory (SQLSTATE class 53, :class:`StoreFull`), a value the server cannot
    hold (:class:`InvalidPayload`), anything else a :class:`StoreError`."""
    if not isinstance(error, psycopg.Error):
        return None
    dsn = redacted(getattr(store, "dsn", ""))
    state = getattr(error, "sqlstate", None) or ""
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if isinstance(error, pg_errors.ReadOnlySqlTransaction):
        return StoreReadOnly(
            f"the database refuses writes ({message})", operation=operation, field="dsn", value=dsn
        )
    if state.startswith("53"):
        return StoreFull(message, operation=operation, field="dsn", value=dsn)
    if isinstance(error, psycopg.DataError):
        return InvalidPayload("value", None, f"the database cannot hold it: {message}")
    if isinstance(error, psycopg.OperationalError) and not state:
        return StoreUnavailable(message, operation=operation, field="dsn", value=dsn)
    return StoreError(
        f"{type(error).__name__}: {message}", operation=operation, field="dsn", value=dsn
    )
