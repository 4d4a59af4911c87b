"""Restarts: an engine process replaced mid-run, and nats-server killed and restarted on its store.

In both, the run must reach exactly the final state an undisturbed run reaches: the same task runs with the
same phases, outputs, inputs and retry counts.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

from aether_es.adapters.nats.server import EmbeddedNatsServer
from aether_es.model import phases as ph
from aether_es.runtime.stack import Stack, StackOptions, open_stack

# prepare -> approval (suspends until resumed) and slow-gate (suspends, times out after 2 s, tolerated)
#         -> fan-out loop of 12 items -> report
WORKFLOW: dict[str, Any] = {
    "apiVersion": "aether/v1",
    "kind": "Workflow",
    "metadata": {"name": "restart-probe"},
    "spec": {
        "entrypoint": "main",
        "templates": [
            {
                "dag": {
                    "name": "main",
                    "tasks": [
                        {"name": "prepare", "template": "echo-ready"},
                        {"name": "approval", "template": "wait-for-resume", "dependencies": ["prepare"]},
                        {
                            "name": "slow-gate",
                            "template": "wait-for-resume",
                            "dependencies": ["prepare"],
                            "timeout": "2s",
                            "continueOn": {"timeout": True},
                        },
                        {"name": "fan-out", "template": "each", "dependencies": ["approval", "slow-gate"]},
                        {
                            "name": "report",
                            "template": "echo-ready",
                            "dependencies": ["fan-out"],
                            "arguments": {
                                "parameters": [
                                    {
                                        "name": "seen",
                                        "valueFrom": {"parameter": "tasks.fan-out.outputs.parameters.n"},
                                    }
                                ]
                            },
                        },
                    ],
                }
            },
            {
                "task": {
                    "name": "echo-ready",
                    "inputs": {"parameters": [{"name": "state", "value": "ready"}]},
                    "executor": {"type": "echo"},
                }
            },
            {
                "task": {
                    "name": "wait-for-resume",
                    "inputs": {"parameters": [{"name": "suspend", "value": True}, {"name": "gate", "value": "open"}]},
                    "executor": {"type": "echo"},
                }
            },
            {
                "loop": {
                    "name": "each",
                    "items": list(range(12)),
                    "concurrency": 3,
                    "body": "echo-item",
                    "arguments": {"parameters": [{"name": "n", "value": "{{iterator.item}}"}]},
                    "aggregate": {"strategy": "list", "parameters": ["n"]},
                }
            },
            {"task": {"name": "echo-item", "executor": {"type": "echo"}}},
        ],
    },
}


def _shape(view: dict[str, Any]) -> tuple[str, Counter[str]]:
    """What must be identical between runs: the run phase and every task run's observable result."""
    tasks = Counter()
    for task in view["tasks"]:
        outputs = {p["name"]: p.get("value") for p in ((task["outputs"] or {}).get("parameters") or [])}
        inputs = {p["name"]: p.get("value") for p in ((task["inputs"] or {}).get("parameters") or [])}
        tasks[
            repr(
                (
                    task["scope"],
                    task["taskName"],
                    task["status"],
                    task["retryCount"],
                    sorted(outputs.items()),
                    sorted(inputs.items()),
                )
            )
        ] += 1
    return view["status"], tasks


async def _resume_approval(stack: Stack, run_id: str) -> None:
    """Resume `approval` once it is suspended (slow-gate is left to time out)."""
    for _ in range(200):
        state = await stack.engine.state(run_id)
        approval = next((t for t in state.tasks.values() if t.task_name == "approval"), None)
        if approval is not None and approval.phase == ph.SUSPENDED:
            await stack.engine.resume(run_id, approval.id, {"__resumed": True})
            return
        await asyncio.sleep(0.05)
    raise AssertionError("approval never suspended")


async def _undisturbed(url: str, state_dir: Path) -> tuple[str, Counter[str]]:
    stack = await open_stack(StackOptions(nats_url=url, state_dir=state_dir, prefix="calm"))
    try:
        run_id = await stack.engine.submit(WORKFLOW)
        await _resume_approval(stack, run_id)
        view = await stack.engine.wait(run_id, timeout=30)
    finally:
        await stack.close()
    assert view["status"] == ph.SUCCEEDED, view
    return _shape(view)


async def test_a_new_engine_process_finishes_the_run(nats_server: EmbeddedNatsServer, tmp_path: Path) -> None:
    expected = await _undisturbed(nats_server.url, tmp_path)
    first = await open_stack(StackOptions(nats_url=nats_server.url, state_dir=tmp_path, prefix="moved", workers=2))
    run_id = await first.engine.submit(WORKFLOW)
    for _ in range(200):  # stop while both gates are suspended and slow-gate's deadline is pending
        state = await first.engine.state(run_id)
        if sum(t.phase == ph.SUSPENDED for t in state.tasks.values()) == 2:
            break
        await asyncio.sleep(0.05)
    await first.close()

    second = await open_stack(StackOptions(nats_url=nats_server.url, state_dir=tmp_path, prefix="moved", workers=2))
    try:
        await _resume_approval(second, run_id)
        view = await second.engine.wait(run_id, timeout=30)
    finally:
        await second.close()
    assert _shape(view) == expected
    gate = next(t for t in view["tasks"] if t["taskName"] == "slow-gate")
    assert gate["status"] == ph.TIMEOUT


async def test_nats_server_killed_and_restarted(nats_server: EmbeddedNatsServer, tmp_path: Path) -> None:
    expected = await _undisturbed(nats_server.url, tmp_path)
    stack = await open_stack(StackOptions(nats_url=nats_server.url, state_dir=tmp_path, prefix="crash"))
    try:
        run_id = await stack.engine.submit(WORKFLOW)
        for _ in range(200):
            state = await stack.engine.state(run_id)
            if any(t.task_name == "approval" and t.phase == ph.SUSPENDED for t in state.tasks.values()):
                break
            await asyncio.sleep(0.05)
        nats_server.kill()
        await asyncio.sleep(0.5)
        nats_server.start()
        await _resume_approval(stack, run_id)
        view = await stack.engine.wait(run_id, timeout=40)
    finally:
        await stack.close()
    assert _shape(view) == expected
