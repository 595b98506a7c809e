"""Time at the boundary: every datetime that enters returnflow is an aware instant in the
supported range, held in UTC.

Arithmetic on aware datetimes that share a ``tzinfo`` is wall-clock arithmetic: with a
clock in ``Europe/Berlin``, "approved + 1 day" across the change to summer time is 23 real
hours. Held in UTC, one day is 24 hours on every store. Times from outside (a host's clock,
``tick(now=...)``, payloads, imports) go through :func:`instant`; ISO 8601 text through
:func:`parse_instant`, which reads the ``Z`` suffix Shopify, Loop and carriers send on every
supported Python (``datetime.fromisoformat`` refuses it before 3.11).

>>> from datetime import datetime, timedelta, timezone
>>> parse_instant("when", "2026-03-28T12:00:00Z")
datetime.datetime(2026, 3, 28, 12, 0, tzinfo=datetime.timezone.utc)
>>> instant("now", datetime(2026, 3, 28, 13, 0, tzinfo=timezone(timedelta(hours=1))))
datetime.datetime(2026, 3, 28, 12, 0, tzinfo=datetime.timezone.utc)
>>> instant("now", datetime(2026, 3, 28, 12, 0))  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
returnflow.errors.InvalidTime: now=datetime.datetime(2026, 3, 28, 12, 0): must be ...
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timezone

from returnflow.errors import ConfigurationError, InvalidTime, ValidationError

__all__ = [
    "EARLIEST",
    "LATEST",
    "CheckedClock",
    "instant",
    "optional_instant",
    "parse_instant",
    "parse_iso",
]

EARLIEST = datetime(1900, 1, 1, tzinfo=timezone.utc)
"""The earliest instant accepted."""
LATEST = datetime(9000, 1, 1, tzinfo=timezone.utc)
"""The first instant refused: every window, lease and back-off added to an accepted time
stays inside what ``datetime``, SQLite's text and PostgreSQL's ``timestamptz`` hold."""

# A trailing Z (or z) is UTC; Python before 3.11 reads only "+00:00".
_ZULU = re.compile(r"(?<=\d)[Zz]$")
# A fraction of a second of other than 3 or 6 digits: Python before 3.11 reads no other.
_FRACTION = re.compile(r"(?<=T\d\d:\d\d:\d\d)\.(\d+)|(?<= \d\d:\d\d:\d\d)\.(\d+)")


def _six_digits(match: re.Match[str]) -> str:
    digits = match.group(1) or match.group(2)
    return "." + (digits + "000000")[:6]


def parse_iso(text: str) -> datetime:
    """``datetime.fromisoformat`` that also reads a trailing ``Z`` as UTC and a fraction of a
    second of any length (to the microsecond), the same on every supported Python;
    ``ValueError`` when ``text`` is not ISO 8601. The result may be naive.

    >>> parse_iso("2026-01-31T08:15:00.250Z").isoformat()
    '2026-01-31T08:15:00.250000+00:00'
    """
    if (
        type(text) is str
        and len(text) == 32
        and text[19] == "."
        and text[26:] == "+00:00"
        and text.isascii()
        and text[0].isdigit()
        and text[20:26].isdigit()
    ):
        # the fixed-width UTC text the SQLite store writes: nothing to rewrite
        return datetime.fromisoformat(text)
    if not isinstance(text, str):
        raise ValueError(f"not text: {text!r}")
    text = _FRACTION.sub(_six_digits, _ZULU.sub("+00:00", text.strip()), count=1)
    return datetime.fromisoformat(text)


def instant(field: str, value: object, error: type[ValidationError] = InvalidTime) -> datetime:
    """``value`` as an aware UTC datetime; ``error`` (by default :class:`InvalidTime`)
    naming ``field`` and the value when it is not a datetime, has no offset, or is outside
    [:data:`EARLIEST`, :data:`LATEST`)."""
    if type(value) is datetime and value.tzinfo is timezone.utc and EARLIEST <= value < LATEST:
        return value  # already what astimezone(timezone.utc) returns: itself
    if not isinstance(value, datetime):
        raise error(field, value, "must be a timezone-aware datetime")
    if value.tzinfo is None or value.utcoffset() is None:
        raise error(field, value, "must be a timezone-aware datetime (it has no offset)")
    try:
        moment = value.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        moment = None
    if moment is None or not EARLIEST <= moment < LATEST:
        raise error(
            field, value, f"is out of range: from {EARLIEST.year} up to {LATEST.year} (UTC)"
        )
    return moment


def optional_instant(
    field: str, value: object, error: type[ValidationError] = InvalidTime
) -> datetime | None:
    """:func:`instant`, with ``None`` passed through."""
    return None if value is None else instant(field, value, error)


def parse_instant(field: str, text: object, error: type[ValidationError] = InvalidTime) -> datetime:
    """An aware UTC datetime from ISO 8601 text with an offset or ``Z``; ``error`` naming
    ``field`` and the text otherwise."""
    if not isinstance(text, str):
        raise error(field, text, "must be an ISO 8601 string")
    try:
        moment = parse_iso(text)
    except ValueError:
        raise error(field, text, "is not an ISO 8601 date-time") from None
    if moment.tzinfo is None:
        raise error(field, text, "needs a timezone offset (or Z)")
    try:
        return instant(field, moment, error)
    except ValidationError as refused:
        raise error(field, text, refused.reason) from None


class CheckedClock:
    """A host's clock, read through :func:`~returnflow.domain._time.instant`: every reading
    is an aware UTC datetime, or a :class:`~returnflow.errors.ConfigurationError` naming the
    field ``clock`` and what it returned (a naive datetime, a time out of range, not a
    datetime). A clock in a zone that changes to summer time is read in UTC, so one day
    later is 24 hours later."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        if not callable(clock):
            raise ConfigurationError("must be callable, returning now", field="clock", value=clock)
        self.wrapped = clock

    @classmethod
    def of(cls, clock: Callable[[], datetime]) -> CheckedClock:
        """``clock`` read through a check (once: a checked clock is kept as it is)."""
        return clock if isinstance(clock, CheckedClock) else cls(clock)

    def __call__(self) -> datetime:
        reading = self.wrapped()
        try:
            return instant("clock()", reading)
        except ValidationError as error:
            raise ConfigurationError(
                f"the clock returned {reading!r}: {error.reason}", field="clock", value=reading
            ) from None
