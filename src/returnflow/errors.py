"""The one exception tree of returnflow.

Every error the library raises on purpose derives from :class:`ReturnflowError`::

    ReturnflowError
    ├── ValidationError            bad input; names the field and the value
    │   ├── MoneyError
    │   │   ├── InvalidAmount      float, NaN, too many decimals for the currency
    │   │   ├── UnknownCurrency    not an ISO 4217 code
    │   │   └── CurrencyMismatch   adding EUR to USD, an order line in another currency
    │   ├── InvalidRequest         a return request that cannot be accepted as given
    │   │   ├── UnknownOrderLine   the order has no such line
    │   │   ├── NotReturnable      a line that can never be returned (a gift card)
    │   │   ├── InvalidQuantity    0, negative, above what is left to return
    │   │   │   └── NotFulfilled   units that never shipped
    │   │   ├── UnknownOrder       the platform has no such order in this shop
    │   │   ├── UnknownShop        the policy source has no policy for the shop
    │   │   ├── UnknownReason      a return reason the shop does not define
    │   │   ├── EvidenceRequired   a note or photo the reason or a rule requires is missing
    │   │   ├── OutcomeNotOffered  an outcome a merchant rule does not offer for the line
    │   │   ├── MethodNotOffered   a return method the shop (or a merchant rule) does not offer
    │   │   ├── UnknownLocation    a destination that is blank or not one of the shop's locations
    │   │   ├── UnknownExternalReturn  the source has no such return in this shop
    │   │   ├── UnknownOutcome     not refund / store_credit / exchange / keep
    │   │   └── ExchangeNotOffered the order cannot get an exchange
    │   ├── InvalidFee             a fee above 100 %, negative, or not a fee at all
    │   └── InvalidPayload         an event or inbound fact with missing or wrong data
    │       └── InvalidTime        a datetime without an offset, out of range, or not
    │                              ISO 8601 (payloads, imports, ``tick(now=...)``)
    ├── ReturnNotFound             no such return in this shop (other shops are invisible)
    ├── InvalidTransition          the event is not allowed in the return's state
    ├── ConcurrencyConflict        the stored version moved on; reload and retry
    │   └── UnitsTaken             another open return holds a unit of the order
    ├── PortError                  a host port failed (carries ``retryable``)
    ├── ConfigurationError         the service, a policy or the clock is set up wrongly
    │   ├── InvalidRule            a merchant rule that cannot work (names rule and field)
    │   └── StoreUnavailable       the store cannot be opened or reached (also a StoreError)
    └── StoreError                 the store could not do what it was asked
        ├── StoreUnavailable       no database at the path or DSN, not a database, a
        │                          server down, locked for longer than the timeout
        ├── StoreReadOnly          a write to a store opened read-only or on a read-only
        │                          file, directory or mount
        ├── StoreFull              the disk or the database is full
        └── UnreadableRecord       a stored return that cannot be read back (names the
                                   shop and the return id); listings skip it and report it

A stored return that cannot be read never hides the others: ``store.get`` raises
:class:`UnreadableRecord` for it, while ``store.list`` (and what timers read) returns every
readable return and names the ones skipped in the listing's ``unreadable``.

Raising any of them leaves stored state untouched: the service validates and runs the
state machine on a copy, and writes only when everything succeeded.

>>> from returnflow import InvalidQuantity, ValidationError
>>> err = InvalidQuantity("lines[0].quantity", 0, "must be at least 1")
>>> isinstance(err, ValidationError), err.field, err.value
(True, 'lines[0].quantity', 0)
>>> str(err)
'lines[0].quantity=0: must be at least 1'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "ConcurrencyConflict",
    "ConfigurationError",
    "CurrencyMismatch",
    "EvidenceRequired",
    "ExchangeNotOffered",
    "InvalidAmount",
    "InvalidFee",
    "InvalidPayload",
    "InvalidQuantity",
    "InvalidRequest",
    "InvalidRule",
    "InvalidTime",
    "InvalidTransition",
    "MethodNotOffered",
    "MoneyError",
    "NotFulfilled",
    "NotReturnable",
    "OutcomeNotOffered",
    "PortError",
    "ReturnNotFound",
    "ReturnflowError",
    "StoreError",
    "StoreFull",
    "StoreReadOnly",
    "StoreUnavailable",
    "UnitsTaken",
    "UnknownCurrency",
    "UnknownExternalReturn",
    "UnknownLocation",
    "UnknownOrder",
    "UnknownOrderLine",
    "UnknownOutcome",
    "UnknownReason",
    "UnknownShop",
    "UnreadableRecord",
    "ValidationError",
]


class ReturnflowError(Exception):
    """Root of every error returnflow raises on purpose."""


_SHOWN = 200  # characters of a value a message shows


def shown(value: Any) -> str:
    """``repr(value)`` for a message: cut to a readable length, and never failing (the repr
    of an int of more than 4300 digits raises, as may a host object's)."""
    try:
        text = repr(value)
    except Exception:  # whatever a value's repr raises, the message must still be made
        text = f"<{type(value).__name__} that cannot be shown>"
    return text if len(text) <= _SHOWN else f"{text[: _SHOWN - 3]}..."


class ValidationError(ReturnflowError, ValueError):
    """Bad input. ``field`` is a dotted path into the input, ``value`` what was given."""

    def __init__(self, field: str, value: Any, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{field}={shown(value)}: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.field, self.value, self.reason))


