"""Free-form data that cannot be changed in place: a history entry's payload.

A store hands the same :class:`~returnflow.domain.model.ReturnRecord` to every reader of a
return it has cached, so its history must not be changeable by one reader under another.
:func:`freeze` makes a payload once, when its entry is made (decided or read from a row), a
:class:`FrozenDict` whose mappings are :class:`FrozenDict` and whose lists are
:class:`FrozenList` all the way down; a read then costs nothing more.

They are subclasses of ``dict`` and ``list`` rather than views (``MappingProxyType``) so that
they compare equal to the plain data they hold and the JSON writers (``json``, ``orjson``)
write them as they are, without a copy; every method that would change one raises
``TypeError``, as changing a ``tuple`` does (and ``__init__``, called again, changes nothing,
as on a ``tuple``). ``dict(payload)`` (or :func:`thaw`, all the way
down) gives a plain copy to change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NoReturn

__all__ = ["FrozenDict", "FrozenList", "freeze", "freeze_each", "thaw"]


def _refuse(self: object, *args: Any, **kwargs: Any) -> NoReturn:
    raise TypeError(
        f"a {type(self).__name__} cannot be changed: change a plain copy (dict(...), list(...))"
    )


class FrozenDict(dict[str, Any]):
    """A ``dict`` that refuses every change (``TypeError``)."""

    __slots__ = ()
    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __new__(cls, *args: Any, **kwargs: Any) -> FrozenDict:
        self = dict.__new__(cls)
        dict.__init__(self, *args, **kwargs)  # filled once, here
        return self

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Nothing: filled by ``__new__``, so that calling it again changes nothing."""

    def __reduce__(self) -> tuple[Any, ...]:  # pickled as its items, not item by item
        return (FrozenDict, (dict(self),))

    def __copy__(self) -> FrozenDict:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> FrozenDict:
        return self


class FrozenList(list[Any]):
    """A ``list`` that refuses every change (``TypeError``)."""

    __slots__ = ()
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse
    append = extend = insert = pop = remove = reverse = sort = clear = _refuse

    def __new__(cls, *args: Any) -> FrozenList:
        self = list.__new__(cls)
        list.__init__(self, *args)  # filled once, here
        return self

    def __init__(self, *args: Any) -> None:
        """Nothing: filled by ``__new__``, so that calling it again changes nothing."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenList, (list(self),))

    def __copy__(self) -> FrozenList:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> FrozenList:
        return self


def _frozen(value: Any) -> Any:
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is FrozenDict or kind is FrozenList:
        return value
    if isinstance(value, Mapping):
        return FrozenDict({key: _frozen(item) for key, item in value.items()})
    if kind is list:
        return FrozenList([_frozen(item) for item in value])
    if kind is tuple:
        return tuple(_frozen(item) for item in value)
    if kind is set:
        return frozenset(value)
    return value  # a number, a date, an enum, Money: nothing to change in place


def freeze(payload: Mapping[str, Any] | None) -> FrozenDict:
    """``payload`` as a :class:`FrozenDict` (itself when it is one already; ``None``: empty)."""
    if type(payload) is FrozenDict:
        return payload
    if payload is None:
        return FrozenDict()
    if not isinstance(payload, Mapping):
        raise TypeError(f"a payload is a mapping, not {type(payload).__name__}")
    return FrozenDict({key: _frozen(item) for key, item in payload.items()})


def freeze_each(payloads: Iterable[Mapping[str, Any]]) -> tuple[FrozenDict, ...]:
    """``payloads`` (a list or tuple of mappings: a parked fact's lines) as a tuple of
    :class:`FrozenDict` (:func:`freeze` of each)."""
    if isinstance(payloads, (str, bytes, Mapping)):
        raise TypeError(f"payloads are a sequence of mappings, not {type(payloads).__name__}")
    return tuple(freeze(payload) for payload in payloads)


def thaw(value: Any) -> Any:
    """A plain copy of frozen data: its :class:`FrozenDict` and :class:`FrozenList` (and
    any mapping or list) new ``dict`` and ``list`` objects, all the way down."""
    if isinstance(value, Mapping):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, list):
        return [thaw(item) for item in value]
    if type(value) is tuple:
        return tuple(thaw(item) for item in value)
    return value
