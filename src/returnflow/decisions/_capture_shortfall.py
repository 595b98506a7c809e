"""What the capture of an instant exchange's authorization and the balance prepaid leave
unpaid of the new items whose units never came back accepted, and their outbound shipping
(:func:`returnflow.decisions.completion.complete`): the payout of the other lines pays it.

Pure: reads the record; never calls a port.
"""

from __future__ import annotations

from collections.abc import Sequence

from returnflow.decisions import exchange
from returnflow.domain.model import ExchangeLine, ReturnRecord
from returnflow.domain.money import Money

__all__ = ["asked", "items_left", "prepaid_left", "unpaid"]


def asked(record: ReturnRecord) -> Money:
    """The exchange's outbound shipping in the balance asked up front (zero when nothing
    was asked: the other lines' payout was to cover the difference)."""
    return Money.sum(
        (
            Money(str(e.payload["exchange_shipping"]).split(" ")[0], record.currency)
            for e in record.history
            if e.event == "require_payment" and "exchange_shipping" in e.payload
        ),
        record.currency,
    )


def needed(record: ReturnRecord, apart: Sequence[ExchangeLine], shipping: Money) -> Money:
    """What the new items ``apart`` and ``shipping`` (their outbound shipping) cost beyond
    the capture of an instant exchange's authorization."""
    zero = Money.zero(record.currency)
    cost = exchange.cost(record, apart)
    return max(cost + shipping - exchange.captured_for(record, apart), zero)


def unpaid(
    record: ReturnRecord, apart: Sequence[ExchangeLine], prepaid: Money | None, *, shipping: Money
) -> Money | None:
    """What the capture and the prepaid balance leave unpaid of the new items ``apart``
    and ``shipping`` (their outbound shipping, zero when other items' settlement takes
    it); ``None`` when nothing is."""
    zero = Money.zero(record.currency)
    left = needed(record, apart, shipping) - (prepaid or zero)
    return left if left > zero else None


def items_left(record: ReturnRecord, apart: Sequence[ExchangeLine], prepaid: Money | None) -> Money:
    """What the capture and the prepaid balance leave unpaid of the cost of the new items
    ``apart`` alone (they pay the items first, then the outbound shipping)."""
    zero = Money.zero(record.currency)
    paid = exchange.captured_for(record, apart) + (prepaid or zero)
    return max(exchange.cost(record, apart) - paid, zero)


def prepaid_left(
    record: ReturnRecord, apart: Sequence[ExchangeLine], prepaid: Money | None, *, shipping: Money
) -> Money | None:
    """What was prepaid and is left once the capture of an instant exchange's authorization
    and the prepaid balance paid for the new items ``apart`` (their units failed QC or never
    came): the capture first, then the balance, up to what the items cost and ``shipping``
    (their outbound shipping, zero when other items' settlement takes it).
    What is left (a restocking fee prepaid for units that never
    came back accepted) is no longer owed, and the settlement gives it back."""
    if prepaid is None or record.payment_authorized is None:
        return None
    left = prepaid - min(prepaid, needed(record, apart, shipping))
    return left if left > Money.zero(record.currency) else None
