"""The exchanged lines' restocking fee carried by the units that pay out, for a
settlement (:func:`returnflow.domain.settlement.settle`): each refunded or credited
unit's share and its tax, and what a part's own payout bears of its units' shares."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from returnflow.domain._shipping_shares import UnitShares
from returnflow.domain.fees import (
    FeePolicy,
    LeftOff,
    unit_fee_taxes,
    unit_restocking_fees,
    unit_shipping_fees,
)
from returnflow.domain.model import Exchange, OutcomeKind, ReturnLine
from returnflow.domain.money import Money

if TYPE_CHECKING:
    from returnflow.domain.settlement import LineSettlement

__all__ = ["apart", "carried", "own", "room", "take"]

Shares = dict[tuple[str, int], tuple[Money, Money]]


def carried(
    currency: str,
    lines: Sequence[ReturnLine],
    fees: FeePolicy,
    *,
    taxes_included: bool,
    left_off: LeftOff | None,
) -> Shares:
    """Each ``(return line id, unit)``'s share of the exchanged lines' restocking fee and
    its tax part, when units that are refunded or credited (and worth something) bear
    fees: the exchanged lines' fees (:func:`~returnflow.domain.fees.unit_restocking_fees`
    of the first line of each id whose fees are not waived, less what the return was
    opened without) spread once over those units in proportion to what each was paid
    (:func:`~returnflow.domain.fees.unit_shipping_fees`, the return shipping fee's rule),
    their tax allocated over the shares. Empty when no such unit bears a share: then the
    exchanged lines bear their own fees. A share a unit's payout does not bear (the unit
    never settles, or pays out less) is waived under ``fees_only_from_payout``, else owed
    apart (``Settlement.restocking_owed``): never on the platform return, whose lines carry
    the shares their payouts bear, so never in its figure either."""
    if fees.restocking is None:
        return {}
    distinct: dict[str, ReturnLine] = {}
    for line in lines:
        distinct.setdefault(line.id, line)
    total = Money.zero(currency)
    for line in distinct.values():
        if isinstance(line.outcome, Exchange) and not fees.waived(line):
            less = left_off.restocking.get(line.id) if left_off else None
            own = unit_restocking_fees(
                fees.restocking, line, taxes_included=taxes_included, less=less
            )
            total = total + Money.sum(own, currency)
    if not total:
        return {}
    shares = unit_shipping_fees(total, list(distinct.values()), fees)
    keys = [
        (line_id, unit)
        for line_id, each in shares.items()
        if not isinstance(distinct[line_id].outcome, Exchange)
        for unit in range(len(each))
    ]
    flat = [shares[line_id][unit] for line_id, unit in keys]
    if not any(flat):
        return {}
    taxes = unit_fee_taxes(fees.restocking, flat)
    return {key: (share, tax) for key, share, tax in zip(keys, flat, taxes, strict=True)}


def room(line: ReturnLine, unit: int) -> Money:
    """What ``unit`` of ``line`` pays out before its fees: what it was paid, with the
    original shipping and duties given back with it."""
    back, _, duties = line.original_for(1, start=unit)
    return line.amount_for(1, start=unit) + back + duties


def take(
    line: ReturnLine,
    units: range,
    shares: Shares,
    own: Sequence[Money],
    shares_paid: Collection[tuple[str, int]],
) -> tuple[UnitShares, dict[int, Money]]:
    """What a refunded or credited part (``units`` of ``line``) bears of its units'
    ``shares`` (:func:`carried`), each unit at most what it pays out after its own
    restocking share (``own``, by unit; empty: none), and what each unit bore; units
    whose shares a settlement before took apart (``shares_paid``) bear none."""
    currency = line.amount_for(1).currency
    bore = UnitShares.none(currency)
    by_unit: dict[int, Money] = {}
    for unit in units:
        share, tax = shares.get((line.id, unit), (None, None))
        if share is None or tax is None or (line.id, unit) in shares_paid:
            continue
        before = bore.taken
        bore.take(share, tax, room(line, unit) - (own[unit] if own else Money.zero(currency)))
        by_unit[unit] = bore.taken - before
    return bore, by_unit


def apart(
    parts: Sequence[tuple[ReturnLine, int, int]],
    shares: Shares,
    shares_paid: Collection[tuple[str, int]],
    currency: str,
) -> tuple[Money, Money]:
    """The shares (:func:`carried`) of the units of ``parts`` (line, units, first unit)
    that will never settle, and their tax: due now, owed or waived like a fee no payout
    bears, but for those a settlement before took apart (``shares_paid``)."""
    zero = Money.zero(currency)
    share = tax = zero
    for line, units, start in parts:
        for unit in range(start, start + units):
            if (line.id, unit) not in shares_paid:
                each, each_tax = shares.get((line.id, unit), (zero, zero))
                share, tax = share + each, tax + each_tax
    return share, tax


def own(parts: Sequence[LineSettlement], currency: str) -> tuple[Money, Money]:
    """The exchanged ``parts``' own restocking fees and their tax: those they bear when no
    unit that pays out bears fees (:func:`carried` empty), from the exchange's own
    difference."""
    exchanged = [part for part in parts if part.outcome is OutcomeKind.EXCHANGE]
    return (
        Money.sum((part.restocking_fee for part in exchanged), currency),
        Money.sum((part.restocking_fee_tax for part in exchanged), currency),
    )
