"""The values a return is made of: the order as the platform reports it, the request, the record.

All classes are frozen ``attrs`` classes that check their own fields on construction and
raise a :class:`~returnflow.errors.ValidationError` subclass naming the field and value.
Checks that need the order (is this line on it, is this quantity still returnable) live in
:mod:`returnflow.domain.policy`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal

import attrs

from returnflow.domain._fields import (
    _check_count,
    _check_id,
    check_amount,
    check_key,
    check_str,
    check_url_field,
    check_words,
    coerce_enum,
    items_of,
    to_photos,
)
from returnflow.domain.claims import Claim
from returnflow.domain.frozen import FrozenDict, freeze, freeze_each
from returnflow.domain.methods import ReturnMethod, to_method
from returnflow.domain.money import Money
from returnflow.domain.order import Duty, Fulfillment, OrderLine, OrderSnapshot
from returnflow.domain.reason_codes import (
    Reason,
    ReturnReason,
    handle_of,
    platform_reason,
    reason_text,
    to_reason,
)
from returnflow.errors import (
    InvalidRequest,
    UnknownOutcome,
)

__all__ = [
    "DeclineReason",
    "Duty",
    "Exchange",
    "ExchangeLine",
    "ExternalRefs",
    "Fulfillment",
    "HistoryEntry",
    "ItemCondition",
    "Keep",
    "OrderLine",
    "OrderSnapshot",
    "Outcome",
    "OutcomeKind",
    "ParkedFact",
    "PlatformUnits",
    "QcResult",
    "Reason",
    "Refund",
    "RequestLine",
    "ReturnLine",
    "ReturnReason",
    "ReturnRecord",
    "ReturnRequest",
    "StoreCredit",
    "check_amount",
    "handle_of",
    "outcome_amounts",
    "platform_reason",
    "reason_text",
    "request_amounts",
    "to_reason",
]


class ItemCondition(str, enum.Enum):
    """The state of an item, as declared by the customer or found by the warehouse."""

    NEW = "new"
    GOOD = "good"
    USED = "used"
    DAMAGED = "damaged"


class QcResult(str, enum.Enum):
    """The warehouse's quality check of a received unit."""

    PASS = "pass"
    FAIL = "fail"


class DeclineReason(str, enum.Enum):
    """Why a return was declined (Shopify's ``ReturnDeclineReason``)."""

    RETURN_PERIOD_ENDED = "RETURN_PERIOD_ENDED"
    FINAL_SALE = "FINAL_SALE"
    OTHER = "OTHER"


class OutcomeKind(str, enum.Enum):
    REFUND = "refund"
    STORE_CREDIT = "store_credit"
    EXCHANGE = "exchange"
    KEEP = "keep"


def _to_reason(value: object) -> Reason:
    return to_reason(value)


def _to_condition(value: object) -> ItemCondition | None:
    return None if value is None else coerce_enum(ItemCondition, value, InvalidRequest, "condition")


def _to_settle(value: object) -> OutcomeKind:
    return coerce_enum(OutcomeKind, value, UnknownOutcome, "settle")


def _to_request_lines(value: Iterable[RequestLine]) -> tuple[RequestLine, ...]:
    lines = items_of("lines", value)
    for index, line in enumerate(lines):
        if not isinstance(line, RequestLine):
            raise InvalidRequest(f"lines[{index}]", line, "must be a RequestLine")
    return lines


def _line_pairs(value: object) -> tuple[tuple[str, str], ...]:
    return items_of("platform_line_ids", value, what="a list of (order line id, platform id)")


def _exchange_pairs(value: object) -> tuple[tuple[str, str], ...]:
    return items_of("platform_exchange_line_ids", value, what="a list of (line id, platform id)")


# -- what the customer asks for -------------------------------------------------------------


@attrs.frozen
class Refund:
    """Refund to the original payment method."""

    kind: Literal[OutcomeKind.REFUND] = attrs.field(default=OutcomeKind.REFUND, init=False)


@attrs.frozen
class StoreCredit:
    """Store credit / gift card, with an optional bonus on top.

    ``bonus`` is checked where it comes in, with the request (or the imported return) that
    carries it, so that the error names its path (``lines[0].outcome.bonus``): see
    :func:`check_amount`."""

    bonus: Money | None = None
    kind: Literal[OutcomeKind.STORE_CREDIT] = attrs.field(
        default=OutcomeKind.STORE_CREDIT, init=False
    )


