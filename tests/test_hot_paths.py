"""The shortcuts of the write path give what the long ways give: the record copied by the
generated evolve, Money built without its generic checks, UTC instants passed through, the
SQLite store's fixed-width times, outbox effects kept by their text instead of parsed
again, a record's lines written from the data of the same tuple."""

from __future__ import annotations

import enum
import json
import os
import sys
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from _builders import plain_body
from returnflow import _bodies, _effect_data
from returnflow.domain import _fields
from returnflow.domain._evolve import evolver
from returnflow.domain._time import EARLIEST, LATEST, instant, parse_iso
from returnflow.domain.frozen import FrozenDict, FrozenList
from returnflow.domain.model import ItemCondition, ReturnRecord
from returnflow.domain.money import Money
from returnflow.errors import (
    InvalidAmount,
    InvalidPayload,
    InvalidRequest,
    InvalidTime,
    UnknownCurrency,
)
from returnflow.lifecycle import effects as fx
from returnflow.ports.commerce import LineQuantity
from returnflow.serialization import converter
from returnflow.stores._sqlite_rows import iso
from returnflow.stores.sqlite import SqliteStore
from returnflow.testing.contract import make_record, next_version

sys.path.insert(0, os.path.dirname(__file__))

# -- the generated evolve ------------------------------------------------------------------------

evolve_record = evolver(ReturnRecord)


def test_the_generated_evolve_is_attrs_evolve() -> None:
    record = next_version(make_record("shop-a", "R1", 1), status="approved")
    changes: dict[str, Any] = {
        "status": "received",
        "version": 3,
        "customer_note": "x",
        "history": (),
    }
    assert evolve_record(record, **changes) == attrs.evolve(record, **changes)
    assert evolve_record(record) == record
    assert evolve_record(record) is not record
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        evolve_record(record, colour="red")


def test_the_record_is_copied_by_its_dict_and_the_fields_changed_are_checked() -> None:
    record = next_version(make_record("shop-a", "R1", 1), status="approved")
    copy = evolve_record(record, status="received")
    assert copy == attrs.evolve(record, status="received")
    assert copy.__dict__ is not record.__dict__
    assert record.status == "approved"
    # a field checked on the way in (the return's id, shop, order) is checked when changed
    for name in ("id", "shop", "order_id"):
        with pytest.raises(InvalidRequest) as raised:
            evolve_record(record, **{name: 7})
        with pytest.raises(InvalidRequest) as reference:
            attrs.evolve(record, **{name: 7})
        assert str(raised.value) == str(reference.value)
    with attrs.validators.disabled():
        assert evolve_record(record, id=7).id == 7
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        copy.status = "closed"  # type: ignore[misc]


