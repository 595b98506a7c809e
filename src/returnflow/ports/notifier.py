"""The notifier: messages to the customer (e-mail, SMS, helpdesk reply)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

__all__ = ["Notifier"]


class Notifier(Protocol):
    """Sends the customer a message made from ``template`` and ``context``."""

    def notify(
        self,
        shop: str,
        recipient: str,
        template: str,
        context: Mapping[str, Any],
        *,
        idempotency_key: str,
    ) -> None:
        """Send ``recipient`` (an address or customer id) of ``shop`` the message
        ``template`` (``return_approved``, ``label_sent``, ... see the Ports page) filled
        from ``context`` (plain data: the return and order ids and what it is about). The
        same ``idempotency_key`` sends it once. Raise
        :class:`~returnflow.errors.PortError` on failure (``retryable`` when it may pass)."""
