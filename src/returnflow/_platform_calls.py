"""What native mode's handlers (:mod:`returnflow.platform_handlers`) share: the port and
the platform return's ids, whether the return will ever have a platform return, and the
handlers that take units and items out of it or say what became of processed units."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from returnflow.domain.inbound import Disposition
from returnflow.domain.model import ReturnRecord
from returnflow.domain.money import Money
from returnflow.errors import PortError
from returnflow.lifecycle import effects as fx
from returnflow.ports.platform_returns import PlatformReturns, Quantity

if TYPE_CHECKING:
    from returnflow.dispatch import Dispatcher

__all__ = [
    "ENDED",
    "Disposed",
    "amount_of",
    "dispose_platform_units",
    "items_left",
    "known",
    "line_ids",
    "never_opened",
    "platform_of",
    "port_of",
    "remove_items",
    "remove_platform_lines",
    "tried",
]

_T = TypeVar("_T")


def known(value: _T | None, field: str, effect: fx.Effect) -> _T:
    if value is None:
        raise PortError(effect.port, effect.kind, f"the return has no {field} yet", retryable=True)
    return value


def port_of(d: Dispatcher, effect: fx.Effect) -> PlatformReturns:
    if d.platform_returns is None:
        raise PortError(effect.port, effect.kind, "no PlatformReturns port", retryable=False)
    return d.platform_returns


def platform_of(
    d: Dispatcher, effect: fx.Effect, record: ReturnRecord
) -> tuple[PlatformReturns, str]:
    """The port and the platform return's id (a retryable error until it is known)."""
    return port_of(d, effect), known(record.refs.platform_return_id, "platform_return_id", effect)


def line_ids(record: ReturnRecord, effect: fx.Effect, lines: Any) -> list[Quantity]:
    ids = dict(record.refs.platform_line_ids)
    return [
        Quantity(known(ids.get(line.order_line_id), "platform line id", effect), line.quantity)
        for line in lines
    ]


ENDED = ("cancelled", "expired", "declined", "reset")
"""Statuses of a return that ended: its platform return, if any, is cancelled or closed."""


def tried(d: Dispatcher, effect: fx.Effect) -> bool:
    """Whether the outbox shows an attempt of ``effect`` made before this one."""
    entries = d.store.outbox(effect.shop, effect.return_id)
    return any(e.effect.key == effect.key and (e.attempts or e.last_error) for e in entries)


def never_opened(d: Dispatcher, effect: fx.Effect, record: ReturnRecord) -> bool:
    """Whether the return has no platform return and will have none: its opening is over
    (not opened for a return that ended first, refused, or given up)."""
    if record.refs.platform_return_id is not None:
        return False
    entries = d.store.outbox(effect.shop, effect.return_id)
    return not any(
        isinstance(e.effect, fx.OpenPlatformReturn) and e.status == "pending" for e in entries
    )


def amount_of(text: object, currency: str) -> Money:
    """An amount as a note shows it (``"12.50 EUR"``)."""
    return Money(str(text).split(" ")[0], currency)


@attrs.frozen
class Disposed:
    """What a disposal did: the units it disposed (``sent``), those of its units it found
    disposed on the platform already (``there``, with the disposition returnflow did not
    send: a person gave theirs in the platform's admin, or an earlier attempt of this
    disposal acted and its answer was lost), and the kinds the platform reports for those
    (``theirs``: a person's kind can differ from returnflow's; units of a kind the platform
    does not report are left out)."""

    sent: tuple[fx.Disposal, ...]
    there: tuple[fx.Disposal, ...]
    theirs: tuple[fx.Disposal, ...] = ()


