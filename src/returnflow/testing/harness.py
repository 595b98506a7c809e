"""A service wired to fakes, a manual clock and predictable ids: for tests, demos and docs.

>>> from returnflow.testing import Harness
>>> harness = Harness()
>>> harness.clock.now().isoformat()
'2026-01-15T12:00:00+00:00'
>>> harness.ids(), harness.ids()
('R0001', 'R0002')
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import attrs

from returnflow.domain.policy import PlatformMode, ReturnPolicy
from returnflow.ports.locations import DestinationResolver
from returnflow.ports.policies import PolicySource, ShopPolicies
from returnflow.ports.store import ReturnStore
from returnflow.service import DispatchReport, ReturnsService
from returnflow.stores.memory import MemoryStore
from returnflow.testing.fakes import FakePorts
from returnflow.testing.platform_returns import FakePlatformReturns

__all__ = ["Harness", "ManualClock", "SequentialIds"]


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)
        if self._now.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start")

    def now(self) -> datetime:
        return self._now

    __call__ = now

    def advance(self, **delta: float) -> datetime:
        """Move forward by ``timedelta(**delta)``; return the new time."""
        self._now += timedelta(**delta)
        return self._now


class SequentialIds:
    """Return ids ``R0001``, ``R0002``, ... (or with another prefix)."""

    def __init__(self, prefix: str = "R") -> None:
        self._prefix = prefix
        self._next = 0

    def __call__(self) -> str:
        self._next += 1
        return f"{self._prefix}{self._next:04d}"


@attrs.define
class Harness:
    """Everything a test needs: ``ports`` (fakes), ``store``, ``clock``, ``ids``, ``service``."""

    policy: ReturnPolicy = attrs.field(factory=ReturnPolicy)
    ports: FakePorts = attrs.field(factory=FakePorts)
    store: ReturnStore = attrs.field(factory=MemoryStore)
    clock: ManualClock = attrs.field(factory=ManualClock)
    ids: SequentialIds = attrs.field(factory=SequentialIds)
    auto_dispatch: bool = True
    engine: str = "compiled"
    policies: PolicySource | None = None
    """Policies per shop (:class:`~returnflow.ports.policies.ShopPolicies`); when given,
    ``policy`` is not used."""
    platform_returns: FakePlatformReturns | None = None
    """The platform's return objects; made on ``ports.commerce`` in native mode."""
    destinations: DestinationResolver | None = None
    """Where returned lines go back to (:mod:`returnflow.ports.locations`); ``None``: the
    shop's default location."""
    service: ReturnsService = attrs.field(init=False)

    def dispatch_due(self) -> DispatchReport:
        """Let any retry backoff pass on the clock, then deliver what is due."""
        known = self.policies.every() if isinstance(self.policies, ShopPolicies) else ()
        cap = max(policy.retry_cap_seconds for policy in (self.policy, *known))
        self.clock.advance(seconds=cap * 1.25 + 1)
        return self.service.dispatch_pending()

    def __attrs_post_init__(self) -> None:
        known = self.policies.every() if isinstance(self.policies, ShopPolicies) else ()
        native = (self.policy, *known) if self.policies is None else known
        if self.platform_returns is None and any(
            policy.platform_mode is PlatformMode.NATIVE for policy in native
        ):
            self.platform_returns = FakePlatformReturns(self.ports.commerce)
        self.service = ReturnsService(
            store=self.store,
            commerce=self.ports.commerce,
            warehouse=self.ports.warehouse,
            carrier=self.ports.carrier,
            payments=self.ports.payments,
            notifier=self.ports.notifier,
            events=self.ports.events,
            policy=self.policy if self.policies is None else None,
            policies=self.policies,
            clock=self.clock,
            ids=self.ids,
            auto_dispatch=self.auto_dispatch,
            engine=self.engine,
            platform_returns=self.platform_returns,
            destinations=self.destinations,
        )
