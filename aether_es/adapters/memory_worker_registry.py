"""An in-memory worker registry with an injectable clock, for tests that need no server."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from aether_es.model.clock import now as utc_now
from aether_es.ports.worker_registry import WorkerInfo, WorkerNotFound


class MemoryWorkerRegistry:
    """`WorkerRegistry` in a dict: a registration lapses `ttl` seconds (by `clock`) after its last renewal."""

    def __init__(self, ttl: float = 15.0, clock: Callable[[], float] = time.monotonic) -> None:
        if not ttl > 0:
            raise ValueError(f"worker registry ttl must be positive, got {ttl}")
        self.ttl = ttl
        self._clock = clock
        self._workers: dict[str, tuple[WorkerInfo, float]] = {}

    async def register(self, info: WorkerInfo) -> None:
        now = utc_now()
        info = replace(info, registered_at=info.registered_at or now, heartbeat_at=now)
        self._workers[info.id] = (info, self._clock() + self.ttl)

    async def unregister(self, worker_id: str) -> None:
        self._live(worker_id)
        del self._workers[worker_id]

    async def heartbeat(self, worker_id: str) -> None:
        info = self._live(worker_id)
        self._workers[worker_id] = (replace(info, heartbeat_at=utc_now()), self._clock() + self.ttl)

    async def get(self, worker_id: str) -> WorkerInfo:
        return self._live(worker_id)

    async def list_all(self) -> list[WorkerInfo]:
        self._expire()
        return sorted((info for info, _ in self._workers.values()), key=lambda w: w.id)

    async def list_by_executor_type(self, executor_type: str) -> list[WorkerInfo]:
        return [w for w in await self.list_all() if executor_type in w.executor_types]

    def _live(self, worker_id: str) -> WorkerInfo:
        self._expire()
        try:
            return self._workers[worker_id][0]
        except KeyError:
            raise WorkerNotFound(worker_id) from None

    def _expire(self) -> None:
        now = self._clock()
        for worker_id in [w for w, (_, expires) in self._workers.items() if expires <= now]:
            del self._workers[worker_id]