def dispose_platform_units(
    d: Dispatcher, effect: fx.DisposePlatformUnits, record: ReturnRecord
) -> object:
    """Dispose of the effect's units, on each order line at most what brings the platform's
    count of units disposed of to what returnflow expects once the effect is done: the
    units it planned to dispose of (``PlatformUnits.restocked`` and ``not_restocked``)
    less those of the disposals planned after this one and not delivered yet. Units a
    person disposed of in the platform's admin, or an earlier attempt of this call whose
    answer was lost, are not disposed of again (the platform would refuse them, or take
    others), and a disposal with nothing left to dispose of is done without a call.

    The units found disposed of there are taken from the effect's items of the same kind
    first (:func:`_found_there`), so a person who disposed of some units as returnflow
    would have leaves the others to go as returnflow says. An item sent whole goes under
    the effect's key and its index; one sent in part under a key naming the units, so a
    retry of the same call is the same call and a different one never reuses a key."""
    if never_opened(d, effect, record):  # nothing there to take out or dispose of
        return None
    port, return_id = platform_of(d, effect, record)
    ids = dict(record.refs.platform_line_ids)
    expected = {u.order_line_id: u.restocked + u.not_restocked for u in record.platform_units}
    before = _disposals(d, effect)
    for later in before.pop(None, []):  # planned after this one, not delivered yet
        expected[later.order_line_id] = expected.get(later.order_line_id, 0) - later.quantity
    items = list(enumerate(effect.disposals))
    sent: list[fx.Disposal] = []
    there: list[fx.Disposal] = []
    theirs: list[fx.Disposal] = []
    for order_line_id in dict.fromkeys(item.order_line_id for item in effect.disposals):
        mine = [(index, item) for index, item in items if item.order_line_id == order_line_id]
        line_id = known(ids.get(order_line_id), "platform line id", effect)
        now = port.get_return(effect.shop, return_id)
        done = dict(now.disposed).get(line_id, 0)
        wanted = sum(item.quantity for _, item in mine)
        ahead = expected.get(order_line_id, 0) - wanted  # returnflow's before this effect
        processed = dict(now.processed).get(line_id, 0)
        send = min(max(min(ahead + wanted, processed) - done, 0), wanted)
        claimed: dict[Disposition, int] = {}
        for earlier in before.get(order_line_id, []):
            claimed[earlier.disposition] = claimed.get(earlier.disposition, 0) + earlier.quantity
        pool = {
            kind: units - claimed.get(kind, 0)
            for kind, units in now.disposed_as(line_id).items()
            if units > claimed.get(kind, 0)
        }
        found = _found_there([item for _, item in mine], wanted - send, pool)
        for (index, item), (taken, kinds) in zip(mine, found, strict=True):
            if taken:
                there.append(attrs.evolve(item, quantity=taken))
            theirs.extend(fx.Disposal(order_line_id, n, kind) for kind, n in kinds.items())
            take = item.quantity - taken
            if not take:
                continue
            key = f"{effect.key}/{index}" if not taken else f"{effect.key}/{index}x{take}"
            # where the units came back to: only a named location is passed (a host
            # written before destinations restocks where it always did)
            wheres = {
                line.location_id for line in record.lines if line.order_line_id == order_line_id
            }
            where = {"location_id": wheres.pop()} if len(wheres) == 1 and None not in wheres else {}
            port.dispose(
                effect.shop,
                return_id,
                line_id,
                take,
                item.disposition,
                idempotency_key=key,
                **where,
            )
            sent.append(attrs.evolve(item, quantity=take))
    return Disposed(tuple(sent), tuple(there), tuple(_merged(theirs)))


def _found_there(
    items: list[fx.Disposal], units: int, pool: dict[Disposition, int]
) -> list[tuple[int, dict[Disposition, int]]]:
    """Which of ``items`` (one order line's) the ``units`` found disposed of there are:
    for each item, how many of its units, and of what kinds the platform gave them.
    Units of a kind in ``pool`` (the platform's dispositions by kind that no earlier
    disposal of returnflow's accounts for) go to the items of that kind first; the rest
    (a person's other kind, or one the platform does not report) to the items in order,
    as the pool's other kinds as far as they go."""
    found = [0] * len(items)
    kinds: list[dict[Disposition, int]] = [{} for _ in items]
    pool = dict(pool)
    for index, item in enumerate(items):  # the same kind first
        same = min(item.quantity, pool.get(item.disposition, 0), units - sum(found))
        if same > 0:
            found[index] += same
            kinds[index][item.disposition] = same
            pool[item.disposition] -= same
    for index, item in enumerate(items):  # then any other, in order
        rest = min(item.quantity - found[index], units - sum(found))
        found[index] += max(rest, 0)
        for kind in list(pool):
            given = min(pool[kind], max(rest, 0))
            if given > 0:
                kinds[index][kind] = kinds[index].get(kind, 0) + given
                pool[kind] -= given
                rest -= given
    return list(zip(found, kinds, strict=True))


def _merged(disposals: list[fx.Disposal]) -> list[fx.Disposal]:
    summed: dict[tuple[str, Disposition], int] = {}
    for item in disposals:
        key = (item.order_line_id, item.disposition)
        summed[key] = summed.get(key, 0) + item.quantity
    return [fx.Disposal(line, units, kind) for (line, kind), units in summed.items()]


def _disposals(d: Dispatcher, effect: fx.Effect) -> dict[str | None, list[fx.Disposal]]:
    """The items of the other disposals in the outbox: those planned before ``effect``, by
    order line (returnflow's own, which account for the platform's dispositions of their
    kinds), and under ``None`` those planned after it and not delivered yet."""
    outbox = list(d.store.outbox(effect.shop, effect.return_id))
    at = next((i for i, e in enumerate(outbox) if e.effect.key == effect.key), len(outbox))
    found: dict[str | None, list[fx.Disposal]] = {None: []}
    for i, entry in enumerate(outbox):
        if i == at or not isinstance(entry.effect, fx.DisposePlatformUnits):
            continue
        if i > at and entry.status == "pending":
            found[None].extend(entry.effect.disposals)
        elif i < at:
            for item in entry.effect.disposals:
                found.setdefault(item.order_line_id, []).append(item)
    return found