@attrs.frozen
class Exchange:
    """Another variant (or product) in exchange for the returned units."""

    variant_id: str = attrs.field(validator=_check_id)
    quantity: int = attrs.field(default=1, validator=_check_count(1))
    sku: str | None = attrs.field(default=None, validator=check_str())
    unit_price: Money | None = None
    """The new item's price per unit, if it differs from the returned unit's; checked with
    the request that carries it (:func:`check_amount`)."""
    kind: Literal[OutcomeKind.EXCHANGE] = attrs.field(default=OutcomeKind.EXCHANGE, init=False)


@attrs.frozen
class Keep:
    """Returnless: the customer keeps the item and is refunded or credited without a receipt."""

    settle: OutcomeKind = attrs.field(default=OutcomeKind.REFUND, converter=_to_settle)
    kind: Literal[OutcomeKind.KEEP] = attrs.field(default=OutcomeKind.KEEP, init=False)

    def __attrs_post_init__(self) -> None:
        if self.settle not in (OutcomeKind.REFUND, OutcomeKind.STORE_CREDIT):
            raise UnknownOutcome("settle", self.settle, "keep settles as refund or store_credit")


Outcome = Refund | StoreCredit | Exchange | Keep
_OUTCOME_TYPES = (Refund, StoreCredit, Exchange, Keep)


def _check_outcome(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, _OUTCOME_TYPES):
        raise UnknownOutcome(
            attribute.name, value, "must be Refund(), StoreCredit(), Exchange(...) or Keep()"
        )


@attrs.frozen
class RequestLine:
    """One line of a return request."""

    order_line_id: str = attrs.field(validator=_check_id)
    quantity: int = attrs.field(validator=_check_count(1))
    outcome: Outcome = attrs.field(factory=Refund, validator=_check_outcome)
    reason: Reason = attrs.field(default=ReturnReason.UNKNOWN, converter=_to_reason)
    note: str = attrs.field(default="", validator=check_words())
    condition: ItemCondition | None = attrs.field(
        default=None,
        converter=_to_condition,
    )
    photos: tuple[str, ...] = attrs.field(default=(), converter=to_photos)
    """Photos of the item (URLs the host stored), for reasons that require one."""


def _id_pair(pair: object) -> bool:
    return (
        isinstance(pair, tuple)
        and len(pair) == 2
        and all(isinstance(part, str) and part for part in pair)
    )


@attrs.frozen
class ReturnRequest:
    """What the customer (or an agent on their behalf) asks to return."""

    shop: str = attrs.field(validator=_check_id)
    order_id: str = attrs.field(validator=_check_id)
    lines: tuple[RequestLine, ...] = attrs.field(converter=_to_request_lines)
    customer_note: str = attrs.field(default="", validator=check_words())
    requested_by: str = attrs.field(default="customer", validator=check_words())
    platform_return_id: str | None = attrs.field(default=None, validator=check_str())
    """The platform return the customer opened (Shopify's ``returns/request``; native
    mode): the return adopts it instead of opening one."""
    platform_line_ids: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_line_pairs)
    """With ``platform_return_id``: ``(order line id, the platform's return line id)``."""
    platform_exchange_line_ids: tuple[tuple[str, str], ...] = attrs.field(
        default=(), converter=_exchange_pairs
    )
    """With ``platform_return_id``: ``(order line id of an exchanged line, the platform's
    exchange line id)``, one for each line asked in exchange."""
    method: ReturnMethod = attrs.field(default=ReturnMethod.MAIL, converter=to_method)
    """How the goods go back (:class:`~returnflow.domain.methods.ReturnMethod` or its value;
    else :class:`~returnflow.errors.InvalidRequest` naming ``method``); one the shop does
    not offer is :class:`~returnflow.errors.MethodNotOffered`."""
    claim: Claim | None = attrs.field(default=None)
    """Makes the request a claim (:mod:`returnflow.domain.claims`): every line returnless,
    refunded, credited or replaced."""

    def __attrs_post_init__(self) -> None:
        if self.claim is not None and not isinstance(self.claim, Claim):
            raise InvalidRequest("claim", self.claim, "must be a Claim")
        if not self.lines:
            raise InvalidRequest("lines", self.lines, "a return has at least one line")
        wanted = {line.order_line_id for line in self.lines}
        exchanged = {
            line.order_line_id
            for line in self.lines
            if isinstance(line, RequestLine) and isinstance(line.outcome, Exchange)
        }
        for index, pair in enumerate(self.platform_exchange_line_ids):
            if not _id_pair(pair) or pair[0] not in exchanged:
                raise InvalidRequest(
                    f"platform_exchange_line_ids[{index}]",
                    pair,
                    "must be (order line id of a line asked in exchange, platform line id)",
                )
        named = {pair[0] for pair in self.platform_exchange_line_ids}
        if self.platform_return_id and exchanged - named:
            raise InvalidRequest(
                "platform_exchange_line_ids",
                self.platform_exchange_line_ids,
                f"the platform's exchange line of {', '.join(sorted(exchanged - named))} is needed",
            )
        for index, pair in enumerate(self.platform_line_ids):
            if not _id_pair(pair) or pair[0] not in wanted:
                raise InvalidRequest(
                    f"platform_line_ids[{index}]",
                    pair,
                    "must be (order line id of a requested line, platform line id)",
                )
        if (self.platform_line_ids or self.platform_exchange_line_ids) and not (
            self.platform_return_id
        ):
            raise InvalidRequest(
                "platform_return_id", None, "platform_line_ids need the platform return's id"
            )
        for field, amount in request_amounts(self):
            check_amount(field, amount)


