"""The transition table agrees with the running statechart, and the engine facts we rely on.

Read paths use :data:`returnflow.lifecycle.table.TABLE` and never build a machine; writes run
:func:`returnflow.lifecycle.engine.fire_chart` on the real :class:`ReturnChart` (the reference
the compiled engine is held to, in ``test_compiled_chart.py``). These tests check
that both give the same answer for every configuration and every event, and pin the
python-statemachine behaviour (flags, validators, threads) the engine depends on.
"""

from __future__ import annotations

import itertools
import random
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from statemachine.exceptions import TransitionNotAllowed
from statemachine.orderedset import OrderedSet

from returnflow.domain.model import DeclineReason
from returnflow.errors import InvalidPayload
from returnflow.lifecycle import chart as chart_module
from returnflow.lifecycle.chart import EXCHANGE_REGION, LIFECYCLE_REGION, ReturnChart
from returnflow.lifecycle.engine import fire_chart as fire
from returnflow.lifecycle.engine import state_of
from returnflow.lifecycle.table import TABLE, ShopifyReturnStatus, shopify_status

State = tuple[str, str]

REQUIRED_LIFECYCLE = frozenset(
    {
        "requested",
        "eligibility_check",
        "pending_review",
        "approved",
        "declined",
        "label_sent",
        "in_transit",
        "item_received",
        "refunded",
        "closed",
        "cancelled",
        "expired",
        "needs_review",
        "reset",
    }
)
EXCHANGE_STATES = frozenset(
    {"no_exchange", "awaiting_payment", "on_hold", "released", "exchange_cancelled"}
)

# The data each validated event needs (see the validators on ReturnChart).
PAYLOADS: dict[str, dict[str, Any]] = {
    "decline": {"reason": DeclineReason.OTHER},
    "receive": {"receipts": [object()]},
    "flag": {"reason": "x"},
    "reset_return": {"child_id": "C1"},
    "release_exchange": {"covered": True},
}

ALL_STATES: list[State] = list(itertools.product(TABLE.lifecycle_states, TABLE.exchange_states))
REFUSED = "refused"


def _state_id(state: State) -> str:
    return "/".join(state)


def payload(event: str) -> dict[str, Any]:
    return PAYLOADS.get(event, {})


class _Model:
    """A bare model the chart stores its configuration on."""

    def __init__(self, configuration: Any = None) -> None:
        self.configuration = configuration


def restored(state: State, chart: type[ReturnChart] = ReturnChart) -> tuple[ReturnChart, _Model]:
    """A fresh machine restored to ``state`` through its model (as a stored record would be)."""
    life, exchange = state
    model = _Model(OrderedSet(["process", LIFECYCLE_REGION, EXCHANGE_REGION, life, exchange]))
    return chart(model=model, state_field="configuration"), model


def outcome(state: State, event: str) -> State | str:
    """What ``fire`` does: the new state, or ``REFUSED`` for ``TransitionNotAllowed``."""
    try:
        return fire(state, event, **payload(event))
    except TransitionNotAllowed:
        return REFUSED


def predicted(state: State, event: str) -> State | str:
    target = TABLE.target(state, event)
    return REFUSED if target is None else target


# -- 1. states ------------------------------------------------------------------------------


def test_lifecycle_region_has_the_required_states() -> None:
    assert set(TABLE.lifecycle_states) >= REQUIRED_LIFECYCLE
    lifecycle = ReturnChart.states_map[LIFECYCLE_REGION]
    assert {state.id for state in lifecycle.states} == set(TABLE.lifecycle_states)


def test_exchange_region_has_exactly_the_exchange_states() -> None:
    assert set(TABLE.exchange_states) == EXCHANGE_STATES
    exchange = ReturnChart.states_map[EXCHANGE_REGION]
    assert {state.id for state in exchange.states} == EXCHANGE_STATES


def test_initial_state() -> None:
    assert TABLE.initial == ("requested", "no_exchange")
    machine = ReturnChart()
    assert set(machine.configuration_values) == {
        "process",
        LIFECYCLE_REGION,
        EXCHANGE_REGION,
        "requested",
        "no_exchange",
    }
    assert state_of(machine.configuration_values) == TABLE.initial


def test_table_knows_every_event_of_the_chart() -> None:
    assert set(TABLE.events) == {event.id for event in ReturnChart.events}
    assert set(PAYLOADS) <= set(TABLE.events)


