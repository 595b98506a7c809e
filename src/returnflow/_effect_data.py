"""An outbox effect's plain data without the converter, and copies of an effect that share no
dict or list with it: the hot part of writing and reading effects (:mod:`returnflow._bodies`).

Most effects a return plans (``Publish``, ``Notify`` and the platform calls that name only
the return) hold nothing but text, whole numbers, flags and one free-form mapping. Their
plain data is their fields as they are, which is what the converter's generated function
gives for them, without its calls per field; any other effect, or one whose values are not
of exactly those types, is left to the converter."""

from __future__ import annotations

import enum
import operator
import typing
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from returnflow.lifecycle.effects import Effect

__all__ = [
    "FREE_FORM",
    "NotNative",
    "clone",
    "direct_data",
    "exactly_plain",
    "flat",
    "json_native",
    "native_copy",
    "plain_copy",
    "plain_json",
    "reads_back_as_is",
]

FREE_FORM = ("payload", "context")
"""The free-form fields (``Publish.payload``, ``Notify.context``: ``Mapping[str, Any]``)."""

_AS_IS: tuple[object, ...] = (str, int, bool, str | None, int | None, bool | None)
"""Declared field types the converter writes as they are, for values of exactly their type."""

_PLAIN_TYPES = frozenset((str, int, bool, type(None)))
_TEXT = frozenset((str,))


def flat(value: Mapping[Any, Any]) -> bool:
    """Whether every key of ``value`` is text and every value text, a whole number, a flag
    or ``None``, each of exactly that type: checked a mapping at a time, not a step per
    item (most payloads are such)."""
    return _TEXT.issuperset(map(type, value)) and _PLAIN_TYPES.issuperset(map(type, value.values()))


class NotNative(Exception):
    """A value :func:`native_copy` does not copy: one ``json`` would not give back as it is."""