class MoneyError(ValidationError):
    """An amount or currency that money cannot be made of."""


class InvalidAmount(MoneyError):
    """A float, a non-finite number, or more decimals than the currency has."""


class UnknownCurrency(MoneyError):
    """Not a three-letter ISO 4217 code."""


class CurrencyMismatch(MoneyError):
    """Two amounts, or an amount and an order, in different currencies."""


class InvalidRequest(ValidationError):
    """A return request that cannot be accepted as given."""


class UnknownOrderLine(InvalidRequest):
    """The request names an order line the order does not have."""


class UnknownOrder(InvalidRequest):
    """The commerce platform has no such order in this shop."""


class UnknownShop(InvalidRequest):
    """The policy source has no return policy for the shop the request names."""


class UnknownReason(InvalidRequest):
    """A request line gives a return reason its shop's policy does not define."""


class EvidenceRequired(InvalidRequest):
    """A request line lacks the note or the photo its reason (or a rule) requires."""


class OutcomeNotOffered(InvalidRequest):
    """A request line asks for an outcome a merchant rule does not offer for it."""


class MethodNotOffered(InvalidRequest):
    """A request asks for a return method (``method``) its shop's policy, or a merchant
    rule that fired, does not offer."""


class UnknownLocation(InvalidRequest):
    """A line's destination (``lines[i].location_id``), from a merchant rule or the host's
    destination resolver, is blank or not one of the shop's locations."""


class UnknownExternalReturn(InvalidRequest):
    """A return source (Loop, ...) has no return with this id in this shop."""


class InvalidQuantity(InvalidRequest):
    """A quantity of 0, below 0, or above what is left to return."""


class NotFulfilled(InvalidQuantity):
    """More units than have shipped and are still free: units never fulfilled are not
    returnable (the order line's fulfillments say what shipped)."""


class NotReturnable(InvalidRequest):
    """An order line that can never be returned, such as a gift card."""


class UnknownOutcome(InvalidRequest):
    """An outcome other than refund, store_credit, exchange or keep."""


class ExchangeNotOffered(InvalidRequest):
    """An exchange asked for on an order that cannot get one; ``reason`` says why."""


class InvalidFee(ValidationError):
    """A fee that cannot be charged: above 100 %, negative, or of the wrong kind."""


class InvalidPayload(ValidationError):
    """An event or inbound fact whose data is missing or wrong."""


class InvalidTime(InvalidPayload):
    """A datetime that cannot be used: without an offset (naive), outside the years
    1900-9000 (UTC), or text that is not ISO 8601."""


