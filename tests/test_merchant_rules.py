"""Merchant rules (issue 17): an ordered list per shop, conditions on the order, the return,
its lines and the customer, actions on the decision, the outcomes, the fees and the
evidence; pure, explained in the history and in quote(), loadable from JSON and TOML."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone

import pytest

from returnflow import (
    ConfigurationError,
    CustomerReturns,
    DeclineReason,
    EvidenceRequired,
    FeePolicy,
    InvalidPayload,
    InvalidRule,
    Keep,
    Money,
    OrderLine,
    OrderSnapshot,
    OutcomeKind,
    OutcomeNotOffered,
    ReceivedLine,
    Refund,
    RequestLine,
    ReturnPolicy,
    ReturnReason,
    ReturnRequest,
    Rule,
    ShopPolicies,
    StoreCredit,
    Then,
    WarehouseReceipt,
    When,
    rules_from_data,
    rules_from_json,
    rules_from_toml,
)
from returnflow.demo.merchant import shop_rules
from returnflow.domain.verdicts import LineFacts, ReturnFacts, evaluate, needed_windows
from returnflow.testing import Harness

EUR = "EUR"
SHOP = "outlet"
ORDERED = datetime(2026, 1, 10, 9, 30, tzinfo=timezone.utc)  # the harness clock: 15 Jan


def _order(order_id: str, *, email: str = "ana@example.com", country: str = "DE") -> OrderSnapshot:
    def line(line_id: str, sku: str, price: str, **more: object) -> OrderLine:
        return OrderLine(
            id=line_id,
            sku=sku,
            variant_id=sku.lower(),
            quantity=1,
            unit_price=Money(price, EUR),
            **more,  # type: ignore[arg-type]
        )

    return OrderSnapshot(
        id=order_id,
        shop=SHOP,
        created_at=ORDERED,
        fulfilled_at=ORDERED,
        currency=EUR,
        customer_email=email,
        shipping_country=country,
        lines=[
            line("L1", "DRESS-1", "60.00", final_sale=True, collections=["outlet"]),
            line("L2", "COAT-1", "480.00", tags=["fragile"]),
            line("L3", "SOCKS-1", "4.00", tags=["basics"]),
            line("L4", "SHIRT-1", "30.00"),
        ],
    )


RULES = (
    Rule(
        "outlet final sale: store credit only",
        When(collections=["outlet"], final_sale=True),
        Then(offer=["store_credit"], approve=True),
    ),
    Rule(
        "orders over 500: review",
        When(return_value_at_least=Money("500.00", EUR)),
        Then(review="a large return is checked by hand"),
    ),
    Rule(
        "repeat returners: no free shipping",
        When(customer_returns=CustomerReturns(days=90, at_least=2)),
        Then(return_shipping=Money("7.50", EUR)),
    ),
    Rule("socks are kept", When(sku=["SOCKS-1"]), Then(keep=True)),
    Rule("fragile items: a photo", When(tags=["fragile"]), Then(require_photo=True)),
    Rule("no returns from abroad", When(country=["US", "CA"]), Then(decline="we ship to the EU")),
    Rule("credit pays more", When(outcome=["store_credit"]), Then(bonus=Money("5.00", EUR))),
)


def _harness(rules: tuple[Rule, ...] = RULES, **policy: object) -> Harness:
    chosen = ReturnPolicy(rules=rules, decline_final_sale=False, **policy)  # type: ignore[arg-type]
    harness = Harness(policies=ShopPolicies({SHOP: chosen}))
    for order_id in ("1001", "1002", "1003", "1004", "1005"):
        harness.ports.commerce.add_order(_order(order_id))
    harness.ports.commerce.add_order(_order("2001", country="US"))
    harness.ports.commerce.add_order(_order("3001", email="bo@example.com"))
    return harness


def _request(order_id: str, *lines: RequestLine) -> ReturnRequest:
    return ReturnRequest(shop=SHOP, order_id=order_id, lines=lines)


def _line(line_id: str, outcome: object = None, **more: object) -> RequestLine:
    return RequestLine(
        order_line_id=line_id,
        quantity=1,
        outcome=outcome or Refund(),  # type: ignore[arg-type]
        **more,  # type: ignore[arg-type]
    )


def _rule_entries(record: object) -> list[dict[str, object]]:
    return [dict(entry.payload) for entry in record.history if entry.event == "rule"]  # type: ignore[attr-defined]


def test_outlet_final_sale_is_store_credit_only_and_the_rule_approves_it() -> None:
    harness = _harness()
    service = harness.service
    with pytest.raises(OutcomeNotOffered) as caught:
        service.request(_request("1001", _line("L1")))
    assert (caught.value.field, caught.value.value) == ("lines[0].outcome", "refund")
    assert "outlet final sale: store credit only" in caught.value.reason
    assert list(service.list(SHOP)) == []
    quote = service.quote(_request("1001", _line("L1", StoreCredit())))
    assert quote.rules == (
        "rule 'outlet final sale: store credit only' (L1): L1: in collection outlet, final sale"
        " -> approve; offer store_credit",
        "rule 'credit pays more' (L1): L1: asks for store_credit -> bonus 5.00 EUR",
    )
    assert quote.store_credit == Money("60.00", EUR)
    assert quote.bonus == Money("5.00", EUR)
    record = service.request(_request("1001", _line("L1", StoreCredit())))
    # Without the rule a final-sale line goes to review (decline_final_sale=False).
    assert record.status == "label_sent"
    assert record.lines[0].outcome == StoreCredit(bonus=Money("5.00", EUR))
    assert [entry["rule"] for entry in _rule_entries(record)] == [
        "outlet final sale: store credit only",
        "credit pays more",
    ]
    check = next(entry for entry in record.history if entry.event == "check")
    assert check.payload == {"decision": "approve"}


def test_a_large_return_goes_to_review_with_the_rule_named() -> None:
    harness = _harness()
    record = harness.service.request(
        _request("1001", _line("L2", photos=["https://cdn.example.com/coat.jpg"]), _line("L4"))
    )
    assert record.status == "pending_review"
    assert record.review_reasons == (
        "rule 'orders over 500: review': a large return is checked by hand",
    )
    review, photo = _rule_entries(record)
    assert photo["rule"] == "fragile items: a photo"
    assert photo["why"] == "L2: tagged fragile"
    assert review == {
        "rule": "orders over 500: review",
        "lines": "L2, L4",
        "why": "return value 510.00 EUR >= 500.00 EUR",
        "then": "review: a large return is checked by hand",
    }


def test_a_fragile_item_needs_a_photo_and_nothing_is_stored_without_it() -> None:
    harness = _harness()
    with pytest.raises(EvidenceRequired) as caught:
        harness.service.request(_request("1002", _line("L2")))
    assert (caught.value.field, caught.value.value) == ("lines[0].photos", [])
    assert "fragile items: a photo" in caught.value.reason
    assert list(harness.service.list(SHOP)) == []
    assert harness.ports.warehouse.calls == []


def test_repeat_returners_pay_return_shipping_at_completion() -> None:
    harness = _harness()
    service = harness.service
    first = service.request(_request("1001", _line("L4")))
    second = service.request(_request("1002", _line("L4")))
    assert first.rule_return_shipping is None
    assert second.rule_return_shipping is None  # one return before it: not yet a repeat
    third_request = _request("1003", _line("L4"))
    assert service.quote(third_request).return_shipping_fee == Money("7.50", EUR)
    # Another customer's returns do not count.
    assert service.quote(_request("3001", _line("L4"))).return_shipping_fee == Money("0.00", EUR)
    third = service.request(third_request)
    assert third.rule_return_shipping == Money("7.50", EUR)
    assert _rule_entries(third)[0]["why"] == "2 returns in 90 days >= 2"
    # The fee is recorded on the return: the refund at completion pays it.
    service.handle(
        WarehouseReceipt(
            shop=SHOP,
            return_id=third.id,
            event_id="wms-1",
            lines=[ReceivedLine(line_id="L4", quantity=1)],
        )
    )
    refunds = [r for r in harness.ports.commerce.refunds if r.order_id == "1003"]
    assert [str(refund.amount) for refund in refunds] == ["22.50 EUR"]


def test_socks_are_kept_and_refunded_without_a_parcel() -> None:
    harness = _harness()
    record = harness.service.request(_request("1004", _line("L3")))
    assert record.lines[0].outcome == Keep()
    assert record.status == "closed"
    assert harness.ports.carrier.calls == []
    assert [str(refund.amount) for refund in harness.ports.commerce.refunds] == ["4.00 EUR"]


def test_a_decline_rule_declines_with_its_reason() -> None:
    harness = _harness()
    record = harness.service.request(_request("2001", _line("L4")))
    assert (record.status, record.decline_reason) == ("declined", DeclineReason.OTHER)
    decline = next(entry for entry in record.history if entry.event == "decline")
    assert decline.payload["note"] == "rule 'no returns from abroad': we ship to the EU"


def test_a_policy_decline_stands_whatever_the_rules_say() -> None:
    harness = _harness(window_days=2)
    record = harness.service.request(_request("1001", _line("L1", StoreCredit())))
    assert record.decline_reason is DeclineReason.RETURN_PERIOD_ENDED


def test_rules_fire_in_order_until_one_stops() -> None:
    rules = (
        Rule("old orders", When(order_age_days_at_least=3), Then(waive_fees=True), stop=True),
        Rule("never reached", When(), Then(review="not evaluated")),
    )
    harness = _harness(rules, fees=FeePolicy(return_shipping=Money("3.00", EUR)))
    record = harness.service.request(_request("1001", _line("L4")))
    assert record.status == "label_sent"
    assert [entry["rule"] for entry in _rule_entries(record)] == ["old orders"]
    assert record.lines[0].fees_waived
    assert harness.service.quote(_request("1002", _line("L4"))).return_shipping_fee == Money(
        "0.00", EUR
    )


def test_offers_of_several_rules_narrow_each_other_to_nothing() -> None:
    rules = (
        Rule("a", When(sku=["SHIRT-1"]), Then(offer=["refund", "store_credit"])),
        Rule("b", When(quantity_at_least=1), Then(offer=["exchange"])),
    )
    harness = _harness(rules)
    with pytest.raises(OutcomeNotOffered) as caught:
        harness.service.request(_request("1001", _line("L4")))
    assert caught.value.reason == "rule 'a', 'b' offers only: nothing"


def test_a_rule_note_requirement_and_the_line_value_condition() -> None:
    rules = (
        Rule(
            "expensive lines: tell us why",
            When(line_value_at_least=Money("50.00", EUR), reason=["DEFECTIVE", "wrong-item"]),
            Then(require_note=True),
        ),
    )
    harness = _harness(rules)
    with pytest.raises(EvidenceRequired) as caught:
        harness.service.request(_request("1001", _line("L1", reason="defective")))
    assert caught.value.field == "lines[0].note"
    ok = harness.service.request(_request("1001", _line("L1", reason="defective", note="torn")))
    assert ok.status == "pending_review"  # final sale; no rule approved it


def test_an_amount_in_another_currency_is_refused_naming_the_rule_and_nothing_is_stored() -> None:
    rules = (Rule("usd bonus", When(), Then(bonus=Money("5.00", "USD"))),)
    harness = _harness(rules)
    with pytest.raises(InvalidRule) as caught:
        harness.service.request(_request("1001", _line("L4", StoreCredit())))
    assert (caught.value.rule, caught.value.field) == ("usd bonus", "then.bonus")
    assert list(harness.service.list(SHOP)) == []
    bound = Rule("usd", When(return_value_at_least=Money("1.00", "USD")), Then(approve=True))
    other = _harness((bound,))
    with pytest.raises(InvalidRule) as caught:
        other.service.request(_request("1001", _line("L4")))
    assert (caught.value.rule, caught.value.field) == ("usd", "when")
    assert list(other.service.list(SHOP)) == []


# -- rules as data ---------------------------------------------------------------------------

DATA = [
    {
        "name": "outlet final sale: store credit only",
        "when": {"collections": ["outlet"], "final_sale": True},
        "then": {"offer": ["store_credit"], "approve": True},
    },
    {
        "name": "orders over 500: review",
        "when": {"return_value_at_least": "500.00 EUR"},
        "then": {"review": "a large return is checked by hand"},
    },
    {
        "name": "repeat returners: no free shipping",
        "when": {"customer_returns": {"days": 90, "at_least": 2}},
        "then": {"return_shipping": {"amount": "7.50", "currency": "EUR"}},
    },
    {"name": "socks are kept", "when": {"sku": ["SOCKS-1"]}, "then": {"keep": True}},
    {
        "name": "fragile items: a photo",
        "when": {"tags": ["fragile"]},
        "then": {"require_photo": True},
    },
    {
        "name": "no returns from abroad",
        "when": {"country": ["US", "CA"]},
        "then": {"decline": "we ship to the EU"},
    },
    {
        "name": "credit pays more",
        "when": {"outcome": ["store_credit"]},
        "then": {"bonus": "5.00 EUR"},
    },
]

TOML = """
[[rules]]
name = "outlet final sale: store credit only"
when = { collections = ["outlet"], final_sale = true }
then = { offer = ["store_credit"], approve = true }

