"""Long runs rehydrate from a snapshot plus the tail, with the same result as folding the whole history."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aether_es.adapters.nats.server import EmbeddedNatsServer
from aether_es.runtime.stack import StackOptions, open_stack


def _waiting_loop(items: int) -> dict[str, Any]:
    """A loop of echo tasks, then one that waits to be resumed: the run stays open after the loop."""
    return {
        "apiVersion": "aether/v1",
        "kind": "Workflow",
        "metadata": {"name": "long"},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {
                    "dag": {
                        "name": "main",
                        "tasks": [
                            {"name": "fan", "template": "fan"},
                            {
                                "name": "ask",
                                "template": "echo",
                                "dependencies": ["fan"],
                                "arguments": {"parameters": [{"name": "suspend", "value": True}]},
                            },
                        ],
                    }
                },
                {
                    "loop": {
                        "name": "fan",
                        "items": list(range(items)),
                        "concurrency": 0,
                        "body": "echo",
                        "arguments": {"parameters": [{"name": "item", "value": "{{iterator.item}}"}]},
                    }
                },
                {"task": {"name": "echo", "executor": {"type": "echo"}}},
            ],
        },
    }


async def _suspended(stack: Any, run_id: str) -> str:
    for _ in range(400):
        state = await stack.engine.state(run_id)
        waiting = [t.id for t in state.tasks.values() if t.phase == "Suspended"]
        if waiting:
            return waiting[0]
        await asyncio.sleep(0.05)
    raise AssertionError("nothing suspended")


async def test_a_restarted_engine_rehydrates_from_the_snapshot_and_finishes_the_same(
    nats_server: EmbeddedNatsServer, tmp_path: Path
) -> None:
    options = StackOptions(nats_url=nats_server.url, state_dir=tmp_path, workers=8)
    first = await open_stack(options)
    run_id = await first.engine.submit(_waiting_loop(300))
    task = await _suspended(first, run_id)
    assert first.engine.snapshots is not None
    await first.close()  # a long run still open: its snapshot is written at stop
    second = await open_stack(options)
    try:
        assert second.engine.snapshots is not None and await second.engine.snapshots.get(run_id)
        rehydrated = await second.engine.state(run_id)
        assert rehydrated.to_dict() == (await second.engine.rebuild(run_id)).to_dict()
        from_snapshot = await second.engine.repo.from_snapshot(run_id)
        assert from_snapshot is not None and from_snapshot.to_dict() == rehydrated.to_dict()
        await second.engine.resume(run_id, task, {"__resumed": True})
        view = await second.engine.wait(run_id, timeout=30)
        assert view["status"] == "Succeeded"
        assert view == (await second.engine.rebuild(run_id)).to_dict()  # snapshot + tail == whole history
    finally:
        await second.close()


async def test_an_unreadable_snapshot_is_ignored(nats_server: EmbeddedNatsServer, tmp_path: Path) -> None:
    options = StackOptions(nats_url=nats_server.url, state_dir=tmp_path, workers=8)
    stack = await open_stack(options)
    try:
        run_id = await stack.engine.submit(_waiting_loop(5))
        await _suspended(stack, run_id)
        assert stack.engine.snapshots is not None
        await stack.engine.snapshots.put(run_id, b"{not a snapshot")
        stack.engine._runs.clear()  # forget it: the next read rehydrates
        assert (await stack.engine.state(run_id)).to_dict() == (await stack.engine.rebuild(run_id)).to_dict()
    finally:
        await stack.close()
