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
    ) -> None: ...
