"""A stored return's JSON: its row's body (the record without its history), a history
entry's and an outbox effect's, written and read back by the SQLite and PostgreSQL stores.

The text is ``json.dumps(..., separators=(",", ":"), sort_keys=True)`` of the converter's
plain data, as it always was: a store compares a stored entry's text with the one it would
write (:func:`dump_entry`), so the same entry must give the same text whichever way it is
written. With the ``fast`` extra (``orjson``) installed:

* writing uses ``orjson`` with sorted keys, whose text is the same for what returnflow
  stores (ASCII text, whole numbers, no floats); anything else (text outside ASCII, a float
  or a number beyond 64 bits in a free-form payload) is written by ``json`` as before;
* reading parses with ``orjson`` and builds the record (or effect) with structure functions
  generated
  without detailed validation, whose hooks only accept the exact types and forms this
  module writes (UTC ISO times, plain ``str``/``int``/``bool``, known keys only, no float
  in a free-form payload: orjson reads a number beyond 64 bits as one). Anything they do
  not accept is read again the plain way (``json`` and
  :data:`returnflow.serialization.converter`), so a corrupt or ill-shaped body raises just
  what it always raised.

Without the extra both ways are the plain ones. ``benchmarks/bodies.py`` measures both.
"""

from __future__ import annotations

import enum
import functools
import json
import types
import typing
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from returnflow._effect_data import (
    FREE_FORM,
    clone,
    direct_data,
    exactly_plain,
    plain_copy,
    plain_json,
    reads_back_as_is,
)
from returnflow.domain._fields import check_digits
from returnflow.domain._time import EARLIEST, LATEST
from returnflow.domain.frozen import FrozenDict, FrozenList
from returnflow.domain.model import (
    ExternalRefs,
    HistoryEntry,
    Outcome,
    Reason,
    ReturnLine,
    ReturnRecord,
    to_reason,
)
from returnflow.domain.money import Money, is_plain_decimal
from returnflow.errors import InvalidPayload
from returnflow.lifecycle.effects import Effect
from returnflow.lifecycle.table import TABLE
from returnflow.serialization import (
    _EFFECTS,
    _ENUMS,
    _OUTCOMES,
    _unstructure_history_entry,
    converter,
)

__all__ = [
    "dump_body",
    "dump_effect",
    "dump_entry",
    "dump_value",
    "dumps",
    "fast_available",
    "load_effect",
    "load_record",
    "use_fast",
]

# A record's parts, as plain data, by the object that holds them: most writes of a return
# change neither its lines nor its references (records are copied, not their parts), and
# those parts are immutable, so the data of the last few written serves again. Each is kept
# with its object, so that the id is not reused while kept.
_LINES: dict[int, tuple[Any, Any]] = {}
_REFS: dict[int, tuple[Any, Any]] = {}


def _kept(kept: dict[int, tuple[Any, Any]], kind: Any) -> Callable[[Any], Any]:
    """The converter's hook for ``kind``, its data kept in ``kept`` by the object given."""
    plain: Callable[[Any], Any] = (
        converter.get_unstructure_hook(kind)  # cattrs 24.1 and later
        if hasattr(converter, "get_unstructure_hook")
        else functools.partial(converter.unstructure, unstructure_as=kind)
    )

    def data_of(value: Any) -> Any:
        hit = kept.get(id(value))
        if hit is not None and hit[0] is value:
            return hit[1]
        data = plain(value)
        if len(kept) >= 256:
            kept.clear()
        kept[id(value)] = (value, data)
        return data

    return data_of


_plain_record = make_dict_unstructure_fn(
    ReturnRecord,
    converter,
    history=override(omit=True),
    lines=override(unstruct_hook=_kept(_LINES, tuple[ReturnLine, ...])),
    refs=override(unstruct_hook=_kept(_REFS, ExternalRefs)),
)


class _NotOurs(Exception):
    """A value the fast reader does not accept as one this module wrote."""


