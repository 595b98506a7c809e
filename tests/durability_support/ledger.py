"""Ports that are durable across processes: every change is a JSON line in one file.

A :class:`Ledger` is an append-only file of ``{"key", "port", "operation", "args", "result"}``
lines, fsynced after each write. A call whose idempotency key is already in the file is a
replay: it changes nothing and answers the first call's result, like a real API that honours
keys. So a process that dies after a port call and before the outbox recorded it can be
followed by another process that calls again with the same key, and the ledger shows
whether the world saw the effect once.

``Ledger.kill_at`` arms a crash: ``("before", op)`` kills the process with ``SIGKILL`` at the
first new (not replayed) call of ``op`` before anything is written, ``("after", op)`` right
after its line is on disk; ``op`` ``"*"`` matches any changing call. ``Ledger.refuse``
names an operation the ledger refuses for good (a non-retryable ``PortError``).

One process writes at a time (the tests run the crashed child, then its successor).
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Mapping, Sequence
from typing import Any

from returnflow.domain.model import OrderSnapshot
from returnflow.domain.money import Money
from returnflow.errors import PortError
from returnflow.ports.carrier import Label
from returnflow.ports.commerce import (
    CreditReceipt,
    ExchangeHold,
    ExchangeItem,
    HoldStatus,
    LineQuantity,
    RefundReceipt,
)
from returnflow.ports.events import DomainEvent
from returnflow.ports.payments import PaymentReceipt
from returnflow.ports.warehouse import WarehouseReturn
from returnflow.serialization import converter

__all__ = ["Ledger", "ledger_ports"]

_RESULT_TYPES: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (Label, WarehouseReturn, ExchangeHold, RefundReceipt, CreditReceipt, PaymentReceipt)
}


class Ledger:
    """The append-only file behind every ledger port."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.kill_at: tuple[str, str] | None = None
        self.refuse: str | None = None

    def entries(self) -> list[dict[str, Any]]:
        if not os.path.exists(self.path):
            return []
        with open(self.path, encoding="utf-8") as file:
            return [json.loads(line) for line in file if line.strip()]

    def idempotency_keys(self) -> list[str]:
        return [entry["key"] for entry in self.entries()]

    def _kill(self, when: str, operation: str) -> None:
        armed = self.kill_at
        if armed is not None and armed[0] == when and armed[1] in ("*", operation):
            os.kill(os.getpid(), signal.SIGKILL)

    def call(self, port: str, operation: str, key: str, args: Mapping[str, Any], make: Any) -> Any:
        """Replay ``key`` if it is in the file, else write a line with ``make(n)``'s result
        (``n``: a number unique in the file, for ids)."""
        plain = json.loads(json.dumps(converter.unstructure(dict(args)), sort_keys=True))
        entries = self.entries()
        for entry in entries:
            if entry["key"] == key:
                if (entry["port"], entry["operation"], entry["args"]) != (port, operation, plain):
                    raise PortError(port, operation, "idempotency key reused", retryable=False)
                return _result(entry["result"])
        if self.refuse == operation:
            raise PortError(port, operation, "refused by the test", retryable=False)
        self._kill("before", operation)
        result = make(len(entries) + 1)
        line = {
            "key": key,
            "port": port,
            "operation": operation,
            "args": plain,
            "pid": os.getpid(),
            "result": None
            if result is None
            else {"type": type(result).__name__, "data": converter.unstructure(result)},
        }
        with open(self.path, "a", encoding="utf-8") as file:
            file.write(json.dumps(line, sort_keys=True) + "\n")
            file.flush()
            os.fsync(file.fileno())
        self._kill("after", operation)
        return result


def _result(stored: Mapping[str, Any] | None) -> Any:
    if stored is None:
        return None
    return converter.structure(stored["data"], _RESULT_TYPES[stored["type"]])


class _Port:
    port = ""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def _call(self, operation: str, key: str, args: Mapping[str, Any], make: Any = None) -> Any:
        return self.ledger.call(self.port, operation, key, args, make or (lambda n: None))


