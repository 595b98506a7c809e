"""What a settlement (:func:`returnflow.domain.settlement.settle`) takes from the return's
payout besides its lines' own fees: the refund first, then store credit, the rest left
(owed, or for a fee under ``fees_only_from_payout``, waived)."""

from __future__ import annotations

from collections.abc import Sequence

from returnflow.domain.fees import split_tax, tax_share
from returnflow.domain.model import OutcomeKind
from returnflow.domain.money import Money

__all__ = ["take"]

Piece = tuple[Money, Money, Money]


def take(
    payout: dict[OutcomeKind, Money],
    payout_tax: dict[OutcomeKind, Money],
    amounts: Sequence[tuple[Money, Money | None]],
) -> tuple[list[Piece], list[Piece]]:
    """Each of ``amounts`` (an amount and its tax part; ``None``: the exchange's
    shortfall, which takes the payout's share of its tax) taken in turn from ``payout``
    (by kind, refund and store credit, with its tax ``payout_tax``; both updated): each
    amount's ``(from the refund, from credit, left)``, and for each fee (an amount with a
    tax) its tax split likewise, a fee's tax going where the fee is paid from."""
    refund, credit = OutcomeKind.REFUND, OutcomeKind.STORE_CREDIT
    pieces: list[Piece] = []
    fee_taxes: list[Piece] = []
    for amount, tax in amounts:
        from_refund = min(amount, payout[refund])
        from_credit = min(amount - from_refund, payout[credit])
        piece = (from_refund, from_credit, amount - from_refund - from_credit)
        if tax is None:
            shares = (
                tax_share(payout_tax[refund], from_refund, payout[refund]),
                tax_share(payout_tax[credit], from_credit, payout[credit]),
                Money.zero(amount.currency),
            )
        else:
            shares = split_tax(tax, piece)
            fee_taxes.append(shares)
        for kind, taken, share in zip((refund, credit), piece, shares, strict=False):
            payout[kind] = payout[kind] - taken
            payout_tax[kind] = payout_tax[kind] - share
        pieces.append(piece)
    return pieces, fee_taxes