def native_copy(value: Any) -> Any:
    """A copy of plain JSON data (``dict`` with text keys, ``list``, ``str``, ``int``,
    ``bool``, ``None``), its dicts and lists new; :class:`NotNative` for anything else (a
    tuple, a float, a mapping of another type, a key that is not text), which a parse of its
    JSON would turn into another value."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is dict:
        if flat(value):
            return value.copy()
        copied = {}
        for key, item in value.items():
            if type(key) is not str:
                raise NotNative
            item_kind = type(item)  # a scalar as it is, without a call for it
            if item_kind is str or item_kind is int or item_kind is bool or item is None:
                copied[key] = item
            else:
                copied[key] = native_copy(item)
        return copied
    if kind is list:
        return [native_copy(item) for item in value]
    raise NotNative


class _Shape:
    """What :func:`direct_data` and :func:`clone` need of an effect type."""

    __slots__ = ("copy", "direct", "free", "names", "read")

    def __init__(self, cls: type[Any]) -> None:
        self.names = tuple(field.name for field in attrs.fields(cls))
        self.free = tuple(name for name in self.names if name in FREE_FORM)
        hints = typing.get_type_hints(cls)
        typed = tuple(name for name in self.names if name not in FREE_FORM)
        plain = all(hints[name] in _AS_IS for name in typed)
        # an effect of its own making (a subclass) may have hooks of its own: the converter
        self.direct: tuple[str, ...] | None = typed if plain and _ours(cls) else None
        self.copy = _copier(cls, self.names) if self.direct is not None else None
        # the typed fields' values in one call (a tuple: there are always several)
        self.read = operator.attrgetter(*self.direct) if self.direct else None


def _copier(cls: type[Any], names: tuple[str, ...]) -> Callable[[Any, dict[str, Any]], Any]:
    """``copy(effect, changes)``: a new ``cls`` with ``effect``'s fields and ``changes`` (by
    field name), set one by one without ``__init__``; made once per type, a line per field."""
    lines = [
        "def copy(effect, changes):",
        "    new = _new(cls)",
        *(f"    _set(new, {name!r}, effect.{name})" for name in names),
        "    for name, value in changes.items():",
        "        _set(new, name, value)",
        "    return new",
    ]
    namespace: dict[str, Any] = {"cls": cls, "_new": object.__new__, "_set": object.__setattr__}
    exec(compile("\n".join(lines), f"<copy {cls.__qualname__}>", "exec"), namespace)
    copy: Callable[[Any, dict[str, Any]], Any] = namespace["copy"]
    return copy


def _ours(cls: type[Any]) -> bool:
    from returnflow.serialization import _EFFECTS

    return _EFFECTS.get(getattr(cls, "kind", "")) is cls and not hasattr(cls, "__attrs_post_init__")


_SHAPES: dict[type[Any], _Shape] = {}


def _shape(cls: type[Any]) -> _Shape:
    shape = _SHAPES.get(cls)
    if shape is None:
        shape = _SHAPES[cls] = _Shape(cls)
    return shape


def direct_data(effect: Effect) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """``effect``'s plain data (what ``converter.unstructure`` gives) built from its fields,
    and copies of its free-form mappings (see :func:`native_copy`), when its type's typed
    fields are all text, numbers or flags, their values of exactly those types, and its
    free-form mappings plain JSON; else ``None`` (the converter's way)."""
    shape = _shape(type(effect))
    if shape.direct is None or shape.read is None:
        return None
    values = shape.read(effect)
    if len(shape.direct) == 1:
        values = (values,)
    if not _PLAIN_TYPES.issuperset(map(type, values)):
        return None
    data: dict[str, Any] = {"kind": effect.kind}
    data.update(zip(shape.direct, values, strict=True))
    copies: dict[str, Any] = {}
    for name in shape.free:
        value = getattr(effect, name)
        if type(value) is not dict:
            return None
        try:
            copies[name] = native_copy(value)
        except NotNative:
            return None
        data[name] = value  # written, not kept: the copy is what is kept
    return data, copies


def clone(effect: Effect, changes: dict[str, Any]) -> Effect:
    """``effect`` with ``changes`` (``attrs.evolve`` without running ``__init__`` again for an
    effect type of returnflow's, whose fields were checked when it was built)."""
    shape = _shape(type(effect))
    if shape.copy is None:
        return attrs.evolve(effect, **changes)
    new: Effect = shape.copy(effect, changes)
    return new


# -- what a parse of an effect's text gives back as it is ------------------------------


def plain_copy(value: Any) -> Any:
    """A copy of plain JSON data (see :func:`json_native`): its dicts and lists new."""
    kind = type(value)
    if kind is dict:
        copied = value.copy()
        if flat(value):
            return copied
        for key, item in value.items():
            if type(item) is dict or type(item) is list:  # scalars are shared as they are
                copied[key] = plain_copy(item)
        return copied
    if kind is list:
        return [plain_copy(item) for item in value]
    return value


def plain_json(
    maps: tuple[type[Any], ...], lists: tuple[type[Any], ...], *, enums: bool = False
) -> Callable[[Any], bool]:
    """The predicate "plain JSON data": objects (of the types ``maps``) with text keys,
    arrays (of the types ``lists``) and leaves of exactly ``str``, ``int``, ``bool`` or
    ``None`` (a ``str`` subclass, say, is written as its text and read back as a ``str``, a
    float may be read back as another number); with ``enums``, also a member of one of
    returnflow's enums (read back as itself by the field that holds it). One walk for the
    write path's checks, which differ only in the containers they take and that leaf."""
    map_types, list_types = frozenset(maps), frozenset(lists)

    def plain(value: Any) -> bool:
        kind = type(value)
        if kind in map_types:
            if flat(value):
                return True
            for key, item in value.items():
                item_kind = type(item)  # a scalar as it is, without a call for it
                if type(key) is not str or not (
                    item_kind is str
                    or item_kind is int
                    or item_kind is bool
                    or item is None
                    or plain(item)
                ):
                    return False
            return True
        if kind in list_types:
            return all(map(plain, value))
        if enums and isinstance(value, enum.Enum):
            return kind.__module__.startswith("returnflow.")
        return kind is str or kind is int or kind is bool or value is None

    return plain


json_native = plain_json((dict,), (list,))
"""Whether ``json.loads(json.dumps(value))`` gives back an equal value of the same types."""

exactly_plain = plain_json((dict,), (list, tuple), enums=True)
"""Whether the converter's data of an effect holds only values of exactly the types a parse
gives; returnflow's enums are read back as themselves, the type of the fields that hold
them."""


def reads_back_as_is(effect: Effect) -> bool:
    """Whether each free-form mapping of ``effect`` (:data:`FREE_FORM`) is a ``dict`` that a
    parse of its JSON gives back as it is (:func:`json_native`)."""
    for name in FREE_FORM:
        value = getattr(effect, name, None)
        if value is not None and (type(value) is not dict or not json_native(value)):
            return False
    return True
