"""How :class:`~returnflow.stores.sqlite.SqliteStore` reads outbox rows and claims them: the
head of each return (its oldest pending effect) leased to a worker, with the run of pending
effects behind it. Effects the caller holds (those its commit just wrote) are handed back as
they are, not parsed from their rows again."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from returnflow import _bodies
from returnflow._bodies import dump_effect
from returnflow.domain._time import parse_iso
from returnflow.errors import ConcurrencyConflict, UnreadableRecord
from returnflow.lifecycle.effects import Effect
from returnflow.ports.store import Attempt, Commit, OutboxEntry
from returnflow.stores._conflicts import not_pending, queued
from returnflow.stores._outbox_entries import ENTRY_COLUMNS, readable_entry
from returnflow.stores._sqlite_rows import ROWS, iso, rows

__all__ = [
    "ENTRY",
    "attempt",
    "attempts",
    "claim",
    "claims_with_insert",
    "entry",
    "insert",
    "insert_and_claim",
]

ENTRY = f"SELECT {ENTRY_COLUMNS} FROM outbox"
_HEAD_COLUMNS = ", ".join(f"o.{name.strip()}" for name in ENTRY_COLUMNS.split(","))
"""The columns :func:`entry` reads, in its order."""

_GLOB = (
    "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]"
    ".[0-9][0-9][0-9][0-9][0-9][0-9]+00:00"
)
_SHAPE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}\+00:00")
"""The text of every time the store writes (:func:`iso`), in SQL and in Python: compared as
text, as the claim does, only such times compare as the instants they name."""


def _damaged(column: str) -> str:
    """SQL: whether ``column`` holds a time the store did not write (:data:`_SHAPE`)."""
    return f"({column} IS NOT NULL AND (typeof({column}) <> 'text' OR {column} NOT GLOB '{_GLOB}'))"


_HEADS = (
    "FROM outbox o WHERE o.status = 'pending' "
    "AND (((o.next_attempt_at IS NULL OR o.next_attempt_at <= :now) "
    "AND (o.claimed_until IS NULL OR o.claimed_until <= :now)) "
    f"OR {_damaged('o.next_attempt_at')} OR {_damaged('o.claimed_until')}) "
    "AND o.seq = (SELECT MIN(h.seq) FROM outbox h WHERE h.shop = o.shop "
    "AND h.return_id = o.return_id AND h.status = 'pending') "
    "AND NOT EXISTS (SELECT 1 FROM outbox l WHERE l.shop = o.shop "
    "AND l.return_id = o.return_id AND l.status = 'pending' AND l.claimed_until > :now "
    f"AND NOT {_damaged('l.claimed_until')})"
)
"""Due heads under no live lease, of returns with no pending effect under one: an effect
given up and re-opened becomes the head while the one after it may still be out with a
worker, and waits for it. A time the store did not write (which SQL orders apart from every
time it writes) is neither: a head with one is read, never skipped, and named as an
:class:`~returnflow.errors.UnreadableRecord`; a damaged lease behind a head holds nothing
back, and is named when its effect is read (in a run, or as the head)."""


def _damaged_time(value: object) -> bool:
    """Whether ``value``, an outbox time column, is not ``NULL`` nor a time the store
    wrote (:data:`_SHAPE`)."""
    return value is not None and (type(value) is not str or _SHAPE.fullmatch(value) is None)


def _refuse_damaged(rows: Sequence[Sequence[Any]]) -> None:
    """:class:`~returnflow.errors.UnreadableRecord` naming the first of ``rows`` (of
    :data:`ENTRY`) whose time is damaged (:func:`_damaged_time`), if any."""
    for row in rows:
        for column, name in ((7, "next_attempt_at"), (8, "claimed_until")):
            if _damaged_time(row[column]):
                raise UnreadableRecord(
                    row[11],
                    row[12],
                    f"its effect {row[10]}: {name} is no instant: {row[column]!r}"[:300],
                )


def stored_moment(text: str, shop: str, return_id: str, what: str) -> datetime:
    """An instant the store wrote as ``text`` for ``what`` of a return;
    :class:`~returnflow.errors.UnreadableRecord` naming them when the row is damaged."""
    try:
        moment = _moment(text)
    except (TypeError, ValueError) as error:
        raise UnreadableRecord(shop, return_id, f"{what}: {error}"[:300]) from error
    if moment is None:
        raise UnreadableRecord(shop, return_id, f"{what}: no instant")
    return moment


def _moment(text: str | None) -> datetime | None:
    if text is None:
        return None
    # a claim and a read hand out the same few instants many times (the lease, now)
    moment = _MOMENTS.get(text)
    if moment is None:
        moment = parse_iso(text)  # ValueError for text that is no instant
        if moment.utcoffset() is None:  # written with its offset: this row was not
            raise ValueError(f"an instant without an offset: {text!r}")
        if len(_MOMENTS) >= 1024:
            _MOMENTS.clear()
        _MOMENTS[text] = moment
    return moment


_MOMENTS: dict[str, datetime] = {}
"""Instants read, by their text (a text names one instant)."""


def entry(row: Sequence[Any], known: Mapping[str, Effect] | None = None) -> OutboxEntry:
    """The :class:`OutboxEntry` of a row of :data:`ENTRY`; its effect taken from ``known``
    (by key) when there, else parsed from the row; a damaged row is an
    :class:`~returnflow.errors.UnreadableRecord` (see :func:`readable_entry`)."""
    return readable_entry(row, None if known is None else known.get(row[10]), _moment)


def claim(
    db: sqlite3.Connection,
    *,
    now: datetime,
    lease_until: datetime,
    worker: str,
    limit: int,
    shop: str | None = None,
    return_id: str | None = None,
    run: int = 1,
    known: Mapping[str, Effect] | None = None,
) -> list[OutboxEntry]:
    """Claim up to ``limit`` due heads (of one shop, one return id) in the open write
    transaction ``db``, each followed by its run (see
    :meth:`~returnflow.ports.store.ReturnStore.claim`)."""
    if shop is not None and return_id is not None:
        one = _claim_one(db, now, lease_until, worker, shop, return_id, run, known)
        if one is not None:
            return one
    params = {"now": iso(now), "limit": limit}
    if shop is not None:
        params["shop"] = shop
    if return_id is not None:
        params["return_id"] = return_id
    # the heads read whole, then leased by their key (an UPDATE ... RETURNING of them, one
    # statement, costs SQLite more than the two)
    heads = db.execute(_SELECT_HEADS[shop is not None, return_id is not None], params).fetchall()
    _refuse_damaged(heads)
    until = iso(lease_until)
    db.executemany(
        "UPDATE outbox SET claimed_until = ?, claimed_by = ? WHERE seq = ?",
        [(until, worker, head[0]) for head in heads],
    )
    claimed: list[OutboxEntry] = []
    for head in heads:
        claimed.append(entry((*head[:8], until, worker, *head[10:]), known))
        if run < 2:
            continue
        rows = db.execute(
            f"{ENTRY} WHERE shop = ? AND return_id = ? AND status = 'pending' AND seq > ? "
            "ORDER BY seq LIMIT ?",
            (head[11], head[12], head[0], run - 1),
        ).fetchall()
        for row in rows:
            follower = entry(row, known)
            if not _due(follower, now):
                break
            claimed.append(follower)
    return claimed


_PEEK = 32
"""Pending effects of one return :func:`_claim_one` reads at most; a return with more is
claimed by the general query."""

_PENDING_OF = (
    f"{ENTRY} WHERE shop = ? AND return_id = ? AND status = 'pending' ORDER BY seq LIMIT ?"
)


def _claim_one(
    db: sqlite3.Connection,
    now: datetime,
    lease_until: datetime,
    worker: str,
    shop: str,
    return_id: str,
    run: int,
    known: Mapping[str, Effect] | None,
) -> list[OutboxEntry] | None:
    """The claim of one return's head and run from its pending effects, read in one
    statement (not the heads query and a read of the run after it): the head is the oldest,
    due and under no lease, and no pending effect of the return is under a live lease
    (:data:`_HEADS`, compared as its text, as SQL does). ``None``: the return has more
    pending effects than :data:`_PEEK`, for the general query."""
    rows = db.execute(_PENDING_OF, (shop, return_id, _PEEK + 1)).fetchall()
    if len(rows) > _PEEK:
        return None
    if not rows:
        return []
    _refuse_damaged(rows)  # compared as text below, as written (SQL orders others apart)
    at = iso(now)
    head = rows[0]
    if (head[7] is not None and head[7] > at) or any(
        row[8] is not None and row[8] > at for row in rows
    ):
        return []
    until = iso(lease_until)
    db.execute(
        "UPDATE outbox SET claimed_until = ?, claimed_by = ? WHERE seq = ?",
        (until, worker, head[0]),
    )
    claimed = [entry((*head[:8], until, worker, *head[10:]), known)]
    for row in rows[1:run]:
        follower = entry(row, known)
        if not _due(follower, now):
            break
        claimed.append(follower)
    return claimed


def claims_with_insert(commit: Commit) -> bool:
    """Whether ``commit``'s effects are queued by its claim (:func:`insert_and_claim`): it
    claims the one return all of them are of, and records no attempt on any of them."""
    lease, effects = commit.claim, commit.effects
    if lease is None or not effects or len(lease.returns) != 1:
        return False
    shop, return_id = lease.returns[0]
    if any(effect.shop != shop or effect.return_id != return_id for effect in effects):
        return False
    if commit.attempts:
        keys = {effect.key for effect in effects}
        return not any(item.key in keys for item in commit.attempts)
    return True


def insert_and_claim(
    db: sqlite3.Connection,
    effects: Sequence[Effect],
    now: datetime,
    lease_until: datetime,
    worker: str,
    run: int,
) -> list[OutboxEntry] | None:
    """Queue ``effects`` (all of one return, in their order) and claim that return's head and
    run in the open write transaction ``db``, as :func:`insert` then :func:`claim` of the
    return would, with the pending effects queued before them read first (the new ones are
    not read back) and a new head leased by its own ``INSERT`` (no ``UPDATE`` after it).
    ``None``, with nothing written: the return has too many pending effects for one read
    (:data:`_PEEK`), for :func:`insert` and :func:`claim`.

    The new rows' ``seq`` are those ``AUTOINCREMENT`` gives the rows of one ``INSERT``: one
    more than the largest ever used, each in turn, so consecutive up to the statement's
    ``lastrowid``."""
    first = effects[0]
    shop, return_id = first.shop, first.return_id
    pending = db.execute(_PENDING_OF, (shop, return_id, _PEEK + 1)).fetchall()
    if len(pending) + len(effects) > _PEEK:
        return None
    _refuse_damaged(pending)  # compared as text below, as written (SQL orders others apart)
    at, until = iso(now), iso(lease_until)
    params: list[object] = []
    bodies: list[str] = []
    for effect in effects:
        body = dump_effect(effect)
        bodies.append(body)
        params += (effect.key, effect.shop, effect.return_id, effect.kind, body)
    if pending:
        statement = _INSERT + rows("(?, ?, ?, ?, ?)", len(effects))
    else:  # the first new effect is the head: leased as it is written
        params[5:5] = (until, worker)
        statement = _leased_insert(len(effects))
    try:
        last = db.execute(statement, params).lastrowid
    except sqlite3.IntegrityError:
        key = _queued_already(db, [effect.key for effect in effects], set())
        raise ConcurrencyConflict(f"effect {key}", 0, 1, queued(key)) from None
    if last is None:  # pragma: no cover - an INSERT of rows always sets it
        raise RuntimeError("SQLite gave no rowid for the queued effects")
    known = {effect.key: effect for effect in effects}
    queued_rows = [
        (seq, body, "pending", 0, None, None, None, None, None, None, effect.key, shop, return_id)
        for seq, body, effect in zip(
            range(last - len(effects) + 1, last + 1), bodies, effects, strict=True
        )
    ]
    if not pending:
        head = queued_rows[0]
        claimed = [entry((*head[:8], until, worker, *head[10:]), known)]
        return claimed + [entry(row, known) for row in queued_rows[1:run]]
    head = pending[0]
    if (head[7] is not None and head[7] > at) or any(
        row[8] is not None and row[8] > at for row in pending
    ):
        return []
    db.execute(
        "UPDATE outbox SET claimed_until = ?, claimed_by = ? WHERE seq = ?",
        (until, worker, head[0]),
    )
    claimed = [entry((*head[:8], until, worker, *head[10:]), known)]
    for row in [*pending[1:], *queued_rows][: run - 1]:
        follower = entry(row, known)
        if not _due(follower, now):
            break
        claimed.append(follower)
    return claimed


_SELECT_HEADS = {
    (by_shop, by_return): f"SELECT {_HEAD_COLUMNS} {_HEADS}"
    + (" AND o.shop = :shop" if by_shop else "")
    + (" AND o.return_id = :return_id" if by_return else "")
    + " ORDER BY o.seq LIMIT :limit"
    for by_shop in (False, True)
    for by_return in (False, True)
}
"""The claim's read of due heads, by whether it is of one shop and of one return id."""


