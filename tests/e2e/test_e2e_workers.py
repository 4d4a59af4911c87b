"""Worker registration end to end: a stack's pool registers itself, `aether-es workers` lists it, stopping
the pool unregisters it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from support.cli import aether

from aether_es.adapters.nats.server import EmbeddedNatsServer
from aether_es.ports.worker_registry import WorkerNotFound
from aether_es.runtime.stack import StackOptions, open_stack
from aether_es.runtime.state_dir import NATS_URL_ENV
from aether_es.worker.executors.echo import EchoExecutor


async def test_stack_workers_register_list_and_unregister(nats_server: EmbeddedNatsServer) -> None:
    stack = await open_stack(StackOptions(nats_url=nats_server.url, workers=2, executors={"echo": EchoExecutor()}))
    try:
        assert stack.pool is not None and stack.registry is not None
        worker_id = stack.pool.worker_id
        live = await stack.registry.list_by_executor_type("echo")
        assert [w.id for w in live] == [worker_id]
        assert live[0].executor_types == ("echo",)
        assert live[0].registered_at and live[0].heartbeat_at
        assert await stack.registry.list_by_executor_type("http") == []

        listed = await asyncio.to_thread(aether, "workers", "--nats", nats_server.url, "--json")
        assert listed.returncode == 0, listed.stderr
        rows = json.loads(listed.stdout)
        assert [row["id"] for row in rows] == [worker_id]
        assert rows[0]["executorTypes"] == ["echo"]
        assert rows[0]["registeredAt"] and rows[0]["heartbeatAt"]

        table = await asyncio.to_thread(aether, "workers", "--nats", nats_server.url)
        assert table.returncode == 0, table.stderr
        assert table.stdout.splitlines()[0].split()[:2] == ["ID", "EXECUTOR"]
        assert worker_id in table.stdout and "echo" in table.stdout

        await stack.pool.stop()
        assert await stack.registry.list_all() == []
        try:
            await stack.registry.get(worker_id)
            raise AssertionError("worker still registered after the pool stopped")
        except WorkerNotFound:
            pass
        emptied = await asyncio.to_thread(aether, "workers", "--nats", nats_server.url, "--json")
        assert emptied.returncode == 0 and json.loads(emptied.stdout) == []
        empty_table = await asyncio.to_thread(aether, "workers", "--nats", nats_server.url)
        assert empty_table.stdout.strip() == "no live workers"
    finally:
        await stack.close()


def test_workers_needs_a_nats_url(tmp_path: Path) -> None:
    """In a folder of its own, with a user-level config of its own: no system a test beside it serves is found."""
    env = {NATS_URL_ENV: "", "XDG_CONFIG_HOME": str(tmp_path / "config")}
    result = aether("workers", "--json", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "--nats" in result.stderr and NATS_URL_ENV in result.stderr
    assert result.stdout == ""


def test_workers_unreachable_server_fails() -> None:
    result = aether("workers", "--nats", "nats://127.0.0.1:1")
    assert result.returncode == 1
    assert "cannot connect" in result.stderr


async def test_pool_heartbeats_keep_it_registered(nats_server: EmbeddedNatsServer) -> None:
    stack = await open_stack(StackOptions(nats_url=nats_server.url, workers=1, worker_ttl=1.0))
    try:
        assert stack.pool is not None and stack.registry is not None
        first = await stack.registry.get(stack.pool.worker_id)
        await asyncio.sleep(2.5)  # 2.5 TTLs: alive only thanks to the pool's heartbeats
        later = await stack.registry.get(stack.pool.worker_id)
        assert later.registered_at == first.registered_at
        assert later.heartbeat_at > first.heartbeat_at
    finally:
        await stack.close()
    assert stack.pool.active == 0


async def test_a_task_without_a_live_worker_says_so(nats_server: EmbeddedNatsServer, tmp_path: Path) -> None:
    stack = await open_stack(StackOptions(nats_url=nats_server.url, state_dir=tmp_path, prefix="idle", workers=0))
    try:
        document = {
            "apiVersion": "aether/v1",
            "kind": "Workflow",
            "metadata": {"name": "lonely"},
            "spec": {"entrypoint": "main", "templates": [{"task": {"name": "main", "executor": {"type": "gpu"}}}]},
        }
        run_id = await stack.engine.submit(document)
        for _ in range(50):
            task = (await stack.engine.get(run_id))["tasks"][0]
            if task["message"]:
                break
            await asyncio.sleep(0.05)
        assert task["status"] == "Ready"
        assert task["message"] == 'waiting: no live worker serves executor type "gpu"'
    finally:
        await stack.close()
