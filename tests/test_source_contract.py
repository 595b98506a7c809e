"""The return source contract, run against the fake; sources with planted bugs, which the
contract must fail; and the fake source's own behaviour (failures, calls, updates)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import attrs
import pytest

from returnflow import ExternalLine, ExternalReturn, SourceStatus
from returnflow.errors import ConfigurationError, InvalidPayload, PortError, ValidationError
from returnflow.ports.source import ReturnSource, SourcePage
from returnflow.testing import FakeReturnSource, ReturnSourceContract

AT = datetime(2026, 1, 12, 9, 0, tzinfo=timezone.utc)


class TestFakeReturnSource(ReturnSourceContract):
    def make_source(self) -> ReturnSource:
        return FakeReturnSource()


class TestFakeReturnSourceOtherwiseNamed(ReturnSourceContract):
    """The class attributes configure the suite: another shop, order and start."""

    SHOP = "shop-usd"
    ORDER_ID = "2001"
    START = datetime(2025, 12, 31, 23, 30, tzinfo=timezone.utc)

    def make_source(self) -> ReturnSource:
        return FakeReturnSource("loop_eu")


# -- running the contract in process -----------------------------------------------------------


def contract_failures(make: Callable[[], object]) -> dict[str, BaseException]:
    """Run every test of the contract against ``make()``; the tests that failed."""
    contract = type("Bound", (ReturnSourceContract,), {"make_source": lambda self: make()})
    failures: dict[str, BaseException] = {}
    for name in sorted(dir(contract)):
        if not name.startswith("test_"):
            continue
        instance = contract()
        try:
            getattr(instance, name)()
        except (Exception, pytest.fail.Exception) as error:
            failures[name] = error
        finally:
            instance.teardown_method(None)
    return failures


def test_the_in_process_runner_passes_the_fake() -> None:
    assert contract_failures(FakeReturnSource) == {}


# -- sources with planted bugs ---------------------------------------------------------------


class OffsetPages(FakeReturnSource):
    """Pages by position: a return that moves while the listing is paged makes one skip."""

    def list_returns(
        self,
        shop: str,
        since: datetime,
        until: datetime,
        *,
        page: str | None = None,
        limit: int = 100,
    ) -> SourcePage:
        everything: list[ExternalReturn] = []
        token: str | None = None
        while True:
            got = super().list_returns(shop, since, until, page=token, limit=1000)
            everything.extend(got.returns)
            token = got.next_page
            if token is None:
                break
        offset = int(page) if page is not None else 0
        chunk = everything[offset : offset + limit]
        more = offset + limit < len(everything)
        return SourcePage(tuple(chunk), (), str(offset + limit) if more else None)


class UntilIncluded(FakeReturnSource):
    def list_returns(self, shop: str, since: datetime, until: datetime, **kw: Any) -> SourcePage:
        return super().list_returns(shop, since, until + timedelta(microseconds=1), **kw)


class UpdatedOnly(FakeReturnSource):
    """Filters on updated_at alone: a return created in the window, updated after, is lost."""

    def list_returns(self, shop: str, since: datetime, until: datetime, **kw: Any) -> SourcePage:
        page = super().list_returns(shop, since, until, **kw)
        kept = tuple(r for r in page.returns if since <= r.updated_at < until)
        return attrs.evolve(page, returns=kept)


class UnknownRaises(FakeReturnSource):
    def get_return(self, shop: str, external_id: str) -> ExternalReturn | None:
        found = super().get_return(shop, external_id)
        if found is None:
            raise PortError("source", "get_return", "404", retryable=False)
        return found


class AllShops(FakeReturnSource):
    """Ignores the shop."""

    def get_return(self, shop: str, external_id: str) -> ExternalReturn | None:
        return next((r for r in self.returns if r.external_id == external_id), None)

    def list_returns(self, shop: str, since: datetime, until: datetime, **kw: Any) -> SourcePage:
        pages = [super().list_returns(name, since, until, **kw) for name in ("shop-a", "shop-b")]
        merged = sorted(
            (r for page in pages for r in page.returns),
            key=lambda r: (r.updated_at, r.external_id),
        )
        return SourcePage(tuple(merged), (), None)


class BadDataRaises(FakeReturnSource):
    def list_returns(self, shop: str, since: datetime, until: datetime, **kw: Any) -> SourcePage:
        page = super().list_returns(shop, since, until, **kw)
        if page.rejected:
            raise page.rejected[0].error
        return page


class IgnoresLimit(FakeReturnSource):
    def list_returns(self, shop: str, since: datetime, until: datetime, **kw: Any) -> SourcePage:
        kw["limit"] = 1000
        return super().list_returns(shop, since, until, **kw)


class ById(FakeReturnSource):
    """Orders each page by id only."""

    def list_returns(self, shop: str, since: datetime, until: datetime, **kw: Any) -> SourcePage:
        kw["limit"] = 1000
        page = super().list_returns(shop, since, until, **kw)
        ordered = sorted(page.returns, key=lambda r: r.external_id, reverse=True)
        return attrs.evolve(page, returns=tuple(ordered))


class AnyTokenRestarts(FakeReturnSource):
    """Treats a token it does not know as the start of the listing."""

    def list_returns(self, shop: str, since: datetime, until: datetime, **kw: Any) -> SourcePage:
        try:
            return super().list_returns(shop, since, until, **kw)
        except PortError:
            kw["page"] = None
            return super().list_returns(shop, since, until, **kw)


BUGS = [
    pytest.param(
        OffsetPages, {"test_a_return_updated_while_paging_is_not_skipped"}, id="offset-pages"
    ),
    pytest.param(UntilIncluded, {"test_since_is_in_the_window_and_until_is_not"}, id="until-in"),
    pytest.param(
        UpdatedOnly,
        {"test_a_return_created_in_the_window_and_updated_after_it_is_listed"},
        id="updated-at-only",
    ),
    pytest.param(UnknownRaises, {"test_get_return_of_an_unknown_id_is_none"}, id="404-raises"),
    pytest.param(AllShops, {"test_another_shops_return_is_invisible"}, id="all-shops"),
    pytest.param(
        BadDataRaises, {"test_bad_data_is_rejected_in_the_page_not_raised"}, id="bad-data-raises"
    ),
    pytest.param(IgnoresLimit, {"test_pages_are_bounded_ordered_and_complete"}, id="no-limit"),
    pytest.param(ById, {"test_pages_are_bounded_ordered_and_complete"}, id="ordered-by-id"),
    pytest.param(AnyTokenRestarts, {"test_a_bad_page_token_is_refused"}, id="any-token"),
]


@pytest.mark.parametrize(("adapter", "caught_by"), BUGS)
def test_the_contract_catches_a_planted_bug(
    adapter: Callable[[], object], caught_by: set[str]
) -> None:
    failures = contract_failures(adapter)
    missed = caught_by - failures.keys()
    assert not missed, f"the contract missed the bug in {sorted(missed)}"
    for name in caught_by:
        assert isinstance(failures[name], AssertionError), (name, failures[name])


def test_a_failing_test_says_what_the_source_did_wrong() -> None:
    contract = type("Bound", (ReturnSourceContract,), {"make_source": lambda self: OffsetPages()})
    with pytest.raises(AssertionError, match="keyset pages, not offsets"):
        contract().test_a_return_updated_while_paging_is_not_skipped()  # type: ignore[abstract]


class _NoAdd:
    """A source seeded some other way."""

    name = "loop"

    def __init__(self) -> None:
        self.fake = FakeReturnSource()

    def list_returns(self, *args: Any, **kw: Any) -> SourcePage:
        return self.fake.list_returns(*args, **kw)

    def get_return(self, shop: str, external_id: str) -> ExternalReturn | None:
        return self.fake.get_return(shop, external_id)


def test_without_add_the_seeding_hooks_say_to_override_them() -> None:
    contract = type("Bound", (ReturnSourceContract,), {"make_source": lambda self: _NoAdd()})()
    with pytest.raises(ConfigurationError, match=r"override Bound\.seed_return"):
        contract.test_get_return_returns_the_return()  # type: ignore[attr-defined]
    with pytest.raises(ConfigurationError, match=r"override Bound\.seed_bad_return"):
        contract.seed_bad_return(_NoAdd(), "shop-a", "x", AT)  # type: ignore[attr-defined]


def test_hooks_that_seed_another_way_pass_the_contract() -> None:
    class Hooked(ReturnSourceContract):
        def make_source(self) -> ReturnSource:
            return _NoAdd()

        def seed_return(self, source: ReturnSource, external: ExternalReturn) -> ExternalReturn:
            assert isinstance(source, _NoAdd)
            source.fake.add(external)
            return external

        update_return = seed_return

        def seed_bad_return(
            self, source: ReturnSource, shop: str, external_id: str, at: datetime
        ) -> None:
            assert isinstance(source, _NoAdd)
            source.fake.add_payload(shop, external_id, {"lines": []}, updated_at=at)

    failures: dict[str, BaseException] = {}
    for name in sorted(dir(Hooked)):
        if name.startswith("test_"):
            try:
                getattr(Hooked(), name)()
            except Exception as error:
                failures[name] = error
    assert failures == {}


# -- the fake itself ----------------------------------------------------------------------------


def external(external_id: str, minutes: int = 0, **changes: Any) -> ExternalReturn:
    at = AT + timedelta(minutes=minutes)
    value = ExternalReturn(
        source="loop",
        external_id=external_id,
        shop="shop-a",
        order_id="1001",
        lines=[ExternalLine(order_line_id="L1", quantity=1)],
        created_at=at,
        updated_at=at,
    )
    return attrs.evolve(value, **changes) if changes else value


def test_the_fake_records_reads_and_fails_on_demand() -> None:
    source = FakeReturnSource(returns=[external("1"), external("2", 1)])
    window = (AT, AT + timedelta(hours=1))
    source.fail("list_returns", times=2)
    for _ in range(2):
        with pytest.raises(PortError) as failed:
            source.list_returns("shop-a", *window)
        assert failed.value.retryable
        assert (failed.value.port, failed.value.operation) == ("source", "list_returns")
    assert [r.external_id for r in source.list_returns("shop-a", *window).returns] == ["1", "2"]
    assert [call.outcome for call in source.calls_to("list_returns")] == ["failed"] * 2 + ["ok"]
    call = source.calls_to("list_returns")[-1]
    assert call.args == {
        "shop": "shop-a",
        "since": window[0],
        "until": window[1],
        "page": None,
        "limit": 100,
    }
    assert call.idempotency_key is None

    source.fail("get_return", times=None)  # always, until healed
    for _ in range(3):
        with pytest.raises(PortError):
            source.get_return("shop-a", "1")
    source.heal()
    assert source.get_return("shop-a", "1") == external("1")


def test_the_fake_fails_at_a_rate_reproducibly() -> None:
    def outcomes() -> list[str]:
        source = FakeReturnSource(returns=[external("1")])
        source.fail_rate(0.5, seed=7)
        for _ in range(20):
            with contextlib.suppress(PortError):
                source.get_return("shop-a", "1")
        return [call.outcome for call in source.calls]

    first = outcomes()
    assert first == outcomes()
    assert 0 < first.count("failed") < 20


def test_the_fake_updates_a_return_forward_only() -> None:
    source = FakeReturnSource(returns=[external("1")])
    later = AT + timedelta(hours=1)
    updated = source.update("shop-a", "1", at=later, status="cancelled")
    assert updated.status is SourceStatus.CANCELLED
    assert updated.updated_at == later
    assert source.get_return("shop-a", "1") == updated
    with pytest.raises(ValueError, match="goes back"):
        source.update("shop-a", "1", at=AT, status="open")
    with pytest.raises(KeyError):
        source.update("shop-a", "404", at=later)
    with pytest.raises(InvalidPayload):  # the new value is checked like any other
        source.update("shop-a", "1", at=later, lines=())


def test_the_fake_takes_only_its_own_returns() -> None:
    with pytest.raises(ValueError, match="not this source"):
        FakeReturnSource("narvar").add(external("1"))
    with pytest.raises(TypeError):
        FakeReturnSource().add({"external_id": "1"})  # type: ignore[arg-type]
    with pytest.raises(InvalidPayload, match="source"):
        FakeReturnSource("Loop-Returns")


@pytest.mark.parametrize(
    ("since", "until", "page", "limit"),
    [
        (AT.replace(tzinfo=None), AT, None, 10),
        (AT, AT + timedelta(hours=1), None, 0),
        (AT, AT + timedelta(hours=1), "nonsense", 10),
        (AT, AT + timedelta(hours=1), "shop-a|x|y|z|1", 10),
    ],
)
def test_the_fake_refuses_what_can_never_be_listed(
    since: datetime, until: datetime, page: str | None, limit: int
) -> None:
    source = FakeReturnSource(returns=[external("1"), external("2", 1)])
    with pytest.raises(PortError) as refused:
        source.list_returns("shop-a", since, until, page=page, limit=limit)
    assert not refused.value.retryable


def test_a_token_of_another_listing_is_refused() -> None:
    source = FakeReturnSource(returns=[external("1"), external("2", 1)])
    first = source.list_returns("shop-a", AT, AT + timedelta(hours=1), limit=1)
    assert first.next_page is not None
    with pytest.raises(PortError, match="not one of this listing's"):
        source.list_returns("shop-a", AT, AT + timedelta(hours=2), page=first.next_page)


def test_bad_data_reads_as_its_validation_error() -> None:
    source = FakeReturnSource(returns=[external("1")])
    source.add_payload("shop-a", "2", {"source": "loop", "lines": [{"quantity": 0}]}, updated_at=AT)
    page = source.list_returns("shop-a", AT, AT + timedelta(hours=1))
    assert [r.external_id for r in page.returns] == ["1"]
    (rejected,) = page.rejected
    assert (rejected.external_id, rejected.updated_at) == ("2", AT)
    assert isinstance(rejected.error, ValidationError)
    with pytest.raises(ValidationError):
        source.get_return("shop-a", "2")
