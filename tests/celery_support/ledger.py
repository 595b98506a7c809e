"""The ledger ports of :mod:`durability_support.ledger` on Redis, for many worker processes.

Each idempotency key is one field of a Redis hash, written with ``HSETNX``: the first call
with a key acts and is kept, a later one (another process, a redelivered task) is a replay
that answers the first result. ``kill_after`` arms a crash: the process that makes the
``kill_after``-th acting call (counted across processes) kills itself with ``SIGKILL`` right
after the call is recorded, before the outbox hears of it.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Mapping
from typing import Any

import redis

from durability_support.ledger import Ledger, _result
from returnflow.errors import PortError
from returnflow.serialization import converter

__all__ = ["RedisLedger"]


class RedisLedger(Ledger):
    def __init__(self, url: str, namespace: str, *, kill_after: int | None = None) -> None:
        super().__init__(os.devnull)
        self.redis = redis.Redis.from_url(url)
        self.namespace = namespace
        self.kill_after = kill_after

    def _key(self, name: str) -> str:
        return f"{self.namespace}:{name}"

    def entries(self) -> list[dict[str, Any]]:
        raw = self.redis.hvals(self._key("entries"))
        return sorted((json.loads(value) for value in raw), key=lambda entry: entry["n"])

    def replays(self) -> int:
        return int(self.redis.get(self._key("replays")) or 0)

    def call(self, port: str, operation: str, key: str, args: Mapping[str, Any], make: Any) -> Any:
        plain = json.loads(json.dumps(converter.unstructure(dict(args)), sort_keys=True))
        stored = self.redis.hget(self._key("entries"), key)
        if stored is None:
            n = int(self.redis.incr(self._key("n")))
            result = make(n)
            line = {
                "key": key,
                "port": port,
                "operation": operation,
                "args": plain,
                "pid": os.getpid(),
                "n": n,
                "result": None
                if result is None
                else {"type": type(result).__name__, "data": converter.unstructure(result)},
            }
            if self.redis.hsetnx(self._key("entries"), key, json.dumps(line, sort_keys=True)):
                if n == self.kill_after:
                    self.redis.set(self._key("killed"), os.getpid())
                    os.kill(os.getpid(), signal.SIGKILL)
                return result
            stored = self.redis.hget(self._key("entries"), key)  # another process was first
        entry = json.loads(stored)
        if (entry["port"], entry["operation"], entry["args"]) != (port, operation, plain):
            raise PortError(port, operation, "idempotency key reused", retryable=False)
        self.redis.incr(self._key("replays"))
        return _result(entry["result"])
