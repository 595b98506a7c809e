"""Store adapters: one module per backend, all passing the same contract."""

from returnflow.stores.memory import MemoryStore

__all__ = ["MemoryStore"]
