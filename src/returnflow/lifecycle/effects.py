"""Effects: intents recorded with a transition, committed with the new state, then dispatched.

An effect is data, not a call: "refund 12.00 EUR for these lines", "release the exchange
hold". The service stores it in the same write as the state change (the outbox) and hands it
to a port only after that write succeeded. Its ``key`` is the idempotency key the port gets:
stable across retries, unique per effect.

Topic names of published domain events are stable API (a helpdesk maps them to statuses).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import attrs

from returnflow.domain.inbound import Disposition
from returnflow.domain.methods import ReturnMethod
from returnflow.domain.money import Money
from returnflow.ports.commerce import ExchangeItem, LineQuantity
from returnflow.ports.platform_returns import DutyRefund, PlatformExchangeLine, PlatformReturnLine

__all__ = [
    "MESSAGE_PORTS",
    "TOPICS",
    "ApprovePlatformReturn",
    "AuthorizePayment",
    "CancelExchange",
    "CancelPlatformReturn",
    "CancelWarehouseReturn",
    "CapturePayment",
    "ChargeBalance",
    "ClosePlatformReturn",
    "CreateLabel",
    "CreateWarehouseReturn",
    "DeclinePlatformReturn",
    "DisposePlatformUnits",
    "Effect",
    "HoldExchange",
    "IssueRefund",
    "IssueStoreCredit",
    "Notify",
    "OpenPlatformReturn",
    "PayPlatformBalance",
    "ProcessPlatformReturn",
    "Publish",
    "RefundBalance",
    "RefundPlatformBalance",
    "ReleaseExchange",
    "RemovePlatformLines",
    "ReopenPlatformReturn",
    "Restock",
    "VoidAuthorization",
    "VoidLabel",
    "describe",
]

TOPICS: Mapping[str, str] = {
    "request": "returns/request",
    "approve": "returns/approve",
    "decline": "returns/decline",
    "cancel": "returns/cancel",
    "update": "returns/update",
    "close": "returns/close",
    "reopen": "returns/reopen",
    "refund_created": "refunds/create",
    "credit_created": "credits/create",
    "balance_charged": "payments/charge",
    "balance_refunded": "payments/refund",
    "payment_authorized": "payments/authorize",
    "payment_captured": "payments/capture",
    "authorization_voided": "payments/void",
    "exchange_held": "exchanges/hold",
    "exchange_released": "exchanges/release",
    "exchange_cancelled": "exchanges/cancel",
    "carrier_picked_up": "carrier/picked_up",
    "carrier_rto": "carrier/rto",
}
"""Stable topic names of domain events, keyed by what happened."""


@attrs.frozen(kw_only=True)
class Effect:
    """Base of all effects. ``key`` is the idempotency key handed to the port; ``version`` is
    the version of the return whose commit planned the effect."""

    kind: ClassVar[str] = "effect"
    port: ClassVar[str] = ""

    key: str
    shop: str
    return_id: str
    order_id: str
    version: int = 0


@attrs.frozen(kw_only=True)
class CreateWarehouseReturn(Effect):
    """Tell the warehouse to expect these units (seed 000: reason/action markers) at
    ``location_id`` (``None``: the shop's default location; one effect per location)."""

    kind: ClassVar[str] = "create_warehouse_return"
    port: ClassVar[str] = "warehouse"
    lines: tuple[LineQuantity, ...]
    reason: str = "returnflow"
    action: str = "returnflow"
    location_id: str | None = None


@attrs.frozen(kw_only=True)
class CancelWarehouseReturn(Effect):
    """Stop expecting the warehouse return at ``location_id`` (``None``: the default)."""

    kind: ClassVar[str] = "cancel_warehouse_return"
    port: ClassVar[str] = "warehouse"
    location_id: str | None = None


@attrs.frozen(kw_only=True)
class CreateLabel(Effect):
    """Buy a label for ``method`` (``mail`` for effects planned before methods)."""

    kind: ClassVar[str] = "create_label"
    port: ClassVar[str] = "carrier"
    method: ReturnMethod = ReturnMethod.MAIL


@attrs.frozen(kw_only=True)
class VoidLabel(Effect):
    kind: ClassVar[str] = "void_label"
    port: ClassVar[str] = "carrier"


@attrs.frozen(kw_only=True)
class HoldExchange(Effect):
    """Add exchange items to the original order on hold and tag the order."""

    kind: ClassVar[str] = "hold_exchange"
    port: ClassVar[str] = "commerce"
    items: tuple[ExchangeItem, ...]
    hold_tag: str


@attrs.frozen(kw_only=True)
class ReleaseExchange(Effect):
    """Remove the hold tag; the held lines become unfulfilled and ship."""

    kind: ClassVar[str] = "release_exchange"
    port: ClassVar[str] = "commerce"
    hold_tag: str
    attempt: int = 1


@attrs.frozen(kw_only=True)
class CancelExchange(Effect):
    """Cancel held exchange items (after a QC fail, a cancel, an expiry)."""

    kind: ClassVar[str] = "cancel_exchange"
    port: ClassVar[str] = "commerce"
    exchange_line_ids: tuple[str, ...]


@attrs.frozen(kw_only=True)
class _Payout(Effect):
    """Money to the customer. ``covers`` are the (return line, units) it settles and
    ``restocking`` / ``shipping`` the fees taken from it: undone if it fails for good.
    ``original_shipping`` and ``duties`` are the order's shipping and duties given back in
    ``amount`` (``duty_refunds``: the duties by the platform's duty id, when the order's
    lines carry them)."""

    amount: Money
    lines: tuple[LineQuantity, ...]
    covers: tuple[tuple[str, int], ...] = ()
    restocking: Money | None = None
    shipping: Money | None = None
    original_shipping: Money | None = None
    duties: Money | None = None
    duty_refunds: tuple[DutyRefund, ...] = ()


@attrs.frozen(kw_only=True)
class IssueRefund(_Payout):
    kind: ClassVar[str] = "issue_refund"
    port: ClassVar[str] = "commerce"


@attrs.frozen(kw_only=True)
class IssueStoreCredit(_Payout):
    """A gift card of ``amount``; ``bonus``: the part of it the policy or a rule adds on
    top of what the units are worth (no platform's figure for the units includes it)."""

    kind: ClassVar[str] = "issue_store_credit"
    port: ClassVar[str] = "commerce"
    bonus: Money | None = None


@attrs.frozen(kw_only=True)
class RefundBalance(Effect):
    """Give back what the customer paid for new items they no longer get."""

    kind: ClassVar[str] = "refund_balance"
    port: ClassVar[str] = "payments"
    amount: Money


@attrs.frozen(kw_only=True)
class Restock(Effect):
    kind: ClassVar[str] = "restock"
    port: ClassVar[str] = "commerce"
    lines: tuple[LineQuantity, ...]


@attrs.frozen(kw_only=True)
class ChargeBalance(Effect):
    """Charge what the customer owes: ahead, at approval, for an exchange (``prepay``: an
    upsell's balance, the new items' shipping, fees the payout will not cover), or what a
    settlement found owed (fees its payout did not cover)."""

    kind: ClassVar[str] = "charge_balance"
    port: ClassVar[str] = "payments"
    amount: Money
    prepay: bool = True


@attrs.frozen(kw_only=True)
class AuthorizePayment(Effect):
    """Authorize ``amount`` on the customer's payment method: an instant exchange released
    before the returned goods arrive (its id is written back to
    ``refs.payment_authorization_id``)."""

    kind: ClassVar[str] = "authorize_payment"
    port: ClassVar[str] = "payments"
    amount: Money
    hold_tag: str | None = None
    """The exchange hold to release once the payment is authorized (an instant exchange)."""


@attrs.frozen(kw_only=True)
class CapturePayment(Effect):
    """Capture ``amount`` (at most what was authorized) of the return's authorization: the
    parcel never came in time, failed QC or went back to the customer."""

    kind: ClassVar[str] = "capture_payment"
    port: ClassVar[str] = "payments"
    amount: Money


@attrs.frozen(kw_only=True)
class VoidAuthorization(Effect):
    """Release the return's authorization, charging nothing: the units came in accepted."""

    kind: ClassVar[str] = "void_authorization"
    port: ClassVar[str] = "payments"


@attrs.frozen(kw_only=True)
class Notify(Effect):
    """A message to the customer."""

    kind: ClassVar[str] = "notify"
    port: ClassVar[str] = "notifier"
    recipient: str
    template: str
    context: Mapping[str, Any] = attrs.field(factory=dict, eq=False, hash=False)


@attrs.frozen(kw_only=True)
class Publish(Effect):
    """A domain event for the event publisher."""

    kind: ClassVar[str] = "publish"
    port: ClassVar[str] = "events"
    topic: str
    payload: Mapping[str, Any] = attrs.field(factory=dict, eq=False, hash=False)


# -- native mode: the platform's own return object (seed 003) ---------------------------------


@attrs.frozen(kw_only=True)
class OpenPlatformReturn(Effect):
    """Open the platform return (Shopify's ``returnCreate``, or ``returnRequest`` when
    ``requested``) for the return's units by order line, its exchange lines and fees; the
    platform's ids are written back (``refs.platform_return_id``, ``platform_line_ids``,
    each exchange line's ``platform_item_id``)."""

    kind: ClassVar[str] = "open_platform_return"
    port: ClassVar[str] = "platform_returns"
    lines: tuple[PlatformReturnLine, ...]
    exchange_lines: tuple[PlatformExchangeLine, ...] = ()
    return_shipping_fee: Money | None = None
    requested: bool = False


@attrs.frozen(kw_only=True)
class ApprovePlatformReturn(Effect):
    """Approve the requested platform return (``returnApproveRequest``)."""

    kind: ClassVar[str] = "approve_platform_return"
    port: ClassVar[str] = "platform_returns"


@attrs.frozen(kw_only=True)
class DeclinePlatformReturn(Effect):
    """Decline the requested platform return (``returnDeclineRequest``)."""

    kind: ClassVar[str] = "decline_platform_return"
    port: ClassVar[str] = "platform_returns"
    reason: str = "OTHER"


@attrs.frozen(kw_only=True)
class ProcessPlatformReturn(Effect):
    """Confirm units (by order line) and exchange lines (returnflow's ids) of the platform
    return and move ``refund`` (Shopify's ``returnProcess``). ``expected``: when set, the
    platform's own figure (for the whole return, or for this call's units) is asked first
    and compared with it to the cent (the policy's ``platform_money`` says which side wins a
    difference)."""

    kind: ClassVar[str] = "process_platform_return"
    port: ClassVar[str] = "platform_returns"
    lines: tuple[LineQuantity, ...]
    exchange_line_ids: tuple[str, ...] = ()
    refund: Money
    expected: Money | None = None
    refund_shipping: Money | None = None
    """The order's shipping given back with the units (besides ``refund``)."""
    refund_duties: tuple[DutyRefund, ...] = ()
    """The order's duties given back with the units, by duty id (besides ``refund``)."""
    expected_owed: Money | None = None
    """With ``expected``, for the whole return processed at once: what returnflow says the
    customer owes (an upsell's balance and fees charged), against the platform's ``owed``.
    Unset with ``expected`` set: one processing call of several (a refund per receipt),
    compared for its own units."""
    shipping_fee: bool = False
    """Kept for effects planned before ``shipping_fee_share``: one call of several,
    whether its settlement took the whole return shipping fee."""
    shipping_fee_share: Money | None = None
    """The return shipping fee the platform's figure for this call counts: the shares its
    units' payouts bear (one call of several), or every share the return's settlements
    charged (the whole return); ``None`` in effects planned before it."""
    owed_paid_apart: Money | None = None
    """With ``expected_owed``: what the customer paid apart from the return's balance that
    pays what the platform says is owed first (an instant exchange's authorization captured
    when QC failed: paid on the platform return after the processing). Unset
    ``expected_owed`` (one call of several): what that capture paid of the items the
    platform asked for ahead of the units paying for them (those units no longer pay it)."""


@attrs.frozen(kw_only=True)
class PayPlatformBalance(Effect):
    """Tell the platform the customer paid ``amount`` of the balance the return leaves owed,
    charged through the Payments port (Shopify: a manual payment on the order): the
    platform holds an exchange's items only while a balance is owed."""

    kind: ClassVar[str] = "pay_platform_balance"
    port: ClassVar[str] = "platform_returns"
    amount: Money


@attrs.frozen(kw_only=True)
class RefundPlatformBalance(Effect):
    """Tell the platform ``amount`` of the balance paid on it (:class:`PayPlatformBalance`)
    was given back through the Payments port (:class:`RefundBalance`; Shopify: a refund
    of the manual payment on the order), so that its money matches returnflow's."""

    kind: ClassVar[str] = "refund_platform_balance"
    port: ClassVar[str] = "platform_returns"
    amount: Money
    paid_on: str | None = None
    """The platform return the balance was paid on when it is not the return's own (a
    return reset from one whose balance the customer paid on its platform return)."""


@attrs.frozen
class Disposal:
    """``quantity`` processed units of an order line and what became of them."""

    order_line_id: str
    quantity: int
    disposition: Disposition


@attrs.frozen(kw_only=True)
class DisposePlatformUnits(Effect):
    """Say what became of processed units, apart from the refund
    (``reverseFulfillmentOrderDispose``): restocked, or not, by the QC result."""

    kind: ClassVar[str] = "dispose_platform_units"
    port: ClassVar[str] = "platform_returns"
    disposals: tuple[Disposal, ...]


@attrs.frozen(kw_only=True)
class RemovePlatformLines(Effect):
    """Take units not processed out of the platform return (``removeFromReturn``): a QC
    failure, units that never came; and the items of cancelled exchange lines
    (``exchange_line_ids``), which will never ship."""

    kind: ClassVar[str] = "remove_platform_lines"
    port: ClassVar[str] = "platform_returns"
    lines: tuple[LineQuantity, ...]
    exchange_line_ids: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class ClosePlatformReturn(Effect):
    """Close the platform return once returnflow's is closed (when the platform has not
    closed it itself)."""

    kind: ClassVar[str] = "close_platform_return"
    port: ClassVar[str] = "platform_returns"


@attrs.frozen(kw_only=True)
class ReopenPlatformReturn(Effect):
    """Reopen the closed platform return (``returnReopen``)."""

    kind: ClassVar[str] = "reopen_platform_return"
    port: ClassVar[str] = "platform_returns"


@attrs.frozen(kw_only=True)
class CancelPlatformReturn(Effect):
    """Cancel the platform return (``returnCancel``): returnflow's was cancelled, declined
    after approval or expired."""

    kind: ClassVar[str] = "cancel_platform_return"
    port: ClassVar[str] = "platform_returns"


def _lines(lines: tuple[LineQuantity, ...]) -> str:
    return ", ".join(f"{line.order_line_id}x{line.quantity}" for line in lines) or "no lines"


def _at(location_id: str | None) -> str:
    return "" if location_id is None else f" at {location_id}"


def describe(effect: Effect) -> str:
    """One readable line for an effect, for timelines and logs.

    >>> describe(IssueRefund(key="k", shop="s", return_id="R1", order_id="1001",
    ...                      amount=Money("23.80", "EUR"), lines=(LineQuantity("L2", 2),)))
    'commerce.refund 23.80 EUR for L2x2'
    """
    if isinstance(effect, Publish):
        return f"publish {effect.topic}"
    if isinstance(effect, Notify):
        return f"notify {effect.recipient}: {effect.template}"
    if isinstance(effect, CreateWarehouseReturn):
        return (
            f"warehouse.create_return {_lines(effect.lines)} "
            f"(reason={effect.reason}, action={effect.action}){_at(effect.location_id)}"
        )
    if isinstance(effect, CancelWarehouseReturn):
        return f"warehouse.cancel_return{_at(effect.location_id)}"
    if isinstance(effect, CreateLabel):
        return "carrier.create_label"
    if isinstance(effect, VoidLabel):
        return "carrier.void_label"
    if isinstance(effect, HoldExchange):
        items = ", ".join(f"{item.variant_id}x{item.quantity}" for item in effect.items)
        return f"commerce.add_exchange_items {items} on hold, tag {effect.hold_tag}"
    if isinstance(effect, ReleaseExchange):
        return f"commerce.release_exchange (remove tag {effect.hold_tag}, try {effect.attempt})"
    if isinstance(effect, CancelExchange):
        return f"commerce.cancel_exchange_items {', '.join(effect.exchange_line_ids)}"
    if isinstance(effect, IssueRefund):
        return f"commerce.refund {effect.amount} for {_lines(effect.lines)}"
    if isinstance(effect, IssueStoreCredit):
        return f"commerce.issue_store_credit {effect.amount} for {_lines(effect.lines)}"
    if isinstance(effect, ChargeBalance):
        return f"payments.charge {effect.amount}"
    if isinstance(effect, RefundBalance):
        return f"payments.refund {effect.amount}"
    if isinstance(effect, AuthorizePayment):
        return f"payments.authorize {effect.amount}"
    if isinstance(effect, CapturePayment):
        return f"payments.capture {effect.amount} of the authorization"
    if isinstance(effect, VoidAuthorization):
        return "payments.void the authorization"
    if isinstance(effect, Restock):
        return f"commerce.restock {_lines(effect.lines)}"
    if isinstance(effect, OpenPlatformReturn):
        lines = tuple(LineQuantity(line.order_line_id, line.quantity) for line in effect.lines)
        how = "request" if effect.requested else "open"
        return f"platform_returns.{how} {_lines(lines)}"
    if isinstance(effect, ProcessPlatformReturn):
        return f"platform_returns.process {_lines(effect.lines)}, refund {effect.refund}"
    if isinstance(effect, RemovePlatformLines):
        return f"platform_returns.remove {_lines(effect.lines)}"
    if isinstance(effect, PayPlatformBalance):
        return f"platform_returns.pay_balance {effect.amount}"
    if isinstance(effect, RefundPlatformBalance):
        return f"platform_returns.refund_balance {effect.amount}"
    if isinstance(effect, DisposePlatformUnits):
        said = ", ".join(
            f"{item.order_line_id}x{item.quantity} {item.disposition.value}"
            for item in effect.disposals
        )
        return f"platform_returns.dispose {said}"
    return f"{effect.port}.{effect.kind}"


MESSAGE_PORTS = frozenset({"notifier", "events"})
"""Ports that only tell (a customer's message, a published event): nothing waits on them."""


def in_delivery_order(effects: Sequence[Effect]) -> list[Effect]:
    """The effects one commit plans, in the order they are delivered: those of a port the
    return depends on (a label, a warehouse return, a refund...) first, then the messages
    and events (:data:`MESSAGE_PORTS`), each group in the order it was planned. What a
    message or an event reports is fixed when it is planned; delivering the port calls
    first lets the commit's own claim hand the first of them to the dispatcher at once,
    and puts the customer's label or money ahead of what announces it."""
    return [
        *(effect for effect in effects if effect.port not in MESSAGE_PORTS),
        *(effect for effect in effects if effect.port in MESSAGE_PORTS),
    ]
