"""``validate_request`` checks destinations as ``request`` and ``quote`` do (issue 17): a
location from a rule or the host's DestinationResolver that is blank or not one of the
shop's is refused with ``UnknownLocation`` naming ``lines[i].location_id``, and nothing is
stored; a request it accepts, ``request`` opens with the same routes."""

from __future__ import annotations

import os
import sys
from collections.abc import Collection, Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from returnflow import (
    InvalidPayload,
    Keep,
    MethodNotOffered,
    OrderSnapshot,
    RequestLine,
    ReturnflowError,
    ReturnRequest,
    Rule,
    StaticDestination,
    UnknownLocation,
)
from returnflow.domain.model import ReturnLine
from returnflow.testing import Harness

sys.path.insert(0, os.path.dirname(__file__))

from test_destinations import LOCATIONS, OUTLET, SHOP, ByTag, _harness, _request


class PerLine:
    """A resolver answering per order line (``answers``; a line not there: ``None``), the
    shop having ``known`` locations; it records the lines it was asked about."""

    def __init__(self, answers: Mapping[str, object], known: Collection[str]) -> None:
        self.answers = dict(answers)
        self.known = tuple(known)
        self.asked: list[str] = []

    def locations(self, shop: str) -> Collection[str]:
        return self.known

    def destination(self, shop: str, order: OrderSnapshot, line: ReturnLine) -> str | None:
        self.asked.append(line.order_line_id)
        return self.answers.get(line.order_line_id)  # type: ignore[return-value]


def _nothing_stored(harness: Harness) -> None:
    assert list(harness.service.list(SHOP)) == []
    assert harness.ports.warehouse.calls == []
    assert harness.ports.carrier.calls == []
    assert harness.ports.commerce.calls_to("refund") == []


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ("", "gave no location id"),
        ("  ", "gave no location id"),
        (" berlin", "gave no location id"),
        (7, "gave no location id"),
        ("paris", "not a location of the shop"),
    ],
)
def test_validate_request_refuses_a_location_the_resolver_makes_up(
    answer: object, why: str
) -> None:
    harness = _harness(ByTag(answer=answer))
    with pytest.raises(UnknownLocation) as caught:
        harness.service.validate_request(_request())
    assert (caught.value.field, caught.value.value) == ("lines[0].location_id", answer)
    assert "the destination resolver" in caught.value.reason
    assert why in caught.value.reason
    _nothing_stored(harness)


def test_validate_request_names_the_line_whose_location_is_unknown() -> None:
    harness = _harness(PerLine({"L1": "berlin", "S1": "paris"}, LOCATIONS))
    with pytest.raises(UnknownLocation) as caught:
        harness.service.validate_request(_request())
    assert (caught.value.field, caught.value.value) == ("lines[1].location_id", "paris")
    assert "berlin, bulky-hub, outlet-store" in caught.value.reason
    _nothing_stored(harness)


def test_validate_request_refuses_a_rule_destination_the_shop_does_not_have() -> None:
    harness = _harness(ByTag(locations=("berlin", "bulky-hub")), rules=(OUTLET,))
    with pytest.raises(UnknownLocation) as caught:
        harness.service.validate_request(_request(lines=(("L1", 1), ("O1", 1))))
    assert (caught.value.field, caught.value.value) == ("lines[1].location_id", "outlet-store")
    assert repr(OUTLET.name) in caught.value.reason
    assert "berlin, bulky-hub" in caught.value.reason
    _nothing_stored(harness)


def test_validate_request_with_no_locations_says_what_to_configure() -> None:
    harness = _harness(StaticDestination(), rules=(OUTLET,))
    with pytest.raises(UnknownLocation) as caught:
        harness.service.validate_request(_request(lines=(("O1", 1),)))
    assert (caught.value.field, caught.value.value) == ("lines[0].location_id", "outlet-store")
    assert "configure a DestinationResolver" in caught.value.reason
    _nothing_stored(harness)