def test_a_class_with_a_dict_is_copied_by_it_only_when_init_would_keep_values_as_given() -> None:
    @attrs.frozen(slots=False)
    class Plain:
        amount: int = attrs.field(validator=attrs.validators.ge(0))
        note: str = ""

    @attrs.frozen(slots=False)
    class Converted:
        amount: int = attrs.field(converter=int)

    @attrs.frozen(slots=False)
    class Private:
        _secret: str = "s"

    assert evolver(Plain)(Plain(1), note="n") == Plain(1, "n")
    with pytest.raises(ValueError, match="must be >= 0"):
        evolver(Plain)(Plain(1), amount=-1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        evolver(Plain)(Plain(1), colour="red")
    assert evolver(Converted)(Converted(1), amount="7") == Converted(7)  # type: ignore[arg-type]
    assert evolver(Private)(Private(), secret="t") == Private("t")


def test_the_generated_evolve_keeps_a_subclass_and_runs_its_checks() -> None:
    @attrs.frozen
    class Checked:
        amount: int = attrs.field(validator=attrs.validators.ge(0))
        _private: str = "p"

    @attrs.frozen
    class Sub(Checked):
        pass

    evolve = evolver(Checked)
    assert evolve(Checked(1), amount=2, private="q") == Checked(2, "q")
    assert type(evolve(Sub(1), amount=2)) is Sub
    with pytest.raises(ValueError, match="must be >= 0"):
        evolve(Checked(1), amount=-1)


def test_the_generated_evolve_of_a_class_with_keyword_only_fields_is_attrs_evolve() -> None:
    @attrs.frozen
    class Keyed:
        first: int
        second: int = attrs.field(default=0, kw_only=True)

    evolve = evolver(Keyed)
    assert evolve(Keyed(1, second=2), second=5) == Keyed(1, second=5)
    assert evolve(Keyed(1, second=2), first=7) == Keyed(7, second=2)
    with pytest.raises(TypeError, match="unexpected keyword argument 'third'"):
        evolve(Keyed(1), third=3)


# -- Money ---------------------------------------------------------------------------------------

AMOUNTS = [
    Decimal("12.00"),
    Decimal("12.5"),
    Decimal("-0.00"),
    Decimal("1.005"),
    Decimal("NaN"),
    Decimal("Infinity"),
    Decimal("1E+15"),
    Decimal("999999999999999.99"),
    12,
    "12.345",
    "abc",
    1.5,
    True,
    None,
]


def _money(amount: Any, currency: Any) -> tuple[str, Any]:
    try:
        money = Money(amount, currency)
    except (InvalidAmount, UnknownCurrency) as error:
        return (type(error).__name__, (error.field, error.value))
    return ("ok", (str(money.amount), money.amount.as_tuple(), money.currency))


def _money_the_long_way(amount: Any, currency: Any) -> tuple[str, Any]:
    """What Money's checks give, each through its generic function."""
    from returnflow.domain import money as module

    try:
        code = module._check_currency(currency)
        number = module.to_decimal(amount)
        if number and number.adjusted() >= module.MAX_DIGITS:
            raise InvalidAmount("amount", amount, "out of range")
        exact = number.quantize(module._quantum(code))
        if exact != number:
            raise InvalidAmount("amount", amount, "too many decimals")
    except (InvalidAmount, UnknownCurrency) as error:
        return (type(error).__name__, (error.field, error.value))
    result = exact + Decimal(0)
    return ("ok", (str(result), result.as_tuple(), code))


@pytest.mark.parametrize("currency", ["EUR", "JPY", "KWD", "XXX", "eur", 5, None])
@pytest.mark.parametrize("amount", AMOUNTS, ids=repr)
def test_money_gives_what_its_generic_checks_give(amount: Any, currency: Any) -> None:
    assert _money(amount, currency) == _money_the_long_way(amount, currency)


def test_a_zero_is_one_per_currency_and_a_sum_checks_the_currency() -> None:
    assert Money.zero("EUR") is Money.zero("EUR")
    assert Money.zero("EUR") == Money("0.00", "EUR")
    assert Money.sum([], "JPY") == Money(0, "JPY")
    with pytest.raises(UnknownCurrency):
        Money.zero("XXX")
    with pytest.raises(Exception, match="cannot combine EUR with USD"):
        Money("1.00", "EUR") + Money("1.00", "USD")
    with pytest.raises(InvalidAmount, match="is not Money"):
        Money("1.00", "EUR") - 1  # type: ignore[operator]
    with pytest.raises(InvalidAmount, match="out of range"):
        Money("999999999999999.00", "EUR") + Money("1.00", "EUR")
    assert str((Money("1.00", "EUR") - Money("1.00", "EUR")).amount) == "0.00"


# -- times ---------------------------------------------------------------------------------------

instants = st.datetimes(
    min_value=EARLIEST.replace(tzinfo=None),
    max_value=(LATEST - timedelta(microseconds=1)).replace(tzinfo=None),
    timezones=st.just(timezone.utc),
)


@given(instants)
def test_the_stores_fixed_width_text_is_strftimes(moment: datetime) -> None:
    text = iso(moment)
    assert text == moment.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
    assert iso(moment) == text  # the second time from what was written
    assert text is not None
    assert parse_iso(text) == moment
    assert iso(moment.astimezone(timezone(timedelta(hours=1)))) == text


def test_iso_refuses_what_it_always_refused() -> None:
    with pytest.raises(InvalidTime):
        iso(datetime(2026, 1, 1, 12))  # naive
    iso(datetime(2026, 1, 1, 12, tzinfo=timezone.utc))  # now known as an aware key
    with pytest.raises(InvalidTime):
        iso(datetime(2026, 1, 1, 12))
    with pytest.raises(InvalidTime):
        iso(datetime(1800, 1, 1, tzinfo=timezone.utc))


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-10T00:00:00.123456+00:00",
        "2026-01-10T00:00:00.12345+00:00",
        "2026-01-10 00:00:00.123456+00:00",
        "2026-01-10T00:00:00.1234567+00:00",
        "2026-01-10T00:00:00.123456Z",
        "2026-01-10T00:00:00.12a456+00:00",
        " 026-01-10T00:00:00.123456+00:00",
        "2026-01-10T00:00:00.١٢٣٤٥٦+00:00",
        "2026-13-10T00:00:00.123456+00:00",
    ],
)
def test_parse_iso_reads_every_text_as_it_did(text: str) -> None:
    import re

    zulu = re.compile(r"(?<=\d)[Zz]$")
    fraction = re.compile(r"(?<=T\d\d:\d\d:\d\d)\.(\d+)|(?<= \d\d:\d\d:\d\d)\.(\d+)")

    def before(text: str) -> datetime:
        def six(match: re.Match[str]) -> str:
            return "." + ((match.group(1) or match.group(2)) + "000000")[:6]

        return datetime.fromisoformat(fraction.sub(six, zulu.sub("+00:00", text.strip()), 1))

    def outcome(read: Any) -> Any:
        try:
            return read(text)
        except ValueError:
            return ValueError

    assert outcome(parse_iso) == outcome(before)


