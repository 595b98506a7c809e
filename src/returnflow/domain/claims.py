"""Claims: a refund or a replacement for units lost or damaged on their way to the customer,
with no return shipment (the "shipping protection" claims of the returns apps).

A claim is a return whose every line is returnless: :class:`Claim` on a
:class:`~returnflow.domain.model.ReturnRequest` records why (:class:`ClaimReason`) and the
evidence (a note, photo references). Its lines ask for a refund or store credit, or for a
replacement: an :class:`~returnflow.domain.model.Exchange` for the same variant and
quantity at no charge (:func:`~returnflow.domain.claim_lines.replacement` builds it,
:func:`~returnflow.domain.claim_lines.check_claim` checks it).

Being a return, a claim takes its units in the order-level ledger
(:mod:`returnflow.domain.ledger`): units claimed cannot also be returned and units
returned cannot be claimed; shipped units are claimable whether or not they were
delivered. It buys no label, expects nothing at the warehouse and completes at approval:
the refund or credit goes out, the replacement is held and released at once. Its fees are
waived (the loss is not the customer's). The policy assesses it like any return (the
window counts from the fulfillment by default), and the shop's rules decide its approval
with the ``claim`` condition (:class:`~returnflow.domain.rules.When`): "claims over
100.00: review".

>>> Claim(ClaimReason.LOST_IN_TRANSIT, note="carrier confirms the parcel lost").reason.value
'lost_in_transit'
>>> Claim("stolen", note="x")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
returnflow.errors.InvalidRequest: reason='stolen': must be one of: ...
"""

from __future__ import annotations

import enum
from typing import Any

import attrs

from returnflow.domain._fields import check_storable, check_text, coerce_enum, to_photos
from returnflow.errors import InvalidRequest

__all__ = ["Claim", "ClaimReason"]


class ClaimReason(str, enum.Enum):
    """Why a claim is made: what happened to the units on their way to the customer."""

    LOST_IN_TRANSIT = "lost_in_transit"
    """The parcel never arrived (the carrier lost it)."""
    DAMAGED_IN_TRANSIT = "damaged_in_transit"
    """The units arrived broken or unusable."""
    WRONG_ITEM = "wrong_item"
    """Another item than the one ordered was shipped."""
    MISSING_ITEM = "missing_item"
    """The parcel came without these units."""


def _to_reason(value: object) -> ClaimReason:
    return coerce_enum(ClaimReason, value, InvalidRequest, "reason")


def _check_note(_: object, __: object, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest("note", value, "a claim needs an evidence note")
    check_text("note", value)
    check_storable("note", value)  # no NUL either, as ever


@attrs.frozen
class Claim:
    """What makes a request a claim: ``reason``, the evidence ``note`` (required: the
    carrier's answer, the customer's account) and ``photos`` (references or URLs the host
    stored). Raises :class:`~returnflow.errors.InvalidRequest` naming ``reason``,
    ``note`` or ``photos[i]`` (``claim.reason`` and so on when read as data)."""

    reason: ClaimReason = attrs.field(converter=_to_reason)
    note: str = attrs.field(validator=_check_note)
    photos: tuple[str, ...] = attrs.field(default=(), converter=to_photos)
