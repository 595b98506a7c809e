"""The compiled chart answers what the python-statemachine chart answers.

The write path fires :func:`returnflow.lifecycle.engine.fire_compiled`: the target from the
table derived from :class:`~returnflow.lifecycle.chart.ReturnChart`, after the chart's own
validator methods. This differential test fires every configuration x every event (and an
unknown one) x valid and invalid payloads through both engines and requires the same target
or the same error.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from statemachine import State, StateChart
from statemachine.exceptions import TransitionNotAllowed

from returnflow import (
    CarrierStatus,
    CarrierUpdate,
    ReceivedLine,
    Refund,
    RequestLine,
    ReturnRequest,
    WarehouseReceipt,
)
from returnflow.domain.model import DeclineReason
from returnflow.errors import ConfigurationError, InvalidPayload
from returnflow.lifecycle import engine
from returnflow.lifecycle.chart import ReturnChart
from returnflow.lifecycle.engine import fire_chart, fire_compiled
from returnflow.lifecycle.table import TABLE, TransitionTable
from returnflow.testing import Harness, make_order

SHOP = "s"

CONFIGURATIONS = list(itertools.product(TABLE.lifecycle_states, TABLE.exchange_states))
EVENTS = [*TABLE.events, "no_such_event"]
PAYLOADS: list[dict[str, Any]] = [
    {},
    {"reason": "dented box"},
    {"reason": ""},
    {"reason": DeclineReason.RETURN_PERIOD_ENDED},
    {"receipts": ("a received line",)},
    {"receipts": ()},
    {"child_id": "R0002"},
    {"child_id": ""},
    {"covered": True},
    {"covered": "yes"},
    {"authorized": True},
    {"decided_by": "agent:ann"},
    {"decided_by": ""},
    {"reason": "x", "receipts": ("l",), "child_id": "R2", "covered": True},
]


def answer(fire: Any, state: tuple[str, str], event: str, payload: dict[str, Any]) -> Any:
    try:
        return ("target", fire(state, event, **payload))
    except InvalidPayload as error:
        return ("invalid", error.field, repr(error.value), str(error))
    except TransitionNotAllowed as error:
        return ("not allowed", str(error))


@pytest.mark.parametrize("state", CONFIGURATIONS, ids="/".join)
def test_the_compiled_chart_answers_what_the_chart_answers(state: tuple[str, str]) -> None:
    differ = [
        (event, payload, chart, compiled)
        for event in EVENTS
        for payload in PAYLOADS
        if (chart := answer(fire_chart, state, event, payload))
        != (compiled := answer(fire_compiled, state, event, payload))
    ]
    assert differ == []


def test_the_comparison_sees_targets_refusals_and_bad_payloads() -> None:
    """Not vacuous: the three kinds of answer all occur."""
    kinds = {
        answer(fire_compiled, state, event, payload)[0]
        for state in CONFIGURATIONS
        for event in EVENTS
        for payload in PAYLOADS
    }
    assert kinds == {"target", "invalid", "not allowed"}


def test_a_chart_with_a_callback_the_table_cannot_see_is_refused() -> None:
    class WithAnAction(StateChart[Any]):
        class process(State.Parallel):
            class lifecycle(State.Compound):
                requested = State(initial=True)
                closed = State(final=True)
                close = requested.to(closed)

            class exchange(State.Compound):
                no_exchange = State(initial=True)

        def on_close(self) -> None:  # an action the compiled engine would not run
            pass

    with pytest.raises(ValueError, match="on_close"):
        TransitionTable.from_chart(WithAnAction)  # type: ignore[arg-type]


def test_a_chart_with_a_guard_is_refused() -> None:
    class Guarded(StateChart[Any]):
        class process(State.Parallel):
            class lifecycle(State.Compound):
                requested = State(initial=True)
                closed = State(final=True)
                close = requested.to(closed, cond="ready")

            class exchange(State.Compound):
                no_exchange = State(initial=True)

        def ready(self) -> bool:
            return True

    with pytest.raises(ValueError, match="guard"):
        TransitionTable.from_chart(Guarded)  # type: ignore[arg-type]


def whole_return(engine_name: str) -> list[tuple[str, tuple[str, str], tuple[str, str]]]:
    """A refund return from request to close (and a flag, a reset of another), on an engine;
    its history as (event, source, target)."""
    harness = Harness(engine=engine_name)
    harness.ports.commerce.add_order(make_order(SHOP, "1001"))
    line = RequestLine(order_line_id="L1", quantity=2, outcome=Refund())
    rid = harness.service.request(ReturnRequest(shop=SHOP, order_id="1001", lines=[line])).id
    for event_id, status in (("p", CarrierStatus.PICKED_UP), ("d", CarrierStatus.DELIVERED)):
        harness.service.handle(
            CarrierUpdate(shop=SHOP, return_id=rid, event_id=event_id, status=status)
        )
    harness.service.flag(SHOP, rid, "dented box")
    received = [ReceivedLine(line_id="L1", quantity=2)]
    harness.service.handle(WarehouseReceipt(shop=SHOP, return_id=rid, event_id="r", lines=received))
    record = harness.service.get(SHOP, rid)
    return [(entry.event, entry.source, entry.target) for entry in record.history]


def test_a_whole_return_is_the_same_on_either_engine() -> None:
    compiled, chart = whole_return("compiled"), whole_return("chart")
    assert compiled == chart
    assert compiled[-1][2] == ("closed", "no_exchange")


def test_the_chart_engine_runs_the_chart(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[str] = []
    original = ReturnChart.send

    def counting(self: ReturnChart, event: str, *args: Any, **kwargs: Any) -> Any:
        sent.append(event)
        return original(self, event, *args, **kwargs)

    monkeypatch.setattr(ReturnChart, "send", counting)
    whole_return("compiled")
    assert sent == []  # the write path never builds or runs a machine
    whole_return("chart")
    assert {"receive", "flag"} <= set(sent)


def test_an_unknown_engine_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="engine='fast'"):
        Harness(engine="fast")
    assert set(engine.ENGINES) == {"compiled", "chart"}
