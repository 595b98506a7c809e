"""``attrs.evolve`` for the classes a decision copies on every step (the return record),
made once per class: the same copy through the class's ``__init__`` (so its checks
run as they do for ``attrs.evolve``), without ``attrs.evolve``'s walk over the fields on
each call: the fields read in one call and handed to ``__init__`` by position.

>>> import attrs
>>> @attrs.frozen
... class Point:
...     x: int
...     y: int = 0
>>> evolver(Point)(Point(1, 2), y=5)
Point(x=1, y=5)
>>> evolver(Point)(Point(1, 2), z=5)
Traceback (most recent call last):
...
TypeError: evolve() got an unexpected keyword argument 'z'
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, TypeVar, cast

import attrs

__all__ = ["evolve", "evolver"]

_T = TypeVar("_T")
_UNSET: Any = object()


def evolver(cls: type[_T]) -> Callable[..., _T]:
    """A function ``evolve(instance, **changes)`` for instances of exactly ``cls`` (an
    ``attrs`` class), equal to ``attrs.evolve(instance, **changes)``: changes are given by
    the fields' ``__init__`` names, an unknown one is a ``TypeError``; an instance of a
    subclass goes through ``attrs.evolve`` itself."""
    fields = [field for field in attrs.fields(cast(Any, cls)) if field.init]
    names = [(field.name, field.alias or field.name, field.kw_only) for field in fields]
    if _by_dict(cls, fields):
        return _dict_copy(cls, fields)
    if not any(kw for _, _, kw in names):
        return _positional(cls, [name for name, _, _ in names], [alias for _, alias, _ in names])
    if {alias for _, alias, _ in names} & {"inst", "cls", "attrs", "_UNSET"}:
        return _generic
    parameters = ", ".join(f"{alias}=_UNSET" for _, alias, _ in names)
    positional = [
        f"inst.{name} if {alias} is _UNSET else {alias}" for name, alias, kw in names if not kw
    ]
    keywords = [
        f"{alias}=inst.{name} if {alias} is _UNSET else {alias}" for name, alias, kw in names if kw
    ]
    arguments = ", ".join([*positional, *keywords])
    source = (
        f"def evolve(inst, *, {parameters}):\n"
        "    if inst.__class__ is not cls:\n"
        "        return attrs.evolve(inst, **{k: v for k, v in locals().items()"
        " if k != 'inst' and v is not _UNSET})\n"
        f"    return cls({arguments})\n"
    )
    namespace: dict[str, Any] = {"cls": cls, "attrs": attrs, "_UNSET": _UNSET}
    exec(compile(source, f"<evolve {cls.__qualname__}>", "exec"), namespace)
    evolve: Callable[..., _T] = namespace["evolve"]
    return evolve


def _positional(cls: type[_T], names: list[str], aliases: list[str]) -> Callable[..., _T]:
    """The evolve of a class whose ``__init__`` takes every field by position, in their
    order: the fields read in one call (``operator.attrgetter``), the changes put in their
    places, ``__init__`` called with them."""
    if len(names) == 1:  # attrgetter of one name gives the value, not a tuple of it
        return _generic
    read = operator.attrgetter(*names)
    place = {alias: index for index, alias in enumerate(aliases)}

    def evolve(inst: _T, **changes: Any) -> _T:
        if inst.__class__ is not cls:
            return cast(_T, attrs.evolve(cast(Any, inst), **changes))
        values = list(read(inst))
        for alias, value in changes.items():
            index = place.get(alias)
            if index is None:
                raise TypeError(f"evolve() got an unexpected keyword argument {alias!r}")
            values[index] = value
        return cls(*values)

    return evolve


def _by_dict(cls: type[Any], fields: list[attrs.Attribute[Any]]) -> bool:
    """Whether instances of ``cls`` may be copied by their ``__dict__``: they have one, every
    field is set by ``__init__`` under its own name, as given (no converter, no hook after
    ``__init__``), and only validators check what is given."""
    every = attrs.fields(cls)
    return (
        "__dict__" in dir(cls)
        and not hasattr(cls, "__attrs_post_init__")
        and not hasattr(cls, "__attrs_pre_init__")
        and len(fields) == len(every)
        and all(
            (field.alias or field.name) == field.name and field.converter is None
            for field in fields
        )
    )


def _dict_copy(cls: type[_T], fields: list[attrs.Attribute[Any]]) -> Callable[..., _T]:
    """The evolve of a class :func:`_by_dict` allows: the instance's ``__dict__`` copied with
    the changes put in, and the validators of the fields changed run (as ``__init__`` runs
    them, once every field is set); the fields not changed were checked when first set."""
    names = frozenset(field.name for field in fields)
    checks = {field.name: field for field in fields if field.validator is not None}
    new = object.__new__
    set_dict = object.__setattr__

    def evolve(inst: _T, **changes: Any) -> _T:
        if inst.__class__ is not cls:
            return cast(_T, attrs.evolve(cast(Any, inst), **changes))
        if not changes.keys() <= names:
            unknown = next(name for name in changes if name not in names)
            raise TypeError(f"evolve() got an unexpected keyword argument {unknown!r}")
        made = new(cls)
        values = inst.__dict__.copy()
        values.update(changes)
        set_dict(made, "__dict__", values)
        if checks and attrs.validators.get_disabled() is False:
            for name, field in checks.items():  # in the fields' order, as __init__
                if name in changes:
                    field.validator(made, field, values[name])  # type: ignore[misc]
        return made

    return evolve


def _generic(inst: Any, **changes: Any) -> Any:
    return attrs.evolve(inst, **changes)


_EVOLVERS: dict[type[Any], Callable[..., Any]] = {}


def evolve(inst: _T, **changes: Any) -> _T:
    """``attrs.evolve(inst, **changes)`` through the :func:`evolver` of ``inst``'s class
    (made at its first use): for the records and lines a decision copies on every step."""
    cls = inst.__class__
    copy = _EVOLVERS.get(cls)
    if copy is None:
        copy = _EVOLVERS[cls] = evolver(cls)
    made: _T = copy(inst, **changes)
    return made