def _plain_dumps(data: Any, field: str = "value") -> str:
    """``data`` as compact JSON with sorted keys; :class:`~returnflow.errors.InvalidPayload`
    naming where in ``field`` it holds a whole number Python will not write as text."""
    try:
        return json.dumps(data, separators=(",", ":"), sort_keys=True)
    except ValueError:  # whole numbers of more than MAX_DIGITS digits (or a cycle)
        check_digits(field, data)
        raise


def _plain_load(body: str, history: list[str] | str | None) -> ReturnRecord:
    data = json.loads(body)
    if history is None:
        data["history"] = []
    elif isinstance(history, str):
        data["history"] = json.loads(history)
    else:
        data["history"] = [json.loads(entry) for entry in history]
    record: ReturnRecord = converter.structure(data, ReturnRecord)
    return record


# -- the fast way (orjson) ----------------------------------------------------------------------


_free_form_plain = plain_json((dict, FrozenDict), (list, tuple, FrozenList))
"""Whether free-form data holds only what ``orjson`` writes as ``json`` does: text, whole
numbers, booleans, ``None``, lists and objects with text keys (no floats)."""


def _fast_time(value: Any, _: type[Any]) -> datetime:
    # what datetime.isoformat() wrote for a UTC instant, and nothing else
    if type(value) is not str:
        raise _NotOurs
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is not timezone.utc or not EARLIEST <= moment < LATEST:
        raise _NotOurs
    return moment


def _exact(kind: type[Any]) -> Callable[[Any, type[Any]], Any]:
    def check(value: Any, _: type[Any]) -> Any:
        if type(value) is not kind:
            raise _NotOurs
        return value

    return check


def _fast_decimal(value: Any, _: type[Any]) -> Decimal:
    # plain decimal text only, as the converter reads it (to_decimal)
    if type(value) is not str or not is_plain_decimal(value):
        raise _NotOurs
    return Decimal(value)


def _fast_enum(value: Any, enum_type: type[enum.Enum]) -> enum.Enum:
    # one of its values exactly (no _missing_ fallback): a KeyError otherwise
    return enum_type._value2member_map_[value]


def _fast_money(value: Any, _: type[Any]) -> Money:
    if type(value) is not dict or len(value) != 2:
        raise _NotOurs
    amount, currency = value["amount"], value["currency"]
    if type(amount) is not str or type(currency) is not str:
        raise _NotOurs
    return _money(amount, currency)


# A return's amounts repeat (a unit's price, its tax, the fees): Money is immutable, so one
# instance per text serves every record read; an amount Money refuses is not kept.
_money = functools.lru_cache(maxsize=4096)(Money)


def _fast_outcome(value: Any, _: type[Any]) -> Outcome:
    if type(value) is not dict:
        raise _NotOurs
    fields = dict(value)
    outcome_type = _OUTCOMES[fields.pop("kind")]
    outcome: Outcome = _fast_converter().structure(fields, outcome_type)
    return outcome


def _fast_entry(value: Any, _: type[Any]) -> HistoryEntry:
    if type(value) is not dict or len(value) != 7:
        raise _NotOurs
    source, target, payload = value["source"], value["target"], value["payload"]
    event, actor, version = value["event"], value["actor"], value["version"]
    source_state, source_exchange = source  # a ValueError unless two of them
    target_state, target_exchange = target
    if (
        type(source) is not list
        or type(target) is not list
        or type(version) is not int
        or not type(event) is type(actor) is type(source_state) is str
        or not type(source_exchange) is type(target_state) is type(target_exchange) is str
        or type(payload) is not dict
        or not _free_form_plain(payload)  # a float: maybe a number beyond 64 bits
    ):
        raise _NotOurs
    at = datetime.fromisoformat(value["at"])  # a TypeError unless text
    if at.tzinfo is not timezone.utc or not EARLIEST <= at < LATEST:
        raise _NotOurs
    # positional (the fields' order): a third faster than by keyword
    return HistoryEntry(
        at,
        event,
        actor,
        (source_state, source_exchange),
        (target_state, target_exchange),
        version,
        payload,
    )


def _hook(fast: cattrs.Converter, cls: Any) -> Callable[[Any, Any], Any]:
    """``cls``'s structure hook, looked up once (cattrs 24.1 and later), else per call."""
    get_hook = getattr(fast, "get_structure_hook", None)
    return fast.structure if get_hook is None else get_hook(cls)


