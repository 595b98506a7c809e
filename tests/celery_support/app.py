"""The Celery app of the Celery tests: a real worker runs it (``celery -A celery_support.app``).

Configured from the environment (``RETURNFLOW_CELERY_*``, set by tests/test_celery.py): the
broker, the queue, the SQLite file of the store, the Redis namespace of the ledger ports, the
number of orders (one return each) and, for the worker that is to die, ``KILL_AFTER``.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import attrs
from celery import Celery

from celery_support.ledger import RedisLedger
from durability_support.ledger import ledger_ports
from returnflow import ReturnPolicy, ReturnsService
from returnflow.domain.model import OrderSnapshot
from returnflow.integrations.celery import ReturnflowTasks, install
from returnflow.stores.sqlite import SqliteStore
from returnflow.testing import make_order

SHOP = "celery-shop"


def orders(count: int) -> list[OrderSnapshot]:
    """``count`` orders delivered yesterday (in the return window), one return's each."""
    yesterday = datetime.now(timezone.utc) - timedelta(days=1)
    return [
        attrs.evolve(
            make_order(SHOP, f"O{index:05d}"),
            created_at=yesterday,
            fulfilled_at=yesterday,
            delivered_at=yesterday,
        )
        for index in range(count)
    ]


def configure(
    broker: str, queue: str, db: str, namespace: str, count: int, kill_after: int | None = None
) -> tuple[Celery, ReturnflowTasks, RedisLedger]:
    app = Celery("returnflow-tests", broker=broker)
    app.conf.update(
        task_default_queue=queue,
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        # A task taken by a worker that died goes back to the queue after this long.
        broker_transport_options={"visibility_timeout": 10},
    )
    ledger = RedisLedger(broker, namespace, kill_after=kill_after)
    known = orders(count)

    def build() -> ReturnsService:
        return ReturnsService(
            store=SqliteStore(db),
            **ledger_ports(ledger, known),
            policy=ReturnPolicy(),
            lease=timedelta(seconds=5),  # an effect claimed by a dead worker is free again soon
        )

    tasks = install(app, build, sweep_every=timedelta(seconds=5))
    return app, tasks, ledger


if os.environ.get("RETURNFLOW_CELERY_BROKER"):
    kill = os.environ.get("RETURNFLOW_CELERY_KILL_AFTER")
    app, tasks, _ = configure(
        os.environ["RETURNFLOW_CELERY_BROKER"],
        os.environ["RETURNFLOW_CELERY_QUEUE"],
        os.environ["RETURNFLOW_CELERY_DB"],
        os.environ["RETURNFLOW_CELERY_NAMESPACE"],
        int(os.environ["RETURNFLOW_CELERY_COUNT"]),
        int(kill) if kill else None,
    )
