"""The handler of each effect type of :mod:`returnflow.dispatch`: a small function that calls
one port with the effect's idempotency key and returns what the port answered
(``(dispatcher, effect, record as stored) -> answer``; the record is ``None`` for those that
read nothing of the return)."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from returnflow._answers import id_lists_of, ids_of
from returnflow.domain._fields import check_tracking, check_url
from returnflow.domain.destinations import rma_at
from returnflow.domain.model import ReturnRecord
from returnflow.errors import PortError
from returnflow.lifecycle import effects as fx
from returnflow.ports.carrier import ask_for_label
from returnflow.ports.events import DomainEvent
from returnflow.ports.warehouse import expect_return

if TYPE_CHECKING:
    from returnflow.dispatch import Dispatcher

_T = TypeVar("_T")


def _paid(payment: _T) -> _T:
    """A payment's answer, its id checked (:mod:`returnflow._answers`)."""
    ids_of(payment, "payment_id")
    return payment


def _required(value: _T | None, field: str, effect: fx.Effect) -> _T:
    if value is None:
        raise PortError(effect.port, effect.kind, f"the return has no {field} yet", retryable=True)
    return value


def publish(d: Dispatcher, effect: fx.Publish, record: ReturnRecord | None) -> object:
    event = DomainEvent(
        topic=effect.topic, shop=effect.shop, return_id=effect.return_id, payload=effect.payload
    )
    d.events.publish(event, idempotency_key=effect.key)
    return None


def notify(d: Dispatcher, effect: fx.Notify, record: ReturnRecord | None) -> object:
    d.notifier.notify(
        effect.shop, effect.recipient, effect.template, effect.context, idempotency_key=effect.key
    )
    return None


def create_warehouse_return(
    d: Dispatcher, effect: fx.CreateWarehouseReturn, record: ReturnRecord | None
) -> object:
    return expect_return(d.warehouse, effect)


def cancel_warehouse_return(
    d: Dispatcher, effect: fx.CancelWarehouseReturn, record: ReturnRecord
) -> object:
    rma = _required(rma_at(record.refs, effect.location_id), "warehouse_rma_id", effect)
    d.warehouse.cancel_return(effect.shop, rma, idempotency_key=effect.key)
    return None


def create_label(d: Dispatcher, effect: fx.CreateLabel, record: ReturnRecord | None) -> object:
    """The carrier's label; one whose tracking number is no tracking number (blank, or
    longer than :data:`~returnflow.domain._fields.MAX_TRACKING`) or whose URL is no URL
    (not text, blank, or longer than :data:`~returnflow.domain._fields.MAX_URL`), or whose
    drop-off QR code's URL, when given, is no URL either, is refused with
    :class:`~returnflow.errors.InvalidPayload` naming it, and nothing of it is written."""
    label = ask_for_label(
        d.carrier, effect.shop, effect.return_id, effect.order_id, effect.key, effect.method
    )
    check_tracking("tracking_number", getattr(label, "tracking_number", None))
    check_url("label_url", getattr(label, "label_url", None))
    qr = getattr(label, "qr_code_url", None)
    if qr is not None:
        check_url("qr_code_url", qr)
    return label


def void_label(d: Dispatcher, effect: fx.VoidLabel, record: ReturnRecord) -> object:
    tracking = _required(record.refs.tracking_number, "tracking_number", effect)
    d.carrier.void_label(effect.shop, tracking, idempotency_key=effect.key)
    return None


def hold_exchange(d: Dispatcher, effect: fx.HoldExchange, record: ReturnRecord | None) -> object:
    """The hold's id and its items' ids, checked (:mod:`returnflow._answers`)."""
    held = d.commerce.add_exchange_items(
        effect.shop,
        effect.order_id,
        effect.items,
        hold_tag=effect.hold_tag,
        idempotency_key=effect.key,
    )
    ids_of(held, "hold_id")
    id_lists_of(held, "item_ids")
    return held


def release_exchange(d: Dispatcher, effect: fx.ReleaseExchange, record: ReturnRecord) -> object:
    hold = _required(record.refs.exchange_hold_id, "exchange_hold_id", effect)
    if any(
        isinstance(entry.effect, fx.CancelExchange) and entry.status == "failed"
        for entry in d.store.outbox(effect.shop, effect.return_id)
    ):
        # Releasing the hold would ship the items whose cancel never went through.
        raise PortError(
            "service",
            "release_exchange",
            "items of this hold were to be cancelled and were not",
            retryable=False,
        )
    d.commerce.release_exchange(
        effect.shop, effect.order_id, hold, hold_tag=effect.hold_tag, idempotency_key=effect.key
    )
    return None


def cancel_exchange(d: Dispatcher, effect: fx.CancelExchange, record: ReturnRecord) -> object:
    hold = _required(record.refs.exchange_hold_id, "exchange_hold_id", effect)
    wanted = set(effect.exchange_line_ids)
    items = tuple(
        _required(line.platform_item_id, "platform_item_id", effect)
        for line in record.exchange_lines
        if line.id in wanted
    )
    d.commerce.cancel_exchange_items(
        effect.shop, effect.order_id, hold, items, idempotency_key=effect.key
    )
    return None


def issue_refund(d: Dispatcher, effect: fx.IssueRefund, record: ReturnRecord | None) -> object:
    refund = d.commerce.refund(
        effect.shop, effect.order_id, effect.amount, effect.lines, idempotency_key=effect.key
    )
    ids_of(refund, "refund_id")
    return refund


def issue_store_credit(
    d: Dispatcher, effect: fx.IssueStoreCredit, record: ReturnRecord | None
) -> object:
    credit = d.commerce.issue_store_credit(
        effect.shop, effect.order_id, effect.amount, idempotency_key=effect.key
    )
    ids_of(credit, "credit_id")
    return credit


def restock(d: Dispatcher, effect: fx.Restock, record: ReturnRecord | None) -> object:
    d.commerce.restock(effect.shop, effect.order_id, effect.lines, idempotency_key=effect.key)
    return None


def charge_balance(d: Dispatcher, effect: fx.ChargeBalance, record: ReturnRecord | None) -> object:
    return _paid(
        d.payments.charge(effect.shop, effect.return_id, effect.amount, idempotency_key=effect.key)
    )


def refund_balance(d: Dispatcher, effect: fx.RefundBalance, record: ReturnRecord | None) -> object:
    return _paid(
        d.payments.refund(effect.shop, effect.return_id, effect.amount, idempotency_key=effect.key)
    )


def authorize_payment(
    d: Dispatcher, effect: fx.AuthorizePayment, record: ReturnRecord | None
) -> object:
    return _paid(
        d.payments.authorize(
            effect.shop, effect.return_id, effect.amount, idempotency_key=effect.key
        )
    )


def capture_payment(d: Dispatcher, effect: fx.CapturePayment, record: ReturnRecord) -> object:
    authorization = _required(
        record.refs.payment_authorization_id, "payment_authorization_id", effect
    )
    return _paid(
        d.payments.capture(
            effect.shop, effect.return_id, authorization, effect.amount, idempotency_key=effect.key
        )
    )


def void_authorization(d: Dispatcher, effect: fx.VoidAuthorization, record: ReturnRecord) -> object:
    authorization = _required(
        record.refs.payment_authorization_id, "payment_authorization_id", effect
    )
    d.payments.void(effect.shop, effect.return_id, authorization, idempotency_key=effect.key)
    return None
