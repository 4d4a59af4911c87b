"""Reading a KV bucket's current values, once or followed live, with an ephemeral ordered pull consumer.

nats-py's `kv.watch` stalls for ~19 s after a server restart (notes §4.6). Here the follower pulls with idle
heartbeats: a pull that sees neither a message nor a heartbeat, and whose consumer the server then no longer
knows (or cannot be asked about), means the consumer or server is gone, and the follower rebuilds its view
from the bucket within a second or two. Everything comes from the bucket, so a
rebuild is always correct.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import FetchTimeoutError

from aether_es.adapters.nats.connection import LogThrottle
from aether_es.adapters.nats.retry import fetch as pull
from aether_es.adapters.nats.retry import follow_pull

log = logging.getLogger(__name__)

_KV_OPERATION = "KV-Operation"
_MARKER_REASON = "Nats-Marker-Reason"


@dataclass(frozen=True, slots=True)
class KvChange:
    """A key's new value, or `value=None` when it was deleted, purged or expired."""

    key: str
    value: bytes | None
    revision: int


def _change(prefix: str, msg: Msg) -> KvChange:
    headers = msg.headers or {}
    deleted = _KV_OPERATION in headers or _MARKER_REASON in headers
    return KvChange(
        key=msg.subject[len(prefix) :],
        value=None if deleted else msg.data,
        revision=msg.metadata.sequence.stream,
    )


class _Reader:
    """One ephemeral consumer over the bucket's last value per key, followed by every later change."""

    def __init__(self, js: JetStreamContext, bucket: str, batch: int) -> None:
        self._js = js
        self._stream = f"KV_{bucket}"
        self._prefix = f"$KV.{bucket}."
        self._batch = batch
        self._sub: JetStreamContext.PullSubscription | None = None
        self._consumer = ""
        self.initial_pending = 0

    async def open(self) -> None:
        info = await self._js.add_consumer(
            self._stream,
            ConsumerConfig(
                filter_subject=f"{self._prefix}>",
                deliver_policy=DeliverPolicy.LAST_PER_SUBJECT,
                ack_policy=AckPolicy.NONE,
                mem_storage=True,
                num_replicas=1,
                inactive_threshold=10.0,
            ),
        )
        self._consumer = info.name
        self.initial_pending = info.num_pending or 0
        self._sub = await self._js.pull_subscribe_bind(consumer=self._consumer, stream=self._stream)

    async def snapshot(self, heartbeat: float) -> dict[str, bytes]:
        """The live value of every key: what was there at open time plus any change since."""
        values: dict[str, bytes] = {}
        remaining = self.initial_pending
        while remaining > 0:
            try:
                msgs = await self.fetch(4 * heartbeat, heartbeat=heartbeat)
            except FetchTimeoutError:
                # Alive but idle: the last pending message may have expired since we counted it.
                assert self._sub is not None
                remaining = (await self._sub.consumer_info()).num_pending or 0
                continue
            if not msgs:
                raise TimeoutError(f"no answer while reading {self._stream}")
            for change in self.changes(msgs):
                if change.value is None:
                    values.pop(change.key, None)
                else:
                    values[change.key] = change.value
            remaining = msgs[-1].metadata.num_pending
        return values

    async def fetch(self, timeout: float, heartbeat: float | None) -> list[Msg]:
        assert self._sub is not None
        return await pull(self._sub, self._batch, timeout=timeout, heartbeat=heartbeat)

    async def follow(self, heartbeat: float) -> list[Msg]:
        """The next changes, or none for now; TimeoutError once the consumer is gone."""
        assert self._sub is not None
        return await follow_pull(self._sub, self._batch, heartbeat)

    def changes(self, msgs: list[Msg]) -> list[KvChange]:
        return [_change(self._prefix, msg) for msg in msgs]

    async def close(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            try:
                await sub.unsubscribe()
                await asyncio.wait_for(self._js.delete_consumer(self._stream, self._consumer), 1.0)
            except Exception as exc:  # best effort: the server drops idle ephemerals by itself
                log.debug("closing reader of %s: %r", self._stream, exc)


async def read_bucket(js: JetStreamContext, bucket: str, heartbeat: float = 0.5) -> dict[str, bytes]:
    """Every live key of `bucket` with its value, in one pass (no per-key round trips)."""
    reader = _Reader(js, bucket, batch=1000)
    await reader.open()
    try:
        return await reader.snapshot(heartbeat)
    finally:
        await reader.close()


class KvFollower:
    """Keeps a caller's view of a bucket current: a full snapshot on (re)start, then each change.

    `on_snapshot` replaces the whole view (after a start or a recovery); `on_change` applies one change.
    Both are plain callables so the view is updated without awaiting in between.
    """

    def __init__(
        self,
        js: JetStreamContext,
        bucket: str,
        on_snapshot: Callable[[dict[str, bytes]], None],
        on_change: Callable[[KvChange], None],
        *,
        heartbeat: float = 0.5,
        batch: int = 1000,
    ) -> None:
        self._js = js
        self._bucket = bucket
        self._on_snapshot = on_snapshot
        self._on_change = on_change
        self._heartbeat = heartbeat
        self._throttle = LogThrottle(log)
        self._batch = batch
        self.rebuilds = 0
        self.synced = asyncio.Event()

    async def run(self) -> None:
        """Follow the bucket until cancelled, rebuilding from scratch after any failure."""
        delay = 0.05
        while True:
            reader = _Reader(self._js, self._bucket, self._batch)
            try:
                await reader.open()
                self._on_snapshot(await reader.snapshot(self._heartbeat))
                self.synced.set()
                delay = 0.05
                await self._follow(reader)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.synced.clear()
                self.rebuilds += 1
                self._throttle.warning("follow", "following bucket %s failed (%r); rebuilding", self._bucket, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
            finally:
                await asyncio.shield(reader.close())

    async def _follow(self, reader: _Reader) -> None:
        while True:
            for change in reader.changes(await reader.follow(self._heartbeat)):
                self._on_change(change)
