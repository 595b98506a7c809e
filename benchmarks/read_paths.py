"""Read paths against the engine: allowed events of stored returns, with and without a machine.

Prints a table of per-operation costs and their ratios against baselines measured in the
same run on this machine:

* ``table``: ``TABLE.allowed(state)`` (what the service uses on every read path);
* ``machine``: building a ``ReturnChart`` restored to the state and asking it (what a naive
  read path would do);
* ``event``: one event through the engine on a reused machine (the write-path floor);
* ``service``: one command (``flag``) through the service on the memory store, all effects
  dispatched to the fakes.

Run: ``python benchmarks/read_paths.py [--records 10000]``.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable

from statemachine.orderedset import OrderedSet

from returnflow import TABLE, ReturnChart
from returnflow.demo.scenarios import SHOP, helpdesk_auto_approved
from returnflow.lifecycle.engine import fire


def _per_call(run: Callable[[], object], repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        run()
    return (time.perf_counter() - start) / repeat


class _Model:
    def __init__(self, state: tuple[str, str]) -> None:
        self.configuration = OrderedSet(["process", "lifecycle", "exchange", state[0], state[1]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    args = parser.parse_args()
    rng = random.Random(7)
    states = [
        (rng.choice(TABLE.lifecycle_states), rng.choice(TABLE.exchange_states))
        for _ in range(args.records)
    ]

    start = time.perf_counter()
    allowed = [TABLE.allowed(state) for state in states]
    table_all = time.perf_counter() - start
    table = table_all / len(states)

    sample = states[: min(300, len(states))]
    start = time.perf_counter()
    for state in sample:
        machine = ReturnChart(model=_Model(state), state_field="configuration")
        assert {str(event.id) for event in machine.allowed_events} == set(TABLE.allowed(state))
    machine_cost = (time.perf_counter() - start) / len(sample)

    event = _per_call(lambda: fire(("approved", "on_hold"), "send_label"), 500)

    harness, (return_id,) = helpdesk_auto_approved()
    service = harness.service
    service.reopen(SHOP, return_id)
    flag = _per_call(lambda: service.flag(SHOP, return_id, "benchmark"), 300)

    rows = [
        ("table: allowed events, one return", table, "table"),
        ("machine: build + allowed events, one return", machine_cost, "table"),
        ("engine: one event on a reused machine", event, "event"),
        ("service: one command, memory store, dispatched", flag, "event"),
    ]
    baselines = {"table": table, "event": event}
    print(f"{'operation':<50} {'per op':>12} {'ratio':>10}  against")
    for name, cost, base in rows:
        print(f"{name:<50} {cost * 1e6:>10.2f}us {cost / baselines[base]:>9.1f}x  {base}")
    print(
        f"\n{len(allowed)} stored returns: allowed events from the table in "
        f"{table_all * 1e3:.1f} ms; building a machine each would take "
        f"{machine_cost * len(states):.1f} s ({machine_cost / table:.0f}x)."
    )


if __name__ == "__main__":
    main()