def _due(follower: OutboxEntry, now: datetime) -> bool:
    return (follower.next_attempt_at is None or follower.next_attempt_at <= now) and (
        follower.claimed_until is None or follower.claimed_until <= now
    )


_INSERT = "INSERT INTO outbox (key, shop, return_id, kind, body) VALUES "
_INSERT_LEASED = (
    "INSERT INTO outbox (key, shop, return_id, kind, body, claimed_until, claimed_by) VALUES "
    "(?, ?, ?, ?, ?, ?, ?)"
)


def _leased_insert(count: int) -> str:
    """The ``INSERT`` of ``count`` effects whose first is leased (its lease's time and
    worker its sixth and seventh parameters)."""
    if count == 1:
        return _INSERT_LEASED
    return f"{_INSERT_LEASED}, {rows('(?, ?, ?, ?, ?, NULL, NULL)', count - 1)}"


def insert(db: sqlite3.Connection, effects: Sequence[Effect]) -> None:
    """Queue ``effects`` in the open write transaction ``db``, in their order, a statement
    for up to :data:`ROWS` of them; a key already queued (or twice among them) is a
    :class:`~returnflow.errors.ConcurrencyConflict` naming the first such effect."""
    for first in range(0, len(effects), ROWS):
        batch = effects[first : first + ROWS]
        params: list[object] = []
        for effect in batch:
            params += (effect.key, effect.shop, effect.return_id, effect.kind, dump_effect(effect))
        try:
            db.execute(_INSERT + rows("(?, ?, ?, ?, ?)", len(batch)), params)
        except sqlite3.IntegrityError:
            key = _queued_already(
                db, [effect.key for effect in batch], {effect.key for effect in effects[:first]}
            )
            raise ConcurrencyConflict(f"effect {key}", 0, 1, queued(key)) from None


