"""Per-shop policies (issue 17): a PolicySource resolves each shop's policy when a decision
is made, the version in force is recorded on the return, and later decisions of that
return use that version."""

from __future__ import annotations

import pytest

from returnflow import (
    CarrierStatus,
    CarrierUpdate,
    ConfigurationError,
    DeclineReason,
    FeePolicy,
    Fixed,
    Money,
    Percent,
    RefundTrigger,
    RequestLine,
    ReturnPolicy,
    ReturnRecord,
    ReturnRequest,
    ReturnsService,
    ShopPolicies,
    StaticPolicy,
    UnknownShop,
)
from returnflow.demo.merchant import two_shops
from returnflow.serialization import structure, unstructure
from returnflow.stores.memory import MemoryStore
from returnflow.testing import FakePorts, Harness, make_order

EUR = "EUR"


def _request(shop: str, order_id: str = "1001", quantity: int = 1) -> ReturnRequest:
    return ReturnRequest(
        shop=shop,
        order_id=order_id,
        lines=[RequestLine(order_line_id="L1", quantity=quantity)],
    )


def _two_shops() -> ShopPolicies:
    return ShopPolicies(
        {
            "outlet": ReturnPolicy(
                version="outlet-1",
                window_days=14,
                fees=FeePolicy(return_shipping=Money("5.00", EUR)),
                refund_trigger=RefundTrigger.ON_HANDED_IN,
            ),
            "flagship": ReturnPolicy(
                version="flagship-1",
                window_days=60,
                fees=FeePolicy(restocking=Percent(10)),
            ),
        }
    )


def _service_with_both() -> ReturnsService:
    ports = FakePorts()
    return ReturnsService(
        store=MemoryStore(),
        commerce=ports.commerce,
        warehouse=ports.warehouse,
        carrier=ports.carrier,
        payments=ports.payments,
        notifier=ports.notifier,
        events=ports.events,
        policy=ReturnPolicy(),
        policies=ShopPolicies({}),
    )


def _harness(policies: ShopPolicies) -> Harness:
    harness = Harness(policies=policies)
    for shop in ("outlet", "flagship", "elsewhere"):
        harness.ports.commerce.add_order(make_order(shop, "1001"))
        harness.ports.commerce.add_order(make_order(shop, "1002"))
    return harness


def test_two_shops_in_one_service_have_their_own_window_fees_and_refund_trigger() -> None:
    harness = _harness(_two_shops())
    service = harness.service
    # Fees: each shop's own, quoted before anything is stored.
    assert service.quote(_request("outlet")).fees == Money("5.00", EUR)
    assert service.quote(_request("flagship")).fees == Money("1.00", EUR)
    # Trigger: the outlet refunds at the first carrier scan, the flagship at completion.
    outlet = service.request(_request("outlet"))
    flagship = service.request(_request("flagship"))
    assert (outlet.policy_version, flagship.policy_version) == ("outlet-1", "flagship-1")
    for record in (outlet, flagship):
        service.handle(
            CarrierUpdate(
                shop=record.shop,
                return_id=record.id,
                event_id=f"scan-{record.id}",
                status=CarrierStatus.PICKED_UP,
            )
        )
    refunds = harness.ports.commerce.refunds
    assert [(refund.shop, str(refund.amount)) for refund in refunds] == [
        ("outlet", "5.00 EUR")  # 10.00 less the 5.00 return shipping fee
    ]
    # Window: 20 days after the order, 14 days have ended for the outlet only.
    harness.clock.advance(days=15)
    late = service.request(_request("outlet", "1002"))
    assert (late.status, late.decline_reason) == ("declined", DeclineReason.RETURN_PERIOD_ENDED)
    assert service.request(_request("flagship", "1002")).status == "label_sent"


