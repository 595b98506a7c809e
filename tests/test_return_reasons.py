"""Return reasons as data, per shop (issue 17): each shop defines its reasons (handle,
title, note or photo required, fees waived, merchant's fault); the ReturnReason values keep
working."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from returnflow import (
    STANDARD_REASONS,
    ConfigurationError,
    EvidenceRequired,
    FeePolicy,
    InvalidFee,
    InvalidRequest,
    Money,
    RequestLine,
    ReturnPolicy,
    ReturnReason,
    ReturnReasonDefinition,
    ReturnRequest,
    ShopPolicies,
    UnknownReason,
)
from returnflow.demo.merchant import shop_reasons
from returnflow.domain.reasons import definition_of, with_standard
from returnflow.stores import open_store
from returnflow.testing import Harness, make_order

EUR = "EUR"
SHIPPING = FeePolicy(return_shipping=Money("4.00", EUR))


def _boutique() -> ReturnPolicy:
    return ReturnPolicy(
        version="boutique-1",
        fees=SHIPPING,
        reasons=with_standard(
            [
                ReturnReasonDefinition(
                    "arrived-late", "Arrived too late", fees_waived=True, merchants_fault=True
                ),
                ReturnReasonDefinition("defective", "Defective", photo_required=True),
                ReturnReasonDefinition("gift", "It was a gift", note_required=True),
            ]
        ),
        review_reasons=frozenset({"gift"}),
    )


def _harness(**kwargs: object) -> Harness:
    harness = Harness(
        policies=ShopPolicies({"boutique": _boutique(), "plain": ReturnPolicy(fees=SHIPPING)}),
        **kwargs,  # type: ignore[arg-type]
    )
    for shop in ("boutique", "plain"):
        for order_id in ("1001", "1002", "1003"):
            harness.ports.commerce.add_order(make_order(shop, order_id))
    return harness


def _request(shop: str, order_id: str = "1001", **line: object) -> ReturnRequest:
    return ReturnRequest(
        shop=shop,
        order_id=order_id,
        lines=[RequestLine(order_line_id="L1", quantity=1, **line)],  # type: ignore[arg-type]
    )


def test_a_shop_defines_its_reasons_and_each_does_what_it_says(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "returns.db"))
    harness = _harness(store=store)
    service = harness.service
    # Fees waived by the shop's own reason; the standard enum values still charge them.
    assert service.quote(_request("boutique", reason="arrived-late")).fees == Money("0.00", EUR)
    old = _request("boutique", reason=ReturnReason.SIZE_TOO_SMALL)
    assert service.quote(old).fees == Money("4.00", EUR)
    assert service.quote(_request("boutique", reason="SIZE_TOO_SMALL")).fees == Money("4.00", EUR)
    late = service.request(_request("boutique", reason="arrived-late"))
    assert late.status == "label_sent"
    # The boutique wants a photo of a defect; given, it is kept with the line.
    photo = "https://cdn.example.com/returns/defect-1.jpg"
    defect = service.request(_request("boutique", "1002", reason="defective", photos=[photo]))
    assert defect.lines[0].reason is ReturnReason.DEFECTIVE
    assert defect.lines[0].photos == (photo,)
    # A gift needs a note and goes to review (a handle in review_reasons).
    gift = service.request(_request("boutique", "1003", reason="gift", note="from my aunt"))
    assert gift.status == "pending_review"
    assert gift.review_reasons == ("line L1 reason gift",)
    # Read back from the store: the handle and the photo survive.
    again = service.get("boutique", late.id)
    assert again.lines[0].reason == "arrived-late"
    assert service.get("boutique", defect.id).lines[0].photos == (photo,)
    store.close()


def test_missing_evidence_is_refused_and_nothing_is_stored() -> None:
    harness = _harness()
    service = harness.service
    with pytest.raises(EvidenceRequired) as caught:
        service.request(_request("boutique", reason="defective"))
    assert (caught.value.field, caught.value.value) == ("lines[0].photos", [])
    with pytest.raises(EvidenceRequired) as caught:
        service.request(_request("boutique", reason="gift", note="   "))
    assert (caught.value.field, caught.value.value) == ("lines[0].note", "   ")
    with pytest.raises(EvidenceRequired):
        service.quote(_request("boutique", reason="gift"))
    assert list(service.list("boutique")) == []
    assert harness.ports.carrier.calls == []


def test_a_reason_another_shop_defines_is_unknown_here() -> None:
    harness = _harness()
    with pytest.raises(UnknownReason) as caught:
        harness.service.request(_request("plain", reason="arrived-late"))
    assert (caught.value.field, caught.value.value) == ("lines[0].reason", "arrived-late")
    assert "defective" in caught.value.reason
    assert list(harness.service.list("plain")) == []


def test_the_standard_reasons_keep_working_and_unknown_is_always_accepted() -> None:
    policy = ReturnPolicy(reasons=[ReturnReasonDefinition("too-big", "Too big")], fees=SHIPPING)
    harness = Harness(policy=policy)
    harness.ports.commerce.add_order(make_order("shop", "1001"))
    assert harness.service.request(_request("shop")).lines[0].reason is ReturnReason.UNKNOWN
    with pytest.raises(UnknownReason):
        harness.service.validate_request(_request("shop", reason=ReturnReason.DEFECTIVE))
    # The default policy offers the ten standard reasons; three waive fees.
    assert len(STANDARD_REASONS) == len(ReturnReason)
    waived = {item.handle for item in STANDARD_REASONS if item.fees_waived}
    assert waived == {"defective", "wrong-item", "not-as-described"}
    found = definition_of(STANDARD_REASONS, ReturnReason.SIZE_TOO_SMALL)
    assert found is not None
    assert found.handle == "size-too-small"


def test_a_definition_without_fees_waived_does_not_waive_the_fee_list() -> None:
    # fees.waive_for_reasons still waives; a definition can only add to it.
    policy = ReturnPolicy(fees=SHIPPING, reasons=with_standard([]))
    assert policy.settled_fees is policy.fees
    added = ReturnPolicy(
        fees=SHIPPING, reasons=with_standard([ReturnReasonDefinition("x", "X", fees_waived=True)])
    )
    assert "x" in added.settled_fees.waive_for_reasons


@pytest.mark.parametrize(
    ("build", "error", "field"),
    [
        (lambda: ReturnReasonDefinition("Arrived Late", "Late"), ConfigurationError, "handle"),
        (lambda: ReturnReasonDefinition("late", ""), ConfigurationError, "title"),
        (
            lambda: ReturnReasonDefinition("late", "Late", note_required="yes"),  # type: ignore[arg-type]
            ConfigurationError,
            "note_required",
        ),
        (
            lambda: ReturnPolicy(
                reasons=[ReturnReasonDefinition("a", "A"), ReturnReasonDefinition("a", "B")]
            ),
            ConfigurationError,
            "reasons[1].handle",
        ),
        (lambda: ReturnPolicy(reasons=["late"]), ConfigurationError, "reasons[0]"),
        (lambda: ReturnPolicy(reasons="late"), ConfigurationError, "reasons"),
        (lambda: ReturnPolicy(review_reasons={"Bad!"}), ConfigurationError, "review_reasons"),
        (lambda: ReturnPolicy(review_reasons="gift"), ConfigurationError, "review_reasons"),
        (lambda: FeePolicy(waive_for_reasons={"Bad!"}), InvalidFee, "waive_for_reasons"),
        (
            lambda: RequestLine(order_line_id="L1", quantity=1, reason="Bad!"),
            InvalidRequest,
            "reason",
        ),
        (
            lambda: RequestLine(order_line_id="L1", quantity=1, photos="a.jpg"),
            InvalidRequest,
            "photos",
        ),
        (
            lambda: RequestLine(order_line_id="L1", quantity=1, photos=[""]),
            InvalidRequest,
            "photos[0]",
        ),
    ],
)
def test_bad_reason_configuration_and_input_name_the_field(
    build: Callable[[], object], error: type[Exception], field: str
) -> None:
    with pytest.raises(error) as caught:
        build()
    assert caught.value.field == field  # type: ignore[attr-defined]


def test_the_demo_shows_a_fee_waived_by_the_shops_own_reason() -> None:
    harness, shown = shop_reasons("demo")
    refunds = [str(refund.amount) for refund in harness.ports.commerce.refunds]
    assert refunds == ["75.00 EUR", "84.90 EUR", "84.90 EUR"]  # the merchant's fault: shipping
    record = harness.service.get("demo", str(shown[1]))
    assert record.lines[0].reason == "arrived-late"
