"""Leases in a KV bucket: created with a per-message TTL, renewed by compare-and-set with a fresh TTL.

No limit markers on the bucket: an expired lease simply vanishes, so the next `create` succeeds
(notes/jetstream.md §4.2 and §4.5). A renewal carries the revision this owner last wrote, so an owner whose
lease lapsed and was taken by another cannot renew it. An owner that finds a lease under its own name (its
previous life, killed before it could release it: a restarted `serve` keeps its engine id) takes it back at
once instead of waiting for the TTL.
"""

from __future__ import annotations

import math

from nats.js import JetStreamContext
from nats.js.api import Header
from nats.js.errors import BadRequestError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from aether_es.adapters.nats.layout import Layout

_WRONG_LAST_SEQUENCE = (10071, 10164)


class NatsLeases:
    def __init__(self, js: JetStreamContext, layout: Layout, owner: str, ttl: float = 15.0) -> None:
        self._js = js
        self._layout = layout
        self.owner = owner
        self.ttl = max(1, math.ceil(ttl))
        self._held: dict[str, int] = {}
        self._kv: KeyValue | None = None

    async def _bucket(self) -> KeyValue:
        if self._kv is None:
            self._kv = await self._js.key_value(self._layout.leases_bucket)
        return self._kv

    async def hold(self, key: str) -> bool:
        revision = self._held.get(key)
        if revision is not None:
            try:
                ack = await self._js.publish(
                    f"$KV.{self._layout.leases_bucket}.{key}",
                    self.owner.encode(),
                    headers={Header.EXPECTED_LAST_SUBJECT_SEQUENCE.value: str(revision)},
                    msg_ttl=self.ttl,
                )
                self._held[key] = ack.seq
                return True
            except BadRequestError as exc:
                if exc.err_code not in _WRONG_LAST_SEQUENCE:
                    raise
                del self._held[key]  # lapsed, and perhaps taken: try to take it afresh
        kv = await self._bucket()
        try:
            self._held[key] = await kv.create(key, self.owner.encode(), msg_ttl=self.ttl)
        except KeyWrongLastSequenceError:
            return await self._reclaim(kv, key)
        return True

    async def _reclaim(self, kv: KeyValue, key: str) -> bool:
        try:
            entry = await kv.get(key)
        except KeyNotFoundError:
            return False  # expired just now: the next try creates it
        if entry.value != self.owner.encode() or entry.revision is None:
            return False
        try:
            ack = await self._js.publish(
                f"$KV.{self._layout.leases_bucket}.{key}",
                self.owner.encode(),
                headers={Header.EXPECTED_LAST_SUBJECT_SEQUENCE.value: str(entry.revision)},
                msg_ttl=self.ttl,
            )
        except BadRequestError as exc:
            if exc.err_code not in _WRONG_LAST_SEQUENCE:
                raise
            return False
        self._held[key] = ack.seq
        return True

    async def release(self, key: str) -> None:
        revision = self._held.pop(key, None)
        if revision is None:
            return
        try:
            await (await self._bucket()).delete(key, last=revision)
        except BadRequestError as exc:
            if exc.err_code not in _WRONG_LAST_SEQUENCE:
                raise