def _queued_already(db: sqlite3.Connection, keys: list[str], given: set[str]) -> str:
    """The first of ``keys`` (in the order they were queued) already in the outbox before
    them, or given twice; ``given``: the keys the commit queued before them (in the outbox
    now, written by the same commit)."""
    given = set(given)
    for key in keys:
        if key in given or db.execute("SELECT 1 FROM outbox WHERE key = ?", (key,)).fetchone():
            return key
        given.add(key)
    return keys[0]  # not reached: the key is what SQLite refused


def _values(item: Attempt) -> tuple[object, ...]:
    """``item``'s effect's new status, error, result, time and next attempt time."""
    ok, give_up = item.ok, item.give_up
    return (
        "done" if ok else ("failed" if give_up else "pending"),
        None if ok else item.error,
        _bodies.dump_value(item.result) if ok and item.result is not None else None,
        iso(item.at),
        None if ok or give_up else iso(item.retry_at),
    )


def attempt(db: sqlite3.Connection, item: Attempt) -> int:
    """Record ``item`` on its effect if still pending; the number of rows changed."""
    cursor = db.execute(
        "UPDATE outbox SET status = ?, attempts = attempts + 1, last_error = ?, "
        "result = COALESCE(?, result), updated_at = ?, next_attempt_at = ?, "
        "claimed_until = NULL, claimed_by = NULL WHERE key = ? AND status = 'pending'",
        (*_values(item), item.key),
    )
    return cursor.rowcount


