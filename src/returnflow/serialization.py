"""The one ``cattrs`` converter: plain data (JSON-ready) in and out of returnflow's values.

Money travels as ``{"amount": "12.50", "currency": "EUR"}`` (a string, never a float),
datetimes as ISO 8601 with an offset or ``Z`` (read into UTC), outcomes with a ``kind``
tag. Structuring bad data raises the library's own
:class:`~returnflow.errors.ValidationError`, with ``field`` the path into the data:

>>> request = structure(
...     {"shop": "shop-a", "order_id": "1001",
...      "lines": [{"order_line_id": "L1", "quantity": 1,
...                 "outcome": {"kind": "exchange", "variant_id": "v-l"}}]},
...     ReturnRequest)
>>> request.lines[0].outcome.variant_id
'v-l'
>>> structure({"shop": "s", "order_id": "1", "lines": [  # doctest: +ELLIPSIS
...     {"order_line_id": "L1", "quantity": 1, "outcome": {"kind": "teleport"}}]}, ReturnRequest)
Traceback (most recent call last):
...
returnflow.errors.UnknownOutcome: lines[0].outcome.kind='teleport': must be one of: ...
>>> unstructure(Money("12.5", "EUR"))
{'amount': '12.50', 'currency': 'EUR'}
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.errors import (
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
)
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn

from returnflow.domain._fields import MAX_URL, check_storable, coerce_enum, stored_url
from returnflow.domain._time import instant, parse_instant
from returnflow.domain.external import ExternalReturn, SourceStatus
from returnflow.domain.frozen import thaw
from returnflow.domain.inbound import CarrierStatus, Disposition, PlatformTopic
from returnflow.domain.methods import ReturnMethod
from returnflow.domain.model import (
    DeclineReason,
    Exchange,
    ExternalRefs,
    HistoryEntry,
    ItemCondition,
    Keep,
    Outcome,
    OutcomeKind,
    QcResult,
    Reason,
    Refund,
    ReturnReason,
    ReturnRequest,
    StoreCredit,
    reason_text,
    to_reason,
)
from returnflow.domain.money import Money, money_from, to_decimal
from returnflow.domain.policy import Completion, ReleaseTrigger, WindowStart
from returnflow.errors import (
    InvalidAmount,
    InvalidPayload,
    InvalidRequest,
    UnknownOutcome,
    ValidationError,
)
from returnflow.lifecycle import effects as fx

__all__ = ["converter", "external_return_from_dict", "structure", "unstructure"]

T = TypeVar("T")

converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
"""The converter. Hosts may register hooks for their own types on it."""

_OUTCOMES: dict[str, type[Any]] = {
    OutcomeKind.REFUND.value: Refund,
    OutcomeKind.STORE_CREDIT.value: StoreCredit,
    OutcomeKind.EXCHANGE.value: Exchange,
    OutcomeKind.KEEP.value: Keep,
}


def _structure_money(value: Any, _: type[Any]) -> Money:
    return money_from(value, "")


def _structure_enum(value: Any, enum_type: type[enum.Enum]) -> enum.Enum:
    # The path to the field is added by :func:`structure`; "" keeps it as it is.
    error = UnknownOutcome if enum_type is OutcomeKind else InvalidRequest
    return coerce_enum(enum_type, value, error, "")


def _structure_datetime(value: Any, _: type[Any]) -> datetime:
    # ISO 8601 with an offset or Z (on every supported Python), in range, held in UTC
    if isinstance(value, datetime):
        return instant("datetime", value)
    return parse_instant("datetime", value)


def _structure_decimal(value: Any, _: type[Any]) -> Decimal:
    if isinstance(value, float):
        raise InvalidAmount("amount", value, "float is not accepted; pass a string")
    return to_decimal(value)


def _structure_str(value: Any, _: type[Any]) -> str:
    # cattrs would call str() on anything: 5 -> "5", None -> "None"
    if not isinstance(value, str):
        raise InvalidPayload("text", value, "must be a string")
    if type(value) is not str:  # a str enum's member in the data (as unstructure leaves it)
        value = str.__str__(value)  # its text, as a store would give it back
    return check_storable("text", value, InvalidPayload, key=False)


def _structure_int(value: Any, _: type[Any]) -> int:
    # cattrs would call int() on anything: 1.9 -> 1, True -> 1, "1" -> 1
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidPayload("number", value, "must be a whole number")
    return value


def _structure_bool(value: Any, _: type[Any]) -> bool:
    if not isinstance(value, bool):
        raise InvalidPayload("flag", value, "must be true or false")
    return value


def _structure_outcome(value: Any, _: type[Any]) -> Outcome:
    if isinstance(value, (Refund, StoreCredit, Exchange, Keep)):
        return value
    if isinstance(value, str):
        value = {"kind": value}
    if not isinstance(value, Mapping):
        raise UnknownOutcome("outcome", value, "must be an object with a 'kind'")
    kind = value.get("kind")
    outcome_type = _OUTCOMES.get(kind) if isinstance(kind, str) else None
    if outcome_type is None:
        raise UnknownOutcome("kind", kind, f"must be one of: {', '.join(_OUTCOMES)}")
    fields = {key: item for key, item in value.items() if key != "kind"}
    outcome: Outcome = converter.structure(fields, outcome_type)
    return outcome


def _tagged(cls: type[Any], tag: Callable[[Any], str]) -> Callable[[Any], dict[str, Any]]:
    """An unstructure hook for ``cls`` that puts a ``kind`` tag first."""
    plain = make_dict_unstructure_fn(cls, converter)

    def unstructure_tagged(value: Any) -> dict[str, Any]:
        data: dict[str, Any] = plain(value)
        data.pop("kind", None)  # a fresh dict: the tag goes first, in its place
        return {"kind": tag(value), **data}

    return unstructure_tagged


_EFFECTS: dict[str, type[fx.Effect]] = {
    effect_type.kind: effect_type
    for effect_type in (
        fx.CreateWarehouseReturn,
        fx.CancelWarehouseReturn,
        fx.CreateLabel,
        fx.VoidLabel,
        fx.HoldExchange,
        fx.ReleaseExchange,
        fx.CancelExchange,
        fx.IssueRefund,
        fx.IssueStoreCredit,
        fx.RefundBalance,
        fx.ChargeBalance,
        fx.AuthorizePayment,
        fx.CapturePayment,
        fx.VoidAuthorization,
        fx.Restock,
        fx.Notify,
        fx.Publish,
        fx.OpenPlatformReturn,
        fx.ApprovePlatformReturn,
        fx.DeclinePlatformReturn,
        fx.ProcessPlatformReturn,
        fx.DisposePlatformUnits,
        fx.RemovePlatformLines,
        fx.ClosePlatformReturn,
        fx.ReopenPlatformReturn,
        fx.CancelPlatformReturn,
        fx.PayPlatformBalance,
        fx.RefundPlatformBalance,
    )
}


def _structure_effect(value: Any, _: type[Any]) -> fx.Effect:
    if isinstance(value, fx.Effect):
        return value
    if not isinstance(value, Mapping):
        raise InvalidPayload("effect", value, "must be an object with a 'kind'")
    effect_type = _EFFECTS.get(value.get("kind", ""))
    if effect_type is None:
        raise InvalidPayload("kind", value.get("kind"), f"must be one of: {', '.join(_EFFECTS)}")
    fields = {key: item for key, item in value.items() if key != "kind"}
    effect: fx.Effect = _EFFECT_STRUCTURE[effect_type](fields, effect_type)
    return effect


converter.register_structure_hook(Money, _structure_money)
converter.register_unstructure_hook(
    Money, lambda money: {"amount": str(money.amount), "currency": money.currency}
)
converter.register_structure_hook(datetime, _structure_datetime)
converter.register_unstructure_hook(datetime, lambda moment: moment.isoformat())
converter.register_structure_hook(Decimal, _structure_decimal)
converter.register_structure_hook(str, _structure_str)
converter.register_structure_hook(int, _structure_int)
converter.register_structure_hook(bool, _structure_bool)
# plain notation ("0.0000001", not "1E-7"): the only decimal text the converter reads back
converter.register_unstructure_hook(Decimal, lambda number: format(number, "f"))
# Our enums are ``str`` subclasses, which cattrs would structure with ``str``-like calls and
# a bare ValueError; give each a hook that names the allowed values.
_ENUMS: tuple[type[enum.Enum], ...] = (
    CarrierStatus,
    Completion,
    DeclineReason,
    Disposition,
    ItemCondition,
    OutcomeKind,
    PlatformTopic,
    QcResult,
    ReleaseTrigger,
    ReturnMethod,
    ReturnReason,
    SourceStatus,
    WindowStart,
)
for _enum_type in _ENUMS:
    converter.register_structure_hook(_enum_type, _structure_enum)
converter.register_structure_hook(Outcome, _structure_outcome)
converter.register_structure_hook_func(
    lambda cls: cls == Reason, lambda value, _: to_reason(value, "reason")
)
converter.register_unstructure_hook_func(lambda cls: cls == Reason, reason_text)
for _outcome_type in _OUTCOMES.values():
    converter.register_unstructure_hook(
        _outcome_type, _tagged(_outcome_type, lambda outcome: str(outcome.kind.value))
    )
for _effect_type in _EFFECTS.values():
    converter.register_unstructure_hook(
        _effect_type, _tagged(_effect_type, lambda effect: str(effect.kind))
    )


def _structure_history_entry(value: Any, _: type[Any]) -> HistoryEntry:
    # Stored returns carry many entries: a direct build is several times faster than the
    # generated one, and the data is the store's own.
    if isinstance(value, HistoryEntry):
        return value
    try:
        return HistoryEntry(
            at=_structure_datetime(value["at"], datetime),
            event=value["event"],
            actor=value["actor"],
            source=(value["source"][0], value["source"][1]),
            target=(value["target"][0], value["target"][1]),
            version=int(value["version"]),
            payload=value.get("payload") or None,
        )
    except (KeyError, IndexError, TypeError) as error:
        raise InvalidPayload("history", value, f"is not a history entry ({error!r})") from None


def _unstructure_history_entry(entry: HistoryEntry) -> dict[str, Any]:
    return {
        "at": entry.at.isoformat(),
        "event": entry.event,
        "actor": entry.actor,
        "source": list(entry.source),
        "target": list(entry.target),
        "version": entry.version,
        "payload": thaw(entry.payload),
    }


converter.register_structure_hook(HistoryEntry, _structure_history_entry)
converter.register_structure_hook_func(
    lambda cls: cls == tuple[HistoryEntry, ...],
    lambda value, _: tuple(_structure_history_entry(item, HistoryEntry) for item in value),
)
converter.register_unstructure_hook(HistoryEntry, _unstructure_history_entry)

_REFS_FIELDS = make_dict_structure_fn(ExternalRefs, converter)


def _structure_refs(value: Any, _: type[Any]) -> ExternalRefs:
    # A label URL longer than MAX_URL was kept before the bound was set: a stored return
    # holding one reads back with it as it was (StoredText, which the model takes), so that
    # it still reads and changes; the bound refuses only new ones.
    url = value.get("label_url") if isinstance(value, Mapping) else None
    if type(url) is not str or len(url) <= MAX_URL:
        return _REFS_FIELDS(value, ExternalRefs)
    refs = _REFS_FIELDS({**value, "label_url": None}, ExternalRefs)
    return attrs.evolve(refs, label_url=stored_url("label_url", url))


converter.register_structure_hook(ExternalRefs, _structure_refs)

# Every effect type is structured through the tag; each one's own fields by its own function.
_EFFECT_STRUCTURE = {
    effect_type: make_dict_structure_fn(effect_type, converter) for effect_type in _EFFECTS.values()
}
converter.register_structure_hook(fx.Effect, _structure_effect)


def _first_leaf(error: BaseException, path: str) -> tuple[BaseException, str]:
    """The first leaf error of a cattrs error group, and its path (``lines[0].quantity``)."""
    if isinstance(error, IterableValidationError):
        indexed, plain = error.group_exceptions()
        for inner, index_note in indexed:
            return _first_leaf(inner, f"{path}[{index_note.index!r}]")
        return _first_leaf(plain[0], path)
    if isinstance(error, ClassValidationError):
        named, unnamed = error.group_exceptions()
        for inner, name_note in named:
            return _first_leaf(inner, f"{path}.{name_note.name}" if path else name_note.name)
        return _first_leaf(unnamed[0], path)
    return error, path


# what a value hook names its field when it cannot know it; structure() puts the path there
_GENERIC_FIELDS = frozenset({"datetime", "money", "text", "number", "flag"})


def _join(path: str, field: str) -> str:
    if not path or not field:
        return path or field
    if field in _GENERIC_FIELDS or path.rsplit(".", 1)[-1] == field:
        return path
    return f"{path}.{field}"


def structure(data: Any, cls: type[T]) -> T:
    """Build a ``cls`` from plain data; bad data raises a :class:`ValidationError`."""
    if attrs.has(cls) and not isinstance(data, (Mapping, cls)):
        raise InvalidPayload("data", data, f"must be an object for {cls.__name__}")
    try:
        return converter.structure(data, cls)
    except (ClassValidationError, IterableValidationError) as group:
        leaf, path = _first_leaf(group, "")
        raise _as_validation_error(leaf, path) from None
    except ValidationError as error:
        raise _as_validation_error(error, "") from None
    except ForbiddenExtraKeysError as error:
        raise InvalidPayload(
            ",".join(sorted(error.extra_fields)), None, f"unknown field(s) for {cls.__name__}"
        ) from None


def _as_validation_error(leaf: BaseException, path: str) -> ValidationError:
    if isinstance(leaf, ValidationError):
        return type(leaf)(_join(path, leaf.field), leaf.value, leaf.reason)
    if isinstance(leaf, ForbiddenExtraKeysError):
        fields = ",".join(sorted(leaf.extra_fields))
        return InvalidPayload(f"{path}.{fields}" if path else fields, None, "unknown field")
    if isinstance(leaf, KeyError):
        return InvalidPayload(path or str(leaf), None, "is required")
    return InvalidPayload(path or "data", None, f"{type(leaf).__name__}: {leaf}")


def unstructure(value: Any) -> Any:
    """Plain, JSON-ready data for any returnflow value."""
    return converter.unstructure(value)


def request_from_dict(data: Mapping[str, Any]) -> ReturnRequest:
    """A :class:`ReturnRequest` from JSON-like data (what a returns portal posts)."""
    return structure(data, ReturnRequest)


def external_return_from_dict(data: Mapping[str, Any]) -> ExternalReturn:
    """An :class:`~returnflow.domain.external.ExternalReturn` from plain data (a source
    adapter's mapping of the source's JSON); bad data raises a :class:`ValidationError`
    naming the path (``lines[0].quantity``).

    >>> loop = external_return_from_dict({
    ...     "source": "loop", "external_id": "52393555", "shop": "shop-a", "order_id": "1001",
    ...     "created_at": "2026-01-12T09:00:00+00:00", "updated_at": "2026-01-12T09:05:00+00:00",
    ...     "lines": [{"order_line_id": "L1", "quantity": 1, "outcome": "store_credit"}]})
    >>> loop.return_id, loop.lines[0].outcome.kind.value
    ('loop-52393555', 'store_credit')
    """
    return structure(data, ExternalReturn)
