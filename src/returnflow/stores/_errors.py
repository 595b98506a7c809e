"""How a store turns its driver's failures into :class:`~returnflow.errors.StoreError`\\ s.

Each backend has one translation function (a driver exception -> a returnflow error, or
``None`` for one it does not know) and wraps every public method and its constructor with
:func:`translating`, so that a method added later is covered too. Errors returnflow raises
on purpose pass through unchanged; the driver's exception is kept as ``__cause__``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from returnflow._bodies import load_effect
from returnflow.domain.model import ReturnRecord
from returnflow.errors import InvalidPayload, ReturnflowError, UnreadableRecord
from returnflow.lifecycle.effects import Effect
from returnflow.ports.store import Listing

__all__ = ["Translate", "listing", "readable", "translating", "unencodable"]

_C = TypeVar("_C", bound=type)

Translate = Callable[[Any, str, BaseException], "ReturnflowError | None"]
"""``(store, operation, error)`` -> the error to raise instead, or ``None``."""


def unencodable(error: UnicodeEncodeError) -> InvalidPayload:
    """Text the driver cannot encode (a lone surrogate): a validation error, not a store's."""
    return InvalidPayload("text", error.object, "is not valid Unicode (a lone surrogate)")


def translating(translate: Translate) -> Callable[[_C], _C]:
    """A class decorator: every public method (and ``__init__``) raises ``translate``'s
    error in place of a driver error it knows."""

    def wrap(method: Callable[..., Any], operation: str) -> Callable[..., Any]:
        @functools.wraps(method)
        def translated(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except ReturnflowError:
                raise
            except UnicodeEncodeError as error:
                raise unencodable(error) from error
            except Exception as error:
                replacement = translate(self, operation, error)
                if replacement is None:
                    raise
                raise replacement from error

        return translated

    def decorate(cls: _C) -> _C:
        for name, member in list(vars(cls).items()):
            if (name == "__init__" or not name.startswith("_")) and inspect.isfunction(member):
                setattr(cls, name, wrap(member, "open" if name == "__init__" else name))
        return cls

    return decorate


def readable(shop: str, return_id: str, build: Callable[[], ReturnRecord]) -> ReturnRecord:
    """``build()``, the stored return read back; :class:`UnreadableRecord` naming the shop
    and the return when its stored data cannot be (bad JSON, a shape no return has)."""
    try:
        return build()
    except Exception as error:  # whatever the stored bytes make the decoder raise
        reason = f"{type(error).__name__}: {error}".splitlines()[0][:300]
        raise UnreadableRecord(shop, return_id, reason) from error


def readable_effect(body: str, key: str, shop: str, return_id: str) -> Effect:
    """The effect of an outbox row's ``body``; :class:`UnreadableRecord` naming its return
    (and the effect's key) when the row cannot be read back."""
    try:
        return load_effect(body)
    except Exception as error:  # whatever the stored bytes make the decoder raise
        reason = f"{type(error).__name__}: {error}".splitlines()[0][:300]
        raise UnreadableRecord(shop, return_id, f"its effect {key}: {reason}") from error


def listing(
    rows: Iterable[Any], build: Callable[[Any], ReturnRecord], key: Callable[[Any], tuple[str, str]]
) -> Listing:
    """The returns of ``rows``, built by ``build``; a row that cannot be read is skipped and
    named in the listing's ``unreadable`` (``key(row)`` is its shop and return id)."""
    records: list[ReturnRecord] = []
    unreadable: list[UnreadableRecord] = []
    for row in rows:
        shop, return_id = key(row)
        try:
            records.append(readable(shop, return_id, functools.partial(build, row)))
        except UnreadableRecord as error:
            unreadable.append(error)
    return Listing(records, unreadable)
