"""Field checks the domain's value classes share: each raises a
:class:`~returnflow.errors.ValidationError` subclass naming the field and the value."""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar

import attrs

from returnflow.domain._time import instant
from returnflow.domain.money import Money
from returnflow.errors import (
    CurrencyMismatch,
    InvalidAmount,
    InvalidPayload,
    InvalidQuantity,
    InvalidRequest,
    ValidationError,
)

__all__ = [
    "MAX_DEPTH",
    "MAX_DIGITS",
    "MAX_EMAIL",
    "MAX_KEY_BYTES",
    "MAX_QUANTITY",
    "MAX_TEXT",
    "MAX_TRACKING",
    "MAX_URL",
    "StoredText",
    "check_actor",
    "check_amount",
    "check_bool",
    "check_data",
    "check_digits",
    "check_email",
    "check_instant",
    "check_key",
    "check_key_text",
    "check_quantity",
    "check_required_instant",
    "check_storable",
    "check_text",
    "check_tracking",
    "check_tracking_field",
    "check_url",
    "check_url_field",
    "check_words",
    "coerce_enum",
    "items_of",
    "stored_url",
    "text_problem",
    "to_photos",
    "to_utc",
]


def check_storable(
    field: str, value: str, error: type[ValidationError] = InvalidRequest, *, key: bool = True
) -> str:
    """``value`` if every store can keep it and every port can send it; ``error`` naming
    ``field`` and the value for a lone surrogate (text that is not Unicode: it has no UTF-8)
    or, in a ``key`` (an id, a shop, a source: text stores index), a NUL character
    (PostgreSQL text cannot hold one; free text travels inside JSON, where it can), and for
    an instance of a subclass of ``str`` (a ``StrEnum``'s member, a host's own id type):
    every store gives text back as ``str``, so a subclass, its own equality and hashing
    with it, would last only until the return is read again from the store."""
    if type(value) is not str:
        raise error(field, value, f"must be a plain str, not {type(value).__name__}")
    if key and "\x00" in value:
        raise error(field, value, "must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise error(field, value, "is not valid Unicode (a lone surrogate)") from None
    return value


def text_problem(value: str) -> str | None:
    """What keeps text a host configured (a policy's version or tag, a rule's name, a
    reason's title: kept with the returns it decides, or sent to a platform) from being
    kept as given, or ``None``: :func:`check_storable`'s refusals (a ``str`` subclass, a
    NUL, a lone surrogate) and more than :data:`MAX_TEXT` characters. For the caller's own
    typed error."""
    try:
        check_storable("text", value)
    except ValidationError as error:
        return error.reason
    if len(value) > MAX_TEXT:
        return f"must be at most {MAX_TEXT} characters, not {len(value)}"
    return None


MAX_KEY_BYTES = 255
"""The most bytes (in UTF-8) of an id that comes in (a shop, an order, a line, a return, an
inbound event's id and source, an external id): far more than any platform's ids (Shopify's
global ids are some 40 characters), and few enough that the keys a store indexes together
(shop, order, line; shop, source, event) stay inside what an index entry holds (PostgreSQL's
B-tree, some 2,700 bytes)."""


def check_key_text(field: str, value: object, error: type[ValidationError] = InvalidRequest) -> str:
    """``value`` if it can be an id: a non-blank ``str`` every store can keep and index
    (:func:`check_storable` with ``key``) of at most :data:`MAX_KEY_BYTES` bytes in UTF-8;
    ``error`` naming ``field`` and the value (abridged) otherwise."""
    if not isinstance(value, str) or not value.strip():
        raise error(field, value, "must be a non-empty string")
    check_storable(field, value, error)
    size = len(value.encode("utf-8"))
    if size > MAX_KEY_BYTES:
        raise error(field, value, f"must be at most {MAX_KEY_BYTES} bytes in UTF-8, not {size}")
    return value


def _nonempty(field: str, value: object) -> None:
    check_key_text(field, value)


MAX_EMAIL = 254
"""The most characters of an e-mail address (RFC 5321: a path of 256 with its brackets)."""


def check_email(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A validator: ``None`` or text (:func:`check_text`) of at most :data:`MAX_EMAIL`
    characters; :class:`~returnflow.errors.InvalidPayload` naming the field otherwise (a
    store indexes the address with the shop, to count a customer's returns)."""
    if value is None:
        return
    text = check_text(attribute.name, value, InvalidPayload)
    if len(text) > MAX_EMAIL:
        raise InvalidPayload(
            attribute.name, text, f"must be at most {MAX_EMAIL} characters, not {len(text)}"
        )


def items_of(
    field: str,
    value: object,
    error: type[ValidationError] = InvalidRequest,
    what: str = "a list",
) -> tuple[Any, ...]:
    """``value`` (a list, tuple or other iterable, not text) as a tuple; ``error`` naming
    ``field`` and the value (``must be <what>``) when it is none of those (``None``, a
    number, a string). Each item is for the caller to check."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise error(field, value, f"must be {what}")
    return tuple(value)


def to_photos(value: object) -> tuple[str, ...]:
    """A converter: an item's photos (the URLs or references the host stored) as a tuple,
    each non-blank text that every store can keep, of at most :data:`MAX_URL` characters;
    :class:`~returnflow.errors.InvalidRequest` naming ``photos`` or ``photos[i]`` otherwise."""
    photos = items_of("photos", value, what="a list of photo URLs")
    for index, photo in enumerate(photos):
        if not isinstance(photo, str) or not photo.strip():
            raise InvalidRequest(f"photos[{index}]", photo, "must be a non-empty URL")
        check_url(f"photos[{index}]", photo, InvalidRequest)
    return photos


MAX_TEXT = 10_000
"""The most characters of free text that comes in (a line's note, a customer's note, a
claim's evidence, a warehouse's note, a product's title): twice the longest note Shopify
takes (an order's or a cart's, 5,000; a return line's customer note, 300), and few enough
that a return's record and history, which keep it, stay small."""


def check_text(field: str, value: object, error: type[ValidationError] = InvalidRequest) -> str:
    """``value`` if it is free text (maybe empty) of at most :data:`MAX_TEXT` characters
    that every store can keep (:func:`check_storable`); ``error`` naming ``field`` and the
    value (abridged in the message) otherwise."""
    if not isinstance(value, str):
        raise error(field, value, "must be a string")
    if len(value) > MAX_TEXT:
        raise error(field, value, f"must be at most {MAX_TEXT} characters, not {len(value)}")
    return check_storable(field, value, error, key=False)


def check_actor(value: object) -> str:
    """``value`` if it can name who made a change (a history entry's ``actor``: an agent, a
    source, ``"timer"``): free text (:func:`check_text`) that a store can also keep in a
    column it indexes, so without NUL characters (:func:`check_storable`'s ``key``);
    :class:`~returnflow.errors.InvalidRequest` naming ``actor`` and the value otherwise."""
    return check_storable("actor", check_text("actor", value))


def check_str(error: type[ValidationError] = InvalidRequest) -> Any:
    """A validator: :func:`check_text`; ``None`` passes."""

    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is not None:
            check_text(attribute.name, value, error)

    return check


def check_words(error: type[ValidationError] = InvalidRequest) -> Any:
    """A validator: :func:`check_text` of text that is never ``None`` (a note that defaults
    to ``""``: code reads it as text)."""

    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        check_text(attribute.name, value, error)

    return check


def check_key(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A validator: a key a store finds a stored return by (its id, shop, order id) is a
    ``str`` itself (see :func:`check_storable`), else
    :class:`~returnflow.errors.InvalidRequest` naming the field; what else it must be, the
    request that made it checked, or the store refuses by name."""
    if type(value) is not str:
        raise InvalidRequest(
            attribute.name, value, f"must be a plain str, not {type(value).__name__}"
        )


def _check_id(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _nonempty(attribute.name, value)


def _check_optional_id(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _nonempty(attribute.name, value)


MAX_QUANTITY = 1_000_000
"""The most units a quantity that comes in may count (an order line, a request, a warehouse
receipt, a platform fact, an import): more than any shop sells on one line, few enough for
a person to read in a message, and far inside every store's integers."""

MAX_TRACKING = 100
"""The most characters of a tracking number (a carrier's label, a label attached on the
platform): every carrier's numbers are far shorter; a longer one is not a tracking number."""


def check_quantity(
    field: str, value: object, minimum: int, error: type[ValidationError] = InvalidQuantity
) -> int:
    """``value`` if it is a whole number from ``minimum`` to :data:`MAX_QUANTITY`; ``error``
    naming ``field`` and the value otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise error(field, value, "must be a whole number")
    if value < minimum:
        raise error(field, value, f"must be at least {minimum}")
    if value > MAX_QUANTITY:
        raise error(field, value, f"must be at most {MAX_QUANTITY}")
    return value


def check_tracking(field: str, value: object, error: type[ValidationError] = InvalidPayload) -> str:
    """``value`` if it is a tracking number: text of 1 to :data:`MAX_TRACKING` characters
    that is not blank and that every store can keep; ``error`` naming ``field`` and the
    value otherwise."""
    if not isinstance(value, str) or not value.strip():
        raise error(field, value, "must be a non-empty string")
    if len(value) > MAX_TRACKING:
        raise error(field, value, f"must be at most {MAX_TRACKING} characters")
    return check_storable(field, value, error)


MAX_URL = 2048
"""The most characters of a URL that comes in (a carrier's label, a label attached on the
platform): what browsers, proxies and carriers' own links keep to; a longer one is no link
to a label, and would be kept in a return's references and history."""


def check_url(field: str, value: object, error: type[ValidationError] = InvalidPayload) -> str:
    """``value`` if it is a URL's text: 1 to :data:`MAX_URL` characters, not blank, that
    every store can keep; ``error`` naming ``field`` and the value (abridged) otherwise."""
    if not isinstance(value, str) or not value.strip():
        raise error(field, value, "must be a non-empty string")
    if len(value) > MAX_URL:
        raise error(field, value, f"must be at most {MAX_URL} characters")
    return check_storable(field, value, error)


class StoredText(str):
    """Text a store read back that a bound set after it was written refuses (a label's URL
    longer than :data:`MAX_URL`): kept as it was written, so that the return it belongs to
    still reads and still changes; :func:`check_url_field` takes it as it is. Made only by
    :func:`stored_url`, never from input (which is ``str`` itself: :func:`check_storable`)."""

    __slots__ = ()


def stored_url(field: str, value: str) -> str:
    """A URL as a store reads it back: text longer than :data:`MAX_URL` (written before the
    bound) as :class:`StoredText`, once :func:`check_storable` (what every store keeps)
    passes; other text as it is, for the model's checks."""
    if type(value) is str and len(value) > MAX_URL:
        return StoredText(check_storable(field, value, InvalidPayload))
    return value


def check_url_field(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A validator: :func:`check_url` of an optional URL; ``None`` and :class:`StoredText`
    (read back from a store) pass."""
    if value is not None and type(value) is not StoredText:
        check_url(attribute.name, value)


def check_bool(error: type[ValidationError] = InvalidPayload) -> Any:
    """A validator: ``True`` or ``False`` itself (not ``1``, not ``"no"``, whose truth a
    reader would take for the flag's), else ``error`` naming the field and the value."""

    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if type(value) is not bool:
            raise error(attribute.name, value, "must be true or false")

    return check


def check_tracking_field(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A validator: :func:`check_tracking`."""
    check_tracking(attribute.name, value)


def _check_count(minimum: int) -> Any:
    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        check_quantity(attribute.name, value, minimum)

    return check


def check_amount(field: str, value: object, *, currency: str | None = None) -> None:
    """The one check of an amount that comes in with a request, a fact (the order the
    platform reports) or an import: ``None`` (not given) or :class:`Money`, never a float or
    a bare number (``int``, ``Decimal``, ``str``); never negative (zero is allowed: a free
    replacement, no bonus, a free item); in ``currency`` (the order's) when given.

    Raises :class:`~returnflow.errors.InvalidAmount` naming ``field`` and the value, or
    :class:`~returnflow.errors.CurrencyMismatch` naming ``<field>.currency``."""
    if value is None:
        return
    if not isinstance(value, Money):
        raise InvalidAmount(
            field, value, "must be Money (a decimal amount and a currency), not a bare number"
        )
    if value.is_negative:
        raise InvalidAmount(field, value, "must not be negative")
    if currency is not None and value.currency != currency:
        raise CurrencyMismatch(f"{field}.currency", value.currency, f"order currency is {currency}")


def _check_amount(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A validator: :func:`check_amount` of a required amount (``None`` refused too)."""
    if value is None:
        raise InvalidAmount(attribute.name, value, "must be Money")
    check_amount(attribute.name, value)


def to_utc(value: Any) -> Any:
    """A converter: an aware datetime in range, held in UTC; anything else is left for the
    validator (:func:`check_instant`) to refuse by name."""
    if isinstance(value, datetime):
        try:
            return instant("datetime", value)
        except ValidationError:
            return value
    return value


def check_instant(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A validator: an aware datetime in range (:func:`~returnflow.domain._time.instant`),
    or ``InvalidTime`` naming the field; ``None`` passes (for optional fields)."""
    if value is not None:
        instant(attribute.name, value)


def check_required_instant(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """:func:`check_instant`, with ``None`` refused too."""
    instant(attribute.name, value)


_E = TypeVar("_E", bound=enum.Enum)


def coerce_enum(enum_type: type[_E], value: object, error: type[ValidationError], field: str) -> _E:
    """``enum_type(value)``, or ``error`` naming ``field``, the value and the allowed values."""
    if isinstance(value, enum_type):
        return value
    try:
        return enum_type(value)
    except ValueError:
        allowed = ", ".join(str(member.value) for member in enum_type)
        raise error(field, value, f"must be one of: {allowed}") from None


def check_limit(value: object, field: str = "limit") -> None:
    """:class:`~returnflow.errors.InvalidPayload` naming ``field`` unless ``value`` is a whole
    number (not a bool); below 1 means nothing is done."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidPayload(field, value, "must be a whole number")


MAX_DEPTH = 32
"""Levels of arrays and objects free-form data (an import's ``details``) may nest."""

_INT64 = 2**63


def check_data(field: str, value: object, depth: int = 0) -> Any:
    """``value`` as JSON data every store keeps as it is (objects ``dict``, arrays ``list``,
    a ``tuple`` read as an array): text, whole numbers that fit 64 bits, finite floats,
    booleans and ``None``, in objects with text keys, nested at most :data:`MAX_DEPTH`
    levels; :class:`~returnflow.errors.InvalidPayload` naming where in ``field`` otherwise."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return check_storable(field, value, InvalidPayload, key=False)
    if isinstance(value, int):
        if not -_INT64 <= value < _INT64:
            raise InvalidPayload(field, value, "is out of range: a whole number of 64 bits")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidPayload(field, value, "must be a finite number")
        return value
    if isinstance(value, (Mapping, list, tuple)) and depth >= MAX_DEPTH:
        raise InvalidPayload(field, value, f"nests more than {MAX_DEPTH} levels")
    if isinstance(value, Mapping):
        data = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidPayload(field, key, "an object's keys are text")
            data[check_storable(field, key, InvalidPayload, key=False)] = check_data(
                f"{field}.{key}", item, depth + 1
            )
        return data
    if isinstance(value, (list, tuple)):
        return [check_data(f"{field}[{n}]", item, depth + 1) for n, item in enumerate(value)]
    raise InvalidPayload(
        field, value, "must be JSON data: text, a number, true/false, null, an array or object"
    )


MAX_DIGITS = 4300
"""The most decimal digits of a whole number in free-form data (a history entry's payload, an
effect's payload or context, a parked fact's lines, a delivery's result) that a store keeps:
Python's own default limit on turning a whole number into text and back
(``sys.get_int_max_str_digits``), so that every Python reads back what another wrote."""

_FEW_BITS = (10**MAX_DIGITS).bit_length() - 4
"""Bits below which no whole number has more than :data:`MAX_DIGITS` digits."""
_TOO_LONG: int = 10**MAX_DIGITS


def check_digits(field: str, value: object) -> None:
    """:class:`~returnflow.errors.InvalidPayload` naming where in ``field`` free-form
    ``value`` (objects, arrays, text, numbers) holds a whole number of more than
    :data:`MAX_DIGITS` digits, which no store can write as text; anything else passes (the
    other checks are the writer's)."""
    kind = type(value)
    if kind is str or kind is bool or value is None:  # most free-form parts: none given
        return
    if _has_long(value):  # the walk that names where: only for a value that fails
        _name_long(field, value)


def _has_long(value: object) -> bool:
    """Whether :func:`check_digits` refuses ``value``: the same walk, no names built."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return False
    if isinstance(value, int):
        return value.bit_length() >= _FEW_BITS and abs(value) >= _TOO_LONG
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, int) and _has_long(key):  # written as text: a key of JSON
                return True
            item_kind = type(item)  # a scalar of no digits, without a call for it
            if not (item_kind is str or item_kind is bool or item is None) and _has_long(item):
                return True
        return False
    if isinstance(value, (list, tuple)):
        return any(_has_long(item) for item in value)
    return False


def _name_long(field: str, value: object) -> None:
    if isinstance(value, int):
        if value.bit_length() >= _FEW_BITS and abs(value) >= _TOO_LONG:
            raise InvalidPayload(field, value, f"has more than {MAX_DIGITS} digits")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, int):  # written as text: a key of JSON
                _name_long(field, key)
            if not isinstance(item, str):
                _name_long(f"{field}.{key}", item)
    elif isinstance(value, (list, tuple)):
        for n, item in enumerate(value):
            if not isinstance(item, str):
                _name_long(f"{field}[{n}]", item)
