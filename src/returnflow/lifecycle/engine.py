"""Fire one event: the compiled chart on the write path, the python-statemachine chart as the
reference.

:class:`~returnflow.lifecycle.chart.ReturnChart` is the one definition of states,
transitions and validators. At import it is compiled into
:data:`~returnflow.lifecycle.table.TABLE` (the target of every ``(state, event)``) plus the
names of the validators each transition runs; :func:`fire_compiled` looks the target up
and calls those same validator methods, which is what the write path runs.
:func:`fire_chart` sends the event to a real machine (built once per thread and pointed at
each configuration), the reference a differential test holds the compiled form to, and the
engine a service built with ``engine="chart"`` uses (:func:`using`).

Both raise ``TransitionNotAllowed`` when the chart has no transition for the event, and what
a validator raises (an :class:`~returnflow.errors.InvalidPayload`) for a bad payload.

>>> fire(("requested", "no_exchange"), "check")
('eligibility_check', 'no_exchange')
>>> fire_chart(("requested", "no_exchange"), "check")
('eligibility_check', 'no_exchange')
>>> fire(("closed", "released"), "hand_in")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
statemachine.exceptions.TransitionNotAllowed: Can't Hand in when in ...
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from statemachine.event import Event
from statemachine.exceptions import TransitionNotAllowed
from statemachine.orderedset import OrderedSet

from returnflow.lifecycle.chart import ReturnChart
from returnflow.lifecycle.table import TABLE

__all__ = ["ENGINES", "fire", "fire_chart", "fire_compiled", "state_of", "using"]

State = tuple[str, str]


class _Slot:
    """The model a thread's machine is bound to; its ``configuration`` is swapped per event."""

    def __init__(self) -> None:
        self.configuration: Any = None


class _Local(threading.local):
    machine: ReturnChart | None = None
    slot: _Slot | None = None


_local = _Local()


def _full_configuration(state: State) -> OrderedSet[str]:
    life, exchange = state
    values: list[str] = []
    for leaf in (life, exchange):
        for ancestor in TABLE.parents[leaf]:
            if ancestor not in values:
                values.append(ancestor)
    return OrderedSet([*values, life, exchange])


def state_of(configuration: Any) -> State:
    """The ``(lifecycle, exchange)`` leaves of a machine configuration."""
    values = set(configuration)
    life = next(value for value in values if value in TABLE.lifecycle)
    exchange = next(value for value in values if value in TABLE.exchange)
    return (life, exchange)


def _machine() -> tuple[ReturnChart, _Slot]:
    machine, slot = _local.machine, _local.slot
    if machine is None or slot is None:
        slot = _Slot()
        machine = ReturnChart(model=slot, state_field="configuration")
        _local.machine, _local.slot = machine, slot
    return machine, slot


def fire_chart(state: State, event: str, **payload: Any) -> State:
    """Send ``event`` with ``payload`` to a python-statemachine machine in ``state``; return
    the new state. ``state`` must be valid (check it with ``TABLE.is_valid`` first)."""
    machine, slot = _machine()
    slot.configuration = _full_configuration(state)
    try:
        machine.send(event, **payload)
        return state_of(slot.configuration)
    finally:
        slot.configuration = None


_EVENTS: dict[str, Event] = {
    str(event.id): event
    for state in ReturnChart.states_map.values()
    for transition in state.transitions
    for event in transition.events
}


def fire_compiled(state: State, event: str, **payload: Any) -> State:
    """What :func:`fire_chart` answers, from the compiled table: the target, after the
    transition's validators (the chart's own methods) accepted ``payload``."""
    target = TABLE.target(state, event)
    if target is None:
        states = ReturnChart.states_map
        configuration = OrderedSet(states[name] for name in _full_configuration(state))
        known = _EVENTS.get(event) or Event(id=event, name=event)  # as the chart names it
        raise TransitionNotAllowed(known, configuration)
    source = state[0] if TABLE.event_region[event] == "lifecycle" else state[1]
    for name in TABLE.validators.get((source, event), ()):
        getattr(ReturnChart, name)(None, **payload)
    return target


Engine = Callable[..., State]

ENGINES: Mapping[str, Engine] = {"compiled": fire_compiled, "chart": fire_chart}
"""The engines a service can be built with (``ReturnsService(engine=...)``)."""

_ENGINE: ContextVar[Engine] = ContextVar("returnflow_engine", default=fire_compiled)


def fire(state: State, event: str, **payload: Any) -> State:
    """Fire ``event`` on the engine in use (:func:`using`; compiled by default)."""
    return _ENGINE.get()(state, event, **payload)


@contextmanager
def using(name: str) -> Iterator[None]:
    """Fire with the engine named ``name`` (a key of :data:`ENGINES`) inside the block.
    Raises ``KeyError`` for another name."""
    token = _ENGINE.set(ENGINES[name])
    try:
        yield
    finally:
        _ENGINE.reset(token)