# -- 2. agreement, for every configuration ----------------------------------------------------


@pytest.mark.parametrize("state", ALL_STATES, ids=_state_id)
def test_allowed_events_agree_with_a_restored_machine(state: State) -> None:
    machine, _ = restored(state)
    assert state_of(machine.configuration_values) == state
    chart_allowed = [event.id for event in machine.allowed_events]
    assert len(chart_allowed) == len(set(chart_allowed))
    assert set(chart_allowed) == set(TABLE.allowed(state))
    assert list(TABLE.allowed(state)) == sorted(set(TABLE.allowed(state)))


@pytest.mark.parametrize("state", ALL_STATES, ids=_state_id)
def test_every_event_does_what_the_table_says(state: State) -> None:
    results = {event: outcome(state, event) for event in TABLE.events}
    assert results == {event: predicted(state, event) for event in TABLE.events}


@pytest.mark.parametrize("state", ALL_STATES, ids=_state_id)
def test_an_event_moves_only_its_own_region(state: State) -> None:
    life, exchange = state
    for event in TABLE.allowed(state):
        new_life, new_exchange = fire(state, event, **payload(event))
        if TABLE.event_region[event] == LIFECYCLE_REGION:
            assert new_exchange == exchange, event
        else:
            assert new_life == life, event


# -- 3. validators ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "event", "bad_payload", "field"),
    [
        pytest.param(("eligibility_check", "no_exchange"), "decline", {}, "reason", id="decline"),
        pytest.param(
            ("pending_review", "on_hold"),
            "decline",
            {"reason": "OTHER"},
            "reason",
            id="decline-plain-string",
        ),
        pytest.param(("approved", "no_exchange"), "receive", {}, "receipts", id="receive"),
        pytest.param(
            ("in_transit", "released"), "receive", {"receipts": []}, "receipts", id="receive-empty"
        ),
        pytest.param(("approved", "on_hold"), "flag", {"reason": ""}, "reason", id="flag-empty"),
        pytest.param(("needs_review", "no_exchange"), "flag", {}, "reason", id="flag-missing"),
        pytest.param(
            ("item_received", "no_exchange"), "reset_return", {}, "child_id", id="reset_return"
        ),
        pytest.param(
            ("in_transit", "on_hold"), "release_exchange", {}, "release_exchange", id="release"
        ),
        pytest.param(
            ("closed", "on_hold"),
            "release_exchange",
            {"decided_by": ""},
            "release_exchange",
            id="release-nobody-decided",
        ),
    ],
)
def test_a_validator_refuses_a_bad_payload_and_the_engine_recovers(
    state: State, event: str, bad_payload: dict[str, Any], field: str
) -> None:
    assert TABLE.target(state, event) is not None
    with pytest.raises(InvalidPayload) as caught:
        fire(state, event, **bad_payload)
    assert caught.value.field == field
    # The thread's machine is usable again: the same event with a good payload goes through,
    # and so does another event from the same state.
    assert fire(state, event, **payload(event)) == TABLE.target(state, event)
    other = next(name for name in TABLE.allowed(state) if name != event)
    assert fire(state, other, **payload(other)) == TABLE.target(state, other)


def test_the_engine_recovers_after_a_refused_transition() -> None:
    state = ("closed", "released")
    with pytest.raises(TransitionNotAllowed):
        fire(state, "hand_in")
    assert fire(state, "reopen") == ("needs_review", "released")
    assert fire(("label_sent", "on_hold"), "hand_in") == ("in_transit", "on_hold")


# -- 4. engine flags: nothing is swallowed ----------------------------------------------------


def test_chart_flags() -> None:
    assert ReturnChart.allow_event_without_transition is False
    assert ReturnChart.catch_errors_as_events is False
    assert ReturnChart.atomic_configuration_update is True


@pytest.mark.parametrize("state", [TABLE.initial, ("closed", "released"), ("reset", "on_hold")])
def test_an_unknown_event_is_refused(state: State) -> None:
    assert TABLE.target(state, "no_such_event") is None
    assert "no_such_event" not in TABLE.allowed(state)
    with pytest.raises(TransitionNotAllowed):
        fire(state, "no_such_event")
    machine, model = restored(state)
    with pytest.raises(TransitionNotAllowed):
        machine.send("no_such_event")
    assert state_of(model.configuration) == state


