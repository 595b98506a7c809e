"""Instant exchange with a payment fallback, the plumbing: the Payments port's capture and void,
the fake that implements them, the effects that ask for them (and how they are stored), and
the dispatcher that delivers them and writes their results back to the return."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest

from returnflow import serialization
from returnflow.domain.model import ExternalRefs, ReturnRecord
from returnflow.domain.money import Money
from returnflow.errors import PortError
from returnflow.lifecycle import effects as fx
from returnflow.ports.payments import PaymentReceipt
from returnflow.ports.store import Commit, ReturnStore
from returnflow.stores.sqlite import SqliteStore
from returnflow.testing import FakePayments, Harness, make_record
from returnflow.testing.port_contracts import PaymentsContract

SHOP = "shop-a"
RETURN_ID = "R1"
ORDER_ID = "1001"


def eur(amount: str) -> Money:
    return Money(amount, "EUR")


# -- the fake ---------------------------------------------------------------------------------


def test_the_fake_authorizes_then_captures_at_most_the_amount() -> None:
    payments = FakePayments()
    auth = payments.authorize(SHOP, RETURN_ID, eur("30.00"), idempotency_key="a")
    with pytest.raises(PortError) as above:
        payments.capture(SHOP, RETURN_ID, auth.payment_id, eur("30.01"), idempotency_key="c0")
    assert not above.value.retryable
    assert payments.authorizations(SHOP, RETURN_ID) == {auth.payment_id: "authorized"}

    captured = payments.capture(SHOP, RETURN_ID, auth.payment_id, eur("25.00"), idempotency_key="c")

    assert captured == PaymentReceipt(payment_id="pay-2", amount=eur("25.00"))
    assert payments.authorizations(SHOP, RETURN_ID) == {auth.payment_id: "captured"}
    assert [(p.kind, p.amount, p.authorization_id) for p in payments.payments] == [
        ("authorization", eur("30.00"), None),
        ("capture", eur("25.00"), auth.payment_id),
    ]
    # what was captured is refundable like a charge, and no more
    payments.refund(SHOP, RETURN_ID, eur("25.00"), idempotency_key="r")
    with pytest.raises(PortError):
        payments.refund(SHOP, RETURN_ID, eur("0.01"), idempotency_key="r2")


def test_the_fake_voids_and_then_refuses_to_capture() -> None:
    payments = FakePayments()
    auth = payments.authorize(SHOP, RETURN_ID, eur("30.00"), idempotency_key="a")

    payments.void(SHOP, RETURN_ID, auth.payment_id, idempotency_key="v")

    assert payments.authorizations(SHOP, RETURN_ID) == {auth.payment_id: "voided"}
    void = payments.payments[-1]
    assert (void.kind, void.amount, void.authorization_id) == ("void", eur("30.00"), "pay-1")
    for call in (
        lambda: payments.capture(SHOP, RETURN_ID, "pay-1", eur("1.00"), idempotency_key="c"),
        lambda: payments.void(SHOP, RETURN_ID, "pay-1", idempotency_key="v2"),
    ):
        with pytest.raises(PortError, match="is voided") as refused:
            call()
        assert not refused.value.retryable
    with pytest.raises(PortError):  # nothing was charged: nothing to refund
        payments.refund(SHOP, RETURN_ID, eur("1.00"), idempotency_key="r")


@pytest.mark.parametrize(
    ("shop", "return_id", "authorization_id"),
    [(SHOP, RETURN_ID, "pay-99"), ("shop-b", RETURN_ID, "pay-1"), (SHOP, "R2", "pay-1")],
    ids=["unknown-id", "another-shop", "another-return"],
)
def test_the_fake_refuses_an_authorization_it_does_not_know_here(
    shop: str, return_id: str, authorization_id: str
) -> None:
    payments = FakePayments()
    payments.authorize(SHOP, RETURN_ID, eur("30.00"), idempotency_key="a")
    for call in (
        lambda: payments.capture(shop, return_id, authorization_id, eur("1"), idempotency_key="c"),
        lambda: payments.void(shop, return_id, authorization_id, idempotency_key="v"),
    ):
        with pytest.raises(PortError, match="no authorization") as refused:
            call()
        assert not refused.value.retryable
    assert payments.authorizations(SHOP, RETURN_ID) == {"pay-1": "authorized"}


def test_the_fake_replays_capture_and_void_keys_and_refuses_their_reuse() -> None:
    payments = FakePayments()
    first = payments.authorize(SHOP, RETURN_ID, eur("10.00"), idempotency_key="a1").payment_id
    second = payments.authorize(SHOP, RETURN_ID, eur("10.00"), idempotency_key="a2").payment_id

    receipt = payments.capture(SHOP, RETURN_ID, first, eur("10.00"), idempotency_key="c")
    again = payments.capture(SHOP, RETURN_ID, first, eur("10.00"), idempotency_key="c")
    payments.void(SHOP, RETURN_ID, second, idempotency_key="v")
    payments.void(SHOP, RETURN_ID, second, idempotency_key="v")

    assert again is receipt
    assert [p.kind for p in payments.payments] == ["authorization"] * 2 + ["capture", "void"]
    assert [call.outcome for call in payments.calls_to("capture")] == ["ok", "replayed"]
    assert [call.outcome for call in payments.calls_to("void")] == ["ok", "replayed"]
    with pytest.raises(PortError, match="reused"):
        payments.capture(SHOP, RETURN_ID, second, eur("10.00"), idempotency_key="c")
    with pytest.raises(PortError, match="reused"):
        payments.void(SHOP, RETURN_ID, first, idempotency_key="v")


def test_the_fake_fails_capture_and_void_on_demand_and_changes_nothing() -> None:
    payments = FakePayments()
    auth = payments.authorize(SHOP, RETURN_ID, eur("10.00"), idempotency_key="a").payment_id
    payments.fail("capture")
    payments.fail("void")

    with pytest.raises(PortError) as capture_failed:
        payments.capture(SHOP, RETURN_ID, auth, eur("10.00"), idempotency_key="c")
    with pytest.raises(PortError) as void_failed:
        payments.void(SHOP, RETURN_ID, auth, idempotency_key="v")

    assert capture_failed.value.retryable
    assert void_failed.value.retryable
    assert payments.authorizations(SHOP, RETURN_ID) == {auth: "authorized"}
    # a failed call stores no result for its key: the retry does it
    payments.void(SHOP, RETURN_ID, auth, idempotency_key="v")
    assert payments.authorizations(SHOP, RETURN_ID) == {auth: "voided"}


# -- the contract catches adapters that get capture and void wrong ------------------------------


class CapturesAboveTheAuthorization(FakePayments):
    def capture(
        self,
        shop: str,
        return_id: str,
        authorization_id: str,
        amount: Money,
        *,
        idempotency_key: str,
    ) -> PaymentReceipt:
        return PaymentReceipt(payment_id=f"cap-{idempotency_key}", amount=amount)


class VoidsAnything(FakePayments):
    def void(
        self, shop: str, return_id: str, authorization_id: str, *, idempotency_key: str
    ) -> None:
        return None


class CapturesAgainOnReplay(FakePayments):
    def capture(
        self,
        shop: str,
        return_id: str,
        authorization_id: str,
        amount: Money,
        *,
        idempotency_key: str,
    ) -> PaymentReceipt:
        replay = any(c.idempotency_key == idempotency_key for c in self.calls_to("capture"))
        receipt = super().capture(
            shop, return_id, authorization_id, amount, idempotency_key=idempotency_key
        )
        if replay:  # charge the customer again behind the first receipt
            self.charge(shop, return_id, amount, idempotency_key=f"{idempotency_key}/again")
        return receipt


def _failures(adapter: type[FakePayments]) -> set[str]:
    contract = type("Bound", (PaymentsContract,), {"make_payments": lambda self: adapter()})
    failed = set()
    for name in sorted(n for n in dir(contract) if n.startswith("test_")):
        instance = contract()
        try:
            getattr(instance, name)()
        except AssertionError:
            failed.add(name)
        finally:
            instance.teardown_method(None)
    return failed


@pytest.mark.parametrize(
    ("adapter", "caught_by"),
    [
        (FakePayments, set()),
        (
            CapturesAboveTheAuthorization,
            {
                "test_authorize_then_capture_at_most_the_amount",
                "test_capture_or_void_of_an_unknown_authorization_is_refused",
                "test_a_capture_after_a_void_is_refused",
            },
        ),
        (
            VoidsAnything,
            {
                "test_capture_or_void_of_an_unknown_authorization_is_refused",
                "test_a_void_after_a_capture_is_refused",
            },
        ),
        (CapturesAgainOnReplay, {"test_a_replayed_capture_captures_once"}),
    ],
    ids=["fake", "captures-anything", "voids-anything", "captures-again-on-replay"],
)
def test_the_payments_contract_catches_capture_and_void_bugs(
    adapter: type[FakePayments], caught_by: set[str]
) -> None:
    failed = _failures(adapter)
    assert caught_by <= failed, sorted(caught_by - failed)
    if not caught_by:
        assert failed == set()


# -- the effects -----------------------------------------------------------------------------


def _effects(version: int = 1) -> list[fx.Effect]:
    common: dict[str, Any] = {
        "shop": SHOP,
        "return_id": RETURN_ID,
        "order_id": ORDER_ID,
        "version": version,
    }
    return [
        fx.AuthorizePayment(key=f"{SHOP}/{RETURN_ID}/1/0/authorize", amount=eur("30.00"), **common),
        fx.CapturePayment(key=f"{SHOP}/{RETURN_ID}/1/1/capture", amount=eur("25.00"), **common),
        fx.VoidAuthorization(key=f"{SHOP}/{RETURN_ID}/1/2/void", **common),
    ]


def test_the_effects_name_their_kind_port_and_topics() -> None:
    authorize, capture, void = _effects()
    assert [(e.kind, e.port) for e in (authorize, capture, void)] == [
        ("authorize_payment", "payments"),
        ("capture_payment", "payments"),
        ("void_authorization", "payments"),
    ]
    assert [fx.describe(e) for e in (authorize, capture, void)] == [
        "payments.authorize 30.00 EUR",
        "payments.capture 25.00 EUR of the authorization",
        "payments.void the authorization",
    ]
    assert {fx.TOPICS[what] for what in ("payment_authorized", "payment_captured")} == {
        "payments/authorize",
        "payments/capture",
    }
    assert fx.TOPICS["authorization_voided"] == "payments/void"
    assert fx.TOPICS["balance_charged"] == "payments/charge"  # the old ones stay


@pytest.mark.parametrize("effect", _effects(), ids=lambda e: e.kind)
def test_an_effect_round_trips_through_the_serialization(effect: fx.Effect) -> None:
    data = serialization.unstructure(effect)
    assert data["kind"] == effect.kind
    assert serialization.structure(data, fx.Effect) == effect


def _commit(store: ReturnStore, effects: list[fx.Effect], **refs: Any) -> ReturnRecord:
    record = make_record(SHOP, RETURN_ID, 1, order_id=ORDER_ID, status="approved")
    record = attrs.evolve(record, refs=attrs.evolve(record.refs, **refs))
    store.commit(Commit(records=((record, 0),), effects=tuple(effects)))
    return record


def test_the_effects_survive_the_sqlite_outbox(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "returns.db")
    _commit(store, _effects())

    reopened = SqliteStore(tmp_path / "returns.db")
    stored = [entry.effect for entry in reopened.outbox(SHOP, RETURN_ID)]

    assert stored == _effects()
    assert [type(effect) for effect in stored] == [type(effect) for effect in _effects()]


def test_a_record_keeps_its_authorization_id_in_the_sqlite_store(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "returns.db")
    _commit(store, [], payment_authorization_id="pay-7")
    assert store.get(SHOP, RETURN_ID).refs.payment_authorization_id == "pay-7"
    assert ExternalRefs().payment_authorization_id is None


# -- the dispatcher delivers them and writes their results back -------------------------------


def _events(record: ReturnRecord) -> list[str]:
    return [entry.event for entry in record.history]


@pytest.fixture(params=["memory", "sqlite"])
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
    if request.param == "memory":
        return Harness(auto_dispatch=False)
    return Harness(store=SqliteStore(tmp_path / "returns.db"), auto_dispatch=False)


def test_an_authorization_is_written_back_to_the_refs(harness: Harness) -> None:
    authorize = _effects()[0]
    _commit(harness.store, [authorize])

    report = harness.service.dispatch_pending()

    payments = harness.ports.payments
    assert [call.idempotency_key for call in payments.calls_to("authorize")] == [authorize.key]
    (authorization,) = payments.authorizations(SHOP, RETURN_ID)
    record = harness.store.get(SHOP, RETURN_ID)
    assert record.refs.payment_authorization_id == authorization
    entry = record.history[-1]
    assert (entry.event, entry.payload["payment"]) == ("payment_authorized", authorization)
    assert harness.ports.events.topics_for(RETURN_ID) == ["payments/authorize"]
    published = harness.ports.events.events[-1]
    assert published.payload["payment_id"] == authorization
    assert published.payload["amount"] == "30.00 EUR"
    assert report.delivered == 2  # the authorization, then its event


def test_a_capture_is_made_of_the_authorization_on_the_record(harness: Harness) -> None:
    payments = harness.ports.payments
    auth = payments.authorize(SHOP, RETURN_ID, eur("30.00"), idempotency_key="a").payment_id
    capture = _effects()[1]
    _commit(harness.store, [capture], payment_authorization_id=auth)

    harness.service.dispatch_pending()

    (call,) = payments.calls_to("capture")
    assert call.args["authorization_id"] == auth
    assert call.idempotency_key == capture.key
    assert payments.authorizations(SHOP, RETURN_ID) == {auth: "captured"}
    record = harness.store.get(SHOP, RETURN_ID)
    assert _events(record)[-1] == "payment_captured"
    assert record.history[-1].payload["authorization"] == auth
    assert harness.ports.events.topics_for(RETURN_ID) == ["payments/capture"]
    assert all(entry.status == "done" for entry in harness.store.outbox(SHOP, RETURN_ID))


def test_a_void_releases_the_authorization_on_the_record(harness: Harness) -> None:
    payments = harness.ports.payments
    auth = payments.authorize(SHOP, RETURN_ID, eur("30.00"), idempotency_key="a").payment_id
    _commit(harness.store, [_effects()[2]], payment_authorization_id=auth)

    harness.service.dispatch_pending()

    assert payments.authorizations(SHOP, RETURN_ID) == {auth: "voided"}
    record = harness.store.get(SHOP, RETURN_ID)
    assert (record.history[-1].event, record.history[-1].payload) == (
        "authorization_voided",
        {"authorization": auth},
    )
    assert harness.ports.events.topics_for(RETURN_ID) == ["payments/void"]


def test_authorize_then_void_in_one_outbox_uses_the_written_back_id(harness: Harness) -> None:
    authorize, _, void = _effects()
    _commit(harness.store, [authorize, void])

    harness.service.dispatch_pending()

    payments = harness.ports.payments
    record = harness.store.get(SHOP, RETURN_ID)
    auth = record.refs.payment_authorization_id
    assert auth is not None
    assert payments.authorizations(SHOP, RETURN_ID) == {auth: "voided"}
    assert [e for e in _events(record) if "authoriz" in e] == [
        "payment_authorized",
        "authorization_voided",
    ]


@pytest.mark.parametrize("which", [1, 2], ids=["capture", "void"])
def test_without_an_authorization_id_capture_and_void_wait(harness: Harness, which: int) -> None:
    _commit(harness.store, [_effects()[which]])

    report = harness.service.dispatch_pending()

    assert (report.delivered, report.failed) == (0, 1)
    (entry,) = harness.store.outbox(SHOP, RETURN_ID)
    assert entry.status == "pending"
    assert "payment_authorization_id" in (entry.last_error or "")
    assert harness.ports.payments.calls == []


def test_a_refused_capture_is_given_up_and_the_return_goes_to_a_person(harness: Harness) -> None:
    payments = harness.ports.payments
    auth = payments.authorize(SHOP, RETURN_ID, eur("30.00"), idempotency_key="a").payment_id
    payments.void(SHOP, RETURN_ID, auth, idempotency_key="v")
    _commit(harness.store, [_effects()[1]], payment_authorization_id=auth)

    report = harness.service.dispatch_pending()

    assert report.given_up == 1
    record = harness.store.get(SHOP, RETURN_ID)
    assert any(reason.startswith("capture_payment failed") for reason in record.review_reasons)
