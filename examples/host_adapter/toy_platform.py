"""A host's own commerce-platform adapter: a toy shop backed by SQLite.

This is what a host writes to plug its platform into returnflow: a class with the methods
of the :class:`returnflow.ports.CommercePlatform` protocol. It keeps its own tables (orders,
exchange items, refunds, credits, restocks) and an idempotency table, so a repeated key
returns the first answer and changes nothing, the way Shopify's or Stripe's APIs do.

Its tests (``tests/`` beside this file) use only returnflow's public testing kit.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from returnflow import Money, OrderSnapshot, PortError
from returnflow.ports import (
    CreditReceipt,
    ExchangeHold,
    ExchangeItem,
    HoldStatus,
    LineQuantity,
    RefundReceipt,
)
from returnflow.serialization import converter

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (shop TEXT, id TEXT, body TEXT, PRIMARY KEY (shop, id));
CREATE TABLE IF NOT EXISTS tags (
    shop TEXT, order_id TEXT, tag TEXT, PRIMARY KEY (shop, order_id, tag));
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY AUTOINCREMENT, shop TEXT, order_id TEXT, hold TEXT,
    variant TEXT, quantity INTEGER, status TEXT, line TEXT);
CREATE TABLE IF NOT EXISTS money (
    id INTEGER PRIMARY KEY AUTOINCREMENT, shop TEXT, order_id TEXT, kind TEXT,
    amount TEXT, currency TEXT);
CREATE TABLE IF NOT EXISTS restocks (shop TEXT, order_id TEXT, line TEXT, quantity INTEGER);
CREATE TABLE IF NOT EXISTS holds (
    id INTEGER PRIMARY KEY AUTOINCREMENT, shop TEXT, order_id TEXT);
CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, request TEXT, reply TEXT);
"""


