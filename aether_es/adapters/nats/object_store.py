"""Artifacts in a NATS Object Store bucket (config: `{"key": "...", "bucket": "<optional override>"}`)."""

from __future__ import annotations

from typing import Any

from nats.js import JetStreamContext
from nats.js.api import ObjectStoreConfig
from nats.js.errors import BucketNotFoundError, NotFoundError, ObjectNotFoundError
from nats.js.object_store import ObjectStore

from aether_es.ports.artifacts import ArtifactError


class NatsObjectStoreRepository:
    def __init__(self, js: JetStreamContext, bucket: str) -> None:
        self._js = js
        self.bucket = bucket
        self._stores: dict[str, ObjectStore] = {}

    def type(self) -> str:
        return "nats"

    async def _store(self, bucket: str, create: bool) -> ObjectStore:
        store = self._stores.get(bucket)
        if store is None:
            try:
                store = await self._js.object_store(bucket)
            except (BucketNotFoundError, NotFoundError):
                if not create:
                    raise ArtifactError(f"object store bucket {bucket!r} does not exist") from None
                store = await self._js.create_object_store(bucket, ObjectStoreConfig(bucket=bucket))
            self._stores[bucket] = store
        return store

    @staticmethod
    def _key(config: dict[str, Any]) -> str:
        key = config.get("key")
        if not isinstance(key, str) or not key:
            raise ArtifactError("nats artifact config needs a non-empty string `key`")
        return key

    async def upload(self, config: dict[str, Any], data: bytes) -> dict[str, Any]:
        key = self._key(config)
        bucket = str(config.get("bucket") or self.bucket)
        await (await self._store(bucket, create=True)).put(key, data)
        return {"bucket": bucket, "key": key}

    async def delete(self, config: dict[str, Any]) -> None:
        """Remove the object; nothing happens when it or its bucket does not exist."""
        key = self._key(config)
        bucket = str(config.get("bucket") or self.bucket)
        try:
            await (await self._store(bucket, create=False)).delete(key)
        except (ArtifactError, ObjectNotFoundError, NotFoundError):
            return

    async def download(self, config: dict[str, Any]) -> bytes:
        key = self._key(config)
        bucket = str(config.get("bucket") or self.bucket)
        try:
            result = await (await self._store(bucket, create=False)).get(key)
        except (ObjectNotFoundError, NotFoundError):
            raise ArtifactError(f"object {key!r} not found in bucket {bucket!r}") from None
        return bytes(result.data or b"")