_UPDATE_FROM_RETURNING = (3, 35, 0)
"""The first SQLite that reads :data:`_ATTEMPTS` (Python may link an older one)."""

_ATTEMPTS = (
    "WITH v (key, status, last_error, result, updated_at, next_attempt_at) AS (VALUES {}) "
    "UPDATE outbox SET status = v.status, attempts = outbox.attempts + 1, "
    "last_error = v.last_error, result = COALESCE(v.result, outbox.result), "
    "updated_at = v.updated_at, next_attempt_at = v.next_attempt_at, claimed_until = NULL, "
    "claimed_by = NULL FROM v WHERE outbox.key = v.key AND outbox.status = 'pending' "
    "RETURNING outbox.key"
)


def attempts(db: sqlite3.Connection, items: Sequence[Attempt]) -> None:
    """Record ``items`` on their effects, in the open write transaction ``db``, each of
    which must be pending (else :class:`~returnflow.errors.ConcurrencyConflict` naming the
    first that is not): one statement for up to :data:`ROWS` effects of distinct keys where
    SQLite reads ``UPDATE ... FROM`` and ``RETURNING`` (3.35), a statement each below."""
    keys = [item.key for item in items]
    if (
        len(items) < 2
        or len(set(keys)) != len(keys)
        or sqlite3.sqlite_version_info < _UPDATE_FROM_RETURNING
    ):
        # a key twice: each attempt sees what the one before wrote
        for item in items:
            if attempt(db, item) != 1:
                raise ConcurrencyConflict(f"effect {item.key}", 0, 1, not_pending(item.key))
        return
    for first in range(0, len(items), ROWS):
        batch = items[first : first + ROWS]
        params: list[object] = []
        for item in batch:
            params += (item.key, *_values(item))
        statement = _ATTEMPTS.format(rows("(?, ?, ?, ?, ?, ?)", len(batch)))
        done = {key for (key,) in db.execute(statement, params)}
        for item in batch:
            if item.key not in done:
                raise ConcurrencyConflict(f"effect {item.key}", 0, 1, not_pending(item.key))
