"""What a caller gives a service call beside a request (who acts, a reason to flag or reopen,
a decline's note) and what the platform reports about an order (its flags, the app that
made it, its tags) is checked where it enters: a typed error naming the field and the value,
nothing stored. Each is text the return keeps in its history (a store's column, for the
actor) or a flag a decision reads by its truth."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from returnflow import (
    ConfigurationError,
    InvalidPayload,
    InvalidRequest,
    Money,
    OrderLine,
    OrderSnapshot,
    Refund,
    RequestLine,
    ReturnPolicy,
    ReturnReasonDefinition,
    ReturnRequest,
    ReturnsService,
    Rule,
    Then,
    When,
)
from returnflow.domain._fields import MAX_TEXT
from returnflow.domain.external import ExternalLine, ExternalReturn
from returnflow.stores.sqlite import SqliteStore
from returnflow.testing import Harness

T = datetime(2026, 1, 10, tzinfo=timezone.utc)


class HostText(str):
    """A host's own text type."""


def _order(**given: Any) -> OrderSnapshot:
    line = given.pop("line", {})
    return OrderSnapshot(
        id="1001",
        shop="s",
        created_at=T,
        fulfilled_at=T,
        currency="EUR",
        lines=[
            OrderLine(
                id="L1",
                sku="TEE",
                variant_id="tee-m",
                quantity=2,
                unit_price=Money("25.00", "EUR"),
                **line,
            )
        ],
        **given,
    )


@pytest.fixture(params=["memory", "sqlite"])
def opened(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Harness, str]:
    made = Harness() if request.param == "memory" else Harness(store=SqliteStore(tmp_path / "r.db"))
    made.ports.commerce.add_order(_order())
    record = made.service.request(
        ReturnRequest(shop="s", order_id="1001", lines=[RequestLine("L1", 1, outcome=Refund())])
    )
    return made, record.id


LONG = "x" * (MAX_TEXT + 1)

CALLS: dict[str, tuple[str, object, Callable[[ReturnsService, str, Any], object]]] = {
    "actor-subclass": ("actor", HostText("agent"), lambda s, r, v: s.approve("s", r, actor=v)),
    "actor-bool": ("actor", True, lambda s, r, v: s.cancel("s", r, actor=v)),
    "actor-long": ("actor", LONG, lambda s, r, v: s.flag("s", r, "why", actor=v)),
    "actor-nul": ("actor", "a\x00b", lambda s, r, v: s.issue_label("s", r, actor=v)),
    "flag-reason-subclass": ("reason", HostText("why"), lambda s, r, v: s.flag("s", r, v)),
    "flag-reason-long": ("reason", LONG, lambda s, r, v: s.flag("s", r, v)),
    "decline-note-bool": ("note", True, lambda s, r, v: s.decline("s", r, note=v)),
    "decline-note-long": ("note", LONG, lambda s, r, v: s.decline("s", r, note=v)),
}


@pytest.mark.parametrize("case", sorted(CALLS))
def test_a_call_s_text_is_refused_by_name_and_nothing_is_stored(
    case: str, opened: tuple[Harness, str]
) -> None:
    made, return_id = opened
    field, value, call = CALLS[case]
    before = made.service.get("s", return_id)
    with pytest.raises(InvalidRequest) as refused:
        call(made.service, return_id, value)
    assert (refused.value.field, refused.value.value) == (field, value)
    assert made.service.get("s", return_id) == before


def test_the_bound_itself_is_taken_for_a_reason_and_an_actor(opened: tuple[Harness, str]) -> None:
    made, return_id = opened
    text = "y" * MAX_TEXT
    flagged = made.service.flag("s", return_id, text, actor=text)
    assert flagged.review_reasons[-1] == text
    assert made.service.get("s", return_id).history[-1].actor == text


def test_a_reopen_reason_of_a_str_subclass_is_refused(opened: tuple[Harness, str]) -> None:
    made, return_id = opened
    made.service.cancel("s", return_id)
    before = made.service.get("s", return_id)
    with pytest.raises(InvalidRequest) as refused:
        made.service.reopen("s", return_id, reason=HostText("again"))
    assert refused.value.field == "reason"
    assert made.service.get("s", return_id) == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("taxes_included", "no"),
        ("has_duties", 1),
        ("addresses_valid", "nope"),
        ("has_prepaid_subscription", []),
        ("created_by_app", True),
        ("created_by_app", HostText("app")),
        ("created_by_app", LONG),
    ],
)
def test_an_order_s_flags_and_app_are_checked_by_name(field: str, value: object) -> None:
    # "no" is true: a record kept taxes_included="no" and added tax a second time; a bool
    # app name reached str.lower() in the policy.
    with pytest.raises(InvalidPayload) as refused:
        _order(**{field: value})
    assert (refused.value.field, refused.value.value) == (field, value)


@pytest.mark.parametrize("field", ["final_sale", "gift_card"])
def test_an_order_line_s_flags_are_checked_by_name(field: str) -> None:
    with pytest.raises(InvalidPayload) as refused:
        _order(line={field: "false"})
    assert (refused.value.field, refused.value.value) == (field, "false")


@pytest.mark.parametrize("field", ["tags", "collections"])
def test_an_order_line_s_names_of_a_str_subclass_are_refused(field: str) -> None:
    with pytest.raises(InvalidPayload) as refused:
        _order(line={field: ["ok", HostText("sale")]})
    assert refused.value.field == f"{field}[1]"


def test_an_imported_return_s_source_of_a_str_subclass_is_refused() -> None:
    with pytest.raises(InvalidPayload) as refused:
        ExternalReturn(
            source=HostText("loop"),
            external_id="X1",
            shop="s",
            order_id="1001",
            created_at=T,
            updated_at=T,
            lines=[ExternalLine(order_line_id="L1", quantity=1)],
        )
    assert refused.value.field == "source"
    assert "not HostText" in str(refused.value)


CONFIGURED: dict[str, tuple[str, Callable[[object], object]]] = {
    "policy-version": ("version", lambda t: ReturnPolicy(version=t)),
    "hold-tag": ("hold_tag", lambda t: ReturnPolicy(hold_tag=t)),
    "warehouse-reason": ("warehouse_reason", lambda t: ReturnPolicy(warehouse_reason=t)),
    "reason-title": ("title", lambda t: ReturnReasonDefinition(handle="SIZE_TOO_SMALL", title=t)),
    "rule-name": ("name", lambda t: Rule(name=t, then=Then(approve=True))),
    "rule-review": ("then.review", lambda t: Rule(name="r", then=Then(review=t))),
    "rule-destination": ("then.destination", lambda t: Rule(name="r", then=Then(destination=t))),
    "rule-sku": ("when.sku", lambda t: Rule(name="r", when=When(sku=[t]), then=Then(approve=True))),
}


@pytest.mark.parametrize("case", sorted(CONFIGURED))
@pytest.mark.parametrize("value", [HostText("v2"), "x" * (MAX_TEXT + 1)], ids=["subclass", "long"])
def test_configured_text_a_return_keeps_is_plain_and_bounded(case: str, value: str) -> None:
    # A policy's version, a rule's name or review reason, a destination: kept with every
    # return they decide (a subclass only until the return is read again) or sent on.
    field, build = CONFIGURED[case]
    with pytest.raises(ConfigurationError) as refused:
        build(value)
    assert (refused.value.field, refused.value.value) == (field, value)
    build("x" * MAX_TEXT if case != "rule-destination" else "loc-1")
