"""A policy's choices are checked when the policy is built: a setting given as plain data (a
host's config file, JSON) becomes the choice it names, and anything else is a
ConfigurationError naming the setting and the value, never a policy that silently behaves as
its default."""

from __future__ import annotations

from typing import Any

import pytest

from returnflow.domain.model import ItemCondition, OutcomeKind
from returnflow.domain.policy import (
    Completion,
    RefundTrigger,
    ReleaseTrigger,
    ReturnPolicy,
    ReturnToOrigin,
    WindowStart,
)
from returnflow.errors import ConfigurationError

CHOICES = [
    ("window_starts", "delivery", WindowStart.DELIVERY),
    ("completion", "on_warehouse_finished", Completion.ON_WAREHOUSE_FINISHED),
    ("exchange_release", "on_handed_in", ReleaseTrigger.ON_HANDED_IN),
    ("on_return_to_origin", "review", ReturnToOrigin.REVIEW),
    ("refund_trigger", "on_delivered", RefundTrigger.ON_DELIVERED),
    ("exchange_difference", "store_credit", OutcomeKind.STORE_CREDIT),
]


@pytest.mark.parametrize(("field", "text", "member"), CHOICES)
def test_a_choice_given_as_its_value_is_that_choice(field: str, text: str, member: Any) -> None:
    policy = ReturnPolicy(**{field: text})
    assert getattr(policy, field) is member
    assert getattr(ReturnPolicy(**{field: member}), field) is member


@pytest.mark.parametrize(("field", "text", "member"), CHOICES)
@pytest.mark.parametrize("bad", ["ON_HANDED_IN ", "", "sometime", 3, None])
def test_a_choice_that_does_not_exist_names_the_setting(
    field: str, text: str, member: Any, bad: object
) -> None:
    with pytest.raises(ConfigurationError) as info:
        ReturnPolicy(**{field: bad})
    assert info.value.field == field
    assert info.value.value == bad
    assert text in str(info.value)  # the choices are listed


def test_accepted_conditions_take_values_and_refuse_what_is_not_a_condition() -> None:
    policy = ReturnPolicy(accepted_conditions=["new", ItemCondition.USED])
    assert policy.accepted_conditions == frozenset({ItemCondition.NEW, ItemCondition.USED})
    for bad in ("new", ["new", "mint"], 7):
        with pytest.raises(ConfigurationError) as info:
            ReturnPolicy(accepted_conditions=bad)
        assert info.value.field == "accepted_conditions"


@pytest.mark.parametrize(
    "field", ["auto_approve", "decline_final_sale", "send_label", "restock_accepted"]
)
@pytest.mark.parametrize("bad", ["false", "False", 0, 1, None])
def test_a_yes_or_no_setting_is_a_bool(field: str, bad: object) -> None:
    # "false" is truthy: taken as given it would turn the setting on
    with pytest.raises(ConfigurationError) as info:
        ReturnPolicy(**{field: bad})
    assert info.value.field == field
    assert info.value.value == bad
    assert getattr(ReturnPolicy(**{field: False}), field) is False


@pytest.mark.parametrize("field", ["hold_tag", "warehouse_reason", "warehouse_action"])
@pytest.mark.parametrize("bad", ["", "  ", 5, None])
def test_a_text_setting_is_non_empty_text(field: str, bad: object) -> None:
    with pytest.raises(ConfigurationError) as info:
        ReturnPolicy(**{field: bad})
    assert info.value.field == field


def test_the_window_counts_from_the_fulfillment_unless_the_merchant_says_otherwise() -> None:
    assert ReturnPolicy().window_starts is WindowStart.FULFILLMENT
