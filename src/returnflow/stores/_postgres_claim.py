"""How :class:`~returnflow.stores.postgres.PostgresStore` claims outbox rows: in one
statement, the due head of each return (its oldest pending effect, not under a live lease)
is leased to a worker, and the pending effects behind it come back with it (its run). Effects
the caller holds (those its commit just wrote) come back without their bodies and are handed
back as they are, not parsed again."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from psycopg import Connection

from returnflow.errors import UnreadableRecord
from returnflow.lifecycle.effects import Effect
from returnflow.ports.store import OutboxEntry
from returnflow.stores._outbox_entries import ENTRY_COLUMNS
from returnflow.stores._postgres_rows import diagnostic, entry

__all__ = ["claim_parts", "claim_statement", "claimed", "claimed_or_released"]

_COLUMNS = tuple(name.strip() for name in ENTRY_COLUMNS.split(","))
"""The columns :func:`~returnflow.stores._outbox_entries.readable_entry` reads, in its order."""


def _select(alias: str) -> str:
    return ", ".join(
        f"CASE WHEN {alias}.key = ANY(%(known)s) THEN NULL ELSE {alias}.body END"
        if column == "body"
        else f"{alias}.{column}"
        for column in _COLUMNS
    )


def claim_statement(
    *,
    now: datetime,
    lease_until: datetime,
    worker: str,
    limit: int,
    run: int,
    shop: str | None = None,
    return_id: str | None = None,
    returns: Sequence[tuple[str, str]] | None = None,
    known: Mapping[str, Effect] | None = None,
) -> tuple[str, dict[str, Any]]:
    """The claim's statement and parameters: up to ``limit`` due heads (of one shop, one
    return id, or the ``returns`` named), each leased to ``worker`` until ``lease_until``,
    and up to ``run - 1`` pending effects behind each; rows :func:`claimed` reads."""
    ctes, select, params = claim_parts(
        now=now,
        lease_until=lease_until,
        worker=worker,
        limit=limit,
        run=run,
        shop=shop,
        return_id=return_id,
        returns=returns,
        known=known,
    )
    return f"WITH {ctes} {select} ORDER BY head, seq", params


def claim_parts(
    *,
    now: datetime,
    lease_until: datetime,
    worker: str,
    limit: int,
    run: int,
    shop: str | None = None,
    return_id: str | None = None,
    returns: Sequence[tuple[str, str]] | None = None,
    known: Mapping[str, Effect] | None = None,
    attempted: Sequence[str] = (),
    settled: Sequence[str] = (),
    gate: str = "",
) -> tuple[str, str, dict[str, Any]]:
    """The claim as parts of a larger statement: its CTEs (``picked``, ``heads``), the
    select of its rows (unordered; ``head`` and ``seq`` order them) and its parameters.

    For a claim in the statement that records ``attempted`` (the rows it reads are those
    before that statement): those effects are not claimed, the ``settled`` ones (done or
    given up by it) are no longer pending, and their leases do not hold the return;
    ``gate``: a condition every head must also meet (the recording went through)."""
    filters = gate
    params: dict[str, Any] = {
        "now": now,
        "lease": lease_until,
        "worker": diagnostic(worker),
        "limit": limit,
        "behind": run - 1,
        "known": list(known or ()),
        "attempted": list(attempted),
        "settled": list(settled),
    }
    if shop is not None:
        filters += " AND o.shop = %(shop)s"
        params["shop"] = shop
    if return_id is not None:
        filters += " AND o.return_id = %(return_id)s"
        params["return_id"] = return_id
    if returns is not None:
        filters += (
            " AND (o.shop, o.return_id) IN "
            "(SELECT * FROM unnest(%(shops)s::text[], %(return_ids)s::text[]))"
        )
        params["shops"] = [pair[0] for pair in returns]
        params["return_ids"] = [pair[1] for pair in returns]
    # Heads only: due, not under a live lease, the oldest pending effect of their return
    # (one probe of outbox_pending_by_return each; as a NOT EXISTS anti-join the planner may
    # pick a scan of every older pending row instead), and no pending effect of their
    # return under a live lease (an effect given up and re-opened becomes the head while
    # the one after it may still be out with a worker). Rows another worker is claiming
    # right now are skipped, not waited for.
    ctes = (
        "picked AS MATERIALIZED ("
        "SELECT o.seq FROM outbox o WHERE o.status = 'pending' "
        "AND (o.next_attempt_at IS NULL OR o.next_attempt_at <= %(now)s) "
        "AND (o.claimed_until IS NULL OR o.claimed_until <= %(now)s) "
        "AND NOT o.key = ANY(%(attempted)s) "
        "AND o.seq = (SELECT h.seq FROM outbox h WHERE h.shop = o.shop "
        "AND h.return_id = o.return_id AND h.status = 'pending' "
        "AND NOT h.key = ANY(%(settled)s) ORDER BY h.seq LIMIT 1) "
        "AND NOT EXISTS (SELECT 1 FROM outbox l WHERE l.shop = o.shop "
        "AND l.return_id = o.return_id AND l.status = 'pending' "
        "AND l.claimed_until > %(now)s AND NOT l.key = ANY(%(attempted)s))"
        f"{filters} ORDER BY o.seq LIMIT %(limit)s FOR UPDATE OF o SKIP LOCKED), "
        "heads AS (UPDATE outbox u SET claimed_until = %(lease)s, claimed_by = %(worker)s "
        "FROM picked WHERE u.seq = picked.seq RETURNING u.*)"
    )
    select = (
        f"SELECT {_select('c')}, c.seq AS head FROM heads c "
        f"UNION ALL SELECT {_select('f')}, c.seq FROM heads c CROSS JOIN LATERAL ("
        "SELECT * FROM outbox b WHERE b.shop = c.shop AND b.return_id = c.return_id "
        "AND b.status = 'pending' AND NOT b.key = ANY(%(settled)s) AND b.seq > c.seq "
        "ORDER BY b.seq LIMIT %(behind)s) f"
    )
    return ctes, select, params


def claimed(
    rows: Sequence[Sequence[Any]], now: datetime, known: Mapping[str, Effect] | None = None
) -> list[OutboxEntry]:
    """The entries of a claim's rows: each head, then the effects behind it while they are
    due and under no live lease."""
    entries: list[OutboxEntry] = []
    stopped: set[int] = set()
    for row in rows:
        head = int(row[-1])
        if head in stopped:
            continue
        effect = None if known is None else known.get(row[10])
        got = entry(row, effect)
        if got.sequence != head and not (
            (got.next_attempt_at is None or got.next_attempt_at <= now)
            and (got.claimed_until is None or got.claimed_until <= now)
        ):
            stopped.add(head)
            continue
        entries.append(got)
    return entries


def claimed_or_released(
    db: Connection,
    rows: Sequence[Sequence[Any]],
    now: datetime,
    worker: str,
    until: datetime,
) -> list[OutboxEntry]:
    """:func:`claimed` of the rows a statement that leased their heads returned, on a
    connection that committed it already (autocommit); when a row is damaged
    (:class:`~returnflow.errors.UnreadableRecord`, raised), the heads' leases are released
    first, so that an error leaves the outbox as it was and no worker holds a lease nobody
    was handed: a head leased was under no live lease, and none is as good as an old one."""
    try:
        return claimed(rows, now)
    except UnreadableRecord:
        db.execute(
            "UPDATE outbox SET claimed_until = NULL, claimed_by = NULL "
            "WHERE seq = ANY(%s) AND claimed_by = %s AND claimed_until = %s",
            (sorted({int(row[-1]) for row in rows}), worker, until),
        )
        raise