def remove_platform_lines(
    d: Dispatcher, effect: fx.RemovePlatformLines, record: ReturnRecord
) -> object:
    """Take the effect's units out under its key, then the exchange items of its cancelled
    lines still there under a key naming them: what is left of the units and items is read
    from the platform, so a retry after a call that acted (its answer lost) finds none and
    makes no call, and a different removal never reuses a key.

    Units a person took out in the platform's admin are out already: returnflow follows
    the admin and takes out only what is still there of its own units (none: no call),
    under a key naming them when that is less than the effect's."""
    if never_opened(d, effect, record):  # nothing there to take out or dispose of
        return None
    port, return_id = platform_of(d, effect, record)
    answer: object = None
    if effect.lines or not effect.exchange_line_ids:  # the call as made before items could go
        lines = line_ids(record, effect, effect.lines)
        left = _units_left(d, port, effect, record, return_id, lines)
        if left == lines:
            answer = port.remove_lines(effect.shop, return_id, lines, idempotency_key=effect.key)
        elif left:
            named = ",".join(f"{line.line_id}x{line.quantity}" for line in left)
            key = f"{effect.key}/{named}"
            answer = port.remove_lines(effect.shop, return_id, left, idempotency_key=key)
    if effect.exchange_line_ids:
        items = items_left(port, effect, record, return_id, set(effect.exchange_line_ids))
        if items:  # else taken out before a processing, or by an attempt that acted
            answer = remove_items(port, effect, return_id, items, effect.key)
    return answer if answer is not None else port.get_return(effect.shop, return_id)


def _units_left(
    d: Dispatcher,
    port: PlatformReturns,
    effect: fx.RemovePlatformLines,
    record: ReturnRecord,
    return_id: str,
    lines: list[Quantity],
) -> list[Quantity]:
    """``lines`` (platform line ids) less what is no longer on the platform return: the
    units there neither processed nor removed, but those returnflow still expects there
    (not yet processed or removed by its count, or processed or removed by effects planned
    after this one and not delivered yet). An earlier attempt that acted, or a person in
    the platform's admin, took the rest out."""
    if not lines:
        return lines
    now = port.get_return(effect.shop, return_id)
    done, gone = dict(now.processed), dict(now.removed)
    ids = dict(record.refs.platform_line_ids)
    keep = {
        ids.get(u.order_line_id): u.quantity - u.processed - u.removed
        for u in record.platform_units
    }
    opened = {ids.get(u.order_line_id): u.quantity for u in record.platform_units}
    outbox = list(d.store.outbox(effect.shop, effect.return_id))
    at = next((i for i, e in enumerate(outbox) if e.effect.key == effect.key), len(outbox))
    for entry in outbox[at + 1 :]:
        later = entry.effect
        if entry.status == "pending" and isinstance(
            later, (fx.ProcessPlatformReturn, fx.RemovePlatformLines)
        ):
            for units in later.lines:
                line_id = ids.get(units.order_line_id)
                keep[line_id] = keep.get(line_id, 0) + units.quantity
    left = []
    for line in lines:
        there = opened.get(line.line_id, 0) - done.get(line.line_id, 0)
        there -= gone.get(line.line_id, 0) + keep.get(line.line_id, 0)
        take = min(line.quantity, max(there, 0))
        keep[line.line_id] = keep.get(line.line_id, 0) + take
        left.extend([Quantity(line.line_id, take)] if take else [])
    return left


def remove_items(
    port: PlatformReturns, effect: fx.Effect, return_id: str, items: list[Quantity], base: str
) -> object:
    """Take exchange items out, under ``base`` and the items and units removed: one key
    per distinct removal, the same for a retry of it."""
    named = ",".join(f"{item.line_id}x{item.quantity}" for item in items)
    return port.remove_lines(
        effect.shop, return_id, [], exchange_lines=items, idempotency_key=f"{base}/{named}"
    )


def items_left(
    port: PlatformReturns,
    effect: fx.Effect,
    record: ReturnRecord,
    return_id: str,
    ids: set[str],
) -> list[Quantity]:
    """The items of exchange lines ``ids`` still on the platform return, neither processed
    nor removed."""
    now = port.get_return(effect.shop, return_id)
    done, gone = dict(now.exchange_processed), dict(now.exchange_removed)
    items = []
    for line in record.exchange_lines:
        item = line.platform_item_id
        if line.id in ids and item is not None:
            left = line.quantity - done.get(item, 0) - gone.get(item, 0)
            items.extend([Quantity(item, left)] if left > 0 else [])
    return items
