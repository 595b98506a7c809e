"""The ids a port's answer hands back, checked where the answer comes in.

A host's adapter may answer with anything: ``None`` for a refund id, a number for a line
id, a text where a list of ids belongs. What the write-back stores of an answer (refund,
credit, payment, hold and platform ids) must be ids every store can keep (a non-blank
``str`` of at most 255 bytes, see :func:`~returnflow.domain._fields.check_key_text`), or the
answer is refused with :class:`~returnflow.errors.InvalidPayload` naming the field and the
value, before anything of it is written: the effect fails like any other delivery (retried,
then a person looks), instead of a raw error later or an id no one can look up.

>>> from types import SimpleNamespace
>>> ids_of(SimpleNamespace(refund_id="r-1"), "refund_id")
>>> ids_of(SimpleNamespace(refund_id=None), "refund_id")
Traceback (most recent call last):
...
returnflow.errors.InvalidPayload: refund_id=None: must be a non-empty string
"""

from __future__ import annotations

from collections.abc import Iterable

from returnflow.domain._fields import check_key_text
from returnflow.domain.money import Money
from returnflow.errors import InvalidPayload

__all__ = ["id_lists_of", "id_pairs_of", "ids_of", "money_of"]


def ids_of(answer: object, *names: str) -> None:
    """Each of ``names`` on ``answer`` is an id; :class:`InvalidPayload` naming it if not."""
    for name in names:
        check_key_text(name, getattr(answer, name, None), InvalidPayload)


def _listed(name: str, value: object) -> list[object]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise InvalidPayload(name, value, "must be a list")
    return list(value)


def id_lists_of(answer: object, *names: str) -> None:
    """Each of ``names`` on ``answer`` (missing: empty) is a list of ids."""
    for name in names:
        for index, item in enumerate(_listed(name, getattr(answer, name, ()))):
            check_key_text(f"{name}[{index}]", item, InvalidPayload)


def id_pairs_of(answer: object, *names: str) -> None:
    """Each of ``names`` on ``answer`` (missing: empty) is a list of (id, id) pairs."""
    for name in names:
        for index, pair in enumerate(_listed(name, getattr(answer, name, ()))):
            items = _listed(f"{name}[{index}]", pair)
            if len(items) != 2:
                raise InvalidPayload(f"{name}[{index}]", pair, "must be a pair of ids")
            for side, item in enumerate(items):
                check_key_text(f"{name}[{index}][{side}]", item, InvalidPayload)


def money_of(answer: object, name: str, *, optional: bool = False) -> None:
    """``name`` on ``answer`` is a :class:`~returnflow.domain.money.Money` (or ``None``
    when ``optional``)."""
    value = getattr(answer, name, None)
    if value is None and optional:
        return
    if not isinstance(value, Money):
        raise InvalidPayload(name, value, "must be an amount of money")