class LedgerCommerce(_Port):
    """The commerce platform; orders are given up front (reads are not written)."""

    port = "commerce"

    def __init__(self, ledger: Ledger, orders: Sequence[OrderSnapshot]) -> None:
        super().__init__(ledger)
        self.orders = {(order.shop, order.id): order for order in orders}

    def get_order(self, shop: str, order_id: str) -> OrderSnapshot:
        try:
            return self.orders[(shop, order_id)]
        except KeyError:
            raise PortError("commerce", "get_order", "no such order", retryable=False) from None

    def add_exchange_items(
        self,
        shop: str,
        order_id: str,
        items: Sequence[ExchangeItem],
        *,
        hold_tag: str,
        idempotency_key: str,
    ) -> ExchangeHold:
        args = {"shop": shop, "order_id": order_id, "items": list(items), "hold_tag": hold_tag}
        return self._call(  # type: ignore[no-any-return]
            "add_exchange_items",
            idempotency_key,
            args,
            lambda n: ExchangeHold(
                hold_id=f"hold-{n}", item_ids=tuple(f"item-{n}-{i}" for i in range(len(items)))
            ),
        )

    def release_exchange(
        self, shop: str, order_id: str, hold_id: str, *, hold_tag: str, idempotency_key: str
    ) -> None:
        args = {"shop": shop, "order_id": order_id, "hold_id": hold_id, "hold_tag": hold_tag}
        self._call("release_exchange", idempotency_key, args)

    def exchange_hold_status(self, shop: str, order_id: str, hold_id: str) -> HoldStatus:
        released = any(
            entry["operation"] == "release_exchange" and entry["args"]["hold_id"] == hold_id
            for entry in self.ledger.entries()
        )
        return HoldStatus.RELEASED if released else HoldStatus.HELD

    def cancel_exchange_items(
        self,
        shop: str,
        order_id: str,
        hold_id: str,
        item_ids: Sequence[str],
        *,
        idempotency_key: str,
    ) -> None:
        args = {"shop": shop, "order_id": order_id, "hold_id": hold_id, "item_ids": list(item_ids)}
        self._call("cancel_exchange_items", idempotency_key, args)

    def refund(
        self,
        shop: str,
        order_id: str,
        amount: Money,
        lines: Sequence[LineQuantity],
        *,
        idempotency_key: str,
    ) -> RefundReceipt:
        args = {"shop": shop, "order_id": order_id, "amount": amount, "lines": list(lines)}
        return self._call(  # type: ignore[no-any-return]
            "refund",
            idempotency_key,
            args,
            lambda n: RefundReceipt(refund_id=f"refund-{n}", amount=amount),
        )

    def issue_store_credit(
        self, shop: str, order_id: str, amount: Money, *, idempotency_key: str
    ) -> CreditReceipt:
        args = {"shop": shop, "order_id": order_id, "amount": amount}
        return self._call(  # type: ignore[no-any-return]
            "issue_store_credit",
            idempotency_key,
            args,
            lambda n: CreditReceipt(credit_id=f"gift-{n}", amount=amount),
        )

    def restock(
        self, shop: str, order_id: str, lines: Sequence[LineQuantity], *, idempotency_key: str
    ) -> None:
        self._call(
            "restock", idempotency_key, {"shop": shop, "order_id": order_id, "lines": list(lines)}
        )


class LedgerWarehouse(_Port):
    port = "warehouse"

    def create_return(
        self,
        shop: str,
        order_id: str,
        return_id: str,
        lines: Sequence[LineQuantity],
        *,
        reason: str,
        action: str,
        idempotency_key: str,
    ) -> WarehouseReturn:
        args = {
            "shop": shop,
            "order_id": order_id,
            "return_id": return_id,
            "lines": list(lines),
            "reason": reason,
            "action": action,
        }
        return self._call(  # type: ignore[no-any-return]
            "create_return", idempotency_key, args, lambda n: WarehouseReturn(rma_id=f"RMA-{n}")
        )

    def cancel_return(self, shop: str, rma_id: str, *, idempotency_key: str) -> None:
        self._call("cancel_return", idempotency_key, {"shop": shop, "rma_id": rma_id})


class LedgerCarrier(_Port):
    port = "carrier"

    def create_label(
        self, shop: str, return_id: str, order_id: str, *, idempotency_key: str
    ) -> Label:
        args = {"shop": shop, "return_id": return_id, "order_id": order_id}
        return self._call(  # type: ignore[no-any-return]
            "create_label",
            idempotency_key,
            args,
            lambda n: Label(tracking_number=f"TRK{n:06d}", label_url=f"https://l.example/{n}"),
        )

    def void_label(self, shop: str, tracking_number: str, *, idempotency_key: str) -> None:
        self._call(
            "void_label", idempotency_key, {"shop": shop, "tracking_number": tracking_number}
        )


class LedgerPayments(_Port):
    port = "payments"

    def _pay(self, operation: str, shop: str, return_id: str, amount: Money, key: str) -> Any:
        args = {"shop": shop, "return_id": return_id, "amount": amount}
        return self._call(
            operation, key, args, lambda n: PaymentReceipt(payment_id=f"pay-{n}", amount=amount)
        )

    def charge(
        self, shop: str, return_id: str, amount: Money, *, idempotency_key: str
    ) -> PaymentReceipt:
        return self._pay("charge", shop, return_id, amount, idempotency_key)  # type: ignore[no-any-return]

    def authorize(
        self, shop: str, return_id: str, amount: Money, *, idempotency_key: str
    ) -> PaymentReceipt:
        return self._pay("authorize", shop, return_id, amount, idempotency_key)  # type: ignore[no-any-return]

    def refund(
        self, shop: str, return_id: str, amount: Money, *, idempotency_key: str
    ) -> PaymentReceipt:
        return self._pay("refund", shop, return_id, amount, idempotency_key)  # type: ignore[no-any-return]


class LedgerNotifier(_Port):
    port = "notifier"

    def notify(
        self,
        shop: str,
        recipient: str,
        template: str,
        context: Mapping[str, Any],
        *,
        idempotency_key: str,
    ) -> None:
        args = {"shop": shop, "recipient": recipient, "template": template, "context": context}
        self._call("notify", idempotency_key, args)


class LedgerEvents(_Port):
    port = "events"

    def publish(self, event: DomainEvent, *, idempotency_key: str) -> None:
        args = {
            "topic": event.topic,
            "shop": event.shop,
            "return_id": event.return_id,
            "payload": dict(event.payload),
        }
        self._call("publish", idempotency_key, args)


def ledger_ports(ledger: Ledger, orders: Sequence[OrderSnapshot]) -> dict[str, Any]:
    """The six ports on ``ledger``, as keyword arguments of ``ReturnsService``."""
    return {
        "commerce": LedgerCommerce(ledger, orders),
        "warehouse": LedgerWarehouse(ledger),
        "carrier": LedgerCarrier(ledger),
        "payments": LedgerPayments(ledger),
        "notifier": LedgerNotifier(ledger),
        "events": LedgerEvents(ledger),
    }
