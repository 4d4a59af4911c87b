"""Artifacts in a NATS Object Store bucket (config: `{"key": "...", "bucket": "<optional override>"}`).

Files go in and out in the store's chunks: the client reads and writes each one in a thread and publishes or
receives it on the event loop, so moving a large artifact never holds the loop for long, and never holds the
whole artifact in memory (the client's own `get` into memory grows its buffer chunk by chunk, quadratically).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nats.js import JetStreamContext
from nats.js.api import ObjectMeta, ObjectMetaOptions, ObjectStoreConfig
from nats.js.errors import BucketNotFoundError, DigestMismatchError, NotFoundError, ObjectNotFoundError
from nats.js.object_store import ObjectStore

from aether_es.ports.artifacts import ArtifactError, ArtifactTooLarge

CHUNK = 512 * 1024
"""Bytes per stored chunk: each is one publish awaiting its ack, so a file moves in a quarter of the round trips
of the client's default 128 KiB, while a chunk stays well under the smallest usual payload limit (1 MiB)."""


class NatsObjectStoreRepository:
    def __init__(self, js: JetStreamContext, bucket: str, config: ObjectStoreConfig | None = None) -> None:
        self._js = js
        self.bucket = bucket
        self._config = config
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
                config = self._config if bucket == self.bucket and self._config else ObjectStoreConfig(bucket=bucket)
                store = await self._js.create_object_store(bucket, config)
            self._stores[bucket] = store
        return store

    def _where(self, config: dict[str, Any]) -> tuple[str, str]:
        """The bucket and key `config` names."""
        key = config.get("key")
        if not isinstance(key, str) or not key:
            raise ArtifactError("nats artifact config needs a non-empty string `key`")
        bucket = config.get("bucket") or self.bucket
        if not isinstance(bucket, str):
            raise ArtifactError("nats artifact `bucket` must be a string")
        return bucket, key

    async def upload(self, config: dict[str, Any], file: Path) -> dict[str, Any]:
        bucket, key = self._where(config)
        store = await self._store(bucket, create=True)
        with file.open("rb") as data:
            await store.put(key, data, ObjectMeta(name=key, options=ObjectMetaOptions(max_chunk_size=CHUNK)))
        return {"bucket": bucket, "key": key}

    async def download(self, config: dict[str, Any], file: Path, max_bytes: int) -> int:
        bucket, key = self._where(config)
        store = await self._store(bucket, create=False)
        try:
            info = await store.get_info(key)
            size = int(info.size or 0)
            if size > max_bytes:
                raise ArtifactTooLarge(f"object {key!r} in bucket {bucket!r}", size)
            with file.open("wb") as into:
                await store.get(key, writeinto=into)
        except (ObjectNotFoundError, NotFoundError):
            raise ArtifactError(f"object {key!r} not found in bucket {bucket!r}") from None
        except DigestMismatchError:
            raise ArtifactError(f"object {key!r} in bucket {bucket!r} does not match its digest") from None
        return size

    async def delete(self, config: dict[str, Any]) -> None:
        """Remove the object; nothing happens when it or its bucket does not exist."""
        bucket, key = self._where(config)
        try:
            await (await self._store(bucket, create=False)).delete(key)
        except (ArtifactError, ObjectNotFoundError, NotFoundError):
            return

    async def put_bytes(self, key: str, data: bytes) -> None:
        """Store a small blob held in memory (a run snapshot)."""
        await (await self._store(self.bucket, create=True)).put(key, data)

    async def get_bytes(self, key: str) -> bytes | None:
        """A small blob stored with `put_bytes`, or None when there is none."""
        try:
            result = await (await self._store(self.bucket, create=False)).get(key)
        except (ArtifactError, ObjectNotFoundError, NotFoundError):
            return None
        return bytes(result.data or b"")