class ReturnNotFound(ReturnflowError, LookupError):
    """No return with this id in this shop. Another shop's returns are never visible."""

    def __init__(self, shop: str, return_id: str) -> None:
        self.shop = shop
        self.return_id = return_id
        super().__init__(f"return_id={return_id!r}: no such return in shop {shop!r}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.shop, self.return_id))


class InvalidTransition(ReturnflowError):
    """The event is not allowed in the return's current state; nothing was changed."""

    def __init__(
        self,
        return_id: str,
        state: Sequence[str],
        event: str,
        allowed: Sequence[str],
        reason: str = "",
    ) -> None:
        self.return_id = return_id
        self.state = tuple(state)
        self.event = event
        self.allowed = tuple(allowed)
        self.reason = reason
        super().__init__(
            f"return {return_id!r} in state {'/'.join(self.state)} does not allow event "
            f"{event!r}{f' ({reason})' if reason else ''}; "
            f"allowed: {', '.join(self.allowed) or 'none'}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.return_id, self.state, self.event, self.allowed, self.reason))


class ConcurrencyConflict(ReturnflowError):
    """Another writer got there first: it stored a newer version of the return, processed
    the same inbound event, queued the same effect or moved the same cursor. ``reason``,
    when given, says which (the message is then the reason)."""

    def __init__(
        self, return_id: str, expected: int, actual: int, reason: str | None = None
    ) -> None:
        self.return_id = return_id
        self.expected = expected
        self.actual = actual
        self.reason = reason
        super().__init__(
            reason
            or f"return {return_id!r}: expected version {expected}, stored version is {actual}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.return_id, self.expected, self.actual, self.reason))


class PortError(ReturnflowError):
    """A host port (platform, warehouse, carrier, ...) failed to do what it was asked.

    ``retry_after`` (seconds, or ``None``) is the earliest a retry can succeed when the other
    side said so (a rate limit: HTTP 429's ``Retry-After``, Shopify's throttle status).
    """

    def __init__(
        self,
        port: str,
        operation: str,
        message: str,
        *,
        retryable: bool = True,
        retry_after: float | None = None,
    ) -> None:
        self.port = port
        self.operation = operation
        self.retryable = retryable
        self.retry_after = retry_after
        super().__init__(f"{port}.{operation}: {message}")

    def __reduce__(self) -> tuple[Any, ...]:
        message = str(self).split(": ", 1)[1]
        return (
            _rebuild_port_error,
            (self.port, self.operation, message, self.retryable, self.retry_after),
        )


def _rebuild_port_error(
    port: str, operation: str, message: str, retryable: bool, retry_after: float | None = None
) -> PortError:
    return PortError(port, operation, message, retryable=retryable, retry_after=retry_after)


class ConfigurationError(ReturnflowError):
    """The service, a policy or a port is set up in a way that cannot work.

    ``field`` and ``value`` name the setting when there is one.
    """

    def __init__(self, message: str, *, field: str | None = None, value: Any = None) -> None:
        self.field = field
        self.value = value
        super().__init__(f"{field}={shown(value)}: {message}" if field else message)

    def __reduce__(self) -> tuple[Any, ...]:
        message = str(self).split(": ", 1)[1] if self.field else str(self)
        return (_rebuild_configuration_error, (message, self.field, self.value))


def _rebuild_configuration_error(message: str, field: str | None, value: Any) -> Any:
    return ConfigurationError(message, field=field, value=value)


class InvalidRule(ConfigurationError):
    """A merchant rule (:mod:`returnflow.domain.rules`) that cannot work: ``rule`` names it
    (its ``name``, or ``None`` before it has one), ``field`` the setting
    (``when.return_value_at_least``, ``then.offer``), ``value`` what was given."""

    def __init__(self, message: str, *, rule: str | None, field: str, value: Any = None) -> None:
        self.rule = rule
        self.message = message
        named = f"rule {rule!r}: " if rule is not None else ""
        ConfigurationError.__init__(self, message, field=field, value=value)
        self.args = (f"{named}{self.args[0]}",)

    def __str__(self) -> str:
        return str(self.args[0])

    def named(self, rule: str, prefix: str = "") -> InvalidRule:
        """The same error, naming ``rule`` and with ``prefix`` before the field."""
        field = f"{prefix}{self.field}" if prefix else str(self.field)
        return InvalidRule(self.message, rule=rule, field=field, value=self.value)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_invalid_rule, (self.message, self.rule, self.field, self.value))


def _rebuild_invalid_rule(message: str, rule: str | None, field: str, value: Any) -> Any:
    return InvalidRule(message, rule=rule, field=field, value=value)


class UnitsTaken(ConcurrencyConflict):
    """A commit would have a return hold a unit of an order line that another open return
    holds (or settled). Stores raise it so that two returns racing for the same unit cannot
    both be stored; the service then checks the request again, and refuses it with
    :class:`InvalidQuantity` when too few units are left. ``units`` names the units:
    ``(order_line_id, unit index)``."""

    def __init__(
        self,
        return_id: str,
        order_id: str,
        units: Sequence[tuple[str, int]] = (),
        held_by: str | None = None,
    ) -> None:
        self.order_id = order_id
        self.units = tuple((str(line), int(unit)) for line, unit in units)
        self.held_by = held_by
        named = ", ".join(f"{line}#{unit}" for line, unit in self.units) or "a unit"
        holder = f" by return {held_by!r}" if held_by else " by another return"
        super().__init__(
            return_id,
            0,
            0,
            f"return {return_id!r}: {named} of order {order_id!r} already held{holder}",
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.return_id, self.order_id, self.units, self.held_by))


class StoreError(ReturnflowError):
    """The store could not do what it was asked. ``operation`` names the store method,
    ``retryable`` says whether the same call may succeed later unchanged (a server back up,
    a lock released); ``field`` and ``value`` name the setting (``path``, ``dsn``) when one
    is at fault. The driver's own exception is the ``__cause__``."""

    retryable = False

    def __init__(
        self, message: str, *, operation: str = "", field: str | None = None, value: Any = None
    ) -> None:
        where = f"{field}={shown(value)}: " if field else ""
        doing = f"{operation}: " if operation else ""
        # not super(): a StoreUnavailable is also a ConfigurationError, whose __init__ differs
        Exception.__init__(self, f"{where}{doing}{message}")
        self.operation = operation
        self.field = field
        self.value = value
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_store_error,
            (type(self), self.message, self.operation, self.field, self.value),
        )