def _is_optional(cls: Any) -> bool:
    args: tuple[Any, ...] = getattr(cls, "__args__", ())
    union = typing.get_origin(cls) in (typing.Union, types.UnionType)
    return union and len(args) == 2 and args[1] is type(None)


def _optional_of(fast: cattrs.Converter) -> Callable[[Any], Callable[[Any, Any], Any]]:
    """``X | None``: ``X``'s hook looked up once, not on each value."""

    def factory(cls: Any) -> Callable[[Any, Any], Any]:
        item_type = cls.__args__[0]
        if item_type in _PLAIN:  # no call for the value's hook

            def structure_plain_optional(value: Any, _: Any) -> Any:
                if value is None or type(value) is item_type:
                    return value
                raise _NotOurs

            return structure_plain_optional
        hook = _hook(fast, item_type)

        def structure_optional(value: Any, _: Any) -> Any:
            return None if value is None else hook(value, item_type)

        return structure_optional

    return factory


_PLAIN = (str, int, bool)


def _is_homogeneous_tuple(cls: Any) -> bool:
    args: tuple[Any, ...] = getattr(cls, "__args__", ())
    return getattr(cls, "__origin__", None) is tuple and args[1:] == (...,)


def _tuple_of(fast: cattrs.Converter) -> Callable[[Any], Callable[[Any, Any], tuple[Any, ...]]]:
    """``tuple[X, ...]`` from a JSON array: ``X``'s hook looked up once, not per item."""

    def factory(cls: Any) -> Callable[[Any, Any], tuple[Any, ...]]:
        item_type = cls.__args__[0]
        if item_type in _PLAIN:  # no call for each item's hook

            def structure_plain_tuple(value: Any, _: Any) -> tuple[Any, ...]:
                if type(value) is not list:
                    raise _NotOurs
                for item in value:
                    if type(item) is not item_type:
                        raise _NotOurs
                return tuple(value)

            return structure_plain_tuple
        hook = _hook(fast, item_type)

        def structure_tuple(value: Any, _: Any) -> tuple[Any, ...]:
            if type(value) is not list:
                raise _NotOurs
            return tuple([hook(item, item_type) for item in value])

        return structure_tuple

    return factory


_FAST: list[cattrs.Converter] = []


def _fast_converter() -> cattrs.Converter:
    """A converter for reading back only what this module wrote: hooks that accept the exact
    types, structure functions generated without detailed validation."""
    if _FAST:
        return _FAST[0]
    fast = cattrs.Converter(forbid_extra_keys=True, detailed_validation=False)
    fast.register_structure_hook(datetime, _fast_time)
    for kind in (str, int, bool):
        fast.register_structure_hook(kind, _exact(kind))
    fast.register_structure_hook(Decimal, _fast_decimal)
    fast.register_structure_hook(Money, _fast_money)
    for enum_type in _ENUMS:  # str subclasses: by type, before str's hook
        fast.register_structure_hook(enum_type, _fast_enum)
    fast.register_structure_hook(Outcome, _fast_outcome)
    # a line's reason: a standard value or a shop's own handle (a union cattrs cannot guess)
    fast.register_structure_hook_func(
        lambda cls: cls == Reason, lambda value, _: to_reason(value, "reason")
    )
    fast.register_structure_hook(HistoryEntry, _fast_entry)
    fast.register_structure_hook_factory(_is_homogeneous_tuple, _tuple_of(fast))
    fast.register_structure_hook_factory(_is_optional, _optional_of(fast))
    fast.register_structure_hook(ReturnRecord, make_dict_structure_fn(ReturnRecord, fast))
    _FAST.append(fast)
    return fast


def _orjson() -> Any:
    """The ``orjson`` module, or ``None`` when it is not installed (or is switched off)."""
    if not _STATE:
        try:
            import orjson
        except ImportError:
            _STATE.append(None)
        else:
            _STATE.append(orjson)
    return _STATE[0] if _ENABLED[0] else None


_STATE: list[Any] = []
_ENABLED = [True]


