"""How a service and its dispatcher find the policy a decision is made under: the shop's
policy in force for a new return, the version a stored return was opened under for every
later decision, and an effect's return's policy for its retries
(:mod:`returnflow.ports.policies` has the sources)."""

from __future__ import annotations

import random
from datetime import timedelta

from returnflow import platform_handlers as native
from returnflow._delivery import wait_before_retry
from returnflow.decisions.change import Change
from returnflow.decisions.follow_up import follow_up
from returnflow.domain.model import ReturnRecord
from returnflow.domain.policy import ReturnPolicy
from returnflow.errors import ConfigurationError, PortError, ReturnflowError
from returnflow.lifecycle import effects as fx
from returnflow.ports.platform_returns import PlatformReturns
from returnflow.ports.policies import (
    PolicySource,
    ShopPolicies,
    StaticPolicy,
    resolve,
    the_policy,
)
from returnflow.ports.store import ReturnStore

__all__ = ["PolicyResolution", "PolicySource", "source_of"]


def source_of(
    policy: ReturnPolicy | None,
    policies: PolicySource | None,
    platform_returns: PlatformReturns | None = None,
) -> PolicySource:
    """The source a service is given: ``policies``, or one ``policy`` for every shop (the
    default policy when neither); both is a :class:`ConfigurationError` naming
    ``policies``. A :class:`ShopPolicies` with a shop in native mode needs
    ``platform_returns`` (else a ``ConfigurationError`` naming ``platform_returns``)."""
    if policy is not None and policies is not None:
        raise ConfigurationError(
            "give one policy for every shop or a source of policies, not both",
            field="policies",
            value=policies,
        )
    source = policies if policies is not None else StaticPolicy(policy)
    for known in source.every() if isinstance(source, ShopPolicies) else ():
        native.required(known, platform_returns)
    return source


class PolicyResolution:
    """The policy lookups of an object with a ``store`` and a source of ``policies``."""

    store: ReturnStore
    policies: PolicySource
    rng: random.Random

    @property
    def policy(self) -> ReturnPolicy:
        """The one policy of every shop (a :class:`StaticPolicy` source); setting it makes
        the source that. With another source this raises
        :class:`~returnflow.errors.ConfigurationError`: use :meth:`policy_for`."""
        return the_policy(self.policies)

    @policy.setter
    def policy(self, policy: ReturnPolicy) -> None:
        self.policies = StaticPolicy(policy)

    def policy_for(self, shop: str, version: str | None = None) -> ReturnPolicy:
        """The policy of ``shop`` (in force, or its ``version``) from :attr:`policies`;
        anything but a :class:`ReturnPolicy` from the source is a ``ConfigurationError``."""
        return resolve(self.policies, shop, version)

    def policy_of(self, record: ReturnRecord) -> ReturnPolicy:
        """The policy ``record`` was opened under (its shop's, at its ``policy_version``)."""
        return self.policy_for(record.shop, record.policy_version)

    def retry_policy(self, effect: fx.Effect) -> ReturnPolicy:
        """The policy whose retry settings govern ``effect``: its return's, else its shop's
        in force, else the defaults (a return or shop that cannot be read still retries)."""
        try:
            return self.policy_of(self.store.get(effect.shop, effect.return_id))
        except ReturnflowError:
            try:
                return self.policy_for(effect.shop)
            except ReturnflowError:
                return ReturnPolicy()

    def failed_try(
        self, effect: fx.Effect, attempt: int, error: Exception
    ) -> tuple[bool, timedelta]:
        """After try ``attempt`` of ``effect`` raised ``error``: whether it is given up (not
        retryable, or the effect's :meth:`retry_policy` allows no more tries) and the wait
        before the next: its back-off, with jitter, or the port's ``retry_after`` when that is
        longer (``returnflow._delivery.wait_before_retry``)."""
        policy = self.retry_policy(effect)
        retryable = not isinstance(error, PortError) or error.retryable
        give_up = not retryable or attempt >= policy.max_attempts
        return give_up, wait_before_retry(policy.backoff(attempt, self.rng.random()), error)

    def drain(self, change: Change) -> None:
        """After a decision, by the policy the return was opened under:
        :func:`~returnflow.decisions.follow_up.follow_up` (parked facts, native mode's
        platform return, timers)."""
        follow_up(change, self.policy_of(change.record))
