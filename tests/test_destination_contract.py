"""The DestinationResolver contract (issue 17): StaticDestination and a per-shop resolver
pass it; resolvers with planted bugs fail exactly the tests about their bug."""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Collection, Mapping

import pytest

from returnflow import StaticDestination, UnknownShop
from returnflow.domain.model import OrderSnapshot, ReturnLine
from returnflow.ports.locations import DestinationResolver
from returnflow.testing.port_contracts import DestinationResolverContract

sys.path.insert(0, os.path.dirname(__file__))

from test_port_contracts import contract_failures

EVERY = {
    "test_locations_are_location_ids_the_same_on_every_call",
    "test_every_line_that_ships_back_goes_to_one_of_the_shops_locations",
    "test_the_same_line_gets_the_same_answer_every_time",
    "test_a_shop_it_does_not_serve_is_unknown_shop_or_served_like_any",
    "test_a_return_opened_through_the_service_goes_where_the_resolver_says",
}


class ByShop:
    """A host's resolver: per shop, bulky goods to a hub, outlet goods to a store, the rest
    to the shop's default location; a shop it has no routes for is UnknownShop."""

    def __init__(self, routes: Mapping[str, Mapping[str, str]]) -> None:
        self.routes = {shop: dict(by_tag) for shop, by_tag in routes.items()}

    def _routes(self, shop: str) -> dict[str, str]:
        if shop not in self.routes:
            raise UnknownShop("shop", shop, "no return routes for this shop")
        return self.routes[shop]

    def locations(self, shop: str) -> Collection[str]:
        return sorted(set(self._routes(shop).values()))

    def destination(self, shop: str, order: OrderSnapshot, line: ReturnLine) -> str | None:
        routes = self._routes(shop)
        order_line = order.line(line.order_line_id)
        marks = () if order_line is None else (*order_line.tags, *order_line.collections)
        return next((routes[mark] for mark in marks if mark in routes), None)


ROUTES = {"shop-a": {"bulky": "bulky-hub", "outlet": "outlet-store"}}


class TestStaticDestinationToTheDefault(DestinationResolverContract):
    def make_resolver(self) -> DestinationResolver:
        return StaticDestination()


class TestStaticDestinationToOneLocation(DestinationResolverContract):
    def make_resolver(self) -> DestinationResolver:
        return StaticDestination("berlin", locations=["outlet-store"])


class TestPerShopResolver(DestinationResolverContract):
    def make_resolver(self) -> DestinationResolver:
        return ByShop(ROUTES)


class TestPerShopResolverInAnotherShop(DestinationResolverContract):
    """The class attributes say which shop the contract routes for."""

    SHOP = "shop-usd"
    OTHER_SHOP = "shop-a"
    CURRENCY_OF_ORDERS = "USD"

    def make_resolver(self) -> DestinationResolver:
        return ByShop({"shop-usd": {"bulky": "newark"}})


def test_the_per_shop_resolver_really_routes_lines_apart() -> None:
    contract = TestPerShopResolver()
    resolver = ByShop(ROUTES)
    answers = {
        (line.order_line_id, resolver.destination("shop-a", order, line))
        for order, line in contract._questions(contract.orders())
    }
    assert answers >= {("B1", "bulky-hub"), ("O1", "outlet-store"), ("L1", None)}


# -- planted bugs ----------------------------------------------------------------------------


class MakesUpALocation(ByShop):
    """Sends outlet goods to a store it does not list among the shop's locations."""

    def locations(self, shop: str) -> Collection[str]:
        return [where for where in super().locations(shop) if where != "outlet-store"]


class BlankForBulky(ByShop):
    """Answers a blank location id for bulky goods."""

    def destination(self, shop: str, order: OrderSnapshot, line: ReturnLine) -> str | None:
        where = super().destination(shop, order, line)
        return "" if where == "bulky-hub" else where


class TurnAbout:
    """Spreads lines over its locations in turn: the same line goes elsewhere next time."""

    def __init__(self) -> None:
        self.turn = itertools.cycle(["berlin", "paris", None])

    def locations(self, shop: str) -> Collection[str]:
        return ("berlin", "paris")

    def destination(self, shop: str, order: OrderSnapshot, line: ReturnLine) -> str | None:
        return next(self.turn)


class OnlyKnowsMarkedGoods(ByShop):
    """Looks a line's route up by its tag, and fails on a line with none."""

    def destination(self, shop: str, order: OrderSnapshot, line: ReturnLine) -> str | None:
        order_line = order.line(line.order_line_id)
        assert order_line is not None
        marks = (*order_line.tags, *order_line.collections)
        return self._routes(shop)[marks[0]]