def _rebuild_store_error(
    kind: type[StoreError], message: str, operation: str, field: str | None, value: Any
) -> StoreError:
    return kind(message, operation=operation, field=field, value=value)


class StoreUnavailable(StoreError, ConfigurationError):
    """The store cannot be opened or reached: no database at the path or DSN (a missing
    directory, a directory, a file that is not a database), a server that does not answer,
    a lock held for longer than the store's timeout. Opening failures are also a
    :class:`ConfigurationError` naming the setting."""

    retryable = True

    def __init__(
        self, message: str, *, operation: str = "", field: str | None = None, value: Any = None
    ) -> None:
        StoreError.__init__(self, message, operation=operation, field=field, value=value)


class StoreReadOnly(StoreError):
    """A write refused: the store was opened read-only, or its file, directory or mount
    does not allow writing. Nothing was written."""


class StoreFull(StoreError):
    """A write refused for lack of space: the disk, or the database's own size limit, is
    full. Nothing was written."""


class UnreadableRecord(StoreError):
    """A stored return whose data cannot be read back into a return (a damaged row, a body
    written by something else). ``shop`` and ``return_id`` name it, ``reason`` says what
    is wrong with it. ``store.get`` raises it; listings skip the return and name it in
    their ``unreadable``."""

    def __init__(self, shop: str, return_id: str, reason: str) -> None:
        self.shop = shop
        self.return_id = return_id
        self.reason = reason
        StoreError.__init__(self, f"return {return_id!r} of shop {shop!r} cannot be read: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.shop, self.return_id, self.reason))