def fast_available() -> bool:
    """Whether the fast way is in use: the ``fast`` extra installed and not switched off."""
    return _orjson() is not None


def use_fast(enabled: bool) -> bool:
    """Switch the fast way on (when installed) or off; the previous setting. For tests and
    benchmarks that compare both ways in one process."""
    previous = _ENABLED[0]
    _ENABLED[0] = enabled
    return previous


# -- the module's interface -------------------------------------------------------------------


def dumps(data: Any, *, checked: bool = False, field: str = "value") -> str:
    """``data`` (plain, from the converter) as compact JSON with sorted keys, the same text
    either way; ``checked``: the caller knows ``data`` holds no float (else it is checked).
    :class:`~returnflow.errors.InvalidPayload` naming where in ``field`` it holds a whole
    number of more than :data:`~returnflow.domain._fields.MAX_DIGITS` digits."""
    orjson = _orjson()
    if orjson is not None and (checked or _free_form_plain(data)):
        try:
            text: str = orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()
        except TypeError:  # a number beyond 64 bits, a key that is not text
            pass
        else:
            if text.isascii() and "\x7f" not in text:
                return text
    return _plain_dumps(data, field)


def dump_body(record: ReturnRecord) -> str:
    """A return's row body: the record without its history (kept a row per entry)."""
    data = _plain_record(record)
    # its one free-form part: the parked facts' lines (the rest are typed fields)
    if all(_free_form_plain(fact.lines) for fact in record.parked):
        return dumps(data, checked=True, field="record")
    return _plain_dumps(data, "record")


def dump_entry(entry: HistoryEntry) -> str:
    """A history entry's row body."""
    orjson = _STATE[0] if _STATE and _ENABLED[0] else _orjson()
    payload, at = entry.payload, entry.at
    if orjson is not None and type(payload) is FrozenDict and _free_form_plain(payload):
        # orjson writes a UTC datetime as isoformat() does, tuples as lists
        data = {
            "actor": entry.actor,
            "at": at if at.tzinfo is timezone.utc else at.isoformat(),
            "event": entry.event,
            "payload": payload,
            "source": entry.source,
            "target": entry.target,
            "version": entry.version,
        }
        try:
            text: str = orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()
        except TypeError:  # a value of a type orjson does not write: the plain way's error
            pass
        else:
            if text.isascii() and "\x7f" not in text:
                return text
    return _plain_dumps(_unstructure_history_entry(entry), "history")


def load_record(body: str, history: list[str] | str | None) -> ReturnRecord:
    """The record of a row's ``body`` and its ``history``: a list of entries' JSON, one JSON
    array of them, or ``None`` for none. Any error of the plain way (a
    :class:`~returnflow.errors.ValidationError`, ``json``'s, ``KeyError``...) for a body
    that is not one, and :class:`~returnflow.errors.InvalidPayload` naming ``status`` or
    ``exchange_status`` for a state the statechart does not have (every step, the timeline
    and the platform's status read it there); the stores name the return
    (``UnreadableRecord``)."""
    record = _load_record(body, history)
    if record.status not in _LIFECYCLE_STATES:
        raise InvalidPayload("status", record.status, "is no state of the statechart")
    if record.exchange_status not in _EXCHANGE_STATES:
        raise InvalidPayload("exchange_status", record.exchange_status, "is no state of it")
    return record


_LIFECYCLE_STATES = frozenset(TABLE.lifecycle_states)
_EXCHANGE_STATES = frozenset(TABLE.exchange_states)


def _load_record(body: str, history: list[str] | str | None) -> ReturnRecord:
    orjson = _orjson()
    if orjson is not None:
        try:
            data = orjson.loads(body)
            if history is None:
                data["history"] = []
            elif isinstance(history, str):
                data["history"] = orjson.loads(history)
            else:  # the entries as one array: one parse
                data["history"] = orjson.loads(f"[{','.join(history)}]")
                if len(data["history"]) != len(history):  # a row held more than one
                    raise _NotOurs
            record: ReturnRecord = _fast_converter().structure(data, ReturnRecord)
            # orjson reads a number beyond 64 bits as a float: free-form data with a float
            # (the typed fields take none) is read the plain way
            if not all(_free_form_plain(fact.lines) for fact in record.parked):
                raise _NotOurs
        except Exception:  # not what this module writes: read it the plain way
            pass
        else:
            return record
    return _plain_load(body, history)


