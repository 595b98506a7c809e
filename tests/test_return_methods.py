"""Return methods (issue 17): mail with a label (the default), drop-off with a QR code, in
store, pickup; offered per shop, narrowed by rules, passed to the carrier, each with its own
fee, and an in-store return skipping the label and the transit states."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from _builders import harness_with, order, order_line
from returnflow import (
    Claim,
    ClaimReason,
    ConfigurationError,
    CurrencyMismatch,
    FeePolicy,
    InvalidFee,
    InvalidPayload,
    InvalidRequest,
    InvalidRule,
    MethodNotOffered,
    Money,
    OrderSnapshot,
    PortError,
    ReceivedLine,
    Refund,
    RequestLine,
    ReturnMethod,
    ReturnPolicy,
    ReturnRecord,
    ReturnRequest,
    Rule,
    WarehouseReceipt,
    rules_from_json,
    rules_from_toml,
)
from returnflow.demo.merchant import shop_methods
from returnflow.domain.verdicts import Verdict, check_method
from returnflow.serialization import request_from_dict, structure, unstructure
from returnflow.testing import Harness

EUR = "EUR"
SHOP = "methods-shop"
ORDERED = datetime(2026, 1, 10, 9, 30, tzinfo=timezone.utc)
ALL = ["mail", "drop_off", "in_store", "pickup"]


LINES = (
    order_line("L1", "TRAINER-42", "80.00"),
    order_line("S1", "SOFA", "900.00", tags=["bulky"]),
)


def _order(order_id: str) -> OrderSnapshot:
    return order(SHOP, order_id, LINES)


BULKY = Rule(
    "bulky goods: pickup or in store",
    when={"tags": ["bulky"]},
    then={"methods": ["pickup", "in_store"]},
)


def _harness(**policy: Any) -> Harness:
    settings: dict[str, Any] = {
        "return_methods": ALL,
        "fees": FeePolicy(
            return_shipping=Money("5.00", EUR),
            method_fees={"in_store": Money("0.00", EUR), "pickup": Money("9.50", EUR)},
        ),
        "rules": (BULKY,),
    }
    settings.update(policy)
    return harness_with(
        SHOP, ("1001", "1002", "1003", "1004"), LINES, policy=ReturnPolicy(**settings)
    )


def _request(order_id: str, method: object = None, line: str = "L1") -> ReturnRequest:
    more = {} if method is None else {"method": method}
    return ReturnRequest(
        shop=SHOP,
        order_id=order_id,
        lines=[RequestLine(order_line_id=line, quantity=1)],
        **more,  # type: ignore[arg-type]
    )


def _receive(harness: Harness, record: ReturnRecord, line: str = "L1") -> ReturnRecord:
    harness.service.handle(
        WarehouseReceipt(
            shop=SHOP,
            return_id=record.id,
            event_id=f"wms-{record.id}",
            lines=[ReceivedLine(line_id=line, quantity=1)],
        )
    )
    return harness.service.get(SHOP, record.id)


def _refunded(harness: Harness, order_id: str) -> list[str]:
    return [str(r.amount) for r in harness.ports.commerce.refunds if r.order_id == order_id]


# -- the scenario, through the public API ------------------------------------------------------


def test_each_method_reaches_the_carrier_with_its_fee() -> None:
    harness = _harness()
    service = harness.service
    carrier = harness.ports.carrier

    assert service.quote(_request("1001")).return_shipping_fee == Money("5.00", EUR)
    assert service.quote(_request("1003", "pickup")).return_shipping_fee == Money("9.50", EUR)
    mailed = service.request(_request("1001"))
    assert mailed.method is ReturnMethod.MAIL
    assert mailed.status == "label_sent"

    dropped = service.request(_request("1002", "drop_off"))
    assert dropped.status == "label_sent"
    label = carrier.get(dropped.refs.tracking_number or "")
    assert label.method is ReturnMethod.DROP_OFF
    assert label.qr_code_url
    assert label.qr_code_url.endswith(".qr.png")
    sent = [m for m in harness.ports.notifier.messages if m.template == "label_sent"]
    assert sent[-1].context["qr_code_url"] == label.qr_code_url

    picked = service.request(_request("1003", ReturnMethod.PICKUP))
    assert carrier.get(picked.refs.tracking_number or "").method is ReturnMethod.PICKUP

    methods = [call.args["method"] for call in carrier.calls_to("create_label")]
    assert methods == ["mail", "drop_off", "pickup"]

    # The fee of each method is taken from its refund, to the cent.
    _receive(harness, mailed)
    _receive(harness, dropped)
    _receive(harness, picked)
    assert _refunded(harness, "1001") == ["75.00 EUR"]
    assert _refunded(harness, "1002") == ["75.00 EUR"]
    assert _refunded(harness, "1003") == ["70.50 EUR"]


def test_an_in_store_return_skips_the_label_and_the_transit_states() -> None:
    harness = _harness()
    service = harness.service
    assert service.quote(_request("1001", "in_store")).return_shipping_fee == Money("0.00", EUR)
    record = service.request(_request("1001", "in_store"))
    assert record.method is ReturnMethod.IN_STORE
    assert record.status == "approved"  # waiting for the store's receipt
    assert harness.ports.carrier.calls == []
    assert record.refs.tracking_number is None
    with pytest.raises(InvalidPayload) as caught:
        service.issue_label(SHOP, record.id)
    assert (caught.value.field, caught.value.value) == ("method", "in_store")
    assert service.get(SHOP, record.id).version == record.version

    done = _receive(harness, record)
    states = [entry.target[0] for entry in done.history]
    assert "label_sent" not in states
    assert "in_transit" not in states
    assert done.status in ("refunded", "closed")
    assert _refunded(harness, "1001") == ["80.00 EUR"]


def test_a_rule_narrows_the_methods_and_explains_it_in_quote() -> None:
    harness = _harness()
    service = harness.service
    quoted = service.quote(_request("1001", "pickup", line="S1"))
    assert quoted.return_shipping_fee == Money("9.50", EUR)
    assert "methods in_store, pickup" in quoted.rules[0]
    record = service.request(_request("1001", "pickup", line="S1"))
    assert record.method is ReturnMethod.PICKUP
    rule_entries = [entry.payload for entry in record.history if entry.event == "rule"]
    assert rule_entries
    assert rule_entries[0]["rule"] == BULKY.name


def test_a_record_stored_before_methods_reads_back_as_mail() -> None:
    harness = _harness()
    record = harness.service.request(_request("1001"))
    data = unstructure(record)
    del data["method"]
    assert structure(data, ReturnRecord).method is ReturnMethod.MAIL
    posted = {"shop": SHOP, "order_id": "1001", "lines": [{"order_line_id": "L1", "quantity": 1}]}
    assert request_from_dict(posted).method is ReturnMethod.MAIL
    assert request_from_dict({**posted, "method": "in_store"}).method is ReturnMethod.IN_STORE


def test_a_carrier_without_methods_still_works_for_mail() -> None:
    class OldCarrier:
        def __init__(self) -> None:
            self.asked: list[str] = []

        def create_label(
            self, shop: str, return_id: str, order_id: str, *, idempotency_key: str
        ) -> Any:
            from returnflow.ports.carrier import Label

            self.asked.append(return_id)
            return Label("OLD-1", "https://old.example/OLD-1.pdf")

        def void_label(self, shop: str, tracking_number: str, *, idempotency_key: str) -> None:
            raise AssertionError("not voided here")

    harness = _harness()
    old = OldCarrier()
    harness.service.dispatcher.carrier = old  # type: ignore[assignment]
    record = harness.service.request(_request("1001"))
    assert old.asked == [record.id]
    assert harness.service.get(SHOP, record.id).refs.tracking_number == "OLD-1"


# -- bad input: typed errors naming the field, nothing stored ----------------------------------


def _nothing_stored(harness: Harness) -> None:
    assert list(harness.service.list(SHOP)) == []
    assert harness.ports.carrier.calls == []
    assert harness.ports.warehouse.calls == []


def test_a_method_the_shop_does_not_offer_is_refused_and_nothing_is_stored() -> None:
    harness = _harness(return_methods=["mail", "in_store"])
    service = harness.service
    for call in (service.request, service.quote, service.validate_request):
        with pytest.raises(MethodNotOffered) as caught:
            call(_request("1001", "drop_off"))
        assert (caught.value.field, caught.value.value) == ("method", "drop_off")
        assert "in_store, mail" in caught.value.reason
    _nothing_stored(harness)


def test_a_method_a_rule_leaves_out_is_refused_naming_the_rule() -> None:
    harness = _harness()
    with pytest.raises(MethodNotOffered) as caught:
        harness.service.request(_request("1001", "mail", line="S1"))
    assert (caught.value.field, caught.value.value) == ("method", "mail")
    assert repr(BULKY.name) in caught.value.reason
    _nothing_stored(harness)


def test_the_default_policy_offers_mail_only() -> None:
    harness = Harness()
    harness.ports.commerce.add_order(_order("1001"))
    with pytest.raises(MethodNotOffered):
        harness.service.request(_request("1001", "in_store"))
    assert list(harness.service.list(SHOP)) == []
    assert harness.service.request(_request("1001")).method is ReturnMethod.MAIL


@pytest.mark.parametrize("value", ["boat", "", 3, None, "MAIL"])
def test_a_method_that_is_not_one_is_invalid(value: object) -> None:
    with pytest.raises(InvalidRequest) as caught:
        ReturnRequest(
            shop=SHOP,
            order_id="1001",
            lines=[RequestLine(order_line_id="L1", quantity=1)],
            method=value,
        )
    assert (caught.value.field, caught.value.value) == ("method", value)


@pytest.mark.parametrize("value", [[], "mail", ["mail", "boat"], 7])
def test_a_policy_offering_no_or_unknown_methods_is_refused(value: object) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ReturnPolicy(return_methods=value)
    assert caught.value.field == "return_methods"


def test_a_method_fee_that_cannot_work_is_refused() -> None:
    with pytest.raises(InvalidFee) as caught:
        FeePolicy(method_fees={"boat": Money("1.00", EUR)})
    assert caught.value.field == "method_fees['boat']"
    with pytest.raises(InvalidFee) as caught:
        FeePolicy(method_fees={"pickup": "9.50"})
    assert caught.value.field == "method_fees[pickup]"
    with pytest.raises(InvalidFee):
        FeePolicy(method_fees=["pickup"])


def test_bad_rule_methods_name_the_rule_and_field_in_code_json_and_toml() -> None:
    with pytest.raises(InvalidRule) as caught:
        Rule("bulky", then={"methods": ["boat"]})
    assert (caught.value.rule, caught.value.field, caught.value.value) == (
        "bulky",
        "then.methods",
        "boat",
    )
    with pytest.raises(InvalidRule) as caught:
        rules_from_json('[{"name": "none", "then": {"methods": []}}]')
    assert (caught.value.rule, caught.value.field) == ("none", "rules[0].then.methods")
    toml = (
        '[[rules]]\nname = "bulky"\nwhen = { tags = ["bulky"] }\nthen = { methods = ["pickup"] }\n'
    )
    assert rules_from_toml(toml)[0].then.methods == frozenset({ReturnMethod.PICKUP})


def test_rules_narrowing_each_other_to_nothing_refuse_every_method() -> None:
    verdict = Verdict(methods=(frozenset(), ("a", "b")))
    with pytest.raises(MethodNotOffered) as caught:
        check_method(ReturnMethod.MAIL, frozenset(ReturnMethod), verdict)
    assert "offers only: nothing" in caught.value.reason


def test_the_demo_flow_runs() -> None:
    harness, shown = shop_methods("demo-methods")
    records = [harness.service.get("demo-methods", str(item)) for item in shown]
    assert [record.method.value for record in records] == ["mail", "drop_off", "in_store", "pickup"]
    assert records[2].refs.tracking_number is None


def test_the_fake_carrier_refuses_an_in_store_label_and_replays_a_drop_off() -> None:
    carrier = Harness().ports.carrier
    with pytest.raises(PortError):
        carrier.create_label("s", "r1", "o1", idempotency_key="k1", method=ReturnMethod.IN_STORE)
    assert carrier.labels == []
    first = carrier.create_label(
        "s", "r2", "o2", idempotency_key="k2", method=ReturnMethod.DROP_OFF
    )
    again = carrier.create_label(
        "s", "r2", "o2", idempotency_key="k2", method=ReturnMethod.DROP_OFF
    )
    assert again == first
    assert first.qr_code_url is not None
    assert len(carrier.labels) == 1


def test_the_fake_carrier_refuses_a_method_that_is_not_one_as_a_carrier_would() -> None:
    carrier = Harness().ports.carrier
    with pytest.raises(PortError) as caught:
        carrier.create_label("s", "r1", "o1", idempotency_key="k1", method="teleport")  # type: ignore[arg-type]
    assert caught.value.retryable is False
    assert "teleport" in str(caught.value)
    assert carrier.labels == []


def test_a_method_fee_in_another_currency_is_refused_before_anything_is_stored() -> None:
    fees = FeePolicy(method_fees={"pickup": Money("9.50", "USD")})
    harness = _harness(fees=fees)
    with pytest.raises(CurrencyMismatch) as caught:
        harness.service.request(_request("1001", "pickup"))
    assert caught.value.field == "policy.fees.method_fees.pickup.amount.currency"
    _nothing_stored(harness)


def test_a_claim_ships_nothing_back_so_no_method_is_checked() -> None:
    harness = _harness(return_methods=["in_store"])
    claim = Claim(ClaimReason.LOST_IN_TRANSIT, "the carrier lost the parcel")
    request = ReturnRequest(
        shop=SHOP,
        order_id="1001",
        lines=[RequestLine(order_line_id="L1", quantity=1, outcome=Refund())],
        claim=claim,
    )
    harness.service.validate_request(request)
    record = harness.service.request(request)
    assert record.status == "closed"
    assert harness.ports.carrier.calls == []
