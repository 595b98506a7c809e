"""How a service and its dispatcher find the policy a decision is made under: the shop's
policy in force for a new return, the version a stored return was opened under for every
later decision, and an effect's return's policy for its retries
(:mod:`returnflow.ports.policies` has the sources)."""

from __future__ import annotations

from returnflow.decisions import facts
from returnflow.decisions import timers as timer_rules
from returnflow.decisions.change import Change
from returnflow.domain.model import ReturnRecord
from returnflow.domain.policy import ReturnPolicy
from returnflow.errors import ConfigurationError, ReturnflowError
from returnflow.lifecycle import effects as fx
from returnflow.ports.policies import PolicySource, StaticPolicy, resolve, the_policy
from returnflow.ports.store import ReturnStore

__all__ = ["PolicyResolution", "PolicySource", "source_of"]


def source_of(policy: ReturnPolicy | None, policies: PolicySource | None) -> PolicySource:
    """The source a service is given: ``policies``, or one ``policy`` for every shop (the
    default policy when neither); both is a :class:`ConfigurationError` naming
    ``policies``."""
    if policy is not None and policies is not None:
        raise ConfigurationError(
            "give one policy for every shop or a source of policies, not both",
            field="policies",
            value=policies,
        )
    return policies if policies is not None else StaticPolicy(policy)


class PolicyResolution:
    """The policy lookups of an object with a ``store`` and a source of ``policies``."""

    store: ReturnStore
    policies: PolicySource

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

    def drain(self, change: Change) -> None:
        """After a decision, by the policy the return was opened under: apply what parked
        facts it can now use, and set when a timer next has something to do for it."""
        policy = self.policy_of(change.record)
        facts.drain(change, policy)
        timer_rules.schedule(change, policy)