[[rules]]
name = "orders over 500: review"
when = { return_value_at_least = "500.00 EUR" }
then = { review = "a large return is checked by hand" }

[[rules]]
name = "repeat returners: no free shipping"
when = { customer_returns = { days = 90, at_least = 2 } }
then = { return_shipping = { amount = "7.50", currency = "EUR" } }

[[rules]]
name = "socks are kept"
when = { sku = ["SOCKS-1"] }
then = { keep = true }

[[rules]]
name = "fragile items: a photo"
when = { tags = ["fragile"] }
then = { require_photo = true }

[[rules]]
name = "no returns from abroad"
when = { country = ["US", "CA"] }
then = { decline = "we ship to the EU" }

[[rules]]
name = "credit pays more"
when = { outcome = ["store_credit"] }
then = { bonus = "5.00 EUR" }
"""


def test_rules_read_from_json_and_toml_are_the_rules_written_in_code() -> None:
    assert rules_from_data(DATA) == RULES
    assert rules_from_json(json.dumps({"rules": DATA})) == RULES
    assert rules_from_toml(TOML) == RULES
    harness = _harness(rules_from_toml(TOML))
    assert harness.service.request(_request("1004", _line("L3"))).status == "closed"


@pytest.mark.parametrize(
    ("build", "rule", "field"),
    [
        (lambda: Rule("", When(), Then(approve=True)), None, "name"),
        (lambda: Rule("r", {"colour": ["red"]}, {"approve": True}), "r", "when.colour"),
        (lambda: Rule("r", {}, {"refund_everything": True}), "r", "then.refund_everything"),
        (lambda: Rule("r", {}, {}), "r", "then"),
        (lambda: Rule("r", {}, {"approve": True, "decline": "no"}), "r", "then"),
        (lambda: Rule("r", {"sku": 3}, {"approve": True}), "r", "when.sku"),
        (lambda: Rule("r", {"sku": []}, {"approve": True}), "r", "when.sku"),
        (lambda: Rule("r", {"reason": ["Bored!"]}, {"approve": True}), "r", "when.reason"),
        (lambda: Rule("r", {"outcome": ["teleport"]}, {"approve": True}), "r", "when.outcome"),
        (lambda: Rule("r", {}, {"offer": ["cash"]}), "r", "then.offer"),
        (lambda: Rule("r", {"country": ["Germany"]}, {"approve": True}), "r", "when.country"),
        (
            lambda: Rule("r", {"quantity_at_least": -1}, {"approve": True}),
            "r",
            "when.quantity_at_least",
        ),
        (
            lambda: Rule("r", {"order_age_days_at_most": "3"}, {"approve": True}),
            "r",
            "when.order_age_days_at_most",
        ),
        (lambda: Rule("r", {"final_sale": "yes"}, {"approve": True}), "r", "when.final_sale"),
        (
            lambda: Rule("r", {"return_value_at_least": 500}, {"approve": True}),
            "r",
            "when.return_value_at_least",
        ),
        (lambda: Rule("r", {}, {"bonus": Money("-1.00", EUR)}), "r", "then.bonus"),
        (lambda: Rule("r", {}, {"review": ""}), "r", "then.review"),
        (lambda: Rule("r", {}, {"keep": "yes"}), "r", "then.keep"),
        (
            lambda: Rule("r", {"customer_returns": {"days": 0, "at_least": 1}}, {"approve": True}),
            "r",
            "when.customer_returns.days",
        ),
        (
            lambda: Rule("r", {"customer_returns": 3}, {"approve": True}),
            "r",
            "when.customer_returns",
        ),
        (lambda: Rule("r", "always", {"approve": True}), "r", "when"),  # type: ignore[arg-type]
        (lambda: Rule("r", {}, {"approve": True}, stop="yes"), "r", "stop"),
        (lambda: ReturnPolicy(rules=[Rule("a", {}, {"approve": True})] * 2), "a", "rules[1].name"),
        (lambda: ReturnPolicy(rules=["approve"]), None, "rules[0]"),
        (lambda: ReturnPolicy(rules="approve"), None, "rules"),
        (
            lambda: rules_from_data(
                [{"name": "x", "when": {}, "then": {"approve": True}, "if": 1}]
            ),
            "x",
            "rules[0].if",
        ),
        (lambda: rules_from_data([{"when": {}, "then": {"approve": True}}]), None, "rules[0].name"),
        (
            lambda: rules_from_data([{"name": "x", "then": {"bonus": "5 euros"}}]),
            "x",
            "rules[0].then.bonus",
        ),
        (
            lambda: rules_from_data([{"name": "x", "then": {"bonus": "5.00 EURO"}}]),
            "x",
            "rules[0].then.bonus",
        ),
        (lambda: rules_from_data([{"name": "x", "then": []}]), "x", "rules[0].then"),
        (
            lambda: rules_from_data([{"name": "x", "when": {"sku": 1}, "then": {"keep": True}}]),
            "x",
            "rules[0].when.sku",
        ),
        (lambda: rules_from_data(["x"]), None, "rules[0]"),
        (lambda: rules_from_data({"rules": [], "shops": []}), None, "rules"),
        (lambda: rules_from_data("x"), None, "rules"),
        (lambda: rules_from_json("{not json"), None, "rules"),
        (lambda: rules_from_toml("[[rules]\nname ="), None, "rules"),
    ],
)
def test_bad_rule_configuration_is_a_typed_error_naming_the_rule_and_field(
    build: Callable[[], object], rule: str | None, field: str
) -> None:
    with pytest.raises(InvalidRule) as caught:
        build()
    assert isinstance(caught.value, ConfigurationError)
    assert (caught.value.rule, caught.value.field) == (rule, field)
    if rule is not None:
        assert f"rule {rule!r}" in str(caught.value)


def test_the_demo_runs_the_rules_read_from_toml() -> None:
    harness, shown = shop_rules("demo")
    states = [harness.service.get("demo", str(return_id)).status for return_id in shown]
    assert states == ["label_sent", "pending_review", "closed"]
    assert [str(refund.amount) for refund in harness.ports.commerce.refunds] == ["72.50 EUR"]


def _facts(*lines: LineFacts, days: dict[int, int] | None = None) -> ReturnFacts:
    return ReturnFacts(
        lines=lines,
        value=Money.sum((line.value for line in lines), EUR),
        country="DE",
        order_age_days=12,
        customer_returns=days or {},
    )


def _line_facts(line_id: str, **more: object) -> LineFacts:
    values: dict[str, object] = {
        "reason": ReturnReason.UNKNOWN,
        "merchants_fault": False,
        "sku": "SKU",
        "tags": frozenset(),
        "collections": frozenset(),
        "final_sale": False,
        "outcome": OutcomeKind.REFUND,
        "quantity": 1,
        "value": Money("10.00", EUR),
    }
    values.update(more)
    return LineFacts(line_id=line_id, **values)  # type: ignore[arg-type]


def test_evaluate_is_pure_ordered_and_explains_each_firing() -> None:
    rules = [
        Rule("defects", When(merchants_fault=True), Then(waive_fees=True, approve=True)),
        Rule("old orders", When(order_age_days_at_most=10), Then(review="too old?")),
        Rule("two credits", When(outcome=["store_credit"]), Then(bonus=Money("2.00", EUR))),
        Rule("more credit", When(quantity_at_least=2), Then(bonus=Money("1.00", EUR)), stop=True),
        Rule("after the stop", When(), Then(decline="never")),
    ]
    facts = _facts(
        _line_facts("L1", merchants_fault=True),
        _line_facts("L2", outcome=OutcomeKind.STORE_CREDIT, quantity=2),
    )
    verdict = evaluate(rules, facts)
    assert evaluate(rules, facts) == verdict  # the same facts, the same verdict
    assert [firing.explain() for firing in verdict.firings] == [
        "rule 'defects' (L1): L1: the merchant's fault -> approve; waive fees",
        "rule 'two credits' (L2): L2: asks for store_credit -> bonus 2.00 EUR",
        "rule 'more credit' (L2): L2: quantity 2 >= 2 -> bonus 1.00 EUR",
    ]
    assert verdict.decision == "approve"
    assert dict(verdict.waive_fees) == {"L1": "defects"}
    assert verdict.bonus["L2"] == (Money("3.00", EUR), "more credit")


def test_a_customer_returns_window_not_counted_is_a_configuration_error() -> None:
    rules = [Rule("repeat", When(customer_returns={"days": 30, "at_least": 1}), Then(approve=True))]
    with pytest.raises(InvalidRule) as caught:
        evaluate(rules, _facts(_line_facts("L1")))
    assert (caught.value.rule, caught.value.field) == ("repeat", "when.customer_returns.days")
    assert needed_windows(rules) == (30,)
    assert evaluate(rules, _facts(_line_facts("L1"), days={30: 1})).decision == "approve"
    assert evaluate(rules, _facts(_line_facts("L1"), days={30: 0})).firings == ()


def test_without_tomllib_or_tomli_reading_toml_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib

    real = importlib.import_module

    def without_toml(name: str, package: str | None = None) -> object:
        if name in ("tomllib", "tomli"):
            raise ImportError(name)
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", without_toml)
    with pytest.raises(ConfigurationError) as caught:
        rules_from_toml(TOML)
    assert caught.value.field == "rules"
    assert "tomli" in str(caught.value)
    assert rules_from_json(json.dumps(DATA)) == RULES  # JSON needs nothing


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: OrderLine("L1", "S", "v", 1, Money("1.00", EUR), tags="sale"), "tags"),
        (lambda: OrderLine("L1", "S", "v", 1, Money("1.00", EUR), tags=["", "x"]), "tags[0]"),
        (
            lambda: OrderLine("L1", "S", "v", 1, Money("1.00", EUR), collections=[3]),
            "collections[0]",
        ),
        (lambda: _order("1001", country="Germany"), "shipping_country"),
    ],
)
def test_bad_order_facts_for_rules_are_refused_by_name(
    build: Callable[[], object], field: str
) -> None:
    with pytest.raises(InvalidPayload) as caught:
        build()
    assert caught.value.field == field
