"""One contract for every `WorkerRegistry`: the in-memory one (fake clock) and the NATS KV one (real server)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from nats.js import JetStreamContext

from aether_es.adapters.memory_worker_registry import MemoryWorkerRegistry
from aether_es.adapters.nats.layout import Layout, ensure
from aether_es.adapters.nats.worker_registry import NatsWorkerRegistry
from aether_es.ports.worker_registry import WorkerInfo, WorkerNotFound, WorkerRegistry

NATS_TTL = 2.0
MEMORY_TTL = 15.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Harness:
    """A registry plus a way to let time pass for it (a fake clock, or real sleeping for NATS)."""

    def __init__(
        self, ttl: float, build: Callable[[], WorkerRegistry], clock: FakeClock | None, js: JetStreamContext | None
    ):
        self.ttl = ttl
        self._build = build
        self._clock = clock
        self._js = js

    async def registry(self) -> WorkerRegistry:
        if self._js is not None:
            await ensure(self._js, Layout())
        return self._build()

    async def advance(self, seconds: float) -> None:
        if self._clock is not None:
            self._clock.now += seconds
        else:
            await asyncio.sleep(seconds)

    async def lapse(self, registry: WorkerRegistry, worker_id: str, remaining: float) -> float:
        """Let the `remaining` seconds of `worker_id`'s TTL pass; returns how long it took to vanish."""
        began = time.monotonic()
        await self.advance(remaining)
        if self._clock is None:  # real expiry: allow the server up to 3 s past the TTL
            deadline = began + remaining + 3.0
            while time.monotonic() < deadline:
                try:
                    await registry.get(worker_id)
                except WorkerNotFound:
                    break
                await asyncio.sleep(0.05)
        return time.monotonic() - began


@pytest.fixture(params=["memory", "nats"])
def harness(request: pytest.FixtureRequest) -> Harness:
    if request.param == "memory":
        clock = FakeClock()
        return Harness(MEMORY_TTL, lambda: MemoryWorkerRegistry(ttl=MEMORY_TTL, clock=clock), clock, None)
    js: JetStreamContext = request.getfixturevalue("js")
    return Harness(NATS_TTL, lambda: NatsWorkerRegistry(js, Layout(), ttl=NATS_TTL), None, js)


RESIZE_SCHEMA = {
    "type": "object",
    "properties": {"width": {"type": "integer"}, "mode": {"enum": ["fit", "fill"], "default": "fit"}},
    "required": ["width"],
}


def worker(worker_id: str, *types: str) -> WorkerInfo:
    return WorkerInfo(id=worker_id, executor_types=types, tags={"zone": "a"}, schemas={types[0]: RESIZE_SCHEMA})


async def test_register_get_and_upsert(harness: Harness) -> None:
    reg = await harness.registry()
    await reg.register(worker("w1", "echo"))
    got = await reg.get("w1")
    assert got.id == "w1" and got.executor_types == ("echo",)
    assert got.tags == {"zone": "a"} and got.schemas == {"echo": RESIZE_SCHEMA}
    assert got.registered_at and got.heartbeat_at

    await reg.register(WorkerInfo(id="w1", executor_types=("echo", "http"), registered_at="2025-01-01T00:00:00.000Z"))
    again = await reg.get("w1")
    assert again.executor_types == ("echo", "http") and again.schemas == {}
    assert again.registered_at == "2025-01-01T00:00:00.000Z"
    assert [w.id for w in await reg.list_all()] == ["w1"]


async def test_get_unknown_raises(harness: Harness) -> None:
    reg = await harness.registry()
    with pytest.raises(WorkerNotFound):
        await reg.get("nobody")