def request_amounts(request: ReturnRequest) -> list[tuple[str, object]]:
    """Every amount ``request`` carries, with its field path: an exchange's ``unit_price``
    and a store credit's ``bonus`` (``None`` where not given)."""
    return outcome_amounts(line.outcome for line in request.lines)


def outcome_amounts(outcomes: Iterable[object]) -> list[tuple[str, object]]:
    """The amounts of the outcomes of lines ``0, 1, ...`` (a request's or an imported
    return's), each with its path: ``lines[i].outcome.unit_price`` or
    ``lines[i].outcome.bonus``."""
    amounts: list[tuple[str, object]] = []
    for index, outcome in enumerate(outcomes):
        if isinstance(outcome, Exchange):
            amounts.append((f"lines[{index}].outcome.unit_price", outcome.unit_price))
        elif isinstance(outcome, StoreCredit):
            amounts.append((f"lines[{index}].outcome.bonus", outcome.bonus))
    return amounts


# -- the return record -----------------------------------------------------------------------


@attrs.frozen
class ReturnLine:
    """A line of a stored return with its per-line quantities.

    ``requested >= received``; ``received == accepted + rejected`` once inspected;
    ``restocked <= accepted``; ``settled`` counts units refunded, credited or exchanged.
    ``unit_amounts`` are the paid amounts of exactly these units, to the cent; ``units``
    are their indices among the order line's units (no unit is in two open returns).
    """

    id: str
    order_line_id: str
    sku: str
    variant_id: str
    quantity: int
    outcome: Outcome
    reason: Reason
    unit_amounts: tuple[Money, ...]
    units: tuple[int, ...] = ()
    unit_taxes: tuple[Money, ...] = ()
    """The tax part of each of ``unit_amounts`` (empty: no tax known, zero)."""
    note: str = ""
    declared_condition: ItemCondition | None = None
    received: int = 0
    accepted: int = 0
    rejected: int = 0
    restocked: int = 0
    settled: int = 0
    condition: ItemCondition | None = None
    qc_notes: tuple[str, ...] = ()
    photos: tuple[str, ...] = ()
    fees_waived: bool = False
    """A merchant rule waived this line's fees (:mod:`returnflow.domain.rules`)."""
    unit_shipping: tuple[Money, ...] = ()
    """Each unit's share of the order's shipping, given back with it (empty: none is);
    :func:`~returnflow.domain.settlement.with_original_charges`."""
    unit_shipping_taxes: tuple[Money, ...] = ()
    """The tax part of each of ``unit_shipping``."""
    unit_duties: tuple[Money, ...] = ()
    """Each unit's share of the order's duties, given back with it (empty: none is)."""
    duty_shares: tuple[tuple[str, tuple[Money, ...]], ...] = ()
    """When the order line's duties carry the platform's ids (:attr:`OrderLine.duties`):
    each duty id with each unit's share of it (they add up to ``unit_duties``)."""
    claimed: bool = False
    """A claim's line (:mod:`returnflow.domain.claims`): nothing comes back, its outcome is
    owed for every unit at once."""
    location_id: str | None = None
    """The location the line goes back to (:mod:`returnflow.domain.destinations`); ``None``:
    the shop's default location, as for every line stored before destinations."""

    @property
    def inspected(self) -> int:
        return self.accepted + self.rejected

    @property
    def outstanding(self) -> int:
        """Units still expected from the customer."""
        return self.quantity - self.received

    @property
    def requires_receipt(self) -> bool:
        return not (self.claimed or isinstance(self.outcome, Keep))

    def amount_for(self, units: int, *, start: int = 0) -> Money:
        """The paid amount of ``units`` of this line's units, starting at unit ``start``."""
        return Money.sum(self.unit_amounts[start : start + units], self.unit_amounts[0].currency)

    def original_for(self, units: int, *, start: int = 0) -> tuple[Money, Money, Money]:
        """The shipping, its tax part and the duties given back with ``units`` of this
        line's units from unit ``start`` (zero where none are)."""
        currency = self.unit_amounts[0].currency
        window = slice(start, start + units)
        return (
            Money.sum(self.unit_shipping[window], currency),
            Money.sum(self.unit_shipping_taxes[window], currency),
            Money.sum(self.unit_duties[window], currency),
        )

    def duties_for(self, units: int, *, start: int = 0) -> tuple[tuple[str, Money], ...]:
        """Each duty id (:attr:`duty_shares`) with its share given back with ``units`` of
        this line's units from unit ``start``; shares of zero are left out."""
        currency = self.unit_amounts[0].currency
        shares = (
            (duty, Money.sum(each[start : start + units], currency))
            for duty, each in self.duty_shares
        )
        return tuple((duty, share) for duty, share in shares if share)

    def tax_for(self, units: int, *, start: int = 0) -> Money:
        """The tax part of :meth:`amount_for` the same units."""
        return Money.sum(self.unit_taxes[start : start + units], self.unit_amounts[0].currency)


