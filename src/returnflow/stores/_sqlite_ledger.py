"""The SQLite store's part of the order-level ledger (:mod:`returnflow.domain.ledger`): the
rows of ``order_units``, written in the commit's transaction."""

from __future__ import annotations

import sqlite3

from returnflow.domain.ledger import ENDED_UNSETTLED, held_units
from returnflow.errors import UnitsTaken
from returnflow.ports.store import Commit

__all__ = ["write_units"]

_INSERT = (
    "INSERT INTO order_units (shop, order_id, order_line_id, unit, return_id) "
    "VALUES (?, ?, ?, ?, ?)"
)


def write_units(db: sqlite3.Connection, commit: Commit) -> None:
    """Keep the order-level ledger: a return ending unsettled frees its units (first, so
    that a reset's new return can take them in the same commit); a new return takes its
    units, and the table's key refuses a unit another return holds (:class:`UnitsTaken`,
    naming the units and their holder; the caller's transaction is rolled back). A return's
    units are fixed when it is opened."""
    for record, _ in commit.records:
        if record.status in ENDED_UNSETTLED:
            db.execute(
                "DELETE FROM order_units WHERE shop = ? AND order_id = ? AND return_id = ?",
                (record.shop, record.order_id, record.id),
            )
            db.executemany(  # what it paid for and did not hand on stays taken
                _INSERT,
                [
                    (record.shop, record.order_id, line, unit, record.id)
                    for line, unit in sorted(held_units(record))
                ],
            )
    for record, expected in commit.records:
        if expected:  # a return's units are fixed when it is opened
            continue
        units = sorted(held_units(record))
        if not units:
            continue
        try:
            db.executemany(
                _INSERT,
                [(record.shop, record.order_id, line, unit, record.id) for line, unit in units],
            )
        except sqlite3.IntegrityError:
            held = {
                (line, unit): holder
                for line, unit, holder in db.execute(
                    "SELECT order_line_id, unit, return_id FROM order_units "
                    "WHERE shop = ? AND order_id = ? AND return_id <> ?",
                    (record.shop, record.order_id, record.id),
                )
            }
            clash = [unit for unit in units if unit in held] or units
            raise UnitsTaken(record.id, record.order_id, clash, held.get(clash[0])) from None