# -- outbox effects ------------------------------------------------------------------------------

# Effects by their row's text. An effect is immutable and its text holds its unique key, so a
# text names one effect, whichever process wrote or reads it: the effect parsed from it once
# serves every later read of it. A written effect is kept under its text when parsing the
# text would give it back as it is (its free-form mappings plain JSON values: no tuple,
# float or non-text key, which a parse would turn into another value); its typed fields
# round-trip through the converter. Emptied when full.
_PARSED: dict[str, Effect] = {}
_EFFECTS_KEPT = 20_000
_FREE_FORM = FREE_FORM  # Publish.payload, Notify.context: Mapping[str, Any]


def _keep(text: str, effect: Effect, copies: dict[str, Any] | None = None) -> None:
    """Keep ``effect`` under ``text``, its free-form mappings copied (``copies``: copies the
    caller made already, shared with no one)."""
    if len(_PARSED) >= _EFFECTS_KEPT:
        _PARSED.clear()
    _PARSED[text] = _own(effect) if copies is None else clone(effect, copies) if copies else effect


def _own(effect: Effect) -> Effect:
    """``effect`` with its free-form mappings copied: a kept effect shares no dict or list
    with the caller that wrote it nor with a reader, who may change theirs in place (the row's
    text, not what was done to a copy of it since, is the effect)."""
    changes = {
        name: plain_copy(value)
        for name in _FREE_FORM
        if (value := getattr(effect, name, None)) is not None
    }
    return clone(effect, changes) if changes else effect


def dump_value(value: Any) -> str:
    """An effect's result (or any value the converter writes) as the stores write it: the
    converter's plain data as compact JSON with sorted keys (:func:`dumps`)."""
    return dumps(converter.unstructure(value), field="result")


def dump_effect(effect: Effect) -> str:
    """An outbox row's body: :func:`dump_value` of ``effect``. An effect that a parse of its
    text would give back as it is, is kept, so that the row is not parsed again
    (:func:`load_effect`)."""
    direct = direct_data(effect)
    if direct is not None:  # plain JSON throughout: kept with the copies made on the way
        data, copies = direct
        text = dumps(data, checked=True, field="effect")
        _keep(text, effect, copies)
        return text
    data = converter.unstructure(effect)
    # its typed fields are text, whole numbers, flags and objects of them: only the free-form
    # mappings may hold what orjson writes otherwise than json (see dumps)
    checked = all(_free_form_plain(data.get(name)) for name in _FREE_FORM)
    text = dumps(data, checked=checked, field="effect")
    if reads_back_as_is(effect) and exactly_plain(data):
        _keep(text, effect)
    return text


def load_effect(text: str) -> Effect:
    """The effect of an outbox row's body: one already written or read with this exact text,
    else parsed (the fast way when orjson is installed, else or for a text it does not take
    the plain way). Any error of the plain way (``json``'s, a
    :class:`~returnflow.errors.ValidationError`, cattrs'...) for a body that is not one; the
    stores name its return (``UnreadableRecord``)."""
    effect = _PARSED.get(text)
    if effect is None:
        effect = _parse_effect(text)
        _keep(text, effect)
        return effect
    return _own(effect)


def _parse_effect(body: str) -> Effect:
    orjson = _orjson()
    if orjson is not None:
        try:
            data = orjson.loads(body)
            # orjson reads a number beyond 64 bits as a float: any float, the plain way
            if type(data) is not dict or not _free_form_plain(data):
                raise _NotOurs
            fields = dict(data)
            effect: Effect = _fast_converter().structure(fields, _EFFECTS[fields.pop("kind")])
        except Exception:  # not what this module writes: read it the plain way
            pass
        else:
            return effect
    return _plain_effect(body)


def _plain_effect(body: str) -> Effect:
    effect: Effect = converter.structure(json.loads(body), Effect)
    return effect
