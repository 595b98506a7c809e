"""Inbound facts: what carriers, warehouses and platforms report about a return.

Each carries ``source`` and ``event_id`` (a webhook delivery id, a scan id) so that a repeat
is recognised and does nothing.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import attrs

from returnflow.domain._fields import (
    check_instant,
    check_key_text,
    check_quantity,
    check_tracking,
    check_url,
    check_words,
    coerce_enum,
    to_utc,
)
from returnflow.domain.model import ItemCondition, QcResult
from returnflow.domain.money import Money
from returnflow.errors import InvalidPayload

__all__ = [
    "INBOUND_FACTS",
    "CarrierStatus",
    "CarrierUpdate",
    "Disposition",
    "InboundEvent",
    "PlatformLine",
    "PlatformReturnEvent",
    "PlatformTopic",
    "ReceivedLine",
    "WarehouseFinished",
    "WarehouseReceipt",
]


def _check_text(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    check_key_text(attribute.name, value, InvalidPayload)


def _check_location(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _check_text(_, attribute, value)


def _to_status(value: object) -> CarrierStatus:
    return coerce_enum(CarrierStatus, value, InvalidPayload, "status")


def _to_qc(value: object) -> QcResult:
    return coerce_enum(QcResult, value, InvalidPayload, "qc")


def _to_condition(value: object) -> ItemCondition | None:
    return None if value is None else coerce_enum(ItemCondition, value, InvalidPayload, "condition")


def _to_disposition(value: object) -> Disposition | None:
    return None if value is None else coerce_enum(Disposition, value, InvalidPayload, "disposition")


def _to_received(value: Iterable[ReceivedLine]) -> tuple[ReceivedLine, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise InvalidPayload("lines", value, "must be a list of ReceivedLine")
    lines = tuple(value)
    for index, line in enumerate(lines):
        if not isinstance(line, ReceivedLine):
            raise InvalidPayload(f"lines[{index}]", line, "must be a ReceivedLine")
    return lines


class Disposition(str, enum.Enum):
    """What happens to a received unit (Shopify's reverse fulfillment dispositions)."""

    RESTOCKED = "RESTOCKED"
    NOT_RESTOCKED = "NOT_RESTOCKED"
    PROCESSING_REQUIRED = "PROCESSING_REQUIRED"
    MISSING = "MISSING"
    """Not in the parcel: counts as rejected, never restocked or refunded."""


class CarrierStatus(str, enum.Enum):
    """Carrier notifications (seed 002: RETURN_PICKED_UP, RTO)."""

    PICKED_UP = "RETURN_PICKED_UP"
    """The parcel was handed in or picked up: the first carrier scan."""
    DELIVERED = "DELIVERED"
    """The parcel reached the warehouse."""
    RETURN_TO_ORIGIN = "RTO"
    """The parcel is going back to the customer."""


@attrs.frozen(kw_only=True)
class CarrierUpdate:
    shop: str = attrs.field(validator=_check_text)
    return_id: str = attrs.field(validator=_check_text)
    event_id: str = attrs.field(validator=_check_text)
    status: CarrierStatus = attrs.field(converter=_to_status)
    source: str = attrs.field(default="carrier", validator=_check_text)
    occurred_at: datetime | None = attrs.field(
        default=None, converter=to_utc, validator=check_instant
    )


@attrs.frozen(kw_only=True)
class ReceivedLine:
    """Units of one return line received, with the warehouse's condition and QC result.

    ``line_id`` is the return line id or the order line id.
    """

    line_id: str = attrs.field(validator=_check_text)
    quantity: int
    qc: QcResult = attrs.field(default=QcResult.PASS, converter=_to_qc)
    condition: ItemCondition | None = attrs.field(default=None, converter=_to_condition)
    note: str = attrs.field(default="", validator=check_words(InvalidPayload))
    disposition: Disposition | None = attrs.field(default=None, converter=_to_disposition)
    """``None``: restocked when QC passed and the policy restocks, else not restocked."""

    def __attrs_post_init__(self) -> None:
        check_quantity("quantity", self.quantity, 1, InvalidPayload)


@attrs.frozen(kw_only=True)
class WarehouseReceipt:
    shop: str = attrs.field(validator=_check_text)
    return_id: str = attrs.field(validator=_check_text)
    event_id: str = attrs.field(validator=_check_text)
    lines: tuple[ReceivedLine, ...] = attrs.field(converter=_to_received)
    source: str = attrs.field(default="warehouse", validator=_check_text)
    location_id: str | None = attrs.field(default=None, validator=_check_location)
    """The location that received the units (a return sent to several locations has one
    receipt stream per location): every line must go there, else
    :class:`~returnflow.errors.InvalidPayload` naming ``lines[i].line_id``. ``None``: the
    lines say where."""

    def __attrs_post_init__(self) -> None:
        if not self.lines:
            raise InvalidPayload("lines", self.lines, "a receipt has at least one line")


@attrs.frozen(kw_only=True)
class WarehouseFinished:
    """The warehouse marked the return "Finished" (seed 000): at ``location_id``, for a
    return sent to several locations (``None``: the default location, or the one location
    the return goes to)."""

    shop: str = attrs.field(validator=_check_text)
    return_id: str = attrs.field(validator=_check_text)
    event_id: str = attrs.field(validator=_check_text)
    source: str = attrs.field(default="warehouse", validator=_check_text)
    location_id: str | None = attrs.field(default=None, validator=_check_location)


class PlatformTopic(str, enum.Enum):
    """What the platform says happened to its return (Shopify's webhook topics, seed 003)."""

    APPROVE = "returns/approve"
    DECLINE = "returns/decline"
    CANCEL = "returns/cancel"
    CLOSE = "returns/close"
    REOPEN = "returns/reopen"
    UPDATE = "returns/update"
    """Lines of the platform return were added, removed or changed (``lines``: as they are
    now)."""
    REFUND = "refunds/create"
    DISPOSE = "reverse_fulfillment_orders/dispose"
    LABEL = "reverse_deliveries/attach_deliverable"
    """A label or tracking was attached to the platform return's reverse delivery
    (``tracking_number``, ``label_url``)."""


def _to_topic(value: object) -> PlatformTopic:
    return coerce_enum(PlatformTopic, value, InvalidPayload, "topic")


def _check_amount(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, Money):
        raise InvalidPayload(attribute.name, value, "must be Money or None")


def _check_optional_text(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _check_text(_, attribute, value)


def _check_tracking(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        check_tracking(attribute.name, value)


def _check_url(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        check_url(attribute.name, value)


@attrs.frozen(kw_only=True)
class PlatformLine:
    """Units of an order line on the platform return as it is now (``returns/update``):
    every unit still on it, processed or not; a unit removed from it is not counted."""

    order_line_id: str = attrs.field(validator=_check_text)
    quantity: int

    def __attrs_post_init__(self) -> None:
        check_quantity("quantity", self.quantity, 0, InvalidPayload)


def _to_platform_lines(value: Iterable[PlatformLine] | None) -> tuple[PlatformLine, ...] | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise InvalidPayload("lines", value, "must be a list of PlatformLine")
    lines = tuple(value)
    seen: set[str] = set()
    for index, line in enumerate(lines):
        if not isinstance(line, PlatformLine):
            raise InvalidPayload(f"lines[{index}]", line, "must be a PlatformLine")
        if line.order_line_id in seen:
            raise InvalidPayload(
                f"lines[{index}].order_line_id", line.order_line_id, "appears twice"
            )
        seen.add(line.order_line_id)
    return lines


@attrs.frozen(kw_only=True)
class PlatformReturnEvent:
    """A webhook about the platform's return of a returnflow return (native mode): its status
    moved (approved, declined, cancelled, closed, reopened: by returnflow's own call, whose
    echo changes nothing, or by a person in the platform's admin, which the return follows),
    its lines changed (``returns/update``: ``lines``, every order line's units on it now, and
    ``occurred_at``, when the platform changed it), a refund was created on the order
    (``refund_id``, ``amount``), units were disposed, or a label was attached to its reverse
    delivery (``tracking_number`` and/or ``label_url``).
    ``platform_return_id``, when given, must be the return's.

    Raises :class:`~returnflow.errors.InvalidPayload` naming ``lines`` for an update without
    its lines, ``tracking_number`` for a label with neither a tracking number nor a URL, and
    the field of any value of the wrong kind."""

    shop: str = attrs.field(validator=_check_text)
    return_id: str = attrs.field(validator=_check_text)
    event_id: str = attrs.field(validator=_check_text)
    topic: PlatformTopic = attrs.field(converter=_to_topic)
    source: str = attrs.field(default="platform", validator=_check_text)
    platform_return_id: str | None = attrs.field(default=None, validator=_check_optional_text)
    refund_id: str | None = attrs.field(default=None, validator=_check_optional_text)
    amount: Money | None = attrs.field(default=None, validator=_check_amount)
    lines: tuple[PlatformLine, ...] | None = attrs.field(default=None, converter=_to_platform_lines)
    tracking_number: str | None = attrs.field(default=None, validator=_check_tracking)
    label_url: str | None = attrs.field(default=None, validator=_check_url)
    occurred_at: datetime | None = attrs.field(
        default=None, converter=to_utc, validator=check_instant
    )

    def __attrs_post_init__(self) -> None:
        if self.topic is PlatformTopic.UPDATE and self.lines is None:
            raise InvalidPayload("lines", None, "returns/update carries the return's lines")
        if self.topic is PlatformTopic.LABEL and not (self.tracking_number or self.label_url):
            raise InvalidPayload(
                "tracking_number", None, "a label attached carries a tracking number or a URL"
            )


InboundEvent = CarrierUpdate | WarehouseReceipt | WarehouseFinished | PlatformReturnEvent

INBOUND_FACTS = (CarrierUpdate, WarehouseReceipt, WarehouseFinished, PlatformReturnEvent)
"""The inbound fact types :meth:`ReturnsService.handle <returnflow.service.ReturnsService.handle>`
takes."""
