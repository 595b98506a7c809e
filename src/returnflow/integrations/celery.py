"""returnflow on Celery: delivery, timers and inbound facts as tasks (the ``celery`` extra).

:func:`install` registers four tasks on the host's Celery app and hands every commit of the
service to a task:

* ``returnflow.dispatch_return(shop, return_id)``: delivers that return's due effects
  (:meth:`~returnflow.dispatch.Dispatcher.deliver_return`). Enqueued after each commit of the
  service (:attr:`~returnflow.dispatch.Dispatcher.hand_off`). It acknowledges late and is
  rejected (so redelivered) when its worker dies; when an effect failed it retries itself
  at the effect's next attempt (the policy's back-off). The outbox stays the source of
  truth: a task lost or run twice delivers nothing twice (claims, leases and idempotency
  keys), and a lost one is caught by the next sweep.
* ``returnflow.dispatch_pending(limit)``: the sweep, on the beat schedule
  (``sweep_every``): whatever is due and no task delivered.
* ``returnflow.tick(limit)``: the timers and pollers (``ReturnsService.tick``), on the beat
  schedule (``tick_every``).
* ``returnflow.handle(kind, data)``: an inbound fact as plain data (``kind``:
  ``CarrierUpdate``, ``WarehouseReceipt``, ``WarehouseFinished`` or
  ``PlatformReturnEvent``; ``data``:
  :func:`returnflow.serialization.unstructure` of it); :func:`send_fact` sends one. Returns
  the :class:`~returnflow.service.HandleResult`'s status.

The service is built by ``build()`` once per worker process, on first use (after the fork).
Bad data (a :class:`~returnflow.errors.ValidationError`) fails its task for good; a port or
a store that cannot answer now (:class:`~returnflow.errors.PortError` retryable,
:class:`~returnflow.errors.ConcurrencyConflict`) retries it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import attrs
from celery import Celery, Task

from returnflow.domain.inbound import INBOUND_FACTS, InboundEvent
from returnflow.errors import ConcurrencyConflict, InvalidPayload, PortError
from returnflow.serialization import structure, unstructure
from returnflow.service import ReturnsService

__all__ = ["ReturnflowTasks", "install", "send_fact"]

_FACTS: dict[str, type[InboundEvent]] = {cls.__name__: cls for cls in INBOUND_FACTS}
_TRANSIENT = (ConcurrencyConflict, PortError)


@attrs.frozen
class ReturnflowTasks:
    """The tasks :func:`install` registered, and the service of this process."""

    dispatch_return: Task
    dispatch_pending: Task
    tick: Task
    handle: Task
    service: Callable[[], ReturnsService]
    """This process's service (built on first call)."""


def send_fact(tasks: ReturnflowTasks, event: InboundEvent, **options: Any) -> Any:
    """Send ``event`` to the ``returnflow.handle`` task (``options``: Celery's
    ``apply_async`` options); returns the task's ``AsyncResult``."""
    if type(event) not in _FACTS.values():
        raise InvalidPayload("event", event, "must be a carrier, warehouse or platform fact")
    return tasks.handle.apply_async((type(event).__name__, unstructure(event)), **options)


def _due_in(service: ReturnsService, shop: str, return_id: str) -> float | None:
    """Seconds until the next attempt of an effect of the return that failed and waits for
    its back-off; ``None`` when none waits."""
    now: datetime = service.clock()
    waits = [
        entry.next_attempt_at
        for entry in service.store.outbox(shop, return_id)
        if entry.status == "pending" and entry.next_attempt_at is not None
    ]
    if not waits:
        return None
    return max(0.0, (min(waits) - now).total_seconds())


def install(
    app: Celery,
    build: Callable[[], ReturnsService],
    *,
    sweep_every: timedelta = timedelta(seconds=30),
    tick_every: timedelta = timedelta(minutes=1),
    limit: int = 100,
) -> ReturnflowTasks:
    """Register returnflow's tasks on ``app`` and their beat schedule; the service ``build``
    returns (once per process) hands each commit to ``returnflow.dispatch_return``.

    ``sweep_every``: how often the beat runs ``dispatch_pending``; ``tick_every``: how often
    it runs ``tick``; ``limit``: effects per sweep and returns per timer per tick. Returns the
    tasks. Raises :class:`~returnflow.errors.InvalidPayload` for a period that is not a
    positive :class:`~datetime.timedelta` or a ``limit`` below 1.
    """
    for name, period in (("sweep_every", sweep_every), ("tick_every", tick_every)):
        if not isinstance(period, timedelta) or period <= timedelta(0):
            raise InvalidPayload(name, period, "must be a positive timedelta")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidPayload("limit", limit, "must be a whole number >= 1")
    built: list[ReturnsService] = []

    def service() -> ReturnsService:
        if not built:
            made = build()
            made.dispatcher.hand_off = lambda shop, return_id: dispatch_return.delay(
                shop, return_id
            )
            built.append(made)
        return built[0]

    def deliver(task: Task, shop: str, return_id: str) -> None:
        running = service()
        try:
            running.dispatcher.deliver_return(shop, return_id)
        except _TRANSIENT as error:
            raise task.retry(exc=error, countdown=1.0) from None
        wait = _due_in(running, shop, return_id)
        if wait is not None and not task.request.is_eager:  # eager: no time passes; the sweep
            raise task.retry(countdown=wait)

    def sweep(limit: int = limit) -> dict[str, int]:
        return attrs.asdict(service().dispatch_pending(limit))

    def run_timers(limit: int = limit) -> dict[str, int]:
        report = service().tick(limit=limit)
        return {"expired": len(report.expired), "errors": len(report.errors)}

    def apply(task: Task, kind: str, data: dict[str, Any]) -> str:
        fact = _FACTS.get(kind)
        if fact is None:
            raise InvalidPayload("kind", kind, f"must be one of: {', '.join(_FACTS)}")
        event = structure(data, fact)
        try:
            return service().handle(event).status
        except _TRANSIENT as error:
            raise task.retry(exc=error, countdown=1.0) from None

    # Acknowledged once done, and redelivered when the worker dies (the broker's visibility
    # timeout): a task is never lost with its worker.
    durable: dict[str, Any] = {"acks_late": True, "reject_on_worker_lost": True}
    retried: dict[str, Any] = {"bind": True, "max_retries": None, **durable}
    dispatch_return = app.task(name="returnflow.dispatch_return", **retried)(deliver)
    dispatch_pending = app.task(name="returnflow.dispatch_pending", **durable)(sweep)
    tick = app.task(name="returnflow.tick", **durable)(run_timers)
    handle = app.task(name="returnflow.handle", **retried)(apply)
    app.conf.beat_schedule = {
        **(app.conf.beat_schedule or {}),
        "returnflow.dispatch_pending": {
            "task": "returnflow.dispatch_pending",
            "schedule": sweep_every.total_seconds(),
        },
        "returnflow.tick": {"task": "returnflow.tick", "schedule": tick_every.total_seconds()},
    }
    return ReturnflowTasks(dispatch_return, dispatch_pending, tick, handle, service)
