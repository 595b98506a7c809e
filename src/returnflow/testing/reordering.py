"""Facts in any order end alike: what two runs of the same returns are compared on.

Webhooks arrive late, twice and out of order. The property (checked by the project's suite
over every seed flow, and by the stateful kit for any policy): *for any per-return
permutation of a valid fact stream, with redeliveries, the final records, the ledger and the
set of port effects equal those of the in-order run.* Two identical harnesses (same ids,
same clock) run the in-order stream and a drawn one (:func:`schedules`); :func:`outcome` is
what they must agree on and :func:`differences` says where they do not:

* each return: lifecycle and exchange state, per line received / accepted / rejected /
  restocked / settled, the exchange lines' statuses, review reasons, external refs (the
  fakes' refund and credit ids as the documents they name, an authorization as what became
  of it), the facts still parked (a return never approved keeps them), and whether it was
  completed;
* each order's ledger (which return holds which unit);
* the multiset of what the fakes hold: refunds (amount and lines), store credit, restocks,
  the platform's exchange items and tags, the warehouse's returns, labels and payments.

Payouts (refunds, store credit and the documents a return's refs name) are compared as
multisets, except that a line's rounding cents may land on another of its payouts
(:func:`differences`): a line of 3 units paid 7.30 pays its units 2.44, 2.43 and 2.43,
and a receipt names a count of units, not which ones, so the receipt settled first takes
the unit with the extra cent. No per-receipt rule can avoid that (4 units paid 10.01,
received 2 and 2, cannot pay each receipt the same whichever comes first), so the payouts
must agree in number, in what they pay for and in total to the cent, and each within one
cent per line it pays of its twin.

Not compared: history, published events, messages and idempotency keys, which legitimately
record the order things arrived in. A valid stream never has a parcel both sent back to the
customer (return to origin) and delivered to or received by the warehouse: the carrier
contradicts itself there, and a person sorts it out in whatever order it came.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import attrs
from hypothesis import strategies as st

from returnflow.domain.model import ReturnRecord
from returnflow.stores.memory import MemoryStore
from returnflow.testing.harness import Harness

__all__ = ["differences", "outcome", "schedules"]

Delivery = tuple[int, int]
"""``(return, fact)``: the index of a return and of one of its facts."""


@st.composite
def schedules(draw: st.DrawFn, counts: tuple[int, ...]) -> list[Delivery]:
    """For returns with ``counts`` facts each: each return's facts in a drawn order, the
    returns interleaved, and a few facts delivered again anywhere after their first
    delivery. Returns ``(return, fact)`` index pairs in delivery order."""
    orders = [iter(draw(st.permutations(range(count)))) for count in counts]
    turns = draw(st.permutations([r for r, count in enumerate(counts) for _ in range(count)]))
    firsts = [(r, next(orders[r])) for r in turns]
    last = len(firsts) - 1
    repeats = draw(
        st.lists(st.tuples(st.integers(0, last), st.integers(0, last)), max_size=len(firsts))
        if firsts
        else st.just([])
    )
    after: list[list[Delivery]] = [[] for _ in firsts]
    for which, where in repeats:
        after[max(which, where)].append(firsts[which])
    schedule: list[Delivery] = []
    for first, again in zip(firsts, after, strict=True):
        schedule += [first, *again]
    return schedule


def _authorization(harness: Harness, record: ReturnRecord) -> str | None:
    authorization = record.refs.payment_authorization_id
    if authorization is None:
        return None
    state = harness.ports.payments.authorizations(record.shop, record.id).get(authorization)
    return str(state)


def _record_view(harness: Harness, record: ReturnRecord) -> dict[str, Any]:
    commerce = harness.ports.commerce
    refunds = {r.refund_id: (str(r.amount), r.lines) for r in commerce.refunds}
    credits = {c.credit_id: str(c.amount) for c in commerce.credits}
    refs = attrs.asdict(record.refs)
    # The fakes' document ids count across returns: compare the documents they name.
    refs["refund_ids"] = sorted(refunds.get(i, (i, ())) for i in record.refs.refund_ids)
    refs["credit_ids"] = sorted(credits.get(i, i) for i in record.refs.credit_ids)
    refs["payment_authorization_id"] = _authorization(harness, record)
    return {
        "state": record.state,
        "lines": [
            (
                line.order_line_id,
                line.received,
                line.accepted,
                line.rejected,
                line.restocked,
                line.settled,
            )
            for line in record.lines
        ],
        "exchange_lines": [(line.variant_id, line.status) for line in record.exchange_lines],
        "review_reasons": sorted(record.review_reasons),
        "refs": refs,
        # what waits; not in which order or in which state it came (it is applied in the
        # order facts happen)
        "parked": sorted(f"{fact.kind}:{fact.event_id}" for fact in record.parked),
        "completed": record.completed_at is not None,
    }


def _port_effects(harness: Harness, shop: str, order_ids: Sequence[str]) -> dict[str, Any]:
    ports = harness.ports
    commerce = ports.commerce
    return {
        "refunds": Counter((r.order_id, str(r.amount), r.lines) for r in commerce.refunds),
        "credits": Counter((c.order_id, str(c.amount)) for c in commerce.credits),
        "restocks": Counter((r.order_id, r.lines) for r in commerce.restocks),
        "exchange_items": Counter(
            (line.exchange_line_id, line.variant_id, line.quantity, line.status)
            for order_id in order_ids
            for line in commerce.exchange_lines(shop, order_id)
        ),
        "tags": Counter(tag for order_id in order_ids for tag in commerce.tags(shop, order_id)),
        "warehouse": Counter(
            (w.return_id, w.lines, w.reason, w.action, w.status) for w in ports.warehouse.returns
        ),
        "labels": Counter((label.return_id, label.status) for label in ports.carrier.labels),
        "payments": Counter((p.return_id, p.kind, str(p.amount)) for p in ports.payments.payments),
    }


def outcome(harness: Harness, shop: str, return_ids: Sequence[str]) -> dict[str, Any]:
    """What two runs of the returns ``return_ids`` of ``shop`` must agree on (see the module
    docstring). ``harness`` must run on a :class:`~returnflow.stores.memory.MemoryStore` (its
    ledger is read with :meth:`~returnflow.stores.memory.MemoryStore.units`); raises
    ``TypeError`` otherwise."""
    store = harness.store
    if not isinstance(store, MemoryStore):
        raise TypeError("outcome() reads the ledger of a MemoryStore")
    records = {rid: store.get(shop, rid) for rid in return_ids}
    order_ids = sorted({record.order_id for record in records.values()})
    return {
        "returns": {rid: _record_view(harness, record) for rid, record in records.items()},
        "ledger": {order_id: store.units(shop, order_id) for order_id in order_ids},
        "effects": _port_effects(harness, shop, order_ids),
    }


def differences(expected: Any, got: Any, path: str = "") -> dict[str, Any]:
    """Where ``got`` differs from ``expected``: ``{dotted path: {"in order", "permuted"}}``
    (empty when they are equal). Payouts that differ only in where a line's rounding cents
    fell are equal (see the module docstring)."""
    if expected == got:
        return {}
    if path.rsplit(".", 1)[-1] in _PAYOUTS and _cents_apart(expected, got):
        return {}
    if isinstance(expected, dict) and isinstance(got, dict) and set(expected) == set(got):
        found: dict[str, Any] = {}
        for key in expected:
            found |= differences(expected[key], got[key], f"{path}.{key}" if path else str(key))
        return found
    return {path: {"in order": expected, "permuted": got}}


_PAYOUTS = frozenset({"refunds", "credits", "refund_ids", "credit_ids"})
"""The keys of :func:`outcome` that hold payouts."""

_AMOUNT = re.compile(r"^(-?\d+(?:\.\d+)?) ([A-Z]{3})$")


def _payouts(value: Any) -> list[tuple[Any, ...]] | None:
    """Each payout of a ``Counter`` (its keys, as often as counted) or a list of ``outcome``
    as a tuple; ``None`` for another shape."""
    if isinstance(value, Counter):
        found = [key for key, count in value.items() for _ in range(count)]
    elif isinstance(value, list):
        found = list(value)
    else:
        return None
    return [item if isinstance(item, tuple) else (item,) for item in found]


def _split(payout: tuple[Any, ...]) -> tuple[tuple[Any, ...], Decimal, str] | None:
    """``(what it pays for, amount, currency)`` of a payout holding one amount."""
    amounts = [i for i, part in enumerate(payout) if isinstance(part, str) and _AMOUNT.match(part)]
    if len(amounts) != 1:
        return None
    found = _AMOUNT.match(payout[amounts[0]])
    assert found is not None
    rest = payout[: amounts[0]] + payout[amounts[0] + 1 :]
    return rest, Decimal(found.group(1)), found.group(2)


def _cents_apart(expected: Any, got: Any) -> bool:
    """Whether two multisets of payouts differ only in where rounding cents fell: the same
    number paying for the same things (order, lines, currency), the same total to the cent
    for each, and each payout within one cent per line it pays (one for a payout naming no
    lines) of its twin, paired in order of amount."""
    ours, theirs = _payouts(expected), _payouts(got)
    if ours is None or theirs is None or len(ours) != len(theirs):
        return False
    groups: dict[tuple[Any, ...], tuple[list[Decimal], list[Decimal]]] = {}
    for side, payouts in ((0, ours), (1, theirs)):
        for payout in payouts:
            parts = _split(payout)
            if parts is None:
                return False
            rest, amount, currency = parts
            groups.setdefault((*rest, currency), ([], []))[side].append(amount)
    cent = Decimal("0.01")
    for key, (left, right) in groups.items():
        if len(left) != len(right) or sum(left) != sum(right):
            return False
        lines = next((part for part in key if isinstance(part, tuple)), ())
        allowed = cent * max(1, len(lines))
        if any(abs(a - b) > allowed for a, b in zip(sorted(left), sorted(right), strict=True)):
            return False
    return True