async def test_list_all_and_by_executor_type(harness: Harness) -> None:
    reg = await harness.registry()
    assert await reg.list_all() == []
    assert await reg.list_by_executor_type("echo") == []
    await reg.register(worker("w1", "echo"))
    await reg.register(worker("w2", "echo", "http"))
    await reg.register(worker("w3", "shell"))
    assert sorted(w.id for w in await reg.list_all()) == ["w1", "w2", "w3"]
    assert sorted(w.id for w in await reg.list_by_executor_type("echo")) == ["w1", "w2"]
    assert [w.id for w in await reg.list_by_executor_type("http")] == ["w2"]
    assert await reg.list_by_executor_type("nope") == []


async def test_unregister(harness: Harness) -> None:
    reg = await harness.registry()
    await reg.register(worker("w1", "echo"))
    await reg.register(worker("w2", "echo"))
    await reg.unregister("w1")
    with pytest.raises(WorkerNotFound):
        await reg.get("w1")
    with pytest.raises(WorkerNotFound):
        await reg.heartbeat("w1")
    assert [w.id for w in await reg.list_all()] == ["w2"]
    assert [w.id for w in await reg.list_by_executor_type("echo")] == ["w2"]
    with pytest.raises(WorkerNotFound):
        await reg.unregister("w1")
    with pytest.raises(WorkerNotFound):
        await reg.unregister("never-registered")
    await reg.register(worker("w1", "echo"))  # a worker may come back
    assert (await reg.get("w1")).id == "w1"


async def test_heartbeat_updates_and_unknown_raises(harness: Harness) -> None:
    reg = await harness.registry()
    with pytest.raises(WorkerNotFound):
        await reg.heartbeat("nobody")
    await reg.register(worker("w1", "echo"))
    before = await reg.get("w1")
    await asyncio.sleep(0.01)
    await reg.heartbeat("w1")
    after = await reg.get("w1")
    assert after.registered_at == before.registered_at
    assert after.heartbeat_at > before.heartbeat_at
    assert after.executor_types == before.executor_types and after.tags == before.tags


async def test_heartbeats_keep_a_registration_alive(harness: Harness) -> None:
    reg = await harness.registry()
    await reg.register(worker("w1", "echo"))
    for _ in range(3):  # 1.8 TTLs in all, never more than 0.6 TTL without a heartbeat
        await harness.advance(0.6 * harness.ttl)
        await reg.heartbeat("w1")
    assert (await reg.get("w1")).id == "w1"
    assert [w.id for w in await reg.list_by_executor_type("echo")] == ["w1"]


async def test_registration_lapses_without_heartbeat(harness: Harness) -> None:
    reg = await harness.registry()
    await reg.register(worker("w1", "echo"))
    await reg.register(worker("w2", "echo"))
    await harness.advance(0.8 * harness.ttl)
    await reg.heartbeat("w2")
    took = await harness.lapse(reg, "w1", 0.2 * harness.ttl)
    assert took < 0.2 * harness.ttl + 3.0
    with pytest.raises(WorkerNotFound):
        await reg.get("w1")
    with pytest.raises(WorkerNotFound):
        await reg.heartbeat("w1")
    assert [w.id for w in await reg.list_all()] == ["w2"]  # renewed at 0.8 TTL, so still alive
    await harness.lapse(reg, "w2", 0.8 * harness.ttl)
    assert await reg.list_all() == []
    assert await reg.list_by_executor_type("echo") == []
    with pytest.raises(WorkerNotFound):
        await reg.unregister("w1")
    await reg.register(worker("w1", "echo"))  # registering again after a lapse works
    assert [w.id for w in await reg.list_all()] == ["w1"]


async def test_schemas_survive_heartbeats_and_listing(harness: Harness) -> None:
    reg = await harness.registry()
    await reg.register(
        WorkerInfo(id="w1", executor_types=("resize", "echo"), schemas={"resize": RESIZE_SCHEMA, "echo": {}})
    )
    await reg.heartbeat("w1")
    assert (await reg.get("w1")).schemas == {"resize": RESIZE_SCHEMA, "echo": {}}
    [listed] = await reg.list_by_executor_type("resize")
    assert listed.schemas["resize"] == RESIZE_SCHEMA
