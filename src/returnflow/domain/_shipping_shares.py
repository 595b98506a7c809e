"""The return shipping fee spread over the units that bear it, for a settlement
(:func:`returnflow.domain.settlement.settle`): each unit's share and its tax, and what a
unit's own payout bears of its share."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from returnflow.domain.fees import (
    FeePolicy,
    charged,
    tax_share,
    unit_fee_taxes,
    unit_shipping_fees,
)
from returnflow.domain.model import ReturnLine
from returnflow.domain.money import Money

__all__ = ["UnitShares", "spread"]


def spread(
    currency: str,
    lines: Sequence[ReturnLine],
    fees: FeePolicy,
    *,
    charge_shipping: bool,
    taxes_included: bool,
    less: Money | None,
) -> dict[tuple[str, int], tuple[Money, Money]]:
    """Each ``(return line id, unit)``'s share of the return shipping fee and its tax part,
    the fee spread over the units of ``lines`` that bear it
    (:func:`~returnflow.domain.fees.unit_shipping_fees`, the first line of each id), its
    tax allocated over the shares (:func:`~returnflow.domain.fees.unit_fee_taxes`); empty
    when no fee is charged (``charge_shipping`` false: paid already)."""
    if fees.return_shipping is None or not charge_shipping:
        return {}
    distinct: dict[str, ReturnLine] = {}
    for line in lines:
        distinct.setdefault(line.id, line)
    zero = Money.zero(currency)
    whole = charged(fees.return_shipping, zero, taxes_included=taxes_included)
    shares = unit_shipping_fees(whole, list(distinct.values()), fees, less=less)
    keys = [(line_id, unit) for line_id, each in shares.items() for unit in range(len(each))]
    flat = [shares[line_id][unit] for line_id, unit in keys]
    if not any(flat):
        return {}
    taxes = unit_fee_taxes(fees.return_shipping, flat)
    return {key: (share, tax) for key, share, tax in zip(keys, flat, taxes, strict=True)}


@attrs.define
class UnitShares:
    """What a refunded or credited part's own payout bears of its units' shares of the
    return shipping fee (``taken``, its tax ``taken_tax``) and what it does not (``left``,
    ``left_tax``: owed, or waived under ``fees_only_from_payout``)."""

    taken: Money
    taken_tax: Money
    left: Money
    left_tax: Money

    @classmethod
    def none(cls, currency: str) -> UnitShares:
        zero = Money.zero(currency)
        return cls(zero, zero, zero, zero)

    def take(self, share: Money, tax: Money, room: Money) -> None:
        """One unit's ``share`` (tax part ``tax``) from what the unit pays out (``room``):
        at most that, never below zero; its tax in proportion."""
        taken = min(share, max(room, Money.zero(share.currency)))
        taken_tax = tax_share(tax, taken, share)
        self.taken, self.taken_tax = self.taken + taken, self.taken_tax + taken_tax
        self.left, self.left_tax = self.left + share - taken, self.left_tax + tax - taken_tax