@attrs.frozen
class ExchangeLine:
    """A new item the customer gets in exchange, held on the original order until released."""

    id: str
    return_line_id: str
    variant_id: str
    quantity: int
    status: str = "pending"  # pending | held | released | cancelled
    sku: str | None = None
    unit_price: Money | None = None
    platform_item_id: str | None = None
    origin_id: str | None = None
    """The exchange line of the reset return this one was carried over from."""


@attrs.frozen
class ExternalRefs:
    """Ids that other systems gave to this return and its parts (a URL: ``check_url``)."""

    platform_return_id: str | None = None
    warehouse_rma_id: str | None = None
    tracking_number: str | None = None
    label_url: str | None = attrs.field(default=None, validator=check_url_field)
    exchange_hold_id: str | None = None
    refund_ids: tuple[str, ...] = ()
    credit_ids: tuple[str, ...] = ()
    source: str | None = None
    """The system the return was imported from (``"loop"``), if it was."""
    source_return_id: str | None = None
    """The return's id in that system."""
    payment_authorization_id: str | None = None
    """The payment authorization of an instant exchange released before the goods came."""
    platform_line_ids: tuple[tuple[str, str], ...] = ()
    """``(order line id, return line id on the platform)`` of the platform return
    (``platform_return_id``; native mode), as the platform answered the opening."""
    location_rma_ids: tuple[tuple[str, str], ...] = ()
    """``(location id, RMA id)`` of the warehouse returns of lines sent to a named location
    (:mod:`returnflow.domain.destinations`); the default location's is
    ``warehouse_rma_id``."""


@attrs.frozen
class PlatformUnits:
    """One order line's units on the platform return (native mode), as returnflow asked the
    platform: ``quantity`` opened, then ``processed`` (asked to be confirmed, the money
    moved), ``removed`` (taken out unprocessed) and disposed ``restocked`` /
    ``not_restocked``; ``confirmed``: processed units the platform confirmed (only those are
    disposed)."""

    order_line_id: str
    quantity: int
    processed: int = 0
    removed: int = 0
    restocked: int = 0
    not_restocked: int = 0
    confirmed: int = 0


@attrs.frozen
class HistoryEntry:
    """One thing that happened to a return: an event, its payload, who did it, what changed.
    The payload is frozen (:func:`~returnflow.domain.frozen.freeze`): readers share it."""

    at: datetime
    event: str
    actor: str
    source: tuple[str, str]
    target: tuple[str, str]
    version: int
    payload: Mapping[str, Any] = attrs.field(
        factory=FrozenDict, converter=freeze, eq=False, hash=False
    )


@attrs.frozen
class ParkedFact:
    """An inbound fact the return could not use yet but may later (the warehouse's Finished
    before its receipt, a delivery before the label): kept with the return and applied, in
    the order the facts would have happened, by the commit that brings the return to a state
    that can use it. ``kind``: ``carrier``, ``receipt``, ``finished`` or ``platform``;
    ``status`` a carrier fact's status or a platform fact's topic, ``lines`` a receipt's
    lines as data no reader can change (:func:`~returnflow.domain.frozen.freeze_each`; a
    platform fact's ids and label, one mapping); ``why`` the state it waited in.
    """

    kind: str
    event_id: str
    source: str
    arrived_at: datetime
    why: str = ""
    status: str | None = None
    lines: tuple[Mapping[str, Any], ...] = attrs.field(default=(), converter=freeze_each)
    location_id: str | None = None
    """The location a receipt or a Finished named (``None``: none named)."""


