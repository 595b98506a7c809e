"""A ``(state, event) -> target`` table derived once from :class:`ReturnChart`.

Building a python-statemachine instance costs far more than a dictionary look-up, so read
paths (allowed events, listing, projections) use this table and never build a machine.
A test checks that it agrees with the running chart for every configuration.

>>> TABLE.allowed(("label_sent", "on_hold"))  # doctest: +NORMALIZE_WHITESPACE
('cancel', 'cancel_exchange', 'deliver', 'expire', 'flag', 'hand_in', 'receive',
 'release_exchange', 'return_to_origin')
>>> TABLE.target(("label_sent", "no_exchange"), "hand_in")
('in_transit', 'no_exchange')
>>> TABLE.target(("closed", "released"), "hand_in") is None
True
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import attrs

from returnflow.lifecycle.chart import EXCHANGE_REGION, LIFECYCLE_REGION, ReturnChart

__all__ = ["TABLE", "ShopifyReturnStatus", "TransitionTable", "shopify_status"]

State = tuple[str, str]


@attrs.frozen
class TransitionTable:
    """Per region: ``{state: {event: target}}``; events are unique to one region."""

    lifecycle: Mapping[str, Mapping[str, str]]
    exchange: Mapping[str, Mapping[str, str]]
    event_region: Mapping[str, str]
    initial: State
    parents: Mapping[str, tuple[str, ...]]
    validators: Mapping[tuple[str, str], tuple[str, ...]] = attrs.field(factory=dict)
    """``(source leaf, event) -> names of the chart's validator methods`` that transition runs."""

    @classmethod
    def from_chart(cls, chart: type[ReturnChart]) -> TransitionTable:
        regions: dict[str, dict[str, dict[str, str]]] = {
            LIFECYCLE_REGION: {},
            EXCHANGE_REGION: {},
        }
        event_region: dict[str, str] = {}
        initial: dict[str, str] = {}
        parents: dict[str, tuple[str, ...]] = {}
        validators: dict[tuple[str, str], tuple[str, ...]] = {}
        _refuse_callbacks(chart)
        for state in chart.states_map.values():
            if not state.is_atomic:
                continue
            chain: list[str] = []
            parent = state.parent
            while parent is not None:
                chain.append(parent.id)
                parent = parent.parent
            parents[state.id] = tuple(reversed(chain))
            if state.parent is None:
                raise ValueError(f"{state.id} is outside the regions")
            region = state.parent.id
            row = regions[region].setdefault(state.id, {})
            if state.initial:
                initial[region] = state.id
            for transition in state.transitions:
                for event_obj in transition.events:
                    event = str(event_obj.id)
                    targets = [target.id for target in transition.targets]
                    if len(targets) != 1:
                        raise ValueError(f"{state.id}: {event} has {len(targets)} targets")
                    if event in row:
                        raise ValueError(f"{state.id}: {event} has more than one transition")
                    row[event] = targets[0]
                    names = _validators(chart, state.id, event, transition)
                    if names:
                        validators[(state.id, event)] = names
                    if event_region.setdefault(event, region) != region:
                        raise ValueError(f"event {event} is used in two regions")
        return cls(
            lifecycle=regions[LIFECYCLE_REGION],
            exchange=regions[EXCHANGE_REGION],
            event_region=event_region,
            initial=(initial[LIFECYCLE_REGION], initial[EXCHANGE_REGION]),
            parents=parents,
            validators=validators,
        )

    @property
    def lifecycle_states(self) -> tuple[str, ...]:
        return tuple(self.lifecycle)

    @property
    def exchange_states(self) -> tuple[str, ...]:
        return tuple(self.exchange)

    @property
    def events(self) -> tuple[str, ...]:
        return tuple(sorted(self.event_region))

    @property
    def terminal_states(self) -> frozenset[str]:
        """Lifecycle states no event leaves (``closed`` is left only by ``reopen``)."""
        return frozenset(state for state, row in self.lifecycle.items() if not row)

    def is_valid(self, state: State) -> bool:
        return state[0] in self.lifecycle and state[1] in self.exchange

    def allowed(self, state: State) -> tuple[str, ...]:
        """Events allowed in ``state``, sorted."""
        life, exchange = state
        return tuple(sorted([*self.lifecycle[life], *self.exchange[exchange]]))

    def target(self, state: State, event: str) -> State | None:
        """Where ``event`` leads from ``state``; ``None`` when it is not allowed."""
        life, exchange = state
        region = self.event_region.get(event)
        if region == LIFECYCLE_REGION:
            target = self.lifecycle[life].get(event)
            return None if target is None else (target, exchange)
        if region == EXCHANGE_REGION:
            target = self.exchange[exchange].get(event)
            return None if target is None else (life, target)
        return None


_HOOKS = ("on_", "before_", "after_", "enter_", "exit_", "cond_", "unless_")


def _refuse_callbacks(chart: type[ReturnChart]) -> None:
    """The table (and the compiled engine) know a transition by its target and validators
    only: a chart that grew an action, an enter/exit callback or a guard would run code the
    table cannot see, so it is refused at import, naming the method."""
    hooks = sorted(name for name in vars(chart) if name.startswith(_HOOKS))
    if hooks:
        raise ValueError(f"the chart defines callbacks the table cannot compile: {hooks}")


def _validators(
    chart: type[ReturnChart], source: str, event: str, transition: Any
) -> tuple[str, ...]:
    if list(transition.cond):  # ``unless`` is folded into ``cond``
        raise ValueError(f"{source}: {event} has a guard the table cannot compile")
    names = tuple(str(spec.func) for spec in transition.validators)
    for name in names:
        if not callable(getattr(chart, name, None)):
            raise ValueError(f"{source}: {event} names a validator {name!r} the chart lacks")
    return names


TABLE = TransitionTable.from_chart(ReturnChart)


class ShopifyReturnStatus(str, enum.Enum):
    """Shopify's ``ReturnStatus``, for hosts that mirror a return onto the platform."""

    REQUESTED = "REQUESTED"
    OPEN = "OPEN"
    CLOSED = "CLOSED"
    DECLINED = "DECLINED"
    CANCELED = "CANCELED"


_SHOPIFY: dict[str, ShopifyReturnStatus] = {
    "requested": ShopifyReturnStatus.REQUESTED,
    "eligibility_check": ShopifyReturnStatus.REQUESTED,
    "pending_review": ShopifyReturnStatus.REQUESTED,
    "declined": ShopifyReturnStatus.DECLINED,
    "cancelled": ShopifyReturnStatus.CANCELED,
    "expired": ShopifyReturnStatus.CANCELED,
    "closed": ShopifyReturnStatus.CLOSED,
    "reset": ShopifyReturnStatus.CLOSED,
}


def shopify_status(lifecycle_state: str) -> ShopifyReturnStatus:
    """Project a lifecycle state onto Shopify's ``ReturnStatus``.

    Everything between approval and closing is ``OPEN``; a reset return is ``CLOSED`` (its
    accepted lines live on in the new return); an expired one is ``CANCELED``.

    >>> shopify_status("in_transit").value, shopify_status("reset").value
    ('OPEN', 'CLOSED')
    """
    if lifecycle_state not in TABLE.lifecycle:
        raise KeyError(lifecycle_state)
    return _SHOPIFY.get(lifecycle_state, ShopifyReturnStatus.OPEN)