def test_a_return_keeps_the_policy_version_it_was_opened_under() -> None:
    first = ReturnPolicy(version="2026-01")
    harness = _harness(ShopPolicies({"outlet": first}))
    service = harness.service
    opened = service.request(_request("outlet", "1001"))
    # The shop moves to refunds at the first scan; the open return keeps its rules.
    service.policies = ShopPolicies(
        {
            "outlet": [
                first,
                ReturnPolicy(version="2026-02", refund_trigger=RefundTrigger.ON_HANDED_IN),
            ]
        }
    )
    later = service.request(_request("outlet", "1002"))
    assert (opened.policy_version, later.policy_version) == ("2026-01", "2026-02")
    for record in (opened, later):
        service.handle(
            CarrierUpdate(
                shop="outlet",
                return_id=record.id,
                event_id=f"scan-{record.id}",
                status=CarrierStatus.PICKED_UP,
            )
        )
    refunded = {refund.order_id for refund in harness.ports.commerce.refunds}
    assert refunded == {"1002"}
    assert service.get("outlet", opened.id).policy_version == "2026-01"


def test_unnamed_shops_get_the_default_and_a_static_policy_serves_every_shop() -> None:
    harness = _harness(ShopPolicies({"outlet": ReturnPolicy(version="o")}, default=ReturnPolicy()))
    assert harness.service.request(_request("elsewhere")).policy_version == "1"
    static = StaticPolicy(ReturnPolicy(window_days=3))
    assert static.policy_for("any") is static.policy_for("other", "old-version")


def test_the_policy_keyword_keeps_working_and_is_the_static_source() -> None:
    policy = ReturnPolicy(window_days=7)
    harness = Harness(policy=policy)
    assert isinstance(harness.service.policies, StaticPolicy)
    assert harness.service.policy is policy
    replaced = ReturnPolicy(window_days=9)
    harness.service.policy = replaced
    assert harness.service.policies.policy_for("shop") is replaced


def test_a_record_stored_before_versions_reads_back_and_uses_the_policy_in_force() -> None:
    harness = _harness(_two_shops())
    record = harness.service.request(_request("flagship"))
    data = unstructure(record)
    del data["policy_version"]
    old = structure(data, ReturnRecord)
    assert old.policy_version is None
    assert harness.service.dispatcher.policy_of(old).version == "flagship-1"


# -- bad input and bad configuration: typed errors, nothing stored -----------------------------


def test_a_shop_without_a_policy_is_refused_and_nothing_is_stored() -> None:
    harness = _harness(_two_shops())
    with pytest.raises(UnknownShop) as caught:
        harness.service.request(_request("elsewhere"))
    assert (caught.value.field, caught.value.value) == ("shop", "elsewhere")
    with pytest.raises(UnknownShop):
        harness.service.quote(_request("elsewhere"))
    with pytest.raises(UnknownShop):
        harness.service.validate_request(_request("elsewhere"))
    assert list(harness.service.list("elsewhere")) == []
    assert harness.ports.carrier.calls == []
    assert harness.ports.notifier.calls == []