@attrs.frozen(slots=False)  # copied by its dict (domain/_evolve.py): a decision copies it often
class ReturnRecord:
    """A return as stored: the state of both regions, lines, links, version and history."""

    id: str = attrs.field(validator=check_key)
    shop: str = attrs.field(validator=check_key)
    order_id: str = attrs.field(validator=check_key)
    currency: str
    status: str
    exchange_status: str
    lines: tuple[ReturnLine, ...]
    created_at: datetime
    updated_at: datetime
    version: int = 0
    exchange_lines: tuple[ExchangeLine, ...] = ()
    refs: ExternalRefs = attrs.field(factory=ExternalRefs)
    customer_email: str | None = None
    customer_note: str = ""
    taxes_included: bool = False
    """Whether the order's prices include tax (:attr:`OrderSnapshot.taxes_included`): a
    fee's tax is then part of it, else added to it."""
    parent_id: str | None = None
    child_id: str | None = None
    decline_reason: DeclineReason | None = None
    review_reasons: tuple[str, ...] = ()
    return_shipping_fee: Money | None = None
    """The return shipping fee charged (from the payout or owed), once per return."""
    restocking_fees: Money | None = None
    """Restocking fees charged so far (from the payout or owed), one lump sum."""
    exchange_shipping_fee: Money | None = None
    """The outbound shipping of the exchange's new items, once charged (once per return)."""
    balance_paid: Money | None = None
    """What the customer paid ahead for an exchange, at approval: an upsell's balance, the
    new items' shipping, fees the payout would not cover."""
    balance_charged: Money | None = None
    """What settlements charged the customer beyond that: fees the payout did not cover,
    one lump sum."""
    payment_authorized: Money | None = None
    """What an instant exchange's payment authorization holds (the fallback if the returned
    units never come back accepted)."""
    authorization_settled: bool = False
    """Whether that authorization was voided or captured (planned)."""
    balance_settled: bool = False
    """Whether a completion (or a cancel) has accounted for ``balance_paid``."""
    release_confirmed: bool = False
    """Whether the platform was seen to honour the exchange release (seed 000)."""
    completed_at: datetime | None = None
    """When the return was last completed: its outcomes ran; it closes once paid out."""
    due_at: datetime | None = None
    """When a timer next has something to do for the return (its expiry, a capture of an
    instant exchange's authorization, a stuck return sent to a person), in UTC; set on
    every commit, indexed by the stores so that a tick reads only what is due."""
    parked: tuple[ParkedFact, ...] = ()
    """Inbound facts that came early, waiting for a state that can use them."""
    platform_units: tuple[PlatformUnits, ...] = ()
    """Native mode: the units of the platform return, per order line; empty until it is
    opened (planned)."""
    payouts_given_up: tuple[str, ...] = ()
    """Refunds and credits (effect keys) whose delivery was given up: their units stay
    settled, and they are re-opened under their own key when the return completes again
    (or is reset), never planned again under a new one."""
    history: tuple[HistoryEntry, ...] = ()
    claim: Claim | None = None
    """What made the return a claim (reason, evidence), if it is one."""
    policy_version: str | None = None
    """The version of the shop's policy the return was opened under
    (:attr:`ReturnPolicy.version <returnflow.domain.policy.ReturnPolicy.version>`); every
    later decision of the return uses it. ``None`` on returns stored before versions were
    recorded: they use the policy in force."""
    rule_return_shipping: Money | None = None
    """The return shipping fee a merchant rule set for this return, in place of the
    policy's (``None``: the policy's)."""
    method: ReturnMethod = ReturnMethod.MAIL
    """How the goods go back (``mail`` for returns stored before methods were recorded)."""
    finished_locations: tuple[str, ...] = ()
    """The locations of a return sent to several whose warehouse said Finished (``""``: the
    default location); the return completes on Finished when all have
    (:mod:`returnflow.domain.destinations`)."""

    @property
    def state(self) -> tuple[str, str]:
        """``(lifecycle state, exchange state)``."""
        return (self.status, self.exchange_status)

    def line(self, line_id: str) -> ReturnLine | None:
        for line in self.lines:
            if line.id == line_id or line.order_line_id == line_id:
                return line
        return None

    @property
    def has_exchange(self) -> bool:
        return bool(self.exchange_lines)
