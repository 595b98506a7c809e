"""The balance an exchange leaves, on the Shopify order: paid (``orderCreateManualPayment``)
and given back (``refundCreate`` of those payments)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from returnflow.domain.money import Money
from returnflow.errors import PortError
from returnflow.integrations.shopify import documents as gql
from returnflow.integrations.shopify._answers import PORT, balance_payments, money_input
from returnflow.ports.platform_returns import PlatformReturn

__all__ = ["BalanceCalls", "refund_variables"]

T = TypeVar("T")


class _Adapter(Protocol):
    def get_return(self, shop: str, return_id: str) -> PlatformReturn: ...

    def _keyed(
        self, operation: str, args: tuple[object, ...], key: str, call: Callable[[], T]
    ) -> T: ...

    def _mutate(
        self, shop: str, operation: str, document: str, variables: dict[str, Any], field: str
    ) -> dict[str, Any]: ...

    def _request(
        self, shop: str, operation: str, document: str, variables: dict[str, Any]
    ) -> dict[str, Any]: ...


def _refused(why: str) -> PortError:
    return PortError(PORT, "refund_balance", why, retryable=False)


def refund_variables(node: dict[str, Any], amount: Money) -> dict[str, Any]:
    """The variables of ``refundCreate`` (``{"input": RefundInput}``) giving back ``amount``
    of the balance payments on the order of the return ``node`` (read with its order's
    transactions): one ``REFUND`` transaction per payment (``OrderTransactionInput``, its
    parent the payment, on the payment's gateway), the latest payment first. Refused
    (``PortError(retryable=False)``) for an amount not above zero, in another currency, or
    above what is left of the payments."""
    zero = Money.zero(amount.currency)
    if amount <= zero:
        raise _refused(f"amount={amount}: not above zero")
    payments = balance_payments(node, "refund_balance")
    if any(paid.currency != amount.currency for *_, paid in payments):
        raise _refused(f"{amount}: not in the order's currency")
    left = Money.sum((paid for *_, paid in payments), amount.currency)
    if amount > left:
        raise _refused(f"{amount} to give back, {left} paid and not given back")
    order_id = node["order"]["id"]
    transactions = []
    wanted = amount
    for payment_id, gateway, paid in reversed(payments):
        part = min(wanted, paid)
        if not part:
            break
        transactions.append(
            {
                "orderId": order_id,
                "parentId": payment_id,
                "gateway": gateway,
                "kind": "REFUND",
                "amount": str(part.amount),
            }
        )
        wanted = wanted - part
    return {
        "input": {
            "orderId": order_id,
            "note": "exchange balance given back",
            "notify": False,
            "transactions": transactions,
        }
    }


class BalanceCalls:
    """The port's ``pay_balance`` and ``refund_balance`` on Shopify."""

    def pay_balance(
        self: _Adapter, shop: str, return_id: str, amount: Money, *, idempotency_key: str
    ) -> PlatformReturn:
        args = (shop, return_id, amount)

        def call() -> PlatformReturn:
            before = self.get_return(shop, return_id)
            if amount <= Money.zero(amount.currency):
                raise PortError(
                    PORT, "pay_balance", f"amount={amount}: not above zero", retryable=False
                )
            variables = {"id": before.order_id, "amount": money_input(amount)}
            self._mutate(shop, "pay_balance", gql.PAY, variables, "orderCreateManualPayment")
            return self.get_return(shop, return_id)

        return self._keyed("pay_balance", args, idempotency_key, call)

    def refund_balance(
        self: _Adapter, shop: str, return_id: str, amount: Money, *, idempotency_key: str
    ) -> PlatformReturn:
        args = (shop, return_id, amount)

        def call() -> PlatformReturn:
            data = self._request(shop, "refund_balance", gql.READ, {"id": return_id})
            node = data.get("return")
            if not isinstance(node, dict):
                raise PortError(PORT, "refund_balance", f"no return {return_id!r}", retryable=False)
            variables = refund_variables(node, amount)
            self._mutate(shop, "refund_balance", gql.REFUND_PAYMENT, variables, "refundCreate")
            return self.get_return(shop, return_id)

        return self._keyed("refund_balance", args, idempotency_key, call)