class LocationsAsText(ByShop):
    """Gives its one location as a string, which reads as a collection of letters."""

    def locations(self, shop: str) -> Collection[str]:
        return "bulky-hub"

    def destination(self, shop: str, order: OrderSnapshot, line: ReturnLine) -> str | None:
        return None


class KeyErrorForOtherShops(ByShop):
    """An unknown shop is a raw KeyError, not UnknownShop."""

    def _routes(self, shop: str) -> dict[str, str]:
        return self.routes[shop]


class HalfUnknown(ByShop):
    """Says an unknown shop has no locations, then routes its lines anyway."""

    def locations(self, shop: str) -> Collection[str]:
        return super().locations(shop)

    def destination(self, shop: str, order: OrderSnapshot, line: ReturnLine) -> str | None:
        if shop not in self.routes:
            return None
        return super().destination(shop, order, line)


class NamesTheWrongField(ByShop):
    """An unknown shop is UnknownShop, naming the order instead of the shop."""

    def _routes(self, shop: str) -> dict[str, str]:
        if shop not in self.routes:
            raise UnknownShop("order_id", shop, "no return routes")
        return self.routes[shop]


@pytest.mark.parametrize(
    ("resolver", "failing"),
    [
        (
            lambda: MakesUpALocation(ROUTES),
            {
                "test_every_line_that_ships_back_goes_to_one_of_the_shops_locations",
                "test_a_return_opened_through_the_service_goes_where_the_resolver_says",
            },
        ),
        (
            lambda: BlankForBulky(ROUTES),
            {
                "test_every_line_that_ships_back_goes_to_one_of_the_shops_locations",
                "test_a_return_opened_through_the_service_goes_where_the_resolver_says",
            },
        ),
        (
            TurnAbout,
            {
                "test_the_same_line_gets_the_same_answer_every_time",
                "test_a_return_opened_through_the_service_goes_where_the_resolver_says",
            },
        ),
        (
            lambda: OnlyKnowsMarkedGoods(ROUTES),
            {
                "test_every_line_that_ships_back_goes_to_one_of_the_shops_locations",
                "test_the_same_line_gets_the_same_answer_every_time",
                "test_a_return_opened_through_the_service_goes_where_the_resolver_says",
            },
        ),
        (
            lambda: LocationsAsText(ROUTES),
            EVERY - {"test_the_same_line_gets_the_same_answer_every_time"},
        ),
        (
            lambda: KeyErrorForOtherShops(ROUTES),
            {"test_a_shop_it_does_not_serve_is_unknown_shop_or_served_like_any"},
        ),
        (
            lambda: HalfUnknown(ROUTES),
            {"test_a_shop_it_does_not_serve_is_unknown_shop_or_served_like_any"},
        ),
        (
            lambda: NamesTheWrongField(ROUTES),
            {"test_a_shop_it_does_not_serve_is_unknown_shop_or_served_like_any"},
        ),
    ],
    ids=[
        "makes-up-a-location",
        "blank-for-bulky",
        "turn-about",
        "only-knows-marked-goods",
        "locations-as-text",
        "key-error-for-other-shops",
        "half-unknown",
        "names-the-wrong-field",
    ],
)
def test_the_contract_catches_a_planted_bug(resolver: object, failing: set[str]) -> None:
    made = resolver  # a class or a factory of the buggy resolver

    class Contract(DestinationResolverContract):
        def make_resolver(self) -> DestinationResolver:
            return made()  # type: ignore[operator,no-any-return]

    failures = contract_failures(Contract)
    assert set(failures) == failing, failures
    assert all(isinstance(error, AssertionError) for error in failures.values()), failures


def test_a_good_resolver_passes_every_test_of_the_contract() -> None:
    class Contract(DestinationResolverContract):
        def make_resolver(self) -> DestinationResolver:
            return ByShop(ROUTES)

    assert contract_failures(Contract) == {}
    assert {name for name in dir(Contract) if name.startswith("test_")} == EVERY


def test_orders_with_nothing_to_return_are_said_to_ask_nothing() -> None:
    class Contract(DestinationResolverContract):
        def make_resolver(self) -> DestinationResolver:
            return StaticDestination()

        def orders(self) -> list[OrderSnapshot]:
            return []

    with pytest.raises(AssertionError, match="no line that can be returned"):
        Contract().test_every_line_that_ships_back_goes_to_one_of_the_shops_locations()
