"""Return reasons as data: each shop defines the reasons its customers choose from, like
Shopify's return reason definitions (a handle, a title, and what the reason implies).

The ten :class:`~returnflow.domain.model.ReturnReason` values are the standard definitions
(:data:`STANDARD_REASONS`, every policy's default): ``RequestLine(reason="DEFECTIVE")``,
``reason=ReturnReason.DEFECTIVE`` and ``reason="defective"`` are the same reason. A shop
adds its own by handle (``"arrived-late"``) and may redefine a standard one (require a photo
for ``defective``). ``UNKNOWN`` (no reason given) is always accepted.

>>> reasons = with_standard([ReturnReasonDefinition("arrived-late", "Arrived too late",
...                                                 merchants_fault=True, fees_waived=True)])
>>> definition_of(reasons, "arrived-late").merchants_fault
True
>>> definition_of(reasons, "DEFECTIVE").title
'Defective'
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from returnflow.domain._fields import text_problem
from returnflow.domain.model import Reason, ReturnReason, ReturnRequest, handle_of, to_reason
from returnflow.errors import ConfigurationError, EvidenceRequired, UnknownReason, ValidationError

__all__ = [
    "STANDARD_REASONS",
    "ReturnReasonDefinition",
    "check_reasons",
    "definition_of",
    "to_definitions",
    "with_standard",
]


def _flag(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bool):
        raise ConfigurationError("must be True or False", field=attribute.name, value=value)


def _text(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        raise ConfigurationError("must be a non-empty string", field=attribute.name, value=value)
    if (problem := text_problem(value)) is not None:
        raise ConfigurationError(problem, field=attribute.name, value=value)


def _handle(value: object) -> str:
    try:
        return handle_of(to_reason(value, "handle"))
    except ValidationError as error:
        raise ConfigurationError(error.reason, field="handle", value=value) from None


@attrs.frozen
class ReturnReasonDefinition:
    """One reason a shop's customers may give (Shopify's ``ReturnReasonDefinition``).

    ``handle``: lowercase letters and digits joined by hyphens (a standard reason's value,
    ``"SIZE_TOO_SMALL"``, becomes its handle ``"size-too-small"``); ``title``: what the
    customer reads; ``note_required`` / ``photo_required``: a request line with this reason
    needs a note / at least one photo (else
    :class:`~returnflow.errors.EvidenceRequired`); ``fees_waived``: lines with it pay no
    restocking or return shipping fee and their exchange ships free; ``merchants_fault``:
    the merchant got it wrong (rules can read it; the history of the request names it)."""

    handle: str = attrs.field(converter=_handle)
    title: str = attrs.field(validator=_text)
    note_required: bool = attrs.field(default=False, validator=_flag)
    photo_required: bool = attrs.field(default=False, validator=_flag)
    fees_waived: bool = attrs.field(default=False, validator=_flag)
    merchants_fault: bool = attrs.field(default=False, validator=_flag)

    @property
    def reason(self) -> Reason:
        """The reason a request line carries for it (a ``ReturnReason`` for a standard one)."""
        return to_reason(self.handle)


_TITLES = {
    ReturnReason.COLOR: "Color",
    ReturnReason.DEFECTIVE: "Defective",
    ReturnReason.NOT_AS_DESCRIBED: "Not as described",
    ReturnReason.OTHER: "Other",
    ReturnReason.SIZE_TOO_LARGE: "Size was too large",
    ReturnReason.SIZE_TOO_SMALL: "Size was too small",
    ReturnReason.STYLE: "Style",
    ReturnReason.UNKNOWN: "Unknown",
    ReturnReason.UNWANTED: "Changed my mind",
    ReturnReason.WRONG_ITEM: "Received the wrong item",
}
_MERCHANTS_FAULT = (ReturnReason.DEFECTIVE, ReturnReason.WRONG_ITEM, ReturnReason.NOT_AS_DESCRIBED)

STANDARD_REASONS: tuple[ReturnReasonDefinition, ...] = tuple(
    ReturnReasonDefinition(
        handle_of(member),
        _TITLES[member],
        fees_waived=member in _MERCHANTS_FAULT,
        merchants_fault=member in _MERCHANTS_FAULT,
    )
    for member in ReturnReason
)
"""The ten :class:`ReturnReason` values as definitions; defective, wrong item and not as
described are the merchant's fault and pay no fees."""


def to_definitions(value: object) -> tuple[ReturnReasonDefinition, ...]:
    """A converter: the definitions as a tuple, each handle once (else
    :class:`ConfigurationError` naming ``reasons[<index>].handle``)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ConfigurationError(
            "must be a sequence of ReturnReasonDefinition", field="reasons", value=value
        )
    definitions = tuple(value)
    seen: set[str] = set()
    for index, definition in enumerate(definitions):
        if not isinstance(definition, ReturnReasonDefinition):
            raise ConfigurationError(
                "must be a ReturnReasonDefinition", field=f"reasons[{index}]", value=definition
            )
        if definition.handle in seen:
            raise ConfigurationError(
                "is defined twice", field=f"reasons[{index}].handle", value=definition.handle
            )
        seen.add(definition.handle)
    return definitions


def with_standard(
    definitions: Iterable[ReturnReasonDefinition],
) -> tuple[ReturnReasonDefinition, ...]:
    """The standard reasons with ``definitions`` added; one with a standard handle replaces
    the standard definition."""
    own = to_definitions(definitions)
    replaced = {definition.handle for definition in own}
    return (*(item for item in STANDARD_REASONS if item.handle not in replaced), *own)


def definition_of(
    definitions: Sequence[ReturnReasonDefinition], reason: Reason | str
) -> ReturnReasonDefinition | None:
    """The definition of ``reason`` among ``definitions`` (by handle), if any."""
    handle = handle_of(to_reason(reason))
    return next((item for item in definitions if item.handle == handle), None)


def check_reasons(request: ReturnRequest, definitions: Sequence[ReturnReasonDefinition]) -> None:
    """Refuse a request line whose reason the shop does not define
    (:class:`~returnflow.errors.UnknownReason`, field ``lines[i].reason``), or that lacks the
    note or the photo its reason requires (:class:`~returnflow.errors.EvidenceRequired`,
    field ``lines[i].note`` / ``lines[i].photos``). ``UNKNOWN`` is always accepted."""
    for index, line in enumerate(request.lines):
        path = f"lines[{index}]"
        definition = definition_of(definitions, line.reason)
        if definition is None:
            if line.reason is ReturnReason.UNKNOWN:
                continue
            known = ", ".join(item.handle for item in definitions)
            raise UnknownReason(
                f"{path}.reason", handle_of(line.reason), f"the shop's reasons are: {known}"
            )
        if definition.note_required and not line.note.strip():
            raise EvidenceRequired(
                f"{path}.note", line.note, f"the reason {definition.handle!r} needs a note"
            )
        if definition.photo_required and not line.photos:
            raise EvidenceRequired(
                f"{path}.photos",
                list(line.photos),
                f"the reason {definition.handle!r} needs a photo",
            )