def test_an_instant_in_utc_is_passed_through() -> None:
    moment = datetime(2026, 1, 10, tzinfo=timezone.utc)
    assert instant("now", moment) is moment
    with pytest.raises(InvalidTime):
        instant("now", LATEST)
    with pytest.raises(InvalidTime):
        instant("now", datetime(1899, 12, 31, tzinfo=timezone.utc))


# -- outbox effects ------------------------------------------------------------------------------


def _plain(value: Any) -> str:
    return json.dumps(converter.unstructure(value), separators=(",", ":"), sort_keys=True)


def _parsed(text: str) -> fx.Effect:
    effect: fx.Effect = converter.structure(json.loads(text), fx.Effect)
    return effect


def _same(left: fx.Effect, right: fx.Effect) -> bool:
    """Equal field by field, free-form mappings included (effects compare without them),
    each of the same type."""
    return type(left) is type(right) and all(
        type(getattr(left, field.name)) is type(getattr(right, field.name))
        and getattr(left, field.name) == getattr(right, field.name)
        for field in attrs.fields(type(left))
    )


BASE: dict[str, Any] = {"shop": "shop-a", "return_id": "R1", "order_id": "O1", "version": 2}
PAYLOADS = [
    {"n": 1, "text": "naïve ☃", "nested": {"a": [1, None, True]}},
    {"ratio": 0.1},
    {"pair": (1, 2)},
    {"big": 2**70},
    {"at": "2026-01-10T00:00:00+00:00"},
]


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda payload: ",".join(payload))
def test_an_effect_written_reads_back_as_its_text_parses(payload: dict[str, Any]) -> None:
    effects: list[fx.Effect] = [
        fx.Publish(key=f"k-{json.dumps(payload, default=str)}", topic="t", payload=payload, **BASE),
        fx.Notify(
            key=f"n-{json.dumps(payload, default=str)}",
            recipient="a@b.c",
            template="x",
            context=payload,
            **BASE,
        ),
        fx.CreateWarehouseReturn(key="w", lines=(LineQuantity("L1", 2),), **BASE),
    ]
    for effect in effects:
        text = _bodies.dump_effect(effect)
        assert text == _plain(effect)
        assert _same(_bodies.load_effect(text), _parsed(text))
        _bodies._PARSED.clear()  # as another process reads it
        assert _same(_bodies.load_effect(text), _parsed(text))


def test_a_bad_effect_body_raises_what_its_parse_raises() -> None:
    good = _bodies.dump_effect(fx.Publish(key="bad-1", topic="t", payload={}, **BASE))
    for text in (good[:-1], good.replace('"publish"', '"nonsense"'), "[]"):
        try:
            _parsed(text)
        except Exception as error:  # whatever the parse raises
            expected: type[BaseException] = type(error)
        else:
            raise AssertionError(f"{text!r} parsed")
        with pytest.raises(expected):
            _bodies.load_effect(text)


