"""The Shopify adapter (returnflow.integrations.shopify): the platform-returns contract over a
stand-in Admin API, every request's variables against the input objects Shopify documents
(tests/data/shopify/input_objects_2025-07.json), recorded answers, userErrors and throttling."""

from __future__ import annotations

from decimal import Decimal

import httpx

from returnflow.integrations.shopify import ShopifyPlatformReturns, ShopifyShop
from returnflow.ports.commerce import CommercePlatform
from returnflow.ports.platform_returns import PlatformReturns
from returnflow.testing import FakeCommercePlatform
from returnflow.testing.platform_contract import PlatformReturnsContract
from returnflow.testing.shopify import ShopifyAdminMock

LOCATION = "gid://shopify/Location/1"
DOMAINS = {"a.myshopify.com": ("shop-a", "token-a"), "b.myshopify.com": ("shop-b", "token-b")}
SHOPS = {
    "shop-a": ShopifyShop("a.myshopify.com", "token-a"),
    "shop-b": ShopifyShop("b.myshopify.com", "token-b"),
}


def make(
    commerce: FakeCommercePlatform | None = None,
) -> tuple[ShopifyPlatformReturns, ShopifyAdminMock]:
    mock = ShopifyAdminMock(
        commerce or FakeCommercePlatform(), DOMAINS, variant_prices={"V-9": Decimal("25.00")}
    )
    client = httpx.Client(transport=mock.transport())
    return ShopifyPlatformReturns(SHOPS, client=client, restock_location_id=LOCATION), mock


class TestShopifyAdapterContract(PlatformReturnsContract):
    """The port's contract, held by the adapter over a mock that answers like Shopify."""

    mocks: list[ShopifyAdminMock]

    def make_platform(self) -> tuple[PlatformReturns, CommercePlatform]:
        adapter, mock = make()
        self.__dict__.setdefault("mocks", []).append(mock)
        return adapter, mock.commerce
