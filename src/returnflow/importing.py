"""Importing returns created in another system (seed 004: Loop returns become RMAs here).

A :class:`ReturnImporter` reads a :class:`~returnflow.ports.source.ReturnSource` for one
shop and turns each external return into a return here, through the service, so the usual
effects run: the warehouse expectation (the ASN, linked through ``refs.warehouse_rma_id``),
an exchange held on the order, messages, domain events. Three ways, as in seed 004:

* :meth:`ReturnImporter.import_range`: every return created or updated in ``[since, until)``,
  page by page, with a progress callback;
* :meth:`ReturnImporter.import_one`: one return by its id at the source;
* :meth:`ReturnImporter.poll`: on a schedule, from a durable high-water mark. Register the
  importer with :meth:`~returnflow.ReturnsService.register_poller`: ``service.tick()`` (and
  so ``returnflow worker``) polls it when its interval has elapsed.

What importing one external return does:

* new to us and ``open`` at the source: created as an approved return with the id
  ``<source>-<external id>`` (:func:`~returnflow.domain.external.imported_return_id`), checked
  against the order like any request (unknown order, line or quantity are refused with typed
  errors) but not against the local window or approval rules: the source decided it (see
  :meth:`~returnflow.ReturnsService.import_return`);
* new to us and not open there (cancelled, closed, expired): skipped, nothing stored;
* already imported: if the source cancelled (or expired) it and it is still cancellable here,
  it is cancelled (expired) here, which stops the warehouse expecting it; otherwise nothing
  new is recorded, whatever else changed at the source (the return here has its own life
  from the import on: receipts, refunds, review);
* bad data (a field the source got wrong, an order the platform does not know): a typed error
  in the report for that return, nothing stored, and the import goes on with the next one.

Importing is idempotent: the same external return imported twice, from one process or two,
changes nothing the second time (the deterministic id finds the first one).

Polling keeps its state in the store under the cursor ``import:<source>:<shop>``: the
high-water mark (every return updated before it was handled) and when the last poll started.
A poll claims the cursor with compare-and-set before reading and advances it with
compare-and-set after, so two pollers on one database never both run an interval nor both
advance the mark. Each poll re-reads ``overlap`` before the mark (returns updated at the very
instant of the mark, made visible late by the source, or stamped by a clock behind ours) and
relies on idempotency for what it reads twice. A source that fails mid-range leaves the mark
at the last return read; a crash leaves it where it was: a restart neither skips nor
duplicates.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

import attrs

from returnflow import logs
from returnflow.domain._time import instant, parse_iso
from returnflow.domain.external import ExternalReturn, SourceStatus, imported_return_id
from returnflow.domain.model import ReturnRecord
from returnflow.errors import (
    ConcurrencyConflict,
    ConfigurationError,
    InvalidPayload,
    InvalidTransition,
    PortError,
    ReturnflowError,
    ReturnNotFound,
    UnknownExternalReturn,
    ValidationError,
)
from returnflow.lifecycle.table import TABLE
from returnflow.ports.source import ReturnSource

if TYPE_CHECKING:
    from returnflow.service import ReturnsService

__all__ = [
    "ImportFailure",
    "ImportOutcome",
    "ImportProgress",
    "ImportReport",
    "ImportResult",
    "ReturnImporter",
]

ImportOutcome = Literal["imported", "unchanged", "cancelled", "skipped"]
"""What importing one external return did: created it here; found it here with nothing to
do; cancelled (or expired) it here because its source did; left it out (not open at the
source and never imported)."""


@attrs.frozen
class ImportResult:
    """What importing one external return did (``record``: the return here, if any)."""

    external_id: str
    return_id: str
    outcome: ImportOutcome
    reason: str = ""
    record: ReturnRecord | None = attrs.field(default=None, eq=False, repr=False)


@attrs.frozen
class ImportFailure:
    """An external return that was not imported, and why.

    ``retryable`` failures (the platform or the store could not answer now) are tried again
    by the next poll; the others (bad data, an unknown order or line) when the source
    changes the return, or by hand with :meth:`ReturnImporter.import_one`.
    """

    external_id: str
    error: ReturnflowError = attrs.field(eq=False)
    updated_at: datetime | None = None

    @property
    def retryable(self) -> bool:
        if isinstance(self.error, PortError):
            return self.error.retryable
        return isinstance(self.error, ConcurrencyConflict)

    def __str__(self) -> str:
        return f"{self.external_id}: {type(self.error).__name__}: {self.error}"


@attrs.frozen
class ImportProgress:
    """Where a running import stands: handed to the progress callback after each return."""

    count: int
    imported: int
    unchanged: int
    cancelled: int
    skipped: int
    errors: int
    elapsed: float
    """Seconds since the import started (wall time)."""

    @property
    def rate(self) -> float:
        """Returns handled per second so far."""
        return self.count / self.elapsed if self.elapsed > 0 else 0.0


@attrs.frozen
class ImportReport:
    """What an import of ``[since, until)`` did.

    ``complete_until``: every return updated before it was handled (imported, found, skipped
    or refused for its data); ``until`` when the whole range was read and no return failed
    for a reason that may pass. ``source_error`` is set when the source failed before the
    end. For a poll, ``advanced`` says whether this poll moved the cursor (``False``: another
    poller took the interval over); ``None`` for other imports.
    """

    source: str
    shop: str
    since: datetime
    until: datetime
    complete_until: datetime
    imported: tuple[str, ...] = ()
    """Return ids created."""
    unchanged: tuple[str, ...] = ()
    """Return ids already here with nothing to do."""
    cancelled: tuple[str, ...] = ()
    """Return ids cancelled or expired here because the source did."""
    skipped: tuple[str, ...] = ()
    """External ids left out: not open at the source and never imported."""
    why_skipped: tuple[tuple[str, str], ...] = attrs.field(default=(), eq=False)
    """``(external id, reason)`` of each return in ``skipped``."""
    failed: tuple[ImportFailure, ...] = ()
    source_error: PortError | None = attrs.field(default=None, eq=False)
    elapsed: float = attrs.field(default=0.0, eq=False)
    advanced: bool | None = None

    @property
    def count(self) -> int:
        """External returns handled (each listing of one counts once)."""
        return (
            len(self.imported)
            + len(self.unchanged)
            + len(self.cancelled)
            + len(self.skipped)
            + len(self.failed)
        )

    @property
    def rate(self) -> float:
        return self.count / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def ok(self) -> bool:
        """No return failed and the source answered to the end."""
        return not self.failed and self.source_error is None

    def problems(self) -> tuple[str, ...]:
        """One line per failed return, and one for a failed source."""
        prefix = f"import {self.source}/{self.shop}"
        lines = [f"{prefix}: {failure}" for failure in self.failed]
        if self.source_error is not None:
            lines.append(
                f"{prefix}: source failed ({self.source_error}); returns updated from "
                f"{self.complete_until.isoformat()} on were not read"
            )
        return tuple(lines)


@attrs.frozen
class _Cursor:
    """A poller's durable state: the high-water mark and when the last poll started."""

    mark: datetime
    polled_at: datetime

    def dump(self) -> str:
        return json.dumps(
            {"mark": self.mark.isoformat(), "polled_at": self.polled_at.isoformat()},
            sort_keys=True,
        )

    @classmethod
    def load(cls, name: str, raw: str) -> _Cursor:
        try:
            data = json.loads(raw)
            cursor = cls(
                mark=parse_iso(data["mark"]),
                polled_at=parse_iso(data["polled_at"]),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise ConfigurationError(
                f"the import cursor {name!r} holds no mark ({error})", field="cursor", value=raw
            ) from None
        if cursor.mark.tzinfo is None or cursor.polled_at.tzinfo is None:
            raise ConfigurationError(
                f"the import cursor {name!r} holds times without an offset",
                field="cursor",
                value=raw,
            )
        return cursor


def _aware(field: str, value: object) -> datetime:
    return instant(field, value)


class _Tally:
    """What an import has done so far."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.results: dict[str, list[str]] = {
            "imported": [],
            "unchanged": [],
            "cancelled": [],
            "skipped": [],
        }
        self.failed: list[ImportFailure] = []
        self.why_skipped: list[tuple[str, str]] = []

    def add(self, result: ImportResult) -> None:
        name = result.external_id if result.outcome == "skipped" else result.return_id
        self.results[result.outcome].append(name)
        if result.outcome == "skipped":
            self.why_skipped.append((result.external_id, result.reason))

    def progress(self) -> ImportProgress:
        return ImportProgress(
            count=sum(len(names) for names in self.results.values()) + len(self.failed),
            imported=len(self.results["imported"]),
            unchanged=len(self.results["unchanged"]),
            cancelled=len(self.results["cancelled"]),
            skipped=len(self.results["skipped"]),
            errors=len(self.failed),
            elapsed=time.monotonic() - self.started,
        )


class ReturnImporter:
    """Imports the returns of one ``shop`` from ``source`` into ``service``.

    ``every`` is the polling interval, ``overlap`` how far before its mark each poll reads
    again, ``start`` where the first poll starts (default: ``every + overlap`` before it),
    ``page_size`` the ``limit`` asked of the source.
    """

    def __init__(
        self,
        service: ReturnsService,
        source: ReturnSource,
        *,
        shop: str,
        every: timedelta = timedelta(minutes=15),
        overlap: timedelta = timedelta(minutes=10),
        start: datetime | None = None,
        page_size: int = 100,
    ) -> None:
        if not isinstance(shop, str) or not shop.strip():
            raise ConfigurationError("must be a non-empty string", field="shop", value=shop)
        try:
            imported_return_id(source.name, "x")
        except ValidationError as error:
            raise ConfigurationError(error.reason, field="source.name", value=source.name) from None
        if not isinstance(every, timedelta) or every <= timedelta(0):
            raise ConfigurationError("must be a positive timedelta", field="every", value=every)
        if not isinstance(overlap, timedelta) or overlap < timedelta(0):
            raise ConfigurationError(
                "must be a timedelta of at least 0", field="overlap", value=overlap
            )
        if start is not None and (not isinstance(start, datetime) or start.tzinfo is None):
            raise ConfigurationError(
                "must be a timezone-aware datetime", field="start", value=start
            )
        if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
            raise ConfigurationError(
                "must be a whole number >= 1", field="page_size", value=page_size
            )
        self.service = service
        self.source = source
        self.shop = shop
        self.every = every
        self.overlap = overlap
        self.start = start
        self.page_size = page_size

    @property
    def cursor_name(self) -> str:
        """The store cursor that holds this importer's high-water mark."""
        return f"import:{self.source.name}:{self.shop}"

    def mark(self) -> datetime | None:
        """The high-water mark: every return updated before it was handled by a poll
        (``None`` before the first poll)."""
        raw = self.service.store.read_cursor(self.cursor_name)
        return None if raw is None else _Cursor.load(self.cursor_name, raw).mark

    # -- one external return ----------------------------------------------------------------

    def import_one(self, external_id: str) -> ImportResult:
        """Fetch ``external_id`` from the source and import it.

        Raises :class:`~returnflow.errors.UnknownExternalReturn` when the source has no such
        return in the shop, a :class:`~returnflow.errors.PortError` when the source fails, and
        the typed error of bad data (nothing is stored then).
        """
        if not isinstance(external_id, str) or not external_id.strip():
            raise InvalidPayload("external_id", external_id, "must be a non-empty string")
        external = self.source.get_return(self.shop, external_id)
        if external is None:
            raise UnknownExternalReturn(
                "external_id",
                external_id,
                f"source {self.source.name!r} has no such return in shop {self.shop!r}",
            )
        return self.import_external(external)

    def import_external(self, external: ExternalReturn) -> ImportResult:
        """Import one external return already in hand (read from a listing, or pushed by a
        webhook of the source). Bad data raises its typed error and stores nothing."""
        if not isinstance(external, ExternalReturn):
            raise InvalidPayload("external", external, "must be an ExternalReturn")
        if external.source != self.source.name:
            raise InvalidPayload(
                "source", external.source, f"this importer reads {self.source.name!r}"
            )
        if external.shop != self.shop:
            raise InvalidPayload("shop", external.shop, f"this importer imports {self.shop!r}")
        return_id = external.return_id
        existing = self._existing(external)
        if existing is None:
            if external.status is not SourceStatus.OPEN:
                return ImportResult(
                    external.external_id,
                    return_id,
                    "skipped",
                    f"{external.status.value} at the source and never imported",
                )
            try:
                record = self.service.import_return(
                    external.request(),
                    return_id=return_id,
                    source=external.source,
                    external_id=external.external_id,
                    details={
                        "source_status": external.status.value,
                        "source_updated_at": external.updated_at.isoformat(),
                    },
                )
            except (ConcurrencyConflict, ValidationError):
                # Imported meanwhile by another importer (its units now count as claimed)?
                existing = self._existing(external)
                if existing is None:
                    raise
            else:
                return ImportResult(external.external_id, return_id, "imported", record=record)
        return self._update(existing, external)

    def _existing(self, external: ExternalReturn) -> ReturnRecord | None:
        try:
            record = self.service.store.get(self.shop, external.return_id)
        except ReturnNotFound:
            return None
        if (record.refs.source, record.refs.source_return_id) != (
            external.source,
            external.external_id,
        ):
            raise InvalidPayload(
                "external_id",
                external.external_id,
                f"return {record.id} exists and was not imported from {external.source!r}",
            )
        return record

    def _update(self, record: ReturnRecord, external: ExternalReturn) -> ImportResult:
        """An external return imported before: mirror a cancel or an expiry at the source
        while the return is still cancellable here; otherwise record nothing new."""
        event = {SourceStatus.CANCELLED: "cancel", SourceStatus.EXPIRED: "expire"}.get(
            external.status
        )
        if event is not None and TABLE.target(record.state, event) is not None:
            try:
                if event == "cancel":
                    record = self.service.cancel(self.shop, record.id, actor=external.source)
                else:
                    record = self.service.expire(self.shop, record.id, actor=external.source)
            except InvalidTransition:  # moved on meanwhile (received, cancelled by another)
                record = self.service.store.get(self.shop, record.id)
            else:
                return ImportResult(
                    external.external_id,
                    record.id,
                    "cancelled",
                    f"{external.status.value} at the source",
                    record=record,
                )
        return ImportResult(external.external_id, record.id, "unchanged", record=record)

    # -- a range ----------------------------------------------------------------------------

    def import_range(
        self,
        since: datetime,
        until: datetime,
        *,
        progress: Callable[[ImportProgress], None] | None = None,
    ) -> ImportReport:
        """Import every return of the shop created or updated in ``[since, until)``, page by
        page; ``progress`` is called after each return. A failing source ends the import
        early (``report.source_error``); a return that fails is reported and the import goes
        on. Does not touch the polling cursor."""
        since = _aware("since", since)
        until = _aware("until", until)
        if until <= since:
            raise InvalidPayload("until", until, f"must be after since ({since.isoformat()})")
        return self._run(since, until, progress)

    def _run(
        self,
        since: datetime,
        until: datetime,
        progress: Callable[[ImportProgress], None] | None,
    ) -> ImportReport:
        tally = _Tally()
        token: str | None = None
        last_seen: datetime | None = None  # updated_at of the last return listed
        floor: datetime | None = None  # updated_at of the first retryable failure
        source_error: PortError | None = None
        while True:
            try:
                page = self.source.list_returns(
                    self.shop, since, until, page=token, limit=self.page_size
                )
            except PortError as error:
                source_error = error
                break
            for external in page.returns:
                last_seen = max(last_seen or external.updated_at, external.updated_at)
                try:
                    tally.add(self.import_external(external))
                except ReturnflowError as error:
                    failure = ImportFailure(external.external_id, error, external.updated_at)
                    tally.failed.append(failure)
                    if failure.retryable:
                        floor = min(floor or external.updated_at, external.updated_at)
                if progress is not None:
                    progress(tally.progress())
            for rejection in page.rejected:
                last_seen = max(last_seen or rejection.updated_at, rejection.updated_at)
                tally.failed.append(
                    ImportFailure(rejection.external_id, rejection.error, rejection.updated_at)
                )
                if progress is not None:
                    progress(tally.progress())
            if page.next_page is None:
                break
            token = page.next_page
        if source_error is None:
            complete_until = until
        else:  # everything up to the last return listed was read; ties follow on next pages
            complete_until = min(until, max(since, last_seen or since))
        if floor is not None:
            complete_until = min(complete_until, max(since, floor))
        report = ImportReport(
            source=self.source.name,
            shop=self.shop,
            since=since,
            until=until,
            complete_until=complete_until,
            imported=tuple(tally.results["imported"]),
            unchanged=tuple(tally.results["unchanged"]),
            cancelled=tuple(tally.results["cancelled"]),
            skipped=tuple(tally.results["skipped"]),
            why_skipped=tuple(tally.why_skipped),
            failed=tuple(tally.failed),
            source_error=source_error,
            elapsed=time.monotonic() - tally.started,
        )
        logs.imported(report)
        return report

    # -- polling ----------------------------------------------------------------------------

    def poll(self, now: datetime | None = None) -> ImportReport | None:
        """Import what changed at the source since the mark, if ``every`` has passed since
        the last poll (of any process on this store); ``None`` when not due or when another
        poller claimed this interval first.

        Reads ``[mark - overlap, now)`` (the first poll from ``start``), then moves the mark
        to ``report.complete_until``, never backwards.
        """
        moment = _aware("now", now if now is not None else self.service.clock())
        store = self.service.store
        name = self.cursor_name
        raw = store.read_cursor(name)
        if raw is None:
            since = self.start if self.start is not None else moment - self.every - self.overlap
            mark = since
        else:
            cursor = _Cursor.load(name, raw)
            if moment < cursor.polled_at + self.every:
                return None
            mark = cursor.mark
            since = mark - self.overlap
        if since >= moment:
            return None
        claim = _Cursor(mark=mark, polled_at=moment).dump()
        try:
            store.write_cursor(name, claim, expected=raw)
        except ConcurrencyConflict:
            return None  # another poller claimed this interval
        report = self._run(since, moment, None)
        new_mark = max(mark, report.complete_until)
        try:
            store.write_cursor(
                name, _Cursor(mark=new_mark, polled_at=moment).dump(), expected=claim
            )
        except ConcurrencyConflict:
            return attrs.evolve(report, advanced=False)
        return attrs.evolve(report, advanced=True)