def test_the_effects_kept_are_bounded() -> None:
    for n in range(_bodies._EFFECTS_KEPT + 10):
        _bodies._keep(f"text-{n}", fx.Publish(key=f"b-{n}", topic="t", **BASE))
    assert len(_bodies._PARSED) <= _bodies._EFFECTS_KEPT
    _bodies._PARSED.clear()


def test_instants_read_back_are_those_written_and_their_memo_is_bounded() -> None:
    from returnflow.stores import _sqlite_outbox

    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for n in range(len(_sqlite_outbox._MOMENTS) + 1500):
        moment = start + timedelta(seconds=n, microseconds=n % 7)
        assert _sqlite_outbox._moment(iso(moment)) == moment
        assert _sqlite_outbox._moment(iso(moment)).tzinfo is timezone.utc
    assert len(_sqlite_outbox._MOMENTS) <= 1024
    assert _sqlite_outbox._moment(None) is None


def test_the_statements_built_by_shape_are_the_ones_spelled_out() -> None:
    from returnflow.stores import _sqlite_outbox, _sqlite_rows

    assert _sqlite_rows.rows("(?, ?)", 3) == "(?, ?), (?, ?), (?, ?)"
    assert _sqlite_rows._update(("status", "body")) == (
        "UPDATE returns SET status = ?, body = ? WHERE shop = ? AND id = ? AND version = ?"
    )
    heads = _sqlite_outbox._SELECT_HEADS[True, False]
    assert heads.endswith("AND o.shop = :shop ORDER BY o.seq LIMIT :limit")
    assert ":return_id" not in heads
    assert _sqlite_outbox._SELECT_HEADS[True, True].count(" AND o.") >= 2


def test_the_sqlite_store_hands_out_its_effects_as_a_fresh_store_parses_them(
    tmp_path: Path,
) -> None:
    """A whole return on one store; its outbox read back by a second store on the file,
    with nothing kept, gives the same effects."""
    from returnflow.testing import Harness

    sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))
    import lifecycle

    store = SqliteStore(tmp_path / "r.db")
    harness = Harness(store=store)
    harness.ports.commerce.add_order(lifecycle._order("O-1"))
    return_id = lifecycle._lifecycle(harness, "O-1")
    held = store.outbox(lifecycle.SHOP, return_id)
    _bodies._PARSED.clear()
    other = SqliteStore(tmp_path / "r.db")
    fresh = other.outbox(lifecycle.SHOP, return_id)
    assert len(held) == len(fresh) > 10
    for mine, theirs in zip(held, fresh, strict=True):
        assert _same(mine.effect, theirs.effect)
        assert attrs.evolve(mine, effect=theirs.effect) == theirs
    store.close()
    other.close()


# -- a record's lines ----------------------------------------------------------------------------


def test_a_records_body_is_the_plain_one_when_its_lines_are_reused_or_changed() -> None:
    record = next_version(make_record("shop-a", "R1", 1), status="approved")
    assert _bodies.dump_body(record) == plain_body(record)
    later = attrs.evolve(record, status="received", version=3)
    assert later.lines is record.lines
    assert _bodies.dump_body(later) == plain_body(later)
    changed = attrs.evolve(later, lines=(attrs.evolve(later.lines[0], received=1),))
    assert _bodies.dump_body(changed) == plain_body(changed)
    assert '"received":1' in _bodies.dump_body(changed)


# -- a change applies its steps in one copy ------------------------------------------------------


def test_a_changes_steps_give_the_record_each_step_would_have_given() -> None:
    from returnflow.decisions.change import Change

    record = next_version(make_record("shop-a", "R1", 1), status="approved")
    now = datetime(2026, 1, 20, tzinfo=timezone.utc)
    change = Change(record, now=now, actor="t", base=record.version)
    change.note("looked", {"n": 1})
    assert change.allows("cancel")
    point = change.checkpoint()
    change.fire("cancel", {"why": "x"})
    change.update(customer_note="changed")
    change.publish("cancel")
    assert change.record.state == ("cancelled", record.exchange_status)
    assert change.record.customer_note == "changed"
    assert [entry.event for entry in change.record.history[-2:]] == ["looked", "cancel"]
    publish = change.effects[-1]
    assert isinstance(publish, fx.Publish)
    assert publish.payload["status"] == "cancelled"
    change.update(due_at=now)
    finished = change.finished()
    assert finished.version == record.version + 1
    assert finished.updated_at == now
    assert finished.due_at == now
    assert finished.history == change.record.history
    change.restore(point)
    assert change.record.state == record.state
    assert change.finished().customer_note == record.customer_note
    with pytest.raises(TypeError, match="colour"):
        change.update(colour="red")
    assert change.record.state == record.state