class ToyShopPlatform:
    """The toy shop's platform. ``path`` is its SQLite file (``":memory:"`` works too)."""

    def __init__(self, path: str = ":memory:") -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._lock = threading.RLock()
        self._db.executescript(_SCHEMA)
        # closed when the platform is dropped, or by close()
        self._closer = weakref.finalize(self, self._db.close)

    def close(self) -> None:
        """Close the platform's database."""
        self._closer()

    # -- the shop's own admin side (not part of the port) ------------------------------------

    def add_order(self, order: OrderSnapshot) -> None:
        body = json.dumps(converter.unstructure(order))
        with self._lock:
            self._db.execute("INSERT INTO orders VALUES (?, ?, ?)", (order.shop, order.id, body))

    def tags(self, shop: str, order_id: str) -> set[str]:
        rows = self._db.execute(
            "SELECT tag FROM tags WHERE shop = ? AND order_id = ?", (shop, order_id)
        )
        return {tag for (tag,) in rows}

    # -- plumbing ------------------------------------------------------------------------

    def _once(
        self,
        operation: str,
        key: str,
        request: dict[str, Any],
        do: Callable[[], T],
        encode: Callable[[T], Any],
        decode: Callable[[Any], T],
    ) -> T:
        """Run ``do`` once per idempotency key, in one transaction; replay the stored reply."""
        asked = json.dumps([operation, converter.unstructure(request)], sort_keys=True)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT request, reply FROM replies WHERE key = ?", (key,)
                ).fetchone()
                if row is not None:
                    if row[0] != asked:
                        raise PortError(
                            "commerce",
                            operation,
                            "idempotency key reused with other arguments",
                            retryable=False,
                        )
                    self._db.execute("COMMIT")
                    return decode(json.loads(row[1]))
                reply = do()
                self._db.execute(
                    "INSERT INTO replies VALUES (?, ?, ?)",
                    (key, asked, json.dumps(encode(reply))),
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return reply

    def _order(self, operation: str, shop: str, order_id: str) -> OrderSnapshot:
        row = self._db.execute(
            "SELECT body FROM orders WHERE shop = ? AND id = ?", (shop, order_id)
        ).fetchone()
        if row is None:
            raise PortError("commerce", operation, f"no order {order_id}", retryable=False)
        order: OrderSnapshot = converter.structure(json.loads(row[0]), OrderSnapshot)
        return order

    def _paid_out(self, shop: str, order_id: str) -> Money:
        order = self._order("refund", shop, order_id)
        rows = self._db.execute(
            "SELECT amount FROM money WHERE shop = ? AND order_id = ? AND kind = 'refund'",
            (shop, order_id),
        )
        return Money.sum((Money(amount, order.currency) for (amount,) in rows), order.currency)

    # -- the port ------------------------------------------------------------------------

    def get_order(self, shop: str, order_id: str) -> OrderSnapshot:
        return self._order("get_order", shop, order_id)

    def add_exchange_items(
        self,
        shop: str,
        order_id: str,
        items: Sequence[ExchangeItem],
        *,
        hold_tag: str,
        idempotency_key: str,
    ) -> ExchangeHold:
        def do() -> ExchangeHold:
            self._order("add_exchange_items", shop, order_id)
            if not items:
                raise PortError("commerce", "add_exchange_items", "no items", retryable=False)
            cursor = self._db.execute(
                "INSERT INTO holds (shop, order_id) VALUES (?, ?)", (shop, order_id)
            )
            hold = f"H-{cursor.lastrowid}"
            ids = []
            for item in items:
                cursor = self._db.execute(
                    "INSERT INTO items (shop, order_id, hold, variant, quantity, status, line) "
                    "VALUES (?, ?, ?, ?, ?, 'on_hold', ?)",
                    (shop, order_id, hold, item.variant_id, item.quantity, item.exchange_line_id),
                )
                ids.append(f"I-{cursor.lastrowid}")
            self._db.execute(
                "INSERT OR IGNORE INTO tags VALUES (?, ?, ?)", (shop, order_id, hold_tag)
            )
            return ExchangeHold(hold_id=hold, item_ids=tuple(ids))

        request = {"shop": shop, "order_id": order_id, "items": list(items), "tag": hold_tag}
        return self._once(
            "add_exchange_items",
            idempotency_key,
            request,
            do,
            converter.unstructure,
            lambda data: converter.structure(data, ExchangeHold),
        )

    def _hold_rows(self, operation: str, shop: str, order_id: str, hold_id: str) -> list[Any]:
        rows = self._db.execute(
            "SELECT id, status FROM items WHERE shop = ? AND order_id = ? AND hold = ?",
            (shop, order_id, hold_id),
        ).fetchall()
        if not rows:
            raise PortError("commerce", operation, f"no hold {hold_id}", retryable=False)
        return rows

    def release_exchange(
        self, shop: str, order_id: str, hold_id: str, *, hold_tag: str, idempotency_key: str
    ) -> None:
        def do() -> None:
            self._hold_rows("release_exchange", shop, order_id, hold_id)
            self._db.execute(
                "UPDATE items SET status = 'unfulfilled' WHERE shop = ? AND order_id = ? "
                "AND hold = ? AND status = 'on_hold'",
                (shop, order_id, hold_id),
            )
            self._db.execute(
                "DELETE FROM tags WHERE shop = ? AND order_id = ? AND tag = ?",
                (shop, order_id, hold_tag),
            )

        request = {"shop": shop, "order_id": order_id, "hold": hold_id, "tag": hold_tag}
        self._once("release_exchange", idempotency_key, request, do, lambda _: None, lambda _: None)

    def exchange_hold_status(self, shop: str, order_id: str, hold_id: str) -> HoldStatus:
        statuses = {status for _, status in self._hold_rows("status", shop, order_id, hold_id)}
        if "on_hold" in statuses:
            return HoldStatus.HELD
        if statuses == {"cancelled"}:
            return HoldStatus.CANCELLED
        return HoldStatus.RELEASED

    def cancel_exchange_items(
        self,
        shop: str,
        order_id: str,
        hold_id: str,
        item_ids: Sequence[str],
        *,
        idempotency_key: str,
    ) -> None:
        def do() -> None:
            known = {
                f"I-{row_id}" for row_id, _ in self._hold_rows("cancel", shop, order_id, hold_id)
            }
            unknown = set(item_ids) - known
            if unknown or not item_ids:
                raise PortError(
                    "commerce",
                    "cancel_exchange_items",
                    f"unknown items {sorted(unknown)}",
                    retryable=False,
                )
            self._db.executemany(
                "UPDATE items SET status = 'cancelled' WHERE id = ? AND status = 'on_hold'",
                [(int(item[2:]),) for item in item_ids],
            )

        request = {"shop": shop, "order_id": order_id, "hold": hold_id, "items": list(item_ids)}
        self._once(
            "cancel_exchange_items", idempotency_key, request, do, lambda _: None, lambda _: None
        )

    def refund(
        self,
        shop: str,
        order_id: str,
        amount: Money,
        lines: Sequence[LineQuantity],
        *,
        idempotency_key: str,
    ) -> RefundReceipt:
        def do() -> RefundReceipt:
            order = self._order("refund", shop, order_id)
            if amount.currency != order.currency or amount.amount <= 0:
                raise PortError("commerce", "refund", f"cannot refund {amount}", retryable=False)
            paid_out = self._paid_out(shop, order_id)
            if paid_out + amount > order.paid_total:
                raise PortError("commerce", "refund", "more than was paid", retryable=False)
            cursor = self._db.execute(
                "INSERT INTO money (shop, order_id, kind, amount, currency) "
                "VALUES (?, ?, 'refund', ?, ?)",
                (shop, order_id, str(amount.amount), amount.currency),
            )
            return RefundReceipt(refund_id=f"RF-{cursor.lastrowid}", amount=amount)

        request = {"shop": shop, "order_id": order_id, "amount": amount, "lines": list(lines)}
        return self._once(
            "refund",
            idempotency_key,
            request,
            do,
            converter.unstructure,
            lambda data: converter.structure(data, RefundReceipt),
        )

    def issue_store_credit(
        self, shop: str, order_id: str, amount: Money, *, idempotency_key: str
    ) -> CreditReceipt:
        def do() -> CreditReceipt:
            order = self._order("issue_store_credit", shop, order_id)
            if amount.currency != order.currency or amount.amount <= 0:
                raise PortError(
                    "commerce", "issue_store_credit", f"cannot credit {amount}", retryable=False
                )
            cursor = self._db.execute(
                "INSERT INTO money (shop, order_id, kind, amount, currency) "
                "VALUES (?, ?, 'credit', ?, ?)",
                (shop, order_id, str(amount.amount), amount.currency),
            )
            return CreditReceipt(credit_id=f"GC-{cursor.lastrowid}", amount=amount)

        request = {"shop": shop, "order_id": order_id, "amount": amount}
        return self._once(
            "issue_store_credit",
            idempotency_key,
            request,
            do,
            converter.unstructure,
            lambda data: converter.structure(data, CreditReceipt),
        )

    def restock(
        self, shop: str, order_id: str, lines: Sequence[LineQuantity], *, idempotency_key: str
    ) -> None:
        def do() -> None:
            self._order("restock", shop, order_id)
            self._db.executemany(
                "INSERT INTO restocks VALUES (?, ?, ?, ?)",
                [(shop, order_id, line.order_line_id, line.quantity) for line in lines],
            )

        request = {"shop": shop, "order_id": order_id, "lines": list(lines)}
        self._once("restock", idempotency_key, request, do, lambda _: None, lambda _: None)
