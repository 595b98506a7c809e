"""The whole returns model runs on the toy shop's platform: every invariant holds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs
from hypothesis import settings
from toy_platform import ToyShopPlatform

from returnflow import Money
from returnflow.testing import Harness
from returnflow.testing.stateful import (
    KitSystem,
    ObservedExchangeItem,
    ObservedPayout,
    returns_state_machine,
)


class ToyObserver:
    """What the model may see of the toy shop: its own tables, as a sandbox's API would."""

    def __init__(self, platform: ToyShopPlatform) -> None:
        self.db = platform._db

    def executions(self) -> Mapping[str, int]:
        # The adapter stores one reply per key it executed; a replay adds none.
        return {key: 1 for (key,) in self.db.execute("SELECT key FROM replies")}

    def _money(self, kind: str, shop: str, order_id: str) -> Sequence[ObservedPayout]:
        rows = self.db.execute(
            "SELECT amount, currency FROM money WHERE kind = ? AND shop = ? AND order_id = ?",
            (kind, shop, order_id),
        )
        return [ObservedPayout(Money(amount, currency)) for amount, currency in rows]

    def refunds(self, shop: str, order_id: str) -> Sequence[ObservedPayout]:
        return self._money("refund", shop, order_id)

    def credits(self, shop: str, order_id: str) -> Sequence[ObservedPayout]:
        return self._money("credit", shop, order_id)

    def exchange_items(self, shop: str, order_id: str) -> Sequence[ObservedExchangeItem]:
        rows = self.db.execute(
            "SELECT id, hold, line, status FROM items WHERE shop = ? AND order_id = ?",
            (shop, order_id),
        )
        return [
            ObservedExchangeItem(f"I-{item}", hold, line, status == "unfulfilled")
            for item, hold, line, status in rows
        ]


def toy_system() -> KitSystem:
    """The fakes for every port but the platform, which is the toy shop's own adapter."""
    platform = ToyShopPlatform()
    base = KitSystem.from_harness(Harness())
    return attrs.evolve(
        base,
        commerce=platform,
        add_order=platform.add_order,
        observer=ToyObserver(platform),
        ignore_next_release=None,
    )


ToyShopReturns = returns_state_machine(toy_system)
ToyShopReturns.TestCase.settings = settings(
    ToyShopReturns.TestCase.settings, max_examples=10, stateful_step_count=25, deadline=None
)
TestToyShopReturns = ToyShopReturns.TestCase
