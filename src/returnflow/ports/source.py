"""A return source: another system where returns are created (Loop), read by an importer.

The source is read, never written: listing and fetching change nothing there, so the port
takes no idempotency keys. :class:`~returnflow.importing.ReturnImporter` turns what it lists
into returns here. A fake lives in :mod:`returnflow.testing.fakes`
(:class:`~returnflow.testing.fakes.FakeReturnSource`) and the contract every adapter passes
in :mod:`returnflow.testing.port_contracts`
(:class:`~returnflow.testing.port_contracts.ReturnSourceContract`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import attrs

from returnflow.domain.external import ExternalReturn
from returnflow.errors import ValidationError

__all__ = ["CountingSource", "ReturnSource", "SourcePage", "SourceRejection"]


@attrs.frozen
class SourceRejection:
    """A return the source listed but whose data could not be read as an
    :class:`~returnflow.domain.external.ExternalReturn`: ``error`` says which field and
    value. Listed so that one bad return does not hide the others on its page."""

    external_id: str
    updated_at: datetime
    error: ValidationError = attrs.field(eq=False)


@attrs.frozen
class SourcePage:
    """One page of a listing.

    ``next_page`` is the token that asks for the next page, ``None`` on the last one.
    ``returns`` and ``rejected`` together are the page's returns, in listing order.
    """

    returns: tuple[ExternalReturn, ...] = ()
    rejected: tuple[SourceRejection, ...] = ()
    next_page: str | None = None


class ReturnSource(Protocol):
    """Where returns are created before they come here (a returns app, a helpdesk).

    **Listing.** :meth:`list_returns` lists the returns of one shop created *or* updated in
    ``[since, until)``: those with ``since <= updated_at < until`` or
    ``since <= created_at < until``. They come in pages of at most ``limit``, ordered by
    ``(updated_at, external_id)``; a page's ``next_page`` token asks for the next one and is
    ``None`` on the last page. Pages are keyset pages: a token names the last return handed
    out, not a position, so a return updated while a listing is paged through moves to a
    later place and is still listed (maybe twice: importing is idempotent), never skipped.
    A token is only valid for the listing (shop, since, until) that made it.

    **Fetching.** :meth:`get_return` returns one return by its id there, or ``None`` when the
    source has no such return in the shop. (The importer raises
    :class:`~returnflow.errors.UnknownExternalReturn` for that.)

    **Failures.** A source that cannot answer now raises a retryable
    :class:`~returnflow.errors.PortError`; a call that can never succeed (a bad page token)
    raises ``PortError(retryable=False)``. :meth:`get_return` raises a
    :class:`~returnflow.errors.ValidationError` when the return's data cannot be read;
    :meth:`list_returns` puts such returns in ``SourcePage.rejected`` instead.
    """

    @property
    def name(self) -> str:
        """The source's name (``"loop"``), the prefix of imported returns' ids."""
        ...

    def list_returns(
        self,
        shop: str,
        since: datetime,
        until: datetime,
        *,
        page: str | None = None,
        limit: int = 100,
    ) -> SourcePage:
        """One page of the returns of ``shop`` created or updated in ``[since, until)``."""
        ...

    def get_return(self, shop: str, external_id: str) -> ExternalReturn | None:
        """The return ``external_id`` of ``shop``; ``None`` if the source has none."""
        ...


class CountingSource(ReturnSource, Protocol):
    """A source that can also say how many returns a listing holds (an API with a total
    count): ``returnflow import`` then shows the total and an estimate of the time left."""

    def count_returns(self, shop: str, since: datetime, until: datetime) -> int:
        """How many returns :meth:`list_returns` lists for ``shop`` and ``[since, until)``."""
        ...
