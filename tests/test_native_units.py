"""Native mode: the platform return names the units of each line it takes
(:attr:`PlatformReturnLine.units`), the ones returnflow's ledger gave the return, so both
sides value the same units to the cent even when one line's units were paid differently
(10.00, 10.00 and 9.99) and the platform could not tell which a return takes: platform
returns open through the outbox in their own order, and a window counted from delivery
takes units in another order than their fulfillment."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import attrs
import pytest

from _builders import (
    SHOP,
    closed_without_review,
    eur,
    native_with,
    passed,
    platform,
    receive,
    request,
    three_at_ten,
)
from returnflow import OrderLine, RequestLine
from returnflow._bodies import dump_effect, load_effect
from returnflow.domain.order import Fulfillment
from returnflow.errors import PortError
from returnflow.lifecycle import effects as fx
from returnflow.ports.platform_returns import PlatformReturnLine
from returnflow.serialization import structure, unstructure
from returnflow.testing import Harness
from returnflow.testing.platform_returns import FakePlatformReturns


def at(day: int) -> datetime:
    return datetime(2026, 1, day, 12, 0, tzinfo=timezone.utc)


def one(made: Harness) -> str:
    return request(made, RequestLine(order_line_id="L3", quantity=1))


def opened_units(made: Harness) -> list[tuple[int, ...]]:
    return [
        tuple(unit for item in call.args["lines"] for unit in item.units)
        for call in platform(made).calls_to("open_return")
    ]


def test_a_window_from_delivery_takes_the_units_the_ledger_gave_on_the_platform_too() -> None:
    # Unit 0 shipped first but was delivered last: counted from delivery, its window opened
    # last, so returnflow's first return takes it and the second one unit 1 (10.00). A
    # platform picking by fulfillment took units 1 and 2: the second return's 9.99 there.
    made = native_with(
        three_at_ten(Fulfillment(1, at(10), at(14)), Fulfillment(2, at(11), at(12))),
        window_starts="delivery",
    )
    first, second = one(made), one(made)
    assert opened_units(made) == [(0,), (1,)]
    receive(made, second, "r2", passed("L3"))
    closed_without_review(made, second)
    [processed] = platform(made).calls_to("process")
    assert processed.args["refund"] == eur("10.00")
    assert made.service.get(SHOP, first).status != "needs_review"


def test_platform_returns_opened_out_of_order_value_the_units_each_return_holds() -> None:
    # The first return's opening fails for a while; the second (unit 2, 9.99) opens first
    # on the platform. Told no units, the platform gave it unit 0 (10.00) and the first
    # return units 1 and 2 (19.99 for returnflow's 20.00).
    made = native_with(three_at_ten(Fulfillment(3, at(10))))
    platform(made).fail("open_return")
    first = request(made, RequestLine(order_line_id="L3", quantity=2))
    second = one(made)
    made.dispatch_due()
    assert [call.args["lines"][0].units for call in platform(made).calls_to("open_return")] == [
        (0, 1),
        (2,),
        (0, 1),
    ]
    assert platform(made).calls_to("open_return")[1].idempotency_key.startswith(f"{SHOP}/{second}")
    receive(made, second, "r2", passed("L3"))
    receive(made, first, "r1", passed("L3", 2))
    for return_id, refund in ((second, "9.99"), (first, "20.00")):
        record = closed_without_review(made, return_id)
        assert platform(made).refunded(SHOP, record.refs.platform_return_id or "") == eur(refund)


def fake(ordered: OrderLine) -> FakePlatformReturns:
    made = native_with(ordered)
    return platform(made)


@pytest.mark.parametrize(
    ("quantity", "units", "said"),
    [
        (1, (3,), "lines[0].units: unit 3 is not one of the 3 of line L3"),
        (1, (-1,), "lines[0].units: unit -1 is not one of the 3"),
        (1, (2,), "lines[0].units: unit 2 of line L3 was not shipped"),
        (2, (0, 0), "lines[0].units=[0, 0]: a unit named twice"),
        (2, (0,), "lines[0].units=[0]: 1 unit(s) for a quantity of 2"),
        (1, (0, 1), "lines[0].units=[0, 1]: 2 unit(s) for a quantity of 1"),
    ],
)
def test_the_platform_refuses_units_a_return_cannot_take(
    quantity: int, units: tuple[int, ...], said: str
) -> None:
    port = fake(three_at_ten(Fulfillment(2, at(10))))  # unit 2 never shipped
    with pytest.raises(PortError, match=re.escape(said)) as caught:
        port.open_return(
            SHOP, "1001", [PlatformReturnLine("L3", quantity, units=units)], idempotency_key="k"
        )
    assert not caught.value.retryable
    opened = port.open_return(SHOP, "1001", [PlatformReturnLine("L3", 2)], idempotency_key="k2")
    assert opened.return_id == "gid://Return/1"  # nothing was kept of the refused call


def test_the_platform_refuses_a_unit_another_live_return_holds() -> None:
    port = fake(three_at_ten(Fulfillment(3, at(10))))
    port.open_return(SHOP, "1001", [PlatformReturnLine("L3", 1, units=(2,))], idempotency_key="a")
    with pytest.raises(PortError, match="unit 2 of line L3 is on another return"):
        port.open_return(
            SHOP, "1001", [PlatformReturnLine("L3", 1, units=(2,))], idempotency_key="b"
        )
    # each return is valued on the units it names: unit 2 at 9.99, though the platform's
    # own pick (the d return's) takes unit 0 first
    named = port.open_return(
        SHOP, "1001", [PlatformReturnLine("L3", 1, units=(1,))], idempotency_key="c"
    )
    picked = port.open_return(SHOP, "1001", [PlatformReturnLine("L3", 1)], idempotency_key="d")
    assert port.calculate(SHOP, named.return_id).refund == eur("10.00")
    assert port.calculate(SHOP, picked.return_id).refund == eur("10.00")
    first = port.get_return(SHOP, "gid://Return/1")
    assert port.calculate(SHOP, first.return_id).refund == eur("9.99")


def test_the_units_round_trip_and_an_effect_stored_without_them_still_reads() -> None:
    effect = fx.OpenPlatformReturn(
        key="k",
        shop=SHOP,
        return_id="R1",
        order_id="1001",
        lines=(PlatformReturnLine("L3", 2, "UNWANTED", eur("1.00"), (2, 0)),),
    )
    data = unstructure(effect)
    assert data["lines"][0]["units"] == [2, 0]
    assert structure(data, fx.Effect) == effect
    assert load_effect(dump_effect(effect)) == effect
    del data["lines"][0]["units"]
    older = structure(data, fx.Effect)
    assert isinstance(older, fx.OpenPlatformReturn)
    assert older.lines[0].units == ()
    text = dump_effect(effect).replace(',"units":[2,0]', "")
    assert "units" not in text
    assert load_effect(text) == attrs.evolve(
        effect, lines=(attrs.evolve(effect.lines[0], units=()),)
    )
