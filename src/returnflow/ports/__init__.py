"""The ports a host implements: small ``typing.Protocol`` classes, one concern each.

Every call that changes something takes an ``idempotency_key``: called twice with the same
key, a port must return the first result and do nothing more. In-memory fakes of every port
live in :mod:`returnflow.testing`.
"""

from returnflow.ports.carrier import Carrier, Label
from returnflow.ports.commerce import (
    CommercePlatform,
    CreditReceipt,
    ExchangeHold,
    ExchangeItem,
    HoldStatus,
    LineQuantity,
    RefundReceipt,
)
from returnflow.ports.events import DomainEvent, EventPublisher
from returnflow.ports.notifier import Notifier
from returnflow.ports.payments import PaymentReceipt, Payments
from returnflow.ports.policies import PolicySource, ShopPolicies, StaticPolicy
from returnflow.ports.source import ReturnSource, SourcePage, SourceRejection
from returnflow.ports.store import Attempt, Commit, InboundKey, OutboxEntry, ReturnStore
from returnflow.ports.warehouse import Warehouse, WarehouseReturn

__all__ = [
    "Attempt",
    "Carrier",
    "CommercePlatform",
    "Commit",
    "CreditReceipt",
    "DomainEvent",
    "EventPublisher",
    "ExchangeHold",
    "ExchangeItem",
    "HoldStatus",
    "InboundKey",
    "Label",
    "LineQuantity",
    "Notifier",
    "OutboxEntry",
    "PaymentReceipt",
    "Payments",
    "PolicySource",
    "RefundReceipt",
    "ReturnSource",
    "ReturnStore",
    "ShopPolicies",
    "SourcePage",
    "SourceRejection",
    "StaticPolicy",
    "Warehouse",
    "WarehouseReturn",
]