def test_a_validator_error_propagates_from_fire() -> None:
    with pytest.raises(InvalidPayload, match="flag needs a reason"):
        fire(("approved", "no_exchange"), "flag")


def _raising(name: str, *, catch_errors_as_events: bool) -> type[ReturnChart]:
    def boom(self: ReturnChart, **_: Any) -> None:
        raise RuntimeError("boom")

    attrs = {name: boom, "catch_errors_as_events": catch_errors_as_events}
    return type("RaisingChart", (ReturnChart,), attrs)


@pytest.mark.parametrize(
    "callback", ["before_flag", "on_exit_approved", "on_flag", "on_enter_needs_review"]
)
def test_a_callback_error_propagates_and_leaves_the_model_untouched(callback: str) -> None:
    machine, model = restored(
        ("approved", "on_hold"), _raising(callback, catch_errors_as_events=False)
    )
    with pytest.raises(RuntimeError, match="boom"):
        machine.send("flag", reason="x")
    assert state_of(model.configuration) == ("approved", "on_hold")


def test_catch_errors_as_events_would_swallow_a_callback_error() -> None:
    """Why the flag matters: with the StateChart default the error is silently dropped."""
    chart = _raising("on_enter_needs_review", catch_errors_as_events=True)
    machine, model = restored(("approved", "on_hold"), chart)
    machine.send("flag", reason="x")
    assert state_of(model.configuration) == ("needs_review", "on_hold")


def test_validators_raise_even_when_errors_are_caught_as_events() -> None:
    """Validators are called without the error handler, whatever catch_errors_as_events says."""
    chart = type("Catching", (ReturnChart,), {"catch_errors_as_events": True})
    machine, model = restored(("approved", "on_hold"), chart)
    with pytest.raises(InvalidPayload):
        machine.send("flag", reason="")
    assert state_of(model.configuration) == ("approved", "on_hold")


# -- 5. regions and terminal states -----------------------------------------------------------


def test_every_event_belongs_to_exactly_one_region() -> None:
    assert set(TABLE.event_region) == set(TABLE.events)
    assert set(TABLE.event_region.values()) == {LIFECYCLE_REGION, EXCHANGE_REGION}
    lifecycle_events = {event for row in TABLE.lifecycle.values() for event in row}
    exchange_events = {event for row in TABLE.exchange.values() for event in row}
    assert lifecycle_events.isdisjoint(exchange_events)
    assert lifecycle_events | exchange_events == set(TABLE.events)
    for event in TABLE.events:
        expected = LIFECYCLE_REGION if event in lifecycle_events else EXCHANGE_REGION
        assert TABLE.event_region[event] == expected, event


def test_terminal_states() -> None:
    assert TABLE.terminal_states == {"declined", "cancelled", "expired", "reset"}
    for life in TABLE.terminal_states:
        for exchange in TABLE.exchange_states:
            allowed = TABLE.allowed((life, exchange))
            assert all(TABLE.event_region[event] == EXCHANGE_REGION for event in allowed)


def test_closed_is_left_only_by_reopen() -> None:
    assert dict(TABLE.lifecycle["closed"]) == {"reopen": "needs_review"}
    reopen_sources = [life for life, row in TABLE.lifecycle.items() if "reopen" in row]
    assert reopen_sources == ["closed"]


# -- 6. Shopify projection --------------------------------------------------------------------

SHOPIFY = {
    "requested": ShopifyReturnStatus.REQUESTED,
    "eligibility_check": ShopifyReturnStatus.REQUESTED,
    "pending_review": ShopifyReturnStatus.REQUESTED,
    "approved": ShopifyReturnStatus.OPEN,
    "label_sent": ShopifyReturnStatus.OPEN,
    "in_transit": ShopifyReturnStatus.OPEN,
    "delivered": ShopifyReturnStatus.OPEN,
    "item_received": ShopifyReturnStatus.OPEN,
    "refunded": ShopifyReturnStatus.OPEN,
    "needs_review": ShopifyReturnStatus.OPEN,
    "closed": ShopifyReturnStatus.CLOSED,
    "reset": ShopifyReturnStatus.CLOSED,
    "declined": ShopifyReturnStatus.DECLINED,
    "cancelled": ShopifyReturnStatus.CANCELED,
    "expired": ShopifyReturnStatus.CANCELED,
}


