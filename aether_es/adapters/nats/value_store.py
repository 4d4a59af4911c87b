"""Big values in a NATS Object Store bucket, content-addressed, and the messages that carry them by reference.

`shrink` stores what `externalise` takes out of a message (each blob once: put only if its digest is not
there yet) and returns the message to publish; `resolve` fetches and verifies what a received message names
and returns it whole. Only references to this store's own bucket are followed: a message cannot make a
reader fetch a snapshot or an artifact. Recent blobs are kept in a small cache bounded in bytes, since a
value fanned out to many tasks is read as often.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Any

import orjson
from nats.js import JetStreamContext
from nats.js.errors import BucketNotFoundError, NotFoundError, ObjectNotFoundError
from nats.js.object_store import ObjectStore

from aether_es.adapters.nats.layout import Layout
from aether_es.events.references import (
    Gathering,
    Reference,
    UnresolvedReference,
    externalise,
    has_references,
    internalise,
    references,
    verify,
)
from aether_es.limits import Limits, check

log = logging.getLogger(__name__)

CACHE_BYTES = 16 * 1024 * 1024
"""Bytes of recent blobs each store keeps (one a quarter of it at most): a process holds one store per adapter."""


class NatsValueStore:
    """The values bucket, with the limits that say what travels inline."""

    def __init__(
        self, js: JetStreamContext, layout: Layout, limits: Limits | None = None, *, cache_bytes: int = CACHE_BYTES
    ) -> None:
        self._js = js
        self._config = layout.values_object_store_config()
        self.bucket = layout.values_bucket
        self.limits = limits or Limits.from_env()
        self._store: ObjectStore | None = None
        self._lock = asyncio.Lock()
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cached = 0
        self._cache_bytes = cache_bytes

    async def _bucket(self) -> ObjectStore:
        async with self._lock:
            if self._store is None:
                try:
                    self._store = await self._js.object_store(self.bucket)
                except (BucketNotFoundError, NotFoundError):
                    self._store = await self._js.create_object_store(self.bucket, self._config)
            return self._store

    async def put(self, blobs: dict[str, bytes]) -> None:
        """Store each blob under its key unless it is there already (a key is its content's digest)."""
        store = await self._bucket()
        for key, blob in blobs.items():
            if key in self._cache:
                continue
            try:
                await store.get_info(key)
            except (ObjectNotFoundError, NotFoundError):
                await store.put(key, blob)
            self._remember(key, blob)

    async def get(self, ref: Reference) -> bytes:
        """The blob `ref` names, verified against its size and digest."""
        if ref.bucket != self.bucket:
            raise UnresolvedReference(
                f"value {ref.key}: bucket {ref.bucket!r} is not the values bucket {self.bucket!r}"
            )
        blob = self._cache.get(ref.key)
        if blob is None:
            store = await self._bucket()
            try:
                result = await store.get(ref.key)
            except (ObjectNotFoundError, NotFoundError):
                raise UnresolvedReference(
                    f"value {ref.key} ({ref.size:,} bytes) not found in bucket {self.bucket!r}"
                ) from None
            blob = bytes(result.data or b"")
        else:
            self._cache.move_to_end(ref.key)
        verify(ref, blob)
        self._remember(ref.key, blob)
        return blob

    def _remember(self, key: str, blob: bytes) -> None:
        if len(blob) > self._cache_bytes // 4 or key in self._cache:
            return
        self._cache[key] = blob
        self._cached += len(blob)
        while self._cached > self._cache_bytes:
            _, dropped = self._cache.popitem(last=False)
            self._cached -= len(dropped)

    def gathering(self) -> Gathering:
        """Externalises values over this store's inline limit; `put` its blobs before sending what it made."""
        return Gathering(self.limits.inline_value_bytes, self.bucket)

    async def shrink(self, value: Any) -> Any:
        """`value` (a message as JSON) with its values over the inline limit stored and replaced by references;
        `LimitExceeded` if one is over the hard cap on a value."""
        shrunk, blobs = externalise(value, self.limits.inline_value_bytes, self.bucket)
        for blob in blobs.values():
            check(self.limits, "value_bytes", "a value", len(blob))
        if blobs:
            await self.put(blobs)
        return shrunk

    async def shrink_bytes(self, data: bytes) -> bytes:
        """A message's JSON bytes, shrunk if anything in it can be over the inline limit (else as they are)."""
        if len(data) <= self.limits.inline_value_bytes:
            return data
        return orjson.dumps(await self.shrink(orjson.loads(data)))

    async def resolve(self, value: Any) -> Any:
        """`value` with every reference (also those inside fetched blobs) replaced by its value."""
        blobs: dict[str, bytes] = {}
        pending = references(value)
        while pending:
            fetched = [(ref, await self.get(ref)) for ref in pending if ref.key not in blobs]
            pending = []
            for ref, blob in fetched:
                blobs[ref.key] = blob
                if has_references(blob):
                    pending += [inner for inner in references(orjson.loads(blob)) if inner.key not in blobs]
        return internalise(value, blobs) if blobs else value

    async def resolve_bytes(self, data: bytes) -> bytes:
        """A received message's JSON bytes with its references resolved; untouched when it has none."""
        if not has_references(data):
            return data
        return orjson.dumps(await self.resolve(orjson.loads(data)))
