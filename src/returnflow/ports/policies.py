"""Where a shop's return policy comes from: the :class:`PolicySource` port and the two
sources that ship, one policy for every shop (:class:`StaticPolicy`, what
``ReturnsService(policy=...)`` builds) and a policy per shop, with its versions
(:class:`ShopPolicies`).

The service asks the source at the moment it decides: a new return gets the policy in
force for its shop and records its :attr:`~returnflow.domain.policy.ReturnPolicy.version`
(``ReturnRecord.policy_version``); every later decision of that return (approval,
receipts, completion, timers, retries) asks for that version, so a policy changed while
the return is open does not change the rules it was opened under.

>>> from returnflow.domain.policy import ReturnPolicy
>>> source = ShopPolicies({"shop-a": [ReturnPolicy(version="2025", window_days=30),
...                                   ReturnPolicy(version="2026", window_days=14)]})
>>> source.policy_for("shop-a").window_days, source.policy_for("shop-a", "2025").window_days
(14, 30)
>>> source.policy_for("shop-b")
Traceback (most recent call last):
...
returnflow.errors.UnknownShop: shop='shop-b': no return policy for this shop
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from returnflow.domain.policy import ReturnPolicy
from returnflow.errors import ConfigurationError, UnknownShop

__all__ = ["PolicySource", "ShopPolicies", "StaticPolicy", "resolve", "the_policy"]


class PolicySource(Protocol):
    """Resolves the return policy of a shop; a host may implement it over its own settings
    (a database table, a config service). It is asked on every decision, so an
    implementation should answer from memory or a cache."""

    def policy_for(self, shop: str, version: str | None = None) -> ReturnPolicy:
        """The policy in force for ``shop`` now (``version`` ``None``), or the one whose
        :attr:`~ReturnPolicy.version` is ``version`` (a stored return's).

        Raises :class:`~returnflow.errors.UnknownShop` (field ``shop``) for a shop it has no
        policy for, and :class:`~returnflow.errors.ConfigurationError` (field
        ``policy_version``) for a version of the shop it no longer serves."""
        ...


class StaticPolicy:
    """One policy for every shop and every version: the default source. A stored return's
    version is not looked up (there is only one): replacing the policy applies it to the
    returns already open, as a new ``ReturnsService(policy=...)`` always did."""

    def __init__(self, policy: ReturnPolicy | None = None) -> None:
        if policy is not None and not isinstance(policy, ReturnPolicy):
            raise ConfigurationError("must be a ReturnPolicy", field="policy", value=policy)
        self.policy = policy or ReturnPolicy()

    def policy_for(self, shop: str, version: str | None = None) -> ReturnPolicy:
        return self.policy

    def __repr__(self) -> str:
        return f"StaticPolicy({self.policy!r})"


class ShopPolicies:
    """A policy per shop, each with the versions it has had, the last one in force; shops
    not named get ``default`` (``None``: they are refused with
    :class:`~returnflow.errors.UnknownShop`).

    ``policies`` maps a shop to a :class:`ReturnPolicy` or to a sequence of them, oldest
    first. Versions of one shop must differ (else :class:`ConfigurationError` naming
    ``policies[<shop>]``); keep an old version for as long as a return opened under it may
    still be open: asking for a version the shop does not have is a
    :class:`ConfigurationError`."""

    def __init__(
        self,
        policies: Mapping[str, ReturnPolicy | Iterable[ReturnPolicy]],
        *,
        default: ReturnPolicy | None = None,
    ) -> None:
        if not isinstance(policies, Mapping):
            raise ConfigurationError("must map shops to policies", field="policies", value=policies)
        if default is not None and not isinstance(default, ReturnPolicy):
            raise ConfigurationError("must be a ReturnPolicy", field="default", value=default)
        self.default = default
        self._versions: dict[str, dict[str, ReturnPolicy]] = {}
        self._current: dict[str, ReturnPolicy] = {}
        for shop, given in policies.items():
            field = f"policies[{shop!r}]"
            if not isinstance(shop, str) or not shop:
                raise ConfigurationError(
                    "a shop is a non-empty string", field="policies", value=shop
                )
            listed = [given] if isinstance(given, ReturnPolicy) else _listed(field, given)
            versions: dict[str, ReturnPolicy] = {}
            for policy in listed:
                if not isinstance(policy, ReturnPolicy):
                    raise ConfigurationError("must be a ReturnPolicy", field=field, value=policy)
                if policy.version in versions:
                    raise ConfigurationError(
                        f"version {policy.version!r} appears twice",
                        field=field,
                        value=policy.version,
                    )
                versions[policy.version] = policy
            if not listed:
                raise ConfigurationError("a shop needs at least one policy", field=field, value=[])
            self._versions[shop] = versions
            self._current[shop] = listed[-1]

    def policy_for(self, shop: str, version: str | None = None) -> ReturnPolicy:
        versions = self._versions.get(shop)
        if versions is None:
            if self.default is None:
                raise UnknownShop("shop", shop, "no return policy for this shop")
            return self.default
        if version is None:
            return self._current[shop]
        found = versions.get(version)
        if found is None:
            raise ConfigurationError(
                f"shop {shop!r} has no such policy version (has {sorted(versions)})",
                field="policy_version",
                value=version,
            )
        return found

    def every(self) -> tuple[ReturnPolicy, ...]:
        """Every policy it holds: each shop's versions, oldest first, then ``default``."""
        held = [policy for versions in self._versions.values() for policy in versions.values()]
        return (*held, *([self.default] if self.default is not None else []))

    @property
    def shops(self) -> tuple[str, ...]:
        """The shops named, in the order given."""
        return tuple(self._versions)


def _listed(field: str, given: object) -> list[ReturnPolicy]:
    if isinstance(given, (str, bytes, Mapping)) or not isinstance(given, Iterable):
        raise ConfigurationError(
            "must be a ReturnPolicy or a sequence of them", field=field, value=given
        )
    return list(given)


def resolve(source: PolicySource, shop: str, version: str | None = None) -> ReturnPolicy:
    """``source.policy_for(shop, version)``, checked: an answer that is not a
    :class:`ReturnPolicy` is a :class:`ConfigurationError` naming ``policies``."""
    policy = source.policy_for(shop, version)
    if not isinstance(policy, ReturnPolicy):
        raise ConfigurationError("must answer a ReturnPolicy", field="policies", value=policy)
    return policy


def the_policy(source: PolicySource) -> ReturnPolicy:
    """The one policy of a :class:`StaticPolicy`; any other source has one per shop, and
    asking for "the" policy is a :class:`ConfigurationError` naming ``policy``."""
    if isinstance(source, StaticPolicy):
        return source.policy
    raise ConfigurationError(
        "policies differ per shop: use policy_for(shop)", field="policy", value=source
    )
