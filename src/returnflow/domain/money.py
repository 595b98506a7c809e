"""Money: a ``Decimal`` amount in an ISO 4217 currency, never a float.

Amounts are held at the currency's exponent (EUR 2, JPY 0, KWD 3). Input with more
decimals than the currency has is refused; computed amounts are quantized explicitly.

>>> from decimal import Decimal
>>> Money("12.5", "EUR")
Money('12.50', 'EUR')
>>> Money(1200, "JPY") + Money("300", "JPY")
Money('1500', 'JPY')
>>> Money("1.005", "KWD").amount
Decimal('1.005')
>>> Money("10.00", "EUR").split(3)
(Money('3.34', 'EUR'), Money('3.33', 'EUR'), Money('3.33', 'EUR'))
>>> Money(0.1, "EUR")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
returnflow.errors.InvalidAmount: amount=0.1: float is not accepted for money; ...
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation, localcontext
from typing import Any

import attrs

from returnflow.errors import CurrencyMismatch, InvalidAmount, UnknownCurrency

__all__ = ["MONEY_CONTEXT", "Money", "currency_exponent", "is_plain_decimal"]

# ISO 4217 minor units that differ from 2; every other code below has 2.
_EXPONENTS: dict[str, int] = {
    **dict.fromkeys(
        "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(), 0
    ),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
    **dict.fromkeys("CLF UYW".split(), 4),
}


# Active ISO 4217 codes that can price goods (no metals, test or bond units).
_ISO_4217 = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD
    BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP
    DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR
    IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD
    MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB
    PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD
    SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS
    VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG ZWL
    """.split()
)


def currency_exponent(currency: str) -> int:
    """The number of decimals of ``currency`` (ISO 4217 minor units).

    >>> currency_exponent("JPY"), currency_exponent("EUR"), currency_exponent("KWD")
    (0, 2, 3)
    """
    _check_currency(currency)
    return _EXPONENTS.get(currency, 2)


def _check_currency(currency: object) -> str:
    if not isinstance(currency, str) or currency not in _ISO_4217:
        raise UnknownCurrency("currency", currency, "is not an ISO 4217 currency code")
    return currency


_PLAIN = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)").fullmatch


def is_plain_decimal(text: str) -> bool:
    """Whether ``text`` is decimal text as people, files and platforms write amounts: an
    optional sign and ASCII digits with at most one point, digits on at least one side of it
    (``-12.50``, and ``.5`` or ``10.`` as some exports write them)."""
    return _PLAIN(text) is not None


def to_decimal(value: object, field: str = "amount") -> Decimal:
    """A finite ``Decimal`` from a Decimal, int or numeric str; floats and bools are refused.

    Text is read only in plain decimal notation (:func:`is_plain_decimal`: ``-12.50``), not in all
    that ``Decimal`` reads: no ``_`` between digits (``1_000``), no digits of other scripts
    (``١٠``), no spaces around, and no exponent (``1e3``, which is how a float prints, not
    how an amount is written, and lets a few characters stand for a number of any size). A
    ``Decimal`` value is taken as it is."""
    if isinstance(value, bool):  # an int to Python, but True is no amount
        raise InvalidAmount(
            field, value, "a bool (True/False) is not an amount; pass a Decimal, int or str"
        )
    if isinstance(value, float):
        raise InvalidAmount(
            field, value, "float is not accepted for money; pass a Decimal, int or str"
        )
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, str):
        if _PLAIN(value) is None:
            raise InvalidAmount(
                field,
                value,
                "is not a number in plain decimal notation (ASCII digits, sign, point: -12.50)",
            )
        number = Decimal(value)
    elif isinstance(value, int):
        number = Decimal(value)
    else:
        raise InvalidAmount(field, value, "must be a Decimal, int or str")
    if not number.is_finite():
        raise InvalidAmount(field, value, "must be finite")
    return number


def _quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-currency_exponent(currency))


# Each currency's quantum (``Decimal("0.01")`` for EUR), looked up by a plain ``str`` code.
_QUANTA: dict[str, Decimal] = {code: _quantum(code) for code in _ISO_4217}
_ZERO = Decimal(0)


