"""What merchant rules cost a request, against the same request without rules.

Rows, each ``ReturnsService.request`` of one unit on an order of its own, on a SQLite store
that already holds ``--records`` returns of the shop (other customers'), effects left in the
outbox (``auto_dispatch=False``), so the row is the request's own work:

* ``no rules``: the baseline, measured in the same run;
* ``six rules``: six rules on the lines and the order (SKU, tags, value, country, age),
  none of which reads the store;
* ``customer returns rule``: one rule on the customer's returns in the last 90 days, one
  indexed count (``ReturnStore.count_customer_returns``) per request;
* ``same rule by scan``: the same rule on a store without that method (a host's store written
  before it), which the service reads 500 returns at a time: what every store did before
  the index.

Rounds alternate between the rows so that each sees the same machine. The scan row is
expected to fall as the shop's returns grow (it is linear in them); the others should stay
within a few percent of each other. Run: ``python benchmarks/merchant_rules.py``.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from returnflow import (
    CustomerReturns,
    Money,
    OrderLine,
    OrderSnapshot,
    RequestLine,
    ReturnPolicy,
    ReturnRequest,
    Rule,
    Then,
    When,
)
from returnflow.stores.sqlite import SqliteStore
from returnflow.testing import Harness

SHOP = "bench-shop"
ORDERED = datetime(2026, 1, 10, tzinfo=timezone.utc)

SIX_RULES = (
    Rule("mugs", When(sku=["MUG-XL"]), Then(keep=True)),
    Rule("fragile", When(tags=["fragile"]), Then(require_photo=True)),
    Rule("large", When(return_value_at_least=Money("500.00", "EUR")), Then(review="large")),
    Rule("abroad", When(country=["US"]), Then(decline="abroad")),
    Rule("old", When(order_age_days_at_least=365), Then(review="old")),
    Rule("credit", When(outcome=["store_credit"]), Then(bonus=Money("1.00", "EUR"))),
)
COUNTING = (
    Rule(
        "repeat returners",
        When(customer_returns=CustomerReturns(days=90, at_least=3)),
        Then(return_shipping=Money("5.00", "EUR")),
    ),
)


def _order(order_id: str, email: str) -> OrderSnapshot:
    return OrderSnapshot(
        id=order_id,
        shop=SHOP,
        created_at=ORDERED,
        currency="EUR",
        fulfilled_at=ORDERED,
        customer_email=email,
        shipping_country="DE",
        lines=[
            OrderLine(
                id="L1",
                sku="MUG",
                variant_id="mug",
                quantity=1,
                unit_price=Money("12.00", "EUR"),
                tags=["kitchen"],
            )
        ],
    )


class _WithoutCount(SqliteStore):
    """A store as a host wrote it before ``count_customer_returns``: the service scans."""

    count_customer_returns = None  # type: ignore[assignment]


def _requests_per_second(
    path: Path,
    rules: tuple[Rule, ...],
    existing: int,
    requests: int,
    round_no: int,
    store_type: type[SqliteStore] = SqliteStore,
) -> float:
    store = store_type(path)
    harness = Harness(policy=ReturnPolicy(rules=rules), store=store, auto_dispatch=False)
    try:
        for n in range(existing + requests):
            email = f"other{n}@example.com" if n < existing else "ana@example.com"
            harness.ports.commerce.add_order(_order(f"r{round_no}-{n}", email))
        for n in range(existing):  # the shop's earlier returns
            harness.service.request(
                ReturnRequest(shop=SHOP, order_id=f"r{round_no}-{n}", lines=[RequestLine("L1", 1)])
            )
        asked = [
            ReturnRequest(shop=SHOP, order_id=f"r{round_no}-{n}", lines=[RequestLine("L1", 1)])
            for n in range(existing, existing + requests)
        ]
        gc.collect()
        start = time.perf_counter()
        for request in asked:
            harness.service.request(request)
        return requests / (time.perf_counter() - start)
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000, help="returns the shop holds")
    parser.add_argument("--requests", type=int, default=100, help="requests timed per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rows: dict[str, tuple[tuple[Rule, ...], type[SqliteStore]]] = {
        "no rules": ((), SqliteStore),
        "six rules": (SIX_RULES, SqliteStore),
        "customer returns rule": (COUNTING, SqliteStore),
        "same rule by scan": (COUNTING, _WithoutCount),
    }
    rates: dict[str, list[float]] = {name: [] for name in rows}
    with tempfile.TemporaryDirectory() as folder:
        for round_no in range(args.rounds):
            for index, (name, (rules, store_type)) in enumerate(rows.items()):
                path = Path(folder) / f"{round_no}-{index}.db"
                rates[name].append(
                    _requests_per_second(
                        path, rules, args.records, args.requests, round_no, store_type
                    )
                )
    medians = {name: statistics.median(values) for name, values in rates.items()}
    print(f"{'measurement':<24} {'requests/s':>11} {'ratio':>7}  against")
    for name, rate in medians.items():
        print(f"{name:<24} {rate:>11.0f} {rate / medians['no rules']:>7.2f}  no-rules")
    print(
        f"\n{args.rounds} rounds of {args.requests} requests on a shop holding {args.records} "
        "returns, medians; the customer returns rule counts through an index, the scan reads "
        "every return of the shop on every request."
    )


if __name__ == "__main__":
    main()
