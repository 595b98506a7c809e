"""Child processes for the PostgreSQL worker tests (started with ``multiprocessing`` spawn).

Each function opens its own :class:`~returnflow.stores.postgres.PostgresStore` and fakes,
waits at a barrier so that all start together, works, and puts one report on a queue: what
its ports did (fakes are per process, so the parent compares the reports). A crash is
reported as ``("error", traceback)`` instead.
"""

from __future__ import annotations

import random
import threading
import time
import traceback
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from returnflow import CarrierStatus, CarrierUpdate, ConcurrencyConflict, ReturnsService
from returnflow.domain.policy import ReturnPolicy
from returnflow.errors import PortError
from returnflow.ports.events import DomainEvent
from returnflow.testing import FakePorts
from returnflow.testing.fakes import FakeEventPublisher

if TYPE_CHECKING:
    from returnflow.stores.postgres import PostgresStore


def _open(dsn: str, **options: Any) -> PostgresStore:
    # imported here: collecting this module (for doctests) needs no psycopg
    from returnflow.stores.postgres import PostgresStore

    return PostgresStore(dsn, **options)


# Retried at once and forever: a head that keeps failing keeps its return busy.
RELENTLESS = ReturnPolicy(max_attempts=1_000_000, retry_base_seconds=0.001, retry_cap_seconds=0.001)


class Deliveries:
    """Wraps a fake port: every call that carries an idempotency key and returns is logged
    with the time (``time.monotonic_ns``, one clock for every process of the machine)."""

    def __init__(self, port: Any, log: list[tuple[int, str, str]]) -> None:
        self._port = port
        self._log = log

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._port, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            result = attribute(*args, **kwargs)
            key = kwargs.get("idempotency_key")
            if key is not None:
                self._log.append((time.monotonic_ns(), name, key))
            return result

        return call


class StuckEvents(FakeEventPublisher):
    """An event publisher that refuses every event of one return, as if its topic were down."""

    def __init__(self, stuck: str) -> None:
        super().__init__()
        self.stuck = stuck

    def publish(self, event: DomainEvent, *, idempotency_key: str) -> None:
        if event.return_id == self.stuck:
            raise PortError("events", "publish", f"topic down for {self.stuck}")
        super().publish(event, idempotency_key=idempotency_key)


def _service(
    store: PostgresStore,
    log: list[tuple[int, str, str]],
    *,
    name: str,
    events: FakeEventPublisher,
    policy: ReturnPolicy,
    clock: Callable[[], datetime] | None = None,
    auto_dispatch: bool = True,
) -> ReturnsService:
    ports = FakePorts(events=events)
    return ReturnsService(
        store=store,
        commerce=Deliveries(ports.commerce, log),
        warehouse=Deliveries(ports.warehouse, log),
        carrier=Deliveries(ports.carrier, log),
        payments=Deliveries(ports.payments, log),
        notifier=Deliveries(ports.notifier, log),
        events=Deliveries(ports.events, log),
        policy=policy,
        worker_id=name,
        auto_dispatch=auto_dispatch,
        **({"clock": clock} if clock is not None else {}),
    )


def dispatch(dsn: str, name: str, stuck: str, barrier: Any, results: Any) -> None:
    """Deliver effects until only the stuck return's are pending (at most 120 s)."""
    try:
        store = _open(dsn, max_size=2)
        log: list[tuple[int, str, str]] = []
        service = _service(store, log, name=name, events=StuckEvents(stuck), policy=RELENTLESS)
        barrier.wait(timeout=60)
        deadline = time.monotonic() + 120
        rounds = 0
        while time.monotonic() < deadline:
            rounds += 1
            report = service.dispatch_pending(limit=5)
            if report.delivered:
                continue
            if all(entry.effect.return_id == stuck for entry in store.pending(limit=1000)):
                break
            time.sleep(0.002)  # others hold the heads, or the stuck one backs off
        store.close()
        results.put((name, "ok", {"log": log, "rounds": rounds}))
    except BaseException:
        results.put((name, "error", traceback.format_exc()))


def claim_and_hang(dsn: str, lease_seconds: float, results: Any) -> None:
    """Claim every due head, report them, then hang until killed (never delivering)."""
    try:
        store = _open(dsn)
        now = datetime.now(timezone.utc)
        claimed = store.claim(
            now=now, lease_until=now + timedelta(seconds=lease_seconds), worker="doomed"
        )
        results.put(("doomed", "ok", [entry.effect.key for entry in claimed]))
    except BaseException:
        results.put(("doomed", "error", traceback.format_exc()))
        return
    threading.Event().wait()  # until the parent kills this process


def handle(
    dsn: str,
    name: str,
    shop: str,
    return_ids: list[str],
    own: int,
    shared: int,
    seed: int,
    barrier: Any,
    results: Any,
) -> None:
    """Send carrier scans for every return through ``ReturnsService.handle``: ``own`` with
    ids of this process's own and ``shared`` with ids every process sends (duplicates)."""
    try:
        store = _open(dsn, max_size=2)
        log: list[tuple[int, str, str]] = []
        service = _service(
            store,
            log,
            name=name,
            events=FakeEventPublisher(),
            policy=ReturnPolicy(),
            auto_dispatch=False,
        )
        events = [
            (return_id, f"{prefix}-{return_id}-{number}", number)
            for return_id in return_ids
            for prefix, count in ((f"{name}-scan", own), ("shared-scan", shared))
            for number in range(count)
        ]
        random.Random(seed).shuffle(events)
        statuses: dict[str, str] = {}
        barrier.wait(timeout=60)
        for return_id, event_id, number in events:
            status = CarrierStatus.PICKED_UP if number % 2 else CarrierStatus.DELIVERED
            try:
                result = service.handle(
                    CarrierUpdate(shop=shop, return_id=return_id, event_id=event_id, status=status)
                )
                statuses[event_id] = result.status
            except ConcurrencyConflict:
                statuses[event_id] = "conflict"  # 16 tries lost: reported, not hidden
        store.close()
        results.put((name, "ok", statuses))
    except BaseException:
        results.put((name, "error", traceback.format_exc()))