@pytest.mark.parametrize(("life", "status"), SHOPIFY.items())
def test_shopify_status(life: str, status: ShopifyReturnStatus) -> None:
    assert shopify_status(life) is status


def test_every_lifecycle_state_has_a_projection() -> None:
    assert set(SHOPIFY) == set(TABLE.lifecycle_states)
    for life in TABLE.lifecycle_states:
        assert isinstance(shopify_status(life), ShopifyReturnStatus)


@pytest.mark.parametrize("name", ["no_such_state", "on_hold", "lifecycle", ""])
def test_shopify_status_of_an_unknown_state(name: str) -> None:
    with pytest.raises(KeyError):
        shopify_status(name)


# -- 7. Mermaid -------------------------------------------------------------------------------


def test_mermaid_diagram() -> None:
    diagram = f"{ReturnChart:mermaid}"
    assert diagram.startswith("stateDiagram-v2")
    declared = set(re.findall(r'^\s*state "[^"]*" as (\w+)', diagram, flags=re.MULTILINE))
    assert set(TABLE.lifecycle_states) | set(TABLE.exchange_states) <= declared
    lines = {line.strip() for line in diagram.splitlines()}
    for rows in (TABLE.lifecycle, TABLE.exchange):
        for source, row in rows.items():
            for target in row.values():
                assert any(line.startswith(f"{source} --> {target} : ") for line in lines), (
                    source,
                    target,
                )


# -- 8. threads -------------------------------------------------------------------------------

WORKERS = 4
EVENTS_PER_WORKER = 200


def test_fire_is_thread_safe() -> None:
    barrier = threading.Barrier(WORKERS, timeout=30)

    def work(seed: int) -> tuple[int, list[tuple[State, str, State | str]]]:
        rng = random.Random(seed)
        jobs = [
            (rng.choice(ALL_STATES), rng.choice(TABLE.events)) for _ in range(EVENTS_PER_WORKER)
        ]
        barrier.wait()  # all workers are alive and start together
        return threading.get_ident(), [
            (state, event, outcome(state, event)) for state, event in jobs
        ]

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        results = list(pool.map(work, range(WORKERS)))

    assert len({ident for ident, _ in results}) == WORKERS
    fired = [entry for _, entries in results for entry in entries]
    assert len(fired) == WORKERS * EVENTS_PER_WORKER
    mismatches = [
        (state, event, got) for state, event, got in fired if got != predicted(state, event)
    ]
    assert mismatches == []
    assert any(got != REFUSED for _, _, got in fired)
    assert any(got == REFUSED for _, _, got in fired)


# -- 9. read paths never build a machine ------------------------------------------------------


@pytest.fixture
def constructions(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts every ReturnChart (or subclass) built while the test runs."""
    built: list[int] = []
    original: Callable[..., None] = ReturnChart.__init__

    def counting_init(self: ReturnChart, *args: Any, **kwargs: Any) -> None:
        built.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(chart_module.ReturnChart, "__init__", counting_init)
    return built


def test_the_counter_sees_every_machine_built(constructions: list[int]) -> None:
    restored(TABLE.initial)
    assert len(constructions) == 1

    def fire_twice() -> None:
        fire(TABLE.initial, "check")
        fire(("eligibility_check", "no_exchange"), "auto_approve")

    thread = threading.Thread(target=fire_twice)
    thread.start()
    thread.join()
    assert len(constructions) == 2  # one machine for the new thread, reused for both events


def test_read_paths_never_build_a_machine(constructions: list[int]) -> None:
    rng = random.Random(20240501)
    records = [rng.choice(ALL_STATES) for _ in range(10_000)]
    events = [rng.choice(TABLE.events) for _ in records]

    allowed = [TABLE.allowed(state) for state in records]
    targets = [TABLE.target(state, event) for state, event in zip(records, events, strict=True)]
    statuses = [shopify_status(life) for life, _ in records]

    assert constructions == []
    assert all(TABLE.is_valid(state) for state in records)
    assert len(allowed) == len(targets) == len(statuses) == 10_000
    assert set(statuses) == set(ShopifyReturnStatus)
    assert any(target is None for target in targets)
    assert any(target is not None for target in targets)
