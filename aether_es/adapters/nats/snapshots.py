"""Run snapshots in a NATS Object Store bucket: a large run's snapshot is megabytes, more than a KV value."""

from __future__ import annotations

from aether_es.adapters.nats.object_store import NatsObjectStoreRepository
from aether_es.ports.artifacts import ArtifactError


class NatsSnapshotStore:
    def __init__(self, objects: NatsObjectStoreRepository) -> None:
        self._objects = objects

    async def get(self, run_id: str) -> bytes | None:
        try:
            return await self._objects.download({"key": run_id})
        except ArtifactError:
            return None

    async def put(self, run_id: str, data: bytes) -> None:
        await self._objects.upload({"key": run_id}, data)

    async def delete(self, run_id: str) -> None:
        await self._objects.delete({"key": run_id})
