"""The toy shop's platform adapter passes returnflow's commerce-platform contract."""

from __future__ import annotations

from toy_platform import ToyShopPlatform

from returnflow.testing.port_contracts import CommercePlatformContract


class TestToyShopPlatform(CommercePlatformContract):
    def make_platform(self) -> ToyShopPlatform:
        return ToyShopPlatform()
