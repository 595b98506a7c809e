"""Returns created in another system (a returns app such as Loop), as a source reports them.

An :class:`ExternalReturn` is what a :class:`~returnflow.ports.source.ReturnSource` lists:
the source already decided the return (the customer asked for it there, the source approved
it), so the importer turns it into an approved return here, with its warehouse expectation.
Every class checks its fields on construction and raises
:class:`~returnflow.errors.InvalidPayload` (or :class:`~returnflow.errors.UnknownOutcome`)
naming the field and the value. No I/O.

>>> from datetime import datetime, timezone
>>> from returnflow.domain.model import Refund
>>> at = datetime(2026, 1, 12, 9, 0, tzinfo=timezone.utc)
>>> loop = ExternalReturn(source="loop", external_id="52393555", shop="shop-a",
...     order_id="1001", lines=[ExternalLine(order_line_id="L1", quantity=1, outcome=Refund())],
...     created_at=at, updated_at=at)
>>> loop.return_id, loop.status.value
('loop-52393555', 'open')
>>> ExternalLine(order_line_id="L1", quantity=0)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
returnflow.errors.InvalidPayload: quantity=0: must be at least 1
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import attrs

from returnflow.domain._fields import (
    check_amount,
    check_data,
    check_key_text,
    check_quantity,
    check_required_instant,
    check_text,
    coerce_enum,
    to_utc,
)
from returnflow.domain.model import (
    Exchange,
    Outcome,
    Refund,
    RequestLine,
    ReturnReason,
    ReturnRequest,
    StoreCredit,
    outcome_amounts,
)
from returnflow.errors import InvalidPayload, UnknownOutcome

__all__ = [
    "ExternalLine",
    "ExternalReturn",
    "SourceStatus",
    "import_details",
    "imported_return_id",
]

_SOURCE_NAME = re.compile(r"[a-z][a-z0-9_]*")


class SourceStatus(str, enum.Enum):
    """Where the return stands at its source."""

    OPEN = "open"
    """Requested and approved at the source; the items are on their way or expected."""
    CLOSED = "closed"
    """Processed at the source."""
    CANCELLED = "cancelled"
    """Cancelled at the source."""
    EXPIRED = "expired"
    """Never shipped in time; the source expired it."""


def imported_return_id(source: str, external_id: str) -> str:
    """The id an imported return gets here: the source's name, ``-``, its id there.

    The same external return always gets the same id, in every process, so importing it
    twice (or from two processes at once) finds the first one instead of a second return.
    Source names have no ``-``, so the id names exactly one (source, external id).

    >>> imported_return_id("loop", "52393555")
    'loop-52393555'
    """
    _check_source(source)
    _check_external_id(external_id)
    return f"{source}-{external_id}"


def _check_source(value: object) -> None:
    if not isinstance(value, str) or not _SOURCE_NAME.fullmatch(value):
        raise InvalidPayload(
            "source", value, "must be lower-case letters, digits and '_', starting with a letter"
        )
    check_key_text("source", value, InvalidPayload)  # a str subclass, a long name: by name


def _check_external_id(value: object) -> None:
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise InvalidPayload(
            "external_id", value, "must be a non-empty string without surrounding spaces"
        )
    check_key_text("external_id", value, InvalidPayload)


def _check_text(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    check_key_text(attribute.name, value, InvalidPayload)


def _check_str(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    check_text(attribute.name, value, InvalidPayload)


def _check_quantity(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    check_quantity(attribute.name, value, 1, InvalidPayload)


def _check_outcome(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, (Refund, StoreCredit, Exchange)):
        raise UnknownOutcome(
            attribute.name,
            value,
            "an imported return is refund, store credit or exchange (its items come back "
            "to the warehouse)",
        )


def _to_reason(value: object) -> ReturnReason:
    return coerce_enum(ReturnReason, value, InvalidPayload, "reason")


def _to_status(value: object) -> SourceStatus:
    return coerce_enum(SourceStatus, value, InvalidPayload, "status")


def _to_lines(value: Iterable[ExternalLine]) -> tuple[ExternalLine, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise InvalidPayload("lines", value, "must be a list of ExternalLine")
    return tuple(value)


@attrs.frozen(kw_only=True)
class ExternalLine:
    """One line of an external return: units of an order line and what the customer gets."""

    order_line_id: str = attrs.field(validator=_check_text)
    quantity: int = attrs.field(validator=_check_quantity)
    outcome: Outcome = attrs.field(factory=Refund, validator=_check_outcome)
    """:class:`~returnflow.Refund`, :class:`~returnflow.StoreCredit` or
    :class:`~returnflow.Exchange` (to another variant); not ``Keep``."""
    reason: ReturnReason = attrs.field(default=ReturnReason.UNKNOWN, converter=_to_reason)
    note: str = attrs.field(default="", validator=_check_str)


@attrs.frozen(kw_only=True)
class ExternalReturn:
    """A return as its source reports it.

    ``updated_at`` moves forward whenever the source changes the return; a source lists
    returns by it (see :class:`~returnflow.ports.source.ReturnSource`). The amounts its lines'
    outcomes carry (an exchange's ``unit_price``, a store credit's ``bonus``) are checked as
    a request's are (:func:`~returnflow.domain.model.check_amount`): an
    :class:`~returnflow.errors.InvalidAmount` names ``lines[i].outcome.unit_price`` or
    ``lines[i].outcome.bonus``; their currency is checked against the order's on import.
    """

    source: str = attrs.field()
    """The source's name (``"loop"``): lower-case letters, digits and ``_``."""
    external_id: str = attrs.field()
    """The return's id at the source (Loop: the number in the return's admin URL)."""
    shop: str = attrs.field(validator=_check_text)
    order_id: str = attrs.field(validator=_check_text)
    lines: tuple[ExternalLine, ...] = attrs.field(converter=_to_lines)
    created_at: datetime = attrs.field(converter=to_utc, validator=check_required_instant)
    updated_at: datetime = attrs.field(converter=to_utc, validator=check_required_instant)
    status: SourceStatus = attrs.field(default=SourceStatus.OPEN, converter=_to_status)
    customer_note: str = attrs.field(default="", validator=_check_str)

    @source.validator
    def _source(self, _: attrs.Attribute[Any], value: object) -> None:
        _check_source(value)

    @external_id.validator
    def _external_id(self, _: attrs.Attribute[Any], value: object) -> None:
        _check_external_id(value)

    def __attrs_post_init__(self) -> None:
        if not self.lines:
            raise InvalidPayload("lines", self.lines, "a return has at least one line")
        seen: set[str] = set()
        for index, line in enumerate(self.lines):
            if not isinstance(line, ExternalLine):
                raise InvalidPayload(f"lines[{index}]", line, "must be an ExternalLine")
            if line.order_line_id in seen:
                raise InvalidPayload(
                    f"lines[{index}].order_line_id", line.order_line_id, "appears twice"
                )
            seen.add(line.order_line_id)
        for field, amount in outcome_amounts(line.outcome for line in self.lines):
            check_amount(field, amount)  # the order's currency: when it is imported
        if self.updated_at < self.created_at:
            raise InvalidPayload(
                "updated_at", self.updated_at, f"is before created_at {self.created_at}"
            )

    @property
    def return_id(self) -> str:
        """The id the return has here (:func:`imported_return_id`)."""
        return imported_return_id(self.source, self.external_id)

    def request(self) -> ReturnRequest:
        """The return as a request here, asked for by the source."""
        return ReturnRequest(
            shop=self.shop,
            order_id=self.order_id,
            lines=tuple(
                RequestLine(
                    order_line_id=line.order_line_id,
                    quantity=line.quantity,
                    outcome=line.outcome,
                    reason=line.reason,
                    note=line.note,
                )
                for line in self.lines
            ),
            customer_note=self.customer_note,
            requested_by=self.source,
        )


def import_details(details: object) -> dict[str, Any]:
    """An import's ``details`` as JSON data (:func:`check_data`) that leaves the source and
    its id, which the import names itself, as they are."""
    if details is None:
        return {}
    if not isinstance(details, Mapping):
        raise InvalidPayload("details", details, "must be a mapping")
    data: dict[str, Any] = check_data("details", details)
    for own in ("source", "external_id"):
        if own in data:
            raise InvalidPayload(f"details.{own}", data[own], "is the import's own; name it apart")
    return data