def test_a_version_the_source_no_longer_has_is_a_configuration_error_and_changes_nothing() -> None:
    first = ReturnPolicy(version="v1", auto_approve_limit=Money("15.00", EUR))
    harness = _harness(ShopPolicies({"outlet": first}))
    record = harness.service.request(_request("outlet", quantity=2))
    assert record.status == "pending_review"
    waiting = harness.service.request(_request("outlet", "1002"))
    assert waiting.status == "label_sent"
    harness.service.policies = ShopPolicies({"outlet": ReturnPolicy(version="v2")})
    with pytest.raises(ConfigurationError) as caught:
        harness.service.approve("outlet", record.id)
    assert (caught.value.field, caught.value.value) == ("policy_version", "v1")
    assert harness.service.get("outlet", record.id) == record
    # A tick reports the return it cannot decide for (never shipped) and goes on.
    harness.clock.advance(days=40)
    report = harness.service.tick()
    assert [error.split(":")[0] for error in report.errors] == [f"outlet/{waiting.id}"]
    assert "policy_version='v1'" in report.errors[0]
    assert harness.service.get("outlet", waiting.id) == waiting


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: ShopPolicies({"a": [ReturnPolicy(), ReturnPolicy()]}), "policies['a']"),
        (lambda: ShopPolicies({"a": []}), "policies['a']"),
        (lambda: ShopPolicies({"a": "strict"}), "policies['a']"),  # type: ignore[dict-item]
        (lambda: ShopPolicies({"a": [{"window_days": 3}]}), "policies['a']"),  # type: ignore[list-item]
        (lambda: ShopPolicies({"": ReturnPolicy()}), "policies"),
        (lambda: ShopPolicies([ReturnPolicy()]), "policies"),  # type: ignore[arg-type]
        (lambda: ShopPolicies({}, default="lenient"), "default"),  # type: ignore[arg-type]
        (lambda: StaticPolicy({"window_days": 3}), "policy"),  # type: ignore[arg-type]
        (lambda: ReturnPolicy(version=""), "version"),
        (lambda: ReturnPolicy(version=3), "version"),  # type: ignore[arg-type]
        (lambda: _service_with_both(), "policies"),
    ],
)
def test_bad_policy_configuration_names_the_field(build: object, field: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        build()  # type: ignore[operator]
    assert caught.value.field == field


def test_per_shop_policies_have_no_single_policy() -> None:
    harness = _harness(_two_shops())
    with pytest.raises(ConfigurationError) as caught:
        _ = harness.service.policy
    assert caught.value.field == "policy"


def test_a_source_that_answers_something_else_is_a_configuration_error() -> None:
    class Broken:
        def policy_for(self, shop: str, version: str | None = None) -> ReturnPolicy:
            return {"window_days": 3}  # type: ignore[return-value]

    harness = Harness(policies=Broken())
    harness.ports.commerce.add_order(make_order("s", "1001"))
    with pytest.raises(ConfigurationError) as caught:
        harness.service.request(_request("s"))
    assert caught.value.field == "policies"
    assert list(harness.service.list("s")) == []


def test_fixed_fees_of_one_shop_never_leak_into_another() -> None:
    policies = ShopPolicies(
        {
            "a": ReturnPolicy(fees=FeePolicy(return_shipping=Fixed(Money("4.00", EUR)))),
            "b": ReturnPolicy(),
        }
    )
    harness = _harness(policies)
    harness.ports.commerce.add_order(make_order("a", "2001"))
    harness.ports.commerce.add_order(make_order("b", "2001"))
    assert harness.service.quote(_request("a", "2001")).fees == Money("4.00", EUR)
    assert harness.service.quote(_request("b", "2001")).fees == Money("0.00", EUR)


def test_the_demo_runs_two_shops_side_by_side() -> None:
    harness, shown = two_shops("demo")
    service = harness.service
    states = [
        service.get(*(item if isinstance(item, tuple) else ("demo", item))).status for item in shown
    ]
    assert states == ["in_transit", "in_transit", "label_sent", "declined"]
    assert [refund.shop for refund in harness.ports.commerce.refunds] == ["demo-outlet"]


def test_a_failed_effect_is_retried_by_its_own_shops_settings() -> None:
    patient = ReturnPolicy(version="patient", max_attempts=5, retry_cap_seconds=3600.0)
    policies = ShopPolicies({"outlet": patient}, default=ReturnPolicy(version="d", max_attempts=1))
    assert policies.every() == (patient, policies.default)
    harness = _harness(policies)
    harness.ports.carrier.fail("create_label", times=2)
    record = harness.service.request(_request("outlet"))
    assert record.refs.tracking_number is None  # the label failed, retried later
    harness.dispatch_due()  # advances past the longest cap of any policy: 3600 s
    harness.dispatch_due()
    assert harness.service.get("outlet", record.id).refs.tracking_number is not None
    harness.ports.carrier.fail("create_label", times=1)
    other = harness.service.request(_request("elsewhere"))
    assert other.status == "needs_review"  # the default shop policy gives up after one try
