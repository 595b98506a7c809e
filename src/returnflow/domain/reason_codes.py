"""Return reasons as values: Shopify's :class:`ReturnReason` values and the handles of
the reasons a shop defines (:mod:`returnflow.domain.reasons`), one :data:`Reason` type for
both (importable from :mod:`returnflow.domain.model` too)."""

from __future__ import annotations

import enum
import re
from typing import TypeAlias

from returnflow.errors import InvalidRequest

__all__ = [
    "Reason",
    "ReturnReason",
    "handle_of",
    "platform_reason",
    "reason_text",
    "to_reason",
]


class ReturnReason(str, enum.Enum):
    """Why the customer returns a line (Shopify's ``ReturnReason`` values)."""

    COLOR = "COLOR"
    DEFECTIVE = "DEFECTIVE"
    NOT_AS_DESCRIBED = "NOT_AS_DESCRIBED"
    OTHER = "OTHER"
    SIZE_TOO_LARGE = "SIZE_TOO_LARGE"
    SIZE_TOO_SMALL = "SIZE_TOO_SMALL"
    STYLE = "STYLE"
    UNKNOWN = "UNKNOWN"
    UNWANTED = "UNWANTED"
    WRONG_ITEM = "WRONG_ITEM"


Reason: TypeAlias = ReturnReason | str
"""A line's return reason: one of the :class:`ReturnReason` values, or the handle of a
reason the shop defined (:class:`~returnflow.domain.reasons.ReturnReasonDefinition`)."""

_HANDLE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*\Z")
_STANDARD_HANDLES = {member.value.lower().replace("_", "-"): member for member in ReturnReason}


def to_reason(value: object, field: str = "reason") -> Reason:
    """``value`` as a :data:`Reason`: a :class:`ReturnReason`, its value (``"DEFECTIVE"``) or
    its handle (``"defective"``) is that member; any other handle (lowercase letters and
    digits joined by hyphens, at most 100 characters: ``"arrived-late"``) is kept as it is.
    Anything else is :class:`~returnflow.errors.InvalidRequest` naming ``field``.

    >>> to_reason("SIZE_TOO_SMALL") is to_reason("size-too-small") is ReturnReason.SIZE_TOO_SMALL
    True
    >>> to_reason("arrived-late")
    'arrived-late'
    """
    if isinstance(value, ReturnReason):
        return value
    if isinstance(value, str):
        if value in ReturnReason.__members__:
            return ReturnReason(value)
        if value in _STANDARD_HANDLES:
            return _STANDARD_HANDLES[value]
        if len(value) <= 100 and _HANDLE.match(value):
            return value
    allowed = ", ".join(member.value for member in ReturnReason)
    raise InvalidRequest(
        field, value, f"must be one of: {allowed}, or a reason handle (lowercase-with-hyphens)"
    )


def reason_text(reason: Reason) -> str:
    """``reason`` as shown: a standard reason's value (``DEFECTIVE``), else its handle."""
    return reason.value if isinstance(reason, ReturnReason) else reason


def platform_reason(reason: Reason) -> str:
    """``reason`` as one of the platform's :class:`ReturnReason` values: a standard reason's
    own, ``OTHER`` for a reason the shop defined (its handle is ours, not the platform's)."""
    return reason.value if isinstance(reason, ReturnReason) else ReturnReason.OTHER.value


def handle_of(reason: Reason) -> str:
    """The handle of ``reason`` (Shopify's return reason definition handle): a
    :class:`ReturnReason` ``SIZE_TOO_SMALL`` is ``size-too-small``.

    >>> handle_of(ReturnReason.NOT_AS_DESCRIBED), handle_of("arrived-late")
    ('not-as-described', 'arrived-late')
    """
    if isinstance(reason, ReturnReason):
        return reason.value.lower().replace("_", "-")
    return reason
