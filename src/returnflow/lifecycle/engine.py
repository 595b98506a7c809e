"""Run one event through the real statechart, on a machine built once per thread.

A machine is expensive to build and cheap to point at another configuration, so each thread
keeps one :class:`ReturnChart` bound to a small mutable slot; :func:`fire` loads the stored
configuration into the slot, sends the event with its payload and reads the result back.
Nothing in the caller's records changes unless the event succeeded.

>>> fire(("requested", "no_exchange"), "check")
('eligibility_check', 'no_exchange')
>>> fire(("closed", "released"), "hand_in")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
statemachine.exceptions.TransitionNotAllowed: Can't Hand in when in ...
"""

from __future__ import annotations

import threading
from typing import Any

from statemachine.orderedset import OrderedSet

from returnflow.lifecycle.chart import ReturnChart
from returnflow.lifecycle.table import TABLE

__all__ = ["fire", "state_of"]

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


def fire(state: State, event: str, **payload: Any) -> State:
    """Send ``event`` with ``payload`` to a machine in ``state``; return the new state.

    Raises ``TransitionNotAllowed`` when the chart has no transition for it, and whatever a
    validator raises (an :class:`~returnflow.errors.InvalidPayload`) for a bad payload.
    ``state`` must be valid (check it with ``TABLE.is_valid`` first).
    """
    machine, slot = _machine()
    slot.configuration = _full_configuration(state)
    try:
        machine.send(event, **payload)
        return state_of(slot.configuration)
    finally:
        slot.configuration = None
