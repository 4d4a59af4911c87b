"""In-memory adapters that pass the same contract tests as the NATS ones, for engine tests without a server."""

from aether_es.adapters.memory.broker import MemoryBroker, MemoryWorkerChannel
from aether_es.adapters.memory.event_store import MemoryEventStore
from aether_es.adapters.memory_worker_registry import MemoryWorkerRegistry

__all__ = ["MemoryBroker", "MemoryEventStore", "MemoryWorkerChannel", "MemoryWorkerRegistry"]