def test_validate_request_takes_a_rule_destination_over_the_resolvers_bad_one() -> None:
    resolver = PerLine({"L1": "berlin", "O1": "paris"}, LOCATIONS)
    harness = _harness(resolver, rules=(OUTLET,))
    request = _request(lines=(("L1", 1), ("O1", 1)))
    harness.service.validate_request(request)
    assert resolver.asked == ["L1"]  # the rule routed O1: the resolver is not asked
    _nothing_stored(harness)
    record = harness.service.request(request)
    assert [line.location_id for line in record.lines] == ["berlin", "outlet-store"]


def test_validate_request_does_not_ask_the_resolver_about_kept_lines() -> None:
    keep_lamps = Rule("keep lamps", when={"tags": ["bulky"]}, then={"keep": True})
    resolver = PerLine({"L1": "berlin", "S1": "paris"}, LOCATIONS)
    harness = _harness(resolver, rules=(keep_lamps,))
    harness.service.validate_request(_request())
    assert resolver.asked == ["L1"]
    record = harness.service.request(_request())
    assert isinstance(record.lines[1].outcome, Keep)
    assert [line.location_id for line in record.lines] == ["berlin", None]


def test_validate_request_refuses_a_method_a_rule_leaves_out_as_request_does() -> None:
    picked_up = Rule(
        "bulky goods are picked up", when={"tags": ["bulky"]}, then={"methods": ["pickup"]}
    )
    harness = _harness(rules=(picked_up,))
    request = ReturnRequest(
        shop=SHOP,
        order_id="1001",
        lines=[RequestLine(order_line_id="S1", quantity=1)],
        method="mail",
    )
    for call in (harness.service.validate_request, harness.service.request):
        with pytest.raises(MethodNotOffered) as caught:
            call(request)
        assert (caught.value.field, caught.value.value) == ("method", "mail")
        assert repr(picked_up.name) in caught.value.reason
    _nothing_stored(harness)


# -- validate_request and request agree -----------------------------------------------------

ANSWERS = st.sampled_from([None, "berlin", "bulky-hub", "outlet-store", "paris", "", " hub", 3])


def _outcome(call: Any, request: ReturnRequest) -> tuple[Any, ...]:
    try:
        result = call(request)
    except ReturnflowError as error:
        return ("refused", type(error), getattr(error, "field", None), str(error))
    return ("accepted", result)


@settings(max_examples=60, deadline=None)
@given(
    answers=st.fixed_dictionaries({"L1": ANSWERS, "S1": ANSWERS, "O1": ANSWERS}),
    known=st.lists(st.sampled_from(LOCATIONS), unique=True),
    outlet_rule=st.booleans(),
    lines=st.lists(st.sampled_from(["L1", "S1", "O1"]), min_size=1, max_size=3, unique=True),
)
def test_validate_request_accepts_exactly_what_request_opens(
    answers: dict[str, object], known: list[str], outlet_rule: bool, lines: list[str]
) -> None:
    harness = _harness(PerLine(answers, known), rules=(OUTLET,) if outlet_rule else ())
    request = _request(lines=[(line_id, 1) for line_id in lines])
    checked = _outcome(harness.service.validate_request, request)
    _nothing_stored(harness)
    opened = _outcome(harness.service.request, request)
    if checked[0] == "refused":
        assert opened == checked
        _nothing_stored(harness)
        return
    assert opened[0] == "accepted", opened
    record = opened[1]
    for asked, line in zip(lines, record.lines, strict=True):
        where = "outlet-store" if outlet_rule and asked == "O1" else answers[asked]
        assert line.location_id == where
        assert where is None or where in known


def test_validate_request_refuses_what_is_not_a_request_naming_it() -> None:
    harness = _harness()
    with pytest.raises(InvalidPayload) as caught:
        harness.service.validate_request({"shop": SHOP})  # type: ignore[arg-type]
    assert (caught.value.field, caught.value.value) == ("request", {"shop": SHOP})
    _nothing_stored(harness)