# -- the digits of free-form data ----------------------------------------------------------------


class _Text(str):
    """Text of a subclass of ``str``: passed as text, as the walk that names passes it."""


_LONG = 10**_fields.MAX_DIGITS


def _near_the_limit(n: int) -> int:
    """The largest whole number written as text, and three too long (drawn by index: their
    text is past what Python prints)."""
    return (_LONG - 1, _LONG, -_LONG, 2**14300)[n]


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=3),
    st.text(max_size=3).map(_Text),
    st.floats(allow_nan=False),
    st.integers(-5, 5),
    st.sampled_from(range(4)).map(_near_the_limit),
)
_FREE_FORM_DATA = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(st.one_of(st.text(max_size=2), _SCALARS), inner, max_size=3),
    ),
    max_leaves=8,
)


def _named_refusal(check: Any, value: Any) -> str | None:
    try:
        check("data", value)
    except InvalidPayload as error:
        return str(error)
    return None


@given(_FREE_FORM_DATA)
def test_the_digits_check_refuses_what_the_walk_that_names_refuses(value: Any) -> None:
    """The check walks a value without building a name per item and names the place only
    for a value it refuses: the same values refused, with the same message."""
    assert _named_refusal(_fields.check_digits, value) == _named_refusal(_fields._name_long, value)


def test_the_digits_check_names_a_long_number_deep_in_data_or_as_a_key() -> None:
    with pytest.raises(InvalidPayload, match=r"^data\.a\[1\]\.b="):
        _fields.check_digits("data", {"a": [1, {"b": _LONG}]})
    with pytest.raises(InvalidPayload, match=r"^data="):
        _fields.check_digits("data", {-_LONG: "x"})
    _fields.check_digits("data", {"a": [_LONG - 1, "x", None, (True, 2.5)]})


# -- plain JSON data -----------------------------------------------------------------------------


class _Shade(enum.Enum):
    """An enum of another package's: a parse gives its value, not the member."""

    DARK = "dark"


_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.text(max_size=2),
    st.text(max_size=2).map(_Text),
    st.floats(allow_nan=False, width=16),
    st.sampled_from([ItemCondition.DAMAGED, _Shade.DARK]),
)
_ANY_DATA = st.recursive(
    _LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.lists(inner, max_size=3).map(FrozenList),
        st.dictionaries(st.one_of(st.text(max_size=2), st.integers(0, 2)), inner, max_size=3),
        st.dictionaries(st.text(max_size=2), inner, max_size=3).map(FrozenDict),
    ),
    max_leaves=8,
)


def _plain_by_rule(
    value: Any, maps: tuple[type, ...], lists: tuple[type, ...], enums: bool
) -> bool:
    """The rule of plain JSON data spelled out, a step per value."""
    if type(value) in maps:
        return all(
            type(key) is str and _plain_by_rule(item, maps, lists, enums)
            for key, item in value.items()
        )
    if type(value) in lists:
        return all(_plain_by_rule(item, maps, lists, enums) for item in value)
    if enums and isinstance(value, enum.Enum):
        return type(value).__module__.startswith("returnflow.")
    return type(value) in (str, int, bool, type(None))


@given(_ANY_DATA)
def test_the_plain_json_checks_follow_their_rule(value: Any) -> None:
    """The write path's three checks of plain JSON data (what a parse gives back as it is;
    the converter's data of an effect; what orjson writes as json does) are one walk that
    differs in the containers it takes and whether returnflow's enums are leaves."""
    assert _effect_data.json_native(value) == _plain_by_rule(value, (dict,), (list,), False)
    assert _effect_data.exactly_plain(value) == _plain_by_rule(value, (dict,), (list, tuple), True)
    assert _bodies._free_form_plain(value) == _plain_by_rule(
        value, (dict, FrozenDict), (list, tuple, FrozenList), False
    )
    if _effect_data.json_native(value):
        assert json.loads(json.dumps(value)) == value
