"""The carrier: return labels, drop-off QR codes and pickups."""

from __future__ import annotations

from typing import Protocol

import attrs

from returnflow.domain._fields import check_tracking_field, check_url_field
from returnflow.domain.methods import ReturnMethod

__all__ = ["Carrier", "Label", "ask_for_label"]


@attrs.frozen
class Label:
    """What the carrier gave for a return: its tracking number, the label to print and,
    for a drop-off, the QR code the customer shows at the drop-off point.
    :class:`~returnflow.errors.InvalidPayload` naming the field for a tracking number that
    is no tracking number (:func:`~returnflow.domain._fields.check_tracking`) or a URL that
    is no URL (:func:`~returnflow.domain._fields.check_url`)."""

    tracking_number: str = attrs.field(validator=check_tracking_field)
    label_url: str = attrs.field(validator=check_url_field)
    qr_code_url: str | None = attrs.field(default=None, validator=check_url_field)


class Carrier(Protocol):
    """The carrier (or aggregator) that ships the parcel back."""

    def create_label(
        self,
        shop: str,
        return_id: str,
        order_id: str,
        *,
        idempotency_key: str,
        method: ReturnMethod = ReturnMethod.MAIL,
    ) -> Label:
        """Buy a return label for the parcel: for ``method`` ``drop_off`` a QR code too
        (``Label.qr_code_url``), for ``pickup`` a collection at the customer's address.
        The service passes ``method`` only for those two, so a carrier written before
        methods existed keeps working for mailed returns (an in-store return asks for no
        label)."""
        ...

    def void_label(self, shop: str, tracking_number: str, *, idempotency_key: str) -> None:
        """Void an unused label."""
        ...


def ask_for_label(
    carrier: Carrier,
    shop: str,
    return_id: str,
    order_id: str,
    idempotency_key: str,
    method: ReturnMethod = ReturnMethod.MAIL,
) -> Label:
    """``carrier.create_label`` for ``method``, passed only when it is not ``mail``: a
    carrier written before methods existed is called as it always was."""
    if ReturnMethod(method) is ReturnMethod.MAIL:
        return carrier.create_label(shop, return_id, order_id, idempotency_key=idempotency_key)
    return carrier.create_label(
        shop, return_id, order_id, idempotency_key=idempotency_key, method=ReturnMethod(method)
    )
