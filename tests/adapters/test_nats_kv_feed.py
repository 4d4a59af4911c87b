"""KvFollower: a busy event loop is not a lost server; a lost consumer is rebuilt from the bucket."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from nats.js import JetStreamContext

from aether_es.adapters.nats.kv_feed import KvChange, KvFollower


@contextlib.asynccontextmanager
async def _following(js: JetStreamContext, view: dict[str, bytes]) -> AsyncIterator[KvFollower]:
    """A follower keeping `view` equal to the bucket `followed`, synced, and stopped on the way out."""
    await js.create_key_value(bucket="followed")

    def on_snapshot(values: dict[str, bytes]) -> None:
        view.clear()
        view.update(values)

    def on_change(change: KvChange) -> None:
        if change.value is None:
            view.pop(change.key, None)
        else:
            view[change.key] = change.value

    follower = KvFollower(js, "followed", on_snapshot, on_change, heartbeat=0.1)
    task = asyncio.create_task(follower.run())
    try:
        await asyncio.wait_for(follower.synced.wait(), 10)
        yield follower
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _until(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


async def test_a_blocked_event_loop_does_not_rebuild_the_view(js: JetStreamContext) -> None:
    view: dict[str, bytes] = {}
    async with _following(js, view) as follower:
        kv = await js.key_value("followed")
        await kv.put("a", b"1")
        await _until(lambda: view.get("a") == b"1")
        for _ in range(3):
            time.sleep(1.0)  # the loop is stuck far past the pull's heartbeat timeout: heartbeats are read late
            await asyncio.sleep(0.5)
        await kv.put("b", b"2")
        await _until(lambda: view.get("b") == b"2")
        assert follower.rebuilds == 0


async def test_a_deleted_consumer_is_rebuilt_from_the_bucket(js: JetStreamContext) -> None:
    view: dict[str, bytes] = {}
    async with _following(js, view) as follower:
        kv = await js.key_value("followed")
        await kv.put("a", b"1")
        await _until(lambda: view.get("a") == b"1")
        for consumer in await js.consumers_info("KV_followed"):
            await js.delete_consumer("KV_followed", consumer.name)
        await _until(lambda: follower.rebuilds >= 1)
        await kv.put("b", b"2")
        await _until(lambda: view == {"a": b"1", "b": b"2"})
