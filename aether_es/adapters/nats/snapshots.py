"""Run snapshots in a NATS Object Store bucket: a large run's snapshot is megabytes, more than a KV value."""

from __future__ import annotations

from aether_es.adapters.nats.object_store import NatsObjectStoreRepository


class NatsSnapshotStore:
    def __init__(self, objects: NatsObjectStoreRepository) -> None:
        self._objects = objects

    async def get(self, run_id: str) -> bytes | None:
        return await self._objects.get_bytes(run_id)

    async def put(self, run_id: str, data: bytes) -> None:
        await self._objects.put_bytes(run_id, data)

    async def delete(self, run_id: str) -> None:
        await self._objects.delete({"key": run_id})