MAX_DIGITS = 15
"""Digits an amount may have before the decimal point (a quadrillion less a cent): every sum
of a return's amounts stays exact in ``decimal``'s 28 digits."""

MONEY_CONTEXT = Context(prec=28, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation])
"""The ``decimal`` context every money computation runs in, whatever the caller's own
(``decimal.localcontext`` with a low precision or extra traps changes no amount): 28 digits,
half-even rounding, only :class:`decimal.InvalidOperation` trapped."""


@attrs.frozen(init=False, repr=False, order=False)
class Money:
    """An exact amount of one currency; :class:`~returnflow.errors.InvalidAmount` for a float,
    more decimals than the currency has, or more than :data:`MAX_DIGITS` digits before the
    point."""

    amount: Decimal
    currency: str

    def __init__(self, amount: Decimal | int | str, currency: str) -> None:
        # the checks of _check_currency and to_decimal, inlined for the common case (a
        # plain str code, a finite Decimal): money is built on every sum and difference
        quantum = _QUANTA.get(currency) if type(currency) is str else None
        if quantum is None:
            currency = _check_currency(currency)
            quantum = _quantum(currency)
        number = amount if isinstance(amount, Decimal) and type(amount) is Decimal else None
        if number is None or not number.is_finite():
            number = to_decimal(amount)
        if number and number.adjusted() >= MAX_DIGITS:
            raise InvalidAmount(
                "amount", amount, f"is out of range: at most {MAX_DIGITS} digits before the point"
            )
        exact = number.quantize(quantum, rounding=ROUND_HALF_EVEN, context=MONEY_CONTEXT)
        if exact != number:
            raise InvalidAmount(
                "amount",
                amount,
                f"{currency} has {currency_exponent(currency)} decimals; quantize it first",
            )
        self.__attrs_init__(MONEY_CONTEXT.add(exact, _ZERO), currency)  # "+ 0" folds -0 into 0

    @classmethod
    def zero(cls, currency: str) -> Money:
        if cls is Money and type(currency) is str:
            zero = _ZEROS.get(currency)
            if zero is None and currency in _QUANTA:
                zero = _ZEROS[currency] = cls(0, currency)
            if zero is not None:
                return zero  # immutable: one per currency serves every caller
        return cls(0, currency)

    @classmethod
    def quantized(
        cls, amount: Decimal | int | str, currency: str, rounding: str = ROUND_HALF_EVEN
    ) -> Money:
        """Round a computed amount to the currency's exponent (banker's rounding by default).

        >>> Money.quantized("2.345", "EUR"), Money.quantized("2.5", "JPY")
        (Money('2.34', 'EUR'), Money('2', 'JPY'))
        """
        currency = _check_currency(currency)
        number = to_decimal(amount)
        if number and number.adjusted() >= MAX_DIGITS:
            raise InvalidAmount(
                "amount", amount, f"is out of range: at most {MAX_DIGITS} digits before the point"
            )
        return cls(
            number.quantize(_quantum(currency), rounding=rounding, context=MONEY_CONTEXT), currency
        )

    @classmethod
    def sum(cls, items: Iterable[Money], currency: str) -> Money:
        """Add up ``items``, all in ``currency``; an empty sum is zero."""
        total = cls.zero(currency)
        for item in items:
            total = total + item
        return total

    @property
    def minor_units(self) -> int:
        """The amount in the currency's smallest unit (cents, yen, fils)."""
        return int(self.amount.scaleb(currency_exponent(self.currency), context=MONEY_CONTEXT))

    @classmethod
    def from_minor_units(cls, units: int, currency: str) -> Money:
        return cls(
            Decimal(units).scaleb(-currency_exponent(currency), context=MONEY_CONTEXT), currency
        )

    def _same(self, other: Money, field: str = "currency") -> None:
        if not isinstance(other, Money):
            raise InvalidAmount(field, other, "is not Money")
        if other.currency != self.currency:
            raise CurrencyMismatch(
                field, other.currency, f"cannot combine {self.currency} with {other.currency}"
            )

    def __add__(self, other: Money) -> Money:
        if type(other) is not Money or other.currency != self.currency:
            self._same(other)
        return _exact(MONEY_CONTEXT.add(self.amount, other.amount), self.currency)

    def __sub__(self, other: Money) -> Money:
        if type(other) is not Money or other.currency != self.currency:
            self._same(other)
        return _exact(MONEY_CONTEXT.subtract(self.amount, other.amount), self.currency)

    def __mul__(self, quantity: int) -> Money:
        if isinstance(quantity, bool) or not isinstance(quantity, int):
            raise InvalidAmount("quantity", quantity, "money is multiplied by whole numbers only")
        return Money(MONEY_CONTEXT.multiply(self.amount, quantity), self.currency)

    __rmul__ = __mul__

    def __neg__(self) -> Money:
        return Money(MONEY_CONTEXT.minus(self.amount), self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.amount >= other.amount

    def __bool__(self) -> bool:
        return bool(self.amount)

    @property
    def is_negative(self) -> bool:
        return self.amount < 0

    def split(self, parts: int) -> tuple[Money, ...]:
        """Split into ``parts`` amounts that differ by at most one minor unit and add up exactly."""
        if isinstance(parts, bool) or not isinstance(parts, int) or parts < 1:
            raise InvalidAmount("parts", parts, "must be a whole number of at least 1")
        return self.allocate([1] * parts)

    def allocate(self, weights: Sequence[int | Decimal]) -> tuple[Money, ...]:
        """Split by ``weights`` with the largest-remainder method: no minor unit lost or made.

        >>> Money("10.00", "EUR").allocate([1, 1, 1])
        (Money('3.34', 'EUR'), Money('3.33', 'EUR'), Money('3.33', 'EUR'))
        >>> Money("-0.05", "EUR").allocate([1, 1])
        (Money('-0.03', 'EUR'), Money('-0.02', 'EUR'))
        """
        with localcontext(MONEY_CONTEXT):
            return self._allocate(weights)

    def _allocate(self, weights: Sequence[int | Decimal]) -> tuple[Money, ...]:
        weights = [to_decimal(weight, "weights") for weight in weights]
        if not weights or any(weight < 0 for weight in weights) or sum(weights) == 0:
            raise InvalidAmount("weights", weights, "need at least one positive weight, none < 0")
        total_units = self.minor_units
        sign = -1 if total_units < 0 else 1
        units = abs(total_units)
        total_weight = sum(weights)
        exact = [units * weight / total_weight for weight in weights]
        floors = [int(share) for share in exact]
        left = units - sum(floors)
        by_remainder = sorted(
            range(len(weights)), key=lambda index: (-(exact[index] - floors[index]), index)
        )
        for index in by_remainder[:left]:
            floors[index] += 1
        return tuple(Money.from_minor_units(sign * share, self.currency) for share in floors)

    def __repr__(self) -> str:
        return f"Money({str(self.amount)!r}, {self.currency!r})"

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


_ZEROS: dict[str, Money] = {}


def money_from(value: Any, field: str) -> Money:
    """Coerce a ``Money`` or ``{"amount": ..., "currency": ...}`` mapping, naming ``field``."""
    if isinstance(value, Money):
        return value
    if isinstance(value, dict) and set(value) == {"amount", "currency"}:
        prefix = f"{field}." if field else ""
        try:
            return Money(value["amount"], value["currency"])
        except InvalidAmount as err:
            raise InvalidAmount(f"{prefix}amount", err.value, err.reason) from None
        except UnknownCurrency as err:
            raise UnknownCurrency(f"{prefix}currency", err.value, err.reason) from None
    raise InvalidAmount(field or "money", value, "must be Money or {'amount', 'currency'}")


_set = object.__setattr__


def _exact(total: Decimal, currency: str) -> Money:
    """The sum or difference ``total`` of two amounts of ``currency``, as :class:`Money`.

    Both are exact to the currency's quantum and finite, so ``total`` is too, at the same
    exponent, and not ``-0`` (half-even rounding gives ``+0`` for ``x - x``): only its size
    is left to check, by the constructor (which then raises)."""
    if total and total.adjusted() >= MAX_DIGITS:
        return Money(total, currency)
    money = object.__new__(Money)
    _set(money, "amount", total)
    _set(money, "currency", currency)
    return money
